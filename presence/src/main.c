/* presence/src/main.c - chat-presence: configuration, signals and the worker loop.
 *
 * The main thread is the worker: every CHAT_PRESENCE_INTERVAL_MS it runs one tick (lease, then,
 * when leader, snapshot + diff + publish); between ticks it serves Kafka delivery reports.
 * SIGTERM/SIGINT: flush the producer (bounded), release the lease if still ours, exit 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "chat/config.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "pres.h"

#define FLUSH_MS    5000 /* bound of the final producer flush */
#define POLL_MAX_MS 100  /* longest wait between stop-flag checks */

static volatile sig_atomic_t stop_flag; /* the only process-global mutable */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

#define O(f) offsetof(struct pres_cfg, f)
static const struct chat_cfg_opt opts[] = {
    {"log-level", "CHAT_LOG_LEVEL", CHAT_CFG_STR, 0, 0, "info", O(log_level), CHAT_CFG_REQUIRED,
     "log level: debug|info|warn|error"},
    CHAT_KAFKA_CFG_OPTS(struct pres_cfg, kafka),
    {"redis-host", "CHAT_REDIS_HOST", CHAT_CFG_STR, 0, 0, "127.0.0.1", O(redis_host),
     CHAT_CFG_REQUIRED, "Redis host holding the gateways' presence keys"},
    {"redis-port", "CHAT_REDIS_PORT", CHAT_CFG_INT, 1, 65535, "6379", O(redis_port), 0,
     "Redis port"},
    {"metrics-addr", "CHAT_METRICS_ADDR", CHAT_CFG_STR, 0, 0, "127.0.0.1", O(metrics_addr),
     CHAT_CFG_REQUIRED, "listen address of /healthz /readyz /metrics"},
    {"metrics-port", "CHAT_METRICS_PORT", CHAT_CFG_INT, 0, 65535, "9102", O(metrics_port), 0,
     "listen port of /healthz /readyz /metrics (0: any)"},
    {"presence-interval-ms", "CHAT_PRESENCE_INTERVAL_MS", CHAT_CFG_INT, 50, 60000, "1000",
     O(interval_ms), 0, "aggregation and lease renewal period"},
    {"presence-lease-ms", "CHAT_PRESENCE_LEASE_MS", CHAT_CFG_INT, 200, 600000, "3000", O(lease_ms),
     0, "leader lease; a dead leader is replaced within about this time"},
    {"instance-id", "CHAT_INSTANCE_ID", CHAT_CFG_STR, 0, 0, "", O(instance_id), 0,
     "unique id of this replica in the leader lease (default hostname:pid)"},
};
#undef O

/* Checks what the table cannot express; fills defaults computed at run time. Returns the
 * log level, or -1 after printing every error. */
static int cfg_finish(struct pres_cfg *cfg)
{
    int level = chat_log_level_parse(cfg->log_level);
    int bad = 0;

    if (level < 0) {
        (void)fprintf(stderr, "config error: CHAT_LOG_LEVEL: '%s' is not debug|info|warn|error\n",
                      cfg->log_level);
        bad++;
    }
    if (cfg->lease_ms <= cfg->interval_ms) {
        (void)fprintf(stderr,
                      "config error: CHAT_PRESENCE_LEASE_MS (%d) must exceed "
                      "CHAT_PRESENCE_INTERVAL_MS (%d): the leader renews once per interval\n",
                      cfg->lease_ms, cfg->interval_ms);
        bad++;
    }
    if (!cfg->instance_id[0]) {
        char host[256] = "";
        if (gethostname(host, sizeof(host) - 1) != 0)
            (void)snprintf(host, sizeof(host), "unknown");
        chat_free(cfg->instance_id);
        cfg->instance_id = chat_xasprintf("%s:%d", host, (int)getpid());
    }
    return bad ? -1 : level;
}

/* Applies a lease result. Returns true when we lead (and should aggregate this tick). */
static bool update_leadership(struct pres *p, int st, int64_t sent_ms)
{
    if (st == PRES_LEASE_OTHER) {
        if (p->leader)
            chat_log(CHAT_LOG_WARN, "lease: lost leadership to another replica");
        p->leader = false;
        chat_metric_set(&p->m.leader, 0);
        pres_tab_fini(&p->last); /* another leader publishes now: our memory goes stale */
        return false;
    }
    if (st == PRES_LEASE_ACQUIRED) {
        chat_log(CHAT_LOG_INFO, "lease: acquired as %s; publishing everything once",
                 p->cfg->instance_id);
        chat_metric_add(&p->m.leader_acquired, 1);
        pres_tab_fini(&p->last);
        p->force_full = true;
    } else if (!p->leader) {
        chat_log(CHAT_LOG_INFO, "lease: still held as %s; resuming", p->cfg->instance_id);
    }
    p->leader = true;
    p->lease_t0_ms = sent_ms;
    chat_metric_set(&p->m.leader, 1);
    return true;
}

/* The leader's part of a tick: snapshot, diff, publish. */
static void lead_tick(struct pres *p, int64_t t0_us)
{
    struct pres_tab agg;
    struct pres_changes ch;
    size_t nodes = 0, rooms, sent = 0;
    bool full;
    int rc;

    pres_tab_init(&agg);
    pres_changes_init(&ch);
    rc = pres_read_snapshot(p, chat_now_ms(), &agg, &nodes);
    if (rc == CHAT_EIO)
        pres_redis_drop(p, "snapshot failed");
    if (rc != CHAT_OK)
        goto out;
    if (chat_mono_ms() - p->lease_t0_ms >= p->cfg->lease_ms) {
        chat_log(CHAT_LOG_WARN, "lease: may have expired during a slow tick; not publishing");
        p->leader = false;
        chat_metric_set(&p->m.leader, 0);
        goto out;
    }
    full = p->force_full;
    p->force_full = false;
    rooms = pres_diff(&agg, &p->last, full, &ch); /* p->last also holds unconfirmed zeros */
    if (ch.len)
        sent = pres_publish(p, &ch);
    chat_metric_set(&p->m.nodes, (long long)nodes);
    chat_metric_set(&p->m.rooms, (long long)rooms);
    chat_hist_record(&p->m.tick_us, (uint64_t)(chat_mono_us() - t0_us));
    chat_log(CHAT_LOG_DEBUG, "tick: nodes=%zu rooms=%zu changes=%zu published=%zu%s", nodes, rooms,
             ch.len, sent, full ? " (full)" : "");
out:
    pres_changes_fini(&ch);
    pres_tab_fini(&agg);
}

static void tick(struct pres *p)
{
    int64_t t0_us = chat_mono_us(), sent_ms;
    int st;

    chat_metric_add(&p->m.ticks, 1);
    if (pres_redis_connect(p) != CHAT_OK)
        return;
    sent_ms = chat_mono_ms();
    st = pres_lease_acquire(p);
    if (st == CHAT_EIO) {
        pres_redis_drop(p, "lease renewal failed");
        return;
    }
    if (update_leadership(p, st, sent_ms))
        lead_tick(p, t0_us);
}

static void run(struct pres *p)
{
    const int64_t interval = p->cfg->interval_ms;
    int64_t next = chat_mono_ms();

    while (!stop_flag) {
        int64_t now = chat_mono_ms();
        int64_t wait;

        if (now >= next) {
            tick(p);
            next += interval;
            now = chat_mono_ms();
            if (next <= now)
                next = now + interval; /* overran: skip the missed ticks */
        }
        atomic_store(&p->alive_ms, now);
        wait = next - now < POLL_MAX_MS ? next - now : POLL_MAX_MS;
        pres_publish_poll(p, (int)wait);
    }
}

static void shutdown_worker(struct pres *p)
{
    chat_log(CHAT_LOG_INFO, "shutting down");
    pres_publish_fini(p, FLUSH_MS); /* flush first: our last records precede the next leader's */
    /* also when leadership was only suspended (a slow tick, a Redis drop): the script deletes
     * the lease only if it still names us, so the next leader takes over at once */
    if (p->rc && pres_lease_release(p) != CHAT_OK)
        chat_log(CHAT_LOG_WARN, "lease: release failed; it expires within %d ms", p->cfg->lease_ms);
    if (p->rc)
        redisFree(p->rc);
    p->rc = NULL;
    pres_tab_fini(&p->last);
}

int main(int argc, char **argv)
{
    struct pres_cfg cfg = {0};
    struct pres p = {0};
    struct chat_httpd *httpd = NULL;
    struct sigaction sa = {.sa_handler = on_signal};
    int rc, level, status = 1;

    rc = chat_cfg_load(opts, CHAT_CFG_COUNT(opts), &cfg, argc, argv,
                       "chat-presence: aggregates gateway presence from Redis and publishes "
                       "changed counts to Kafka (one leader among replicas)");
    if (rc == 1) {
        status = 0;
        goto out;
    }
    level = cfg_finish(&cfg); /* also after table errors: report every error at once */
    if (rc != CHAT_OK || level < 0) {
        status = 2;
        goto out;
    }
    chat_log_init("presence", level);
    chat_cfg_dump(opts, CHAT_CFG_COUNT(opts), &cfg);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    p.cfg = &cfg;
    p.backoff_ms = PRES_BACKOFF_MIN_MS;
    p.force_full = true;
    pres_tab_init(&p.last);
    atomic_store(&p.alive_ms, chat_mono_ms());
    if (pres_publish_init(&p) != CHAT_OK)
        goto out;
    if (chat_httpd_start(cfg.metrics_addr, cfg.metrics_port, pres_http_handler, &p, &httpd) !=
        CHAT_OK)
        goto out;
    chat_log(CHAT_LOG_INFO, "started: instance=%s metrics=%s:%d interval=%dms lease=%dms",
             cfg.instance_id, cfg.metrics_addr, chat_httpd_port(httpd), cfg.interval_ms,
             cfg.lease_ms);
    run(&p);
    status = 0;
out:
    if (p.cfg)
        shutdown_worker(&p);
    chat_httpd_stop(httpd);
    chat_cfg_free(opts, CHAT_CFG_COUNT(opts), &cfg);
    return status;
}
