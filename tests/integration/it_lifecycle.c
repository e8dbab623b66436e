/* it_lifecycle.c - SIGTERM drains a gateway: clients get a bye frame and close code 1001, the
 * process exits cleanly, and a restarted node serves again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "chat/id.h"
#include "chat/keys.h"
#include "chat/time.h"

#include "it_acct.h"
#include "it_util.h"

/* gw2's node number, from its last "node number N leased" log line; -1 when none. */
static int gw2_node(void)
{
    char line[64];
    it_sh_line(line, sizeof(line),
               "grep -o 'node number [0-9]* leased' %s/logs/gw2.log | tail -1 | cut -d' ' -f3",
               it_env("CHAT_TEST_DIR"));
    return line[0] ? atoi(line) : -1;
}

static void redis_node_last(const char *cmd, int node, const char *val, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), CHAT_KEY_NODE_LAST_FMT, (unsigned)node);
    it_sh_line(out, cap, "redis-cli -h 127.0.0.1 -p %s %s %s %s 2>/dev/null",
               it_env("CHAT_TEST_REDIS_PORT"), cmd, key, val ? val : "");
}

/* Joins room on c and sends one message there; returns its acked id. */
static uint64_t send_acked(struct wsc *c, const char *room, const char *cmid)
{
    json_t *a;
    uint64_t id;

    it_join(c, room);
    it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "hi", "client_msg_id",
            cmid);
    a = it_reply_to(c, cmid, NULL);
    if (!a || strcmp(json_string_value(json_object_get(a, "type")), "ack") != 0)
        fail_msg("send %s: no ack (%s)", cmid,
                 a ? json_string_value(json_object_get(a, "code")) : "nothing");
    id = strtoull(json_string_value(json_object_get(a, "id")), NULL, 10);
    json_decref(a);
    return id;
}

/* A gateway restarted cleanly gets its node number back at once; its ids continue after the
 * last one it made even if the clock is behind (simulated: the recorded last-used time is put
 * a minute ahead), so the persister never meets a repeated id. */
static void test_node_number_restart_keeps_ids_ahead(void **state)
{
    char *t = it_token("lease_user", 600), room[64], val[64], rec[64];
    struct wsc *c;
    uint64_t a, b;
    long long ahead;
    int node;

    (void)state;
    snprintf(room, sizeof(room), "lease-%lld", (long long)chat_now_ms());
    c = it_connect(it_env("CHAT_TEST_GW2_URL"), t);
    a = send_acked(c, room, "l1");
    wsc_close(c);
    node = gw2_node();
    assert_true(node >= 0);
    assert_int_equal(chat_id_node(a), (unsigned)node);
    assert_int_equal(
        it_sh("%s/fixtures/cluster.sh stop gw2 %s", IT_SRC_DIR, it_env("CHAT_TEST_DIR")), 0);
    /* a clean stop records exactly how far its ids went */
    redis_node_last("GET", node, NULL, rec, sizeof(rec));
    if (!strstr(rec, ":clean") || atoll(rec) < chat_id_time_ms(a))
        fail_msg("chat:node:%d:last is '%s' after a clean stop (last id at %lld)", node, rec,
                 (long long)chat_id_time_ms(a));
    /* as if the clock had been a minute ahead before the restart (stepped back since) */
    ahead = chat_now_ms() + 60000;
    snprintf(val, sizeof(val), "%lld:clean", ahead);
    redis_node_last("SET", node, val, rec, sizeof(rec));
    assert_int_equal(
        it_sh("%s/fixtures/cluster.sh start gw2 %s", IT_SRC_DIR, it_env("CHAT_TEST_DIR")), 0);
    assert_int_equal(gw2_node(), node); /* the same number at once */
    c = it_connect(it_env("CHAT_TEST_GW2_URL"), t);
    b = send_acked(c, room, "l2");
    wsc_close(c);
    assert_true(b > a);
    if (chat_id_time_ms(b) <= ahead)
        fail_msg("id made at %lld, not after the recorded last use %lld",
                 (long long)chat_id_time_ms(b), ahead);
    /* while it runs the record says live (a crash would make the next holder add a lease) */
    redis_node_last("GET", node, NULL, rec, sizeof(rec));
    assert_non_null(strstr(rec, ":live"));
    free(t);
}

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
    /* the reason of close code 1001 (proto/README.md sections 5 and 7, examples/bye.json) */
    assert_string_equal(json_string_value(json_object_get(bye, "reason")),
                        "node shutting down; reconnect (possibly to another node)");
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
    assert_int_equal(it_http_get(it_env("CHAT_TEST_API1_URL"), "/api/v1/config", &body), 200);
    assert_non_null(strstr(body, "\"max_text\":2000"));
    free(body);
    assert_int_equal(it_http_get(it_env("CHAT_TEST_GW1_URL"), "/api/v1/nope", NULL), 404);
}

/* chatctl migrate applies what a database lacks of db/migrations: nothing on the cluster's
 * (the persister applied it at start-up), everything on a new empty one, then nothing again. */
static void test_chatctl_migrate(void **state)
{
    const char *dsn = it_env("CHAT_TEST_PG_DSN"), *port = it_env("CHAT_TEST_PG_PORT");
    char db[64], out[128], other[256];

    (void)state;
    it_sh_line(out, sizeof(out), "%s/chatctl migrate --pg-dsn '%s' 2>&1", it_env("CHAT_TEST_BIN"),
               dsn);
    if (strncmp(out, "0 migration(s) applied", 22) != 0)
        fail_msg("chatctl migrate on the cluster's database: %s", out);
    snprintf(db, sizeof(db), "migr_%d", (int)getpid());
    assert_int_equal(it_sh("psql -q -h 127.0.0.1 -p %s -U postgres -d chat -c 'CREATE DATABASE %s' "
                           ">/dev/null",
                           port, db),
                     0);
    snprintf(other, sizeof(other), "postgresql://postgres@127.0.0.1:%s/%s", port, db);
    it_sh_line(out, sizeof(out), "%s/chatctl migrate --pg-dsn '%s' 2>&1", it_env("CHAT_TEST_BIN"),
               other);
    if (strncmp(out, "0 ", 2) == 0 || !strstr(out, " migration(s) applied"))
        fail_msg("chatctl migrate on an empty database: %s", out);
    it_sh_line(out, sizeof(out), "%s/chatctl migrate --pg-dsn '%s' 2>&1", it_env("CHAT_TEST_BIN"),
               other);
    if (strncmp(out, "0 migration(s) applied", 22) != 0)
        fail_msg("chatctl migrate a second time: %s", out);
    assert_int_equal(it_sh("psql -q -h 127.0.0.1 -p %s -U postgres -d chat -c 'DROP DATABASE %s' "
                           ">/dev/null",
                           port, db),
                     0);
}

/* chatctl verify checks a token as the services do: a token chatctl signed for 10 minutes
 * passes, one naming a session (every chatctl token does) that lives over
 * CHAT_TOKEN_MAX_TTL_S (86400) is refused, as the gateways refuse it, unless the limit given is
 * higher. */
static void test_chatctl_verify_as_the_services(void **state)
{
    const char *bin = it_env("CHAT_TEST_BIN"), *keys = it_env("CHAT_JWT_KEYS"),
               *iss = it_env("CHAT_JWT_ISSUER");
    static const struct {
        int ttl, max;
        int want; /* chatctl verify's exit status */
    } cases[] = {{600, 0, 0}, {100000, 0, 1}, {100000, 200000, 0}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char max[48] = "";
        if (cases[i].max)
            snprintf(max, sizeof(max), "--token-max-ttl-s %d", cases[i].max);
        if (it_sh("t=$(%s/chatctl token --user cv --ttl %d --jwt-keys '%s' --jwt-issuer '%s') && "
                  "%s/chatctl verify --token \"$t\" --jwt-keys '%s' --jwt-issuer '%s' %s "
                  ">/dev/null 2>&1",
                  bin, cases[i].ttl, keys, iss, bin, keys, iss, max) != cases[i].want)
            fail_msg("chatctl verify of a token for %d s (limit %d): not exit %d", cases[i].ttl,
                     cases[i].max, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_endpoints),
        cmocka_unit_test(test_sigterm_drains_gateway),
        cmocka_unit_test(test_node_number_restart_keeps_ids_ahead),
        cmocka_unit_test(test_chatctl_migrate),
        cmocka_unit_test(test_chatctl_verify_as_the_services),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
