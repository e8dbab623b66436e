/* tests/unit/test_pres_count.c - presence aggregation and diff (presence/src/pres_count.c). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "chat/keys.h"

#include "pres.h"

/* Returns the change for room in c, or NULL. */
static const struct pres_change *find(const struct pres_changes *c, const char *room)
{
    for (size_t i = 0; i < c->len; i++) {
        if (strcmp(c->v[i].room, room) == 0)
            return &c->v[i];
    }
    return NULL;
}

static void
assert_change(const struct pres_changes *c, const char *room, int64_t conns, int64_t users)
{
    const struct pres_change *ch = find(c, room);

    assert_non_null(ch);
    if (!ch)
        return; /* not reached; tells the analyzer that ch is not NULL below */
    assert_int_equal(ch->conns, conns);
    assert_int_equal(ch->users, users);
}

/* One tick: diff agg against last into a fresh change list (caller finis it), then empty agg.
 * Returns pres_diff's count of rooms with presence. */
static size_t tick(struct pres_tab *agg, struct pres_tab *last, bool full, struct pres_changes *out)
{
    size_t rooms;

    pres_changes_init(out);
    rooms = pres_diff(agg, last, full, out);
    pres_tab_fini(agg);
    return rooms;
}

/* The zero state (enum pres_zero) of room in last; -1 when last does not know room. */
static int zero_state(const struct pres_tab *last, const char *room)
{
    const struct pres_ent *e = pres_tab_get(last, room);

    return e ? e->zero : -1;
}

static void test_pres_count_user_on_two_nodes_counts_once(void **state)
{
    struct pres_tab agg, last;
    struct pres_changes c;

    (void)state;
    pres_tab_init(&agg);
    pres_tab_init(&last);
    /* node A: alice on two tabs in r1; node B: alice again and bob */
    pres_agg_add_conns(&agg, "r1", 2);
    pres_agg_add_user(&agg, "r1", "alice");
    pres_agg_add_conns(&agg, "r1", 2);
    pres_agg_add_user(&agg, "r1", "alice");
    pres_agg_add_user(&agg, "r1", "bob");
    assert_int_equal(pres_agg_users(pres_tab_get(&agg, "r1")), 2);
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 2); /* r1 and the total */
    assert_change(&c, "r1", 4, 2);
    assert_change(&c, CHAT_KEY_PRES_ALL, 0, 0);
    pres_changes_fini(&c);
    pres_tab_fini(&last);
}

static void test_pres_count_total(void **state)
{
    struct pres_tab agg, last;
    struct pres_changes c;

    (void)state;
    pres_tab_init(&agg);
    pres_tab_init(&last);
    /* an empty cluster still has a total, published once by a new leader */
    tick(&agg, &last, true, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, CHAT_KEY_PRES_ALL, 0, 0);
    pres_changes_fini(&c);
    /* two nodes: 3 + 4 connections, users {a, b} and {b, c} */
    pres_agg_add_conns(&agg, CHAT_KEY_PRES_ALL, 3);
    pres_agg_add_user(&agg, CHAT_KEY_PRES_ALL, "a");
    pres_agg_add_user(&agg, CHAT_KEY_PRES_ALL, "b");
    pres_agg_add_conns(&agg, CHAT_KEY_PRES_ALL, 4);
    pres_agg_add_user(&agg, CHAT_KEY_PRES_ALL, "b");
    pres_agg_add_user(&agg, CHAT_KEY_PRES_ALL, "c");
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, CHAT_KEY_PRES_ALL, 7, 3);
    pres_changes_fini(&c);
    /* everyone leaves: the total goes to zero once and stays known */
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, CHAT_KEY_PRES_ALL, 0, 0);
    pres_changes_fini(&c);
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 0);
    pres_changes_fini(&c);
    pres_tab_fini(&last);
}

static void test_pres_count_diff_only_changed(void **state)
{
    struct pres_tab agg, last;
    struct pres_changes c;

    (void)state;
    pres_tab_init(&agg);
    pres_tab_init(&last);
    pres_agg_add_conns(&agg, "r1", 1);
    pres_agg_add_user(&agg, "r1", "u1");
    pres_agg_add_conns(&agg, "r2", 5);
    pres_agg_add_user(&agg, "r2", "u2");
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 3);
    pres_changes_fini(&c);
    /* same counts: nothing */
    pres_agg_add_conns(&agg, "r1", 1);
    pres_agg_add_user(&agg, "r1", "u1");
    pres_agg_add_conns(&agg, "r2", 5);
    pres_agg_add_user(&agg, "r2", "u2");
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 0);
    pres_changes_fini(&c);
    /* r1 gains a connection of the same user (conns only), r2 unchanged */
    pres_agg_add_conns(&agg, "r1", 2);
    pres_agg_add_user(&agg, "r1", "u1");
    pres_agg_add_conns(&agg, "r2", 5);
    pres_agg_add_user(&agg, "r2", "u2");
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, "r1", 2, 1);
    pres_changes_fini(&c);
    /* r2: another user with the same number of connections (users only) */
    pres_agg_add_conns(&agg, "r1", 2);
    pres_agg_add_user(&agg, "r1", "u1");
    pres_agg_add_conns(&agg, "r2", 5);
    pres_agg_add_user(&agg, "r2", "u2");
    pres_agg_add_user(&agg, "r2", "u3");
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, "r2", 5, 2);
    pres_changes_fini(&c);
    pres_tab_fini(&last);
}

static void test_pres_count_room_vanishes_zero_once(void **state)
{
    struct pres_tab agg, last;
    struct pres_changes c;

    (void)state;
    pres_tab_init(&agg);
    pres_tab_init(&last);
    pres_agg_add_conns(&agg, "gone", 2);
    pres_agg_add_user(&agg, "gone", "u1");
    pres_agg_add_conns(&agg, "stays", 1);
    tick(&agg, &last, false, &c);
    pres_changes_fini(&c);
    /* "gone" disappears from every node */
    pres_agg_add_conns(&agg, "stays", 1);
    assert_int_equal(tick(&agg, &last, false, &c), 1); /* one room with presence */
    assert_int_equal(c.len, 1);
    assert_change(&c, "gone", 0, 0);
    pres_changes_fini(&c);
    assert_int_equal(zero_state(&last, "gone"), PRES_ZERO_PENDING); /* until delivered */
    /* and is not repeated */
    pres_agg_add_conns(&agg, "stays", 1);
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 0);
    pres_changes_fini(&c);
    /* a room whose hash field reads 0 counts as gone too */
    pres_agg_add_conns(&agg, "stays", 0);
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, "stays", 0, 0);
    pres_changes_fini(&c);
    pres_tab_fini(&last);
}

static void test_pres_count_zero_room_never_published(void **state)
{
    struct pres_tab agg, last;
    struct pres_changes c;

    (void)state;
    pres_tab_init(&agg);
    pres_tab_init(&last);
    pres_agg_add_conns(&agg, "empty", 0);
    tick(&agg, &last, true, &c);
    assert_null(find(&c, "empty"));
    assert_int_equal(c.len, 1); /* the total only */
    pres_changes_fini(&c);
    pres_tab_fini(&last);
}

static void test_pres_count_full_publishes_all(void **state)
{
    struct pres_tab agg, last;
    struct pres_changes c;

    (void)state;
    pres_tab_init(&agg);
    pres_tab_init(&last);
    for (int round = 0; round < 2; round++) {
        pres_agg_add_conns(&agg, "r1", 1);
        pres_agg_add_conns(&agg, "r2", 1);
        pres_agg_add_conns(&agg, CHAT_KEY_PRES_ALL, 2);
        tick(&agg, &last, round == 1, &c);
        assert_int_equal(c.len, 3);
        assert_change(&c, "r1", 1, 0);
        assert_change(&c, "r2", 1, 0);
        assert_change(&c, CHAT_KEY_PRES_ALL, 2, 0);
        pres_changes_fini(&c);
    }
    pres_tab_fini(&last);
}

static void test_pres_count_many_rooms_and_users(void **state)
{
    struct pres_tab agg, last;
    struct pres_changes c;
    char room[32], user[32];
    size_t pos = 0, n = 0;

    (void)state;
    pres_tab_init(&agg);
    pres_tab_init(&last);
    for (int r = 0; r < 1000; r++) {
        (void)snprintf(room, sizeof(room), "room-%d", r);
        pres_agg_add_conns(&agg, room, r + 1);
        for (int u = 0; u <= r % 50; u++) {
            (void)snprintf(user, sizeof(user), "user-%d", u);
            pres_agg_add_user(&agg, room, user);
            pres_agg_add_user(&agg, room, user);
        }
    }
    for (const struct pres_ent *e = pres_tab_next(&agg, &pos); e; e = pres_tab_next(&agg, &pos))
        n++;
    assert_int_equal(n, 1000);
    assert_int_equal(pres_agg_users(pres_tab_get(&agg, "room-149")), 50);
    assert_int_equal(pres_tab_get(&agg, "room-149")->conns, 150);
    assert_null(pres_tab_get(&agg, "room-1000"));
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1001);
    assert_change(&c, "room-7", 8, 8);
    pres_changes_fini(&c);
    assert_int_equal(tick(&agg, &last, false, &c), 0);
    assert_int_equal(c.len, 1000);    /* every room gone, the total unchanged at 0 */
    assert_int_equal(last.len, 1001); /* pending zeros */
    for (size_t i = 0; i < c.len; i++)
        pres_zero_done(&last, c.v[i].room, 0);
    pres_changes_fini(&c);
    tick(&agg, &last, true, &c);
    assert_int_equal(c.len, 1); /* the total */
    pres_changes_fini(&c);
    assert_int_equal(last.len, 1);
    pres_tab_fini(&last);
}

/* A vanished room's 0/0 goes out again with every full publish (one follows a failed produce or
 * delivery report) until the delivery of its latest 0/0 record is reported; then it is
 * forgotten. */
static void test_pres_count_zero_resent_until_delivered(void **state)
{
    struct pres_tab agg, last;
    struct pres_changes c;

    (void)state;
    pres_tab_init(&agg);
    pres_tab_init(&last);
    pres_agg_add_conns(&agg, "gone", 2);
    pres_agg_add_user(&agg, "gone", "u1");
    tick(&agg, &last, false, &c);
    pres_changes_fini(&c);
    /* "gone" vanishes: 0/0 once, produced as record 7 */
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, "gone", 0, 0);
    pres_changes_fini(&c);
    pres_zero_sent(&last, "gone", 7);
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 0);
    pres_changes_fini(&c);
    /* record 7 failed: the forced full publish includes the 0/0 again (record 8) */
    tick(&agg, &last, true, &c);
    assert_int_equal(c.len, 2);
    assert_change(&c, "gone", 0, 0);
    assert_change(&c, CHAT_KEY_PRES_ALL, 0, 0);
    pres_changes_fini(&c);
    pres_zero_sent(&last, "gone", 8);
    /* a report for an older record does not confirm the latest one */
    pres_zero_done(&last, "gone", 7);
    tick(&agg, &last, true, &c);
    assert_change(&c, "gone", 0, 0);
    pres_changes_fini(&c); /* this resend was refused by the producer: record 8 stays latest */
    assert_int_equal(zero_state(&last, "gone"), PRES_ZERO_PENDING);
    /* record 8 delivered: forgotten at the next diff, and no longer part of a full publish */
    pres_zero_done(&last, "gone", 8);
    assert_int_equal(zero_state(&last, "gone"), PRES_ZERO_DELIVERED);
    tick(&agg, &last, true, &c);
    assert_int_equal(c.len, 1);
    assert_null(find(&c, "gone"));
    pres_changes_fini(&c);
    assert_int_equal(zero_state(&last, "gone"), -1);
    assert_int_equal(last.len, 1);
    pres_tab_fini(&last);
}

/* A room that comes back while its 0/0 is pending is an ordinary room again: a late report of
 * that 0/0 does not touch it, and a second vanishing sends a new 0/0. */
static void test_pres_count_zero_room_returns(void **state)
{
    struct pres_tab agg, last;
    struct pres_changes c;

    (void)state;
    pres_tab_init(&agg);
    pres_tab_init(&last);
    pres_zero_done(&last, "never", 1); /* empty table: nothing to do */
    pres_agg_add_conns(&agg, "r", 3);
    tick(&agg, &last, false, &c);
    pres_changes_fini(&c);
    tick(&agg, &last, false, &c);
    assert_change(&c, "r", 0, 0);
    pres_changes_fini(&c);
    pres_zero_sent(&last, "r", 5);
    /* back with one connection */
    pres_agg_add_conns(&agg, "r", 1);
    assert_int_equal(tick(&agg, &last, false, &c), 1);
    assert_int_equal(c.len, 1);
    assert_change(&c, "r", 1, 0);
    pres_changes_fini(&c);
    assert_int_equal(zero_state(&last, "r"), PRES_ZERO_NONE);
    pres_zero_done(&last, "r", 5); /* the late report of the old 0/0 */
    pres_zero_done(&last, "unknown", 5);
    assert_int_equal(zero_state(&last, "r"), PRES_ZERO_NONE);
    pres_agg_add_conns(&agg, "r", 1);
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 0);
    pres_changes_fini(&c);
    /* gone again: a new 0/0, not yet produced, so no report can confirm it */
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, "r", 0, 0);
    pres_changes_fini(&c);
    pres_zero_done(&last, "r", 5);
    assert_int_equal(zero_state(&last, "r"), PRES_ZERO_PENDING);
    /* back with the same counts as before it vanished: published, since 0/0 was said since */
    pres_agg_add_conns(&agg, "r", 1);
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, "r", 1, 0);
    pres_changes_fini(&c);
    pres_tab_fini(&last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pres_count_user_on_two_nodes_counts_once),
        cmocka_unit_test(test_pres_count_total),
        cmocka_unit_test(test_pres_count_diff_only_changed),
        cmocka_unit_test(test_pres_count_room_vanishes_zero_once),
        cmocka_unit_test(test_pres_count_zero_room_never_published),
        cmocka_unit_test(test_pres_count_full_publishes_all),
        cmocka_unit_test(test_pres_count_many_rooms_and_users),
        cmocka_unit_test(test_pres_count_zero_resent_until_delivered),
        cmocka_unit_test(test_pres_count_zero_room_returns),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
