/* it_moderation_spam.c - the spam rule and slow mode across the cluster (issue 13,
 * proto/README.md section 4 "Spam rule and slow mode"). The test cluster runs with
 * CHAT_SPAM_BAN_S=3 (tests/integration/CMakeLists.txt) and the default 4 of 5:
 *   - 4 of a user's last 5 messages the same after normalisation (case, surrounding and inner
 *     white space), sent from two gateways and REST, trip the rule: the tripping send gets
 *     chat_banned with reason "spam" and until ~ now + 3 s; every later send on both gateways (the
 *     other one within a second) and REST is refused until then; the user still reads; after until
 * sends are acked again (no earlier than until - 100 ms, within until + 1.5 s); a repeat offence
 * doubles the ban; the persister stores a sanctions row and an audit_log row per ban;
 *   - slow mode 2 s (PATCH by the owner): the second send in a row gets slow_mode with retry_ms in
 *     (0, 2000], accepted after retry_ms; the same on the other gateway and REST (429). */
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

#define WAIT_MS 10000
#define BAN_MS  3000 /* CHAT_SPAM_BAN_S of the test cluster */

static struct it_client cl;

/* Sends text on c and returns the answer (ack or error; json_decref it). */
static json_t *send_text(struct wsc *c, const char *room, const char *text)
{
    static int n;
    char cmid[48];

    snprintf(cmid, sizeof(cmid), "spam-%d-%d", (int)getpid(), n++);
    it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", text, "client_msg_id",
            cmid);
    return it_reply_to(c, cmid, NULL);
}

static void expect_ack(struct wsc *c, const char *room, const char *text)
{
    json_t *r = send_text(c, room, text);

    if (strcmp(it_jstr(r, "type"), "ack") != 0)
        fail_msg("'%s' not acked: %s", text, json_dumps(r, 0));
    json_decref(r);
}

/* The answer to a send must be the error code; returns it (json_decref it). */
static json_t *expect_error(struct wsc *c, const char *room, const char *text, const char *code)
{
    json_t *r = send_text(c, room, text);

    if (strcmp(it_jstr(r, "type"), "error") != 0 || strcmp(it_jstr(r, "code"), code) != 0)
        fail_msg("'%s': want %s, got %s", text, code, json_dumps(r, 0));
    return r;
}

static int rest_send(
    const struct it_user *u, const char *room, const char *text, json_t **out, int *retry_after)
{
    char p[200];

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages", room);
    return it_api(API2, "POST", p, u->token, &cl, json_pack("{s:s}", "text", text), out,
                  retry_after);
}

/* Checks a chat_banned error from the spam rule: until within [lo, hi] (ms since the epoch). */
static long long check_spam_ban(json_t *e, long long lo, long long hi)
{
    long long until;

    assert_string_equal(it_jstr(e, "reason"), "spam");
    until = it_jint(e, "until");
    if (until < lo || until > hi)
        fail_msg("until %lld not in [%lld, %lld]", until, lo, hi);
    return until;
}

/* Polls with unique sends every 100 ms until one is acked; returns the wall ms of the ack. */
static long long send_until_acked(struct wsc *c, const char *room, long long limit_ms)
{
    long long t0 = it_mono_ms();

    for (int i = 0;; i++) {
        char text[48];
        json_t *r;
        bool acked;

        snprintf(text, sizeof(text), "poll %d", i);
        r = send_text(c, room, text);
        acked = strcmp(it_jstr(r, "type"), "ack") == 0;
        if (!acked && strcmp(it_jstr(r, "code"), "chat_banned") != 0)
            fail_msg("poll: %s", json_dumps(r, 0));
        json_decref(r);
        if (acked)
            return it_wall_ms();
        if (it_mono_ms() - t0 > limit_ms)
            fail_msg("no ack within %lld ms", limit_ms);
        it_sleep_ms(100);
    }
}

/* Sends distinct texts on c until one is refused as chat_banned, within limit_ms. */
static void banned_within(struct wsc *c, const char *room, long long limit_ms)
{
    long long t0 = it_mono_ms();

    for (int i = 0;; i++) {
        char text[48];
        json_t *r;
        bool refused;

        snprintf(text, sizeof(text), "probe %d", i);
        r = send_text(c, room, text);
        refused = strcmp(it_jstr(r, "type"), "error") == 0;
        if (refused && strcmp(it_jstr(r, "code"), "chat_banned") != 0)
            fail_msg("probe: %s", json_dumps(r, 0));
        json_decref(r);
        if (refused) {
            print_message("the ban refused sends on the other gateway after %lld ms\n",
                          it_mono_ms() - t0);
            return;
        }
        if (it_mono_ms() - t0 > limit_ms)
            fail_msg("not refused within %lld ms", limit_ms);
        it_sleep_ms(20);
    }
}

static long long db_count(const char *sql_fmt, const char *user)
{
    char sql[512];

    snprintf(sql, sizeof(sql), sql_fmt, user);
    return it_sql_ll("%s", sql);
}

/* Waits (bounded) until the query counts want rows. */
static void wait_count(const char *sql_fmt, const char *user, long long want)
{
    long long t0 = it_mono_ms(), n = -1;

    while (it_mono_ms() - t0 < it_timeout(WAIT_MS)) {
        n = db_count(sql_fmt, user);
        if (n == want)
            return;
        it_sleep_ms(100);
    }
    fail_msg("%s: %lld rows, want %lld", sql_fmt, n, want);
}

static void test_spam_rule(void **state)
{
    struct it_user owner, u, w;
    char room[80];
    struct wsc *u1, *u2, *ws;
    json_t *e, *out = NULL;
    long long before, after, until, acked;
    int st;

    (void)state;
    it_user_new(&owner, "so");
    it_user_new(&u, "su");
    it_user_new(&w, "sw");
    it_room_new(room, sizeof(room), "spam");
    it_user_room(&owner, room);
    u1 = it_connect(GW1, u.token);
    u2 = it_connect(GW2, u.token);
    ws = it_connect(GW2, w.token);
    it_join(u1, room);
    it_join(u2, room);
    it_join(ws, room);

    /* 4 of the last 5 the same after normalisation, from two gateways and REST */
    expect_ack(u1, room, "Buy now");
    expect_ack(u2, room, "  buy   NOW ");
    assert_int_equal(rest_send(&u, room, "hello there", &out, NULL), 200);
    json_decref(out);
    assert_int_equal(rest_send(&u, room, "BUY  now ", &out, NULL), 200);
    json_decref(out);
    before = it_wall_ms();
    e = expect_error(u1, room, " Buy Now", "chat_banned");
    after = it_wall_ms();
    until = check_spam_ban(e, before + BAN_MS - 100, after + BAN_MS + 100);
    json_decref(e);

    /* refused everywhere until then, whatever the text (the other gateway within a second: a
     * text new on a connection is produced while its check runs, so that gateway refuses once
     * the ban reached it); reading goes on */
    banned_within(u2, room, it_timeout(1000));
    st = rest_send(&u, room, "over REST", &out, NULL);
    it_check_error(st, out, 403, "chat_banned", "REST send while chat-banned");
    assert_string_equal(it_jstr(out, "error.reason"), "spam");
    json_decref(out);
    it_expect_sent(ws, room, "you can read this", "spam-read", NULL);
    e = it_wait_frame(u1, "message", "client_msg_id", "spam-read", NULL, it_timeout(WAIT_MS));
    assert_non_null(e);
    json_decref(e);

    /* sends work again after until (not before) */
    acked = send_until_acked(u2, room, it_timeout(BAN_MS + WAIT_MS));
    print_message("acked again %lld ms after until\n", acked - until);
    assert_true(acked >= until - 100);
    assert_true(acked <= until + it_timeout(1500));
    expect_ack(u1, room, "and on the other gateway");

    /* a repeat offence within the window doubles the ban */
    for (int i = 0; i < 3; i++)
        expect_ack(i % 2 ? u1 : u2, room, "again!");
    before = it_wall_ms();
    e = expect_error(u1, room, "AGAIN!", "chat_banned");
    after = it_wall_ms();
    check_spam_ban(e, before + 2 * BAN_MS - 100, after + 2 * BAN_MS + 100);
    json_decref(e);

    /* the persister stores both: sanctions and audit rows */
    wait_count("SELECT count(*) FROM sanctions WHERE user_id = '%s' AND kind = 'chat_ban' AND "
               "room_id IS NULL AND created_by IS NULL AND reason = 'spam' AND expires_at IS NOT "
               "NULL",
               u.id, 2);
    wait_count("SELECT count(*) FROM audit_log WHERE target_user = '%s' AND action = 'chat_ban' "
               "AND actor_id IS NULL AND reason = 'spam' AND details->>'rule' = 'spam' AND "
               "(details->>'offence')::int IN (1, 2)",
               u.id, 2);
    assert_int_equal(db_count("SELECT count(DISTINCT details->>'offence') FROM audit_log WHERE "
                              "target_user = '%s' AND action = 'chat_ban'",
                              u.id),
                     2);
    wsc_close(u1);
    wsc_close(u2);
    wsc_close(ws);
    it_user_free(&owner);
    it_user_free(&u);
    it_user_free(&w);
}

/* Two sends in a row on c: returns the second's slow_mode error once slow mode is in force on c's
 * gateway (the room's setting travels through chat.rooms). */
static json_t *slow_refusal(struct wsc *c, const char *room)
{
    long long t0 = it_mono_ms();

    for (int i = 0;; i++) {
        char text[48];
        json_t *r;

        snprintf(text, sizeof(text), "first %d", i);
        json_decref(send_text(c, room, text));
        snprintf(text, sizeof(text), "second %d", i);
        r = send_text(c, room, text);
        if (strcmp(it_jstr(r, "type"), "error") == 0 &&
            strcmp(it_jstr(r, "code"), "slow_mode") == 0)
            return r;
        if (strcmp(it_jstr(r, "type"), "ack") != 0)
            fail_msg("second send: %s", json_dumps(r, 0));
        json_decref(r);
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("slow mode not in force within %d ms", WAIT_MS);
        it_sleep_ms(100);
    }
}

/* The same text sent once from each of four connections (two per gateway): each send is new on
 * its connection, so its check runs beside its produce and all four are delivered; the fourth
 * trips the rule all the same, and the user is chat-banned from then on: every connection is
 * told (a sanction frame) and sends are refused, on both gateways. */
static void test_spam_beside(void **state)
{
    struct it_user owner, u;
    char room[80];
    struct wsc *c[4];
    json_t *e;

    (void)state;
    it_user_new(&owner, "bo");
    it_user_new(&u, "bu");
    it_room_new(room, sizeof(room), "beside");
    it_user_room(&owner, room);
    for (int i = 0; i < 4; i++) {
        c[i] = it_connect(i % 2 ? GW2 : GW1, u.token);
        it_join(c[i], room);
    }
    for (int i = 0; i < 3; i++)
        expect_ack(c[i], room, i % 2 ? "same OLD text" : "Same old text");
    /* the fourth: its ack and the ban's sanction frame, in either order */
    it_send(c[3], "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "SAME old text",
            "client_msg_id", "beside-4");
    for (bool acked = false, told = false; !acked || !told;) {
        char *t = NULL;
        json_t *j;

        if (wsc_recv_text(c[3], &t, it_timeout(WAIT_MS), NULL) <= 0)
            fail_msg("the fourth send: acked %d, told %d", acked, told);
        j = json_loads(t, 0, NULL);
        wsc_free_text(t);
        if (strcmp(it_jstr(j, "type"), "error") == 0)
            fail_msg("the fourth send was refused: %s", json_dumps(j, 0));
        acked |= strcmp(it_jstr(j, "type"), "ack") == 0;
        if (strcmp(it_jstr(j, "type"), "sanction") == 0) {
            assert_string_equal(it_jstr(j, "kind"), "chat_ban");
            told = true;
        }
        json_decref(j);
    }
    for (int i = 0; i < 3; i++) {
        e = it_wait_frame(c[i], "sanction", "room", "*", NULL, it_timeout(WAIT_MS));
        if (!e)
            fail_msg("connection %d was not told of the chat ban", i);
        assert_string_equal(it_jstr(e, "kind"), "chat_ban");
        assert_string_equal(it_jstr(e, "reason"), "spam");
        assert_true(it_jint(e, "until") > it_wall_ms());
        json_decref(e);
    }
    json_decref(expect_error(c[0], room, "anything", "chat_banned"));
    banned_within(c[1], room, it_timeout(1000));
    for (int i = 0; i < 4; i++)
        wsc_close(c[i]);
    it_user_free(&owner);
    it_user_free(&u);
}

static void test_slow_mode(void **state)
{
    struct it_user owner, u;
    char room[80], p[200];
    struct wsc *c1, *c2;
    json_t *e, *out = NULL;
    long long retry;
    int st, retry_after = -1;

    (void)state;
    it_user_new(&owner, "lo");
    it_user_new(&u, "lu");
    it_room_new(room, sizeof(room), "slow");
    it_user_room(&owner, room);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s", room);
    json_decref(
        it_api_ok(200, API1, "PATCH", p, owner.token, &cl, json_pack("{s:i}", "slow_mode_s", 2)));
    c1 = it_connect(GW1, u.token);
    c2 = it_connect(GW2, u.token);
    it_join(c1, room);
    it_join(c2, room);

    e = slow_refusal(c1, room);
    retry = it_jint(e, "retry_ms");
    json_decref(e);
    assert_true(retry > 0 && retry <= 2000);
    it_sleep_ms(retry + 20); /* the server's own word: accepted after retry_ms */
    expect_ack(c1, room, "after the wait");

    /* the other gateway: one message per 2 s for the user there too (the first may come before
     * gw2 knows the setting; slow_refusal waits for that), and REST */
    e = slow_refusal(c2, room);
    retry = it_jint(e, "retry_ms");
    json_decref(e);
    assert_true(retry > 0 && retry <= 2000);
    st = rest_send(&u, room, "over REST", &out, &retry_after);
    it_check_error(st, out, 429, "slow_mode", "REST send in slow mode");
    json_decref(out);
    assert_true(retry_after >= 1 && retry_after <= 2);
    it_sleep_ms(retry + 20);
    expect_ack(c2, room, "after the wait, gw2");
    e = expect_error(c1, room, "right after, gw1", "slow_mode");
    retry = it_jint(e, "retry_ms");
    assert_true(retry > 0 && retry <= 2000);
    json_decref(e);
    wsc_close(c1);
    wsc_close(c2);
    it_user_free(&owner);
    it_user_free(&u);
}

/* Sends queued behind a send that trips the spam rule are checked again when their turn comes:
 * the ban the rule just imposed refuses them (chat_banned), they are not produced after it.
 * Redis is held (CLIENT PAUSE WRITE) while the burst arrives, so the last two are queued behind
 * the repeated texts waiting for their script. */
static void test_queued_sends_meet_the_new_ban(void **state)
{
    static const char *const burst[] = {"same", "same", "same", "same", "new one", "another"};
    static const char *const want[] = {"ack",         "ack",         "ack",
                                       "chat_banned", "chat_banned", "chat_banned"};
    struct it_user owner, u;
    char room[80];
    struct wsc *c;

    (void)state;
    it_user_new(&owner, "qo");
    it_user_new(&u, "qu");
    it_room_new(room, sizeof(room), "queued");
    it_user_room(&owner, room);
    c = it_connect(GW1, u.token);
    it_join(c, room);
    assert_int_equal(it_sh("test \"$(redis-cli -h 127.0.0.1 -p %s CLIENT PAUSE 500 WRITE)\" = OK",
                           it_env("CHAT_TEST_REDIS_PORT")),
                     0);
    for (int i = 0; i < 6; i++) {
        char ref[8];
        snprintf(ref, sizeof(ref), "q%d", i);
        it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", burst[i], "ref",
                ref);
    }
    /* the replies (ack or error, with the send's ref): an ack comes with Kafka's delivery, an
     * error at once, so they may come in any order */
    for (int got = 0; got < 6;) {
        char *text;
        const char *type, *code, *r;
        json_t *f;
        int i;

        if (wsc_recv_text(c, &text, it_timeout(10000), NULL) <= 0)
            fail_msg("%d of 6 sends answered", got);
        f = json_loads(text, 0, NULL);
        wsc_free_text(text);
        r = json_string_value(json_object_get(f, "ref"));
        if (!r) { /* a message or a sanction frame: not a reply */
            json_decref(f);
            continue;
        }
        i = r[0] == 'q' ? atoi(r + 1) : -1;
        assert_true(i >= 0 && i < 6);
        type = json_string_value(json_object_get(f, "type"));
        code = json_string_value(json_object_get(f, "code"));
        if (strcmp(want[i], "ack") == 0 ? strcmp(type, "ack") != 0
                                        : !code || strcmp(code, want[i]) != 0)
            fail_msg("send %d (\"%s\"): %s %s, want %s", i, burst[i], type, code ? code : "",
                     want[i]);
        json_decref(f);
        got++;
    }
    wsc_close(c);
    it_user_free(&owner);
    it_user_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spam_rule),
        cmocka_unit_test(test_spam_beside),
        cmocka_unit_test(test_slow_mode),
        cmocka_unit_test(test_queued_sends_meet_the_new_ban),
    };

    it_env_load();
    it_client_new(&cl, "203.0.113");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
