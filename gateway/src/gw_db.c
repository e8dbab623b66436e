/* gw_db.c - the account workers: a fixed pool of threads, each with its own PostgreSQL
 * connection, that hash passwords and run the account SQL for jobs queued by the event loop.
 * Finished jobs go back to the loop through a uv_async handle (gw_auth_done). The loop never
 * waits for a worker; a full queue is answered 503 at once (gw_pool_submit). A worker waits
 * for PostgreSQL at most CHAT_PG_TIMEOUT_MS per statement or connect (struct db): a server
 * that does not answer costs a job 503 `unavailable`, not a hung worker.
 *
 * Workers run at a lower CPU priority (nice +10) than the event-loop thread: a login storm
 * slows logins down, not message fan-out. SQL is parameterised throughout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "chat/account.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "gw_auth.h"

#define WORKER_NICE 10

/* When a session ended for good: revoked or expired, and every access token signed for it
 * expired. The same expression as the index sessions_ended_idx (0003_account_retention.sql). */
#define GW_SESSION_ENDED                                                                 \
    "greatest(coalesce(revoked_at, expires_at), coalesce(tokens_expire_at, revoked_at, " \
    "expires_at))"

struct gw_pool {
    struct gw *gw;
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gw_job *q_head, *q_tail; /* waiting for a worker */
    int q_len;
    struct gw_job *done_head, *done_tail; /* finished, waiting for the loop */
    /* PostgreSQL failing (the last job lost its connection or could not connect): one worker
     * at a time tries it (probing) while the others answer their jobs 503 at once, so a hung
     * server costs one deadline per try, not one per queued job. */
    bool db_down, probing;
    bool stop;
    uv_async_t async;
};

/* ---- SQL helpers (worker threads) ---- */

#define USER_COLS \
    "id::text, username, nickname, role, (extract(epoch FROM created_at) * 1000)::bigint"

/* A worker's PostgreSQL connection. Every statement and every connect has a client-side
 * deadline of CHAT_PG_TIMEOUT_MS: a hung server (SIGSTOP, a frozen VM) still has its kernel
 * acknowledge every packet, so neither keepalives nor tcp_user_timeout fire, and its
 * statement_timeout does not run. A statement without an answer in time drops the connection
 * (its transaction state is unknown; no PQcancel: it connects and waits for the same hung
 * server); the next job connects again. Owned by one worker thread. */
struct db {
    PGconn *pg;                /* nonblocking; NULL: none (yet, or dropped) */
    int timeout_ms;            /* CHAT_PG_TIMEOUT_MS */
    struct chat_log_limit lim; /* connect failures and dropped connections of this worker */
};

#define DB_LOG_EVERY_MS 10000 /* one line per worker this often during an outage */

/* Logs a lost connection or a failed connect, rate-limited per worker. */
static void db_log(struct db *db, const char *what, const char *why)
{
    long skipped;

    if (chat_log_every(&db->lim, DB_LOG_EVERY_MS, &skipped))
        chat_log(CHAT_LOG_WARN, "accounts: %s: %s (%ld more suppressed)", what, why, skipped);
}

/* Closes the connection after a failure that leaves its state unknown; logs why. */
static void db_drop(struct db *db, const char *why)
{
    db_log(db, "PostgreSQL connection dropped", why);
    PQfinish(db->pg); /* nonblocking: never waits for the server */
    db->pg = NULL;
}

/* Waits for events (POLLIN, POLLOUT) on the socket of pg until deadline (chat_mono_ms).
 * Returns 1 when ready, 0 at the deadline, -1 on an error. */
static int wait_socket(PGconn *pg, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = PQsocket(pg), .events = events};

    if (pfd.fd < 0)
        return -1;
    for (;;) {
        int64_t left = deadline - chat_mono_ms();
        int rc;

        if (left <= 0)
            return 0;
        rc = poll(&pfd, 1, (int)left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* Runs one statement (extended protocol with params, or simple protocol) within
 * db->timeout_ms. Returns its result (the first error, else the last result), or NULL when
 * there was no connection or it was dropped (logged here): PQresultStatus(NULL) is
 * PGRES_FATAL_ERROR, PQclear(NULL) does nothing. */
static PGresult *
exec_within(struct db *db, const char *sql, int n, const char *const *params, bool simple)
{
    int64_t deadline = chat_mono_ms() + db->timeout_ms;
    char why[64];
    PGresult *res = NULL, *r;
    int rc;

    if (!db->pg)
        return NULL; /* dropped earlier in this job */
    if (!(simple ? PQsendQuery(db->pg, sql)
                 : PQsendQueryParams(db->pg, sql, n, NULL, params, NULL, NULL, 0))) {
        db_drop(db, PQerrorMessage(db->pg));
        return NULL;
    }
    rc = 1;
    for (;;) { /* nonblocking: the rest of a long statement */
        int f = PQflush(db->pg);

        if (f <= 0) {
            rc = f < 0 ? -1 : 1;
            break;
        }
        rc = wait_socket(db->pg, POLLIN | POLLOUT, deadline);
        if (rc <= 0)
            break;
        if (!PQconsumeInput(db->pg)) {
            rc = -1;
            break;
        }
    }
    while (rc > 0) {
        if (PQisBusy(db->pg)) {
            rc = wait_socket(db->pg, POLLIN, deadline);
            if (rc > 0 && !PQconsumeInput(db->pg))
                rc = -1;
            continue;
        }
        r = PQgetResult(db->pg);
        if (!r)
            return res;
        if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            PQclear(res);
            res = r;
        }
    }
    PQclear(res);
    if (rc == 0)
        snprintf(why, sizeof(why), "no answer within CHAT_PG_TIMEOUT_MS (%d ms)", db->timeout_ms);
    db_drop(db, rc == 0 ? why : PQerrorMessage(db->pg));
    return NULL;
}

static PGresult *q(struct db *db, const char *sql, int n, const char *const *params)
{
    return exec_within(db, sql, n, params, false);
}

/* SQLSTATE and the primary message only: DETAIL may quote a whole row, password hash included.
 * Nothing for r NULL (no connection: exec_within logged it). */
static void log_pg_error(const PGresult *r, const char *what)
{
    if (!r)
        return;
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

    chat_log(CHAT_LOG_WARN, "accounts: %s: %s %s", what, st ? st : "-",
             msg ? msg : PQresStatus(PQresultStatus(r)));
}

/* True when r has status want; logs and clears r otherwise. */
static bool ok(PGresult *r, ExecStatusType want, const char *what)
{
    if (PQresultStatus(r) == want)
        return true;
    log_pg_error(r, what);
    PQclear(r);
    return false;
}

static bool unique_violation(const PGresult *r)
{
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return st && strcmp(st, "23505") == 0;
}

static bool cmd(struct db *db, const char *sql)
{
    PGresult *r = exec_within(db, sql, 0, NULL, true);
    bool good = ok(r, PGRES_COMMAND_OK, sql);
    if (good)
        PQclear(r);
    return good;
}

static void rollback(struct db *db)
{
    if (db->pg && PQtransactionStatus(db->pg) != PQTRANS_IDLE)
        PQclear(exec_within(db, "ROLLBACK", 0, NULL, true));
}

static void fail(struct gw_job *j, int status, enum chat_errcode err)
{
    j->status = status;
    j->err = err;
}

static void unavailable(struct gw_job *j)
{
    fail(j, 503, CHAT_ERR_unavailable);
}

static int64_t col_ll(const PGresult *r, int row, int col)
{
    long long v = 0;
    (void)sscanf(PQgetvalue(r, row, col), "%lld", &v);
    return v;
}

static void user_from(const PGresult *r, int row, struct chat_user *u)
{
    u->id = PQgetvalue(r, row, 0);
    u->username = PQgetvalue(r, row, 1);
    u->nickname = PQgetvalue(r, row, 2);
    u->role = PQgetvalue(r, row, 3);
    u->created_at = col_ll(r, row, 4);
}

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

/* Collects the first column of every row (session ids) into j->revoked. */
static void collect_revoked(struct gw_job *j, const PGresult *r, const char *reason)
{
    int n = PQntuples(r);

    j->revoked = chat_xcalloc((size_t)n + 1, sizeof(*j->revoked));
    for (int i = 0; i < n; i++)
        j->revoked[j->nrevoked++] = chat_xstrdup(PQgetvalue(r, i, 0));
    j->revoke_reason = reason;
    snprintf(j->ev_user, sizeof(j->ev_user), "%s", j->uid);
}

/* Inserts a new refresh token of session sid; token receives its text. In a transaction. */
static bool new_refresh(struct gw_job *j, struct db *db, const char *sid, char *token)
{
    char hex[2 * CHAT_SHA256_LEN + 1], ttl[16];
    const char *p[3];
    PGresult *r;

    if (chat_refresh_new(token, CHAT_REFRESH_MAX) != CHAT_OK)
        return false;
    token_hash_hex(token, hex);
    snprintf(ttl, sizeof(ttl), "%d", j->gw->cfg->refresh_ttl_s);
    p[0] = hex;
    p[1] = sid;
    p[2] = ttl;
    r = q(db,
          "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) "
          "VALUES (decode($1, 'hex'), $2::bigint, now() + make_interval(secs => $3::int))",
          3, p);
    if (!ok(r, PGRES_COMMAND_OK, "storing a refresh token"))
        return false;
    PQclear(r);
    return true;
}

/* Seconds past now (database clock) until an access token signed now has expired everywhere:
 * stored as sessions.tokens_expire_at, how long a revocation of the session must be kept. */
static int access_keep_s(const struct gw_job *j)
{
    return j->gw->cfg->access_ttl_s + 2 * GW_JWT_LEEWAY_S;
}

/* Creates a session for user uid (in a transaction); sid receives its id. */
static bool new_session(struct gw_job *j, struct db *db, const char *uid, char *sid, size_t cap)
{
    char ttl[16], access[16];
    const char *p[5] = {uid, ttl, j->ip, j->ua, access};
    PGresult *r;

    snprintf(ttl, sizeof(ttl), "%d", j->gw->cfg->refresh_ttl_s);
    snprintf(access, sizeof(access), "%d", access_keep_s(j));
    r = q(db,
          "INSERT INTO sessions (user_id, expires_at, ip, user_agent, tokens_expire_at) "
          "VALUES ($1::bigint, now() + make_interval(secs => $2::int), $3, $4, "
          "now() + make_interval(secs => $5::int)) RETURNING id::text",
          5, p);
    if (!ok(r, PGRES_TUPLES_OK, "creating a session"))
        return false;
    snprintf(sid, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return true;
}

/* The login_events.username of a failed login for an unknown name: never the typed text (it is
 * sometimes a password), but "hmac:" + the first 16 bytes of HMAC-SHA256(CHAT_LOGIN_NAME_KEY,
 * lower-cased name) in hex, which
 * tells attempts on one name apart without telling the name; "" without a key. */
static void unknown_name(const struct gw_job *j, char *out, size_t cap)
{
    const char *key = j->gw->cfg->login_name_key;
    unsigned char h[CHAT_SHA256_LEN];
    char low[256], hex[2 * CHAT_SHA256_LEN + 1];
    size_t n = 0;

    out[0] = '\0';
    if (!key[0] || !j->username)
        return;
    for (; j->username[n] && n < sizeof(low) - 1; n++) {
        char c = j->username[n];
        low[n] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    chat_hmac_sha256(key, strlen(key), low, n, h);
    explicit_bzero(low, sizeof(low));
    hexify(h, 16, hex); /* 128 bits tell names apart */
    snprintf(out, cap, "hmac:%s", hex);
}

/* Records a login attempt; uid and name are NULL for an unknown user. Outside or inside a
 * transaction. */
static bool login_event(struct gw_job *j,
                        struct db *db,
                        const char *uid,
                        const char *name,
                        bool success,
                        const char *why)
{
    char hidden[8 + 2 * CHAT_SHA256_LEN];
    const char *p[6] = {uid, name, j->ip, j->ua, success ? "true" : "false", why};

    if (!name) {
        unknown_name(j, hidden, sizeof(hidden));
        p[1] = hidden;
    }
    PGresult *r = q(db,
                    "INSERT INTO login_events (user_id, username, ip, user_agent, success, reason) "
                    "VALUES ($1::bigint, left($2, 64), $3, $4, $5::boolean, $6)",
                    6, p);
    if (!ok(r, PGRES_COMMAND_OK, "recording a login"))
        return false;
    PQclear(r);
    return true;
}

/* Signs an access token for the user and writes the session answer into j->body. */
static bool
answer_session(struct gw_job *j, const struct chat_user *u, const char *sid, const char *refresh)
{
    const struct gw_config *cfg = j->gw->cfg;
    struct chat_claims cl;
    struct chat_session_out s;
    char *access = NULL;
    int rc;

    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", u->id);
    snprintf(cl.sid, sizeof(cl.sid), "%s", sid);
    snprintf(cl.role, sizeof(cl.role), "%s", u->role);
    snprintf(cl.name, sizeof(cl.name), "%s", u->nickname);
    cl.iat = (int64_t)time(NULL);
    cl.exp = cl.iat + cfg->access_ttl_s;
    if (chat_jwt_sign(&j->gw->keys, &cl, cfg->jwt_issuer, &access) != CHAT_OK)
        return false;
    s.access_token = access;
    s.refresh_token = refresh;
    s.session_id = sid;
    s.expires_in = cfg->access_ttl_s;
    s.refresh_expires_in = cfg->refresh_ttl_s;
    rc = chat_enc_session(&j->body, u, &s);
    chat_free(access);
    return rc == CHAT_OK;
}

/* A new session for the user in row 0 of r (register, login): session, refresh token, the
 * login event, the answer. Runs BEGIN..COMMIT itself. */
static void
open_session(struct gw_job *j, struct db *db, const PGresult *r, const char *why, int status)
{
    char sid[GW_ID_MAX], refresh[CHAT_REFRESH_MAX];
    struct chat_user u;

    user_from(r, 0, &u);
    if (!new_session(j, db, u.id, sid, sizeof(sid)) || !new_refresh(j, db, sid, refresh) ||
        !login_event(j, db, u.id, u.username, true, why) || !cmd(db, "COMMIT")) {
        rollback(db);
        unavailable(j);
        return;
    }
    if (!answer_session(j, &u, sid, refresh)) {
        fail(j, 500, CHAT_ERR_internal);
        return;
    }
    j->status = status;
    explicit_bzero(refresh, sizeof(refresh));
}

/* ---- jobs ---- */

static void job_register(struct gw_job *j, struct db *db)
{
    char hash[CHAT_PASSWD_HASH_MAX];
    const char *p[3];
    PGresult *r;

    if (chat_passwd_hash(j->password, j->gw->cfg->password_cost, hash, sizeof(hash)) != CHAT_OK) {
        fail(j, 500, CHAT_ERR_internal);
        return;
    }
    if (!cmd(db, "BEGIN")) {
        unavailable(j);
        return;
    }
    p[0] = j->username;
    p[1] = j->nickname;
    p[2] = hash;
    r = q(db,
          "INSERT INTO users (username, nickname, password_hash) VALUES ($1, $2, $3) "
          "RETURNING " USER_COLS,
          3, p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        bool taken = unique_violation(r);
        if (!taken)
            log_pg_error(r, "register");
        PQclear(r);
        rollback(db);
        if (taken)
            fail(j, 409, CHAT_ERR_username_taken);
        else
            unavailable(j);
        return;
    }
    open_session(j, db, r, "registered", 201);
    PQclear(r);
}

static void job_login(struct gw_job *j, struct db *db)
{
    const char *p[2] = {j->username, NULL};
    char hash[CHAT_PASSWD_HASH_MAX];
    PGresult *r;
    bool match;

    r = q(db, "SELECT " USER_COLS ", password_hash FROM users WHERE lower(username) = lower($1)", 1,
          p);
    if (!ok(r, PGRES_TUPLES_OK, "login lookup")) {
        unavailable(j);
        return;
    }
    if (PQntuples(r) == 0) {
        /* the same work as for a real user: nobody learns which usernames exist from timing */
        (void)chat_passwd_verify(j->password, j->gw->dummy_hash);
        PQclear(r);
        fail(j, 401, CHAT_ERR_invalid_credentials);
        if (!login_event(j, db, NULL, NULL, false, "unknown_user"))
            unavailable(j);
        return;
    }
    snprintf(hash, sizeof(hash), "%s", PQgetvalue(r, 0, 5));
    match = chat_passwd_verify(j->password, hash);
    if (!match) {
        fail(j, 401, CHAT_ERR_invalid_credentials);
        if (!login_event(j, db, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), false, "wrong_password"))
            unavailable(j);
        PQclear(r);
        return;
    }
    if (!cmd(db, "BEGIN")) {
        PQclear(r);
        unavailable(j);
        return;
    }
    open_session(j, db, r, "ok", 200);
    /* after the commit: a failed upgrade must not fail the login */
    if (j->status == 200 && chat_passwd_needs_rehash(hash, j->gw->cfg->password_cost) &&
        chat_passwd_hash(j->password, j->gw->cfg->password_cost, hash, sizeof(hash)) == CHAT_OK) {
        const char *pp[2] = {PQgetvalue(r, 0, 0), hash};
        PGresult *u = q(db, "UPDATE users SET password_hash = $2 WHERE id = $1::bigint", 2, pp);
        if (ok(u, PGRES_COMMAND_OK, "rehashing a password"))
            PQclear(u);
    }
    PQclear(r);
}

/* A spent refresh token again: stolen or replayed. Ends the whole family (in the transaction
 * of the lookup, which it commits). */
static void refresh_reused(struct gw_job *j, struct db *db, const char *sid)
{
    const char *p[1] = {sid};
    PGresult *r;

    r = q(db,
          "UPDATE sessions SET revoked_at = now(), revoke_reason = 'refresh_reused' "
          "WHERE id = $1::bigint AND revoked_at IS NULL RETURNING id::text",
          1, p);
    if (!ok(r, PGRES_TUPLES_OK, "revoking a reused session")) {
        rollback(db);
        unavailable(j);
        return;
    }
    if (!cmd(db, "COMMIT")) {
        PQclear(r);
        rollback(db);
        unavailable(j);
        return;
    }
    collect_revoked(j, r, "refresh_reused");
    PQclear(r);
    fail(j, 401, CHAT_ERR_refresh_reused);
    chat_log(CHAT_LOG_WARN, "accounts: refresh token reused: session %s revoked", sid);
}

/* Rotation: the presented token is spent, the session extended, a new token stored and the new
 * pair answered. A spent token presented again within CHAT_REFRESH_GRACE_S of its first use,
 * while the token that replaced it is still unused, is a retry after a lost answer: the unused
 * successor is dropped and a new pair answered (the session keeps one live refresh token).
 * Later, or once the successor was used, it is reuse: the session is revoked. */
static void job_refresh(struct gw_job *j, struct db *db)
{
    char hex[2 * CHAT_SHA256_LEN + 1], sid[GW_ID_MAX], refresh[CHAT_REFRESH_MAX], ttl[16];
    char grace[16], access[16];
    const char *p[3] = {hex, grace, NULL}, *ps[1] = {sid};
    struct chat_user u;
    PGresult *r;
    bool spent, retry;

    token_hash_hex(j->refresh, hex);
    snprintf(grace, sizeof(grace), "%d", j->gw->cfg->refresh_grace_s);
    if (!cmd(db, "BEGIN")) {
        unavailable(j);
        return;
    }
    r = q(db,
          "SELECT rt.session_id::text, rt.used_at IS NOT NULL, rt.expires_at < now(), "
          "s.revoked_at IS NOT NULL OR s.expires_at < now(), s.user_id::text, "
          "rt.used_at > now() - make_interval(secs => $2::int) AND NOT EXISTS ("
          "SELECT 1 FROM refresh_tokens o WHERE o.session_id = rt.session_id "
          "AND o.used_at > rt.used_at) "
          "FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id "
          "WHERE rt.token_hash = decode($1, 'hex') FOR UPDATE OF rt, s",
          2, p);
    if (!ok(r, PGRES_TUPLES_OK, "refresh lookup")) {
        rollback(db);
        unavailable(j);
        return;
    }
    if (PQntuples(r) == 0 || strcmp(PQgetvalue(r, 0, 2), "t") == 0 ||
        strcmp(PQgetvalue(r, 0, 3), "t") == 0) {
        PQclear(r);
        rollback(db);
        fail(j, 401, CHAT_ERR_invalid_refresh);
        return;
    }
    snprintf(sid, sizeof(sid), "%s", PQgetvalue(r, 0, 0));
    snprintf(j->uid, sizeof(j->uid), "%s", PQgetvalue(r, 0, 4));
    spent = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    retry = spent && strcmp(PQgetvalue(r, 0, 5), "t") == 0;
    PQclear(r);
    if (spent && !retry) {
        refresh_reused(j, db, sid);
        return;
    }
    /* a retry keeps the first use's used_at: the grace window does not slide */
    if (retry)
        r = q(db, "DELETE FROM refresh_tokens WHERE session_id = $1::bigint AND used_at IS NULL", 1,
              ps);
    else
        r = q(db, "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = decode($1, 'hex')",
              1, p);
    if (!ok(r, PGRES_COMMAND_OK, "spending a refresh token")) {
        rollback(db);
        unavailable(j);
        return;
    }
    PQclear(r);
    snprintf(ttl, sizeof(ttl), "%d", j->gw->cfg->refresh_ttl_s);
    snprintf(access, sizeof(access), "%d", access_keep_s(j));
    p[0] = sid;
    p[1] = ttl;
    p[2] = access;
    r = q(db,
          "UPDATE sessions SET last_used_at = now(), "
          "expires_at = now() + make_interval(secs => $2::int), "
          "tokens_expire_at = greatest(tokens_expire_at, now() + make_interval(secs => $3::int)) "
          "WHERE id = $1::bigint",
          3, p);
    if (!ok(r, PGRES_COMMAND_OK, "extending a session")) {
        rollback(db);
        unavailable(j);
        return;
    }
    PQclear(r);
    p[0] = j->uid;
    r = q(db, "SELECT " USER_COLS " FROM users WHERE id = $1::bigint", 1, p);
    if (!ok(r, PGRES_TUPLES_OK, "refresh user")) {
        rollback(db);
        unavailable(j);
        return;
    }
    if (PQntuples(r) != 1 || !new_refresh(j, db, sid, refresh) || !cmd(db, "COMMIT")) {
        PQclear(r);
        rollback(db);
        unavailable(j);
        return;
    }
    if (retry)
        chat_log(CHAT_LOG_INFO, "accounts: session %s: refresh retried within the grace window",
                 sid);
    user_from(r, 0, &u);
    if (answer_session(j, &u, sid, refresh))
        j->status = 200;
    else
        fail(j, 500, CHAT_ERR_internal);
    PQclear(r);
    explicit_bzero(refresh, sizeof(refresh));
}

/* The bearer's session still exists and is not revoked (tokens without sid: always). */
static bool session_alive(struct gw_job *j, struct db *db, bool *alive)
{
    const char *p[2] = {j->sid, j->uid};
    PGresult *r;

    *alive = true;
    if (!j->sid[0])
        return true;
    r = q(db,
          "SELECT 1 FROM sessions WHERE id = $1::bigint AND user_id = $2::bigint "
          "AND revoked_at IS NULL",
          2, p);
    if (!ok(r, PGRES_TUPLES_OK, "session check"))
        return false;
    *alive = PQntuples(r) == 1;
    PQclear(r);
    return true;
}

/* Common start of a bearer job: the session is alive. False when j is answered already. */
static bool bearer_ok(struct gw_job *j, struct db *db)
{
    bool alive;

    if (!session_alive(j, db, &alive)) {
        unavailable(j);
        return false;
    }
    if (!alive) {
        fail(j, 401, CHAT_ERR_session_revoked);
        return false;
    }
    return true;
}

/* Runs an UPDATE sessions ... RETURNING id and answers {"revoked_sessions":N}. */
static void revoke_answer(struct gw_job *j,
                          struct db *db,
                          const char *sql,
                          int n,
                          const char *const *p,
                          const char *reason)
{
    PGresult *r = q(db, sql, n, p);

    if (!ok(r, PGRES_TUPLES_OK, "revoking sessions")) {
        unavailable(j);
        return;
    }
    collect_revoked(j, r, reason);
    PQclear(r);
    if (chat_enc_revoked(&j->body, (long)j->nrevoked) == CHAT_OK)
        j->status = 200;
    else
        fail(j, 500, CHAT_ERR_internal);
}

static void job_logout(struct gw_job *j, struct db *db)
{
    const char *p[3] = {j->uid, j->all ? "true" : "false", j->sid[0] ? j->sid : NULL};

    if (!bearer_ok(j, db)) /* a revoked token cannot log out (again) */
        return;
    revoke_answer(j, db,
                  "UPDATE sessions SET revoked_at = now(), revoke_reason = 'logout' "
                  "WHERE user_id = $1::bigint AND revoked_at IS NULL AND expires_at > now() "
                  "AND ($2::boolean OR id = $3::bigint) RETURNING id::text",
                  3, p, "logout");
}

/* Answers the user of row 0 of r (404 when r has no row); true when answered 200. */
static bool answer_user(struct gw_job *j, const PGresult *r)
{
    struct chat_user u;

    if (PQntuples(r) != 1) {
        fail(j, 404, CHAT_ERR_not_found);
        return false;
    }
    user_from(r, 0, &u);
    if (chat_enc_user(&j->body, &u) != CHAT_OK) {
        fail(j, 500, CHAT_ERR_internal);
        return false;
    }
    j->status = 200;
    return true;
}

static void job_me(struct gw_job *j, struct db *db)
{
    const char *p[1] = {j->uid};
    PGresult *r;

    if (!bearer_ok(j, db))
        return;
    r = q(db, "SELECT " USER_COLS " FROM users WHERE id = $1::bigint", 1, p);
    if (!ok(r, PGRES_TUPLES_OK, "reading a user")) {
        unavailable(j);
        return;
    }
    answer_user(j, r);
    PQclear(r);
}

static void job_nickname(struct gw_job *j, struct db *db)
{
    const char *p[2] = {j->uid, j->nickname};
    PGresult *r;

    if (!bearer_ok(j, db))
        return;
    r = q(db,
          "UPDATE users SET nickname = $2, nick_changed_at = now() WHERE id = $1::bigint "
          "RETURNING " USER_COLS ", (extract(epoch FROM nick_changed_at) * 1000)::bigint",
          2, p);
    if (!ok(r, PGRES_TUPLES_OK, "changing a nickname")) {
        unavailable(j);
        return;
    }
    if (answer_user(j, r)) {
        j->nick_changed = chat_xstrdup(PQgetvalue(r, 0, 2)); /* USER_COLS: nickname */
        j->nick_changed_ms = col_ll(r, 0, 5); /* one clock (the database's) orders changes */
        snprintf(j->ev_user, sizeof(j->ev_user), "%s", j->uid);
    }
    PQclear(r);
}

static void job_password(struct gw_job *j, struct db *db)
{
    const char *p[3] = {j->uid, NULL, NULL};
    char hash[CHAT_PASSWD_HASH_MAX];
    PGresult *r;
    bool match;

    if (!bearer_ok(j, db))
        return;
    r = q(db, "SELECT password_hash FROM users WHERE id = $1::bigint", 1, p);
    if (!ok(r, PGRES_TUPLES_OK, "reading a password hash")) {
        unavailable(j);
        return;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        fail(j, 404, CHAT_ERR_not_found);
        return;
    }
    match = chat_passwd_verify(j->password, PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!match) {
        fail(j, 403, CHAT_ERR_wrong_password);
        return;
    }
    if (chat_passwd_hash(j->new_password, j->gw->cfg->password_cost, hash, sizeof(hash)) !=
        CHAT_OK) {
        fail(j, 500, CHAT_ERR_internal);
        return;
    }
    p[1] = hash;
    if (!cmd(db, "BEGIN")) {
        unavailable(j);
        return;
    }
    r = q(db,
          "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1::bigint",
          2, p);
    if (!ok(r, PGRES_COMMAND_OK, "changing a password")) {
        rollback(db);
        unavailable(j);
        return;
    }
    PQclear(r);
    p[1] = j->sid[0] ? j->sid : NULL;
    revoke_answer(j, db,
                  "UPDATE sessions SET revoked_at = now(), revoke_reason = 'password_changed' "
                  "WHERE user_id = $1::bigint AND revoked_at IS NULL AND expires_at > now() "
                  "AND ($2::bigint IS NULL OR id <> $2::bigint) RETURNING id::text",
                  2, p, "password_changed");
    if (j->status == 200 && cmd(db, "COMMIT"))
        return;
    rollback(db);
    if (j->status == 200)
        unavailable(j);
    for (size_t i = 0; i < j->nrevoked; i++) /* nothing was revoked after all */
        chat_free(j->revoked[i]);
    j->nrevoked = 0;
}

static void job_logins(struct gw_job *j, struct db *db)
{
    char lim[16];
    const char *p[3] = {j->uid, j->before[0] ? j->before : NULL, lim};
    struct chat_login *v;
    PGresult *r;
    int n;

    if (!bearer_ok(j, db))
        return;
    snprintf(lim, sizeof(lim), "%ld", j->limit);
    r = q(db,
          "SELECT id::text, (extract(epoch FROM at) * 1000)::bigint, ip, user_agent, success, "
          "reason FROM login_events WHERE user_id = $1::bigint "
          "AND ($2::bigint IS NULL OR id < $2::bigint) ORDER BY id DESC LIMIT $3::int",
          3, p);
    if (!ok(r, PGRES_TUPLES_OK, "reading the login history")) {
        unavailable(j);
        return;
    }
    n = PQntuples(r);
    v = chat_xcalloc((size_t)n + 1, sizeof(*v));
    for (int i = 0; i < n; i++) {
        v[i].id = PQgetvalue(r, i, 0);
        v[i].at = col_ll(r, i, 1);
        v[i].ip = PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2);
        v[i].user_agent = PQgetisnull(r, i, 3) ? NULL : PQgetvalue(r, i, 3);
        v[i].success = strcmp(PQgetvalue(r, i, 4), "t") == 0;
        v[i].reason = PQgetvalue(r, i, 5);
    }
    if (chat_enc_logins(&j->body, v, (size_t)n, n > 0 && n == j->limit ? v[n - 1].id : NULL) ==
        CHAT_OK)
        j->status = 200;
    else
        fail(j, 500, CHAT_ERR_internal);
    chat_free(v);
    PQclear(r);
}

static void job_admin_revoke(struct gw_job *j, struct db *db)
{
    const char *p[1] = {j->uid};
    PGresult *r;
    bool admin, found;

    if (!bearer_ok(j, db))
        return;
    /* the role claim may be stale: the database decides */
    r = q(db, "SELECT role = 'admin' FROM users WHERE id = $1::bigint", 1, p);
    if (!ok(r, PGRES_TUPLES_OK, "reading a role")) {
        unavailable(j);
        return;
    }
    admin = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!admin) {
        fail(j, 403, CHAT_ERR_forbidden);
        return;
    }
    p[0] = j->target;
    r = q(db, "SELECT 1 FROM users WHERE id = $1::bigint", 1, p);
    if (!ok(r, PGRES_TUPLES_OK, "reading a user")) {
        unavailable(j);
        return;
    }
    found = PQntuples(r) == 1;
    PQclear(r);
    if (!found) {
        fail(j, 404, CHAT_ERR_not_found);
        return;
    }
    snprintf(j->uid, sizeof(j->uid), "%s", j->target); /* the events name the target */
    revoke_answer(j, db,
                  "UPDATE sessions SET revoked_at = now(), revoke_reason = 'admin' "
                  "WHERE user_id = $1::bigint AND revoked_at IS NULL AND expires_at > now() "
                  "RETURNING id::text",
                  1, p, "admin");
}

/* Revoked sessions older than the revocation keep time (GW_REVOKE_KEEP_S) whose tokens may still be
 * valid (sessions.tokens_expire_at: tokens signed with a longer CHAT_ACCESS_TTL_S, e.g. by a
 * gateway configured before a change) are appended to j->revoked as revoked "now": every load
 * re-arms them, so a gateway forgets them only once their tokens have expired. */
static bool load_long_lived(struct gw_job *j, struct db *db)
{
    char secs[16];
    const char *p[1] = {secs};
    PGresult *r;
    size_t n, base = j->nrevoked;

    snprintf(secs, sizeof(secs), "%d", GW_REVOKE_KEEP_S(j->gw->cfg));
    r = q(db,
          "SELECT id::text, coalesce(revoke_reason, 'revoked') FROM sessions "
          "WHERE tokens_expire_at > now() AND revoked_at IS NOT NULL "
          "AND revoked_at <= now() - make_interval(secs => $1::int)",
          1, p);
    if (!ok(r, PGRES_TUPLES_OK, "loading long-lived revocations")) {
        unavailable(j);
        return false;
    }
    n = (size_t)PQntuples(r);
    if (n) {
        j->revoked = chat_xrealloc(j->revoked, (base + n + 1) * sizeof(*j->revoked));
        j->load_reasons = chat_xrealloc(j->load_reasons, (base + n + 1) * sizeof(char *));
        j->load_revoked_ms =
            chat_xrealloc(j->load_revoked_ms, (base + n + 1) * sizeof(*j->load_revoked_ms));
    }
    for (size_t i = 0; i < n; i++) {
        j->revoked[base + i] = chat_xstrdup(PQgetvalue(r, (int)i, 0));
        j->load_reasons[base + i] = chat_xstrdup(PQgetvalue(r, (int)i, 1));
        j->load_revoked_ms[base + i] = j->db_now_ms;
    }
    j->nrevoked = base + n;
    PQclear(r);
    return true;
}

/* Revocations and nickname changes since j->since_ms (the first load: one access-token
 * keep time back: GW_REVOKE_KEEP_S). The periodic loads are the backstop for a lost chat.events
 * record. */
static void job_load(struct gw_job *j, struct db *db)
{
    char secs[16], since[24];
    const char *p[2] = {secs, since};
    PGresult *r;
    int n;

    snprintf(secs, sizeof(secs), "%d", GW_REVOKE_KEEP_S(j->gw->cfg));
    snprintf(since, sizeof(since), "%lld", (long long)j->since_ms);
    r = q(db, "SELECT (extract(epoch FROM now()) * 1000)::bigint", 0, NULL);
    if (!ok(r, PGRES_TUPLES_OK, "reading the clock")) {
        unavailable(j);
        return;
    }
    j->db_now_ms = col_ll(r, 0, 0);
    PQclear(r);
    r = q(db,
          "SELECT id::text, (extract(epoch FROM revoked_at) * 1000)::bigint, "
          "coalesce(revoke_reason, 'revoked') FROM sessions "
          "WHERE revoked_at > greatest(now() - make_interval(secs => $1::int), "
          "to_timestamp($2::bigint / 1000.0))",
          2, p);
    if (!ok(r, PGRES_TUPLES_OK, "loading revoked sessions")) {
        unavailable(j);
        return;
    }
    n = PQntuples(r);
    j->revoked = chat_xcalloc((size_t)n + 1, sizeof(*j->revoked));
    j->load_reasons = chat_xcalloc((size_t)n + 1, sizeof(*j->load_reasons));
    j->load_revoked_ms = chat_xcalloc((size_t)n + 1, sizeof(*j->load_revoked_ms));
    for (int i = 0; i < n; i++) {
        j->revoked[i] = chat_xstrdup(PQgetvalue(r, i, 0));
        j->load_revoked_ms[i] = col_ll(r, i, 1);
        j->load_reasons[i] = chat_xstrdup(PQgetvalue(r, i, 2));
    }
    j->nrevoked = (size_t)n;
    PQclear(r);
    if (!load_long_lived(j, db))
        return;
    r = q(db,
          "SELECT id::text, nickname, (extract(epoch FROM nick_changed_at) * 1000)::bigint "
          "FROM users WHERE nick_changed_at > greatest(now() - make_interval(secs => $1::int), "
          "to_timestamp($2::bigint / 1000.0))",
          2, p);
    if (!ok(r, PGRES_TUPLES_OK, "loading nickname changes")) {
        unavailable(j);
        return;
    }
    n = PQntuples(r);
    j->load_users = chat_xcalloc((size_t)n + 1, sizeof(char *));
    j->load_nicks = chat_xcalloc((size_t)n + 1, sizeof(char *));
    j->load_nick_ms = chat_xcalloc((size_t)n + 1, sizeof(int64_t));
    for (int i = 0; i < n; i++) {
        j->load_users[i] = chat_xstrdup(PQgetvalue(r, i, 0));
        j->load_nicks[i] = chat_xstrdup(PQgetvalue(r, i, 1));
        j->load_nick_ms[i] = col_ll(r, i, 2);
    }
    j->nload_nicks = (size_t)n;
    PQclear(r);
    j->status = 200;
}

/* ---- retention ---- */

#define PURGE_LOCK      0x6368617470757267LL /* "chatpurg": one purging gateway at a time */
#define PURGE_STMTS_MAX 100                  /* statements per run: the rest waits for the next */

/* Deletes in batches of cfg->purge_batch rows (one statement, one transaction each) until a
 * batch comes back short or *budget statements were used; returns the rows deleted, -1 on an
 * error. */
static long purge_table(struct gw_job *j, struct db *db, const char *sql, int retain_s, int *budget)
{
    char retain[16], batch[16];
    const char *p[2] = {retain, batch};
    long total = 0;

    snprintf(retain, sizeof(retain), "%d", retain_s);
    snprintf(batch, sizeof(batch), "%d", j->gw->cfg->purge_batch);
    while (*budget > 0) {
        PGresult *r = q(db, sql, 2, p);
        long n;

        (*budget)--;
        if (!ok(r, PGRES_COMMAND_OK, "retention purge"))
            return -1;
        n = strtol(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        total += n;
        if (n < j->gw->cfg->purge_batch)
            break;
    }
    return total;
}

/* Login events older than CHAT_RETAIN_LOGINS_S; refresh tokens expired, and sessions ended
 * (revoked or expired, and every access token of them expired), CHAT_RETAIN_SESSIONS_S ago.
 * Under a session-level advisory lock taken with pg_try_advisory_lock: another gateway purging
 * means this one skips its turn. */
static void job_purge(struct gw_job *j, struct db *db)
{
    static const char *const sql[3] = {
        "DELETE FROM login_events WHERE id IN (SELECT id FROM login_events "
        "WHERE at < now() - make_interval(secs => $1::int) LIMIT $2::int)",
        "DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens "
        "WHERE expires_at < now() - make_interval(secs => $1::int) LIMIT $2::int)",
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions "
        "WHERE " GW_SESSION_ENDED " < now() - make_interval(secs => $1::int) LIMIT $2::int)",
    };
    char lock[80];
    PGresult *r;
    int budget = PURGE_STMTS_MAX;
    bool got;

    j->status = 200;
    snprintf(lock, sizeof(lock), "SELECT pg_try_advisory_lock(%lld)", PURGE_LOCK);
    r = q(db, lock, 0, NULL);
    if (!ok(r, PGRES_TUPLES_OK, "purge lock")) {
        unavailable(j);
        return;
    }
    got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!got)
        return; /* another gateway is at it */
    j->purge_ran = true;
    for (int i = 0; i < 3; i++) {
        int retain = i == 0 ? j->gw->cfg->retain_logins_s : j->gw->cfg->retain_sessions_s;
        /* a revoked session stays until no token of it can be valid (GW_REVOKE_KEEP_S): a
         * gateway starting later must still load its revocation */
        if (i == 2 && retain < GW_REVOKE_KEEP_S(j->gw->cfg))
            retain = GW_REVOKE_KEEP_S(j->gw->cfg);
        j->purged[i] = purge_table(j, db, sql[i], retain, &budget);
        if (j->purged[i] < 0) {
            unavailable(j);
            break;
        }
    }
    snprintf(lock, sizeof(lock), "SELECT pg_advisory_unlock(%lld)", PURGE_LOCK);
    r = q(db, lock, 0, NULL);
    if (ok(r, PGRES_TUPLES_OK, "purge unlock"))
        PQclear(r);
}

typedef void (*job_fn)(struct gw_job *j, struct db *db);

static const job_fn job_fns[] = {
    [GW_JOB_REGISTER] = job_register,
    [GW_JOB_LOGIN] = job_login,
    [GW_JOB_REFRESH] = job_refresh,
    [GW_JOB_LOGOUT] = job_logout,
    [GW_JOB_ME] = job_me,
    [GW_JOB_NICKNAME] = job_nickname,
    [GW_JOB_PASSWORD] = job_password,
    [GW_JOB_LOGINS] = job_logins,
    [GW_JOB_ADMIN_REVOKE] = job_admin_revoke,
    [GW_JOB_LOAD] = job_load,
    [GW_JOB_PURGE] = job_purge,
};

/* Runs j on db; db NULL (no connection, or another worker is trying a failing database):
 * answered 503 at once. */
static void run_job(struct gw_job *j, struct db *db)
{
    j->err = CHAT_ERR__COUNT;
    if (db)
        job_fns[j->kind](j, db);
    else
        unavailable(j);
    /* secrets leave memory as soon as they are used */
    if (j->password)
        explicit_bzero(j->password, strlen(j->password));
    if (j->new_password)
        explicit_bzero(j->new_password, strlen(j->new_password));
    if (j->refresh)
        explicit_bzero(j->refresh, strlen(j->refresh));
}

/* ---- the pool ---- */

/* Connects db (db->pg NULL) within db->timeout_ms, the SET included: a hung server's kernel
 * accepts the TCP connection, and only the deadline ends the wait for the startup answer
 * (libpq's connect_timeout counts whole seconds, at least 2, and PQconnectPoll ignores it; a
 * DSN naming several hosts shares the one deadline). Returns false, logged, on a failure. */
static bool pg_connect(struct db *db, const struct gw_config *cfg)
{
    char user_timeout[16], stmt[64];
    /* the DSN comes last: its own settings win over these defaults. Keepalives and
     * tcp_user_timeout bound a call to a silent network (statement_timeout is enforced by the
     * server, which may be unreachable). */
    const char *keys[] = {
        "application_name", "keepalives",       "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
    const char *vals[] = {"chat-gateway", "1", "5", "2", "3", user_timeout, cfg->pg_dsn, NULL};
    int64_t deadline = chat_mono_ms() + db->timeout_ms;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    PGconn *pg;

    snprintf(user_timeout, sizeof(user_timeout), "%d", cfg->pg_timeout_ms);
    pg = PQconnectStartParams(keys, vals, 1);
    if (!pg) {
        db_log(db, "cannot connect to PostgreSQL", "out of memory");
        return false;
    }
    while (PQstatus(pg) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        int rc = wait_socket(pg, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);

        if (rc == 0) {
            char why[64];

            snprintf(why, sizeof(why), "no answer within CHAT_PG_TIMEOUT_MS (%d ms)",
                     db->timeout_ms);
            db_log(db, "cannot connect to PostgreSQL", why);
            PQfinish(pg);
            return false;
        }
        st = rc > 0 ? PQconnectPoll(pg) : PGRES_POLLING_FAILED;
    }
    if (st != PGRES_POLLING_OK || PQstatus(pg) != CONNECTION_OK) {
        /* PQerrorMessage may name host and user, never the password */
        db_log(db, "cannot connect to PostgreSQL", PQerrorMessage(pg));
        PQfinish(pg);
        return false;
    }
    PQsetErrorVerbosity(pg, PQERRORS_TERSE);
    if (PQsetnonblocking(pg, 1) != 0) { /* a send never blocks; PQflush finishes it */
        db_log(db, "cannot connect to PostgreSQL", PQerrorMessage(pg));
        PQfinish(pg);
        return false;
    }
    db->pg = pg;
    /* the server's own bound too: a slow statement stops there as well, not only here */
    snprintf(stmt, sizeof(stmt), "SET statement_timeout = %d", cfg->pg_timeout_ms);
    if (!cmd(db, stmt)) {
        PQfinish(db->pg);
        db->pg = NULL;
        return false;
    }
    return true;
}

static void *worker_main(void *arg)
{
    struct gw_pool *p = arg;
    struct db db = {.pg = NULL, .timeout_ms = p->gw->cfg->pg_timeout_ms};

    /* below the event-loop thread: hashing must not starve fan-out (best effort) */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE);
    for (;;) {
        struct gw_job *j;
        bool skip, probe;

        pthread_mutex_lock(&p->mu);
        while (!p->stop && !p->q_head)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        j = p->q_head;
        p->q_head = j->next;
        if (!p->q_head)
            p->q_tail = NULL;
        p->q_len--;
        skip = p->db_down && p->probing;
        probe = p->db_down && !p->probing;
        p->probing = p->probing || probe;
        pthread_mutex_unlock(&p->mu);

        j->next = NULL;
        run_job(j, !skip && (db.pg || pg_connect(&db, p->gw->cfg)) ? &db : NULL);
        /* never reused in an unknown or unfinished state: a broken connection, or one left
         * inside a transaction (a failed ROLLBACK) */
        if (db.pg &&
            (PQstatus(db.pg) != CONNECTION_OK || PQtransactionStatus(db.pg) != PQTRANS_IDLE)) {
            PQfinish(db.pg);
            db.pg = NULL;
        }

        pthread_mutex_lock(&p->mu);
        if (probe)
            p->probing = false;
        if (!skip)
            p->db_down = !db.pg;
        if (p->done_tail)
            p->done_tail->next = j;
        else
            p->done_head = j;
        p->done_tail = j;
        pthread_mutex_unlock(&p->mu);
        uv_async_send(&p->async);
    }
    PQfinish(db.pg);
    return NULL;
}

/* Loop thread: hands every finished job to gw_auth_done. */
static void on_done(uv_async_t *h)
{
    struct gw_pool *p = h->data;
    struct gw_job *list;

    pthread_mutex_lock(&p->mu);
    list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (list) {
        struct gw_job *j = list;
        list = j->next;
        j->next = NULL;
        gw_auth_done(p->gw, j);
    }
}

int gw_pool_start(struct gw *gw)
{
    struct gw_pool *p = chat_xcalloc(1, sizeof(*p));

    p->gw = gw;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (uv_async_init(&gw->loop, &p->async, on_done) != 0) {
        chat_free(p);
        return CHAT_EIO;
    }
    p->async.data = p;
    gw->pool = p;
    p->threads = chat_xcalloc((size_t)gw->cfg->auth_workers, sizeof(*p->threads));
    for (int i = 0; i < gw->cfg->auth_workers; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            chat_log(CHAT_LOG_ERROR, "accounts: cannot start worker thread %d", i);
            return CHAT_EIO;
        }
        p->nthreads++;
    }
    chat_log(CHAT_LOG_INFO, "accounts: %d workers", p->nthreads);
    return CHAT_OK;
}

int gw_pool_submit(struct gw *gw, struct gw_job *j)
{
    struct gw_pool *p = gw->pool;
    int rc = CHAT_OK;

    if (!p)
        return CHAT_EAGAIN;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stop || p->q_len >= gw->cfg->auth_queue_max) {
        rc = CHAT_EAGAIN;
    } else {
        if (p->q_tail)
            p->q_tail->next = j;
        else
            p->q_head = j;
        p->q_tail = j;
        p->q_len++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static void async_closed(uv_handle_t *h)
{
    (void)h;
}

void gw_pool_stop(struct gw *gw)
{
    struct gw_pool *p = gw->pool;
    struct gw_job *waiting;

    if (!p || p->stop)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    waiting = p->q_head;
    p->q_head = p->q_tail = NULL;
    p->q_len = 0;
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL); /* at most a connect and a statement deadline */
    on_done(&p->async);                    /* what finished still publishes its events */
    while (waiting) {                      /* answered 503 (their requests still point at them) */
        struct gw_job *j = waiting;
        waiting = j->next;
        j->next = NULL;
        j->status = 503;
        j->err = CHAT_ERR_unavailable;
        gw_auth_done(gw, j);
    }
    uv_close((uv_handle_t *)&p->async, async_closed);
}

void gw_pool_free(struct gw *gw)
{
    struct gw_pool *p = gw->pool;

    if (!p)
        return;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    chat_free(p->threads);
    chat_free(p);
    gw->pool = NULL;
}
