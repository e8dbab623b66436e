/* gw_http.c - plain HTTP on the gateway's port: /healthz, /readyz, /metrics and REST send
 * (POST /api/v1/rooms/{room}/messages, answered from Kafka's delivery report). Every other
 * REST endpoint is chat-api's (api/). Responses are JSON; REST errors are
 * {"error":{"code","message"}} with a stable code. Event-loop thread only. */
#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "chat/mem.h"

#include "gw.h"
#include "gw_pss.h"

#define URI_MAX 512

bool gw_ready(const struct gw *gw)
{
    /* sessions_loaded: until the recent revocations are known, revoked tokens would pass */
    return gw->kafka_assigned && !gw->kafka_fatal && gw_lease_valid(gw) && !gw->draining &&
           gw->sessions_loaded && !gw->partitions_changed;
}

static void req_free(struct gw_httpreq *r)
{
    if (!r)
        return;
    if (r->pending)
        r->pending->http = NULL; /* the delivery report will find nobody to answer */
    chat_buf_fini(&r->body);
    chat_buf_fini(&r->resp);
    chat_free(r);
}

/* Writes the response headers now and the body on the next WRITEABLE. */
int gw_http_respond(struct lws *wsi, struct gw_httpreq *r, int status, const char *ctype)
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
    if (status == 429 && r->retry_after_s > 0) {
        char ra[16];
        int n = snprintf(ra, sizeof(ra), "%d", r->retry_after_s);
        if (lws_add_http_header_by_name(
                wsi, (const unsigned char *)"retry-after:", (const unsigned char *)ra, n, &p, end))
            return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    r->responded = true;
    lws_callback_on_writable(wsi);
    return 0;
}

int gw_http_respond_error(
    struct lws *wsi, struct gw_httpreq *r, int status, const char *code, const char *msg)
{
    chat_buf_reset(&r->resp);
    if (chat_enc_http_error(&r->resp, code, msg) != CHAT_OK)
        return -1;
    return gw_http_respond(wsi, r, status, "application/json");
}

int gw_http_respond_code(struct lws *wsi, struct gw_httpreq *r, enum chat_errcode code)
{
    return gw_http_respond_error(wsi, r, chat_errcode_http(code), chat_errcode_name(code),
                                 chat_errcode_desc(code));
}

/* Reads "Authorization: Bearer X"; returns CHAT_OK with claims, or the error code. */
enum chat_errcode gw_http_bearer(struct gw *gw, struct lws *wsi, struct chat_claims *cl)
{
    char auth[CHAT_JWT_MAX_TOKEN + 16];
    enum chat_errcode code;

    if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) <= 0)
        return CHAT_ERR_auth_required;
    if (strncmp(auth, "Bearer ", 7) != 0)
        return CHAT_ERR_bad_token;
    return gw_token_check(gw, auth + 7, cl, &code) == CHAT_OK ? CHAT_ERR__COUNT : code;
}

/* /api/v1/rooms/{room}/messages -> room (copied into r->room); false when not that shape. */
static bool parse_messages_path(const char *uri, char *room, size_t cap)
{
    static const char pre[] = "/api/v1/rooms/", suf[] = "/messages";
    const char *p, *slash;

    if (strncmp(uri, pre, sizeof(pre) - 1) != 0)
        return false;
    p = uri + sizeof(pre) - 1;
    slash = strchr(p, '/');
    if (!slash || strcmp(slash, suf) != 0 || (size_t)(slash - p) >= cap)
        return false;
    memcpy(room, p, (size_t)(slash - p));
    room[slash - p] = '\0';
    return true;
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
        return gw_http_respond(wsi, r, 200, "text/plain");
    }
    if (strcmp(uri, "/readyz") == 0) {
        bool ok = gw_ready(gw);
        if (chat_buf_appendf(&r->resp,
                             "%s\nkafka_assigned=%d node_number=%d redis=%d draining=%d "
                             "sessions_loaded=%d partitions_changed=%d\n",
                             ok ? "ready" : "not ready", gw->kafka_assigned, gw->node_num,
                             gw->redis_ok, gw->draining, gw->sessions_loaded,
                             gw->partitions_changed) != CHAT_OK)
            return -1;
        return gw_http_respond(wsi, r, ok ? 200 : 503, "text/plain");
    }
    if (strcmp(uri, "/metrics") == 0) {
        if (gw_metrics_render(gw, &r->resp) != CHAT_OK)
            return -1;
        return gw_http_respond(wsi, r, 200, "text/plain; version=0.0.4");
    }
    r->allow = allowed(uri);
    if (r->allow)
        return gw_http_respond_error(wsi, r, 405, "method_not_allowed", "use POST");
    return gw_http_respond_error(wsi, r, 404, "not_found", "no such endpoint");
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
    static const char *const get_paths[] = {"/healthz", "/readyz", "/metrics"};
    char room[CHAT_ROOM_MAX + 2];

    for (size_t i = 0; i < sizeof(get_paths) / sizeof(get_paths[0]); i++)
        if (strcmp(uri, get_paths[i]) == 0)
            return "GET";
    return parse_messages_path(uri, room, sizeof(room)) ? "POST" : NULL;
}

/* HTTP/1.0 and HTTP/1.1 only: lws answers any other version as if it were 1.0. */
static bool version_ok(struct lws *wsi)
{
    char v[16];
    return lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP) > 0 &&
           (strcmp(v, "HTTP/1.1") == 0 || strcmp(v, "HTTP/1.0") == 0);
}

static int on_request(struct gw *gw, struct lws *wsi, struct gw_pss *pss)
{
    char uri[URI_MAX];
    struct gw_httpreq *r;
    size_t m;
    bool post;

    r = chat_xcalloc(1, sizeof(*r));
    chat_buf_init(&r->body, 0, (size_t)gw->cfg->max_body);
    chat_buf_init(&r->resp, LWS_PRE, 0); /* lws_write may use the headroom */
    pss->http = r;
    chat_metric_add(&gw->m.http_requests, 1);
    /* the request is in: from now on it has CHAT_REQUEST_TIMEOUT_S to be answered (an account
     * job or a Kafka ack may take seconds; lws would otherwise close a GET waiting for one after
     * its own 5 s idle timeout, and the header deadline no longer applies) */
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_REASON_BASE + 1, gw->cfg->request_timeout_s);
    for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
        if (lws_hdr_total_length(wsi, methods[m].tok) > 0)
            break;
    if (m == sizeof(methods) / sizeof(methods[0]))
        return gw_http_respond_error(wsi, r, 501, "bad_request", "method not implemented");
    if (!version_ok(wsi))
        return gw_http_respond_error(wsi, r, 400, "bad_request", "HTTP/1.0 or HTTP/1.1 only");
    if (lws_hdr_copy(wsi, uri, sizeof(uri), methods[m].tok) <= 0)
        return gw_http_respond_error(wsi, r, 414, "bad_request", "URI too long");
    post = methods[m].tok == WSI_TOKEN_POST_URI;
    if (!post && methods[m].tok != WSI_TOKEN_GET_URI) {
        r->allow = allowed(uri);
        if (!r->allow)
            return gw_http_respond_error(wsi, r, 404, "not_found", "no such endpoint");
        if (methods[m].tok == WSI_TOKEN_OPTIONS_URI) /* 200, not 204: lws always sends a length */
            return gw_http_respond(wsi, r, 200, NULL);
        return gw_http_respond_error(wsi, r, 405, "method_not_allowed", "method not allowed here");
    }
    if (!post)
        return on_get(gw, wsi, r, uri);
    if (!parse_messages_path(uri, r->room, sizeof(r->room))) {
        r->allow = allowed(uri);
        if (r->allow)
            return gw_http_respond_error(wsi, r, 405, "method_not_allowed", "use GET");
        return gw_http_respond_error(wsi, r, 404, "not_found", "no such endpoint");
    }
    if (!chat_room_valid(r->room))
        return gw_http_respond_code(wsi, r, CHAT_ERR_bad_room);
    r->auth = gw_http_bearer(gw, wsi, &r->claims);
    r->is_send = true;
    return 0; /* wait for the body; the error (if any) is answered at its end */
}

static int on_body_done(struct gw *gw, struct lws *wsi, struct gw_httpreq *r)
{
    struct chat_cframe f;
    enum chat_errcode code;
    struct gw_pending *p;
    int rc, retry_ms;

    if (r->responded)
        return 0;
    if (r->body_too_big)
        return gw_http_respond_code(wsi, r, CHAT_ERR_too_big);
    if (r->auth != CHAT_ERR__COUNT)
        return gw_http_respond_code(wsi, r, r->auth);
    if (chat_rest_send_decode(chat_buf_data(&r->body), r->body.len, (size_t)gw->cfg->max_text, &f,
                              &code) != CHAT_OK) {
        chat_cframe_fini(&f);
        return gw_http_respond_code(wsi, r, code);
    }
    rc = gw_send_produce(gw, NULL, &r->claims, r->room, f.text, f.text_len, f.client_msg_id, NULL,
                         &p, &code, &retry_ms);
    chat_cframe_fini(&f);
    if (rc != CHAT_OK) {
        r->retry_after_s = retry_ms > 0 ? (retry_ms + 999) / 1000 : 0;
        return gw_http_respond_code(wsi, r, code);
    }
    p->http = wsi;
    r->pending = p;
    return 0; /* answered from the delivery report */
}

void gw_http_delivered(struct gw *gw, struct gw_pending *p)
{
    struct lws *wsi = p->http;
    struct gw_pss *pss = lws_wsi_user(wsi);
    struct gw_httpreq *r = pss->http;

    r->pending = NULL;
    chat_buf_reset(&r->resp);
    if (p->err == RD_KAFKA_RESP_ERR_NO_ERROR &&
        chat_enc_ack(&r->resp, p->client_msg_id, p->id, p->seq, p->ts, NULL) == CHAT_OK) {
        if (gw_http_respond(wsi, r, 200, "application/json") != 0)
            lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    } else if (gw_http_respond_code(
                   wsi, r, p->maybe_stored ? CHAT_ERR_unconfirmed : CHAT_ERR_unavailable) != 0) {
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    (void)gw;
    gw_pending_free(p);
}

void gw_http_closed(struct lws *wsi, void *user)
{
    struct gw_pss *pss = user;
    (void)wsi;
    if (pss && pss->http) {
        req_free(pss->http);
        pss->http = NULL;
    }
}

int gw_http_callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct gw *gw = lws_context_user(lws_get_context(wsi));
    struct gw_pss *pss = user;
    struct gw_httpreq *r = pss ? pss->http : NULL;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (r) { /* keep-alive: a new transaction on the same connection */
            req_free(r);
            pss->http = NULL;
        }
        return on_request(gw, wsi, pss);
    case LWS_CALLBACK_HTTP_BODY:
        if (!r || r->responded || r->body_too_big)
            return 0;
        if (chat_buf_append(&r->body, in, len) != CHAT_OK)
            r->body_too_big = true; /* keep reading; answer 413 at the end */
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return r && r->is_send ? on_body_done(gw, wsi, r) : 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (!r || !r->responded)
            return 0;
        if (lws_write(wsi, (unsigned char *)chat_buf_data(&r->resp), r->resp.len,
                      LWS_WRITE_HTTP_FINAL) < 0)
            return -1;
        req_free(r);
        pss->http = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        gw_http_closed(wsi, user);
        return 0;
    default:
        return 0;
    }
}
