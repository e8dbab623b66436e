#!/usr/bin/env bash
# bench/soak.sh - a long steady load on the whole local cluster (not part of the test run).
#
#   bench/soak.sh [--minutes N] [--rate R] [--churn C] [--no-build]
#
# Starts the local cluster (scripts/lib/cluster.sh: PostgreSQL, Redis, the Kafka broker,
# persister, presence, two gateways, nginx; Release build in build-bench/ or
# $CHAT_BENCH_BUILD_DIR; its data in /dev/shm, or $CHAT_SOAK_TMP) and runs two chat-bench processes for N minutes (default 30) at once:
#   fanout  2000 connections in 200 rooms of 10 over both gateways, 200 senders, R msgs/s in
#           total (default 500), 64-byte messages, 30 s of warm-up (the broker's JIT), then
#           latency measured per minute (--window=60)
#   churn   C connect + authenticate + join + leave + close cycles per second through nginx
#           (default 50)
# while it samples the RSS of every service once a minute. Then it waits until PostgreSQL holds
# every acknowledged message and checks:
#   - p99 send->receipt of every minute <= 2x that of the first minute (CHAT_SOAK_P99_FACTOR)
#   - zero lost, duplicated or reordered deliveries; no failed churn cycle
#   - rows in `messages` = messages acknowledged
#   - memory flat: every service's private memory (RssAnon of the process and its children:
#     heaps, not PostgreSQL's shared buffers or the page cache, which fill up by design) at the
#     end <= 1.1 x its size at the end of minute 2 + 8 MiB (the first two minutes warm caches,
#     pools and the broker's JIT; its heap is pre-touched, so its RSS is flat by design and this
#     catches native and metaspace growth); every service still running at the end
# Results in bench/results/soak-<UTC timestamp>/: fanout.json, churn.json, rss.tsv (minute,
# service, RSS KiB, private KiB), summary.md (also printed). Stops everything it started, also on Ctrl-C.
# Exit status: 0 every check passed, 1 a check failed, 2 usage.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CHAT_BENCH_BUILD_DIR:-$repo/build-bench}
minutes=30
rate=500
churn=50
do_build=1
factor=${CHAT_SOAK_P99_FACTOR:-2}

while [ $# -gt 0 ]; do
    case $1 in
    --minutes | --rate | --churn)
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || {
            echo "soak: $1 needs a positive number" >&2
            exit 2
        }
        case $1 in
        --minutes) minutes=$2 ;;
        --rate) rate=$2 ;;
        --churn) churn=$2 ;;
        esac
        shift
        ;;
    --no-build) do_build=0 ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "usage: $0 [--minutes N] [--rate R] [--churn C] [--no-build]" >&2
        exit 2
        ;;
    esac
    shift
done
[ "$minutes" -ge 3 ] || {
    echo "soak: --minutes must be at least 3 (RSS is compared from minute 2 on)" >&2
    exit 2
}
command -v jq >/dev/null 2>&1 || {
    echo "soak: jq is required (apt-get install jq)" >&2
    exit 2
}

# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$repo/bench/results/soak-$stamp
mkdir -p "$out"
# The cluster's data (PostgreSQL, the broker's log) in memory when /dev/shm is there: on these
# shared machines the disk stalls now and then (a first run saw 50% I/O wait and p99 x10 for
# three minutes during a PostgreSQL checkpoint), which is the disk, not chatcluster.
# CHAT_SOAK_TMP chooses another place.
soak_tmp=${CHAT_SOAK_TMP:-/tmp}
[ -z "${CHAT_SOAK_TMP:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && soak_tmp=/dev/shm
cdir=$(mktemp -d "$soak_tmp/chat-soak.XXXXXX")
pids=()

# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    bench_cluster_done "$cdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$do_build" = 1 ]; then
    bench_build chat-gateway chat-api chat-persister chat-presence chatctl chat-bench
fi
bin=$build/bin
{
    bench_machine
    echo "load: $minutes min, fanout $rate msgs/s over 200 rooms of 10 (both gateways), churn $churn cycles/s (nginx); data in $soak_tmp"
} >"$out/machine.txt"

bench_log "starting the cluster in $cdir"
export CHAT_BIN=$bin CHAT_LOG_LEVEL=${CHAT_LOG_LEVEL:-warn}
export CHAT_RATE_PER_S=1000000 CHAT_RATE_BURST=1000000
# the load repeats one text: the spam rule (a Redis script per send) is off, like the rate limits
export CHAT_SPAM_SAME=${CHAT_SPAM_SAME:-0}
export CHAT_FRAME_RATE_PER_S=1000000 CHAT_FRAME_RATE_BURST=1000000
cluster_up "$cdir"
set -a
# shellcheck disable=SC1091
. "$cdir/cluster.env"
set +a

services="postgres redis kafka persister presence api1 api2 gw1 gw2 nginx"
# _status_kib PID FIELD: a /proc/PID/status field in KiB (empty when the process is gone).
_status_kib() {
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || true
}

# rss_sample MINUTE: one line per service: the main process's RSS, and the private anonymous
# memory (RssAnon: heaps, not files or shared memory) of it and its direct children (postgres
# backends, nginx workers) -- what a leak grows. PostgreSQL's shared buffers and the page cache
# are shared memory and files: they fill up as data arrives, which is not a leak. An empty
# value: the service is gone.
rss_sample() {
    local m=$1 svc pid kid rss anon a
    for svc in $services; do
        pid=$(_cl_pid_live "$svc" "$cdir")
        rss= anon=
        if [ -n "$pid" ]; then
            rss=$(_status_kib "$pid" VmRSS)
            anon=$(_status_kib "$pid" RssAnon)
            for kid in $(_cl_children "$pid"); do
                a=$(_status_kib "$kid" RssAnon)
                anon=$((${anon:-0} + ${a:-0}))
            done
        fi
        printf '%s\t%s\t%s\t%s\n' "$m" "$svc" "$rss" "$anon"
    done >>"$out/rss.tsv"
}

secs=$((minutes * 60))
common=(--jwt-keys="$CHAT_JWT_KEYS" --jwt-issuer="$CHAT_JWT_ISSUER" --json --drain=20)
bench_log "fanout: $rate msgs/s, 200 rooms of 10, both gateways, $minutes min"
"$bin/chat-bench" fanout --url="$CHAT_TEST_GW1_URL,$CHAT_TEST_GW2_URL" --conns=2000 --rooms=200 \
    --senders=200 --rate="$rate" --size=64 --warmup=30 --duration="$secs" --window=60 \
    "${common[@]}" >"$out/fanout.json" 2>"$out/fanout.log" &
fanout_pid=$!
pids+=("$fanout_pid")
bench_log "churn: $churn cycles/s through nginx"
"$bin/chat-bench" churn --url="$CHAT_TEST_LB_URL" --rate="$churn" --conns=200 --rooms=200 \
    --duration="$((secs + 30))" "${common[@]}" >"$out/churn.json" 2>"$out/churn.log" &
churn_pid=$!
pids+=("$churn_pid")

printf 'minute\tservice\trss_kib\tanon_kib\n' >"$out/rss.tsv"
rss_sample 0
for ((m = 1; m <= minutes; m++)); do
    sleep 60 &
    wait $! || true
    rss_sample "$m"
    grep '^\[window' "$out/fanout.log" | tail -n 1 >&2 || true
done
rc_fanout=0
rc_churn=0
wait "$fanout_pid" || rc_fanout=$?
wait "$churn_pid" || rc_churn=$?
pids=()

acked=$(jq -e '.sends.acked' "$out/fanout.json" 2>/dev/null) || acked=unknown
rows=0
for _ in $(seq 1 120); do # the persister commits within its batch interval; allow a minute
    rows=$(psql -X -qtA "$CHAT_TEST_PG_DSN" -c 'SELECT count(*) FROM messages' 2>/dev/null || echo 0)
    [ "$rows" = "$acked" ] && break
    sleep 0.5
done

fail=0
check() { # check OK|FAIL TEXT
    printf -- '- %s: %s\n' "$1" "$2" >>"$out/checks.md"
    [ "$1" = OK ] || fail=1
}
: >"$out/checks.md"
# jqs FILTER FILE: jq -r, or "(no result)" when the file is missing or not JSON (a crashed bench)
jqs() {
    jq -r "$1" "$2" 2>/dev/null || echo "(no result)"
}
[ "$rc_fanout" -eq 0 ] && c=OK || c=FAIL
check "$c" "fanout exit $rc_fanout; $(jqs '"lost \(.correctness.lost) duplicated \(.correctness.duplicated) reordered \(.correctness.reordered); sends \(.sends.sent) acked \(.sends.acked) refused \(.sends.refused) errors \(.sends.errors)"' "$out/fanout.json")"
[ "$rc_churn" -eq 0 ] && [ "$(jqs '.cycles.failed' "$out/churn.json")" = 0 ] && c=OK || c=FAIL
check "$c" "churn exit $rc_churn; $(jqs '"cycles \(.cycles.completed) failed \(.cycles.failed), \(.cycles.per_s) /s"' "$out/churn.json")"
[ "$rows" = "$acked" ] && c=OK || c=FAIL
check "$c" "rows in messages $rows, messages acked $acked"
status=$(cluster_status "$cdir" 2>&1) && c=OK || c=FAIL
check "$c" "every service still running: $(printf '%s' "$status" | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $3}')"
p99_verdict=$(jq -r --argjson f "$factor" '.windows as $w |
    if ($w | length) == 0 then "FAIL no windows"
    else ($w[0].p99_ms) as $first | ([$w[].p99_ms] | max) as $worst |
        (if $worst <= $f * $first then "OK" else "FAIL" end) +
        " p99 per minute: first \($first) ms, worst \($worst) ms (limit \($f)x), last \($w[-1].p99_ms) ms, \($w | length) minutes"
    end' "$out/fanout.json" 2>/dev/null) || p99_verdict="(no result)"
[ "$p99_verdict" = "(no result)" ] && p99_verdict="FAIL no fanout result"
check "${p99_verdict%% *}" "${p99_verdict#* }"
rss_verdict=$(awk -F'\t' -v last="$minutes" '
    NR > 1 && $1 == 2 { base[$2] = $4; rss2[$2] = $3 }
    NR > 1 && $1 == last { end[$2] = $4; rssl[$2] = $3 }
    END {
        bad = 0; s = ""
        for (k in base) {
            lim = base[k] * 1.1 + 8192
            s = s sprintf(" %s %.1f->%.1f MiB (RSS %.0f->%.0f);", k, base[k] / 1024, end[k] / 1024,
                          rss2[k] / 1024, rssl[k] / 1024)
            if (base[k] == "" || end[k] == "") { bad = 1; s = s " (gone)" }
            else if (end[k] > lim) { bad = 1; s = s " (grew)" }
        }
        print (bad ? "FAIL" : "OK") " private memory (RssAnon of each service and its children), minute 2 -> " last ":" s
    }' "$out/rss.tsv")
check "${rss_verdict%% *}" "${rss_verdict#* }"

{
    echo "Soak $stamp ($(sed -n 's/^host: //p' "$out/machine.txt"); $(sed -n 's/^commit: //p' "$out/machine.txt"))"
    echo "$(sed -n 's/^load: //p' "$out/machine.txt")"
    echo
    echo "| minute | deliveries | acked/s | p50 ms | p99 ms | p99.9 ms | max ms |"
    echo "|-------:|-----------:|--------:|-------:|-------:|---------:|-------:|"
    jq -r '.windows | to_entries[] | "| \(.key + 1) | \(.value.count) | \(.value.acked_per_s | round) | \(.value.p50_ms) | \(.value.p99_ms) | \(.value.p999_ms) | \(.value.max_ms) |"' "$out/fanout.json"
    echo
    cat "$out/checks.md"
    echo
    echo "Results and logs: ${out#"$repo"/}/"
} | tee "$out/summary.md"
exit "$fail"
