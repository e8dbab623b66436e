#!/usr/bin/env bash
# bench/rooms-of-10.sh - many small rooms at the size issue 12 (goal 1) names: rooms of 10 over as
# many connections as the file limits allow, the full pipeline (Kafka, persister, PostgreSQL).
#
#   bench/rooms-of-10.sh [--no-build] [--rates "R1 R2 ..."] [--procs N] [--rooms N]
#                        [--p99-max MS] [--duration S] [--baseline-only]
#
# One process holds at most ~19,000 sockets here (the file limit, 20,000), a chat-bench as much
# as a gateway. So N chat-bench processes (--procs, default 2) each open --rooms rooms of 10
# (default 1,900: 2 x 19,000 = 38,000 connections in 3,800 rooms, about 19,000 on each gateway,
# spread over both) with one sender per room, and start their load together (--start-at). Each
# rate R (messages/s over all processes; R x 10 deliveries/s) runs twice in the same cluster
# session: against N chat-bench-baseline servers (plain epoll broadcast, no Kafka; one per
# process) and against the two gateways directly. Rates go up until the cluster's p99 (the
# worst process's) is over --p99-max (default 50 ms) or a run loses, doubles or reorders
# anything. --baseline-only runs the baseline alone (the cluster stays up, idle), rates going up
# until the baseline's p99 is over --p99-max or a run at a higher rate than the first fails:
# what this machine and load generator can do at all.
#
# Prints a markdown table (rate, deliveries/s, p50/p99 of both sides, the CPU per message of the
# broker, each gateway, persister + PostgreSQL, all services and the load generators) and writes
# it, with each run's JSON and log, to bench/results/rooms10-<UTC timestamp>/. The capacity is
# the last rate whose p99 stayed under --p99-max with zero loss. Exit status: 0 when the runs
# completed, 1 on a correctness error or a failed run (the first rate's, with --baseline-only),
# 2 usage.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CHAT_BENCH_BUILD_DIR:-$repo/build-bench}
do_build=1
rates="1000 2000 4000 6000 8000"
procs=2
rooms=1900
p99_max=50
dur=10
baseline_only=0

usage() {
    echo "usage: $0 [--no-build] [--rates \"R1 R2 ...\"] [--procs N] [--rooms N] [--p99-max MS]" \
        "[--duration S] [--baseline-only]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --no-build) do_build=0 ;;
    --rates) rates=${2:?} && shift ;;
    --procs) procs=${2:?} && shift ;;
    --rooms) rooms=${2:?} && shift ;;
    --p99-max) p99_max=${2:?} && shift ;;
    --duration) dur=${2:?} && shift ;;
    --baseline-only) baseline_only=1 ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) usage ;;
    esac
    shift
done
[[ $procs =~ ^[1-9][0-9]?$ && $rooms =~ ^[1-9][0-9]*$ && $dur =~ ^[1-9][0-9]*$ ]] || usage
for r in $rates; do
    [[ $r =~ ^[1-9][0-9]*$ && $r -ge $procs ]] || usage
done
command -v jq >/dev/null 2>&1 || {
    echo "rooms-of-10: jq is required" >&2
    exit 2
}
# chat-bench raises its soft file limit to the hard one
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge $((rooms * 10 + 200)) ] || {
    echo "rooms-of-10: $((rooms * 10)) connections per process need a file limit over" \
        "$((rooms * 10 + 200)) (ulimit -Hn is $hard): fewer --rooms" >&2
    exit 2
}

# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

bench_session rooms10
base_urls=()
for i in $(seq 1 "$procs"); do
    _cl_free_port
    port=$REPLY
    bench_baseline_start "$port"
    base_urls+=("http://127.0.0.1:$port")
done

if [ "$baseline_only" = 0 ]; then
    bench_log "warming up the broker and the gateways (not measured)"
    "$bin/chat-bench" fanout --url="$CHAT_TEST_GW1_URL,$CHAT_TEST_GW2_URL" --room-mix=10:100 \
        --senders=100 --rate=2000 --size=64 --duration=8 --warmup=2 --drain=5 \
        --jwt-keys="$CHAT_JWT_KEYS" --jwt-issuer="$CHAT_JWT_ISSUER" --quiet >"$out/warmup.log" \
        2>&1 || true
fi

# The cluster's processes, NAME=PID (PostgreSQL: the postmaster, whose children are summed).
{
    for f in "$cdir"/pids/*.pid; do echo "$(basename "$f" .pid)=$(cat "$f")"; done
} >"$out/pids.txt"
# ticks NAME: CPU ticks (user + system) of that process, with its children for postgres
ticks() {
    local pid p t=0
    pid=$(sed -n "s/^$1=//p" "$out/pids.txt")
    [ -n "$pid" ] || {
        echo 0
        return
    }
    for p in "$pid" $([ "$1" = postgres ] && pgrep -P "$pid"); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
services=(kafka gw1 gw2 persister postgres redis presence api1 api2 nginx)
# snapshot: "NAME TICKS" of every service and of the baseline servers ("baseline", summed)
snapshot() {
    local s p t=0
    for s in "${services[@]}"; do echo "$s $(ticks "$s")"; done
    for p in "${baseline_pids[@]}"; do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "baseline $t"
}
# sleep_until EPOCH_S
sleep_until() {
    local d
    d=$(awk -v t="$1" -v now="$(date +%s.%N)" 'BEGIN { d = t - now; printf "%.3f", (d > 0 ? d : 0) }')
    sleep "$d"
}

# side NAME TARGET(baseline|cluster) RATE: runs the processes together; "p50 p99 ok" (the worst
# p50 and p99 of the processes; ok = 1 when every one completed with nothing lost, doubled or
# reordered, and had joined all its connections before the common start)
side() {
    local name=$1 tgt=$2 r=$3 per pids=() i url start launched rc=0 ok=1
    per=$((r / procs))
    launched=$(date +%s)
    start=$((launched + rooms * 10 / 600 + 15)) # every process has joined by then
    for i in $(seq 0 $((procs - 1))); do
        if [ "$tgt" = baseline ]; then
            url=${base_urls[$i]}
        elif [ $((i % 2)) = 0 ]; then # senders sit on a process's first target
            url=$CHAT_TEST_GW1_URL,$CHAT_TEST_GW2_URL
        else
            url=$CHAT_TEST_GW2_URL,$CHAT_TEST_GW1_URL
        fi
        "$bin/chat-bench" fanout --url="$url" --room-mix="10:$rooms" --senders="$rooms" \
            --rate="$per" --size=64 --duration="$dur" --warmup=3 --drain=10 --opening=128 \
            --start-at="$start" --jwt-keys="$CHAT_JWT_KEYS" --jwt-issuer="$CHAT_JWT_ISSUER" \
            --json --quiet >"$out/$name.$i.json" 2>"$out/$name.$i.log" &
        pids+=($!)
    done
    ( # the servers' CPU over the measured window (the load generators report their own)
        sleep_until $((start + 3))
        snapshot >"$out/$name.cpu0"
        sleep_until $((start + 3 + dur))
        snapshot >"$out/$name.cpu1"
    ) &
    pids+=($!)
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || rc=$?
        [ "$rc" = 0 ] || ok=0
    done
    for i in $(seq 0 $((procs - 1))); do [ -s "$out/$name.$i.json" ] || ok=0; done
    if [ "$ok" = 0 ]; then
        echo "- - 0"
        return 0
    fi
    # a process still opening at the start loaded alone for a while: not a fair run
    if jq -e --argjson left $((start - launched)) 'select(.timing.open_s >= $left)' \
        "$out/$name".*.json >/dev/null; then
        echo "rooms-of-10: $name: a process joined after the common start (raise the margin)" >&2
        echo "- - 0"
        return 0
    fi
    jq -rs '"\(map(.latency_ms.p50) | max) \(map(.latency_ms.p99) | max) 1"' "$out/$name".*.json
}

{
    if [ "$baseline_only" = 1 ]; then
        echo "| msgs/s | deliveries/s | baseline p50 / p99 ms | baseline servers | load generators" \
            "(µs of CPU per message) |"
        echo "|---|---|---|---|---|"
    else
        echo "| msgs/s | deliveries/s | baseline p50 / p99 ms | cluster p50 / p99 ms | ok |" \
            "broker | gw1 | gw2 | persister + PostgreSQL | all | load generators (µs of CPU" \
            "per message) |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|"
    fi
} >"$out/summary.md"
capacity=0
hz=$(getconf CLK_TCK)
# cpu RUN NAME...: µs of CPU per message of NAME... (services, "baseline") over RUN's measured
# window
cpu() {
    local f=$out/$1
    shift
    [ -s "$f.cpu0" ] && [ -s "$f.cpu1" ] || {
        echo -
        return
    }
    awk -v names="$*" -v msgs=$((r / procs * procs * dur)) -v hz="$hz" '
        BEGIN { n = split(names, want, " "); for (i = 1; i <= n; i++) w[want[i]] = 1 }
        FNR == NR { a[$1] = $2; next }
        ($1 in w) { t += $2 - a[$1] }
        END { printf "%d", t * 1000000 / hz / msgs }' "$f.cpu0" "$f.cpu1"
}
# gen_cpu RUN: µs of CPU per message of RUN's load generators (their timing.window_cpu_s; "-"
# unless every process reported it)
gen_cpu() {
    jq -rs --argjson msgs $((r / procs * procs * dur)) --argjson n "$procs" \
        'map(.timing.window_cpu_s // 0) | if length == $n and all(. > 0)
         then add * 1000000 / $msgs | floor else "-" end' "$out/$1".*.json 2>/dev/null || echo -
}
for r in $rates; do
    bench_log "$((procs * rooms)) rooms of 10 in $procs processes at $r msgs/s: the baseline"
    read -r bp50 bp99 bok <<<"$(side "r$r.baseline" baseline "$r")"
    if [ "$bok" != 1 ] && [ "$baseline_only" = 1 ] && [ "$r" != "${rates%% *}" ]; then
        # past the machine's limit: the climb ends (a first rate that fails is a failed run)
        echo "| $((r / procs * procs)) | $((r / procs * procs * 10)) | lost, doubled or late" \
            "(r$r.baseline.*.log) | - | - |" >>"$out/summary.md"
        break
    elif [ "$bok" != 1 ]; then
        echo "rooms-of-10: $r msgs/s: the baseline's run failed (see $out/r$r.baseline.*.log)" >&2
        failed=1
        break
    fi
    if [ "$baseline_only" = 1 ]; then
        echo "| $((r / procs * procs)) | $((r / procs * procs * 10)) | $bp50 / $bp99 |" \
            "$(cpu "r$r.baseline" baseline) | $(gen_cpu "r$r.baseline") |" >>"$out/summary.md"
        awk -v p="$bp99" -v m="$p99_max" 'BEGIN { exit !(p < m) }' || break
        capacity=$r
        continue
    fi
    bench_log "the same against both gateways"
    read -r cp50 cp99 cok <<<"$(side "r$r.cluster" cluster "$r")"
    c=r$r.cluster
    echo "| $((r / procs * procs)) | $((r / procs * procs * 10)) | $bp50 / $bp99 | $cp50 / $cp99 | $cok |" \
        "$(cpu "$c" kafka) | $(cpu "$c" gw1) | $(cpu "$c" gw2) | $(cpu "$c" persister postgres) |" \
        "$(cpu "$c" "${services[@]}") | $(gen_cpu "r$r.baseline") / $(gen_cpu "$c") |" \
        >>"$out/summary.md"
    if [ "$cok" != 1 ]; then
        echo "rooms-of-10: $r msgs/s: a failed run or a correctness error (see $out/r$r.cluster.*.log)" >&2
        failed=1
        break
    fi
    if ! awk -v p="$cp99" -v m="$p99_max" 'BEGIN { exit !(p < m) }'; then
        break
    fi
    capacity=$r
done
{
    echo
    echo "capacity$([ "$baseline_only" = 0 ] || echo " of the baseline") (p99 < $p99_max ms," \
        "zero loss): $capacity msgs/s = $((capacity * 10))" \
        "deliveries/s in $((procs * rooms)) rooms of 10 ($((procs * rooms * 10)) connections)"
    echo "CPU: user + system of each process over the measured window, per message sent in it"
} >>"$out/summary.md"
cat "$out/summary.md"
exit "$failed"
