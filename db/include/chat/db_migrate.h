/* chat/db_migrate.h - the schema migrations (db/migrations/NNNN_name.sql, db/README.md),
 * embedded at build time (db/cmake/embed_migrations.cmake -> chat_db_migrations[]), and applying
 * what a database lacks: in one transaction under pg_advisory_xact_lock(CHAT_DB_LOCK_MIGRATE),
 * so services starting together (the persister, every chat-api replica, chatctl migrate) are
 * safe: whichever comes first applies them, the others find them recorded in schema_migrations.
 *
 * The statements go through a runner, so each caller keeps its own I/O rules: blocking libpq
 * (chat_db_run_conn: the persister, chatctl) or chat-api's deadlines on a nonblocking
 * connection. Thread-safety: the table is constant; chat_db_migrate uses only its runner. */
#ifndef CHAT_DB_MIGRATE_H
#define CHAT_DB_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

#include "chat/err.h"

#define CHAT_DB_LOCK_MIGRATE 0x636861746d696772LL /* "chatmigr": advisory lock for migrations */

struct chat_db_migration {
    int version;      /* NNNN of the file name, > 0, ascending */
    const char *name; /* the file name's _name part */
    const char *sql;  /* the file's text */
};

/* chat_db_migrations_count rows in version order, then a {0} row. */
extern const struct chat_db_migration chat_db_migrations[];
extern const size_t chat_db_migrations_count;

/* Runs one statement: with n text params (params non-NULL), or params NULL and n 0: the simple
 * protocol (sql may hold several statements). Returns the last result (owned by the caller;
 * PQclear), NULL when the connection failed or was dropped. */
typedef PGresult *chat_db_run_fn(void *ctx, const char *sql, int n, const char *const *params);

/* A runner over a blocking PGconn (ctx): PQexec / PQexecParams. */
PGresult *chat_db_run_conn(void *ctx, const char *sql, int n, const char *const *params);

/* Applies every migration of list[0..n) not yet recorded in schema_migrations, all in one
 * transaction under the lock. When all are recorded it sends no DDL and takes no lock (one
 * SELECT), so a role without CREATE rights passes once another service migrated. *applied (may be
 * NULL) gets the number applied. Returns CHAT_OK, or CHAT_EIO (logged once with SQLSTATE and
 * primary message; rolled back when the connection still answers). */
CHAT_NODISCARD int chat_db_migrate(
    chat_db_run_fn *run, void *ctx, const struct chat_db_migration *list, size_t n, int *applied);

#endif
