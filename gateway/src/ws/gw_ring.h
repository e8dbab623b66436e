/* gw_ring.h - a connection's send queue: a ring of references to immutable frames (struct
 * chat_msg), with the count of queued bytes. Up to GW_RING_INLINE frames live in the struct
 * itself (no allocation for the usual one or two frames of a loop turn); beyond that it grows
 * by doubling on the heap up to the caller's maximum. A big heap ring is given back when it
 * empties, a small one by gw_ring_trim() (the once-a-second sweep of idle connections), so an
 * idle connection holds no heap for its queue. The limits (frames, bytes) are checked by the
 * caller (ws/gw_conn.c) before a push. A ring must not be moved in memory while it uses its
 * inline slots (it lives inside the lws per-session data, which never moves).
 * Thread-safety: none; a ring is owned by its connection on the event-loop thread (the refcount
 * of chat_msg is a plain int). */
#ifndef GW_RING_H
#define GW_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chat_msg;

/* Frames held in the struct before the ring moves to the heap. */
#define GW_RING_INLINE 2
/* The first heap ring: GW_RING_INLINE doubled. */
#define GW_RING_MIN_CAP (2 * GW_RING_INLINE)
/* A heap ring this big is given back as soon as it empties; smaller ones wait for
 * gw_ring_trim() (no malloc churn for connections that get a few frames every loop turn). */
#define GW_RING_SHRINK_CAP 64

struct gw_ring {
    struct chat_msg **v; /* refs; NULL while cap == 0, inl while cap == GW_RING_INLINE, else owns */
    struct chat_msg *inl[GW_RING_INLINE];
    int head, len, cap;
    uint32_t bytes; /* payload bytes (chat_msg.len) of the queued frames: under outq_max_bytes */
};

/* Appends m, taking a new reference. The caller has checked r->len < max; a full ring doubles
 * (GW_RING_INLINE slots in the struct, then GW_RING_MIN_CAP on the heap, at most max slots). */
void gw_ring_push(struct gw_ring *r, struct chat_msg *m, int max);
/* Conflation of a latest-value frame m (m->latest != 0): when a frame with the same key is still
 * queued, m takes its place (a new reference; the old one is dropped) and true is returned; else
 * false and nothing changes. The newest queued frames are looked at first. */
bool gw_ring_replace_latest(struct gw_ring *r, struct chat_msg *m);
/* Returns the i-th queued frame (0 = oldest; borrowed), i < r->len. */
struct chat_msg *gw_ring_at(const struct gw_ring *r, int i);
/* Drops the k oldest frames (k <= r->len; they were written). A ring of GW_RING_SHRINK_CAP or
 * more slots is freed once it is empty. */
void gw_ring_pop(struct gw_ring *r, int k);
/* An empty ring gives back its heap slots (it starts from the inline ones again); a ring with
 * frames queued is left alone. */
void gw_ring_trim(struct gw_ring *r);
/* Drops every frame and frees the slots; the ring is empty and reusable after. */
void gw_ring_fini(struct gw_ring *r);

#endif
