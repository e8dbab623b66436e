/* ps_store.c - the PostgreSQL side of the persister: connection and reconnection, schema
 * (migrations), daily partitions (cached set of known days, created under an advisory lock)
 * and the batch insert (one prepared INSERT ... SELECT FROM unnest($1..$9) per batch).
 * Blocking libpq on the main thread; see ps.h. Never logs row data: errors are logged with
 * their SQLSTATE and primary message only. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "ps.h"

#define INSERT_NAME "ps_insert"
#define INSERT_SQL                                                                                \
    "INSERT INTO messages (id, room, kafka_partition, kafka_offset, user_id, nick, body,"         \
    " client_msg_id, created_at)"                                                                 \
    " SELECT t.id, t.room, t.kp, t.ko, t.u, t.n, t.b, t.c,"                                       \
    " timestamptz 'epoch' + t.ts * interval '1 millisecond'"                                      \
    " FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::bigint[], $5::text[], $6::text[]," \
    " $7::text[], $8::text[], $9::bigint[]) AS t(id, room, kp, ko, u, n, b, c, ts)"               \
    " ON CONFLICT DO NOTHING"
#define LIST_PARTITIONS_SQL                                                     \
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid" \
    " WHERE i.inhparent = 'messages'::regclass"
#define PING_IDLE_MS              5000
#define BACKOFF_MIN_MS            100
#define BACKOFF_MAX_MS            5000
#define SQLSTATE_CHECK_VIOLATION  "23514" /* also "no partition of relation ... found for row" */
#define SQLSTATE_UNIQUE_VIOLATION "23505"
#define COPY_CHUNK                (1 << 20) /* bytes per PQputCopyData */
#define COPY_SQL                                                                                   \
    "COPY messages (id, room, kafka_partition, kafka_offset, user_id, nick, body, client_msg_id, " \
    "created_at) FROM STDIN"

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

void ps_store_init(struct ps_store *s, const struct ps_cfg *cfg, struct ps_metrics *m)
{
    memset(s, 0, sizeof(*s));
    s->cfg = cfg;
    s->m = m;
    s->ensured_today = -1;
    s->backoff_ms = BACKOFF_MIN_MS;
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_init(&s->cols[i], 0, 0);
    chat_buf_init(&s->copy, 0, 0);
}

static void store_close(struct ps_store *s)
{
    if (s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
        chat_log(CHAT_LOG_WARN, "postgres: disconnected");
    }
    chat_metric_set(&s->m->pg_up, 0);
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
    if (s->conn) {
        PQfinish(s->conn);
        s->conn = NULL;
    }
    ps_days_fini(&s->days);
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_fini(&s->cols[i]);
    chat_buf_fini(&s->copy);
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

/* Creates, in one round trip and transaction under PS_LOCK_PARTITION, the partitions of each
 * day in days[] not known to exist together with the ahead_days after it. */
static int ensure_days(struct ps_store *s, const int32_t *days, size_t ndays)
{
    size_t cap = ndays * ((size_t)s->cfg->ahead_days + 1), n = 0;
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
            for (int k = 0; k <= s->cfg->ahead_days; k++)
                want_day(s, days[i] + k, missing, &n, cap);
    chat_buf_init(&sql, 0, 0);
    rc = chat_buf_appendf(&sql, "SELECT pg_advisory_xact_lock(%lld);\n",
                          (long long)PS_LOCK_PARTITION);
    for (size_t i = 0; i < n && rc == CHAT_OK; i++)
        rc = ps_partition_ddl(&sql, missing[i]);
    if (rc == CHAT_OK && n > 0) {
        /* Several statements in one simple query run as one implicit transaction, so the
         * advisory lock is held until all partitions exist. */
        rc = ps_pg_exec(s->conn, "creating partitions", chat_buf_data(&sql));
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
    return rc;
}

int ps_store_ensure_today(struct ps_store *s, int64_t now_ms)
{
    int32_t today;
    int rc;

    if (!s->conn)
        return CHAT_EIO;
    if (ps_day_of_ms(now_ms, &today) != CHAT_OK)
        return CHAT_EINVAL; /* a clock outside 1970..9999: nothing sensible to create */
    if (today == s->ensured_today)
        return CHAT_OK;
    rc = ensure_days(s, &today, 1);
    if (rc == CHAT_OK)
        s->ensured_today = today;
    else
        after_error(s);
    return rc;
}

/* Sets up a fresh connection: schema, partitions, prepared insert. */
static int setup(struct ps_store *s)
{
    PGresult *res;
    int applied = 0;
    int rc;

    rc = ps_migrate(s->conn, ps_migrations, ps_migrations_count, &applied);
    if (rc == CHAT_OK)
        rc = load_partitions(s);
    if (rc == CHAT_OK) {
        s->ensured_today = -1;
        rc = ps_store_ensure_today(s, chat_now_ms());
    }
    if (rc != CHAT_OK || !s->conn)
        return CHAT_EIO;
    res = PQprepare(s->conn, INSERT_NAME, INSERT_SQL, PS_NCOLS, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        ps_pg_log_error(s->conn, res, "preparing insert");
        rc = CHAT_EIO;
    }
    PQclear(res);
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
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "dbname",
                                       NULL};
    const char *vals[] = {"5", "chat-persister", "30", "10", "3", s->cfg->pg_dsn, NULL};
    char line[512];
    int rc;

    if (s->conn)
        return CHAT_OK;
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
    rc = setup(s);
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

void ps_store_tick(struct ps_store *s, int64_t now_ms)
{
    int64_t mono = chat_mono_ms();
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

static int insert_rows(struct ps_store *s, const struct ps_batch *b, long long *inserted)
{
    const char *params[PS_NCOLS];
    long long n = 0;
    PGresult *res;
    int rc;

    rc = ps_batch_encode(b, s->cols);
    if (rc != CHAT_OK)
        return rc;
    for (int i = 0; i < PS_NCOLS; i++)
        params[i] = chat_buf_data(&s->cols[i]);
    res = PQexecPrepared(s->conn, INSERT_NAME, PS_NCOLS, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        if (chat_parse_ll(PQcmdTuples(res), 0, (long long)b->n, &n) != CHAT_OK)
            n = 0;
        *inserted = n;
    } else {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        ps_pg_log_error(s->conn, res, "inserting batch");
        rc = CHAT_EIO;
        /* A partition vanished (dropped by hand or by retention): re-read the catalog so the
         * retry recreates what is missing. */
        if (state && strcmp(state, SQLSTATE_CHECK_VIOLATION) == 0 && load_partitions(s) != CHAT_OK)
            ps_days_clear(&s->days);
    }
    PQclear(res);
    return rc;
}

/* Appends v to the COPY text-format buffer, escaping what the format gives a meaning to. */
static int copy_text(struct chat_buf *out, const char *v)
{
    const char *run = v;
    int rc = CHAT_OK;

    if (!v)
        return chat_buf_append(out, "\\N", 2);
    for (; *v; v++) {
        const char *esc = *v == '\\'   ? "\\\\"
                          : *v == '\t' ? "\\t"
                          : *v == '\n' ? "\\n"
                          : *v == '\r' ? "\\r"
                                       : NULL;
        if (!esc)
            continue;
        rc |= chat_buf_append(out, run, (size_t)(v - run));
        rc |= chat_buf_append(out, esc, 2);
        run = v + 1;
    }
    rc |= chat_buf_append(out, run, (size_t)(v - run));
    return rc;
}

static int copy_encode(const struct ps_batch *b, struct chat_buf *out)
{
    int rc = CHAT_OK;

    chat_buf_reset(out);
    for (size_t i = 0; i < b->n && rc == CHAT_OK; i++) {
        const struct ps_row *r = &b->rows[i];
        time_t sec = (time_t)(r->ts_ms / 1000);
        struct tm tm;
        char ts[48];

        gmtime_r(&sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        rc |= chat_buf_appendf(out, "%" PRId64 "\t", r->id);
        rc |= copy_text(out, r->room);
        rc |= chat_buf_appendf(out, "\t%" PRId32 "\t%" PRId64 "\t", r->partition, r->offset);
        rc |= copy_text(out, r->user);
        rc |= chat_buf_append(out, "\t", 1);
        rc |= copy_text(out, r->nick);
        rc |= chat_buf_append(out, "\t", 1);
        rc |= copy_text(out, r->body);
        rc |= chat_buf_append(out, "\t", 1);
        rc |= copy_text(out, r->cmid);
        rc |= chat_buf_appendf(out, "\t%s.%03d+00\n", ts, (int)(r->ts_ms % 1000));
    }
    return rc ? CHAT_ETOOBIG : CHAT_OK;
}

/* The fast path: COPY the batch. Returns CHAT_OK (all rows stored), CHAT_EEXIST (some row was
 * stored before: a replay; nothing of this COPY was kept) or CHAT_EIO. */
/* Sends the encoded batch in chunks (libpq takes an int length and would copy it whole). */
static int copy_send(struct ps_store *s)
{
    const char *p = chat_buf_data(&s->copy);
    size_t left = s->copy.len;

    while (left > 0) {
        int n = left > COPY_CHUNK ? COPY_CHUNK : (int)left;
        if (PQputCopyData(s->conn, p, n) != 1)
            return CHAT_EIO;
        p += n;
        left -= (size_t)n;
    }
    return CHAT_OK;
}

static int copy_rows(struct ps_store *s, const struct ps_batch *b)
{
    bool sent, recheck_partitions = false;
    long long rows = -1;
    PGresult *res;
    int rc = CHAT_EIO;

    if (copy_encode(b, &s->copy) != CHAT_OK)
        return CHAT_EIO;
    res = PQexec(s->conn, COPY_SQL);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        ps_pg_log_error(s->conn, res, "starting COPY");
        PQclear(res);
        return CHAT_EIO;
    }
    PQclear(res);
    sent = copy_send(s) == CHAT_OK;
    /* end the COPY either way, so the connection leaves COPY mode in a known state */
    if (PQputCopyEnd(s->conn, sent ? NULL : "chat-persister: sending the batch failed") != 1 ||
        !sent)
        ps_pg_log_error(s->conn, NULL, "sending COPY data");
    while ((res = PQgetResult(s->conn))) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            if (chat_parse_ll(PQcmdTuples(res), 0, (long long)b->n, &rows) != CHAT_OK)
                rows = -1;
            rc = sent && rows == (long long)b->n ? CHAT_OK : CHAT_EIO;
        } else if (state && strcmp(state, SQLSTATE_UNIQUE_VIOLATION) == 0) {
            rc = CHAT_EEXIST; /* expected after a crash or rebalance: not an error */
        } else {
            ps_pg_log_error(s->conn, res, "COPY batch");
            recheck_partitions = state && strcmp(state, SQLSTATE_CHECK_VIOLATION) == 0;
        }
        PQclear(res);
    }
    if (rc == CHAT_EIO && rows >= 0)
        chat_log(CHAT_LOG_ERROR, "COPY stored %lld rows of a batch of %zu", rows, b->n);
    /* a partition vanished: re-read the catalog (outside the result loop) for the retry */
    if (recheck_partitions && load_partitions(s) != CHAT_OK)
        ps_days_clear(&s->days);
    return rc;
}

int ps_store_write(struct ps_store *s, const struct ps_batch *b, long long *inserted)
{
    int32_t days[64] = {0};
    size_t ndays;
    int rc;

    *inserted = 0;
    if (b->n == 0)
        return CHAT_OK;
    rc = ps_store_connect(s);
    if (rc != CHAT_OK)
        return rc;
    ndays = batch_days(b, days, sizeof(days) / sizeof(days[0]));
    rc = ensure_days(s, days, ndays);
    if (rc == CHAT_OK && ndays == sizeof(days) / sizeof(days[0])) {
        /* More distinct days than fit (a replay of old data): check every row's day. */
        for (size_t i = 0; i < b->n && rc == CHAT_OK; i++)
            rc = ensure_days(s, &b->rows[i].day, 1);
    }
    if (rc == CHAT_OK) {
        /* COPY is the database's fastest ingest; a batch holding an already stored row (a
         * replay) fails as a whole and goes again through the idempotent INSERT ... ON CONFLICT
         * DO NOTHING, so nothing is ever stored twice. */
        rc = copy_rows(s, b);
        if (rc == CHAT_OK)
            *inserted = (long long)b->n;
        else if (rc == CHAT_EEXIST)
            rc = insert_rows(s, b, inserted);
    }
    if (rc != CHAT_OK) {
        after_error(s);
        return CHAT_EIO;
    }
    s->last_io_ms = chat_mono_ms();
    return CHAT_OK;
}
