/* gw_redis.h - the gateway's Redis side: hiredis async on the event loop (our libuv adapter),
 * the message-id node-number lease, presence reports, reconnects. Redis is a cache: without it
 * chat goes on. Thread-safety: event-loop thread only. */
#ifndef GW_REDIS_H
#define GW_REDIS_H

#include <stdbool.h>

struct gw;

/* Connects (resolving the host off the loop when it is a name); failures are retried by the
 * tick. Cannot fail. */
void gw_redis_start(struct gw *gw);
/* 1 s: reconnect, watchdog, lease renewal, presence report. */
void gw_redis_tick(struct gw *gw);
/* Clean stop: removes this node's presence, gives the node number back, disconnects once the
 * pending replies are in. */
void gw_redis_stop(struct gw *gw);
/* Shutdown: drops Redis if its replies have not come within 2 s (an unref'd timer). */
void gw_redis_arm_kill(struct gw *gw);
/* True while this node holds its message-id node number (lease not expired). */
bool gw_redis_lease_valid(const struct gw *gw);

#endif
