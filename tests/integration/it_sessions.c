/* it_sessions.c - sessions on open WebSockets (issue 4) across both gateways: one user on
 * many connections, password change and logout revoking the other sessions' sockets at once
 * (session_revoked, then anonymous but still joined), nickname changes on open sockets, the
 * session_expiring warning and re-auth (CHAT_SESSION_WARN_S=5 in the test cluster), and forged
 * tokens at the handshake and in band; revocations kept while a session's tokens may be valid,
 * and the retention purge (CHAT_PURGE_INTERVAL_S=1, CHAT_RETAIN_*_S=3600 in the test cluster).
 * Fake client addresses come from 192.0.2.0/24 (it_auth.c uses other blocks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "chat/jwt.h"

#include "it_acct.h"
#include "it_stream.h"

/* ---------------------------------------------------------------------------------------------
 * sessions on open WebSockets */

/* Reads c until its own ack of mine and all n messages m0..m<n-1> came; every message is from
 * uid with nick, and no error may come. */
static void
expect_all(struct wsc *c, int who, int n, const char *mine, const char *uid, const char *nick)
{
    bool acked = false, seen[8] = {false};
    int nseen = 0;

    assert_true(n <= 8);
    while (!acked || nseen < n) {
        const char *type, *cm;
        char *text;
        json_t *f;

        if (wsc_recv_text(c, &text, it_timeout(10000), NULL) <= 0)
            fail_msg("connection %d: acked=%d, %d of %d messages", who, acked, nseen, n);
        f = json_loads(text, 0, NULL);
        wsc_free_text(text);
        type = it_jstr(f, "type");
        cm = json_string_value(json_object_get(f, "client_msg_id"));
        if (strcmp(type, "error") == 0)
            fail_msg("connection %d got error %s", who, it_jstr(f, "code"));
        if (strcmp(type, "ack") == 0 && cm && strcmp(cm, mine) == 0)
            acked = true;
        if (strcmp(type, "message") == 0 && cm && cm[0] == 'm' && cm[1] - '0' < n &&
            !seen[cm[1] - '0']) {
            assert_string_equal(it_jstr(f, "user"), uid);
            assert_string_equal(it_jstr(f, "nick"), nick);
            seen[cm[1] - '0'] = true;
            nseen++;
        }
        json_decref(f);
    }
}

static void test_same_user_three_connections_two_gateways(void **state)
{
    struct it_client cl;
    char name[32], room[80];
    json_t *sa, *sb, *reg, *hello;
    struct wsc *c[3];
    const char *uid;

    (void)state;
    it_client_new(&cl, "192.0.2");
    it_name_new(name, sizeof(name), "Tabs");
    it_room_new(room, sizeof(room), "sess");
    reg = it_register(LB, &cl, name, PW, NULL);
    sa = it_login(API1, &cl, name, PW);
    sb = it_login(API2, &cl, name, PW);
    uid = it_jstr(reg, "user.id");
    assert_string_not_equal(it_jstr(sa, "session_id"), it_jstr(sb, "session_id"));
    c[0] = it_connect_ex(GW1, it_access(sa), false, &hello); /* query string */
    assert_string_equal(it_jstr(hello, "user"), uid);
    json_decref(hello);
    c[1] = it_connect_ex(GW2, it_access(sb), true, &hello); /* Authorization header */
    assert_string_equal(it_jstr(hello, "user"), uid);
    json_decref(hello);
    c[2] = it_connect_ex(GW2, it_access(sa), false, NULL); /* session a's token again */
    for (int i = 0; i < 3; i++)
        it_join(c[i], room);
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "m%d", i);
        it_send(c[i], "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "from a tab",
                "client_msg_id", id);
    }
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "m%d", i);
        expect_all(c[i], i, 3, id, uid, name);
        wsc_close(c[i]);
    }
    json_decref(reg);
    json_decref(sa);
    json_decref(sb);
}

static void test_password_change_revokes_other_sessions(void **state)
{
    struct it_client cl;
    char name[32], room[80];
    json_t *a, *b, *out, *s;
    struct wsc *a1, *b1, *b2;
    const char *path = "/api/v1/users/me/password";

    (void)state;
    it_client_new(&cl, "192.0.2");
    it_name_new(name, sizeof(name), "Pass");
    it_room_new(room, sizeof(room), "sess");
    a = it_register(LB, &cl, name, PW, NULL); /* session A */
    b = it_login(API2, &cl, name, PW);        /* session B */
    a1 = it_connect(GW1, it_access(a));
    b1 = it_connect(GW1, it_access(b));
    b2 = it_connect(GW2, it_access(b));
    it_join(a1, room);
    it_join(b1, room);
    it_join(b2, room);
    it_api_err(403, "wrong_password", API2, "POST", path, it_access(a), &cl,
               json_pack("{s:s, s:s}", "current_password", PW_WRONG, "new_password", PW2));
    it_api_err(400, "invalid_password", API1, "POST", path, it_access(a), &cl,
               json_pack("{s:s, s:s}", "current_password", PW, "new_password", "lettersonly"));
    out = it_api_ok(200, API1, "POST", path, it_access(a), &cl,
                    json_pack("{s:s, s:s}", "current_password", PW, "new_password", PW2));
    assert_int_equal(it_jint(out, "revoked_sessions"), 1);
    json_decref(out);
    it_expect_revoked(b1, "password_changed", it_timeout(2000), "session B on gw1");
    it_expect_revoked(b2, "password_changed", it_timeout(2000), "session B on gw2");
    it_expect_send_error(b1, room, "b1-after", "auth_required");
    it_expect_send_error(b2, room, "b2-after", "auth_required");
    it_expect_sent(a1, room, "A still talks", "a1-after", "session_revoked");
    it_expect_message(b2, "a1-after", it_jstr(a, "user.id"), name); /* B's sockets still watch */
    it_expect_message(b1, "a1-after", it_jstr(a, "user.id"), name);
    it_me_refused(API1, &cl, it_access(b), "session_revoked");
    json_decref(it_me(API2, &cl, it_access(a)));
    it_refresh_fails(LB, &cl, it_jstr(b, "refresh_token"), "invalid_refresh");
    it_login_fails(API1, &cl, name, PW);
    s = it_login(API2, &cl, name, PW2);
    it_check_session(s, name, name);
    json_decref(s);
    wsc_close(a1);
    wsc_close(b1);
    wsc_close(b2);
    json_decref(a);
    json_decref(b);
}

static void test_logout_revokes_socket_on_other_gateway(void **state)
{
    struct it_client cl;
    char name[32], room[80];
    json_t *a, *b, *out;
    struct wsc *sa, *sb;

    (void)state;
    it_client_new(&cl, "192.0.2");
    it_name_new(name, sizeof(name), "Bye");
    it_room_new(room, sizeof(room), "sess");
    a = it_register(LB, &cl, name, PW, NULL);
    b = it_login(API1, &cl, name, PW);
    sa = it_connect(GW2, it_access(a));
    sb = it_connect_ex(GW2, it_access(b), true, NULL);
    it_join(sa, room);
    it_join(sb, room);
    out = it_api_ok(200, API1, "POST", "/api/v1/auth/logout", it_access(b), &cl, json_object());
    assert_int_equal(it_jint(out, "revoked_sessions"), 1);
    json_decref(out);
    it_expect_revoked(sb, "logout", it_timeout(2000), "session B on gw2");
    it_expect_send_error(sb, room, "sb-after", "auth_required");
    it_expect_sent(sa, room, "A is still in", "sa-after", "session_revoked");
    it_expect_message(sb, "sa-after", it_jstr(a, "user.id"), name);
    /* B's access token is dead for new connections too, on both gateways, both ways */
    it_expect_refused(GW1, it_access(b), false, "session_revoked");
    it_expect_refused(GW2, it_access(b), true, "session_revoked");
    it_expect_refused(LB, it_access(b), false, "session_revoked");
    wsc_close(sa);
    wsc_close(sb);
    json_decref(a);
    json_decref(b);
}

/* An administrator revokes every session of another user: that user's sockets on both gateways
 * hear it, its tokens die; unknown users are 404, the role comes from the database. */
static void test_admin_revokes_sessions(void **state)
{
    struct it_client cl;
    char admin[32], victim[32], room[80], path[96];
    json_t *adm, *v1, *v2, *out;
    struct wsc *s1, *s2;

    (void)state;
    it_client_new(&cl, "192.0.2");
    it_name_new(admin, sizeof(admin), "Adm");
    it_name_new(victim, sizeof(victim), "Vic");
    it_room_new(room, sizeof(room), "sess");
    adm = it_register(LB, &cl, admin, PW, NULL);
    v1 = it_register(LB, &cl, victim, PW, NULL);
    v2 = it_login(API2, &cl, victim, PW);
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/revoke", it_jstr(v1, "user.id"));
    /* not an admin yet: forbidden, nothing revoked */
    it_api_err(403, "forbidden", LB, "POST", path, it_access(adm), &cl, NULL);
    assert_int_equal(it_sh("psql -q -X '%s' -c \"UPDATE users SET role = 'admin' WHERE username = "
                           "'%s'\" >/dev/null",
                           it_env("CHAT_TEST_PG_DSN"), admin),
                     0);
    s1 = it_connect(GW1, it_access(v1));
    s2 = it_connect(GW2, it_access(v2));
    it_join(s1, room);
    it_join(s2, room);
    /* the token still says role "user": the database decides */
    out = it_api_ok(200, LB, "POST", path, it_access(adm), &cl, NULL);
    assert_int_equal(it_jint(out, "revoked_sessions"), 2);
    json_decref(out);
    it_expect_revoked(s1, "admin", it_timeout(2000), "victim on gw1");
    it_expect_revoked(s2, "admin", it_timeout(2000), "victim on gw2");
    it_expect_send_error(s1, room, "v-after", "auth_required");
    it_expect_refused(GW2, it_access(v1), false, "session_revoked");
    it_refresh_fails(API1, &cl, it_jstr(v2, "refresh_token"), "invalid_refresh");
    it_api_err(404, "not_found", LB, "POST", "/api/v1/admin/users/999999999/revoke", it_access(adm),
               &cl, NULL);
    wsc_close(s1);
    wsc_close(s2);
    json_decref(adm);
    json_decref(v1);
    json_decref(v2);
}

static void test_nickname_change_on_open_sockets(void **state)
{
    static const char new_nick[] = "New nick \xe2\x9c\x93"; /* trimmed from the request */
    struct it_client cl;
    char name[32], room[80];
    json_t *s, *u, *l;
    struct wsc *c1, *c2, *c3, *o, *w;
    const char *uid;
    json_t *s2;
    char name2[32];

    (void)state;
    it_client_new(&cl, "192.0.2");
    it_name_new(name, sizeof(name), "Nick");
    it_room_new(room, sizeof(room), "sess");
    s = it_register(LB, &cl, name, PW, "Old nick");
    uid = it_jstr(s, "user.id");
    c1 = it_connect(GW1, it_access(s)); /* both carry a token whose name claim is "Old nick" */
    c2 = it_connect(GW2, it_access(s));
    c3 = it_connect(GW1, it_access(s)); /* a second socket of the same user on gw1 */
    /* another user on gw1: a change must not touch her sockets */
    it_name_new(name2, sizeof(name2), "Nick");
    s2 = it_register(LB, &cl, name2, PW, "Other nick");
    o = it_connect(GW1, it_access(s2));
    w = it_connect(GW2, NULL);
    it_join(c1, room);
    it_join(c2, room);
    it_join(c3, room);
    it_join(o, room);
    it_join(w, room);
    it_expect_sent(c1, room, "before", "n0", NULL);
    it_expect_message(w, "n0", uid, "Old nick");
    it_api_err(400, "invalid_nickname", API2, "POST", "/api/v1/users/me/nickname", it_access(s),
               &cl, json_pack("{s:s}", "nickname", " x "));
    u = it_api_ok(200, API1, "POST", "/api/v1/users/me/nickname", it_access(s), &cl,
                  json_pack("{s:s}", "nickname", "  New nick \xe2\x9c\x93  "));
    it_check_user(u, name, new_nick);
    json_decref(u);
    /* every gateway learns it from chat.events (chat-api's outbox, written with the change):
     * open sockets send with it within a second, like revocations */
    it_expect_nick_within(c1, w, room, uid, new_nick, 1000);
    it_expect_nick_within(c2, w, room, uid, new_nick, 1000);
    it_expect_sent(c3, room, "after on gw1, second socket", "n3", NULL);
    it_expect_message(w, "n3", uid, new_nick);
    it_expect_sent(o, room, "other user", "n4", NULL);
    it_expect_message(w, "n4", it_jstr(s2, "user.id"), "Other nick");
    u = it_me(API2, &cl, it_access(s));
    it_check_user(u, name, new_nick);
    json_decref(u);
    l = it_login(API2, &cl, name, PW); /* new sessions carry it in the token */
    it_check_session(l, name, new_nick);
    json_decref(l);
    wsc_close(c1);
    wsc_close(c2);
    wsc_close(c3);
    wsc_close(o);
    wsc_close(w);
    json_decref(s2);
    json_decref(s);
}

/* ---------------------------------------------------------------------------------------------
 * token expiry on an open socket (CHAT_SESSION_WARN_S=5) */

/* Milliseconds until the wall clock time at_ms (0 when past), plus slack_ms (scaled). */
static int until(long long at_ms, int slack_ms)
{
    long long left = at_ms - it_wall_ms();
    return (int)(left > 0 ? left : 0) + it_timeout(slack_ms);
}

/* c gets session_expiring for exp_ms about warn_ms before it. */
static void expect_warning(struct wsc *c, const char *who, long long exp_ms, long long warn_ms)
{
    json_t *e = it_wait_frame(c, "session_expiring", NULL, NULL, "session_expired",
                              until(exp_ms - warn_ms, 2000));
    long long now = it_wall_ms(), in_ms;

    if (!e) {
        fail_msg("%s: no session_expiring", who);
        return; /* not reached */
    }
    assert_int_equal(it_jint(e, "exp") * 1000, exp_ms);
    in_ms = it_jint(e, "in_ms");
    if (in_ms <= 0 || in_ms > warn_ms + 1000)
        fail_msg("%s: session_expiring in_ms %lld, expected 1..%lld", who, in_ms, warn_ms + 1000);
    if (now < exp_ms - warn_ms - 1500) {
        fail_msg("%s: session_expiring came %lld ms before exp, expected ~%lld", who, exp_ms - now,
                 warn_ms);
    }
    json_decref(e);
}

static void test_session_expiring_and_reauth(void **state)
{
    const long long warn_ms = it_env_int("CHAT_SESSION_WARN_S", 60) * 1000LL, leeway_ms = 5000;
    char user[32], watcher[32], room[80];
    char *t8, *fresh, *tw;
    long long exp_ms, now;
    json_t *cl, *e;
    struct wsc *a, *b, *o;

    (void)state;
    it_name_new(user, sizeof(user), "Exp");
    it_name_new(watcher, sizeof(watcher), "ExpW");
    it_room_new(room, sizeof(room), "sess");
    t8 = it_token(user, 8);
    tw = it_token(watcher, 600);
    cl = it_jwt_part(t8, 1);
    exp_ms = it_jint(cl, "exp") * 1000;
    json_decref(cl);
    a = it_connect(GW1, t8); /* will re-auth */
    b = it_connect(GW2, t8); /* will not */
    o = it_connect(GW1, tw);
    it_join(a, room);
    it_join(b, room);
    it_join(o, room);
    /* about 3 s in: the warning, once, on both */
    expect_warning(a, "a", exp_ms, warn_ms);
    expect_warning(b, "b", exp_ms, warn_ms);
    /* b presents the same token again: authed, and still no second warning for it (once per
     * token: the wait for session_expired below refuses one) */
    it_send(b, "{s:s, s:s, s:s}", "type", "auth", "token", t8, "ref", "same");
    e = it_wait_frame(b, "authed", "ref", "same", "session_expiring", it_timeout(5000));
    if (!e)
        fail_msg("no authed for the same token");
    assert_int_equal(it_jint(e, "exp") * 1000, exp_ms);
    json_decref(e);
    /* a answers with a fresh token for the same user */
    fresh = it_token(user, 600);
    it_send(a, "{s:s, s:s, s:s}", "type", "auth", "token", fresh, "ref", "reauth");
    e = it_wait_frame(a, "authed", "ref", "reauth", "error", it_timeout(5000));
    if (!e)
        fail_msg("no authed for the fresh token");
    assert_string_equal(it_jstr(e, "user"), user);
    json_decref(e);
    /* b: session_expired at exp (the 5 s clock leeway allowed), no second warning */
    e = it_wait_frame(b, "session_expired", NULL, NULL, "session_expiring",
                      until(exp_ms + leeway_ms, 2000));
    now = it_wall_ms();
    if (!e)
        fail_msg("no session_expired");
    if (now < exp_ms - 1000)
        fail_msg("session_expired %lld ms before exp", exp_ms - now);
    json_decref(e);
    it_expect_send_error(b, room, "b-expired", "auth_required");
    it_expect_sent(o, room, "still watching?", "o1", NULL);
    it_expect_message(b, "o1", watcher, watcher); /* b stays joined */
    /* a: nothing happens at the old exp */
    it_expect_quiet(a, "session_expired", exp_ms + leeway_ms + 1000 - it_wall_ms());
    it_expect_sent(a, room, "re-authed", "a1", "session_expired");
    it_expect_message(b, "a1", user, user);
    wsc_close(a);
    wsc_close(b);
    wsc_close(o);
    free(t8);
    free(tw);
    free(fresh);
}

/* ---------------------------------------------------------------------------------------------
 * forged tokens */

struct forge {
    const char *secret; /* the cluster's signing key (keys[0] of CHAT_JWT_KEYS) */
    size_t secret_len;
    const char *kid;
    EVP_PKEY *rsa; /* a fresh RSA key of ours */
    char *rsa_pub; /* its public key, PEM */
    long long now; /* s */
};

static json_t *jose(const char *alg, const char *kid)
{
    json_t *h = json_pack("{s:s, s:s}", "alg", alg, "typ", "JWT");
    if (kid)
        json_object_set_new(h, "kid", json_string(kid));
    return h;
}

/* Claims that would be accepted under a good signature. */
static json_t *claims(const struct forge *f)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:s}", "sub", "forger", "name", "Forger", "iat",
                     (json_int_t)f->now, "exp", (json_int_t)(f->now + 600), "iss",
                     it_env("CHAT_JWT_ISSUER"));
}

static char *b64url_json(json_t *j) /* consumes j */
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS), *out;

    assert_non_null(text);
    out = it_b64url((const unsigned char *)text, strlen(text));
    free(text);
    json_decref(j);
    return out;
}

/* base64url(hdr) "." base64url(cl) "." base64url(signature over the first two parts): HMAC with
 * md and hmac_key, else a signature with md and the private key rsa, else none (empty).
 * Consumes hdr and cl. Returns a new string. */
static char *
jws(json_t *hdr, json_t *cl, const EVP_MD *md, const void *hmac_key, size_t hmac_len, EVP_PKEY *rsa)
{
    char *h = b64url_json(hdr), *c = b64url_json(cl), *input, *sig, *out;
    unsigned char raw[1024];
    size_t n = 0;

    input = malloc(strlen(h) + strlen(c) + 2);
    assert_non_null(input);
    sprintf(input, "%s.%s", h, c);
    if (hmac_key) {
        unsigned int len = 0;
        assert_non_null(HMAC(md, hmac_key, (int)hmac_len, (const unsigned char *)input,
                             strlen(input), raw, &len));
        n = len;
    } else if (rsa) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        n = sizeof(raw);
        assert_non_null(ctx);
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, rsa), 1);
        assert_int_equal(EVP_DigestSign(ctx, raw, &n, (const unsigned char *)input, strlen(input)),
                         1);
        EVP_MD_CTX_free(ctx);
    }
    sig = it_b64url(raw, n);
    out = malloc(strlen(input) + strlen(sig) + 2);
    assert_non_null(out);
    sprintf(out, "%s.%s", input, sig);
    free(h);
    free(c);
    free(input);
    free(sig);
    return out;
}

/* HS256 with the real key: a genuine signature over whatever header and claims. */
static char *hs256(const struct forge *f, json_t *hdr, json_t *cl)
{
    return jws(hdr, cl, EVP_sha256(), f->secret, f->secret_len, NULL);
}

static char *f_alg_none(const struct forge *f)
{
    return jws(jose("none", f->kid), claims(f), NULL, NULL, 0, NULL);
}

static char *f_alg_none_signed(const struct forge *f)
{
    return hs256(f, jose("none", f->kid), claims(f));
}

static char *f_wrong_key(const struct forge *f)
{
    static const char k[] = "an-attacker-secret-0123456789abcdefghij";
    return jws(jose("HS256", f->kid), claims(f), EVP_sha256(), k, strlen(k), NULL);
}

static char *f_rs256_real(const struct forge *f)
{
    return jws(jose("RS256", f->kid), claims(f), EVP_sha256(), NULL, 0, f->rsa);
}

static char *f_rs256_hmac(const struct forge *f) /* alg RS256, HMAC with the secret */
{
    return hs256(f, jose("RS256", f->kid), claims(f));
}

static char *f_hs256_pubkey(const struct forge *f) /* RS/HS confusion: public key as secret */
{
    return jws(jose("HS256", NULL), claims(f), EVP_sha256(), f->rsa_pub, strlen(f->rsa_pub), NULL);
}

static char *f_hs512(const struct forge *f)
{
    return jws(jose("HS512", f->kid), claims(f), EVP_sha512(), f->secret, f->secret_len, NULL);
}

static char *f_tampered(const struct forge *f) /* sub changed after signing */
{
    char *tok = hs256(f, jose("HS256", f->kid), claims(f)), *d1 = strchr(tok, '.');
    char *d2 = strrchr(tok, '.'), *evil, *out;
    json_t *cl = claims(f);

    json_object_set_new(cl, "sub", json_string("admin"));
    evil = b64url_json(cl);
    out = malloc(strlen(tok) + strlen(evil) + 2);
    assert_non_null(out);
    sprintf(out, "%.*s.%s%s", (int)(d1 - tok), tok, evil, d2);
    free(evil);
    free(tok);
    return out;
}

static char *f_no_exp(const struct forge *f)
{
    json_t *cl = claims(f);
    json_object_del(cl, "exp");
    return hs256(f, jose("HS256", f->kid), cl);
}

static char *f_exp_string(const struct forge *f)
{
    json_t *cl = claims(f);
    json_object_set_new(cl, "exp", json_string("4102444800"));
    return hs256(f, jose("HS256", f->kid), cl);
}

static char *f_wrong_issuer(const struct forge *f)
{
    json_t *cl = claims(f);
    json_object_set_new(cl, "iss", json_string("someone-else"));
    return hs256(f, jose("HS256", f->kid), cl);
}

static char *f_unknown_kid(const struct forge *f)
{
    return hs256(f, jose("HS256", "no-such-kid"), claims(f));
}

static char *f_expired(const struct forge *f)
{
    json_t *cl = claims(f);
    json_object_set_new(cl, "iat", json_integer((json_int_t)(f->now - 3600)));
    json_object_set_new(cl, "exp", json_integer((json_int_t)(f->now - 60)));
    return hs256(f, jose("HS256", f->kid), cl);
}

static const struct forged {
    const char *what, *code;
    char *(*make)(const struct forge *f);
} forged[] = {
    {"alg none, kid of the real key", "bad_token", f_alg_none},
    {"alg none with a valid HMAC", "bad_token", f_alg_none_signed},
    {"HS256 with a wrong key", "bad_token", f_wrong_key},
    {"RS256 with an RSA key of ours", "bad_token", f_rs256_real},
    {"alg RS256, HMAC with the secret", "bad_token", f_rs256_hmac},
    {"HS256 keyed with an RSA public key", "bad_token", f_hs256_pubkey},
    {"HS512 with the secret", "bad_token", f_hs512},
    {"payload changed after signing", "bad_token", f_tampered},
    {"no exp", "bad_token", f_no_exp},
    {"exp a string", "bad_token", f_exp_string},
    {"wrong issuer", "bad_token", f_wrong_issuer},
    {"unknown kid", "bad_token", f_unknown_kid},
    {"expired", "token_expired", f_expired},
};

static void forge_init(struct forge *f, struct chat_jwt_keyring *kr)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;
    long n;

    assert_int_equal(chat_jwt_keyring_parse(it_env("CHAT_JWT_KEYS"), kr), 0);
    f->secret = kr->keys[0].secret;
    f->secret_len = kr->keys[0].len;
    f->kid = kr->keys[0].kid;
    f->now = it_wall_ms() / 1000;
    f->rsa = EVP_RSA_gen(2048);
    assert_non_null(f->rsa);
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PUBKEY(bio, f->rsa), 1);
    n = BIO_get_mem_data(bio, &pem);
    assert_true(n > 0);
    f->rsa_pub = malloc((size_t)n + 1); /* the PEM in the BIO is not NUL-terminated */
    assert_non_null(f->rsa_pub);
    memcpy(f->rsa_pub, pem, (size_t)n);
    f->rsa_pub[n] = '\0';
    BIO_free(bio);
}

static void test_forged_tokens_handshake_and_inband(void **state)
{
    struct chat_jwt_keyring kr;
    struct forge f;
    char room[80], *good, ref_user[32];
    struct wsc *c;
    json_t *e;

    (void)state;
    forge_init(&f, &kr);
    it_room_new(room, sizeof(room), "sess");
    c = it_connect(GW2, NULL); /* anonymous: forged auth frames must not change that */
    it_join(c, room);
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        char *tok = forged[i].make(&f), ref[16];

        print_message("forged token: %s\n", forged[i].what);
        it_expect_refused(i % 2 ? GW2 : GW1, tok, i % 3 == 0, forged[i].code);
        snprintf(ref, sizeof(ref), "f%zu", i);
        it_send(c, "{s:s, s:s, s:s}", "type", "auth", "token", tok, "ref", ref);
        e = it_wait_field(c, "error", "ref", ref, it_timeout(5000));
        if (!e)
            fail_msg("%s in band: no error", forged[i].what);
        if (strcmp(it_jstr(e, "code"), forged[i].code) != 0) {
            fail_msg("%s in band: %s, expected %s", forged[i].what, it_jstr(e, "code"),
                     forged[i].code);
        }
        json_decref(e);
        if (!it_ping(c))
            fail_msg("%s in band: the connection is gone", forged[i].what);
        free(tok);
    }
    it_expect_send_error(c, room, "forged", "auth_required"); /* still anonymous */
    /* a genuine token works after all (a user of this run: client_msg_ids are remembered) */
    snprintf(ref_user, sizeof(ref_user), "forger_%d", (int)getpid());
    good = it_token(ref_user, 600);
    it_send(c, "{s:s, s:s, s:s}", "type", "auth", "token", good, "ref", "good");
    e = it_wait_field(c, "authed", "ref", "good", it_timeout(5000));
    assert_non_null(e);
    json_decref(e);
    it_expect_sent(c, room, "genuine", "genuine", NULL);
    wsc_close(c);
    free(good);
    free(f.rsa_pub);
    EVP_PKEY_free(f.rsa);
    chat_jwt_keyring_fini(&kr);
}

/* The handshake's Authorization header: the Bearer scheme in any case carries the token, and
 * one with no usable token is refused (bad_token, then close 4001: no silent downgrade); another
 * scheme (an ingress's or a browser's Basic login) is not the server's and is ignored, the query
 * token still counts. */
static void test_handshake_authorization_schemes(void **state)
{
    static const struct {
        const char *authz; /* "%s": the good token */
        bool query;        /* the good token in ?token= too */
        const char *want;  /* hello's user ("" for null), or the error code */
    } cases[] = {
        {"Basic dXNlcjpwYXNz", false, ""},
        {"Token abc", false, ""},
        {"Basic dXNlcjpwYXNz", true, "authz_user"},
        {"bearer %s", false, "authz_user"},
        {"BEARER %s", false, "authz_user"},
        {"Bearer %s", false, "authz_user"},
        {"Bearer", false, "bad_token"},
        {"Bearer ", false, "bad_token"},
        {"Bearer garbage", false, "bad_token"},
    };
    char *good = it_token("authz_user", 600), *text;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *gw = i % 2 ? GW1 : GW2;
        char err[256], h[4200], path[4300];
        struct wsc *c;
        json_t *f, *u;

        snprintf(h, sizeof(h), cases[i].authz, good);
        snprintf(path, sizeof(path), "/ws%s%s", cases[i].query ? "?token=" : "",
                 cases[i].query ? good : "");
        if (strcmp(cases[i].want, "bad_token") == 0) { /* error first, no hello, then 4001 */
            it_expect_refused_authz(gw, path, h, "bad_token");
            continue;
        }
        c = wsc_connect_authz(gw, path, h, it_timeout(5000), err, sizeof(err));
        if (!c)
            fail_msg("connect: %s", err);
        if (wsc_recv_text(c, &text, it_timeout(5000), NULL) <= 0)
            fail_msg("case %zu: no first frame", i);
        f = json_loads(text, 0, NULL);
        wsc_free_text(text);
        u = json_object_get(f, "user");
        if (strcmp(it_jstr(f, "type"), "hello") != 0 ||
            (cases[i].want[0]
                 ? !json_is_string(u) || strcmp(json_string_value(u), cases[i].want) != 0
                 : !json_is_null(u)))
            fail_msg("case %zu (%.20s): expected hello for '%s'", i, h, cases[i].want);
        json_decref(f);
        wsc_close(c);
    }
    free(good);
}

/* ---------------------------------------------------------------------------------------------
 * the database behind the accounts */

static PGconn *pg_open(void)
{
    PGconn *pg = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));

    if (PQstatus(pg) != CONNECTION_OK)
        fail_msg("postgres: %s", PQerrorMessage(pg));
    return pg;
}

/* Runs sql with up to 3 text parameters; returns the first column of the first row as a
 * number (0 without rows). */
static long long pg_val(PGconn *pg, const char *sql, const char *p1, const char *p2, const char *p3)
{
    const char *p[3] = {p1, p2, p3};
    int n = p3 ? 3 : p2 ? 2 : p1 ? 1 : 0;
    PGresult *r = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
    long long v = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* The first frame a handshake with token gets from base: "hello", or the error's code. */
static void ws_first(const char *base, const char *token, char *out, size_t cap)
{
    char path[4200], err[256], *text = NULL;
    struct wsc *c;
    json_t *f;

    snprintf(path, sizeof(path), "/ws?token=%s", token);
    c = wsc_connect(base, path, NULL, it_timeout(5000), err, sizeof(err));
    if (!c)
        fail_msg("connect %s: %s", base, err);
    if (wsc_recv_text(c, &text, it_timeout(5000), NULL) <= 0)
        fail_msg("%s: no first frame", base);
    f = json_loads(text, 0, NULL);
    wsc_free_text(text);
    if (strcmp(it_jstr(f, "type"), "error") == 0)
        snprintf(out, cap, "%s", it_jstr(f, "code"));
    else
        snprintf(out, cap, "%s", it_jstr(f, "type"));
    json_decref(f);
    wsc_close(c);
}

/* A revocation holds on a gateway started after it: the gateway reads chat.events from
 * CHAT_REVOKE_KEEP_S back before it is ready (the events chat-api's outbox wrote; no database).
 * The token here lives 3 h, as `chatctl token --ttl 10800 --sid` signs. */
static void test_revocation_kept_while_tokens_valid(void **state)
{
    struct chat_jwt_keyring kr;
    struct chat_claims cl;
    struct it_client c;
    char name[32], code[64], *tok = NULL;
    const char *bases[2] = {GW1, GW2};
    PGconn *pg = pg_open();
    long long left;
    json_t *s, *out;

    (void)state;
    it_client_new(&c, "192.0.2");
    it_name_new(name, sizeof(name), "Long");
    s = it_register(API1, &c, name, PW, NULL);
    /* chat-api records how long the session's tokens live */
    left = pg_val(pg,
                  "SELECT extract(epoch FROM tokens_expire_at - now())::bigint FROM sessions "
                  "WHERE id = $1::bigint",
                  it_jstr(s, "session_id"), NULL, NULL);
    if (left < it_env_int("CHAT_ACCESS_TTL_S", 900) - 60 ||
        left > it_env_int("CHAT_ACCESS_TTL_S", 900) + 60)
        fail_msg("sessions.tokens_expire_at is %lld s ahead", left);
    assert_int_equal(chat_jwt_keyring_parse(it_env("CHAT_JWT_KEYS"), &kr), 0);
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", it_jstr(s, "user.id"));
    snprintf(cl.sid, sizeof(cl.sid), "%s", it_jstr(s, "session_id"));
    snprintf(cl.name, sizeof(cl.name), "%s", name);
    snprintf(cl.role, sizeof(cl.role), "user");
    cl.iat = (int64_t)time(NULL);
    cl.exp = cl.iat + 3 * 3600;
    assert_int_equal(chat_jwt_sign(&kr, &cl, it_env("CHAT_JWT_ISSUER"), &tok), 0);
    ws_first(GW1, tok, code, sizeof(code));
    assert_string_equal(code, "hello");
    out = it_api_ok(200, API2, "POST", "/api/v1/auth/logout", it_access(s), &c, json_object());
    json_decref(out);
    /* every running gateway refuses it within a second (chat.events) */
    for (int i = 0; i < 2; i++) {
        long long end = it_mono_ms() + it_timeout(1000);
        for (;;) {
            ws_first(bases[i], tok, code, sizeof(code));
            if (strcmp(code, "session_revoked") == 0)
                break;
            if (it_mono_ms() > end)
                fail_msg("gateway %d still answers %s to a token of a revoked session", i + 1,
                         code);
            it_sleep_ms(50);
        }
    }
    /* a gateway started afterwards refuses it from its first connection on */
    assert_int_equal(it_fixture("stop", "gw1"), 0);
    assert_int_equal(it_fixture("start", "gw1"), 0); /* returns once /readyz answers 200 */
    ws_first(GW1, tok, code, sizeof(code));
    if (strcmp(code, "session_revoked") != 0)
        fail_msg("a restarted gateway answers %s to a token of a session revoked before", code);
    free(tok); /* chat_free == free */
    /* a session token living longer than CHAT_TOKEN_MAX_TTL_S (default 1 day) is refused on
     * every gateway: no revocation record would outlive it */
    cl.exp = cl.iat + 86400 + 60;
    assert_int_equal(chat_jwt_sign(&kr, &cl, it_env("CHAT_JWT_ISSUER"), &tok), 0);
    for (int i = 0; i < 2; i++) {
        ws_first(bases[i], tok, code, sizeof(code));
        if (strcmp(code, "bad_token") != 0)
            fail_msg("gateway %d answers %s to a session token of more than a day", i + 1, code);
    }
    free(tok);
    chat_jwt_keyring_fini(&kr);
    json_decref(s);
    PQfinish(pg);
}

/* Rows past CHAT_RETAIN_LOGINS_S / CHAT_RETAIN_SESSIONS_S (3600 in the test cluster) are purged
 * by the periodic job (CHAT_PURGE_INTERVAL_S=1); younger ones stay. */
static void test_retention_purge(void **state)
{
    static const char count_sql[] =
        "SELECT (SELECT count(*) FROM login_events WHERE user_id = $1::bigint AND reason = $2) + "
        "(SELECT count(*) FROM sessions WHERE user_id = $1::bigint AND revoke_reason = $2) + "
        "(SELECT count(*) FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "
        "WHERE s.user_id = $1::bigint AND t.created_at < now() - interval '1 day')";
    struct it_client c;
    char name[32];
    PGconn *pg = pg_open();
    const char *uid;
    long long end, n;
    json_t *s;

    (void)state;
    it_client_new(&c, "192.0.2");
    it_name_new(name, sizeof(name), "Purge");
    s = it_register(API2, &c, name, PW, NULL);
    uid = it_jstr(s, "user.id");
    /* old: a login event of 2 days ago, a session expired 2 days ago with its refresh token, a
     * session revoked 2 days ago; young: the same 30 minutes ago */
    pg_val(pg,
           "INSERT INTO login_events (user_id, username, at, success, reason) VALUES "
           "($1::bigint, $2, now() - interval '2 days', true, 'old'), "
           "($1::bigint, $2, now() - interval '30 minutes', true, 'young')",
           uid, name, NULL);
    pg_val(pg,
           "WITH s AS (INSERT INTO sessions (user_id, created_at, expires_at, tokens_expire_at, "
           "revoke_reason) VALUES ($1::bigint, now() - interval '40 days', "
           "now() - interval '2 days', now() - interval '2 days', 'old') RETURNING id) "
           "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) "
           "SELECT sha256(convert_to($2 || 'old', 'UTF8')), id, now() - interval '3 days', "
           "now() - interval '2 days' FROM s",
           uid, name, NULL);
    pg_val(pg,
           "INSERT INTO sessions (user_id, expires_at, revoked_at, tokens_expire_at, "
           "revoke_reason) VALUES "
           "($1::bigint, now() + interval '20 days', now() - interval '2 days', "
           "now() - interval '2 days', 'old'), "
           "($1::bigint, now() + interval '20 days', now() - interval '30 minutes', "
           "now() - interval '15 minutes', 'young')",
           uid, NULL, NULL);
    assert_int_equal(pg_val(pg, count_sql, uid, "old", NULL), 1 + 2 + 1);
    end = it_mono_ms() + it_timeout(20000); /* the first purge runs 5-10 s after start */
    while ((n = pg_val(pg, count_sql, uid, "old", NULL)) > 0) {
        if (it_mono_ms() > end)
            fail_msg("%lld rows past retention still there", n);
        it_sleep_ms(200);
    }
    /* the young rows, and the user's real session and history, are kept */
    assert_int_equal(pg_val(pg, count_sql, uid, "young", NULL), 2);
    assert_int_equal(pg_val(pg,
                            "SELECT count(*) FROM login_events WHERE user_id = $1::bigint "
                            "AND reason = 'registered'",
                            uid, NULL, NULL),
                     1);
    json_decref(it_me(API1, &c, it_access(s)));
    json_decref(s);
    PQfinish(pg);
}

/* A failed login for an unknown username leaves no trace of the typed text in the database
 * (people type their password into the username field): only a keyed hash. */
static void test_unknown_username_not_stored(void **state)
{
    struct it_client c;
    char typed[32], like[40], ua[64];
    PGconn *pg = pg_open();

    (void)state;
    it_client_new(&c, "192.0.2");
    snprintf(ua, sizeof(ua), "it-sessions/unknown-%d", (int)getpid());
    c.ua = ua;
    it_name_new(typed, sizeof(typed), "Pw9x");
    it_login_fails(API1, &c, typed, PW);
    it_login_fails(API2, &c, typed, PW); /* the same name twice: the same hash */
    snprintf(like, sizeof(like), "%%%s%%", typed);
    assert_int_equal(pg_val(pg,
                            "SELECT count(*) FROM login_events WHERE user_agent = $1 AND reason = "
                            "'unknown_user' AND username ~ '^hmac:[0-9a-f]{32}$' AND ip = $2",
                            ua, c.ip, NULL),
                     2);
    assert_int_equal(pg_val(pg,
                            "SELECT count(DISTINCT username) FROM login_events "
                            "WHERE user_agent = $1",
                            ua, NULL, NULL),
                     1);
    assert_int_equal(pg_val(pg,
                            "SELECT count(*) FROM login_events WHERE lower(username) LIKE "
                            "lower($1) OR lower(user_agent) LIKE lower($1)",
                            like, NULL, NULL),
                     0);
    PQfinish(pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_user_three_connections_two_gateways),
        cmocka_unit_test(test_password_change_revokes_other_sessions),
        cmocka_unit_test(test_logout_revokes_socket_on_other_gateway),
        cmocka_unit_test(test_admin_revokes_sessions),
        cmocka_unit_test(test_nickname_change_on_open_sockets),
        cmocka_unit_test(test_session_expiring_and_reauth),
        cmocka_unit_test(test_forged_tokens_handshake_and_inband),
        cmocka_unit_test(test_handshake_authorization_schemes),
        cmocka_unit_test(test_revocation_kept_while_tokens_valid),
        cmocka_unit_test(test_retention_purge),
        cmocka_unit_test(test_unknown_username_not_stored),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
