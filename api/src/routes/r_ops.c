/* r_ops.c - /healthz, /readyz, /metrics of chat-api. */
#include <string.h>

#include "chat/config.h"

#include "api.h"
#include "bus/api_ids.h"
#include "bus/api_kafka.h"
#include "routes.h"

/* Alive unless the Kafka producer hit a fatal error (it cannot produce any more: restart). */
void r_ops_healthz(struct api_req *r)
{
    bool fatal = api_kafka_fatal(r->api->kafka);

    if (chat_buf_appends(&r->resp, fatal ? "kafka producer failed\n" : "ok\n") == CHAT_OK)
        api_reply(r, fatal ? 503 : 200, "text/plain");
}

/* Ready once PostgreSQL answered once since start (the outbox relay's first connect) and
 * until SIGTERM, unless a named query is refused by the schema (until the outbox relay's next
 * check after the fix: api_db_queries_recheck) or the partition count of chat.messages changed
 * (then until restarted: proto/README.md, section 11). Touches no dependency. A later outage of
 * a dependency does not make a replica unready: every replica shares it, and each request
 * answers 503 on its own within about 2 x CHAT_PG_TIMEOUT_MS (a probe ahead of it, then its
 * own try). */
void r_ops_readyz(struct api_req *r)
{
    struct api *a = r->api;
    bool db = atomic_load(&a->db_seen), draining = atomic_load(&a->draining);
    bool parts_changed = api_kafka_partitions_changed(a->kafka);
    bool ok = db && !draining && !parts_changed && api_db_queries_good(&a->db_health);

    if (chat_buf_appendf(&r->resp,
                         "%s\ndb_seen=%d db_down=%d redis=%d draining=%d node_number=%d "
                         "partitions_changed=%d\n",
                         ok ? "ready" : "not ready", db, atomic_load(&a->db_health.down),
                         atomic_load(&a->redis_ok), draining, api_ids_node(a),
                         parts_changed) == CHAT_OK)
        if (api_db_queries_append(&a->db_health, &r->resp) == CHAT_OK) /* names a bad query */
            api_reply(r, ok ? 200 : 503, "text/plain");
}

/* GET /api/v1/config: the limits and rules clients check before sending (proto/README.md). */
void r_ops_config(struct api_req *r)
{
    api_reply_json(r, 200, chat_enc_config(&r->resp, r->api->cfg->node_name, &r->api->limits));
}

void r_ops_metrics(struct api_req *r)
{
    struct api_metrics *m = &r->api->m;
    const struct chat_metric_def defs[] = {
        {"chat_api_requests_total", "HTTP requests", CHAT_METRIC_COUNTER, &m->requests},
        {"chat_api_responses_2xx_total", "2xx answers", CHAT_METRIC_COUNTER, &m->by_class[2]},
        {"chat_api_responses_4xx_total", "4xx answers", CHAT_METRIC_COUNTER, &m->by_class[4]},
        {"chat_api_responses_5xx_total", "5xx answers", CHAT_METRIC_COUNTER, &m->by_class[5]},
        {"chat_api_body_too_big_total", "requests whose body was over CHAT_API_MAX_BODY",
         CHAT_METRIC_COUNTER, &m->too_big},
        {"chat_api_rate_limited_total", "requests refused by an abuse limit (429)",
         CHAT_METRIC_COUNTER, &m->rate_limited},
        {"chat_api_auth_failures_total", "requests refused for their credentials (401, 403)",
         CHAT_METRIC_COUNTER, &m->auth_failures},
        {"chat_api_db_unavailable_total", "requests answered 503 because PostgreSQL was out",
         CHAT_METRIC_COUNTER, &m->db_unavailable},
        {"chat_api_outbox_relayed_total", "chat.events records produced from the outbox",
         CHAT_METRIC_COUNTER, &m->outbox_relayed},
        {"chat_api_outbox_failures_total", "outbox records Kafka did not acknowledge (retried)",
         CHAT_METRIC_COUNTER, &m->outbox_failures},
        {"chat_api_outbox_pending", "outbox rows waiting at the relay's last pass",
         CHAT_METRIC_GAUGE, &m->outbox_pending},
        {"chat_api_outbox_lag_seconds", "event committed to acknowledged by Kafka",
         CHAT_METRIC_HIST, &m->outbox_lag_us},
        {"chat_api_sends_total", "REST sends acknowledged by Kafka", CHAT_METRIC_COUNTER,
         &m->sends},
        {"chat_api_send_errors_total", "REST sends Kafka refused or did not acknowledge",
         CHAT_METRIC_COUNTER, &m->send_errors},
        {"chat_api_spam_skipped_total",
         "REST sends not checked by the spam rule and slow mode (Redis out)", CHAT_METRIC_COUNTER,
         &m->spam_skipped},
        {"chat_api_spam_bans_total", "spam-rule chat bans imposed by REST sends",
         CHAT_METRIC_COUNTER, &m->spam_bans},
        {"chat_api_idem_skipped_total",
         "REST sends with client_msg_id produced without dedupe (Redis out)", CHAT_METRIC_COUNTER,
         &m->idem_skipped},
        {"chat_api_idem_hits_total", "REST retries answered with the remembered ack",
         CHAT_METRIC_COUNTER, &m->idem_hits},
        {"chat_api_send_ack_seconds", "REST send: produced to acknowledged", CHAT_METRIC_HIST,
         &m->send_ack_us},
        {"chat_api_partition_changes_total",
         "partition count changes of the messages topic seen (REST send then refuses)",
         CHAT_METRIC_COUNTER, &m->partition_changes},
        {"chat_api_request_seconds", "request in to answer queued", CHAT_METRIC_HIST,
         &m->latency_us},
    };

    if (chat_metrics_render(&r->resp, defs, CHAT_CFG_COUNT(defs)) == CHAT_OK)
        api_reply(r, 200, "text/plain; version=0.0.4");
    else
        api_reply_error(r, 500, "internal", "metrics");
}
