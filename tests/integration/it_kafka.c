/* it_kafka.c - the real Kafka broker under faults (tests/integration/fixtures/cluster.sh):
 *
 * 1. hang: the broker is paused (SIGSTOP) while a user sends; nothing is acknowledged while it
 *    hangs, every send is answered once it runs again (SIGCONT);
 * 2. outage: the broker is killed (SIGKILL) while a user sends; every send is answered
 *    (`unavailable`), and once it is started again on the same log dir chat flows again;
 * and through both: every acknowledged message reaches the other user (on the other gateway)
 * exactly once, is stored once in PostgreSQL, and is still in the broker's log after the
 * restart (read back with kcat from the beginning of the topic). */
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
#include <libpq-fe.h>

#include "it_util.h"

#define MAX_MSGS 256

enum outcome { PENDING, ACKED, REFUSED };

/* One user sending on gw1 and one reading on gw2, in one room. */
struct stream {
    struct wsc *tx, *rx;
    char room[64];
    int n;                      /* sends so far */
    enum outcome out[MAX_MSGS]; /* by send number */
    int seen[MAX_MSGS];         /* deliveries to rx by send number */
    char code[MAX_MSGS][32];    /* error code of a refused send */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fixture(const char *verb, const char *svc)
{
    return it_sh("%s/fixtures/cluster.sh %s %s %s", IT_SRC_DIR, verb, svc, it_env("CHAT_TEST_DIR"));
}

/* The send number in "m-<run>-<n>" (client_msg_id and text alike); -1 when not ours. */
static int msg_no(const char *s)
{
    const char *dash = s ? strrchr(s, '-') : NULL;
    long v;

    if (!dash || strncmp(s, "m-", 2) != 0)
        return -1;
    v = strtol(dash + 1, NULL, 10);
    return v >= 0 && v < MAX_MSGS ? (int)v : -1;
}

static void send_one(struct stream *st)
{
    char id[48];

    assert_true(st->n < MAX_MSGS);
    snprintf(id, sizeof(id), "m-%d-%d", (int)getpid(), st->n);
    it_send(st->tx, "{s:s, s:s, s:s, s:s}", "type", "send", "room", st->room, "text", id,
            "client_msg_id", id);
    st->out[st->n++] = PENDING;
}

/* Reads one frame of tx (acks, errors) within timeout_ms; false when none came. */
static bool pump_tx(struct stream *st, int timeout_ms)
{
    char *txt = NULL;
    json_t *j;
    const char *type;
    int k;

    if (wsc_recv_text(st->tx, &txt, timeout_ms, NULL) != 1)
        return false;
    j = json_loads(txt, 0, NULL);
    wsc_free_text(txt);
    assert_non_null(j);
    type = json_string_value(json_object_get(j, "type"));
    k = msg_no(json_string_value(json_object_get(j, "client_msg_id")));
    if (type && k >= 0 && strcmp(type, "ack") == 0) {
        assert_int_equal(st->out[k], PENDING); /* answered once */
        st->out[k] = ACKED;
    } else if (type && k >= 0 && strcmp(type, "error") == 0) {
        assert_int_equal(st->out[k], PENDING);
        st->out[k] = REFUSED;
        const char *code = json_string_value(json_object_get(j, "code"));
        snprintf(st->code[k], sizeof(st->code[k]), "%s", code ? code : "(none)");
    }
    json_decref(j);
    return true;
}

static int pending(const struct stream *st)
{
    int p = 0;

    for (int i = 0; i < st->n; i++)
        p += st->out[i] == PENDING;
    return p;
}

/* Waits until every send is answered; fails after timeout_ms. */
static void answer_all(struct stream *st, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;

    while (pending(st) > 0) {
        if (now_ms() > deadline)
            fail_msg("%d of %d sends unanswered after %d ms", pending(st), st->n, timeout_ms);
        pump_tx(st, 200);
    }
}

/* Reads rx until every acknowledged message arrived (each counted); fails after timeout_ms. */
static void deliver_all(struct stream *st, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;

    for (;;) {
        char *txt = NULL;
        int missing = 0;

        for (int i = 0; i < st->n; i++)
            missing += st->out[i] == ACKED && st->seen[i] == 0;
        if (missing == 0)
            return;
        if (now_ms() > deadline)
            fail_msg("%d acknowledged messages not delivered after %d ms", missing, timeout_ms);
        if (wsc_recv_text(st->rx, &txt, 200, NULL) == 1) {
            json_t *j = json_loads(txt, 0, NULL);
            const char *type = json_string_value(json_object_get(j, "type"));

            if (type && strcmp(type, "message") == 0) {
                int k = msg_no(json_string_value(json_object_get(j, "text")));
                if (k >= 0)
                    st->seen[k]++;
            }
            json_decref(j);
            wsc_free_text(txt);
        }
    }
}

static void send_acked(struct stream *st, int count)
{
    for (int i = 0; i < count; i++)
        send_one(st);
    answer_all(st, it_timeout(15000));
    for (int i = st->n - count; i < st->n; i++)
        if (st->out[i] != ACKED)
            fail_msg("send %d refused (%s) with the broker up", i, st->code[i]);
}

static long long pg_count(const char *sql, const char *arg)
{
    PGconn *pg = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));
    const char *params[1] = {arg};
    long long n = -1;
    PGresult *r;

    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    r = PQexecParams(pg, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(pg);
    return n;
}

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

static void test_broker_hang_and_restart(void **state)
{
    struct stream st;
    char *ta = it_token("kafka_tx", 600), *tb = it_token("kafka_rx", 600);
    int acked = 0, refused = 0, delivered = 0, hang_first, kill_first;
    int64_t t0, back_ms;
    long long rows;

    (void)state;
    if (strcmp(it_env("CHAT_TEST_KAFKA_IMPL"), "broker") != 0) {
        print_message("skipped: the cluster runs the mock (CHAT_CLUSTER_KAFKA=mock)\n");
        free(ta);
        free(tb);
        skip();
    }
    memset(&st, 0, sizeof(st));
    snprintf(st.room, sizeof(st.room), "kafka-%d", (int)getpid());
    st.tx = it_connect(it_env("CHAT_TEST_GW1_URL"), ta);
    st.rx = it_connect(it_env("CHAT_TEST_GW2_URL"), tb);
    it_join(st.tx, st.room);
    it_join(st.rx, st.room);
    send_acked(&st, 10);

    /* 1. hang: nothing is acknowledged while the broker is stopped; all answered after */
    assert_int_equal(fixture("pause", "kafka"), 0);
    hang_first = st.n;
    for (int i = 0; i < 5; i++)
        send_one(&st);
    t0 = now_ms();
    while (now_ms() - t0 < 1500) /* a bounded check of absence: no ack from a stopped broker */
        if (pump_tx(&st, 100))
            for (int i = hang_first; i < st.n; i++)
                if (st.out[i] == ACKED)
                    fail_msg("send %d acknowledged while the broker was stopped", i);
    assert_int_equal(fixture("resume", "kafka"), 0);
    answer_all(&st, it_timeout(15000));

    /* 2. outage: killed, every send answered unavailable; restarted on the same log dir */
    assert_int_equal(fixture("kill", "kafka"), 0);
    kill_first = st.n;
    for (int i = 0; i < 5; i++)
        send_one(&st);
    answer_all(&st, it_timeout(20000));
    for (int i = st.n - 5; i < st.n; i++) {
        if (st.out[i] != REFUSED)
            fail_msg("send %d acknowledged with the broker dead", i);
        assert_string_equal(st.code[i], "unavailable");
    }
    assert_int_equal(fixture("start", "kafka"), 0);
    t0 = now_ms();
    for (;;) { /* chat flows again: a send is acknowledged */
        send_one(&st);
        answer_all(&st, it_timeout(20000));
        if (st.out[st.n - 1] == ACKED)
            break;
        if (now_ms() - t0 > it_timeout(30000))
            fail_msg("no send acknowledged within 30 s of the broker's restart");
    }
    back_ms = now_ms() - t0;
    print_message("first ack %lld ms after the restarted broker was ready\n", (long long)back_ms);
    send_acked(&st, 10);

    /* every acknowledged message delivered exactly once, stored once, still in the log */
    deliver_all(&st, it_timeout(20000));
    for (int i = 0; i < st.n; i++) {
        acked += st.out[i] == ACKED;
        refused += st.out[i] == REFUSED;
        if (st.seen[i] > 1)
            fail_msg("message %d delivered %d times", i, st.seen[i]);
        if (st.out[i] == REFUSED && st.seen[i] && i >= kill_first && i < kill_first + 5)
            fail_msg("message %d refused by a gateway with the broker dead, yet delivered", i);
    }
    print_message("%d sends: %d acknowledged, %d refused\n", st.n, acked, refused);
    /* a send refused while the broker hung or restarted may have been stored after all (its
     * fate is unknown to the gateway): PostgreSQL and the log hold what was delivered, and that
     * covers every ack */
    for (int i = 0; i < st.n; i++)
        delivered += st.seen[i] > 0;
    t0 = now_ms();
    do {
        rows = pg_count("SELECT count(*) FROM messages WHERE room = $1", st.room);
        if (rows >= delivered)
            break;
        usleep(100 * 1000); /* polling the database for a condition */
    } while (now_ms() - t0 < it_timeout(30000));
    assert_int_equal(rows, delivered);
    assert_int_equal(
        pg_count("SELECT count(DISTINCT client_msg_id) FROM messages WHERE room = $1", st.room),
        delivered);
    assert_int_equal(kafka_records(st.room), delivered);
    wsc_close(st.tx);
    wsc_close(st.rx);
    free(ta);
    free(tb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_hang_and_restart),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
