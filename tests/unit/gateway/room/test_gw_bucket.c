/* test_gw_bucket.c - the gateway's token bucket (gateway/src/room/gw_bucket.c, linked from
 * gw_core): a new bucket holds the burst, refills at the rate, never beyond the burst; a refill
 * alone changes no answer. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdint.h>

#include "room/gw_bucket.h"

static void test_bucket(void **state)
{
    struct gw_bucket b = {0};
    int64_t t = 1000000;

    (void)state;
    for (int i = 0; i < 5; i++) /* a new bucket starts full: the burst */
        assert_int_equal(gw_bucket_take(&b, 10, 5, t), 0);
    int wait = gw_bucket_take(&b, 10, 5, t); /* empty: one token every 100 ms */
    assert_true(wait > 0 && wait <= 101);
    assert_int_equal(gw_bucket_take(&b, 10, 5, t + 100000), 0); /* 100 ms later: one more */
    assert_true(gw_bucket_take(&b, 10, 5, t + 100000) > 0);
    /* an hour idle refills to the burst, not beyond */
    t += 3600LL * 1000000;
    for (int i = 0; i < 5; i++)
        assert_int_equal(gw_bucket_take(&b, 10, 5, t), 0);
    assert_true(gw_bucket_take(&b, 10, 5, t) > 0);
}

/* A refill between takes changes none of their answers (the gateway refills a connection's
 * frame bucket on every pong, to know when it last heard from it); it starts a new bucket full
 * and stamps the time. */
static void test_refill(void **state)
{
    struct gw_bucket a = {0}, b = {0};
    int64_t t = 5000000;
    int refused = 0;

    (void)state;
    gw_bucket_refill(&b, 10, 5, t);
    assert_true(b.at_us == t && b.tokens == 5);
    for (int i = 1; i < 40; i++) {   /* refills never before the last update */
        int64_t now = t + i * 37000; /* takes faster than the rate: some refused */
        if (i % 3 == 0)
            gw_bucket_refill(&b, 10, 5, now - 11000);
        int wa = gw_bucket_take(&a, 10, 5, now), wb = gw_bucket_take(&b, 10, 5, now);
        assert_int_equal(wa == 0, wb == 0);
        assert_true(wa - wb <= 1 && wb - wa <= 1); /* the wait may round either way */
        refused += wa > 0;
    }
    assert_true(refused > 5);
    gw_bucket_refill(&b, 10, 5, t + 3600LL * 1000000); /* never beyond the burst */
    assert_true(b.tokens == 5 && b.at_us == t + 3600LL * 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_refill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
