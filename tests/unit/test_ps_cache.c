/* test_ps_cache.c - the persister's Redis recent cache without a Redis (persister/src/ps_cache.c):
 * the per-room prev map (chains, replays going back, forgetting on rebalance, many rooms), the
 * frames of a batch (seq and prev spliced into the Kafka value), and an unreachable Redis:
 * writes skipped and counted, no connect before the backoff, the chain still advancing. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "chat/buf.h"
#include "chat/metrics.h"

#include "ps.h"

#define TS 1709164801234LL /* 2024-02-29 */

static struct ps_cfg cfg = {
    .redis_host = (char[]){"127.0.0.1"},
    .redis_port = 1, /* nothing listens: connects are refused at once */
    .redis_timeout_ms = 200,
    .recent_per_room = 500,
    .recent_per_user = 50,
};

static void test_ps_cache_prev_chain(void **state)
{
    struct ps_metrics m;
    struct ps_cache c;

    (void)state;
    memset(&m, 0, sizeof(m));
    ps_cache_init(&c, &cfg, &m);
    assert_int_equal(ps_cache_prev(&c, "lobby", 10), -1); /* first seen: no prev */
    assert_int_equal(ps_cache_prev(&c, "lobby", 12), 10);
    assert_int_equal(ps_cache_prev(&c, "other", 11), -1); /* per room */
    assert_int_equal(ps_cache_prev(&c, "lobby", 15), 12);
    assert_int_equal(ps_cache_prev(&c, "lobby", 13), -1); /* a replay going back restarts */
    assert_int_equal(ps_cache_prev(&c, "lobby", 14), 13);
    assert_int_equal(ps_cache_prev(&c, "lobby", 14), -1); /* the same seq again: no link */
    ps_cache_forget(&c);
    assert_int_equal(ps_cache_prev(&c, "lobby", 20), -1);
    assert_int_equal(ps_cache_prev(&c, "other", 21), -1);
    assert_int_equal(ps_cache_prev(&c, "other", 22), 21);
    ps_cache_fini(&c);
    ps_cache_fini(&c); /* idempotent */
}

static void test_ps_cache_prev_many_rooms(void **state)
{
    struct ps_metrics m;
    struct ps_cache c;
    char room[32];

    (void)state;
    memset(&m, 0, sizeof(m));
    ps_cache_init(&c, &cfg, &m);
    for (int i = 0; i < 5000; i++) {
        snprintf(room, sizeof(room), "r%d", i);
        assert_int_equal(ps_cache_prev(&c, room, i), -1);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(room, sizeof(room), "r%d", i);
        assert_int_equal(ps_cache_prev(&c, room, 10000 + i), i);
    }
    assert_int_equal(c.nprev, 5000);
    ps_cache_fini(&c);
}

static void add(struct ps_batch *b, const char *room, int64_t seq, uint64_t id)
{
    struct chat_event_msg m = {
        .room = room, .user = "7", .nick = "N", .text = "hi", .id = id, .ts = TS, .seq = -1};
    struct chat_buf v;

    chat_buf_init(&v, 0, 0);
    assert_int_equal(chat_enc_message(&v, &m), CHAT_OK);
    assert_int_equal(ps_batch_add(b, 0, seq, &m, chat_buf_data(&v), v.len, 1), CHAT_OK);
    chat_buf_fini(&v);
}

static void test_ps_cache_redis_down(void **state)
{
    struct ps_metrics m;
    struct ps_batch b;
    struct ps_cache c;

    (void)state;
    memset(&m, 0, sizeof(m));
    ps_cache_init(&c, &cfg, &m);
    c.backoff_ms = 60000; /* the retry after the first failure is surely later than this test */
    ps_batch_init(&b);
    add(&b, "lobby", 5, 1);
    add(&b, "lobby", 6, 2);
    ps_cache_write(&c, &b);
    /* the frames: the Kafka value with seq (and prev once known) */
    assert_non_null(strstr(chat_buf_data(&c.frames),
                           "{\"type\":\"message\",\"seq\":5,\"room\":\"lobby\",\"id\":\"1\""));
    assert_non_null(strstr(chat_buf_data(&c.frames),
                           "{\"type\":\"message\",\"seq\":6,\"prev\":5,\"room\":\"lobby\""));
    assert_int_equal(chat_metric_get(&m.cache_skipped), 2);
    assert_int_equal(chat_metric_get(&m.cache_errors), 1);
    assert_int_equal(chat_metric_get(&m.cached), 0);
    assert_int_equal(chat_metric_get(&m.redis_up), 0);
    /* within the backoff: no connect (no new error), skipped again, the chain advances */
    ps_batch_reset(&b);
    add(&b, "lobby", 7, 3);
    ps_cache_write(&c, &b);
    assert_int_equal(chat_metric_get(&m.cache_skipped), 3);
    assert_int_equal(chat_metric_get(&m.cache_errors), 1);
    assert_non_null(strstr(chat_buf_data(&c.frames), "\"seq\":7,\"prev\":6,"));
    /* a row without its Kafka value cannot be cached: skipped, counted */
    ps_batch_reset(&b);
    {
        struct chat_event_msg mm = {
            .room = "lobby", .user = "7", .nick = "N", .text = "x", .id = 9, .ts = TS, .seq = -1};
        assert_int_equal(ps_batch_add(&b, 0, 8, &mm, NULL, 0, 1), CHAT_OK);
    }
    ps_cache_write(&c, &b);
    assert_int_equal(chat_metric_get(&m.cache_skipped), 4);
    assert_int_equal(ps_cache_prev(&c, "lobby", 9), 8);
    ps_batch_fini(&b);
    ps_cache_fini(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ps_cache_prev_chain),
        cmocka_unit_test(test_ps_cache_prev_many_rooms),
        cmocka_unit_test(test_ps_cache_redis_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
