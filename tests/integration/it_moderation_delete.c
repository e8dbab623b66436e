/* it_moderation_delete.c - deleting messages and reporting them (issue 13; proto/README.md
 * sections 5 `message_deleted`, 9 "Moderation", 11): the author deletes its own message, a member
 * cannot delete another's, the room's admin and a site admin can; each delete is one event of the
 * room's stream (live on both gateways with seq and prev after the message's, in join {since}
 * recovery on both gateways, in history from the Redis cache and from PostgreSQL alike, where
 * the message is {"deleted":true,"text":""}, as in the recovery replay); deleting twice gives no
 * second event; each delete has its audit row; reports: created once (201), a second one 409
 * already_reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "it_acct.h"
#include "it_user.h"
#include "it_util.h"
#include "wsc.h"

#define WAIT_MS 15000
#define POLL_MS 50
#define NMSG    4

static struct it_client cl;

static int del(const struct it_user *by, const char *api, const char *room, const char *id)
{
    char p[200];
    json_t *out = NULL;
    int st;

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages/%s", room, id);
    st = it_api(api, "DELETE", p, by->token, &cl, NULL, &out, NULL);
    json_decref(out);
    return st;
}

/* The next message_deleted frame on c for message id: its seq and prev must follow after. */
static long long expect_deleted(struct wsc *c, const char *id, long long after, const char *by)
{
    json_t *f = it_wait_frame(c, "message_deleted", "id", id, NULL, it_timeout(WAIT_MS));
    long long seq;

    if (!f)
        fail_msg("no message_deleted for %s", id);
    seq = it_jint(f, "seq");
    if (seq <= after || it_jint(f, "prev") != after)
        fail_msg("message_deleted %s: seq %lld prev %lld, expected prev %lld", id, seq,
                 it_jint(f, "prev"), after);
    assert_string_equal(it_jstr(f, "by"), by);
    json_decref(f);
    return seq;
}

static json_t *history(const char *room, const char *query)
{
    char p[256];

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages?%s", room, query);
    return it_api_ok(200, API2, "GET", p, NULL, &cl, NULL);
}

/* The page of history: the messages A.. (deleted[i]: A..C deleted) and then the three
 * message_deleted events, in seq order, the prev chain unbroken from the warm-up message. */
static void check_page(const json_t *p,
                       long long warm,
                       const long long *seq,
                       const char *const *ids,
                       const long long *dseq,
                       const char *last_text)
{
    const json_t *arr = json_object_get(p, "messages");
    long long prev = warm;

    assert_int_equal(json_array_size(arr), NMSG + 3);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *m = json_array_get(arr, i);
        long long s = it_jint(m, "seq");

        if (it_jint(m, "prev") != prev)
            fail_msg("history frame %zu: prev %lld, expected %lld", i, it_jint(m, "prev"), prev);
        prev = s;
        if (i < NMSG) {
            assert_string_equal(it_jstr(m, "type"), "message");
            assert_int_equal(s, seq[i]);
            assert_string_equal(it_jstr(m, "id"), ids[i]);
            if (i < 3) {
                assert_true(json_is_true(json_object_get(m, "deleted")));
                assert_string_equal(it_jstr(m, "text"), "");
            } else {
                assert_null(json_object_get(m, "deleted"));
                assert_string_equal(it_jstr(m, "text"), last_text);
            }
        } else {
            assert_string_equal(it_jstr(m, "type"), "message_deleted");
            assert_int_equal(s, dseq[i - NMSG]);
            assert_string_equal(it_jstr(m, "id"), ids[i - NMSG]);
        }
    }
}

/* join {since} on c replays the four messages (the first three in their deleted form) and the
 * three deletions, in order. */
static void expect_recovery(
    struct wsc *c, const char *room, long long since, const long long *seq, const long long *dseq)
{
    json_t *j;

    it_send(c, "{s:s, s:s, s:I}", "type", "join", "room", room, "since", (json_int_t)since);
    j = it_wait_frame(c, "joined", "room", room, NULL, it_timeout(WAIT_MS));
    if (!j)
        fail_msg("no joined for %s", room);
    json_decref(j);
    for (int i = 0; i < NMSG + 3; i++) {
        for (;;) {
            char *t = NULL;
            json_t *f;
            const char *type;

            if (wsc_recv_text(c, &t, it_timeout(WAIT_MS), NULL) <= 0)
                fail_msg("replayed event %d missing", i);
            f = json_loads(t, 0, NULL);
            wsc_free_text(t);
            type = f ? json_string_value(json_object_get(f, "type")) : NULL;
            if (!type || (strcmp(type, "message") && strcmp(type, "message_deleted"))) {
                json_decref(f);
                continue;
            }
            assert_string_equal(type, i < NMSG ? "message" : "message_deleted");
            assert_int_equal(it_jint(f, "seq"), i < NMSG ? seq[i] : dseq[i - NMSG]);
            if (i < 3) { /* the ring holds the deleted form: the text is never replayed */
                assert_true(json_is_true(json_object_get(f, "deleted")));
                assert_string_equal(it_jstr(f, "text"), "");
            }
            json_decref(f);
            break;
        }
    }
}

static void test_delete(void **state)
{
    static const char *const texts[NMSG] = {"first", "second", "third", "fourth"};
    struct it_user owner, adm, m, other, site;
    char room[80], p[256], ids[NMSG][32], cmid[32], key[128];
    const char *idp[NMSG];
    long long seq[NMSG], dseq[3], warm, t0;
    struct wsc *w1, *w2, *r1, *r2;
    json_t *a, *pg = NULL, *db;

    (void)state;
    for (int i = 0; i < NMSG; i++)
        idp[i] = ids[i];
    it_user_new(&owner, "do");
    it_user_new(&adm, "da");
    it_user_new(&m, "dm");
    it_user_new(&other, "dx");
    it_user_new(&site, "ds");
    it_user_admin(&site);
    it_room_new(room, sizeof(room), "del");
    it_user_room(&owner, room);
    it_user_join(&adm, room);
    it_user_join(&m, room);
    it_user_join(&other, room);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/members/%s/role", room, adm.id);
    json_decref(
        it_api_ok(204, API1, "POST", p, owner.token, &cl, json_pack("{s:s}", "role", "admin")));

    w1 = it_connect(GW1, m.token);
    w2 = it_connect(GW2, other.token);
    it_join(w1, room);
    it_join(w2, room);
    /* a warm-up message: the first one after a persister start has no prev in the cache */
    snprintf(cmid, sizeof(cmid), "dw-%d", (int)getpid());
    a = it_send_acked(w1, room, "warm", cmid, NULL);
    warm = it_jint(a, "seq");
    json_decref(a);
    for (int i = 0; i < NMSG; i++) {
        snprintf(cmid, sizeof(cmid), "d%d-%d", i, (int)getpid());
        a = it_send_acked(w1, room, texts[i], cmid, NULL);
        seq[i] = it_jint(a, "seq");
        snprintf(ids[i], sizeof(ids[i]), "%s", it_jstr(a, "id"));
        json_decref(a);
    }
    /* wait for the persister (the delete looks the message up where it is stored) */
    t0 = it_mono_ms();
    while (it_sql_ll("SELECT count(*) FROM messages WHERE room = '%s' AND id = %s", room, ids[3]) !=
           1) {
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("the persister did not store the messages");
        it_sleep_ms(POLL_MS);
    }

    /* who may: a member cannot delete another's message; unknown ids are 404 */
    assert_int_equal(del(&other, API1, room, ids[0]), 403);
    assert_int_equal(del(&m, API1, room, "123456789"), 404);
    assert_int_equal(del(&m, API1, room, "x1"), 404);
    /* the author: one event, live on both gateways, right after the last message */
    assert_int_equal(del(&m, API1, room, ids[0]), 204);
    dseq[0] = expect_deleted(w2, ids[0], seq[NMSG - 1], m.id);
    assert_int_equal(expect_deleted(w1, ids[0], seq[NMSG - 1], m.id), dseq[0]);
    /* twice: 204, no second event (the next one on the stream is the admin's delete) */
    assert_int_equal(del(&m, API2, room, ids[0]), 204);
    /* the room's admin, then a site admin who is not a member */
    assert_int_equal(del(&adm, API2, room, ids[1]), 204);
    dseq[1] = expect_deleted(w2, ids[1], dseq[0], adm.id);
    assert_int_equal(del(&site, API1, room, ids[2]), 204);
    dseq[2] = expect_deleted(w2, ids[2], dseq[1], site.id);
    assert_int_equal(it_sql_ll("SELECT count(*) FROM audit_log WHERE action = 'delete_message' AND "
                               "room_id = '%s' AND target_user = '%s'",
                               room, m.id),
                     3);
    assert_int_equal(it_sql_ll("SELECT count(*) FROM audit_log WHERE action = 'delete_message' AND "
                               "room_id = '%s' AND message_id = %s AND actor_id = %s",
                               room, ids[2], site.id),
                     1);

    /* history: the cache once the persister wrote the events (the page ends at the last
     * deletion: a page of 7 can also be the warm-up message and all but the last event), then
     * PostgreSQL alone */
    for (t0 = it_mono_ms();; it_sleep_ms(POLL_MS)) {
        const json_t *arr;

        pg = history(room, "limit=7");
        arr = json_object_get(pg, "messages");
        if (strcmp(it_jstr(pg, "source"), "cache") == 0 && json_array_size(arr) == NMSG + 3 &&
            it_jint(json_array_get(arr, NMSG + 2), "seq") == dseq[2])
            break;
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("history never came from the cache: %s", json_dumps(pg, JSON_COMPACT));
        json_decref(pg);
    }
    check_page(pg, warm, seq, idp, dseq, texts[3]);
    assert_int_equal(it_sql_ll("SELECT count(*) FROM messages WHERE room = '%s' AND kind = "
                               "'message_deleted'",
                               room),
                     3);
    assert_int_equal(
        it_sql_ll("SELECT count(*) FROM messages WHERE room = '%s' AND kind = 'message' "
                  "AND deleted_at IS NOT NULL",
                  room),
        3);
    snprintf(key, sizeof(key), "chat:recent:%s", room);
    assert_int_equal(it_sh("redis-cli -h 127.0.0.1 -p %s DEL %s >/dev/null",
                           it_env("CHAT_TEST_REDIS_PORT"), key),
                     0);
    db = history(room, "limit=7");
    assert_string_equal(it_jstr(db, "source"), "db");
    check_page(db, warm, seq, idp, dseq, texts[3]);
    assert_true(json_equal(json_object_get(pg, "messages"), json_object_get(db, "messages")));
    json_decref(pg);
    json_decref(db);

    /* recovery on both gateways */
    r1 = it_connect(GW1, owner.token);
    r2 = it_connect(GW2, owner.token);
    expect_recovery(r1, room, warm, seq, dseq);
    expect_recovery(r2, room, warm, seq, dseq);

    wsc_close(r1);
    wsc_close(r2);
    wsc_close(w1);
    wsc_close(w2);
    json_decref(owner.session);
    json_decref(adm.session);
    json_decref(m.session);
    json_decref(other.session);
    json_decref(site.session);
}

/* A member who left a room whose history stays open to them (history_after_leave) may read it,
 * so may report its messages; once the room closes it to them, the message is not_found. */
static void test_report_after_leaving(void **state)
{
    struct it_user owner, x;
    char room[80], code[64], p[256], id[32];
    json_t *r;
    long long t0;

    (void)state;
    it_user_new(&owner, "rlo");
    it_user_new(&x, "rlx");
    r = it_api_ok(
        201, API1, "POST", "/api/v1/rooms", owner.token, &cl,
        json_pack("{s:s, s:s, s:b}", "kind", "group", "name", "Leavers", "history_after_leave", 1));
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/invites", room);
    r = it_api_ok(201, API1, "POST", p, owner.token, &cl, json_pack("{s:i}", "max_uses", 0));
    snprintf(code, sizeof(code), "%s", it_jstr(r, "code"));
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/invites/%s/redeem", code);
    json_decref(it_api_ok(200, API2, "POST", p, x.token, &cl, NULL));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages", room);
    r = it_api_ok(200, API1, "POST", p, owner.token, &cl, json_pack("{s:s}", "text", "said"));
    snprintf(id, sizeof(id), "%s", it_jstr(r, "id"));
    json_decref(r);
    it_wait_stored(room, id, it_timeout(WAIT_MS));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/leave", room);
    json_decref(it_api_ok(204, API1, "POST", p, x.token, &cl, NULL));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages/%s/report", room, id);
    json_decref(
        it_api_ok(201, API2, "POST", p, x.token, &cl, json_pack("{s:s}", "reason", "after")));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s", room);
    json_decref(it_api_ok(200, API1, "PATCH", p, owner.token, &cl,
                          json_pack("{s:b}", "history_after_leave", 0)));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages/%s/report", room, id);
    it_api_err(404, "not_found", API1, "POST", p, x.token, &cl,
               json_pack("{s:s}", "reason", "closed"));
    json_decref(owner.session);
    json_decref(x.session);
}

static void test_report(void **state)
{
    struct it_user owner, m, r;
    char room[80], p[256], id[32], cmid[32];
    struct wsc *c;
    json_t *a, *out;
    long long t0;

    (void)state;
    it_user_new(&owner, "ro");
    it_user_new(&m, "rm");
    it_user_new(&r, "rr");
    it_room_new(room, sizeof(room), "rep");
    it_user_room(&owner, room);
    it_user_join(&m, room);
    c = it_connect(GW1, m.token);
    it_join(c, room);
    snprintf(cmid, sizeof(cmid), "rp-%d", (int)getpid());
    a = it_send_acked(c, room, "report me", cmid, NULL);
    snprintf(id, sizeof(id), "%s", it_jstr(a, "id"));
    json_decref(a);
    it_wait_stored(room, id, it_timeout(WAIT_MS));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages/%s/report", room, id);
    it_api_err(400, "bad_field", API1, "POST", p, r.token, &cl, json_pack("{s:s}", "reason", ""));
    it_api_err(400, "bad_field", API1, "POST", p, r.token, &cl, json_pack("{s:i}", "reason", 5));
    out = it_api_ok(201, API1, "POST", p, r.token, &cl, json_pack("{s:s}", "reason", "rude"));
    assert_string_equal(it_jstr(out, "status"), "open");
    assert_true(it_is_decimal(it_jstr(out, "id")));
    assert_int_equal(
        it_sql_ll("SELECT count(*) FROM reports WHERE id = %s AND reporter_id = %s AND "
                  "message_id = %s AND room_id = '%s' AND reason = 'rude'",
                  it_jstr(out, "id"), r.id, id, room),
        1);
    json_decref(out);
    it_api_err(409, "already_reported", API2, "POST", p, r.token, &cl,
               json_pack("{s:s}", "reason", "again"));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages/%s/report", room, "987654321");
    it_api_err(404, "not_found", API1, "POST", p, r.token, &cl, json_pack("{s:s}", "reason", "x"));
    wsc_close(c);
    json_decref(owner.session);
    json_decref(m.session);
    json_decref(r.session);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_report),
        cmocka_unit_test(test_report_after_leaving),
    };

    it_env_load();
    it_client_new(&cl, "203.0.113");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
