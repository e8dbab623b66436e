/* api_acct.h - what the account handlers (routes/r_auth.c, r_users.c, r_admin.c) share: user
 * rows, the JSON body, revoking sessions with their chat.events record in the same transaction.
 * Request threads. */
#ifndef API_ACCT_H
#define API_ACCT_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "chat/jwt.h"
#include "chat/proto.h"

#include "api_queries_gen.h"

struct api_req;
struct api_db;

/* api_acct_user_from reads a user row as the user queries of db/queries/accounts.sql select
 * it: id::text, username, nickname, role, created_at in ms. */

/* How long a session's revocation must be remembered after its last token was signed. */
#define API_ACCESS_KEEP_S(cfg) ((cfg)->access_ttl_s + 2 * CHAT_JWT_LEEWAY_S)

void api_acct_user_from(const PGresult *res, int row, struct chat_user *u);
/* Answers the user of row 0 (404 without one); true when answered 200. */
bool api_acct_answer_user(struct api_req *r, const PGresult *res);
/* Decodes the JSON body into r->ab (borrowed strings; wiped and freed with the request by
 * api_server.c); false when answered (400). For the routes' check hooks. */
bool api_acct_body(struct api_req *r);
/* In the caller's transaction: runs the query q (an UPDATE sessions ... RETURNING id::text with
 * params p), queues the sessions_revoked event of user for the rows it returned, and answers
 * {"revoked_sessions":N} (not yet committed: the caller commits, or rolls back and answers
 * again). Returns the sessions revoked, -1 when answered with an error. */
long api_acct_revoke(struct api_req *r,
                     struct api_db *db,
                     const char *user,
                     enum api_q q,
                     int n,
                     const char *const *p,
                     const char *reason,
                     bool answer);
/* Commits; on a failure rolls back and answers 503. True when committed. */
bool api_acct_commit(struct api_req *r, struct api_db *db);
/* Overwrites a secret of a decoded body (jansson's own heap copy) before it is freed. */
void api_acct_wipe(const char *s);
/* BEGIN; false (answered 503) when it fails. */
bool api_acct_begin(struct api_req *r, struct api_db *db);

#endif
