/* api_redis.c - synchronous Redis with deadlines (api_redis.h). */
#include "api_redis.h"

#include <errno.h>
#include <stdarg.h>

#include <sys/time.h>

#include "chat/redis_gone.h"
#include "chat/time.h"

#define REDIS_RETRY_MS     1000
#define REDIS_LOG_EVERY_MS 10000

void api_redis_init(
    struct api_redis *r, const char *host, int port, int timeout_ms, atomic_bool *ok)
{
    *r = (struct api_redis){.host = host, .port = port, .timeout_ms = timeout_ms, .ok = ok};
}

static void redis_log(struct api_redis *r, const char *what, const char *why)
{
    long skipped;

    if (chat_log_every(&r->lim, REDIS_LOG_EVERY_MS, &skipped))
        chat_log(CHAT_LOG_WARN, "redis: %s: %s (%ld more suppressed)", what, why, skipped);
}

static void drop(struct api_redis *r, const char *why)
{
    redis_log(r, "connection dropped", why);
    redisFree(r->c);
    r->c = NULL;
    r->retry_at_ms = chat_mono_ms() + REDIS_RETRY_MS;
    if (r->ok)
        atomic_store(r->ok, false);
}

static bool connect_redis(struct api_redis *r)
{
    struct timeval tv = {.tv_sec = r->timeout_ms / 1000, .tv_usec = (r->timeout_ms % 1000) * 1000};

    if (chat_mono_ms() < r->retry_at_ms)
        return false;
    r->c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!r->c || r->c->err) {
        redis_log(r, "cannot connect", r->c ? r->c->errstr : "out of memory");
        redisFree(r->c);
        r->c = NULL;
        r->retry_at_ms = chat_mono_ms() + REDIS_RETRY_MS;
        if (r->ok)
            atomic_store(r->ok, false);
        return false;
    }
    /* a half-open connection must not hang a request: every command has the deadline too */
    if (redisSetTimeout(r->c, tv) != REDIS_OK || redisEnableKeepAlive(r->c) != REDIS_OK) {
        drop(r, "cannot set its timeouts");
        return false;
    }
    return true;
}

/* The reply of a command sent: checked, counted, logged. */
static redisReply *take_reply(struct api_redis *r, redisReply *rep)
{
    if (!rep) {
        drop(r, r->c->errstr[0] ? r->c->errstr : "no answer");
        return NULL;
    }
    if (r->ok)
        atomic_store(r->ok, true);
    if (rep->type == REDIS_REPLY_ERROR) {
        redis_log(r, "command failed", rep->str);
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* A kept connection the server closed since (it restarted), so the command never ran
 * (chat_redis_gone; err_no: errno right after the call). The command is sent again once on a
 * new connection instead of losing the request's Redis work for the reconnect delay. */
static bool stale(struct api_redis *r, const redisReply *rep, int err_no)
{
    if (rep || !chat_redis_gone(r->c, err_no))
        return false;
    redisFree(r->c);
    r->c = NULL;
    return connect_redis(r);
}

redisReply *api_redis_cmd(struct api_redis *r, const char *fmt, ...)
{
    redisReply *rep;
    va_list ap;

    if (!r->c && !connect_redis(r))
        return NULL;
    va_start(ap, fmt);
    errno = 0;
    rep = redisvCommand(r->c, fmt, ap);
    va_end(ap);
    if (stale(r, rep, errno)) {
        va_start(ap, fmt);
        rep = redisvCommand(r->c, fmt, ap);
        va_end(ap);
    }
    return r->c ? take_reply(r, rep) : NULL;
}

redisReply *api_redis_argv(struct api_redis *r, int argc, const char **argv)
{
    redisReply *rep;

    if (!r->c && !connect_redis(r))
        return NULL;
    errno = 0;
    rep = redisCommandArgv(r->c, argc, argv, NULL);
    if (stale(r, rep, errno))
        rep = redisCommandArgv(r->c, argc, argv, NULL);
    return r->c ? take_reply(r, rep) : NULL;
}

void api_redis_close(struct api_redis *r)
{
    redisFree(r->c);
    r->c = NULL;
}
