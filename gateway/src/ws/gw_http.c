/* gw_http.c - plain HTTP on the gateway's port: /healthz, /readyz, /metrics (every REST
 * endpoint is chat-api's, api/), 405 with Allow, and the refusal of a bad WebSocket upgrade.
 * Errors are {"error":{"code","message"}} with a stable code. Event-loop thread only. */
#include "ws/gw_http.h"

#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "chat/mem.h"

#include "cache/gw_redis.h"
#include "core/gw.h"
#include "core/gw_metrics.h"
#include "ws/gw_pss.h"

#define URI_MAX 512

bool gw_http_ready(const struct gw *gw)
{
    /* until the recent revocations are known, revoked tokens would pass; until every room's
     * settings are, a room's own limits could be missed */
    return gw->kafka_assigned && !gw->kafka_fatal && gw_redis_lease_valid(gw) && !gw->draining &&
           gw->ev_cu.done && gw->rooms_cu.done && gw->sanctions_cu.done && !gw->partitions_changed;
}

static void req_free(struct gw_httpreq *r)
{
    if (!r)
        return;
    chat_buf_fini(&r->resp);
    chat_free(r);
}

/* Writes the response headers now and the body on the next WRITEABLE. */
static int respond(struct lws *wsi, struct gw_httpreq *r, int status, const char *ctype)
{
    unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr);

    r->status = status;
    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, (lws_filepos_t)r->resp.len, &p,
                                    end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    if (r->allow && (status == 405 || status == 200) &&
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"allow:", (const unsigned char *)r->allow,
            (int)strlen(r->allow), &p, end))
        return -1;
    if (status == 426 && /* RFC 9110: name the protocol; RFC 6455: the version */
        (lws_add_http_header_by_name(wsi, (const unsigned char *)"upgrade:",
                                     (const unsigned char *)"websocket", 9, &p, end) ||
         lws_add_http_header_by_name(wsi, (const unsigned char *)"sec-websocket-version:",
                                     (const unsigned char *)"13", 2, &p, end)))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    r->responded = true;
    lws_callback_on_writable(wsi);
    return 0;
}

static int
respond_error(struct lws *wsi, struct gw_httpreq *r, int status, const char *code, const char *msg)
{
    chat_buf_reset(&r->resp);
    if (chat_enc_http_error(&r->resp, code, msg) != CHAT_OK)
        return -1;
    return respond(wsi, r, status, "application/json");
}

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 426:
        return "Upgrade Required";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* Answers at once with a JSON error and an optional extra header, then closes, for requests
 * that never reach LWS_CALLBACK_HTTP (a refused WebSocket upgrade). The status line is ours:
 * lws would say HTTP/1.0 before it has read the version. Returns 1: the response is written,
 * lws completes the transaction. */
int gw_http_reject(struct lws *wsi,
                   int status,
                   const char *code,
                   const char *msg,
                   const char *hname,
                   const char *hval)
{
    char buf[LWS_PRE + 1024], *start = buf + LWS_PRE;
    size_t cap = sizeof(buf) - LWS_PRE;
    struct chat_buf body;
    int n = -1;

    chat_buf_init(&body, 0, 512);
    if (chat_enc_http_error(&body, code, msg) == CHAT_OK)
        n = snprintf(start, cap,
                     "HTTP/1.1 %d %s\r\nserver: chatcluster\r\ncontent-type: application/json\r\n"
                     "content-length: %zu\r\ncache-control: no-store\r\n"
                     "x-content-type-options: nosniff\r\nconnection: close\r\n%s%s%s%s\r\n%.*s",
                     status, reason(status), body.len, hname ? hname : "", hname ? ": " : "",
                     hname ? hval : "", hname ? "\r\n" : "", (int)body.len, chat_buf_data(&body));
    chat_buf_fini(&body);
    if (n < 0 || (size_t)n >= cap ||
        lws_write(wsi, (unsigned char *)start, (size_t)n, LWS_WRITE_HTTP_HEADERS) < 0)
        return -1;
    return 1;
}

static const char *allowed(const char *uri);

static int on_get(struct gw *gw, struct lws *wsi, struct gw_httpreq *r, const char *uri)
{
    if (strcmp(uri, "/healthz") == 0) {
        if (chat_buf_appends(&r->resp, "ok\n") != CHAT_OK)
            return -1;
        return respond(wsi, r, 200, "text/plain");
    }
    if (strcmp(uri, "/readyz") == 0) {
        bool ok = gw_http_ready(gw);
        if (chat_buf_appendf(&r->resp,
                             "%s\nkafka_assigned=%d node_number=%d redis=%d draining=%d "
                             "sessions_loaded=%d rooms_loaded=%d sanctions_loaded=%d "
                             "partitions_changed=%d\n",
                             ok ? "ready" : "not ready", gw->kafka_assigned, gw->lease.node_num,
                             gw->redis_ok, gw->draining, gw->ev_cu.done, gw->rooms_cu.done,
                             gw->sanctions_cu.done, gw->partitions_changed) != CHAT_OK)
            return -1;
        return respond(wsi, r, ok ? 200 : 503, "text/plain");
    }
    if (strcmp(uri, "/metrics") == 0) {
        if (gw_metrics_render(gw, &r->resp) != CHAT_OK)
            return -1;
        return respond(wsi, r, 200, "text/plain; version=0.0.4");
    }
    if (strcmp(uri, "/ws") == 0) /* a GET without the upgrade: no WebSocket version at all */
        return respond_error(wsi, r, 426, "bad_request", "a WebSocket upgrade, version 13");
    r->allow = allowed(uri);
    if (r->allow)
        return respond_error(wsi, r, 405, "method_not_allowed", "use POST");
    return respond_error(wsi, r, 404, "not_found", "no such endpoint");
}

/* The request methods lws parses, with the token holding the URI. */
static const struct {
    const char *name;
    enum lws_token_indexes tok;
} methods[] = {
    {"GET", WSI_TOKEN_GET_URI},       {"POST", WSI_TOKEN_POST_URI},
    {"PUT", WSI_TOKEN_PUT_URI},       {"PATCH", WSI_TOKEN_PATCH_URI},
    {"DELETE", WSI_TOKEN_DELETE_URI}, {"OPTIONS", WSI_TOKEN_OPTIONS_URI},
    {"HEAD", WSI_TOKEN_HEAD_URI},
};

/* The Allow header of a path, NULL when no such endpoint. */
static const char *allowed(const char *uri)
{
    static const char *const get_paths[] = {"/ws", "/healthz", "/readyz", "/metrics"};

    for (size_t i = 0; i < sizeof(get_paths) / sizeof(get_paths[0]); i++)
        if (strcmp(uri, get_paths[i]) == 0)
            return "GET";
    return NULL;
}

/* HTTP/1.0 and HTTP/1.1 only: lws answers any other version as if it were 1.0. */
static bool version_ok(struct lws *wsi)
{
    char v[16];
    return lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP) > 0 &&
           (strcmp(v, "HTTP/1.1") == 0 || strcmp(v, "HTTP/1.0") == 0);
}

/* The HTTP transaction of wsi (owned through the wsi's opaque user data), or NULL. */
static struct gw_httpreq *req_of(struct lws *wsi)
{
    return lws_get_opaque_user_data(wsi);
}

static int on_request(struct gw *gw, struct lws *wsi)
{
    char uri[URI_MAX];
    struct gw_httpreq *r;
    size_t m;

    r = chat_xcalloc(1, sizeof(*r));
    chat_buf_init(&r->resp, LWS_PRE, 0); /* lws_write may use the headroom */
    lws_set_opaque_user_data(wsi, r);
    chat_metric_add(&gw->m.http_requests, 1);
    for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
        if (lws_hdr_total_length(wsi, methods[m].tok) > 0)
            break;
    if (m == sizeof(methods) / sizeof(methods[0]))
        return respond_error(wsi, r, 501, "bad_request", "method not implemented");
    if (!version_ok(wsi))
        return respond_error(wsi, r, 400, "bad_request", "HTTP/1.0 or HTTP/1.1 only");
    if (lws_hdr_copy(wsi, uri, sizeof(uri), methods[m].tok) <= 0)
        return respond_error(wsi, r, 414, "bad_request", "URI too long");
    if (methods[m].tok == WSI_TOKEN_GET_URI)
        return on_get(gw, wsi, r, uri);
    r->allow = allowed(uri);
    if (!r->allow)
        return respond_error(wsi, r, 404, "not_found", "no such endpoint");
    if (methods[m].tok == WSI_TOKEN_OPTIONS_URI) /* 200, not 204: lws always sends a length */
        return respond(wsi, r, 200, NULL);
    return respond_error(wsi, r, 405, "method_not_allowed", "method not allowed here");
}

static void http_closed(struct lws *wsi)
{
    struct gw_httpreq *r = req_of(wsi);

    if (r) {
        req_free(r);
        lws_set_opaque_user_data(wsi, NULL);
    }
}

int gw_http_callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void)in;
    (void)len;
    struct gw *gw = lws_context_user(lws_get_context(wsi));
    struct gw_httpreq *r = req_of(wsi);

    (void)user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (r) { /* keep-alive: a new transaction on the same connection */
            req_free(r);
            lws_set_opaque_user_data(wsi, NULL);
        }
        return on_request(gw, wsi);
    case LWS_CALLBACK_HTTP_BODY: /* no endpoint here takes a body: answered already */
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!r || !r->responded)
            return 0;
        if (lws_write(wsi, (unsigned char *)chat_buf_data(&r->resp), r->resp.len,
                      LWS_WRITE_HTTP_FINAL) < 0)
            return -1;
        req_free(r);
        lws_set_opaque_user_data(wsi, NULL);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        http_closed(wsi);
        return 0;
    default:
        return 0;
    }
}
