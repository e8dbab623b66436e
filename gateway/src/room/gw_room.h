/* gw_room.h - the room index: room id -> dense array of this node's subscribed connections, and
 * per connection the back-index (each membership knows its slot in the room's array), so join,
 * leave and fan-out are O(1) per subscriber. A room also counts its logged-in subscribers (the
 * presence report lists their users from the subscribers: cache/gw_redis.c) and keeps its last
 * presence frame. Thread-safety: none; event-loop thread only. */
#ifndef GW_ROOM_H
#define GW_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chat_msg;
struct gw;
struct gw_conn;

/* A connection's membership of a room; the room keeps a dense array of subscribers. */
struct gw_sub {
    struct gw_conn *c;
};

/* A subscriber that must not get the room's events up to through: it joined with since ahead of
 * what this node had consumed of the room (it holds them already; gw_conn.c join_since). */
struct gw_skip {
    struct gw_conn *c;
    int64_t through;
};

struct gw_room {
    char *name;            /* owns */
    struct gw_room *hnext; /* hash chain */
    struct gw_sub *subs;   /* owns; dense, unordered */
    size_t nsubs, cap;
    size_t nauthed;            /* subscribers that are logged in (a user may count twice) */
    struct chat_msg *presence; /* owns a ref: the room's last presence frame, or NULL */
    bool dirty;                /* presence changed since the last report to Redis */
    bool reported;             /* Redis holds keys for this room (must be cleared when empty) */
    struct gw_skip *skips;     /* owns; nskips entries, usually none */
    int nskips;
};

struct gw_rooms {
    struct gw_room **slots; /* owns rooms */
    size_t nslots, n;
};

/* One entry of a connection's rooms (struct gw_conn.rooms): the back-index. */
struct gw_membership {
    struct gw_room *room;
    size_t idx; /* index in room->subs */
};

void gw_room_index_init(struct gw_rooms *r);
/* Frees every room (their presence references included). */
void gw_room_index_fini(struct gw_rooms *r);
/* Returns the room (borrowed: valid until gw_room_maybe_free), or NULL. */
struct gw_room *gw_room_find(struct gw_rooms *r, const char *name);
/* Returns the room, creating it when missing. */
struct gw_room *gw_room_get(struct gw_rooms *r, const char *name);
/* Removes and frees an empty room that has nothing left to report. */
void gw_room_maybe_free(struct gw_rooms *r, struct gw_room *room);
/* Subscribes c; returns CHAT_OK, CHAT_EEXIST (already) or CHAT_ETOOBIG (max_rooms). */
int gw_room_join(struct gw *gw, struct gw_conn *c, const char *name);
/* Returns CHAT_OK or CHAT_ENOENT (not joined). */
int gw_room_leave(struct gw *gw, struct gw_conn *c, const char *name);
/* Leaves every room and gives back c's membership slots on the heap. */
void gw_room_leave_all(struct gw *gw, struct gw_conn *c);
/* c, logged in (c->authed), joins (d = +1) or leaves (d = -1) its rooms' logged-in counts:
 * called on either side of a change of identity. */
void gw_room_authed_delta(struct gw_conn *c, int d);
/* True when c is subscribed to name. */
bool gw_room_joined(const struct gw_conn *c, const char *name);
/* c (a subscriber) holds the room's events up to through already: the fan-out leaves them out
 * for c (gw_room_skipped) until the room reaches through (gw_room_skips_done). */
void gw_room_skip_add(struct gw_room *room, struct gw_conn *c, int64_t through);
/* Whether the event at seq is one c holds already (room->nskips > 0: call only then). */
bool gw_room_skipped(const struct gw_room *room, const struct gw_conn *c, int64_t seq);
/* The room's event at seq went out: the skips it reached are over. */
void gw_room_skips_done(struct gw_room *room, int64_t seq);

#endif
