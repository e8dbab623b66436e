/* chat/redis_gone.h - whether a synchronous hiredis call failed because the server behind a kept
 * connection is gone (it restarted), so the command never ran and may be sent again once on a
 * new connection: end of file, or, once the socket took the new server's reset, EPIPE (the
 * kernel's report in CLOSE_WAIT) or ECONNRESET. Shared by chat-api (api_redis.c) and the
 * persister (ps_cache.c); header only, for the services that link hiredis. */
#ifndef CHAT_REDIS_GONE_H
#define CHAT_REDIS_GONE_H

#include <errno.h>
#include <stdbool.h>

#include <hiredis/hiredis.h>

/* c's error after a failed call; err_no: errno right after that call. */
static inline bool chat_redis_gone(const redisContext *c, int err_no)
{
    return c->err == REDIS_ERR_EOF ||
           (c->err == REDIS_ERR_IO && (err_no == EPIPE || err_no == ECONNRESET));
}

#endif
