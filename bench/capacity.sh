#!/usr/bin/env bash
# bench/capacity.sh - one room's capacity with the whole cluster on one core (issue 12 goal 5).
#
#   bench/capacity.sh [--no-build] [--rates "R1 R2 ..."] [--conns N] [--p99-max MS]
#
# Starts the local cluster (PostgreSQL, Redis, the Kafka broker, persister, presence, both
# gateways, nginx) and chat-bench-baseline (plain epoll broadcast, no Kafka), pins every thread
# of all of them to CPU 0 and chat-bench (the load) to CPU 1, then for each rate R runs one room
# of N connections (default 1000) with 10 senders at R messages/s in total, so N x R deliveries/s
# (R=500: the issue's 500,000 deliveries/s), against the baseline and against both gateways
# directly, at the same time on the same machine. Rates go up until the cluster's p99 is over
# --p99-max (default 100 ms) or a run loses, doubles or reorders anything.
#
# Prints a markdown table (rate, deliveries/s, p50/p99 of each side) and writes it, with each
# run's JSON and log, to bench/results/capacity-<UTC timestamp>/. The capacity is the last rate
# whose p99 stayed under --p99-max with zero loss. Needs taskset (util-linux) and 2 CPUs.
# Exit status: 0 when the runs completed, 1 on a correctness error or a failed run, 2 usage.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CHAT_BENCH_BUILD_DIR:-$repo/build-bench}
do_build=1
rates="100 200 300 400 500 600"
conns=1000
p99_max=100

while [ $# -gt 0 ]; do
    case $1 in
    --no-build) do_build=0 ;;
    --rates)
        rates=${2:?--rates needs a list}
        shift
        ;;
    --conns)
        conns=${2:?--conns needs a number}
        shift
        ;;
    --p99-max)
        p99_max=${2:?--p99-max needs milliseconds}
        shift
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "usage: $0 [--no-build] [--rates \"R1 R2 ...\"] [--conns N] [--p99-max MS]" >&2
        exit 2
        ;;
    esac
    shift
done
command -v jq >/dev/null 2>&1 && command -v taskset >/dev/null 2>&1 || {
    echo "capacity: jq and taskset are required" >&2
    exit 2
}
[ "$(nproc)" -ge 2 ] || {
    echo "capacity: needs 2 CPUs (cluster on one, load on the other)" >&2
    exit 2
}

# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

bench_session capacity
_cl_free_port
bport=$REPLY
bench_baseline_start "$bport"

# every thread of every process of the cluster and of the baseline on CPU 0
pin() {
    local p c
    for p in "$@"; do
        taskset -a -p 0x1 "$p" >/dev/null 2>&1 || true
        for c in $(pgrep -P "$p" 2>/dev/null); do pin "$c"; done
    done
}
for f in "$cdir"/pids/*.pid; do pin "$(cat "$f")"; done
pin "$baseline_pid"
bench_log "cluster and baseline pinned to CPU 0; the load runs on CPU 1"

# warm the broker and the gateways up (not measured)
taskset -c 1 "$bin/chat-bench" fanout --url="$CHAT_TEST_GW1_URL,$CHAT_TEST_GW2_URL" \
    --room-mix=10:100 --senders=100 --rate=1000 --size=64 --duration=6 --warmup=2 --drain=5 \
    --jwt-keys="$CHAT_JWT_KEYS" --jwt-issuer="$CHAT_JWT_ISSUER" --quiet >"$out/warmup.log" 2>&1 ||
    true

# one NAME URL RATE: p50 p99 ok (ok = 1 when nothing was lost, doubled or reordered)
one() {
    local name=$1 url=$2 r=$3 rc=0
    taskset -c 1 "$bin/chat-bench" fanout --url="$url" --room-mix="$conns:1" --senders=10 \
        --rate="$r" --size=64 --duration=10 --warmup=2 --drain=10 --jwt-keys="$CHAT_JWT_KEYS" \
        --jwt-issuer="$CHAT_JWT_ISSUER" --json >"$out/$name.json" 2>"$out/$name.log" || rc=$?
    if [ "$rc" -ne 0 ] || [ ! -s "$out/$name.json" ]; then
        echo "- - 0"
        return 0
    fi
    jq -r '"\(.latency_ms.p50) \(.latency_ms.p99) \(if .correctness.ok then 1 else 0 end)"' \
        "$out/$name.json"
}

{
    echo "| msgs/s | deliveries/s | baseline p50 / p99 ms | cluster p50 / p99 ms | cluster ok |"
    echo "|---|---|---|---|---|"
} >"$out/summary.md"
capacity=0
for r in $rates; do
    bench_log "one room of $conns at $r msgs/s ($((r * conns)) deliveries/s)"
    read -r bp50 bp99 _ <<<"$(one "r$r.baseline" "http://127.0.0.1:$bport" "$r")"
    read -r cp50 cp99 cok <<<"$(one "r$r.cluster" "$CHAT_TEST_GW1_URL,$CHAT_TEST_GW2_URL" "$r")"
    echo "| $r | $((r * conns)) | $bp50 / $bp99 | $cp50 / $cp99 | $cok |" >>"$out/summary.md"
    if [ "$cok" != 1 ]; then
        echo "capacity: $r msgs/s: a failed run or a correctness error (see $out/r$r.cluster.log)" >&2
        failed=1
        break
    fi
    if ! awk -v p="$cp99" -v m="$p99_max" 'BEGIN { exit !(p < m) }'; then
        break
    fi
    capacity=$r
done
echo >>"$out/summary.md"
echo "capacity (p99 < $p99_max ms, zero loss): $capacity msgs/s = $((capacity * conns)) deliveries/s" \
    >>"$out/summary.md"
cat "$out/summary.md"
exit "$failed"
