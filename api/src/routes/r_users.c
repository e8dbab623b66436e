/* r_users.c - /api/v1/users/me, its nickname, password and login history (proto/README.md
 * section 9). Every route is API_BEARER: the router checked the token and its session. */
#include <stdio.h>
#include <string.h>

#include "chat/account.h"
#include "chat/config.h"
#include "chat/mem.h"

#include "acct/api_acct.h"
#include "api.h"
#include "bus/api_outbox.h"
#include "db/api_conns.h"
#include "routes.h"

#define LOGINS_DEFAULT 50
#define LOGINS_MAX     100

void r_users_me(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *p[1] = {r->uid};
    PGresult *res = api_db_qn(db, API_Q_user_by_id, 1, p);

    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a user")) {
        api_reply_unavailable(r);
        return;
    }
    (void)api_acct_answer_user(r, res);
    PQclear(res);
}

void r_users_nickname_check(struct api_req *r)
{
    char nick[CHAT_NICK_BYTES];

    if (!api_acct_body(r))
        return;
    if (!r->ab.nickname)
        api_reply_code(r, CHAT_ERR_bad_field);
    else if (chat_nickname_normalize(r->ab.nickname, nick, sizeof(nick)) != CHAT_OK)
        api_reply_code(r, CHAT_ERR_invalid_nickname);
}

/* The change and its user_updated event commit together: every gateway learns the new name. */
void r_users_nickname(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    char nick[CHAT_NICK_BYTES];
    const char *p[2] = {r->uid, nick};
    struct chat_buf ev;
    PGresult *res;
    bool good;

    if (chat_nickname_normalize(r->ab.nickname, nick, sizeof(nick)) != CHAT_OK) {
        api_reply_code(r, CHAT_ERR_internal); /* the check let it through */
        return;
    }
    if (!api_acct_begin(r, db))
        return;
    res = api_db_qn(db, API_Q_nickname_set, 2, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "changing a nickname")) {
        api_db_rollback(db);
        api_reply_unavailable(r);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_db_rollback(db);
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    chat_buf_init(&ev, 0, 0);
    /* one clock (the database's) orders changes */
    good = chat_enc_ev_user_updated(&ev, r->uid, PQgetvalue(res, 0, 2), api_db_ll(res, 0, 5)) ==
               CHAT_OK &&
           api_outbox_add(db, r->uid, "user_updated", &ev);
    chat_buf_fini(&ev);
    if (!good) {
        PQclear(res);
        api_db_rollback(db);
        api_reply_unavailable(r);
        return;
    }
    if (api_acct_commit(r, db))
        (void)api_acct_answer_user(r, res);
    PQclear(res);
}

void r_users_password_check(struct api_req *r)
{
    if (!api_acct_body(r))
        return;
    if (!r->ab.current_password || !r->ab.new_password)
        api_reply_code(r, CHAT_ERR_bad_field);
    else if (!chat_password_valid(r->ab.new_password))
        api_reply_code(r, CHAT_ERR_invalid_password);
}

/* The current password proves the owner; the other sessions end (their events in the same
 * transaction), this one stays. */
void r_users_password(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const struct chat_auth_body *b = &r->ab;
    char hash[CHAT_PASSWD_HASH_MAX] = "";
    const char *p[2] = {r->uid, NULL};
    PGresult *res;
    bool match;

    res = api_db_qn(db, API_Q_password_hash_get, 1, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a password hash")) {
        api_reply_unavailable(r);
        goto out;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_reply_code(r, CHAT_ERR_not_found);
        goto out;
    }
    match = chat_passwd_verify(b->current_password, PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!match) {
        api_reply_code(r, CHAT_ERR_wrong_password); /* counted in auth_failures (403) */
        goto out;
    }
    if (chat_passwd_hash(b->new_password, r->api->cfg->password_cost, hash, sizeof(hash)) !=
        CHAT_OK) {
        api_reply_code(r, CHAT_ERR_internal);
        goto out;
    }
    if (!api_acct_begin(r, db))
        goto out;
    p[1] = hash;
    res = api_db_qn(db, API_Q_password_set, 2, p);
    if (!api_db_ok(res, PGRES_COMMAND_OK, "changing a password")) {
        api_db_rollback(db);
        api_reply_unavailable(r);
        goto out;
    }
    PQclear(res);
    p[1] = r->sid[0] ? r->sid : NULL;
    if (api_acct_revoke(r, db, r->uid, API_Q_session_revoke_password, 2, p, "password_changed",
                        true) < 0) {
        api_db_rollback(db);
        goto out;
    }
    (void)api_acct_commit(r, db);
out:
    explicit_bzero(hash, sizeof(hash));
}

void r_users_logins(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *ls = api_query(r, "limit"), *before = api_query(r, "before");
    char lim[16];
    const char *p[3] = {r->uid, NULL, lim};
    struct chat_login *v;
    long long limit = LOGINS_DEFAULT, b;
    PGresult *res;
    int n;

    if (ls && chat_parse_ll(ls, 1, LOGINS_MAX, &limit) != CHAT_OK) {
        api_reply_error(r, 400, "bad_field", "limit must be 1-100");
        return;
    }
    if (before && (chat_parse_ll(before, 0, 999999999999999999LL, &b) != CHAT_OK ||
                   before[0] == '+' || before[0] == '-')) {
        api_reply_error(r, 400, "bad_field", "before must be a login id");
        return;
    }
    p[1] = before;
    snprintf(lim, sizeof(lim), "%lld", limit);
    res = api_db_qn(db, API_Q_login_history, 3, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading the login history")) {
        api_reply_unavailable(r);
        return;
    }
    n = PQntuples(res);
    v = chat_xcalloc((size_t)n + 1, sizeof(*v));
    for (int i = 0; i < n; i++) {
        v[i].id = PQgetvalue(res, i, 0);
        v[i].at = api_db_ll(res, i, 1);
        v[i].ip = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
        v[i].user_agent = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3);
        v[i].success = strcmp(PQgetvalue(res, i, 4), "t") == 0;
        v[i].reason = PQgetvalue(res, i, 5);
    }
    chat_buf_reset(&r->resp);
    api_reply_json(
        r, 200, chat_enc_logins(&r->resp, v, (size_t)n, n > 0 && n == limit ? v[n - 1].id : NULL));
    chat_free(v);
    PQclear(res);
}
