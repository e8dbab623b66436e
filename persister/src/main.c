/* main.c - chat-persister: configuration, signals, the /healthz /readyz /metrics endpoint,
 * startup (PostgreSQL schema first, then the consumer) and an orderly shutdown. See ps.h. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chat/config.h"
#include "chat/httpd.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/metrics.h"
#include "chat/time.h"

#include "ps.h"

#define CONNECT_BACKOFF_MAX_MS 5000

/* The only process-global mutable: signals received (1: drain and exit, 2+: hurry). */
static atomic_int stop_signals; /* lock-free: written by the handler, read by the guard */
static atomic_llong stop_at_ms; /* monotonic ms of the first signal (0: none), by the handler */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "the signal handler writes these atomics: they must be lock-free");

static const struct chat_cfg_opt opts[] = {
    {"log-level", "CHAT_LOG_LEVEL", CHAT_CFG_STR, 0, 0, "info", offsetof(struct ps_cfg, log_level),
     0, "log level: debug|info|warn|error"},
    {"pg-dsn", "CHAT_PG_DSN", CHAT_CFG_STR, 0, 0, "", offsetof(struct ps_cfg, pg_dsn),
     CHAT_CFG_REQUIRED | CHAT_CFG_SECRET, "PostgreSQL connection string (libpq conninfo or URI)"},
    {"metrics-addr", "CHAT_METRICS_ADDR", CHAT_CFG_STR, 0, 0, "127.0.0.1",
     offsetof(struct ps_cfg, metrics_addr), CHAT_CFG_REQUIRED,
     "listen address of /healthz /readyz /metrics"},
    {"metrics-port", "CHAT_METRICS_PORT", CHAT_CFG_INT, 0, 65535, "9101",
     offsetof(struct ps_cfg, metrics_port), 0, "listen port of /healthz /readyz /metrics (0: any)"},
    {"batch-max", "CHAT_BATCH_MAX", CHAT_CFG_INT, 1, 100000, "5000",
     offsetof(struct ps_cfg, batch_max), 0, "messages per database batch"},
    {"batch-ms", "CHAT_BATCH_MS", CHAT_CFG_INT, 1, 10000, "50", offsetof(struct ps_cfg, batch_ms),
     0, "longest wait (ms) from a batch's first message to its write"},
    /* at most 1 MiB: a broker counts at most max.partition.fetch.bytes (1 MiB) of each partition
     * towards it, so a larger value might never be met and every fetch would wait out batch-ms */
    {"fetch-min-bytes", "CHAT_PERSISTER_FETCH_MIN_BYTES", CHAT_CFG_INT, 1, 1048576, "1048576",
     offsetof(struct ps_cfg, fetch_min_bytes), 0,
     "bytes a chat.messages fetch waits for, at most CHAT_BATCH_MS (instead of the shared "
     "Kafka fetch settings, which only the events consumer uses)"},
    {"group", "CHAT_PERSISTER_GROUP", CHAT_CFG_STR, 0, 0, "chat-persister",
     offsetof(struct ps_cfg, group), CHAT_CFG_REQUIRED, "Kafka consumer group"},
    {"partition-ahead-days", "CHAT_PARTITION_AHEAD_DAYS", CHAT_CFG_INT, 0, 60, "7",
     offsetof(struct ps_cfg, ahead_days), 0, "daily partitions created ahead of a message's day"},
    {"migrate-only", "CHAT_MIGRATE_ONLY", CHAT_CFG_BOOL, 0, 0, "false",
     offsetof(struct ps_cfg, migrate_only), 0,
     "apply the schema migrations and partitions, then exit"},
    {"partition-lock-timeout-ms", "CHAT_PARTITION_LOCK_TIMEOUT_MS", CHAT_CFG_INT, 1, 60000, "2000",
     offsetof(struct ps_cfg, part_lock_timeout_ms), 0,
     "lock_timeout (ms) of partition DDL (ACCESS EXCLUSIVE on messages): a long reader makes it"
     " fail and retry instead of stalling every writer"},
    {"partition-retry-ms", "CHAT_PARTITION_RETRY_MS", CHAT_CFG_INT, 100, 3600000, "10000",
     offsetof(struct ps_cfg, part_retry_ms), 0,
     "wait (ms) after a failed partition roll-ahead before the next attempt"},
    {"pg-statement-timeout-ms", "CHAT_PG_STATEMENT_TIMEOUT_MS", CHAT_CFG_INT, 0, 3600000, "30000",
     offsetof(struct ps_cfg, pg_statement_timeout_ms), 0,
     "statement_timeout (ms) of the PostgreSQL session (0: none)"},
    {"pg-lock-timeout-ms", "CHAT_PG_LOCK_TIMEOUT_MS", CHAT_CFG_INT, 0, 3600000, "10000",
     offsetof(struct ps_cfg, pg_lock_timeout_ms), 0,
     "lock_timeout (ms) of the PostgreSQL session (0: none)"},
    {"pg-keepalives-idle-s", "CHAT_PG_KEEPALIVES_IDLE_S", CHAT_CFG_INT, 1, 7200, "30",
     offsetof(struct ps_cfg, pg_keepalives_idle_s), 0,
     "PostgreSQL TCP keepalive: idle seconds before the first probe"},
    {"pg-keepalives-interval-s", "CHAT_PG_KEEPALIVES_INTERVAL_S", CHAT_CFG_INT, 1, 600, "10",
     offsetof(struct ps_cfg, pg_keepalives_interval_s), 0,
     "PostgreSQL TCP keepalive: seconds between probes"},
    {"pg-keepalives-count", "CHAT_PG_KEEPALIVES_COUNT", CHAT_CFG_INT, 1, 100, "3",
     offsetof(struct ps_cfg, pg_keepalives_count), 0,
     "PostgreSQL TCP keepalive: unanswered probes before the connection is dead"},
    {"pg-tcp-user-timeout-ms", "CHAT_PG_TCP_USER_TIMEOUT_MS", CHAT_CFG_INT, 0, 3600000, "30000",
     offsetof(struct ps_cfg, pg_tcp_user_timeout_ms), 0,
     "PostgreSQL TCP_USER_TIMEOUT (ms): sent data unacknowledged this long drops the"
     " connection (0: the kernel's default)"},
    {"pg-hang-timeout-ms", "CHAT_PG_HANG_TIMEOUT_MS", CHAT_CFG_INT, 1000, 250000, "60000",
     offsetof(struct ps_cfg, pg_hang_timeout_ms), 0,
     "a database operation (a batch write, partition DDL, read markers, the connect's setup)"
     " without an end after this long (ms) is cut off: the connection is dropped and the work"
     " retried. A hung server is still acknowledged by its kernel, so only this ends the wait;"
     " keep it above CHAT_PG_STATEMENT_TIMEOUT_MS and under librdkafka's max.poll.interval.ms"},
    {"ready-stuck-write-ms", "CHAT_READY_STUCK_WRITE_MS", CHAT_CFG_INT, 100, 3600000, "30000",
     offsetof(struct ps_cfg, stuck_write_ms), 0,
     "/readyz answers 503 while a batch write has been running or failing this long (ms)"},
    {"commit-interval-ms", "CHAT_COMMIT_INTERVAL_MS", CHAT_CFG_INT, 0, 3600000, "0",
     offsetof(struct ps_cfg, commit_interval_ms), 0,
     "commit Kafka offsets at most this often (ms; 0: after every batch); a crash re-reads"
     " (and skips) what was stored since the last commit"},
    {"partition-check-ms", "CHAT_PARTITION_CHECK_MS", CHAT_CFG_INT, 100, 3600000, "10000",
     offsetof(struct ps_cfg, partition_check_ms), 0,
     "how often (ms) the partition count of the messages topic is re-read; a change stops"
     " all writing (and /readyz says 503) until restarted"},
    {"redis-host", "CHAT_REDIS_HOST", CHAT_CFG_STR, 0, 0, "127.0.0.1",
     offsetof(struct ps_cfg, redis_host), CHAT_CFG_REQUIRED, "Redis host of the recent cache"},
    {"redis-port", "CHAT_REDIS_PORT", CHAT_CFG_INT, 1, 65535, "6379",
     offsetof(struct ps_cfg, redis_port), 0, "Redis port of the recent cache"},
    {"redis-timeout-ms", "CHAT_REDIS_TIMEOUT_MS", CHAT_CFG_INT, 50, 60000, "200",
     offsetof(struct ps_cfg, redis_timeout_ms), 0,
     "Redis connect/command deadline (ms) of the recent cache writes; past it the batch's"
     " cache writes are skipped (counted) and Redis is retried after a backoff"},
    {"recent-per-room", "CHAT_RECENT_PER_ROOM", CHAT_CFG_INT, 0, 100000, "500",
     offsetof(struct ps_cfg, recent_per_room), 0,
     "messages per room kept in the Redis recent cache chat:recent:ROOM (0: not written)"},
    {"recent-per-user", "CHAT_RECENT_PER_USER", CHAT_CFG_INT, 0, 100000, "50",
     offsetof(struct ps_cfg, recent_per_user), 0,
     "messages per user kept in the Redis recent cache chat:urecent:USER (0: not written)"},
    {"events-group", "CHAT_PERSISTER_EVENTS_GROUP", CHAT_CFG_STR, 0, 0, "chat-persister-events",
     offsetof(struct ps_cfg, events_group), CHAT_CFG_REQUIRED,
     "Kafka consumer group reading chat.events (read markers)"},
    CHAT_HTTPD_CFG_OPTS(struct ps_cfg, health),
    CHAT_KAFKA_CFG_OPTS(struct ps_cfg, kafka),
};

static void on_signal(int sig)
{
    (void)sig;
    if (atomic_load(&stop_signals) == 0) { /* clock_gettime is async-signal-safe */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        atomic_store(&stop_at_ms, (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    }
    stop_signals++; /* both signals are blocked while the handler runs */
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL); /* a scraper closing early must not kill us */
}

static size_t metric_defs(struct ps_metrics *m, struct chat_metric_def *d)
{
    const struct chat_metric_def defs[] = {
        {"chat_persister_messages_stored_total", "messages inserted into PostgreSQL",
         CHAT_METRIC_COUNTER, &m->stored},
        {"chat_persister_duplicates_total", "messages already stored (replays), skipped",
         CHAT_METRIC_COUNTER, &m->duplicates},
        {"chat_persister_batches_total", "batches written", CHAT_METRIC_COUNTER, &m->batches},
        {"chat_persister_undecodable_total", "Kafka records skipped as undecodable",
         CHAT_METRIC_COUNTER, &m->undecodable},
        {"chat_persister_pg_errors_total", "failed PostgreSQL operations", CHAT_METRIC_COUNTER,
         &m->pg_errors},
        {"chat_persister_commit_errors_total", "failed Kafka offset commits", CHAT_METRIC_COUNTER,
         &m->commit_errors},
        {"chat_persister_kafka_errors_total", "Kafka consumer error events", CHAT_METRIC_COUNTER,
         &m->kafka_errors},
        {"chat_persister_partitions_ensured_total",
         "day partitions created (or found) by CREATE TABLE IF NOT EXISTS", CHAT_METRIC_COUNTER,
         &m->partitions_created},
        {"chat_persister_pg_up", "1 when connected to PostgreSQL with the schema in place",
         CHAT_METRIC_GAUGE, &m->pg_up},
        {"chat_persister_assigned_partitions", "Kafka partitions assigned to this consumer",
         CHAT_METRIC_GAUGE, &m->assigned},
        {"chat_persister_consumer_lag", "messages behind the high watermarks (cached, ~1 s)",
         CHAT_METRIC_GAUGE, &m->lag},
        {"chat_persister_batch_rows", "rows in the batch being built", CHAT_METRIC_GAUGE,
         &m->batch_rows},
        {"chat_persister_id_conflicts_total",
         "rows not stored because another message (another Kafka position) has their id",
         CHAT_METRIC_COUNTER, &m->id_conflicts},
        {"chat_persister_pg_cut_total",
         "database operations cut off: no end within CHAT_PG_HANG_TIMEOUT_MS, or a stop gave up",
         CHAT_METRIC_COUNTER, &m->pg_cut},
        {"chat_persister_partition_ddl_failures_total",
         "failed partition DDL (lock_timeout behind a long reader, errors); retried",
         CHAT_METRIC_COUNTER, &m->part_ddl_failures},
        {"chat_persister_partition_changes_total",
         "partition count changes of the messages topic seen (writing then stops)",
         CHAT_METRIC_COUNTER, &m->partition_changes},
        {"chat_persister_cached_total", "messages written to the Redis recent cache",
         CHAT_METRIC_COUNTER, &m->cached},
        {"chat_persister_cache_skipped_total",
         "stored messages not written to the Redis recent cache (Redis down or failing)",
         CHAT_METRIC_COUNTER, &m->cache_skipped},
        {"chat_persister_cache_errors_total", "failed Redis connects and cache pipelines",
         CHAT_METRIC_COUNTER, &m->cache_errors},
        {"chat_persister_redis_up", "1 when the last recent cache write worked", CHAT_METRIC_GAUGE,
         &m->redis_up},
        {"chat_persister_read_events_total", "read events consumed from chat.events",
         CHAT_METRIC_COUNTER, &m->read_events},
        {"chat_persister_read_markers_stored_total",
         "room_members rows whose last_read_seq moved forward", CHAT_METRIC_COUNTER,
         &m->reads_applied},
        {"chat_persister_spam_bans_stored_total",
         "spam-rule chat bans stored (a sanctions row and an audit_log row)", CHAT_METRIC_COUNTER,
         &m->spam_bans},
        {"chat_persister_batch_seconds", "time to write and commit one batch", CHAT_METRIC_HIST,
         &m->batch_us},
        {"chat_persister_store_delay_seconds", "message timestamp to stored", CHAT_METRIC_HIST,
         &m->delay_us},
    };
    memcpy(d, defs, sizeof(defs));
    return sizeof(defs) / sizeof(defs[0]);
}

/* httpd thread: reads atomics only. */
static int http_fn(void *ud, const char *path, struct chat_buf *body, const char **ctype)
{
    struct ps *ps = ud;
    struct chat_metric_def defs[32];
    long long up, assigned, since, changed, stuck_ms = 0;
    bool ready;
    size_t n;

    if (strcmp(path, "/healthz") == 0)
        return chat_buf_appends(body, "ok\n") == CHAT_OK ? 200 : 500;
    if (strcmp(path, "/readyz") == 0) {
        up = chat_metric_get(&ps->m.pg_up);
        assigned = chat_metric_get(&ps->m.assigned);
        since = chat_metric_get(&ps->m.write_since_ms);
        if (since > 0 && chat_mono_ms() - since >= ps->cfg->stuck_write_ms)
            stuck_ms = chat_mono_ms() - since;
        changed = chat_metric_get(&ps->m.partition_changes) > 0;
        ready = up && assigned > 0 && stuck_ms == 0 && !changed;
        if (chat_buf_appendf(body, "%s postgres=%s assigned=%lld", ready ? "ready" : "not ready",
                             up ? "up" : "down", assigned) != CHAT_OK ||
            (stuck_ms > 0 &&
             chat_buf_appendf(body,
                              " write_stuck_ms=%lld (a batch write has been running or"
                              " failing longer than %d ms)",
                              stuck_ms, ps->cfg->stuck_write_ms) != CHAT_OK) ||
            (changed && chat_buf_appendf(body,
                                         " partitions_changed=1 (the partition count of %s"
                                         " changed: nothing is written until restart)",
                                         ps->cfg->kafka.topic_messages) != CHAT_OK) ||
            chat_buf_appends(body, "\n") != CHAT_OK)
            return 500;
        return ready ? 200 : 503;
    }
    if (strcmp(path, "/metrics") == 0) {
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        n = metric_defs(&ps->m, defs);
        return chat_metrics_render(body, defs, n) == CHAT_OK ? 200 : 500;
    }
    if (chat_buf_appends(body, "not found\n") != CHAT_OK)
        return 500;
    return 404;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short, which is what we want */
}

/* Connects to PostgreSQL and applies the schema, retrying with backoff until done or stopped. */
static int connect_store(struct ps *ps)
{
    int backoff = 100;

    while (!stop_signals) {
        if (ps_store_connect(&ps->store) == CHAT_OK)
            return CHAT_OK;
        chat_log(backoff == 100 ? CHAT_LOG_WARN : CHAT_LOG_DEBUG,
                 "postgres not ready; retrying in %d ms", backoff);
        sleep_ms(backoff);
        backoff = backoff * 2 > CONNECT_BACKOFF_MAX_MS ? CONNECT_BACKOFF_MAX_MS : backoff * 2;
    }
    return CHAT_ESTATE;
}

/* Both consumers' Kafka settings (CHAT_KAFKA_EXTRA included) are checked before anything
 * starts, so a bad one exits 2 at once, with PostgreSQL up or not. */
static int check_kafka_conf(const struct ps_cfg *cfg)
{
    const char *groups[2] = {cfg->group, cfg->events_group};
    char errstr[512];

    for (int i = 0; i < 2; i++) {
        rd_kafka_conf_t *conf =
            ps_consumer_conf_new(cfg, groups[i], i == 0, errstr, sizeof(errstr));
        if (!conf) {
            chat_log(CHAT_LOG_ERROR, "config error: kafka: %s", errstr);
            return CHAT_EINVAL;
        }
        rd_kafka_conf_destroy(conf);
    }
    return CHAT_OK;
}

/* Startup after config: returns the process exit status. */
static int run(const struct ps_cfg *cfg)
{
    struct chat_httpd *httpd = NULL;
    struct ps *ps = chat_xcalloc(1, sizeof(*ps));
    int status = 1;

    ps->cfg = cfg;
    ps->stop = &stop_signals;
    if (!cfg->migrate_only && check_kafka_conf(cfg) != CHAT_OK) {
        chat_free(ps);
        return 2;
    }
    ps_store_init(&ps->store, cfg, &ps->m, &stop_signals, &stop_at_ms);
    ps_batch_init(&ps->batch);
    ps_batch_init(&ps->wbatch);
    ps_batch_init(&ps->done);
    ps_batch_init(&ps->held);
    ps_cache_init(&ps->cache, cfg, &ps->m);
    if (!cfg->migrate_only && chat_httpd_start_ex(cfg->metrics_addr, cfg->metrics_port,
                                                  &cfg->health, http_fn, ps, &httpd) != CHAT_OK)
        goto out;
    if (connect_store(ps) != CHAT_OK) {
        /* stopped before PostgreSQL came up: a clean stop, but a migration not done */
        status = cfg->migrate_only ? 1 : 0;
        goto out;
    }
    if (cfg->migrate_only) {
        /* the roll-ahead is not fatal to the service (its tick retries), but it is this run's job
         */
        if (ps_store_ensure_today(&ps->store, chat_now_ms()) != CHAT_OK) {
            chat_log(CHAT_LOG_ERROR,
                     "migrate-only: the partitions of today and the %d days ahead"
                     " could not be created",
                     cfg->ahead_days);
            goto out;
        }
        chat_log(CHAT_LOG_INFO, "schema is up to date");
        status = 0;
        goto out;
    }
    if (ps_consumer_start(ps) != CHAT_OK || ps_events_start(ps) != CHAT_OK)
        goto out;
    status = ps_run(ps) == CHAT_OK ? 0 : 1;
out:
    chat_httpd_stop(httpd);
    ps_events_stop(ps);
    ps_consumer_free(ps);
    ps_cache_fini(&ps->cache);
    ps_store_fini(&ps->store);
    ps_batch_fini(&ps->batch);
    ps_batch_fini(&ps->wbatch);
    ps_batch_fini(&ps->done);
    ps_batch_fini(&ps->held);
    chat_free(ps);
    return status;
}

int main(int argc, char **argv)
{
    struct ps_cfg cfg;
    int level = -1;
    int status;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    rc = chat_cfg_load(opts, CHAT_CFG_COUNT(opts), &cfg, argc, argv,
                       "chat-persister: stores chat.messages in PostgreSQL (daily partitions), "
                       "committing Kafka offsets after each database commit, then writes "
                       "them to the Redis recent cache; stores read markers from chat.events.");
    if (rc == 1) {
        status = 0;
        goto out;
    }
    if (cfg.log_level)
        level = chat_log_level_parse(cfg.log_level);
    if (level < 0)
        (void)fprintf(stderr,
                      "config error: CHAT_LOG_LEVEL (--log-level): '%s' is not one of "
                      "debug|info|warn|error\n",
                      cfg.log_level ? cfg.log_level : "");
    if (rc != CHAT_OK || level < 0) {
        status = 2;
        goto out;
    }
    chat_log_init("persister", level);
    install_signals();
    chat_log(CHAT_LOG_INFO, "chat-persister starting");
    chat_cfg_dump(opts, CHAT_CFG_COUNT(opts), &cfg);
    status = run(&cfg);
    chat_log(CHAT_LOG_INFO, "chat-persister exiting with status %d", status);
out:
    chat_cfg_free(opts, CHAT_CFG_COUNT(opts), &cfg);
    return status;
}
