/* scenario_idle.c - hold C authenticated connections, each joined to one of --rooms rooms, and
 * report the servers' memory per connection: VmRSS and RssAnon of every --pids process are read
 * before opening (the baseline) and after --warmup seconds of settling plus --duration seconds
 * of holding; (after - before) / C is the cost of one idle connection. VmRSS also counts the
 * file-backed pages of code run for the first time (a fresh gateway maps about 2 MB of
 * libcrypto at its first token check): a one-time cost, shared with other processes, that
 * makes VmRSS per connection depend on C; RssAnon (heap and private mappings) is what each
 * connection holds. chat-bench's own RSS per connection is reported too. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat/config.h"
#include "chat/log.h"
#include "chat/mem.h"

#include "bench.h"

#define MAX_PIDS 16

struct id_client {
    bool joined;
    int64_t t_join_ns;
};

struct id_worker {
    struct bench_opener opener;
};

struct idle {
    struct id_client *clients; /* owns */
    struct id_worker *workers; /* owns */
    uint32_t nclients;
    long pids[MAX_PIDS];
    long before[MAX_PIDS + 1], after[MAX_PIDS + 1];   /* KiB; [npids] is chat-bench itself */
    long anon_before[MAX_PIDS], anon_after[MAX_PIDS]; /* RssAnon, KiB */
    int npids;
    atomic_ullong join_failed;
};

static int parse_pids(struct bench *b, struct idle *id)
{
    const char *p = b->cfg.pids;

    while (*p) {
        char item[24];
        size_t len = strcspn(p, ",");
        long long v;
        if (len == 0 || len >= sizeof(item) || id->npids == MAX_PIDS)
            goto bad;
        memcpy(item, p, len);
        item[len] = '\0';
        if (chat_parse_ll(item, 1, 4194304, &v) != CHAT_OK)
            goto bad;
        if (bench_rss_kb((long)v) < 0) {
            fprintf(stderr, "chat-bench: --pids: cannot read /proc/%lld/status\n", v);
            return CHAT_EINVAL;
        }
        id->pids[id->npids++] = (long)v;
        p += len;
        if (*p == ',')
            p++;
    }
    return CHAT_OK;
bad:
    fprintf(stderr, "chat-bench: --pids '%s': expected up to %d comma-separated process ids\n",
            b->cfg.pids, MAX_PIDS);
    return CHAT_EINVAL;
}

static int id_prepare(struct bench *b)
{
    struct idle *id = chat_xcalloc(1, sizeof(*id));

    b->sc = id;
    if (parse_pids(b, id) != CHAT_OK)
        return CHAT_EINVAL;
    if (b->cfg.rooms < 1) {
        fprintf(stderr, "chat-bench: idle needs --rooms >= 1\n");
        return CHAT_EINVAL;
    }
    id->nclients = (uint32_t)b->cfg.conns;
    id->clients = chat_xcalloc(id->nclients, sizeof(*id->clients));
    id->workers = chat_xcalloc((size_t)b->nworkers, sizeof(*id->workers));
    b->conns_per_worker = (id->nclients + (uint32_t)b->nworkers - 1) / (uint32_t)b->nworkers;
    return CHAT_OK;
}

static void *id_user(struct bench_worker *w, uint64_t cid)
{
    struct idle *id = w->b->sc;
    return &id->clients[cid];
}

static void id_worker_init(struct bench_worker *w)
{
    struct idle *id = w->b->sc;

    w->sc = &id->workers[w->idx];
    bench_opener_init(&id->workers[w->idx].opener, w, id->nclients);
}

static int64_t id_tick(struct bench_worker *w, int64_t now)
{
    struct id_worker *iw = w->sc;
    int64_t t, next = now + 100 * 1000000LL;

    if (atomic_load_explicit(&w->b->phase, memory_order_acquire) != BENCH_PH_OPEN)
        return next;
    t = bench_opener_tick(&iw->opener, w, now, id_user);
    return t < next ? t : next;
}

static void id_on_hello(struct bench_conn *c, const struct bench_frame *f, int64_t now)
{
    struct id_client *cl = c->user;
    char room[48], buf[160];
    size_t n;

    (void)f;
    /* consecutive ids share a room: clients of one room spread over the targets */
    snprintf(room, sizeof(room), "b%s-%" PRIu64, c->w->b->run_id,
             c->id * (uint64_t)c->w->b->cfg.rooms / (uint64_t)c->w->b->cfg.conns);
    n = bench_enc_room(buf, sizeof(buf), "join", room, "j");
    cl->t_join_ns = now;
    if (!n || !bench_send_text(c, buf, n))
        bench_close(c, now);
}

static void id_on_frame(struct bench_conn *c, const struct bench_frame *f, int64_t now)
{
    struct id_client *cl = c->user;
    struct idle *id = c->w->b->sc;

    if (f->type == CHAT_F_joined && !cl->joined) {
        cl->joined = true;
        bench_count(c->w, BENCH_C_joined, 1);
        chat_hist_record(&c->w->hist[BENCH_H_join], (uint64_t)(now - cl->t_join_ns) / 1000);
    } else if (f->type == CHAT_F_error) {
        bench_count_error(c->w, f);
        bench_count(c->w, BENCH_C_proto_errors, 1);
        if (!cl->joined) {
            atomic_fetch_add(&id->join_failed, 1);
            bench_close(c, now);
        }
    }
}

static bool all_joined(struct bench *b)
{
    struct idle *id = b->sc;
    unsigned long long done = bench_total(b, BENCH_C_joined) + bench_total(b, BENCH_C_conn_failed) +
                              bench_total(b, BENCH_C_conn_dropped) + atomic_load(&id->join_failed);
    return done >= id->nclients;
}

/* RssAnon of pid in KiB (/proc/PID/status), -1 when it cannot be read. */
static long anon_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "RssAnon:", 8) == 0) {
            char *end = NULL;
            errno = 0;
            kb = strtol(line + 8, &end, 10);
            if (errno != 0 || end == line + 8)
                kb = -1;
            break;
        }
    }
    fclose(f);
    return kb;
}

static void read_rss(struct idle *id, long *out, long *anon)
{
    for (int i = 0; i < id->npids; i++) {
        out[i] = bench_rss_kb(id->pids[i]);
        anon[i] = anon_kb(id->pids[i]);
    }
    out[id->npids] = bench_rss_kb(0);
}

static int id_run(struct bench *b)
{
    struct idle *id = b->sc;

    read_rss(id, id->before, id->anon_before);
    b->open_label = "joined";
    b->ready_ctr = BENCH_C_joined;
    b->ready_goal = id->nclients;
    bench_set_phase(b, BENCH_PH_OPEN);
    bench_wait(b, b->deadline_ns, all_joined);
    b->open_done_ns = bench_now_ns();
    if (bench_total(b, BENCH_C_joined) < id->nclients) {
        chat_log(CHAT_LOG_ERROR, "only %llu of %u connections joined their room",
                 bench_total(b, BENCH_C_joined), id->nclients);
        bench_engine_stop(b);
        return BENCH_EXIT_NOCONN;
    }
    b->run_start_ns = b->open_done_ns;
    bench_set_phase(b, BENCH_PH_RUN);
    if (!bench_wait(b, b->open_done_ns + (int64_t)(b->cfg.warmup + b->cfg.duration) * 1000000000LL,
                    NULL)) {
        bench_engine_stop(b);
        return BENCH_EXIT_NOCONN;
    }
    read_rss(id, id->after, id->anon_after);
    b->run_end_ns = bench_now_ns();
    bench_engine_stop(b);
    return bench_total(b, BENCH_C_conn_dropped) ? BENCH_EXIT_INCORRECT : BENCH_EXIT_OK;
}

static void id_report(struct bench *b, json_t *res)
{
    struct idle *id = b->sc;
    json_t *rss = json_object(), *arr = json_array();
    long long total = 0, anon_total = 0;
    bool ok = true, anon_ok = true;

    for (int i = 0; i < id->npids; i++) {
        long long d = id->after[i] - id->before[i];
        long long da = id->anon_after[i] - id->anon_before[i];
        json_array_append_new(
            arr, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "pid", (json_int_t)id->pids[i],
                           "before_kb", (json_int_t)id->before[i], "after_kb",
                           (json_int_t)id->after[i], "delta_kb", (json_int_t)d, "anon_before_kb",
                           (json_int_t)id->anon_before[i], "anon_after_kb",
                           (json_int_t)id->anon_after[i], "anon_delta_kb", (json_int_t)da));
        if (id->before[i] < 0 || id->after[i] < 0)
            ok = false;
        if (id->anon_before[i] < 0 || id->anon_after[i] < 0)
            anon_ok = false;
        total += d;
        anon_total += da;
    }
    json_object_set_new(rss, "pids", arr);
    json_object_set_new(rss, "conns", json_integer(id->nclients));
    if (id->npids && ok) {
        json_object_set_new(rss, "delta_kb", json_integer(total));
        json_object_set_new(rss, "bytes_per_conn",
                            json_real((double)total * 1024.0 / id->nclients));
    }
    if (id->npids && anon_ok) {
        json_object_set_new(rss, "anon_delta_kb", json_integer(anon_total));
        json_object_set_new(rss, "anon_bytes_per_conn",
                            json_real((double)anon_total * 1024.0 / id->nclients));
    }
    json_object_set_new(
        rss, "client_bytes_per_conn",
        json_real((double)(id->after[id->npids] - id->before[id->npids]) * 1024.0 / id->nclients));
    json_object_set_new(rss, "held_s", json_integer(b->cfg.warmup + b->cfg.duration));
    json_object_set_new(res, "rss", rss);
    json_object_set_new(res, "correctness",
                        json_pack("{s:I, s:b}", "dropped",
                                  (json_int_t)bench_total(b, BENCH_C_conn_dropped), "ok",
                                  bench_total(b, BENCH_C_conn_dropped) == 0));
}

static void id_fini(struct bench *b)
{
    struct idle *id = b->sc;

    if (!id)
        return;
    chat_free(id->clients);
    chat_free(id->workers);
    chat_free(id);
    b->sc = NULL;
}

const struct bench_scenario bench_idle = {
    .name = "idle",
    .summary = "hold --conns authenticated connections joined to --rooms rooms for --warmup + "
               "--duration s; with --pids, the servers' RSS per connection",
    .prepare = id_prepare,
    .run = id_run,
    .worker_init = id_worker_init,
    .tick = id_tick,
    .on_hello = id_on_hello,
    .on_frame = id_on_frame,
    .on_closed = NULL,
    .report = id_report,
    .fini = id_fini,
};
