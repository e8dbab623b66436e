/* scenario_churn.c - connection churn: --rate cycles per second for --duration seconds, each
 * cycle a fresh connection that does connect + authenticate (token at the handshake) + hello,
 * join, leave, close. At most --conns cycles are in flight (more are skipped and counted).
 * Reports completed cycles/s and the latency of each phase of a cycle. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "chat/log.h"
#include "chat/mem.h"

#include "bench.h"

enum ch_step {
    CH_HELLO = 0, /* waiting for hello (engine) */
    CH_JOIN,      /* join sent */
    CH_LEAVE,     /* leave sent */
    CH_CLOSE,     /* left received, close sent */
};

struct ch_cycle {
    enum ch_step step;
    int64_t t_step_ns;
    bool failed;
};

struct ch_worker {
    struct bench_pacer pacer;
    uint64_t next_id;
    struct ch_cycle *cycles; /* owns: one per connection slot */
};

struct ch {
    struct ch_worker *workers; /* owns */
};

static int ch_prepare(struct bench *b)
{
    struct ch *ch = chat_xcalloc(1, sizeof(*ch));

    b->sc = ch;
    if (b->cfg.rate < 1) {
        fprintf(stderr, "chat-bench: churn needs --rate >= 1 (cycles per second)\n");
        return CHAT_EINVAL;
    }
    if (b->cfg.rooms < 1) {
        fprintf(stderr, "chat-bench: churn needs --rooms >= 1\n");
        return CHAT_EINVAL;
    }
    b->conns_per_worker =
        ((uint32_t)b->cfg.conns + (uint32_t)b->nworkers - 1) / (uint32_t)b->nworkers;
    ch->workers = chat_xcalloc((size_t)b->nworkers, sizeof(*ch->workers));
    return CHAT_OK;
}

static void ch_worker_init(struct bench_worker *w)
{
    struct ch *ch = w->b->sc;
    struct ch_worker *cw = &ch->workers[w->idx];

    w->sc = cw;
    cw->pacer.rate = (double)w->b->cfg.rate / w->b->nworkers;
    cw->next_id = (uint64_t)w->idx;
    cw->cycles = chat_xcalloc(w->cap, sizeof(*cw->cycles));
}

static int64_t ch_tick(struct bench_worker *w, int64_t now)
{
    struct ch_worker *cw = w->sc;
    uint64_t due;

    if (atomic_load_explicit(&w->b->phase, memory_order_acquire) != BENCH_PH_RUN)
        return now + 100 * 1000000LL;
    for (due = bench_pacer_due(&cw->pacer, now); due > 0; due--) {
        struct bench_conn *c = bench_open(w, cw->next_id, NULL, now);
        cw->pacer.done++;
        if (!c) {
            bench_count(w, BENCH_C_cycles_skipped, 1);
            continue;
        }
        cw->next_id += (uint64_t)w->b->nworkers;
        if (c->state == BENCH_CS_DEAD)
            continue; /* failed at once; on_closed counted it */
        c->user = &cw->cycles[c - w->conns];
        memset(c->user, 0, sizeof(struct ch_cycle));
    }
    return bench_pacer_next(&cw->pacer);
}

static void
send_room(struct bench_conn *c, struct ch_cycle *cy, const char *type, enum ch_step st, int64_t now)
{
    char room[48], buf[160];
    size_t n;

    snprintf(room, sizeof(room), "b%s-%" PRIu64, c->w->b->run_id,
             c->id % (uint64_t)c->w->b->cfg.rooms);
    n = bench_enc_room(buf, sizeof(buf), type, room, type);
    cy->step = st;
    cy->t_step_ns = now;
    if (!n || !bench_send_text(c, buf, n)) {
        cy->failed = true;
        bench_close(c, now);
    }
}

static void ch_on_hello(struct bench_conn *c, const struct bench_frame *f, int64_t now)
{
    (void)f;
    if (c->user)
        send_room(c, c->user, "join", CH_JOIN, now);
}

static void ch_on_frame(struct bench_conn *c, const struct bench_frame *f, int64_t now)
{
    struct ch_cycle *cy = c->user;
    struct bench_worker *w = c->w;

    if (!cy)
        return;
    if (f->type == CHAT_F_joined && cy->step == CH_JOIN) {
        bench_count(w, BENCH_C_joined, 1);
        chat_hist_record(&w->hist[BENCH_H_join], (uint64_t)(now - cy->t_step_ns) / 1000);
        send_room(c, cy, "leave", CH_LEAVE, now);
    } else if (f->type == CHAT_F_left && cy->step == CH_LEAVE) {
        chat_hist_record(&w->hist[BENCH_H_leave], (uint64_t)(now - cy->t_step_ns) / 1000);
        cy->step = CH_CLOSE;
        cy->t_step_ns = now;
        bench_close(c, now);
    } else if (f->type == CHAT_F_error) {
        bench_count_error(w, f);
        bench_count(w, BENCH_C_proto_errors, 1);
        cy->failed = true;
        bench_close(c, now);
    }
}

static void ch_on_closed(struct bench_conn *c, int64_t now)
{
    struct ch_cycle *cy = c->user;
    struct bench_worker *w = c->w;

    if (cy && !cy->failed && cy->step == CH_CLOSE && c->we_closed) {
        bench_count(w, BENCH_C_cycles, 1);
        chat_hist_record(&w->hist[BENCH_H_cycle], (uint64_t)(now - c->t_start_ns) / 1000);
        return;
    }
    bench_count(w, BENCH_C_cycles_failed, 1);
}

static bool all_ended(struct bench *b)
{
    return bench_total(b, BENCH_C_cycles) + bench_total(b, BENCH_C_cycles_failed) >=
           bench_total(b, BENCH_C_conn_started);
}

static int ch_run(struct bench *b)
{
    int64_t now = bench_now_ns();

    b->open_done_ns = now;
    b->run_start_ns = now;
    atomic_store(&b->win_start_ns, now);
    atomic_store(&b->win_end_ns, now + (int64_t)b->cfg.duration * 1000000000LL);
    bench_set_phase(b, BENCH_PH_RUN);
    if (!bench_wait(b, atomic_load(&b->win_end_ns), NULL)) {
        bench_engine_stop(b);
        return BENCH_EXIT_NOCONN;
    }
    b->run_end_ns = bench_now_ns();
    bench_set_phase(b, BENCH_PH_DRAIN);
    /* a cycle has 10 s to connect and 3 s to close (engine timeouts) */
    bench_wait(b, b->run_end_ns + ((int64_t)b->cfg.drain + 13) * 1000000000LL, all_ended);
    bench_engine_stop(b);
    if (b->interrupted || b->timed_out || bench_total(b, BENCH_C_cycles) == 0)
        return BENCH_EXIT_NOCONN;
    if (bench_total(b, BENCH_C_cycles_failed))
        return BENCH_EXIT_INCORRECT;
    return BENCH_EXIT_OK;
}

static void ch_report(struct bench *b, json_t *res)
{
    static const struct {
        const char *key;
        enum bench_hist_id h;
    } phases[] = {{"connect_hello", BENCH_H_connect},
                  {"join", BENCH_H_join},
                  {"leave", BENCH_H_leave},
                  {"close", BENCH_H_close},
                  {"cycle", BENCH_H_cycle}};
    struct chat_hist *h = chat_xcalloc(1, sizeof(*h));
    json_t *ph = json_object();
    double secs = (double)b->cfg.duration;

    json_object_set_new(res, "cycles",
                        json_pack("{s:I, s:I, s:I, s:I, s:f, s:f}", "started",
                                  (json_int_t)bench_total(b, BENCH_C_conn_started), "completed",
                                  (json_int_t)bench_total(b, BENCH_C_cycles), "failed",
                                  (json_int_t)bench_total(b, BENCH_C_cycles_failed), "skipped",
                                  (json_int_t)bench_total(b, BENCH_C_cycles_skipped),
                                  "target_per_s", (double)b->cfg.rate, "per_s",
                                  (double)bench_total(b, BENCH_C_cycles) / secs));
    for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
        bench_hist_total(b, phases[i].h, h);
        bench_report_hist(ph, phases[i].key, h);
    }
    json_object_set_new(res, "phases_ms", ph);
    json_object_set_new(res, "correctness",
                        json_pack("{s:I, s:b}", "failed_cycles",
                                  (json_int_t)bench_total(b, BENCH_C_cycles_failed), "ok",
                                  bench_total(b, BENCH_C_cycles_failed) == 0));
    chat_free(h);
}

static void ch_fini(struct bench *b)
{
    struct ch *ch = b->sc;

    if (!ch)
        return;
    for (int i = 0; ch->workers && i < b->nworkers; i++)
        chat_free(ch->workers[i].cycles);
    chat_free(ch->workers);
    chat_free(ch);
    b->sc = NULL;
}

const struct bench_scenario bench_churn = {
    .name = "churn",
    .summary = "--rate cycles/s for --duration s, each connect + authenticate + join + leave + "
               "close (at most --conns in flight): cycles/s and the latency of each phase",
    .prepare = ch_prepare,
    .run = ch_run,
    .worker_init = ch_worker_init,
    .tick = ch_tick,
    .on_hello = ch_on_hello,
    .on_frame = ch_on_frame,
    .on_closed = ch_on_closed,
    .report = ch_report,
    .fini = ch_fini,
};
