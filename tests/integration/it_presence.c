/* it_presence.c - presence counts reach clients on both gateways, one user on several
 * connections counts once, and counts drop when connections close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "it_util.h"

static char room[64];

/* Waits for a presence frame of room (NULL: the total) with exactly these counts. */
static bool wait_presence(struct wsc *c, const char *r, long conns, long users, int timeout_ms)
{
    for (;;) {
        json_t *j = it_wait_type(c, "presence", timeout_ms);
        if (!j)
            return false;
        const char *scope = json_string_value(json_object_get(j, "scope"));
        const char *jr = json_string_value(json_object_get(j, "room"));
        bool match = r ? (scope && strcmp(scope, "room") == 0 && jr && strcmp(jr, r) == 0)
                       : (scope && strcmp(scope, "total") == 0);
        bool ok = match && json_integer_value(json_object_get(j, "conns")) == conns &&
                  json_integer_value(json_object_get(j, "users")) == users;
        json_decref(j);
        if (ok)
            return true;
    }
}

static void test_presence_counts_on_both_gateways(void **state)
{
    (void)state;
    char *t1 = it_token("pres_u1", 600), *t2 = it_token("pres_u2", 600);
    struct wsc *obs1 = it_connect(it_env("CHAT_TEST_GW1_URL"), NULL);
    struct wsc *obs2 = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    struct wsc *u1a = it_connect(it_env("CHAT_TEST_GW1_URL"), t1);
    struct wsc *u1b = it_connect(it_env("CHAT_TEST_GW2_URL"), t1);
    struct wsc *u1c = it_connect(it_env("CHAT_TEST_GW1_URL"), t1);
    struct wsc *u2 = it_connect(it_env("CHAT_TEST_GW2_URL"), t2);

    it_join(obs1, room);
    it_join(obs2, room);
    it_join(u1a, room);
    it_join(u1b, room);
    it_join(u1c, room);
    it_join(u2, room);
    /* 6 connections, 2 distinct logged-in users (u1 on two gateways, twice on gw1, counts once) */
    if (!wait_presence(obs1, room, 6, 2, it_timeout(10000)))
        fail_msg("gw1 observer never saw conns=6 users=2");
    if (!wait_presence(obs2, room, 6, 2, it_timeout(10000)))
        fail_msg("gw2 observer never saw conns=6 users=2");

    /* u1 leaves one of its two connections on gw1: still counted once */
    wsc_close(u1c);
    if (!wait_presence(obs1, room, 5, 2, it_timeout(10000)))
        fail_msg("gw1 observer never saw conns=5 users=2 after one of u1's two closed");

    /* u1 leaves on its other connections: counts drop on both gateways */
    wsc_close(u1a);
    wsc_close(u1b);
    if (!wait_presence(obs1, room, 3, 1, it_timeout(10000)))
        fail_msg("gw1 observer never saw conns=3 users=1");
    if (!wait_presence(obs2, room, 3, 1, it_timeout(10000)))
        fail_msg("gw2 observer never saw conns=3 users=1");

    /* a late joiner sees the current counts at once: the first presence frame right after its
     * "joined" is the cached 3/1, before its own join is even counted */
    {
        struct wsc *late = it_connect(it_env("CHAT_TEST_GW1_URL"), NULL);
        it_join(late, room);
        json_t *j = it_wait_type(late, "presence", it_timeout(5000));
        assert_non_null(j);
        if (strcmp(json_string_value(json_object_get(j, "scope")), "total") == 0) {
            json_decref(j); /* the total may be queued first, at connect */
            j = it_wait_field(late, "presence", "scope", "room", it_timeout(5000));
            assert_non_null(j);
        }
        assert_int_equal(json_integer_value(json_object_get(j, "conns")), 3);
        assert_int_equal(json_integer_value(json_object_get(j, "users")), 1);
        json_decref(j);
        if (!wait_presence(obs2, room, 4, 1, it_timeout(10000)))
            fail_msg("gw2 observer never saw the late joiner counted (conns=4 users=1)");
        wsc_close(late);
        if (!wait_presence(obs2, room, 3, 1, it_timeout(10000)))
            fail_msg("counts did not return to conns=3 users=1 after the late joiner left");
    }

    /* an abrupt disconnect (no close frame) also counts */
    wsc_abort(u2);
    if (!wait_presence(obs2, room, 2, 0, it_timeout(10000)))
        fail_msg("gw2 observer never saw conns=2 users=0 after an abrupt close");
    wsc_close(obs1);
    wsc_close(obs2);
    free(t1);
    free(t2);
}

/* A connection whose token expires turns anonymous (session_expired): it no longer counts in
 * the room's users but still in its connections (proto/README.md section 2). */
static void test_expired_session_leaves_users_not_conns(void **state)
{
    int ttl_s = it_timeout(6000) / 1000; /* time for the users=1 report first, however slow */
    char r[80], *t = it_token("pres_exp", ttl_s);
    struct wsc *obs = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    struct wsc *u = it_connect(it_env("CHAT_TEST_GW1_URL"), t);
    json_t *j;

    (void)state;
    snprintf(r, sizeof(r), "%s-exp", room);
    it_join(obs, r);
    it_join(u, r);
    if (!wait_presence(obs, r, 2, 1, it_timeout(10000)))
        fail_msg("never saw conns=2 users=1");
    j = it_wait_type(u, "session_expired", (ttl_s + 1) * 1000 + it_timeout(10000));
    if (!j)
        fail_msg("no session_expired");
    json_decref(j);
    if (!wait_presence(obs, r, 2, 0, it_timeout(10000)))
        fail_msg("never saw conns=2 users=0 after the session expired");
    assert_true(it_ping(u)); /* still open, still joined */
    wsc_close(u);
    wsc_close(obs);
    free(t);
}

/* Waits for a total frame with conns >= min. */
static bool wait_total_at_least(struct wsc *c, long min, int timeout_ms)
{
    for (;;) {
        json_t *j = it_wait_field(c, "presence", "scope", "total", timeout_ms);
        if (!j)
            return false;
        bool ok = json_integer_value(json_object_get(j, "conns")) >= min;
        json_decref(j);
        if (ok)
            return true;
    }
}

static void test_presence_total_reaches_everyone(void **state)
{
    (void)state;
    /* a new connection gets the last known total right after hello */
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW1_URL"), NULL);
    if (!wait_total_at_least(c, 1, it_timeout(10000)))
        fail_msg("no total presence frame after connecting");
    /* two more connections raise the total, which reaches c on the other gateway's side too */
    struct wsc *o1 = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    struct wsc *o2 = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    if (!wait_total_at_least(c, 3, it_timeout(10000)))
        fail_msg("total never reached conns >= 3");
    wsc_close(o1);
    wsc_close(o2);
    wsc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presence_counts_on_both_gateways),
        cmocka_unit_test(test_presence_total_reaches_everyone),
        cmocka_unit_test(test_expired_session_leaves_users_not_conns),
    };
    it_env_load();
    snprintf(room, sizeof(room), "pres-%d", (int)getpid());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
