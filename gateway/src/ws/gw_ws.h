/* gw_ws.h - the gateway's single lws protocol ("chat"): its callback dispatches WebSocket
 * reasons to ws/gw_conn.c and plain HTTP to ws/gw_http.c; and the drain on SIGTERM.
 * Thread-safety: event-loop thread only. */
#ifndef GW_WS_H
#define GW_WS_H

#include <libwebsockets.h>

struct gw;

/* The protocol table for lws_context_creation_info.protocols (terminated). */
extern const struct lws_protocols gw_ws_protocols[];
/* Starts the drain (idempotent): not ready any more, bye to every client, in-flight sends get
 * their acks within cfg->drain_ms, then gw_main_shutdown(). */
void gw_ws_drain(struct gw *gw);

#endif
