#include "chat/metrics.h"

#include <inttypes.h>

/* Bucket b covers values whose top bits are (exponent, sub): values < 64 map 1:1. */
unsigned chat_hist_bucket(uint64_t v)
{
    unsigned msb;

    if (v < (1u << CHAT_HIST_SUB_BITS))
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    return ((msb - CHAT_HIST_SUB_BITS + 1) << CHAT_HIST_SUB_BITS) |
           (unsigned)((v >> (msb - CHAT_HIST_SUB_BITS)) & ((1u << CHAT_HIST_SUB_BITS) - 1));
}

uint64_t chat_hist_bucket_upper(unsigned b)
{
    unsigned e = b >> CHAT_HIST_SUB_BITS, sub = b & ((1u << CHAT_HIST_SUB_BITS) - 1);
    unsigned shift;

    if (e == 0)
        return sub;
    shift = e - 1;
    if (shift + CHAT_HIST_SUB_BITS >= 64)
        return UINT64_MAX;
    return ((((uint64_t)1 << CHAT_HIST_SUB_BITS) | sub) << shift) + (((uint64_t)1 << shift) - 1);
}

void chat_hist_record(struct chat_hist *h, uint64_t v)
{
    unsigned long long m;

    atomic_fetch_add_explicit(&h->buckets[chat_hist_bucket(v)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
    m = atomic_load_explicit(&h->max, memory_order_relaxed);
    while (v > m && !atomic_compare_exchange_weak_explicit(&h->max, &m, v, memory_order_relaxed,
                                                           memory_order_relaxed)) {
    }
}

static void add_1w(atomic_ullong *a, unsigned long long v)
{
    atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

void chat_hist_record_1w(struct chat_hist *h, uint64_t v)
{
    add_1w(&h->buckets[chat_hist_bucket(v)], 1);
    add_1w(&h->count, 1);
    add_1w(&h->sum, v);
    if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
        atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

uint64_t chat_hist_quantile(const struct chat_hist *h, double q)
{
    unsigned long long total = atomic_load_explicit(&h->count, memory_order_relaxed);
    unsigned long long want, seen = 0;
    uint64_t mx = atomic_load_explicit(&h->max, memory_order_relaxed);

    if (total == 0)
        return 0;
    if (q <= 0)
        q = 0;
    if (q >= 1)
        return mx;
    want = (unsigned long long)(q * (double)total) + 1;
    if (want > total)
        want = total;
    for (unsigned b = 0; b < CHAT_HIST_BUCKETS; b++) {
        seen += atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
        if (seen >= want) {
            uint64_t up = chat_hist_bucket_upper(b);
            return up < mx ? up : mx;
        }
    }
    return mx;
}

void chat_hist_merge(struct chat_hist *dst, const struct chat_hist *src)
{
    unsigned long long m = atomic_load_explicit(&src->max, memory_order_relaxed);
    for (unsigned b = 0; b < CHAT_HIST_BUCKETS; b++)
        atomic_fetch_add_explicit(&dst->buckets[b],
                                  atomic_load_explicit(&src->buckets[b], memory_order_relaxed),
                                  memory_order_relaxed);
    atomic_fetch_add_explicit(&dst->count, atomic_load_explicit(&src->count, memory_order_relaxed),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&dst->sum, atomic_load_explicit(&src->sum, memory_order_relaxed),
                              memory_order_relaxed);
    if (m > atomic_load_explicit(&dst->max, memory_order_relaxed))
        atomic_store_explicit(&dst->max, m, memory_order_relaxed);
}

/* Prometheus buckets (seconds) exported for every histogram. */
static const double le_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                              0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static int render_hist(struct chat_buf *out, const char *name, const struct chat_hist *h)
{
    unsigned long long cum = 0;
    unsigned b = 0;
    int rc = CHAT_OK;

    for (size_t i = 0; i < sizeof(le_s) / sizeof(le_s[0]); i++) {
        uint64_t le_us = (uint64_t)(le_s[i] * 1e6);
        while (b < CHAT_HIST_BUCKETS && chat_hist_bucket_upper(b) <= le_us)
            cum += atomic_load_explicit(&h->buckets[b++], memory_order_relaxed);
        rc |= chat_buf_appendf(out, "%s_bucket{le=\"%g\"} %llu\n", name, le_s[i], cum);
    }
    rc |= chat_buf_appendf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                           atomic_load_explicit(&h->count, memory_order_relaxed), name,
                           (double)atomic_load_explicit(&h->sum, memory_order_relaxed) / 1e6, name,
                           atomic_load_explicit(&h->count, memory_order_relaxed));
    return rc ? CHAT_ETOOBIG : CHAT_OK;
}

/* The histogram's p50, p99 and max from its fine buckets (1/64 of an octave), which the
 * Prometheus buckets above are too coarse to give: NAME_quantile{q="0.5"|"0.99"|"1"}, seconds. */
static int render_quantiles(struct chat_buf *out, const char *name, const struct chat_hist *h)
{
    static const double qs[] = {0.5, 0.99, 1};
    int rc = chat_buf_appendf(out,
                              "# HELP %s_quantile p50, p99 and max of %s (seconds, from its fine "
                              "buckets)\n# TYPE %s_quantile gauge\n",
                              name, name, name);

    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]) && rc == CHAT_OK; i++)
        rc = chat_buf_appendf(out, "%s_quantile{q=\"%g\"} %.6f\n", name, qs[i],
                              (double)chat_hist_quantile(h, qs[i]) / 1e6);
    return rc;
}

int chat_metrics_render(struct chat_buf *out, const struct chat_metric_def *defs, size_t n)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};

    for (size_t i = 0; i < n; i++) {
        const struct chat_metric_def *d = &defs[i];
        int rc = chat_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
                                  types[d->type]);
        if (rc == CHAT_OK && d->type == CHAT_METRIC_HIST) {
            rc = render_hist(out, d->name, d->ptr);
            if (rc == CHAT_OK)
                rc = render_quantiles(out, d->name, d->ptr);
        } else if (rc == CHAT_OK)
            rc = chat_buf_appendf(out, "%s %lld\n", d->name,
                                  chat_metric_get((const atomic_llong *)d->ptr));
        if (rc != CHAT_OK)
            return rc;
    }
    return CHAT_OK;
}
