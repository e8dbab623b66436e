/* gw_ring.h - a connection's send queue: a ring of references to immutable frames (struct
 * chat_msg), with the count of queued bytes. It grows by doubling on demand up to the caller's
 * maximum and gives a big ring back when it empties, so an idle connection holds a few slots or
 * none. The limits (frames, bytes) are checked by the caller (ws/gw_conn.c) before a push.
 * Thread-safety: none; a ring is owned by its connection on the event-loop thread (the refcount
 * of chat_msg is a plain int). */
#ifndef GW_RING_H
#define GW_RING_H

#include <stdbool.h>
#include <stddef.h>

struct chat_msg;

struct gw_ring {
    struct chat_msg **v; /* owns refs; a ring of cap slots, NULL while cap == 0 */
    int head, len, cap;
    size_t bytes; /* payload bytes (chat_msg.len) of the queued frames */
};

/* An idle connection keeps a ring this small (or none): memory per idle socket matters. */
#define GW_RING_MIN_CAP 4
/* A ring this big is given back when it empties; smaller ones are kept (no malloc churn for
 * connections that regularly get a few frames per loop turn). */
#define GW_RING_SHRINK_CAP 64

/* Appends m, taking a new reference. The caller has checked r->len < max; a full ring doubles
 * (from GW_RING_MIN_CAP, at most to max slots). */
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
/* Drops every frame and frees the slots; the ring is empty and reusable after. */
void gw_ring_fini(struct gw_ring *r);

#endif
