/* scenario_reconnect.c - the fanout load (scenario_fanout.c) while receivers vanish and come
 * back: every --reconnect-every-ms a --reconnect-share of the receiving connections (clients
 * that do not send) is cut abruptly (TCP reset, no close frame), reconnects at once and joins its
 * room again with since = the last seq it held. Each reconnect of a client goes to the next
 * --url target, so with both gateways as targets a client alternates between them. Expected:
 * joined with recovered true, then the replayed and the live messages continue the prev chain
 * with no gap, no duplicate and no loss (the fanout checks, over the client's whole life).
 * --reconnect-all-at-ms T cuts every receiver at once T ms into the load (the "N clients
 * reconnecting at once" figure). Recovery time: from the cut to the joined frame.
 *
 * A receiver is cut only while it is open, joined and holds a seq (since needs one); the others
 * are skipped until the next period. A not-recovered join, a reconnect that ends before joined,
 * a gap, a duplicate or a loss fails the run (exit 1), as does a run that cut nothing.
 *
 * Thread-safety: struct rc is planned by the main thread; a client's rc_client and a worker's
 * rc_worker are then written by that worker only and read by the main thread after the workers
 * stopped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat/log.h"
#include "chat/mem.h"

#include "bench.h"
#include "scenario_fanout.h"

#define NS_PER_MS 1000000LL

enum rc_state {
    RC_IDLE = 0,  /* connected (or never cut) */
    RC_CUT,       /* bench_cut() in progress: on_closed queues the reopen */
    RC_PENDING,   /* cut, waiting for its slot to be released (next tick) */
    RC_REJOINING, /* reopened: waiting for hello, then for joined */
};

struct rc_client {
    enum rc_state state;
    uint32_t gen;     /* reconnects so far: the target is the client's own + gen */
    int64_t t_cut_ns; /* the last cut */
};

struct rc_worker {
    uint32_t *recv; /* owns: ids of this worker's receivers */
    uint32_t nrecv, cursor;
    uint32_t *pending; /* owns: cut clients to reopen (at most nrecv) */
    uint32_t npending;
    int64_t next_cut_ns;  /* next periodic cut; 0 until the load started */
    bool all_done;        /* --reconnect-all-at-ms happened */
    uint64_t cut_at_once; /* receivers cut by --reconnect-all-at-ms */
    uint64_t skipped;     /* receivers passed over: not open, joined or holding a seq */
};

struct rc {
    struct rc_client *clients; /* owns: one per fanout client */
    struct rc_worker *workers; /* owns: one per worker */
    double share;              /* --reconnect-share, parsed */
};

static struct rc *rc_of(const struct bench *b)
{
    return ((struct fo *)b->sc)->ext;
}

static int rc_prepare(struct bench *b)
{
    const struct bench_cfg *cfg = &b->cfg;
    struct fo *fo;
    struct rc *rc;
    char *end = NULL;
    double share;
    long long load_ms = ((long long)cfg->warmup + cfg->duration) * 1000;

    if (bench_fo_prepare(b) != CHAT_OK)
        return CHAT_EINVAL;
    fo = b->sc;
    errno = 0;
    share = strtod(cfg->reconnect_share, &end);
    if (errno || end == cfg->reconnect_share || *end || !(share > 0 && share <= 1)) {
        fprintf(stderr, "chat-bench: --reconnect-share '%s': expected a number in (0, 1]\n",
                cfg->reconnect_share);
        return CHAT_EINVAL;
    }
    if (cfg->reconnect_every_ms == 0 && cfg->reconnect_all_at_ms == 0) {
        fprintf(stderr, "chat-bench: reconnect needs --reconnect-every-ms or "
                        "--reconnect-all-at-ms\n");
        return CHAT_EINVAL;
    }
    if (cfg->reconnect_all_at_ms >= load_ms) {
        fprintf(stderr,
                "chat-bench: --reconnect-all-at-ms %d is not inside the load (--warmup + "
                "--duration = %lld ms)\n",
                cfg->reconnect_all_at_ms, load_ms);
        return CHAT_EINVAL;
    }
    if (fo->nsenders >= fo->nclients) {
        fprintf(stderr, "chat-bench: reconnect needs receivers: --senders below the "
                        "connections\n");
        return CHAT_EINVAL;
    }
    rc = chat_xcalloc(1, sizeof(*rc));
    fo->ext = rc;
    rc->share = share;
    rc->clients = chat_xcalloc(fo->nclients, sizeof(*rc->clients));
    rc->workers = chat_xcalloc((size_t)b->nworkers, sizeof(*rc->workers));
    return CHAT_OK;
}

/* ---- worker side ---- */

static void rc_worker_init(struct bench_worker *w)
{
    struct fo *fo = w->b->sc;
    struct rc_worker *rw = &rc_of(w->b)->workers[w->idx];
    uint32_t n = 0;

    bench_fo_worker_init(w);
    for (uint32_t id = (uint32_t)w->idx; id < fo->nclients; id += (uint32_t)w->b->nworkers)
        n += fo->clients[id].snd ? 0 : 1;
    rw->recv = chat_xcalloc(n ? n : 1, sizeof(*rw->recv));
    rw->pending = chat_xcalloc(n ? n : 1, sizeof(*rw->pending));
    for (uint32_t id = (uint32_t)w->idx; id < fo->nclients; id += (uint32_t)w->b->nworkers)
        if (!fo->clients[id].snd)
            rw->recv[rw->nrecv++] = id;
}

/* Cuts up to want receivers, round-robin from the cursor; returns how many. */
static uint32_t cut_some(struct bench_worker *w, struct rc_worker *rw, uint32_t want, int64_t now)
{
    struct fo *fo = w->b->sc;
    struct rc *rc = fo->ext;
    uint32_t done = 0;

    for (uint32_t k = 0; k < rw->nrecv && done < want; k++) {
        uint32_t id = rw->recv[rw->cursor];
        struct fo_client *cl = &fo->clients[id];
        struct rc_client *rcl = &rc->clients[id];

        rw->cursor = (rw->cursor + 1) % rw->nrecv;
        if (rcl->state != RC_IDLE || !cl->conn || cl->conn->state != BENCH_CS_OPEN || !cl->joined ||
            cl->track.last < 0) {
            rw->skipped++;
            continue;
        }
        rcl->state = RC_CUT;
        rcl->t_cut_ns = now;
        rcl->gen++;
        bench_cut(cl->conn, now); /* on_closed queues it in rw->pending */
        done++;
    }
    return done;
}

/* Reopens the cut clients whose slots were released, each to its next target. */
static void reopen(struct bench_worker *w, struct rc_worker *rw, int64_t now)
{
    const struct bench *b = w->b;
    struct fo *fo = b->sc;
    struct rc *rc = fo->ext;
    uint32_t k = 0;

    for (; k < rw->npending; k++) {
        uint32_t id = rw->pending[k];
        struct rc_client *rcl = &rc->clients[id];
        int target = (int)((id / (uint32_t)b->nworkers + rcl->gen) % (uint32_t)b->ntargets);

        rcl->state = RC_REJOINING; /* before: a socket failure calls on_closed at once */
        if (!bench_open_to(w, id, target, &fo->clients[id], now)) {
            rcl->state = RC_PENDING; /* no free slot yet */
            break;
        }
    }
    memmove(rw->pending, rw->pending + k, (rw->npending - k) * sizeof(*rw->pending));
    rw->npending -= k;
}

static int64_t rc_tick(struct bench_worker *w, int64_t now)
{
    struct bench *b = w->b;
    struct rc *rc = rc_of(b);
    struct rc_worker *rw = &rc->workers[w->idx];
    int phase = atomic_load_explicit(&b->phase, memory_order_acquire);
    int64_t next = bench_fo_tick(w, now);

    if (rw->npending && (phase == BENCH_PH_RUN || phase == BENCH_PH_DRAIN))
        reopen(w, rw, now);
    if (phase == BENCH_PH_RUN && rw->nrecv) {
        int64_t t0 = b->run_start_ns; /* written before the phase (acquire above) */
        if (b->cfg.reconnect_all_at_ms > 0 && !rw->all_done) {
            int64_t at = t0 + b->cfg.reconnect_all_at_ms * NS_PER_MS;
            if (now >= at) {
                rw->cut_at_once = cut_some(w, rw, rw->nrecv, now);
                rw->all_done = true;
            } else if (at < next) {
                next = at;
            }
        }
        if (b->cfg.reconnect_every_ms > 0) {
            int64_t every = b->cfg.reconnect_every_ms * NS_PER_MS;
            if (!rw->next_cut_ns)
                rw->next_cut_ns = t0 + every;
            if (now >= rw->next_cut_ns) {
                double want = rc->share * rw->nrecv + 0.999999;
                if (cut_some(w, rw, want < 1 ? 1 : (uint32_t)want, now) == 0)
                    chat_log(CHAT_LOG_WARN,
                             "worker %d: %.0f ms into the load: no receiver to cut "
                             "(none open, joined and holding a seq)",
                             w->idx, (double)(now - t0) / 1e6);
                rw->next_cut_ns += every;
                if (rw->next_cut_ns <= now)
                    rw->next_cut_ns = now + every;
            }
            if (rw->next_cut_ns < next)
                next = rw->next_cut_ns;
        }
    }
    return rw->npending ? now : next;
}

static void rc_on_hello(struct bench_conn *c, const struct bench_frame *f, int64_t now)
{
    struct fo *fo = c->w->b->sc;
    struct fo_client *cl = c->user;
    struct rc_client *rcl = &rc_of(c->w->b)->clients[cl - fo->clients];
    char buf[192];
    size_t n;

    if (rcl->state != RC_REJOINING) {
        bench_fo_on_hello(c, f, now);
        return;
    }
    cl->conn = c;
    n = bench_enc_join_since(buf, sizeof(buf), fo->rooms[cl->room].name, cl->track.last, "r");
    if (!n || !bench_send_text(c, buf, n))
        bench_close(c, now); /* on_closed counts the reconnect as failed */
}

static void rc_on_frame(struct bench_conn *c, const struct bench_frame *f, int64_t now)
{
    struct bench_worker *w = c->w;
    struct fo *fo = w->b->sc;
    struct fo_client *cl = c->user;
    struct rc_client *rcl = &rc_of(w->b)->clients[cl - fo->clients];

    if (rcl->state == RC_REJOINING && f->type == CHAT_F_joined) {
        int64_t t = bench_now_ns(); /* fresh: `now` was taken before this batch of reads */
        chat_hist_record(&w->hist[BENCH_H_recovery],
                         t > rcl->t_cut_ns ? (uint64_t)(t - rcl->t_cut_ns) / 1000 : 0);
        if (f->recovered == 1) {
            bench_count(w, BENCH_C_rejoin_ok, 1);
            bench_count(w, BENCH_C_replayed, f->replayed > 0 ? (unsigned long long)f->replayed : 0);
        } else {
            bench_count(w, BENCH_C_rejoin_miss, 1);
        }
        rcl->state = RC_IDLE;
        return;
    }
    if (rcl->state == RC_REJOINING && f->type == CHAT_F_error) { /* the join was refused */
        bench_count_error(w, f);
        bench_count(w, BENCH_C_proto_errors, 1);
        bench_count(w, BENCH_C_rejoin_failed, 1);
        rcl->state = RC_IDLE;
        bench_close(c, now);
        return;
    }
    bench_fo_on_frame(c, f, now);
}

static void rc_on_closed(struct bench_conn *c, int64_t now)
{
    struct bench_worker *w = c->w;
    struct fo *fo = w->b->sc;
    struct fo_client *cl = c->user;
    struct rc *rc = rc_of(w->b);
    struct rc_client *rcl;
    uint32_t id;

    bench_fo_on_closed(c, now);
    if (!cl)
        return;
    id = (uint32_t)(cl - fo->clients);
    rcl = &rc->clients[id];
    if (rcl->state == RC_CUT && c->cut) {
        struct rc_worker *rw = &rc->workers[w->idx];
        rcl->state = RC_PENDING;
        rw->pending[rw->npending++] = id; /* a client is pending at most once */
    } else if (rcl->state == RC_REJOINING) {
        bench_count(w, BENCH_C_rejoin_failed, 1); /* failed or dropped before joined */
        rcl->state = RC_IDLE;
    }
}

/* ---- main thread ---- */

static int rc_run(struct bench *b)
{
    int status = bench_fo_run(b);
    unsigned long long cut = bench_total(b, BENCH_C_conn_cut);
    unsigned long long ok = bench_total(b, BENCH_C_rejoin_ok);
    unsigned long long miss = bench_total(b, BENCH_C_rejoin_miss);
    unsigned long long failed = bench_total(b, BENCH_C_rejoin_failed);

    if (status != BENCH_EXIT_OK && status != BENCH_EXIT_INCORRECT)
        return status;
    if (cut == 0) {
        chat_log(CHAT_LOG_ERROR, "no connection was cut: no receiver held a seq in time");
        return BENCH_EXIT_INCORRECT;
    }
    if (miss || failed || ok < cut) {
        chat_log(CHAT_LOG_ERROR,
                 "%llu cut: %llu recovered, %llu not recovered, %llu failed, %llu unanswered", cut,
                 ok, miss, failed, cut > ok + miss + failed ? cut - ok - miss - failed : 0);
        return BENCH_EXIT_INCORRECT;
    }
    return status;
}

static void rc_report(struct bench *b, json_t *res)
{
    struct rc *rc = rc_of(b);
    struct chat_hist *h = chat_xcalloc(1, sizeof(*h));
    unsigned long long cut = bench_total(b, BENCH_C_conn_cut);
    unsigned long long ok = bench_total(b, BENCH_C_rejoin_ok);
    unsigned long long miss = bench_total(b, BENCH_C_rejoin_miss);
    unsigned long long failed = bench_total(b, BENCH_C_rejoin_failed);
    uint64_t at_once = 0, skipped = 0;
    bool good = cut > 0 && ok == cut && miss == 0 && failed == 0;
    json_t *rec, *corr;

    bench_fo_report(b, res);
    for (int i = 0; rc && i < b->nworkers; i++) {
        at_once += rc->workers[i].cut_at_once;
        skipped += rc->workers[i].skipped;
    }
    rec = json_pack("{s:i, s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "every_ms",
                    b->cfg.reconnect_every_ms, "share", rc ? rc->share : 0.0, "all_at_ms",
                    b->cfg.reconnect_all_at_ms, "cut", (json_int_t)cut, "cut_at_once",
                    (json_int_t)at_once, "skipped", (json_int_t)skipped, "recovered",
                    (json_int_t)ok, "not_recovered", (json_int_t)miss, "failed", (json_int_t)failed,
                    "replayed", (json_int_t)bench_total(b, BENCH_C_replayed));
    bench_hist_total(b, BENCH_H_recovery, h);
    bench_report_hist(rec, "recovery_ms", h);
    json_object_set_new(rec, "ok", json_boolean(good));
    json_object_set_new(res, "reconnect", rec);
    corr = json_object_get(res, "correctness");
    if (corr && !good)
        json_object_set_new(corr, "ok", json_false());
    chat_free(h);
}

static void rc_fini(struct bench *b)
{
    struct fo *fo = b->sc;
    struct rc *rc = fo ? fo->ext : NULL;

    if (rc) {
        for (int i = 0; rc->workers && i < b->nworkers; i++) {
            chat_free(rc->workers[i].recv);
            chat_free(rc->workers[i].pending);
        }
        chat_free(rc->workers);
        chat_free(rc->clients);
        chat_free(rc);
        fo->ext = NULL;
    }
    bench_fo_fini(b);
}

const struct bench_scenario bench_reconnect = {
    .name = "reconnect",
    .summary = "fanout load while receivers are cut (--reconnect-every-ms, --reconnect-share, "
               "--reconnect-all-at-ms) and rejoin with since: recovery time, replayed, "
               "gaps/duplicates/lost",
    .prepare = rc_prepare,
    .run = rc_run,
    .worker_init = rc_worker_init,
    .tick = rc_tick,
    .on_hello = rc_on_hello,
    .on_frame = rc_on_frame,
    .on_closed = rc_on_closed,
    .report = rc_report,
    .fini = rc_fini,
};
