/* api_purge.h - the retention purge: login events older than CHAT_RETAIN_LOGINS_S; refresh
 * tokens expired and sessions ended (revoked or expired, and every access token of them
 * expired) CHAT_RETAIN_SESSIONS_S ago. A thread of its own with its own connection runs it
 * every CHAT_PURGE_INTERVAL_S, under an advisory lock: one replica at a time. */
#ifndef API_PURGE_H
#define API_PURGE_H

struct api;

int api_purge_start(struct api *a);
void api_purge_stop(struct api *a);

#endif
