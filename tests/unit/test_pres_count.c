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

/* One tick: diff agg against last into a fresh change list (caller finis it), then empty agg. */
static void tick(struct pres_tab *agg, struct pres_tab *last, bool full, struct pres_changes *out)
{
    pres_changes_init(out);
    pres_diff(agg, last, full, out);
    pres_tab_fini(agg);
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
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1);
    assert_change(&c, "gone", 0, 0);
    pres_changes_fini(&c);
    assert_null(pres_tab_get(&last, "gone")); /* forgotten */
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
    tick(&agg, &last, false, &c);
    assert_int_equal(c.len, 1000); /* every room gone, the total unchanged at 0 */
    pres_changes_fini(&c);
    assert_int_equal(last.len, 1);
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
