/* api_db.h - one PostgreSQL connection with a client-side deadline on every connect and
 * statement (CHAT_PG_TIMEOUT_MS): a hung server (SIGSTOP, a frozen VM) still has its kernel
 * acknowledge every packet, so neither keepalives nor tcp_user_timeout fire and its
 * statement_timeout does not run. A statement without an answer in time drops the connection
 * (its transaction state is unknown); the next use connects again.
 *
 * Owned by one thread. The process-wide health (struct api_db_health) makes an outage cost one
 * deadline per try, not one per request: while the database is down one thread at a time
 * probes it and the others answer 503 at once (api_db_ready). SQL is parameterised
 * throughout; errors are logged with SQLSTATE and the primary message only (a DETAIL may quote a
 * row, password hash included). */
#ifndef API_DB_H
#define API_DB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "chat/log.h"

struct api_db_health {
    atomic_bool down;    /* the last statement or connect of any thread failed */
    atomic_bool probing; /* one thread is trying it */
};

struct api_db {
    PGconn *pg; /* nonblocking; NULL: none (yet, or dropped) */
    const char *dsn;
    const char *app; /* application_name */
    int timeout_ms;
    struct api_db_health *health; /* shared, may be NULL */
    bool probe;                   /* this thread holds health->probing */
    struct chat_log_limit lim;    /* connect failures and dropped connections */
};

void api_db_init(
    struct api_db *db, const char *dsn, const char *app, int timeout_ms, struct api_db_health *h);
/* A live, idle connection to use now: connects when there is none. False (answer 503) when it
 * cannot, or when the database is down and another thread is already probing it. Pair every
 * true with api_db_done(). */
bool api_db_ready(struct api_db *db);
/* After the work of one request: drops a connection left broken or inside a transaction and
 * updates the shared health. */
void api_db_done(struct api_db *db);
void api_db_close(struct api_db *db);

/* Runs one statement with parameters (all text) within the deadline. Returns its result, or
 * NULL when there was no connection or it was dropped (logged): PQresultStatus(NULL) is
 * PGRES_FATAL_ERROR and PQclear(NULL) does nothing. */
PGresult *api_db_q(struct api_db *db, const char *sql, int n, const char *const *params);
/* A statement without parameters (simple protocol: may hold several). */
PGresult *api_db_simple(struct api_db *db, const char *sql);
/* True when r has status want; otherwise logs (what), clears r and returns false. */
bool api_db_ok(PGresult *r, ExecStatusType want, const char *what);
/* Runs a command (BEGIN, COMMIT, ...); true when it succeeded. */
bool api_db_cmd(struct api_db *db, const char *sql);
/* ROLLBACK when inside a transaction (a failure leaves the connection dropped). */
void api_db_rollback(struct api_db *db);
bool api_db_unique_violation(const PGresult *r);
/* Logs a failed result: SQLSTATE and primary message. Nothing for NULL. */
void api_db_log_error(const PGresult *r, const char *what);
int64_t api_db_ll(const PGresult *r, int row, int col);
/* Waits up to ms for input on the connection (notifications); false on an error. */
bool api_db_wait_input(struct api_db *db, int ms, int wake_fd);

#endif
