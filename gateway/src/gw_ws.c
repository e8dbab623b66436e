/* gw_ws.c - the lws protocol callback: dispatch only. WebSocket reasons go to gw_conn_*,
 * plain HTTP reasons to gw_http_callback. Event-loop thread only. */
#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "chat/time.h"

#include "gw.h"
#include "gw_pss.h"

/* Per-connection receive buffer: lws allocates it for every socket (idle memory); larger frames
 * arrive in pieces and are joined by gw_conn_receive(). 1024 holds typical frames whole; 512
 * saved another 0.5 kB per connection but made the ingest of ~1 kB frames many times slower
 * (it.slow: 4 s -> 27-54 s), see docs/BENCHMARKS.md. */
#define RX_BUFFER 1024

const struct lws_protocols gw_protocols[] = {
    /* tx_packet_size: lws otherwise caps every send() at rx_buffer_size + LWS_PRE + 4 bytes,
     * which would chop each coalesced write into ~1 KiB syscalls (and buffer the rest inside
     * lws, outside outq_max_bytes) */
    {"chat", gw_ws_callback, sizeof(struct gw_pss), RX_BUFFER, 0, NULL, GW_COALESCE_BYTES + 64},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Reads the token from "Authorization: Bearer" or ?token=; NULL when none was offered. */
static const char *handshake_token(struct lws *wsi, char *buf, int cap)
{
    const char *v;

    if (lws_hdr_copy(wsi, buf, cap, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        strncmp(buf, "Bearer ", 7) == 0)
        return buf + 7;
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
        if (gw_token_check(gw, token, &cl, &code) != CHAT_OK) {
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

/* Only /ws upgrades, not while draining, not past the connection limit. */
static int filter_connection(struct gw *gw, struct lws *wsi)
{
    char uri[64];

    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, "/ws") != 0)
        return 1;
    if (gw->draining || gw->nconns >= gw->cfg->max_conns) {
        chat_log(CHAT_LOG_WARN, "refusing connection: %s",
                 gw->draining ? "draining" : "max_conns reached");
        return 1;
    }
    return 0;
}

int gw_ws_callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct gw *gw = lws_context_user(lws_get_context(wsi));
    struct gw_pss *pss = user;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter_connection(gw, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(gw, wsi, pss);
    case LWS_CALLBACK_RECEIVE:
        return gw_conn_receive(&pss->conn, in, len);
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
        if (pss && pss->http)
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
        gw_shutdown(gw);
    } else if (!gw->drain_forced && now >= gw->drain_deadline_ms) {
        /* out of time: close whoever still waits for acks, give the close frames a moment */
        gw->drain_forced = true;
        gw->drain_deadline_ms = now + 500;
        close_all(gw);
    }
}

/* SIGTERM: stop being ready, tell every client to reconnect elsewhere, let in-flight sends get
 * their acks (a connection closes once it has none pending), bounded by drain_ms, then stop. */
void gw_begin_drain(struct gw *gw)
{
    if (gw->draining || gw->shut)
        return;
    gw->draining = true;
    gw->drain_deadline_ms = chat_mono_ms() + gw->cfg->drain_ms;
    chat_log(CHAT_LOG_INFO, "draining %ld connections (up to %d ms)", gw->nconns,
             gw->cfg->drain_ms);
    for (struct gw_conn *c = gw->conns; c; c = c->next) {
        chat_buf_reset(&gw->scratch);
        if (chat_enc_bye(&gw->scratch, CHAT_CLOSE_going_away, "node shutting down; reconnect") ==
            CHAT_OK)
            (void)gw_conn_push_scratch(c);
        if (c->npending == 0)
            gw_conn_close(c, CHAT_CLOSE_going_away, "going_away");
    }
    uv_timer_start(&gw->drain_timer, drain_check, 0, 20);
}
