/* bench_track.c - see bench_track.h. */
#include "bench_track.h"

#include <stdlib.h>
#include <string.h>

#include "chat/mem.h"

void bench_track_init(struct bench_track *t)
{
    memset(t, 0, sizeof(*t));
    t->last = -1;
    t->base = -1;
}

static void grow(struct bench_track *t, size_t words)
{
    size_t n = t->nwords ? t->nwords : 16;

    while (n < words)
        n *= 2;
    t->bits = chat_xrealloc(t->bits, n * sizeof(uint64_t));
    memset(t->bits + t->nwords, 0, (n - t->nwords) * sizeof(uint64_t));
    t->nwords = n;
}

bool bench_track_has(const struct bench_track *t, int64_t seq)
{
    uint64_t off;

    if (t->base < 0 || seq < t->base)
        return false;
    off = (uint64_t)(seq - t->base);
    if (off / 64 >= t->nwords)
        return false;
    return (t->bits[off / 64] >> (off % 64)) & 1u;
}

int bench_track_seen(struct bench_track *t, int64_t seq)
{
    uint64_t off;
    int res;

    if (t->base < 0)
        t->base = seq;
    if (seq < t->base) {
        /* below the first seq received: a reordering (it cannot have been seen before) */
        t->below++;
        t->recv++;
        return BENCH_SEEN_REORDER;
    }
    off = (uint64_t)(seq - t->base);
    if (off / 64 >= t->nwords)
        grow(t, (size_t)(off / 64 + 1));
    if ((t->bits[off / 64] >> (off % 64)) & 1u)
        return BENCH_SEEN_DUP;
    t->bits[off / 64] |= (uint64_t)1 << (off % 64);
    t->recv++;
    res = seq < t->last ? BENCH_SEEN_REORDER : BENCH_SEEN_NEW;
    if (seq > t->last)
        t->last = seq;
    return res;
}

int bench_track_msg(struct bench_track *t, int64_t seq, int64_t prev)
{
    /* the last seq held before this one: the chain continues only from it */
    bool gap = prev >= 0 && t->last >= 0 && seq > t->last && prev != t->last;
    int res = bench_track_seen(t, seq);

    return gap && res == BENCH_SEEN_NEW ? BENCH_SEEN_GAP : res;
}

uint64_t bench_track_missing(const struct bench_track *t, const int64_t *acked, size_t n)
{
    uint64_t missing = 0;

    for (size_t i = 0; i < n; i++)
        if (!bench_track_has(t, acked[i]))
            missing++;
    /* a reordered seq below base is received but not in the bitset: do not count it lost */
    return missing > t->below ? missing - t->below : 0;
}

void bench_track_fini(struct bench_track *t)
{
    CHAT_FREE(t->bits);
    t->nwords = 0;
}

void bench_seqs_push(struct bench_seqs *s, int64_t seq)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = chat_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = seq;
}

void bench_seqs_append(struct bench_seqs *dst, const struct bench_seqs *src)
{
    for (size_t i = 0; i < src->n; i++)
        bench_seqs_push(dst, src->v[i]);
}

static int cmp_seq(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

void bench_seqs_sort(struct bench_seqs *s)
{
    size_t k = 0;

    if (s->n < 2)
        return;
    qsort(s->v, s->n, sizeof(*s->v), cmp_seq);
    for (size_t i = 1; i < s->n; i++)
        if (s->v[i] != s->v[k])
            s->v[++k] = s->v[i];
    s->n = k + 1;
}

void bench_seqs_fini(struct bench_seqs *s)
{
    CHAT_FREE(s->v);
    s->n = s->cap = 0;
}
