/* test_gw_room.c - the gateway's room index with its back-index (gateway/src/room/gw_room.c,
 * linked from gw_core): randomized joins and leaves keep every subscriber slot and every
 * membership pointing at each other. */
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

#include "core/gw.h"
#include "room/gw_room.h"
#include "ws/gw_conn.h"

/* Every subscriber slot and every membership point at each other; sizes agree. */
static void check_index(struct gw *gw, struct gw_conn *conns, int n)
{
    size_t subs = 0, members = 0;

    for (size_t i = 0; i < gw->rooms.nslots; i++)
        for (struct gw_room *r = gw->rooms.slots[i]; r; r = r->hnext) {
            size_t authed = 0;
            subs += r->nsubs;
            for (size_t k = 0; k < r->nsubs; k++) {
                struct gw_conn *c = r->subs[k].c;
                bool found = false;
                authed += c->authed;
                for (int m = 0; m < c->nrooms; m++)
                    if (c->rooms[m].room == r) {
                        assert_int_equal(c->rooms[m].idx, k);
                        found = true;
                    }
                assert_true(found);
            }
            assert_int_equal(r->nauthed, authed); /* the presence report's "has users" */
        }
    for (int i = 0; i < n; i++) {
        /* one room's membership lives in the connection, more on the heap */
        if (conns[i].rooms_cap == 1)
            assert_ptr_equal(conns[i].rooms, &conns[i].room1);
        else if (conns[i].rooms_cap > 1)
            assert_ptr_not_equal(conns[i].rooms, &conns[i].room1);
        members += (size_t)conns[i].nrooms;
        for (int m = 0; m < conns[i].nrooms; m++) {
            struct gw_room *r = conns[i].rooms[m].room;
            assert_ptr_equal(gw_room_find(&gw->rooms, r->name), r);
            assert_ptr_equal(r->subs[conns[i].rooms[m].idx].c, &conns[i]);
        }
    }
    assert_int_equal(subs, members);
}

static void test_rooms_back_index(void **state)
{
    enum { NCONN = 40, NROOM = 12, STEPS = 4000 };
    struct gw_config cfg = {.max_rooms = 6};
    struct gw *gw = chat_xcalloc(1, sizeof(*gw));
    struct gw_conn *conns = chat_xcalloc(NCONN, sizeof(*conns));
    static const char *const users[7] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6"};
    unsigned seed = 12345;
    char name[16];

    (void)state;
    gw->cfg = &cfg;
    gw_room_index_init(&gw->rooms);
    for (int i = 0; i < NCONN; i++) {
        conns[i].gw = gw;
        conns[i].authed = i % 3 != 0;
        conns[i].claims.sub = users[i % 7]; /* a live node points it at its gw->users key */
    }
    for (int s = 0; s < STEPS; s++) {
        struct gw_conn *c = &conns[rand_r(&seed) % NCONN];
        snprintf(name, sizeof(name), "room-%d", rand_r(&seed) % NROOM);
        if (rand_r(&seed) % 10 == 0) { /* logs in or out, as gw_conn_set_identity does */
            if (c->authed)
                gw_room_authed_delta(c, -1);
            c->authed = !c->authed;
            if (c->authed)
                gw_room_authed_delta(c, +1);
        } else if (rand_r(&seed) % 3) {
            int rc = gw_room_join(gw, c, name);
            assert_true(rc == CHAT_OK || rc == CHAT_EEXIST || rc == CHAT_ETOOBIG);
            if (rc == CHAT_ETOOBIG)
                assert_int_equal(c->nrooms, cfg.max_rooms);
        } else {
            bool was = gw_room_joined(c, name);
            assert_int_equal(gw_room_leave(gw, c, name), was ? CHAT_OK : CHAT_ENOENT);
        }
        if (s % 50 == 0)
            check_index(gw, conns, NCONN);
    }
    check_index(gw, conns, NCONN);
    for (int i = 0; i < NCONN; i++) {
        gw_room_leave_all(gw, &conns[i]);
        assert_int_equal(conns[i].nrooms, 0);
    }
    assert_int_equal(gw->rooms.n, 0); /* empty rooms Redis never heard of are freed */
    gw_room_index_fini(&gw->rooms);
    chat_free(conns);
    chat_free(gw);
}

/* The skips of subscribers that hold a room's events up to a seq (join {since} ahead of the
 * node): only their own events up to through are left out, they end when the room reaches
 * through, and a leave drops them. */
static void test_rooms_skips(void **state)
{
    enum { NCONN = 9 };
    struct gw_config cfg = {.max_rooms = 4};
    struct gw *gw = chat_xcalloc(1, sizeof(*gw));
    struct gw_conn *conns = chat_xcalloc(NCONN, sizeof(*conns));
    struct gw_room *r;

    (void)state;
    gw->cfg = &cfg;
    gw_room_index_init(&gw->rooms);
    for (int i = 0; i < NCONN; i++) {
        conns[i].gw = gw;
        conns[i].claims.sub = "u";
        assert_int_equal(gw_room_join(gw, &conns[i], "r"), CHAT_OK);
    }
    r = gw_room_find(&gw->rooms, "r");
    assert_non_null(r);
    for (int i = NCONN - 1; i >= 0; i -= 2) /* out of address order: the list sorts itself */
        gw_room_skip_add(r, &conns[i], 100 + i);
    assert_int_equal(r->nskips, (NCONN + 1) / 2);
    for (int i = 0; i < NCONN; i++) {
        bool skips = i % 2 == 0;
        assert_int_equal(gw_room_skipped(r, &conns[i], 100 + i), skips);
        assert_false(gw_room_skipped(r, &conns[i], 101 + i));
    }
    gw_room_skip_add(r, &conns[0], 50); /* again: the new through replaces the old */
    assert_int_equal(r->nskips, (NCONN + 1) / 2);
    assert_false(gw_room_skipped(r, &conns[0], 51));
    gw_room_skips_done(r, 104); /* conns 0, 2, 4 reached */
    assert_int_equal(r->nskips, 2);
    assert_false(gw_room_skipped(r, &conns[2], 102));
    assert_true(gw_room_skipped(r, &conns[6], 106));
    assert_int_equal(gw_room_leave(gw, &conns[6], "r"), CHAT_OK);
    assert_int_equal(r->nskips, 1);
    assert_true(gw_room_skipped(r, &conns[8], 108));
    gw_room_skips_done(r, 200);
    assert_int_equal(r->nskips, 0);
    assert_null(r->skips);
    for (int i = 0; i < NCONN; i++) {
        gw_room_leave_all(gw, &conns[i]);
    }
    gw_room_index_fini(&gw->rooms);
    chat_free(conns);
    chat_free(gw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rooms_back_index),
        cmocka_unit_test(test_rooms_skips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
