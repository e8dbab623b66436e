#!/usr/bin/env bash
# bench/smoke.sh CHAT_BENCH - the bench.smoke test: short chat-bench runs against the running
# test cluster whose env file is $CHAT_TEST_ENV (tests/integration fixture "cluster").
#
#  1. fanout: 50 connections in 5 rooms spread round-robin over nginx AND both gateways
#     directly (members of one room sit on different gateways), 2 senders, 200 msg/s for 3 s;
#     exit status 0 means zero lost / duplicated / reordered and a nonzero delivery count.
#  2. churn: 20 connect+join+leave+close cycles/s for 1 s through nginx.
#  3. idle: 30 connections held for 1 s against gw1 with its RSS measured.
#  4. reconnect: 50 connections in 5 rooms over both gateways, 5 senders, 200 msg/s for 3 s;
#     every 300 ms 20 % of the receivers are cut and rejoin with since on the other gateway:
#     every rejoin recovered, no gap, duplicate or loss.
# Each run must exit 0; the JSON results are checked with jq when it is installed.
set -euo pipefail

bench=${1:?usage: smoke.sh path/to/chat-bench}
env_file=${CHAT_TEST_ENV:?CHAT_TEST_ENV (cluster.env) is not set}
[ -f "$env_file" ] || { echo "smoke: $env_file not found (is the cluster fixture up?)" >&2; exit 1; }
set -a
# shellcheck disable=SC1090
. "$env_file"
set +a
mult=${CHAT_TEST_TIMEOUT_MULT:-1}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

common=(--jwt-keys="$CHAT_JWT_KEYS" --jwt-issuer="${CHAT_JWT_ISSUER:-chatcluster}" --json
    --timeout=$((25 * mult)))

run() {
    local name=$1 rc=0
    shift
    echo "== smoke: $name: chat-bench $*" >&2
    "$bench" "$@" "${common[@]}" >"$out/$name.json" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "smoke: $name exited $rc" >&2
        cat "$out/$name.json" >&2
        exit 1
    fi
}

# check NAME JQ-FILTER: the filter must print true for the JSON result (skipped without jq: the
# exit status already says the run was correct).
check() {
    local name=$1 filter=$2
    command -v jq >/dev/null 2>&1 || return 0
    if [ "$(jq -r "$filter" "$out/$name.json")" != true ]; then
        echo "smoke: $name: check failed: $filter" >&2
        cat "$out/$name.json" >&2
        exit 1
    fi
}

run fanout fanout --url="$CHAT_TEST_LB_URL,$CHAT_TEST_GW1_URL,$CHAT_TEST_GW2_URL" \
    --conns=50 --rooms=5 --senders=2 --rate=200 --duration=3 --warmup=1 --drain=5
check fanout '.deliveries.measured > 0 and .sends.acked > 0 and .correctness.ok'

run churn churn --url="$CHAT_TEST_LB_URL" --rate=20 --conns=50 --rooms=3 --duration=1 --drain=2
check churn '.cycles.completed > 0 and .cycles.failed == 0'

gw1_pid=$(cat "$CHAT_TEST_DIR/pids/gw1.pid" 2>/dev/null || true)
run idle idle --url="$CHAT_TEST_GW1_URL" --conns=30 --rooms=3 --warmup=0 --duration=1 \
    ${gw1_pid:+--pids=$gw1_pid}
check idle '.conns.joined == 30 and .correctness.ok'

run reconnect reconnect --url="$CHAT_TEST_GW1_URL,$CHAT_TEST_GW2_URL" --conns=50 --rooms=5 \
    --senders=5 --rate=200 --duration=2 --warmup=1 --drain=5 --reconnect-every-ms=300 \
    --reconnect-share=0.2
check reconnect '.reconnect.cut > 0 and .reconnect.recovered == .reconnect.cut and
    .correctness.ok and .correctness.gaps == 0'
echo "smoke: ok" >&2
