/* it_fanout.c - messages sent through one gateway reach the room's subscribers on every
 * gateway (and through nginx), in send order, with strictly increasing seq, and nobody else;
 * one connection's sends are stored in its order also when some of them wait for Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "it_util.h"

#define N_MSGS 200

static char room[64], other[64];

/* Receives n messages of room on c and checks order, seq and contents. */
static void expect_stream(struct wsc *c, const char *who, int n, const long long *acked_seq)
{
    long long last = -1;
    for (int i = 0; i < n; i++) {
        char want_id[32], want_text[64];
        json_t *m = it_wait_type(c, "message", it_timeout(10000));
        if (!m)
            fail_msg("%s: message %d of %d missing", who, i, n);
        snprintf(want_id, sizeof(want_id), "c%d", i);
        snprintf(want_text, sizeof(want_text), "hello %d from alice", i);
        assert_string_equal(json_string_value(json_object_get(m, "room")), room);
        assert_string_equal(json_string_value(json_object_get(m, "client_msg_id")), want_id);
        assert_string_equal(json_string_value(json_object_get(m, "text")), want_text);
        assert_string_equal(json_string_value(json_object_get(m, "user")), "alice");
        long long seq = json_integer_value(json_object_get(m, "seq"));
        assert_true(seq > last);
        if (acked_seq)
            assert_int_equal(seq, acked_seq[i]);
        last = seq;
        json_decref(m);
    }
}

static void test_fanout_across_gateways_in_order(void **state)
{
    (void)state;
    char *ta = it_token("alice", 600), *tb = it_token("bob", 600), *tc = it_token("carol", 600);
    char *td = it_token("dave", 600);
    struct wsc *alice = it_connect(it_env("CHAT_TEST_GW1_URL"), ta);
    struct wsc *bob = it_connect(it_env("CHAT_TEST_GW2_URL"), tb);
    struct wsc *carol = it_connect(it_env("CHAT_TEST_LB_URL"), tc);
    struct wsc *anon = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    struct wsc *dave = it_connect(it_env("CHAT_TEST_GW2_URL"), td);
    long long acked[N_MSGS];

    it_join(alice, room);
    it_join(bob, room);
    it_join(carol, room);
    it_join(anon, room);
    it_join(dave, other);
    for (int i = 0; i < N_MSGS; i++) {
        char id[32], text[64];
        snprintf(id, sizeof(id), "c%d", i);
        snprintf(text, sizeof(text), "hello %d from alice", i);
        it_send(alice, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", text,
                "client_msg_id", id);
    }
    /* acks arrive in send order with strictly increasing seq (interleaved with messages) */
    for (int i = 0; i < N_MSGS; i++) {
        char id[32];
        snprintf(id, sizeof(id), "c%d", i);
        json_t *a = it_wait_field(alice, "ack", "client_msg_id", id, it_timeout(10000));
        if (!a)
            fail_msg("no ack for %s", id);
        acked[i] = json_integer_value(json_object_get(a, "seq"));
        assert_true(json_is_string(json_object_get(a, "id")));
        if (i > 0)
            assert_true(acked[i] > acked[i - 1]);
        json_decref(a);
    }
    expect_stream(bob, "bob@gw2", N_MSGS, acked);
    expect_stream(carol, "carol@nginx", N_MSGS, acked);
    expect_stream(anon, "anonymous@gw2", N_MSGS, acked);

    /* dave (other room) got none of it: the first message he sees is the one for his room */
    it_send(bob, "{s:s, s:s}", "type", "join", "room", other);
    json_decref(it_wait_field(bob, "joined", "room", other, it_timeout(5000)));
    it_send(bob, "{s:s, s:s, s:s}", "type", "send", "room", other, "text", "only for other");
    json_t *m = it_wait_type(dave, "message", it_timeout(10000));
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "room")), other);
    assert_string_equal(json_string_value(json_object_get(m, "text")), "only for other");
    json_decref(m);

    wsc_close(alice);
    wsc_close(bob);
    wsc_close(carol);
    wsc_close(anon);
    wsc_close(dave);
    free(ta);
    free(tb);
    free(tc);
    free(td);
}

/* One user on three connections across both gateways: every connection can send. */
static void test_same_user_many_connections_all_send(void **state)
{
    (void)state;
    char *t = it_token("erin", 600);
    struct wsc *c[3] = {it_connect(it_env("CHAT_TEST_GW1_URL"), t),
                        it_connect(it_env("CHAT_TEST_GW2_URL"), t),
                        it_connect(it_env("CHAT_TEST_LB_URL"), t)};
    char r[80];

    snprintf(r, sizeof(r), "%s-multi", room);
    for (int i = 0; i < 3; i++)
        it_join(c[i], r);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "m%d", i);
        it_send(c[i], "{s:s, s:s, s:s, s:s}", "type", "send", "room", r, "text", "from a tab",
                "client_msg_id", id);
    }
    /* each connection: its own ack, and all three messages */
    for (int i = 0; i < 3; i++) {
        bool acked = false, seen[3] = {false, false, false};
        int nseen = 0;
        while (!acked || nseen < 3) {
            char *text;
            if (wsc_recv_text(c[i], &text, it_timeout(10000), NULL) <= 0)
                fail_msg("connection %d: acked=%d, %d of 3 messages", i, acked, nseen);
            json_t *j = json_loads(text, 0, NULL);
            wsc_free_text(text);
            const char *type = json_string_value(json_object_get(j, "type"));
            const char *cm = json_string_value(json_object_get(j, "client_msg_id"));
            if (strcmp(type, "error") == 0)
                fail_msg("connection %d of the same user got error %s", i,
                         json_string_value(json_object_get(j, "code")));
            if (strcmp(type, "ack") == 0 && cm && cm[1] - '0' == i)
                acked = true;
            if (strcmp(type, "message") == 0 && cm && !seen[cm[1] - '0']) {
                seen[cm[1] - '0'] = true;
                nseen++;
            }
            json_decref(j);
        }
    }
    for (int i = 0; i < 3; i++)
        wsc_close(c[i]);
    free(t);
}

/* REST send: the same path as WebSocket, answered with the ack after Kafka stored it. */
static void test_rest_send_reaches_websocket(void **state)
{
    (void)state;
    char *t = it_token("frank", 600);
    struct wsc *w = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    char r[80], out[4096];
    FILE *p;

    snprintf(r, sizeof(r), "%s-rest", room);
    it_join(w, r);
    snprintf(
        out, sizeof(out),
        "curl -s -m 10 -X POST -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' "
        "-d '{\"text\":\"via rest\",\"client_msg_id\":\"r1\"}' '%s/api/v1/rooms/%s/messages'",
        t, it_env("CHAT_TEST_API1_URL"), r);
    p = popen(out, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    pclose(p);
    out[n] = '\0';
    json_t *ack = json_loads(out, 0, NULL);
    assert_non_null(ack);
    assert_string_equal(json_string_value(json_object_get(ack, "type")), "ack");
    json_t *m = it_wait_field(w, "message", "client_msg_id", "r1", it_timeout(10000));
    assert_non_null(m);
    assert_int_equal(json_integer_value(json_object_get(m, "seq")),
                     json_integer_value(json_object_get(ack, "seq")));
    assert_string_equal(json_string_value(json_object_get(m, "text")), "via rest");
    json_decref(m);
    json_decref(ack);
    wsc_close(w);
    free(t);
}

/* One connection's sends are stored in the order it sent them, whatever each waits for
 * (proto/README.md section 1, "Ordering"). Redis is paused for the gateway's scripts (CLIENT
 * PAUSE WRITE holds every EVALSHA) while a burst mixes sends that wait for Redis (a
 * client_msg_id to claim; a text the connection sent before, checked by the spam script
 * before its produce) with sends that need nothing from it (no client_msg_id, a new text): the
 * latter must wait behind the former. Every send is acked, the acks carry increasing seq in
 * send order, and both the sender and a subscriber on the other gateway get the messages in
 * send order. (No room here has slow mode; 2 equal texts of 6 stay under the spam rule.) */
static void test_one_connection_sends_in_order(void **state)
{
    static const struct {
        const char *text, *cmid;
    } burst[] = {
        {"ok", "fifo-0"},  /* waits: its claim */
        {"bye", NULL},     /* nothing to wait for */
        {"ok", NULL},      /* waits: a repeated text */
        {"later", NULL},   /* nothing to wait for */
        {"bye", "fifo-4"}, /* waits: its claim, then a repeated text */
        {"end", NULL},     /* nothing to wait for */
    };
    enum { N = sizeof(burst) / sizeof(burst[0]) };
    char user[32], r[80], *t = NULL;
    long long acked[N];
    struct wsc *s, *w;
    int nacks = 0, nmsgs[2] = {0, 0};

    (void)state;
    snprintf(user, sizeof(user), "fifo-%d", (int)getpid()); /* a spam-rule history of its own */
    snprintf(r, sizeof(r), "%s-fifo", room);
    t = it_token(user, 600);
    s = it_connect(it_env("CHAT_TEST_GW1_URL"), t);
    w = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    it_join(s, r);
    it_join(w, r);
    assert_int_equal(it_sh("test \"$(redis-cli -h 127.0.0.1 -p %s CLIENT PAUSE 1000 WRITE)\" = OK",
                           it_env("CHAT_TEST_REDIS_PORT")),
                     0);
    for (int i = 0; i < N; i++) {
        char ref[16];
        snprintf(ref, sizeof(ref), "r%d", i);
        if (burst[i].cmid)
            it_send(s, "{s:s, s:s, s:s, s:s, s:s}", "type", "send", "room", r, "text",
                    burst[i].text, "client_msg_id", burst[i].cmid, "ref", ref);
        else
            it_send(s, "{s:s, s:s, s:s, s:s}", "type", "send", "room", r, "text", burst[i].text,
                    "ref", ref);
    }
    /* the sender: N acks in send order, and the N messages in send order */
    while (nacks < N || nmsgs[0] < N) {
        char *text, want_ref[16];
        const char *type, *cm;
        json_t *j;

        if (wsc_recv_text(s, &text, it_timeout(10000), NULL) <= 0)
            fail_msg("sender: %d acks, %d messages of %d", nacks, nmsgs[0], N);
        j = json_loads(text, 0, NULL);
        wsc_free_text(text);
        type = json_string_value(json_object_get(j, "type"));
        if (strcmp(type, "error") == 0)
            fail_msg("send %s refused: %s", json_string_value(json_object_get(j, "ref")),
                     json_string_value(json_object_get(j, "code")));
        if (strcmp(type, "ack") == 0) {
            snprintf(want_ref, sizeof(want_ref), "r%d", nacks);
            assert_string_equal(json_string_value(json_object_get(j, "ref")), want_ref);
            acked[nacks] = json_integer_value(json_object_get(j, "seq"));
            if (nacks > 0 && acked[nacks] <= acked[nacks - 1])
                fail_msg("ack %d: seq %lld after %lld", nacks, acked[nacks], acked[nacks - 1]);
            nacks++;
        } else if (strcmp(type, "message") == 0) {
            cm = json_string_value(json_object_get(j, "client_msg_id"));
            if (strcmp(json_string_value(json_object_get(j, "text")), burst[nmsgs[0]].text) != 0 ||
                (cm == NULL) != (burst[nmsgs[0]].cmid == NULL) ||
                (cm && strcmp(cm, burst[nmsgs[0]].cmid) != 0))
                fail_msg("message %d is \"%s\" (%s), sent as number %d was \"%s\" (%s)", nmsgs[0],
                         json_string_value(json_object_get(j, "text")), cm ? cm : "-", nmsgs[0],
                         burst[nmsgs[0]].text, burst[nmsgs[0]].cmid ? burst[nmsgs[0]].cmid : "-");
            nmsgs[0]++;
        }
        json_decref(j);
    }
    /* the watcher on the other gateway: the same messages, in send order, seq as acked */
    for (; nmsgs[1] < N; nmsgs[1]++) {
        json_t *m = it_wait_type(w, "message", it_timeout(10000));
        if (!m)
            fail_msg("watcher: message %d of %d missing", nmsgs[1], N);
        assert_string_equal(json_string_value(json_object_get(m, "text")), burst[nmsgs[1]].text);
        assert_int_equal(json_integer_value(json_object_get(m, "seq")), acked[nmsgs[1]]);
        json_decref(m);
    }
    wsc_close(s);
    wsc_close(w);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fanout_across_gateways_in_order),
        cmocka_unit_test(test_same_user_many_connections_all_send),
        cmocka_unit_test(test_rest_send_reaches_websocket),
        cmocka_unit_test(test_one_connection_sends_in_order),
    };
    it_env_load();
    snprintf(room, sizeof(room), "fan-%d", (int)getpid());
    snprintf(other, sizeof(other), "other-%d", (int)getpid());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
