/* it_lifecycle.c - SIGTERM drains a gateway: clients get a bye frame and close code 1001, the
 * process exits cleanly, and a restarted node serves again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "it_util.h"

static void test_sigterm_drains_gateway(void **state)
{
    (void)state;
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    int close_code = 0;
    char *text;
    json_t *bye;

    assert_int_equal(
        it_sh("%s/fixtures/cluster.sh stop gw2 %s", IT_SRC_DIR, it_env("CHAT_TEST_DIR")), 0);
    bye = it_wait_type(c, "bye", it_timeout(10000));
    assert_non_null(bye);
    assert_int_equal(json_integer_value(json_object_get(bye, "code")), 1001);
    json_decref(bye);
    while (wsc_recv_text(c, &text, it_timeout(5000), &close_code) > 0)
        wsc_free_text(text);
    assert_int_equal(close_code, 1001);
    wsc_close(c);
    /* the process said goodbye cleanly */
    assert_int_equal(it_sh("grep -q 'exit clean' %s/logs/gw2.log", it_env("CHAT_TEST_DIR")), 0);
    /* and comes back */
    assert_int_equal(
        it_sh("%s/fixtures/cluster.sh start gw2 %s", IT_SRC_DIR, it_env("CHAT_TEST_DIR")), 0);
    c = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    assert_true(it_ping(c));
    wsc_close(c);
}

static void test_health_endpoints(void **state)
{
    (void)state;
    char *body = NULL;
    const char *urls[] = {"CHAT_TEST_GW1_URL", "CHAT_TEST_PERSISTER_URL", "CHAT_TEST_PRESENCE_URL"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(it_http_get(it_env(urls[i]), "/healthz", NULL), 200);
        assert_int_equal(it_http_get(it_env(urls[i]), "/readyz", NULL), 200);
        assert_int_equal(it_http_get(it_env(urls[i]), "/metrics", &body), 200);
        assert_non_null(strstr(body, "# TYPE "));
        free(body);
    }
    assert_int_equal(it_http_get(it_env("CHAT_TEST_GW1_URL"), "/api/v1/config", &body), 200);
    assert_non_null(strstr(body, "\"max_text\":2000"));
    free(body);
    assert_int_equal(it_http_get(it_env("CHAT_TEST_GW1_URL"), "/api/v1/nope", NULL), 404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_endpoints),
        cmocka_unit_test(test_sigterm_drains_gateway),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
