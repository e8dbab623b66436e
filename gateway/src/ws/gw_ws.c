/* gw_ws.c - the lws protocol callback: dispatch only. WebSocket reasons go to gw_conn_*,
 * plain HTTP reasons to gw_http_callback. Event-loop thread only. */
#include "ws/gw_ws.h"

#include <string.h>
#include <time.h>

#include <strings.h>

#include "chat/log.h"
#include "chat/time.h"

#include "core/gw.h"
#include "session/gw_events.h"
#include "ws/gw_conn.h"
#include "ws/gw_http.h"
#include "ws/gw_pss.h"

/* Per-connection receive buffer: lws allocates RX_BUFFER + LWS_PRE + 4 bytes for every
 * WebSocket and reads at most RX_BUFFER + LWS_PRE bytes per POLLIN; a longer frame arrives in
 * pieces and is joined by gw_conn_receive(). 128 holds join/leave/ping/read and short sends
 * whole; it is idle memory (issue 12 goal 6: 1024 cost 0.9 kB more per connection). A 1 kB
 * frame takes about 7 reads instead of one (docs/BENCHMARKS.md, "Idle memory per connection").
 * 512 was rejected once for making it.slow 7-13 times slower, but that was lws capping every
 * send() at this size too, before tx_packet_size was set below: with it, it.slow takes the same
 * time at 128, 256 and 1024. */
#define RX_BUFFER 128

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);

const struct lws_protocols gw_ws_protocols[] = {
    /* tx_packet_size: lws otherwise caps every send() at rx_buffer_size + LWS_PRE + 4 bytes,
     * which would chop each coalesced write into ~1 KiB syscalls (and buffer the rest inside
     * lws, outside outq_max_bytes) */
    {"chat", callback, sizeof(struct gw_pss), RX_BUFFER, 0, NULL, GW_COALESCE_BYTES + 64},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Reads the token from "Authorization: Bearer" or ?token=; NULL when none was offered. The
 * Bearer scheme (any case, RFC 9110) with no usable token (none, or too long) was offered
 * credentials all the same: "" then, which no check accepts (bad_token). Another scheme is not
 * ours (an ingress's Basic login, a browser's cached one): as if there were no header. */
static const char *handshake_token(struct lws *wsi, char *buf, int cap)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    const char *v;

    if (n > 0) {
        if (lws_hdr_copy(wsi, buf, cap, WSI_TOKEN_HTTP_AUTHORIZATION) < 0) {
            buf[0] = '\0';
            return buf; /* cannot happen: the buffer holds lws's whole header space */
        }
        if (strncasecmp(buf, "Bearer", 6) == 0 && (buf[6] == ' ' || buf[6] == '\0'))
            return buf[6] ? buf + 7 : buf + 6;
    }
    v = lws_get_urlarg_by_name(wsi, "token=", buf, cap);
    return v && *v ? v : NULL;
}

static int on_established(struct gw *gw, struct lws *wsi, struct gw_pss *pss)
{
    char buf[CHAT_JWT_MAX_TOKEN + 16];
    struct gw_conn *c = gw_conn_open(gw, wsi, &pss->conn);
    const char *token = handshake_token(wsi, buf, sizeof(buf));
    struct chat_claims cl;
    enum chat_errcode code;

    if (token) {
        if (gw_events_token_check(gw, token, &cl, &code) != CHAT_OK) {
            /* a client that presented credentials must learn they failed: no silent downgrade */
            gw_conn_error(c, code, NULL, NULL, NULL, -1);
            gw_conn_close(c, CHAT_CLOSE_auth_failed, "auth_failed");
            return 0;
        }
        gw_conn_set_identity(c, &cl);
    }
    chat_buf_reset(&gw->scratch);
    if (chat_enc_hello(&gw->scratch, gw->cfg->node_name, c->authed ? c->claims.sub : NULL,
                       &gw->limits) == CHAT_OK)
        (void)gw_conn_push_scratch(c);
    if (gw->presence_total)
        (void)gw_conn_push(c, gw->presence_total);
    return 0;
}

/* RFC 6455 4.1: the key is base64 of 16 bytes: 22 characters of the alphabet, the last of
 * them carrying no bits past the 128th, then "==". */
static bool ws_key_ok(const char *k)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *c;

    if (strlen(k) != 24 || k[22] != '=' || k[23] != '=')
        return false;
    for (int i = 0; i < 22; i++)
        if (!k[i] || !strchr(b64, k[i]))
            return false;
    c = strchr(b64, k[21]);
    return ((c - b64) & 0x0f) == 0;
}

/* Every WebSocket upgrade passes here before lws answers 101: a malformed handshake, another
 * path, a draining node or a full one get an HTTP error instead (returns 1: answered). */
static int confirm_upgrade(struct gw *gw, struct lws *wsi, const char *to)
{
    char uri[64], v[16], key[64];

    if (!to || strcmp(to, "websocket") != 0)
        return gw_http_reject(wsi, 400, "bad_request", "unsupported upgrade", NULL, NULL);
    if (lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP) <= 0 || strcmp(v, "HTTP/1.1") != 0 ||
        lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0)
        return gw_http_reject(wsi, 400, "bad_request", "a WebSocket upgrade is GET over HTTP/1.1",
                              NULL, NULL);
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/ws") != 0)
        return gw_http_reject(wsi, 404, "not_found", "WebSocket endpoint is /ws", NULL, NULL);
    if (lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_VERSION) <= 0 || strcmp(v, "13") != 0)
        return gw_http_reject(wsi, 426, "bad_request", "WebSocket version 13 only",
                              "Sec-WebSocket-Version", "13");
    if (lws_hdr_copy(wsi, key, sizeof(key), WSI_TOKEN_KEY) <= 0 || !ws_key_ok(key))
        return gw_http_reject(wsi, 400, "bad_request",
                              "Sec-WebSocket-Key must be base64 of 16 bytes", NULL, NULL);
    if (gw->draining || gw->nconns >= gw->cfg->max_conns) {
        static struct chat_log_limit lim; /* event-loop thread only */
        long skipped;
        if (chat_log_every(&lim, 10000, &skipped))
            chat_log(CHAT_LOG_WARN, "refusing connections: %s (%ld more in the last 10 s)",
                     gw->draining ? "draining" : "max_conns reached", skipped);
        return gw_http_reject(wsi, 503, gw->draining ? "unavailable" : "overloaded",
                              gw->draining ? "node shutting down" : "too many connections",
                              "Retry-After", "1");
    }
    return 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct gw *gw = lws_context_user(lws_get_context(wsi));
    struct gw_pss *pss = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(gw, wsi, in);
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(gw, wsi, pss);
    case LWS_CALLBACK_RECEIVE:
        return gw_conn_receive(&pss->conn, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        gw_conn_pong(&pss->conn);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return gw_conn_writable(&pss->conn);
    case LWS_CALLBACK_CLOSED:
        gw_conn_closed(&pss->conn);
        return 0;
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_CLOSED_HTTP:
        return gw_http_callback(wsi, reason, user, in, len);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (lws_get_opaque_user_data(wsi)) /* a plain HTTP transaction (ws/gw_http.c) */
            return gw_http_callback(wsi, reason, user, in, len);
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void close_all(struct gw *gw)
{
    for (struct gw_conn *c = gw->conns; c; c = c->next)
        gw_conn_close(c, CHAT_CLOSE_going_away, "going_away");
}

static void drain_check(uv_timer_t *t)
{
    struct gw *gw = t->data;
    int outq = rd_kafka_outq_len(gw->prod);
    int64_t now = chat_mono_ms();

    if ((gw->nconns == 0 && outq == 0) || (gw->drain_forced && now >= gw->drain_deadline_ms)) {
        chat_log(CHAT_LOG_INFO, "drain done: %ld connections, %d Kafka messages left", gw->nconns,
                 outq);
        uv_timer_stop(t);
        gw_main_shutdown(gw);
    } else if (!gw->drain_forced && now >= gw->drain_deadline_ms) {
        /* out of time: close whoever still waits for acks, give the close frames a moment */
        gw->drain_forced = true;
        gw->drain_deadline_ms = now + 500;
        close_all(gw);
    }
}

/* SIGTERM: stop being ready, tell every client to reconnect elsewhere, let in-flight sends get
 * their acks (a connection closes once it has none pending), bounded by drain_ms, then stop. */
void gw_ws_drain(struct gw *gw)
{
    if (gw->draining || gw->shut)
        return;
    gw->draining = true;
    gw->drain_deadline_ms = chat_mono_ms() + gw->cfg->drain_ms;
    chat_log(CHAT_LOG_INFO, "draining %ld connections (up to %d ms)", gw->nconns,
             gw->cfg->drain_ms);
    for (struct gw_conn *c = gw->conns; c; c = c->next) {
        chat_buf_reset(&gw->scratch);
        if (chat_enc_bye(&gw->scratch, CHAT_CLOSE_going_away,
                         chat_close_reason(CHAT_CLOSE_going_away)) == CHAT_OK)
            (void)gw_conn_push_scratch(c);
        if (c->npending == 0)
            gw_conn_close(c, CHAT_CLOSE_going_away, "going_away");
    }
    uv_timer_start(&gw->drain_timer, drain_check, 0, 20);
}
