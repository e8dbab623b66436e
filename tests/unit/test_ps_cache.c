/* test_ps_cache.c - the persister's Redis recent cache (persister/src/ps_cache.c): the per-room
 * prev map (chains, replays going back, forgetting on rebalance, many rooms), the frames of a
 * batch (seq and prev spliced into the Kafka value), an unreachable Redis (writes skipped and
 * counted, no connect before the backoff, the chain still advancing), and against a stand-in
 * Redis (a thread answering every command): the exact commands of a batch, a big batch sent in
 * chunks of PS_CACHE_CHUNK with the pump run between them, and a connection the server reset
 * replaced at once. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "chat/buf.h"
#include "chat/metrics.h"

#include "fake_redis.h"
#include "ps.h"

#define TS 1709164801234LL /* 2024-02-29 */

static struct ps_cfg cfg = {
    .redis_host = (char[]){"127.0.0.1"},
    .redis_port = 1, /* nothing listens: connects are refused at once */
    .redis_timeout_ms = 200,
    .recent_per_room = 500,
    .recent_per_user = 50,
};

static void test_ps_cache_prev_chain(void **state)
{
    struct ps_metrics m;
    struct ps_cache c;

    (void)state;
    memset(&m, 0, sizeof(m));
    ps_cache_init(&c, &cfg, &m);
    assert_int_equal(ps_cache_prev(&c, "lobby", 10), -1); /* first seen: no prev */
    assert_int_equal(ps_cache_prev(&c, "lobby", 12), 10);
    assert_int_equal(ps_cache_prev(&c, "other", 11), -1); /* per room */
    assert_int_equal(ps_cache_prev(&c, "lobby", 15), 12);
    assert_int_equal(ps_cache_prev(&c, "lobby", 13), -1); /* a replay going back restarts */
    assert_int_equal(ps_cache_prev(&c, "lobby", 14), 13);
    assert_int_equal(ps_cache_prev(&c, "lobby", 14), -1); /* the same seq again: no link */
    ps_cache_forget(&c);
    assert_int_equal(ps_cache_prev(&c, "lobby", 20), -1);
    assert_int_equal(ps_cache_prev(&c, "other", 21), -1);
    assert_int_equal(ps_cache_prev(&c, "other", 22), 21);
    ps_cache_fini(&c);
    ps_cache_fini(&c); /* idempotent */
}

static void test_ps_cache_prev_many_rooms(void **state)
{
    struct ps_metrics m;
    struct ps_cache c;
    char room[32];

    (void)state;
    memset(&m, 0, sizeof(m));
    ps_cache_init(&c, &cfg, &m);
    for (int i = 0; i < 5000; i++) {
        snprintf(room, sizeof(room), "r%d", i);
        assert_int_equal(ps_cache_prev(&c, room, i), -1);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(room, sizeof(room), "r%d", i);
        assert_int_equal(ps_cache_prev(&c, room, 10000 + i), i);
    }
    assert_int_equal(c.rooms.n, 5000);
    ps_cache_fini(&c);
}

static void add(struct ps_batch *b, const char *room, int64_t seq, uint64_t id)
{
    struct chat_event_msg m = {
        .room = room, .user = "7", .nick = "N", .text = "hi", .id = id, .ts = TS, .seq = -1};
    struct chat_buf v;

    chat_buf_init(&v, 0, 0);
    assert_int_equal(chat_enc_message(&v, &m), CHAT_OK);
    assert_int_equal(ps_batch_add(b, 0, seq, &m, chat_buf_data(&v), v.len, 1), CHAT_OK);
    chat_buf_fini(&v);
}

/* Adds the stream event (a message_deleted or system record) at seq to the batch. */
static void add_event(struct ps_batch *b, const char *json, int64_t seq)
{
    struct chat_stream_ev ev;
    void *doc = NULL;

    assert_int_equal(chat_stream_ev_decode(json, strlen(json), &ev, &doc), CHAT_OK);
    assert_int_equal(ps_batch_add_event(b, 0, seq, &ev, json, strlen(json), 1), CHAT_OK);
    chat_json_free(doc);
}

static void test_ps_cache_redis_down(void **state)
{
    struct ps_metrics m;
    struct ps_batch b;
    struct ps_cache c;

    (void)state;
    memset(&m, 0, sizeof(m));
    ps_cache_init(&c, &cfg, &m);
    c.backoff_ms = 60000; /* the retry after the first failure is surely later than this test */
    ps_batch_init(&b);
    add(&b, "lobby", 5, 1);
    add(&b, "lobby", 6, 2);
    ps_cache_write(&c, &b);
    /* the frames: the Kafka value with seq (and prev once known) */
    assert_non_null(strstr(chat_buf_data(&c.frames),
                           "{\"type\":\"message\",\"seq\":5,\"room\":\"lobby\",\"id\":\"1\""));
    assert_non_null(strstr(chat_buf_data(&c.frames),
                           "{\"type\":\"message\",\"seq\":6,\"prev\":5,\"room\":\"lobby\""));
    assert_int_equal(chat_metric_get(&m.cache_skipped), 2);
    assert_int_equal(chat_metric_get(&m.cache_errors), 1);
    assert_int_equal(chat_metric_get(&m.cached), 0);
    assert_int_equal(chat_metric_get(&m.redis_up), 0);
    /* within the backoff: no connect (no new error), skipped again, the chain advances */
    ps_batch_reset(&b);
    add(&b, "lobby", 7, 3);
    ps_cache_write(&c, &b);
    assert_int_equal(chat_metric_get(&m.cache_skipped), 3);
    assert_int_equal(chat_metric_get(&m.cache_errors), 1);
    assert_non_null(strstr(chat_buf_data(&c.frames), "\"seq\":7,\"prev\":6,"));
    /* a row without its Kafka value cannot be cached: skipped, counted */
    ps_batch_reset(&b);
    {
        struct chat_event_msg mm = {
            .room = "lobby", .user = "7", .nick = "N", .text = "x", .id = 9, .ts = TS, .seq = -1};
        assert_int_equal(ps_batch_add(&b, 0, 8, &mm, NULL, 0, 1), CHAT_OK);
    }
    ps_cache_write(&c, &b);
    assert_int_equal(chat_metric_get(&m.cache_skipped), 4);
    assert_int_equal(ps_cache_prev(&c, "lobby", 9), 8);
    ps_batch_fini(&b);
    ps_cache_fini(&c);
}

/* A cache connected to the stand-in, and a batch. */
struct rig {
    struct fake f;
    struct ps_cfg cfg;
    struct ps_metrics m;
    struct ps_cache c;
    struct ps_batch b;
};

static void rig_start(struct rig *r)
{
    fake_start(&r->f);
    r->cfg = cfg;
    r->cfg.redis_port = r->f.port;
    r->cfg.redis_timeout_ms = 10000; /* the stand-in is slow under sanitizers */
    memset(&r->m, 0, sizeof(r->m));
    ps_cache_init(&r->c, &r->cfg, &r->m);
    ps_batch_init(&r->b);
}

static void rig_stop(struct rig *r)
{
    ps_batch_fini(&r->b);
    ps_cache_fini(&r->c); /* closes the connection: the stand-in's thread ends */
    fake_stop(&r->f);
}

static void test_ps_cache_commands(void **state)
{
    static struct rig r;
    const char *want[] = {
        "ZREMRANGEBYSCORE chat:recent:lobby 5 6",
        "ZADD chat:recent:lobby 5 {\"type\":\"message\",\"seq\":5,\"room\":\"lobby\",",
        "ZREMRANGEBYRANK chat:recent:lobby 0 -501",
        "EXPIRE chat:recent:lobby 604800",
        "ZREMRANGEBYSCORE chat:recent:other 7 8",
        "ZADD chat:recent:other 7 {\"type\":\"message\",\"seq\":7,\"room\":\"other\",",
        "ZREMRANGEBYRANK chat:recent:other 0 -501",
        "EXPIRE chat:recent:other 604800",
        "ZADD chat:urecent:7 1709164801234 {\"type\":\"message\",\"seq\":5,",
        "ZREMRANGEBYRANK chat:urecent:7 0 -51",
        "EXPIRE chat:urecent:7 604800",
    };
    static const char sys[] = "{\"type\":\"system\",\"room\":\"other\",\"event\":\"joined\","
                              "\"id\":\"13\",\"ts\":1709164801400,\"user\":\"8\",\"nick\":\"Bo\"}";
    char **got;

    (void)state;
    rig_start(&r);
    add(&r.b, "lobby", 5, 1);
    add(&r.b, "other", 7, 3);
    add(&r.b, "lobby", 6, 2); /* a room's rows go together, in batch order */
    add_event(&r.b, sys, 8);
    ps_cache_write(&r.c, &r.b);
    assert_int_equal(chat_metric_get(&r.m.cached), 4);
    assert_int_equal(chat_metric_get(&r.m.cache_skipped), 0);
    assert_int_equal(atomic_load(&r.f.n), sizeof(want) / sizeof(want[0]));
    got = r.f.cmds;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strncmp(got[i], want[i], strlen(want[i])) != 0)
            fail_msg("command %zu: %.120s, expected %s", i, got[i], want[i]);
    /* the second lobby row is in the same ZADD, with its prev; the system row is the room's, not
     * its user's (no chat:urecent:8); the user's ZADD holds the three messages */
    assert_non_null(strstr(got[1], " 6 {\"type\":\"message\",\"seq\":6,\"prev\":5,"));
    assert_null(strstr(got[5], "\"seq\":5"));
    assert_non_null(strstr(got[5], " 8 {\"type\":\"system\",\"seq\":8,\"prev\":7,"));
    assert_null(strstr(got[8], "system"));
    assert_non_null(strstr(got[8], "\"seq\":6,"));
    assert_non_null(strstr(got[8], "\"seq\":7,"));
    rig_stop(&r);
}

/* Later writes of the same keys: a room gets ZREMRANGEBYSCORE and ZADD, a user ZADD alone,
 * until more than keep / PS_TRIM_SLACK_DIV entries were added since the key's last trim. */
static void test_ps_cache_upkeep_when_due(void **state)
{
    static struct rig r;
    size_t n0;
    char **got;

    (void)state;
    rig_start(&r);
    add(&r.b, "lobby", 1, 1);
    ps_cache_write(&r.c, &r.b); /* the first: trims and TTLs (test_ps_cache_commands) */
    assert_int_equal(atomic_load(&r.f.n), 7);
    /* user 7 keeps 50 (cfg): a trim once more than 6 were added; the room keeps 500 */
    for (int64_t seq = 2; seq <= 8; seq++) {
        ps_batch_reset(&r.b);
        add(&r.b, "lobby", seq, (uint64_t)seq);
        n0 = atomic_load(&r.f.n);
        ps_cache_write(&r.c, &r.b);
        got = r.f.cmds;
        assert_true(strncmp(got[n0], "ZREMRANGEBYSCORE chat:recent:lobby ", 35) == 0);
        assert_true(strncmp(got[n0 + 1], "ZADD chat:recent:lobby ", 23) == 0);
        assert_true(strncmp(got[n0 + 2], "ZADD chat:urecent:7 ", 20) == 0);
        if (seq < 8) {
            assert_int_equal(atomic_load(&r.f.n), n0 + 3);
        } else { /* the 7th since the trim */
            assert_int_equal(atomic_load(&r.f.n), n0 + 4);
            assert_string_equal(got[n0 + 3], "ZREMRANGEBYRANK chat:urecent:7 0 -51");
        }
    }
    assert_int_equal(chat_metric_get(&r.m.cached), 8);
    rig_stop(&r);
}

/* A message deleted in its own batch is cached in its deleted form (no text, "deleted":true),
 * and the cached copies of the messages a batch deletes are replaced (the look-up, ZRANGE)
 * before the batch's own commands: a reader never sees the deletion next to the text. */
static void test_ps_cache_deletion_before_event(void **state)
{
    static struct rig r;
    static const char del[] = "{\"type\":\"message_deleted\",\"room\":\"lobby\",\"id\":\"1\","
                              "\"by\":\"7\",\"ts\":1709164801400}";
    char **got;

    (void)state;
    rig_start(&r);
    add(&r.b, "lobby", 5, 1); /* the message, id 1 */
    add(&r.b, "lobby", 6, 2); /* another, kept */
    add_event(&r.b, del, 7);
    ps_cache_write(&r.c, &r.b);
    assert_int_equal(chat_metric_get(&r.m.cached), 3);
    assert_int_equal(chat_metric_get(&r.m.cache_skipped), 0);
    got = r.f.cmds;
    assert_string_equal(got[0], "ZRANGE chat:recent:lobby 0 -1 WITHSCORES");
    assert_string_equal(got[1], "ZREMRANGEBYSCORE chat:recent:lobby 5 7");
    assert_true(strncmp(got[2], "ZADD chat:recent:lobby 5 {", 26) == 0);
    /* seq 5 is there deleted, seq 6 with its text, then the deletion itself */
    {
        char *m5 = strstr(got[2], "\"seq\":5"), *m6 = strstr(got[2], "\"seq\":6"),
             *d7 = strstr(got[2], "\"seq\":7");
        assert_true(m5 && m6 && d7 && m5 < m6 && m6 < d7);
        *m6 = *d7 = '\0'; /* cut the three frames apart (the command is ours to change) */
        assert_non_null(strstr(m5, "\"deleted\":true"));
        assert_null(strstr(m5, "\"text\":\"hi\""));
        assert_null(strstr(m6 + 1, "\"deleted\""));
        assert_non_null(strstr(m6 + 1, "\"text\":\"hi\""));
    }
    rig_stop(&r);
}

/* Edits in their message's batch: the message is cached in its newest form (the last edit's
 * text, edited_at its ts) next to both edit events, which keep their texts; a message edited
 * and then deleted in the batch is cached deleted, and so is its edit (text "", "deleted");
 * each edit and delete looks up the cached copies first (ZRANGE), in stream order. */
static void test_ps_cache_edits_in_batch(void **state)
{
    static struct rig r;
    static const char e6[] = "{\"type\":\"message_edited\",\"room\":\"lobby\",\"id\":\"1\","
                             "\"user\":\"7\",\"text\":\"one\",\"ts\":1709164801500}";
    static const char e7[] = "{\"type\":\"message_edited\",\"room\":\"lobby\",\"id\":\"1\","
                             "\"user\":\"7\",\"text\":\"two\",\"ts\":1709164801600}";
    static const char e10[] = "{\"type\":\"message_edited\",\"room\":\"lobby\",\"id\":\"3\","
                              "\"user\":\"7\",\"text\":\"gone\",\"ts\":1709164801700}";
    static const char d11[] = "{\"type\":\"message_deleted\",\"room\":\"lobby\",\"id\":\"3\","
                              "\"by\":\"7\",\"ts\":1709164801800}";
    char **got, *f[7];

    (void)state;
    rig_start(&r);
    add(&r.b, "lobby", 5, 1);
    add_event(&r.b, e6, 6);
    add_event(&r.b, e7, 7);
    add(&r.b, "lobby", 9, 3);
    add_event(&r.b, e10, 10);
    add_event(&r.b, d11, 11);
    ps_cache_write(&r.c, &r.b);
    assert_int_equal(chat_metric_get(&r.m.cached), 6);
    got = r.f.cmds;
    for (int i = 0; i < 4; i++)
        assert_string_equal(got[i], "ZRANGE chat:recent:lobby 0 -1 WITHSCORES");
    assert_string_equal(got[4], "ZREMRANGEBYSCORE chat:recent:lobby 5 11");
    assert_true(strncmp(got[5], "ZADD chat:recent:lobby 5 {", 26) == 0);
    f[0] = strstr(got[5], "\"seq\":5");
    f[1] = strstr(got[5], "\"seq\":6");
    f[2] = strstr(got[5], "\"seq\":7");
    f[3] = strstr(got[5], "\"seq\":9");
    f[4] = strstr(got[5], "\"seq\":10");
    f[5] = strstr(got[5], "\"seq\":11");
    f[6] = NULL;
    for (int i = 0; i < 6; i++)
        assert_true(f[i] && (i == 0 || f[i - 1] < f[i]));
    for (int i = 1; i < 6; i++)
        *f[i] = '\0'; /* cut the frames apart (the command is ours to change) */
    assert_non_null(
        strstr(f[0], "\"text\":\"two\",\"ts\":1709164801234,\"edited_at\":1709164801600"));
    assert_non_null(strstr(f[1] + 1, "\"text\":\"one\""));
    assert_non_null(strstr(f[2] + 1, "\"text\":\"two\""));
    assert_non_null(strstr(f[3] + 1, "\"deleted\":true,\"text\":\"\""));
    assert_null(strstr(f[3] + 1, "gone"));
    assert_null(strstr(f[4] + 1, "gone"));
    assert_non_null(strstr(f[4] + 1, "\"text\":\"\",\"ts\":1709164801700,\"deleted\":true"));
    rig_stop(&r);
}

/* A batch with a delete that is not written (here: a row without its Kafka value makes the batch
 * uncacheable) leaves its room's cached copies with the text: the room's key is dropped before
 * the next write, once, so history reads PostgreSQL until the cache links up again. */
static void test_ps_cache_stale_rooms_dropped(void **state)
{
    static struct rig r;
    static const char del[] = "{\"type\":\"message_deleted\",\"room\":\"lobby\",\"id\":\"1\","
                              "\"by\":\"7\",\"ts\":1709164801400}";
    struct chat_event_msg mm = {
        .room = "lobby", .user = "7", .nick = "N", .text = "x", .id = 9, .ts = TS, .seq = -1};
    size_t n0;
    char **got;

    (void)state;
    rig_start(&r);
    assert_int_equal(ps_batch_add(&r.b, 0, 5, &mm, NULL, 0, 1), CHAT_OK);
    add_event(&r.b, del, 6);
    ps_cache_write(&r.c, &r.b);
    assert_int_equal(chat_metric_get(&r.m.cache_skipped), 2);
    assert_int_equal(atomic_load(&r.f.n), 0);
    ps_batch_reset(&r.b);
    add(&r.b, "other", 7, 3);
    ps_cache_write(&r.c, &r.b);
    got = r.f.cmds;
    assert_string_equal(got[0], "DEL chat:recent:lobby");
    assert_true(strncmp(got[1], "ZREMRANGEBYSCORE chat:recent:other 7 7", 38) == 0);
    n0 = atomic_load(&r.f.n);
    ps_batch_reset(&r.b);
    add(&r.b, "other", 8, 4);
    ps_cache_write(&r.c, &r.b);
    assert_true(strncmp(r.f.cmds[n0], "ZREMRANGEBYSCORE chat:recent:other 8 8", 38) == 0);
    assert_int_equal(chat_metric_get(&r.m.cached), 2);
    rig_stop(&r);
}

struct pumped {
    struct fake *f;
    size_t calls;
    bool in_step; /* every command before the pump answered, none after it sent */
};

static void pump(void *arg)
{
    struct pumped *p = arg;

    p->calls++;
    p->in_step &= atomic_load(&p->f->n) == p->calls * PS_CACHE_CHUNK;
}

static void test_ps_cache_chunks_and_pump(void **state)
{
    static struct rig r;
    struct pumped p = {.f = &r.f, .in_step = true};
    char room[32];

    (void)state;
    rig_start(&r);
    ps_cache_set_pump(&r.c, pump, &p);
    for (int i = 0; i < 300; i++) { /* 300 rooms x 4 commands + one user's 3: 1,203 */
        snprintf(room, sizeof(room), "r%d", i);
        add(&r.b, room, 100 + i, (uint64_t)i + 1);
    }
    ps_cache_write(&r.c, &r.b);
    assert_int_equal(atomic_load(&r.f.n), 1203);
    assert_int_equal(p.calls, 1203 / PS_CACHE_CHUNK); /* between chunks, not after the last */
    assert_true(p.in_step);
    assert_int_equal(chat_metric_get(&r.m.cached), 300);
    rig_stop(&r);
}

/* A kept connection the server reset since (it restarted: the client's next read or write fails
 * with ECONNRESET or EPIPE, not EOF) is replaced and the batch written on the new one, not
 * skipped: Redis came back, so the cache must not miss the batch. */
static void test_ps_cache_reset_connection_replaced(void **state)
{
    static struct rig r;

    (void)state;
    rig_start(&r);
    atomic_store(&r.f.reset_after, 7);
    add(&r.b, "lobby", 1, 1);
    ps_cache_write(&r.c, &r.b); /* 7 commands (test_ps_cache_upkeep_when_due), then the reset */
    ps_batch_reset(&r.b);
    add(&r.b, "lobby", 2, 2);
    ps_cache_write(&r.c, &r.b);
    assert_int_equal(chat_metric_get(&r.m.cache_skipped), 0);
    assert_int_equal(chat_metric_get(&r.m.cached), 2);
    assert_int_equal(atomic_load(&r.f.conns), 2);
    /* the new connection's first write trims and sets the TTLs again (7 commands) */
    assert_int_equal(atomic_load(&r.f.n), 14);
    rig_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ps_cache_prev_chain),
        cmocka_unit_test(test_ps_cache_prev_many_rooms),
        cmocka_unit_test(test_ps_cache_redis_down),
        cmocka_unit_test(test_ps_cache_commands),
        cmocka_unit_test(test_ps_cache_deletion_before_event),
        cmocka_unit_test(test_ps_cache_edits_in_batch),
        cmocka_unit_test(test_ps_cache_stale_rooms_dropped),
        cmocka_unit_test(test_ps_cache_chunks_and_pump),
        cmocka_unit_test(test_ps_cache_upkeep_when_due),
        cmocka_unit_test(test_ps_cache_reset_connection_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
