#!/usr/bin/env bash
# bench/login_storm.sh - message fan-out on one gateway while a login storm hits the accounts
# API (issue 4: "a login storm must not stall message fan-out"; issue 10: logins are chat-api's,
# a process of their own, and the gateway hashes nothing).
#
#   bench/login_storm.sh [--no-build] [--workers LIST] [--users N] [--rate R]
#                        [--duration S] [--parallel P] [--procs K] [--threads T]
#
# 1. builds a Release tree like bench/run-all.sh (build-bench/, or $CHAT_BENCH_BUILD_DIR) unless
#    --no-build, and starts its own local cluster (scripts/lib/cluster.sh) in a temporary
#    directory with the send rate limits and the login/register attempt limits lifted;
# 2. registers N users (default 200) through chat-api api1 directly (POST /api/v1/auth/register);
# 3. for each CHAT_API_THREADS value in LIST (default 4, chat-api's default; api1 is restarted
#    with the value), runs `chat-bench fanout` against gw1 ONLY (1000 connections in one room,
#    10 senders at R msg/s, default 100 = 100k deliveries/s, 64-byte messages, S s measured):
#      quiet  - nothing else runs (the baseline);
#      storm  - the same while K `curl -Z --parallel-max P` processes (default 1 x 16) log the
#               registered users in on api1 with their correct passwords, looping, for the whole
#               chat-bench run (the storm runs 6 s alone first: the login rate without fan-out);
#    Everything runs on one machine, so the storm's hashing competes with the fan-out for the
#    CPU; in production chat-api runs on pods of its own.
# 4. prints a markdown table (also login-storm.md in bench/results/<UTC timestamp>/, with the
#    chat-bench JSON, logs and the curl status codes): delivery latency p50/p99/p99.9 and
#    deliveries/s quiet vs storm and their ratio storm / quiet, logins/s completed (HTTP 200)
#    during the chat-bench run, api1's chat_api_request_seconds over the run (from /metrics:
#    count, mean, bucket bounds of p50/p99), and the CPU of gw1 and of api1;
# 5. stops everything it started, by PID (also on Ctrl-C or failure).
#
# Takes about 1 minute per worker count, plus the build. Requirements: jq, curl >= 7.75.
# Exit status: 0 when every chat-bench run completed with zero lost, duplicated and reordered
# messages, 1 otherwise, 2 usage.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CHAT_BENCH_BUILD_DIR:-$repo/build-bench}
do_build=1
workers=4
users=200
rate=100
dur=10
par=16
procs=1
threads=1

usage() {
    echo "usage: $0 [--no-build] [--workers LIST] [--users N] [--rate R] [--duration S]" \
        "[--parallel P] [--procs K] [--threads T]" >&2
    exit 2
}
num() { # num NAME VALUE: VALUE must be a positive integer
    [[ $2 =~ ^[1-9][0-9]*$ ]] || {
        echo "login_storm: $1 must be a positive integer: '$2'" >&2
        exit 2
    }
}

while [ $# -gt 0 ]; do
    case $1 in
    --no-build) do_build=0 ;;
    --workers | --users | --rate | --duration | --parallel | --procs | --threads)
        [ $# -ge 2 ] || usage
        case $1 in
        --workers)
            [[ $2 =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || usage
            workers=$2
            ;;
        --users) num "$1" "$2" && users=$2 ;;
        --rate) num "$1" "$2" && rate=$2 ;;
        --duration) num "$1" "$2" && dur=$2 ;;
        --parallel) num "$1" "$2" && par=$2 ;;
        --procs) num "$1" "$2" && procs=$2 ;;
        --threads) num "$1" "$2" && threads=$2 ;;
        esac
        shift
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *) usage ;;
    esac
    shift
done
command -v jq >/dev/null 2>&1 || {
    echo "login_storm: jq is required (apt-get install jq)" >&2
    exit 2
}

# shellcheck source=scripts/lib/cluster.sh
. "$repo/scripts/lib/cluster.sh"
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$repo/bench/results/$stamp
mkdir -p "$out"
cdir=$(mktemp -d /tmp/chat-login-storm.XXXXXX)
storm_pids=()
failed=0

stop_storm() {
    local p
    for p in "${storm_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${storm_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    storm_pids=()
}

# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    stop_storm
    bench_cluster_done "$cdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$do_build" = 1 ]; then
    bench_build chat-gateway chat-api chat-persister chat-presence chat-kafka-dev chatctl chat-bench
fi
bin=$build/bin
bench=$bin/chat-bench

{
    bench_machine
    echo "curl: $(curl --version | head -n 1)"
} >"$out/machine.txt"

# ---------------------------------------------------------------------------------------------
cur_workers=${workers%%,*}
bench_log "starting the cluster in $cdir (CHAT_API_THREADS=$cur_workers)"
export CHAT_BIN=$bin CHAT_LOG_LEVEL=${CHAT_LOG_LEVEL:-warn}
export CHAT_RATE_PER_S=1000000 CHAT_RATE_BURST=1000000
# the load repeats one text: the spam rule (a Redis script per send) is off, like the rate limits
export CHAT_SPAM_SAME=${CHAT_SPAM_SAME:-0}
export CHAT_FRAME_RATE_PER_S=1000000 CHAT_FRAME_RATE_BURST=1000000
export CHAT_LOGIN_PER_IP=1000000 CHAT_LOGIN_FAILS_PER_NET=1000000 CHAT_LOGIN_FAILS_PER_USER=1000000 CHAT_REGISTER_PER_IP=1000000
export CHAT_API_THREADS=$cur_workers
cluster_up "$cdir"
set -a
# shellcheck disable=SC1091
. "$cdir/cluster.env"
set +a
gw1=$CHAT_TEST_GW1_URL
api1=$CHAT_TEST_API1_URL

# one curl config block per request, blocks separated by `next` (-Z runs them in parallel); the
# status code (and error) of every completed request goes to stderr, which is not buffered, so
# it can be counted while running (--no-progress-meter keeps the parallel meter out of it)
req() { # req PATH USER PASSWORD
    printf 'url = "%s%s"\n' "$api1" "$1"
    printf 'data = "{\\"username\\":\\"%s\\",\\"password\\":\\"%s\\"}"\n' "$2" "$3"
    printf 'header = "Content-Type: application/json"\n'
    printf 'output = "/dev/null"\n'
    printf 'write-out = "%%{stderr}%%{http_code} %%{errormsg}\\n"\n'
    printf 'next\n'
}
curl_par() { # curl_par PARALLEL CFG: stderr gets one "CODE [error]" line per request
    curl -s --no-progress-meter -Z --parallel-max "$1" -K "$2"
}
uname_of() { printf 'storm%04d' "$1"; }
pass_of() { printf 'Storm-pass-%04d' "$1"; }

bench_log "registering $users users on api1 ($api1)"
for i in $(seq 1 "$users"); do
    req /api/v1/auth/register "$(uname_of "$i")" "$(pass_of "$i")"
done | sed '$d' >"$out/register.cfg"
curl_par 4 "$out/register.cfg" 2>"$out/register.codes" || true
ok=$(grep -c '^201 ' "$out/register.codes" || true)
if [ "$ok" -ne "$users" ]; then
    echo "login_storm: only $ok of $users registrations answered 201:" >&2
    sort "$out/register.codes" | uniq -c >&2
    exit 1
fi
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data "{\"username\":\"$(uname_of 1)\",\"password\":\"$(pass_of 1)\"}" \
    "$api1/api/v1/auth/login")
[ "$code" = 200 ] || {
    echo "login_storm: a test login answered $code, not 200" >&2
    exit 1
}

# every curl process goes over all users twice per config (starting at a different user), then
# runs the config again until it is stopped
for k in $(seq 1 "$procs"); do
    for _ in 1 2; do
        for j in $(seq 0 $((users - 1))); do
            i=$(((j + (k - 1) * users / procs) % users + 1))
            req /api/v1/auth/login "$(uname_of "$i")" "$(pass_of "$i")"
        done
    done | sed '$d' >"$out/storm.api1.$k.cfg"
done

# storm_loop CFG CODES: curl over CFG again and again (stopped by SIGTERM, which ends curl too;
# curl is the direct child here, so that its PID is the one killed)
storm_loop() {
    local cfg=$1 codes=$2 cpid=
    trap '[ -n "$cpid" ] && kill -TERM "$cpid" 2>/dev/null; exit 0' TERM
    while :; do
        curl -s --no-progress-meter -Z --parallel-max "$par" -K "$cfg" 2>>"$codes" &
        cpid=$!
        wait "$cpid" || true
    done
}

# status codes counted so far in the current run's code files
count_codes() { # count_codes RUN: prints "ok other"
    local -a f=("$out/$1".storm-codes.*)
    [ -e "${f[0]}" ] || {
        echo "0 0"
        return 0
    }
    awk '
        $1 == "200" { ok++ ; next }
        $1 ~ /^[0-9][0-9][0-9]$/ { other++ }
        END { printf "%d %d\n", ok, other }' "${f[@]}"
}

metrics() { curl -fsS -m 5 "$api1/metrics"; } # the storm's target

# CPU ticks of a service's process (every thread): "ticks"
proc_ticks() { # proc_ticks SVC
    local pid f stat
    local -a fld
    local t=0
    pid=$(cat "$cdir/pids/$1.pid")
    for f in /proc/"$pid"/task/*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        read -r -a fld <<<"${stat##*) }"
        t=$((t + fld[11] + fld[12]))
    done
    echo "$t"
}
# "gw1_ticks api1_ticks"
gw_ticks() { echo "$(proc_ticks gw1) $(proc_ticks api1)"; }
# machine CPU ticks: "busy total"
sys_ticks() {
    awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat
}
now_ms() { date +%s%3N; }

# fanout NAME: one chat-bench run against gw1 only; JSON, log and measurements into $out
fanout() {
    local name=$1 rc=0 t0 t1 c0 c1 g0 g1 s0 s1 hz
    hz=$(getconf CLK_TCK)
    bench_log "$name: chat-bench fanout against gw1 ($gw1), $rate msg/s x 1000 receivers"
    metrics >"$out/$name.metrics.before" || true
    read -r -a c0 <<<"$(count_codes "$name")"
    read -r -a g0 <<<"$(gw_ticks)"
    read -r -a s0 <<<"$(sys_ticks)"
    t0=$(now_ms)
    "$bench" fanout --url="$gw1" --room-mix=1000:1 --senders=10 --rate="$rate" --size=64 \
        --duration="$dur" --warmup=2 --drain=10 --threads="$threads" \
        --jwt-keys="$CHAT_JWT_KEYS" --jwt-issuer="$CHAT_JWT_ISSUER" --json \
        --plot="$out/$name.png" >"$out/$name.json" 2> >(tee "$out/$name.log" >&2) || rc=$?
    t1=$(now_ms)
    read -r -a c1 <<<"$(count_codes "$name")"
    read -r -a g1 <<<"$(gw_ticks)"
    read -r -a s1 <<<"$(sys_ticks)"
    metrics >"$out/$name.metrics.after" || true
    if [ "$rc" -ne 0 ]; then
        echo "login_storm: chat-bench $name exited $rc" >&2
        failed=1
    fi
    # measurements taken around the chat-bench run (opening, warmup, measured, drain)
    jq -n --argjson ms $((t1 - t0)) --argjson ok $((c1[0] - c0[0])) \
        --argjson other $((c1[1] - c0[1])) --argjson hz "$hz" \
        --argjson loop $((g1[0] - g0[0])) --argjson wk $((g1[1] - g0[1])) \
        --argjson busy $((s1[0] - s0[0])) --argjson tot $((s1[1] - s0[1])) \
        '{ms: $ms, logins_ok: $ok, logins_other: $other, logins_per_s: ($ok * 1000 / $ms),
          gw1_cpu_pct: ($loop / $hz * 100000 / $ms),
          api1_cpu_pct: ($wk / $hz * 100000 / $ms),
          machine_busy_pct: (if $tot > 0 then $busy * 100 / $tot else 0 end)}' \
        >"$out/$name.side.json"
    if auth_summary "$name" >"$out/$name.auth.json"; then
        jq -s '.[0] + {auth: .[1]}' "$out/$name.side.json" "$out/$name.auth.json" \
            >"$out/$name.side.json.new"
        mv -f "$out/$name.side.json.new" "$out/$name.side.json"
    fi
}

# auth_summary NAME: api1's chat_api_request_seconds over the run (after - before) as JSON: count,
# mean ms, and the upper bucket bounds (ms) holding the 50th and 99th percentile
auth_summary() {
    if [ ! -s "$out/$1.metrics.before" ] || [ ! -s "$out/$1.metrics.after" ]; then
        return 1
    fi
    awk '
        function val(line) { n = split(line, a, " "); return a[n] + 0 }
        FNR == 1 { f++ }
        /^chat_api_request_seconds_bucket\{le="/ {
            le = $0; sub(/^[^"]*"/, "", le); sub(/".*/, "", le)
            if (f == 1) b0[le] = val($0); else { b1[le] = val($0); if (!(le in seen)) { seen[le] = 1; order[nb++] = le } }
        }
        /^chat_api_request_seconds_sum / { if (f == 1) s0 = val($0); else s1 = val($0) }
        /^chat_api_request_seconds_count / { if (f == 1) n0 = val($0); else n1 = val($0) }
        function q(p,   i, le, c) {
            for (i = 0; i < nb; i++) {
                le = order[i]; c = b1[le] - b0[le]
                if (c >= p * cnt) return le == "+Inf" ? "\"+Inf\"" : le * 1000
            }
            return "null"
        }
        END {
            cnt = n1 - n0
            if (cnt <= 0) { print "{\"count\":0}"; exit }
            printf "{\"count\":%d,\"mean_ms\":%.2f,\"p50_le_ms\":%s,\"p99_le_ms\":%s}\n", cnt, (s1 - s0) * 1000 / cnt, q(0.5), q(0.99)
        }' "$out/$1.metrics.before" "$out/$1.metrics.after"
}

# storm_run NAME: fan-out on gw1 while the storm hits api1
storm_run() {
    local name=$1 g=api1 k a0 a1 t0 t1 alone
    bench_log "$name: $procs curl process(es) x $par parallel logins on $g ($api1)"
    for k in $(seq 1 "$procs"); do
        storm_loop "$out/storm.$g.$k.cfg" "$out/$name.storm-codes.$k" &
        storm_pids+=($!)
    done
    # the storm alone for 5 s (after 1 s of ramp): the login rate without fan-out load
    sleep 1
    read -r -a a0 <<<"$(count_codes "$name")"
    t0=$(now_ms)
    sleep 5
    read -r -a a1 <<<"$(count_codes "$name")"
    t1=$(now_ms)
    alone=$(awk -v n=$((a1[0] - a0[0])) -v ms=$((t1 - t0)) 'BEGIN { printf "%.1f", n * 1000 / ms }')
    echo "$name: the storm alone: $alone logins/s" >&2
    fanout "$name"
    jq --argjson a "$alone" --arg g "$g" '. + {logins_alone_per_s: $a, storm_target: $g}' \
        "$out/$name.side.json" >"$out/$name.side.json.new"
    mv -f "$out/$name.side.json.new" "$out/$name.side.json"
    stop_storm
    echo "$name: statuses of all completed logins (count, status, curl error):" >&2
    cat "$out/$name.storm-codes".* | sort | uniq -c | sort -rn | head -n 10 >&2
}

runs=()
for w in ${workers//,/ }; do
    if [ "$w" != "$cur_workers" ]; then
        bench_log "restarting api1 with CHAT_API_THREADS=$w"
        cluster_stop api1 "$cdir"
        CHAT_API_THREADS=$w cluster_start api1 "$cdir"
        cur_workers=$w
    fi
    [ ${#runs[@]} -eq 0 ] || sleep 2
    fanout "w$w.quiet"
    runs+=("w$w.quiet")
    sleep 2
    storm_run "w$w.storm"
    runs+=("w$w.storm")
done

# ---------------------------------------------------------------------------------------------
summary() {
    local run q
    echo "Login storm $stamp ($(sed -n 's/^host: //p' "$out/machine.txt"); $(sed -n 's/^commit: //p' "$out/machine.txt"))"
    echo
    echo "chat-bench fanout against gw1 only: 1000 connections in one room, 10 senders, $rate msg/s" \
        "($((rate * 1000)) deliveries/s), 64 B, ${dur} s measured; storm: $procs x" \
        "\`curl -Z --parallel-max $par\` logging in $users users on chat-api api1 with correct passwords."
    echo
    echo "| api threads | run | deliv/s | p50 ms | p99 ms | p99.9 ms | max ms | logins/s (200) (storm alone) | other statuses | api1 request_seconds | CPU gw1 / api1 | machine busy | lost/dup/reord |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for run in "${runs[@]}"; do
        if [ ! -s "$out/$run.json" ] || [ ! -s "$out/$run.side.json" ]; then
            continue
        fi
        jq -r -n --arg w "${run%%.*}" --arg r "${run#*.}" --slurpfile c "$out/$run.json" \
            --slurpfile s "$out/$run.side.json" -f /dev/stdin <<'EOF'
def r(x): if x == null then "-" else ((x * 100 | round) / 100 | tostring) end;
def i(x): if x == null then "-" else (x | round | tostring) end;
$c[0] as $C | $s[0] as $S | ($S.storm_target // null) as $T |
"| \($w | ltrimstr("w")) | \($r)\(if $T then " (logins on \($T))" else "" end) | \(i($C.deliveries.per_s)) | \(r($C.latency_ms.p50)) | \(r($C.latency_ms.p99)) | \(r($C.latency_ms.p999)) | \(r($C.latency_ms.max)) | \(if $T == null then "-" else "\(r($S.logins_per_s)) (\(r($S.logins_alone_per_s)))" end) | \(if $T == null then "-" else ($S.logins_other | tostring) end) | \(if ($S.auth.count // 0) == 0 then "-" else "\($S.auth.count) req, mean \(r($S.auth.mean_ms)) ms, p50 <= \($S.auth.p50_le_ms) ms, p99 <= \($S.auth.p99_le_ms) ms" end) | \(i($S.gw1_cpu_pct))% / \(i($S.api1_cpu_pct))% | \(i($S.machine_busy_pct))% | \($C.correctness.lost) / \($C.correctness.duplicated) / \($C.correctness.reordered) |"
EOF
        q=$out/${run%%.*}.quiet.json
        if [ "$run" != "${run%%.*}.quiet" ] && [ -s "$q" ]; then
            jq -r -n --arg w "${run%%.*}" --arg r "${run#*.}" --slurpfile q "$q" \
                --slurpfile s "$out/$run.json" -f /dev/stdin <<'EOF'
def ratio(a; b): if a == null or b == null or b == 0 then "-" else "x" + ((a / b * 100 | round) / 100 | tostring) end;
$q[0] as $Q | $s[0] as $S |
"| \($w | ltrimstr("w")) | **\($r) / quiet** | \(ratio($S.deliveries.per_s; $Q.deliveries.per_s)) | \(ratio($S.latency_ms.p50; $Q.latency_ms.p50)) | \(ratio($S.latency_ms.p99; $Q.latency_ms.p99)) | \(ratio($S.latency_ms.p999; $Q.latency_ms.p999)) | \(ratio($S.latency_ms.max; $Q.latency_ms.max)) | | | | | | |"
EOF
        fi
    done
    echo
    echo "CPU gw1 / api1: percent of one core each over the whole chat-bench run (opening, warmup, measured," \
        "drain); machine busy: percent of all $(nproc) cores over the same time."
    echo "Results and logs: ${out#"$repo"/}/"
}
summary | tee "$out/login-storm.md"

# correctness: any lost, duplicated or reordered message (or a failed chat-bench run) fails
for run in "${runs[@]}"; do
    f=$out/$run.json
    if ! jq -e '.correctness.lost == 0 and .correctness.duplicated == 0 and
                .correctness.reordered == 0 and .exit == 0' "$f" >/dev/null 2>&1; then
        echo "login_storm: $(basename "$f" .json): correctness errors or failed run" >&2
        failed=1
    fi
done
exit "$failed"
