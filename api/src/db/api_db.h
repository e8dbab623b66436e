/* api_db.h - one PostgreSQL connection with a client-side deadline on every connect and
 * statement (CHAT_PG_TIMEOUT_MS): a hung server (SIGSTOP, a frozen VM) still has its kernel
 * acknowledge every packet, so neither keepalives nor tcp_user_timeout fire and its
 * statement_timeout does not run. A statement without an answer in time drops the connection
 * (its transaction state is unknown); the next use connects again.
 *
 * Owned by one thread. The process-wide health (struct api_db_health) makes an outage cost one
 * deadline per try, not one per request: while the database is down one thread at a time
 * probes it and the others answer 503 at once (api_db_ready). After a failure nobody tries for
 * as long as the failed try took, up to API_DB_RETRY_MAX_MS: a refused connect (milliseconds)
 * is tried again at once, a hung server not by every request that waited behind the try on its
 * thread (the HTTP server accepts several connections per thread). SQL is parameterised
 * throughout; errors are logged with SQLSTATE and the primary message only (a DETAIL may quote a
 * row, password hash included).
 *
 * A connect is one deadline: the TCP and startup exchange, the SET and the prepares share it, so
 * a try costs at most CHAT_PG_TIMEOUT_MS (the outbox relay's migrations, run in between on its
 * first connect, are statements of their own and do not count against it).
 *
 * Named queries (db/queries/<domain>.sql, db/README.md): every connection prepares the queries
 * of its files (api_db_prepare_on_connect) right after connecting and runs them by name
 * (api_db_qn). A statement the schema refuses (SQLSTATE class 42 or 3F: 42703, 42P01, ...) fails
 * the connect and marks the process not ready, naming the query (api_db_queries_append); any
 * other error of a prepare (57P01, 57014, 55P03, a lost connection) is an outage like a failed
 * connect, and readiness is left alone. The next connect tries again, and while a query is
 * refused the outbox relay prepares them again on its own connection every CHAT_OUTBOX_POLL_MS
 * (api_db_queries_recheck), so fixing the schema heals it even when nothing connects any more. */
#ifndef API_DB_H
#define API_DB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "chat/buf.h"
#include "chat/log.h"

#include "api_queries_gen.h"

#define API_DB_RETRY_MAX_MS 1000 /* the longest pause between tries while down */

struct api_db_health {
    atomic_bool down;         /* the last statement or connect of any thread failed */
    atomic_bool probing;      /* one thread is trying it */
    _Atomic int64_t retry_at; /* while down, no try before (chat_mono_ms) */
    atomic_int failing;       /* 1 + the query (enum api_q) the schema refused last; 0: none */
};

struct api_db;
/* Runs right after a connect, before the queries are prepared (chat-api: the migrations);
 * false fails the connect. */
typedef bool api_db_connected_fn(struct api_db *db, void *arg);

struct api_db {
    PGconn *pg; /* nonblocking; NULL: none (yet, or dropped) */
    const char *dsn;
    const char *app; /* application_name */
    int timeout_ms;
    struct api_db_health *health;    /* shared, may be NULL */
    bool probe;                      /* this thread holds health->probing */
    struct chat_log_limit lim;       /* connect failures and dropped connections */
    unsigned prepare;                /* API_QD_* bits: the query files prepared at connect */
    struct api_db_health *queries;   /* where a query the schema refuses is reported; may be NULL */
    api_db_connected_fn *on_connect; /* may be NULL */
    void *on_connect_arg;
    int64_t until;   /* a connect in progress: its one deadline (chat_mono_ms); 0 otherwise */
    int64_t op_at;   /* when the statement (or connect) under way began (chat_mono_ms) */
    int64_t fail_ms; /* how long the try that failed took (a connect, or a statement that
                      * dropped the connection) since api_db_ready; -1: none */
};

void api_db_init(
    struct api_db *db, const char *dsn, const char *app, int timeout_ms, struct api_db_health *h);
/* A live, idle connection to use now: connects when there is none. False (answer 503) when it
 * cannot, or when the database is down and another thread is already probing it or the pause
 * after the last failure (health->retry_at) has not passed. Pair every true with
 * api_db_done(). */
bool api_db_ready(struct api_db *db);
/* After the work of one request: drops a connection left broken or inside a transaction and
 * updates the shared health (no connection: down; after a failed connect or statement also the
 * pause before the next try, as long as that try took). */
void api_db_done(struct api_db *db);
void api_db_close(struct api_db *db);
/* From the next connect on: prepares the queries of the files in domains (API_QD_* bits) after
 * connecting (a refused one fails the connect and is reported into q, which may be NULL), and
 * runs fn (may be NULL) before that. Call before the first use. */
void api_db_prepare_on_connect(struct api_db *db,
                               unsigned domains,
                               struct api_db_health *q,
                               api_db_connected_fn *fn,
                               void *arg);

/* Runs one statement with parameters (all text) within the deadline. Returns its result, or
 * NULL when there was no connection or it was dropped (logged): PQresultStatus(NULL) is
 * PGRES_FATAL_ERROR and PQclear(NULL) does nothing. */
PGresult *api_db_q(struct api_db *db, const char *sql, int n, const char *const *params);
/* Runs the named query q (prepared at connect: its file must be in the connection's domains)
 * with its n parameters (all text) within the deadline; results as api_db_q. A query this
 * connection did not prepare, or n other than its parameter count, is a bug: logged, NULL. */
PGresult *api_db_qn(struct api_db *db, enum api_q q, int n, const char *const *params);
/* False while a query the schema refused at a connect has not been prepared since (h->failing);
 * readiness. */
bool api_db_queries_good(struct api_db_health *h);
/* While a query is refused (db->queries->failing): prepares this connection's queries again, as
 * the unnamed statement (its named ones stay), in one pipeline within the deadline. All good
 * clears the flag; a query the schema refuses is reported as at a connect; another error changes
 * nothing (a broken connection is dropped). True when no query is refused (then at once, with
 * no round trip); false otherwise, or without a connection (the next connect prepares them). */
bool api_db_queries_recheck(struct api_db *db);
/* Whether SQLSTATE st (NULL: none, e.g. a connection lost) says the statement does not match
 * the schema: class 42 (syntax error or access rule violation: 42601, 42P01, 42703, 42883, ...)
 * or 3F (invalid schema name). Anything else (57P01 admin shutdown, 57014 statement timeout,
 * 55P03 lock timeout, 08xxx, no SQLSTATE) is transient: the same statement may work later. */
bool api_db_schema_error(const char *st);
/* Appends "queries=good\n" or "queries=bad failing=<name>\n" (/readyz). CHAT_OK or the
 * chat_buf error. */
int api_db_queries_append(struct api_db_health *h, struct chat_buf *out);
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
