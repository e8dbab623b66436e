/* test_gw_map.c - the gateway's string map (gateway/src/room/gw_map.c, linked from gw_core):
 * growth, find, remove, sweep and the entry layout (key in the entry, one value member per map). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "chat/mem.h"

#include "room/gw_map.h"

static void test_map_grows_finds_removes(void **state)
{
    enum { N = 5000 };
    struct gw_map m;
    char key[32];

    (void)state;
    gw_map_init(&m);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        struct gw_map_ent *e = gw_map_get(&m, key);
        e->count = i;
        assert_ptr_equal(gw_map_get(&m, key), e); /* get of an existing key: the same entry */
    }
    assert_int_equal(m.n, N);
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof(key), "user-%d", i);
        gw_map_remove(&m, key);
    }
    assert_int_equal(m.n, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        struct gw_map_ent *e = gw_map_find(&m, key);
        if (i % 2 == 0)
            assert_null(e);
        else
            assert_int_equal(e->count, i);
    }
    gw_map_fini(&m);
}

static bool odd_count(const struct gw_map_ent *e, void *ud)
{
    (void)ud;
    return e->count % 2 == 1;
}

static void test_map_sweep(void **state)
{
    struct gw_map m;
    char key[16];

    (void)state;
    gw_map_init(&m);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        gw_map_get(&m, key)->count = i;
    }
    gw_map_sweep(&m, odd_count, NULL);
    assert_int_equal(m.n, 50);
    assert_null(gw_map_find(&m, "k3"));
    assert_non_null(gw_map_find(&m, "k4"));
    gw_map_fini(&m);
}

/* The key lives in the entry's own allocation, whatever its length; the value members share
 * memory (a map uses one of them) and str is owned apart from them. */
static void test_map_entry_layout(void **state)
{
    struct gw_map m;
    char key[1001];
    struct gw_map_ent *e;

    (void)state;
    assert_true(sizeof(struct gw_map_ent) <= 40); /* idle memory: one per user and per join */
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    gw_map_init(&m);
    e = gw_map_get(&m, key);
    assert_string_equal(e->key, key);
    assert_null(e->str);
    assert_int_equal(e->until_ms, 0); /* a new entry is zeroed */
    assert_null(e->conns);
    e->str = chat_xstrdup("reason");
    e->until_ms = 42;
    key[500] = '\0'; /* a prefix is another key */
    assert_null(gw_map_find(&m, key));
    gw_map_get(&m, key)->bucket.tokens = 3.0;
    key[500] = 'k';
    e = gw_map_find(&m, key);
    assert_non_null(e);
    assert_int_equal(e->until_ms, 42);
    assert_string_equal(e->str, "reason");
    gw_map_remove(&m, key); /* frees str with the entry (ASan: no leak) */
    assert_int_equal(m.n, 1);
    gw_map_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_grows_finds_removes),
        cmocka_unit_test(test_map_sweep),
        cmocka_unit_test(test_map_entry_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
