/* gw_recent.h - every room's recent events on this node (docs/DESIGN section 4, "recovery ring"):
 * for each room this node consumes (all of them, not only rooms with local subscribers: a client
 * whose gateway died reconnects to another one), a ring of references to the last encoded frames
 * (struct chat_msg: no copies) in seq order, the room's last seq (what the next event's "prev"
 * is) and its base: every event of the room with a seq greater than base is held, so a
 * `join {room, since}` with since >= base can be answered by replaying the ring.
 *
 * Bounds (both checked on every add):
 *   - at most max_per_room events per room: the oldest is dropped ("trimmed") and base moves up;
 *   - at most max_bytes over all rooms, counting for each event chat_msg_wire_len() plus
 *     GW_RECENT_EV_OVERHEAD, and for each room GW_RECENT_ROOM_OVERHEAD plus its name (a room
 *     whose ring is empty keeps only its last seq, but still costs that). Over the budget, the
 *     least recently used room (used = an event added, or a since-lookup of it) loses its oldest
 *     events first, then the room itself (its last seq is forgotten: its next event has no
 *     prev), then the next least recently used room, until the total fits again.
 * Keys are room names chosen by clients: hashed with this process's secret key (chat/hash.h).
 * Thread-safety: none; event-loop thread only (the refcount of chat_msg is a plain int). */
#ifndef GW_RECENT_H
#define GW_RECENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/err.h"

struct chat_msg;
struct gw_recent;
struct gw_recent_room;

/* Bytes counted per held event on top of chat_msg_wire_len(): its ring slot (16 bytes, up to
 * twice with doubling) and the message's own header and LWS_PRE headroom. */
#define GW_RECENT_EV_OVERHEAD 64
/* Bytes counted per room on top of its name: the room record, its hash slot, the ring header. */
#define GW_RECENT_ROOM_OVERHEAD 160

/* gw_recent_add() for an event whose seq is not above the room's last seq: a Kafka replay
 * (after a rebalance or a seek back). The event was already seen by this node; nothing is
 * stored and the room is not marked used. */
#define GW_RECENT_REPLAY (-2)

enum gw_recent_result {
    GW_RECENT_RECOVERED = 0, /* every event after since is held: the iterator yields them */
    GW_RECENT_TOO_OLD = 1,   /* since is before base (or the room is unknown): nothing to replay */
};

/* The events of a recovered lookup, oldest first. Borrowed: valid until the next
 * gw_recent_add(), gw_recent_clear() or gw_recent_free() (they may evict). */
struct gw_recent_iter {
    size_t n;     /* events to replay (0: recovered with nothing to send) */
    size_t bytes; /* sum of their chat_msg_wire_len(): for the caller's queue limits */
    const struct gw_recent_room *_room;
    size_t _i; /* next position in the room's ring */
    size_t _left;
};

/* One room's state, for metrics, debugging and tests (gw_recent_peek). */
struct gw_recent_info {
    int64_t base;   /* every event with seq > base is held */
    int64_t oldest; /* seq of the oldest held event, -1 when none */
    int64_t last;   /* seq of the room's last event seen by this node */
    size_t n;       /* events held */
};

struct gw_recent_stats {
    size_t rooms;            /* rooms known (with or without events held) */
    size_t events;           /* events held over all rooms */
    size_t bytes;            /* accounted bytes (see above): <= max_bytes after every add */
    uint64_t evicted_events; /* events dropped by the max_bytes budget (LRU) */
    uint64_t evicted_rooms;  /* rooms forgotten by the max_bytes budget (last seq lost) */
    uint64_t trimmed;        /* events dropped by the max_per_room cap (normal turnover) */
    uint64_t replays;        /* adds ignored as GW_RECENT_REPLAY */
};

/* Returns a new, empty store (aborts on OOM); free with gw_recent_free(). max_bytes bounds the
 * total (see above); max_per_room the events per room (0: keep only each room's last seq, so
 * every since-lookup before it is GW_RECENT_TOO_OLD). */
struct gw_recent *gw_recent_new(size_t max_bytes, size_t max_per_room);
/* Releases every held reference and frees r. NULL-safe. */
void gw_recent_free(struct gw_recent *r);
/* Forgets every room (releasing their references; the counters of the stats are kept): for a
 * consumer that lost track of the log (a seek forward would otherwise hide a gap). */
void gw_recent_clear(struct gw_recent *r);

/* Records the consumed event seq (its Kafka offset, >= 0) of room[0..len) (not necessarily
 * NUL-terminated), taking a new reference to m (the caller keeps its own), then applies the
 * bounds (which may drop m again at once, or forget this very room, when the budget is tiny).
 * Returns the seq of the room's previous event seen by this node since its start or since the
 * room was last forgotten, or -1 when none (the caller then omits "prev"), or GW_RECENT_REPLAY
 * when seq <= the room's last seq (nothing taken or changed, apart from the replays counter). */
int64_t
gw_recent_add(struct gw_recent *r, const char *room, size_t len, int64_t seq, struct chat_msg *m);

/* The lookup of `join {room, since}`; marks a known room used. since is the client's value (any
 * int64_t). Returns
 *   GW_RECENT_RECOVERED when since >= the room's base: *it yields the held events with
 *     seq > since in order (none when since >= the last seq); *oldest is left alone;
 *   GW_RECENT_TOO_OLD otherwise: *oldest is the oldest seq held, the room's last seq when it
 *     holds none (history up to it, then a join with since = it, recovers), or -1 when the room
 *     is unknown; *it yields nothing.
 * The references the iterator yields are borrowed (take your own: chat_msg_ref). */
CHAT_NODISCARD int gw_recent_since(struct gw_recent *r,
                                   const char *room,
                                   size_t len,
                                   int64_t since,
                                   struct gw_recent_iter *it,
                                   int64_t *oldest);
/* Returns the next event of it (borrowed, see gw_recent_iter) and its seq in *seq (may be NULL),
 * or NULL after the last. */
struct chat_msg *gw_recent_next(struct gw_recent_iter *it, int64_t *seq);

/* Called by gw_recent_replace() for each held event of a room, newest first: returns a new
 * message (a reference the store takes over) to hold in m's place, or NULL to keep m. */
typedef struct chat_msg *gw_recent_map_fn(const struct chat_msg *m, void *arg);
/* Replaces every held event of room[0..len) for which fn returns a message (the deleted form
 * of a deleted message and of its edits, the edited form of an edited one: recovery then
 * replays what history shows). Their seqs and the room's order stay; the byte budget applies
 * again afterwards (which may evict). Does not mark the room used. Returns true when an event
 * was replaced. */
bool gw_recent_replace(
    struct gw_recent *r, const char *room, size_t len, gw_recent_map_fn *fn, void *arg);

/* Fills *out with room's state without marking it used. Returns false (out untouched) when the
 * room is unknown. */
bool gw_recent_peek(const struct gw_recent *r,
                    const char *room,
                    size_t len,
                    struct gw_recent_info *out);
void gw_recent_get_stats(const struct gw_recent *r, struct gw_recent_stats *out);

#endif
