#!/usr/bin/env bash
# scripts/run-cluster.sh - build chatcluster and run the whole cluster on this machine.
#
# Installs missing packages (scripts/deps.sh), configures and builds build/, then starts in
# .run/cluster (fresh each time): PostgreSQL, Redis, an Apache Kafka broker (one KRaft node,
# fresh log dir), chat-persister, chat-presence, two chat-api replicas, two chat-gateway
# processes and nginx in front of them on one port (the web client, /ws to the gateways, /api/ to
# chat-api). Prints the URLs and a ready-made dev token, then stays in the foreground:
# Ctrl-C (or SIGTERM/SIGHUP) stops everything in order and removes the cluster's data (logs are
# kept).
#
# Environment: CHAT_LB_PORT (nginx port, default 8080; a free port when that one is busy),
# CHAT_BUILD_DIR (default <repo>/build), CHAT_RUN_DIR (default <repo>/.run/cluster),
# CHAT_BIN (binaries to run, default <build>/bin), CHAT_LOG_LEVEL (services' log level),
# CHAT_CLUSTER_TIMEOUT (readiness timeout, s), CHAT_KAFKA_HEAP (broker heap, default 512m),
# CHAT_KAFKA_NETWORK_THREADS and CHAT_KAFKA_IO_THREADS (the broker's threads, default 1 and 2),
# CHAT_CLUSTER_KAFKA (broker, the default; mock: librdkafka's mock cluster, no Java, not for
# measurements: it slows down within minutes).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CHAT_BUILD_DIR:-$repo/build}
run=${CHAT_RUN_DIR:-$repo/.run/cluster}

case ${1:-} in
"") ;;
-h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    exit 0
    ;;
*)
    echo "usage: $0 [--help]" >&2
    exit 2
    ;;
esac

"$repo/scripts/deps.sh"

echo "== configure + build: $build"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"

export CHAT_BIN=${CHAT_BIN:-$build/bin} # override: run other (e.g. sanitizer) binaries
# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"

want=${CHAT_LB_PORT:-8080}
if ! [[ $want =~ ^[0-9]+$ ]] || _cl_port_busy "$want"; then
    _cl_free_port
    echo "== port $want is busy or invalid: nginx listens on $REPLY instead"
    want=$REPLY
fi
export CHAT_LB_PORT=$want

cleaned=0
cleanup() {
    [ "$cleaned" -eq 1 ] && return 0
    cleaned=1
    trap - INT TERM HUP
    echo
    echo "== stopping the cluster"
    cluster_down "$run" || true
    # keep the logs for a post-mortem; drop the data and the secret
    rm -rf "$run/pg" "$run/redis" "$run/nginx" "$run/kafka" "$run/pids" "$run/cluster.env" \
        "$run/cluster.env.tmp" "$run/kafka.bootstrap"
    echo "== stopped; logs kept in $run/logs"
}
trap cleanup EXIT
trap 'cleanup; exit 0' INT TERM HUP

# Fresh each time: whatever a killed earlier run left behind is stopped and removed first.
if [ -d "$run" ]; then
    cluster_down "$run" >/dev/null 2>&1 || true
    rm -rf "$run"
fi
mkdir -p "$run"

echo "== starting the cluster in $run"
if ! cluster_up "$run"; then
    echo "== the cluster did not start: see the log above and $run/logs/" >&2
    exit 1
fi

env_get() {
    _cl_env_get "$run" "$1"
}
lb=$(env_get CHAT_TEST_LB_PORT)
token=$(
    set -a
    # shellcheck disable=SC1091
    . "$run/cluster.env"
    set +a
    "$CHAT_BIN/chatctl" token --user developer --name Developer --ttl 86400
)
rel_run=${run#"$repo"/}
rel_bin=${CHAT_BIN#"$repo"/}

cat <<INFO

chatcluster is running. Ctrl-C stops it and removes its data.

  Web client   http://127.0.0.1:$lb/
  WebSocket    ws://127.0.0.1:$lb/ws
  REST         http://127.0.0.1:$lb/api/v1/
  (nginx on port $lb balances /ws over gw1 $(env_get CHAT_TEST_GW1_URL) and gw2 $(env_get CHAT_TEST_GW2_URL),
   /api/ over chat-api api1 $(env_get CHAT_TEST_API1_URL) and api2 $(env_get CHAT_TEST_API2_URL))

  Metrics      $(env_get CHAT_TEST_API1_URL)/metrics (chat-api api1)
               $(env_get CHAT_TEST_PERSISTER_URL)/metrics (persister)
               $(env_get CHAT_TEST_PRESENCE_URL)/metrics (presence)
  PostgreSQL   psql $(env_get CHAT_TEST_PG_DSN)
  Redis        redis-cli -p $(env_get CHAT_TEST_REDIS_PORT)
  Kafka        kcat -L -b $(env_get CHAT_KAFKA_BROKERS)   (topics: $rel_run/kafka/topics.txt)
  Logs         $rel_run/logs/*.log        Settings: $rel_run/cluster.env

Dev token for user "developer" (valid 24 h):

  $token

Log in with it: send {"type":"auth","token":"<the token>"} as the first WebSocket frame
(every frame is documented in proto/README.md). Tokens for other users:

  (set -a; . $rel_run/cluster.env; $rel_bin/chatctl token --user alice --name Alice)

INFO

# Foreground: report a service that dies (nothing is restarted), until a signal arrives.
declare -A reported=()
while :; do
    for svc in $CLUSTER_ALL_SERVICES; do
        if [ -z "$(_cl_pid_live "$svc" "$run")" ] && [ -z "${reported[$svc]:-}" ]; then
            reported[$svc]=1
            echo "== warning: $svc is not running (see $rel_run/logs/$svc.log)" >&2
        fi
    done
    sleep 2 &
    wait $! || true
done
