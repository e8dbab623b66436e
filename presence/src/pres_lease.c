/* presence/src/pres_lease.c - leader election by a Redis lease on CHAT_KEY_PRES_LEADER.
 *
 * The key holds the leader's instance id with a PX expiry of CHAT_PRESENCE_LEASE_MS. Each tick
 * every replica runs ACQUIRE: it extends the lease when the caller holds it, takes it with
 * SET NX PX semantics when it is free, and otherwise leaves it alone. The script is atomic, so
 * a replica can never extend or delete a lease another replica took after ours expired.
 * Worker thread only (see pres.h). */
#include <stdio.h>

#include "chat/keys.h"
#include "chat/log.h"

#include "pres.h"

/* KEYS[1] lease key, ARGV[1] instance id, ARGV[2] lease ms.
 * Returns 1 (held and extended), 2 (was free, now ours) or 0 (someone else holds it). */
static const char acquire_lua[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
    "if not v then redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) return 2 end "
    "return 0";

/* KEYS[1] lease key, ARGV[1] instance id. Returns 1 when deleted, 0 when not ours. */
static const char release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('DEL', KEYS[1]) end return 0";

/* Runs a lease script; returns its integer result (>= 0), CHAT_EPROTO on an unexpected reply
 * (counted), CHAT_EIO on a connection failure. */
static int run_script(struct pres *p, const char *script, const char *arg2)
{
    redisReply *r;
    int rc;

    if (arg2) {
        r = redisCommand(p->rc, "EVAL %s 1 %s %s %s", script, CHAT_KEY_PRES_LEADER,
                         p->cfg->instance_id, arg2);
    } else {
        r = redisCommand(p->rc, "EVAL %s 1 %s %s", script, CHAT_KEY_PRES_LEADER,
                         p->cfg->instance_id);
    }
    if (!r)
        return CHAT_EIO;
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0 && r->integer <= 2) {
        rc = (int)r->integer;
    } else {
        pres_redis_key_error(p, CHAT_KEY_PRES_LEADER, r);
        rc = CHAT_EPROTO;
    }
    freeReplyObject(r);
    return rc;
}

int pres_lease_acquire(struct pres *p)
{
    char ms[24];
    int rc;

    (void)snprintf(ms, sizeof(ms), "%d", p->cfg->lease_ms);
    rc = run_script(p, acquire_lua, ms);
    if (rc == CHAT_EPROTO)
        return PRES_LEASE_OTHER; /* e.g. a wrong-typed key: not safe to assume we lead */
    return rc;
}

int pres_lease_release(struct pres *p)
{
    int rc = run_script(p, release_lua, NULL);

    if (rc == 1)
        chat_log(CHAT_LOG_INFO, "lease: released");
    return rc == CHAT_EIO ? CHAT_EIO : CHAT_OK;
}
