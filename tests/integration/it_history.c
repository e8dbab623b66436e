/* it_history.c - GET /api/v1/rooms/{room}/messages and POST /api/v1/rooms/{room}/read
 * (proto/README.md section 9, "History"), and the persister's side of them: rows of two UTC days
 * page back and forth once each and in order (PostgreSQL); live messages come from the Redis
 * recent cache with an unbroken prev chain, and the same page from PostgreSQL once the cache key
 * is deleted; rooms.last_seq follows the stored messages; who may read a restricted room; read
 * markers over REST (unread counts) and from a chat.events `read` record the persister stores. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "chat/buf.h"
#include "chat/keys.h"
#include "chat/proto.h"

#include "it_acct.h"
#include "it_user.h"
#include "it_util.h"

#define POLL_MS 50 /* polling a condition (database row, cache state), never a fixed wait */

static PGconn *pg;
static struct it_client cl;

static void sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sql(const char *fmt, ...)
{
    char q[4096];
    va_list ap;
    PGresult *r;

    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    r = PQexec(pg, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("sql failed: %s: %s", q, PQerrorMessage(pg));
    PQclear(r);
}

/* One value of a query (-1: NULL or no row). */
static long long sql_ll(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long sql_ll(const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    PGresult *r;
    long long v = -1;

    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    r = PQexec(pg, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("sql failed: %s: %s", q, PQerrorMessage(pg));
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* A text no send of this run repeats: the same text 4 times in 5 would trip the spam rule. */
static const char *unique_text(const char *prefix)
{
    static char buf[64];
    static int n;

    snprintf(buf, sizeof(buf), "%s %d", prefix, n++);
    return buf;
}

/* GET a history page; returns the status, *out the answer. */
static int page(const char *room, const char *query, const char *bearer, json_t **out)
{
    char path[512];

    snprintf(path, sizeof(path), "/api/v1/rooms/%s/messages%s%s", room, query[0] ? "?" : "", query);
    return it_api(API1, "GET", path, bearer, &cl, NULL, out, NULL);
}

/* Checks a page: status 200, source (NULL: either), more, and the seqs and prevs (-1: absent)
 * of its messages in order, each a message frame of room. */
static void check_page(const json_t *p,
                       const char *source,
                       bool more,
                       const long long *seqs,
                       const long long *prevs,
                       size_t n)
{
    const json_t *msgs = json_object_get(p, "messages");

    assert_non_null(msgs);
    if (source)
        assert_string_equal(it_jstr(p, "source"), source);
    assert_true(json_is_boolean(json_object_get(p, "more")));
    assert_int_equal(json_boolean_value(json_object_get(p, "more")), more);
    assert_int_equal(json_array_size(msgs), n);
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        assert_string_equal(it_jstr(m, "type"), "message");
        assert_int_equal(it_jint(m, "seq"), seqs[i]);
        if (prevs[i] < 0)
            assert_null(json_object_get(m, "prev"));
        else
            assert_int_equal(it_jint(m, "prev"), prevs[i]);
        assert_true(it_is_decimal(it_jstr(m, "id")));
        (void)it_jstr(m, "user");
        (void)it_jstr(m, "nick");
        (void)it_jstr(m, "text");
        (void)it_jint(m, "ts");
    }
}

/* Rows of yesterday (UTC) and today stored directly; paged back with before= from the newest
 * and forward with after=: every row once, in order, with prev from the neighbouring rows. */
static void test_db_paging_across_days(void **state)
{
    char room[64];
    json_t *p = NULL;
    long long id0 = ((long long)getpid() << 24) + (it_wall_ms() & 0xffffff);

    (void)state;
    it_room_new(room, sizeof(room), "hday");
    /* yesterday's partition may not exist (the persister rolls ahead, not back) */
    sql("DO $$ DECLARE d date := (now() AT TIME ZONE 'UTC')::date - 1; BEGIN EXECUTE"
        " format('CREATE TABLE IF NOT EXISTS %%I PARTITION OF messages FOR VALUES FROM (%%L) TO"
        " (%%L)', 'messages_' || to_char(d, 'YYYYMMDD'), d::text || ' 00:00:00+00',"
        " (d + 1)::text || ' 00:00:00+00'); END $$");
    /* seqs 10..16: 10..13 yesterday (the last minutes of it), 14..16 today */
    for (int i = 0; i < 7; i++)
        sql("INSERT INTO messages (id, room, kafka_partition, kafka_offset, user_id, nick, body,"
            " client_msg_id, created_at) VALUES (%lld, '%s', 0, %d, 'u%d', 'nick%d', 'text %d',"
            " %s, (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
            " + interval '%d minutes')",
            id0 + i, room, 10 + i, i, i, i, i == 2 ? "'cm-2'" : "NULL", i < 4 ? i - 10 : i);
    assert_int_equal(
        sql_ll("SELECT count(DISTINCT tableoid) FROM messages WHERE room = '%s'", room), 2);

    /* back from the newest: 14..16, 11..13, 10 */
    assert_int_equal(page(room, "limit=3", NULL, &p), 200);
    check_page(p, "db", true, (long long[]){14, 15, 16}, (long long[]){13, 14, 15}, 3);
    assert_string_equal(it_jstr(json_array_get(json_object_get(p, "messages"), 0), "room"), room);
    json_decref(p);
    assert_int_equal(page(room, "before=14&limit=3", NULL, &p), 200);
    check_page(p, "db", true, (long long[]){11, 12, 13}, (long long[]){10, 11, 12}, 3);
    assert_string_equal(it_jstr(json_array_get(json_object_get(p, "messages"), 1), "client_msg_id"),
                        "cm-2");
    assert_string_equal(it_jstr(json_array_get(json_object_get(p, "messages"), 1), "text"),
                        "text 2");
    json_decref(p);
    assert_int_equal(page(room, "before=11&limit=3", NULL, &p), 200);
    check_page(p, "db", false, (long long[]){10}, (long long[]){-1}, 1);
    json_decref(p);
    /* forward from before the first: 10..12, 13..15, 16 */
    assert_int_equal(page(room, "after=0&limit=3", NULL, &p), 200);
    check_page(p, "db", true, (long long[]){10, 11, 12}, (long long[]){-1, 10, 11}, 3);
    json_decref(p);
    assert_int_equal(page(room, "after=12&limit=3", NULL, &p), 200);
    check_page(p, "db", true, (long long[]){13, 14, 15}, (long long[]){12, 13, 14}, 3);
    json_decref(p);
    assert_int_equal(page(room, "after=15&limit=3", NULL, &p), 200);
    check_page(p, "db", false, (long long[]){16}, (long long[]){15}, 1);
    json_decref(p);
    /* nothing past either end; a limit above CHAT_HISTORY_MAX is capped, not refused */
    assert_int_equal(page(room, "after=16", NULL, &p), 200);
    check_page(p, "db", false, NULL, NULL, 0);
    json_decref(p);
    assert_int_equal(page(room, "limit=100000", NULL, &p), 200);
    assert_int_equal(json_array_size(json_object_get(p, "messages")), 7);
    json_decref(p);
}

/* Bad cursors and limits: 400 with stable codes. */
static void test_bad_queries(void **state)
{
    static const char *const bad[] = {"before=x",         "before=-1", "after=1.5",
                                      "before=1&after=2", "limit=0",   "limit=-3",
                                      "limit=ten",        "before=",   "after=%2B1"};
    json_t *p = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = page("lobby", bad[i], NULL, &p);
        it_check_error(st, p, 400, "bad_field", bad[i]);
        json_decref(p);
        p = NULL;
    }
}

/* REST sends into a public room with a rooms row: rooms.last_seq follows; the newest pages come
 * from the cache with an unbroken prev chain, anonymously too; the same pages from PostgreSQL
 * after the cache key is deleted. */
/* Waits until the persister writes its cache: an earlier test may have restarted Redis, and the
 * persister skips cache writes while it reconnects (its pages are then PostgreSQL's: right, but
 * not what test_cache_then_db looks at). A message of a room of its own, then its cache key. */
static void cache_warm(const char *tok)
{
    char room[64], path[256];
    long long t0 = it_mono_ms();

    it_room_new(room, sizeof(room), "hwarm");
    snprintf(path, sizeof(path), "/api/v1/rooms/%s/messages", room);
    for (;;) {
        json_decref(it_api_ok(200, API1, "POST", path, tok, &cl,
                              json_pack("{s:s}", "text", unique_text("w"))));
        for (int i = 0; i < 20; i++) { /* a second for this one */
            if (it_sh("test \"$(redis-cli -h 127.0.0.1 -p %s EXISTS %s%s)\" = 1",
                      it_env("CHAT_TEST_REDIS_PORT"), "chat:recent:", room) == 0)
                return;
            it_sleep_ms(POLL_MS);
        }
        if (it_mono_ms() - t0 > it_timeout(20000))
            fail_msg("the persister does not write the recent cache");
    }
}

/* A counter of the persister's /metrics; -1 when missing. */
static long long persister_metric(const char *name)
{
    return it_metric(it_env("CHAT_TEST_PERSISTER_URL"), name);
}

/* The page of room for query once the cache answers it (a chat-api thread whose Redis
 * connection is being replaced, or a command past its deadline on a loaded machine, answers
 * from PostgreSQL meanwhile: right, but not what is tested here), 15 s at most; then *out is the
 * last answer, whatever its source. */
static void cached_page(const char *room, const char *query, json_t **out)
{
    long long t0 = it_mono_ms();

    for (;; it_sleep_ms(POLL_MS)) {
        assert_int_equal(page(room, query, NULL, out), 200);
        if (strcmp(it_jstr(*out, "source"), "cache") == 0 || it_mono_ms() - t0 > it_timeout(15000))
            return;
        json_decref(*out);
    }
}

static void test_cache_then_db(void **state)
{
    char room[64], path[256], key[128], *tok = it_token("hist_cache", 600);
    long long seq[6] = {0};
    json_t *p = NULL, *q = NULL, *ack;
    long long t0;

    (void)state;
    cache_warm(tok);
    /* The cache is best effort: a write that misses its Redis deadline on a loaded machine is
     * skipped (counted) and that room's pages come from the database. Then a new room, at most
     * three times; with no skip counted, the cache must serve the pages. */
    for (int attempt = 0;; attempt++) {
        long long skipped0 = persister_metric("chat_persister_cache_skipped_total");

        it_room_new(room, sizeof(room), "hcache");
        sql("INSERT INTO rooms (id, kind, name, max_text) VALUES ('%s', 'public', 'x', 2000)",
            room);
        snprintf(path, sizeof(path), "/api/v1/rooms/%s/messages", room);
        for (int i = 0; i < 6; i++) {
            ack = it_api_ok(
                200, API1, "POST", path, tok, &cl,
                json_pack("{s:s}", "text",
                          i == 3 ? "tab\there \"quoted\" \xed\x95\x9c" : unique_text("hi")));
            seq[i] = it_jint(ack, "seq");
            json_decref(ack);
        }
        /* the persister stores them and moves rooms.last_seq in the same transaction */
        t0 = it_mono_ms();
        while (sql_ll("SELECT last_seq FROM rooms WHERE id = '%s'", room) != seq[5] &&
               it_mono_ms() - t0 < it_timeout(15000))
            it_sleep_ms(POLL_MS);
        assert_int_equal(sql_ll("SELECT last_seq FROM rooms WHERE id = '%s'", room), seq[5]);
        assert_true(
            sql_ll("SELECT count(*) FROM rooms WHERE id = '%s' AND last_message_at IS NOT NULL",
                   room) == 1);
        /* the cache is written right after the database commit */
        cached_page(room, "limit=3", &p);
        /* a skip of an earlier batch of this room leaves the newest page cached but the older
         * ones (after= below) not: any skip during the attempt means a new room */
        if (attempt == 2 || persister_metric("chat_persister_cache_skipped_total") == skipped0)
            break; /* no skip: the cache must serve every page below */
        fprintf(stderr, "the persister skipped a cache write (loaded machine): a new room\n");
        json_decref(p);
    }
    check_page(p, "cache", true, (long long[]){seq[3], seq[4], seq[5]},
               (long long[]){seq[2], seq[3], seq[4]}, 3);
    assert_string_equal(it_jstr(json_array_get(json_object_get(p, "messages"), 0), "text"),
                        "tab\there \"quoted\" \xed\x95\x9c");
    /* the cache answers before= (anchored at a cached seq) and after= pages too */
    snprintf(path, sizeof(path), "before=%lld&limit=2", seq[5]);
    cached_page(room, path, &q);
    check_page(q, "cache", true, (long long[]){seq[3], seq[4]}, (long long[]){seq[2], seq[3]}, 2);
    json_decref(q);
    snprintf(path, sizeof(path), "after=%lld&limit=2", seq[1]);
    cached_page(room, path, &q);
    check_page(q, "cache", true, (long long[]){seq[2], seq[3]}, (long long[]){seq[1], seq[2]}, 2);
    json_decref(q);
    /* the room's first message has no prev in the cache: its page comes from PostgreSQL */
    assert_int_equal(page(room, "limit=6", NULL, &q), 200);
    check_page(q, "db", false, seq, (long long[]){-1, seq[0], seq[1], seq[2], seq[3], seq[4]}, 6);
    json_decref(q);

    snprintf(key, sizeof(key), CHAT_KEY_RECENT_FMT, room);
    /* the key's first write set its TTL: a week (proto/README.md section 12) */
    assert_int_equal(it_sh("t=$(redis-cli -h 127.0.0.1 -p %s TTL %s) && [ \"$t\" -gt 600000 ] &&"
                           " [ \"$t\" -le 604800 ]",
                           it_env("CHAT_TEST_REDIS_PORT"), key),
                     0);
    assert_int_equal(it_sh("redis-cli -h 127.0.0.1 -p %s DEL %s >/dev/null",
                           it_env("CHAT_TEST_REDIS_PORT"), key),
                     0);
    assert_int_equal(page(room, "limit=3", NULL, &q), 200);
    assert_string_equal(it_jstr(q, "source"), "db");
    assert_true(json_equal(json_object_get(p, "messages"), json_object_get(q, "messages")));
    assert_true(json_equal(json_object_get(p, "more"), json_object_get(q, "more")));
    json_decref(p);
    json_decref(q);
    free(tok);
}

static long long send_rest(const char *room, const char *tok)
{
    char path[256];
    json_t *ack;
    long long seq;

    snprintf(path, sizeof(path), "/api/v1/rooms/%s/messages", room);
    ack =
        it_api_ok(200, API1, "POST", path, tok, &cl, json_pack("{s:s}", "text", unique_text("r")));
    seq = it_jint(ack, "seq");
    json_decref(ack);
    return seq;
}

/* Redis stopped: the persister keeps storing (cache writes skipped and counted) and the history
 * answers from PostgreSQL. Back: the entries written after the outage link to the messages the
 * cache missed, so a page reaching below them comes from PostgreSQL, never with a gap. */
static void test_redis_down(void **state)
{
    char room[64], q[64], *tok = it_token("hist_redis", 600);
    long long seq[5], skipped0 = persister_metric("chat_persister_cache_skipped_total"), t0;
    json_t *p = NULL;

    (void)state;
    it_room_new(room, sizeof(room), "hredis");
    sql("INSERT INTO rooms (id, kind, name, max_text) VALUES ('%s', 'public', 'x', 2000)", room);
    seq[0] = send_rest(room, tok);
    assert_int_equal(
        it_sh("%s/fixtures/cluster.sh stop redis %s", IT_SRC_DIR, it_env("CHAT_TEST_DIR")), 0);
    seq[1] = send_rest(room, tok); /* chat-api's node number lease outlives this outage */
    seq[2] = send_rest(room, tok);
    t0 = it_mono_ms();
    while (sql_ll("SELECT last_seq FROM rooms WHERE id = '%s'", room) != seq[2] &&
           it_mono_ms() - t0 < it_timeout(15000))
        it_sleep_ms(POLL_MS);
    assert_int_equal(sql_ll("SELECT count(*) FROM messages WHERE room = '%s'", room), 3);
    assert_true(persister_metric("chat_persister_cache_skipped_total") >= skipped0 + 2);
    assert_int_equal(page(room, "limit=2", NULL, &p), 200);
    check_page(p, "db", true, (long long[]){seq[1], seq[2]}, (long long[]){seq[0], seq[1]}, 2);
    json_decref(p);
    assert_int_equal(
        it_sh("%s/fixtures/cluster.sh start redis %s", IT_SRC_DIR, it_env("CHAT_TEST_DIR")), 0);
    /* back (after the persister's backoff): new entries chain to the missed ones */
    for (t0 = it_mono_ms();;) {
        long long t1 = it_mono_ms();
        seq[3] = send_rest(room, tok);
        /* stored (the cache write follows the commit in the same batch), then: did it work? */
        while (sql_ll("SELECT last_seq FROM rooms WHERE id = '%s'", room) != seq[3] &&
               it_mono_ms() - t1 < it_timeout(15000))
            it_sleep_ms(POLL_MS);
        if (persister_metric("chat_persister_redis_up") == 1)
            break;
        if (it_mono_ms() - t0 > it_timeout(20000))
            fail_msg("the persister did not write to Redis again");
        it_sleep_ms(POLL_MS);
    }
    seq[4] = send_rest(room, tok);
    /* until the persister has stored seq[4] (a cache page of seq[3] alone is right until then) */
    for (t0 = it_mono_ms();; it_sleep_ms(POLL_MS)) {
        json_t *m;
        assert_int_equal(page(room, "limit=1", NULL, &p), 200);
        m = json_array_get(json_object_get(p, "messages"), 0);
        if ((strcmp(it_jstr(p, "source"), "cache") == 0 && m && it_jint(m, "seq") == seq[4]) ||
            it_mono_ms() - t0 > it_timeout(15000))
            break;
        json_decref(p);
    }
    check_page(p, "cache", true, (long long[]){seq[4]}, (long long[]){seq[3]}, 1);
    json_decref(p);
    /* the page reaching below the outage: complete, from PostgreSQL */
    assert_int_equal(page(room, "limit=50", NULL, &p), 200);
    assert_string_equal(it_jstr(p, "source"), "db");
    assert_true(json_array_size(json_object_get(p, "messages")) >= 5);
    json_decref(p);
    snprintf(q, sizeof(q), "after=%lld&limit=50", seq[0]);
    assert_int_equal(page(room, q, NULL, &p), 200);
    assert_string_equal(it_jstr(p, "source"), "db"); /* the cache misses seq[1], seq[2] */
    json_decref(p);
    free(tok);
}

/* Restricted rooms: invisible (404) to anonymous callers and non-members, readable by active
 * members, and by left ones only with history_after_leave. */
static void test_restricted_access(void **state)
{
    char room[64];
    struct it_user a, b;
    json_t *p = NULL;
    const char *ta, *tb;
    int st;

    (void)state;
    it_room_new(room, sizeof(room), "_ph");
    it_user_new(&a, "hista");
    it_user_new(&b, "histb");
    ta = a.token;
    tb = b.token;
    sql("INSERT INTO rooms (id, kind, name, max_text) VALUES ('%s', 'private', 'x', 2000)", room);
    sql("INSERT INTO room_members (room_id, user_id, role) VALUES ('%s', %s, 'owner')", room, a.id);
    sql("INSERT INTO messages (id, room, kafka_partition, kafka_offset, user_id, nick, body,"
        " created_at) SELECT %lld + g, '%s', 0, g, '%s', 'n', 'secret', now() FROM"
        " generate_series(1, 5) g",
        ((long long)getpid() << 24) + 0x800000 + (it_wall_ms() & 0x7fff00), room, a.id);

    assert_int_equal(page(room, "", ta, &p), 200);
    check_page(p, "db", false, (long long[]){1, 2, 3, 4, 5}, (long long[]){-1, 1, 2, 3, 4}, 5);
    json_decref(p);
    st = page(room, "", tb, &p);
    it_check_error(st, p, 404, "not_found", "non-member");
    json_decref(p);
    st = page(room, "", NULL, &p);
    it_check_error(st, p, 404, "not_found", "anonymous");
    json_decref(p);
    st = page("_pnosuchroom", "", ta, &p);
    it_check_error(st, p, 404, "not_found", "unknown restricted room");
    json_decref(p);

    /* left: readable while history_after_leave (the default), not after it is switched off */
    sql("UPDATE room_members SET state = 'left', left_at = now() WHERE room_id = '%s'", room);
    assert_int_equal(page(room, "limit=1", ta, &p), 200);
    json_decref(p);
    sql("UPDATE rooms SET history_after_leave = false WHERE id = '%s'", room);
    st = page(room, "", ta, &p);
    it_check_error(st, p, 404, "not_found", "left, no history after leave");
    json_decref(p);
    sql("UPDATE room_members SET state = 'removed' WHERE room_id = '%s'", room);
    sql("UPDATE rooms SET history_after_leave = true WHERE id = '%s'", room);
    st = page(room, "", ta, &p);
    it_check_error(st, p, 404, "not_found", "removed");
    json_decref(p);
    it_user_free(&a);
    it_user_free(&b);
}

/* POST read: GREATEST of the marker, the unread count after it; members only. */
static void test_read_marker_rest(void **state)
{
    char room[64], path[256];
    struct it_user a, b;
    json_t *r;
    const char *uid;

    (void)state;
    it_room_new(room, sizeof(room), "_pr");
    it_user_new(&a, "histr");
    it_user_new(&b, "histn");
    uid = a.id;
    sql("INSERT INTO rooms (id, kind, name, max_text) VALUES ('%s', 'group', 'x', 2000)", room);
    sql("INSERT INTO room_members (room_id, user_id, role) VALUES ('%s', %s, 'member')", room, uid);
    sql("INSERT INTO messages (id, room, kafka_partition, kafka_offset, user_id, nick, body,"
        " created_at) SELECT %lld + g, '%s', 1, g, '1', 'n', 't', now() FROM"
        " generate_series(0, 9) g",
        ((long long)getpid() << 24) + 0x400000 + (it_wall_ms() & 0x3fff00), room);
    snprintf(path, sizeof(path), "/api/v1/rooms/%s/read", room);

    r = it_api_ok(200, API1, "POST", path, a.token, &cl, json_pack("{s:i}", "seq", 6));
    assert_int_equal(it_jint(r, "last_read_seq"), 6);
    assert_int_equal(it_jint(r, "unread"), 3);
    json_decref(r);
    r = it_api_ok(200, API1, "POST", path, a.token, &cl, json_pack("{s:i}", "seq", 2));
    assert_int_equal(it_jint(r, "last_read_seq"), 6); /* never backwards */
    assert_int_equal(it_jint(r, "unread"), 3);
    json_decref(r);
    assert_int_equal(sql_ll("SELECT last_read_seq FROM room_members WHERE room_id = '%s'", room),
                     6);
    assert_int_equal(sql_ll("SELECT room_unread('%s', -1)", room), 10);

    it_api_err(404, "not_found", API1, "POST", path, b.token, &cl, json_pack("{s:i}", "seq", 1));
    it_api_err(400, "bad_field", API1, "POST", path, a.token, &cl, json_pack("{s:i}", "seq", -1));
    it_api_err(400, "bad_field", API1, "POST", path, a.token, &cl, json_pack("{s:s}", "seq", "7"));
    it_api_err(401, "auth_required", API1, "POST", path, NULL, &cl, json_pack("{s:i}", "seq", 1));
    it_user_free(&a);
    it_user_free(&b);
}

/* A chat.events `read` record (as a gateway produces it for the WebSocket read frame) moves the
 * member's marker through the persister; a left member's does not move. */
static void test_read_event_persister(void **state)
{
    char room[64], errstr[256];
    struct chat_buf v;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    struct it_user a, b;
    const char *ua, *ub;
    long long t0;

    (void)state;
    it_room_new(room, sizeof(room), "_pe");
    it_user_new(&a, "histe");
    it_user_new(&b, "histl");
    ua = a.id;
    ub = b.id;
    sql("INSERT INTO rooms (id, kind, name, max_text) VALUES ('%s', 'private', 'x', 2000)", room);
    sql("INSERT INTO room_members (room_id, user_id, role) VALUES ('%s', %s, 'owner')", room, ua);
    sql("INSERT INTO room_members (room_id, user_id, role, state) VALUES ('%s', %s, 'member',"
        " 'left')",
        room, ub);

    conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", it_env("CHAT_KAFKA_BROKERS"),
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    chat_buf_init(&v, 0, 0);
    /* one for the left member b, then two for a (coalesced: the highest wins); one key, so one
     * partition: b's is consumed before a's last */
    for (int i = 0; i < 3; i++) {
        const char *u = i == 0 ? ub : ua;
        chat_buf_reset(&v);
        assert_int_equal(chat_enc_ev_read(&v, u, room, i == 1 ? 41 : 17, it_wall_ms()), CHAT_OK);
        assert_int_equal(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("chat.events"), RD_KAFKA_V_KEY(ua, strlen(ua)),
                              RD_KAFKA_V_VALUE(chat_buf_data(&v), v.len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(rk, it_timeout(10000)), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    chat_buf_fini(&v);

    t0 = it_mono_ms();
    while (sql_ll("SELECT last_read_seq FROM room_members WHERE room_id = '%s' AND user_id = %s",
                  room, ua) != 41 &&
           it_mono_ms() - t0 < it_timeout(20000))
        it_sleep_ms(POLL_MS);
    assert_int_equal(
        sql_ll("SELECT last_read_seq FROM room_members WHERE room_id = '%s' AND user_id = %s", room,
               ua),
        41);
    /* b's record was consumed before a's: b is left, not moved */
    assert_int_equal(
        sql_ll("SELECT last_read_seq FROM room_members WHERE room_id = '%s' AND user_id = %s", room,
               ub),
        -1);
    it_user_free(&a);
    it_user_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_paging_across_days),
        cmocka_unit_test(test_bad_queries),
        cmocka_unit_test(test_cache_then_db),
        cmocka_unit_test(test_restricted_access),
        cmocka_unit_test(test_read_marker_rest),
        cmocka_unit_test(test_read_event_persister),
        cmocka_unit_test(test_redis_down),
    };
    int rc;

    it_env_load();
    it_client_new(&cl, "198.51.100");
    pg = it_pg_connect();
    if (!pg)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    PQfinish(pg);
    return rc;
}
