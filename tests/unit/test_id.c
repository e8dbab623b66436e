/* test_id.c - time-ordered 64-bit message ids (libchat/src/id.c). The clock is an argument, so
 * every case drives it explicitly: no sleeps, no wall clock. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdint.h>

#include "chat/id.h"

#define T0 1767225600123LL /* 2026-01-01T00:00:00.123Z */

static void test_id_layout(void **state)
{
    struct chat_idgen g;
    uint64_t id;

    (void)state;
    chat_idgen_init(&g, 3);
    id = chat_idgen_next(&g, T0);
    assert_int_equal(chat_id_time_ms(id), T0);
    assert_int_equal(chat_id_node(id), 3);
    assert_int_equal(id & ((1u << CHAT_ID_SEQ_BITS) - 1), 0);
    assert_true(id >> 63 == 0); /* sign bit clear: safe as a signed BIGINT too */
    assert_true(id == (((uint64_t)(T0 - CHAT_ID_EPOCH_MS) << 22) | (3u << 12)));
}

static void test_id_node_extraction(void **state)
{
    static const unsigned nodes[] = {0, 1, 512, CHAT_ID_MAX_NODE};
    struct chat_idgen g;

    (void)state;
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
        chat_idgen_init(&g, nodes[i]);
        for (int k = 0; k < 5000; k++) { /* past the per-ms sequence: node bits untouched */
            uint64_t id = chat_idgen_next(&g, T0);
            assert_int_equal(chat_id_node(id), nodes[i]);
        }
    }
}

static void test_id_monotonic(void **state)
{
    struct chat_idgen g;
    uint64_t prev = 0;
    int64_t now = T0;

    (void)state;
    chat_idgen_init(&g, 7);
    for (int i = 0; i < 100000; i++) {
        uint64_t id;
        now += (i % 7 == 0) ? 1 : 0; /* several ids per ms, then the clock ticks */
        id = chat_idgen_next(&g, now);
        assert_true(id > prev);
        assert_true(chat_id_time_ms(id) >= now);
        prev = id;
    }
}

static void test_id_unique_10k_in_one_ms(void **state)
{
    struct chat_idgen g;
    uint64_t prev = 0, id = 0;

    (void)state;
    chat_idgen_init(&g, 1);
    for (int i = 0; i < 10000; i++) {
        id = chat_idgen_next(&g, T0);
        assert_true(id > prev); /* strictly increasing, hence unique */
        prev = id;
    }
    /* 4096 ids per ms: the generator borrowed two milliseconds from the future */
    assert_int_equal(chat_id_time_ms(id), T0 + 2);
    assert_int_equal(id & 0xFFF, 10000 - 2 * 4096 - 1);
    /* when the clock catches up, ids still increase */
    assert_true(chat_idgen_next(&g, T0 + 1) > id);
    assert_true(chat_idgen_next(&g, T0 + 3) > id);
}

static void test_id_clock_backwards(void **state)
{
    struct chat_idgen g;
    uint64_t a, b, c, d;

    (void)state;
    chat_idgen_init(&g, 2);
    a = chat_idgen_next(&g, T0);
    b = chat_idgen_next(&g, T0 - 1000); /* NTP stepped the clock back 1 s */
    c = chat_idgen_next(&g, T0 - 999);
    d = chat_idgen_next(&g, T0 + 1);
    assert_true(b > a);
    assert_true(c > b);
    assert_true(d > c);
    assert_int_equal(chat_id_time_ms(b), T0); /* time never goes backwards in ids */
    assert_int_equal(chat_id_time_ms(d), T0 + 1);
}

static void test_id_nodes_never_collide(void **state)
{
    struct chat_idgen g1, g2;

    (void)state;
    chat_idgen_init(&g1, 10);
    chat_idgen_init(&g2, 11);
    for (int i = 0; i < 10000; i++)
        assert_true(chat_idgen_next(&g1, T0) != chat_idgen_next(&g2, T0));
}

static void test_id_before_epoch(void **state)
{
    struct chat_idgen g;
    uint64_t a, b;

    (void)state;
    chat_idgen_init(&g, 0);
    a = chat_idgen_next(&g, 0); /* a broken clock at 1970 */
    b = chat_idgen_next(&g, 0);
    assert_int_equal(chat_id_time_ms(a), CHAT_ID_EPOCH_MS);
    assert_true(b > a);
}

/* A restarted holder of node 5 whose clock stepped back 10 s: with the floor of the previous
 * holder's last id, every new id is above every old one. */
static void test_id_floor_after_restart(void **state)
{
    struct chat_idgen old, fresh;
    uint64_t last = 0, first;

    (void)state;
    chat_idgen_init(&old, 5);
    for (int i = 0; i < 5000; i++)
        last = chat_idgen_next(&old, T0 + i / 100);
    chat_idgen_init(&fresh, 5);
    chat_idgen_floor(&fresh, chat_idgen_last_ms(&old));
    first = chat_idgen_next(&fresh, T0 - 10000);
    assert_true(first > last);
    assert_int_equal(chat_id_time_ms(first), chat_idgen_last_ms(&old) + 1);
    /* a floor below what was used changes nothing */
    chat_idgen_floor(&fresh, T0 - 20000);
    assert_true(chat_idgen_next(&fresh, T0 - 10000) > first);
    /* without the floor the restarted node repeats ids: what the floor is for */
    chat_idgen_init(&fresh, 5);
    assert_true(chat_idgen_next(&fresh, T0) < last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_layout),          cmocka_unit_test(test_id_node_extraction),
        cmocka_unit_test(test_id_monotonic),       cmocka_unit_test(test_id_unique_10k_in_one_ms),
        cmocka_unit_test(test_id_clock_backwards), cmocka_unit_test(test_id_nodes_never_collide),
        cmocka_unit_test(test_id_before_epoch),    cmocka_unit_test(test_id_floor_after_restart),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
