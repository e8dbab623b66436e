/* test_api_peer.c - the client address behind trusted proxies, and user agents. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "chat/mem.h"

#include "api_peer.h"

static void client(const char *peer, const char *xff, int hops, const char *want)
{
    char out[API_IP_MAX];

    api_peer_client(peer, xff, hops, out, sizeof(out));
    assert_string_equal(out, want);
}

static void test_no_proxies_is_the_peer(void **state)
{
    (void)state;
    client("10.0.0.1", "1.2.3.4", 0, "10.0.0.1");
    client("::ffff:10.0.0.1", NULL, 0, "10.0.0.1");
    client("", NULL, 0, "unknown");
    client("10.0.0.1", NULL, 1, "10.0.0.1");
}

static void test_hops_count_from_the_right(void **state)
{
    (void)state;
    /* one proxy: the entry it appended; what the client wrote to the left proves nothing */
    client("10.0.0.9", "6.6.6.6, 1.2.3.4", 1, "1.2.3.4");
    client("10.0.0.9", "1.2.3.4", 1, "1.2.3.4");
    /* two proxies: the second entry from the right */
    client("10.0.0.9", "6.6.6.6, 1.2.3.4, 10.0.0.8", 2, "1.2.3.4");
    /* fewer entries than hops: the left-most, written by one of ours */
    client("10.0.0.9", "1.2.3.4", 3, "1.2.3.4");
    client("10.0.0.9", " 2001:db8::1 ", 1, "2001:db8::1");
    client("10.0.0.9", "::ffff:1.2.3.4", 1, "1.2.3.4");
}

static void test_garbage_falls_back_to_the_peer(void **state)
{
    char big[5000];

    (void)state;
    client("10.0.0.9", "evil<script>", 1, "10.0.0.9");
    client("10.0.0.9", "1.2.3.4, ", 1, "10.0.0.9");
    /* padding on the left cannot push our proxy's entry out */
    memset(big, 'a', sizeof(big) - 20);
    strcpy(big + sizeof(big) - 20, ",1.2.3.4");
    client("10.0.0.9", big, 1, "1.2.3.4");
}

static void test_user_agent_is_printable_and_capped(void **state)
{
    char raw[2000];
    char *ua;

    (void)state;
    assert_null(api_peer_user_agent(NULL));
    ua = api_peer_user_agent("curl/8.0\x01\xff caf\xc3\xa9");
    assert_string_equal(ua, "curl/8.0?? caf\xc3\xa9");
    chat_free(ua);
    memset(raw, 'x', sizeof(raw) - 1);
    raw[sizeof(raw) - 1] = '\0';
    ua = api_peer_user_agent(raw);
    assert_int_equal(strlen(ua), API_UA_MAX);
    chat_free(ua);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_proxies_is_the_peer),
        cmocka_unit_test(test_hops_count_from_the_right),
        cmocka_unit_test(test_garbage_falls_back_to_the_peer),
        cmocka_unit_test(test_user_agent_is_printable_and_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
