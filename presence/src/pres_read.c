/* presence/src/pres_read.c - the Redis side of the presence worker: connection management with
 * backoff and one pipelined snapshot of every live gateway node (key schema: chat/keys.h).
 * Worker thread only (see pres.h). */
#include <inttypes.h>
#include <string.h>

#include <sys/time.h>

#include "chat/config.h"
#include "chat/keys.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "pres.h"

#define WARN_EVERY_MS 60000

/* Command timeout: well below the lease so a stuck Redis costs leadership, not correctness. */
static struct timeval cmd_timeout(const struct pres_cfg *cfg)
{
    int ms = cfg->lease_ms / 3;

    if (ms < 100)
        ms = 100;
    if (ms > 2000)
        ms = 2000;
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

int pres_redis_connect(struct pres *p)
{
    const struct pres_cfg *cfg = p->cfg;
    struct timeval tv = cmd_timeout(cfg);
    int64_t now = chat_mono_ms();
    redisContext *c;

    if (p->rc)
        return CHAT_OK;
    if (now < p->retry_at_ms)
        return CHAT_EIO;
    c = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        chat_log(CHAT_LOG_WARN, "redis: cannot connect to %s:%d: %s (retry in %d ms)",
                 cfg->redis_host, cfg->redis_port, c ? c->errstr : "out of memory", p->backoff_ms);
        if (c)
            redisFree(c);
        chat_metric_add(&p->m.redis_errors, 1);
        p->retry_at_ms = now + p->backoff_ms;
        p->backoff_ms =
            p->backoff_ms * 2 > PRES_BACKOFF_MAX_MS ? PRES_BACKOFF_MAX_MS : p->backoff_ms * 2;
        return CHAT_EIO;
    }
    chat_log(CHAT_LOG_INFO, "redis: connected to %s:%d", cfg->redis_host, cfg->redis_port);
    p->rc = c;
    p->backoff_ms = PRES_BACKOFF_MIN_MS;
    atomic_store(&p->redis_ok, true);
    return CHAT_OK;
}

void pres_redis_drop(struct pres *p, const char *why)
{
    if (!p->rc)
        return;
    chat_log(CHAT_LOG_WARN, "redis: %s: %s; reconnecting in %d ms", why,
             p->rc->err ? p->rc->errstr : "protocol error", p->backoff_ms);
    redisFree(p->rc);
    p->rc = NULL;
    atomic_store(&p->redis_ok, false);
    chat_metric_add(&p->m.redis_errors, 1);
    p->retry_at_ms = chat_mono_ms() + p->backoff_ms;
    p->backoff_ms =
        p->backoff_ms * 2 > PRES_BACKOFF_MAX_MS ? PRES_BACKOFF_MAX_MS : p->backoff_ms * 2;
    if (p->leader) {
        /* cannot renew without Redis: stop publishing now, the lease runs out on its own */
        chat_log(CHAT_LOG_WARN, "lease: leadership suspended (redis down)");
        p->leader = false;
        chat_metric_set(&p->m.leader, 0);
    }
}

void pres_redis_key_error(struct pres *p, const char *key, const redisReply *r)
{
    int64_t now = chat_mono_ms();
    const char *msg = r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";

    chat_metric_add(&p->m.redis_errors, 1);
    if (now >= p->warn_at_ms) {
        chat_log(CHAT_LOG_WARN, "redis: key %s skipped: %s (further ones at debug for 60 s)", key,
                 msg);
        p->warn_at_ms = now + WARN_EVERY_MS;
    } else {
        chat_log(CHAT_LOG_DEBUG, "redis: key %s skipped: %s", key, msg);
    }
}

/* Returns the next reply of the pipeline (free with freeReplyObject) or NULL on I/O failure. */
static redisReply *next_reply(struct pres *p)
{
    void *r = NULL;

    if (redisGetReply(p->rc, &r) != REDIS_OK)
        return NULL;
    return r;
}

static bool is_plain_string(const redisReply *e)
{
    return e && e->type == REDIS_REPLY_STRING && e->len > 0 && strlen(e->str) == e->len;
}

size_t pres_read_conns(struct pres_tab *agg, const redisReply *r, struct pres_strv *rooms)
{
    size_t bad = 0;

    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return 1;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        long long n;

        if (!is_plain_string(f) || !v || v->type != REDIS_REPLY_STRING ||
            chat_parse_ll(v->str, 0, PRES_COUNT_MAX, &n) != CHAT_OK) {
            bad++;
            continue;
        }
        pres_agg_add_conns(agg, f->str, n);
        if (n > 0 && strcmp(f->str, CHAT_KEY_PRES_ALL) != 0)
            pres_strv_push(rooms, f->str, f->len);
    }
    return bad;
}

size_t pres_read_users(struct pres_tab *agg, const char *room, const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return 1;
    for (size_t i = 0; i < r->elements; i++) {
        if (is_plain_string(r->element[i]))
            pres_agg_add_user(agg, room, r->element[i]->str);
    }
    return 0;
}

/* Round trip 1: drop dead nodes, list live ones. Returns the ZRANGEBYSCORE reply or NULL. */
static redisReply *read_nodes(struct pres *p, int64_t now_ms)
{
    redisReply *r;

    if (redisAppendCommand(p->rc, "ZREMRANGEBYSCORE %s -inf (%" PRId64, CHAT_KEY_PRES_NODES,
                           now_ms) != REDIS_OK ||
        redisAppendCommand(p->rc, "ZRANGEBYSCORE %s %" PRId64 " +inf", CHAT_KEY_PRES_NODES,
                           now_ms) != REDIS_OK)
        return NULL;
    r = next_reply(p);
    if (!r)
        return NULL;
    if (r->type == REDIS_REPLY_ERROR) {
        pres_redis_key_error(p, CHAT_KEY_PRES_NODES, r);
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        chat_log(CHAT_LOG_INFO, "nodes: %lld expired node(s) removed", r->integer);
    }
    freeReplyObject(r);
    return next_reply(p);
}

/* Name of live node i; a garbage member (empty, binary) reads as a node with no keys. */
static const char *node_name(const redisReply *nodes, size_t i)
{
    return is_plain_string(nodes->element[i]) ? nodes->element[i]->str : "?";
}

/* Round trip 2 (chunked): per node, HGETALL of its conns hash and SMEMBERS of its "*" users.
 * Appends the users key and room of every (node, room) to ukeys/urooms. */
static int read_node_hashes(struct pres *p,
                            const redisReply *nodes,
                            struct pres_tab *agg,
                            struct pres_strv *ukeys,
                            struct pres_strv *urooms)
{
    const size_t chunk = PRES_PIPE_MAX / 2;

    for (size_t i = 0; i < nodes->elements; i += chunk) {
        size_t end = i + chunk < nodes->elements ? i + chunk : nodes->elements;

        for (size_t j = i; j < end; j++) {
            const char *node = node_name(nodes, j);
            char *ck = chat_xasprintf(CHAT_KEY_PRES_CONNS_FMT, node);
            char *uk = chat_xasprintf(CHAT_KEY_PRES_USERS_FMT, node, CHAT_KEY_PRES_ALL);
            int rc = redisAppendCommand(p->rc, "HGETALL %s", ck);
            rc |= redisAppendCommand(p->rc, "SMEMBERS %s", uk);
            chat_free(ck);
            chat_free(uk);
            if (rc != REDIS_OK)
                return CHAT_EIO;
        }
        for (size_t j = i; j < end; j++) {
            const char *node = node_name(nodes, j);
            redisReply *h = next_reply(p), *u;
            size_t first = urooms->len;

            if (!h)
                return CHAT_EIO;
            if (pres_read_conns(agg, h, urooms) > 0)
                pres_redis_key_error(p, node, h);
            freeReplyObject(h);
            for (size_t k = first; k < urooms->len; k++) {
                char *key = chat_xasprintf(CHAT_KEY_PRES_USERS_FMT, node, urooms->v[k]);
                pres_strv_push(ukeys, key, strlen(key));
                chat_free(key);
            }
            u = next_reply(p);
            if (!u)
                return CHAT_EIO;
            if (pres_read_users(agg, CHAT_KEY_PRES_ALL, u) > 0)
                pres_redis_key_error(p, node, u);
            freeReplyObject(u);
        }
    }
    return CHAT_OK;
}

/* Round trip 3 (chunked): SMEMBERS of every (node, room) users set. */
static int read_room_users(struct pres *p,
                           const struct pres_strv *ukeys,
                           const struct pres_strv *urooms,
                           struct pres_tab *agg)
{
    for (size_t i = 0; i < ukeys->len; i += PRES_PIPE_MAX) {
        size_t end = i + PRES_PIPE_MAX < ukeys->len ? i + PRES_PIPE_MAX : ukeys->len;

        for (size_t j = i; j < end; j++) {
            if (redisAppendCommand(p->rc, "SMEMBERS %s", ukeys->v[j]) != REDIS_OK)
                return CHAT_EIO;
        }
        for (size_t j = i; j < end; j++) {
            redisReply *r = next_reply(p);
            if (!r)
                return CHAT_EIO;
            if (pres_read_users(agg, urooms->v[j], r) > 0)
                pres_redis_key_error(p, ukeys->v[j], r);
            freeReplyObject(r);
        }
    }
    return CHAT_OK;
}

int pres_read_snapshot(struct pres *p, int64_t now_ms, struct pres_tab *agg, size_t *nnodes)
{
    struct pres_strv ukeys, urooms;
    redisReply *nodes;
    int rc = CHAT_EIO;

    *nnodes = 0;
    pres_strv_init(&ukeys);
    pres_strv_init(&urooms);
    nodes = read_nodes(p, now_ms);
    if (!nodes)
        goto out;
    if (nodes->type != REDIS_REPLY_ARRAY) {
        pres_redis_key_error(p, CHAT_KEY_PRES_NODES, nodes);
        rc = CHAT_EPROTO; /* no usable snapshot: publish nothing rather than zeros */
        goto out;
    }
    rc = read_node_hashes(p, nodes, agg, &ukeys, &urooms);
    if (rc == CHAT_OK)
        rc = read_room_users(p, &ukeys, &urooms, agg);
    *nnodes = nodes->elements;
out:
    if (nodes)
        freeReplyObject(nodes);
    pres_strv_fini(&ukeys);
    pres_strv_fini(&urooms);
    return rc;
}
