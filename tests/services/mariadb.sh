#!/usr/bin/env bash
# tests/services/mariadb.sh up|down [--wipe]
#
# A private MariaDB for the tests: its own datadir, socket and pid file under
# $EIM_SERVICES_DIR/mariadb, listening on 127.0.0.1:$EIM_MARIADB_PORT (3307).
# It never reads /etc/mysql (--no-defaults) and never touches a system-wide
# instance. `up` installs mariadb-server the first time, starts the server,
# waits until it answers, makes sure the test user and database exist and
# prints the MYSQL_* settings on stdout; running it again prints the same
# settings. `down` shuts it down and waits for the process to exit;
# `down --wipe` also deletes the folder (data and the generated password).
# $EIM_MARIADB_ARGS, when set, is added to the server's options (word-split:
# e.g. "--innodb-log-file-size=1G --innodb-buffer-pool-size=1G").
set -euo pipefail

base=${EIM_SERVICES_DIR:-/tmp/exampleim-services}/mariadb
data=$base/data
sock=$base/mysqld.sock
pidfile=$base/mysqld.pid
errlog=$base/mysqld.log
pwfile=$base/password
port=${EIM_MARIADB_PORT:-3307}
db_user=exampleim
db_name=exampleim_test
start_timeout=60
stop_timeout=60

say() { echo "mariadb: $*" >&2; }
die() { say "$*"; exit 1; }

# The server drops root privileges to `mysql` when we are root, as the Debian
# service does; otherwise it runs as the caller.
run_as=()
if [[ $(id -u) -eq 0 ]] && id mysql >/dev/null 2>&1; then run_as=(--user=mysql); fi

# The client tools honour MYSQL_HOST, MYSQL_PWD and friends, which the
# tests export with this script's own output: keep them out of the way.
unset MYSQL_HOST MYSQL_PWD MYSQL_TCP_PORT MYSQL_UNIX_PORT
admin() { mariadb-admin --no-defaults --protocol=socket --socket="$sock" -uroot "$@"; }
sql() { mariadb --no-defaults --protocol=socket --socket="$sock" -uroot --batch "$@"; }

running_pid() {
  local pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  # A stale pid file may name an unrelated process by now: never signal it.
  [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == mariadbd ]] || return 1
  echo "$pid"
}

install_server() {
  command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null && return 0
  say "installing mariadb-server"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server >&2 ||
    { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server >&2; }
}

init_datadir() {
  [[ -d $data/mysql ]] && return 0
  say "initialising $data"
  mkdir -p "$data"
  [[ ${#run_as[@]} -eq 0 ]] || chown -R mysql:mysql "$base"
  mariadb-install-db --no-defaults --datadir="$data" "${run_as[@]}" \
    --auth-root-authentication-method=normal --skip-test-db >"$base/install.log" 2>&1 ||
    { cat "$base/install.log" >&2; die "mariadb-install-db failed"; }
}

start_server() {
  local pid i
  say "starting on 127.0.0.1:$port"
  [[ ${#run_as[@]} -eq 0 ]] || chown mysql:mysql "$base"
  setsid mariadbd --no-defaults --datadir="$data" --socket="$sock" \
    --pid-file="$pidfile" --log-error="$errlog" --port="$port" \
    --bind-address=127.0.0.1 --skip-name-resolve "${run_as[@]}" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
    --max-connections=500 ${EIM_MARIADB_ARGS:-} </dev/null >/dev/null 2>&1 &
  pid=$!
  # Poll rather than sleep a fixed time: ready in about half a second, but a
  # cold disk or a busy machine can take longer.
  for ((i = 0; i < start_timeout * 10; i++)); do
    if admin ping >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$errlog" >&2 || true
      die "mariadbd exited during start-up (port $port taken?)"
    fi
    sleep 0.1
  done
  tail -n 30 "$errlog" >&2 || true
  die "mariadbd not ready after ${start_timeout}s"
}

# The password is generated once per datadir and kept beside it, outside the
# repository, so every `up` prints the same settings.
ensure_user() {
  local pw
  if [[ ! -s $pwfile ]]; then
    (umask 077 && head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pwfile")
  fi
  pw=$(<"$pwfile")
  sql <<EOF
CREATE DATABASE IF NOT EXISTS \`$db_name\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE USER IF NOT EXISTS '$db_user'@'127.0.0.1' IDENTIFIED BY '$pw';
ALTER USER '$db_user'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON \`exampleim\\_%\`.* TO '$db_user'@'127.0.0.1';
EOF
  printf 'MYSQL_HOST=127.0.0.1\nMYSQL_PORT=%s\nMYSQL_USER=%s\nMYSQL_PASSWORD=%s\nMYSQL_DATABASE=%s\n' \
    "$port" "$db_user" "$pw" "$db_name"
}

cmd_up() {
  install_server
  mkdir -p "$base"
  if running_pid >/dev/null && admin ping >/dev/null 2>&1; then
    say "already running"
  else
    init_datadir
    start_server
  fi
  ensure_user
}

cmd_down() {
  local pid i
  if pid=$(running_pid); then
    say "stopping pid $pid"
    admin shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < stop_timeout * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid still alive after ${stop_timeout}s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  if [[ ${1:-} == --wipe ]]; then
    say "wiping $base"
    rm -rf "$base"
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) running_pid >/dev/null ;;
  *) echo "usage: $0 up|down [--wipe]|status" >&2; exit 2 ;;
esac
