/* gw_redis.c - the gateway's Redis side: hiredis async on the event loop (libuv adapter).
 *
 * - Message-id node number: leased (chat:node:N, PX 30 s, renewed every 10 s) so that no two
 *   live gateways generate ids with the same node bits. Until leased the node is not ready.
 * - Presence: every second the rooms whose membership changed are written as a users SET and a
 *   connection count (see chat/keys.h), each key with a TTL refreshed every second, so a node
 *   that dies simply expires. Redis is a cache: when it is down chat goes on (presence stalls),
 *   and on reconnect everything is written again.
 * - Reconnects after any failure with a short backoff, on our own libuv adapter (below). */
#include "cache/gw_redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <netdb.h>

#include "chat/account.h"
#include "chat/idem.h"
#include "chat/keys.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/spam.h"
#include "chat/time.h"

#include "core/gw.h"
#include "room/gw_map.h"
#include "room/gw_room.h"
#include "ws/gw_conn.h"

#define RECONNECT_MIN_MS   100    /* first retry after a failure; doubles up to ... */
#define RECONNECT_MAX_MS   500    /* ... this: the 1 s tick runs the retries, so one a second */
#define CONNECT_TIMEOUT_MS 2000   /* a connect not done by then is abandoned (SYN into a void) */
#define REPLY_WATCHDOG_MS  5000   /* no reply for this long with commands pending: reconnect */
#define MAX_INFLIGHT       200000 /* commands awaiting replies before presence reports pause */

/* the scripts of gw_redis_call(), loaded on every connection (see "commands of other modules") */
static const char *const scripts[] = {chat_idem_claim_lua, chat_spam_lua};
#define NSCRIPTS      (sizeof(scripts) / sizeof(scripts[0]))
#define CALL_ARGS_MAX 16 /* arguments of a script call sent as EVALSHA (the spam check: 14) */

static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);
static void script_load(struct gw *gw, const char *text);

/* ---- hiredis on the loop ----
 * hiredis 0.14's own libuv adapter (hiredis/adapters/libuv.h) drops poll errors: libuv reports a
 * refused or failed connect as status < 0 and stops the handle, the adapter returns, and hiredis
 * never learns that the connect failed, so the context waited for ever and a Redis restart
 * stopped the gateway for good. This adapter hands an error to hiredis as the event that makes
 * it look at the socket: a write event while connecting (hiredis checks SO_ERROR, calls
 * on_connect with the failure and frees the context), a read event once connected (the read
 * fails, on_disconnect runs). hiredis owns the struct through ev.data and frees it in cleanup. */
struct rd_uv {
    redisAsyncContext *ac; /* NULL once hiredis let go (cleanup) */
    uv_poll_t poll;
    int events;
    bool write_pending; /* commands are buffered: gw_redis_flush() writes them */
    bool flushing;      /* inside gw_redis_flush(): a write left over waits for POLLOUT */
};

static void rd_uv_cb(uv_poll_t *h, int status, int events)
{
    struct rd_uv *p = h->data;

    if (!p->ac)
        return;
    if (status < 0) {
        if (p->ac->c.flags & REDIS_CONNECTED)
            redisAsyncHandleRead(p->ac);
        else
            redisAsyncHandleWrite(p->ac);
        return;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE)) /* the read may have freed the context */
        redisAsyncHandleWrite(p->ac);
}

/* libuv's uv_poll_start() takes the descriptor out of epoll and puts it back (two system
 * calls) even when the events do not change, and hiredis asks for reads after every write:
 * only a change is passed on. */
static void rd_uv_update(struct rd_uv *p, int add, int del)
{
    int events = (p->events | add) & ~del;

    if (events == p->events)
        return;
    p->events = events;
    if (p->events)
        uv_poll_start(&p->poll, p->events, rd_uv_cb);
    else
        uv_poll_stop(&p->poll);
}

static void rd_uv_add_read(void *d)
{
    rd_uv_update(d, UV_READABLE, 0);
}

static void rd_uv_del_read(void *d)
{
    rd_uv_update(d, 0, UV_READABLE);
}

/* Commands on a connected socket are written before the loop next waits (gw_redis_flush, like
 * the WebSocket frames of ws/gw_conn.c), not after a round of POLLOUT: all the commands of a loop
 * turn go out in one write. POLLOUT is only asked for while connecting and for what a write
 * left over. */
static void rd_uv_add_write(void *d)
{
    struct rd_uv *p = d;
    const struct gw *gw = p->ac ? p->ac->data : NULL;

    /* once shut down the flush no longer runs (core/main.c) */
    if (gw && !gw->shut && (p->ac->c.flags & REDIS_CONNECTED) && !p->flushing)
        p->write_pending = true;
    else
        rd_uv_update(p, UV_WRITABLE, 0);
}

static void rd_uv_del_write(void *d)
{
    struct rd_uv *p = d;

    p->write_pending = false;
    rd_uv_update(p, 0, UV_WRITABLE);
}

static void rd_uv_closed(uv_handle_t *h)
{
    chat_free(h->data);
}

static void rd_uv_cleanup(void *d)
{
    struct rd_uv *p = d;

    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, rd_uv_closed);
}

static int rd_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct rd_uv *p;

    if (ac->ev.data)
        return REDIS_ERR;
    p = chat_xcalloc(1, sizeof(*p));
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        chat_free(p);
        return REDIS_ERR;
    }
    p->ac = ac;
    p->poll.data = p;
    ac->ev.data = p;
    ac->ev.addRead = rd_uv_add_read;
    ac->ev.delRead = rd_uv_del_read;
    ac->ev.addWrite = rd_uv_add_write;
    ac->ev.delWrite = rd_uv_del_write;
    ac->ev.cleanup = rd_uv_cleanup;
    return REDIS_OK;
}

void gw_redis_flush(struct gw *gw)
{
    struct rd_uv *p = gw->redis ? gw->redis->ev.data : NULL;

    if (!p || !p->write_pending)
        return;
    p->write_pending = false;
    p->flushing = true;
    redisAsyncHandleWrite(gw->redis); /* a failure frees the context; p lives until closed */
    p->flushing = false;
}

/* After a failure: the next attempt in redis_backoff_ms (doubling, capped). */
static void retry_later(struct gw *gw)
{
    gw->redis_backoff_ms = gw->redis_backoff_ms ? gw->redis_backoff_ms * 2 : RECONNECT_MIN_MS;
    if (gw->redis_backoff_ms > RECONNECT_MAX_MS)
        gw->redis_backoff_ms = RECONNECT_MAX_MS;
    gw->redis_retry_at_ms = chat_mono_ms() + gw->redis_backoff_ms;
}

static void connect_ip(struct gw *gw, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, gw->cfg->redis_port);

    if (!ac || ac->err) {
        chat_log(CHAT_LOG_WARN, "redis: cannot connect to %s:%d: %s", gw->cfg->redis_host,
                 gw->cfg->redis_port, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        retry_later(gw);
        return;
    }
    ac->data = gw;
    redisEnableKeepAlive(&ac->c); /* a half-open connection must not keep our lease alive */
    if (rd_uv_attach(ac, &gw->loop) != REDIS_OK) {
        chat_log(CHAT_LOG_WARN, "redis: cannot watch the connection's socket");
        redisAsyncFree(ac);
        retry_later(gw);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    gw->redis = ac;
    gw->redis_inflight = 0;
    gw->redis_reply_ms = chat_mono_ms();
    gw->redis_connect_ms = gw->redis_reply_ms;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct gw *gw = req->data;
    char ip[INET_ADDRSTRLEN];

    gw->redis_resolving = false;
    if (status != 0 || !res || gw->shut) {
        if (status != 0 && !gw->shut)
            chat_log(CHAT_LOG_WARN, "redis: cannot resolve %s: %s", gw->cfg->redis_host,
                     uv_strerror(status));
        retry_later(gw);
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr, ip, sizeof(ip));
        connect_ip(gw, ip);
    }
    uv_freeaddrinfo(res);
}

/* Connects without blocking the loop: hiredis 0.14 would call getaddrinfo() itself, so names
 * are resolved with uv_getaddrinfo (thread pool) and hiredis only ever sees an address. */
void gw_redis_start(struct gw *gw)
{
    struct in_addr a;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};

    if (!gw->lease.token[0])
        chat_lease_init(&gw->lease, gw->cfg->node_name, (int)getpid(), chat_now_ms());
    if (inet_pton(AF_INET, gw->cfg->redis_host, &a) == 1) {
        connect_ip(gw, gw->cfg->redis_host);
        return;
    }
    if (gw->redis_resolving)
        return;
    gw->redis_gai.data = gw;
    if (uv_getaddrinfo(&gw->loop, &gw->redis_gai, on_resolved, gw->cfg->redis_host, NULL, &hints) !=
        0) {
        retry_later(gw);
        return;
    }
    gw->redis_resolving = true;
}

bool gw_redis_lease_valid(const struct gw *gw)
{
    return chat_lease_valid(&gw->lease, chat_mono_ms());
}

/* Every command goes through here so the watchdog knows what is outstanding. */
static void redis_sent(struct gw *gw)
{
    gw->redis_inflight++;
}

static void redis_replied(struct gw *gw)
{
    if (gw->redis_inflight > 0)
        gw->redis_inflight--;
    gw->redis_reply_ms = chat_mono_ms();
}

static void mark_all_dirty(struct gw *gw)
{
    for (size_t i = 0; i < gw->rooms.nslots; i++)
        for (struct gw_room *r = gw->rooms.slots[i]; r; r = r->hnext)
            r->dirty = true;
    gw->pres_total_dirty = true;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct gw *gw = ac->data;

    if (status != REDIS_OK) {
        chat_log(CHAT_LOG_WARN, "redis: connect failed: %s", ac->errstr);
        gw->redis = NULL; /* hiredis frees the context */
        gw->redis_ok = false;
        retry_later(gw);
        chat_metric_add(&gw->m.redis_errors, 1);
        return;
    }
    chat_log(CHAT_LOG_INFO, "redis: connected to %s:%d", gw->cfg->redis_host, gw->cfg->redis_port);
    gw->redis_ok = true;
    gw->redis_backoff_ms = 0;
    for (size_t i = 0; i < NSCRIPTS; i++) /* before any EVALSHA on this connection */
        script_load(gw, scripts[i]);
    mark_all_dirty(gw);
    gw_redis_tick(gw);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct gw *gw = ac->data;

    if (status != REDIS_OK) {
        chat_log(CHAT_LOG_WARN, "redis: disconnected: %s", ac->errstr);
        chat_metric_add(&gw->m.redis_errors, 1);
    }
    gw->redis = NULL;
    gw->redis_ok = false;
    retry_later(gw);
}

static void on_lease(redisAsyncContext *ac, void *r, void *priv)
{
    struct gw *gw = ac->data;
    struct chat_lease_req *rq = priv;
    redisReply *reply = r;
    bool ok = reply && reply->type == REDIS_REPLY_INTEGER;
    int64_t floor_ms;

    redis_replied(gw);
    if (reply && reply->type == REDIS_REPLY_ERROR)
        chat_log(CHAT_LOG_WARN, "redis: lease: %s", reply->str);
    switch (chat_lease_reply(&gw->lease, rq, ok, ok ? reply->integer : 0, &floor_ms)) {
    case CHAT_LEASE_TAKEN:
        chat_idgen_init(&gw->idgen, rq->num);
        chat_log(CHAT_LOG_INFO, "node number %u leased (ids after %lld)", rq->num,
                 (long long)floor_ms);
        /* fall through */
    case CHAT_LEASE_RENEWED:
        /* a number used before (also ours again after a lapse, maybe used by another node in
         * between): every id from here is after the last one made under it, even if our clock
         * is behind (a restart after a clock step back); a renewal's answer changes nothing */
        chat_idgen_floor(&gw->idgen, floor_ms);
        break;
    case CHAT_LEASE_LOST:
        chat_log(CHAT_LOG_ERROR, "node number %u lease lost to another node", rq->num);
        break;
    default:
        break;
    }
    chat_free(rq);
}

static void lease_step(struct gw *gw)
{
    struct chat_lease_req *rq = chat_xcalloc(1, sizeof(*rq));
    int64_t used = gw->lease.node_num >= 0 ? chat_idgen_last_ms(&gw->idgen) : 0;

    if (!chat_lease_due(&gw->lease, chat_mono_ms(), chat_now_ms(), used, rq)) {
        chat_free(rq);
        return;
    }
    redis_sent(gw);
    if (redisAsyncCommand(gw->redis, on_lease, rq, "EVAL %s 2 %s %s %s %s %s %s", chat_lease_lua,
                          rq->key, rq->last_key, rq->token, rq->ms, rq->reached,
                          rq->fresh) != REDIS_OK) {
        redis_replied(gw);
        gw->lease.inflight = false;
        chat_free(rq);
    }
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv);

/* redisAsyncCommand with accounting; replies go to on_reply. */
static void cmd(struct gw *gw, const char *fmt, ...)
{
    va_list ap;
    redis_sent(gw);
    va_start(ap, fmt);
    redisvAsyncCommand(gw->redis, on_reply, NULL, fmt, ap);
    va_end(ap);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct gw *gw = ac->data;
    redisReply *reply = r;

    (void)priv;
    redis_replied(gw);
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        chat_metric_add(&gw->m.redis_errors, 1);
        chat_log(CHAT_LOG_WARN, "redis: %s", reply->str);
    }
}

/* ---- commands of other modules (gw_redis_call) ----
 * A script call (EVAL) goes out as EVALSHA: EVAL sends the script's whole text with every call
 * and Redis hashes it again each time, on the send path of every message. The scripts are loaded
 * (SCRIPT LOAD) first thing on every connection, and Redis runs a connection's commands in
 * order, so each EVALSHA finds its script. Should Redis lose them anyway (SCRIPT FLUSH), the
 * caller gets the NOSCRIPT error (its check is skipped, as while Redis is out) and the script is
 * loaded again: sending the call again as EVAL would let it overtake the calls behind it and
 * reorder a connection's sends. */

struct call {
    gw_redis_reply_fn *fn; /* NULL: the answer only counts */
    void *priv;
    const char *script; /* an EVALSHA's script, reloaded on NOSCRIPT; else NULL */
};

/* The SHA-1 of a script (computed once; loop thread only). NULL: not one of scripts[]. */
static const char *script_sha(const char *text)
{
    static char sha[NSCRIPTS][CHAT_SHA1_HEX_LEN + 1];

    for (size_t i = 0; i < NSCRIPTS; i++) {
        if (scripts[i] != text)
            continue;
        if (!sha[i][0])
            chat_sha1_hex(text, strlen(text), sha[i]);
        return sha[i];
    }
    return NULL;
}

static void on_call(redisAsyncContext *ac, void *r, void *priv);

/* SCRIPT LOAD of text, ahead of whatever is queued after it on the connection. */
static void script_load(struct gw *gw, const char *text)
{
    const char *argv[3] = {"SCRIPT", "LOAD", text};
    size_t lens[3] = {6, 4, strlen(text)};
    struct call *k = chat_xcalloc(1, sizeof(*k));

    redis_sent(gw);
    if (redisAsyncCommandArgv(gw->redis, on_call, k, 3, argv, lens) != REDIS_OK) {
        redis_replied(gw);
        chat_free(k);
    }
}

static void on_call(redisAsyncContext *ac, void *r, void *priv)
{
    struct gw *gw = ac->data;
    struct call *k = priv;
    redisReply *reply = r;

    redis_replied(gw);
    if (reply && reply->type == REDIS_REPLY_ERROR && k->script &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        chat_metric_add(&gw->m.redis_noscript, 1);
        if (gw->redis == ac && !gw->shut)
            script_load(gw, k->script);
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        chat_metric_add(&gw->m.redis_errors, 1);
        chat_log(CHAT_LOG_WARN, "redis: %s", reply->str);
    }
    if (k->fn)
        k->fn(gw, reply, k->priv);
    chat_free(k);
}

int gw_redis_call(struct gw *gw,
                  gw_redis_reply_fn *fn,
                  void *priv,
                  int argc,
                  const char **argv,
                  const size_t *lens)
{
    const char *av[CALL_ARGS_MAX];
    size_t lv[CALL_ARGS_MAX];
    struct call *k;
    const char *sha;

    if (!gw->redis || !gw->redis_ok || gw->shut)
        return CHAT_ESTATE;
    k = chat_xcalloc(1, sizeof(*k));
    k->fn = fn;
    k->priv = priv;
    if (argc >= 2 && argc <= CALL_ARGS_MAX && strcmp(argv[0], "EVAL") == 0 &&
        (sha = script_sha(argv[1])) != NULL) {
        k->script = argv[1];
        memcpy(av, argv, (size_t)argc * sizeof(*av));
        memcpy(lv, lens, (size_t)argc * sizeof(*lv));
        av[0] = "EVALSHA";
        lv[0] = 7;
        av[1] = sha;
        lv[1] = CHAT_SHA1_HEX_LEN;
        argv = av;
        lens = lv;
    }
    redis_sent(gw);
    /* refused while hiredis is disconnecting or freeing the context (a callback of the watchdog's
     * redisAsyncFree may send again): then nothing was queued */
    if (redisAsyncCommandArgv(gw->redis, on_call, k, argc, argv, lens) != REDIS_OK) {
        redis_replied(gw);
        chat_free(k);
        return CHAT_ESTATE;
    }
    return CHAT_OK;
}

/* argv builder for variable-length commands */
struct argv {
    const char **v;
    size_t *len;
    int n, cap;
};

static void argv_push(struct argv *a, const char *s)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = chat_xrealloc(a->v, (size_t)a->cap * sizeof(*a->v));
        a->len = chat_xrealloc(a->len, (size_t)a->cap * sizeof(*a->len));
    }
    a->v[a->n] = s;
    a->len[a->n] = strlen(s);
    a->n++;
}

static void argv_send(struct gw *gw, struct argv *a)
{
    redis_sent(gw);
    redisAsyncCommandArgv(gw->redis, on_reply, NULL, a->n, a->v, a->len);
    a->n = 0;
}

/* Writes one presence scope, atomically: the users set (a->v holds "SADD", the key's place and
 * the members; empty when no user) and the connection count. */
static void report_scope(struct gw *gw, struct argv *a, const char *room, long conns)
{
    char ukey[256], ckey[192], num[24], ttl[16];

    snprintf(ukey, sizeof(ukey), CHAT_KEY_PRES_USERS_FMT, gw->cfg->node_name, room);
    snprintf(ckey, sizeof(ckey), CHAT_KEY_PRES_CONNS_FMT, gw->cfg->node_name);
    snprintf(num, sizeof(num), "%ld", conns);
    snprintf(ttl, sizeof(ttl), "%d", CHAT_PRES_TTL_MS);
    cmd(gw, "MULTI");
    cmd(gw, "DEL %s", ukey);
    if (a->n > 2) {
        a->v[1] = ukey;
        a->len[1] = strlen(ukey);
        argv_send(gw, a);
        cmd(gw, "PEXPIRE %s %s", ukey, ttl);
    }
    a->n = 0;
    if (conns > 0)
        cmd(gw, "HSET %s %s %s", ckey, room, num);
    else
        cmd(gw, "HDEL %s %s", ckey, room);
    cmd(gw, "PEXPIRE %s %s", ckey, ttl);
    cmd(gw, "EXEC");
}

/* A room's users set, from its subscribers: no per-user index per room (it cost every idle
 * connection an entry). A user on several of the room's connections is listed once for each;
 * SADD keeps one, and the command stays O(subscribers) like the fan-out. */
static void report_room(struct gw *gw, struct argv *a, const struct gw_room *r)
{
    argv_push(a, "SADD");
    argv_push(a, ""); /* the key: report_scope */
    for (size_t i = 0; i < r->nsubs; i++) {
        const struct gw_conn *c = r->subs[i].c;
        if (c->authed)
            argv_push(a, c->claims.sub);
    }
    report_scope(gw, a, r->name, (long)r->nsubs);
}

/* The node's users set (scope "all"), from the per-user index. */
static void report_total(struct gw *gw, struct argv *a)
{
    argv_push(a, "SADD");
    argv_push(a, "");
    for (size_t i = 0; i < gw->users.nslots; i++)
        for (struct gw_map_ent *e = gw->users.slots[i]; e; e = e->next)
            argv_push(a, e->key);
    report_scope(gw, a, CHAT_KEY_PRES_ALL, gw->nconns);
}

static void presence_report(struct gw *gw)
{
    struct argv a = {0};
    char ukey[256], ttl[16], until[24];

    snprintf(ttl, sizeof(ttl), "%d", CHAT_PRES_TTL_MS);
    for (size_t i = 0; i < gw->rooms.nslots; i++) {
        struct gw_room *r = gw->rooms.slots[i];
        while (r) {
            struct gw_room *next = r->hnext;
            if (r->dirty) {
                report_room(gw, &a, r);
                r->dirty = false;
                r->reported = r->nsubs > 0;
                gw_room_maybe_free(&gw->rooms, r);
            } else if (r->nauthed > 0) {
                snprintf(ukey, sizeof(ukey), CHAT_KEY_PRES_USERS_FMT, gw->cfg->node_name, r->name);
                cmd(gw, "PEXPIRE %s %s", ukey, ttl);
            }
            r = next;
        }
    }
    if (gw->pres_total_dirty) {
        report_total(gw, &a);
        gw->pres_total_dirty = false;
    } else {
        snprintf(ukey, sizeof(ukey), CHAT_KEY_PRES_USERS_FMT, gw->cfg->node_name,
                 CHAT_KEY_PRES_ALL);
        cmd(gw, "PEXPIRE %s %s", ukey, ttl);
        snprintf(ukey, sizeof(ukey), CHAT_KEY_PRES_CONNS_FMT, gw->cfg->node_name);
        cmd(gw, "PEXPIRE %s %s", ukey, ttl);
    }
    snprintf(until, sizeof(until), "%lld", (long long)(chat_now_ms() + CHAT_PRES_TTL_MS));
    cmd(gw, "ZADD %s %s %s", CHAT_KEY_PRES_NODES, until, gw->cfg->node_name);
    chat_free(a.v);
    chat_free(a.len);
}

void gw_redis_tick(struct gw *gw)
{
    if (!gw->redis) {
        if (chat_mono_ms() >= gw->redis_retry_at_ms)
            gw_redis_start(gw);
        return;
    }
    if (!gw->redis_ok) {
        if (chat_mono_ms() - gw->redis_connect_ms > CONNECT_TIMEOUT_MS) {
            chat_log(CHAT_LOG_WARN, "redis: connect to %s:%d not done in %d ms, retrying",
                     gw->cfg->redis_host, gw->cfg->redis_port, CONNECT_TIMEOUT_MS);
            chat_metric_add(&gw->m.redis_errors, 1);
            redisAsyncFree(gw->redis); /* on_connect is not called for a free */
            gw->redis = NULL;
            retry_later(gw);
        }
        return; /* still connecting */
    }
    if (gw->redis_inflight > 0 && chat_mono_ms() - gw->redis_reply_ms > REPLY_WATCHDOG_MS) {
        chat_log(CHAT_LOG_WARN, "redis: no reply for %d ms with %ld commands pending, reconnecting",
                 REPLY_WATCHDOG_MS, gw->redis_inflight);
        chat_metric_add(&gw->m.redis_errors, 1);
        redisAsyncFree(gw->redis); /* callbacks see NULL replies */
        gw->redis = NULL;
        gw->redis_ok = false;
        retry_later(gw);
        return;
    }
    lease_step(gw);
    if (gw->redis_inflight < MAX_INFLIGHT)
        presence_report(gw);
}

/* Removes this node's presence so counts drop at once on a clean shutdown. */
void gw_redis_stop(struct gw *gw)
{
    char key[256];

    if (gw->redis_resolving)
        uv_cancel((uv_req_t *)&gw->redis_gai);

    if (!gw->redis)
        return;
    if (gw->redis_ok) {
        snprintf(key, sizeof(key), CHAT_KEY_PRES_CONNS_FMT, gw->cfg->node_name);
        cmd(gw, "DEL %s", key);
        cmd(gw, "ZREM %s %s", CHAT_KEY_PRES_NODES, gw->cfg->node_name);
        struct chat_lease_req rq;
        if (chat_lease_release(&gw->lease, chat_idgen_last_ms(&gw->idgen), &rq))
            cmd(gw, "EVAL %s 2 %s %s %s %s", chat_lease_release_lua, rq.key, rq.last_key, rq.token,
                rq.reached);
    }
    redisAsyncDisconnect(gw->redis); /* pending replies are served first... */
}

static void kill_cb(uv_timer_t *t)
{
    struct gw *gw = t->data;
    if (gw->redis) {
        chat_log(CHAT_LOG_WARN, "redis: replies did not come in time at shutdown, dropping them");
        redisAsyncFree(gw->redis);
        gw->redis = NULL;
    }
}

/* ...but not forever: an unref'd timer drops Redis if it has not finished in 2 s. */
void gw_redis_arm_kill(struct gw *gw)
{
    uv_timer_init(&gw->loop, &gw->redis_kill);
    gw->redis_kill.data = gw;
    uv_timer_start(&gw->redis_kill, kill_cb, 2000, 0);
    uv_unref((uv_handle_t *)&gw->redis_kill);
}
