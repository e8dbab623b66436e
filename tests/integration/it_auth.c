/* it_auth.c - accounts over REST (issue 4) against the cluster: register, login, refresh,
 * logout, validation, body limits, bearer errors, the login history, SQL metacharacters and
 * Unicode end to end, and the auth rate limits. Socket-side effects of refresh reuse and logout
 * are checked here too; the rest of the sessions on open WebSockets is in it_sessions.c.
 *
 * Every test works on its own users (names unique per run) and sends from its own fake client
 * address in 203.0.113.0/24 or 198.51.100.0/24 (X-Forwarded-For; the test client is on
 * 127.0.0.1, a trusted proxy), so the per-IP limits of one test never hit another. The cluster
 * runs with CHAT_LOGIN_PER_USER=5, CHAT_LOGIN_PER_IP=30, CHAT_REGISTER_PER_IP=30,
 * CHAT_AUTH_WINDOW_S=4 (tests/integration/CMakeLists.txt): no test but the rate limit tests
 * makes more than 4 login attempts for one user or 25 requests from one address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "it_acct.h"

/* ---------------------------------------------------------------------------------------------
 * REST: accounts */

static void test_config_publishes_rules(void **state)
{
    struct it_client cl;
    json_t *c1, *c2, *rules;

    (void)state;
    it_client_new(&cl, "203.0.113");
    c1 = it_api_ok(200, API1, "GET", "/api/v1/config", NULL, &cl, NULL);
    c2 = it_api_ok(200, API2, "GET", "/api/v1/config", NULL, &cl, NULL);
    rules = json_object_get(c1, "rules");
    assert_string_equal(it_jstr(rules, "username.pattern"), "^[A-Za-z0-9_]{4,20}$");
    assert_int_equal(it_jint(rules, "username.min"), 4);
    assert_int_equal(it_jint(rules, "username.max"), 20);
    assert_int_equal(it_jint(rules, "nickname.min"), 2);
    assert_int_equal(it_jint(rules, "nickname.max"), 20);
    assert_int_equal(it_jint(rules, "password.min"), 8);
    assert_int_equal(it_jint(rules, "password.max"), 128);
    assert_true(json_is_true(it_jget(rules, "password.letter")));
    assert_true(json_is_true(it_jget(rules, "password.digit")));
    assert_string_equal(it_jstr(rules, "room"), "^[A-Za-z0-9_.-]{1,64}$");
    assert_int_equal(it_jint(rules, "client_msg_id_max"), 64);
    assert_true(json_equal(rules, json_object_get(c2, "rules"))); /* every gateway the same */
    json_decref(c1);
    json_decref(c2);
}

static void test_register_returns_session(void **state)
{
    struct it_client cl;
    char name[32];
    json_t *s, *s2, *me;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "Reg");
    s = it_register(LB, &cl, name, PW, NULL); /* nickname defaults to the username */
    it_check_session(s, name, name);
    me = it_me(API1, &cl, it_access(s));
    it_check_user(me, name, name);
    assert_true(json_equal(me, json_object_get(s, "user")));
    json_decref(me);
    /* with a nickname: stored trimmed */
    it_name_new(name, sizeof(name), "Reg");
    s2 = it_register(API2, &cl, name, PW, "  Nick Name  ");
    it_check_session(s2, name, "Nick Name");
    assert_string_not_equal(it_jstr(s2, "user.id"), it_jstr(s, "user.id"));
    assert_string_not_equal(it_jstr(s2, "session_id"), it_jstr(s, "session_id"));
    json_decref(s);
    json_decref(s2);
}

static void test_login_case_insensitive_and_me(void **state)
{
    struct it_client cl;
    char name[32], other[32];
    json_t *reg, *s, *me;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "LogIn");
    reg = it_register(LB, &cl, name, PW, NULL);
    it_swap_case(other, sizeof(other), name);
    s = it_login(API1, &cl, other, PW);
    it_check_session(s, name, name); /* the username as registered */
    assert_string_equal(it_jstr(s, "user.id"), it_jstr(reg, "user.id"));
    assert_string_not_equal(it_jstr(s, "session_id"), it_jstr(reg, "session_id"));
    me = it_me(API2, &cl, it_access(s));
    assert_true(json_equal(me, json_object_get(reg, "user")));
    json_decref(me);
    me = it_me(LB, &cl, it_access(reg)); /* the registration's session still works */
    it_check_user(me, name, name);
    json_decref(me);
    json_decref(reg);
    json_decref(s);
}

static void test_refresh_rotates_and_reuse_revokes_family(void **state)
{
    struct it_client cl;
    char name[32], room[80];
    json_t *reg, *s, *r, *r2, *me;
    struct wsc *w;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "Ref");
    it_room_new(room, sizeof(room), "auth");
    reg = it_register(LB, &cl, name, PW, NULL);
    s = it_login(API1, &cl, name, PW);
    w = it_connect(GW2, it_access(s)); /* a socket of the session that will be revoked */
    it_join(w, room);
    it_sleep_ms(1100); /* a later iat: the new access token cannot equal the old one by chance */
    r = it_refresh_ok(API2, &cl, it_jstr(s, "refresh_token"));
    it_check_session(r, name, name);
    assert_string_equal(it_jstr(r, "session_id"), it_jstr(s, "session_id"));
    assert_string_not_equal(it_access(r), it_access(s));
    assert_string_not_equal(it_jstr(r, "refresh_token"), it_jstr(s, "refresh_token"));
    me = it_me(API1, &cl, it_access(r));
    it_check_user(me, name, name);
    json_decref(me);
    r2 = it_refresh_ok(API1, &cl, it_jstr(r, "refresh_token")); /* s's successor is used now */
    /* the spent token again: reuse (no grace: what replaced it was used), the whole session is
     * revoked, its sockets told */
    it_refresh_fails(API1, &cl, it_jstr(s, "refresh_token"), "refresh_reused");
    it_expect_revoked(w, "refresh_reused", it_timeout(2000), "socket of the reused session");
    it_expect_send_error(w, room, "after-reuse", "auth_required");
    it_refresh_fails(API2, &cl, it_jstr(r2, "refresh_token"), "invalid_refresh");
    it_refresh_fails(API2, &cl, it_jstr(r, "refresh_token"), "invalid_refresh");
    it_me_refused(API1, &cl, it_access(r2), "session_revoked");
    it_me_refused(API1, &cl, it_access(r), "session_revoked");
    it_me_refused(API2, &cl, it_access(s), "session_revoked");
    it_refresh_fails(LB, &cl, "no-such-refresh-token-0123456789abcdef", "invalid_refresh");
    me = it_me(LB, &cl, it_access(reg)); /* another session of the user: untouched */
    json_decref(me);
    wsc_close(w);
    json_decref(reg);
    json_decref(s);
    json_decref(r);
    json_decref(r2);
}

static int refresh_grace_s(void)
{
    return it_env_int("CHAT_REFRESH_GRACE_S", 3);
}

/* A refresh retried after a lost answer (the spent token again within CHAT_REFRESH_GRACE_S, its
 * successor unused) gets a valid pair and revokes nothing; the lost successor is void (not
 * reuse). Returns false when the retry could not be made within the grace window (slow
 * machine): inconclusive. */
static bool refresh_retry_once(void)
{
    struct it_client cl;
    char name[32];
    json_t *s, *r1, *r2 = NULL, *r3, *out = NULL, *me;
    long long t0;
    int st;

    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "Grace");
    s = it_register(LB, &cl, name, PW, NULL);
    t0 = it_mono_ms();
    r1 = it_refresh_ok(API1, &cl, it_jstr(s, "refresh_token")); /* its answer is "lost" */
    st = it_api(API2, "POST", "/api/v1/auth/refresh", NULL, &cl,
                json_pack("{s:s}", "refresh_token", it_jstr(s, "refresh_token")), &r2, NULL);
    if (it_mono_ms() - t0 >= refresh_grace_s() * 1000LL - 200) {
        json_decref(s);
        json_decref(r1);
        json_decref(r2);
        return false;
    }
    if (st != 200)
        fail_msg("refresh retried within the grace window: %d %s", st,
                 json_string_value(it_jget(r2, "error.code")));
    it_check_session(r2, name, name);
    assert_string_equal(it_jstr(r2, "session_id"), it_jstr(s, "session_id"));
    assert_string_not_equal(it_jstr(r2, "refresh_token"), it_jstr(r1, "refresh_token"));
    me = it_me(API1, &cl, it_access(r2));
    json_decref(me);
    /* the successor of the lost answer is void, without revoking the session */
    it_refresh_fails(API1, &cl, it_jstr(r1, "refresh_token"), "invalid_refresh");
    r3 = it_refresh_ok(API2, &cl, it_jstr(r2, "refresh_token")); /* the retry's pair works on */
    me = it_me(LB, &cl, it_access(r3));
    it_check_user(me, name, name);
    json_decref(me);
    /* the first token once more: its successor has been used, so this is reuse */
    it_refresh_fails(API1, &cl, it_jstr(s, "refresh_token"), "refresh_reused");
    it_refresh_fails(API2, &cl, it_jstr(r3, "refresh_token"), "invalid_refresh");
    it_me_refused(API2, &cl, it_access(r3), "session_revoked");
    json_decref(out);
    json_decref(s);
    json_decref(r1);
    json_decref(r2);
    json_decref(r3);
    return true;
}

static void test_refresh_retry_within_grace(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        if (refresh_retry_once())
            return;
    fail_msg("4 retries each took longer than the grace window of %d s", refresh_grace_s());
}

/* The spent token again after the grace window: reuse, the session is revoked. */
static void test_refresh_after_grace_is_reuse(void **state)
{
    struct it_client cl;
    char name[32];
    json_t *s, *r;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "Grace");
    s = it_register(API2, &cl, name, PW, NULL);
    r = it_refresh_ok(API1, &cl, it_jstr(s, "refresh_token"));
    it_sleep_ms(refresh_grace_s() * 1000LL + 1100); /* the window is over (nothing to poll) */
    it_refresh_fails(API2, &cl, it_jstr(s, "refresh_token"), "refresh_reused");
    it_refresh_fails(API1, &cl, it_jstr(r, "refresh_token"), "invalid_refresh");
    it_me_refused(LB, &cl, it_access(r), "session_revoked");
    json_decref(s);
    json_decref(r);
}

static void test_logout_revokes_session(void **state)
{
    struct it_client cl;
    char name[32];
    json_t *reg, *s, *out;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "Out");
    reg = it_register(LB, &cl, name, PW, NULL);
    s = it_login(API2, &cl, name, PW);
    out = it_api_ok(200, API1, "POST", "/api/v1/auth/logout", it_access(s), &cl, json_object());
    assert_int_equal(it_jint(out, "revoked_sessions"), 1);
    json_decref(out);
    it_me_refused(API2, &cl, it_access(s), "session_revoked");
    it_refresh_fails(API1, &cl, it_jstr(s, "refresh_token"), "invalid_refresh");
    json_decref(it_me(API2, &cl, it_access(reg))); /* the other session lives on */
    /* an empty body works as {} */
    assert_int_equal(
        it_api_raw(API2, "POST", "/api/v1/auth/logout", it_access(reg), &cl, "", 0, &out, NULL),
        200);
    assert_int_equal(it_jint(out, "revoked_sessions"), 1);
    json_decref(out);
    it_me_refused(API1, &cl, it_access(reg), "session_revoked");
    it_api_err(401, "session_revoked", LB, "POST", "/api/v1/auth/logout", it_access(reg), &cl,
               json_object());
    json_decref(reg);
    json_decref(s);
}

static void test_logout_all_revokes_every_session(void **state)
{
    struct it_client cl;
    char name[32], room[80];
    json_t *s[3], *out;
    struct wsc *w;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "All");
    it_room_new(room, sizeof(room), "auth");
    s[0] = it_register(LB, &cl, name, PW, NULL);
    s[1] = it_login(API1, &cl, name, PW);
    s[2] = it_login(API2, &cl, name, PW);
    w = it_connect(GW1, it_access(s[2]));
    it_join(w, room);
    out = it_api_ok(200, API2, "POST", "/api/v1/auth/logout", it_access(s[1]), &cl,
                    json_pack("{s:b}", "all", 1));
    assert_int_equal(it_jint(out, "revoked_sessions"), 3);
    json_decref(out);
    it_expect_revoked(w, "logout", it_timeout(2000), "socket of another session");
    for (int i = 0; i < 3; i++) {
        it_me_refused(i % 2 ? API1 : API2, &cl, it_access(s[i]), "session_revoked");
        it_refresh_fails(LB, &cl, it_jstr(s[i], "refresh_token"), "invalid_refresh");
    }
    out = it_login(LB, &cl, name, PW); /* the account itself is fine */
    json_decref(it_me(API1, &cl, it_access(out)));
    json_decref(out);
    wsc_close(w);
    for (int i = 0; i < 3; i++)
        json_decref(s[i]);
}

static void test_duplicate_username_case_insensitive(void **state)
{
    struct it_client cl;
    char name[32], other[32];
    json_t *s;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "Dup");
    s = it_register(API1, &cl, name, PW, NULL);
    it_swap_case(other, sizeof(other), name);
    it_api_err(409, "username_taken", API2, "POST", "/api/v1/auth/register", NULL, &cl,
               it_creds(other, PW2));
    it_api_err(409, "username_taken", LB, "POST", "/api/v1/auth/register", NULL, &cl,
               it_creds(name, PW));
    it_login_fails(API1, &cl, other, PW2); /* the second registration changed nothing */
    json_decref(s);
}

static void test_register_validation(void **state)
{
    static const char *const bad_users[] = {"abc",   "a-b-c", "abcdefghij0123456789x",
                                            "ab cd", "héllo", "x'; DROP TABLE users;--"};
    static const char *const bad_pw[] = {"short1", "lettersonly", "12345678", "abc\001defg1"};
    /* control characters (C0, DEL, C1 NEL), bidi override U+202E and isolate U+2066, too short
     * after trimming, 21 code points */
    static const char *const bad_nicks[] = {" x ",
                                            "a\007b",
                                            "ab\177cd",
                                            "ab\302\205cd",
                                            "ab\342\200\256cd",
                                            "ab\342\201\246cd",
                                            "  ",
                                            "abcdefghij0123456789x"};
    struct it_client cl, cl2;
    char name[32], long_name[32];
    json_t *s;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_client_new(&cl2, "203.0.113");
    for (size_t i = 0; i < sizeof(bad_users) / sizeof(bad_users[0]); i++)
        it_register_fails(&cl, it_creds(bad_users[i], PW), "invalid_username");
    it_name_new(name, sizeof(name), "Val");
    for (size_t i = 0; i < sizeof(bad_pw) / sizeof(bad_pw[0]); i++)
        it_register_fails(&cl, it_creds(name, bad_pw[i]), "invalid_password");
    for (size_t i = 0; i < sizeof(bad_nicks) / sizeof(bad_nicks[0]); i++) {
        it_register_fails(&cl2,
                          json_pack("{s:s, s:s, s:s}", "username", name, "password", PW, "nickname",
                                    bad_nicks[i]),
                          "invalid_nickname");
    }
    it_register_fails(&cl2, json_pack("{s:s}", "username", name), "bad_field");
    it_register_fails(&cl2, json_pack("{s:i, s:s}", "username", 12345, "password", PW),
                      "bad_field");
    it_register_fails(&cl2,
                      json_pack("{s:s, s:s, s:i}", "username", name, "password", PW, "nickname", 7),
                      "bad_field");
    /* none of that created the account; the boundaries are accepted */
    it_login_fails(API1, &cl2, name, PW);
    snprintf(long_name, sizeof(long_name), "%s", name);
    memset(long_name + strlen(name), 'x', 20 - strlen(name));
    long_name[20] = '\0';
    s = it_register(API2, &cl2, long_name, "abcdefg1", "ab"); /* 20 / 8 / 2: the minimums */
    it_check_session(s, long_name, "ab");
    json_decref(s);
}

static void test_wrong_password_and_unknown_user(void **state)
{
    struct it_client cl;
    char name[32], nobody[32];
    json_t *s;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "Wrong");
    it_name_new(nobody, sizeof(nobody), "Nobody");
    s = it_register(API1, &cl, name, PW, NULL);
    it_login_fails(API2, &cl, name, PW_WRONG);
    it_login_fails(API1, &cl, name, PW "x");
    it_login_fails(LB, &cl, nobody, PW);
    it_api_err(400, "bad_field", API1, "POST", "/api/v1/auth/login", NULL, &cl,
               json_pack("{s:s}", "username", name));
    json_decref(s);
}

/* A JSON body padded with trailing white space to exactly len bytes. */
static char *padded_body(const char *user, size_t len)
{
    json_t *j = it_creds(user, PW);
    char *text = json_dumps(j, JSON_COMPACT), *out;
    size_t n = strlen(text);

    json_decref(j);
    assert_true(n < len);
    out = malloc(len + 1);
    assert_non_null(out);
    memcpy(out, text, n);
    memset(out + n, ' ', len - n);
    out[len] = '\0';
    free(text);
    return out;
}

static void test_body_limit_and_bad_json(void **state)
{
    static const char *const bad_json[] = {"{not json}", "[1,2]",
                                           "{\"username\":\"a\",\"username\":\"b\"}"};
    /* chat-api's own setting (api/src/api_config.c), as the cluster runs it: its default when
     * the test environment does not set it */
    size_t max = (size_t)it_env_int("CHAT_API_MAX_BODY", 16384);
    struct it_client cl;
    char nobody[32];
    json_t *out;
    char *body;
    int st;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_name_new(nobody, sizeof(nobody), "Big");
    body = padded_body(nobody, max); /* exactly the limit: read and parsed */
    st = it_api_raw(API1, "POST", "/api/v1/auth/login", NULL, &cl, body, max, &out, NULL);
    it_check_error(st, out, 401, "invalid_credentials", "body of CHAT_API_MAX_BODY bytes");
    json_decref(out);
    free(body);
    body = padded_body(nobody, max + 1);
    st = it_api_raw(API2, "POST", "/api/v1/auth/login", NULL, &cl, body, max + 1, &out, NULL);
    it_check_error(st, out, 413, "too_big", "body one byte over CHAT_API_MAX_BODY");
    json_decref(out);
    free(body);
    st = it_api_raw(API1, "POST", "/api/v1/auth/register", NULL, &cl, "{\"username\":", 0, &out,
                    NULL);
    it_check_error(st, out, 400, "bad_json", "register: truncated JSON");
    json_decref(out);
    for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
        st = it_api_raw(API2, "POST", "/api/v1/auth/login", NULL, &cl, bad_json[i], 0, &out, NULL);
        it_check_error(st, out, 400, "bad_json", bad_json[i]);
        json_decref(out);
    }
}

static void test_bearer_errors(void **state)
{
    struct it_client cl;
    char name[32], path[96];
    char *expired = it_token("123456789", -60);
    json_t *s;

    (void)state;
    it_client_new(&cl, "203.0.113");
    it_me_refused(API1, &cl, NULL, "auth_required");
    it_me_refused(API2, &cl, "garbage", "bad_token");
    it_me_refused(LB, &cl, expired, "token_expired");
    it_api_err(401, "auth_required", API1, "GET", "/api/v1/users/me/logins", NULL, &cl, NULL);
    it_api_err(401, "auth_required", API2, "POST", "/api/v1/auth/logout", NULL, &cl, json_object());
    it_api_err(401, "auth_required", API1, "POST", "/api/v1/users/me/nickname", NULL, &cl,
               json_pack("{s:s}", "nickname", "whoever"));
    it_name_new(name, sizeof(name), "Plain");
    s = it_register(LB, &cl, name, PW, NULL);
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/revoke", it_jstr(s, "user.id"));
    it_api_err(403, "forbidden", API2, "POST", path, it_access(s), &cl, NULL); /* role user */
    json_decref(it_me(API1, &cl, it_access(s))); /* and it revoked nothing */
    json_decref(s);
    free(expired);
}

/* Entries of a login history page: newest first, made since t0 (ms) by the fake client cl. */
static void check_logins(const json_t *logins, const struct it_client *cl, long long t0)
{
    long long prev_id = -1, prev_at = -1, now = it_wall_ms();
    size_t i;
    json_t *e;

    assert_true(json_is_array(logins));
    json_array_foreach (logins, i, e) {
        long long id = strtoll(it_jstr(e, "id"), NULL, 10), at = it_jint(e, "at");
        assert_true(it_is_decimal(it_jstr(e, "id")));
        if (at < t0 - 1000 || at > now + 1000)
            fail_msg("login %zu: at %lld is outside the test (%lld..%lld)", i, at, t0, now);
        if (prev_id >= 0 && (id >= prev_id || at > prev_at))
            fail_msg("login %zu is not older than the one before it", i);
        assert_string_equal(it_jstr(e, "ip"), cl->ip);
        assert_string_equal(it_jstr(e, "user_agent"), cl->ua);
        assert_true(json_is_boolean(json_object_get(e, "success")));
        prev_id = id;
        prev_at = at;
    }
}

static void expect_login(const json_t *e, bool success, const char *reason)
{
    assert_int_equal(json_is_true(json_object_get(e, "success")), success);
    assert_string_equal(it_jstr(e, "reason"), reason);
}

static void test_login_history(void **state)
{
    struct it_client cl;
    char name[32], ua[96], nobody[32], path[128];
    long long t0 = it_wall_ms();
    json_t *s, *h, *p1, *p2, *logins;

    (void)state;
    it_client_new(&cl, "203.0.113");
    snprintf(ua, sizeof(ua), "it-auth/1.0 (history; pid %d)", (int)getpid());
    cl.ua = ua;
    it_name_new(name, sizeof(name), "Hist");
    it_name_new(nobody, sizeof(nobody), "Hist");
    json_decref(it_register(API1, &cl, name, PW, NULL));
    it_login_fails(API2, &cl, name, PW_WRONG);
    it_login_fails(API2, &cl, nobody, PW); /* unknown user: in nobody's history */
    s = it_login(API1, &cl, name, PW);
    h = it_api_ok(200, API2, "GET", "/api/v1/users/me/logins", it_access(s), &cl, NULL);
    logins = json_object_get(h, "logins");
    assert_int_equal(json_array_size(logins), 3);
    check_logins(logins, &cl, t0);
    expect_login(json_array_get(logins, 0), true, "ok");
    expect_login(json_array_get(logins, 1), false, "wrong_password");
    assert_string_equal(it_jstr(json_array_get(logins, 2), "reason"), "registered");
    assert_true(json_is_null(json_object_get(h, "next_before")));
    /* paging: limit=1, then before=next_before */
    p1 = it_api_ok(200, API1, "GET", "/api/v1/users/me/logins?limit=1", it_access(s), &cl, NULL);
    assert_int_equal(json_array_size(json_object_get(p1, "logins")), 1);
    assert_true(
        json_equal(json_array_get(json_object_get(p1, "logins"), 0), json_array_get(logins, 0)));
    assert_string_equal(it_jstr(p1, "next_before"), it_jstr(json_array_get(logins, 0), "id"));
    snprintf(path, sizeof(path), "/api/v1/users/me/logins?limit=1&before=%s",
             it_jstr(p1, "next_before"));
    p2 = it_api_ok(200, LB, "GET", path, it_access(s), &cl, NULL);
    assert_int_equal(json_array_size(json_object_get(p2, "logins")), 1);
    assert_true(
        json_equal(json_array_get(json_object_get(p2, "logins"), 0), json_array_get(logins, 1)));
    assert_string_equal(it_jstr(p2, "next_before"), it_jstr(json_array_get(logins, 1), "id"));
    json_decref(p1);
    json_decref(p2);
    json_decref(h);
    json_decref(s);
}

/* The address of the newest entry of the login history of session s. */
static void newest_login_ip(const json_t *s, const struct it_client *cl, char *out, size_t cap)
{
    json_t *h =
        it_api_ok(200, API1, "GET", "/api/v1/users/me/logins?limit=1", it_access(s), cl, NULL);

    snprintf(out, cap, "%s", it_jstr(json_array_get(json_object_get(h, "logins"), 0), "ip"));
    json_decref(h);
}

/* CHAT_TRUSTED_PROXY_HOPS=1 (the test cluster: nginx in front): the client address is the one
 * X-Forwarded-For entry the last proxy appended. Through nginx, an entry the client wrote
 * itself is ignored: it cannot choose the address of its limits and login history. A peer
 * that is itself the proxy (the test client talking to a gateway directly) is believed for the
 * right-most entry only. */
static void test_forwarded_for_hops(void **state)
{
    struct it_client cl, forged, chain;
    char name[32], ip[64], two[96];
    json_t *s;

    (void)state;
    assert_int_equal(it_env_int("CHAT_TRUSTED_PROXY_HOPS", 1), 1);
    it_client_new(&cl, "203.0.113");
    it_client_new(&forged, "198.51.100");
    it_name_new(name, sizeof(name), "Xff");
    json_decref(it_register(API1, &cl, name, PW, NULL));
    /* through the balancer with a forged entry: nginx appends the real peer, which counts */
    s = it_login(LB, &forged, name, PW);
    newest_login_ip(s, &cl, ip, sizeof(ip));
    assert_string_equal(ip, "127.0.0.1");
    json_decref(s);
    /* a chain: only the entry of the one trusted hop (the right-most) counts */
    it_client_new(&chain, "203.0.113");
    snprintf(two, sizeof(two), "%s, %s", forged.ip, chain.ip);
    snprintf(chain.ip, sizeof(chain.ip), "%s", two);
    s = it_login(API2, &chain, name, PW);
    newest_login_ip(s, &cl, ip, sizeof(ip));
    assert_string_equal(ip, two + strlen(forged.ip) + 2);
    json_decref(s);
}

/* A password of exactly 128 code points with quotes, backslashes, SQL and non-ASCII letters. */
static void long_password(char *buf, size_t cap)
{
    size_t n;

    snprintf(buf, cap, "p4ss'\"\\w\xc3\xb6rd; DROP TABLE users;-- %s", "\xe2\x82\xac"); /* euro */
    n = it_utf8_len(buf);
    while (n < 128) {
        size_t len = strlen(buf);
        assert_true(len + 4 < cap);
        snprintf(buf + len, cap - len, "%s", n % 2 ? "\xc3\xa9" : "\xe6\x97\xa5"); /* é, 日 */
        n++;
    }
    assert_int_equal(it_utf8_len(buf), 128);
}

/* dst = src without its last code point. */
static void drop_last_char(char *dst, const char *src)
{
    size_t n = strlen(src);

    memcpy(dst, src, n + 1);
    while (n > 0 && ((unsigned char)dst[n - 1] & 0xC0) == 0x80)
        n--;
    assert_true(n > 0);
    dst[n - 1] = '\0';
}

static void test_sql_metacharacters_and_unicode(void **state)
{
    /* 14 code points of SQL and JSON trouble; 20 code points of 2- to 4-byte characters */
    static const char nick1[] = "'; DROP--\"\\ \xf0\x9f\x91\x8b\xc3\xa9";
    static const char nick20[] =
        "\xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"
        "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88\xf0\x9f\x91\x8b\xf0\x9f\x8e\x89\xf0\x9f\x98\x80"
        "\xc3\xa9\xc3\xbc\xe4\xb8\xad\xe6\x96\x87\xed\x95\x9c\xea\xb5\xad";
    static const char ua[] = "Mozilla/5.0 \"quoted\" 'single' \\back\\ \xc3\xbc\x6e\xc3\xaf"
                             "c\xc3\xb8"
                             "d\xc3\xa9 \xf0\x9f\x91\x8b ; DROP TABLE logins;--";
    struct it_client cl;
    char name[32], room[80], pw[600], pw_short[600], nick21[128];
    json_t *s, *u, *l, *h;
    struct wsc *c, *w;

    (void)state;
    assert_int_equal(it_utf8_len(nick1), 14);
    assert_int_equal(it_utf8_len(nick20), 20);
    snprintf(nick21, sizeof(nick21), "%s\xc3\xa9", nick20);
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "Sql");
    it_room_new(room, sizeof(room), "auth");
    long_password(pw, sizeof(pw));
    it_register_fails(&cl, it_creds("x'; DROP TABLE users;--", pw), "invalid_username");
    snprintf(pw_short, sizeof(pw_short), "%s\xc3\xa9", pw); /* 129 code points */
    it_register_fails(&cl, it_creds(name, pw_short), "invalid_password");
    s = it_register(API1, &cl, name, pw, nick1);
    it_check_session(s, name, nick1);
    u = it_me(API2, &cl, it_access(s));
    it_check_user(u, name, nick1);
    json_decref(u);
    c = it_connect(GW2, it_access(s));
    w = it_connect(GW1, NULL);
    it_join(c, room);
    it_join(w, room);
    it_expect_sent(c, room, "hi", "q1", NULL);
    it_expect_message(w, "q1", it_jstr(s, "user.id"), nick1);
    it_api_err(400, "invalid_nickname", API1, "POST", "/api/v1/users/me/nickname", it_access(s),
               &cl, json_pack("{s:s}", "nickname", nick21));
    u = it_api_ok(200, API2, "POST", "/api/v1/users/me/nickname", it_access(s), &cl,
                  json_pack("{s:s}", "nickname", nick20));
    it_check_user(u, name, nick20);
    json_decref(u);
    it_expect_nick_within(c, w, room, it_jstr(s, "user.id"), nick20, 1000);
    /* the exact password logs in; one code point less does not; the User-Agent comes back */
    cl.ua = ua;
    drop_last_char(pw_short, pw); /* one code point short */
    it_login_fails(API2, &cl, name, pw_short);
    l = it_login(API1, &cl, name, pw);
    it_check_session(l, name, nick20);
    h = it_api_ok(200, API1, "GET", "/api/v1/users/me/logins?limit=2", it_access(l), &cl, NULL);
    assert_int_equal(json_array_size(json_object_get(h, "logins")), 2);
    check_logins(json_object_get(h, "logins"), &cl, 0);
    expect_login(json_array_get(json_object_get(h, "logins"), 0), true, "ok");
    expect_login(json_array_get(json_object_get(h, "logins"), 1), false, "wrong_password");
    json_decref(h);
    json_decref(l);
    json_decref(s);
    wsc_close(c);
    wsc_close(w);
}

/* ---------------------------------------------------------------------------------------------
 * rate limits (windows of CHAT_AUTH_WINDOW_S shared by the gateways through Redis; a window
 * starts with the first attempt counted under its key)
 *
 * A scenario's exact counts hold only when all its attempts fall into one window. That is
 * known afterwards, without guessing where windows fall: the window starts after the
 * scenario's start t0, so if the scenario ended before t0 + window, it was one window. A
 * scenario that took longer (a slow machine) is inconclusive and run again on fresh users and
 * addresses; only a conclusive run is judged. */

#define SCENARIO_TRIES 4

static int auth_window_s(void)
{
    return it_env_int("CHAT_AUTH_WINDOW_S", 4);
}

/* True when everything since t0 (it_mono_ms) happened within one window (100 ms to spare for
 * the clocks of Redis and the test). */
static bool one_window(long long t0)
{
    return it_mono_ms() - t0 < auth_window_s() * 1000LL - 100;
}

static bool retry_after_ok(int ra)
{
    return ra >= 1 && ra <= auth_window_s();
}

/* One login attempt without judging it: the status, *code the error code ("" on success), *ra
 * the Retry-After (-1: none). */
static int try_login(const char *base,
                     const struct it_client *cl,
                     const char *user,
                     const char *pw,
                     char *code,
                     size_t cap,
                     int *ra)
{
    json_t *out = NULL;
    int st = it_api(base, "POST", "/api/v1/auth/login", NULL, cl, it_creds(user, pw), &out, ra);
    const char *c = json_string_value(it_jget(out, "error.code"));

    snprintf(code, cap, "%s", c ? c : "");
    json_decref(out);
    return st;
}

/* Failures counted per (username, client network): FAILS_PER_NET wrong passwords from network
 * A (several addresses of one /24) exhaust A (429 with Retry-After, even for the right
 * password), while the right password from network B logs in. A is released after Retry-After.
 * Returns false when the run was inconclusive. */
static bool failures_per_network_once(void)
{
    int per_net = it_env_int("CHAT_LOGIN_FAILS_PER_NET", 5);
    struct it_client reg, a[8], b, a2;
    char name[32], code[64], why[160] = "";
    int st[8], ra = -1, ra_right = -1, st_right, st_b;
    long long t0;
    json_t *s;

    assert_true(per_net + 1 < 8);
    it_client_new(&reg, "198.51.100");
    for (int i = 0; i <= per_net; i++)
        it_client_new(&a[i], "198.51.100");
    it_client_new(&a2, "198.51.100");
    it_client_new(&b, "198.18.0");
    it_name_new(name, sizeof(name), "RNet");
    json_decref(it_register(API1, &reg, name, PW, NULL));
    t0 = it_mono_ms();
    for (int i = 0; i < per_net; i++)
        st[i] = try_login(i % 2 ? API1 : API2, &a[i], name, PW_WRONG, code, sizeof(code), NULL);
    st[per_net] = try_login(API1, &a[per_net], name, PW_WRONG, code, sizeof(code), &ra);
    st_right = try_login(API2, &a2, name, PW, code, sizeof(code), &ra_right);
    st_b = try_login(API1, &b, name, PW, code, sizeof(code), NULL);
    if (!one_window(t0))
        return false;
    for (int i = 0; i < per_net; i++)
        if (st[i] != 401)
            snprintf(why, sizeof(why), "wrong password %d from network A: %d, want 401", i + 1,
                     st[i]);
    if (st[per_net] != 429 || !retry_after_ok(ra))
        snprintf(why, sizeof(why), "failure %d from network A: %d Retry-After %d, want 429",
                 per_net + 1, st[per_net], ra);
    if (st_right != 429 || !retry_after_ok(ra_right))
        snprintf(why, sizeof(why), "right password from the limited network: %d, want 429",
                 st_right);
    if (st_b != 200)
        snprintf(why, sizeof(why), "right password from network B: %d, want 200", st_b);
    if (why[0])
        fail_msg("%s", why);
    /* A again once its window is over (waits for the condition, bounded) */
    for (long long end = it_mono_ms() + it_timeout(auth_window_s() * 1000 + 3000);;) {
        if (try_login(API1, &a2, name, PW, code, sizeof(code), NULL) == 200)
            break;
        if (it_mono_ms() > end)
            fail_msg("network A still limited %d s after its window", auth_window_s() + 3);
        it_sleep_ms(250);
    }
    s = it_login(API2, &a[0], name, PW);
    it_check_session(s, name, name);
    json_decref(s);
    return true;
}

static void test_login_failures_per_network(void **state)
{
    (void)state;
    for (int i = 0; i < SCENARIO_TRIES; i++)
        if (failures_per_network_once())
            return;
    fail_msg("%d runs each took longer than one window of %d s", SCENARIO_TRIES, auth_window_s());
}

/* The username's ceiling over all networks (CHAT_LOGIN_FAILS_PER_USER): once reached, a network
 * that has failed for the username is refused even under its own budget, a network without
 * failures still logs in. */
static bool failures_per_user_once(void)
{
    int per_net = it_env_int("CHAT_LOGIN_FAILS_PER_NET", 5);
    int per_user = it_env_int("CHAT_LOGIN_FAILS_PER_USER", 8);
    struct it_client reg, a, c, b;
    char name[32], code[64], why[160] = "";
    int from_c = per_user - per_net, st_c[8], st_c_more, st_b, ra = -1;
    long long t0;

    assert_true(from_c >= 1 && from_c < per_net && from_c < 8);
    it_client_new(&reg, "198.51.100");
    it_client_new(&a, "198.51.100");
    it_client_new(&c, "203.0.113");
    it_client_new(&b, "198.18.0");
    it_name_new(name, sizeof(name), "RUsr");
    json_decref(it_register(API2, &reg, name, PW, NULL));
    t0 = it_mono_ms();
    for (int i = 0; i < per_net; i++)
        (void)try_login(i % 2 ? API1 : API2, &a, name, PW_WRONG, code, sizeof(code), NULL);
    for (int i = 0; i < from_c; i++)
        st_c[i] = try_login(API1, &c, name, PW_WRONG, code, sizeof(code), NULL);
    st_c_more = try_login(API2, &c, name, PW, code, sizeof(code), &ra);
    st_b = try_login(API1, &b, name, PW, code, sizeof(code), NULL);
    if (!one_window(t0))
        return false;
    for (int i = 0; i < from_c; i++)
        if (st_c[i] != 401)
            snprintf(why, sizeof(why), "failure %d from network C: %d, want 401", i + 1, st_c[i]);
    if (st_c_more != 429 || !retry_after_ok(ra))
        snprintf(why, sizeof(why), "network C past the username's ceiling: %d, want 429",
                 st_c_more);
    if (st_b != 200)
        snprintf(why, sizeof(why), "network B without failures: %d, want 200", st_b);
    if (why[0])
        fail_msg("%s", why);
    return true;
}

static void test_login_failures_per_user_ceiling(void **state)
{
    (void)state;
    for (int i = 0; i < SCENARIO_TRIES; i++)
        if (failures_per_user_once())
            return;
    fail_msg("%d runs each took longer than one window of %d s", SCENARIO_TRIES, auth_window_s());
}

/* Exit status of a child making one login attempt: 0 refused (401 invalid_credentials),
 * 1 limited (429 rate_limited with a good Retry-After), 2 anything else. */
static int attempt_status(const char *base, const struct it_client *cl, const char *user)
{
    json_t *body = it_creds(user, PW), *out;
    char *text = json_dumps(body, JSON_COMPACT), *resp = NULL;
    struct it_req rq = {
        .method = "POST", .base = base, .path = "/api/v1/auth/login", .body = text, .xff = cl->ip};
    int ra, st = it_http_req(&rq, &resp, &ra), rc = 2;
    const char *code;

    out = json_loads(resp ? resp : "", 0, NULL);
    code = json_string_value(it_jget(out, "error.code"));
    if (st == 401 && code && strcmp(code, "invalid_credentials") == 0) {
        rc = 0;
    } else if (st == 429 && code && strcmp(code, "rate_limited") == 0 && retry_after_ok(ra)) {
        rc = 1;
    }
    free(resp);
    free(text);
    json_decref(out);
    json_decref(body);
    return rc;
}

/* CHAT_LOGIN_PER_IP + 1 attempts at once from one address (unknown users: one each): exactly
 * one is limited; then the address is limited for a real user with the right password too,
 * another address is not. */
static bool per_ip_once(void)
{
    enum { N = 31 }; /* CHAT_LOGIN_PER_IP + 1 */
    struct it_client one, other;
    char name[32], users[N][32], code[64];
    const char *base = API1; /* the children must not call into cmocka */
    pid_t kids[N];
    int got[3] = {0, 0, 0}, ra = -1, st_one, st_other;
    long long t0;

    assert_int_equal(it_env_int("CHAT_LOGIN_PER_IP", 30), N - 1);
    it_client_new(&one, "198.51.100");
    it_client_new(&other, "198.51.100");
    it_name_new(name, sizeof(name), "RIp");
    json_decref(it_register(API2, &other, name, PW, NULL));
    for (int i = 0; i < N; i++)
        it_name_new(users[i], sizeof(users[i]), "RIpx");
    t0 = it_mono_ms();
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0)
            _exit(attempt_status(base, &one, users[i]));
    }
    for (int i = 0; i < N; i++) {
        int st;
        assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) <= 2);
        got[WEXITSTATUS(st)]++;
    }
    st_one = try_login(API2, &one, name, PW, code, sizeof(code), &ra);
    st_other = try_login(API1, &other, name, PW, code, sizeof(code), NULL);
    if (!one_window(t0))
        return false;
    if (got[0] != N - 1 || got[1] != 1) {
        fail_msg("%d attempts from one address: %d refused, %d limited, %d other (want %d/1/0)", N,
                 got[0], got[1], got[2], N - 1);
    }
    if (st_one != 429 || !retry_after_ok(ra))
        fail_msg("right password from a limited address: %d (Retry-After %d), want 429", st_one,
                 ra);
    if (st_other != 200)
        fail_msg("right password from another address: %d, want 200", st_other);
    return true;
}

static void test_login_rate_limit_per_ip(void **state)
{
    (void)state;
    for (int i = 0; i < SCENARIO_TRIES; i++)
        if (per_ip_once())
            return;
    fail_msg("%d runs each took longer than one window of %d s", SCENARIO_TRIES, auth_window_s());
}

/* CHAT_NICK_PER_USER changes per window, then 429 with Retry-After (the nickname unchanged);
 * likewise CHAT_LOGOUT_PER_USER logouts. */
static bool account_limits_once(void)
{
    int nick_max = it_env_int("CHAT_NICK_PER_USER", 3);
    int out_max = it_env_int("CHAT_LOGOUT_PER_USER", 3);
    struct it_client cl;
    char name[32], nick[32], why[160] = "";
    json_t *s[8], *out = NULL, *me;
    int st, ra = -1, st_out, ra_out = -1;
    long long t0;

    assert_true(out_max + 1 <= 8);
    it_client_new(&cl, "203.0.113");
    it_name_new(name, sizeof(name), "RNick");
    s[0] = it_register(API1, &cl, name, PW, NULL);
    for (int i = 1; i <= out_max; i++)
        s[i] = it_login(i % 2 ? API1 : API2, &cl, name, PW);
    t0 = it_mono_ms();
    /* malformed requests are answered before the limit counts them: they use up nothing */
    for (int i = 0; i <= nick_max; i++)
        it_api_err(400, "invalid_nickname", i % 2 ? API1 : API2, "POST",
                   "/api/v1/users/me/nickname", it_access(s[0]), &cl,
                   json_pack("{s:s}", "nickname", " x "));
    for (int i = 0; i < nick_max; i++) {
        snprintf(nick, sizeof(nick), "nick %d", i);
        st = it_api(i % 2 ? API1 : API2, "POST", "/api/v1/users/me/nickname", it_access(s[0]), &cl,
                    json_pack("{s:s}", "nickname", nick), &out, NULL);
        json_decref(out);
        if (st != 200)
            snprintf(why, sizeof(why), "nickname change %d: %d, want 200", i + 1, st);
    }
    st = it_api(API2, "POST", "/api/v1/users/me/nickname", it_access(s[0]), &cl,
                json_pack("{s:s}", "nickname", "one too many"), &out, &ra);
    json_decref(out);
    for (int i = 0; i < out_max; i++) {
        int sto = it_api(i % 2 ? API2 : API1, "POST", "/api/v1/auth/logout", it_access(s[i]), &cl,
                         json_object(), &out, NULL);
        json_decref(out);
        if (sto != 200)
            snprintf(why, sizeof(why), "logout %d: %d, want 200", i + 1, sto);
    }
    st_out = it_api(API1, "POST", "/api/v1/auth/logout", it_access(s[out_max]), &cl, json_object(),
                    &out, &ra_out);
    json_decref(out);
    if (!one_window(t0)) {
        for (int i = 0; i <= out_max; i++)
            json_decref(s[i]);
        return false;
    }
    if (st != 429 || !retry_after_ok(ra))
        snprintf(why, sizeof(why), "nickname change %d: %d (Retry-After %d), want 429",
                 nick_max + 1, st, ra);
    if (st_out != 429 || !retry_after_ok(ra_out))
        snprintf(why, sizeof(why), "logout %d: %d (Retry-After %d), want 429", out_max + 1, st_out,
                 ra_out);
    if (why[0])
        fail_msg("%s", why);
    me = it_me(LB, &cl, it_access(s[out_max])); /* the limited logout left it alive */
    snprintf(nick, sizeof(nick), "nick %d", nick_max - 1);
    it_check_user(me, name, nick); /* the limited change changed nothing */
    json_decref(me);
    for (int i = 0; i <= out_max; i++)
        json_decref(s[i]);
    return true;
}

static void test_nickname_and_logout_limits_per_user(void **state)
{
    (void)state;
    for (int i = 0; i < SCENARIO_TRIES; i++)
        if (account_limits_once())
            return;
    fail_msg("%d runs each took longer than one window of %d s", SCENARIO_TRIES, auth_window_s());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_publishes_rules),
        cmocka_unit_test(test_register_returns_session),
        cmocka_unit_test(test_login_case_insensitive_and_me),
        cmocka_unit_test(test_refresh_rotates_and_reuse_revokes_family),
        cmocka_unit_test(test_refresh_retry_within_grace),
        cmocka_unit_test(test_refresh_after_grace_is_reuse),
        cmocka_unit_test(test_logout_revokes_session),
        cmocka_unit_test(test_logout_all_revokes_every_session),
        cmocka_unit_test(test_duplicate_username_case_insensitive),
        cmocka_unit_test(test_register_validation),
        cmocka_unit_test(test_wrong_password_and_unknown_user),
        cmocka_unit_test(test_body_limit_and_bad_json),
        cmocka_unit_test(test_bearer_errors),
        cmocka_unit_test(test_login_history),
        cmocka_unit_test(test_forwarded_for_hops),
        cmocka_unit_test(test_sql_metacharacters_and_unicode),
        cmocka_unit_test(test_login_failures_per_network),
        cmocka_unit_test(test_login_failures_per_user_ceiling),
        cmocka_unit_test(test_login_rate_limit_per_ip),
        cmocka_unit_test(test_nickname_and_logout_limits_per_user),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
