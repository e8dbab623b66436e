/* chat/metrics.h - counters, gauges and log-linear histograms rendered in the Prometheus text
 * exposition format (0.0.4).
 *
 * Values are C11 atomics updated with relaxed ordering, so any thread may update and another
 * render. A histogram records unsigned values (e.g. microseconds) into log-linear buckets:
 * 64 linear sub-buckets per power of two (values below 64 exact), relative error <= 1/64 (1.6%).
 * Thread-safety: all functions are thread-safe. */
#ifndef CHAT_METRICS_H
#define CHAT_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/buf.h"
#include "chat/err.h"

/* 64 buckets per power of two: a quantile is within 1/64 (1.6 %) of the value, fine enough for a
 * benchmark's 5 % budget (16 per octave made neighbouring p99s differ by 6 %) */
#define CHAT_HIST_SUB_BITS 6
#define CHAT_HIST_BUCKETS  (64 << CHAT_HIST_SUB_BITS)

struct chat_hist {
    atomic_ullong buckets[CHAT_HIST_BUCKETS];
    atomic_ullong count;
    atomic_ullong sum;
    atomic_ullong max;
};

void chat_hist_record(struct chat_hist *h, uint64_t v);
/* The same for a histogram only one thread writes (an event loop's): plain loads and stores of
 * the atomics, no locked read-modify-write (readers still see whole values). */
void chat_hist_record_1w(struct chat_hist *h, uint64_t v);
/* Value at quantile q in [0,1] (upper edge of the bucket holding it); 0 when empty. */
uint64_t chat_hist_quantile(const struct chat_hist *h, double q);
/* Adds src into dst (e.g. to merge per-thread histograms). */
void chat_hist_merge(struct chat_hist *dst, const struct chat_hist *src);
unsigned chat_hist_bucket(uint64_t v);
uint64_t chat_hist_bucket_upper(unsigned b);

enum chat_metric_type {
    CHAT_METRIC_COUNTER, /* ptr: atomic_llong * */
    CHAT_METRIC_GAUGE,   /* ptr: atomic_llong * */
    CHAT_METRIC_HIST,    /* ptr: struct chat_hist *, values in microseconds, exported in seconds */
};

struct chat_metric_def {
    const char *name; /* e.g. "chat_gateway_connections" (counters should end in _total) */
    const char *help;
    enum chat_metric_type type;
    const void *ptr; /* borrowed */
};

/* Appends the exposition text for defs to out. Returns CHAT_OK or CHAT_ETOOBIG. */
CHAT_NODISCARD int
chat_metrics_render(struct chat_buf *out, const struct chat_metric_def *defs, size_t n);

static inline void chat_metric_add(atomic_llong *c, long long v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static inline void chat_metric_set(atomic_llong *g, long long v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}

static inline long long chat_metric_get(const atomic_llong *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
