# shellcheck shell=bash
# scripts/lib/cluster.sh - start and stop a whole local chatcluster in one directory.
#
# Source this file from bash (it is `set -euo pipefail` friendly: every function checks its own
# failures and returns non-zero; none calls exit). Public functions:
#
#   cluster_up DIR          start every service of CHAT_CLUSTER_SERVICES in order, each waited
#                           on until ready, from fresh data (an earlier run's data and logs in
#                           DIR are removed, processes it recorded are stopped); writes
#                           DIR/cluster.env. Returns 1 on the first service that fails (its
#                           log tail is printed); the services already started keep running:
#                           call cluster_down DIR.
#   cluster_down DIR        stop every service by PID in reverse order (SIGTERM, bounded wait,
#                           then SIGKILL); tolerates partially started or already dead clusters.
#   cluster_start SVC DIR   start one service of an existing cluster and wait until it is ready.
#   cluster_stop SVC DIR    SIGTERM (postgres: SIGINT = fast shutdown) and wait for the exit.
#   cluster_kill SVC DIR    SIGKILL the service and its direct children (a crash).
#   cluster_pause SVC DIR   SIGSTOP the service and its direct children (a hang: connections
#                           stay open, nothing is answered).
#   cluster_resume SVC DIR  SIGCONT them again.
#   cluster_status DIR      one line per service: name, pid, running|paused|dead.
#
# Services, in start order: postgres redis kafka persister presence api1 api2 gw1 gw2 nginx.
# Layout of DIR: cluster.env (KEY=VALUE lines, no quoting needed: values never hold blanks or
# shell metacharacters), pids/NAME.pid (+ NAME.start, the process start time that guards
# against PID reuse), logs/NAME.log, pg/ (data), redis/, nginx/ (prefix with nginx.conf),
# kafka/ (server.properties, data/ = the broker's log dir, tmp/).
#
# Environment:
#   CHAT_BIN                 service binaries (default <repo>/build/bin)
#   CHAT_CLUSTER_SERVICES    subset to start, e.g. "postgres redis kafka" (default: all)
#   CHAT_CLUSTER_KAFKA       broker (default): Apache Kafka (scripts/lib/kafka.sh), one KRaft
#                            node on 127.0.0.1; mock: librdkafka's mock cluster (chat-kafka-dev),
#                            no Java needed, but it slows down within minutes and loses
#                            everything on restart: never for measurements
#   CHAT_KAFKA_HEAP          broker heap (default 512m)
#   CHAT_KAFKA_NETWORK_THREADS, CHAT_KAFKA_IO_THREADS
#                            the broker's network and request handler threads (default 1, 2)
#   CHAT_CLUSTER_TIMEOUT     readiness timeout per service in seconds (default 30), multiplied by
#   CHAT_TEST_TIMEOUT_MULT   (default 1; 3 under sanitizers)
#   CHAT_CLUSTER_STOP_TIMEOUT  seconds to wait after SIGTERM before SIGKILL (default 20)
#   CHAT_LB_PORT             nginx port (default: a free port); fails when it is busy
#   CHAT_LOG_LEVEL           passed on to every chat service
#
# Kafka: the broker keeps its ports (CHAT_TEST_KAFKA_PORT, CHAT_TEST_KAFKA_CONTROLLER_PORT) and
# its log dir (DIR/kafka/data) across stop/kill and start, so a restart is an outage the running
# services recover from, with every acknowledged record still there; cluster_up starts from an
# empty log dir. The topics are created (or checked) by `chatctl topics` on every start, which
# is also the readiness check. With CHAT_CLUSTER_KAFKA=mock a restart gives new random ports
# and an empty log (restart the cluster instead); chat-kafka-dev takes SIGUSR1 (all brokers
# down) and SIGUSR2 (up).

CLUSTER_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib/kafka.sh
. "$CLUSTER_REPO/scripts/lib/kafka.sh"
CLUSTER_ALL_SERVICES="postgres redis kafka persister presence api1 api2 gw1 gw2 nginx"

# ---------------------------------------------------------------------------------------------
# helpers

_cl_log() {
    printf 'cluster: %s\n' "$*" >&2
}

_cl_err() {
    printf 'cluster: error: %s\n' "$*" >&2
    return 1
}

_cl_is_root() {
    [ "$(id -u)" -eq 0 ]
}

_cl_bin() {
    printf '%s\n' "${CHAT_BIN:-$CLUSTER_REPO/build/bin}"
}

# Seconds to wait for readiness: CHAT_CLUSTER_TIMEOUT * CHAT_TEST_TIMEOUT_MULT.
_cl_timeout() {
    local t=${CHAT_CLUSTER_TIMEOUT:-30} m=${CHAT_TEST_TIMEOUT_MULT:-1}
    [[ $t =~ ^[0-9]+$ ]] || t=30
    [[ $m =~ ^[0-9]+$ ]] || m=1
    printf '%s\n' $((t * m))
}

_cl_stop_timeout() {
    local t=${CHAT_CLUSTER_STOP_TIMEOUT:-20}
    [[ $t =~ ^[0-9]+$ ]] || t=20
    printf '%s\n' "$t"
}

# Milliseconds since the epoch (for deadlines finer than $SECONDS).
_cl_now_ms() {
    local t
    t=$(date +%s%N)
    printf '%s\n' $((t / 1000000))
}

_cl_sleep() {
    sleep "${1:-0.1}"
}

# True when something listens on or uses 127.0.0.1:PORT.
_cl_port_busy() {
    local p=$1
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]
        return
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

_CL_PORTS_TAKEN=" "

# Sets REPLY to a free port in 20000-31999 (below Linux's ephemeral range, so outgoing
# connections do not take it meanwhile), never one handed out before by this shell.
_cl_free_port() {
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + RANDOM % 12000))
        case $_CL_PORTS_TAKEN in *" $p "*) continue ;; esac
        if ! _cl_port_busy "$p"; then
            _CL_PORTS_TAKEN="$_CL_PORTS_TAKEN$p "
            REPLY=$p
            return 0
        fi
    done
    _cl_err "no free port found"
}

# Values in cluster.env are written unquoted: allow only characters that need no quoting.
_cl_safe_value() {
    [[ $1 =~ ^[A-Za-z0-9_.,:/@%+=-]*$ ]]
}

# _cl_env_set DIR KEY VALUE: replaces KEY in DIR/cluster.env (atomically: tmp + rename).
_cl_env_set() {
    local dir=$1 key=$2 val=$3 f=$1/cluster.env
    _cl_safe_value "$val" || {
        _cl_err "value of $key holds characters that cluster.env cannot carry: '$val'"
        return 1
    }
    (
        umask 077 # it holds the JWT secret
        {
            [ -f "$f" ] && grep -v "^$key=" "$f"
            printf '%s=%s\n' "$key" "$val"
        } >"$f.tmp"
    ) && mv -f "$f.tmp" "$f"
}

# _cl_env_get DIR KEY: prints the value of KEY (empty when missing).
_cl_env_get() {
    local f=$1/cluster.env
    [ -f "$f" ] || return 0
    sed -n "s/^$2=//p" "$f" | tail -n 1
}

# Start time of a process (field 22 of /proc/PID/stat), empty when it does not exist.
_cl_proc_start() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
    stat=${stat##*) } # the command name may hold blanks and parentheses
    local -a f
    read -r -a f <<<"$stat"
    printf '%s\n' "${f[19]:-}"
}

# Direct children of PID (by scanning /proc; no procps needed).
_cl_children() {
    local parent=$1 f stat
    local -a fld
    for f in /proc/[0-9]*/stat; do
        read -r stat 2>/dev/null <"$f" || continue
        read -r -a fld <<<"${stat##*) }"
        if [ "${fld[1]:-}" = "$parent" ]; then
            f=${f#/proc/}
            printf '%s\n' "${f%/stat}"
        fi
    done
}

# Records PID as the process of NAME.
_cl_pid_save() {
    local name=$1 dir=$2 pid=$3
    printf '%s\n' "$pid" >"$dir/pids/$name.pid"
    _cl_proc_start "$pid" >"$dir/pids/$name.start"
}

# Prints the live PID of NAME, or nothing (stale or missing pid file, or PID reused).
_cl_pid_live() {
    local name=$1 dir=$2 pid start want
    pid=$(cat "$dir/pids/$name.pid" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    want=$(cat "$dir/pids/$name.start" 2>/dev/null || true)
    start=$(_cl_proc_start "$pid")
    if [ -n "$want" ] && [ "$start" != "$want" ]; then
        return 0 # the PID belongs to another process now
    fi
    # a zombie (our own exited child not reaped yet) is as good as dead
    if [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$pid/status" 2>/dev/null)" = Z ]; then
        return 0
    fi
    printf '%s\n' "$pid"
}

_cl_tail_log() {
    local name=$1 dir=$2 f=$2/logs/$1.log
    if [ -s "$f" ]; then
        printf -- '----- last lines of %s -----\n' "$f" >&2
        tail -n 25 "$f" >&2
        printf -- '-----\n' >&2
    else
        _cl_log "$name wrote no log ($f)"
    fi
}

# Runs a command as the postgres user when we are root (PostgreSQL refuses root).
_cl_as_pg() {
    if _cl_is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_cl_pg_bindir() {
    local d
    if command -v pg_config >/dev/null 2>&1; then
        d=$(pg_config --bindir 2>/dev/null || true)
        if [ -x "$d/initdb" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    fi
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        if [ -x "$d/initdb" ]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    _cl_err "PostgreSQL server binaries (initdb) not found; run scripts/deps.sh"
}

# Without job control a background job shares our process group, so terminal Ctrl-C would
# hit every service at once; setsid puts each service in its own session so the owner of the
# cluster decides the shutdown order. (With job control, jobs have their own group already and
# setsid would fork, losing the PID.)
_cl_setsid() {
    if [[ $- == *m* ]] || ! command -v setsid >/dev/null 2>&1; then
        "$@"
    else
        setsid "$@"
    fi
}

# _cl_spawn NAME DIR CMD...: starts CMD in the background with cluster.env exported, stdin
# from /dev/null, stdout+stderr appended to logs/NAME.log; records its PID.
_cl_spawn() {
    local name=$1 dir=$2 pid
    shift 2
    printf -- '=== %s start %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" >>"$dir/logs/$name.log"
    (
        set -a
        # shellcheck disable=SC1091
        . "$dir/cluster.env"
        set +a
        cd "$dir" || exit 1
        if [[ $- == *m* ]] || ! command -v setsid >/dev/null 2>&1; then
            exec "$@"
        fi
        exec setsid "$@"
    ) </dev/null >>"$dir/logs/$name.log" 2>&1 &
    pid=$!
    _cl_pid_save "$name" "$dir" "$pid"
}

# _cl_wait NAME DIR WHAT CMD...: retries CMD (quietly) every 100 ms until it succeeds, NAME's
# process dies or the timeout passes. WHAT names the check for messages.
_cl_wait() {
    local name=$1 dir=$2 what=$3 t deadline pid
    shift 3
    t=$(_cl_timeout)
    deadline=$(($(_cl_now_ms) + t * 1000))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        pid=$(_cl_pid_live "$name" "$dir")
        if [ -z "$pid" ]; then
            _cl_err "$name exited before it was ready ($what)"
            _cl_tail_log "$name" "$dir"
            return 1
        fi
        if [ "$(_cl_now_ms)" -ge "$deadline" ]; then
            _cl_err "$name not ready after ${t}s ($what)"
            _cl_tail_log "$name" "$dir"
            return 1
        fi
        _cl_sleep 0.1
    done
}

_cl_http_ok() {
    curl -fsS -m 2 -o /dev/null "$1"
}

_cl_need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || {
            _cl_err "'$c' is not installed; run scripts/deps.sh"
            return 1
        }
    done
}

_cl_need_bin() {
    local b
    b="$(_cl_bin)/$1"
    [ -x "$b" ] || {
        _cl_err "$b not found: build first (cmake --build build) or set CHAT_BIN"
        return 1
    }
    printf '%s\n' "$b"
}

_cl_check_dir() {
    local dir=$1
    case $dir in
    /*) ;;
    *)
        _cl_err "DIR must be an absolute path: '$dir'"
        return 1
        ;;
    esac
    _cl_safe_value "$dir" || {
        _cl_err "DIR may only hold [A-Za-z0-9_.,:/@%+=-]: '$dir'"
        return 1
    }
}

# ---------------------------------------------------------------------------------------------
# services

# After a SIGKILL the postmaster's PID stays in postmaster.pid; while that PID is still in the
# process table (a zombie not reaped yet) postgres refuses to start ("lock file already
# exists"). Wait, bounded, until it is gone.
_cl_pg_wait_stale() {
    local dir=$1 pid deadline
    pid=$(head -n 1 "$dir/pg/data/postmaster.pid" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    deadline=$(($(_cl_now_ms) + 10000))
    while kill -0 "$pid" 2>/dev/null; do
        if ! _cl_gone "$pid"; then
            _cl_err "postgres (pid $pid) of $dir/pg/data is still running"
            return 1
        fi
        if [ "$(_cl_now_ms)" -ge "$deadline" ]; then
            _cl_err "the old postmaster (pid $pid) is still a zombie after 10 s"
            return 1
        fi
        _cl_sleep 0.05
    done
}

_cl_start_postgres() {
    local dir=$1 port bindir log=$1/logs/postgres.log pid opts
    local -a pgctl
    _cl_need_cmd pg_isready psql || return 1
    bindir=$(_cl_pg_bindir) || return 1
    port=$(_cl_env_get "$dir" CHAT_TEST_PG_PORT)
    mkdir -p "$dir/pg" || return 1
    touch "$log" || return 1
    if _cl_is_root; then
        chown postgres: "$dir/pg" "$log" || return 1
        _cl_as_pg test -w "$dir/pg" || {
            _cl_err "the postgres user cannot write $dir/pg (a parent directory is not" \
                "searchable by others); use a DIR under a world-searchable path"
            return 1
        }
    fi
    _cl_pg_wait_stale "$dir" || return 1
    if [ ! -f "$dir/pg/data/PG_VERSION" ]; then
        _cl_as_pg "$bindir/initdb" -D "$dir/pg/data" -U postgres -A trust -E UTF8 \
            --locale=C.UTF-8 --no-sync >>"$log" 2>&1 || {
            _cl_err "initdb failed"
            _cl_tail_log postgres "$dir"
            return 1
        }
    fi
    # Unix sockets off: TCP on 127.0.0.1 only (no path length or permission surprises).
    opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories="
    opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    opts="$opts -c max_connections=200"
    pgctl=("$bindir/pg_ctl")
    _cl_is_root && pgctl=(runuser -u postgres -- "$bindir/pg_ctl")
    # shellcheck disable=SC2094 # pg_ctl appends the server log to $log, as we do
    _cl_setsid "${pgctl[@]}" -D "$dir/pg/data" -l "$log" -w -t "$(_cl_timeout)" -o "$opts" \
        start >>"$log" 2>&1 || {
        _cl_err "pg_ctl start failed"
        _cl_tail_log postgres "$dir"
        return 1
    }
    pid=$(head -n 1 "$dir/pg/data/postmaster.pid" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || {
        _cl_err "postgres: no PID in postmaster.pid"
        return 1
    }
    _cl_pid_save postgres "$dir" "$pid"
    _cl_wait postgres "$dir" "pg_isready" \
        pg_isready -q -h 127.0.0.1 -p "$port" -U postgres -d postgres || return 1
    if [ -z "$(psql -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'chat'" 2>>"$log")" ]; then
        psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -c "CREATE DATABASE chat" >>"$log" 2>&1 || {
            _cl_err "CREATE DATABASE chat failed"
            _cl_tail_log postgres "$dir"
            return 1
        }
    fi
}

_cl_start_redis() {
    local dir=$1 port
    _cl_need_cmd redis-server redis-cli || return 1
    port=$(_cl_env_get "$dir" CHAT_TEST_REDIS_PORT)
    mkdir -p "$dir/redis" || return 1
    _cl_spawn redis "$dir" redis-server --port "$port" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no --dir "$dir/redis" || return 1
    _cl_wait redis "$dir" "redis-cli ping" _cl_redis_ping "$port"
}

_cl_redis_ping() {
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

_cl_start_kafka() {
    case $(_cl_env_get "$1" CHAT_TEST_KAFKA_IMPL) in
    mock) _cl_start_kafka_mock "$1" ;;
    *) _cl_start_kafka_broker "$1" ;;
    esac
}

# The topics exist with their settings and every partition has a leader (also the readiness
# check: the broker answers the Admin API).
_cl_kafka_topics() {
    local dir=$1 port ctl
    port=$(_cl_env_get "$dir" CHAT_TEST_KAFKA_PORT)
    # listening (a killed broker's TIME_WAIT sockets would pass a plain "port in use" check)
    [ -n "$(ss -Htln "( sport = :$port )" 2>/dev/null)" ] || return 1
    ctl=$(_cl_need_bin chatctl) || return 1
    # a topic that differs from its spec is reported in the broker's log
    "$ctl" topics --kafka-brokers "127.0.0.1:$port" --timeout-ms 10000 \
        --topics "$(kafka_topic_specs)" >"$dir/kafka/topics.txt" 2>>"$dir/logs/kafka.log"
}

_cl_start_kafka_broker() {
    local dir=$1 kdir=$1/kafka java port cport
    local -a opts args
    kafka_fetched || {
        _cl_err "the Kafka broker is not in $(kafka_home): run scripts/deps.sh"
        return 1
    }
    java=$(kafka_java) || return 1
    kafka_heap_ok || return 1
    _cl_need_cmd ss || return 1
    _cl_need_bin chatctl >/dev/null || return 1
    port=$(_cl_env_get "$dir" CHAT_TEST_KAFKA_PORT)
    cport=$(_cl_env_get "$dir" CHAT_TEST_KAFKA_CONTROLLER_PORT)
    kafka_write_config "$kdir" "$port" "$cport" || return 1
    kafka_format "$kdir" >>"$dir/logs/kafka.log" 2>&1 || {
        _cl_err "formatting the Kafka log dir $kdir/data failed"
        _cl_tail_log kafka "$dir"
        return 1
    }
    mapfile -t opts < <(kafka_jvm_opts "$kdir")
    mapfile -t args < <(kafka_main_args "$kdir")
    [ ${#opts[@]} -gt 0 ] && [ ${#args[@]} -gt 0 ] || return 1
    _cl_spawn kafka "$dir" "$java" "${opts[@]}" "${args[@]}" || return 1
    _cl_wait kafka "$dir" "chatctl topics" _cl_kafka_topics "$dir"
}

_cl_start_kafka_mock() {
    local dir=$1 bin brokers
    bin=$(_cl_need_bin chat-kafka-dev) || return 1
    rm -f "$dir/kafka.bootstrap"
    _cl_spawn kafka "$dir" "$bin" --bootstrap-file "$dir/kafka.bootstrap" || return 1
    _cl_wait kafka "$dir" "bootstrap file" test -s "$dir/kafka.bootstrap" || return 1
    brokers=$(head -n 1 "$dir/kafka.bootstrap")
    _cl_env_set "$dir" CHAT_KAFKA_BROKERS "$brokers"
}

_cl_need_brokers() {
    [ -n "$(_cl_env_get "$1" CHAT_KAFKA_BROKERS)" ] || {
        _cl_err "no Kafka brokers in $1/cluster.env: start kafka first"
        return 1
    }
}

_cl_start_persister() {
    local dir=$1 bin port
    bin=$(_cl_need_bin chat-persister) || return 1
    _cl_need_brokers "$dir" || return 1
    port=$(_cl_env_get "$dir" CHAT_TEST_PERSISTER_PORT)
    _cl_spawn persister "$dir" env \
        CHAT_PG_DSN="$(_cl_env_get "$dir" CHAT_TEST_PG_DSN)" \
        CHAT_REDIS_HOST=127.0.0.1 CHAT_REDIS_PORT="$(_cl_env_get "$dir" CHAT_TEST_REDIS_PORT)" \
        CHAT_METRICS_ADDR=127.0.0.1 CHAT_METRICS_PORT="$port" \
        "$bin" || return 1
    _cl_wait persister "$dir" "GET /readyz" _cl_http_ok "http://127.0.0.1:$port/readyz"
}

_cl_start_presence() {
    local dir=$1 bin port
    bin=$(_cl_need_bin chat-presence) || return 1
    _cl_need_brokers "$dir" || return 1
    port=$(_cl_env_get "$dir" CHAT_TEST_PRESENCE_PORT)
    _cl_spawn presence "$dir" env \
        CHAT_REDIS_HOST=127.0.0.1 CHAT_REDIS_PORT="$(_cl_env_get "$dir" CHAT_TEST_REDIS_PORT)" \
        CHAT_METRICS_ADDR=127.0.0.1 CHAT_METRICS_PORT="$port" CHAT_INSTANCE_ID=presence1 \
        "$bin" || return 1
    _cl_wait presence "$dir" "GET /readyz" _cl_http_ok "http://127.0.0.1:$port/readyz"
}

# _cl_start_api NAME DIR (NAME = api1 | api2): chat-api replicas behind nginx's /api/
_cl_start_api() {
    local name=$1 dir=$2 bin port key
    key=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
    bin=$(_cl_need_bin chat-api) || return 1
    _cl_need_brokers "$dir" || return 1
    port=$(_cl_env_get "$dir" "CHAT_TEST_${key}_PORT")
    _cl_spawn "$name" "$dir" env \
        CHAT_API_ADDR=127.0.0.1 CHAT_API_PORT="$port" CHAT_NODE_NAME="$name" \
        CHAT_TRUSTED_PROXY_HOPS="${CHAT_TRUSTED_PROXY_HOPS:-1}" \
        CHAT_ROOMS_ADHOC="${CHAT_ROOMS_ADHOC:-1}" \
        CHAT_REDIS_HOST=127.0.0.1 CHAT_REDIS_PORT="$(_cl_env_get "$dir" CHAT_TEST_REDIS_PORT)" \
        CHAT_PG_DSN="$(_cl_env_get "$dir" CHAT_TEST_PG_DSN)" \
        "$bin" || return 1
    _cl_wait "$name" "$dir" "GET /readyz" _cl_http_ok "http://127.0.0.1:$port/readyz"
}

# _cl_start_gw NAME DIR (NAME = gw1 | gw2)
_cl_start_gw() {
    local name=$1 dir=$2 bin port key
    key=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
    bin=$(_cl_need_bin chat-gateway) || return 1
    _cl_need_brokers "$dir" || return 1
    port=$(_cl_env_get "$dir" "CHAT_TEST_${key}_PORT")
    _cl_spawn "$name" "$dir" env \
        CHAT_LISTEN_ADDR=127.0.0.1 CHAT_PORT="$port" CHAT_NODE_NAME="$name" \
        CHAT_TRUSTED_PROXY_HOPS="${CHAT_TRUSTED_PROXY_HOPS:-1}" \
        CHAT_ROOMS_ADHOC="${CHAT_ROOMS_ADHOC:-1}" \
        CHAT_REDIS_HOST=127.0.0.1 CHAT_REDIS_PORT="$(_cl_env_get "$dir" CHAT_TEST_REDIS_PORT)" \
        CHAT_PG_DSN="$(_cl_env_get "$dir" CHAT_TEST_PG_DSN)" \
        CHAT_WEB_ROOT="$(_cl_env_get "$dir" CHAT_TEST_WEB_ROOT)" \
        "$bin" || return 1
    _cl_wait "$name" "$dir" "GET /readyz" _cl_http_ok "http://127.0.0.1:$port/readyz"
}

# Writes DIR/nginx/nginx.conf: one port; /ws (WebSocket upgrade) and the gateways' own
# endpoints go to both gateways, /api/ to the chat-api replicas (the chat_api upstream), and
# every other path is a static file of the web client (CHAT_TEST_WEB_ROOT = <repo>/web), served
# with ETag/Last-Modified and "Cache-Control: no-cache": the browser revalidates every time, so
# the app code is never stale, yet an unchanged file is answered with 304 and not re-sent.
_cl_nginx_conf() {
    local dir=$1 p=$1/nginx lb gw1 gw2 api1 api2 web
    lb=$(_cl_env_get "$dir" CHAT_TEST_LB_PORT)
    api1=$(_cl_env_get "$dir" CHAT_TEST_API1_PORT)
    api2=$(_cl_env_get "$dir" CHAT_TEST_API2_PORT)
    gw1=$(_cl_env_get "$dir" CHAT_TEST_GW1_PORT)
    gw2=$(_cl_env_get "$dir" CHAT_TEST_GW2_PORT)
    web=$(_cl_env_get "$dir" CHAT_TEST_WEB_ROOT)
    mkdir -p "$p/tmp" || return 1
    cat >"$p/nginx.conf.tmp" <<EOF || return 1
# generated by scripts/lib/cluster.sh: every path is under $p
daemon off;
master_process on;
worker_processes auto;
worker_rlimit_nofile 20000;
pid $p/nginx.pid;
error_log $dir/logs/nginx.log notice;

events {
    worker_connections 19000;
}

http {
    access_log off;
    client_body_temp_path $p/tmp/client_body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
    client_max_body_size 1m;

    map \$http_upgrade \$connection_upgrade {
        default upgrade;
        ''      close;
    }

    upstream chat_gateways {
        server 127.0.0.1:$gw1 max_fails=1 fail_timeout=2s;
        server 127.0.0.1:$gw2 max_fails=1 fail_timeout=2s;
    }

    # the REST API (/api/): the chat-api replicas
    upstream chat_api {
        server 127.0.0.1:$api1 max_fails=1 fail_timeout=2s;
        server 127.0.0.1:$api2 max_fails=1 fail_timeout=2s;
    }

    # the web client's file types (self-contained: no distribution mime.types needed)
    types {
        text/html html;
        text/css css;
        text/javascript js;
        image/svg+xml svg;
        image/png png;
        application/json json;
    }
    default_type application/octet-stream;

    server {
        listen 127.0.0.1:$lb;

        # proxied locations set no headers of their own: one proxy_set_header in a location
        # would drop all of these there (nginx inherits them only as a whole)
        proxy_http_version 1.1;
        proxy_set_header Upgrade \$http_upgrade;
        proxy_set_header Connection \$connection_upgrade;
        proxy_set_header Host \$host;
        proxy_set_header X-Real-IP \$remote_addr;
        # appends the peer: the gateways (CHAT_TRUSTED_PROXY_HOPS=1) take that entry only
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_connect_timeout 2s;
        proxy_buffering off;

        # the balancer's own liveness, independent of the gateways
        location = /lb/healthz {
            default_type text/plain;
            return 200 "ok\n";
        }

        location = /ws {
            proxy_pass http://chat_gateways;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
        }

        location /api/ {
            proxy_pass http://chat_api;
            proxy_read_timeout 60s;
        }

        # a gateway's own endpoints, as before (whichever gateway the balancer picks)
        location ~ ^/(healthz|readyz|metrics)\$ {
            proxy_pass http://chat_gateways;
        }

        # the web client: static files with validators, revalidated on every use
        location / {
            root $web;
            index index.html;
            try_files \$uri \$uri/ =404;
            etag on;
            add_header Cache-Control "no-cache" always;
            add_header X-Content-Type-Options "nosniff" always;
            add_header Referrer-Policy "no-referrer" always;
            add_header X-Frame-Options "deny" always;
            # the gateways' policy (libwebsockets' security best practices) for the same files
            add_header Content-Security-Policy "default-src 'none'; img-src 'self' data:; script-src 'self'; font-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'" always;
        }
    }
}
EOF
    mv -f "$p/nginx.conf.tmp" "$p/nginx.conf"
}

_cl_start_nginx() {
    local dir=$1 lb
    _cl_need_cmd nginx curl || return 1
    _cl_nginx_conf "$dir" || return 1
    lb=$(_cl_env_get "$dir" CHAT_TEST_LB_PORT)
    _cl_spawn nginx "$dir" nginx -p "$dir/nginx" -c nginx.conf -e "$dir/logs/nginx.log" || return 1
    _cl_wait nginx "$dir" "GET /lb/healthz" _cl_http_ok "http://127.0.0.1:$lb/lb/healthz"
}

# ---------------------------------------------------------------------------------------------
# public functions

_cl_known_svc() {
    case " $CLUSTER_ALL_SERVICES " in
    *" $1 "*) return 0 ;;
    esac
    _cl_err "unknown service '$1' (one of: $CLUSTER_ALL_SERVICES)"
}

cluster_start() {
    local svc=$1 dir=$2 pid t0
    _cl_known_svc "$svc" || return 1
    [ -f "$dir/cluster.env" ] || {
        _cl_err "$dir/cluster.env not found: run cluster_up first"
        return 1
    }
    pid=$(_cl_pid_live "$svc" "$dir")
    if [ -n "$pid" ]; then
        _cl_log "$svc already running (pid $pid)"
        return 0
    fi
    mkdir -p "$dir/pids" "$dir/logs" || return 1
    t0=$(_cl_now_ms)
    case $svc in
    postgres) _cl_start_postgres "$dir" ;;
    redis) _cl_start_redis "$dir" ;;
    kafka) _cl_start_kafka "$dir" ;;
    persister) _cl_start_persister "$dir" ;;
    presence) _cl_start_presence "$dir" ;;
    api1 | api2) _cl_start_api "$svc" "$dir" ;;
    gw1 | gw2) _cl_start_gw "$svc" "$dir" ;;
    nginx) _cl_start_nginx "$dir" ;;
    esac || {
        _cl_err "$svc failed to start"
        return 1
    }
    _cl_log "$svc ready (pid $(cat "$dir/pids/$svc.pid"), $(($(_cl_now_ms) - t0)) ms)"
}

# _cl_signal_wait NAME DIR SIG: sends SIG, waits up to the stop timeout, then SIGKILLs.
_cl_signal_wait() {
    local name=$1 dir=$2 sig=$3 pid kids deadline
    pid=$(_cl_pid_live "$name" "$dir")
    if [ -z "$pid" ]; then
        rm -f "$dir/pids/$name.pid" "$dir/pids/$name.start"
        return 0
    fi
    kids=$(_cl_children "$pid")
    kill "-$sig" "$pid" 2>/dev/null || true
    _cl_cont "$pid" "$kids" # a paused service acts on the signal only once it runs again
    deadline=$(($(_cl_now_ms) + $(_cl_stop_timeout) * 1000))
    while [ -n "$(_cl_pid_live "$name" "$dir")" ]; do
        if [ "$(_cl_now_ms)" -ge "$deadline" ]; then
            _cl_log "$name (pid $pid) still running $(_cl_stop_timeout)s after SIG$sig: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        _cl_sleep 0.05
    done
    _cl_reap_kids "$kids" "$pid"
    rm -f "$dir/pids/$name.pid" "$dir/pids/$name.start"
}

# True when PID no longer runs: gone, or a zombie waiting for its parent (or init) to reap it.
_cl_gone() {
    kill -0 "$1" 2>/dev/null || return 0
    [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)" = Z ]
}

# SIGKILLs the listed PIDs (children of a stopped main process: nginx workers, postgres
# backends) that still run, then waits (bounded) until they and MAIN have stopped running.
_cl_reap_kids() {
    local kids=$1 main=$2 k deadline left
    for k in $kids; do
        _cl_gone "$k" || kill -KILL "$k" 2>/dev/null || true
    done
    deadline=$(($(_cl_now_ms) + 5000))
    while :; do
        left=""
        for k in $kids $main; do
            _cl_gone "$k" || left="$left $k"
        done
        [ -z "$left" ] && return 0
        if [ "$(_cl_now_ms)" -ge "$deadline" ]; then
            _cl_log "still running 5 s after SIGKILL:$left"
            return 0
        fi
        _cl_sleep 0.02
    done
}

cluster_stop() {
    local svc=$1 dir=$2 sig=TERM pid
    _cl_known_svc "$svc" || return 1
    [ "$svc" = postgres ] && sig=INT # fast shutdown: SIGTERM would wait for every client
    pid=$(_cl_pid_live "$svc" "$dir")
    _cl_signal_wait "$svc" "$dir" "$sig" || return 1
    [ -n "$pid" ] && _cl_log "$svc stopped (pid $pid)"
    return 0
}

cluster_kill() {
    local svc=$1 dir=$2 pid kids
    _cl_known_svc "$svc" || return 1
    pid=$(_cl_pid_live "$svc" "$dir")
    if [ -z "$pid" ]; then
        _cl_log "$svc is not running"
        rm -f "$dir/pids/$svc.pid" "$dir/pids/$svc.start"
        return 0
    fi
    kids=$(_cl_children "$pid")
    kill -KILL "$pid" 2>/dev/null || true
    while [ -n "$(_cl_pid_live "$svc" "$dir")" ]; do
        _cl_sleep 0.02
    done
    _cl_reap_kids "$kids" "$pid"
    rm -f "$dir/pids/$svc.pid" "$dir/pids/$svc.start"
    _cl_log "$svc killed (pid $pid)"
}

# SIGCONT to the PIDs listed in $1, then those in $2 (harmless when they run).
_cl_cont() {
    local k
    for k in $1 $2; do
        kill -CONT "$k" 2>/dev/null || true
    done
}

# True when PID is stopped (SIGSTOP): state T.
_cl_paused() {
    [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)" = T ]
}

# _cl_pause_signal SVC DIR SIG: SIG (STOP or CONT) to the service and its direct children
# (postgres backends, nginx workers): the parent first on STOP (a stopped parent forks no new
# child meanwhile), the children first on CONT.
_cl_pause_signal() {
    local svc=$1 dir=$2 sig=$3 pid k
    _cl_known_svc "$svc" || return 1
    pid=$(_cl_pid_live "$svc" "$dir")
    [ -n "$pid" ] || {
        _cl_err "$svc is not running"
        return 1
    }
    if [ "$sig" = STOP ]; then
        kill -STOP "$pid" 2>/dev/null || true
        for k in $(_cl_children "$pid"); do
            kill -STOP "$k" 2>/dev/null || true
        done
    else
        _cl_cont "$(_cl_children "$pid")" "$pid"
    fi
    printf '%s\n' "$pid"
}

cluster_pause() {
    local pid
    pid=$(_cl_pause_signal "$1" "$2" STOP) || return 1
    _cl_log "$1 paused (pid $pid, SIGSTOP)"
}

cluster_resume() {
    local pid
    pid=$(_cl_pause_signal "$1" "$2" CONT) || return 1
    _cl_log "$1 resumed (pid $pid, SIGCONT)"
}

cluster_down() {
    local dir=$1 svc f name pid order=""
    [ -d "$dir/pids" ] || return 0
    # a paused service first runs again: the others shut down against a live one, not a hang
    for f in "$dir"/pids/*.pid; do
        [ -e "$f" ] || continue
        pid=$(_cl_pid_live "$(basename "$f" .pid)" "$dir")
        if [ -n "$pid" ] && _cl_paused "$pid"; then
            _cl_cont "$pid" "$(_cl_children "$pid")"
        fi
    done
    for svc in $CLUSTER_ALL_SERVICES; do
        order="$svc $order"
    done
    for f in "$dir"/pids/*.pid; do # anything else recorded there goes first
        [ -e "$f" ] || continue
        name=$(basename "$f" .pid)
        case " $CLUSTER_ALL_SERVICES " in *" $name "*) ;; *) order="$name $order" ;; esac
    done
    for svc in $order; do
        if [ "$svc" = postgres ]; then
            cluster_stop postgres "$dir" || true
        else
            _cl_signal_wait "$svc" "$dir" TERM || true
        fi
    done
    rm -f "$dir/kafka.bootstrap"
    _cl_log "down: $dir"
}

cluster_status() {
    local dir=$1 svc pid rc=0
    for svc in $CLUSTER_ALL_SERVICES; do
        [ -f "$dir/pids/$svc.pid" ] || continue
        pid=$(_cl_pid_live "$svc" "$dir")
        if [ -n "$pid" ] && _cl_paused "$pid"; then
            printf '%-10s %-8s paused\n' "$svc" "$pid"
        elif [ -n "$pid" ]; then
            printf '%-10s %-8s running\n' "$svc" "$pid"
        else
            printf '%-10s %-8s dead\n' "$svc" "$(cat "$dir/pids/$svc.pid" 2>/dev/null)"
            rc=1
        fi
    done
    return $rc
}

# Allocates the ports and the secret and writes DIR/cluster.env.
_cl_write_env() {
    local dir=$1 pg redis gw1 gw2 api1 api2 ps pr lb kp kcp secret kenv f=$1/cluster.env
    local impl=${CHAT_CLUSTER_KAFKA:-broker}
    _cl_free_port || return 1
    pg=$REPLY
    _cl_free_port || return 1
    api1=$REPLY
    _cl_free_port || return 1
    api2=$REPLY
    _cl_free_port || return 1
    redis=$REPLY
    _cl_free_port || return 1
    gw1=$REPLY
    _cl_free_port || return 1
    gw2=$REPLY
    _cl_free_port || return 1
    ps=$REPLY
    _cl_free_port || return 1
    pr=$REPLY
    _cl_free_port || return 1
    kp=$REPLY
    _cl_free_port || return 1
    kcp=$REPLY
    case $impl in
    broker) # the services' own defaults (made for a real broker), faster group failover
        kenv="CHAT_KAFKA_BROKERS=127.0.0.1:$kp
CHAT_KAFKA_SESSION_TIMEOUT_MS=6000
CHAT_KAFKA_HEARTBEAT_MS=500"
        ;;
    mock) # an empty fetch is held for exactly fetch.wait.max.ms by the mock: its latency floor
        kenv="CHAT_KAFKA_BROKERS=
CHAT_KAFKA_FETCH_WAIT_MS=10
CHAT_KAFKA_SESSION_TIMEOUT_MS=6000
CHAT_KAFKA_HEARTBEAT_MS=500
CHAT_KAFKA_LINGER_MS=0"
        ;;
    *)
        _cl_err "CHAT_CLUSTER_KAFKA must be broker or mock: '$impl'"
        return 1
        ;;
    esac
    if [ -n "${CHAT_LB_PORT:-}" ]; then
        if ! [[ $CHAT_LB_PORT =~ ^[0-9]+$ ]] || [ "$CHAT_LB_PORT" -lt 1 ] ||
            [ "$CHAT_LB_PORT" -gt 65535 ]; then
            _cl_err "CHAT_LB_PORT must be a port number: '$CHAT_LB_PORT'"
            return 1
        fi
        if _cl_port_busy "$CHAT_LB_PORT"; then
            _cl_err "CHAT_LB_PORT $CHAT_LB_PORT is busy"
            return 1
        fi
        lb=$CHAT_LB_PORT
    else
        _cl_free_port || return 1
        lb=$REPLY
    fi
    secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    [ ${#secret} -eq 64 ] || {
        _cl_err "could not read 32 random bytes"
        return 1
    }
    (
        umask 077
        cat >"$f.tmp" <<EOF
CHAT_TEST_DIR=$dir
CHAT_TEST_REPO=$CLUSTER_REPO
CHAT_TEST_BIN=$(_cl_bin)
CHAT_TEST_SERVICES=$(printf '%s' "${CHAT_CLUSTER_SERVICES:-$CLUSTER_ALL_SERVICES}" | tr -s ' ' ',')
CHAT_TEST_WEB_ROOT=$CLUSTER_REPO/web
CHAT_TEST_LB_PORT=$lb
CHAT_TEST_LB_URL=http://127.0.0.1:$lb
CHAT_TEST_API1_PORT=$api1
CHAT_TEST_API1_URL=http://127.0.0.1:$api1
CHAT_TEST_API2_PORT=$api2
CHAT_TEST_API2_URL=http://127.0.0.1:$api2
CHAT_TEST_GW1_PORT=$gw1
CHAT_TEST_GW1_URL=http://127.0.0.1:$gw1
CHAT_TEST_GW2_PORT=$gw2
CHAT_TEST_GW2_URL=http://127.0.0.1:$gw2
CHAT_TEST_PERSISTER_PORT=$ps
CHAT_TEST_PERSISTER_URL=http://127.0.0.1:$ps
CHAT_TEST_PRESENCE_PORT=$pr
CHAT_TEST_PRESENCE_URL=http://127.0.0.1:$pr
CHAT_TEST_PG_PORT=$pg
CHAT_TEST_PG_DSN=postgresql://postgres@127.0.0.1:$pg/chat
CHAT_TEST_REDIS_PORT=$redis
CHAT_TEST_KAFKA_IMPL=$impl
CHAT_TEST_KAFKA_PORT=$kp
CHAT_TEST_KAFKA_CONTROLLER_PORT=$kcp
$kenv
CHAT_JWT_KEYS=$secret
CHAT_JWT_ISSUER=chatcluster
EOF
    ) && mv -f "$f.tmp" "$f"
}

cluster_up() {
    local dir=$1 svc services t0 pid
    _cl_check_dir "$dir" || return 1
    services=${CHAT_CLUSTER_SERVICES:-$CLUSTER_ALL_SERVICES}
    for svc in $services; do
        _cl_known_svc "$svc" || return 1
    done
    _cl_need_cmd curl || return 1
    mkdir -p "$dir/pids" "$dir/logs" || return 1
    for svc in $CLUSTER_ALL_SERVICES; do
        pid=$(_cl_pid_live "$svc" "$dir")
        if [ -n "$pid" ]; then
            _cl_log "$svc of an earlier run still runs in $dir (pid $pid): stopping it first"
            cluster_down "$dir" || return 1
            break
        fi
    done
    # a fresh cluster: data and logs of an earlier run in DIR go (only what this file creates)
    rm -rf "$dir/pg" "$dir/redis" "$dir/nginx" "$dir/kafka" "$dir/kafka.bootstrap" "$dir"/pids/* \
        "$dir"/logs/*.log "$dir/cluster.env" "$dir/cluster.env.tmp" || return 1
    if _cl_is_root; then
        chmod a+rx "$dir" "$dir/logs" || return 1 # postgres and nginx workers need to enter
    fi
    t0=$(_cl_now_ms)
    _cl_write_env "$dir" || return 1
    for svc in $CLUSTER_ALL_SERVICES; do # the canonical order, whatever order was asked for
        case " $services " in *" $svc "*) ;; *) continue ;; esac
        cluster_start "$svc" "$dir" || return 1
    done
    _cl_log "up in $(($(_cl_now_ms) - t0)) ms: $dir/cluster.env"
}
