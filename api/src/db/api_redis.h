/* api_redis.h - one synchronous Redis connection (hiredis) with a deadline on connect and on
 * every command. Owned by one thread. A failed connect is not retried for a second, so a Redis
 * outage costs a request nothing: the callers (the abuse limits) let the request through. */
#ifndef API_REDIS_H
#define API_REDIS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "chat/log.h"

struct api_redis {
    redisContext *c; /* NULL: none (yet, or dropped) */
    const char *host;
    int port;
    int timeout_ms;
    int64_t retry_at_ms;       /* no connect before (mono ms) */
    atomic_bool *ok;           /* shared: the last call of any thread worked */
    struct chat_log_limit lim; /* connect failures and dropped connections */
};

void api_redis_init(
    struct api_redis *r, const char *host, int port, int timeout_ms, atomic_bool *ok);
/* Runs a command (hiredis format). Returns the reply (freeReplyObject), or NULL when Redis is
 * unreachable, answered an error or did not answer in time (logged, rate-limited). */
redisReply *api_redis_cmd(struct api_redis *r, const char *fmt, ...);
/* As api_redis_cmd, for a command of argc NUL-terminated arguments (SMISMEMBER KEY M1 M2 ...). */
redisReply *api_redis_argv(struct api_redis *r, int argc, const char **argv);
void api_redis_close(struct api_redis *r);

#endif
