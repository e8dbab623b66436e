/* api_outbox.c - the outbox relay (api_outbox.h). */
#include "api_outbox.h"

#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "chat/db_migrate.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "api.h"
#include "bus/api_kafka.h"
#include "db/api_db.h"

#define OUTBOX_LOCK      0x636861746f757462LL /* "chatoutb": one relay at a time */
#define OUTBOX_FAILS_MAX 5 /* failed passes in a row: the lock goes to another replica */

struct api_outbox {
    struct api *a;
    pthread_t thread;
    int wake[2]; /* a byte: stop */
    atomic_bool stop;
    struct api_db db;
    bool listening, locked;
    bool migrated;      /* the schema migrations ran once on this process's first connection */
    int64_t recheck_at; /* chat_mono_ms of the next check of a refused query */
    struct chat_log_limit lim; /* "not relayed" lines */
};

bool api_outbox_put(struct api_db *db,
                    const char *topic,
                    const char *key,
                    const char *type,
                    const struct chat_buf *v)
{
    char *payload = NULL;
    const char *p[4] = {topic, key, type, NULL};
    PGresult *r;
    bool good;

    if (v) {
        payload = chat_xmalloc(v->len + 1);
        memcpy(payload, chat_buf_data(v), v->len);
        payload[v->len] = '\0';
        p[3] = payload;
    }
    r = api_db_qn(db, API_Q_outbox_add, 4, p);
    chat_free(payload);
    good = api_db_ok(r, PGRES_COMMAND_OK, "queueing an event");
    if (good)
        PQclear(r);
    return good;
}

bool api_outbox_add(struct api_db *db, const char *key, const char *type, const struct chat_buf *v)
{
    return api_outbox_put(db, "events", key, type, v);
}

/* chat_db_migrate's runner: every statement within CHAT_PG_TIMEOUT_MS (api_db.c). */
static PGresult *run_db(void *ctx, const char *sql, int n, const char *const *params)
{
    struct api_db *db = ctx;

    return params ? api_db_q(db, sql, n, params) : api_db_simple(db, sql);
}

/* "relation ... already exists, skipping": the normal case of a database already migrated */
static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Runs on the relay's connects until it succeeded once, before the queries are prepared: the
 * migrations the database lacks, under their advisory lock (whichever service starts first
 * applies them; chat/db_migrate.h). A failure (logged) fails the connect: tried again at the
 * next one. */
static bool migrate_once(struct api_db *db, void *arg)
{
    struct api_outbox *o = arg;
    PQnoticeProcessor was;
    int applied = 0, rc;

    if (o->migrated)
        return true;
    was = PQsetNoticeProcessor(db->pg, quiet, NULL);
    rc = chat_db_migrate(run_db, db, chat_db_migrations, chat_db_migrations_count, &applied);
    if (db->pg)
        (void)PQsetNoticeProcessor(db->pg, was, NULL);
    if (rc != CHAT_OK)
        return false;
    o->migrated = true;
    chat_log(CHAT_LOG_INFO, "migrations: %d applied, %zu known", applied, chat_db_migrations_count);
    return true;
}

/* Drops the notifications libpq has read; true when there was one. */
static bool drain_notifies(struct api_outbox *o)
{
    PGnotify *n;
    bool any = false;

    while (o->db.pg && (n = PQnotifies(o->db.pg)) != NULL) {
        PQfreemem(n);
        any = true;
    }
    return any;
}

/* Waits up to ms for a notification or the stop byte. A notification read during the last
 * statements (libpq keeps it) counts at once. */
static void nap(struct api_outbox *o, int ms)
{
    if (o->db.pg && o->listening) {
        if (drain_notifies(o))
            return;
        (void)api_db_wait_input(&o->db, ms, o->wake[0]);
        (void)drain_notifies(o);
        return;
    }
    struct pollfd pfd = {.fd = o->wake[0], .events = POLLIN};
    (void)poll(&pfd, 1, ms);
}

/* Connected, listening and holding the relay lock; false (retry later) otherwise. */
static bool take_turn(struct api_outbox *o)
{
    char sql[80];
    PGresult *r;

    if (!o->db.pg) {
        o->listening = o->locked = false;
        if (!api_db_ready(&o->db))
            return false;
        atomic_store(&o->a->db_seen, true);
    }
    if (!o->listening) {
        /* the lock lives as long as this session: a holder whose host died must lose it in
         * seconds, not after the server's default keepalive of two hours */
        if (!api_db_cmd(&o->db, "SET tcp_keepalives_idle = 5") ||
            !api_db_cmd(&o->db, "SET tcp_keepalives_interval = 2") ||
            !api_db_cmd(&o->db, "SET tcp_keepalives_count = 3") ||
            !api_db_cmd(&o->db, "LISTEN chat_outbox"))
            return false;
        o->listening = true;
    }
    if (o->locked)
        return true;
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)", OUTBOX_LOCK);
    r = api_db_simple(&o->db, sql);
    if (!api_db_ok(r, PGRES_TUPLES_OK, "outbox lock"))
        return false;
    o->locked = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return o->locked;
}

/* The Kafka topic of an outbox row's topic column (migrations 0005, 0006). */
static const char *topic_of(const struct api *a, const char *t)
{
    if (strcmp(t, "rooms") == 0)
        return a->cfg->kafka.topic_rooms;
    if (strcmp(t, "sanctions") == 0)
        return a->cfg->kafka.topic_sanctions;
    if (strcmp(t, "messages") == 0)
        return a->cfg->kafka.topic_messages;
    return a->cfg->kafka.topic_events;
}

/* Produces up to a batch of rows and deletes the acknowledged prefix: a row after one that
 * failed stays too, even if Kafka took it, so it is produced again after the failed one and a
 * user's events end in the order they were written (at least once). Returns the rows read, -1
 * on a failure (the rest stays for the next pass). */
static int relay_batch(struct api_outbox *o)
{
    struct api *a = o->a;
    char lim[16];
    const char *p[1] = {lim};
    struct api_delivery *d;
    struct chat_buf ids;
    PGresult *r, *del;
    int n, acked = 0;

    snprintf(lim, sizeof(lim), "%d", a->cfg->outbox_batch);
    r = api_db_qn(&o->db, API_Q_outbox_read, 1, p);
    if (!api_db_ok(r, PGRES_TUPLES_OK, "reading the outbox"))
        return -1;
    n = PQntuples(r);
    atomic_store(&a->m.outbox_pending, n);
    if (n == 0) {
        PQclear(r);
        return 0;
    }
    d = chat_xcalloc((size_t)n, sizeof(*d));
    for (int i = 0; i < n; i++) {
        bool tomb = PQgetisnull(r, i, 3);
        char *v = tomb ? NULL : PQgetvalue(r, i, 3);
        const char *topic = topic_of(a, PQgetvalue(r, i, 5));
        rd_kafka_resp_err_t err =
            api_kafka_produce(a->kafka, topic, PQgetvalue(r, i, 1), v, tomb ? 0 : strlen(v),
                              PQgetvalue(r, i, 2), chat_now_ms(), &d[i]);
        if (err) { /* queue full or the like: these are done, as failed */
            d[i].done = true;
            d[i].err = err;
        }
    }
    api_kafka_wait(a->kafka, d, (size_t)n); /* each within CHAT_PRODUCE_TIMEOUT_MS */
    chat_buf_init(&ids, 0, 0);
    for (int i = 0; i < n && d[i].done && !d[i].err; i++, acked++) {
        int64_t lag = chat_now_ms() * 1000 - api_db_ll(r, i, 4);
        if (chat_buf_appendf(&ids, "%s%s", i ? "," : "{", PQgetvalue(r, i, 0)) != CHAT_OK)
            break;
        chat_hist_record(&a->m.outbox_lag_us, (uint64_t)(lag > 0 ? lag : 0));
    }
    if (acked < n)
        chat_metric_add(&a->m.outbox_failures, n - acked);
    PQclear(r);
    chat_free(d);
    if (acked && chat_buf_appends(&ids, "}") == CHAT_OK) {
        p[0] = chat_buf_data(&ids);
        del = api_db_qn(&o->db, API_Q_outbox_delete, 1, p);
        if (api_db_ok(del, PGRES_COMMAND_OK, "deleting relayed events"))
            PQclear(del);
        else
            acked = 0; /* produced again later: at least once */
        chat_metric_add(&a->m.outbox_relayed, acked);
    }
    chat_buf_fini(&ids);
    if (acked < n) {
        long skipped;
        if (chat_log_every(&o->lim, 10000, &skipped))
            chat_log(CHAT_LOG_WARN, "outbox: %d of %d events not relayed yet (%ld more)", n - acked,
                     n, skipped);
        return -1;
    }
    return n;
}

/* Gives the relay lock back (another replica may relay while this one cannot). */
static void give_up_turn(struct api_outbox *o)
{
    char sql[80];

    if (!o->locked || !o->db.pg)
        return;
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", OUTBOX_LOCK);
    PQclear(api_db_simple(&o->db, sql));
    o->locked = false;
}

/* While a query is refused (a connect of any thread found it not matching the schema): prepares
 * the queries again on this connection, every poll interval at most. Nothing else would: a
 * replica that is not ready gets no requests (k8s takes it out of the Service), and this
 * connection is not made again while it stays up; without it /readyz would stay 503 after the
 * schema is fixed, until a restart. Without a connection, take_turn's connect prepares them anyway.
 */
static void recheck_queries(struct api_outbox *o, int poll_ms)
{
    int64_t now = chat_mono_ms();

    if (!o->db.pg || now < o->recheck_at || api_db_queries_good(&o->a->db_health))
        return;
    o->recheck_at = now + poll_ms;
    (void)api_db_queries_recheck(&o->db);
    api_db_done(&o->db);
}

static void *relay_main(void *arg)
{
    struct api_outbox *o = arg;
    int poll_ms = o->a->cfg->outbox_poll_ms, failed = 0;

    while (!atomic_load(&o->stop)) {
        int n;

        recheck_queries(o, poll_ms);
        /* this replica cannot produce (a fatal producer error), or has failed a while: the
         * lock goes, so a replica that can relays meanwhile; this one tries again later */
        if (api_kafka_fatal(o->a->kafka) || failed >= OUTBOX_FAILS_MAX) {
            give_up_turn(o);
            api_db_done(&o->db);
            failed = 0;
            nap(o, OUTBOX_FAILS_MAX * poll_ms);
            continue;
        }
        if (!take_turn(o)) {
            api_db_done(&o->db);
            nap(o, poll_ms);
            continue;
        }
        n = relay_batch(o);
        api_db_done(&o->db);
        failed = n < 0 ? failed + 1 : 0;
        if (n == o->a->cfg->outbox_batch)
            continue; /* more waiting */
        nap(o, poll_ms);
    }
    api_db_close(&o->db); /* ends the LISTEN and frees the lock */
    return NULL;
}

int api_outbox_start(struct api *a)
{
    struct api_outbox *o = chat_xcalloc(1, sizeof(*o));

    o->a = a;
    api_db_init(&o->db, a->cfg->pg_dsn, "chat-api-outbox", a->cfg->pg_timeout_ms, NULL);
    /* the first connection of the process: it applies the migrations the database lacks and
     * checks every query (readiness: db_seen) */
    api_db_prepare_on_connect(&o->db, API_QD_ALL, &a->db_health, migrate_once, o);
    if (pipe2(o->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        chat_free(o);
        return CHAT_EIO;
    }
    if (pthread_create(&o->thread, NULL, relay_main, o) != 0) {
        close(o->wake[0]);
        close(o->wake[1]);
        chat_free(o);
        return CHAT_EIO;
    }
    a->outbox = o;
    return CHAT_OK;
}

void api_outbox_stop(struct api *a)
{
    struct api_outbox *o = a->outbox;

    if (!o)
        return;
    atomic_store(&o->stop, true);
    (void)!write(o->wake[1], "x", 1);
    pthread_join(o->thread, NULL);
    close(o->wake[0]);
    close(o->wake[1]);
    chat_free(o);
    a->outbox = NULL;
}
