/* it_acct.c - see it_acct.h. Test code: plain libc allocation is fine here. */
#include "it_acct.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <cmocka.h>

static int name_seq, ip_seq, room_seq;

/* ---------------------------------------------------------------------------------------------
 * small helpers */

long long it_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long it_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void it_sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (ms > 0 && nanosleep(&ts, &ts) != 0)
        ;
}

/* A new fake client address in net ("203.0.113" or "198.51.100"), never used before this run. */
void it_client_new(struct it_client *cl, const char *net)
{
    snprintf(cl->ip, sizeof(cl->ip), "%s.%d", net, ++ip_seq);
    cl->ua = NULL;
}

/* A username unique to this run: prefix (<= 6 chars) + pid + counter, <= 20 chars. */
void it_name_new(char *buf, size_t cap, const char *prefix)
{
    snprintf(buf, cap, "%s%d_%d", prefix, (int)(getpid() % 1000000), ++name_seq);
}

void it_room_new(char *buf, size_t cap, const char *prefix)
{
    snprintf(buf, cap, "%s-%d-%d", prefix, (int)getpid(), ++room_seq);
}

/* The same name with the case of every letter swapped. */
void it_swap_case(char *dst, size_t cap, const char *src)
{
    size_t i;
    for (i = 0; src[i] && i + 1 < cap; i++) {
        char c = src[i];
        if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        } else if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        dst[i] = c;
    }
    dst[i] = '\0';
}

/* Unicode code points of a valid UTF-8 string. */
size_t it_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    }
    return n;
}

bool it_is_decimal(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
    }
    return true;
}

/* Settings of the test cluster from the environment (see CMakeLists.txt); dflt when unset (the
 * default of the service that reads the setting). */
int it_env_int(const char *key, int dflt)
{
    const char *v = getenv(key);
    return v && *v ? (int)strtol(v, NULL, 10) : dflt;
}

/* ---------------------------------------------------------------------------------------------
 * JSON */

/* j's member at a dotted path ("user.id"), or NULL. */
json_t *it_jget(const json_t *j, const char *path)
{
    char key[64];
    const char *dot;

    while ((dot = strchr(path, '.')) != NULL) {
        snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
        j = json_object_get(j, key);
        path = dot + 1;
    }
    return json_object_get(j, path);
}

const char *it_jstr(const json_t *j, const char *path)
{
    const json_t *v = it_jget(j, path);
    if (!json_is_string(v)) {
        char *d = json_dumps(j, JSON_COMPACT);
        fail_msg("%s is not a string in %.400s", path, d ? d : "(null)");
    }
    return json_string_value(v);
}

long long it_jint(const json_t *j, const char *path)
{
    const json_t *v = it_jget(j, path);
    if (!json_is_integer(v)) {
        char *d = json_dumps(j, JSON_COMPACT);
        fail_msg("%s is not an integer in %.400s", path, d ? d : "(null)");
    }
    return (long long)json_integer_value(v);
}

/* ---------------------------------------------------------------------------------------------
 * base64url and JWTs */

char *it_b64url(const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5), *o = out;

    assert_non_null(out);
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        if (i + 1 < n)
            *o++ = tab[(v >> 6) & 63];
        if (i + 2 < n)
            *o++ = tab[v & 63];
    }
    *o = '\0';
    return out;
}

/* Decodes n characters of unpadded base64url into a new NUL-terminated string. */
static char *b64url_decode(const char *s, size_t n)
{
    char *out = malloc(n * 3 / 4 + 4);
    unsigned acc = 0;
    int bits = 0;
    size_t k = 0;

    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
        if (v < 0)
            fail_msg("not base64url: %.*s", (int)n, s);
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (char)((acc >> bits) & 0xFF);
        }
    }
    out[k] = '\0';
    return out;
}

/* Part idx (0 header, 1 claims) of a JWT as JSON (json_decref it). */
json_t *it_jwt_part(const char *tok, int idx)
{
    const char *p = tok, *end;
    char *raw;
    json_t *j;

    for (int i = 0; i < idx; i++) {
        p = strchr(p, '.');
        if (!p) {
            fail_msg("not a JWT: %.80s", tok);
            return NULL; /* not reached */
        }
        p++;
    }
    end = strchr(p, '.');
    if (!end) {
        fail_msg("not a JWT: %.80s", tok);
        return NULL;
    }
    raw = b64url_decode(p, (size_t)(end - p));
    j = json_loads(raw, 0, NULL);
    if (!j)
        fail_msg("JWT part %d is not JSON: %.200s", idx, raw);
    free(raw);
    return j;
}

/* ---------------------------------------------------------------------------------------------
 * REST */

/* One request with a raw body (NULL: none) from cl. Returns the status; *out the response as
 * JSON (every answer of the API is JSON: anything else fails the test). */
int it_api_raw(const char *base,
               const char *method,
               const char *path,
               const char *bearer,
               const struct it_client *cl,
               const char *body,
               size_t body_len,
               json_t **out,
               int *retry_after)
{
    struct it_req rq = {.method = method,
                        .base = base,
                        .path = path,
                        .bearer = bearer,
                        .body = body,
                        .body_len = body_len,
                        .xff = cl->ip,
                        .user_agent = cl->ua};
    char *resp = NULL;
    int st = it_http_req(&rq, &resp, retry_after);

    if (st < 0)
        fail_msg("%s %s%s: no response", method, base, path);
    /* 204 No Content: JSON null */
    *out = st == 204 && (!resp || !resp[0]) ? json_null() : json_loads(resp ? resp : "", 0, NULL);
    if (!*out)
        fail_msg("%s %s -> %d: the body is not JSON: %.300s", method, path, st, resp);
    free(resp);
    return st;
}

/* it_api_raw() with a JSON body (consumed; NULL: no body). */
int it_api(const char *base,
           const char *method,
           const char *path,
           const char *bearer,
           const struct it_client *cl,
           json_t *body,
           json_t **out,
           int *retry_after)
{
    char *text = NULL;
    int st;

    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        assert_non_null(text);
    }
    /* a POST without a body still says Content-Length: 0 */
    st = it_api_raw(base, method, path, bearer, cl, text || strcmp(method, "GET") == 0 ? text : "",
                    0, out, retry_after);
    free(text);
    return st;
}

/* A request that must answer want; returns the JSON answer (json_decref it). */
json_t *it_api_ok(int want,
                  const char *base,
                  const char *method,
                  const char *path,
                  const char *bearer,
                  const struct it_client *cl,
                  json_t *body)
{
    json_t *out;
    int st = it_api(base, method, path, bearer, cl, body, &out, NULL);

    if (st != want) {
        char *d = json_dumps(out, JSON_COMPACT);
        fail_msg("%s %s: status %d, expected %d: %.300s", method, path, st, want, d);
    }
    return out;
}

/* Checks an error answer: status want and {"error":{"code":code,"message":"..."}}. */
void it_check_error(int st, json_t *out, int want, const char *code, const char *what)
{
    if (st != want || !json_is_string(it_jget(out, "error.code")) ||
        strcmp(json_string_value(it_jget(out, "error.code")), code) != 0) {
        char *d = json_dumps(out, JSON_COMPACT);
        fail_msg("%s: status %d %.300s, expected %d %s", what, st, d, want, code);
    }
    assert_true(json_is_string(it_jget(out, "error.message")));
}

/* A request that must fail with want and the error code; returns Retry-After (-1: absent). */
int it_api_err(int want,
               const char *code,
               const char *base,
               const char *method,
               const char *path,
               const char *bearer,
               const struct it_client *cl,
               json_t *body)
{
    json_t *out;
    int ra, st = it_api(base, method, path, bearer, cl, body, &out, &ra);

    it_check_error(st, out, want, code, path);
    json_decref(out);
    return ra;
}

json_t *it_creds(const char *user, const char *pw)
{
    return json_pack("{s:s, s:s}", "username", user, "password", pw);
}

/* Registers user (nick NULL: the default); returns the session object (201). */
json_t *it_register(const char *base,
                    const struct it_client *cl,
                    const char *user,
                    const char *pw,
                    const char *nick)
{
    json_t *body = it_creds(user, pw);
    if (nick)
        json_object_set_new(body, "nickname", json_string(nick));
    return it_api_ok(201, base, "POST", "/api/v1/auth/register", NULL, cl, body);
}

json_t *it_login(const char *base, const struct it_client *cl, const char *user, const char *pw)
{
    return it_api_ok(200, base, "POST", "/api/v1/auth/login", NULL, cl, it_creds(user, pw));
}

void it_login_fails(const char *base, const struct it_client *cl, const char *user, const char *pw)
{
    it_api_err(401, "invalid_credentials", base, "POST", "/api/v1/auth/login", NULL, cl,
               it_creds(user, pw));
}

const char *it_access(const json_t *s)
{
    return it_jstr(s, "access_token");
}

/* GET /users/me must answer 200; returns the user object. */
json_t *it_me(const char *base, const struct it_client *cl, const char *token)
{
    return it_api_ok(200, base, "GET", "/api/v1/users/me", token, cl, NULL);
}

void it_me_refused(const char *base,
                   const struct it_client *cl,
                   const char *token,
                   const char *code)
{
    it_api_err(401, code, base, "GET", "/api/v1/users/me", token, cl, NULL);
}

/* A user object: every field with its type; username and nickname as given. */
void it_check_user(const json_t *u, const char *username, const char *nick)
{
    long long now = it_wall_ms(), created = it_jint(u, "created_at");

    assert_true(json_is_object(u));
    if (!it_is_decimal(it_jstr(u, "id")))
        fail_msg("user id '%s' is not a decimal string", it_jstr(u, "id"));
    assert_string_equal(it_jstr(u, "username"), username);
    assert_string_equal(it_jstr(u, "nickname"), nick);
    assert_string_equal(it_jstr(u, "role"), "user");
    if (created < now - 600000 || created > now + 60000) /* ms, not s */
        fail_msg("created_at %lld is not near now (%lld ms)", created, now);
}

/* A session object (register, login, refresh) of username / nick, and its access token's
 * claims. */
void it_check_session(const json_t *s, const char *username, const char *nick)
{
    const json_t *u = json_object_get(s, "user");
    const char *at = it_access(s);
    long long now = it_wall_ms() / 1000;
    json_t *hdr, *cl;

    it_check_user(u, username, nick);
    assert_string_equal(it_jstr(s, "token_type"), "Bearer");
    assert_int_equal(it_jint(s, "expires_in"), 900); /* CHAT_ACCESS_TTL_S default */
    assert_true(strlen(it_jstr(s, "refresh_token")) >= 16);
    assert_true(it_jint(s, "refresh_expires_in") > it_jint(s, "expires_in"));
    assert_string_not_equal(it_jstr(s, "refresh_token"), at);
    if (!it_is_decimal(it_jstr(s, "session_id")))
        fail_msg("session_id '%s' is not a decimal string", it_jstr(s, "session_id"));
    hdr = it_jwt_part(at, 0);
    cl = it_jwt_part(at, 1);
    assert_string_equal(it_jstr(hdr, "alg"), "HS256");
    assert_string_equal(it_jstr(cl, "sub"), it_jstr(u, "id"));
    assert_string_equal(it_jstr(cl, "sid"), it_jstr(s, "session_id"));
    assert_string_equal(it_jstr(cl, "role"), "user");
    assert_string_equal(it_jstr(cl, "name"), nick);
    assert_string_equal(it_jstr(cl, "iss"), it_env("CHAT_JWT_ISSUER"));
    assert_int_equal(it_jint(cl, "exp") - it_jint(cl, "iat"), it_jint(s, "expires_in"));
    if (llabs(it_jint(cl, "iat") - now) > 60)
        fail_msg("iat %lld is not near now (%lld s)", it_jint(cl, "iat"), now);
    json_decref(hdr);
    json_decref(cl);
}

/* ---------------------------------------------------------------------------------------------
 * WebSocket */

/* Waits up to timeout_ms for a frame of type whose string field key (when given) equals val.
 * A frame of type forbid (when given) arriving first fails the test. NULL on timeout/close. */
json_t *it_wait_frame(struct wsc *c,
                      const char *type,
                      const char *key,
                      const char *val,
                      const char *forbid,
                      int timeout_ms)
{
    long long deadline = it_mono_ms() + timeout_ms;

    for (;;) {
        long long left = deadline - it_mono_ms();
        const char *t;
        char *text;
        json_t *j;

        if (left <= 0 || wsc_recv_text(c, &text, (int)left, NULL) <= 0)
            return NULL;
        j = json_loads(text, 0, NULL);
        wsc_free_text(text);
        t = json_string_value(json_object_get(j, "type"));
        if (!t) {
            fail_msg("server sent a frame without a type");
            return NULL; /* not reached */
        }
        if (forbid && strcmp(t, forbid) == 0) {
            char *d = json_dumps(j, JSON_COMPACT);
            fail_msg("unexpected frame %.300s while waiting for %s", d, type);
        }
        if (strcmp(t, type) == 0 &&
            (!key || (json_is_string(json_object_get(j, key)) &&
                      strcmp(json_string_value(json_object_get(j, key)), val) == 0)))
            return j;
        json_decref(j);
    }
}

/* Reads for ms: no frame of type forbid may come, and the connection must stay open. */
void it_expect_quiet(struct wsc *c, const char *forbid, long long ms)
{
    long long deadline = it_mono_ms() + ms;

    for (;;) {
        long long left = deadline - it_mono_ms();
        char *text;
        int r;
        json_t *j;

        if (left <= 0)
            return;
        r = wsc_recv_text(c, &text, (int)left, NULL);
        if (r < 0) {
            fail_msg("connection closed (%d) while expecting no %s", wsc_last_close_code(c),
                     forbid);
        }
        if (r == 0)
            return;
        j = json_loads(text, 0, NULL);
        wsc_free_text(text);
        if (json_is_string(json_object_get(j, "type")) &&
            strcmp(json_string_value(json_object_get(j, "type")), forbid) == 0)
            fail_msg("unexpected %s frame", forbid);
        json_decref(j);
    }
}

/* The ack or error frame answering client_msg_id cmid (other frames skipped). */
json_t *it_reply_to(struct wsc *c, const char *cmid, const char *forbid)
{
    long long deadline = it_mono_ms() + it_timeout(10000);

    for (;;) {
        long long left = deadline - it_mono_ms();
        const char *t, *id;
        char *text;
        json_t *j;

        if (left <= 0 || wsc_recv_text(c, &text, (int)left, NULL) <= 0) {
            fail_msg("no ack or error for %s", cmid);
            return NULL; /* not reached */
        }
        j = json_loads(text, 0, NULL);
        wsc_free_text(text);
        t = json_string_value(json_object_get(j, "type"));
        id = json_string_value(json_object_get(j, "client_msg_id"));
        if (!t) {
            fail_msg("server sent a frame without a type");
            return NULL; /* not reached */
        }
        if (forbid && strcmp(t, forbid) == 0)
            fail_msg("unexpected %s frame while waiting for the reply to %s", t, cmid);
        if ((strcmp(t, "ack") == 0 || strcmp(t, "error") == 0) && id && strcmp(id, cmid) == 0)
            return j;
        json_decref(j);
    }
}

/* Sends text to room as cmid: it must be acked. forbid: a frame type that must not come first. */
json_t *it_send_acked(
    struct wsc *c, const char *room, const char *text, const char *cmid, const char *forbid)
{
    json_t *r;

    it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", text, "client_msg_id",
            cmid);
    r = it_reply_to(c, cmid, forbid);
    if (strcmp(it_jstr(r, "type"), "ack") != 0)
        fail_msg("send %s refused: %s", cmid, json_string_value(json_object_get(r, "code")));
    return r;
}

void it_expect_sent(
    struct wsc *c, const char *room, const char *text, const char *cmid, const char *forbid)
{
    json_decref(it_send_acked(c, room, text, cmid, forbid));
}

/* Sends to room as cmid: it must be refused with code. */
void it_expect_send_error(struct wsc *c, const char *room, const char *cmid, const char *code)
{
    json_t *r;

    it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "refused?",
            "client_msg_id", cmid);
    r = it_reply_to(c, cmid, NULL);
    if (strcmp(it_jstr(r, "type"), "error") != 0)
        fail_msg("send %s was acked, expected error %s", cmid, code);
    assert_string_equal(it_jstr(r, "code"), code);
    json_decref(r);
}

/* The message cmid arrives on c from user uid with nick. */
void it_expect_message(struct wsc *c, const char *cmid, const char *uid, const char *nick)
{
    json_t *m = it_wait_frame(c, "message", "client_msg_id", cmid, NULL, it_timeout(10000));

    if (!m)
        fail_msg("message %s did not arrive", cmid);
    if (uid)
        assert_string_equal(it_jstr(m, "user"), uid);
    assert_string_equal(it_jstr(m, "nick"), nick);
    json_decref(m);
}

/* c gets {"type":"session_revoked","reason":reason} within timeout_ms. */
void it_expect_revoked(struct wsc *c, const char *reason, int timeout_ms, const char *who)
{
    json_t *r = it_wait_frame(c, "session_revoked", NULL, NULL, NULL, timeout_ms);

    if (!r)
        fail_msg("%s: no session_revoked (%s) within %d ms", who, reason, timeout_ms);
    assert_string_equal(it_jstr(r, "reason"), reason);
    json_decref(r);
}

json_t *it_refresh_ok(const char *base, const struct it_client *cl, const char *rt)
{
    return it_api_ok(200, base, "POST", "/api/v1/auth/refresh", NULL, cl,
                     json_pack("{s:s}", "refresh_token", rt));
}

void it_refresh_fails(const char *base,
                      const struct it_client *cl,
                      const char *rt,
                      const char *code)
{
    it_api_err(401, code, base, "POST", "/api/v1/auth/refresh", NULL, cl,
               json_pack("{s:s}", "refresh_token", rt));
}

void it_register_fails(const struct it_client *cl, json_t *body, const char *code)
{
    it_api_err(400, code, LB, "POST", "/api/v1/auth/register", NULL, cl, body);
}

/* Sends from c until w sees the message with nick; fails when that takes longer than ms. */
void it_expect_nick_within(
    struct wsc *c, struct wsc *w, const char *room, const char *uid, const char *nick, int ms)
{
    static int n; /* client_msg_ids are remembered per user (dedupe): never reuse one */
    long long deadline = it_wall_ms() + it_timeout(ms);
    char cmid[32];

    for (;;) {
        json_t *m;
        bool fresh;

        snprintf(cmid, sizeof(cmid), "p%d", n++);
        it_expect_sent(c, room, "after the change", cmid, NULL);
        m = it_wait_frame(w, "message", "client_msg_id", cmid, NULL, it_timeout(10000));
        if (!m)
            fail_msg("message %s did not arrive", cmid);
        assert_string_equal(it_jstr(m, "user"), uid);
        fresh = strcmp(it_jstr(m, "nick"), nick) == 0;
        json_decref(m);
        if (fresh)
            return;
        if (it_wall_ms() > deadline)
            fail_msg("a gateway still sends the old nickname after %d ms", ms);
        usleep(50 * 1000);
    }
}
