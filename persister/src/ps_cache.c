/* ps_cache.c - the Redis recent cache (libchat/include/chat/keys.h, proto/README.md section 12):
 * after a batch's database commit, every stored message goes to chat:recent:ROOM (score seq) and
 * chat:urecent:USER (score ts) as the frame a client gets live, with "prev" = the seq of the
 * room's previous message this process wrote (a reader trusts the cache only where the prev
 * links are unbroken). One synchronous hiredis pipeline per batch (written in RESP here, sent in
 * chunks with the store's pump in between), within redis_timeout_ms; while Redis fails the
 * writes are skipped and counted and connects wait for a backoff, so the database path never
 * waits longer than one deadline per backoff. Main thread; see ps.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "chat/hash.h"
#include "chat/keys.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/redis_gone.h"
#include "chat/time.h"

#include "ps.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define LOG_EVERY_MS   10000
#define KEY_MAX        (sizeof("chat:urecent:") + CHAT_ROOM_MAX + 64)

void ps_cache_init(struct ps_cache *c, const struct ps_cfg *cfg, struct ps_metrics *m)
{
    memset(c, 0, sizeof(*c));
    c->cfg = cfg;
    c->m = m;
    c->backoff_ms = BACKOFF_MIN_MS;
    chat_buf_init(&c->frames, 0, 0);
    chat_buf_init(&c->resp, 0, 0);
}

static void disconnect(struct ps_cache *c)
{
    redisFree(c->c);
    c->c = NULL;
}

/* ---- the tables of rooms and users (struct ps_keys) ---- */

static void keys_clear(struct ps_keys *k)
{
    for (size_t i = 0; i < k->cap; i++)
        CHAT_FREE(k->v[i].name);
    k->n = 0;
}

static void keys_fini(struct ps_keys *k)
{
    keys_clear(k);
    CHAT_FREE(k->v);
    k->cap = 0;
}

/* The slot of name: its entry, or the free slot where it goes. cap > 0. */
static struct ps_key *slot(struct ps_keys *k, const char *name)
{
    size_t mask = k->cap - 1, i = (size_t)chat_hash_str(name) & mask;

    while (k->v[i].name && strcmp(k->v[i].name, name) != 0)
        i = (i + 1) & mask;
    return &k->v[i];
}

static void grow(struct ps_keys *k)
{
    struct ps_key *old = k->v;
    size_t n = k->cap;

    k->cap = n ? n * 2 : 64;
    k->v = chat_xcalloc(k->cap, sizeof(*k->v));
    for (size_t i = 0; i < n; i++)
        if (old[i].name)
            *slot(k, old[i].name) = old[i];
    chat_free(old);
}

/* name's entry, made when missing (no seq, trim and TTL due); a full table is cleared first. */
static struct ps_key *keys_get(struct ps_keys *k, const char *name)
{
    struct ps_key *e;

    if (k->n >= PS_PREV_MAX)
        keys_clear(k); /* bounded: what is forgotten starts again (a new chain, a trim, a TTL) */
    if ((k->n + 1) * 2 > k->cap)
        grow(k);
    e = slot(k, name);
    if (!e->name) {
        *e = (struct ps_key){.name = chat_xstrdup(name), .seq = -1, .untrimmed = PS_TRIM_NOW};
        k->n++;
    }
    return e;
}

/* Every key is trimmed and its TTL set again at its next write: after a failed write (what was
 * sent is unknown) and on a new connection (Redis may have restarted empty). */
static void upkeep_due(struct ps_cache *c)
{
    struct ps_keys *t[2] = {&c->rooms, &c->users};

    for (int j = 0; j < 2; j++)
        for (size_t i = 0; i < t[j]->cap; i++) {
            t[j]->v[i].untrimmed = PS_TRIM_NOW;
            t[j]->v[i].expire_ms = 0;
        }
}

void ps_cache_forget(struct ps_cache *c)
{
    keys_clear(&c->rooms);
}

void ps_cache_fini(struct ps_cache *c)
{
    disconnect(c);
    keys_fini(&c->rooms);
    keys_fini(&c->users);
    keys_fini(&c->stale);
    chat_buf_fini(&c->frames);
    chat_buf_fini(&c->resp);
    CHAT_FREE(c->cuts);
    c->ncuts = c->cuts_cap = 0;
}

int64_t ps_cache_prev(struct ps_cache *c, const char *room, int64_t seq)
{
    struct ps_key *p = keys_get(&c->rooms, room);
    int64_t prev = p->seq >= 0 && p->seq < seq ? p->seq : -1;

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
    upkeep_due(c);
    return true;
}

void ps_cache_set_pump(struct ps_cache *c, void (*fn)(void *), void *arg)
{
    c->pump = fn;
    c->pump_arg = arg;
}

/* ---- The batch's commands, written in RESP (the Redis protocol) here: a command is "*argc"
 * and each argument as "$len" and its bytes, every line ending in CRLF. One buffer for the whole
 * batch (c->resp), cut every PS_CACHE_CHUNK commands (c->cuts); hiredis gets each chunk as it
 * is. ---- */

static int resp_head(struct chat_buf *o, char type, size_t n)
{
    char t[CHAT_I64_DIGITS + 3];
    size_t k = 0;

    t[k++] = type;
    k += chat_fmt_i64(t + k, (int64_t)n);
    t[k++] = '\r';
    t[k++] = '\n';
    return chat_buf_append(o, t, k);
}

static int resp_bulk(struct chat_buf *o, const void *p, size_t n)
{
    return resp_head(o, '$', n) | chat_buf_append(o, p, n) | chat_buf_append(o, "\r\n", 2);
}

static int resp_str(struct chat_buf *o, const char *s)
{
    return resp_bulk(o, s, strlen(s));
}

static int resp_i64(struct chat_buf *o, int64_t v)
{
    char t[CHAT_I64_DIGITS];

    return resp_bulk(o, t, chat_fmt_i64(t, v));
}

/* One command written: a cut after every PS_CACHE_CHUNK. */
static void cmd_done(struct ps_cache *c)
{
    if (++c->ncmds % PS_CACHE_CHUNK != 0)
        return;
    if (c->ncuts == c->cuts_cap) {
        c->cuts_cap = c->cuts_cap ? c->cuts_cap * 2 : 16;
        c->cuts = chat_xrealloc(c->cuts, c->cuts_cap * sizeof(*c->cuts));
    }
    c->cuts[c->ncuts++] = c->resp.len;
}

/* The rows of one key (a room, or a user), chained through next[] in batch order. */
struct group {
    const char *key; /* borrowed from a row; NULL: free slot */
    size_t head, tail, n;
};

#define NO_ROW SIZE_MAX

/* Writes the commands of one group: a room's ZREMRANGEBYSCORE (its seqs: a replay, or another
 * process's copy, is replaced), ZADD; a user's ZADD (score ts); then for either, when due,
 * ZREMRANGEBYRANK (more than keep / PS_TRIM_SLACK_DIV added since the last) and EXPIRE (not
 * set for PS_EXPIRE_EVERY_MS). */
static int write_group(struct ps_cache *c,
                       const struct ps_batch *b,
                       const struct group *g,
                       const size_t *next,
                       bool user,
                       int keep,
                       const size_t *foff,
                       int64_t now_ms)
{
    struct chat_buf *o = &c->resp;
    const char *frames = chat_buf_data(&c->frames);
    struct ps_key *st = keys_get(user ? &c->users : &c->rooms, g->key);
    char key[KEY_MAX];
    int klen, rc = CHAT_OK;

    klen = snprintf(key, sizeof(key), user ? CHAT_KEY_URECENT_FMT : CHAT_KEY_RECENT_FMT, g->key);
    if (klen < 0 || (size_t)klen >= sizeof(key))
        return CHAT_ETOOBIG; /* cannot happen: rooms and users are bounded */
    if (!user) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (size_t i = g->head; i != NO_ROW; i = next[i]) {
            lo = b->rows[i].offset < lo ? b->rows[i].offset : lo;
            hi = b->rows[i].offset > hi ? b->rows[i].offset : hi;
        }
        rc |= resp_head(o, '*', 4) | resp_str(o, "ZREMRANGEBYSCORE") |
              resp_bulk(o, key, (size_t)klen) | resp_i64(o, lo) | resp_i64(o, hi);
        cmd_done(c);
    }
    rc |= resp_head(o, '*', 2 + 2 * g->n) | resp_str(o, "ZADD") | resp_bulk(o, key, (size_t)klen);
    for (size_t i = g->head; i != NO_ROW; i = next[i]) {
        rc |= resp_i64(o, user ? b->rows[i].ts_ms : b->rows[i].offset);
        rc |= resp_bulk(o, frames + foff[i], foff[i + 1] - foff[i]);
    }
    cmd_done(c);
    st->untrimmed =
        st->untrimmed > PS_TRIM_NOW - g->n ? PS_TRIM_NOW : st->untrimmed + (uint32_t)g->n;
    if (st->untrimmed > (uint32_t)keep / PS_TRIM_SLACK_DIV) {
        rc |= resp_head(o, '*', 4) | resp_str(o, "ZREMRANGEBYRANK") |
              resp_bulk(o, key, (size_t)klen) | resp_str(o, "0") | resp_i64(o, -(int64_t)keep - 1);
        cmd_done(c);
        st->untrimmed = 0;
    }
    if (st->expire_ms == 0 || now_ms - st->expire_ms >= PS_EXPIRE_EVERY_MS) {
        rc |= resp_head(o, '*', 3) | resp_str(o, "EXPIRE") | resp_bulk(o, key, (size_t)klen) |
              resp_i64(o, CHAT_RECENT_TTL_S);
        cmd_done(c);
        st->expire_ms = now_ms > 0 ? now_ms : 1;
    }
    return rc;
}

/* Groups the rows by room (user: by user, messages only) in first-seen order, without sorting,
 * and writes each group's commands. */
static int write_groups(struct ps_cache *c,
                        const struct ps_batch *b,
                        bool user,
                        int keep,
                        const size_t *foff,
                        int64_t now_ms)
{
    size_t cap = 16, ngroups = 0, *order, *next;
    struct group *slots;
    int rc = CHAT_OK;

    while (cap < 2 * b->n)
        cap *= 2;
    slots = chat_xcalloc(cap, sizeof(*slots));
    order = chat_xcalloc(b->n, sizeof(*order));
    next = chat_xcalloc(b->n, sizeof(*next));
    for (size_t i = 0; i < b->n; i++) {
        const struct ps_row *r = &b->rows[i];
        const char *key = user ? r->user : r->room;
        size_t j;

        if (user && r->kind && strcmp(r->kind, "message") != 0)
            continue; /* a user's recent messages: not the room's other events */
        j = (size_t)chat_hash_str(key) & (cap - 1);
        while (slots[j].key && strcmp(slots[j].key, key) != 0)
            j = (j + 1) & (cap - 1);
        next[i] = NO_ROW;
        if (!slots[j].key) {
            slots[j] = (struct group){.key = key, .head = i, .tail = i};
            order[ngroups++] = j;
        } else {
            next[slots[j].tail] = i;
            slots[j].tail = i;
        }
        slots[j].n++;
    }
    for (size_t k = 0; k < ngroups && rc == CHAT_OK; k++)
        rc = write_group(c, b, &slots[order[k]], next, user, keep, foff, now_ms);
    chat_free(slots);
    chat_free(order);
    chat_free(next);
    return rc;
}

struct pipe {
    struct ps_cache *cache;
    redisContext *c;
    size_t queued, answered; /* commands handed to hiredis; answers read */
    bool err;                /* the connection failed */
    int err_no;              /* errno right after the failure (REDIS_ERR_IO) */
    bool refused;            /* an error reply (the connection is fine) */
};

/* Reads the answers of every queued command; an error reply is logged and marks the pipe. */
static void answers(struct pipe *p)
{
    while (p->answered < p->queued && !p->err) {
        redisReply *rep = NULL;
        errno = 0;
        if (redisGetReply(p->c, (void **)&rep) != REDIS_OK || !rep) {
            p->err = true;
            p->err_no = errno;
            break;
        }
        p->answered++;
        if (rep->type == REDIS_REPLY_ERROR) {
            log_fail(p->cache, "command failed", rep->str);
            p->refused = true;
        }
        freeReplyObject(rep);
    }
}

/* Sends the written commands chunk by chunk, reading each chunk's answers (hiredis sends at the
 * first read) and running the pump between chunks. */
static void send_all(struct pipe *p)
{
    struct ps_cache *c = p->cache;
    const char *data = chat_buf_data(&c->resp);
    size_t start = 0;

    for (size_t k = 0; k <= c->ncuts && !p->err; k++) {
        size_t end = k < c->ncuts ? c->cuts[k] : c->resp.len;
        size_t n = k < c->ncuts ? PS_CACHE_CHUNK : c->ncmds - c->ncuts * PS_CACHE_CHUNK;

        if (n == 0)
            break;
        if (redisAppendFormattedCommand(p->c, data + start, end - start) != REDIS_OK) {
            p->err = true;
            break;
        }
        p->queued += n;
        start = end;
        answers(p);
        if (end < c->resp.len && c->pump) /* between chunks only */
            c->pump(c->pump_arg);
    }
}

/* Replaces the member frame of score sc in the room's key (and, with the same bytes, in the
 * author's chat:urecent:USER, which keeps its own score) by out, in one step. False when Redis
 * failed. */
static bool replace_member(struct ps_cache *c,
                           const char *key,
                           const char *author,
                           const redisReply *m,
                           const redisReply *sc,
                           const struct chat_buf *out)
{
    char ukey[KEY_MAX];
    redisReply *one;
    bool good;

    snprintf(ukey, sizeof(ukey), CHAT_KEY_URECENT_FMT, author);
    one = redisCommand(c->c, "EVAL %s 2 %s %s %b %b %s", /* both keys in one step */
                       "local s=redis.call('ZSCORE',KEYS[2],ARGV[1]) "
                       "redis.call('ZREM',KEYS[1],ARGV[1]) "
                       "redis.call('ZADD',KEYS[1],ARGV[3],ARGV[2]) "
                       "if s then redis.call('ZREM',KEYS[2],ARGV[1]) "
                       "redis.call('ZADD',KEYS[2],s,ARGV[2]) end return 1",
                       key, ukey, m->str, m->len, chat_buf_data(out), out->len, sc->str);
    good = one && one->type != REDIS_REPLY_ERROR;
    if (one)
        freeReplyObject(one);
    return good;
}

/* The form that row r (a message_deleted or message_edited row) gives a cached frame of its
 * message id: a delete, the deleted form of the message and of each of its edits; an edit, the
 * edited form of the message. Appends it to out and sets *author; false when the frame is not
 * one r changes (another id, deleted already, another kind). */
static bool changed_form(
    const struct ps_row *r, const redisReply *m, struct chat_buf *out, char *author, size_t cap)
{
    uint64_t id = (uint64_t)(r->deletes ? r->deletes : r->edits);
    enum chat_stream_type type = CHAT_STREAM_UNKNOWN;
    bool match = false;
    void *doc = NULL;

    (void)chat_msg_stream_prefix(m->str, m->len, &type);
    if (type == CHAT_STREAM_MESSAGE) {
        struct chat_event_msg msg;
        match =
            chat_msg_decode(m->str, m->len, &msg, &doc) == CHAT_OK && msg.id == id && !msg.deleted;
        if (match)
            snprintf(author, cap, "%s", msg.user);
    } else if (type == CHAT_STREAM_EDITED && r->deletes) {
        struct chat_stream_ev ev;
        match = chat_stream_ev_decode(m->str, m->len, &ev, &doc) == CHAT_OK && ev.id == id &&
                !ev.deleted;
        if (match)
            snprintf(author, cap, "%s", ev.user); /* not in the user's key: a no-op there */
    }
    chat_json_free(doc);
    if (!match)
        return false;
    if (r->deletes)
        return chat_msg_to_deleted(out, m->str, m->len) == CHAT_OK;
    return chat_msg_to_edited(out, m->str, m->len, r->edit_text, r->ts_ms) == CHAT_OK;
}

/* Whether the reply (member, score pairs) holds an edit of message id later in the stream than
 * offset: a replayed edit must not undo it. */
static bool later_edit_cached(const redisReply *rep, uint64_t id, int64_t offset)
{
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
        const redisReply *m = rep->element[i], *sc = rep->element[i + 1];
        enum chat_stream_type type = CHAT_STREAM_UNKNOWN;

        if (m->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING ||
            strtoll(sc->str, NULL, 10) <= offset || !chat_msg_has_id(m->str, id))
            continue;
        (void)chat_msg_stream_prefix(m->str, m->len, &type);
        if (type == CHAT_STREAM_EDITED)
            return true;
    }
    return false;
}

/* A message_deleted or message_edited row: the cached entries it changes (chat:recent:ROOM, and
 * the author's chat:urecent:USER, which holds the same bytes) become their new form, in place
 * (same score, so the prev chain is unchanged): a deleted message and its edits lose their
 * text, an edited message gets its new one (unless a later edit of it is cached: a replayed
 * batch). A message no longer cached (or not yet: forms_in_batch) needs nothing. Runs before
 * the batch's commands, in row order. Returns false when Redis failed. */
static bool replace_changed(struct ps_cache *c, const struct ps_row *r)
{
    uint64_t id = (uint64_t)(r->deletes ? r->deletes : r->edits);
    char key[KEY_MAX], author[CHAT_USER_MAX + 1];
    struct chat_buf out;
    redisReply *rep;
    bool good = true, skip;

    snprintf(key, sizeof(key), CHAT_KEY_RECENT_FMT, r->room);
    rep = redisCommand(c->c, "ZRANGE %s 0 -1 WITHSCORES", key);
    if (!rep)
        return false;
    chat_buf_init(&out, 0, 0);
    skip = r->edits && later_edit_cached(rep, id, r->offset);
    for (size_t i = 0; !skip && good && rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements;
         i += 2) {
        const redisReply *m = rep->element[i], *sc = rep->element[i + 1];

        if (m->type != REDIS_REPLY_STRING || !chat_msg_has_id(m->str, id))
            continue;
        chat_buf_reset(&out);
        if (changed_form(r, m, &out, author, sizeof(author)))
            good = replace_member(c, key, author, m, sc, &out);
    }
    chat_buf_fini(&out);
    freeReplyObject(rep);
    return good;
}

/* Whether row d (later in the batch) deletes (d->deletes) or edits (d->edits) the message of
 * row r: r a message, or for a delete also an edit of that message; same room, later offset. */
static bool changes(const struct ps_row *d, const struct ps_row *r)
{
    int64_t target = r->edits ? r->edits : r->id;

    if (d->offset <= r->offset || strcmp(d->room, r->room) != 0 || r->deletes != 0)
        return false;
    if (d->deletes)
        return d->deletes == target && (r->edits || strcmp(r->kind, "message") == 0);
    return d->edits && !r->edits && d->edits == r->id && strcmp(r->kind, "message") == 0;
}

/* Rows of the batch that later rows of the batch edit or delete (same room) are written in
 * their final form from the start: a message edited in the batch carries its newest text, and
 * a deleted message and its edits never reach the cache with their text. Rewrites c->frames and
 * foff (all or nothing); a frame that cannot be converted stays as it was. */
static void forms_in_batch(struct ps_cache *c, const struct ps_batch *b, size_t *foff)
{
    const struct ps_row **chg = NULL;
    size_t nchg = 0, cap = 0, *noff;
    struct chat_buf nf, cur, out, t;
    int rc = CHAT_OK;

    for (size_t j = 0; j < b->n; j++)
        if (b->rows[j].deletes != 0 || b->rows[j].edits != 0) {
            if (nchg == cap) {
                cap = cap ? cap * 2 : 8;
                chg = chat_xrealloc(chg, cap * sizeof(*chg));
            }
            chg[nchg++] = &b->rows[j];
        }
    if (nchg == 0)
        return;
    noff = chat_xcalloc(b->n + 1, sizeof(*noff));
    chat_buf_init(&nf, 0, 0);
    chat_buf_init(&cur, 0, 0);
    chat_buf_init(&out, 0, 0);
    for (size_t i = 0; i < b->n && rc == CHAT_OK; i++) {
        const struct ps_row *r = &b->rows[i];

        chat_buf_reset(&cur);
        rc = chat_buf_append(&cur, chat_buf_data(&c->frames) + foff[i], foff[i + 1] - foff[i]);
        for (size_t k = 0; k < nchg && rc == CHAT_OK; k++) { /* in stream order */
            const struct ps_row *d = chg[k];
            if (!changes(d, r))
                continue;
            chat_buf_reset(&out);
            if ((d->deletes ? chat_msg_to_deleted(&out, chat_buf_data(&cur), cur.len)
                            : chat_msg_to_edited(&out, chat_buf_data(&cur), cur.len, d->edit_text,
                                                 d->ts_ms)) != CHAT_OK)
                continue; /* deleted already, or not a frame of that kind: as it was */
            t = cur;
            cur = out;
            out = t;
        }
        noff[i] = nf.len;
        if (rc == CHAT_OK)
            rc = chat_buf_append(&nf, chat_buf_data(&cur), cur.len);
    }
    noff[b->n] = nf.len;
    if (rc == CHAT_OK) { /* cannot fail (no cap on the buffers); if it did: unchanged */
        memcpy(foff, noff, (b->n + 1) * sizeof(*foff));
        t = c->frames;
        c->frames = nf;
        nf = t;
    }
    chat_buf_fini(&nf);
    chat_buf_fini(&cur);
    chat_buf_fini(&out);
    chat_free(noff);
    chat_free(chg);
}

/* A batch not written (or not known to be): the rooms whose cached copies its deletes and edits
 * would have changed are remembered, so their stale texts are never served (drop_stale). */
static void mark_stale(struct ps_cache *c, const struct ps_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->rows[i].deletes != 0 || b->rows[i].edits != 0)
            (void)keys_get(&c->stale, b->rows[i].room);
}

/* Drops the chat:recent key of every stale room (history reads PostgreSQL until the room's
 * key links up again). False when Redis failed (they stay stale). */
static bool drop_stale(struct ps_cache *c)
{
    char key[KEY_MAX];

    for (size_t i = 0; i < c->stale.cap; i++) {
        redisReply *rep;
        bool good;

        if (!c->stale.v[i].name)
            continue;
        snprintf(key, sizeof(key), CHAT_KEY_RECENT_FMT, c->stale.v[i].name);
        rep = redisCommand(c->c, "DEL %s", key);
        good = rep && rep->type != REDIS_REPLY_ERROR;
        if (rep)
            freeReplyObject(rep);
        if (!good)
            return false;
    }
    keys_clear(&c->stale);
    return true;
}

/* The batch's commands into c->resp (cut into chunks): every room's, then every user's. */
static int write_commands(struct ps_cache *c, const struct ps_batch *b, const size_t *foff)
{
    const struct ps_cfg *cfg = c->cfg;
    int64_t now_ms = chat_mono_ms();
    int rc = CHAT_OK;

    chat_buf_reset(&c->resp);
    c->ncmds = c->ncuts = 0;
    if (cfg->recent_per_room > 0)
        rc |= write_groups(c, b, false, cfg->recent_per_room, foff, now_ms);
    if (cfg->recent_per_user > 0)
        rc |= write_groups(c, b, true, cfg->recent_per_user, foff, now_ms);
    return rc;
}

void ps_cache_write(struct ps_cache *c, const struct ps_batch *b)
{
    const struct ps_cfg *cfg = c->cfg;
    size_t *foff, cached = 0;
    struct pipe p = {0};
    bool ok = true;
    int rc = CHAT_OK;

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
    if (ok && connected(c) && c->stale.n > 0 && !drop_stale(c)) {
        ok = false;
        if (c->c->err) /* a broken connection: as a failed pipeline */
            failed(c, "dropping stale rooms");
    }
    if (!ok || !c->c) {
        mark_stale(c, b);
        chat_metric_add(&c->m->cache_skipped, (long long)b->n);
        chat_free(foff);
        return;
    }
    if (cfg->recent_per_room > 0)
        forms_in_batch(c, b, foff);
    rc = write_commands(c, b, foff);
    /* a kept connection Redis closed since (a restart: EOF, or EPIPE / ECONNRESET once the socket
     * took the new server's reset; the command never ran) is replaced
     * and the batch sent again once, its commands written again (the new connection trims and
     * sets every TTL: the server may have restarted empty); every write is idempotent. The
     * messages this batch deletes or edits that are cached already become their new form first,
     * so a reader never sees a message_deleted event next to the text it deleted, nor an edit
     * next to the old text. */
    for (int attempt = 0; attempt < 2 && rc == CHAT_OK; attempt++) {
        p = (struct pipe){.cache = c, .c = c->c};
        for (size_t i = 0; i < b->n && !p.err && cfg->recent_per_room > 0; i++)
            if (b->rows[i].deletes != 0 || b->rows[i].edits != 0) {
                errno = 0;
                if (!replace_changed(c, &b->rows[i])) {
                    p.err = true;
                    p.err_no = errno;
                }
            }
        if (!p.err)
            send_all(&p); /* an error reply fails the batch: counted, the connection kept */
        ok = !p.refused;
        if (!p.err || attempt > 0 || !chat_redis_gone(c->c, p.err_no))
            break;
        redisFree(c->c);
        c->c = NULL;
        c->retry_ms = 0; /* no backoff: the server is there, only this connection was old */
        if (!connected(c))
            break;
        rc = write_commands(c, b, foff);
    }
    chat_free(foff);
    if (rc != CHAT_OK) { /* cannot happen (no cap on the buffer, bounded keys) */
        upkeep_due(c);
        mark_stale(c, b);
        chat_metric_add(&c->m->cache_skipped, (long long)b->n);
        return;
    }
    if (p.err) {
        failed(c, "pipeline");
        upkeep_due(c);
        mark_stale(c, b);
        chat_metric_add(&c->m->cache_skipped, (long long)b->n);
    } else if (!ok) {
        upkeep_due(c);
        mark_stale(c, b);
        chat_metric_add(&c->m->cache_errors, 1);
        chat_metric_add(&c->m->cache_skipped, (long long)b->n);
    } else {
        c->backoff_ms = BACKOFF_MIN_MS;
        chat_metric_set(&c->m->redis_up, 1);
        chat_metric_add(&c->m->cached, (long long)cached);
    }
}
