/* it_idem.c - idempotent sends by client_msg_id (proto/README.md section 4, "Deduplication")
 * and the read frame, on the real cluster:
 *
 * - a send acknowledged on gw1, then the same send (same user, same client_msg_id) on gw2 and
 *   through REST on both chat-api replicas: every answer is the first ack (same id, seq, ts), a
 *   watcher gets exactly one message event (a later marker message proves no second one came)
 *   and PostgreSQL holds exactly one row;
 * - a REST send first, then the WebSocket retry; the same client_msg_id for another room:
 *   bad_field (WebSocket and REST);
 * - a retry while the first send waits for Kafka (the broker paused): in_flight with retry_ms
 *   (WebSocket) and 409 with Retry-After (REST); after the broker is back the first send is
 *   acked and a retry gets that ack;
 * - the read frame: no reply, a `read` record on chat.events (read with kcat), the decoder's and
 *   the dispatcher's errors, and the persister storing it as the member's last_read_seq;
 * - Redis stopped: sends with client_msg_id are still acked (without dedupe, counted in
 *   chat_gateway_idem_skipped_total); the cluster is back in Redis at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "chat/keys.h"

#include "it_acct.h"
#include "it_stream.h"
#include "it_user.h"
#include "it_util.h"

static char user[48];
static char *token;

/* A room of this run: "idem-<pid>-<tag>". */
static void room_name(char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "idem-%d-%s", (int)getpid(), tag);
}

static void cmid_name(char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "c-%d-%s", (int)getpid(), tag);
}

struct ack {
    char id[32];
    long long seq, ts;
};

/* Reads the ack of r (an ack frame or REST body); fails unless it is one for cmid. */
static void ack_of(json_t *r, const char *cmid, struct ack *a)
{
    assert_non_null(r);
    if (strcmp(it_jstr(r, "type"), "ack") != 0)
        fail_msg("%s: expected an ack, got %s %s", cmid, it_jstr(r, "type"),
                 json_string_value(json_object_get(r, "code")));
    assert_string_equal(it_jstr(r, "client_msg_id"), cmid);
    snprintf(a->id, sizeof(a->id), "%s", it_jstr(r, "id"));
    a->seq = it_jint(r, "seq");
    a->ts = it_jint(r, "ts");
}

static void ack_same(const struct ack *a, const struct ack *b, const char *what)
{
    if (strcmp(a->id, b->id) != 0 || a->seq != b->seq || a->ts != b->ts)
        fail_msg("%s: ack id %s seq %lld ts %lld, the first was id %s seq %lld ts %lld", what,
                 b->id, b->seq, b->ts, a->id, a->seq, a->ts);
}

/* WebSocket send of (room, cmid) with ref; returns the ack or error frame. */
static json_t *ws_send(struct wsc *c, const char *room, const char *cmid, const char *ref)
{
    json_t *r;

    it_send(c, "{s:s, s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "idem text",
            "client_msg_id", cmid, "ref", ref);
    r = it_reply_to(c, cmid, NULL);
    assert_string_equal(it_jstr(r, "ref"), ref);
    return r;
}

/* REST send of (room, cmid) on base; returns the status, *out the body (json_decref). */
static int rest_send(const char *base, const char *room, const char *cmid, json_t **out, int *ra)
{
    char path[160], *body = NULL, *req;
    json_t *j = json_pack("{s:s, s:s}", "text", "idem text", "client_msg_id", cmid);
    int st;

    req = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    snprintf(path, sizeof(path), "/api/v1/rooms/%s/messages", room);
    st = it_http("POST", base, path, token, req, NULL, &body, ra);
    free(req);
    *out = body ? json_loads(body, 0, NULL) : NULL;
    free(body);
    return st;
}

/* ws_send() that must be acked: the ack into *a. */
static void
ws_acked(struct wsc *c, const char *room, const char *cmid, const char *ref, struct ack *a)
{
    json_t *r = ws_send(c, room, cmid, ref);

    ack_of(r, cmid, a);
    json_decref(r);
}

/* rest_send() through base that must be acked (200): the ack into *a. */
static void rest_acked(const char *base, const char *room, const char *cmid, struct ack *a)
{
    json_t *r;
    int ra;

    assert_int_equal(rest_send(base, room, cmid, &r, &ra), 200);
    ack_of(r, cmid, a);
    json_decref(r);
}

/* Waits until the persister stored the marker, then: exactly one row of cmid. */
static void check_one_row(const char *cmid, const char *marker)
{
    PGconn *pg = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));
    const char *q = "SELECT count(*) FROM messages WHERE client_msg_id = $1";
    long long t0 = it_mono_ms();

    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    while (it_pg_count(pg, q, marker) < 1) {
        if (it_mono_ms() - t0 > it_timeout(20000))
            fail_msg("the marker %s was not stored", marker);
        usleep(100 * 1000); /* polling the database for a condition */
    }
    assert_int_equal(it_pg_count(pg, q, cmid), 1);
    PQfinish(pg);
}

/* Reads w until the message marker: exactly one message event of cmid came before it. */
static void check_one_delivery(struct wsc *w, const char *cmid, const char *marker)
{
    long long deadline = it_mono_ms() + it_timeout(10000);
    int seen = 0;

    for (;;) {
        long long left = deadline - it_mono_ms();
        char *text;
        const char *t, *id;
        json_t *j;

        if (left <= 0 || wsc_recv_text(w, &text, (int)left, NULL) <= 0)
            fail_msg("the marker %s did not arrive", marker);
        j = json_loads(text, 0, NULL);
        wsc_free_text(text);
        assert_non_null(j);
        t = json_string_value(json_object_get(j, "type"));
        id = json_string_value(json_object_get(j, "client_msg_id"));
        if (t && strcmp(t, "message") == 0 && id && strcmp(id, cmid) == 0)
            seen++;
        if (t && strcmp(t, "message") == 0 && id && strcmp(id, marker) == 0) {
            json_decref(j);
            break;
        }
        json_decref(j);
    }
    assert_int_equal(seen, 1);
}

static void redis_get(char *out, size_t cap, const char *cmid)
{
    char key[256];

    snprintf(key, sizeof(key), "chat:idem:%s:%s", user, cmid);
    it_sh_line(out, cap, "redis-cli -h 127.0.0.1 -p %s GET '%s' 2>/dev/null",
               it_env("CHAT_TEST_REDIS_PORT"), key);
}

/* Waits until the key of cmid holds the ack with id: the gateway writes it to Redis when Kafka
 * acknowledged, in the same turn of its loop as the ack frame, but on another socket. */
static void wait_remembered(const char *cmid, const char *id)
{
    char v[256];
    long long t0 = it_mono_ms();

    for (redis_get(v, sizeof(v), cmid); !strstr(v, id); redis_get(v, sizeof(v), cmid)) {
        if (it_mono_ms() - t0 > it_timeout(5000))
            fail_msg("Redis holds \"%s\" for %s, not its ack", v, cmid);
        usleep(20 * 1000); /* polling Redis for a condition */
    }
}

/* ---- tests ---- */

static void test_idem_ws_then_ws_and_rest(void **state)
{
    char room[64], cmid[64], marker[64];
    struct wsc *a, *b, *w;
    struct ack first, again;
    json_t *r;
    int ra;

    (void)state;
    room_name(room, sizeof(room), "one");
    cmid_name(cmid, sizeof(cmid), "one");
    cmid_name(marker, sizeof(marker), "one-marker");
    a = it_connect(it_env("CHAT_TEST_GW1_URL"), token);
    b = it_connect(it_env("CHAT_TEST_GW2_URL"), token);
    w = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    it_join(a, room);
    it_join(b, room);
    it_join(w, room);

    ws_acked(a, room, cmid, "a1", &first);
    wait_remembered(cmid, first.id);
    ws_acked(b, room, cmid, "b1", &again); /* another gateway, another connection, same user */
    ack_same(&first, &again, "retry on gw2");
    ws_acked(a, room, cmid, "a2", &again); /* the same connection again */
    ack_same(&first, &again, "retry on gw1");
    rest_acked(it_env("CHAT_TEST_API1_URL"), room, cmid, &again);
    ack_same(&first, &again, "retry through REST (api1)");
    rest_acked(it_env("CHAT_TEST_API2_URL"), room, cmid, &again);
    ack_same(&first, &again, "retry through REST (api2)");

    it_expect_sent(a, room, "marker", marker, NULL);
    check_one_delivery(w, cmid, marker);
    check_one_row(cmid, marker);
    wsc_close(a);
    wsc_close(b);
    wsc_close(w);
}

static void test_idem_rest_then_ws(void **state)
{
    char room[64], cmid[64], marker[64];
    struct wsc *a, *w;
    struct ack first, again;
    json_t *r;
    int ra;

    (void)state;
    room_name(room, sizeof(room), "rest");
    cmid_name(cmid, sizeof(cmid), "rest");
    cmid_name(marker, sizeof(marker), "rest-marker");
    a = it_connect(it_env("CHAT_TEST_GW1_URL"), token);
    w = it_connect(it_env("CHAT_TEST_GW1_URL"), NULL);
    it_join(a, room);
    it_join(w, room);
    rest_acked(it_env("CHAT_TEST_API2_URL"), room, cmid, &first);
    ws_acked(a, room, cmid, "a1", &again);
    ack_same(&first, &again, "WebSocket retry of a REST send");
    it_expect_sent(a, room, "marker", marker, NULL);
    check_one_delivery(w, cmid, marker);
    check_one_row(cmid, marker);
    wsc_close(a);
    wsc_close(w);
}

static void test_idem_other_room(void **state)
{
    char room[64], other[64], cmid[64];
    struct wsc *a;
    struct ack first;
    json_t *r;
    int ra;

    (void)state;
    room_name(room, sizeof(room), "r1");
    room_name(other, sizeof(other), "r2");
    cmid_name(cmid, sizeof(cmid), "other");
    a = it_connect(it_env("CHAT_TEST_GW2_URL"), token);
    it_join(a, room);
    it_join(a, other);
    ws_acked(a, room, cmid, "a1", &first);
    wait_remembered(cmid, first.id);
    r = ws_send(a, other, cmid, "a2");
    assert_string_equal(it_jstr(r, "type"), "error");
    assert_string_equal(it_jstr(r, "code"), "bad_field");
    assert_non_null(strstr(it_jstr(r, "message"), "another room"));
    json_decref(r);
    assert_int_equal(rest_send(it_env("CHAT_TEST_API1_URL"), other, cmid, &r, &ra), 400);
    assert_string_equal(it_jstr(r, "error.code"), "bad_field");
    json_decref(r);
    assert_true(it_ping(a));
    wsc_close(a);
}

/* The first send waits for Kafka (the broker is stopped with SIGSTOP): a retry is in_flight. */
static void test_idem_in_flight(void **state)
{
    char room[64], cmid[64], v[256];
    struct wsc *a, *b;
    struct ack first, again;
    long long t0;
    json_t *r;
    int ra = -1;

    (void)state;
    room_name(room, sizeof(room), "flight");
    cmid_name(cmid, sizeof(cmid), "flight");
    a = it_connect(it_env("CHAT_TEST_GW1_URL"), token);
    b = it_connect(it_env("CHAT_TEST_GW2_URL"), token);
    it_join(a, room);
    it_join(b, room);
    assert_int_equal(it_fixture("pause", "kafka"), 0);
    it_send(a, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "waits",
            "client_msg_id", cmid);
    t0 = it_mono_ms(); /* the first send's claim is in Redis before the retry goes out */
    for (redis_get(v, sizeof(v), cmid); strcmp(v, "p") != 0; redis_get(v, sizeof(v), cmid)) {
        if (it_mono_ms() - t0 > it_timeout(5000)) {
            (void)it_fixture("resume", "kafka");
            fail_msg("the first send's key holds \"%s\", not \"p\"", v);
        }
        usleep(20 * 1000); /* polling Redis for a condition */
    }
    r = ws_send(b, room, cmid, "b1");
    assert_string_equal(it_jstr(r, "type"), "error");
    assert_string_equal(it_jstr(r, "code"), "in_flight");
    assert_true(it_jint(r, "retry_ms") > 0 && it_jint(r, "retry_ms") <= 500);
    json_decref(r);
    assert_int_equal(rest_send(it_env("CHAT_TEST_API2_URL"), room, cmid, &r, &ra), 409);
    assert_string_equal(it_jstr(r, "error.code"), "in_flight");
    assert_true(ra >= 1);
    json_decref(r);
    assert_int_equal(it_fixture("resume", "kafka"), 0);
    r = it_reply_to(a, cmid, NULL); /* within the produce timeout */
    ack_of(r, cmid, &first);
    json_decref(r);
    wait_remembered(cmid, first.id);
    ws_acked(b, room, cmid, "b2", &again);
    ack_same(&first, &again, "retry after the broker came back");
    wsc_close(a);
    wsc_close(b);
}

/* Finds a read record of (user, room, seq) on chat.events (kcat reads the topic's start to end). */
static bool read_record_on_kafka(const char *room, long long seq)
{
    char out[16], want[160];

    snprintf(want, sizeof(want), "\"room\":\"%s\",\"seq\":%lld", room, seq);
    it_sh_line(out, sizeof(out),
               "kcat -b 127.0.0.1:%s -C -t chat.events -o beginning -e -q -f '%%k %%s\\n' "
               "2>/dev/null | grep -F '\"type\":\"read\"' | grep -F '%s' | grep -c '^%s '",
               it_env("CHAT_TEST_KAFKA_PORT"), want, user);
    return atoi(out) > 0;
}

static void test_read_frame(void **state)
{
    char room[64], cmid[64], other[64];
    struct wsc *a, *anon;
    struct ack first;
    long long t0;
    json_t *r;

    (void)state;
    room_name(room, sizeof(room), "read");
    room_name(other, sizeof(other), "read-not-joined");
    cmid_name(cmid, sizeof(cmid), "read");
    a = it_connect(it_env("CHAT_TEST_GW1_URL"), token);
    it_join(a, room);
    ws_acked(a, room, cmid, "a1", &first);
    /* no reply: the pong of the next ping is the next frame, with no error before it */
    it_send(a, "{s:s, s:s, s:I}", "type", "read", "room", room, "seq", (json_int_t)first.seq);
    it_send(a, "{s:s, s:s}", "type", "ping", "ref", "after-read");
    r = it_wait_frame(a, "pong", "ref", "after-read", "error", it_timeout(10000));
    assert_non_null(r);
    json_decref(r);
    t0 = it_mono_ms();
    while (!read_record_on_kafka(room, first.seq)) {
        if (it_mono_ms() - t0 > it_timeout(15000))
            fail_msg("no read record of %s in %s on chat.events", user, room);
        usleep(200 * 1000); /* polling the topic for a condition */
    }
    /* errors: the decoder's, the dispatcher's */
    it_send(a, "{s:s, s:s, s:I, s:s}", "type", "read", "room", room, "seq", (json_int_t)-1, "ref",
            "neg");
    r = it_wait_frame(a, "error", "ref", "neg", NULL, it_timeout(10000));
    assert_string_equal(it_jstr(r, "code"), "bad_field");
    json_decref(r);
    it_send(a, "{s:s, s:s, s:I, s:s}", "type", "read", "room", other, "seq", (json_int_t)1, "ref",
            "nj");
    r = it_wait_frame(a, "error", "ref", "nj", NULL, it_timeout(10000));
    assert_string_equal(it_jstr(r, "code"), "not_joined");
    json_decref(r);
    anon = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    it_join(anon, room);
    it_send(anon, "{s:s, s:s, s:I, s:s}", "type", "read", "room", room, "seq", (json_int_t)1, "ref",
            "anon");
    r = it_wait_frame(anon, "error", "ref", "anon", NULL, it_timeout(10000));
    assert_string_equal(it_jstr(r, "code"), "auth_required");
    json_decref(r);
    wsc_close(anon);
    wsc_close(a);
}

static void pg_ok(PGconn *pg, const char *sql, const char *a, const char *b)
{
    const char *params[2] = {a, b};
    PGresult *r = PQexecParams(pg, sql, b ? 2 : 1, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
}

/* The persister applies the read record: the member's last_read_seq (an account's room, whose
 * rows the test writes itself). */
static void test_read_stored(void **state)
{
    const char *q = "SELECT last_read_seq FROM room_members WHERE room_id = $1 AND user_id = $2";
    char name[24], room[64], cmid[64], seq[24], got[24] = "";
    PGconn *pg = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));
    struct it_client cl;
    struct ack first;
    struct wsc *a;
    json_t *s, *r;
    long long t0;

    (void)state;
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    it_client_new(&cl, "198.51.100");
    it_name_new(name, sizeof(name), "idrd");
    s = it_register(API1, &cl, name, PW, NULL);
    room_name(room, sizeof(room), "stored");
    cmid_name(cmid, sizeof(cmid), "stored");
    pg_ok(pg, "INSERT INTO rooms (id, kind, name, max_text) VALUES ($1, 'public', $1, 2000)", room,
          NULL);
    pg_ok(pg, "INSERT INTO room_members (room_id, user_id, role) VALUES ($1, $2::bigint, 'member')",
          room, it_jstr(s, "user.id"));
    a = it_connect(GW2, it_access(s));
    it_join(a, room);
    ws_acked(a, room, cmid, "s1", &first);
    snprintf(seq, sizeof(seq), "%lld", first.seq);
    it_send(a, "{s:s, s:s, s:I}", "type", "read", "room", room, "seq", (json_int_t)first.seq);
    t0 = it_mono_ms();
    for (;;) {
        const char *params[2] = {room, it_jstr(s, "user.id")};
        PGresult *res = PQexecParams(pg, q, 2, NULL, params, NULL, NULL, 0);

        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            snprintf(got, sizeof(got), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        if (strcmp(got, seq) == 0)
            break;
        if (it_mono_ms() - t0 > it_timeout(20000))
            fail_msg("last_read_seq is %s, not %s", got, seq);
        usleep(100 * 1000); /* polling the database for a condition */
    }
    json_decref(s);
    wsc_close(a);
    PQfinish(pg);
}

/* The gateway's chat_gateway_idem_skipped_total. */
static long long skipped_metric(const char *gw_url)
{
    long long n = it_metric(gw_url, "chat_gateway_idem_skipped_total");

    assert_true(n >= 0); /* the gateway answered and has the counter */
    return n;
}

static bool nodes_back(void)
{
    char line[16];

    it_sh_line(line, sizeof(line),
               "redis-cli -h 127.0.0.1 -p %s ZRANGE %s 0 -1 2>/dev/null | grep -c '^gw[12]$'",
               it_env("CHAT_TEST_REDIS_PORT"), CHAT_KEY_PRES_NODES);
    return atoi(line) == 2;
}

static void test_idem_redis_stopped(void **state)
{
    char room[64], cmid[64], tag[16];
    struct wsc *a;
    struct ack first, again;
    long long before, t0;
    json_t *r;
    int ra;

    (void)state;
    room_name(room, sizeof(room), "noredis");
    a = it_connect(it_env("CHAT_TEST_GW1_URL"), token);
    it_join(a, room);
    before = skipped_metric(it_env("CHAT_TEST_GW1_URL"));
    assert_true(before >= 0);
    assert_int_equal(it_fixture("stop", "redis"), 0);
    for (int i = 0; i < 5; i++) { /* never refused for Redis: acked, each once */
        snprintf(tag, sizeof(tag), "nr%d", i);
        cmid_name(cmid, sizeof(cmid), tag);
        ws_acked(a, room, cmid, "a", &first);
    }
    cmid_name(cmid, sizeof(cmid), "nr-rest");
    rest_acked(it_env("CHAT_TEST_API1_URL"), room, cmid, &first);
    assert_true(skipped_metric(it_env("CHAT_TEST_GW1_URL")) >= before + 5);
    assert_int_equal(it_fixture("start", "redis"), 0);
    t0 = it_mono_ms();
    while (!nodes_back()) {
        if (it_mono_ms() - t0 > it_timeout(10000))
            fail_msg("the gateways are not back in Redis");
        usleep(100 * 1000); /* polling Redis for a condition */
    }
    /* deduplicated again once Redis is back */
    cmid_name(cmid, sizeof(cmid), "back");
    ws_acked(a, room, cmid, "a1", &first);
    wait_remembered(cmid, first.id);
    ws_acked(a, room, cmid, "a2", &again);
    ack_same(&first, &again, "retry after Redis came back");
    wsc_close(a);
}

/* A failed check while the broker is paused must not leave the shared cluster without it. */
static int resume_kafka(void **state)
{
    (void)state;
    (void)it_fixture("resume", "kafka"); /* harmless when it runs already */
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idem_ws_then_ws_and_rest),
        cmocka_unit_test(test_idem_rest_then_ws),
        cmocka_unit_test(test_idem_other_room),
        cmocka_unit_test_teardown(test_idem_in_flight, resume_kafka),
        cmocka_unit_test(test_read_frame),
        cmocka_unit_test(test_read_stored),
        cmocka_unit_test(test_idem_redis_stopped),
    };
    int rc;

    it_env_load();
    snprintf(user, sizeof(user), "idem%d", (int)getpid());
    token = it_token(user, 600);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(token);
    return rc;
}
