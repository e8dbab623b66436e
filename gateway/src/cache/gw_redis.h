/* gw_redis.h - the gateway's Redis side: hiredis async on the event loop (our libuv adapter),
 * the message-id node-number lease, presence reports, reconnects. Redis is a cache: without it
 * chat goes on. Thread-safety: event-loop thread only. */
#ifndef GW_REDIS_H
#define GW_REDIS_H

#include <stdbool.h>
#include <stddef.h>

struct gw;
struct redisReply;

/* The answer to gw_redis_call(): reply is borrowed for the call; NULL when Redis failed (the
 * connection was lost or dropped by the reply watchdog, or the gateway is stopping). An error
 * reply (REDIS_REPLY_ERROR) is passed on (and counted in chat_gateway_redis_errors_total). */
typedef void gw_redis_reply_fn(struct gw *gw, struct redisReply *reply, void *priv);

/* Connects (resolving the host off the loop when it is a name); failures are retried by the
 * tick. Cannot fail. */
void gw_redis_start(struct gw *gw);
/* Before the loop waits for I/O: writes the commands buffered this turn (core/main.c). */
void gw_redis_flush(struct gw *gw);
/* 1 s: reconnect, watchdog, lease renewal, presence report. */
void gw_redis_tick(struct gw *gw);
/* Clean stop: removes this node's presence, gives the node number back, disconnects once the
 * pending replies are in. */
void gw_redis_stop(struct gw *gw);
/* Shutdown: drops Redis if its replies have not come within 2 s (an unref'd timer). */
void gw_redis_arm_kill(struct gw *gw);
/* Sends one command (argc strings argv[i] of lens[i] bytes, copied) on the loop's Redis
 * connection without blocking. Returns CHAT_OK: fn (when not NULL) is called exactly once,
 * later, on the loop (a Redis that stops answering is dropped by the 5 s reply watchdog, and fn
 * then gets NULL); or CHAT_ESTATE: not connected (or disconnecting), fn is never called.
 * An EVAL of one of the gateway's scripts (chat_idem_claim_lua, chat_spam_lua: loaded on every
 * connection) is sent as EVALSHA; should Redis answer NOSCRIPT, fn gets that error. */
int gw_redis_call(struct gw *gw,
                  gw_redis_reply_fn *fn,
                  void *priv,
                  int argc,
                  const char **argv,
                  const size_t *lens);
/* True while this node holds its message-id node number (lease not expired). */
bool gw_redis_lease_valid(const struct gw *gw);

#endif
