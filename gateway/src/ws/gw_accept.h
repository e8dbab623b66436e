/* gw_accept.h - the gateway's own listening socket: new connections wait in a FIFO, costing one
 * poll registration each, until their first byte, then go to lws (lws_adopt_socket_vhost).
 * Thread-safety: event-loop thread only. */
#ifndef GW_ACCEPT_H
#define GW_ACCEPT_H

struct gw;

/* Listens on cfg->listen_addr:port; returns CHAT_OK or CHAT_EIO (logged). */
int gw_accept_start(struct gw *gw);
/* Closes the socket and every held connection (handles close asynchronously). */
void gw_accept_stop(struct gw *gw);

#endif
