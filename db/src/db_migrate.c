/* db_migrate.c - applies the embedded schema migrations (chat/db_migrate.h): one transaction
 * under an advisory lock; every applied version is recorded in schema_migrations. */
#include "chat/db_migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "chat/log.h"

#define CREATE_TRACKING                              \
    "CREATE TABLE IF NOT EXISTS schema_migrations (" \
    " version integer PRIMARY KEY,"                  \
    " name text NOT NULL,"                           \
    " applied_at timestamptz NOT NULL DEFAULT now())"

PGresult *chat_db_run_conn(void *ctx, const char *sql, int n, const char *const *params)
{
    PGconn *conn = ctx;

    if (!params)
        return PQexec(conn, sql);
    return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
}

/* Runs sql; true when it ended with status want. A failure is logged (SQLSTATE and primary
 * message only: a DETAIL may quote a row). */
static bool run_ok(chat_db_run_fn *run,
                   void *ctx,
                   const char *what,
                   const char *sql,
                   int n,
                   const char *const *params,
                   ExecStatusType want,
                   PGresult **keep)
{
    PGresult *res = run(ctx, sql, n, params);
    const char *st, *msg;

    if (res && PQresultStatus(res) == want) {
        if (keep)
            *keep = res;
        else
            PQclear(res);
        return true;
    }
    st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    chat_log(CHAT_LOG_ERROR, "migrations: %s failed: %s %s", what, st ? st : "-",
             msg ? msg : (res ? PQresStatus(PQresultStatus(res)) : "no answer"));
    PQclear(res);
    return false;
}

static bool is_applied(const PGresult *res, int version)
{
    char v[16];

    (void)snprintf(v, sizeof(v), "%d", version);
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, 0), v) == 0)
            return true;
    return false;
}

/* Applies one migration and records it, inside the caller's transaction. */
static bool apply_one(chat_db_run_fn *run, void *ctx, const struct chat_db_migration *mg)
{
    const char *params[2];
    char ver[16], what[96];

    (void)snprintf(what, sizeof(what), "migration %04d_%s", mg->version, mg->name);
    if (!run_ok(run, ctx, what, mg->sql, 0, NULL, PGRES_COMMAND_OK, NULL))
        return false;
    (void)snprintf(ver, sizeof(ver), "%d", mg->version);
    params[0] = ver;
    params[1] = mg->name;
    if (!run_ok(run, ctx, "recording a migration",
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params,
                PGRES_COMMAND_OK, NULL))
        return false;
    chat_log(CHAT_LOG_INFO, "applied %s", what);
    return true;
}

/* True when every migration of list is recorded already: then nothing runs under the lock and no
 * DDL is sent (a service whose role may not create tables still starts once the schema is
 * there). Any failure here (no schema_migrations yet) only means "find out under the lock". */
static bool
all_recorded(chat_db_run_fn *run, void *ctx, const struct chat_db_migration *list, size_t n)
{
    PGresult *res = run(ctx, "SELECT version FROM schema_migrations", 0, NULL);
    bool all = res && PQresultStatus(res) == PGRES_TUPLES_OK;

    for (size_t i = 0; all && i < n; i++)
        all = is_applied(res, list[i].version);
    PQclear(res);
    return all;
}

int chat_db_migrate(
    chat_db_run_fn *run, void *ctx, const struct chat_db_migration *list, size_t n, int *applied)
{
    char lock[80];
    PGresult *res = NULL;
    bool good, in_tx;
    int count = 0;

    if (applied)
        *applied = 0;
    if (all_recorded(run, ctx, list, n))
        return CHAT_OK;
    in_tx = good = run_ok(run, ctx, "BEGIN", "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL);
    (void)snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)",
                   (long long)CHAT_DB_LOCK_MIGRATE);
    good = good && run_ok(run, ctx, "migration lock", lock, 0, NULL, PGRES_TUPLES_OK, NULL) &&
           run_ok(run, ctx, "creating schema_migrations", CREATE_TRACKING, 0, NULL,
                  PGRES_COMMAND_OK, NULL) &&
           run_ok(run, ctx, "reading schema_migrations", "SELECT version FROM schema_migrations", 0,
                  NULL, PGRES_TUPLES_OK, &res);
    for (size_t i = 0; good && i < n; i++) {
        if (is_applied(res, list[i].version))
            continue;
        good = apply_one(run, ctx, &list[i]);
        count++;
    }
    PQclear(res);
    if (good) {
        in_tx = false; /* a failed COMMIT ends the transaction too */
        good = run_ok(run, ctx, "COMMIT", "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL);
    }
    if (in_tx)
        PQclear(run(ctx, "ROLLBACK", 0, NULL)); /* NULL (connection gone): nothing */
    if (!good)
        return CHAT_EIO;
    if (applied)
        *applied = count;
    return CHAT_OK;
}
