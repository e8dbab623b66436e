/* gw_room.c - the room index (room id -> dense array of subscribed connections) and the small
 * string -> count maps used for distinct users. Event-loop thread only. */
#include <string.h>

#include "chat/hash.h"
#include "chat/mem.h"

#include "gw.h"

/* Room and user ids are chosen by clients: keyed, so nobody can aim them all at one bucket. */
#define hash_str chat_hash_str

/* ---- string map (user id -> count or rate bucket) ---- */

void gw_map_init(struct gw_map *m)
{
    m->nslots = 16;
    m->n = 0;
    m->slots = chat_xcalloc(m->nslots, sizeof(*m->slots));
}

static void ent_free(struct gw_map_ent *e)
{
    chat_free(e->key);
    chat_free(e->str);
    chat_free(e);
}

void gw_map_fini(struct gw_map *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct gw_map_ent *e = m->slots[i];
        while (e) {
            struct gw_map_ent *next = e->next;
            ent_free(e);
            e = next;
        }
    }
    CHAT_FREE(m->slots);
    m->n = m->nslots = 0;
}

static void map_grow(struct gw_map *m)
{
    size_t nn = m->nslots * 2;
    struct gw_map_ent **ns = chat_xcalloc(nn, sizeof(*ns));

    for (size_t i = 0; i < m->nslots; i++) {
        struct gw_map_ent *e = m->slots[i];
        while (e) {
            struct gw_map_ent *next = e->next;
            size_t k = hash_str(e->key) & (nn - 1);
            e->next = ns[k];
            ns[k] = e;
            e = next;
        }
    }
    chat_free(m->slots);
    m->slots = ns;
    m->nslots = nn;
}

struct gw_map_ent *gw_map_find(const struct gw_map *m, const char *key)
{
    struct gw_map_ent *e = m->slots[hash_str(key) & (m->nslots - 1)];
    while (e && strcmp(e->key, key) != 0)
        e = e->next;
    return e;
}

struct gw_map_ent *gw_map_get(struct gw_map *m, const char *key)
{
    struct gw_map_ent *e = gw_map_find(m, key);
    size_t k;

    if (e)
        return e;
    if (m->n + 1 > m->nslots * 2)
        map_grow(m);
    k = hash_str(key) & (m->nslots - 1);
    e = chat_xcalloc(1, sizeof(*e));
    e->key = chat_xstrdup(key);
    e->next = m->slots[k];
    m->slots[k] = e;
    m->n++;
    return e;
}

void gw_map_sweep(struct gw_map *m, bool (*drop)(const struct gw_map_ent *e, void *ud), void *ud)
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct gw_map_ent **pp = &m->slots[i];
        while (*pp) {
            struct gw_map_ent *e = *pp;
            if (drop(e, ud)) {
                *pp = e->next;
                ent_free(e);
                m->n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

void gw_map_remove(struct gw_map *m, const char *key)
{
    struct gw_map_ent **pp = &m->slots[hash_str(key) & (m->nslots - 1)];

    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    if (*pp) {
        struct gw_map_ent *e = *pp;
        *pp = e->next;
        ent_free(e);
        m->n--;
    }
}

int gw_countmap_add(struct gw_map *m, const char *key, int delta)
{
    struct gw_map_ent *e = delta > 0 ? gw_map_get(m, key) : gw_map_find(m, key);

    if (!e)
        return 0;
    e->count += delta;
    if (e->count > 0)
        return e->count;
    gw_map_remove(m, key);
    return 0;
}

int gw_bucket_take(struct gw_bucket *b, double rate, double burst, int64_t now_us)
{
    double t;

    if (b->at_us == 0) /* a new bucket starts full */
        b->tokens = burst;
    t = b->tokens + (double)(now_us - b->at_us) * rate / 1e6;
    if (b->at_us == 0 || t > burst)
        t = burst;
    b->at_us = now_us;
    if (t >= 1.0) {
        b->tokens = t - 1.0;
        return 0;
    }
    b->tokens = t;
    return (int)((1.0 - t) * 1000.0 / rate) + 1;
}

/* ---- rooms ---- */

void gw_rooms_init(struct gw_rooms *r)
{
    r->nslots = 256;
    r->n = 0;
    r->slots = chat_xcalloc(r->nslots, sizeof(*r->slots));
}

static void room_free(struct gw_room *room)
{
    chat_msg_unref(room->presence);
    gw_map_fini(&room->users);
    chat_free(room->subs);
    chat_free(room->name);
    chat_free(room);
}

void gw_rooms_fini(struct gw_rooms *r)
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
    gw_map_init(&room->users);
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

bool gw_conn_in_room(const struct gw_conn *c, const char *name)
{
    for (int i = 0; i < c->nrooms; i++)
        if (strcmp(c->rooms[i].room->name, name) == 0)
            return true;
    return false;
}

static void presence_delta(struct gw_room *room, const struct gw_conn *c, int d)
{
    if (c->authed)
        gw_countmap_add(&room->users, c->claims.sub, d);
    room->dirty = true;
}

int gw_room_join(struct gw *gw, struct gw_conn *c, const char *name)
{
    struct gw_room *room;

    if (gw_conn_in_room(c, name))
        return CHAT_EEXIST;
    if (c->nrooms >= gw->cfg->max_rooms)
        return CHAT_ETOOBIG;
    if (c->nrooms == c->rooms_cap) {
        c->rooms_cap = c->rooms_cap ? c->rooms_cap * 2 : 2;
        if (c->rooms_cap > gw->cfg->max_rooms)
            c->rooms_cap = gw->cfg->max_rooms;
        c->rooms = chat_xrealloc(c->rooms, (size_t)c->rooms_cap * sizeof(*c->rooms));
    }
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
    chat_metric_set(&gw->m.rooms, (long long)gw->rooms.n);
}
