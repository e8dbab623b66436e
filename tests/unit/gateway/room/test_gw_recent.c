/* test_gw_recent.c - every room's recent events (gateway/src/room/gw_recent.c, linked from
 * gw_core): order and the prev chain, base after the per-room cap, the byte budget with LRU
 * across rooms (a room read by a lookup survives, an untouched one goes), replays, since at
 * base / inside / at the last / beyond, unknown rooms, the references held (every one released),
 * and randomized adds and lookups checked against a simple model. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/mem.h"
#include "chat/msg.h"

#include "room/gw_recent.h"

/* A frame whose payload is n copies of 'x' (the wire length is 2 + n for n < 126). */
static struct chat_msg *frame(size_t n)
{
    char s[200];

    assert_true(n < sizeof(s));
    memset(s, 'x', n);
    return chat_msg_new(s, n);
}

static int64_t add(struct gw_recent *r, const char *room, int64_t seq, struct chat_msg *m)
{
    return gw_recent_add(r, room, strlen(room), seq, m);
}

/* Looks up since; on GW_RECENT_RECOVERED checks the iterator yields exactly want[0..nwant)
 * (seqs), with consistent n and bytes. Returns the result; *oldest as gw_recent_since. */
static int since(struct gw_recent *r,
                 const char *room,
                 int64_t s,
                 const int64_t *want,
                 size_t nwant,
                 int64_t *oldest)
{
    struct gw_recent_iter it;
    struct chat_msg *m;
    int64_t seq;
    size_t k = 0, bytes = 0;
    int rc;

    *oldest = -100;
    rc = gw_recent_since(r, room, strlen(room), s, &it, oldest);
    if (rc == GW_RECENT_TOO_OLD) {
        assert_int_equal(it.n, 0);
        assert_null(gw_recent_next(&it, &seq));
        return rc;
    }
    assert_int_equal(rc, GW_RECENT_RECOVERED);
    assert_int_equal(*oldest, -100); /* left alone */
    assert_int_equal(it.n, nwant);
    while ((m = gw_recent_next(&it, &seq)) != NULL) {
        assert_true(k < nwant);
        assert_int_equal(seq, want[k]);
        bytes += chat_msg_wire_len(m);
        k++;
    }
    assert_int_equal(k, nwant);
    assert_int_equal(it.bytes, bytes);
    assert_null(gw_recent_next(&it, NULL)); /* stays at the end */
    return rc;
}

static void test_order_prev_since(void **state)
{
    struct gw_recent *r = gw_recent_new(1 << 20, 100);
    struct chat_msg *m[4];
    struct gw_recent_info info;
    struct gw_recent_stats st;
    int64_t oldest;

    (void)state;
    for (int i = 0; i < 4; i++)
        m[i] = frame((size_t)i + 1);
    /* one partition, two rooms: seqs increase per room, not contiguously */
    assert_int_equal(add(r, "a", 10, m[0]), -1); /* first seen: no prev */
    assert_int_equal(add(r, "b", 11, m[1]), -1);
    assert_int_equal(add(r, "a", 12, m[2]), 10);
    assert_int_equal(add(r, "a", 15, m[3]), 12);
    assert_int_equal(add(r, "b", 16, m[0]), 11);
    assert_int_equal(m[0]->refs, 3); /* ours, a's and b's */
    assert_int_equal(m[3]->refs, 2);

    assert_true(gw_recent_peek(r, "a", 1, &info));
    assert_int_equal(info.base, 9); /* nothing of room a lies between 9 and 10 */
    assert_int_equal(info.oldest, 10);
    assert_int_equal(info.last, 15);
    assert_int_equal(info.n, 3);
    /* since at base, inside, at an unknown point between events, at the last, beyond */
    assert_int_equal(since(r, "a", 9, (int64_t[]){10, 12, 15}, 3, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(since(r, "a", 10, (int64_t[]){12, 15}, 2, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(since(r, "a", 13, (int64_t[]){15}, 1, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(since(r, "a", 15, NULL, 0, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(since(r, "a", 1000, NULL, 0, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(since(r, "a", INT64_MAX, NULL, 0, &oldest), GW_RECENT_RECOVERED);
    /* before base */
    assert_int_equal(since(r, "a", 8, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    assert_int_equal(oldest, 10);
    assert_int_equal(since(r, "a", INT64_MIN, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    assert_int_equal(oldest, 10);
    /* unknown rooms, including a prefix and an extension of a known name */
    assert_int_equal(since(r, "c", 0, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    assert_int_equal(oldest, -1);
    assert_int_equal(since(r, "aa", 0, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    assert_int_equal(oldest, -1);
    assert_false(gw_recent_peek(r, "", 0, &info));
    /* the key is (room, len), not NUL-terminated */
    assert_int_equal(gw_recent_add(r, "b-and-more", 1, 20, m[1]), 16);
    assert_true(gw_recent_peek(r, "b", 1, &info));
    assert_int_equal(info.last, 20);

    gw_recent_get_stats(r, &st);
    assert_int_equal(st.rooms, 2);
    assert_int_equal(st.events, 6);
    assert_int_equal(st.evicted_events + st.evicted_rooms + st.trimmed + st.replays, 0);
    gw_recent_free(r);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(m[i]->refs, 1); /* every reference taken was released */
        chat_msg_unref(m[i]);
    }
    gw_recent_free(NULL);
}

static void test_per_room_cap(void **state)
{
    struct gw_recent *r = gw_recent_new(1 << 20, 3);
    struct chat_msg *m[6];
    struct gw_recent_info info;
    struct gw_recent_stats st;
    int64_t oldest;

    (void)state;
    for (int i = 1; i <= 5; i++) {
        m[i] = frame(4);
        assert_int_equal(add(r, "room", i * 10, m[i]), i == 1 ? -1 : (i - 1) * 10);
    }
    assert_int_equal(m[1]->refs, 1); /* trimmed: released */
    assert_int_equal(m[2]->refs, 1);
    assert_int_equal(m[3]->refs, 2);
    assert_true(gw_recent_peek(r, "room", 4, &info));
    assert_int_equal(info.base, 20); /* the event before the oldest held */
    assert_int_equal(info.oldest, 30);
    assert_int_equal(info.n, 3);
    assert_int_equal(since(r, "room", 20, (int64_t[]){30, 40, 50}, 3, &oldest),
                     GW_RECENT_RECOVERED);
    assert_int_equal(since(r, "room", 25, (int64_t[]){30, 40, 50}, 3, &oldest),
                     GW_RECENT_RECOVERED);
    assert_int_equal(since(r, "room", 40, (int64_t[]){50}, 1, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(since(r, "room", 19, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    assert_int_equal(oldest, 30);
    assert_int_equal(since(r, "room", 10, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    gw_recent_get_stats(r, &st);
    assert_int_equal(st.trimmed, 2);
    assert_int_equal(st.events, 3);
    assert_int_equal(st.evicted_events, 0);
    gw_recent_free(r);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(m[i]->refs, 1);
        chat_msg_unref(m[i]);
    }
}

/* max_per_room 0: only each room's last seq is kept (prev still works). */
static void test_no_events_kept(void **state)
{
    struct gw_recent *r = gw_recent_new(1 << 20, 0);
    struct chat_msg *m = frame(3);
    struct gw_recent_stats st;
    int64_t oldest;

    (void)state;
    assert_int_equal(add(r, "a", 5, m), -1);
    assert_int_equal(add(r, "a", 7, m), 5);
    assert_int_equal(m->refs, 1);
    assert_int_equal(since(r, "a", 7, NULL, 0, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(since(r, "a", 5, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    assert_int_equal(oldest, 7); /* none held: history up to the last, then join since it */
    gw_recent_get_stats(r, &st);
    assert_int_equal(st.events, 0);
    assert_int_equal(st.rooms, 1);
    assert_int_equal(st.bytes, 1 + GW_RECENT_ROOM_OVERHEAD);
    gw_recent_free(r);
    chat_msg_unref(m);
}

/* Kafka replays after a rebalance or a seek: not stored, room state unchanged. */
static void test_replay(void **state)
{
    struct gw_recent *r = gw_recent_new(1 << 20, 10);
    struct chat_msg *m = frame(3), *old = frame(5);
    struct gw_recent_info info;
    struct gw_recent_stats st;
    int64_t oldest;

    (void)state;
    assert_int_equal(add(r, "a", 10, m), -1);
    assert_int_equal(add(r, "a", 20, m), 10);
    assert_int_equal(add(r, "a", 15, old), GW_RECENT_REPLAY);
    assert_int_equal(add(r, "a", 20, old), GW_RECENT_REPLAY);
    assert_int_equal(add(r, "a", 0, old), GW_RECENT_REPLAY);
    assert_int_equal(old->refs, 1);
    assert_true(gw_recent_peek(r, "a", 1, &info));
    assert_int_equal(info.last, 20);
    assert_int_equal(info.n, 2);
    assert_int_equal(since(r, "a", 10, (int64_t[]){20}, 1, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(add(r, "a", 30, m), 20); /* and on it goes */
    gw_recent_get_stats(r, &st);
    assert_int_equal(st.replays, 3);
    /* clear forgets everything: the next event has no prev */
    gw_recent_clear(r);
    assert_int_equal(m->refs, 1);
    assert_false(gw_recent_peek(r, "a", 1, &info));
    assert_int_equal(add(r, "a", 15, m), -1);
    gw_recent_get_stats(r, &st);
    assert_int_equal(st.rooms, 1);
    assert_int_equal(st.replays, 3); /* counters survive a clear */
    gw_recent_free(r);
    assert_int_equal(m->refs, 1);
    chat_msg_unref(m);
    chat_msg_unref(old);
}

/* Rooms a, b, c of equal cost R (one-letter names), events of equal cost E < R; a budget of
 * 3R + 5E. With touch_a, a is read by a lookup after b's events arrive, so b is the least
 * recently used when c overflows the budget: b loses its events, then itself; a keeps all.
 * Without the lookup, a goes first. */
static void lru_case(bool touch_a)
{
    struct chat_msg *m = frame(1);
    const size_t R = 1 + GW_RECENT_ROOM_OVERHEAD, E = chat_msg_wire_len(m) + GW_RECENT_EV_OVERHEAD;
    struct gw_recent *r = gw_recent_new(3 * R + 5 * E, 100);
    const char *kept = touch_a ? "a" : "b", *gone = touch_a ? "b" : "a";
    const int64_t kbase = touch_a ? 0 : 2; /* the base of kept: its first seq - 1 */
    struct gw_recent_info info;
    struct gw_recent_stats st;
    int64_t oldest, seq = 0;

    assert_true(E < R);
    assert_int_equal(add(r, "a", ++seq, m), -1); /* 1 */
    assert_int_equal(add(r, "a", ++seq, m), 1);  /* 2 */
    assert_int_equal(add(r, "b", ++seq, m), -1); /* 3 */
    assert_int_equal(add(r, "b", ++seq, m), 3);  /* 4 */
    if (touch_a)
        assert_int_equal(since(r, "a", 1, (int64_t[]){2}, 1, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(add(r, "c", ++seq, m), -1); /* 5: 3R + 5E, fits */
    gw_recent_get_stats(r, &st);
    assert_int_equal(st.bytes, 3 * R + 5 * E);
    assert_int_equal(st.evicted_events, 0);
    assert_int_equal(add(r, "c", ++seq, m), 5); /* 6: the least recently used loses one */
    assert_true(gw_recent_peek(r, gone, 1, &info));
    assert_int_equal(info.n, 1);
    assert_int_equal(info.base, touch_a ? 3 : 1);
    assert_int_equal(since(r, gone, info.base - 1, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    assert_int_equal(oldest, touch_a ? 4 : 2);
    /* that lookup made `gone` the most recently used: undo by using the others after it */
    assert_int_equal(
        since(r, kept, kbase, (int64_t[]){touch_a ? 1 : 3, touch_a ? 2 : 4}, 2, &oldest),
        GW_RECENT_RECOVERED);
    assert_int_equal(add(r, "c", ++seq, m), 6); /* 7: gone is still the least recently used */
    assert_true(gw_recent_peek(r, gone, 1, &info));
    assert_int_equal(info.n, 0); /* keeps only its last seq */
    assert_int_equal(info.base, info.last);
    assert_int_equal(
        since(r, kept, kbase, (int64_t[]){touch_a ? 1 : 3, touch_a ? 2 : 4}, 2, &oldest),
        GW_RECENT_RECOVERED);
    assert_int_equal(add(r, "c", ++seq, m), 7); /* 8: an empty room goes before others' events */
    assert_false(gw_recent_peek(r, gone, 1, &info));
    assert_int_equal(since(r, gone, 0, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    assert_int_equal(oldest, -1);
    assert_true(gw_recent_peek(r, kept, 1, &info));
    assert_int_equal(info.n, 2); /* untouched by the budget */
    gw_recent_get_stats(r, &st);
    assert_int_equal(st.rooms, 2);
    assert_int_equal(st.events, 6);
    assert_int_equal(st.bytes, 2 * R + 6 * E);
    assert_true(st.bytes <= 3 * R + 5 * E);
    assert_int_equal(st.evicted_events, 2);
    assert_int_equal(st.evicted_rooms, 1);
    assert_int_equal(m->refs, 1 + 6);
    /* a forgotten room starts over: its next event has no prev */
    assert_int_equal(add(r, gone, ++seq, m), -1);
    gw_recent_free(r);
    assert_int_equal(m->refs, 1);
    chat_msg_unref(m);
}

static void test_byte_budget_lru(void **state)
{
    (void)state;
    lru_case(true);
    lru_case(false);
}

/* A budget smaller than one room: every add is undone at once (prev is still returned). */
static void test_tiny_budget(void **state)
{
    struct gw_recent *r = gw_recent_new(0, 10);
    struct chat_msg *m = frame(10);
    struct gw_recent_stats st;
    int64_t oldest;

    (void)state;
    assert_int_equal(add(r, "a", 1, m), -1);
    assert_int_equal(add(r, "a", 2, m), -1);
    assert_int_equal(m->refs, 1);
    assert_int_equal(since(r, "a", 1, NULL, 0, &oldest), GW_RECENT_TOO_OLD);
    gw_recent_get_stats(r, &st);
    assert_int_equal(st.rooms, 0);
    assert_int_equal(st.events, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.evicted_events, 2);
    assert_int_equal(st.evicted_rooms, 2);
    gw_recent_free(r);
    chat_msg_unref(m);
}

/* ---- randomized, against a model: arrays and linear scans ---- */

enum { NROOM = 9, MAXPER = 6, NEV = 3000, MAXHIST = NEV };

struct mroom {
    bool known;
    int64_t base, last;
    uint64_t used;    /* LRU stamp */
    int held[MAXPER]; /* event indices, oldest first */
    int nheld;
    int hist[MAXHIST]; /* every event since the room became known (for the no-gap check) */
    int nhist;
};

struct model {
    int outcomes[2]; /* lookups per enum gw_recent_result, known rooms only */
    struct mroom rooms[NROOM];
    size_t max_bytes, bytes;
    uint64_t clock;
    struct chat_msg *msg[NEV];
    int64_t seq[NEV];
    int room_of[NEV];
};

static const char *const room_names[NROOM] = {
    "r0", "room-1", "lobby", "x", "dev.team_3", "r5", "a-much-longer-room-name-6", "r7", "R8"};

static size_t mroom_cost(int i)
{
    return strlen(room_names[i]) + GW_RECENT_ROOM_OVERHEAD;
}

static size_t mev_cost(const struct model *md, int e)
{
    return chat_msg_wire_len(md->msg[e]) + GW_RECENT_EV_OVERHEAD;
}

static void mpop(struct model *md, struct mroom *mr)
{
    md->bytes -= mev_cost(md, mr->held[0]);
    mr->base = md->seq[mr->held[0]];
    memmove(mr->held, mr->held + 1, (size_t)(mr->nheld - 1) * sizeof(int));
    mr->nheld--;
}

static void mevict(struct model *md)
{
    while (md->bytes > md->max_bytes) {
        int lru = -1;
        for (int i = 0; i < NROOM; i++)
            if (md->rooms[i].known && (lru < 0 || md->rooms[i].used < md->rooms[lru].used))
                lru = i;
        if (lru < 0)
            return;
        if (md->rooms[lru].nheld > 0) {
            mpop(md, &md->rooms[lru]);
        } else {
            md->rooms[lru].known = false;
            md->bytes -= mroom_cost(lru);
        }
    }
}

static int64_t madd(struct model *md, int e)
{
    struct mroom *mr = &md->rooms[md->room_of[e]];
    int64_t prev;

    if (mr->known && md->seq[e] <= mr->last)
        return GW_RECENT_REPLAY;
    if (!mr->known) {
        memset(mr, 0, sizeof(*mr));
        mr->known = true;
        mr->last = -1;
        mr->base = md->seq[e] - 1;
        md->bytes += mroom_cost(md->room_of[e]);
    }
    mr->used = ++md->clock;
    prev = mr->last;
    mr->last = md->seq[e];
    mr->hist[mr->nhist++] = e;
    if (mr->nheld == MAXPER)
        mpop(md, mr);
    mr->held[mr->nheld++] = e;
    md->bytes += mev_cost(md, e);
    mevict(md);
    return prev;
}

/* Every room of the store agrees with the model; every message's refs are 1 + times held. */
static void check_model(struct gw_recent *r, const struct model *md, int nev)
{
    struct gw_recent_stats st;
    size_t rooms = 0, events = 0;

    for (int i = 0; i < NROOM; i++) {
        const struct mroom *mr = &md->rooms[i];
        struct gw_recent_info info;
        bool known = gw_recent_peek(r, room_names[i], strlen(room_names[i]), &info);
        assert_int_equal(known, mr->known);
        if (!known)
            continue;
        rooms++;
        events += (size_t)mr->nheld;
        assert_int_equal(info.base, mr->base);
        assert_int_equal(info.last, mr->last);
        assert_int_equal(info.n, mr->nheld);
        assert_int_equal(info.oldest, mr->nheld ? md->seq[mr->held[0]] : -1);
    }
    for (int e = 0; e < nev; e++) {
        int held = 0;
        const struct mroom *mr = &md->rooms[md->room_of[e]];
        for (int k = 0; mr->known && k < mr->nheld; k++)
            held += mr->held[k] == e;
        assert_int_equal(md->msg[e]->refs, 1 + held);
    }
    gw_recent_get_stats(r, &st);
    assert_int_equal(st.rooms, rooms);
    assert_int_equal(st.events, events);
    assert_int_equal(st.bytes, md->bytes);
    assert_true(st.bytes <= md->max_bytes);
}

/* A lookup agrees with the model (and the model never loses an event: every event of the room
 * after since is replayed, in order). */
static void check_since(struct gw_recent *r, struct model *md, int room, int64_t s)
{
    struct mroom *mr = &md->rooms[room];
    struct gw_recent_iter it;
    struct chat_msg *m;
    int64_t oldest = -100, seq;
    int rc = gw_recent_since(r, room_names[room], strlen(room_names[room]), s, &it, &oldest);
    int k = 0;

    if (!mr->known) {
        assert_int_equal(rc, GW_RECENT_TOO_OLD);
        assert_int_equal(oldest, -1);
        return;
    }
    mr->used = ++md->clock;
    md->outcomes[rc]++;
    if (s < mr->base) {
        assert_int_equal(rc, GW_RECENT_TOO_OLD);
        assert_int_equal(oldest, mr->nheld ? md->seq[mr->held[0]] : mr->last);
        return;
    }
    assert_int_equal(rc, GW_RECENT_RECOVERED);
    for (int h = 0; h < mr->nhist; h++) {
        int e = mr->hist[h];
        if (md->seq[e] <= s)
            continue;
        m = gw_recent_next(&it, &seq);
        assert_ptr_equal(m, md->msg[e]);
        assert_int_equal(seq, md->seq[e]);
        k++;
    }
    assert_null(gw_recent_next(&it, &seq));
    assert_int_equal(it.n, k);
}

/* Runs NEV adds with lookups in between; *st gets the store's stats at the end. */
static void
random_case(unsigned seed, size_t max_bytes, struct gw_recent_stats *st, int outcomes[2])
{
    struct model *md = chat_xcalloc(1, sizeof(*md));
    struct gw_recent *r = gw_recent_new(max_bytes, MAXPER);
    int64_t seq = 0;
    int nev = 0;

    md->max_bytes = max_bytes;
    while (nev < NEV) {
        int op = rand_r(&seed) % 10;
        int room = rand_r(&seed) % NROOM;
        struct mroom *mr = &md->rooms[room];

        if (op < 6 || (op < 7 && !mr->known)) { /* a new event */
            seq += 1 + rand_r(&seed) % 3;       /* one partition: gaps are other rooms' events */
            md->seq[nev] = seq;
        } else if (op < 7) { /* a replay of an event seen, or older */
            md->seq[nev] = mr->last - rand_r(&seed) % 4;
            if (md->seq[nev] < 0)
                md->seq[nev] = 0;
        } else { /* a lookup: before base, at it, inside, at the last, beyond */
            int64_t s = mr->known ? mr->base + rand_r(&seed) % 12 - 2 : rand_r(&seed) % 50;
            check_since(r, md, room, s);
            continue;
        }
        md->room_of[nev] = room;
        md->msg[nev] = frame((size_t)(rand_r(&seed) % 40));
        int64_t want = madd(md, nev);
        assert_int_equal(gw_recent_add(r, room_names[room], strlen(room_names[room]), md->seq[nev],
                                       md->msg[nev]),
                         want);
        nev++;
        if (nev % 97 == 0)
            check_model(r, md, nev);
    }
    check_model(r, md, nev);
    gw_recent_get_stats(r, st);
    outcomes[0] = md->outcomes[0];
    outcomes[1] = md->outcomes[1];
    gw_recent_free(r);
    for (int e = 0; e < nev; e++) {
        assert_int_equal(md->msg[e]->refs, 1);
        chat_msg_unref(md->msg[e]);
    }
    chat_free(md);
}

static void test_random_vs_model(void **state)
{
    struct gw_recent_stats st;
    int outcomes[2];

    (void)state;
    /* a budget that never bites (per-room caps only) */
    random_case(1, 1 << 20, &st, outcomes);
    assert_int_equal(st.evicted_events + st.evicted_rooms, 0);
    assert_true(st.trimmed > 0 && st.replays > 0 && st.rooms == NROOM);
    assert_true(outcomes[GW_RECENT_RECOVERED] > 0 && outcomes[GW_RECENT_TOO_OLD] > 0);
    /* one that evicts events of some rooms, one that keeps forgetting rooms */
    random_case(2, 6 * (GW_RECENT_ROOM_OVERHEAD + 10) + 20 * (GW_RECENT_EV_OVERHEAD + 20), &st,
                outcomes);
    assert_true(st.evicted_events > 0 && st.trimmed > 0);
    assert_true(outcomes[GW_RECENT_RECOVERED] > 0 && outcomes[GW_RECENT_TOO_OLD] > 0);
    random_case(3, 2 * GW_RECENT_ROOM_OVERHEAD + 5 * GW_RECENT_EV_OVERHEAD, &st, outcomes);
    assert_true(st.evicted_events > 0 && st.evicted_rooms > 0);
    assert_true(outcomes[GW_RECENT_RECOVERED] > 0 && outcomes[GW_RECENT_TOO_OLD] > 0);
}

/* gw_recent_map_fn for test_replace: replaces the message of payload length *arg by a frame of
 * 3 bytes. */
static struct chat_msg *shorter(const struct chat_msg *m, void *arg)
{
    return m->len == *(size_t *)arg ? frame(3) : NULL;
}

/* A replaced event keeps its seq and place; the bytes follow the new one; no match: nothing. */
static void test_replace(void **state)
{
    struct gw_recent *r = gw_recent_new(1 << 20, 8);
    struct gw_recent_stats st;
    struct gw_recent_iter it;
    struct chat_msg *m;
    size_t want = 20, bytes;
    int64_t seq, oldest;

    (void)state;
    for (int i = 0; i < 3; i++) {
        m = frame(10 * (size_t)(i + 1)); /* 10, 20, 30 bytes at seq 5, 6, 7 */
        (void)add(r, "a", 5 + i, m);
        chat_msg_unref(m);
    }
    gw_recent_get_stats(r, &st);
    bytes = st.bytes;
    assert_true(gw_recent_replace(r, "a", 1, shorter, &want));
    gw_recent_get_stats(r, &st);
    assert_int_equal(st.bytes, bytes - 17);
    assert_int_equal(st.events, 3);
    assert_int_equal(gw_recent_since(r, "a", 1, 4, &it, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(it.n, 3);
    for (int i = 0; i < 3; i++) {
        m = gw_recent_next(&it, &seq);
        assert_int_equal(seq, 5 + i);
        assert_int_equal(m->len, i == 1 ? 3 : 10 * (size_t)(i + 1));
    }
    /* every match is replaced, not only the newest */
    for (int i = 0; i < 2; i++) {
        m = frame(30); /* seq 8, 9 */
        (void)add(r, "a", 8 + i, m);
        chat_msg_unref(m);
    }
    want = 30;
    assert_true(gw_recent_replace(r, "a", 1, shorter, &want));
    assert_int_equal(gw_recent_since(r, "a", 1, 4, &it, &oldest), GW_RECENT_RECOVERED);
    assert_int_equal(it.n, 5);
    for (int i = 0; i < 5; i++) {
        m = gw_recent_next(&it, &seq);
        assert_int_equal(seq, 5 + i);
        assert_int_equal(m->len, i == 0 ? 10 : 3);
    }
    want = 99; /* none has it; an unknown room neither */
    assert_false(gw_recent_replace(r, "a", 1, shorter, &want));
    assert_false(gw_recent_replace(r, "b", 1, shorter, &want));
    gw_recent_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_prev_since), cmocka_unit_test(test_per_room_cap),
        cmocka_unit_test(test_no_events_kept),   cmocka_unit_test(test_replay),
        cmocka_unit_test(test_byte_budget_lru),  cmocka_unit_test(test_tiny_budget),
        cmocka_unit_test(test_random_vs_model),  cmocka_unit_test(test_replace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
