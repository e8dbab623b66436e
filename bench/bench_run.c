/* bench_run.c - helpers shared by the scenarios: waiting with a deadline, progress lines and the
 * timeline, pacing, opening connections, reading RSS; clocks, random numbers and totals. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "chat/mem.h"

#include "bench.h"

#define NS 1000000000LL

volatile int bench_stop_signal;

static const char *const phase_names[] = {"init", "open", "run", "drain", "done"};

uint64_t bench_pacer_due(struct bench_pacer *p, int64_t now)
{
    double el;
    uint64_t want;

    if (p->rate <= 0)
        return UINT64_MAX;
    if (!p->t0_ns)
        p->t0_ns = now;
    el = (double)(now - p->t0_ns) / 1e9;
    want = (uint64_t)(el * p->rate) + 1; /* the first event is due at t0 */
    return want > p->done ? want - p->done : 0;
}

int64_t bench_pacer_next(const struct bench_pacer *p)
{
    if (p->rate <= 0)
        return INT64_MAX;
    return p->t0_ns + (int64_t)((double)p->done / p->rate * 1e9);
}

long bench_rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/status");
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            char *end = NULL;
            errno = 0;
            kb = strtol(line + 6, &end, 10);
            if (errno != 0 || end == line + 6)
                kb = -1;
            break;
        }
    }
    fclose(f);
    return kb;
}

void bench_opener_init(struct bench_opener *o, struct bench_worker *w, uint64_t end)
{
    const struct bench *b = w->b;

    memset(o, 0, sizeof(*o));
    o->next = (uint64_t)w->idx;
    o->step = (uint64_t)b->nworkers;
    o->end = end;
    o->pacer.rate = b->cfg.ramp > 0 ? (double)b->cfg.ramp / b->nworkers : 0;
}

int64_t bench_opener_tick(struct bench_opener *o,
                          struct bench_worker *w,
                          int64_t now,
                          void *(*user)(struct bench_worker *w, uint64_t id))
{
    uint64_t due = bench_pacer_due(&o->pacer, now);
    uint32_t cap = (uint32_t)w->b->cfg.opening;

    while (o->next < o->end && due > 0 && w->opening < cap) {
        if (!bench_open(w, o->next, user(w, o->next), now))
            break; /* no free slot */
        o->next += o->step;
        o->pacer.done++;
        due--;
    }
    if (o->next >= o->end)
        return INT64_MAX;
    if (w->opening >= cap)
        return now + 100 * 1000000LL; /* woken by the hellos anyway */
    return o->pacer.rate > 0 ? bench_pacer_next(&o->pacer) : now;
}

unsigned long long bench_open_now(const struct bench *b)
{
    unsigned long long o = bench_total(b, BENCH_C_conn_open);
    unsigned long long gone =
        bench_total(b, BENCH_C_conn_dropped) + bench_total(b, BENCH_C_conn_closed);
    return o > gone ? o - gone : 0;
}

/* dst = a - b bucket by bucket (a is a later snapshot of the same histogram as b). */
static void hist_diff(struct chat_hist *dst, const struct chat_hist *a, const struct chat_hist *b)
{
    unsigned long long n = 0, top = 0;

    for (unsigned i = 0; i < CHAT_HIST_BUCKETS; i++) {
        unsigned long long v = atomic_load_explicit(&a->buckets[i], memory_order_relaxed) -
                               atomic_load_explicit(&b->buckets[i], memory_order_relaxed);
        atomic_store_explicit(&dst->buckets[i], v, memory_order_relaxed);
        n += v;
        if (v)
            top = i;
    }
    atomic_store_explicit(&dst->count, n, memory_order_relaxed);
    atomic_store_explicit(&dst->sum, 0, memory_order_relaxed);
    atomic_store_explicit(&dst->max, n ? chat_hist_bucket_upper((unsigned)top) : 0,
                          memory_order_relaxed);
}

static const char *phase_label(const struct bench *b, int phase, int64_t now)
{
    if (phase == BENCH_PH_RUN) {
        if (now < atomic_load(&b->win_start_ns))
            return "warmup";
        if (now < atomic_load(&b->win_end_ns))
            return "measure";
        return "run";
    }
    return phase_names[phase];
}

static void sample_push(struct bench *b, const struct bench_sample *s)
{
    if (b->nsamples == b->samples_cap) {
        b->samples_cap = b->samples_cap ? b->samples_cap * 2 : 64;
        b->samples = chat_xrealloc(b->samples, b->samples_cap * sizeof(*b->samples));
    }
    b->samples[b->nsamples++] = *s;
}

/* --window: windows of cfg.window seconds from the start of the measured run (win_start_ns; the
 * latency histogram holds only messages sent after it, so it starts empty). A window closes at
 * the first sample on or after its end, also in the drain phase for the last one (messages sent
 * just before win_end are still arriving); a window that would end after win_end is not
 * reported. Acks per second are counted between the samples that open and close a window.
 * h: merged latency now. */
static void
window_tick(struct bench *b, int64_t now, const struct chat_hist *h, unsigned long long acked)
{
    int64_t step = (int64_t)b->cfg.window * 1000000000LL;
    struct chat_hist *d;
    struct bench_window w;
    double dt;

    if (!b->hist_win) {
        b->hist_win = chat_xcalloc(1, sizeof(*b->hist_win)); /* empty: the state at win_start */
        b->win_next_ns = atomic_load(&b->win_start_ns) + step;
        b->win_t0_ns = now;
        b->win_acked = acked;
        return;
    }
    if (now < b->win_next_ns || b->win_next_ns > atomic_load(&b->win_end_ns))
        return;
    d = chat_xcalloc(1, sizeof(*d));
    hist_diff(d, h, b->hist_win);
    dt = (double)(now - b->win_t0_ns) / 1e9;
    memset(&w, 0, sizeof(w));
    w.t_end = (double)(b->win_next_ns - b->t0_ns) / 1e9;
    w.count = atomic_load(&d->count);
    w.p50 = (double)chat_hist_quantile(d, 0.5) / 1000.0;
    w.p99 = (double)chat_hist_quantile(d, 0.99) / 1000.0;
    w.p999 = (double)chat_hist_quantile(d, 0.999) / 1000.0;
    w.max = (double)atomic_load(&d->max) / 1000.0;
    w.acked_per_s = dt > 0 ? (double)(acked - b->win_acked) / dt : 0;
    chat_free(d);
    if (b->nwindows == b->windows_cap) {
        b->windows_cap = b->windows_cap ? b->windows_cap * 2 : 16;
        b->windows = chat_xrealloc(b->windows, b->windows_cap * sizeof(*b->windows));
    }
    b->windows[b->nwindows++] = w;
    if (!b->cfg.quiet)
        fprintf(stderr,
                "[window %zu ends %.0fs] deliveries %llu acked %.0f/s p50 %.2f p99 %.2f "
                "p99.9 %.2f max %.2f ms\n",
                b->nwindows, w.t_end, w.count, w.acked_per_s, w.p50, w.p99, w.p999, w.max);
    memcpy(b->hist_win, h, sizeof(*h));
    b->win_t0_ns = now;
    b->win_next_ns += step;
    b->win_acked = acked;
}

static void progress(struct bench *b, int64_t now, bool print)
{
    static const enum bench_counter rate_ctr[4] = {BENCH_C_delivered, BENCH_C_acked, BENCH_C_sent,
                                                   BENCH_C_cycles};
    unsigned long long cur[BENCH_C__COUNT];
    struct chat_hist *h = chat_xcalloc(2, sizeof(*h));
    struct bench_sample s;
    double dt = b->last_progress_ns ? (double)(now - b->last_progress_ns) / 1e9 : 1;
    int phase = atomic_load(&b->phase);

    if (!b->hist_prev)
        b->hist_prev = chat_xcalloc(1, sizeof(*b->hist_prev));
    for (int k = 0; k < BENCH_C__COUNT; k++)
        cur[k] = bench_total(b, (enum bench_counter)k);
    memset(&s, 0, sizeof(s));
    s.t = (double)(now - b->t0_ns) / 1e9;
    s.phase = phase;
    s.open = (double)bench_open_now(b);
    for (int i = 0; i < 4; i++)
        s.rate[i] = dt > 0 ? (double)(cur[rate_ctr[i]] - b->last_ctr[rate_ctr[i]]) / dt : 0;
    bench_hist_total(b, BENCH_H_latency, &h[0]);
    hist_diff(&h[1], &h[0], b->hist_prev);
    s.p50 = (double)chat_hist_quantile(&h[1], 0.5) / 1000.0;
    s.p99 = (double)chat_hist_quantile(&h[1], 0.99) / 1000.0;
    s.max = (double)atomic_load(&h[1].max) / 1000.0;
    if (b->cfg.window > 0 && (phase == BENCH_PH_RUN || phase == BENCH_PH_DRAIN) &&
        now >= atomic_load(&b->win_start_ns))
        window_tick(b, now, &h[0], cur[BENCH_C_acked]);
    memcpy(b->hist_prev, &h[0], sizeof(*b->hist_prev));
    memcpy(b->last_ctr, cur, sizeof(cur));
    b->last_progress_ns = now;
    sample_push(b, &s);
    chat_free(h);
    if (!print || b->cfg.quiet)
        return;
    fprintf(stderr, "[%s %5.1fs %-7s] open %llu", b->sc_ops->name, s.t, phase_label(b, phase, now),
            (unsigned long long)s.open);
    if (b->ready_goal)
        fprintf(stderr, " %s %llu/%llu", b->open_label ? b->open_label : "ready", cur[b->ready_ctr],
                b->ready_goal);
    if (cur[BENCH_C_sent])
        fprintf(stderr, " | sent %.0f/s acked %.0f/s deliv %.0f/s", s.rate[2], s.rate[1],
                s.rate[0]);
    if (cur[BENCH_C_delivered] && s.p50 > 0)
        fprintf(stderr, " p50 %.2f p99 %.2f max %.2f ms", s.p50, s.p99, s.max);
    if (cur[BENCH_C_cycles] || cur[BENCH_C_cycles_failed])
        fprintf(stderr, " | cycles %.0f/s ok %llu failed %llu", s.rate[3], cur[BENCH_C_cycles],
                cur[BENCH_C_cycles_failed]);
    fprintf(stderr, " | failed %llu dropped %llu", cur[BENCH_C_conn_failed],
            cur[BENCH_C_conn_dropped]);
    if (cur[BENCH_C_dup] || cur[BENCH_C_reorder])
        fprintf(stderr, " dup %llu reorder %llu", cur[BENCH_C_dup], cur[BENCH_C_reorder]);
    if (cur[BENCH_C_refused] || cur[BENCH_C_send_errors] || cur[BENCH_C_throttled])
        fprintf(stderr, " refused %llu errors %llu throttled %llu", cur[BENCH_C_refused],
                cur[BENCH_C_send_errors], cur[BENCH_C_throttled]);
    fputc('\n', stderr);
}

bool bench_wait(struct bench *b, int64_t until, bool (*done)(struct bench *b))
{
    for (;;) {
        int64_t now = bench_now_ns(), nap;
        struct timespec ts;

        if (done && done(b))
            return true;
        if (bench_stop_signal) {
            b->interrupted = true;
            return false;
        }
        if (now >= b->deadline_ns) {
            b->timed_out = true;
            return false;
        }
        if (now >= until)
            return !done;
        if (now - b->last_progress_ns >= NS)
            progress(b, now, true);
        nap = 20 * 1000000LL;
        if (until - now < nap)
            nap = until - now;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)nap;
        nanosleep(&ts, NULL);
    }
}

void bench_progress_final(struct bench *b)
{
    int64_t now = bench_now_ns();

    /* a sample of less than half a second would show a rate that is mostly noise */
    if (now - b->last_progress_ns >= NS / 2)
        progress(b, now, false);
    /* the last --window ends with the measured run; the drain may end before another sample */
    if (b->cfg.window > 0 && b->hist_win) {
        struct chat_hist *h = chat_xcalloc(1, sizeof(*h));

        bench_hist_total(b, BENCH_H_latency, h);
        window_tick(b, now, h, bench_total(b, BENCH_C_acked));
        chat_free(h);
    }
}

/* ---- clocks, random numbers and totals (any thread) ---- */

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

uint64_t bench_rand(struct bench_worker *w)
{
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void bench_count_error(struct bench_worker *w, const struct bench_frame *f)
{
    atomic_fetch_add_explicit(&w->err_codes[bench_frame_errcode(f)], 1, memory_order_relaxed);
}

unsigned long long bench_total(const struct bench *b, enum bench_counter k)
{
    unsigned long long s = 0;

    for (int i = 0; i < b->nworkers && b->workers; i++)
        s += atomic_load_explicit(&b->workers[i].ctr[k], memory_order_relaxed);
    return s;
}

void bench_hist_total(const struct bench *b, enum bench_hist_id h, struct chat_hist *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < b->nworkers && b->workers; i++)
        if (b->workers[i].hist)
            chat_hist_merge(out, &b->workers[i].hist[h]);
}
