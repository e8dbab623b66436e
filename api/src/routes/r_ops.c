/* r_ops.c - /healthz, /readyz, /metrics of chat-api. */
#include <string.h>

#include "chat/config.h"

#include "api.h"
#include "routes.h"

void r_ops_healthz(struct api_req *r)
{
    if (chat_buf_appends(&r->resp, "ok\n") == CHAT_OK)
        api_reply(r, 200, "text/plain");
}

/* Ready once the server runs; later also the database and Redis of this replica. */
void r_ops_readyz(struct api_req *r)
{
    if (chat_buf_appends(&r->resp, "ready\n") == CHAT_OK)
        api_reply(r, 200, "text/plain");
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
        {"chat_api_request_seconds", "request in to answer queued", CHAT_METRIC_HIST,
         &m->latency_us},
    };

    if (chat_metrics_render(&r->resp, defs, CHAT_CFG_COUNT(defs)) == CHAT_OK)
        api_reply(r, 200, "text/plain; version=0.0.4");
    else
        api_reply_error(r, 500, "internal", "metrics");
}
