/* gw_map.h - a small string-keyed hash map: user id -> rate bucket (sends per user), nickname or
 * revocation (session/), the user's connections on this node (ws/gw_conn.c). Keys are
 * client-chosen, so they are hashed with this process's secret key (chat_hash_str). Thread-safety:
 * none; event-loop thread only. */
#ifndef GW_MAP_H
#define GW_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "room/gw_bucket.h"

struct gw_conn;

/* One entry: 40 bytes plus the key, in one allocation (a logged-in connection's user costs an
 * entry in gw->users: idle memory per connection). Each map uses one member of the union, never
 * two: until_ms (revoked, nicks, room_cfg, denied, sanctions), bucket (send_rates), conns
 * (gw->users). */
struct gw_map_ent {
    struct gw_map_ent *next;
    int count;
    char *str; /* owns, may be NULL: a value (nickname, reason, room kind) */
    union {
        int64_t until_ms; /* revocations: forget after (wall ms); nicknames: changed at (wall ms) */
        struct gw_bucket bucket;
        struct gw_conn *conns; /* gw->users: the user's connections on this node (gw_conn.unext) */
    };
    char key[]; /* NUL-terminated, allocated with the entry */
};

struct gw_map {
    struct gw_map_ent **slots; /* owns */
    size_t nslots, n;
};

void gw_map_init(struct gw_map *m);
/* Frees every entry and the slots; safe on a finished map. */
void gw_map_fini(struct gw_map *m);
/* Returns the entry of key (borrowed: valid until it is removed), or NULL. */
struct gw_map_ent *gw_map_find(const struct gw_map *m, const char *key);
/* Returns the entry, creating a zeroed one when missing. */
struct gw_map_ent *gw_map_get(struct gw_map *m, const char *key);
void gw_map_remove(struct gw_map *m, const char *key);
/* Removes (and frees) every entry for which drop() is true. */
void gw_map_sweep(struct gw_map *m, bool (*drop)(const struct gw_map_ent *e, void *ud), void *ud);

#endif
