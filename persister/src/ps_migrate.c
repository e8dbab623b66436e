/* ps_migrate.c - applies the embedded schema migrations (db/migrations/NNNN_name.sql) in one
 * transaction under an advisory lock, so replicas starting together are safe; every applied
 * version is recorded in schema_migrations. Blocking libpq; see ps.h. */
#include <stdio.h>
#include <string.h>

#include "chat/log.h"

#include "ps.h"

#define CREATE_TRACKING                              \
    "CREATE TABLE IF NOT EXISTS schema_migrations (" \
    " version integer PRIMARY KEY,"                  \
    " name text NOT NULL,"                           \
    " applied_at timestamptz NOT NULL DEFAULT now())"

static bool is_applied(const PGresult *res, int version)
{
    char v[16];

    (void)snprintf(v, sizeof(v), "%d", version);
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, 0), v) == 0)
            return true;
    return false;
}

/* Applies one migration and records it. Inside the caller's transaction. */
static int apply_one(PGconn *conn, const struct ps_migration *mg)
{
    const char *params[2];
    char ver[16], what[96];
    PGresult *res;
    int rc;

    (void)snprintf(what, sizeof(what), "migration %04d_%s", mg->version, mg->name);
    rc = ps_pg_exec(conn, what, mg->sql);
    if (rc != CHAT_OK)
        return rc;
    (void)snprintf(ver, sizeof(ver), "%d", mg->version);
    params[0] = ver;
    params[1] = mg->name;
    res = PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                       NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        ps_pg_log_error(conn, res, "recording migration");
        rc = CHAT_EIO;
    }
    PQclear(res);
    if (rc == CHAT_OK)
        chat_log(CHAT_LOG_INFO, "applied %s", what);
    return rc;
}

int ps_migrate(PGconn *conn, const struct ps_migration *list, size_t n, int *applied)
{
    char lock[80];
    PGresult *res = NULL;
    bool in_tx = false;
    int count = 0;
    int rc;

    if (applied)
        *applied = 0;
    rc = ps_pg_exec(conn, "BEGIN", "BEGIN");
    if (rc != CHAT_OK)
        goto out;
    in_tx = true;
    (void)snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)",
                   (long long)PS_LOCK_MIGRATE);
    rc = ps_pg_exec(conn, "migration lock", lock);
    if (rc == CHAT_OK)
        rc = ps_pg_exec(conn, "creating schema_migrations", CREATE_TRACKING);
    if (rc != CHAT_OK)
        goto out;
    res = PQexec(conn, "SELECT version FROM schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ps_pg_log_error(conn, res, "reading schema_migrations");
        rc = CHAT_EIO;
        goto out;
    }
    for (size_t i = 0; i < n && rc == CHAT_OK; i++) {
        if (is_applied(res, list[i].version))
            continue;
        rc = apply_one(conn, &list[i]);
        count++;
    }
    if (rc != CHAT_OK)
        goto out;
    rc = ps_pg_exec(conn, "COMMIT", "COMMIT");
    in_tx = false;
    if (rc == CHAT_OK && applied)
        *applied = count;
out:
    PQclear(res);
    if (in_tx && PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}
