/* gw_http.h - plain HTTP on the gateway's port: /healthz, /readyz, /metrics, 405 with Allow,
 * and the refusal of a bad WebSocket upgrade. Thread-safety: event-loop thread only. */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

struct gw;

/* The HTTP reasons of the protocol callback (ws/gw_ws.c); returns what lws expects. */
int gw_http_callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
/* True when the node takes traffic: Kafka assigned and not failed, node number leased, not
 * draining, recent revocations read, partition count unchanged (/readyz, the ready metric). */
bool gw_http_ready(const struct gw *gw);
/* Answers a request that never reaches LWS_CALLBACK_HTTP (a refused upgrade) with a JSON error
 * and an optional extra header (hname/hval, may be NULL). Returns 1 (answered) or -1 (close). */
int gw_http_reject(struct lws *wsi,
                   int status,
                   const char *code,
                   const char *msg,
                   const char *hname,
                   const char *hval);

#endif
