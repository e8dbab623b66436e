/* test_lease.c - the node-number lease state machine (libchat/src/lease.c): when a request is
 * due, what a reply does, renewal timing, losing a number, release. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "chat/id.h"
#include "chat/lease.h"

static void test_take_renew_lose(void **state)
{
    struct chat_lease l;
    struct chat_lease_req rq;
    int64_t floor_ms;
    unsigned first;

    (void)state;
    chat_lease_init(&l, "gw1", 42, 1000);
    assert_string_equal(l.token, "gw1:42:1000");
    assert_false(chat_lease_valid(&l, 0));
    first = l.candidate;
    assert_true(first <= CHAT_ID_MAX_NODE);
    /* the first request takes the candidate anew */
    assert_true(chat_lease_due(&l, 100, 5000, 0, &rq));
    assert_int_equal(rq.num, first);
    assert_string_equal(rq.fresh, "1");
    assert_string_equal(rq.reached, "5000");
    assert_false(chat_lease_due(&l, 100, 5000, 0, &rq)); /* one in flight */
    assert_int_equal(chat_lease_reply(&l, &rq, true, 7000, &floor_ms), CHAT_LEASE_TAKEN);
    assert_int_equal(floor_ms, 7000);
    assert_int_equal(l.node_num, (int)first);
    /* valid until the lease time minus the margin, counted from when the request left */
    assert_true(chat_lease_valid(&l, 100 + CHAT_LEASE_MS - CHAT_LEASE_MARGIN_MS - 1));
    assert_false(chat_lease_valid(&l, 100 + CHAT_LEASE_MS - CHAT_LEASE_MARGIN_MS));
    /* no renewal before CHAT_LEASE_RENEW_MS, then a renewal of the same number */
    assert_false(
        chat_lease_due(&l, 100 + CHAT_LEASE_RENEW_MS - CHAT_LEASE_MARGIN_MS - 1, 0, 0, &rq));
    assert_true(chat_lease_due(&l, 100 + CHAT_LEASE_RENEW_MS, 9000, 9500, &rq));
    assert_string_equal(rq.fresh, "0");
    assert_string_equal(rq.reached, "9500"); /* our ids ran ahead of the clock */
    assert_int_equal(chat_lease_reply(&l, &rq, true, 9500, &floor_ms), CHAT_LEASE_RENEWED);
    /* no answer: nothing changes, the next step asks again */
    assert_true(chat_lease_due(&l, 100 + 2 * CHAT_LEASE_RENEW_MS, 0, 0, &rq));
    assert_int_equal(chat_lease_reply(&l, &rq, false, 0, &floor_ms), CHAT_LEASE_NONE);
    assert_int_equal(l.node_num, (int)first);
    /* someone else holds it now: lost, the next number is tried */
    assert_true(chat_lease_due(&l, 100 + 2 * CHAT_LEASE_RENEW_MS, 0, 0, &rq));
    assert_int_equal(chat_lease_reply(&l, &rq, true, 0, &floor_ms), CHAT_LEASE_LOST);
    assert_int_equal(l.node_num, -1);
    assert_false(chat_lease_valid(&l, 100 + 2 * CHAT_LEASE_RENEW_MS));
    assert_int_equal(l.candidate, (first + 1) % (CHAT_ID_MAX_NODE + 1));
    /* a refused candidate moves on without having held anything */
    assert_true(chat_lease_due(&l, 200000, 0, 0, &rq));
    assert_int_equal(chat_lease_reply(&l, &rq, true, 0, &floor_ms), CHAT_LEASE_REFUSED);
    assert_int_equal(l.candidate, (first + 2) % (CHAT_ID_MAX_NODE + 1));
}

static void test_release(void **state)
{
    struct chat_lease l;
    struct chat_lease_req rq;
    int64_t floor_ms;

    (void)state;
    chat_lease_init(&l, "api1", 7, 1);
    assert_false(chat_lease_release(&l, 123, &rq)); /* nothing held */
    assert_true(chat_lease_due(&l, 0, 10, 0, &rq));
    assert_int_equal(chat_lease_reply(&l, &rq, true, 10, &floor_ms), CHAT_LEASE_TAKEN);
    assert_true(chat_lease_release(&l, 123, &rq));
    assert_int_equal(rq.num, (unsigned)l.node_num);
    assert_string_equal(rq.reached, "123");
    assert_non_null(strstr(rq.key, "chat:node:"));
    assert_non_null(strstr(rq.last_key, ":last"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_renew_lose),
        cmocka_unit_test(test_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
