#!/usr/bin/env bash
# tests/services/ferretdb.sh up|down [--wipe]
#
# A private FerretDB v1.24.2 (MongoDB wire protocol) for the store-mongo tests,
# on 127.0.0.1:$EIM_FERRETDB_PORT (27018), its data and pid files under
# $EIM_SERVICES_DIR/ferretdb. `up` builds the binary from its Go module the
# first time (cached under $EIM_CACHE_DIR/ferretdb-v1.24.2, outside the
# repository), starts the backend and FerretDB, waits until it accepts
# connections and prints MONGO_URI on stdout; running it again prints the
# same line. `down` stops what it started and waits for it to exit;
# `down --wipe` also deletes the data.
#
# Backend: $EIM_FERRETDB_BACKEND, `postgresql` (default) or `sqlite`.
# Both serve everything store-mongo needs (unique indexes, ordered
# insert_many with per-document duplicate-key errors; neither has
# transactions, and findAndModify is not atomic on either, so the plugin uses
# neither). They differ in speed: FerretDB v1 pushes only equality filters
# down to PostgreSQL, and on SQLite not even those except on _id, and even
# that scans (its WHERE does not match the _id index); every other filter runs
# in Go over every document of the collection. Measured with ~1,400 messages:
# a look-up by _id 17.7 ms on SQLite vs 1.3 ms on PostgreSQL; the
# store-mongo.concurrent test 41 s vs 2.2 s. So a private PostgreSQL (Debian's
# postgresql package, run as the postgres user when we are root) listens on
# 127.0.0.1:$EIM_FERRETDB_PG_PORT (the FerretDB port + 10000) with trust
# authentication, loopback only, for this test service.
set -euo pipefail

version=v1.24.2
module=github.com/FerretDB/FerretDB
base=${EIM_SERVICES_DIR:-/tmp/exampleim-services}/ferretdb
cache=${EIM_CACHE_DIR:-$HOME/.cache/exampleim}/ferretdb-$version
bin=$cache/ferretdb
pidfile=$base/ferretdb.pid
logfile=$base/ferretdb.log
port=${EIM_FERRETDB_PORT:-27018}
backend=${EIM_FERRETDB_BACKEND:-postgresql}
pg_port=${EIM_FERRETDB_PG_PORT:-$((port + 10000))}
pgdata=$base/pg
start_timeout=60
stop_timeout=30

say() { echo "ferretdb: $*" >&2; }
die() { say "$*"; exit 1; }

running_pid() {
  local pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# `go install module/cmd/ferretdb@version` builds a binary that panics at
# start: FerretDB reads its version from build/version/version.txt, a file
# its release process generates and the module zip lacks. So the module
# source is copied out of the (read-only) module cache, the file is written,
# and the command is built from there. A lock keeps two concurrent `up`s from
# building at once.
build_binary() {
  local dir src
  [[ -x $bin ]] && return 0
  command -v go >/dev/null || die "Go is needed to build FerretDB (golang-go, or /usr/local/go)"
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  if [[ -x $bin ]]; then exec 9>&-; return 0; fi
  say "building $module $version (first time only; takes a few minutes)"
  dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$module@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $dir && -d $dir ]] || die "go mod download $module@$version failed"
  src=$cache/src
  rm -rf "$src"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  echo "$version" >"$src/build/version/version.txt"
  (cd "$src" && go build -o "$bin.tmp" ./cmd/ferretdb) >&2 || die "go build failed"
  mv "$bin.tmp" "$bin"
  rm -rf "$src"
  exec 9>&-
}

# PostgreSQL refuses to run as root: its commands run as `postgres` then.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [[ -z $d ]]; then
    say "installing postgresql"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
      { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
    d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$d"
}

pg_running() { [[ -f $pgdata/PG_VERSION ]] && as_pg "$(pg_bin)/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; }

start_postgres() {
  local bindir
  bindir=$(pg_bin)
  if [[ ! -f $pgdata/PG_VERSION ]]; then
    say "initialising PostgreSQL in $pgdata"
    mkdir -p "$pgdata"
    [[ $(id -u) -ne 0 ]] || chown postgres: "$pgdata"
    as_pg "$bindir/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --no-instructions \
      >"$base/initdb.log" 2>&1 || { cat "$base/initdb.log" >&2; die "initdb failed"; }
  fi
  if ! pg_running; then
    say "starting PostgreSQL on 127.0.0.1:$pg_port"
    as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 \
      -o "-p $pg_port -k $pgdata -c listen_addresses=127.0.0.1" start >&2 ||
      { tail -n 30 "$pgdata/server.log" >&2 || true; die "PostgreSQL did not start (port $pg_port taken?)"; }
  fi
  if ! as_pg "$bindir/psql" -h "$pgdata" -p "$pg_port" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'" | grep -q 1; then
    as_pg "$bindir/createdb" -h "$pgdata" -p "$pg_port" -U postgres ferretdb ||
      die "createdb ferretdb failed"
  fi
}

stop_postgres() {
  pg_running || return 0
  say "stopping PostgreSQL"
  as_pg "$(pg_bin)/pg_ctl" -D "$pgdata" -m fast -w -t "$stop_timeout" stop >&2 || true
}

start_server() {
  local pid i args
  accepts && die "port $port is taken by another process"
  case $backend in
    postgresql)
      start_postgres
      args=(--handler=postgresql --postgresql-url="postgres://postgres@127.0.0.1:$pg_port/ferretdb") ;;
    sqlite)
      mkdir -p "$base/data"
      # _txlock=immediate: a write transaction takes SQLite's write lock when
      # it begins and waits for it, instead of failing to upgrade a read lock
      # when writers overlap (4 concurrent writers: 580 -> 925 messages/s).
      args=(--handler=sqlite --sqlite-url="file:$base/data/?_txlock=immediate") ;;
    *) die "EIM_FERRETDB_BACKEND must be postgresql or sqlite, not '$backend'" ;;
  esac
  say "starting on 127.0.0.1:$port ($backend)"
  # --debug-addr=- : the default debug listener (127.0.0.1:8088) would clash
  # with a second instance and is not needed.
  setsid "$bin" "${args[@]}" --state-dir="$base" --listen-addr="127.0.0.1:$port" \
    --debug-addr=- --telemetry=disable --log-level=ERROR </dev/null >"$logfile" 2>&1 &
  pid=$!
  echo "$pid" >"$pidfile"
  for ((i = 0; i < start_timeout * 10; i++)); do
    if accepts; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$logfile" >&2 || true
      rm -f "$pidfile"
      die "ferretdb exited during start-up"
    fi
    sleep 0.1
  done
  tail -n 30 "$logfile" >&2 || true
  die "ferretdb not accepting connections after ${start_timeout}s"
}

cmd_up() {
  build_binary
  mkdir -p "$base"
  if running_pid >/dev/null && accepts; then
    say "already running"
  else
    start_server
  fi
  echo "MONGO_URI=mongodb://127.0.0.1:$port/"
}

cmd_down() {
  local pid i
  if pid=$(running_pid); then
    say "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < stop_timeout * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid still alive after ${stop_timeout}s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
  stop_postgres
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
