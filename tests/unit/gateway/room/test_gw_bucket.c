/* test_gw_bucket.c - the gateway's token bucket (gateway/src/room/gw_bucket.c, linked from
 * gw_core): a new bucket holds the burst, refills at the rate, never beyond the burst. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
