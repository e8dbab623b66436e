/* it_moderation.c - room moderation across the cluster (issue 13, proto/README.md section 9
 * "Moderation"): a mute or ban issued through one chat-api replica is in force on both gateways
 * within a second (measured and asserted), for the user on every connection, and on REST sends;
 * a muted user still reads; a banned user's sockets leave the room and cannot come back; a kick
 * takes the sockets out of a public room, which the user may join again; lifting works; every
 * action has its audit row; members cannot moderate and admins cannot act on the owner. */
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

#define WAIT_MS  10000
#define IN_FORCE 1000 /* a sanction reaches every gateway within this (issue 13) */

static struct it_client cl;

/* A moderation action by `by` with reason (NULL: none given) that must answer want; returns the
 * answer. */
static json_t *moderate_why(const struct it_user *by,
                            const char *room,
                            const char *action,
                            const struct it_user *who,
                            int duration_s,
                            const char *reason,
                            int want)
{
    char p[200];
    json_t *body = json_pack("{s:s}", "user", who->id);
    json_t *out = NULL;
    int st;

    if (reason)
        json_object_set_new(body, "reason", json_string(reason));
    if (duration_s > 0)
        json_object_set_new(body, "duration_s", json_integer(duration_s));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/%s", room, action);
    st = it_api(API1, "POST", p, by->token, &cl, body, &out, NULL);
    if (st != want)
        fail_msg("%s of %s in %s by %s: %d, want %d", action, who->name, room, by->name, st, want);
    return out;
}

static json_t *moderate(const struct it_user *by,
                        const char *room,
                        const char *action,
                        const struct it_user *who,
                        int duration_s,
                        int want)
{
    return moderate_why(by, room, action, who, duration_s, "test reason", want);
}

/* Sends on c until the answer is an error with code (returns the elapsed ms since t0; the
 * error in *err) or an ack when code is NULL. Each try is a real send (acked ones are fine). */
static long long
send_until(struct wsc *c, const char *room, const char *code, long long t0, json_t **err)
{
    static int n;

    for (;;) {
        char cmid[32];
        json_t *r;
        bool hit;

        snprintf(cmid, sizeof(cmid), "mod-%d-%d", (int)getpid(), n++);
        /* every probe says something else: repeated texts would trip the spam rule */
        it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", cmid,
                "client_msg_id", cmid);
        r = it_reply_to(c, cmid, NULL);
        hit =
            code ? strcmp(it_jstr(r, "type"), "error") == 0 && strcmp(it_jstr(r, "code"), code) == 0
                 : strcmp(it_jstr(r, "type"), "ack") == 0;
        if (hit) {
            if (err)
                *err = r;
            else
                json_decref(r);
            return it_mono_ms() - t0;
        }
        json_decref(r);
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("no %s on %s within %d ms", code ? code : "ack", room, WAIT_MS);
        it_sleep_ms(20);
    }
}

/* Joins room on c and returns the answer: joined or error (other frames skipped). */
static json_t *join_answer(struct wsc *c, const char *room)
{
    static int n;
    char ref[32];

    snprintf(ref, sizeof(ref), "j%d", n++);
    it_send(c, "{s:s, s:s, s:s}", "type", "join", "room", room, "ref", ref);
    for (;;) {
        char *t = NULL;
        json_t *j;
        const char *r;

        if (wsc_recv_text(c, &t, it_timeout(WAIT_MS), NULL) <= 0)
            fail_msg("no answer to join %s", room);
        j = json_loads(t, 0, NULL);
        wsc_free_text(t);
        r = j ? json_string_value(json_object_get(j, "ref")) : NULL;
        if (r && strcmp(r, ref) == 0)
            return j;
        json_decref(j);
    }
}

static long long audit_count(const char *action, const char *target, const char *room)
{
    return it_sql_ll("SELECT count(*) FROM audit_log WHERE action = '%s' AND target_user = '%s' "
                     "AND room_id = '%s'",
                     action, target, room);
}

static void test_mute_ban_kick(void **state)
{
    struct it_user owner, admin, m, w;
    char room[80], p[200], id[64];
    struct wsc *m1, *m2, *ws;
    json_t *r, *e = NULL;
    long long t0, ms1, ms2;

    (void)state;
    it_user_new(&owner, "mo");
    it_user_new(&admin, "ma");
    it_user_new(&m, "mm");
    it_user_new(&w, "mw");
    it_room_new(id, sizeof(id), "mod");
    r = it_api_ok(201, API1, "POST", "/api/v1/rooms", owner.token, &cl,
                  json_pack("{s:s, s:s, s:s}", "kind", "public", "name", "Moderated", "id", id));
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/join", room);
    json_decref(it_api_ok(200, API2, "POST", p, admin.token, &cl, NULL));
    json_decref(it_api_ok(200, API2, "POST", p, m.token, &cl, NULL));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/members/%s/role", room, admin.id);
    json_decref(
        it_api_ok(204, API1, "POST", p, owner.token, &cl, json_pack("{s:s}", "role", "admin")));

    /* m chats on both gateways; w watches */
    m1 = it_connect(GW1, m.token);
    m2 = it_connect(GW2, m.token);
    ws = it_connect(GW2, w.token);
    it_join(m1, room);
    it_join(m2, room);
    it_join(ws, room);
    send_until(m1, room, NULL, it_mono_ms(), NULL);

    /* who may: a member cannot, an admin cannot act on the owner */
    json_decref(moderate(&w, room, "mute", &m, 60, 403));
    json_decref(moderate(&admin, room, "mute", &owner, 60, 403));

    /* a mute through api1: in force on both gateways within a second */
    t0 = it_mono_ms();
    r = moderate(&admin, room, "mute", &m, 60, 201);
    assert_string_equal(it_jstr(r, "kind"), "mute");
    assert_true(it_jint(r, "until") > it_wall_ms());
    json_decref(r);
    ms1 = send_until(m1, room, "muted", t0, &e);
    assert_string_equal(it_jstr(e, "reason"), "test reason");
    assert_true(json_is_integer(json_object_get(e, "until")));
    json_decref(e);
    ms2 = send_until(m2, room, "muted", t0, NULL);
    print_message("mute in force on gw1 after %lld ms, gw2 after %lld ms\n", ms1, ms2);
    assert_true(ms1 <= it_timeout(IN_FORCE) && ms2 <= it_timeout(IN_FORCE));
    /* the room sees it as a system message, typed apart from user messages */
    e = it_wait_frame(ws, "system", "event", "muted", NULL, it_timeout(WAIT_MS));
    assert_non_null(e);
    assert_string_equal(it_jstr(e, "user"), m.id);
    assert_true(json_is_integer(json_object_get(e, "seq")));
    json_decref(e);
    /* REST sends too */
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages", room);
    it_api_err(403, "muted", API2, "POST", p, m.token, &cl, json_pack("{s:s}", "text", "rest"));
    /* a muted user still reads */
    it_expect_sent(ws, room, "you can read this", "mod-read", NULL);
    e = it_wait_frame(m1, "message", "client_msg_id", "mod-read", NULL, it_timeout(WAIT_MS));
    assert_non_null(e);
    json_decref(e);
    /* lifted: sends again */
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/mute/%s", room, m.id);
    json_decref(it_api_ok(204, API2, "DELETE", p, admin.token, &cl, NULL));
    send_until(m2, room, NULL, it_mono_ms(), NULL);
    it_api_err(404, "not_found", API2, "DELETE", p, admin.token, &cl, NULL);

    /* a kick: out of the room on both gateways, may join again (public) */
    t0 = it_mono_ms();
    json_decref(moderate(&admin, room, "kick", &m, 0, 204));
    e = it_wait_frame(m1, "left", "room", room, NULL, it_timeout(IN_FORCE));
    assert_non_null(e);
    assert_string_equal(it_jstr(e, "reason"), "kicked");
    json_decref(e);
    e = it_wait_frame(m2, "left", "room", room, NULL, it_timeout(IN_FORCE));
    assert_non_null(e);
    json_decref(e);
    print_message("kick took both sockets out in %lld ms\n", it_mono_ms() - t0);
    it_join(m1, room);
    it_join(m2, room);

    /* a ban without a reason: out at once, cannot come back, lifted later; every refusal and
     * the sanction frame carry the moderator's reason, "" */
    t0 = it_mono_ms();
    json_decref(moderate_why(&owner, room, "ban", &m, 3600, NULL, 201));
    e = it_wait_frame(m1, "sanction", "kind", "ban", NULL, it_timeout(IN_FORCE));
    assert_non_null(e);
    assert_string_equal(it_jstr(e, "reason"), "");
    json_decref(e);
    e = it_wait_frame(m1, "left", "room", room, NULL, it_timeout(IN_FORCE));
    assert_non_null(e);
    assert_string_equal(it_jstr(e, "reason"), "banned");
    json_decref(e);
    /* m2 on the other gateway too: only then is the ban known there (the join below) */
    e = it_wait_frame(m2, "left", "room", room, NULL, it_timeout(IN_FORCE));
    assert_non_null(e);
    assert_string_equal(it_jstr(e, "reason"), "banned");
    json_decref(e);
    print_message("ban took the sockets out on both gateways in %lld ms\n", it_mono_ms() - t0);
    it_send(m2, "{s:s, s:s}", "type", "join", "room", room);
    e = it_wait_frame(m2, "error", "code", "banned", "joined", it_timeout(WAIT_MS));
    assert_non_null(e);
    assert_true(json_is_integer(json_object_get(e, "until")));
    assert_string_equal(it_jstr(e, "reason"), ""); /* the moderator gave none */
    assert_string_equal(it_jstr(e, "message"), "banned from this room");
    json_decref(e);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation", room);
    r = it_api_ok(200, API1, "GET", p, owner.token, &cl, NULL);
    assert_int_equal(json_array_size(json_object_get(r, "sanctions")), 1);
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/ban/%s", room, m.id);
    json_decref(it_api_ok(204, API1, "DELETE", p, owner.token, &cl, NULL));
    for (t0 = it_mono_ms();; it_sleep_ms(50)) { /* the lift reaches gw2 */
        json_t *a = join_answer(m2, room);
        bool joined = strcmp(it_jstr(a, "type"), "joined") == 0;
        json_decref(a);
        if (joined)
            break;
        if (it_mono_ms() - t0 > it_timeout(IN_FORCE * 3))
            fail_msg("the lifted ban still refuses the join");
    }

    /* every action has its audit row */
    assert_int_equal(audit_count("mute", m.id, room), 1);
    assert_int_equal(audit_count("unmute", m.id, room), 1);
    assert_int_equal(audit_count("kick", m.id, room), 1);
    assert_int_equal(audit_count("ban", m.id, room), 1);
    assert_int_equal(audit_count("unban", m.id, room), 1);
    wsc_close(m1);
    wsc_close(m2);
    wsc_close(ws);
    json_decref(owner.session);
    json_decref(admin.session);
    json_decref(m.session);
    json_decref(w.session);
}

/* The user is told: a mute reaches every connection of the user on both gateways as a sanction
 * frame (joined to the room or not) within a second, a connection that joins while muted gets
 * it after joined, and lifting it early sends sanction_lifted everywhere. */
static void test_sanction_pushed(void **state)
{
    struct it_user owner, m;
    char room[80], p[200], id[64];
    struct wsc *m1, *m2, *m3, *m4;
    struct wsc *conns[2];
    json_t *r, *e;
    long long t0;

    (void)state;
    it_user_new(&owner, "po");
    it_user_new(&m, "pm");
    it_room_new(id, sizeof(id), "push");
    r = it_api_ok(201, API1, "POST", "/api/v1/rooms", owner.token, &cl,
                  json_pack("{s:s, s:s, s:s}", "kind", "public", "name", "Pushed", "id", id));
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);
    m1 = it_connect(GW1, m.token); /* in the room */
    m2 = it_connect(GW2, m.token); /* in no room */
    it_join(m1, room);
    conns[0] = m1;
    conns[1] = m2;

    t0 = it_mono_ms();
    json_decref(moderate(&owner, room, "mute", &m, 120, 201));
    for (int i = 0; i < 2; i++) {
        e = it_wait_frame(conns[i], "sanction", "room", room, NULL, it_timeout(IN_FORCE));
        if (!e)
            fail_msg("no sanction frame on gw%d within %d ms", i + 1, IN_FORCE);
        assert_string_equal(it_jstr(e, "kind"), "mute");
        assert_string_equal(it_jstr(e, "reason"), "test reason");
        assert_true(it_jint(e, "until") > it_wall_ms());
        json_decref(e);
    }
    print_message("mute told to both connections in %lld ms\n", it_mono_ms() - t0);

    /* a page opened while muted knows before its first send */
    m3 = it_connect(GW2, m.token);
    it_send(m3, "{s:s, s:s}", "type", "join", "room", room);
    e = it_wait_frame(m3, "sanction", "room", room, NULL, it_timeout(WAIT_MS));
    assert_non_null(e);
    assert_string_equal(it_jstr(e, "kind"), "mute");
    json_decref(e);
    /* so does one that joined anonymously and logs in afterwards */
    m4 = it_connect(GW1, NULL);
    it_join(m4, room);
    it_send(m4, "{s:s, s:s}", "type", "auth", "token", m.token);
    e = it_wait_frame(m4, "sanction", "room", room, NULL, it_timeout(WAIT_MS));
    assert_non_null(e);
    assert_string_equal(it_jstr(e, "kind"), "mute");
    json_decref(e);
    wsc_close(m4);

    /* lifted early, through the other replica: sanction_lifted everywhere */
    t0 = it_mono_ms();
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/mute/%s", room, m.id);
    json_decref(it_api_ok(204, API2, "DELETE", p, owner.token, &cl, NULL));
    for (int i = 0; i < 2; i++) {
        e = it_wait_frame(conns[i], "sanction_lifted", "room", room, NULL, it_timeout(IN_FORCE));
        if (!e)
            fail_msg("no sanction_lifted on gw%d within %d ms", i + 1, IN_FORCE);
        assert_string_equal(it_jstr(e, "kind"), "mute");
        json_decref(e);
    }
    print_message("lift told to both connections in %lld ms\n", it_mono_ms() - t0);
    send_until(m1, room, NULL, it_mono_ms(), NULL);
    wsc_close(m1);
    wsc_close(m2);
    wsc_close(m3);
    json_decref(owner.session);
    json_decref(m.session);
}

/* chatctl: makes the first site admin (who then moderates a room it does not own) and chat-bans a
 * user site-wide, in force on the gateways within a second; lifted the same way. */
static void test_chatctl(void **state)
{
    struct it_user owner, site, u;
    char room[80], id[64];
    struct wsc *c;
    json_t *r, *e = NULL;
    long long t0, ms;

    (void)state;
    it_user_new(&owner, "co");
    it_user_new(&site, "cs");
    it_user_new(&u, "cu");
    it_room_new(id, sizeof(id), "ctl");
    r = it_api_ok(201, API1, "POST", "/api/v1/rooms", owner.token, &cl,
                  json_pack("{s:s, s:s, s:s}", "kind", "public", "name", "Ctl", "id", id));
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);
    json_decref(moderate(&site, room, "mute", &u, 60, 403)); /* not an admin yet */
    assert_int_equal(it_sh("%s/chatctl admin --user %s --pg-dsn '%s' >/dev/null",
                           it_env("CHAT_TEST_BIN"), site.name, it_env("CHAT_TEST_PG_DSN")),
                     0);
    json_decref(moderate(&site, room, "mute", &u, 60, 201)); /* the database's role decides */
    c = it_connect(GW2, u.token);
    it_join(c, room);
    t0 = it_mono_ms();
    assert_int_equal(it_sh("%s/chatctl sanction --user %s --kind chat_ban --duration-s 60 "
                           "--reason 'from the console' --pg-dsn '%s' >/dev/null",
                           it_env("CHAT_TEST_BIN"), u.name, it_env("CHAT_TEST_PG_DSN")),
                     0);
    ms = send_until(c, room, "chat_banned", t0, &e);
    assert_string_equal(it_jstr(e, "reason"), "from the console");
    json_decref(e);
    print_message("chatctl chat ban in force after %lld ms (process start included)\n", ms);
    assert_true(ms <= it_timeout(IN_FORCE * 2));
    assert_int_equal(it_sh("%s/chatctl lift --user %s --kind chat_ban --pg-dsn '%s' >/dev/null",
                           it_env("CHAT_TEST_BIN"), u.name, it_env("CHAT_TEST_PG_DSN")),
                     0);
    send_until(c, room, "muted", it_mono_ms(), NULL); /* the room mute remains */
    /* the same through the admin API */
    {
        char p[160];
        snprintf(p, sizeof(p), "/api/v1/admin/users/%s/sanctions/chat_ban", u.id);
        it_api_err(403, "forbidden", API1, "POST", p, owner.token, &cl,
                   json_pack("{s:i}", "duration_s", 60));
        r = it_api_ok(201, API1, "POST", p, site.token, &cl,
                      json_pack("{s:i, s:s}", "duration_s", 60, "reason", "api"));
        assert_string_equal(it_jstr(r, "room"), "*");
        json_decref(r);
        send_until(c, room, "chat_banned", it_mono_ms(), NULL);
        json_decref(it_api_ok(204, API2, "DELETE", p, site.token, &cl, NULL));
        send_until(c, room, "muted", it_mono_ms(), NULL);
    }
    wsc_close(c);
    /* a site-wide ban from the console revokes the user's sessions as the API's does: the open
     * socket loses its identity; the audit rows carry the API's action names */
    {
        struct it_user v;
        struct wsc *vc;

        it_user_new(&v, "cv");
        vc = it_connect(GW1, v.token);
        it_join(vc, room);
        assert_int_equal(it_sh("%s/chatctl sanction --user %s --kind ban --pg-dsn '%s' >/dev/null",
                               it_env("CHAT_TEST_BIN"), v.name, it_env("CHAT_TEST_PG_DSN")),
                         0);
        it_expect_revoked(vc, "admin", it_timeout(IN_FORCE * 2), "the banned user's socket");
        assert_int_equal(it_sh("%s/chatctl lift --user %s --kind ban --pg-dsn '%s' >/dev/null",
                               it_env("CHAT_TEST_BIN"), v.name, it_env("CHAT_TEST_PG_DSN")),
                         0);
        assert_int_equal(it_sql_ll("SELECT count(*) FROM audit_log WHERE target_user = '%s' AND "
                                   "actor_id IS NULL AND action IN ('site_ban', 'site_unban')",
                                   v.id),
                         2);
        assert_int_equal(it_sql_ll("SELECT count(*) FROM audit_log WHERE target_user = '%s' AND "
                                   "actor_id IS NULL AND action = 'lift_chat_ban'",
                                   u.id),
                         1);
        wsc_close(vc);
        it_user_free(&v);
    }
    json_decref(owner.session);
    json_decref(site.session);
    json_decref(u.session);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mute_ban_kick),
        cmocka_unit_test(test_sanction_pushed),
        cmocka_unit_test(test_chatctl),
    };

    it_env_load();
    it_client_new(&cl, "203.0.113");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
