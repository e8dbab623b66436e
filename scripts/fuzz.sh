#!/usr/bin/env bash
# scripts/fuzz.sh - builds the libFuzzer targets of tests/fuzz with clang-14 (ASan + UBSan +
# LeakSanitizer) in their own build tree and runs each one for a bounded time.
#
#   scripts/fuzz.sh [--time SECONDS] [--no-build] [TARGET...]
#
#   TARGET      frame rest jwt kafka (default: all four, one after the other)
#   --time S    fuzzing time per target in seconds (default CHAT_FUZZ_TIME or 300)
#   --no-build  run the binaries already built
#
# Seeds: tests/data/fuzz/TARGET/ plus the malformed inputs of tests/data (bad/, bad_auth_body/)
# and proto/examples; they are only read. What the fuzzer finds goes to the scratch corpus
# BUILD/corpus/TARGET/ (kept between runs, never in the repository); crash, leak, timeout and
# OOM reproducers go to BUILD/artifacts/TARGET/. Each run uses a random -seed, printed so that a
# run can be repeated on the same corpus (CHAT_FUZZ_SEED fixes it).
# Environment: CHAT_FUZZ_BUILD_DIR (default <repo>/build-fuzz), CHAT_FUZZ_TIME,
# CHAT_FUZZ_SEED, CHAT_FUZZ_RSS_MB (per-process RSS limit, default 2048),
# CHAT_FUZZ_TIMEOUT (seconds one input may take, default 10).
# Exit status: 0 when every target ran clean; 1 on any crash, leak, sanitizer report, timeout or
# broken invariant (the reproducer's path and the command to replay it are printed); 2 usage.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CHAT_FUZZ_BUILD_DIR:-$repo/build-fuzz}
secs=${CHAT_FUZZ_TIME:-300}
rss_mb=${CHAT_FUZZ_RSS_MB:-2048}
unit_timeout=${CHAT_FUZZ_TIMEOUT:-10}
all_targets=(frame rest jwt kafka)
targets=()
do_build=1
cc=clang-14

usage() {
    echo "usage: $0 [--time SECONDS] [--no-build] [${all_targets[*]}]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --time)
        [ $# -ge 2 ] || usage
        secs=$2
        shift 2
        ;;
    --no-build)
        do_build=0
        shift
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    frame | rest | jwt | kafka)
        targets+=("$1")
        shift
        ;;
    *) usage ;;
    esac
done
[[ $secs =~ ^[1-9][0-9]*$ ]] || {
    echo "fuzz: --time wants a positive number of seconds, not '$secs'" >&2
    exit 2
}
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# seed directories (read-only) and the longest input, per target
seeds_of() {
    case $1 in
    frame) echo "$repo/tests/data/fuzz/frame $repo/tests/data/bad $repo/proto/examples" ;;
    rest) echo "$repo/tests/data/fuzz/rest $repo/tests/data/bad_auth_body $repo/tests/data/bad" ;;
    jwt) echo "$repo/tests/data/fuzz/jwt" ;;
    kafka) echo "$repo/tests/data/fuzz/kafka $repo/proto/examples" ;;
    esac
}
max_len_of() {
    case $1 in
    jwt) echo 4608 ;; # CHAT_JWT_MAX_TOKEN (4096) and a little beyond
    rest) echo 4096 ;; # a few CHAT_AUTH_FIELD_MAX (1024) fields
    *) echo 8192 ;;    # the default CHAT_MAX_FRAME
    esac
}

if [ "$do_build" -eq 1 ]; then
    command -v "$cc" >/dev/null 2>&1 || {
        echo "fuzz: $cc not found: run scripts/deps.sh (clang-14 libclang-rt-14-dev)" >&2
        exit 1
    }
    cmake -S "$repo" -B "$build" -DCHAT_FUZZ=ON -DCHAT_WERROR=ON -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
fi

export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:print_summary=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:report_error_type=1

failed=()
for t in "${targets[@]}"; do
    bin=$build/bin/fuzz_$t
    corpus=$build/corpus/$t
    artifacts=$build/artifacts/$t
    log=$build/logs/fuzz_$t.log
    seed=${CHAT_FUZZ_SEED:-$(((RANDOM << 15 | RANDOM) + 1))}
    [ -x "$bin" ] || {
        echo "fuzz: $bin missing (build without --no-build)" >&2
        exit 1
    }
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    # shellcheck disable=SC2046 # the seed directories are split on purpose
    cmd=("$bin" -max_total_time="$secs" -max_len="$(max_len_of "$t")" -timeout="$unit_timeout"
        -rss_limit_mb="$rss_mb" -seed="$seed" -dict="$repo/tests/fuzz/json.dict"
        -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" $(seeds_of "$t"))
    echo "fuzz_$t: ${secs}s, seed $seed, corpus $corpus, log $log"
    rc=0
    # the outer timeout only guards against a hung process: libFuzzer stops itself
    timeout -k 10 $((secs + 120)) "${cmd[@]}" >"$log" 2>&1 || rc=$?
    reports=$(grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz invariant failed' "$log" || true)
    if [ "$rc" -ne 0 ] || [ "$reports" -ne 0 ]; then
        echo "fuzz_$t: FAILED (exit $rc); the report:"
        grep -E -A30 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|fuzz invariant failed' "$log" | head -50 || tail -40 "$log"
        repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [ -n "$repro" ]; then
            echo "fuzz_$t: reproducer: $repro"
            # slow unwinding gives full allocation stacks through uninstrumented jansson/libjwt
            echo "fuzz_$t: replay with: ASAN_OPTIONS=fast_unwind_on_malloc=0 $bin $repro"
        fi
        echo "fuzz_$t: full log: $log"
        failed+=("$t")
        continue
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || true)
    echo "fuzz_$t: ok: ${execs:-?} execs (${rate:-?}/s), ${last:-no stats}, peak RSS ${rss:-?} MB"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} target(s) clean"
