/* api_audit.c - audit rows (api_audit.h). */
#include "mod/api_audit.h"

#include <stdio.h>

#include "db/api_db.h"

bool api_audit_add(struct api_db *db, const struct api_audit *a)
{
    char exp[24];
    const char *p[8] = {a->actor,   a->action, a->target, a->room,
                        a->message, a->reason, NULL,      a->details};
    PGresult *r;

    if (a->expires_ms > 0) {
        snprintf(exp, sizeof(exp), "%lld", (long long)a->expires_ms);
        p[6] = exp;
    }
    r = api_db_qn(db, API_Q_audit_add, 8, p);
    if (!api_db_ok(r, PGRES_COMMAND_OK, "writing an audit row"))
        return false;
    PQclear(r);
    return true;
}
