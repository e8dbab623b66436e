/* bench/bench_track.h - correctness by stream position (seq) and by the prev chain.
 *
 * A receiver keeps one struct bench_track per room: the last seq and a bitset of the seqs it
 * received (relative to the first one), so a duplicate (seq seen before) and a reordering (seq
 * below the last, not seen before) are told apart as they arrive, and loss is counted at the end
 * against the sorted list of seqs the senders got acks for (struct bench_seqs). seq is a Kafka
 * offset: strictly increasing per room, not contiguous (rooms share partitions), so the bitset
 * spans the partition's traffic during the run. Memory grows by doubling (no per-message
 * allocation in the steady state).
 * The chain: every message frame may carry prev, the seq of the room's previous message as the
 * delivering gateway saw it. A receiver that already holds a seq of the room and gets a message
 * above it whose prev is present and is not that seq has missed something: a chain break (gap),
 * seen as it arrives, also across a reconnect (the tracker outlives the connection; the new one
 * joins with since = last, and the replay must continue the chain).
 * Thread-safety: none; a tracker belongs to the worker of its receiver, and is read by the main
 * thread only after the workers stopped. */
#ifndef BENCH_TRACK_H
#define BENCH_TRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum bench_seen {
    BENCH_SEEN_NEW = 0,
    BENCH_SEEN_DUP,     /* this seq was received before */
    BENCH_SEEN_REORDER, /* below the last seq and not received before */
    BENCH_SEEN_GAP,     /* new and above the last seq, but its prev is not the last seq: the
                         * chain broke (a message in between was missed); recorded as new */
};

struct bench_track {
    int64_t last;   /* highest seq received; -1 before the first */
    int64_t base;   /* seq of bit 0 */
    uint64_t *bits; /* owns */
    size_t nwords;
    uint64_t recv;  /* distinct seqs received */
    uint64_t below; /* seqs below base (reordered; not in the bitset) */
};

void bench_track_init(struct bench_track *t);
/* Records seq; returns enum bench_seen (never BENCH_SEEN_GAP). */
int bench_track_seen(struct bench_track *t, int64_t seq);
/* Records seq of a message whose prev is given (-1: absent) and checks the chain: returns
 * BENCH_SEEN_GAP when prev is present, t already held a seq, seq is above it and prev is not it;
 * otherwise as bench_track_seen. */
int bench_track_msg(struct bench_track *t, int64_t seq, int64_t prev);
bool bench_track_has(const struct bench_track *t, int64_t seq);
/* Number of seqs of the sorted array acked[0..n) that t did not receive. */
uint64_t bench_track_missing(const struct bench_track *t, const int64_t *acked, size_t n);
void bench_track_fini(struct bench_track *t); /* NULL-safe, idempotent */

/* A growable array of seqs. */
struct bench_seqs {
    int64_t *v; /* owns */
    size_t n, cap;
};

void bench_seqs_push(struct bench_seqs *s, int64_t seq);
/* Appends every element of src. */
void bench_seqs_append(struct bench_seqs *dst, const struct bench_seqs *src);
/* Sorts ascending and drops duplicates. */
void bench_seqs_sort(struct bench_seqs *s);
void bench_seqs_fini(struct bench_seqs *s); /* NULL-safe, idempotent */

#endif
