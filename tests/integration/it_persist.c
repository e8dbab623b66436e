/* it_persist.c - messages land in PostgreSQL in the partition of their UTC day with every column
 * as sent (tab, newline and backslash included), the next 7 days' partitions exist, and killing
 * the persister (SIGKILL) in the middle of 10,000 messages leaves exactly 10,000 rows: no loss,
 * no duplicates. A burst of many batches (written while the next ones are decoded) is stored
 * once and its offsets are all committed by a clean stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "it_stream.h"
#include "it_user.h"
#include "it_util.h"

#define STREAM_N    10000
#define KILL_AT     3000
#define WINDOW      200 /* sends in flight: echoes + acks must fit the send queue (1024 in tests) */
#define BURST_N     30000 /* records produced at once: several batches of CHAT_BATCH_MAX (5000) */
#define BURST_ROOMS 50

static PGconn *pg;

/* Polls until the room holds want rows (or the deadline); returns the last count. */
static long long wait_rows(const char *room, long long want, int timeout_ms)
{
    struct timespec t0, t1;
    long long n = -1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        n = it_pg_count(pg, "SELECT count(*) FROM messages WHERE room = $1", room);
        if (n >= want)
            return n;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
            return n;
        usleep(50 * 1000); /* polling a database for a condition, not waiting for readiness */
    }
}

static void day_name(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "messages_%Y%m%d", &tm);
}

static void test_message_in_its_day_partition(void **state)
{
    (void)state;
    char room[64], *tok = it_token("pguser", 600), part[64];
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW1_URL"), tok);
    const char *id;
    json_t *ack;

    snprintf(room, sizeof(room), "pg-%d", (int)getpid());
    it_join(c, room);
    it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text",
            "O'Reilly; DROP TABLE messages; -- \xf0\x9f\x98\x80", "client_msg_id", "p1");
    ack = it_wait_field(c, "ack", "client_msg_id", "p1", it_timeout(10000));
    assert_non_null(ack);
    id = json_string_value(json_object_get(ack, "id"));
    assert_int_equal(wait_rows(room, 1, it_timeout(20000)), 1);

    const char *params[1] = {id};
    PGresult *r = PQexecParams(pg,
                               "SELECT tableoid::regclass::text, body, user_id, kafka_offset, "
                               "(extract(epoch from created_at) * 1000)::bigint FROM messages "
                               "WHERE id = $1::bigint",
                               1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    long long ts = json_integer_value(json_object_get(ack, "ts"));
    day_name((time_t)(ts / 1000), part, sizeof(part));
    assert_string_equal(PQgetvalue(r, 0, 0), part);
    assert_string_equal(PQgetvalue(r, 0, 1), "O'Reilly; DROP TABLE messages; -- \xf0\x9f\x98\x80");
    assert_string_equal(PQgetvalue(r, 0, 2), "pguser");
    assert_int_equal(strtoll(PQgetvalue(r, 0, 3), NULL, 10),
                     json_integer_value(json_object_get(ack, "seq")));
    assert_int_equal(strtoll(PQgetvalue(r, 0, 4), NULL, 10), ts);
    PQclear(r);
    r = PQexecParams(pg,
                     "SELECT client_msg_id, kind, nick <> '' FROM messages WHERE id = $1::bigint",
                     1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "p1");
    assert_string_equal(PQgetvalue(r, 0, 1), "message");
    assert_string_equal(PQgetvalue(r, 0, 2), "t");
    PQclear(r);
    json_decref(ack);

    /* what COPY's text format would give a meaning to arrives as sent (tab, newline, backslash,
     * "\N") */
    it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "a\tb\nc\\d \\N \\.",
            "client_msg_id", "p2");
    ack = it_wait_field(c, "ack", "client_msg_id", "p2", it_timeout(10000));
    assert_non_null(ack);
    assert_int_equal(wait_rows(room, 2, it_timeout(20000)), 2);
    params[0] = json_string_value(json_object_get(ack, "id"));
    r = PQexecParams(pg, "SELECT body FROM messages WHERE id = $1::bigint", 1, NULL, params, NULL,
                     NULL, 0);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "a\tb\nc\\d \\N \\.");
    PQclear(r);

    /* the next 7 days' partitions exist */
    for (int d = 1; d <= 7; d++) {
        day_name((time_t)(ts / 1000) + d * 86400, part, sizeof(part));
        if (it_pg_count(pg, "SELECT count(*) FROM pg_class WHERE relname = $1", part) != 1)
            fail_msg("partition %s (day +%d) is missing", part, d);
    }
    json_decref(ack);
    wsc_close(c);
    free(tok);
}

static void test_persister_killed_mid_stream_exactly_once(void **state)
{
    (void)state;
    char room[64], *tok = it_token("streamer", 600);
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW2_URL"), tok);
    int sent = 0, acked = 0;
    bool killed = false;

    snprintf(room, sizeof(room), "stream-%d", (int)getpid());
    it_join(c, room);
    while (acked < STREAM_N) {
        while (sent < STREAM_N && sent - acked < WINDOW) {
            char id[16], text[32];
            snprintf(id, sizeof(id), "s%d", sent);
            snprintf(text, sizeof(text), "msg %d", sent);
            it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", text,
                    "client_msg_id", id);
            sent++;
        }
        json_t *j = it_wait_type(c, "ack", it_timeout(15000));
        if (!j)
            fail_msg("ack %d of %d missing", acked, STREAM_N);
        json_decref(j);
        acked++;
        if (!killed && acked == KILL_AT) {
            assert_int_equal(it_sh("%s/fixtures/cluster.sh kill persister %s", IT_SRC_DIR,
                                   it_env("CHAT_TEST_DIR")),
                             0);
            killed = true;
        }
        if (killed && acked == KILL_AT + 2000) /* in the background: the stream goes on while
                                                  the old Kafka session expires */
            assert_int_equal(it_sh("%s/fixtures/cluster.sh start persister %s "
                                   ">%s/logs/persister-restart.log 2>&1 &",
                                   IT_SRC_DIR, it_env("CHAT_TEST_DIR"), it_env("CHAT_TEST_DIR")),
                             0);
    }
    long long n = wait_rows(room, STREAM_N, it_timeout(60000));
    assert_int_equal(n, STREAM_N);
    assert_int_equal(
        it_pg_count(pg, "SELECT count(DISTINCT id) FROM messages WHERE room = $1", room), STREAM_N);
    assert_int_equal(
        it_pg_count(pg, "SELECT count(DISTINCT client_msg_id) FROM messages WHERE room = $1", room),
        STREAM_N);
    wsc_close(c);
    free(tok);
}

/* Reads a counter from the persister's /metrics; -1 when missing. */
static long long persister_metric(const char *name)
{
    return it_metric(it_env("CHAT_TEST_PERSISTER_URL"), name);
}

/* A message whose record is in Kafka twice is stored once: the batch's COPY fails on the unique
 * key and the idempotent INSERT path takes over, storing the batch's new row. The second copy sits
 * at another Kafka position, so it is counted as an id conflict, not as a replay (a re-read of the
 * same position, it_persister_fault's SIGKILL case, is the other way round). */
static void test_replayed_record_stored_once(void **state)
{
    (void)state;
    char room[64], id[32], *tok = it_token("replayer", 600);
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW1_URL"), tok);
    long long dups0, stored0, conflicts0;
    json_t *ack;

    snprintf(room, sizeof(room), "replay-%d", (int)getpid());
    it_join(c, room);
    it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "only once",
            "client_msg_id", "r1");
    ack = it_wait_field(c, "ack", "client_msg_id", "r1", it_timeout(10000));
    assert_non_null(ack);
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(ack, "id")));
    assert_int_equal(wait_rows(room, 1, it_timeout(20000)), 1);
    dups0 = persister_metric("chat_persister_duplicates_total");
    stored0 = persister_metric("chat_persister_messages_stored_total");
    conflicts0 = persister_metric("chat_persister_id_conflicts_total");
    assert_true(dups0 >= 0 && conflicts0 >= 0);
    /* the same event once more, straight into Kafka, plus a new one in the same batch window */
    assert_int_equal(
        it_sh(
            "printf "
            "'%s\\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"%s\",\"user\":\"replayer\","
            "\"nick\":\"replayer\",\"text\":\"only once\",\"ts\":%lld,\"client_msg_id\":\"r1\"}\\n"
            "%s\\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"%s9\",\"user\":\"replayer\","
            "\"nick\":\"replayer\",\"text\":\"new\",\"ts\":%lld}\\n' | "
            "kcat -P -b '%s' -t chat.messages -K '\\t'",
            room, room, id, (long long)json_integer_value(json_object_get(ack, "ts")), room, room,
            id, (long long)json_integer_value(json_object_get(ack, "ts")),
            it_env("CHAT_KAFKA_BROKERS")),
        0);
    assert_int_equal(wait_rows(room, 2, it_timeout(20000)), 2);
    /* the new row went in, the second copy was recognised, nothing is there twice */
    for (int i = 0;
         i < it_timeout(200) && persister_metric("chat_persister_id_conflicts_total") <= conflicts0;
         i++)
        usleep(50 * 1000);
    assert_int_equal(persister_metric("chat_persister_id_conflicts_total"), conflicts0 + 1);
    assert_int_equal(persister_metric("chat_persister_duplicates_total"), dups0);
    assert_true(persister_metric("chat_persister_messages_stored_total") >= stored0 + 1);
    assert_int_equal(it_pg_count(pg, "SELECT count(*) FROM messages WHERE room = $1", room), 2);
    json_decref(ack);
    wsc_close(c);
    free(tok);
}

/* Undecodable records (not a stream event; a ts past 9999-12-30; an id past 2^63-1) are counted,
 * skipped and committed: a message produced after them to the same partition (same key) is
 * stored, so they never block a partition, and a restarted persister does not trip on them
 * again. */
static void test_undecodable_records_skipped(void **state)
{
    (void)state;
    char room[64];
    long long bad0;

    snprintf(room, sizeof(room), "undec-%d", (int)getpid());
    bad0 = persister_metric("chat_persister_undecodable_total");
    assert_true(bad0 >= 0);
    assert_int_equal(
        it_sh(
            "printf '%s\\tnot json\\n"
            "%s\\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"7\",\"user\":\"u\",\"nick\":\"u\","
            "\"text\":\"late\",\"ts\":253402300800000}\\n"
            "%s\\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"9223372036854775808\","
            "\"user\":\"u\",\"nick\":\"u\",\"text\":\"big\",\"ts\":1700000000000}\\n"
            "%s\\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"%lld\",\"user\":\"u\","
            "\"nick\":\"u\",\"text\":\"fine\",\"ts\":%lld}\\n' | "
            "kcat -P -b '%s' -t chat.messages -K '\\t'",
            room, room, room, room, room, room, room, (long long)getpid() * 1000 + 1,
            (long long)time(NULL) * 1000, it_env("CHAT_KAFKA_BROKERS")),
        0);
    assert_int_equal(wait_rows(room, 1, it_timeout(20000)), 1); /* the good one, behind them */
    assert_int_equal(persister_metric("chat_persister_undecodable_total"), bad0 + 3);
    assert_int_equal(it_fixture("stop", "persister"), 0); /* their offsets were committed */
    assert_int_equal(it_fixture("start", "persister"), 0);
    /* one more behind them (same key, same partition): once it is stored, the restarted
     * persister has read past where they are, and it met none of them */
    assert_int_equal(it_sh("printf '%s\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"%lld\","
                           "\"user\":\"u\",\"nick\":\"u\",\"text\":\"after\",\"ts\":%lld}\n' | "
                           "kcat -P -b '%s' -t chat.messages -K '\t'",
                           room, room, (long long)getpid() * 1000 + 2, (long long)time(NULL) * 1000,
                           it_env("CHAT_KAFKA_BROKERS")),
                     0);
    assert_int_equal(wait_rows(room, 2, it_timeout(20000)), 2);
    assert_int_equal(persister_metric("chat_persister_undecodable_total"), 0);
}

/* A burst straight into Kafka drains in several batches, each written while the next one is
 * decoded: every record is stored exactly once, and after a clean stop (SIGTERM) and a restart
 * nothing is read again (the offsets of every batch were committed after its rows). */
static void test_burst_pipelined_batches(void **state)
{
    (void)state;
    char like[64], file[128], room[64];
    long long batches0, dups;
    int pid = (int)getpid();

    snprintf(like, sizeof(like), "burst-%d-%%", pid);
    snprintf(file, sizeof(file), "%s/burst-%d.tsv", it_env("CHAT_TEST_DIR"), pid);
    batches0 = persister_metric("chat_persister_batches_total");
    assert_true(batches0 >= 0);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    for (int i = 0; i < BURST_N; i++) {
        snprintf(room, sizeof(room), "burst-%d-%d", pid, i % BURST_ROOMS);
        fprintf(f,
                "%s\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"%lld\",\"user\":\"b%d\","
                "\"nick\":\"B\",\"text\":\"burst %d\",\"ts\":%lld}\n",
                room, room, 8000000000000000000LL + (long long)pid * 100000 + i, i % 7, i,
                (long long)time(NULL) * 1000 + i % 1000);
    }
    assert_int_equal(fclose(f), 0);
    assert_int_equal(it_sh("kcat -P -b '%s' -t chat.messages -K '\\t' -z lz4 <%s",
                           it_env("CHAT_KAFKA_BROKERS"), file),
                     0);
    for (int i = 0;
         i < it_timeout(1200) &&
         it_pg_count(pg, "SELECT count(*) FROM messages WHERE room LIKE $1", like) < BURST_N;
         i++)
        usleep(50 * 1000); /* polling the database for a condition */
    assert_int_equal(it_pg_count(pg, "SELECT count(*) FROM messages WHERE room LIKE $1", like),
                     BURST_N);
    assert_int_equal(
        it_pg_count(pg, "SELECT count(DISTINCT id) FROM messages WHERE room LIKE $1", like),
        BURST_N);
    assert_true(persister_metric("chat_persister_batches_total") >= batches0 + BURST_N / 5000);
    /* a clean stop commits everything; the restarted persister reads nothing twice */
    assert_int_equal(
        it_sh("%s/fixtures/cluster.sh stop persister %s", IT_SRC_DIR, it_env("CHAT_TEST_DIR")), 0);
    assert_int_equal(it_sh("%s/fixtures/cluster.sh start persister %s >/dev/null", IT_SRC_DIR,
                           it_env("CHAT_TEST_DIR")),
                     0);
    snprintf(room, sizeof(room), "burst-%d-last", pid);
    assert_int_equal(it_sh("printf '%s\\t{\"type\":\"message\",\"room\":\"%s\",\"id\":\"%lld\","
                           "\"user\":\"b\",\"nick\":\"B\",\"text\":\"last\",\"ts\":%lld}\\n' | "
                           "kcat -P -b '%s' -t chat.messages -K '\\t'",
                           room, room, 8000000000000000000LL + (long long)pid * 100000 + BURST_N,
                           (long long)time(NULL) * 1000, it_env("CHAT_KAFKA_BROKERS")),
                     0);
    assert_int_equal(wait_rows(room, 1, it_timeout(30000)), 1);
    dups = persister_metric("chat_persister_duplicates_total");
    assert_int_equal(dups, 0);
    unlink(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_in_its_day_partition),
        cmocka_unit_test(test_persister_killed_mid_stream_exactly_once),
        cmocka_unit_test(test_replayed_record_stored_once),
        cmocka_unit_test(test_undecodable_records_skipped),
        cmocka_unit_test(test_burst_pipelined_batches),
    };
    int rc;

    it_env_load();
    pg = it_pg_connect();
    if (!pg)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(pg);
    return rc;
}
