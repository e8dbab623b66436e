/* gw_events.h - what a gateway knows about sessions beyond the token in hand, kept in step with
 * every other gateway through chat.events: revocations, nickname changes; token checks; expiry
 * on open sockets. Thread-safety: event-loop thread only. */
#ifndef GW_EVENTS_H
#define GW_EVENTS_H

#include <stddef.h>

#include "chat/jwt.h"
#include "chat/proto.h"

struct gw;

/* Verifies token and applies what this node knows: a revoked session fails (CHAT_EAUTH with
 * *code session_revoked), a nickname changed after the token was issued replaces the name.
 * Returns CHAT_OK, or an error with *code the error code for the client. */
int gw_events_token_check(struct gw *gw,
                          const char *token,
                          struct chat_claims *cl,
                          enum chat_errcode *code);
/* A consumed chat.events record (untrusted bytes v[0..len)). */
void gw_events_handle(struct gw *gw, const char *v, size_t len);
/* 1 s: session_expiring / session_expired on open sockets, forgets old revocations, trims the
 * idle memory of every connection (gw_conn_trim), runs the keep-alive of every connection
 * (gw_conn_keepalive) and, after a burst of connections, trims the heap (gw_conn_heap_trim). */
void gw_events_tick(struct gw *gw);

#endif
