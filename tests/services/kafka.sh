#!/usr/bin/env bash
# tests/services/kafka.sh up|down [--wipe]
#
# A single-node Apache Kafka 4 (KRaft: broker and controller in one JVM) on
# loopback, for the tests. Called by tests/services/up and down.
#
#   up    fetches the jars with Maven the first time (into the cache, outside
#         the tracked tree), formats the storage once, starts the broker,
#         waits until it has started (bounded) and prints
#         KAFKA_BROKERS=127.0.0.1:PORT on stdout. Progress goes to stderr.
#         Idempotent: when it already runs, it only prints the line again.
#   down  SIGTERM to the recorded pid, SIGKILL after a bound; --wipe also
#         removes the data.
#
# Environment:
#   EIM_SERVICES_DIR          state root (default /tmp/exampleim-services);
#                             this service uses its kafka/ folder
#   EIM_CACHE_DIR             download cache (default ~/.cache/exampleim)
#   EIM_KAFKA_PORT            PLAINTEXT port (default 19092)
#   EIM_KAFKA_CONTROLLER_PORT CONTROLLER port (default EIM_KAFKA_PORT + 1)
#   EIM_KAFKA_VERSION         Kafka version from Maven Central (default 4.1.1)
#   EIM_KAFKA_START_TIMEOUT   seconds to wait for the broker (default 120)
#   EIM_KAFKA_HEAP            the JVM's heap options (default
#                             "-Xms256m -Xmx512m"; word-split)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=${EIM_KAFKA_VERSION:-4.1.1}
log4j_version=2.24.3
port=${EIM_KAFKA_PORT:-19092}
controller_port=${EIM_KAFKA_CONTROLLER_PORT:-$((port + 1))}
start_timeout=${EIM_KAFKA_START_TIMEOUT:-120}
stop_timeout=30
cache=${EIM_CACHE_DIR:-$HOME/.cache/exampleim}/kafka-$version
libs=$cache/libs
state=${EIM_SERVICES_DIR:-/tmp/exampleim-services}/kafka
data=$state/data
pidfile=$state/kafka.pid
logfile=$state/kafka.log

say() { echo "kafka: $*" >&2; }

# The recorded pid, if that process is still our broker.
running_pid() {
  local pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

fetch_jars() {
  [[ -f $libs/.complete ]] && return 0
  command -v mvn >/dev/null || { say "mvn not found (apt-get install maven)"; return 1; }
  say "fetching Kafka $version jars into $libs (first time only)"
  rm -rf "$libs.tmp"
  mkdir -p "$cache"
  mvn -q -B -f "$here/kafka/pom.xml" \
    -Dkafka.version="$version" -Dlog4j.version="$log4j_version" \
    dependency:copy-dependencies -DoutputDirectory="$libs.tmp" >&2
  touch "$libs.tmp/.complete"
  rm -rf "$libs"
  mv "$libs.tmp" "$libs"
}

# Two cores and other services beside it: a small heap by default (Kafka's
# own start script gives 1 GiB). The collector options are that script's
# (KAFKA_JVM_PERFORMANCE_OPTS): G1 aiming at 20 ms pauses; with the JVM's
# 200 ms default, young collections paused the broker for up to 50 ms.
# shellcheck disable=SC2206
heap=(${EIM_KAFKA_HEAP:--Xms256m -Xmx512m})
java_cmd=(java "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
  "-Dlog4j2.configurationFile=$here/kafka/log4j2.properties" -cp "$libs/*")

write_config() {
  sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$controller_port|g" \
      -e "s|@DATA_DIR@|$data|g" "$here/kafka/server.properties.in" \
      >"$state/server.properties"
}

format_once() {
  [[ -f $data/meta.properties ]] && return 0
  local cluster_id
  # A Kafka cluster id is 16 random bytes in URL-safe base64 without padding.
  # One that starts with '-' would be read as an option by the format tool,
  # so such draws are thrown away.
  cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
  done
  say "formatting $data (cluster $cluster_id)"
  mkdir -p "$data"
  "${java_cmd[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
    -c "$state/server.properties" >>"$state/format.log" 2>&1 || {
    say "format failed; see $state/format.log"; tail -n 20 "$state/format.log" >&2; return 1; }
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits (bounded) until the broker with this pid serves clients: Kafka's
# KafkaRaftServer logs "Kafka Server started" only once the broker is
# unfenced, and the port must accept connections.
wait_ready() {
  local pid=$1 started=$SECONDS deadline=$((SECONDS + start_timeout))
  until grep -q 'Kafka Server started' "$logfile" 2>/dev/null && port_busy "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "broker exited during start-up; last lines of $logfile:"
      tail -n 30 "$logfile" >&2
      rm -f "$pidfile"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      say "not started within ${start_timeout}s; stopping it. Last lines of $logfile:"
      tail -n 30 "$logfile" >&2
      down
      exit 1
    fi
    sleep 0.5
  done
  say "ready after $((SECONDS - started))s (pid $pid)"
}

up() {
  local pid
  command -v java >/dev/null || { say "java not found (apt-get install openjdk-17-jre-headless)"; exit 1; }
  if pid=$(running_pid); then
    say "already running (pid $pid)"
    wait_ready "$pid"
    echo "KAFKA_BROKERS=127.0.0.1:$port"
    return 0
  fi
  for p in "$port" "$controller_port"; do
    if port_busy "$p"; then say "port $p is taken by another process"; exit 1; fi
  done
  fetch_jars
  mkdir -p "$state"
  write_config
  format_once
  [[ -f $logfile ]] && mv -f "$logfile" "$logfile.1"
  say "starting Kafka $version on 127.0.0.1:$port (controller $controller_port)"
  rm -f "$pidfile"
  # setsid: the broker outlives the shell that started it and gets none of
  # its terminal's signals. The pid is written from inside, since setsid may
  # fork.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" \
    "${java_cmd[@]}" kafka.Kafka "$state/server.properties" \
    </dev/null >"$logfile" 2>&1 &
  local tries=100
  until pid=$(running_pid); do
    ((--tries > 0)) || { say "broker did not start; see $logfile"; tail -n 30 "$logfile" >&2; exit 1; }
    sleep 0.1
  done
  wait_ready "$pid"
  echo "KAFKA_BROKERS=127.0.0.1:$port"
}

down() {
  local pid
  if pid=$(running_pid); then
    say "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      say "still running after ${stop_timeout}s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  fi
  rm -f "$pidfile"
  if [[ ${1:-} == --wipe ]]; then
    say "removing $state"
    rm -rf "$state"
  fi
}

case "${1:-}" in
  up) up ;;
  down) shift; down "$@" ;;
  status) running_pid >/dev/null ;;
  *) echo "usage: $0 up | down [--wipe] | status" >&2; exit 2 ;;
esac
