/* main.c - chat-bench: a load generator that speaks the chat protocol (real tokens, joins,
 * sends, acks) against any gateway or load balancer URL and stops by itself within its time
 * bound. `chat-bench SCENARIO [--option=value ...]`; --help lists the options.
 *
 * Exit status: 0 the run completed and every correctness counter is zero; 1 correctness errors
 * (lost, duplicated or reordered messages, prev chain gaps, dropped connections, failed cycles,
 * send errors, no delivery at all; reconnect: joins not recovered or not answered); 2 usage errors;
 * 3 could not connect or ran out of time. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/resource.h>

#include <jansson.h>
#include <netdb.h>

#include "chat/config.h"
#include "chat/log.h"
#include "chat/mem.h"

#include "bench.h"

#define OPT(flag, env, type, min, max, def, field, flags, help)                        \
    {                                                                                  \
        flag, env, type, min, max, def, offsetof(struct bench_cfg, field), flags, help \
    }
#define OPT_INT(flag, env, min, max, def, field, help) \
    OPT(flag, env, CHAT_CFG_INT, min, max, def, field, 0, help)
#define OPT_STR(flag, env, def, field, flags, help) \
    OPT(flag, env, CHAT_CFG_STR, 0, 0, def, field, flags, help)
#define OPT_BOOL(flag, env, def, field, help) \
    OPT(flag, env, CHAT_CFG_BOOL, 0, 0, def, field, 0, help)

#define CONNS_PER_SOURCE 25000 /* below the 28k ephemeral ports of one source address */

const struct chat_cfg_opt bench_opts[] = {
    OPT_STR("url",
            "CHAT_BENCH_URL",
            "http://127.0.0.1:8080",
            url,
            CHAT_CFG_REQUIRED,
            "targets http://host:port[/path] (path default /ws), comma-separated: connections "
            "are spread round-robin"),
    OPT_INT("conns",
            "CHAT_BENCH_CONNS",
            1,
            1000000,
            "100",
            conns,
            "connections (fanout with room-mix uniform, idle); churn: cycles in flight at most"),
    OPT_INT("rooms", "CHAT_BENCH_ROOMS", 1, 1000000, "10", rooms, "rooms (room-mix uniform)"),
    OPT_STR("room-mix",
            "CHAT_BENCH_ROOM_MIX",
            "uniform",
            room_mix,
            CHAT_CFG_REQUIRED,
            "fanout: \"uniform\" (--conns over --rooms) or SIZE:COUNT[,SIZE:COUNT...], e.g. "
            "1000:1,10:50 = one room of 1000 and 50 rooms of 10 (then --conns and --rooms follow)"),
    OPT_INT("senders",
            "CHAT_BENCH_SENDERS",
            0,
            1000000,
            "10",
            senders,
            "fanout: sending connections, spread over the rooms round-robin"),
    OPT_INT("rate",
            "CHAT_BENCH_RATE",
            0,
            10000000,
            "1000",
            rate,
            "fanout: messages/s in total over all senders; churn: cycles/s"),
    OPT_INT("size", "CHAT_BENCH_SIZE", BENCH_TEXT_MIN, 8000, "64", size, "message text bytes"),
    OPT_INT("duration",
            "CHAT_BENCH_DURATION",
            1,
            86400,
            "10",
            duration,
            "seconds of measured load (idle: seconds of holding after --warmup)"),
    OPT_INT("warmup",
            "CHAT_BENCH_WARMUP",
            0,
            3600,
            "1",
            warmup,
            "seconds of load before measuring (idle: settling before holding)"),
    OPT_INT("drain",
            "CHAT_BENCH_DRAIN",
            0,
            3600,
            "5",
            drain,
            "seconds to wait after the load for outstanding acks and deliveries"),
    OPT_INT("ramp",
            "CHAT_BENCH_RAMP",
            0,
            10000000,
            "0",
            ramp,
            "connects per second while opening (0: as fast as --opening allows)"),
    OPT_INT("opening",
            "CHAT_BENCH_OPENING",
            1,
            100000,
            "256",
            opening,
            "handshakes in flight per thread at most"),
    OPT_INT("max-inflight",
            "CHAT_BENCH_MAX_INFLIGHT",
            1,
            1000,
            "1000",
            max_inflight,
            "unanswered sends per sender at most (more are skipped and counted as throttled)"),
    OPT_STR("jwt-keys",
            "CHAT_JWT_KEYS",
            "",
            jwt_keys,
            CHAT_CFG_SECRET | CHAT_CFG_REQUIRED,
            "token signing secret (or kid:secret,...; the first signs), as the gateways'"),
    OPT_STR("jwt-issuer", "CHAT_JWT_ISSUER", "chatcluster", jwt_issuer, 0, "token issuer (iss)"),
    OPT_BOOL("json", "CHAT_BENCH_JSON", "false", json, "JSON result on stdout (table on stderr)"),
    OPT_STR("plot", "CHAT_BENCH_PLOT", "", plot, 0, "write a latency plot (PNG, needs gnuplot)"),
    OPT_STR("pids", "CHAT_BENCH_PIDS", "", pids, 0, "idle: server pids whose RSS is measured"),
    OPT_STR("src-addrs",
            "CHAT_BENCH_SRC_ADDRS",
            "auto",
            src_addrs,
            0,
            "source addresses to bind, e.g. 127.0.0.2-127.0.0.20,127.0.1.1; \"auto\": more "
            "loopback addresses past 25000 connections per target; \"none\""),
    OPT_INT("timeout",
            "CHAT_BENCH_TIMEOUT",
            0,
            86400,
            "0",
            timeout,
            "overall time bound in seconds (0: derived from the other options)"),
    OPT_INT("threads", "CHAT_BENCH_THREADS", 1, 64, "1", threads, "event loop threads"),
    OPT_STR("log-level", "CHAT_LOG_LEVEL", "info", log_level, 0, "debug, info, warn or error"),
    OPT_BOOL("quiet", "CHAT_BENCH_QUIET", "false", quiet, "no progress lines"),
    OPT_INT("window",
            "CHAT_BENCH_WINDOW",
            0,
            86400,
            "0",
            window,
            "seconds per latency window of the measured run (JSON \"windows\" and a line each; "
            "0: none)"),
    OPT_INT("start-at",
            "CHAT_BENCH_START_AT",
            0,
            INT32_MAX,
            "0",
            start_at,
            "fanout: the load starts at this wall-clock time (seconds since the epoch) once every "
            "connection has joined, so several chat-bench processes load together (0: at once)"),
    OPT_INT("half-open",
            "CHAT_BENCH_HALF_OPEN",
            0,
            1000000,
            "0",
            half_open,
            "silent TCP connections (never a byte) held to the first target for the whole run, "
            "reopened when the server closes them (JSON \"half_open\")"),
    OPT_INT("reconnect-every-ms",
            "CHAT_BENCH_RECONNECT_EVERY_MS",
            0,
            3600000,
            "1000",
            reconnect_every_ms,
            "reconnect: every this many ms of the load, cut --reconnect-share of the receivers "
            "(TCP reset), reconnect them (to the next --url target) and rejoin with since "
            "(0: no periodic cuts)"),
    OPT_STR("reconnect-share",
            "CHAT_BENCH_RECONNECT_SHARE",
            "0.1",
            reconnect_share,
            CHAT_CFG_REQUIRED,
            "reconnect: share of each worker's receivers cut per period, in (0, 1]"),
    OPT_INT("reconnect-all-at-ms",
            "CHAT_BENCH_RECONNECT_ALL_AT_MS",
            0,
            86400000,
            "0",
            reconnect_all_at_ms,
            "reconnect: cut every receiver at once this many ms into the load (inside --warmup "
            "+ --duration) and reconnect them all at once (0: never)"),
};
const size_t bench_nopts = CHAT_CFG_COUNT(bench_opts);

static const struct bench_scenario *const scenarios[] = {&bench_fanout, &bench_churn, &bench_idle,
                                                         &bench_reconnect};
#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static void on_signal(int sig)
{
    (void)sig;
    bench_stop_signal = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: chat-bench SCENARIO [--option=value ...]\n\nScenarios:\n");
    for (size_t i = 0; i < NSCENARIOS; i++)
        fprintf(out, "  %-8s %s\n", scenarios[i]->name, scenarios[i]->summary);
    fprintf(out, "\nchat-bench SCENARIO --help lists the options. Exit status: 0 ok, 1 "
                 "correctness errors, 2 usage, 3 could not connect or out of time.\n");
}

static int parse_target(const char *s, size_t len, struct bench_target *t)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char buf[160], host[64], port[8] = "80";
    const char *p, *hend, *path;
    long long pn;
    int rc;

    if (len >= sizeof(buf))
        return CHAT_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    snprintf(t->url, sizeof(t->url), "%s", buf);
    if (strncmp(buf, "http://", 7) == 0)
        p = buf + 7;
    else if (strncmp(buf, "ws://", 5) == 0)
        p = buf + 5;
    else
        return CHAT_EINVAL;
    path = strchr(p, '/');
    hend = strchr(p, ':');
    if (!path)
        path = p + strlen(p);
    if (!hend || hend > path)
        hend = path;
    if (hend == p || (size_t)(hend - p) >= sizeof(host))
        return CHAT_EINVAL;
    memcpy(host, p, (size_t)(hend - p));
    host[hend - p] = '\0';
    if (*hend == ':') {
        if ((size_t)(path - hend - 1) >= sizeof(port))
            return CHAT_EINVAL;
        memcpy(port, hend + 1, (size_t)(path - hend - 1));
        port[path - hend - 1] = '\0';
    }
    if (chat_parse_ll(port, 1, 65535, &pn) != CHAT_OK)
        return CHAT_EINVAL;
    snprintf(t->path, sizeof(t->path), "%s", (*path && strcmp(path, "/") != 0) ? path : "/ws");
    snprintf(t->host, sizeof(t->host), "%s:%lld", host, pn);
    rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0 || !ai) {
        fprintf(stderr, "chat-bench: --url %s: %s\n", t->url, gai_strerror(rc));
        return CHAT_EINVAL;
    }
    memcpy(&t->addr, ai->ai_addr, sizeof(t->addr));
    t->loopback = (ntohl(t->addr.sin_addr.s_addr) >> 24) == 127;
    freeaddrinfo(ai);
    return CHAT_OK;
}

static int parse_targets(struct bench *b)
{
    const char *p = b->cfg.url;

    while (*p) {
        size_t len = strcspn(p, ",");
        if (len) {
            b->targets = chat_xrealloc(b->targets, (size_t)(b->ntargets + 1) * sizeof(*b->targets));
            memset(&b->targets[b->ntargets], 0, sizeof(*b->targets));
            if (parse_target(p, len, &b->targets[b->ntargets]) != CHAT_OK) {
                fprintf(stderr, "chat-bench: --url: '%.*s' is not http://host:port[/path]\n",
                        (int)len, p);
                return CHAT_EINVAL;
            }
            b->ntargets++;
        }
        p += len + (p[len] == ',');
    }
    if (!b->ntargets) {
        fprintf(stderr, "chat-bench: --url: no target\n");
        return CHAT_EINVAL;
    }
    return CHAT_OK;
}

static void add_src(struct bench *b, uint32_t host_order)
{
    b->srcs = chat_xrealloc(b->srcs, (size_t)(b->nsrcs + 1) * sizeof(*b->srcs));
    b->srcs[b->nsrcs++].s_addr = htonl(host_order);
}

/* "auto", "none", "" or A[-B][,...]. */
static int parse_srcs(struct bench *b, uint64_t conns)
{
    const char *p = b->cfg.src_addrs;
    uint64_t per_target = (conns + (uint64_t)b->ntargets - 1) / (uint64_t)b->ntargets;

    if (!*p || strcmp(p, "none") == 0)
        return CHAT_OK;
    if (strcmp(p, "auto") == 0) {
        bool loop = true;
        for (int i = 0; i < b->ntargets; i++)
            loop = loop && b->targets[i].loopback;
        if (per_target <= CONNS_PER_SOURCE || !loop)
            return CHAT_OK;
        for (uint64_t k = 0; k < (per_target + CONNS_PER_SOURCE - 1) / CONNS_PER_SOURCE; k++)
            add_src(b, 0x7F000001u + (uint32_t)k);
        chat_log(CHAT_LOG_INFO,
                 "%" PRIu64 " connections per target: %d source addresses 127.0.0.1..", per_target,
                 b->nsrcs);
        return CHAT_OK;
    }
    while (*p) {
        char item[40], *dash;
        struct in_addr lo, hi;
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof(item))
            goto bad;
        memcpy(item, p, len);
        item[len] = '\0';
        dash = strchr(item, '-');
        if (dash)
            *dash = '\0';
        if (inet_pton(AF_INET, item, &lo) != 1 || (dash && inet_pton(AF_INET, dash + 1, &hi) != 1))
            goto bad;
        if (!dash)
            hi = lo;
        if (ntohl(hi.s_addr) < ntohl(lo.s_addr) || ntohl(hi.s_addr) - ntohl(lo.s_addr) > 4096 ||
            b->nsrcs > 4096)
            goto bad;
        for (uint32_t a = ntohl(lo.s_addr); a <= ntohl(hi.s_addr); a++)
            add_src(b, a);
        p += len + (p[len] == ',');
    }
    if (b->nsrcs && per_target > (uint64_t)b->nsrcs * 28000)
        chat_log(CHAT_LOG_WARN,
                 "%" PRIu64 " connections per target over %d source addresses: "
                 "ephemeral ports may run out",
                 per_target, b->nsrcs);
    return CHAT_OK;
bad:
    fprintf(stderr,
            "chat-bench: --src-addrs '%s': expected A.B.C.D[-A.B.C.D][,...] (at most 4096)\n",
            b->cfg.src_addrs);
    return CHAT_EINVAL;
}

static int raise_nofile(uint64_t need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return CHAT_OK;
    if (rl.rlim_cur >= need)
        return CHAT_OK;
    if (rl.rlim_max < need) {
        struct rlimit up = {.rlim_cur = need, .rlim_max = need};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return CHAT_OK;
        fprintf(stderr,
                "chat-bench: %" PRIu64 " file descriptors needed, the hard limit is %llu "
                "(raise it: ulimit -Hn, or run as root)\n",
                need, (unsigned long long)rl.rlim_max);
        return CHAT_EINVAL;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "chat-bench: setrlimit(NOFILE, %" PRIu64 "): %s\n", need, strerror(errno));
        return CHAT_EINVAL;
    }
    return CHAT_OK;
}

/* --timeout 0: opening at --ramp (or at least 500/s) + warmup + duration + drain + margin. */
static int64_t time_bound(const struct bench *b, uint64_t conns)
{
    const struct bench_cfg *c = &b->cfg;
    int64_t open_s = (int64_t)(conns / (uint64_t)(c->ramp > 0 ? c->ramp : 500)) + 10;

    if (c->timeout)
        return c->timeout;
    if (b->sc_ops == &bench_churn)
        open_s = 0;
    if (c->start_at > 0 && c->start_at > time(NULL)) /* the wait before the load */
        open_s += c->start_at - time(NULL);
    return open_s + c->warmup + c->duration + c->drain + 30;
}

static void make_run_id(struct bench *b)
{
    unsigned char r[3];

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        uint64_t t = (uint64_t)bench_now_ns();
        memcpy(r, &t, sizeof(r));
    }
    snprintf(b->run_id, sizeof(b->run_id), "%02x%02x%02x", r[0], r[1], r[2]);
}

/* Options, scenario plan, targets, limits. Returns CHAT_OK, 1 (--help printed) or CHAT_EINVAL. */
static int setup(struct bench *b, int argc, char **argv, char **args)
{
    int rc, lvl;
    uint64_t conns;

    rc = chat_cfg_load(bench_opts, bench_nopts, &b->cfg, argc, args, b->sc_ops->summary);
    if (rc != CHAT_OK)
        return rc;
    (void)argv;
    lvl = chat_log_level_parse(b->cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "chat-bench: --log-level: debug, info, warn or error\n");
        return CHAT_EINVAL;
    }
    chat_log_init("chat-bench", lvl);
    if (chat_jwt_keyring_parse(b->cfg.jwt_keys, &b->kr) != CHAT_OK) {
        fprintf(stderr, "chat-bench: --jwt-keys (CHAT_JWT_KEYS): not a valid key ring "
                        "(secrets of at least 32 bytes)\n");
        return CHAT_EINVAL;
    }
    b->nworkers = b->cfg.threads;
    make_run_id(b);
    if (parse_targets(b) != CHAT_OK || b->sc_ops->prepare(b) != CHAT_OK)
        return CHAT_EINVAL;
    conns = (uint64_t)b->conns_per_worker * (uint64_t)b->nworkers;
    if (parse_srcs(b, conns) != CHAT_OK ||
        raise_nofile(conns + (uint64_t)b->cfg.half_open + 64) != CHAT_OK)
        return CHAT_EINVAL;
    b->t0_ns = bench_now_ns();
    b->last_progress_ns = b->t0_ns;
    b->started_wall = time(NULL);
    b->deadline_ns = b->t0_ns + time_bound(b, conns) * 1000000000LL;
    return CHAT_OK;
}

static void print_result(struct bench *b, int status)
{
    json_t *res;

    bench_progress_final(b);
    res = bench_report_build(b, status);
    if (b->cfg.json) {
        char *s = json_dumps(res, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        if (s)
            printf("%s\n", s);
        fflush(stdout);
        chat_free(s);
        bench_report_table(stderr, res);
    } else {
        bench_report_table(stdout, res);
    }
    json_decref(res);
    if (b->cfg.plot && b->cfg.plot[0])
        bench_report_plot(b, b->cfg.plot);
}

int main(int argc, char **argv)
{
    struct bench b;
    struct sigaction sa;
    char **args = NULL;
    int status = BENCH_EXIT_USAGE, rc;

    memset(&b, 0, sizeof(b));
    if (argc < 2 || argv[1][0] == '-') {
        bool help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
        usage(help ? stdout : stderr);
        return help ? 0 : BENCH_EXIT_USAGE;
    }
    for (size_t i = 0; i < NSCENARIOS; i++)
        if (strcmp(argv[1], scenarios[i]->name) == 0)
            b.sc_ops = scenarios[i];
    if (!b.sc_ops) {
        fprintf(stderr, "chat-bench: unknown scenario '%s'\n\n", argv[1]);
        usage(stderr);
        return BENCH_EXIT_USAGE;
    }
    args = chat_xcalloc((size_t)argc, sizeof(*args));
    args[0] = chat_xasprintf("chat-bench %s", b.sc_ops->name);
    for (int i = 2; i < argc; i++)
        args[i - 1] = argv[i];
    rc = setup(&b, argc - 1, argv, args);
    if (rc == 1) {
        status = BENCH_EXIT_OK;
        goto out;
    }
    if (rc != CHAT_OK)
        goto out;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (bench_half_open_start(&b) != CHAT_OK) {
        status = BENCH_EXIT_NOCONN;
        goto out;
    }
    bench_half_open_wait(&b, 10000);
    if (bench_engine_start(&b) != CHAT_OK) {
        bench_engine_stop(&b);
        bench_half_open_stop(&b);
        status = BENCH_EXIT_NOCONN;
        goto out;
    }
    status = b.sc_ops->run(&b);
    bench_engine_stop(&b);
    bench_half_open_stop(&b);
    print_result(&b, status);
out:
    bench_half_open_free(&b);
    if (b.sc_ops && b.sc_ops->fini)
        b.sc_ops->fini(&b);
    bench_engine_free(&b);
    chat_jwt_keyring_fini(&b.kr);
    chat_free(b.targets);
    chat_free(b.srcs);
    chat_free(b.samples);
    chat_free(b.hist_prev);
    chat_free(b.hist_win);
    chat_free(b.windows);
    chat_cfg_free(bench_opts, bench_nopts, &b.cfg);
    if (args)
        chat_free(args[0]);
    chat_free(args);
    return status;
}
