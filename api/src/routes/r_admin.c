/* r_admin.c - /api/v1/admin/...: site administration. Every route is API_ADMIN: the router
 * checked the token, its session and the admin role in the database. */
#include <stdio.h>

#include "acct/api_acct.h"
#include "api.h"
#include "db/api_conns.h"
#include "routes.h"

/* A body, if any, is a valid JSON object; its fields are ignored. */
void r_admin_revoke_check(struct api_req *r)
{
    (void)api_acct_body(r);
}

/* POST /api/v1/admin/users/{id}/revoke: every live session of the user ends. */
void r_admin_revoke(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const struct api_param *id = api_param_get(&r->params, "id");
    const char *p[1] = {id->str};
    PGresult *res;
    bool found;

    res = api_db_qn(db, API_Q_user_exists, 1, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a user")) {
        api_reply_unavailable(r);
        return;
    }
    found = PQntuples(res) == 1;
    PQclear(res);
    if (!found) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    if (!api_acct_begin(r, db))
        return;
    if (api_acct_revoke(r, db, id->str, API_Q_session_revoke_admin, 1, p, "admin", true) < 0) {
        api_db_rollback(db);
        return;
    }
    (void)api_acct_commit(r, db);
}
