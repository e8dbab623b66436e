# shellcheck shell=bash
# bench/lib.sh - what the benchmark scripts (run-all.sh, login_storm.sh, soak.sh) share.
# Source after scripts/lib/cluster.sh; the caller sets repo, build and out.
#
#   bench_log TEXT...            a "==== TEXT" heading on stderr
#   bench_build TARGET...        configures and builds the Release tree $build (log in
#                                $out/build.log); exits 1 with the log tail on failure
#   bench_machine                writes date, host, cpu and commit lines to stdout (machine.txt)
#   bench_cluster_done CDIR      stops the cluster in CDIR, keeps its logs in
#                                $out/cluster-logs/ and removes CDIR

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
