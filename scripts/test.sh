#!/usr/bin/env bash
# scripts/test.sh - the test command (CI runs exactly this: .ci/run).
#
# 1. installs missing packages (scripts/deps.sh)
# 2. configures and builds build/ with -DCHAT_WERROR=ON and runs every ctest test
#    (unit tests in parallel, then the rest - integration tests - one at a time)
# 3. the same in build-asan/ with ASan + UBSan (-DCHAT_SANITIZE=address,undefined,
#    -DCHAT_TEST_TIMEOUT_MULT=3); any sanitizer report fails the run, including reports in the
#    logs of the services the integration tests started
# 4. the libFuzzer targets (scripts/fuzz.sh, clang-14, ASan + UBSan + LeakSanitizer) in
#    build-fuzz/ for CHAT_FUZZ_TEST_TIME seconds each (default 15; 4 targets)
# 5. the unit tests in build-tsan/ under ThreadSanitizer
#
#   --quick   skip steps 3-5
# Environment: CHAT_BUILD_DIR (default <repo>/build), CHAT_ASAN_BUILD_DIR (default
# <repo>/build-asan), CHAT_TEST_JOBS (parallel unit tests, default nproc).
# Prints the elapsed time of every phase; exits non-zero on the first failure.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CHAT_BUILD_DIR:-$repo/build}
asan_build=${CHAT_ASAN_BUILD_DIR:-$repo/build-asan}
jobs=${CHAT_TEST_JOBS:-$(nproc)}
quick=0

for a in "$@"; do
    case $a in
    --quick) quick=1 ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "usage: $0 [--quick]" >&2
        exit 2
        ;;
    esac
done

summary=()
t_all=$(date +%s%N)

fmt_ms() {
    printf '%d.%03d s' $(($1 / 1000)) $(($1 % 1000))
}

print_summary() {
    local s ms
    ms=$((($(date +%s%N) - t_all) / 1000000))
    echo
    echo "==== summary"
    for s in "${summary[@]}"; do
        echo "  $s"
    done
    printf '  %-28s %12s\n' total "$(fmt_ms "$ms")"
}

# phase NAME CMD...: runs CMD, prints and records its elapsed time; exits on failure.
phase() {
    local name=$1 t0 ms rc=0 res=ok
    shift
    echo
    echo "==== $name"
    t0=$(date +%s%N)
    "$@" || rc=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$rc" -eq 0 ] || res="FAILED (exit $rc)"
    summary+=("$(printf '%-28s %12s  %s' "$name" "$(fmt_ms "$ms")" "$res")")
    echo "==== $name: $(fmt_ms "$ms") $res"
    if [ "$rc" -ne 0 ]; then
        print_summary
        exit "$rc"
    fi
}

# run_ctest BUILD_DIR: unit tests in parallel, then everything else one at a time.
run_ctest() {
    local dir=$1
    (
        export CHAT_BIN=$dir/bin # integration fixtures start this build's binaries
        cd "$dir"
        # both must pass: the subshell's status would otherwise be the last command's only
        ctest --output-on-failure --no-tests=ignore -j "$jobs" -L '^unit$' || exit 1
        ctest --output-on-failure --no-tests=ignore -LE '^unit$' || exit 1
    )
}

# sanitizer_logs BUILD_DIR: the services of the integration cluster (gateways, persister,
# presence, extra gateways of it.limits) log to it-cluster/logs; a report there fails the run.
sanitizer_logs() {
    local logs=$1/it-cluster/logs hits
    [ -d "$logs" ] || return 0
    hits=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$logs"/*.log || true)
    if [ -n "$hits" ]; then
        echo "sanitizer reports in service logs:"
        for f in $hits; do
            echo "---- $f"
            grep -E -A30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | head -60
        done
        return 1
    fi
}

phase "deps" "$repo/scripts/deps.sh"
phase "configure $(basename "$build")/" cmake -S "$repo" -B "$build" -DCHAT_WERROR=ON
phase "build $(basename "$build")/" cmake --build "$build" -j "$(nproc)"
phase "ctest $(basename "$build")/" run_ctest "$build"

if [ "$quick" -eq 0 ]; then
    ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1
    ASAN_OPTIONS=$ASAN_OPTIONS:detect_stack_use_after_return=1:check_initialization_order=1
    export ASAN_OPTIONS=$ASAN_OPTIONS:strict_init_order=1:print_summary=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:report_error_type=1
    export CHAT_TEST_TIMEOUT_MULT=3
    phase "configure $(basename "$asan_build")/" cmake -S "$repo" -B "$asan_build" -DCHAT_WERROR=ON \
        -DCHAT_SANITIZE=address,undefined -DCHAT_TEST_TIMEOUT_MULT=3
    phase "build $(basename "$asan_build")/" cmake --build "$asan_build" -j "$(nproc)"
    phase "ctest $(basename "$asan_build")/" run_ctest "$asan_build"
    phase "service logs clean" sanitizer_logs "$asan_build"

    # fuzzing: every decoder of untrusted bytes, a short bounded run (scripts/fuzz.sh for longer)
    fuzz_secs=${CHAT_FUZZ_TEST_TIME:-15}
    phase "fuzz build-fuzz/ (${fuzz_secs} s each)" "$repo/scripts/fuzz.sh" --time "$fuzz_secs"

    # ThreadSanitizer: the unit tests (the threaded parts of libchat: httpd, metrics). The
    # services themselves cannot run under TSan here: Debian's uninstrumented librdkafka crashes
    # in its own threads under the TSan runtime.
    tsan_build=${CHAT_TSAN_BUILD_DIR:-$repo/build-tsan}
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    phase "configure $(basename "$tsan_build")/" cmake -S "$repo" -B "$tsan_build" -DCHAT_WERROR=ON \
        -DCHAT_SANITIZE=thread -DCHAT_TEST_TIMEOUT_MULT=3
    phase "build $(basename "$tsan_build")/" cmake --build "$tsan_build" -j "$(nproc)"
    phase "ctest $(basename "$tsan_build")/ (unit)" sh -c "cd '$tsan_build' && ctest --output-on-failure -j '$jobs' -L '^unit\$'"
fi

print_summary
echo
if [ "$quick" -eq 1 ]; then
    echo "all tests passed (--quick: sanitizer, fuzz and TSan passes skipped)"
else
    echo "all tests passed"
fi
