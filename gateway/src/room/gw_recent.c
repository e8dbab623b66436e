/* gw_recent.c - every room's recent events on this node (see gw_recent.h): a hash of rooms by
 * name (keyed SipHash), each with a ring of (seq, message reference), and a list of the rooms
 * from least to most recently used for the byte budget. Event-loop thread only. */
#include "room/gw_recent.h"

#include <string.h>

#include "chat/hash.h"
#include "chat/mem.h"
#include "chat/msg.h"

/* A room's ring starts this small and doubles up to max_per_room. */
#define RING_MIN_CAP 4
/* A ring this big is given back when it empties (a room whose events were all evicted). */
#define RING_SHRINK_CAP 64
/* The hash starts with this many slots and doubles when rooms outnumber slots twice. */
#define SLOTS_MIN 64

struct ev {
    int64_t seq;
    struct chat_msg *m; /* owns a ref */
};

struct gw_recent_room {
    char *name; /* owns; NUL-terminated copy of the key */
    size_t nlen;
    uint64_t hash;
    struct gw_recent_room *hnext;         /* hash chain */
    struct gw_recent_room *older, *newer; /* the LRU list of struct gw_recent */
    struct ev *v;                         /* owns; a ring of cap slots, NULL while cap == 0 */
    size_t head, len, cap;
    int64_t base; /* every event with seq > base is held */
    int64_t last; /* the last seq added */
};

struct gw_recent {
    struct gw_recent_room **slots; /* owns the rooms */
    size_t nslots;
    struct gw_recent_room *lru, *mru; /* least / most recently used ends of the list */
    size_t max_bytes, max_per_room;   /* immutable after gw_recent_new */
    struct gw_recent_stats st;
};

static size_t ev_cost(const struct chat_msg *m)
{
    return chat_msg_wire_len(m) + GW_RECENT_EV_OVERHEAD;
}

static size_t room_cost(const struct gw_recent_room *room)
{
    return room->nlen + GW_RECENT_ROOM_OVERHEAD;
}

static const struct ev *ev_at(const struct gw_recent_room *room, size_t i)
{
    return &room->v[(room->head + i) % room->cap];
}

/* ---- the LRU list ---- */

static void lru_unlink(struct gw_recent *r, struct gw_recent_room *room)
{
    if (room->older)
        room->older->newer = room->newer;
    else
        r->lru = room->newer;
    if (room->newer)
        room->newer->older = room->older;
    else
        r->mru = room->older;
    room->older = room->newer = NULL;
}

static void lru_push_mru(struct gw_recent *r, struct gw_recent_room *room)
{
    room->older = r->mru;
    room->newer = NULL;
    if (r->mru)
        r->mru->newer = room;
    else
        r->lru = room;
    r->mru = room;
}

static void touch(struct gw_recent *r, struct gw_recent_room *room)
{
    if (r->mru == room)
        return;
    lru_unlink(r, room);
    lru_push_mru(r, room);
}

/* ---- a room's ring ---- */

/* Drops the room's oldest event; base moves up to its seq. */
static void ring_pop(struct gw_recent *r, struct gw_recent_room *room)
{
    struct ev *e;

    CHAT_ASSERT(room->len > 0 && room->v);
    e = &room->v[room->head];
    room->base = e->seq;
    r->st.bytes -= ev_cost(e->m);
    r->st.events--;
    chat_msg_unref(e->m);
    e->m = NULL;
    room->head = (room->head + 1) % room->cap;
    room->len--;
    if (room->len == 0 && room->cap >= RING_SHRINK_CAP) {
        CHAT_FREE(room->v);
        room->cap = 0;
        room->head = 0;
    }
}

/* Doubles the ring (at most to max slots), unwrapping it. */
static void ring_grow(struct gw_recent_room *room, size_t max)
{
    size_t ncap = room->cap ? room->cap * 2 : RING_MIN_CAP;
    struct ev *n;

    if (ncap > max)
        ncap = max;
    n = chat_xcalloc(ncap, sizeof(*n));
    for (size_t i = 0; i < room->len; i++)
        n[i] = *ev_at(room, i);
    chat_free(room->v);
    room->v = n;
    room->cap = ncap;
    room->head = 0;
}

/* First position in the ring whose seq is greater than since (room->len when none). */
static size_t ring_after(const struct gw_recent_room *room, int64_t since)
{
    size_t lo = 0, hi = room->len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ev_at(room, mid)->seq > since)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ---- the hash of rooms ---- */

static struct gw_recent_room **slot_of(const struct gw_recent *r, uint64_t hash)
{
    return &r->slots[hash & (r->nslots - 1)];
}

static struct gw_recent_room *room_find(const struct gw_recent *r, const char *name, size_t len)
{
    uint64_t h = chat_hash_mem(name, len);
    struct gw_recent_room *room = *slot_of(r, h);

    while (room && (room->hash != h || room->nlen != len || memcmp(room->name, name, len) != 0))
        room = room->hnext;
    return room;
}

static void slots_grow(struct gw_recent *r)
{
    size_t nn = r->nslots * 2;
    struct gw_recent_room **ns = chat_xcalloc(nn, sizeof(*ns));

    for (size_t i = 0; i < r->nslots; i++) {
        struct gw_recent_room *room = r->slots[i];
        while (room) {
            struct gw_recent_room *next = room->hnext;
            size_t k = room->hash & (nn - 1);
            room->hnext = ns[k];
            ns[k] = room;
            room = next;
        }
    }
    chat_free(r->slots);
    r->slots = ns;
    r->nslots = nn;
}

/* Returns a new room (unused: last -1) at the most recently used end. */
static struct gw_recent_room *room_new(struct gw_recent *r, const char *name, size_t len)
{
    struct gw_recent_room *room = chat_xcalloc(1, sizeof(*room));
    struct gw_recent_room **slot;

    if (r->st.rooms + 1 > r->nslots * 2)
        slots_grow(r);
    room->name = chat_xmalloc(len + 1);
    memcpy(room->name, name, len);
    room->name[len] = '\0';
    room->nlen = len;
    room->hash = chat_hash_mem(name, len);
    room->base = room->last = -1;
    slot = slot_of(r, room->hash);
    room->hnext = *slot;
    *slot = room;
    lru_push_mru(r, room);
    r->st.rooms++;
    r->st.bytes += room_cost(room);
    return room;
}

/* Unlinks room from the hash and the LRU list, releases its events and frees it. */
static void room_remove(struct gw_recent *r, struct gw_recent_room *room)
{
    struct gw_recent_room **pp = slot_of(r, room->hash);

    while (*pp != room)
        pp = &(*pp)->hnext;
    *pp = room->hnext;
    lru_unlink(r, room);
    while (room->len > 0)
        ring_pop(r, room);
    r->st.rooms--;
    r->st.bytes -= room_cost(room);
    chat_free(room->v);
    chat_free(room->name);
    chat_free(room);
}

/* While over the byte budget: the least recently used room loses its oldest event, or itself
 * once it holds none. */
static void evict(struct gw_recent *r)
{
    while (r->st.bytes > r->max_bytes && r->lru) {
        struct gw_recent_room *room = r->lru;
        if (room->len > 0) {
            ring_pop(r, room);
            r->st.evicted_events++;
        } else {
            room_remove(r, room);
            r->st.evicted_rooms++;
        }
    }
}

/* ---- the API ---- */

struct gw_recent *gw_recent_new(size_t max_bytes, size_t max_per_room)
{
    struct gw_recent *r = chat_xcalloc(1, sizeof(*r));

    r->max_bytes = max_bytes;
    r->max_per_room = max_per_room;
    r->nslots = SLOTS_MIN;
    r->slots = chat_xcalloc(r->nslots, sizeof(*r->slots));
    return r;
}

void gw_recent_clear(struct gw_recent *r)
{
    while (r->lru)
        room_remove(r, r->lru);
}

void gw_recent_free(struct gw_recent *r)
{
    if (!r)
        return;
    gw_recent_clear(r);
    chat_free(r->slots);
    chat_free(r);
}

int64_t
gw_recent_add(struct gw_recent *r, const char *room, size_t len, int64_t seq, struct chat_msg *m)
{
    struct gw_recent_room *rm;
    int64_t prev;

    CHAT_ASSERT(m && seq >= 0);
    rm = room_find(r, room, len);
    if (rm && seq <= rm->last) {
        r->st.replays++;
        return GW_RECENT_REPLAY;
    }
    if (rm) {
        touch(r, rm);
    } else {
        rm = room_new(r, room, len);
    }
    prev = rm->last;
    if (rm->len == 0 && prev < 0)
        rm->base = seq - 1; /* the first event seen: no event of the room lies between */
    rm->last = seq;
    if (r->max_per_room == 0) {
        rm->base = seq; /* holds nothing: only a since at the last seq is recovered */
    } else {
        if (rm->len == r->max_per_room) {
            ring_pop(r, rm);
            r->st.trimmed++;
        }
        if (rm->len == rm->cap)
            ring_grow(rm, r->max_per_room);
        rm->v[(rm->head + rm->len) % rm->cap] = (struct ev){.seq = seq, .m = chat_msg_ref(m)};
        rm->len++;
        r->st.events++;
        r->st.bytes += ev_cost(m);
    }
    evict(r); /* rm may be gone after this */
    return prev;
}

int gw_recent_since(struct gw_recent *r,
                    const char *room,
                    size_t len,
                    int64_t since,
                    struct gw_recent_iter *it,
                    int64_t *oldest)
{
    struct gw_recent_room *rm = room_find(r, room, len);
    size_t i;

    memset(it, 0, sizeof(*it));
    if (!rm) {
        *oldest = -1;
        return GW_RECENT_TOO_OLD;
    }
    touch(r, rm);
    if (since < rm->base) {
        *oldest = rm->len > 0 ? ev_at(rm, 0)->seq : rm->last;
        return GW_RECENT_TOO_OLD;
    }
    i = ring_after(rm, since);
    it->_room = rm;
    it->_i = i;
    it->_left = it->n = rm->len - i;
    for (size_t k = i; k < rm->len; k++)
        it->bytes += chat_msg_wire_len(ev_at(rm, k)->m);
    return GW_RECENT_RECOVERED;
}

struct chat_msg *gw_recent_next(struct gw_recent_iter *it, int64_t *seq)
{
    const struct ev *e;

    if (it->_left == 0)
        return NULL;
    e = ev_at(it->_room, it->_i);
    it->_i++;
    it->_left--;
    if (seq)
        *seq = e->seq;
    return e->m;
}

bool gw_recent_replace(
    struct gw_recent *r, const char *room, size_t len, gw_recent_map_fn *fn, void *arg)
{
    struct gw_recent_room *rm = room_find(r, room, len);
    bool any = false;

    for (size_t k = rm ? rm->len : 0; k-- > 0;) {
        struct ev *e = &rm->v[(rm->head + k) % rm->cap];
        struct chat_msg *n = fn(e->m, arg);

        if (!n)
            continue;
        r->st.bytes -= ev_cost(e->m);
        r->st.bytes += ev_cost(n);
        chat_msg_unref(e->m);
        e->m = n;
        any = true;
    }
    if (any) /* after the walk: an eviction moves the ring */
        evict(r);
    return any;
}

bool gw_recent_peek(const struct gw_recent *r,
                    const char *room,
                    size_t len,
                    struct gw_recent_info *out)
{
    const struct gw_recent_room *rm = room_find(r, room, len);

    if (!rm)
        return false;
    out->base = rm->base;
    out->oldest = rm->len > 0 ? ev_at(rm, 0)->seq : -1;
    out->last = rm->last;
    out->n = rm->len;
    return true;
}

void gw_recent_get_stats(const struct gw_recent *r, struct gw_recent_stats *out)
{
    *out = r->st;
}
