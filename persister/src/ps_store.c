/* ps_store.c - the PostgreSQL side of the persister: connection and reconnection (session
 * timeouts, TCP keepalive and user timeout), schema (migrations), daily partitions (cached set of
 * known days, rolled ahead on every tick, created under an advisory lock with a lock_timeout),
 * the batch write (one transaction: COPY; on a replay one prepared INSERT ... SELECT FROM
 * unnest($1..$10) ON CONFLICT DO NOTHING RETURNING id, then the stored Kafka positions of the
 * conflicting ids; then the rooms' last_seq/last_message_at) and the read markers of
 * chat.events (ps_store_apply_reads).
 * Blocking libpq on the main thread, but for the batch write: "BEGIN; COPY ..." blocks for one
 * short round trip, then the COPY data (binary), the rooms update and COMMIT go out on the
 * non-blocking connection and ps_store_write_poll collects their results; see ps.h. Never logs row
 * data: errors are logged with their SQLSTATE and primary message only. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <poll.h>

#include "chat/config.h"
#include "chat/db_migrate.h"
#include "chat/hash.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "ps.h"

#define INSERT_NAME "ps_insert"
#define INSERT_SQL                                                                                \
    "INSERT INTO messages (id, room, kafka_partition, kafka_offset, user_id, nick, body,"         \
    " client_msg_id, created_at, kind, target_id)"                                                \
    " SELECT t.id, t.room, t.kp, t.ko, t.u, t.n, t.b, t.c,"                                       \
    " timestamptz 'epoch' + t.ts * interval '1 millisecond', t.k, t.tg"                           \
    " FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::bigint[], $5::text[], $6::text[]," \
    " $7::text[], $8::text[], $9::bigint[], $10::text[], $11::bigint[])"                          \
    " AS t(id, room, kp, ko, u, n, b, c, ts, k, tg)"                                              \
    " ON CONFLICT DO NOTHING RETURNING id"
/* The messages deleted by the batch's message_deleted rows ($1 ids, $2 rooms, $3 by, $4 ts ms,
 * pairwise), and their message_edited rows (history gives those without their text), in the
 * batch's transaction: the message and its edits are earlier in the same partition, so they are
 * stored already (this batch or before). A message deleted already keeps its first delete. */
#define DELETES_NAME "ps_deletes"
#define DELETES_SQL                                                                             \
    "UPDATE messages m SET deleted_at = timestamptz 'epoch' + t.ts * interval '1 millisecond'," \
    " deleted_by = t.by"                                                                        \
    " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS t(id, room, by, ts)"   \
    " WHERE m.room = t.room AND m.deleted_at IS NULL"                                           \
    " AND ((m.id = t.id AND m.kind = 'message')"                                                \
    " OR (m.target_id = t.id AND m.kind = 'message_edited'))"
/* The messages edited by the batch's message_edited rows ($1 ids, $2 rooms, $3 texts, $4 ts ms,
 * $5 offsets, pairwise), in the batch's transaction: per message the edit latest in the stream,
 * applied unless a later edit of it is stored already (a replayed batch); the text it was sent
 * with is kept in original_body. A deleted message takes its edits too (chat-api may have
 * deleted the row before the edit ahead of the delete was stored): the administration API shows
 * its last text, history none. */
#define EDITS_NAME "ps_edits"
#define EDITS_SQL                                                                             \
    "UPDATE messages m SET original_body = COALESCE(m.original_body, m.body), body = t.text," \
    " edited_at = timestamptz 'epoch' + t.ts * interval '1 millisecond', edit_offset = t.off" \
    " FROM (SELECT DISTINCT ON (u.id, u.room) u.id, u.room, u.text, u.ts, u.off"              \
    " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])"          \
    " AS u(id, room, text, ts, off) ORDER BY u.id, u.room, u.off DESC) AS t"                  \
    " WHERE m.id = t.id AND m.room = t.room AND m.kind = 'message'"                           \
    " AND (m.edit_offset IS NULL OR m.edit_offset < t.off)"
/* The batch's edit rows ($1 ids: the edited messages) of a message that is deleted already
 * (chat-api marks the row at once; its message_deleted may be stored in a later batch): without
 * their text in history from the start, as the stored ones chat-api marked. */
#define EDITS_HIDE_NAME "ps_edits_hide"
#define EDITS_HIDE_SQL                                                                     \
    "UPDATE messages e SET deleted_at = m.deleted_at, deleted_by = m.deleted_by"           \
    " FROM messages m WHERE e.target_id = ANY($1::bigint[]) AND e.kind = 'message_edited'" \
    " AND e.deleted_at IS NULL AND m.id = e.target_id AND m.room = e.room"                 \
    " AND m.kind = 'message' AND m.deleted_at IS NOT NULL"
/* Kafka positions of stored rows by primary key; $1 ids, $2 ts (ms), pairwise. */
#define STORED_NAME "ps_stored"
#define STORED_SQL                                                             \
    "SELECT m.id, m.kafka_partition, m.kafka_offset FROM messages m"           \
    " JOIN unnest($1::bigint[], $2::bigint[]) AS t(id, ts)"                    \
    " ON m.created_at = timestamptz 'epoch' + t.ts * interval '1 millisecond'" \
    " AND m.id = t.id"
/* The rooms of a batch: their newest seq and message time ($1 rooms, $2 seqs, $3 ts ms,
 * pairwise), in the batch's transaction. Rooms without a row (ad-hoc ones) are not touched. */
#define ROOMS_NAME "ps_rooms"
#define ROOMS_SQL                                                                               \
    "UPDATE rooms r SET last_seq = GREATEST(r.last_seq, t.seq),"                                \
    " last_message_at = GREATEST(r.last_message_at,"                                            \
    " timestamptz 'epoch' + t.ts * interval '1 millisecond')"                                   \
    " FROM (SELECT u.room, max(u.seq) AS seq, max(u.ts) AS ts"                                  \
    " FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(room, seq, ts) GROUP BY u.room)" \
    " AS t WHERE r.id = t.room"
/* Read markers ($1 user ids, $2 rooms, $3 seqs; unique (user, room) pairs): active members
 * only, never backwards. */
#define READS_NAME "ps_reads"
#define READS_SQL                                                             \
    "UPDATE room_members m SET last_read_seq = t.seq"                         \
    " FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS t(u, room, seq)" \
    " WHERE m.room_id = t.room AND m.user_id = t.u AND m.state = 'active'"    \
    " AND m.last_read_seq < t.seq"
#define SESSION_SQL                                      \
    "SELECT set_config('statement_timeout', $1, false)," \
    " set_config('lock_timeout', $2, false)"
#define LOG_EVERY_MS 10000 /* rate limit of repeated warnings */
#define LIST_PARTITIONS_SQL                                                     \
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid" \
    " WHERE i.inhparent = 'messages'::regclass"
#define PING_IDLE_MS              5000
#define BACKOFF_MIN_MS            100
#define BACKOFF_MAX_MS            5000
#define SQLSTATE_CHECK_VIOLATION  "23514" /* also "no partition of relation ... found for row" */
#define SQLSTATE_UNIQUE_VIOLATION "23505"
#define NO_RESULT                 1 /* s->wres: no result of the current statement yet */
/* bytes per CopyData message: the server parses a message only once it has all of it */
#define COPY_CHUNK (64 << 10)
#define COPY_SQL                                                                                   \
    "COPY messages (id, room, kafka_partition, kafka_offset, user_id, nick, body, client_msg_id, " \
    "created_at, kind, target_id) FROM STDIN (FORMAT binary)"

/* Copies msg without its trailing newlines into out[len]. */
static void one_line(char *out, size_t len, const char *msg)
{
    size_t n;

    (void)snprintf(out, len, "%s", msg ? msg : "");
    n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\n' || out[i] == '\r')
            out[i] = ' ';
}

void ps_pg_log_error(PGconn *conn, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char line[512];

    one_line(line, sizeof(line), primary ? primary : PQerrorMessage(conn));
    chat_log(CHAT_LOG_ERROR, "postgres: %s failed: %s sqlstate=%s", what, line,
             state ? state : "-");
}

int ps_pg_exec(PGconn *conn, const char *what, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = CHAT_OK;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        ps_pg_log_error(conn, res, what);
        rc = CHAT_EIO;
    }
    PQclear(res);
    return rc;
}

static void notice_cb(void *arg, const char *msg)
{
    char line[512];

    (void)arg;
    one_line(line, sizeof(line), msg);
    chat_log(CHAT_LOG_DEBUG, "postgres notice: %s", line);
}

void ps_store_init(struct ps_store *s,
                   const struct ps_cfg *cfg,
                   struct ps_metrics *m,
                   atomic_int *stop,
                   atomic_llong *stop_at)
{
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->m = m;
    s->backoff_ms = BACKOFF_MIN_MS;
    if (ps_guard_start(&s->guard, stop, stop_at, PS_DRAIN_MS, &m->pg_cut) != CHAT_OK)
        chat_log(CHAT_LOG_ERROR, "postgres: no guard thread: a hung server is waited for");
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_init(&s->cols[i], 0, 0);
    for (int i = 0; i < 3; i++)
        chat_buf_init(&s->rcols[i], 0, 0);
}

/* Stops the guard watching the connection. Returns true (logged) when it cut the operation. */
static bool guard_off(struct ps_store *s)
{
    if (!s->guard_armed)
        return false;
    s->guard_armed = false;
    if (!ps_guard_disarm(&s->guard))
        return false;
    chat_log(CHAT_LOG_WARN,
             "postgres: an operation had no end within %d ms (a hung server?) or a stop gave up"
             " on it: connection dropped",
             s->cfg->pg_hang_timeout_ms);
    return true;
}

static void store_close(struct ps_store *s)
{
    (void)guard_off(s); /* before the socket is closed (its number could be reused at once) */
    if (s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
        chat_log(CHAT_LOG_WARN, "postgres: disconnected");
    }
    chat_metric_set(&s->m->pg_up, 0);
}

/* The guard (ps_guard.c) watches the connection from the outermost guarded call to its end:
 * after cfg->pg_hang_timeout_ms, or once a stop gives up, the socket is shut down and the call
 * in progress fails. A connection made inside a guarded call is watched from then on. */
static void guard_begin(struct ps_store *s)
{
    int fd;

    s->guard_depth++;
    if (s->guard_armed || !s->conn || (fd = PQsocket(s->conn)) < 0)
        return;
    ps_guard_arm(&s->guard, fd, chat_mono_ms() + s->cfg->pg_hang_timeout_ms);
    s->guard_armed = true;
}

static void guard_end(struct ps_store *s)
{
    if (--s->guard_depth > 0)
        return;
    if (guard_off(s))
        store_close(s); /* its socket is shut down: unusable even if the call ended well */
}

/* After a failed operation: counts it and drops a broken connection. */
static void after_error(struct ps_store *s)
{
    chat_metric_add(&s->m->pg_errors, 1);
    if (s->conn && PQstatus(s->conn) != CONNECTION_OK)
        store_close(s);
}

void ps_store_fini(struct ps_store *s)
{
    (void)guard_off(s);
    if (s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    ps_guard_stop(&s->guard);
    ps_days_fini(&s->days);
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_fini(&s->cols[i]);
    for (int i = 0; i < 3; i++)
        chat_buf_fini(&s->rcols[i]);
    CHAT_FREE(s->rmax);
    s->rmax_cap = 0;
}

/* Loads the names of messages' partitions into the known-day set. */
static int load_partitions(struct ps_store *s)
{
    PGresult *res = PQexec(s->conn, LIST_PARTITIONS_SQL);
    int rc = CHAT_OK;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ps_pg_log_error(s->conn, res, "listing partitions");
        rc = CHAT_EIO;
        goto out;
    }
    ps_days_clear(&s->days);
    for (int i = 0; i < PQntuples(res); i++) {
        int32_t day;
        if (ps_partition_parse(PQgetvalue(res, i, 0), &day) == CHAT_OK)
            ps_days_add(&s->days, day);
    }
    chat_log(CHAT_LOG_DEBUG, "postgres: %zu day partitions exist", s->days.n);
out:
    PQclear(res);
    return rc;
}

/* Runs the partition DDL; a failure (lock_timeout behind a long reader, usually) is logged
 * rate-limited with its SQLSTATE, as it repeats every part_retry_ms while the reader stays. */
static int exec_quiet(struct ps_store *s, const char *sql)
{
    PGresult *res = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    long suppressed = 0;
    int rc = CHAT_OK;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = CHAT_EIO;
        if (chat_log_every(&s->ddl_log, LOG_EVERY_MS, &suppressed)) {
            ps_pg_log_error(s->conn, res, "creating partitions");
            if (suppressed > 0)
                chat_log(CHAT_LOG_WARN, "postgres: %ld more partition DDL failures not logged",
                         suppressed);
        }
    }
    PQclear(res);
    return rc;
}

/* Adds day to the list out[*n] (capacity cap) unless known or already listed. */
static void want_day(const struct ps_store *s, int32_t day, int32_t *out, size_t *n, size_t cap)
{
    if (day > PS_DAY_MAX || ps_days_has(&s->days, day))
        return;
    for (size_t i = 0; i < *n; i++)
        if (out[i] == day)
            return;
    if (*n < cap)
        out[(*n)++] = day;
}

/* Creates, in one round trip and transaction under PS_LOCK_PARTITION (with the DDL
 * lock_timeout), the partitions of each day in days[] not known to exist together with the
 * `ahead` days after it. */
static int ensure_days(struct ps_store *s, const int32_t *days, size_t ndays, int ahead)
{
    size_t cap = ndays * ((size_t)ahead + 1), n = 0;
    int32_t *missing;
    struct chat_buf sql;
    int rc = CHAT_OK;

    for (size_t i = 0; i < ndays && n == 0; i++)
        if (!ps_days_has(&s->days, days[i]))
            n = 1;
    if (n == 0)
        return CHAT_OK; /* the common case: no allocation, no round trip */
    n = 0;
    missing = chat_xmalloc(cap * sizeof(*missing));
    for (size_t i = 0; i < ndays; i++)
        if (!ps_days_has(&s->days, days[i]))
            for (int k = 0; k <= ahead; k++)
                want_day(s, days[i] + k, missing, &n, cap);
    chat_buf_init(&sql, 0, 0);
    /* lock_timeout first: it bounds the advisory lock wait too, and the ACCESS EXCLUSIVE
     * request on messages that every other session queues behind while it waits */
    rc = chat_buf_appendf(&sql,
                          "SET LOCAL lock_timeout = %d;\nSELECT pg_advisory_xact_lock(%lld);\n",
                          s->cfg->part_lock_timeout_ms, (long long)PS_LOCK_PARTITION);
    for (size_t i = 0; i < n && rc == CHAT_OK; i++)
        rc = ps_partition_ddl(&sql, missing[i]);
    if (rc == CHAT_OK && n > 0) {
        /* Several statements in one simple query run as one implicit transaction, so the
         * advisory lock is held until all partitions exist. */
        rc = exec_quiet(s, chat_buf_data(&sql));
        if (rc == CHAT_OK) {
            for (size_t i = 0; i < n; i++)
                ps_days_add(&s->days, missing[i]);
            chat_metric_add(&s->m->partitions_created, (long long)n);
            char first[PS_PART_NAME_MAX] = "";
            if (ps_partition_name(missing[0], first, sizeof(first)) != CHAT_OK)
                first[0] = '\0'; /* cannot happen: missing[] holds valid days */
            chat_log(CHAT_LOG_INFO, "postgres: ensured %zu day partitions from %s", n, first);
        }
    }
    chat_buf_fini(&sql);
    chat_free(missing);
    if (rc != CHAT_OK) {
        chat_metric_add(&s->m->part_ddl_failures, 1);
        s->ddl_retry_ms = chat_mono_ms() + s->cfg->part_retry_ms;
    }
    return rc;
}

/* True when a day of today .. today + ahead_days is not known to exist. */
static bool window_missing(const struct ps_store *s, int32_t today)
{
    for (int k = 0; k <= s->cfg->ahead_days; k++)
        if (today + k <= PS_DAY_MAX && !ps_days_has(&s->days, today + k))
            return true;
    return false;
}

int ps_store_ensure_today(struct ps_store *s, int64_t now_ms)
{
    int32_t today, *window;
    size_t n = 0;
    int rc;

    if (!s->conn)
        return CHAT_EIO;
    if (ps_day_of_ms(now_ms, &today) != CHAT_OK)
        return CHAT_EINVAL; /* a clock outside 1970..9999: nothing sensible to create */
    if (!window_missing(s, today))
        return CHAT_OK; /* the common case: the whole window is known, no round trip */
    if (chat_mono_ms() < s->ddl_retry_ms)
        return CHAT_EAGAIN;
    window = chat_xmalloc(((size_t)s->cfg->ahead_days + 1) * sizeof(*window));
    for (int k = 0; k <= s->cfg->ahead_days; k++)
        if (today + k <= PS_DAY_MAX)
            window[n++] = today + k;
    guard_begin(s);
    rc = ensure_days(s, window, n, 0);
    chat_free(window);
    if (rc != CHAT_OK)
        after_error(s);
    guard_end(s);
    return rc;
}

static int prepare(struct ps_store *s, const char *name, const char *sql, int nparams)
{
    PGresult *res = PQprepare(s->conn, name, sql, nparams, NULL);
    int rc = CHAT_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        ps_pg_log_error(s->conn, res, "preparing a statement");
        rc = CHAT_EIO;
    }
    PQclear(res);
    return rc;
}

/* Session settings: statement_timeout and lock_timeout (ms; 0 disables). */
static int set_session(struct ps_store *s)
{
    char st[24], lt[24];
    const char *params[2] = {st, lt};
    PGresult *res;
    int rc = CHAT_OK;

    (void)snprintf(st, sizeof(st), "%d", s->cfg->pg_statement_timeout_ms);
    (void)snprintf(lt, sizeof(lt), "%d", s->cfg->pg_lock_timeout_ms);
    res = PQexecParams(s->conn, SESSION_SQL, 2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ps_pg_log_error(s->conn, res, "setting the session timeouts");
        rc = CHAT_EIO;
    }
    PQclear(res);
    return rc;
}

/* Sets up a fresh connection: schema, partitions, prepared insert. */
static int setup(struct ps_store *s)
{
    int applied = 0;
    int rc;

    rc = set_session(s);
    if (rc == CHAT_OK)
        rc = chat_db_migrate(chat_db_run_conn, s->conn, chat_db_migrations,
                             chat_db_migrations_count, &applied);
    if (rc == CHAT_OK)
        rc = load_partitions(s);
    if (rc == CHAT_OK) {
        /* not fatal: today's partition usually exists (the window was rolled ahead before),
         * and a batch creates a missing day itself; the tick retries the rest */
        s->ddl_retry_ms = 0;
        if (ps_store_ensure_today(s, chat_now_ms()) != CHAT_OK)
            chat_log(CHAT_LOG_WARN, "postgres: partition roll-ahead failed; retrying in %d ms",
                     s->cfg->part_retry_ms);
    }
    if (rc != CHAT_OK || !s->conn)
        return CHAT_EIO;
    rc = prepare(s, INSERT_NAME, INSERT_SQL, PS_NCOLS);
    if (rc == CHAT_OK)
        rc = prepare(s, STORED_NAME, STORED_SQL, 2);
    if (rc == CHAT_OK)
        rc = prepare(s, ROOMS_NAME, ROOMS_SQL, 3);
    if (rc == CHAT_OK)
        rc = prepare(s, READS_NAME, READS_SQL, 3);
    if (rc == CHAT_OK)
        rc = prepare(s, DELETES_NAME, DELETES_SQL, 4);
    if (rc == CHAT_OK)
        rc = prepare(s, EDITS_NAME, EDITS_SQL, 5);
    if (rc == CHAT_OK)
        rc = prepare(s, EDITS_HIDE_NAME, EDITS_HIDE_SQL, 1);
    if (rc == CHAT_OK)
        chat_log(CHAT_LOG_INFO,
                 "postgres: connected (server %d), %d migrations applied, %zu"
                 " partitions known",
                 PQserverVersion(s->conn), applied, s->days.n);
    return rc;
}

int ps_store_connect(struct ps_store *s)
{
    /* Defaults first: keywords in the DSN (expanded from dbname) override them. */
    static const char *const keys[] = {"connect_timeout",
                                       "application_name",
                                       "keepalives",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "tcp_user_timeout",
                                       "dbname",
                                       NULL};
    char idle[16], intvl[16], cnt[16], uto[16];
    const char *vals[] = {"5", "chat-persister", "1", idle, intvl, cnt, uto, s->cfg->pg_dsn, NULL};
    char line[512];
    int rc;

    if (s->conn)
        return CHAT_OK;
    (void)snprintf(idle, sizeof(idle), "%d", s->cfg->pg_keepalives_idle_s);
    (void)snprintf(intvl, sizeof(intvl), "%d", s->cfg->pg_keepalives_interval_s);
    (void)snprintf(cnt, sizeof(cnt), "%d", s->cfg->pg_keepalives_count);
    (void)snprintf(uto, sizeof(uto), "%d", s->cfg->pg_tcp_user_timeout_ms);
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        one_line(line, sizeof(line), s->conn ? PQerrorMessage(s->conn) : "out of memory");
        chat_log(CHAT_LOG_ERROR, "postgres: connect failed: %s", line);
        PQfinish(s->conn);
        s->conn = NULL;
        chat_metric_add(&s->m->pg_errors, 1);
        return CHAT_EIO;
    }
    PQsetNoticeProcessor(s->conn, notice_cb, NULL);
    guard_begin(s);
    rc = setup(s);
    guard_end(s); /* a cut setup closed the connection: the check below sees it */
    if (rc == CHAT_OK && !s->conn)
        rc = CHAT_EIO;
    if (rc != CHAT_OK) {
        chat_metric_add(&s->m->pg_errors, 1);
        store_close(s);
        return rc;
    }
    s->last_io_ms = chat_mono_ms();
    s->backoff_ms = BACKOFF_MIN_MS;
    chat_metric_set(&s->m->pg_up, 1);
    return CHAT_OK;
}

static void tick_guarded(struct ps_store *s, int64_t mono, int64_t now_ms)
{
    int rc;

    if (!s->conn) {
        if (mono < s->retry_ms)
            return;
        if (ps_store_connect(s) != CHAT_OK) {
            s->retry_ms = mono + s->backoff_ms;
            s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
            return;
        }
    }
    if (mono - s->last_io_ms >= PING_IDLE_MS) {
        PGresult *res = PQexec(s->conn, "");
        if (PQresultStatus(res) == PGRES_EMPTY_QUERY) {
            s->last_io_ms = mono;
        } else {
            ps_pg_log_error(s->conn, res, "ping");
            chat_metric_add(&s->m->pg_errors, 1);
            store_close(s);
        }
        PQclear(res);
        if (!s->conn)
            return;
    }
    rc = ps_store_ensure_today(s, now_ms);
    (void)rc; /* a failure is logged and counted; the next tick retries */
}

void ps_store_tick(struct ps_store *s, int64_t now_ms)
{
    int64_t mono = chat_mono_ms();

    if (s->wb)
        return; /* a batch write runs: the connection is in use (and alive) */
    guard_begin(s);
    tick_guarded(s, mono, now_ms);
    guard_end(s);
}

/* Collects the distinct days of the batch's rows into out[cap]; returns the count. */
static size_t batch_days(const struct ps_batch *b, int32_t *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < b->n; i++) {
        size_t k = 0;
        while (k < n && out[k] != b->rows[i].day)
            k++;
        if (k == n && n < cap)
            out[n++] = b->rows[i].day;
    }
    return n;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A stored row's id and Kafka position (from STORED_SQL). */
struct stored_pos {
    int64_t id, offset;
    int32_t partition;
};

static int cmp_stored(const void *a, const void *b)
{
    return cmp_i64(&((const struct stored_pos *)a)->id, &((const struct stored_pos *)b)->id);
}

/* Counts (and logs, rate-limited) the rows of cand[0..n) (indexes into b->rows: rows the
 * insert skipped) whose stored row came from another Kafka position: two messages with one id.
 * A row stored from the same position is a replay. Returns CHAT_OK or CHAT_EIO. */
static int
check_conflicts(struct ps_store *s, const struct ps_batch *b, const size_t *cand, size_t n)
{
    struct chat_buf *ids = &s->cols[PS_COL_ID], *ts = &s->cols[PS_COL_TS];
    struct stored_pos *pos = NULL;
    const char *params[2];
    PGresult *res;
    size_t npos = 0;
    int rc = CHAT_OK;

    chat_buf_reset(ids);
    chat_buf_reset(ts);
    for (size_t i = 0; i < n && rc == CHAT_OK; i++) {
        const struct ps_row *r = &b->rows[cand[i]];
        rc |= chat_buf_appendf(ids, "%s%" PRId64, i ? "," : "{", r->id);
        rc |= chat_buf_appendf(ts, "%s%" PRId64, i ? "," : "{", r->ts_ms);
    }
    rc |= chat_buf_append(ids, "}", 1) | chat_buf_append(ts, "}", 1);
    if (rc != CHAT_OK)
        return CHAT_EIO;
    params[0] = chat_buf_data(ids);
    params[1] = chat_buf_data(ts);
    res = PQexecPrepared(s->conn, STORED_NAME, 2, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ps_pg_log_error(s->conn, res, "reading the positions of stored rows");
        PQclear(res);
        return CHAT_EIO;
    }
    npos = (size_t)PQntuples(res);
    pos = chat_xcalloc(npos + 1, sizeof(*pos));
    for (size_t i = 0; i < npos; i++) {
        long long id = 0, part = 0, off = 0;
        rc |= chat_parse_ll(PQgetvalue(res, (int)i, 0), INT64_MIN, INT64_MAX, &id);
        rc |= chat_parse_ll(PQgetvalue(res, (int)i, 1), INT32_MIN, INT32_MAX, &part);
        rc |= chat_parse_ll(PQgetvalue(res, (int)i, 2), INT64_MIN, INT64_MAX, &off);
        pos[i] = (struct stored_pos){.id = id, .offset = off, .partition = (int32_t)part};
    }
    PQclear(res);
    qsort(pos, npos, sizeof(*pos), cmp_stored);
    for (size_t i = 0; i < n && rc == CHAT_OK; i++) {
        const struct ps_row *r = &b->rows[cand[i]];
        struct stored_pos key = {.id = r->id};
        const struct stored_pos *p = bsearch(&key, pos, npos, sizeof(*pos), cmp_stored);
        long suppressed = 0;

        if (!p || (p->partition == r->partition && p->offset == r->offset))
            continue;    /* a replay (or a row gone since: nothing to compare) */
        s->wconflicts++; /* counted once the batch is committed (a failed one is retried) */
        if (chat_log_every(&s->conflict_log, LOG_EVERY_MS, &suppressed))
            chat_log(CHAT_LOG_ERROR,
                     "message id conflict: id=%" PRId64 " stored from partition=%d offset=%" PRId64
                     ", not stored from partition=%d offset=%" PRId64 " (%ld more not logged)",
                     r->id, (int)p->partition, p->offset, (int)r->partition, r->offset, suppressed);
    }
    chat_free(pos);
    return rc == CHAT_OK ? CHAT_OK : CHAT_EIO;
}

/* The replay path: INSERT ... ON CONFLICT DO NOTHING RETURNING id, then the skipped rows'
 * positions compared (check_conflicts). */
static int insert_rows(struct ps_store *s, const struct ps_batch *b, long long *inserted)
{
    const char *params[PS_NCOLS];
    int64_t *got = NULL;
    size_t *cand = NULL, ngot, ncand = 0;
    bool *used = NULL;
    PGresult *res;
    int rc;

    rc = ps_batch_encode(b, s->cols);
    if (rc != CHAT_OK)
        return rc;
    for (int i = 0; i < PS_NCOLS; i++)
        params[i] = chat_buf_data(&s->cols[i]);
    res = PQexecPrepared(s->conn, INSERT_NAME, PS_NCOLS, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        ps_pg_log_error(s->conn, res, "inserting batch");
        /* A partition vanished (dropped by hand or by retention): re-read the catalog so the
         * retry recreates what is missing. */
        if (state && strcmp(state, SQLSTATE_CHECK_VIOLATION) == 0 && load_partitions(s) != CHAT_OK)
            ps_days_clear(&s->days);
        PQclear(res);
        return CHAT_EIO;
    }
    /* the inserted ids, as a sorted multiset; each batch row takes one equal unused entry */
    ngot = (size_t)PQntuples(res);
    got = chat_xcalloc(ngot + 1, sizeof(*got));
    used = chat_xcalloc(ngot + 1, sizeof(*used));
    cand = chat_xcalloc(b->n + 1, sizeof(*cand));
    for (size_t i = 0; i < ngot; i++) {
        long long id = 0;
        if (chat_parse_ll(PQgetvalue(res, (int)i, 0), INT64_MIN, INT64_MAX, &id) != CHAT_OK)
            rc = CHAT_EIO;
        got[i] = id;
    }
    PQclear(res);
    *inserted = (long long)ngot;
    qsort(got, ngot, sizeof(*got), cmp_i64);
    for (size_t i = 0; i < b->n && rc == CHAT_OK; i++) {
        size_t lo = 0, hi = ngot;
        while (lo < hi) { /* first entry >= id */
            size_t mid = lo + (hi - lo) / 2;
            if (got[mid] < b->rows[i].id)
                lo = mid + 1;
            else
                hi = mid;
        }
        while (lo < ngot && got[lo] == b->rows[i].id && used[lo])
            lo++;
        if (lo < ngot && got[lo] == b->rows[i].id)
            used[lo] = true;
        else
            cand[ncand++] = i;
    }
    if (rc == CHAT_OK && ncand > 0) {
        /* inside the batch's transaction: a failed look-up must not abort the inserts */
        rc = ps_pg_exec(s->conn, "savepoint", "SAVEPOINT ps_check");
        if (rc == CHAT_OK && check_conflicts(s, b, cand, ncand) != CHAT_OK)
            rc = ps_pg_exec(s->conn, "rolling back the look-up", "ROLLBACK TO SAVEPOINT ps_check");
        if (rc != CHAT_OK) {
            chat_free(got);
            chat_free(used);
            chat_free(cand);
            return CHAT_EIO;
        }
    }
    chat_free(got);
    chat_free(used);
    chat_free(cand);
    /* the rows are committed either way: a failed comparison is logged, not retried */
    return CHAT_OK;
}

/* COPY's binary format (PostgreSQL documentation, COPY, "Binary Format"): a header, then per row
 * the field count and every field as its length and bytes (-1: NULL), big-endian; a timestamptz is
 * microseconds since 2000-01-01 UTC. The server converts no text to values (it still checks the
 * text's encoding): cheaper for it than the text format, and nothing to escape here. */
#define COPY_HEADER     "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0" /* signature, flags, extension */
#define COPY_HEADER_LEN 19
#define COPY_TRAILER    "\377\377"     /* field count -1 */
#define PG_EPOCH_MS     946684800000LL /* 2000-01-01 in Unix ms */

static unsigned char *be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

static unsigned char *be64(unsigned char *p, uint64_t v)
{
    return be32(be32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}

static int bin_i64(struct chat_buf *out, int64_t v)
{
    unsigned char f[12];

    be64(be32(f, 8), (uint64_t)v);
    return chat_buf_append(out, f, sizeof(f));
}

static int bin_i32(struct chat_buf *out, int32_t v)
{
    unsigned char f[8];

    be32(be32(f, 4), (uint32_t)v);
    return chat_buf_append(out, f, sizeof(f));
}

static int bin_text(struct chat_buf *out, const char *v)
{
    unsigned char f[4];
    size_t n = v ? strlen(v) : 0;

    if (n > INT32_MAX)
        return CHAT_ETOOBIG;
    be32(f, v ? (uint32_t)n : UINT32_MAX); /* -1: NULL */
    return chat_buf_append(out, f, sizeof(f)) | (n ? chat_buf_append(out, v, n) : CHAT_OK);
}

int ps_store_encode(struct ps_batch *b)
{
    struct chat_buf *out = &b->copy;
    int rc = CHAT_OK;

    if (b->ncopied == 0 && out->len == 0)
        rc = chat_buf_append(out, COPY_HEADER, COPY_HEADER_LEN);
    for (size_t i = b->ncopied; i < b->n && rc == CHAT_OK; i++) {
        const struct ps_row *r = &b->rows[i];

        rc |= chat_buf_append(out, (const unsigned char[]){0, PS_NCOLS}, 2);
        rc |= bin_i64(out, r->id);
        rc |= bin_text(out, r->room);
        rc |= bin_i32(out, r->partition);
        rc |= bin_i64(out, r->offset);
        rc |= bin_text(out, r->user);
        rc |= bin_text(out, r->nick);
        rc |= bin_text(out, r->body);
        rc |= bin_text(out, r->cmid);
        rc |= bin_i64(out, (r->ts_ms - PG_EPOCH_MS) * 1000);
        rc |= bin_text(out, r->kind ? r->kind : "message");
        rc |= r->edits ? bin_i64(out, r->edits) : bin_text(out, NULL); /* NULL: length -1 */
    }
    if (rc) {
        chat_buf_reset(out);
        b->ncopied = 0;
        return CHAT_ETOOBIG;
    }
    b->ncopied = b->n;
    return CHAT_OK;
}

/* Sends the encoded batch in chunks (libpq takes an int length and would copy it whole). */
static int copy_send(struct ps_store *s)
{
    const char *p = chat_buf_data(&s->wb->copy);
    size_t left = s->wb->copy.len;

    while (left > 0) {
        int n = left > COPY_CHUNK ? COPY_CHUNK : (int)left;
        if (PQputCopyData(s->conn, p, n) != 1)
            return CHAT_EIO;
        p += n;
        left -= (size_t)n;
    }
    return CHAT_OK;
}

/* Interprets a result of the COPY. Returns CHAT_OK (all rows stored), CHAT_EEXIST
 * (some row was stored before: a replay; nothing of this COPY was kept) or CHAT_EIO. */
static int copy_result(struct ps_store *s, PGresult *res, size_t nrows)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    long long rows = -1;

    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        if (chat_parse_ll(PQcmdTuples(res), 0, (long long)nrows, &rows) != CHAT_OK ||
            rows != (long long)nrows) {
            chat_log(CHAT_LOG_ERROR, "COPY stored %lld rows of a batch of %zu", rows, nrows);
            return CHAT_EIO;
        }
        return CHAT_OK;
    }
    if (state && strcmp(state, SQLSTATE_UNIQUE_VIOLATION) == 0)
        return CHAT_EEXIST; /* expected after a crash or rebalance: not an error */
    ps_pg_log_error(s->conn, res, "COPY batch");
    s->recheck_partitions |= state && strcmp(state, SQLSTATE_CHECK_VIOLATION) == 0;
    return CHAT_EIO;
}

/* Starts the batch's transaction and its COPY (one round trip), and queues all of the encoded
 * batch (s->wb->copy) and the end of the COPY without waiting for the server: the connection is
 * non-blocking from here until the write ends (write_end). Returns CHAT_OK or CHAT_EIO (logged). */
static int copy_start(struct ps_store *s)
{
    PGresult *res = PQexec(s->conn, "BEGIN; " COPY_SQL); /* returns at the COPY's start */

    if (PQresultStatus(res) != PGRES_COPY_IN) {
        ps_pg_log_error(s->conn, res, "starting COPY");
        PQclear(res);
        return CHAT_EIO;
    }
    PQclear(res);
    if (PQsetnonblocking(s->conn, 1) != 0) {
        ps_pg_log_error(s->conn, NULL, "setting non-blocking mode");
        return CHAT_EIO;
    }
    /* non-blocking: libpq buffers what the socket does not take now; PQflush sends the rest */
    if (copy_send(s) != CHAT_OK || PQputCopyData(s->conn, COPY_TRAILER, 2) != 1 ||
        PQputCopyEnd(s->conn, NULL) != 1) {
        ps_pg_log_error(s->conn, NULL, "sending COPY data");
        return CHAT_EIO;
    }
    return CHAT_OK;
}

/* The slot of room in the store's room table (open addressing; rmax_cap a power of 2). */
static struct ps_room_max *room_slot(struct ps_store *s, const char *room)
{
    size_t mask = s->rmax_cap - 1, i = (size_t)chat_hash_str(room) & mask;

    while (s->rmax[i].room && strcmp(s->rmax[i].room, room) != 0)
        i = (i + 1) & mask;
    return &s->rmax[i];
}

/* The rooms update's parameters: the batch's rooms, each once with its greatest seq and ts (the
 * statement groups again; sending each room once spares the server most of the work), as three
 * array literals. */
static int rooms_encode(struct ps_store *s, const struct ps_batch *b, const char *params[3])
{
    struct chat_buf *c = s->rcols;
    size_t nrooms = 0;
    int rc = CHAT_OK;

    if (s->rmax_cap < 2 * b->n) {
        size_t cap = 64;
        while (cap < 2 * b->n)
            cap *= 2;
        chat_free(s->rmax);
        s->rmax = chat_xcalloc(cap, sizeof(*s->rmax));
        s->rmax_cap = cap;
    }
    for (int i = 0; i < 3; i++)
        chat_buf_reset(&c[i]);
    for (size_t i = 0; i < b->n; i++) {
        const struct ps_row *r = &b->rows[i];
        struct ps_room_max *e = room_slot(s, r->room);
        if (!e->room) {
            e->room = r->room;
            e->seq = r->offset;
            e->ts = r->ts_ms;
            continue;
        }
        e->seq = r->offset > e->seq ? r->offset : e->seq;
        e->ts = r->ts_ms > e->ts ? r->ts_ms : e->ts;
    }
    for (size_t i = 0; i < s->rmax_cap; i++) {
        struct ps_room_max *e = &s->rmax[i];
        if (!e->room)
            continue;
        if (rc == CHAT_OK) {
            const char *sep = nrooms++ ? "," : "{";
            rc |= chat_buf_appends(&c[0], sep);
            rc |= ps_pg_array_text(&c[0], e->room);
            rc |= chat_buf_appends(&c[1], sep);
            rc |= chat_buf_append_i64(&c[1], e->seq);
            rc |= chat_buf_appends(&c[2], sep);
            rc |= chat_buf_append_i64(&c[2], e->ts);
        }
        memset(e, 0, sizeof(*e)); /* the table is empty again for the next batch */
    }
    for (int i = 0; i < 3; i++) {
        rc |= chat_buf_appends(&c[i], nrooms ? "}" : "{}");
        params[i] = chat_buf_data(&c[i]);
    }
    return rc == CHAT_OK ? CHAT_OK : CHAT_EIO;
}

/* The batch's rooms get their newest seq and message time (same transaction as the rows). */
static int update_rooms(struct ps_store *s, const struct ps_batch *b)
{
    const char *params[3];
    PGresult *res;
    int rc;

    if (rooms_encode(s, b, params) != CHAT_OK)
        return CHAT_EIO;
    res = PQexecPrepared(s->conn, ROOMS_NAME, 3, params, NULL, NULL, 0);
    rc = PQresultStatus(res) == PGRES_COMMAND_OK ? CHAT_OK : CHAT_EIO;
    if (rc != CHAT_OK)
        ps_pg_log_error(s->conn, res, "updating the rooms' last seq");
    PQclear(res);
    return rc;
}

/* A statement of the batch's transaction over array parameters: the first nparams of the
 * columns row_stmts() builds. */
struct row_stmt {
    const char *name, *what; /* prepared statement; what the log calls a failure */
    int nparams;
};
#define ROW_COLS_MAX 5

/* Runs stmts[0..nstmts) in order, their parameters the columns (PostgreSQL array literals, at
 * most ROW_COLS_MAX) that cells() appends for each row of b that want() picks (sep: "{" before
 * the first row, "," after). Nothing at all when no row is picked. */
static int row_stmts(struct ps_store *s,
                     const struct ps_batch *b,
                     bool (*want)(const struct ps_row *),
                     int (*cells)(struct chat_buf *c, const struct ps_row *r, const char *sep),
                     int ncols,
                     const struct row_stmt *stmts,
                     int nstmts)
{
    struct chat_buf c[ROW_COLS_MAX];
    const char *params[ROW_COLS_MAX];
    size_t n = 0;
    int rc = CHAT_OK;

    for (size_t i = 0; i < b->n; i++)
        n += want(&b->rows[i]);
    if (n == 0)
        return CHAT_OK;
    for (int i = 0; i < ncols; i++)
        chat_buf_init(&c[i], 0, 0);
    n = 0;
    for (size_t i = 0; i < b->n; i++)
        if (want(&b->rows[i]))
            rc |= cells(c, &b->rows[i], n++ ? "," : "{");
    for (int i = 0; i < ncols; i++) {
        rc |= chat_buf_append(&c[i], "}", 1);
        params[i] = chat_buf_data(&c[i]);
    }
    rc = rc == CHAT_OK ? CHAT_OK : CHAT_EIO;
    for (int k = 0; k < nstmts && rc == CHAT_OK; k++) {
        PGresult *res =
            PQexecPrepared(s->conn, stmts[k].name, stmts[k].nparams, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            ps_pg_log_error(s->conn, res, stmts[k].what);
            rc = CHAT_EIO;
        }
        PQclear(res);
    }
    for (int i = 0; i < ncols; i++)
        chat_buf_fini(&c[i]);
    return rc;
}

static bool deletes_row(const struct ps_row *r)
{
    return r->deletes != 0;
}

/* DELETES_SQL's: the message, the room, who deleted, when (in order: a column's separator comes
 * before its cell) */
static int delete_cells(struct chat_buf *c, const struct ps_row *r, const char *sep)
{
    int rc = chat_buf_appendf(&c[0], "%s%" PRId64, sep, r->deletes);

    rc |= chat_buf_appends(&c[1], sep);
    rc |= ps_pg_array_text(&c[1], r->room);
    rc |= chat_buf_appends(&c[2], sep);
    rc |= ps_pg_array_text(&c[2], r->user);
    rc |= chat_buf_appendf(&c[3], "%s%" PRId64, sep, r->ts_ms);
    return rc;
}

/* The batch's message_deleted rows delete their messages (same transaction as the rows). */
static int apply_deletes(struct ps_store *s, const struct ps_batch *b)
{
    static const struct row_stmt del = {DELETES_NAME, "deleting messages", 4};

    return row_stmts(s, b, deletes_row, delete_cells, 4, &del, 1);
}

static bool edits_row(const struct ps_row *r)
{
    return r->edits != 0;
}

/* EDITS_SQL's: the message, the room, its new text, when, the edit's position */
static int edit_cells(struct chat_buf *c, const struct ps_row *r, const char *sep)
{
    int rc = chat_buf_appendf(&c[0], "%s%" PRId64, sep, r->edits);

    rc |= chat_buf_appends(&c[1], sep);
    rc |= ps_pg_array_text(&c[1], r->room);
    rc |= chat_buf_appends(&c[2], sep);
    rc |= ps_pg_array_text(&c[2], r->edit_text);
    rc |= chat_buf_appendf(&c[3], "%s%" PRId64, sep, r->ts_ms);
    rc |= chat_buf_appendf(&c[4], "%s%" PRId64, sep, r->offset);
    return rc;
}

/* The batch's message_edited rows set their messages' text (same transaction as the rows),
 * before the deletes: a delete later in the batch hides the edits too. Then the edit rows of a
 * message deleted already lose their text (EDITS_HIDE_SQL, the ids alone). */
static int apply_edits(struct ps_store *s, const struct ps_batch *b)
{
    static const struct row_stmt ed[2] = {
        {EDITS_NAME, "editing messages", 5},
        {EDITS_HIDE_NAME, "hiding the edits of deleted messages", 1},
    };

    return row_stmts(s, b, edits_row, edit_cells, 5, ed, 2);
}

/* COMMIT, checked: a transaction that failed earlier would "commit" as ROLLBACK. */
static int commit(struct ps_store *s)
{
    PGresult *res = PQexec(s->conn, "COMMIT");
    int rc = CHAT_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        ps_pg_log_error(s->conn, res, "committing the batch");
        rc = CHAT_EIO;
    }
    PQclear(res);
    return rc;
}

/* Leaves a failed transaction (a broken connection is closed by after_error). */
static void rollback(struct ps_store *s)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK &&
        PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        if (ps_pg_exec(s->conn, "rolling back", "ROLLBACK") != CHAT_OK)
            store_close(s); /* in an unknown state: start over */
}

int ps_store_apply_reads(
    struct ps_store *s, const char *users, const char *rooms, const char *seqs, long long *updated)
{
    const char *params[3] = {users, rooms, seqs};
    PGresult *res;
    int rc = CHAT_OK;

    *updated = 0;
    if (!s->conn || s->wb)
        return CHAT_EAGAIN;
    guard_begin(s);
    res = PQexecPrepared(s->conn, READS_NAME, 3, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK ||
        chat_parse_ll(PQcmdTuples(res), 0, INT64_MAX, updated) != CHAT_OK) {
        ps_pg_log_error(s->conn, res, "storing read markers");
        rc = CHAT_EIO;
    }
    PQclear(res);
    if (rc != CHAT_OK)
        after_error(s);
    else
        s->last_io_ms = chat_mono_ms();
    guard_end(s);
    return rc;
}

/* Whether the batch deletes or edits messages (the blocking path then). */
static bool has_deletes(const struct ps_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->rows[i].deletes != 0 || b->rows[i].edits != 0)
            return true;
    return false;
}

/* Ends the write of s->wb: the connection back in blocking mode, the failed transaction rolled
 * back. Returns rc. */
static int write_end(struct ps_store *s, int rc)
{
    s->wb = NULL;
    s->wstage = PS_WRITE_IDLE;
    if (s->conn && PQisnonblocking(s->conn) && PQsetnonblocking(s->conn, 0) != 0)
        store_close(s); /* cannot happen with an empty output buffer; start over if it does */
    if (rc == CHAT_OK) {
        s->last_io_ms = chat_mono_ms();
        guard_end(s); /* COMMIT answered: stored, even if the guard cut it just after */
        return CHAT_OK;
    }
    s->winserted = 0;
    if (s->conn && PQtransactionStatus(s->conn) == PQTRANS_ACTIVE) {
        /* a command still runs (an error while sending): the connection's state is unknown */
        store_close(s);
    }
    rollback(s);
    after_error(s);
    /* a partition vanished: re-read the catalog (outside the result loop) for the retry */
    if (s->recheck_partitions && s->conn && load_partitions(s) != CHAT_OK)
        ps_days_clear(&s->days);
    s->recheck_partitions = false;
    guard_end(s);
    return CHAT_EIO;
}

int ps_store_write_start(struct ps_store *s, struct ps_batch *b)
{
    int32_t days[64] = {0};
    size_t ndays;
    int rc;

    if (s->wb)
        return CHAT_EAGAIN;
    s->winserted = 0;
    s->wconflicts = 0;
    guard_begin(s); /* until write_end */
    rc = ps_store_connect(s);
    if (rc != CHAT_OK) {
        guard_end(s);
        return rc;
    }
    ndays = batch_days(b, days, sizeof(days) / sizeof(days[0]));
    rc = ensure_days(s, days, ndays, s->cfg->ahead_days);
    if (rc == CHAT_OK && ndays == sizeof(days) / sizeof(days[0])) {
        /* More distinct days than fit (a replay of old data): check every row's day. */
        for (size_t i = 0; i < b->n && rc == CHAT_OK; i++)
            rc = ensure_days(s, &b->rows[i].day, 1, s->cfg->ahead_days);
    }
    s->wb = b;
    s->wstage = PS_WRITE_COPY;
    s->wres = NO_RESULT;
    s->recheck_partitions = false;
    /* COPY is the database's fastest ingest; a batch holding an already stored row (a replay)
     * fails as a whole and goes again through the idempotent INSERT ... ON CONFLICT DO NOTHING
     * (ps_store_write_poll), so nothing is ever stored twice. */
    if (rc == CHAT_OK && ps_store_encode(b) != CHAT_OK)
        rc = CHAT_EIO;
    if (rc == CHAT_OK)
        rc = copy_start(s);
    if (rc != CHAT_OK)
        return write_end(s, CHAT_EIO);
    return CHAT_OK;
}

/* The rest of the write, blocking (the rare paths): after a COPY that met a stored row (eexist)
 * the idempotent insert instead; the deletes; the rooms; COMMIT. */
static int finish_blocking(struct ps_store *s, bool eexist)
{
    const struct ps_batch *b = s->wb;
    long long inserted = (long long)b->n;
    int rc = CHAT_OK;

    if (PQsetnonblocking(s->conn, 0) != 0)
        return CHAT_EIO;
    if (eexist) {
        rc = ps_pg_exec(s->conn, "restarting the batch", "ROLLBACK");
        if (rc == CHAT_OK)
            rc = ps_pg_exec(s->conn, "starting the batch", "BEGIN");
        if (rc == CHAT_OK)
            rc = insert_rows(s, b, &inserted);
    }
    if (rc == CHAT_OK)
        rc = apply_edits(s, b);
    if (rc == CHAT_OK)
        rc = apply_deletes(s, b);
    if (rc == CHAT_OK)
        rc = update_rooms(s, b);
    if (rc == CHAT_OK)
        rc = commit(s);
    s->winserted = inserted;
    return rc;
}

/* Sends the next statement of the write (non-blocking). */
static int send_next(struct ps_store *s)
{
    const char *params[3];

    s->wres = NO_RESULT;
    if (s->wstage == PS_WRITE_ROOMS) {
        if (rooms_encode(s, s->wb, params) != CHAT_OK)
            return CHAT_EIO;
        if (PQsendQueryPrepared(s->conn, ROOMS_NAME, 3, params, NULL, NULL, 0) != 1)
            goto fail;
    } else if (PQsendQuery(s->conn, "COMMIT") != 1) {
        goto fail;
    }
    return CHAT_OK;
fail:
    ps_pg_log_error(s->conn, NULL,
                    s->wstage == PS_WRITE_ROOMS ? "updating the rooms' last seq"
                                                : "committing the batch");
    return CHAT_EIO;
}

/* The outcome of one result of the current statement: CHAT_OK, CHAT_EEXIST (COPY met a stored
 * row) or CHAT_EIO (logged). */
static int stage_result(struct ps_store *s, PGresult *res)
{
    switch (s->wstage) {
    case PS_WRITE_COPY:
        return copy_result(s, res, s->wb->n);
    case PS_WRITE_ROOMS:
        if (PQresultStatus(res) == PGRES_COMMAND_OK)
            return CHAT_OK;
        ps_pg_log_error(s->conn, res, "updating the rooms' last seq");
        return CHAT_EIO;
    case PS_WRITE_COMMIT: /* a transaction that failed earlier "commits" as ROLLBACK */
        if (PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0)
            return CHAT_OK;
        ps_pg_log_error(s->conn, res, "committing the batch");
        return CHAT_EIO;
    case PS_WRITE_IDLE:
        break;
    }
    return CHAT_EIO;
}

/* Reads the results of the current statement that have arrived, without waiting. Returns
 * CHAT_EAGAIN (more to come), or once the statement is done its outcome: CHAT_OK, CHAT_EEXIST or
 * CHAT_EIO (the first failing result's; no result at all is a failure). */
static int read_results(struct ps_store *s)
{
    PGresult *res;
    int rc;

    if (PQconsumeInput(s->conn) != 1) {
        ps_pg_log_error(s->conn, NULL, "reading the batch's results");
        return CHAT_EIO;
    }
    while (!PQisBusy(s->conn)) {
        res = PQgetResult(s->conn);
        if (!res) {
            rc = s->wres == NO_RESULT ? CHAT_EIO : s->wres;
            s->wres = NO_RESULT;
            return rc;
        }
        rc = stage_result(s, res);
        if (s->wres == NO_RESULT || s->wres == CHAT_OK)
            s->wres = rc;
        PQclear(res);
    }
    return CHAT_EAGAIN;
}

/* Waits up to wait_ms (< 0: no limit) until the connection can be read, or written while
 * libpq holds unsent data. */
static void wait_conn(struct ps_store *s, bool out, int wait_ms)
{
    struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN | (out ? POLLOUT : 0)};

    if (wait_ms != 0 && p.fd >= 0)
        (void)poll(&p, 1, wait_ms); /* EINTR (a signal): the caller looks at its stop flag */
}

int ps_store_write_poll(struct ps_store *s, int wait_ms, long long *inserted)
{
    int64_t deadline = wait_ms > 0 ? chat_mono_ms() + wait_ms : 0, left;
    int rc, flushed;

    *inserted = 0;
    if (!s->wb)
        return CHAT_EINVAL;
    for (;;) {
        flushed = PQflush(s->conn); /* 0: all sent, 1: more to send, -1: failed */
        if (flushed < 0) {
            ps_pg_log_error(s->conn, NULL, "sending the batch");
            return write_end(s, CHAT_EIO);
        }
        rc = read_results(s);
        if (rc == CHAT_OK || rc == CHAT_EEXIST) {
            if (s->wstage == PS_WRITE_COMMIT) {
                *inserted = (long long)s->wb->n;
                s->winserted = *inserted;
                return write_end(s, CHAT_OK);
            }
            if (s->wstage == PS_WRITE_COPY && (rc == CHAT_EEXIST || has_deletes(s->wb))) {
                /* a replay, deletes or edits: the rare paths, blocking */
                rc = finish_blocking(s, rc == CHAT_EEXIST);
                *inserted = s->winserted;
                return write_end(s, rc);
            }
            s->wstage = s->wstage == PS_WRITE_COPY ? PS_WRITE_ROOMS : PS_WRITE_COMMIT;
            if (send_next(s) != CHAT_OK)
                return write_end(s, CHAT_EIO);
            continue;
        }
        if (rc != CHAT_EAGAIN)
            return write_end(s, CHAT_EIO);
        if (wait_ms == 0)
            return CHAT_EAGAIN;
        left = wait_ms < 0 ? -1 : deadline - chat_mono_ms();
        if (wait_ms > 0 && left <= 0)
            return CHAT_EAGAIN;
        wait_conn(s, flushed == 1, (int)left);
    }
}

void ps_store_pump(struct ps_store *s)
{
    if (s->wb && s->conn && PQisnonblocking(s->conn))
        (void)PQflush(s->conn);
}

int ps_store_write(struct ps_store *s, struct ps_batch *b, long long *inserted)
{
    int rc;

    *inserted = 0;
    if (b->n == 0)
        return CHAT_OK;
    rc = ps_store_write_start(s, b);
    while (rc == CHAT_OK || rc == CHAT_EAGAIN) {
        rc = ps_store_write_poll(s, -1, inserted);
        if (rc != CHAT_EAGAIN)
            break;
    }
    return rc == CHAT_OK ? CHAT_OK : CHAT_EIO;
}

#define SPAM_BAN_SQL                                                                            \
    "WITH s AS (INSERT INTO sanctions (kind, user_id, room_id, reason, created_by, created_at," \
    " expires_at)"                                                                              \
    " SELECT 'chat_ban', $1, NULL, 'spam', NULL, to_timestamp($3::bigint / 1000.0),"            \
    " to_timestamp($2::bigint / 1000.0)"                                                        \
    " WHERE NOT EXISTS (SELECT 1 FROM sanctions WHERE user_id = $1 AND kind = 'chat_ban'"       \
    " AND room_id IS NULL AND created_by IS NULL AND reason = 'spam'"                           \
    " AND expires_at = to_timestamp($2::bigint / 1000.0))"                                      \
    " RETURNING id)"                                                                            \
    " INSERT INTO audit_log (at, actor_id, action, target_user, reason, expires_at, details)"   \
    " SELECT to_timestamp($3::bigint / 1000.0), NULL, 'chat_ban', $1, 'spam',"                  \
    " to_timestamp($2::bigint / 1000.0),"                                                       \
    " jsonb_build_object('rule', 'spam', 'offence', $4::bigint, 'sanction', s.id::text) FROM s"

int ps_store_spam_ban(struct ps_store *s,
                      const char *user,
                      int64_t until_ms,
                      int64_t offence,
                      int64_t ts,
                      long long *stored)
{
    char until[24], off[24], at[24];
    const char *params[4] = {user, until, at, off};
    PGresult *res;
    int rc = CHAT_OK;

    *stored = 0;
    if (!s->conn || s->wb)
        return CHAT_EAGAIN;
    snprintf(until, sizeof(until), "%" PRId64, until_ms);
    snprintf(at, sizeof(at), "%" PRId64, ts);
    snprintf(off, sizeof(off), "%" PRId64, offence);
    guard_begin(s);
    res = PQexecParams(s->conn, SPAM_BAN_SQL, 4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK ||
        chat_parse_ll(PQcmdTuples(res), 0, INT64_MAX, stored) != CHAT_OK) {
        ps_pg_log_error(s->conn, res, "storing a spam-rule chat ban");
        rc = CHAT_EIO;
    }
    PQclear(res);
    if (rc != CHAT_OK)
        after_error(s);
    else
        s->last_io_ms = chat_mono_ms();
    guard_end(s);
    return rc;
}
