/* api_db.c - PostgreSQL with deadlines (api_db.h). */
#include "api_db.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <poll.h>

#include "chat/time.h"

#define DB_LOG_EVERY_MS 10000 /* one line per connection owner this often during an outage */

void api_db_init(
    struct api_db *db, const char *dsn, const char *app, int timeout_ms, struct api_db_health *h)
{
    memset(db, 0, sizeof(*db));
    db->dsn = dsn;
    db->app = app;
    db->timeout_ms = timeout_ms;
    db->health = h;
}

static void db_log(struct api_db *db, const char *what, const char *why)
{
    long skipped;

    if (chat_log_every(&db->lim, DB_LOG_EVERY_MS, &skipped))
        chat_log(CHAT_LOG_WARN, "postgres (%s): %s: %s (%ld more suppressed)", db->app, what, why,
                 skipped);
}

static void db_drop(struct api_db *db, const char *why)
{
    db->fail_ms = chat_mono_ms() - db->op_at;
    db_log(db, "connection dropped", why);
    PQfinish(db->pg); /* nonblocking: never waits for the server */
    db->pg = NULL;
}

/* Waits for events on fd until deadline (chat_mono_ms). 1 ready, 0 deadline, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    if (fd < 0)
        return -1;
    for (;;) {
        int64_t left = deadline - chat_mono_ms();
        int rc;

        if (left <= 0)
            return 0;
        rc = poll(&pfd, 1, (int)left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* How exec_within sends: text, parameters, a prepare, a prepared statement. */
enum send_kind { SEND_SIMPLE, SEND_PARAMS, SEND_PREPARE, SEND_PREPARED };

static int send_one(PGconn *pg,
                    enum send_kind kind,
                    const char *name,
                    const char *sql,
                    int n,
                    const char *const *params)
{
    switch (kind) {
    case SEND_SIMPLE:
        return PQsendQuery(pg, sql);
    case SEND_PARAMS:
        return PQsendQueryParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    case SEND_PREPARE:
        return PQsendPrepare(pg, name, sql, 0, NULL);
    case SEND_PREPARED:
        return PQsendQueryPrepared(pg, name, n, params, NULL, NULL, 0);
    }
    return 0;
}

/* Sends one statement (name: the prepared statement's, for SEND_PREPARE and SEND_PREPARED) and
 * waits for its result within the deadline. */
static PGresult *exec_within(struct api_db *db,
                             enum send_kind kind,
                             const char *name,
                             const char *sql,
                             int n,
                             const char *const *params)
{
    int64_t deadline = db->until ? db->until : chat_mono_ms() + db->timeout_ms;

    db->op_at = deadline - db->timeout_ms; /* when this statement (or the connect) began */
    char why[64];
    PGresult *res = NULL, *r;
    int rc;

    if (!db->pg)
        return NULL; /* dropped earlier in this request */
    if (!send_one(db->pg, kind, name, sql, n, params)) {
        db_drop(db, PQerrorMessage(db->pg));
        return NULL;
    }
    rc = 1;
    for (;;) { /* nonblocking: the rest of a long statement */
        int f = PQflush(db->pg);

        if (f <= 0) {
            rc = f < 0 ? -1 : 1;
            break;
        }
        rc = wait_fd(PQsocket(db->pg), POLLIN | POLLOUT, deadline);
        if (rc <= 0)
            break;
        if (!PQconsumeInput(db->pg)) {
            rc = -1;
            break;
        }
    }
    while (rc > 0) {
        if (PQisBusy(db->pg)) {
            rc = wait_fd(PQsocket(db->pg), POLLIN, deadline);
            if (rc > 0 && !PQconsumeInput(db->pg))
                rc = -1;
            continue;
        }
        r = PQgetResult(db->pg);
        if (!r)
            return res;
        if (res && PQresultStatus(res) == PGRES_FATAL_ERROR) {
            PQclear(r);
        } else {
            PQclear(res);
            res = r;
        }
    }
    PQclear(res);
    if (rc == 0)
        snprintf(why, sizeof(why), "no answer within CHAT_PG_TIMEOUT_MS (%d ms)", db->timeout_ms);
    db_drop(db, rc == 0 ? why : PQerrorMessage(db->pg));
    return NULL;
}

PGresult *api_db_q(struct api_db *db, const char *sql, int n, const char *const *params)
{
    return exec_within(db, SEND_PARAMS, NULL, sql, n, params);
}

PGresult *api_db_qn(struct api_db *db, enum api_q q, int n, const char *const *params)
{
    const struct chat_db_query *def;

    if ((unsigned)q >= API_Q__COUNT)
        return NULL;
    def = &api_queries[q];
    if (!(db->prepare & def->domain_bit) || n != def->nparams) {
        chat_log(CHAT_LOG_ERROR,
                 "postgres (%s): query %s run with %d parameters (%d) or not prepared", db->app,
                 def->name, n, def->nparams);
        return NULL;
    }
    return exec_within(db, SEND_PREPARED, def->name, NULL, n, params);
}

PGresult *api_db_simple(struct api_db *db, const char *sql)
{
    return exec_within(db, SEND_SIMPLE, NULL, sql, 0, NULL);
}

void api_db_prepare_on_connect(struct api_db *db,
                               unsigned domains,
                               struct api_db_health *q,
                               api_db_connected_fn *fn,
                               void *arg)
{
    db->prepare = domains;
    db->queries = q;
    db->on_connect = fn;
    db->on_connect_arg = arg;
}

bool api_db_queries_good(struct api_db_health *h)
{
    return atomic_load(&h->failing) == 0;
}

int api_db_queries_append(struct api_db_health *h, struct chat_buf *out)
{
    int f = atomic_load(&h->failing);

    if (f <= 0 || f > API_Q__COUNT)
        return chat_buf_appends(out, "queries=good\n");
    return chat_buf_appendf(out, "queries=bad failing=%s\n", api_queries[f - 1].name);
}

bool api_db_schema_error(const char *st)
{
    /* class 42: syntax error or access rule violation (undefined table, column, function, ...);
     * class 3F: invalid schema name (a schema-qualified name whose schema is gone) */
    return st && strlen(st) == 5 && (strncmp(st, "42", 2) == 0 || strncmp(st, "3F", 2) == 0);
}

/* A prepare that failed: a query the schema refused is reported (readiness) and logged once per
 * change of the failing query, with SQLSTATE and the primary message; any other error (the
 * server shutting down, a timeout, a lock wait) is an outage, logged like a failed connect. */
static void prepare_failed(struct api_db *db, int q, const PGresult *r)
{
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    char why[256];

    if (!api_db_schema_error(st)) {
        snprintf(why, sizeof(why), "query %s: %s %s (not a schema mismatch)", api_queries[q].name,
                 st ? st : "-", msg ? msg : PQresStatus(PQresultStatus(r)));
        db_log(db, "cannot prepare", why);
        return;
    }
    if (db->queries && atomic_exchange(&db->queries->failing, q + 1) == q + 1)
        return;
    chat_log(CHAT_LOG_ERROR,
             "postgres (%s): query %s (db/queries/%s.sql) does not match the schema: %s %s; not "
             "ready until it does (tried again at every connect, and by the outbox relay every "
             "CHAT_OUTBOX_POLL_MS)",
             db->app, api_queries[q].name, api_queries[q].domain, st ? st : "-",
             msg ? msg : PQresStatus(PQresultStatus(r)));
}

/* Sends everything libpq holds, reading what arrives meanwhile, until deadline: 1 sent, 0 the
 * deadline passed, -1 the connection broke. */
static int flush_within(PGconn *pg, int64_t deadline)
{
    for (;;) {
        int f = PQflush(pg), rc;

        if (f <= 0)
            return f < 0 ? -1 : 1;
        rc = wait_fd(PQsocket(pg), POLLIN | POLLOUT, deadline);
        if (rc <= 0)
            return rc;
        if (!PQconsumeInput(pg))
            return -1;
    }
}

/* The next result of a pipeline within deadline (NULL after a query's last one); *rc 0 or -1
 * when none came in time or the connection broke. */
static PGresult *next_within(PGconn *pg, int64_t deadline, int *rc)
{
    *rc = 1;
    while (PQisBusy(pg)) {
        *rc = wait_fd(PQsocket(pg), POLLIN, deadline);
        if (*rc <= 0)
            return NULL;
        if (!PQconsumeInput(pg)) {
            *rc = -1;
            return NULL;
        }
    }
    return PQgetResult(pg);
}

/* Prepares the connection's queries in one pipeline (one round trip for all of them, not one
 * each: a new connection is ready in about the time of one statement), within the deadline (a
 * connect's, else one of its own); unnamed: each as the unnamed statement (a check that leaves
 * the named ones alone). A query the schema refuses is reported by name (the queries after it
 * are aborted by the server). False when one failed (the connection may have been dropped). */
static bool prepare_all(struct api_db *db, bool unnamed)
{
    int64_t deadline = db->until ? db->until : chat_mono_ms() + db->timeout_ms;

    db->op_at = deadline - db->timeout_ms; /* when this statement (or the connect) began */
    int rc = 1, failed = -1, sent[API_Q__COUNT], nsent = 0, f;
    char why[64];

    if (!PQenterPipelineMode(db->pg)) {
        db_drop(db, PQerrorMessage(db->pg));
        return false;
    }
    for (int q = 0; q < API_Q__COUNT; q++) {
        const struct chat_db_query *def = &api_queries[q];
        if (!(db->prepare & def->domain_bit))
            continue;
        if (!PQsendPrepare(db->pg, unnamed ? "" : def->name, def->sql, 0, NULL)) {
            db_drop(db, PQerrorMessage(db->pg));
            return false;
        }
        sent[nsent++] = q;
    }
    if (!PQpipelineSync(db->pg) || (rc = flush_within(db->pg, deadline)) <= 0)
        goto broken;
    for (int i = 0; i < nsent; i++) { /* each prepare: its result, then NULL */
        PGresult *r = next_within(db->pg, deadline, &rc);
        if (rc <= 0)
            goto broken;
        if (r && PQresultStatus(r) != PGRES_COMMAND_OK && failed < 0 &&
            PQresultStatus(r) != PGRES_PIPELINE_ABORTED) {
            failed = sent[i];
            prepare_failed(db, sent[i], r);
        }
        PQclear(r);
        if (r && (r = next_within(db->pg, deadline, &rc)) != NULL) /* the NULL after it */
            PQclear(r);
        if (rc <= 0)
            goto broken;
    }
    for (;;) { /* the sync point */
        PGresult *r = next_within(db->pg, deadline, &rc);
        bool sync = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (rc <= 0)
            goto broken;
        if (sync)
            break;
    }
    if (!PQexitPipelineMode(db->pg)) {
        db_drop(db, PQerrorMessage(db->pg));
        return false;
    }
    if (failed >= 0)
        return false;
    f = db->queries ? atomic_load(&db->queries->failing) : 0;
    if (f > 0 && f <= API_Q__COUNT && (api_queries[f - 1].domain_bit & db->prepare) &&
        atomic_compare_exchange_strong(&db->queries->failing, &f, 0))
        chat_log(CHAT_LOG_INFO, "postgres (%s): query %s matches the schema again", db->app,
                 api_queries[f - 1].name);
    return true;
broken:
    if (rc == 0)
        snprintf(why, sizeof(why), "no answer within CHAT_PG_TIMEOUT_MS (%d ms)", db->timeout_ms);
    db_drop(db, rc == 0 ? why : PQerrorMessage(db->pg));
    return false;
}

bool api_db_queries_recheck(struct api_db *db)
{
    if (!db->queries || api_db_queries_good(db->queries))
        return true;
    if (!db->pg)
        return false;
    return prepare_all(db, true) && api_db_queries_good(db->queries);
}

void api_db_log_error(const PGresult *r, const char *what)
{
    if (!r)
        return;
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

    chat_log(CHAT_LOG_WARN, "postgres: %s: %s %s", what, st ? st : "-",
             msg ? msg : PQresStatus(PQresultStatus(r)));
}

bool api_db_ok(PGresult *r, ExecStatusType want, const char *what)
{
    if (PQresultStatus(r) == want)
        return true;
    api_db_log_error(r, what);
    PQclear(r);
    return false;
}

bool api_db_unique_violation(const PGresult *r)
{
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return st && strcmp(st, "23505") == 0;
}

bool api_db_cmd(struct api_db *db, const char *sql)
{
    PGresult *r = api_db_simple(db, sql);
    bool good = api_db_ok(r, PGRES_COMMAND_OK, sql);
    if (good)
        PQclear(r);
    return good;
}

void api_db_rollback(struct api_db *db)
{
    if (db->pg && PQtransactionStatus(db->pg) != PQTRANS_IDLE)
        PQclear(api_db_simple(db, "ROLLBACK"));
}

int64_t api_db_ll(const PGresult *r, int row, int col)
{
    long long v = 0;
    (void)sscanf(PQgetvalue(r, row, col), "%lld", &v);
    return v;
}

/* Runs the connect hook (the relay's migrations) with the connect's clock stopped: its
 * statements have a deadline each, and the prepare after it gets what the connect had left. */
static bool run_on_connect(struct api_db *db)
{
    int64_t left = db->until - chat_mono_ms();
    bool good;

    if (!db->on_connect)
        return true;
    db->until = 0;
    good = db->on_connect(db, db->on_connect_arg);
    db->until = chat_mono_ms() + (left > 0 ? left : 0);
    return good;
}

/* The startup exchange within db->until: a hung server's kernel accepts the TCP connection, and
 * only the deadline ends the wait for the startup answer (libpq's connect_timeout counts whole
 * seconds and PQconnectPoll ignores it). The connection, or NULL (logged). */
static PGconn *start_within(struct api_db *db)
{
    char user_timeout[16];
    /* the DSN comes last: its own settings win over these defaults */
    const char *keys[] = {
        "application_name", "keepalives",       "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
    const char *vals[] = {db->app, "1", "5", "2", "3", user_timeout, db->dsn, NULL};
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    char why[64];
    PGconn *pg;

    snprintf(user_timeout, sizeof(user_timeout), "%d", db->timeout_ms);
    pg = PQconnectStartParams(keys, vals, 1);
    if (!pg) {
        db_log(db, "cannot connect", "out of memory");
        return NULL;
    }
    while (PQstatus(pg) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        int rc = wait_fd(PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, db->until);

        if (rc == 0) {
            snprintf(why, sizeof(why), "no answer within CHAT_PG_TIMEOUT_MS (%d ms)",
                     db->timeout_ms);
            db_log(db, "cannot connect", why);
            PQfinish(pg);
            return NULL;
        }
        st = rc > 0 ? PQconnectPoll(pg) : PGRES_POLLING_FAILED;
    }
    if (st != PGRES_POLLING_OK || PQstatus(pg) != CONNECTION_OK) {
        /* PQerrorMessage may name host and user, never the password */
        db_log(db, "cannot connect", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    PQsetErrorVerbosity(pg, PQERRORS_TERSE);
    if (PQsetnonblocking(pg, 1) != 0) {
        db_log(db, "cannot connect", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* Connects, sets statement_timeout and prepares the queries, all within one deadline
 * (CHAT_PG_TIMEOUT_MS from now): a try costs at most that, whichever step the server stops
 * answering in (the relay's migrations in between do not count: run_on_connect). */
static bool db_connect(struct api_db *db)
{
    char stmt[64];
    int64_t t0 = chat_mono_ms();
    bool good;

    db->until = t0 + db->timeout_ms;
    db->pg = start_within(db);
    /* the server's own bound too: a slow statement stops there as well */
    snprintf(stmt, sizeof(stmt), "SET statement_timeout = %d", db->timeout_ms);
    good = db->pg && api_db_cmd(db, stmt) && run_on_connect(db) && prepare_all(db, false);
    db->until = 0;
    if (!good) {
        PQfinish(db->pg); /* NULL when already dropped: nothing */
        db->pg = NULL;
        db->fail_ms = chat_mono_ms() - t0;
    }
    return good;
}

/* A kept connection the server has closed since its last use (a restart sends a FATAL
 * message and closes; a crash closes): its socket is readable while it should be idle. Found
 * before a statement is sent, so no statement is lost to it and none needs a retry. */
static bool stale(struct api_db *db)
{
    struct pollfd pfd = {.fd = PQsocket(db->pg), .events = POLLIN};

    bool said = false;
    PGresult *r;

    if (pfd.fd < 0)
        return true;
    if (poll(&pfd, 1, 0) <= 0)
        return false; /* nothing waiting: as good as we can know without a round trip */
    /* the server's FATAL message arrives first, its close after: read while there is more (a
     * read that finds the close fails), a few times at most */
    for (int i = 0; i < 4 && poll(&pfd, 1, 0) > 0; i++)
        if (!PQconsumeInput(db->pg) || PQstatus(db->pg) != CONNECTION_OK)
            return true;
    for (PGnotify *n; (n = PQnotifies(db->pg)) != NULL;) /* LISTEN: harmless */
        PQfreemem(n);
    /* anything else said to an idle connection is an error: the server is leaving */
    while (!PQisBusy(db->pg) && (r = PQgetResult(db->pg)) != NULL) {
        said = true;
        PQclear(r);
    }
    return said || PQisBusy(db->pg);
}

bool api_db_ready(struct api_db *db)
{
    struct api_db_health *h = db->health;
    bool expected = false;

    db->probe = false;
    db->fail_ms = -1;
    if (h && atomic_load(&h->down)) {
        if (chat_mono_ms() < atomic_load(&h->retry_at))
            return false; /* a try failed a moment ago */
        if (!atomic_compare_exchange_strong(&h->probing, &expected, true))
            return false; /* another thread is finding out */
        db->probe = true;
        if (db->pg) /* a connection from before the outage: try it fresh */
            api_db_close(db);
    }
    if (db->pg && stale(db)) {
        db_log(db, "connection closed by the server", "connecting again");
        api_db_close(db);
    }
    if (db->pg || db_connect(db))
        return true;
    api_db_done(db);
    return false;
}

void api_db_done(struct api_db *db)
{
    struct api_db_health *h = db->health;

    /* never reused in an unknown or unfinished state */
    if (db->pg &&
        (PQstatus(db->pg) != CONNECTION_OK || PQtransactionStatus(db->pg) != PQTRANS_IDLE)) {
        PQfinish(db->pg);
        db->pg = NULL;
    }
    if (h) {
        if (!db->pg && db->fail_ms >= 0) /* as long as the failed try took, within bounds */
            atomic_store(&h->retry_at, chat_mono_ms() + (db->fail_ms < API_DB_RETRY_MAX_MS
                                                             ? db->fail_ms
                                                             : API_DB_RETRY_MAX_MS));
        atomic_store(&h->down, db->pg == NULL);
        if (db->probe)
            atomic_store(&h->probing, false);
    }
    db->probe = false;
}

void api_db_close(struct api_db *db)
{
    PQfinish(db->pg);
    db->pg = NULL;
}

bool api_db_wait_input(struct api_db *db, int ms, int wake_fd)
{
    struct pollfd pfd[2] = {{.fd = db->pg ? PQsocket(db->pg) : -1, .events = POLLIN},
                            {.fd = wake_fd, .events = POLLIN}};
    int rc;

    if (pfd[0].fd < 0)
        return false;
    rc = poll(pfd, wake_fd >= 0 ? 2 : 1, ms);
    if (rc < 0 && errno != EINTR)
        return false;
    if (rc > 0 && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(db->pg)) {
        db_drop(db, PQerrorMessage(db->pg));
        return false;
    }
    return true;
}
