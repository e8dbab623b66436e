/* gw_announce.h - site-wide announcements (issue 13, POST /api/v1/admin/announce): a chat.events
 * announcement with room "*" reaches every connection of every gateway as
 * {"type":"announcement","id","text","ts"}. Thread-safety: event-loop thread only. */
#ifndef GW_ANNOUNCE_H
#define GW_ANNOUNCE_H

#include <stdint.h>

struct gw;

/* Queues the announcement frame on every open connection of this gateway (joined or not,
 * logged in or not). Strings borrowed. A connection whose queue is full is closed as a slow
 * consumer (gw_conn_push). */
void gw_announce_all(struct gw *gw, const char *id, const char *text, int64_t ts);

#endif
