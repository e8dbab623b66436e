/* presence/src/pres_http.c - /healthz, /readyz and /metrics of chat-presence. Runs on the
 * chat_httpd thread and only reads atomics of struct pres (see pres.h). */
#include <string.h>

#include "chat/log.h"
#include "chat/time.h"

#include "pres.h"

#define STALL_MIN_MS 10000

/* Healthy while the worker loop keeps turning (it never blocks longer than a few timeouts). */
static int healthz(struct pres *p, struct chat_buf *body)
{
    int64_t idle = chat_mono_ms() - atomic_load(&p->alive_ms);
    int64_t limit =
        10LL * p->cfg->interval_ms > STALL_MIN_MS ? 10LL * p->cfg->interval_ms : STALL_MIN_MS;

    if (idle > limit) {
        int rc = chat_buf_appendf(body, "worker stalled for %lld ms\n", (long long)idle);
        return rc == CHAT_OK ? 503 : 500;
    }
    return chat_buf_appends(body, "ok\n") == CHAT_OK ? 200 : 500;
}

static int readyz(struct pres *p, struct chat_buf *body)
{
    bool redis = atomic_load(&p->redis_ok), kafka = atomic_load(&p->kafka_ok);
    int rc = chat_buf_appendf(body, "%s redis=%s kafka=%s leader=%lld\n",
                              redis && kafka ? "ready" : "not ready", redis ? "up" : "down",
                              kafka ? "up" : "down", chat_metric_get(&p->m.leader));

    if (rc != CHAT_OK)
        return 500;
    return redis && kafka ? 200 : 503;
}

static int metrics(struct pres *p, struct chat_buf *body)
{
    const struct chat_metric_def defs[] = {
        {"chat_presence_ticks_total", "worker ticks (leader or not)", CHAT_METRIC_COUNTER,
         &p->m.ticks},
        {"chat_presence_published_total", "presence records handed to the producer",
         CHAT_METRIC_COUNTER, &p->m.published},
        {"chat_presence_publish_errors_total", "presence records refused or not delivered",
         CHAT_METRIC_COUNTER, &p->m.publish_errors},
        {"chat_presence_redis_errors_total", "Redis connect/io failures and bad replies",
         CHAT_METRIC_COUNTER, &p->m.redis_errors},
        {"chat_presence_leader", "1 while this replica holds the presence lease", CHAT_METRIC_GAUGE,
         &p->m.leader},
        {"chat_presence_leader_acquired_total", "times this replica became leader",
         CHAT_METRIC_COUNTER, &p->m.leader_acquired},
        {"chat_presence_nodes", "live gateway nodes in the last snapshot", CHAT_METRIC_GAUGE,
         &p->m.nodes},
        {"chat_presence_rooms", "rooms with presence in the last snapshot", CHAT_METRIC_GAUGE,
         &p->m.rooms},
        {"chat_presence_tick_seconds", "duration of a leader tick (Redis snapshot + publish)",
         CHAT_METRIC_HIST, &p->m.tick_us},
    };

    return chat_metrics_render(body, defs, CHAT_CFG_COUNT(defs)) == CHAT_OK ? 200 : 500;
}

int pres_http_handler(void *ud, const char *path, struct chat_buf *body, const char **ctype)
{
    struct pres *p = ud;

    if (strcmp(path, "/healthz") == 0)
        return healthz(p, body);
    if (strcmp(path, "/readyz") == 0)
        return readyz(p, body);
    if (strcmp(path, "/metrics") == 0) {
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        return metrics(p, body);
    }
    return chat_buf_appends(body, "not found\n") == CHAT_OK ? 404 : 500;
}
