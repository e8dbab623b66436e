/* it_edits.c - editing messages (protocol version 4; proto/README.md sections 5 `message`,
 * `message_edited`, 9 "Messages" and the administration API, 10, 11): the author's PATCH answers
 * 200 {"id","room","text","edited_at"} and makes one `message_edited` event of the room's stream,
 * live on both gateways with its own seq and prev; history (from the Redis recent cache and from
 * PostgreSQL alike) and `join {since}` recovery (on both gateways) give the message in its newest
 * form with edited_at, followed in seq order by its edits; once the message is deleted, its edits
 * lose their texts too and it cannot be edited; who may edit and the text rules (the errors of a
 * send, sanctions, restricted rooms); the administration API keeps the text the message was sent
 * with; CHAT_EDIT_PER_USER edits per CHAT_AUTH_WINDOW_S, then 429. */
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
#define POLL_MS 50 /* polling a condition (a stored row, a history page), never a fixed wait */
#define NEDIT   2  /* edits of the message of a scene */

static struct it_client cl;

/* ---------------------------------------------------------------------------------------------
 * helpers */

/* A text no other send of this run has (the spam rule compares a user's last texts). */
static void unique_text(char *buf, size_t cap, const char *what)
{
    static int n;

    snprintf(buf, cap, "%s %d-%d", what, (int)getpid(), n++);
}

/* Sends text to room over REST as u; returns the ack (id, seq, ts). */
static json_t *send_rest(const struct it_user *u, const char *room, const char *text)
{
    char p[200];

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages", room);
    return it_api_ok(200, API1, "POST", p, u->token, &cl, json_pack("{s:s}", "text", text));
}

static void msg_path(char *p, size_t cap, const char *room, const char *id)
{
    snprintf(p, cap, "/api/v1/rooms/%s/messages/%s", room, id);
}

/* PATCH of message id with a raw body; the status, *out the answer, *ra Retry-After. */
static int patch_raw(const char *api,
                     const char *token,
                     const char *room,
                     const char *id,
                     const char *body,
                     json_t **out,
                     int *ra)
{
    char p[256];

    msg_path(p, sizeof(p), room, id);
    return it_api_raw(api, "PATCH", p, token, &cl, body, 0, out, ra);
}

/* A PATCH {"text":text} of message id that must fail with want and code. */
static void edit_err(int want,
                     const char *code,
                     const char *api,
                     const char *token,
                     const char *room,
                     const char *id,
                     json_t *body)
{
    char p[256];

    msg_path(p, sizeof(p), room, id);
    it_api_err(want, code, api, "PATCH", p, token, &cl, body);
}

/* u edits message id to text through api: 200 {"id","room","text","edited_at"} (edited_at now);
 * returns edited_at. */
static long long edit_ok(
    const struct it_user *u, const char *api, const char *room, const char *id, const char *text)
{
    long long before = it_wall_ms(), at;
    char p[256];
    json_t *out;

    msg_path(p, sizeof(p), room, id);
    out = it_api_ok(200, api, "PATCH", p, u->token, &cl, json_pack("{s:s}", "text", text));
    assert_string_equal(it_jstr(out, "id"), id);
    assert_string_equal(it_jstr(out, "room"), room);
    assert_string_equal(it_jstr(out, "text"), text);
    at = it_jint(out, "edited_at");
    if (at < before - 5000 || at > it_wall_ms() + 5000) /* ms since the epoch, server clock */
        fail_msg("edited_at %lld is not near now (%lld)", at, before);
    json_decref(out);
    return at;
}

/* The next message_edited frame on c for message id: seq after prev (= prev, the room's previous
 * event), room, author user, text and ts (= the PATCH's edited_at). Returns its seq. */
static long long expect_edited(struct wsc *c,
                               const char *room,
                               const char *id,
                               const char *user,
                               const char *text,
                               long long prev,
                               long long ts)
{
    json_t *f = it_wait_frame(c, "message_edited", "id", id, NULL, it_timeout(WAIT_MS));
    long long seq;

    if (!f)
        fail_msg("no message_edited for %s (%s)", id, text);
    seq = it_jint(f, "seq");
    if (seq <= prev || it_jint(f, "prev") != prev)
        fail_msg("message_edited %s: seq %lld prev %lld, expected prev %lld", id, seq,
                 it_jint(f, "prev"), prev);
    assert_string_equal(it_jstr(f, "room"), room);
    assert_string_equal(it_jstr(f, "user"), user);
    assert_string_equal(it_jstr(f, "text"), text);
    assert_int_equal(it_jint(f, "ts"), ts);
    assert_null(json_object_get(f, "deleted"));
    json_decref(f);
    return seq;
}

/* GET a history page of room (anonymous: a public room) through api. */
static json_t *history(const char *api, const char *room, const char *query)
{
    char p[256];

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages?%s", room, query);
    return it_api_ok(200, api, "GET", p, NULL, &cl, NULL);
}

/* Polls the newest page of n events of room until it comes from the recent cache and ends with
 * seq last (the persister stored and cached everything up to it). */
static json_t *history_cached(const char *room, int n, long long last)
{
    char q[32];
    long long t0 = it_mono_ms();

    snprintf(q, sizeof(q), "limit=%d", n);
    for (;; it_sleep_ms(POLL_MS)) {
        json_t *pg = history(API2, room, q);
        const json_t *arr = json_object_get(pg, "messages");

        if (strcmp(it_jstr(pg, "source"), "cache") == 0 && json_array_size(arr) == (size_t)n &&
            it_jint(json_array_get(arr, (size_t)n - 1), "seq") == last)
            return pg;
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("history of %s never came from the cache up to %lld: %s", room, last,
                     json_dumps(pg, JSON_COMPACT));
        json_decref(pg);
    }
}

/* The same page from PostgreSQL: the room's cache key deleted first. */
static json_t *history_db(const char *room, int n)
{
    char q[32], key[128];
    json_t *pg;

    snprintf(key, sizeof(key), "chat:recent:%s", room);
    assert_int_equal(it_sh("redis-cli -h 127.0.0.1 -p %s DEL %s >/dev/null",
                           it_env("CHAT_TEST_REDIS_PORT"), key),
                     0);
    snprintf(q, sizeof(q), "limit=%d", n);
    pg = history(API1, room, q);
    assert_string_equal(it_jstr(pg, "source"), "db");
    return pg;
}

/* ---------------------------------------------------------------------------------------------
 * a scene: a room with a warm-up message and a message m sent over WebSocket on gw1 by its
 * author, stored, then edited NEDIT times over REST (through api1 and api2 in turn); each edit
 * seen live on gw1 (the author's connection) and on gw2 (an anonymous watcher), so both gateways
 * have consumed every edit before anything else is checked */

struct scene {
    struct it_user a; /* the author, owner of the room */
    char room[80], id[32], cmid[48], sent[64], texts[NEDIT][64];
    struct wsc *w1, *w2;
    long long warm, seq, eseq[NEDIT], ets[NEDIT];
    long long dseq; /* the message_deleted event's seq, once deleted (scene_delete) */
};

static void scene_open(struct scene *s, const char *tag)
{
    json_t *ack;
    long long prev;

    memset(s, 0, sizeof(*s));
    it_user_new(&s->a, tag);
    it_room_new(s->room, sizeof(s->room), tag);
    it_user_room(&s->a, s->room);
    s->w1 = it_connect(GW1, s->a.token);
    s->w2 = it_connect(GW2, NULL);
    it_join(s->w1, s->room);
    it_join(s->w2, s->room);
    /* a warm-up message: the room's first event has no prev in the cache, so a page starting
     * there cannot come from it; m's page starts after it */
    snprintf(s->cmid, sizeof(s->cmid), "%s-w-%d", tag, (int)getpid());
    unique_text(s->sent, sizeof(s->sent), "warm");
    ack = it_send_acked(s->w1, s->room, s->sent, s->cmid, NULL);
    s->warm = it_jint(ack, "seq");
    json_decref(ack);
    snprintf(s->cmid, sizeof(s->cmid), "%s-m-%d", tag, (int)getpid());
    unique_text(s->sent, sizeof(s->sent), "as sent");
    ack = it_send_acked(s->w1, s->room, s->sent, s->cmid, NULL);
    s->seq = it_jint(ack, "seq");
    snprintf(s->id, sizeof(s->id), "%s", it_jstr(ack, "id"));
    json_decref(ack);
    it_wait_stored(s->room, s->id, it_timeout(WAIT_MS));
    prev = s->seq;
    for (int i = 0; i < NEDIT; i++) {
        unique_text(s->texts[i], sizeof(s->texts[i]), i ? "edited again ✓" : "edited Привет");
        s->ets[i] = edit_ok(&s->a, i % 2 ? API2 : API1, s->room, s->id, s->texts[i]);
        s->eseq[i] = expect_edited(s->w2, s->room, s->id, s->a.id, s->texts[i], prev, s->ets[i]);
        assert_int_equal(
            expect_edited(s->w1, s->room, s->id, s->a.id, s->texts[i], prev, s->ets[i]),
            s->eseq[i]);
        prev = s->eseq[i];
    }
}

/* The author deletes m (204): a message_deleted event right after the last edit, on both
 * gateways. */
static void scene_delete(struct scene *s)
{
    char p[256];
    json_t *f;

    msg_path(p, sizeof(p), s->room, s->id);
    json_decref(it_api_ok(204, API1, "DELETE", p, s->a.token, &cl, NULL));
    for (int i = 0; i < 2; i++) {
        f = it_wait_frame(i ? s->w1 : s->w2, "message_deleted", "id", s->id, NULL,
                          it_timeout(WAIT_MS));
        if (!f)
            fail_msg("no message_deleted for %s", s->id);
        if (i == 0)
            s->dseq = it_jint(f, "seq");
        assert_int_equal(it_jint(f, "seq"), s->dseq);
        assert_int_equal(it_jint(f, "prev"), s->eseq[NEDIT - 1]);
        assert_string_equal(it_jstr(f, "by"), s->a.id);
        json_decref(f);
    }
}

static void scene_close(struct scene *s)
{
    wsc_close(s->w1);
    wsc_close(s->w2);
    it_user_free(&s->a);
}

/* The events of the scene from m on, as history or a recovery replay gives them (arr, what names
 * it): m in its newest form (the last edit's text, edited_at its ts) followed by its edits in seq
 * order, each with its text, the prev chain unbroken from the warm-up message; once deleted
 * (deleted): m as {"deleted":true,"text":""}, each edit as {"text":"","deleted":true}, then the
 * message_deleted event. */
static void check_events(const json_t *arr, const struct scene *s, bool deleted, const char *what)
{
    size_t n = 1 + NEDIT + (deleted ? 1 : 0);
    long long prev = s->warm;

    if (json_array_size(arr) != n)
        fail_msg("%s: %zu events, expected %zu: %s", what, json_array_size(arr), n,
                 json_dumps(arr, JSON_COMPACT));
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(arr, i);
        long long seq = it_jint(m, "seq");

        if (it_jint(m, "prev") != prev)
            fail_msg("%s: event %zu: prev %lld, expected %lld", what, i, it_jint(m, "prev"), prev);
        prev = seq;
        assert_string_equal(it_jstr(m, "room"), s->room);
        assert_string_equal(it_jstr(m, "id"), s->id);
        if (i == 0) { /* the message */
            assert_string_equal(it_jstr(m, "type"), "message");
            assert_int_equal(seq, s->seq);
            assert_string_equal(it_jstr(m, "user"), s->a.id);
            if (deleted) { /* the deleted form has no client_msg_id either */
                assert_true(json_is_true(json_object_get(m, "deleted")));
                assert_string_equal(it_jstr(m, "text"), "");
            } else {
                assert_null(json_object_get(m, "deleted"));
                assert_string_equal(it_jstr(m, "client_msg_id"), s->cmid);
                assert_string_equal(it_jstr(m, "text"), s->texts[NEDIT - 1]);
                assert_int_equal(it_jint(m, "edited_at"), s->ets[NEDIT - 1]);
            }
        } else if (i <= NEDIT) { /* its edits */
            assert_string_equal(it_jstr(m, "type"), "message_edited");
            assert_int_equal(seq, s->eseq[i - 1]);
            assert_string_equal(it_jstr(m, "user"), s->a.id);
            assert_int_equal(it_jint(m, "ts"), s->ets[i - 1]);
            if (deleted) {
                assert_true(json_is_true(json_object_get(m, "deleted")));
                assert_string_equal(it_jstr(m, "text"), "");
            } else {
                assert_null(json_object_get(m, "deleted"));
                assert_string_equal(it_jstr(m, "text"), s->texts[i - 1]);
            }
        } else { /* the deletion */
            assert_string_equal(it_jstr(m, "type"), "message_deleted");
            assert_int_equal(seq, s->dseq);
            assert_string_equal(it_jstr(m, "by"), s->a.id);
        }
    }
}

/* A new anonymous connection to gw joins the scene's room with since = the warm-up message:
 * joined {"recovered":true,"replayed":n}, then n events of the room's stream; returns them. */
static json_t *recover(const char *gw, const struct scene *s, size_t n)
{
    struct wsc *c = it_connect(gw, NULL);
    json_t *j, *arr = json_array();

    it_send(c, "{s:s, s:s, s:I}", "type", "join", "room", s->room, "since", (json_int_t)s->warm);
    j = it_wait_frame(c, "joined", "room", s->room, NULL, it_timeout(WAIT_MS));
    if (!j)
        fail_msg("no joined for %s on %s", s->room, gw);
    if (!json_is_true(json_object_get(j, "recovered")) || it_jint(j, "replayed") != (long long)n)
        fail_msg("join since %lld on %s: %s, expected %zu replayed", s->warm, gw,
                 json_dumps(j, JSON_COMPACT), n);
    json_decref(j);
    while (json_array_size(arr) < n) {
        char *t = NULL;
        json_t *f;
        const char *type;

        if (wsc_recv_text(c, &t, it_timeout(WAIT_MS), NULL) <= 0)
            fail_msg("replayed event %zu of %zu missing on %s", json_array_size(arr), n, gw);
        f = json_loads(t, 0, NULL);
        wsc_free_text(t);
        type = f ? json_string_value(json_object_get(f, "type")) : NULL;
        if (type && (strcmp(type, "message") == 0 || strcmp(type, "message_edited") == 0 ||
                     strcmp(type, "message_deleted") == 0 || strcmp(type, "system") == 0))
            json_array_append_new(arr, f);
        else
            json_decref(f); /* presence, sanction */
    }
    wsc_close(c);
    return arr;
}

/* ---------------------------------------------------------------------------------------------
 * tests */

/* Live: A sends over WebSocket on gw1 and edits over REST (200 {"id","room","text","edited_at"});
 * B, joined on gw2, gets message_edited with its own seq, prev = the message's seq (the room's
 * previous event), the message's id, A as user, the new text and ts = edited_at; so do A's
 * sending connection and its other connection on gw2. A second edit (through the other
 * chat-api) is the next event: its prev is the first edit's seq. */
static void test_edit_live_on_both_gateways(void **state)
{
    struct it_user a, b;
    char room[80], cmid[48], text[64], id[32];
    struct wsc *a1, *a2, *bw;
    long long seq, ts, prev, at;
    json_t *ack, *m;

    (void)state;
    it_user_new(&a, "ela");
    it_user_new(&b, "elb");
    it_room_new(room, sizeof(room), "elive");
    it_user_room(&a, room);
    a1 = it_connect(GW1, a.token);
    a2 = it_connect(GW2, a.token);
    bw = it_connect(GW2, b.token);
    it_join(a1, room);
    it_join(a2, room);
    it_join(bw, room);
    snprintf(cmid, sizeof(cmid), "el-%d", (int)getpid());
    unique_text(text, sizeof(text), "live");
    ack = it_send_acked(a1, room, text, cmid, NULL);
    seq = it_jint(ack, "seq");
    ts = it_jint(ack, "ts");
    snprintf(id, sizeof(id), "%s", it_jstr(ack, "id"));
    json_decref(ack);
    /* the live message itself is never edited: no edited_at */
    m = it_wait_frame(bw, "message", "client_msg_id", cmid, NULL, it_timeout(WAIT_MS));
    if (!m)
        fail_msg("message %s did not reach gw2", cmid);
    assert_int_equal(it_jint(m, "seq"), seq);
    assert_null(json_object_get(m, "edited_at"));
    json_decref(m);
    it_wait_stored(room, id, it_timeout(WAIT_MS));

    prev = seq;
    for (int i = 0; i < 2; i++) {
        long long e;

        unique_text(text, sizeof(text), i ? "second edit" : "first edit ✓");
        at = edit_ok(&a, i ? API2 : API1, room, id, text);
        assert_true(at >= ts);
        e = expect_edited(bw, room, id, a.id, text, prev, at);
        assert_int_equal(expect_edited(a2, room, id, a.id, text, prev, at), e);
        assert_int_equal(expect_edited(a1, room, id, a.id, text, prev, at), e);
        prev = e;
    }
    wsc_close(a1);
    wsc_close(a2);
    wsc_close(bw);
    it_user_free(&a);
    it_user_free(&b);
}

/* History: the page from the message on is the message in its newest form (the last edit's
 * text, edited_at = the last edit's ts) followed in seq order by each message_edited event with
 * its own text; the same from the Redis recent cache and from PostgreSQL (cache key deleted);
 * the unedited warm-up message has no edited_at. */
static void test_history_newest_form_cache_and_db(void **state)
{
    struct scene s;
    json_t *pc, *pd, *older;
    const json_t *w;
    char q[48];

    (void)state;
    scene_open(&s, "ehist");
    pc = history_cached(s.room, 1 + NEDIT, s.eseq[NEDIT - 1]);
    check_events(json_object_get(pc, "messages"), &s, false, "history (cache)");
    pd = history_db(s.room, 1 + NEDIT);
    check_events(json_object_get(pd, "messages"), &s, false, "history (db)");
    assert_true(json_equal(json_object_get(pc, "messages"), json_object_get(pd, "messages")));
    /* the page before: the warm-up message, never edited */
    snprintf(q, sizeof(q), "limit=1&before=%lld", s.seq);
    older = history(API1, s.room, q);
    w = json_array_get(json_object_get(older, "messages"), 0);
    assert_int_equal(json_array_size(json_object_get(older, "messages")), 1);
    assert_int_equal(it_jint(w, "seq"), s.warm);
    assert_null(json_object_get(w, "edited_at"));
    json_decref(older);
    json_decref(pc);
    json_decref(pd);
    scene_close(&s);
}

/* Recovery: a client joining with since = a seq before the message (the warm-up message's), on
 * either gateway, gets the message in its edited form (newest text, edited_at) and then both
 * message_edited events, in seq order. */
static void test_recovery_since_gives_edited_form(void **state)
{
    struct scene s;
    json_t *r;

    (void)state;
    scene_open(&s, "erec");
    r = recover(GW1, &s, 1 + NEDIT);
    check_events(r, &s, false, "recovery on gw1");
    json_decref(r);
    r = recover(GW2, &s, 1 + NEDIT);
    check_events(r, &s, false, "recovery on gw2");
    json_decref(r);
    scene_close(&s);
}

/* Delete after edit: once the edited message is deleted, history (cache and PostgreSQL) and
 * join {since} on both gateways give it as {"deleted":true,"text":""}, each of its
 * message_edited events as {"text":"","deleted":true}, then the message_deleted event; a PATCH
 * of the deleted message is 404 not_found on either chat-api. */
static void test_delete_after_edit_drops_edit_texts(void **state)
{
    struct scene s;
    json_t *pc, *pd, *r;
    char text[64];

    (void)state;
    scene_open(&s, "edel");
    scene_delete(&s);
    unique_text(text, sizeof(text), "too late");
    edit_err(404, "not_found", API1, s.a.token, s.room, s.id, json_pack("{s:s}", "text", text));
    edit_err(404, "not_found", API2, s.a.token, s.room, s.id, json_pack("{s:s}", "text", text));
    pc = history_cached(s.room, 2 + NEDIT, s.dseq);
    check_events(json_object_get(pc, "messages"), &s, true, "history after delete (cache)");
    pd = history_db(s.room, 2 + NEDIT);
    check_events(json_object_get(pd, "messages"), &s, true, "history after delete (db)");
    assert_true(json_equal(json_object_get(pc, "messages"), json_object_get(pd, "messages")));
    json_decref(pc);
    json_decref(pd);
    r = recover(GW1, &s, 2 + NEDIT);
    check_events(r, &s, true, "recovery after delete on gw1");
    json_decref(r);
    r = recover(GW2, &s, 2 + NEDIT);
    check_events(r, &s, true, "recovery after delete on gw2");
    json_decref(r);
    /* the PostgreSQL rows: the delete marked the message's edits deleted too (section 11) */
    assert_int_equal(it_sql_ll("SELECT count(*) FROM messages WHERE room = '%s' AND kind = "
                               "'message_edited' AND deleted_at IS NOT NULL",
                               s.room),
                     NEDIT);
    scene_close(&s);
}

/* Group room g of owner with one unlimited invite; returns the invite code in code. */
static void
group_room(const struct it_user *owner, char *room, size_t rcap, char *code, size_t ccap)
{
    char p[200];
    json_t *r;

    r = it_api_ok(201, API1, "POST", "/api/v1/rooms", owner->token, &cl,
                  json_pack("{s:s, s:s}", "kind", "group", "name", "Editors"));
    snprintf(room, rcap, "%s", it_jstr(r, "id"));
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/invites", room);
    r = it_api_ok(201, API1, "POST", p, owner->token, &cl, json_pack("{s:i}", "max_uses", 0));
    snprintf(code, ccap, "%s", it_jstr(r, "code"));
    json_decref(r);
}

static void redeem(const struct it_user *u, const char *code)
{
    char p[200];

    snprintf(p, sizeof(p), "/api/v1/invites/%s/redeem", code);
    json_decref(it_api_ok(200, API2, "POST", p, u->token, &cl, NULL));
}

/* A PATCH refused for a sanction: 403 code with until (> now: a timed sanction) and reason. */
static void edit_sanctioned(
    const struct it_user *u, const char *room, const char *id, const char *code, const char *reason)
{
    json_t *out;
    int st = patch_raw(API2, u->token, room, id, "{\"text\":\"stopped\"}", &out, NULL);

    it_check_error(st, out, 403, code, "PATCH while sanctioned");
    if (it_jint(out, "error.until") <= it_wall_ms())
        fail_msg("%s: until %lld is not ahead", code, it_jint(out, "error.until"));
    assert_string_equal(it_jstr(out, "error.reason"), reason);
    json_decref(out);
}

/* Permissions and errors. Each author makes at most CHAT_EDIT_PER_USER (12 in the test cluster)
 * PATCHes, refused ones included, so the edit limit never answers first.
 * - who: anonymous 401 auth_required, a bad token 401 bad_token; the room's owner and a site
 *   admin (not the author) 403 forbidden;
 * - what: an unknown id, a non-numeric one, the message under another room, an unknown room:
 *   404 not_found;
 * - the body, as for a send: 400 bad_json (malformed, not an object), bad_field (no text, not a
 *   string), empty_text (empty, white space only), bad_text (a control character),
 *   text_too_long (past CHAT_MAX_TEXT, past the room's max_text of 10 code points); exactly 10
 *   code points (20 bytes) is fine;
 * - standing: muted in the room (moderation API) 403 muted with until and reason, fine again once
 *   lifted; the same for a site-wide chat ban (chat_banned) and a room ban (banned);
 * - a restricted room: the author may edit as an active member, not after leaving it (404
 *   not_found, though its history stays readable), nor after being removed (404). */
static void test_who_may_edit_and_text_rules(void **state)
{
    struct it_user o, site, a1, a2, x, y;
    char room[80], g[80], code[64], p[256], big[2100], id[32], gid[32], text[64];
    json_t *ack, *r;
    int st;

    (void)state;
    it_user_new(&o, "eeo");
    it_user_new(&site, "ees");
    it_user_admin(&site);
    it_user_new(&a1, "eea");
    it_user_new(&a2, "eeb");
    it_user_new(&x, "eex");
    it_user_new(&y, "eey");
    it_room_new(room, sizeof(room), "eerr");
    json_decref(it_api_ok(201, API1, "POST", "/api/v1/rooms", o.token, &cl,
                          json_pack("{s:s, s:s, s:s, s:i}", "kind", "public", "name", "Short", "id",
                                    room, "max_text", 10)));
    it_user_join(&a1, room);
    it_user_join(&a2, room);

    /* a1: the text rules (10 PATCHes) */
    ack = send_rest(&a1, room, "short");
    snprintf(id, sizeof(id), "%s", it_jstr(ack, "id"));
    json_decref(ack);
    it_wait_stored(room, id, it_timeout(WAIT_MS));
    st = patch_raw(API1, a1.token, room, id, "{\"text\":", &r, NULL);
    it_check_error(st, r, 400, "bad_json", "PATCH with malformed JSON");
    json_decref(r);
    st = patch_raw(API2, a1.token, room, id, "[\"text\"]", &r, NULL);
    it_check_error(st, r, 400, "bad_json", "PATCH with an array");
    json_decref(r);
    edit_err(400, "bad_field", API1, a1.token, room, id, json_object());
    edit_err(400, "bad_field", API2, a1.token, room, id, json_pack("{s:i}", "text", 5));
    edit_err(400, "empty_text", API1, a1.token, room, id, json_pack("{s:s}", "text", ""));
    edit_err(400, "empty_text", API2, a1.token, room, id, json_pack("{s:s}", "text", " \n\t "));
    edit_err(400, "bad_text", API1, a1.token, room, id, json_pack("{s:s}", "text", "a\x01z"));
    memset(big, 'a', 2001);
    big[2001] = '\0';
    edit_err(400, "text_too_long", API2, a1.token, room, id, json_pack("{s:s}", "text", big));
    edit_err(400, "text_too_long", API1, a1.token, room, id,
             json_pack("{s:s}", "text", "eleven cps!"));
    edit_ok(&a1, API2, room, id, "éééééééééé");

    /* who: nobody but the author */
    msg_path(p, sizeof(p), room, id);
    it_api_err(401, "auth_required", API1, "PATCH", p, NULL, &cl,
               json_pack("{s:s}", "text", "anon"));
    it_api_err(401, "bad_token", API2, "PATCH", p, "not.a.token", &cl,
               json_pack("{s:s}", "text", "forged"));
    edit_err(403, "forbidden", API1, o.token, room, id, json_pack("{s:s}", "text", "owner"));
    edit_err(403, "forbidden", API2, site.token, room, id, json_pack("{s:s}", "text", "admin"));

    /* a2: what is looked up (4 PATCHes), then its standing (5) */
    ack = send_rest(&a2, room, "mine");
    snprintf(gid, sizeof(gid), "%s", it_jstr(ack, "id"));
    json_decref(ack);
    it_wait_stored(room, gid, it_timeout(WAIT_MS));
    edit_err(404, "not_found", API1, a2.token, room, "123456789", json_pack("{s:s}", "text", "x"));
    edit_err(404, "not_found", API2, a2.token, room, "x1", json_pack("{s:s}", "text", "x"));
    edit_err(404, "not_found", API1, a2.token, "lobby", gid, json_pack("{s:s}", "text", "x"));
    snprintf(g, sizeof(g), "%s-none", room);
    edit_err(404, "not_found", API2, a2.token, g, gid, json_pack("{s:s}", "text", "x"));

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/mute", room);
    json_decref(it_api_ok(
        201, API1, "POST", p, o.token, &cl,
        json_pack("{s:s, s:i, s:s}", "user", a2.id, "duration_s", 60, "reason", "edit muted")));
    edit_sanctioned(&a2, room, gid, "muted", "edit muted");
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/mute/%s", room, a2.id);
    json_decref(it_api_ok(204, API2, "DELETE", p, o.token, &cl, NULL));
    edit_ok(&a2, API1, room, gid, "unmuted");

    snprintf(p, sizeof(p), "/api/v1/admin/users/%s/sanctions/chat_ban", a2.id);
    json_decref(it_api_ok(201, API1, "POST", p, site.token, &cl,
                          json_pack("{s:i, s:s}", "duration_s", 60, "reason", "no edits")));
    edit_sanctioned(&a2, room, gid, "chat_banned", "no edits");
    json_decref(it_api_ok(204, API2, "DELETE", p, site.token, &cl, NULL));
    edit_ok(&a2, API1, room, gid, "unbanned");

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/ban", room);
    json_decref(it_api_ok(
        201, API1, "POST", p, o.token, &cl,
        json_pack("{s:s, s:i, s:s}", "user", a2.id, "duration_s", 60, "reason", "edit banned")));
    edit_sanctioned(&a2, room, gid, "banned", "edit banned");

    /* a restricted room: x edits as a member, not after leaving; y not after removal */
    group_room(&o, g, sizeof(g), code, sizeof(code));
    redeem(&x, code);
    redeem(&y, code);
    ack = send_rest(&x, g, "in the group");
    snprintf(id, sizeof(id), "%s", it_jstr(ack, "id"));
    json_decref(ack);
    ack = send_rest(&y, g, "me too");
    snprintf(gid, sizeof(gid), "%s", it_jstr(ack, "id"));
    json_decref(ack);
    it_wait_stored(g, id, it_timeout(WAIT_MS));
    it_wait_stored(g, gid, it_timeout(WAIT_MS));
    edit_ok(&x, API1, g, id, "as a member");
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/leave", g);
    json_decref(it_api_ok(204, API2, "POST", p, x.token, &cl, NULL));
    unique_text(text, sizeof(text), "after leaving");
    edit_err(404, "not_found", API1, x.token, g, id, json_pack("{s:s}", "text", text));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages?limit=5", g);
    json_decref(it_api_ok(200, API2, "GET", p, x.token, &cl, NULL)); /* still reads it */
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/members/%s", g, y.id);
    json_decref(it_api_ok(204, API1, "DELETE", p, o.token, &cl, NULL));
    edit_err(404, "not_found", API2, y.token, g, gid, json_pack("{s:s}", "text", text));

    it_user_free(&o);
    it_user_free(&site);
    it_user_free(&a1);
    it_user_free(&a2);
    it_user_free(&x);
    it_user_free(&y);
}

/* The message of an administration page with id and seq (an edit's row may share the id), or
 * NULL. */
static const json_t *admin_find(const json_t *page, const char *id, long long seq)
{
    const json_t *arr = json_object_get(page, "messages");

    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *m = json_array_get(arr, i);

        if (json_is_string(json_object_get(m, "id")) &&
            strcmp(json_string_value(json_object_get(m, "id")), id) == 0 &&
            json_integer_value(json_object_get(m, "seq")) == seq)
            return m;
    }
    return NULL;
}

/* The admin page of room (limit 50) as adm. */
static json_t *admin_page(const struct it_user *adm, const char *room)
{
    char p[200];

    snprintf(p, sizeof(p), "/api/v1/admin/rooms/%s/messages?limit=50", room);
    return it_api_ok(200, API1, "GET", p, adm->token, &cl, NULL);
}

/* Checks the admin entry of message id/seq: text, original_text (NULL: JSON null), edited_at
 * (0: null, -1: any integer), deleted by (NULL: not deleted). what names it. */
static void check_admin(const json_t *page,
                        const char *id,
                        long long seq,
                        const char *text,
                        const char *original,
                        long long edited_at,
                        const char *by,
                        const char *what)
{
    const json_t *m = admin_find(page, id, seq);
    const json_t *e;
    bool ok;

    if (!m)
        fail_msg("%s: message %s not in %s", what, id, json_dumps(page, JSON_COMPACT));
    e = json_object_get(m, "edited_at");
    ok = json_is_string(json_object_get(m, "text")) &&
         strcmp(json_string_value(json_object_get(m, "text")), text) == 0 &&
         (original
              ? json_is_string(json_object_get(m, "original_text")) &&
                    strcmp(json_string_value(json_object_get(m, "original_text")), original) == 0
              : json_is_null(json_object_get(m, "original_text"))) &&
         (edited_at == 0    ? json_is_null(e)
          : edited_at == -1 ? json_is_integer(e)
                            : json_is_integer(e) && json_integer_value(e) == edited_at) &&
         (by ? json_is_integer(json_object_get(m, "deleted_at")) &&
                   json_is_string(json_object_get(m, "deleted_by")) &&
                   strcmp(json_string_value(json_object_get(m, "deleted_by")), by) == 0
             : json_is_null(json_object_get(m, "deleted_at")));
    if (!ok)
        fail_msg("%s: %s, expected text \"%s\", original_text %s, edited_at %lld, deleted by %s",
                 what, json_dumps(m, JSON_COMPACT), text, original ? original : "null", edited_at,
                 by ? by : "nobody");
}

/* In a history page, messages d1 and d2 (deleted) and their edits come without text: each
 * message as {"deleted":true,"text":""}, each message_edited as {"text":"","deleted":true};
 * what names the page. */
static void
check_no_deleted_text(const json_t *page, const char *d1, const char *d2, const char *what)
{
    const json_t *arr = json_object_get(page, "messages");
    int seen = 0;

    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *m = json_array_get(arr, i);
        const char *type = it_jstr(m, "type"), *id = it_jstr(m, "id");

        if ((strcmp(id, d1) && strcmp(id, d2)) || strcmp(type, "message_deleted") == 0)
            continue;
        seen++;
        if (!json_is_true(json_object_get(m, "deleted")) || strcmp(it_jstr(m, "text"), "") != 0)
            fail_msg("%s: %s of deleted message %s with its text: %s", what, type, id,
                     json_dumps(m, JSON_COMPACT));
    }
    assert_int_equal(seen, 4); /* two messages, one edit each */
}

/* Admin API: GET /api/v1/admin/rooms/{room}/messages (a site admin) gives an edited message with
 * its newest text, edited_at (the last edit's ts) and original_text, the text it was sent with;
 * an unedited one original_text and edited_at null; an edited message deleted afterwards is
 * listed with its newest text and original_text too (deleted ones keep their text here), whether
 * its edit was stored before the delete or the delete (chat-api's own transaction) came first
 * and the persister stored the accepted edit after it; history still gives neither text. */
static void test_admin_api_keeps_original_text(void **state)
{
    struct it_user adm, u;
    char room[80], ids[4][32], sent[4][64], last[64], path[256];
    long long seqs[4], at, at2, at3, t0;
    json_t *page = NULL;

    (void)state;
    it_user_new(&adm, "ead");
    it_user_admin(&adm);
    it_user_new(&u, "eau");
    it_room_new(room, sizeof(room), "eadm");
    it_user_room(&u, room);
    for (int i = 0; i < 4; i++) {
        json_t *ack;

        unique_text(sent[i], sizeof(sent[i]), "original");
        ack = send_rest(&u, room, sent[i]);
        snprintf(ids[i], sizeof(ids[i]), "%s", it_jstr(ack, "id"));
        seqs[i] = it_jint(ack, "seq");
        json_decref(ack);
    }
    it_wait_stored(room, ids[3], it_timeout(WAIT_MS));
    /* 0: edited twice; 1: never; 2: edited, stored, then deleted; 3: edited and deleted at once */
    unique_text(last, sizeof(last), "first fix");
    edit_ok(&u, API1, room, ids[0], last);
    unique_text(last, sizeof(last), "second fix");
    at = edit_ok(&u, API2, room, ids[0], last);
    at2 = edit_ok(&u, API1, room, ids[2], "then gone");
    for (t0 = it_mono_ms();; it_sleep_ms(POLL_MS)) {
        const json_t *m;

        page = admin_page(&adm, room);
        m = admin_find(page, ids[2], seqs[2]);
        if (m && json_is_integer(json_object_get(m, "edited_at")))
            break;
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("the admin API never showed the edit: %s", json_dumps(page, JSON_COMPACT));
        json_decref(page);
    }
    json_decref(page);
    msg_path(path, sizeof(path), room, ids[2]);
    json_decref(it_api_ok(204, API2, "DELETE", path, u.token, &cl, NULL));
    at3 = edit_ok(&u, API1, room, ids[3], "soon gone");
    msg_path(path, sizeof(path), room, ids[3]);
    json_decref(it_api_ok(204, API2, "DELETE", path, u.token, &cl, NULL));

    /* both deletions stored: every edit before them in the stream is stored too */
    for (t0 = it_mono_ms(); it_sql_ll("SELECT count(*) FROM messages WHERE room = '%s' AND kind = "
                                      "'message_deleted'",
                                      room) != 2;
         it_sleep_ms(POLL_MS))
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("the persister did not store the deletions");
    /* whichever came first, history (cache and PostgreSQL) never shows a deleted one's texts:
     * the 9 events after the room's first one (which has no prev in the cache), of 4 messages,
     * 4 edits and 2 deletions */
    for (t0 = it_mono_ms();; it_sleep_ms(POLL_MS)) {
        const json_t *arr, *m;

        page = history(API2, room, "limit=9");
        arr = json_object_get(page, "messages");
        m = json_array_get(arr, json_array_size(arr) - 1);
        if (strcmp(it_jstr(page, "source"), "cache") == 0 && m &&
            strcmp(it_jstr(m, "type"), "message_deleted") == 0 &&
            strcmp(it_jstr(m, "id"), ids[3]) == 0)
            break;
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("history never came from the cache: %s", json_dumps(page, JSON_COMPACT));
        json_decref(page);
    }
    check_no_deleted_text(page, ids[2], ids[3], "history (cache)");
    json_decref(page);
    page = history_db(room, 9);
    check_no_deleted_text(page, ids[2], ids[3], "history (db)");
    json_decref(page);
    page = admin_page(&adm, room);
    check_admin(page, ids[0], seqs[0], last, sent[0], at, NULL, "edited twice");
    check_admin(page, ids[1], seqs[1], sent[1], NULL, 0, NULL, "never edited");
    check_admin(page, ids[2], seqs[2], "then gone", sent[2], at2, u.id, "edited, stored, deleted");
    check_admin(page, ids[3], seqs[3], "soon gone", sent[3], at3, u.id,
                "edited, deleted before the edit was stored");
    json_decref(page);
    it_user_free(&adm);
    it_user_free(&u);
}

/* One rate scenario on a fresh author: CHAT_EDIT_PER_USER edits answer 200, the next 429
 * rate_limited with Retry-After 1..CHAT_AUTH_WINDOW_S. False when the edits did not all fall in
 * one window (a slow machine: inconclusive, run again). The window starts with the first edit,
 * so the scenario was one window when it ended within the window after t0. Then: edits are taken
 * again once the window is over, and the refused ones made no event (history ends with the last
 * accepted text; the room holds exactly the accepted edits). */
static bool rate_once(int limit, int window_s)
{
    struct it_user u;
    char room[80], id[32], text[64], why[160] = "";
    json_t *ack, *out = NULL, *pg;
    long long t0, seq;
    int st, ra = -1;

    it_user_new(&u, "erl");
    it_room_new(room, sizeof(room), "erate");
    it_user_room(&u, room);
    ack = send_rest(&u, room, "rate me");
    snprintf(id, sizeof(id), "%s", it_jstr(ack, "id"));
    seq = it_jint(ack, "seq");
    json_decref(ack);
    it_wait_stored(room, id, it_timeout(WAIT_MS));
    t0 = it_mono_ms();
    for (int i = 0; i < limit && !why[0]; i++) {
        char body[64];

        snprintf(text, sizeof(text), "edit %d", i);
        snprintf(body, sizeof(body), "{\"text\":\"%s\"}", text);
        st = patch_raw(i % 2 ? API2 : API1, u.token, room, id, body, &out, NULL);
        if (st != 200)
            snprintf(why, sizeof(why), "edit %d of %d: %d %s", i + 1, limit, st,
                     json_dumps(out, JSON_COMPACT));
        json_decref(out);
    }
    st = patch_raw(API1, u.token, room, id, "{\"text\":\"one too many\"}", &out, &ra);
    if (it_mono_ms() - t0 >= window_s * 1000LL - 100) {
        json_decref(out);
        it_user_free(&u);
        return false;
    }
    if (why[0])
        fail_msg("%s", why);
    it_check_error(st, out, 429, "rate_limited", "the edit past CHAT_EDIT_PER_USER");
    json_decref(out);
    if (ra < 1 || ra > window_s)
        fail_msg("Retry-After %d, expected 1..%d", ra, window_s);

    /* taken again in the next window (polled, bounded by the window) */
    for (t0 = it_mono_ms();; it_sleep_ms(200)) {
        st = patch_raw(API2, u.token, room, id, "{\"text\":\"next window\"}", &out, NULL);
        json_decref(out);
        if (st == 200)
            break;
        if (st != 429 || it_mono_ms() - t0 > it_timeout((window_s + 3) * 1000))
            fail_msg("an edit after the window: %d", st);
    }
    /* stored in order: once history shows the last edit, every accepted one is stored */
    for (t0 = it_mono_ms();; it_sleep_ms(POLL_MS)) {
        const json_t *arr, *m;

        pg = history(API1, room, "limit=1");
        arr = json_object_get(pg, "messages");
        m = json_array_get(arr, 0);
        if (m && json_is_string(json_object_get(m, "type")) &&
            strcmp(json_string_value(json_object_get(m, "type")), "message_edited") == 0 &&
            strcmp(it_jstr(m, "text"), "next window") == 0)
            break;
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("history never showed the last edit: %s", json_dumps(pg, JSON_COMPACT));
        json_decref(pg);
    }
    json_decref(pg);
    assert_int_equal(it_sql_ll("SELECT count(*) FROM messages WHERE room = '%s' AND kind = "
                               "'message_edited'",
                               room),
                     limit + 1);
    {
        char q[48];

        snprintf(q, sizeof(q), "limit=1&before=%lld", seq + 1);
        pg = history(API2, room, q);
        assert_string_equal(it_jstr(json_array_get(json_object_get(pg, "messages"), 0), "text"),
                            "next window");
        json_decref(pg);
    }
    it_user_free(&u);
    return true;
}

/* A reported message edited afterwards (twice, back to something harmless): the admin's report
 * listing still shows what was reported, as original_text, and every edit in stream order. */
static void test_report_shows_every_version(void **state)
{
    struct it_user adm, u, r;
    char room[80], id[32], sent[64], path[256], rid[32];
    const char *fix[2] = {"nice words", "nicer words"};
    json_t *ack, *out, *page = NULL;
    const json_t *msg = NULL, *edits;
    long long t0;

    (void)state;
    it_user_new(&adm, "erad");
    it_user_admin(&adm);
    it_user_new(&u, "erau");
    it_user_new(&r, "erar");
    it_room_new(room, sizeof(room), "erep");
    it_user_room(&u, room);
    unique_text(sent, sizeof(sent), "rude words");
    ack = send_rest(&u, room, sent);
    snprintf(id, sizeof(id), "%s", it_jstr(ack, "id"));
    json_decref(ack);
    it_wait_stored(room, id, it_timeout(WAIT_MS));
    msg_path(path, sizeof(path), room, id);
    strncat(path, "/report", sizeof(path) - strlen(path) - 1);
    out = it_api_ok(201, API2, "POST", path, r.token, &cl, json_pack("{s:s}", "reason", "rude"));
    snprintf(rid, sizeof(rid), "%s", it_jstr(out, "id"));
    json_decref(out);
    for (int i = 0; i < 2; i++)
        edit_ok(&u, i ? API2 : API1, room, id, fix[i]);
    /* both edits stored, then the report shows all three texts */
    for (t0 = it_mono_ms();
         it_sql_ll("SELECT count(*) FROM messages WHERE target_id = %s", id) != 2;
         it_sleep_ms(POLL_MS))
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("the persister did not store the edits");
    page = it_api_ok(200, API1, "GET", "/api/v1/admin/reports?status=open&limit=200", adm.token,
                     &cl, NULL);
    for (size_t i = 0; i < json_array_size(json_object_get(page, "reports")); i++) {
        const json_t *rep = json_array_get(json_object_get(page, "reports"), i);
        if (strcmp(it_jstr(rep, "id"), rid) == 0)
            msg = json_object_get(rep, "message");
    }
    if (!msg)
        fail_msg("report %s not listed: %s", rid, json_dumps(page, JSON_COMPACT));
    assert_string_equal(it_jstr(msg, "text"), fix[1]);
    assert_string_equal(it_jstr(msg, "original_text"), sent);
    edits = json_object_get(msg, "edits");
    assert_int_equal(json_array_size(edits), 2);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(it_jstr(json_array_get(edits, i), "text"), fix[i]);
    json_decref(page);
    it_user_free(&adm);
    it_user_free(&u);
    it_user_free(&r);
}

/* Rate: past CHAT_EDIT_PER_USER edits per CHAT_AUTH_WINDOW_S, 429 rate_limited with
 * Retry-After; the refused edits change nothing; the next window takes edits again. */
static void test_edit_rate_limit_per_user(void **state)
{
    int limit = it_env_int("CHAT_EDIT_PER_USER", 60),
        window_s = it_env_int("CHAT_AUTH_WINDOW_S", 60);

    (void)state;
    for (int i = 0; i < 4; i++)
        if (rate_once(limit, window_s))
            return;
    fail_msg("4 runs each took longer than one window of %d s", window_s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edit_live_on_both_gateways),
        cmocka_unit_test(test_history_newest_form_cache_and_db),
        cmocka_unit_test(test_recovery_since_gives_edited_form),
        cmocka_unit_test(test_delete_after_edit_drops_edit_texts),
        cmocka_unit_test(test_who_may_edit_and_text_rules),
        cmocka_unit_test(test_admin_api_keeps_original_text),
        cmocka_unit_test(test_report_shows_every_version),
        cmocka_unit_test(test_edit_rate_limit_per_user),
    };

    it_env_load();
    it_client_new(&cl, "203.0.113");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
