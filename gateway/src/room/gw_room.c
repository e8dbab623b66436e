/* gw_room.c - the room index (room id -> dense array of subscribed connections) with its
 * back-index in each connection. Event-loop thread only. */
#include "room/gw_room.h"

#include <stdint.h>
#include <string.h>

#include "chat/hash.h"
#include "chat/mem.h"

#include "core/gw.h"
#include "ws/gw_conn.h"

/* Room and user ids are chosen by clients: keyed, so nobody can aim them all at one bucket. */
#define hash_str chat_hash_str

/* ---- rooms ---- */

void gw_room_index_init(struct gw_rooms *r)
{
    r->nslots = 256;
    r->n = 0;
    r->slots = chat_xcalloc(r->nslots, sizeof(*r->slots));
}

static int skip_find(const struct gw_room *room, const struct gw_conn *c, bool *found);
static void skip_remove(struct gw_room *room, int k);

static void room_free(struct gw_room *room)
{
    chat_msg_unref(room->presence);
    chat_free(room->skips);
    chat_free(room->subs);
    chat_free(room->name);
    chat_free(room);
}

void gw_room_index_fini(struct gw_rooms *r)
{
    for (size_t i = 0; i < r->nslots; i++) {
        struct gw_room *room = r->slots[i];
        while (room) {
            struct gw_room *next = room->hnext;
            room_free(room);
            room = next;
        }
    }
    CHAT_FREE(r->slots);
    r->n = r->nslots = 0;
}

struct gw_room *gw_room_find(struct gw_rooms *r, const char *name)
{
    struct gw_room *room = r->slots[hash_str(name) & (r->nslots - 1)];
    while (room && strcmp(room->name, name) != 0)
        room = room->hnext;
    return room;
}

static void rooms_grow(struct gw_rooms *r)
{
    size_t nn = r->nslots * 2;
    struct gw_room **ns = chat_xcalloc(nn, sizeof(*ns));

    for (size_t i = 0; i < r->nslots; i++) {
        struct gw_room *room = r->slots[i];
        while (room) {
            struct gw_room *next = room->hnext;
            size_t k = hash_str(room->name) & (nn - 1);
            room->hnext = ns[k];
            ns[k] = room;
            room = next;
        }
    }
    chat_free(r->slots);
    r->slots = ns;
    r->nslots = nn;
}

struct gw_room *gw_room_get(struct gw_rooms *r, const char *name)
{
    struct gw_room *room = gw_room_find(r, name);
    size_t k;

    if (room)
        return room;
    if (r->n + 1 > r->nslots)
        rooms_grow(r);
    k = hash_str(name) & (r->nslots - 1);
    room = chat_xcalloc(1, sizeof(*room));
    room->name = chat_xstrdup(name);
    room->hnext = r->slots[k];
    r->slots[k] = room;
    r->n++;
    return room;
}

void gw_room_maybe_free(struct gw_rooms *r, struct gw_room *room)
{
    struct gw_room **pp;

    /* a room Redis never heard of needs no zero report: free it even when dirty */
    if (room->nsubs || room->reported || room->presence)
        return;
    pp = &r->slots[hash_str(room->name) & (r->nslots - 1)];
    while (*pp && *pp != room)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = room->hnext;
    r->n--;
    room_free(room);
}

bool gw_room_joined(const struct gw_conn *c, const char *name)
{
    for (int i = 0; i < c->nrooms; i++)
        if (strcmp(c->rooms[i].room->name, name) == 0)
            return true;
    return false;
}

static void presence_delta(struct gw_room *room, const struct gw_conn *c, int d)
{
    if (c->authed)
        room->nauthed = (size_t)((long long)room->nauthed + d);
    room->dirty = true;
}

void gw_room_authed_delta(struct gw_conn *c, int d)
{
    for (int i = 0; i < c->nrooms; i++)
        presence_delta(c->rooms[i].room, c, d);
}

/* Room for one more membership in c: the first in c->room1, then on the heap (2, 4, ... slots,
 * at most max_rooms). */
static void memberships_grow(struct gw_conn *c, int max_rooms)
{
    int cap = c->rooms_cap ? c->rooms_cap * 2 : 1;

    if (cap > max_rooms)
        cap = max_rooms;
    if (cap == 1) {
        c->rooms = &c->room1;
    } else if (c->rooms == &c->room1) {
        c->rooms = chat_xmalloc((size_t)cap * sizeof(*c->rooms));
        c->rooms[0] = c->room1;
    } else {
        c->rooms = chat_xrealloc(c->rooms, (size_t)cap * sizeof(*c->rooms));
    }
    c->rooms_cap = (uint16_t)cap;
}

int gw_room_join(struct gw *gw, struct gw_conn *c, const char *name)
{
    struct gw_room *room;

    if (gw_room_joined(c, name))
        return CHAT_EEXIST;
    if (c->nrooms >= gw->cfg->max_rooms)
        return CHAT_ETOOBIG;
    if (c->nrooms == c->rooms_cap)
        memberships_grow(c, gw->cfg->max_rooms);
    room = gw_room_get(&gw->rooms, name);
    if (room->nsubs == room->cap) {
        room->cap = room->cap ? room->cap * 2 : 4;
        room->subs = chat_xrealloc(room->subs, room->cap * sizeof(*room->subs));
    }
    room->subs[room->nsubs].c = c;
    c->rooms[c->nrooms].room = room;
    c->rooms[c->nrooms].idx = room->nsubs;
    c->nrooms++;
    room->nsubs++;
    presence_delta(room, c, +1);
    chat_metric_set(&gw->m.rooms, (long long)gw->rooms.n);
    return CHAT_OK;
}

/* Removes membership slot i of c. */
static void leave_slot(struct gw_conn *c, int i)
{
    struct gw_room *room = c->rooms[i].room;
    size_t idx = c->rooms[i].idx;
    size_t last = room->nsubs - 1;

    if (idx != last) {
        /* move the last subscriber into the hole and fix its back-index */
        struct gw_conn *moved = room->subs[last].c;
        room->subs[idx] = room->subs[last];
        for (int k = 0; k < moved->nrooms; k++)
            if (moved->rooms[k].room == room) {
                moved->rooms[k].idx = idx;
                break;
            }
    }
    room->nsubs--;
    if (room->nskips) {
        bool found;
        int k = skip_find(room, c, &found);
        if (found)
            skip_remove(room, k);
    }
    c->rooms[i] = c->rooms[c->nrooms - 1];
    c->nrooms--;
    presence_delta(room, c, -1);
    /* the room stays while dirty so that its zero count reaches Redis */
}

int gw_room_leave(struct gw *gw, struct gw_conn *c, const char *name)
{
    for (int i = 0; i < c->nrooms; i++)
        if (strcmp(c->rooms[i].room->name, name) == 0) {
            struct gw_room *room = c->rooms[i].room;
            leave_slot(c, i);
            gw_room_maybe_free(&gw->rooms, room);
            chat_metric_set(&gw->m.rooms, (long long)gw->rooms.n);
            return CHAT_OK;
        }
    return CHAT_ENOENT;
}

void gw_room_leave_all(struct gw *gw, struct gw_conn *c)
{
    while (c->nrooms > 0) {
        struct gw_room *room = c->rooms[c->nrooms - 1].room;
        leave_slot(c, c->nrooms - 1);
        gw_room_maybe_free(&gw->rooms, room);
    }
    if (c->rooms != &c->room1)
        chat_free(c->rooms);
    c->rooms = NULL;
    c->rooms_cap = 0;
    chat_metric_set(&gw->m.rooms, (long long)gw->rooms.n);
}

/* The skips are sorted by connection (a pointer order): a look-up is a binary search, so a mass
 * reconnect onto a lagging node costs O(log n) per subscriber and event, not O(n). */
static int skip_find(const struct gw_room *room, const struct gw_conn *c, bool *found)
{
    int lo = 0, hi = room->nskips;

    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if ((uintptr_t)room->skips[mid].c < (uintptr_t)c)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < room->nskips && room->skips[lo].c == c;
    return lo;
}

static void skip_remove(struct gw_room *room, int k)
{
    memmove(&room->skips[k], &room->skips[k + 1],
            (size_t)(room->nskips - k - 1) * sizeof(*room->skips));
    if (--room->nskips == 0)
        CHAT_FREE(room->skips);
}

void gw_room_skip_add(struct gw_room *room, struct gw_conn *c, int64_t through)
{
    bool found;
    int k = skip_find(room, c, &found);

    if (found) {
        room->skips[k].through = through;
        return;
    }
    room->skips = chat_xrealloc(room->skips, (size_t)(room->nskips + 1) * sizeof(*room->skips));
    memmove(&room->skips[k + 1], &room->skips[k],
            (size_t)(room->nskips - k) * sizeof(*room->skips));
    room->skips[k] = (struct gw_skip){.c = c, .through = through};
    room->nskips++;
}

bool gw_room_skipped(const struct gw_room *room, const struct gw_conn *c, int64_t seq)
{
    bool found;
    int k = skip_find(room, c, &found);

    return found && seq <= room->skips[k].through;
}

void gw_room_skips_done(struct gw_room *room, int64_t seq)
{
    for (int k = room->nskips - 1; k >= 0; k--)
        if (room->skips[k].through <= seq)
            skip_remove(room, k);
}
