# shellcheck shell=bash
# bench/lib.sh - what the benchmark scripts (run-all.sh, capacity.sh, rooms-of-10.sh,
# login_storm.sh, soak.sh) share.
# Source after scripts/lib/cluster.sh; the caller sets repo, build and out.
#
#   bench_log TEXT...            a "==== TEXT" heading on stderr
#   bench_build TARGET...        configures and builds the Release tree $build (log in
#                                $out/build.log); exits 1 with the log tail on failure
#   bench_machine                writes date, host, cpu and commit lines to stdout (machine.txt)
#   bench_cluster_done CDIR      stops the cluster in CDIR, keeps its logs in
#                                $out/cluster-logs/ and removes CDIR
#   bench_cluster_start CDIR     starts the local cluster in CDIR (binaries from $bin) with the
#                                rate limits lifted and the spam rule off, and loads its
#                                cluster.env into the environment
#   bench_baseline_start PORT    starts chat-bench-baseline ($bin) on 127.0.0.1:PORT (log:
#                                $out/baseline.log), sets baseline_pid (and adds it to
#                                baseline_pids: several may run) and waits for its /healthz
#                                (5 s); returns 1 when it does not answer
#   bench_baseline_stop          stops every baseline started (baseline_pids) and clears both
#   bench_cleanup                the EXIT trap of the scripts: bench_baseline_stop, then
#                                bench_cluster_done $cdir
#   bench_session NAME           the common start of capacity.sh and rooms-of-10.sh: sets stamp,
#                                out (bench/results/NAME-<stamp>, made), cdir (a new
#                                /tmp/chat-bench-NAME.*), baseline_pid, failed=0 and bin; sets
#                                the EXIT (bench_cleanup) and INT/TERM traps; builds the cluster,
#                                chat-bench and the baseline unless do_build=0; writes
#                                machine.txt; starts the cluster in cdir

baseline_pids=()

bench_log() {
    printf '\n==== %s\n' "$*" >&2
}

bench_build() {
    bench_log "building $build (Release)"
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$out/build.log" 2>&1
    cmake --build "$build" -j "$(nproc)" --target "$@" >>"$out/build.log" 2>&1 || {
        tail -n 30 "$out/build.log" >&2
        exit 1
    }
}

bench_machine() {
    echo "date: $stamp"
    echo "host: $(uname -srm), $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo)"
    echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "commit: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (dirty tree)')"
}

bench_cluster_done() {
    local cdir=$1
    cluster_down "$cdir" || true
    if [ -d "$cdir/logs" ]; then
        mkdir -p "$out/cluster-logs"
        cp "$cdir"/logs/*.log "$out/cluster-logs/" 2>/dev/null || true
    fi
    rm -rf "$cdir"
}

bench_cluster_start() {
    local cdir=$1
    export CHAT_BIN=$bin CHAT_LOG_LEVEL=${CHAT_LOG_LEVEL:-warn}
    export CHAT_RATE_PER_S=1000000 CHAT_RATE_BURST=1000000
    # the load repeats one text: the spam rule (a Redis script per send) is off like the rate
    # limits; CHAT_SPAM_SAME=6 (of the default 5: never trips) measures what the script costs
    export CHAT_SPAM_SAME=${CHAT_SPAM_SAME:-0}
    export CHAT_FRAME_RATE_PER_S=1000000 CHAT_FRAME_RATE_BURST=1000000
    export CHAT_ROOMS_ADHOC=1 # the bench's rooms (b<run>-N) are made up on the fly
    cluster_up "$cdir"
    set -a
    # shellcheck disable=SC1091
    . "$cdir/cluster.env"
    set +a
}

bench_baseline_start() {
    local port=$1
    "$bin/chat-bench-baseline" --port="$port" >>"$out/baseline.log" 2>&1 &
    baseline_pid=$!
    baseline_pids+=("$baseline_pid")
    for _ in $(seq 1 100); do
        curl -fsS -m 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    curl -fsS -m 1 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1
}

bench_baseline_stop() {
    local p
    for p in "${baseline_pids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    baseline_pid=
    baseline_pids=()
}

# shellcheck disable=SC2034 # stamp, failed and baseline_pid are the caller's
bench_session() {
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    out=$repo/bench/results/$1-$stamp
    mkdir -p "$out"
    cdir=$(mktemp -d "/tmp/chat-bench-$1.XXXXXX")
    baseline_pid=
    failed=0
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    if [ "${do_build:-1}" = 1 ]; then
        bench_build chat-gateway chat-api chat-persister chat-presence chatctl chat-bench \
            chat-bench-baseline
    fi
    bin=$build/bin
    bench_machine >"$out/machine.txt"
    bench_log "starting the cluster in $cdir"
    bench_cluster_start "$cdir"
}

# shellcheck disable=SC2317 # called through the EXIT trap
bench_cleanup() {
    trap - EXIT INT TERM
    bench_baseline_stop
    bench_cluster_done "$cdir"
}
