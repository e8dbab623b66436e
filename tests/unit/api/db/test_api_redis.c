/* test_api_redis.c - chat-api's synchronous Redis connection (api/src/db/api_redis.c) against a
 * stand-in Redis (tests/unit/fake_redis.h): a kept connection the server closed or reset since (a
 * Redis restart) is replaced and the command sent again at once, so the request keeps its Redis
 * work; a server that is gone costs a request nothing (NULL at once, no connect for a second). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdatomic.h>
#include <stdbool.h>

#include "../../fake_redis.h"
#include "db/api_redis.h"

/* The server reset the kept connection after its first command (the client's next read or write
 * fails with ECONNRESET or EPIPE, not EOF): the next command still gets its answer. */
static void test_api_redis_reset_connection_replaced(void **state)
{
    static struct fake f;
    struct api_redis r;
    atomic_bool ok = false;
    redisReply *rep;

    (void)state;
    fake_start(&f);
    atomic_store(&f.reset_after, 1);
    api_redis_init(&r, "127.0.0.1", f.port, 10000, &ok);
    rep = api_redis_cmd(&r, "INCR %s", "a");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    freeReplyObject(rep);
    rep = api_redis_cmd(&r, "INCR %s", "b"); /* on the reset connection, then a new one */
    assert_non_null(rep);
    freeReplyObject(rep);
    assert_int_equal(atomic_load(&f.conns), 2);
    assert_int_equal(atomic_load(&f.n), 2); /* each command ran once */
    assert_true(atomic_load(&ok));
    api_redis_close(&r);
    fake_stop(&f);
}

/* Nothing listens: NULL, and the next call does not even connect (the retry delay). */
static void test_api_redis_down(void **state)
{
    struct api_redis r;
    atomic_bool ok = true;

    (void)state;
    api_redis_init(&r, "127.0.0.1", 1, 200, &ok);
    assert_null(api_redis_cmd(&r, "PING"));
    assert_false(atomic_load(&ok));
    assert_null(r.c);
    assert_true(r.retry_at_ms > 0);
    assert_null(api_redis_cmd(&r, "PING"));
    api_redis_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_redis_reset_connection_replaced),
        cmocka_unit_test(test_api_redis_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
