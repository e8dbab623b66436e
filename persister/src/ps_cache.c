/* ps_cache.c - the Redis recent cache (libchat/include/chat/keys.h, proto/README.md section 12):
 * after a batch's database commit, every stored message goes to chat:recent:ROOM (score seq) and
 * chat:urecent:USER (score ts) as the frame a client gets live, with "prev" = the seq of the
 * room's previous message this process wrote (a reader trusts the cache only where the prev
 * links are unbroken). One synchronous hiredis pipeline per batch, within redis_timeout_ms;
 * while Redis fails the writes are skipped and counted and connects wait for a backoff, so the
 * database path never waits longer than one deadline per backoff. Main thread; see ps.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "chat/hash.h"
#include "chat/keys.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "ps.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define LOG_EVERY_MS   10000
#define KEY_MAX        (sizeof("chat:urecent:") + CHAT_ROOM_MAX + 64)
#define NUM_MAX        24 /* a decimal int64 and its NUL */

void ps_cache_init(struct ps_cache *c, const struct ps_cfg *cfg, struct ps_metrics *m)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->m = m;
    c->backoff_ms = BACKOFF_MIN_MS;
    chat_buf_init(&c->frames, 0, 0);
}

static void disconnect(struct ps_cache *c)
{
    redisFree(c->c);
    c->c = NULL;
}

void ps_cache_forget(struct ps_cache *c)
{
    for (size_t i = 0; i < c->nprev_cap; i++)
        CHAT_FREE(c->prev[i].room);
    c->nprev = 0;
}

void ps_cache_fini(struct ps_cache *c)
{
    disconnect(c);
    ps_cache_forget(c);
    CHAT_FREE(c->prev);
    c->nprev_cap = 0;
    chat_buf_fini(&c->frames);
}

/* The slot of room: its entry, or the free slot where it goes. nprev_cap > 0. */
static struct ps_prev *slot(struct ps_cache *c, const char *room)
{
    size_t mask = c->nprev_cap - 1, i = (size_t)chat_hash_str(room) & mask;

    while (c->prev[i].room && strcmp(c->prev[i].room, room) != 0)
        i = (i + 1) & mask;
    return &c->prev[i];
}

static void grow(struct ps_cache *c)
{
    struct ps_prev *old = c->prev;
    size_t n = c->nprev_cap;

    c->nprev_cap = n ? n * 2 : 64;
    c->prev = chat_xcalloc(c->nprev_cap, sizeof(*c->prev));
    for (size_t i = 0; i < n; i++)
        if (old[i].room)
            *slot(c, old[i].room) = old[i];
    chat_free(old);
}

int64_t ps_cache_prev(struct ps_cache *c, const char *room, int64_t seq)
{
    struct ps_prev *p;
    int64_t prev = -1;

    if (c->nprev >= PS_PREV_MAX)
        ps_cache_forget(c); /* bounded: the next message of each room starts a new chain */
    if ((c->nprev + 1) * 2 > c->nprev_cap)
        grow(c);
    p = slot(c, room);
    if (p->room) {
        if (p->seq < seq)
            prev = p->seq;
    } else {
        p->room = chat_xstrdup(room);
        c->nprev++;
    }
    p->seq = seq; /* a replay going back restarts the chain there */
    return prev;
}

static void log_fail(struct ps_cache *c, const char *what, const char *why)
{
    long skipped;

    if (chat_log_every(&c->log, LOG_EVERY_MS, &skipped))
        chat_log(CHAT_LOG_WARN,
                 "redis: %s: %s; recent cache writes skipped meanwhile (%ld more lines"
                 " suppressed)",
                 what, why, skipped);
}

static void failed(struct ps_cache *c, const char *what)
{
    log_fail(c, what, c->c && c->c->errstr[0] ? c->c->errstr : "no answer");
    disconnect(c);
    chat_metric_add(&c->m->cache_errors, 1);
    chat_metric_set(&c->m->redis_up, 0);
    c->retry_ms = chat_mono_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

/* A connection to use now, or false (down, or waiting for the backoff). */
static bool connected(struct ps_cache *c)
{
    int ms = c->cfg->redis_timeout_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    redisContext *rc;

    if (c->c)
        return true;
    if (chat_mono_ms() < c->retry_ms)
        return false;
    rc = redisConnectWithTimeout(c->cfg->redis_host, c->cfg->redis_port, tv);
    c->c = rc;
    if (!rc || rc->err || redisSetTimeout(rc, tv) != REDIS_OK) {
        if (!rc)
            log_fail(c, "connect", "out of memory");
        failed(c, "connect");
        return false;
    }
    return true;
}

/* A row in group order: by key (room or user), then ord (seq or ts). */
struct sortent {
    const char *key;
    int64_t ord;
    size_t row;
};

static int by_key(const void *a, const void *b)
{
    const struct sortent *x = a, *y = b;
    int d = strcmp(x->key, y->key);

    return d ? d : (x->ord > y->ord) - (x->ord < y->ord);
}

struct pipe {
    redisContext *c;
    size_t queued; /* commands appended */
    bool err;
};

static void cmd(struct pipe *p, int argc, const char **argv, const size_t *lens)
{
    if (p->err)
        return;
    if (redisAppendCommandArgv(p->c, argc, argv, lens) != REDIS_OK)
        p->err = true;
    else
        p->queued++;
}

/* Queues a group's commands: rows idx[0..n), all of one room (or one user). */
static void queue_group(struct pipe *p,
                        const struct ps_batch *b,
                        const struct sortent *idx,
                        size_t n,
                        bool user,
                        int keep,
                        const size_t *foff,
                        const struct chat_buf *frames,
                        char (*nums)[NUM_MAX],
                        const char **argv,
                        size_t *lens)
{
    const struct ps_row *first = &b->rows[idx[0].row], *last = &b->rows[idx[n - 1].row];
    char key[KEY_MAX], a1[NUM_MAX], a2[NUM_MAX];
    int argc = 0;

    snprintf(key, sizeof(key), user ? CHAT_KEY_URECENT_FMT : CHAT_KEY_RECENT_FMT,
             user ? first->user : first->room);
    if (!user) { /* a replay (or another process's copy) of these seqs is replaced */
        snprintf(a1, sizeof(a1), "%" PRId64, first->offset);
        snprintf(a2, sizeof(a2), "%" PRId64, last->offset);
        cmd(p, 4, (const char *[]){"ZREMRANGEBYSCORE", key, a1, a2},
            (const size_t[]){16, strlen(key), strlen(a1), strlen(a2)});
    }
    argv[argc] = "ZADD";
    lens[argc++] = 4;
    argv[argc] = key;
    lens[argc++] = strlen(key);
    for (size_t i = 0; i < n; i++) {
        size_t row = idx[i].row;
        snprintf(nums[i], NUM_MAX, "%" PRId64, idx[i].ord);
        argv[argc] = nums[i];
        lens[argc++] = strlen(nums[i]);
        argv[argc] = chat_buf_data(frames) + foff[row];
        lens[argc++] = foff[row + 1] - foff[row];
    }
    cmd(p, argc, argv, lens);
    snprintf(a1, sizeof(a1), "%d", -(keep + 1));
    cmd(p, 4, (const char *[]){"ZREMRANGEBYRANK", key, "0", a1},
        (const size_t[]){15, strlen(key), 1, strlen(a1)});
    snprintf(a2, sizeof(a2), "%d", CHAT_RECENT_TTL_S);
    cmd(p, 3, (const char *[]){"EXPIRE", key, a2}, (const size_t[]){6, strlen(key), strlen(a2)});
}

/* Groups rows (sorted idx) by room or user and queues each group. */
static void queue_all(struct pipe *p,
                      const struct ps_batch *b,
                      struct sortent *idx,
                      bool user,
                      int keep,
                      const size_t *foff,
                      const struct chat_buf *frames,
                      char (*nums)[NUM_MAX],
                      const char **argv,
                      size_t *lens)
{
    size_t start = 0, n = 0;

    for (size_t i = 0; i < b->n; i++) {
        const struct ps_row *r = &b->rows[i];
        if (user && r->kind && strcmp(r->kind, "message") != 0)
            continue; /* a user's recent messages: not the room's other events */
        idx[n++] = (struct sortent){user ? r->user : r->room, user ? r->ts_ms : r->offset, i};
    }
    if (n == 0)
        return;
    qsort(idx, n, sizeof(*idx), by_key);
    for (size_t i = 1; i <= n; i++) {
        if (i < n && strcmp(idx[start].key, idx[i].key) == 0)
            continue;
        queue_group(p, b, idx + start, i - start, user, keep, foff, frames, nums, argv, lens);
        start = i;
    }
}

/* A message_deleted row: the deleted message's entries (chat:recent:ROOM, and the author's
 * chat:urecent:USER, which holds the same bytes) become its deleted form, in place (same score,
 * so the prev chain is unchanged). A message no longer cached needs nothing. Returns false when
 * Redis failed. */
static bool replace_deleted(struct ps_cache *c, const struct ps_row *r)
{
    char key[KEY_MAX], ukey[KEY_MAX];
    struct chat_buf out;
    redisReply *rep, *one;
    bool good = true;

    snprintf(key, sizeof(key), CHAT_KEY_RECENT_FMT, r->room);
    rep = redisCommand(c->c, "ZRANGE %s 0 -1 WITHSCORES", key);
    if (!rep)
        return false;
    chat_buf_init(&out, 0, 0);
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
        const redisReply *m = rep->element[i], *sc = rep->element[i + 1];
        struct chat_event_msg msg;
        void *doc = NULL;
        bool match;

        if (m->type != REDIS_REPLY_STRING || !chat_msg_has_id(m->str, (uint64_t)r->deletes))
            continue;
        match = chat_msg_decode(m->str, m->len, &msg, &doc) == CHAT_OK &&
                msg.id == (uint64_t)r->deletes && !msg.deleted;
        if (match)
            snprintf(ukey, sizeof(ukey), CHAT_KEY_URECENT_FMT, msg.user);
        chat_json_free(doc);
        chat_buf_reset(&out);
        if (!match || chat_msg_to_deleted(&out, m->str, m->len) != CHAT_OK)
            continue;
        /* the score of the room's key is the seq; the user's key keeps its own score */
        one = redisCommand(c->c, "EVAL %s 2 %s %s %b %b %s", /* both keys in one step */
                           "local s=redis.call('ZSCORE',KEYS[2],ARGV[1]) "
                           "redis.call('ZREM',KEYS[1],ARGV[1]) "
                           "redis.call('ZADD',KEYS[1],ARGV[3],ARGV[2]) "
                           "if s then redis.call('ZREM',KEYS[2],ARGV[1]) "
                           "redis.call('ZADD',KEYS[2],s,ARGV[2]) end return 1",
                           key, ukey, m->str, m->len, chat_buf_data(&out), out.len, sc->str);
        good = one && one->type != REDIS_REPLY_ERROR;
        if (one)
            freeReplyObject(one);
        break;
    }
    chat_buf_fini(&out);
    freeReplyObject(rep);
    return good;
}

void ps_cache_write(struct ps_cache *c, const struct ps_batch *b)
{
    const struct ps_cfg *cfg = c->cfg;
    size_t *foff, *lens, cached = 0;
    struct sortent *idx;
    char(*nums)[NUM_MAX];
    const char **argv;
    struct pipe p = {0};
    bool ok = true;

    if (b->n == 0 || (cfg->recent_per_room <= 0 && cfg->recent_per_user <= 0))
        return;
    /* the frames (and the prev map) first: the chain must advance even when Redis is down */
    foff = chat_xcalloc(b->n + 1, sizeof(*foff));
    chat_buf_reset(&c->frames);
    for (size_t i = 0; i < b->n; i++) {
        const struct ps_row *r = &b->rows[i];
        int64_t prev = ps_cache_prev(c, r->room, r->offset);
        foff[i] = c->frames.len;
        if (ok && r->raw &&
            chat_msg_splice_seq_prev(&c->frames, r->raw, r->raw_len, r->offset, prev) == CHAT_OK)
            cached++;
        else
            ok = false; /* not cacheable (no value kept): skip the batch, the chain breaks */
    }
    foff[b->n] = c->frames.len;
    if (!ok || !connected(c)) {
        chat_metric_add(&c->m->cache_skipped, (long long)b->n);
        chat_free(foff);
        return;
    }
    idx = chat_xcalloc(b->n, sizeof(*idx));
    nums = chat_xcalloc(b->n, sizeof(*nums));
    argv = chat_xcalloc(2 * b->n + 2, sizeof(*argv));
    lens = chat_xcalloc(2 * b->n + 2, sizeof(*lens));
    /* a kept connection Redis closed since (a restart: EOF at once, nothing written) is replaced
     * and the batch sent again once; every write is idempotent (ZADD of a seq's frame, trims) */
    for (int attempt = 0; attempt < 2; attempt++) {
        memset(&p, 0, sizeof(p));
        p.c = c->c;
        if (cfg->recent_per_room > 0)
            queue_all(&p, b, idx, false, cfg->recent_per_room, foff, &c->frames, nums, argv, lens);
        if (cfg->recent_per_user > 0)
            queue_all(&p, b, idx, true, cfg->recent_per_user, foff, &c->frames, nums, argv, lens);
        /* read every answer (an error reply fails the batch: counted, the connection kept) */
        for (size_t i = 0; i < p.queued && !p.err; i++) {
            redisReply *rep = NULL;
            if (redisGetReply(p.c, (void **)&rep) != REDIS_OK || !rep) {
                p.err = true;
                break;
            }
            if (rep->type == REDIS_REPLY_ERROR) {
                log_fail(c, "command failed", rep->str);
                ok = false;
            }
            freeReplyObject(rep);
        }
        if (!p.err || attempt > 0 || c->c->err != REDIS_ERR_EOF)
            break;
        redisFree(c->c);
        c->c = NULL;
        c->retry_ms = 0; /* no backoff: the server is there, only this connection was old */
        if (!connected(c))
            break;
    }
    if (p.err) {
        failed(c, "pipeline");
        chat_metric_add(&c->m->cache_skipped, (long long)b->n);
    } else if (!ok) {
        chat_metric_add(&c->m->cache_errors, 1);
        chat_metric_add(&c->m->cache_skipped, (long long)b->n);
    } else {
        c->backoff_ms = BACKOFF_MIN_MS;
        chat_metric_set(&c->m->redis_up, 1);
        chat_metric_add(&c->m->cached, (long long)cached);
        for (size_t i = 0; i < b->n && !p.err; i++)
            if (b->rows[i].deletes != 0 && cfg->recent_per_room > 0 &&
                !replace_deleted(c, &b->rows[i]))
                p.err = true;
        if (p.err)
            failed(c, "replacing a deleted message");
    }
    chat_free(foff);
    chat_free(idx);
    chat_free(nums);
    chat_free(argv);
    chat_free(lens);
}
