/* tests/unit/test_pres_read.c - parsing of the Redis replies the presence worker reads
 * (presence/src/pres_read.c), on hand-built hiredis replies: no network. */
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

#define MAXE 16

/* A reply array of strings built on the stack. */
struct fake {
    redisReply arr;
    redisReply el[MAXE];
    redisReply *ptr[MAXE];
    char text[MAXE][32];
};

static void fake_strings(struct fake *f, const char *const *s, size_t n)
{
    memset(f, 0, sizeof(*f));
    f->arr.type = REDIS_REPLY_ARRAY;
    f->arr.elements = n;
    f->arr.element = f->ptr;
    for (size_t i = 0; i < n; i++) {
        f->el[i].type = REDIS_REPLY_STRING;
        (void)snprintf(f->text[i], sizeof(f->text[i]), "%s", s[i]);
        f->el[i].str = f->text[i];
        f->el[i].len = strlen(s[i]);
        f->ptr[i] = &f->el[i];
    }
}

static void test_pres_read_conns_parses_rooms_and_total(void **state)
{
    static const char *const kv[] = {"r1",  "3", "*", "5", "r2", "0",
                                     "bad", "x", "",  "2", "r3", "-1"};
    struct fake f;
    struct pres_tab agg;
    struct pres_strv rooms;

    (void)state;
    pres_tab_init(&agg);
    pres_strv_init(&rooms);
    fake_strings(&f, kv, 12);
    assert_int_equal(pres_read_conns(&agg, &f.arr, &rooms), 3); /* "x", "" and "-1" */
    assert_int_equal(pres_tab_get(&agg, "r1")->conns, 3);
    assert_int_equal(pres_tab_get(&agg, CHAT_KEY_PRES_ALL)->conns, 5);
    assert_null(pres_tab_get(&agg, "bad"));
    assert_null(pres_tab_get(&agg, "r3"));
    /* rooms to read user sets of: only non-empty real rooms */
    assert_int_equal(rooms.len, 1);
    assert_string_equal(rooms.v[0], "r1");
    pres_strv_fini(&rooms);
    pres_tab_fini(&agg);
}

static void test_pres_read_conns_rejects_non_hash(void **state)
{
    static const char *const odd[] = {"r1", "3", "r2"};
    redisReply err = {.type = REDIS_REPLY_ERROR};
    struct fake f;
    struct pres_tab agg;
    struct pres_strv rooms;

    (void)state;
    pres_tab_init(&agg);
    pres_strv_init(&rooms);
    fake_strings(&f, odd, 3);
    assert_int_equal(pres_read_conns(&agg, &f.arr, &rooms), 1);
    assert_int_equal(pres_read_conns(&agg, &err, &rooms), 1);
    assert_int_equal(agg.len, 0);
    assert_int_equal(rooms.len, 0);
    pres_strv_fini(&rooms);
    pres_tab_fini(&agg);
}

static void test_pres_read_users_dedups(void **state)
{
    static const char *const node_a[] = {"u1", "u2"};
    static const char *const node_b[] = {"u2", "u3"};
    redisReply err = {.type = REDIS_REPLY_ERROR};
    struct fake f;
    struct pres_tab agg;

    (void)state;
    pres_tab_init(&agg);
    fake_strings(&f, node_a, 2);
    assert_int_equal(pres_read_users(&agg, "r1", &f.arr), 0);
    fake_strings(&f, node_b, 2);
    assert_int_equal(pres_read_users(&agg, "r1", &f.arr), 0);
    assert_int_equal(pres_read_users(&agg, "r1", &err), 1);
    assert_int_equal(pres_agg_users(pres_tab_get(&agg, "r1")), 3);
    assert_int_equal(pres_tab_get(&agg, "r1")->conns, 0);
    pres_tab_fini(&agg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pres_read_conns_parses_rooms_and_total),
        cmocka_unit_test(test_pres_read_conns_rejects_non_hash),
        cmocka_unit_test(test_pres_read_users_dedups),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
