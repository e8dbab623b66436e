/* r_util.h - what every route file of chat-api shares: path and query arguments, the optional
 * fields of a JSON body (r->doc, decoded by r_json_body_check), statements inside the request's
 * transaction and the answers that roll it back first. Each function that returns false (or
 * NULL) has answered the request already (400, 404 or 503); the caller only returns.
 * Thread-safety: request threads only; everything works on the one request given. */
#ifndef API_R_UTIL_H
#define API_R_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "chat/proto.h"

#include "api_queries_gen.h"

struct api_req;
struct api_db;

/* The PostgreSQL connection of the request's thread (borrowed). */
struct api_db *r_db(struct api_req *r);

/* A path parameter of the route ("" when absent: the route's pattern has it, so never). */
const char *r_param(const struct api_req *r, const char *name);
/* The {room} path parameter, or NULL after answering 400 bad_room. */
const char *r_room_param(struct api_req *r);

/* An integer query argument: absent leaves *v; else it must be in [lo, hi]. False after 400
 * bad_field. */
bool r_query_int(struct api_req *r, const char *key, long long lo, long long hi, long long *v);
/* A text query argument (absent or empty: *out NULL): valid UTF-8 without control characters,
 * at most max_cps code points; *out borrowed from the request. False after 400 bad_field. */
bool r_query_text(struct api_req *r, const char *key, size_t max_cps, const char **out);

/* An optional string field of the body: absent or null leaves *out NULL; else a string of at
 * most max_cps code points without control characters (newlines allowed when multiline); *out
 * borrowed from r->doc. False after 400 bad_field. */
bool r_opt_text(
    struct api_req *r, const char *key, size_t max_cps, bool multiline, const char **out);
/* An optional integer field in [lo, hi]: absent or null leaves *out. False after 400. */
bool r_opt_int(struct api_req *r, const char *key, long long lo, long long hi, long long *out);
/* An optional boolean field: *out -1 absent or null, else 0 or 1. False after 400. */
bool r_opt_bool(struct api_req *r, const char *key, int *out);

/* Runs statement q in the request's transaction expecting status want: the result (PQclear
 * it), or NULL after rolling back and answering 503 (logged). */
PGresult *
r_run(struct api_req *r, struct api_db *db, enum api_q q, int n, const char *const *p, int want);
/* r_run() for a statement whose result is not needed: true when it ran. */
bool r_exec(
    struct api_req *r, struct api_db *db, enum api_q q, int n, const char *const *p, int want);

/* Checks res, the result of a read outside a transaction that must give one row: true (res is
 * the caller's), or false with res cleared after answering 503 (failed; logged as what) or 404
 * not_found (no row). */
bool r_one_row(struct api_req *r, PGresult *res, const char *what);

/* True when account id exists; else false after answering 404 not_found ("no such user") or 503
 * (the transaction, if any, rolled back). */
bool r_user_known(struct api_req *r, struct api_db *db, const char *id);

/* Rolls the transaction back and answers 503 (a dependency failed). */
void r_fail_503(struct api_req *r, struct api_db *db);
/* Rolls the transaction back and answers code with msg (NULL: the code's own description). */
void r_fail(struct api_req *r, struct api_db *db, enum chat_errcode code, const char *msg);
/* Answers a sanction in force as a gateway's error frame says it: 403 with code (muted, banned,
 * chat_banned), its message, "until" (ms; null: until lifted) and "reason" from row 0 of res
 * (columns col_reason, col_until). Rolls back db's transaction first (db NULL: none). */
void r_fail_sanction(struct api_req *r,
                     struct api_db *db,
                     enum chat_errcode code,
                     const PGresult *res,
                     int col_reason,
                     int col_until);

/* Answers status with j (stolen; NULL answers 500) as compact JSON. */
void r_answer_json(struct api_req *r, int status, json_t *j);
/* Commits the request's transaction and answers status with j (stolen) as r_answer_json(); a
 * failed commit has answered 503 (j freed). */
void r_commit_json(struct api_req *r, struct api_db *db, int status, json_t *j);
/* Commits the request's transaction and answers 204 (a failed commit has answered 503). */
void r_commit_204(struct api_req *r, struct api_db *db);

#endif
