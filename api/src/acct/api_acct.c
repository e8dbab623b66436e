/* api_acct.c - shared account helpers (api_acct.h). */
#include "api_acct.h"

#include <stdint.h>
#include <string.h>

#include "chat/mem.h"
#include "chat/time.h"

#include "api.h"
#include "bus/api_outbox.h"
#include "db/api_db.h"

void api_acct_user_from(const PGresult *res, int row, struct chat_user *u)
{
    u->id = PQgetvalue(res, row, 0);
    u->username = PQgetvalue(res, row, 1);
    u->nickname = PQgetvalue(res, row, 2);
    u->role = PQgetvalue(res, row, 3);
    u->created_at = api_db_ll(res, row, 4);
}

bool api_acct_answer_user(struct api_req *r, const PGresult *res)
{
    struct chat_user u;

    if (PQntuples(res) != 1) {
        api_reply_code(r, CHAT_ERR_not_found);
        return false;
    }
    api_acct_user_from(res, 0, &u);
    chat_buf_reset(&r->resp);
    api_reply_json(r, 200, chat_enc_user(&r->resp, &u));
    return r->status == 200;
}

bool api_acct_body(struct api_req *r)
{
    enum chat_errcode code = CHAT_ERR__COUNT;

    r->ab_set = true; /* decoded or not, api_server.c wipes and frees it with the request */
    if (chat_auth_body_decode(chat_buf_data(&r->body), r->body.len, &r->ab, &code) == CHAT_OK)
        return true;
    api_reply_code(r, code);
    return false;
}

long api_acct_revoke(struct api_req *r,
                     struct api_db *db,
                     const char *user,
                     enum api_q q,
                     int n,
                     const char *const *p,
                     const char *reason,
                     bool answer)
{
    PGresult *res = api_db_qn(db, q, n, p);
    const char **sids;
    struct chat_buf ev;
    long count;
    bool queued = true;

    if (!api_db_ok(res, PGRES_TUPLES_OK, "revoking sessions")) {
        api_reply_unavailable(r);
        return -1;
    }
    count = PQntuples(res);
    if (count > 0) {
        sids = chat_xcalloc((size_t)count, sizeof(*sids));
        for (long i = 0; i < count; i++)
            sids[i] = PQgetvalue(res, (int)i, 0);
        chat_buf_init(&ev, 0, 0);
        queued = chat_enc_ev_sessions_revoked(&ev, user, sids, (size_t)count, reason,
                                              chat_now_ms()) == CHAT_OK &&
                 api_outbox_add(db, user, "sessions_revoked", &ev);
        chat_buf_fini(&ev);
        chat_free(sids);
    }
    PQclear(res);
    if (!queued) {
        api_reply_unavailable(r);
        return -1;
    }
    if (answer) {
        chat_buf_reset(&r->resp);
        api_reply_json(r, 200, chat_enc_revoked(&r->resp, count));
    }
    return count;
}

bool api_acct_begin(struct api_req *r, struct api_db *db)
{
    if (api_db_cmd(db, "BEGIN"))
        return true;
    api_reply_unavailable(r);
    return false;
}

bool api_acct_commit(struct api_req *r, struct api_db *db)
{
    if (api_db_cmd(db, "COMMIT"))
        return true;
    api_db_rollback(db);
    api_reply_unavailable(r);
    return false;
}

void api_acct_wipe(const char *s)
{
    if (s) /* the string is the decoder's writable heap copy, only typed const for readers */
        explicit_bzero((void *)(uintptr_t)s, strlen(s));
}
