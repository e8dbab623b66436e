/* r_auth.c - POST /api/v1/auth/register, login, refresh, logout (proto/README.md section 9).
 * Passwords are hashed here, on the request thread (yescrypt, CHAT_PASSWORD_COST); secrets are
 * wiped from memory once used and never logged. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chat/account.h"
#include "chat/log.h"
#include "chat/mem.h"

#include "acct/api_acct.h"
#include "api.h"
#include "api_peer.h"
#include "auth/api_auth.h"
#include "auth/api_rate.h"
#include "db/api_conns.h"
#include "routes.h"

#define RATE_USER_BAD "~invalid" /* rate-limit subject for a malformed username */

static void hexify(const unsigned char *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void token_hash_hex(const char *token, char out[2 * CHAT_SHA256_LEN + 1])
{
    unsigned char h[CHAT_SHA256_LEN];
    chat_sha256(token, strlen(token), h);
    hexify(h, sizeof(h), out);
}

/* Who is logging in: address and user agent, for the session and the login history. */
struct client {
    char ip[API_IP_MAX];
    char *ua; /* owned, may be NULL */
};

static void client_of(const struct api_req *r, struct client *c)
{
    api_auth_client_ip(r, c->ip, sizeof(c->ip));
    c->ua = api_peer_user_agent(api_header(r, "User-Agent"));
}

/* Inserts a new refresh token of session sid; token receives its text. In a transaction. */
static bool new_refresh(struct api_req *r, struct api_db *db, const char *sid, char *token)
{
    char hex[2 * CHAT_SHA256_LEN + 1], ttl[16];
    const char *p[3] = {hex, sid, ttl};
    PGresult *res;

    if (chat_refresh_new(token, CHAT_REFRESH_MAX) != CHAT_OK)
        return false;
    token_hash_hex(token, hex);
    snprintf(ttl, sizeof(ttl), "%d", r->api->cfg->refresh_ttl_s);
    res = api_db_qn(db, API_Q_refresh_token_add, 3, p);
    if (!api_db_ok(res, PGRES_COMMAND_OK, "storing a refresh token"))
        return false;
    PQclear(res);
    return true;
}

/* Creates a session for user uid (in a transaction); sid receives its id. */
static bool new_session(struct api_req *r,
                        struct api_db *db,
                        const struct client *c,
                        const char *uid,
                        char *sid,
                        size_t cap)
{
    char ttl[16], access[16];
    const char *p[5] = {uid, ttl, c->ip, c->ua, access};
    PGresult *res;

    snprintf(ttl, sizeof(ttl), "%d", r->api->cfg->refresh_ttl_s);
    snprintf(access, sizeof(access), "%d", API_ACCESS_KEEP_S(r->api->cfg));
    res = api_db_qn(db, API_Q_session_create, 5, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "creating a session"))
        return false;
    snprintf(sid, cap, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return true;
}

/* The login_events.username of a failed login for an unknown name: never the typed text (it is
 * sometimes a password), but "hmac:" + the first 16 bytes of HMAC-SHA256(CHAT_LOGIN_NAME_KEY,
 * lower-cased name) in hex; "" without a key. */
static void unknown_name(const struct api_req *r, const char *typed, char *out, size_t cap)
{
    const char *key = r->api->cfg->login_name_key;
    unsigned char h[CHAT_SHA256_LEN];
    char low[256], hex[2 * CHAT_SHA256_LEN + 1];
    size_t n = 0;

    out[0] = '\0';
    if (!key[0] || !typed)
        return;
    for (; typed[n] && n < sizeof(low) - 1; n++) {
        char ch = typed[n];
        low[n] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    chat_hmac_sha256(key, strlen(key), low, n, h);
    explicit_bzero(low, sizeof(low));
    hexify(h, 16, hex); /* 128 bits tell names apart */
    snprintf(out, cap, "hmac:%s", hex);
}

/* Records a login attempt; uid and name NULL for an unknown user (typed: what was typed). */
static bool login_event(struct api_req *r,
                        struct api_db *db,
                        const struct client *c,
                        const char *uid,
                        const char *name,
                        const char *typed,
                        bool success,
                        const char *why)
{
    char hidden[8 + 2 * CHAT_SHA256_LEN];
    const char *p[6] = {uid, name, c->ip, c->ua, success ? "true" : "false", why};
    PGresult *res;

    if (!name) {
        unknown_name(r, typed, hidden, sizeof(hidden));
        p[1] = hidden;
    }
    res = api_db_qn(db, API_Q_login_event_add, 6, p);
    if (!api_db_ok(res, PGRES_COMMAND_OK, "recording a login"))
        return false;
    PQclear(res);
    return true;
}

/* Signs an access token for the user and answers the session. */
static void answer_session(
    struct api_req *r, const struct chat_user *u, const char *sid, const char *refresh, int status)
{
    const struct api_cfg *cfg = r->api->cfg;
    struct chat_claims cl;
    struct chat_session_out s;
    char *access = NULL;

    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", u->id);
    snprintf(cl.sid, sizeof(cl.sid), "%s", sid);
    snprintf(cl.role, sizeof(cl.role), "%s", u->role);
    snprintf(cl.name, sizeof(cl.name), "%s", u->nickname);
    cl.iat = (int64_t)time(NULL);
    cl.exp = cl.iat + cfg->access_ttl_s;
    if (chat_jwt_sign(&r->api->keys, &cl, cfg->jwt_issuer, &access) != CHAT_OK) {
        api_reply_error(r, 500, "internal", chat_errcode_desc(CHAT_ERR_internal));
        return;
    }
    s.access_token = access;
    s.refresh_token = refresh;
    s.session_id = sid;
    s.expires_in = cfg->access_ttl_s;
    s.refresh_expires_in = cfg->refresh_ttl_s;
    chat_buf_reset(&r->resp);
    api_reply_json(r, status, chat_enc_session(&r->resp, u, &s));
    explicit_bzero(access, strlen(access));
    chat_free(access);
}

/* A new session for the user in row 0 of res (register, login), inside the transaction begun by
 * the caller: session, refresh token, the login event, commit, the answer. */
static void open_session(struct api_req *r,
                         struct api_db *db,
                         const struct client *c,
                         const PGresult *res,
                         const char *why,
                         int status)
{
    char sid[24], refresh[CHAT_REFRESH_MAX];
    struct chat_user u;

    api_acct_user_from(res, 0, &u);
    if (!new_session(r, db, c, u.id, sid, sizeof(sid)) || !new_refresh(r, db, sid, refresh) ||
        !login_event(r, db, c, u.id, u.username, NULL, true, why) || !api_db_cmd(db, "COMMIT")) {
        api_db_rollback(db);
        api_reply_unavailable(r);
        return;
    }
    answer_session(r, &u, sid, refresh, status);
    explicit_bzero(refresh, sizeof(refresh));
}

/* Body checks of register, before its rate limit counts the attempt. */
void r_auth_register_check(struct api_req *r)
{
    const struct chat_auth_body *b = &r->ab;
    char nick[CHAT_NICK_BYTES];

    if (!api_acct_body(r))
        return;
    if (!b->username || !b->password)
        api_reply_code(r, CHAT_ERR_bad_field);
    else if (!chat_username_valid(b->username))
        api_reply_code(r, CHAT_ERR_invalid_username);
    else if (!chat_password_valid(b->password))
        api_reply_code(r, CHAT_ERR_invalid_password);
    else if (chat_nickname_normalize(b->nickname ? b->nickname : b->username, nick, sizeof(nick)) !=
             CHAT_OK)
        api_reply_code(r, CHAT_ERR_invalid_nickname);
}

void r_auth_register(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const struct chat_auth_body *b = &r->ab;
    char nick[CHAT_NICK_BYTES], hash[CHAT_PASSWD_HASH_MAX];
    struct client c = {.ua = NULL};
    const char *p[3];
    PGresult *res;

    if (chat_nickname_normalize(b->nickname ? b->nickname : b->username, nick, sizeof(nick)) !=
            CHAT_OK ||
        chat_passwd_hash(b->password, r->api->cfg->password_cost, hash, sizeof(hash)) != CHAT_OK) {
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    client_of(r, &c);
    if (!api_acct_begin(r, db))
        goto out;
    p[0] = b->username;
    p[1] = nick;
    p[2] = hash;
    res = api_db_qn(db, API_Q_user_register, 3, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        bool taken = res && api_db_unique_violation(res);
        if (!taken)
            api_db_log_error(res, "register");
        PQclear(res);
        api_db_rollback(db);
        if (taken)
            api_reply_code(r, CHAT_ERR_username_taken);
        else
            api_reply_unavailable(r);
        goto out;
    }
    open_session(r, db, &c, res, "registered", 201);
    PQclear(res);
out:
    explicit_bzero(hash, sizeof(hash));
    chat_free(c.ua);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* Whether a site ban of user uid is in force (issue 13): true after answering 403 site_banned
 * with its end and reason (or 503). */
static bool site_banned(struct api_req *r, struct api_db *db, const char *uid)
{
    const char *p[1] = {uid};
    PGresult *res = api_db_qn(db, API_Q_admin_site_ban_active, 1, p);
    int64_t until;

    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading site bans")) {
        api_reply_unavailable(r);
        return true;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return false;
    }
    until = PQgetisnull(res, 0, 0) ? 0 : api_db_ll(res, 0, 0);
    chat_buf_reset(&r->resp);
    if (chat_enc_http_error_until(&r->resp, "site_banned", chat_errcode_desc(CHAT_ERR_site_banned),
                                  until, PQgetvalue(res, 0, 1)) == CHAT_OK)
        api_reply(r, 403, "application/json");
    else
        api_reply_code(r, CHAT_ERR_internal);
    PQclear(res);
    return true;
}

/* The login itself, once the limits let it through. */
static void login(struct api_req *r,
                  struct api_db *db,
                  const struct client *c,
                  const char *name,
                  const char *password)
{
    const char *p[2] = {name, NULL};
    char hash[CHAT_PASSWD_HASH_MAX];
    PGresult *res;

    res = api_db_qn(db, API_Q_login_lookup, 1, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "login lookup")) {
        api_reply_unavailable(r);
        return;
    }
    if (PQntuples(res) == 0) {
        /* the same work as for a real user: nobody learns which usernames exist from timing */
        (void)chat_passwd_verify(password, r->api->dummy_hash);
        PQclear(res);
        if (login_event(r, db, c, NULL, NULL, name, false, "unknown_user"))
            api_reply_code(r, CHAT_ERR_invalid_credentials);
        else
            api_reply_unavailable(r);
        return;
    }
    snprintf(hash, sizeof(hash), "%s", PQgetvalue(res, 0, 5));
    if (!chat_passwd_verify(password, hash)) {
        if (login_event(r, db, c, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), NULL, false,
                        "wrong_password"))
            api_reply_code(r, CHAT_ERR_invalid_credentials);
        else
            api_reply_unavailable(r);
        PQclear(res);
        return;
    }
    if (site_banned(r, db, PQgetvalue(res, 0, 0))) {
        PQclear(res);
        return;
    }
    if (!api_acct_begin(r, db)) {
        PQclear(res);
        return;
    }
    open_session(r, db, c, res, "ok", 200);
    /* after the commit: a failed upgrade must not fail the login */
    if (r->status == 200 && chat_passwd_needs_rehash(hash, r->api->cfg->password_cost) &&
        chat_passwd_hash(password, r->api->cfg->password_cost, hash, sizeof(hash)) == CHAT_OK) {
        const char *pp[2] = {PQgetvalue(res, 0, 0), hash};
        PGresult *u = api_db_qn(db, API_Q_password_rehash, 2, pp);
        if (api_db_ok(u, PGRES_COMMAND_OK, "rehashing a password"))
            PQclear(u);
    }
    PQclear(res);
}

void r_auth_login_check(struct api_req *r)
{
    if (api_acct_body(r) && (!r->ab.username || !r->ab.password))
        api_reply_code(r, CHAT_ERR_bad_field);
}

/* The attempt counts against its own limits (per address, failures per name and network),
 * reserved before the password is checked. */
void r_auth_login(struct api_req *r)
{
    struct api_conns *cx = api_conns_get(r->api);
    const struct chat_auth_body *b = &r->ab;
    struct api_login_limit lim = {.reserved = false};
    struct client c = {.ua = NULL};
    char subj[CHAT_USERNAME_MAX + 1];
    int retry;

    client_of(r, &c);
    snprintf(subj, sizeof(subj), "%s",
             chat_username_valid(b->username) ? b->username : RATE_USER_BAD);
    lower(subj);
    retry = api_login_limit(&cx->redis, r->api->cfg, c.ip, subj, &lim);
    if (retry > 0) {
        chat_metric_add(&r->api->m.rate_limited, 1);
        r->retry_after_s = (retry + 999) / 1000;
        api_reply_error(r, 429, "rate_limited",
                        "too many attempts; retry after Retry-After seconds");
        goto out;
    }
    if (!api_db_ready(&cx->db)) {
        chat_metric_add(&r->api->m.db_unavailable, 1);
        api_reply_unavailable(r);
    } else {
        login(r, &cx->db, &c, b->username, b->password);
        api_db_done(&cx->db);
    }
    /* a failure stays counted; anything else (success, 503) gives the reservation back */
    api_login_settle(&cx->redis, &lim, r->status == 401);
out:
    chat_free(c.ua);
}

/* A spent refresh token again: stolen or replayed. Ends the whole family, with its event, in
 * the transaction of the lookup, which it commits. */
static void refresh_reused(struct api_req *r, struct api_db *db, const char *uid, const char *sid)
{
    const char *p[1] = {sid};

    if (api_acct_revoke(r, db, uid, API_Q_session_revoke_reused, 1, p, "refresh_reused", false) <
        0) {
        api_db_rollback(db);
        return;
    }
    if (!api_acct_commit(r, db))
        return;
    api_reply_code(r, CHAT_ERR_refresh_reused);
    chat_log(CHAT_LOG_WARN, "accounts: refresh token reused: session %s revoked", sid);
}

/* Rotation: the presented token is spent, the session extended, a new token stored and the new
 * pair answered. A spent token presented again within CHAT_REFRESH_GRACE_S of its first use,
 * while the token that replaced it is still unused, is a retry after a lost answer: the unused
 * successor is dropped and a new pair answered. Later, or once the successor was used, it is
 * reuse: the session is revoked. */
static void refresh(struct api_req *r, struct api_db *db, const char *token)
{
    const struct api_cfg *cfg = r->api->cfg;
    char hex[2 * CHAT_SHA256_LEN + 1], sid[24], uid[24], fresh[CHAT_REFRESH_MAX], ttl[16];
    char grace[16], access[16];
    const char *p[3] = {hex, grace, NULL}, *ps[1] = {sid};
    struct chat_user u;
    PGresult *res;
    bool spent, retry;

    token_hash_hex(token, hex);
    snprintf(grace, sizeof(grace), "%d", cfg->refresh_grace_s);
    if (!api_acct_begin(r, db))
        return;
    res = api_db_qn(db, API_Q_refresh_lookup, 2, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "refresh lookup")) {
        api_db_rollback(db);
        api_reply_unavailable(r);
        return;
    }
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 2), "t") == 0 ||
        strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
        PQclear(res);
        api_db_rollback(db);
        api_reply_code(r, CHAT_ERR_invalid_refresh);
        return;
    }
    snprintf(sid, sizeof(sid), "%s", PQgetvalue(res, 0, 0));
    snprintf(uid, sizeof(uid), "%s", PQgetvalue(res, 0, 4));
    spent = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    retry = spent && strcmp(PQgetvalue(res, 0, 5), "t") == 0;
    PQclear(res);
    if (spent && !retry) {
        refresh_reused(r, db, uid, sid);
        return;
    }
    /* a retry keeps the first use's used_at: the grace window does not slide */
    if (retry)
        res = api_db_qn(db, API_Q_refresh_drop_unused, 1, ps);
    else
        res = api_db_qn(db, API_Q_refresh_spend, 1, p);
    if (!api_db_ok(res, PGRES_COMMAND_OK, "spending a refresh token")) {
        api_db_rollback(db);
        api_reply_unavailable(r);
        return;
    }
    PQclear(res);
    snprintf(ttl, sizeof(ttl), "%d", cfg->refresh_ttl_s);
    snprintf(access, sizeof(access), "%d", API_ACCESS_KEEP_S(cfg));
    p[0] = sid;
    p[1] = ttl;
    p[2] = access;
    res = api_db_qn(db, API_Q_session_extend, 3, p);
    if (!api_db_ok(res, PGRES_COMMAND_OK, "extending a session")) {
        api_db_rollback(db);
        api_reply_unavailable(r);
        return;
    }
    PQclear(res);
    p[0] = uid;
    res = api_db_qn(db, API_Q_user_by_id, 1, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "refresh user")) {
        api_db_rollback(db);
        api_reply_unavailable(r);
        return;
    }
    if (PQntuples(res) != 1 || !new_refresh(r, db, sid, fresh) || !api_db_cmd(db, "COMMIT")) {
        PQclear(res);
        api_db_rollback(db);
        api_reply_unavailable(r);
        return;
    }
    if (retry)
        chat_log(CHAT_LOG_INFO, "accounts: session %s: refresh retried within the grace window",
                 sid);
    api_acct_user_from(res, 0, &u);
    answer_session(r, &u, sid, fresh, 200);
    PQclear(res);
    explicit_bzero(fresh, sizeof(fresh));
}

void r_auth_refresh_check(struct api_req *r)
{
    if (!api_acct_body(r))
        return;
    if (!r->ab.refresh_token)
        api_reply_code(r, CHAT_ERR_bad_field);
    else if (strlen(r->ab.refresh_token) >= CHAT_REFRESH_MAX)
        api_reply_code(r, CHAT_ERR_invalid_refresh);
}

void r_auth_refresh(struct api_req *r)
{
    refresh(r, &api_conns_get(r->api)->db, r->ab.refresh_token);
}

/* Logout: empty, {} or {"all":true}. */
void r_auth_logout_check(struct api_req *r)
{
    (void)api_acct_body(r);
}

void r_auth_logout(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *p[3] = {r->uid, r->ab.all ? "true" : "false", r->sid[0] ? r->sid : NULL};

    if (!api_acct_begin(r, db))
        return;
    if (api_acct_revoke(r, db, r->uid, API_Q_session_revoke_logout, 3, p, "logout", true) < 0) {
        api_db_rollback(db);
        return;
    }
    (void)api_acct_commit(r, db);
}
