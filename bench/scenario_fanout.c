/* scenario_fanout.c - C connections over R rooms (--room-mix), S of them sending --rate
 * messages/s in total; every receipt is timed and checked by seq.
 *
 * Plan (main thread, prepare): rooms get consecutive blocks of client ids, so each room spreads
 * over the workers and the targets (a client's worker is id % threads, its target
 * (id / threads) % targets). Senders are spread over the rooms round-robin. Run: open and join
 * everything (phase OPEN), then load for --warmup + --duration seconds (RUN; only messages sent
 * in the measured window count for latency and rates), then stop sending and wait up to
 * --drain seconds for every ack and every expected delivery (DRAIN). Loss is counted at the end
 * against the acked seqs of each room. Every delivery is also checked against the prev chain
 * (bench_track_msg): a message whose prev is not the last seq its receiver held is a gap. */
#include "scenario_fanout.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sys/resource.h>

#include <jansson.h>

#include "chat/config.h"
#include "chat/log.h"
#include "chat/mem.h"

#include "bench.h"
#include "bench_track.h"

/* ---- plan ---- */

/* "uniform" (--conns over --rooms) or "SIZE:COUNT[,SIZE:COUNT...]". */
static int parse_mix(struct bench *b, struct fo *fo)
{
    const char *mix = b->cfg.room_mix;
    uint64_t total = 0;

    if (strcmp(mix, "uniform") == 0) {
        uint32_t r = (uint32_t)b->cfg.rooms, c = (uint32_t)b->cfg.conns;
        if (r > c) {
            fprintf(stderr, "chat-bench: --rooms (%u) is larger than --conns (%u)\n", r, c);
            return CHAT_EINVAL;
        }
        fo->nrooms = r;
        fo->rooms = chat_xcalloc(r, sizeof(*fo->rooms));
        for (uint32_t i = 0; i < r; i++)
            fo->rooms[i].size = c / r + (i < c % r ? 1 : 0);
        return CHAT_OK;
    }
    for (const char *p = mix; *p;) {
        char item[64], *colon;
        size_t len = strcspn(p, ",");
        long long size, count;
        if (len == 0 || len >= sizeof(item))
            goto bad;
        memcpy(item, p, len);
        item[len] = '\0';
        colon = strchr(item, ':');
        if (!colon)
            goto bad;
        *colon = '\0';
        if (chat_parse_ll(item, 1, 1000000, &size) != CHAT_OK ||
            chat_parse_ll(colon + 1, 1, 1000000, &count) != CHAT_OK)
            goto bad;
        total += (uint64_t)(size * count);
        if (total > 10000000 || fo->nrooms + (uint64_t)count > 1000000)
            goto bad;
        fo->rooms = chat_xrealloc(fo->rooms, (fo->nrooms + (size_t)count) * sizeof(*fo->rooms));
        for (long long i = 0; i < count; i++) {
            memset(&fo->rooms[fo->nrooms], 0, sizeof(*fo->rooms));
            fo->rooms[fo->nrooms++].size = (uint32_t)size;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    if (fo->nrooms)
        return CHAT_OK;
bad:
    fprintf(stderr,
            "chat-bench: --room-mix '%s': expected \"uniform\" or SIZE:COUNT[,SIZE:COUNT...] "
            "(e.g. 1000:1,10:50)\n",
            mix);
    return CHAT_EINVAL;
}

static struct fo_sender *sender_new(const char *room, size_t size)
{
    struct fo_sender *s = chat_xcalloc(1, sizeof(*s));
    if (bench_tpl_init(&s->tpl, room, size) != CHAT_OK) {
        chat_free(s);
        return NULL;
    }
    return s;
}

/* Sender j goes to room j % nrooms (then the next room with a member that does not send yet). */
static int pick_senders(struct bench *b, struct fo *fo)
{
    uint32_t *used;
    int rc = CHAT_OK;

    if (fo->nrooms == 0)
        return CHAT_EINVAL;
    used = chat_xcalloc(fo->nrooms, sizeof(*used));

    for (uint32_t j = 0; j < (uint32_t)b->cfg.senders && rc == CHAT_OK; j++) {
        uint32_t r = j % fo->nrooms, tries = 0;
        while (used[r] >= fo->rooms[r].size && tries++ < fo->nrooms)
            r = (r + 1) % fo->nrooms;
        if (used[r] >= fo->rooms[r].size) {
            fprintf(stderr, "chat-bench: more --senders than connections\n");
            rc = CHAT_EINVAL;
            break;
        }
        struct fo_client *cl = &fo->clients[fo->rooms[r].first + used[r]++];
        cl->snd = sender_new(fo->rooms[r].name, (size_t)b->cfg.size);
        if (!cl->snd) {
            fprintf(stderr, "chat-bench: cannot build the send frame (room '%s', size %d)\n",
                    fo->rooms[r].name, b->cfg.size);
            rc = CHAT_EINVAL;
        }
        fo->nsenders++;
    }
    chat_free(used);
    return rc;
}

int bench_fo_prepare(struct bench *b)
{
    struct fo *fo = chat_xcalloc(1, sizeof(*fo));
    uint32_t id = 0;

    b->sc = fo;
    if (parse_mix(b, fo) != CHAT_OK)
        return CHAT_EINVAL;
    for (uint32_t r = 0; r < fo->nrooms; r++) {
        snprintf(fo->rooms[r].name, sizeof(fo->rooms[r].name), "b%s-%" PRIu32, b->run_id, r);
        fo->rooms[r].first = id;
        id += fo->rooms[r].size;
    }
    fo->nclients = id;
    if (strcmp(b->cfg.room_mix, "uniform") != 0 && (uint32_t)b->cfg.conns != id)
        chat_log(CHAT_LOG_INFO, "--room-mix %s: %u connections in %u rooms (--conns ignored)",
                 b->cfg.room_mix, id, fo->nrooms);
    fo->clients = chat_xcalloc(fo->nclients, sizeof(*fo->clients));
    for (uint32_t r = 0; r < fo->nrooms; r++)
        for (uint32_t k = 0; k < fo->rooms[r].size; k++) {
            struct fo_client *cl = &fo->clients[fo->rooms[r].first + k];
            cl->room = r;
            bench_track_init(&cl->track);
        }
    if (b->cfg.senders < 1) {
        fprintf(stderr, "chat-bench: fanout needs --senders >= 1\n");
        return CHAT_EINVAL;
    }
    if (pick_senders(b, fo) != CHAT_OK)
        return CHAT_EINVAL;
    b->conns_per_worker = (fo->nclients + (uint32_t)b->nworkers - 1) / (uint32_t)b->nworkers;
    fo->workers = chat_xcalloc((size_t)b->nworkers, sizeof(*fo->workers));
    return CHAT_OK;
}

/* ---- worker side ---- */

static void *fo_user(struct bench_worker *w, uint64_t id)
{
    struct fo *fo = w->b->sc;
    return &fo->clients[id];
}

void bench_fo_worker_init(struct bench_worker *w)
{
    struct bench *b = w->b;
    struct fo *fo = b->sc;
    struct fo_worker *fw = &fo->workers[w->idx];

    w->sc = fw;
    bench_opener_init(&fw->opener, w, fo->nclients);
    fw->senders = chat_xcalloc(fo->nsenders ? fo->nsenders : 1, sizeof(*fw->senders));
    for (uint32_t id = (uint32_t)w->idx; id < fo->nclients; id += (uint32_t)b->nworkers)
        if (fo->clients[id].snd)
            fw->senders[fw->nsenders++] = id;
    fw->send.rate = (double)b->cfg.rate * fw->nsenders / fo->nsenders;
    fw->text = chat_xmalloc((size_t)b->cfg.size + 1);
}

static void send_one(struct bench_worker *w, struct fo_worker *fw, uint32_t id)
{
    struct bench *b = w->b;
    struct fo_client *cl = &((struct fo *)b->sc)->clients[id];
    struct fo_sender *s = cl->snd;
    int64_t ns;

    if (!cl->conn || cl->conn->state != BENCH_CS_OPEN || !cl->joined ||
        s->inflight >= (uint32_t)b->cfg.max_inflight || s->ring[s->n % RING]) {
        bench_count(w, BENCH_C_throttled, 1);
        return;
    }
    ns = bench_now_ns();
    bench_text_fill(fw->text, s->tpl.text_len, id, s->n, ns);
    bench_tpl_fill(&s->tpl, s->n, fw->text);
    if (!bench_send_text(cl->conn, s->tpl.buf, s->tpl.len)) {
        bench_count(w, BENCH_C_throttled, 1);
        return;
    }
    s->ring[s->n % RING] = ns;
    s->inflight++;
    s->n++;
    bench_count(w, BENCH_C_sent, 1);
}

int64_t bench_fo_tick(struct bench_worker *w, int64_t now)
{
    struct bench *b = w->b;
    struct fo_worker *fw = w->sc;
    int phase = atomic_load_explicit(&b->phase, memory_order_acquire);
    int64_t next = now + 100 * 1000000LL, t;
    uint64_t due;

    fw->win_start = atomic_load_explicit(&b->win_start_ns, memory_order_relaxed);
    fw->win_end = atomic_load_explicit(&b->win_end_ns, memory_order_relaxed);
    if (phase == BENCH_PH_OPEN || phase == BENCH_PH_RUN) {
        t = bench_opener_tick(&fw->opener, w, now, fo_user);
        if (t < next)
            next = t;
    }
    if (phase != BENCH_PH_RUN || fw->nsenders == 0)
        return next;
    due = bench_pacer_due(&fw->send, now);
    if (due > 100000) { /* more than can be caught up: skip, and say so */
        bench_count(w, BENCH_C_throttled, due - 100000);
        fw->send.done += due - 100000;
        due = 100000;
    }
    for (; due > 0; due--) {
        send_one(w, fw, fw->senders[fw->rr++ % fw->nsenders]);
        fw->send.done++;
    }
    t = bench_pacer_next(&fw->send);
    return t < next ? t : next;
}

void bench_fo_on_hello(struct bench_conn *c, const struct bench_frame *f, int64_t now)
{
    struct fo *fo = c->w->b->sc;
    struct fo_client *cl = c->user;
    char buf[160];
    size_t n = bench_enc_room(buf, sizeof(buf), "join", fo->rooms[cl->room].name, "j");

    (void)f;
    cl->conn = c;
    cl->t_join_ns = now;
    if (!n || !bench_send_text(c, buf, n))
        bench_close(c, now);
}

static void
on_ack(struct bench_conn *c, struct fo_client *cl, const struct bench_frame *f, int64_t now)
{
    (void)now; /* latency uses a fresh clock */
    struct bench_worker *w = c->w;
    struct fo_worker *fw = w->sc;
    struct fo *fo = w->b->sc;
    struct fo_sender *s = cl->snd;
    uint64_t ref;
    int64_t sent;

    if (!s || !bench_ref_parse(f->ref, f->ref_len, &ref) || !s->ring[ref % RING] || f->seq < 0) {
        bench_count(w, BENCH_C_proto_errors, 1);
        return;
    }
    sent = s->ring[ref % RING];
    s->ring[ref % RING] = 0;
    s->inflight--;
    bench_seqs_push(&s->acked, f->seq);
    bench_count(w, BENCH_C_acked, 1);
    bench_count(w, BENCH_C_expected, fo->rooms[cl->room].size);
    if (sent >= fw->win_start && sent < fw->win_end) {
        bench_count(w, BENCH_C_acked_window, 1);
        int64_t t = bench_now_ns(); /* fresh: see on_message */
        chat_hist_record(&w->hist[BENCH_H_ack], t > sent ? (uint64_t)(t - sent) / 1000 : 0);
    }
}

static void
on_error(struct bench_conn *c, struct fo_client *cl, const struct bench_frame *f, int64_t now)
{
    struct bench_worker *w = c->w;
    struct fo *fo = w->b->sc;
    enum chat_errcode e = bench_frame_errcode(f);
    uint64_t ref;

    bench_count_error(w, f);
    if (cl->snd && bench_ref_parse(f->ref, f->ref_len, &ref) && cl->snd->ring[ref % RING]) {
        cl->snd->ring[ref % RING] = 0;
        cl->snd->inflight--;
        bench_count(w,
                    e == CHAT_ERR_rate_limited || e == CHAT_ERR_overloaded ? BENCH_C_refused
                                                                           : BENCH_C_send_errors,
                    1);
        return;
    }
    bench_count(w, BENCH_C_proto_errors, 1);
    if (!cl->joined) { /* the join was refused */
        atomic_fetch_add(&fo->join_failed, 1);
        bench_close(c, now);
    }
}

static void
on_message(struct bench_conn *c, struct fo_client *cl, const struct bench_frame *f, int64_t now)
{
    (void)now; /* latency uses a fresh clock */
    struct bench_worker *w = c->w;
    struct fo_worker *fw = w->sc;
    const struct fo_room *r = &((struct fo *)w->b->sc)->rooms[cl->room];
    uint32_t sender, num;
    int64_t sent;
    int seen;

    bench_count(w, BENCH_C_delivered, 1);
    if (f->seq < 0 || f->room_len != strlen(r->name) ||
        memcmp(f->room, r->name, f->room_len) != 0) {
        bench_count(w, BENCH_C_foreign, 1);
        return;
    }
    seen = bench_track_msg(&cl->track, f->seq, f->prev);
    if (seen == BENCH_SEEN_DUP) {
        bench_count(w, BENCH_C_dup, 1);
        return;
    }
    if (seen == BENCH_SEEN_REORDER)
        bench_count(w, BENCH_C_reorder, 1);
    else if (seen == BENCH_SEEN_GAP)
        bench_count(w, BENCH_C_gaps, 1);
    bench_count(w, BENCH_C_delivered_new, 1);
    if (!bench_text_parse(f->text, f->text_len, &sender, &num, &sent)) {
        bench_count(w, BENCH_C_foreign, 1);
        return;
    }
    if (sent >= fw->win_start && sent < fw->win_end) {
        bench_count(w, BENCH_C_deliv_window, 1);
        /* a fresh clock: the loop's `now` was taken before this batch of reads, and another
         * thread may have stamped `sent` after it (negative latencies, underestimates) */
        int64_t t = bench_now_ns();
        chat_hist_record(&w->hist[BENCH_H_latency], t > sent ? (uint64_t)(t - sent) / 1000 : 0);
    }
}

void bench_fo_on_frame(struct bench_conn *c, const struct bench_frame *f, int64_t now)
{
    struct fo_client *cl = c->user;

    switch (f->type) {
    case CHAT_F_message:
        on_message(c, cl, f, now);
        break;
    case CHAT_F_ack:
        on_ack(c, cl, f, now);
        break;
    case CHAT_F_joined:
        if (!cl->joined) {
            cl->joined = true;
            bench_count(c->w, BENCH_C_joined, 1);
            chat_hist_record(&c->w->hist[BENCH_H_join], (uint64_t)(now - cl->t_join_ns) / 1000);
        }
        break;
    case CHAT_F_error:
        on_error(c, cl, f, now);
        break;
    default:
        break; /* presence, pong, bye */
    }
}

void bench_fo_on_closed(struct bench_conn *c, int64_t now)
{
    struct fo_client *cl = c->user;

    (void)now;
    if (cl)
        cl->conn = NULL;
}

/* ---- main thread ---- */

static bool all_joined(struct bench *b)
{
    struct fo *fo = b->sc;
    unsigned long long done = bench_total(b, BENCH_C_joined) + bench_total(b, BENCH_C_conn_failed) +
                              bench_total(b, BENCH_C_conn_dropped) + atomic_load(&fo->join_failed);
    return done >= fo->nclients;
}

static bool drained(struct bench *b)
{
    unsigned long long answered = bench_total(b, BENCH_C_acked) + bench_total(b, BENCH_C_refused) +
                                  bench_total(b, BENCH_C_send_errors);
    unsigned long long rejoined = bench_total(b, BENCH_C_rejoin_ok) +
                                  bench_total(b, BENCH_C_rejoin_miss) +
                                  bench_total(b, BENCH_C_rejoin_failed);
    return answered >= bench_total(b, BENCH_C_sent) &&
           bench_total(b, BENCH_C_delivered_new) >= bench_total(b, BENCH_C_expected) &&
           rejoined >= bench_total(b, BENCH_C_conn_cut);
}

static void count_lost(struct fo *fo)
{
    fo->lost = 0;
    for (uint32_t id = 0; id < fo->nclients; id++)
        if (fo->clients[id].snd)
            bench_seqs_append(&fo->rooms[fo->clients[id].room].acked, &fo->clients[id].snd->acked);
    for (uint32_t r = 0; r < fo->nrooms; r++) {
        struct fo_room *room = &fo->rooms[r];
        bench_seqs_sort(&room->acked);
        for (uint32_t k = 0; k < room->size && room->acked.n; k++)
            fo->lost += bench_track_missing(&fo->clients[room->first + k].track, room->acked.v,
                                            room->acked.n);
    }
}

/* This process's CPU time so far (user + system, every thread), in seconds. */
static double cpu_s(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int bench_fo_run(struct bench *b)
{
    struct fo *fo = b->sc;
    int64_t now;
    double cpu0 = 0;

    b->open_label = "joined";
    b->ready_ctr = BENCH_C_joined;
    b->ready_goal = fo->nclients;
    bench_set_phase(b, BENCH_PH_OPEN);
    bench_wait(b, b->deadline_ns, all_joined);
    now = bench_now_ns();
    b->open_done_ns = now;
    if (bench_total(b, BENCH_C_joined) < fo->nclients) {
        chat_log(CHAT_LOG_ERROR, "only %llu of %u connections joined their room%s",
                 bench_total(b, BENCH_C_joined), fo->nclients,
                 b->timed_out ? " before the time bound" : "");
        bench_engine_stop(b);
        return BENCH_EXIT_NOCONN;
    }
    if (b->cfg.start_at > 0) { /* other processes load together from this second */
        struct timespec wall;
        int64_t wait_ns;

        clock_gettime(CLOCK_REALTIME, &wall);
        wait_ns = ((int64_t)b->cfg.start_at - wall.tv_sec) * 1000000000LL - wall.tv_nsec;
        if (wait_ns > 0 && !bench_wait(b, now + wait_ns, NULL)) {
            bench_engine_stop(b);
            return BENCH_EXIT_NOCONN;
        }
        now = bench_now_ns();
    }
    b->run_start_ns = now;
    atomic_store(&b->win_start_ns, now + (int64_t)b->cfg.warmup * 1000000000LL);
    atomic_store(&b->win_end_ns,
                 atomic_load(&b->win_start_ns) + (int64_t)b->cfg.duration * 1000000000LL);
    bench_set_phase(b, BENCH_PH_RUN);
    if (!bench_wait(b, atomic_load(&b->win_start_ns), NULL) ||
        (cpu0 = cpu_s(), !bench_wait(b, atomic_load(&b->win_end_ns), NULL))) {
        bench_engine_stop(b);
        return BENCH_EXIT_NOCONN;
    }
    b->window_cpu_s = cpu_s() - cpu0;
    b->run_end_ns = bench_now_ns();
    bench_set_phase(b, BENCH_PH_DRAIN);
    if (!bench_wait(b, b->run_end_ns + (int64_t)b->cfg.drain * 1000000000LL, drained) &&
        (b->interrupted || b->timed_out)) {
        bench_engine_stop(b);
        return BENCH_EXIT_NOCONN;
    }
    bench_engine_stop(b);
    count_lost(fo);
    if (fo->lost || bench_total(b, BENCH_C_dup) || bench_total(b, BENCH_C_reorder) ||
        bench_total(b, BENCH_C_gaps) || bench_total(b, BENCH_C_conn_dropped) ||
        bench_total(b, BENCH_C_send_errors) || bench_total(b, BENCH_C_deliv_window) == 0)
        return BENCH_EXIT_INCORRECT;
    return BENCH_EXIT_OK;
}

void bench_fo_report(struct bench *b, json_t *res)
{
    struct fo *fo = b->sc;
    double win = (double)b->cfg.duration;
    unsigned long long dup = bench_total(b, BENCH_C_dup), reo = bench_total(b, BENCH_C_reorder);
    unsigned long long gaps = bench_total(b, BENCH_C_gaps);
    struct chat_hist *h = chat_xcalloc(1, sizeof(*h));

    json_object_set_new(
        res, "rooms",
        json_pack("{s:I, s:s}", "count", (json_int_t)fo->nrooms, "mix", b->cfg.room_mix));
    json_object_set_new(res, "sends",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "senders",
                                  (json_int_t)fo->nsenders, "sent",
                                  (json_int_t)bench_total(b, BENCH_C_sent), "acked",
                                  (json_int_t)bench_total(b, BENCH_C_acked), "refused",
                                  (json_int_t)bench_total(b, BENCH_C_refused), "errors",
                                  (json_int_t)bench_total(b, BENCH_C_send_errors), "throttled",
                                  (json_int_t)bench_total(b, BENCH_C_throttled), "acked_per_s",
                                  (double)bench_total(b, BENCH_C_acked_window) / win));
    json_object_set_new(res, "deliveries",
                        json_pack("{s:I, s:I, s:I, s:I, s:f}", "total",
                                  (json_int_t)bench_total(b, BENCH_C_delivered), "expected",
                                  (json_int_t)bench_total(b, BENCH_C_expected), "foreign",
                                  (json_int_t)bench_total(b, BENCH_C_foreign), "measured",
                                  (json_int_t)bench_total(b, BENCH_C_deliv_window), "per_s",
                                  (double)bench_total(b, BENCH_C_deliv_window) / win));
    bench_hist_total(b, BENCH_H_latency, h);
    bench_report_hist(res, "latency_ms", h);
    bench_hist_total(b, BENCH_H_ack, h);
    bench_report_hist(res, "ack_latency_ms", h);
    json_object_set_new(res, "correctness",
                        json_pack("{s:I, s:I, s:I, s:I, s:b}", "lost", (json_int_t)fo->lost,
                                  "duplicated", (json_int_t)dup, "reordered", (json_int_t)reo,
                                  "gaps", (json_int_t)gaps, "ok",
                                  fo->lost == 0 && dup == 0 && reo == 0 && gaps == 0));
    chat_free(h);
}

void bench_fo_fini(struct bench *b)
{
    struct fo *fo = b->sc;

    if (!fo)
        return;
    for (uint32_t i = 0; fo->clients && i < fo->nclients; i++) {
        struct fo_client *cl = &fo->clients[i];
        bench_track_fini(&cl->track);
        if (cl->snd) {
            bench_tpl_fini(&cl->snd->tpl);
            bench_seqs_fini(&cl->snd->acked);
            chat_free(cl->snd);
        }
    }
    for (uint32_t r = 0; fo->rooms && r < fo->nrooms; r++)
        bench_seqs_fini(&fo->rooms[r].acked);
    for (int i = 0; fo->workers && i < b->nworkers; i++) {
        chat_free(fo->workers[i].senders);
        chat_free(fo->workers[i].text);
    }
    chat_free(fo->workers);
    chat_free(fo->clients);
    chat_free(fo->rooms);
    chat_free(fo);
    b->sc = NULL;
}

const struct bench_scenario bench_fanout = {
    .name = "fanout",
    .summary = "C connections in R rooms (--room-mix), S senders at --rate messages/s in total: "
               "latency from send to every receipt, deliveries/s, lost/duplicated/reordered",
    .prepare = bench_fo_prepare,
    .run = bench_fo_run,
    .worker_init = bench_fo_worker_init,
    .tick = bench_fo_tick,
    .on_hello = bench_fo_on_hello,
    .on_frame = bench_fo_on_frame,
    .on_closed = bench_fo_on_closed,
    .report = bench_fo_report,
    .fini = bench_fo_fini,
};
