/* it_kafka.c - the real Kafka broker under faults (tests/integration/fixtures/cluster.sh):
 *
 * 1. hang: the broker is paused (SIGSTOP) while a user sends; nothing is acknowledged while it
 *    hangs, every send is answered once it runs again (SIGCONT); a hang longer than the produce
 *    timeout answers every send `unconfirmed` while it lasts (the fate-unknown code);
 * 2. outage: the broker is killed (SIGKILL) while a user sends; every send is answered
 *    (`unavailable`, or `unconfirmed` when librdkafka had written it to the dying connection;
 *    never delivered), and once it is started again on the same log dir chat flows again;
 * 3. stop: the broker is stopped cleanly (SIGTERM) for 10 s under three streams (gw1 -> gw2,
 *    gw2 -> gw1, gw1 -> gw1); every send is answered while it is down and started again; a
 *    logout made while it is down (chat-api commits it with its event in the outbox) reaches
 *    the session's open socket once the broker is back: the event was not lost;
 * and after each, acks again within 2 s of the broker's return;
 * and through both: every acknowledged message reaches the other user (on the other gateway)
 * exactly once, is stored once in PostgreSQL, and is still in the broker's log after the
 * restart (read back with kcat from the beginning of the topic). Also `chatctl topics` against
 * the broker: missing topics created, differing ones refused and left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <cmocka.h>

#include "it_acct.h"
#include "it_stream.h"
#include "it_util.h"

/* Records of the room in the broker's log, read from the start of the topic with kcat. */
static long long kafka_records(const char *room)
{
    char cmd[512];
    long long n = -1;
    FILE *f;

    snprintf(cmd, sizeof(cmd),
             "kcat -C -b '%s' -t chat.messages -o beginning -e -q -f '%%k\\n' 2>/dev/null | "
             "grep -cx '%s'",
             it_env("CHAT_KAFKA_BROKERS"), room);
    f = popen(cmd, "r");
    assert_non_null(f);
    if (fscanf(f, "%lld", &n) != 1)
        n = -1;
    pclose(f);
    return n;
}

/* chatctl topics against the broker: creates what is missing, and refuses (exit 1, nothing
 * altered) a topic whose partitions or settings differ from the spec. */
static int topics(const char *spec)
{
    return it_sh("%s/chatctl topics --kafka-brokers '%s' --timeout-ms 20000 --topics '%s' "
                 ">/dev/null 2>&1",
                 it_env("CHAT_TEST_BIN"), it_env("CHAT_KAFKA_BROKERS"), spec);
}

static void test_topics_created_and_checked(void **state)
{
    char spec[128];

    (void)state;
    if (strcmp(it_env("CHAT_TEST_KAFKA_IMPL"), "broker") != 0)
        skip(); /* the mock has no Admin API */
    /* the cluster's own topics, as created at its start, pass as they are */
    assert_int_equal(topics("chat.messages:12:cleanup.policy=delete:retention.ms=604800000"), 0);
    assert_int_equal(
        topics(
            "chat.presence:3:cleanup.policy=compact,delete:retention.ms=3600000:segment.ms=600000"),
        0);
    /* a differing partition count or setting is refused and left alone */
    assert_int_equal(topics("chat.messages:6"), 1);
    assert_int_equal(topics("chat.presence:3:retention.ms=1"), 1);
    assert_int_equal(topics("chat.presence:3:retention.ms=3600000"), 0);
    /* a missing topic is created with its settings, and then passes */
    snprintf(spec, sizeof(spec), "it-topics-%d:2:retention.ms=60000", (int)getpid());
    assert_int_equal(topics(spec), 0);
    assert_int_equal(topics(spec), 0);
    snprintf(spec, sizeof(spec), "it-topics-%d:2:retention.ms=120000", (int)getpid());
    assert_int_equal(topics(spec), 1);
}

/* Sends on st until one is acknowledged (each answered first): chat flows again after a
 * restart that began at t0; fails when that takes more than 30 s. */
static void send_until_acked(struct it_stream *st, int64_t t0)
{
    for (;;) {
        it_stream_send(st);
        it_stream_answer_all(st, it_timeout(20000));
        if (st->out[st->n - 1] == IT_ACKED)
            return;
        if (it_now_ms() - t0 > it_timeout(30000))
            fail_msg("%s: no send acknowledged within 30 s of the broker's return", st->room);
    }
}

/* The target after the broker's return at t0: acks again within 2 s. Prints the figure. */
static void expect_back_within_2s(int64_t t0, const char *what)
{
    long long back_ms = (long long)(it_now_ms() - t0);

    print_message("%s: acking again %lld ms after the broker's return\n", what, back_ms);
    if (back_ms > it_timeout(2000))
        fail_msg("%s: acks again only %lld ms after the broker's return", what, back_ms);
}

static void test_broker_hang_and_restart(void **state)
{
    struct it_stream st;
    int hang_first, long_first, kill_first, delivered;
    int64_t t0;

    (void)state;
    if (strcmp(it_env("CHAT_TEST_KAFKA_IMPL"), "broker") != 0) {
        print_message("skipped: the cluster runs the mock (CHAT_CLUSTER_KAFKA=mock)\n");
        skip();
    }
    it_stream_open(&st, "kafka", it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW2_URL"));
    it_stream_send_acked(&st, 10);

    /* 1. hang: nothing is acknowledged while the broker is stopped; all answered after */
    assert_int_equal(it_fixture("pause", "kafka"), 0);
    hang_first = st.n;
    for (int i = 0; i < 5; i++)
        it_stream_send(&st);
    t0 = it_now_ms();
    while (it_now_ms() - t0 < 1500) /* a bounded check of absence: no ack from a stopped broker */
        if (it_stream_pump(&st, 100))
            for (int i = hang_first; i < st.n; i++)
                if (st.out[i] == IT_ACKED)
                    fail_msg("send %d acknowledged while the broker was stopped", i);
    assert_int_equal(it_fixture("resume", "kafka"), 0);
    t0 = it_now_ms();
    it_stream_answer_all(&st, it_timeout(15000));
    it_stream_send_acked(&st, 1); /* acks again within 2 s of the broker's return */
    expect_back_within_2s(t0, "hang (SIGCONT)");

    /* 1b. a hang longer than the produce timeout: every send is answered while the broker is
     * still stopped, as `unconfirmed` (it was written to the broker, which may yet store it) */
    assert_int_equal(it_fixture("pause", "kafka"), 0);
    long_first = st.n;
    for (int i = 0; i < 3; i++)
        it_stream_send(&st);
    it_stream_answer_all(&st, it_timeout(15000));
    for (int i = long_first; i < st.n; i++)
        if (st.out[i] != IT_REFUSED || strcmp(st.code[i], "unconfirmed") != 0)
            fail_msg("send %d to a stopped broker answered %s, not unconfirmed", i,
                     st.out[i] == IT_ACKED ? "ack" : st.code[i]);
    assert_int_equal(it_fixture("resume", "kafka"), 0);
    t0 = it_now_ms();
    it_stream_send_acked(&st, 1);
    expect_back_within_2s(t0, "long hang (SIGCONT)");

    /* 2. outage: killed, every send answered unavailable; restarted on the same log dir */
    assert_int_equal(it_fixture("kill", "kafka"), 0);
    kill_first = st.n;
    for (int i = 0; i < 5; i++)
        it_stream_send(&st);
    it_stream_answer_all(&st, it_timeout(20000));
    for (int i = kill_first; i < st.n; i++) /* unavailable, or unconfirmed when librdkafka
                                                 had written it to the dying connection */
        if (st.out[i] != IT_REFUSED)
            fail_msg("send %d acknowledged with the broker dead", i);
    assert_int_equal(it_fixture("start", "kafka"), 0);
    t0 = it_now_ms();
    send_until_acked(&st, t0); /* chat flows again */
    expect_back_within_2s(t0, "killed, restarted on its log dir");
    it_stream_send_acked(&st, 10);

    /* every acknowledged message delivered exactly once, stored once, still in the log; a send
     * refused while the broker hung or restarted may have been stored after all (its fate is
     * unknown to the gateway), so the rows count what was delivered, which covers every ack */
    delivered = it_stream_deliver_all(&st, it_timeout(20000));
    for (int i = 0; i < st.n; i++) {
        if (st.out[i] != IT_REFUSED)
            continue;
        /* `unavailable` promises the message was not stored; only `unconfirmed` may be */
        if (strcmp(st.code[i], "unavailable") == 0 && st.seen[i])
            fail_msg("message %d refused as unavailable, yet delivered", i);
        if (strcmp(st.code[i], "unavailable") != 0 && strcmp(st.code[i], "unconfirmed") != 0)
            fail_msg("message %d refused with %s", i, st.code[i]);
        if (i >= kill_first && i < kill_first + 5 && st.seen[i])
            fail_msg("message %d sent to a dead broker, yet delivered", i);
    }
    print_message("%d sends: %d acknowledged, %d refused, %d delivered\n", st.n,
                  it_stream_count(&st, IT_ACKED), it_stream_count(&st, IT_REFUSED), delivered);
    it_stream_check_stored(&st, delivered, it_timeout(30000));
    assert_int_equal(kafka_records(st.room), delivered);
    it_stream_close(&st);
}

#define NSTREAMS 3

/* "delivery failed" lines in both gateways' logs so far. */
static long delivery_failed_lines(void)
{
    char out[32];

    it_sh_line(out, sizeof(out), "cat %s/logs/gw1.log %s/logs/gw2.log | grep -c 'delivery failed'",
               it_env("CHAT_TEST_DIR"), it_env("CHAT_TEST_DIR"));
    return atol(out);
}

/* Three users send at a steady pace over both gateways while the broker is stopped (SIGTERM)
 * for 10 s and started again: every send is answered while it is down (never acknowledged,
 * never lost without an answer), acks resume within 2 s of its return, and every acknowledged
 * message is delivered once and stored once. */
static void test_broker_stopped_10s(void **state)
{
    static const char *const tags[NSTREAMS] = {"kstop_a", "kstop_b", "kstop_c"};
    const char *tx[NSTREAMS] = {it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW2_URL"),
                                it_env("CHAT_TEST_GW1_URL")};
    const char *rx[NSTREAMS] = {it_env("CHAT_TEST_GW2_URL"), it_env("CHAT_TEST_GW1_URL"),
                                it_env("CHAT_TEST_GW1_URL")};
    struct it_stream st[NSTREAMS];
    int first[NSTREAMS], delivered[NSTREAMS], sent_down = 0;
    long lines0, lines, lines_max;
    int64_t t0, t_stop;
    struct it_client cl;
    char name[32];
    struct wsc *victim;
    json_t *sess, *out;

    (void)state;
    if (strcmp(it_env("CHAT_TEST_KAFKA_IMPL"), "broker") != 0) {
        print_message("skipped: the cluster runs the mock (CHAT_CLUSTER_KAFKA=mock)\n");
        skip();
    }
    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_open(&st[i], tags[i], tx[i], rx[i]);
        it_stream_send_acked(&st[i], 5);
        first[i] = st[i].n;
    }
    /* a session with an open socket on gw2, to be logged out while the broker is down */
    it_client_new(&cl, "192.0.2");
    it_name_new(name, sizeof(name), "Outbox");
    sess = it_register(API1, &cl, name, "outbox-pass1", NULL);
    victim = it_connect(GW2, it_access(sess));
    lines0 = delivery_failed_lines();
    assert_int_equal(it_fixture("stop", "kafka"), 0);
    t0 = t_stop = it_now_ms();
    /* PostgreSQL commits the logout and its event; the event waits in chat-api's outbox */
    out = it_api_ok(200, API2, "POST", "/api/v1/auth/logout", it_access(sess), &cl, json_object());
    assert_int_equal(json_integer_value(json_object_get(out, "revoked_sessions")), 1);
    json_decref(out);
    while (it_now_ms() - t0 < 10000) { /* a steady stream, by the clock: 3 sends per 200 ms */
        for (int i = 0; i < NSTREAMS; i++) {
            if (st[i].n - first[i] < 40) {
                it_stream_send(&st[i]);
                sent_down++;
            }
            it_stream_pump(&st[i], 60);
        }
    }
    for (int i = 0; i < NSTREAMS; i++) /* answered while the broker is still down */
        it_stream_answer_all(&st[i], it_timeout(20000));
    for (int i = 0; i < NSTREAMS; i++)
        for (int k = first[i]; k < st[i].n; k++)
            if (st[i].out[k] == IT_ACKED)
                fail_msg("stream %d: send %d acknowledged with the broker stopped", i, k);
    /* the outage is logged, not one line per failed send: a line per gateway per 10 s */
    lines = delivery_failed_lines() - lines0;
    lines_max = 2 * ((it_now_ms() - t_stop) / 10000 + 2);
    print_message("stopped 10 s: %ld 'delivery failed' lines for %d refused sends\n", lines,
                  sent_down);
    if (lines > lines_max)
        fail_msg("%ld 'delivery failed' lines during the outage, more than %ld", lines, lines_max);
    assert_true(sent_down > lines_max); /* one line per send would have failed the check */
    assert_int_equal(it_fixture("start", "kafka"), 0);
    t0 = it_now_ms();
    for (int i = 0; i < NSTREAMS; i++) /* chat flows again on all three */
        send_until_acked(&st[i], t0);
    print_message("stopped 10 s: %d sends answered while down\n", sent_down);
    expect_back_within_2s(t0, "stopped 10 s, all three streams");
    /* the logout made during the outage reaches the socket now (the relay retries: at most a
     * produce timeout plus a poll interval after the broker is back) */
    it_expect_revoked(victim, "logout", it_timeout(15000),
                      "the socket of a session logged out "
                      "while Kafka was down");
    print_message("stopped 10 s: the logout made while down reached its socket %lld ms after the "
                  "broker was ready\n",
                  (long long)(it_now_ms() - t0));
    wsc_close(victim);
    json_decref(sess);
    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_send_acked(&st[i], 5);
        delivered[i] = it_stream_deliver_all(&st[i], it_timeout(20000));
        for (int k = 0; k < st[i].n; k++)
            if (st[i].out[k] == IT_REFUSED && strcmp(st[i].code[k], "unavailable") == 0 &&
                st[i].seen[k])
                fail_msg("stream %d: message %d refused as unavailable, yet delivered", i, k);
    }
    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_check_stored(&st[i], delivered[i], it_timeout(30000));
        it_stream_close(&st[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topics_created_and_checked),
        cmocka_unit_test(test_broker_hang_and_restart),
        cmocka_unit_test(test_broker_stopped_10s),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
