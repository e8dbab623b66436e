/* r_util.c - what the route files share (r_util.h). */
#include "r_util.h"

#include <stdio.h>
#include <string.h>

#include "chat/config.h"
#include "chat/mem.h"
#include "chat/utf8.h"

#include "acct/api_acct.h"
#include "api.h"
#include "db/api_conns.h"
#include "routes.h"

struct api_db *r_db(struct api_req *r)
{
    return &api_conns_get(r->api)->db;
}

const char *r_param(const struct api_req *r, const char *name)
{
    const struct api_param *p = api_param_get(&r->params, name);
    return p ? p->str : "";
}

const char *r_room_param(struct api_req *r)
{
    const char *room = r_param(r, "room");

    if (chat_room_valid(room))
        return room;
    api_reply_code(r, CHAT_ERR_bad_room);
    return NULL;
}

bool r_query_int(struct api_req *r, const char *key, long long lo, long long hi, long long *v)
{
    const char *s = api_query(r, key);
    long long x;
    char msg[96];

    if (!s)
        return true;
    if (chat_parse_ll(s, lo, hi, &x) == CHAT_OK) {
        *v = x;
        return true;
    }
    snprintf(msg, sizeof(msg), "%s must be an integer in %lld..%lld", key, lo, hi);
    api_reply_error(r, 400, "bad_field", msg);
    return false;
}

/* Valid UTF-8 of at most max_cps code points without control characters but those of allow. */
static bool good_text(const char *s, size_t len, size_t max_cps, const char *allow)
{
    size_t cps = 0;

    return strlen(s) == len && chat_utf8_valid(s, len, &cps) && cps <= max_cps &&
           !chat_utf8_has_control(s, len, allow);
}

bool r_query_text(struct api_req *r, const char *key, size_t max_cps, const char **out)
{
    const char *s = api_query(r, key);
    char msg[96];

    *out = NULL;
    if (!s || !s[0])
        return true;
    if (good_text(s, strlen(s), max_cps, "")) {
        *out = s;
        return true;
    }
    snprintf(msg, sizeof(msg), "%s must be text of at most %zu characters", key, max_cps);
    api_reply_error(r, 400, "bad_field", msg);
    return false;
}

bool r_opt_text(
    struct api_req *r, const char *key, size_t max_cps, bool multiline, const char **out)
{
    json_t *v = json_object_get(r->doc, key);
    char msg[96];

    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (json_is_string(v) &&
        good_text(json_string_value(v), json_string_length(v), max_cps, multiline ? "\n" : "")) {
        *out = json_string_value(v);
        return true;
    }
    snprintf(msg, sizeof(msg), "%s must be a string of at most %zu characters", key, max_cps);
    api_reply_error(r, 400, "bad_field", msg);
    return false;
}

bool r_opt_int(struct api_req *r, const char *key, long long lo, long long hi, long long *out)
{
    json_t *v = json_object_get(r->doc, key);
    char msg[96];

    if (!v || json_is_null(v))
        return true;
    if (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi) {
        *out = json_integer_value(v);
        return true;
    }
    snprintf(msg, sizeof(msg), "%s must be an integer in %lld..%lld", key, lo, hi);
    api_reply_error(r, 400, "bad_field", msg);
    return false;
}

bool r_opt_bool(struct api_req *r, const char *key, int *out)
{
    json_t *v = json_object_get(r->doc, key);
    char msg[96];

    *out = -1;
    if (!v || json_is_null(v))
        return true;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    snprintf(msg, sizeof(msg), "%s must be true or false", key);
    api_reply_error(r, 400, "bad_field", msg);
    return false;
}

PGresult *
r_run(struct api_req *r, struct api_db *db, enum api_q q, int n, const char *const *p, int want)
{
    PGresult *res = api_db_qn(db, q, n, p);

    if (api_db_ok(res, (ExecStatusType)want, r->route ? r->route->name : "a route statement"))
        return res;
    r_fail_503(r, db);
    return NULL;
}

bool r_exec(
    struct api_req *r, struct api_db *db, enum api_q q, int n, const char *const *p, int want)
{
    PGresult *res = r_run(r, db, q, n, p, want);

    PQclear(res);
    return res != NULL;
}

bool r_one_row(struct api_req *r, PGresult *res, const char *what)
{
    if (!api_db_ok(res, PGRES_TUPLES_OK, what)) {
        api_reply_unavailable(r);
        return false;
    }
    if (PQntuples(res) == 1)
        return true;
    PQclear(res);
    api_reply_code(r, CHAT_ERR_not_found);
    return false;
}

bool r_user_known(struct api_req *r, struct api_db *db, const char *id)
{
    const char *p[1] = {id};
    PGresult *res = r_run(r, db, API_Q_user_exists, 1, p, PGRES_TUPLES_OK);
    int n;

    if (!res)
        return false;
    n = PQntuples(res);
    PQclear(res);
    if (n == 1)
        return true;
    r_fail(r, db, CHAT_ERR_not_found, "no such user");
    return false;
}

void r_fail_503(struct api_req *r, struct api_db *db)
{
    api_db_rollback(db);
    api_reply_unavailable(r);
}

void r_fail(struct api_req *r, struct api_db *db, enum chat_errcode code, const char *msg)
{
    api_db_rollback(db);
    if (msg)
        api_reply_error(r, chat_errcode_http(code), chat_errcode_name(code), msg);
    else
        api_reply_code(r, code);
}

void r_fail_sanction(struct api_req *r,
                     struct api_db *db,
                     enum chat_errcode code,
                     const PGresult *res,
                     int col_reason,
                     int col_until)
{
    if (db)
        api_db_rollback(db);
    r_answer_json(r, 403,
                  json_pack("{s:{s:s, s:s, s:o, s:s}}", "error", "code", chat_errcode_name(code),
                            "message", chat_errcode_desc(code), "until",
                            PQgetisnull(res, 0, col_until)
                                ? json_null()
                                : json_integer(api_db_ll(res, 0, col_until)),
                            "reason", PQgetvalue(res, 0, col_reason)));
}

void r_answer_json(struct api_req *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(j);
    chat_buf_reset(&r->resp);
    if (!s || chat_buf_appends(&r->resp, s) != CHAT_OK) {
        chat_free(s);
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    chat_free(s);
    api_reply(r, status, "application/json");
}

void r_commit_json(struct api_req *r, struct api_db *db, int status, json_t *j)
{
    if (api_acct_commit(r, db))
        r_answer_json(r, status, j);
    else
        json_decref(j);
}

void r_commit_204(struct api_req *r, struct api_db *db)
{
    if (api_acct_commit(r, db))
        api_reply(r, 204, NULL);
}

/* The JSON object body of a route (empty: {}), kept in r->doc for the handler: the body check
 * of the rooms, moderation and admin routes (routes.h). */
void r_json_body_check(struct api_req *r)
{
    json_error_t e;
    json_t *o;

    if (!chat_utf8_valid(chat_buf_data(&r->body), r->body.len, NULL)) {
        api_reply_code(r, CHAT_ERR_bad_utf8);
        return;
    }
    o = r->body.len ? json_loadb(chat_buf_data(&r->body), r->body.len, JSON_REJECT_DUPLICATES, &e)
                    : json_object();
    if (!json_is_object(o)) {
        json_decref(o);
        api_reply_code(r, CHAT_ERR_bad_json);
        return;
    }
    r->doc = o;
}
