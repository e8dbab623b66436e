/* r_history.c - a room's history and the caller's read marker (proto/README.md section 9,
 * "History"; queries in db/queries/history.sql).
 *
 * GET /api/v1/rooms/{room}/messages?before=SEQ|after=SEQ&limit=N answers from the Redis recent
 * cache (chat:recent:ROOM, written by the persister after its database commit) only when the
 * cache provably holds the whole page: every entry carries the seq of the room's previous
 * message ("prev"), and a page is taken from the cache only when the entries link up without a
 * gap (entry.prev == the next older entry's seq), it reaches back to a known message (the
 * oldest entry's prev, or the `after` cursor) and, for pages that end at the room's newest
 * message, the newest entry is the newest stored one (rooms.last_seq). Anything else (Redis
 * down, a gap from a persister restart or a Redis outage, a trimmed ZSET) reads PostgreSQL,
 * which is always complete. Request thread; blocking calls with deadlines (api_db, api_redis). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "chat/config.h"
#include "chat/keys.h"
#include "chat/mem.h"

#include "api.h"
#include "db/api_conns.h"
#include "routes.h"
#include "routes/r_rooms_int.h"

#define HISTORY_DEFAULT_LIMIT 50 /* limit when the query has none (capped to CHAT_HISTORY_MAX) */
#define SEQ_NONE              (-1)

enum page_kind { PAGE_NEWEST, PAGE_BEFORE, PAGE_AFTER };

struct page {
    enum page_kind kind;
    int64_t cursor; /* before/after: the seq given */
    int limit;      /* 1..history_max */
    int64_t last;   /* the room's newest stored seq; SEQ_NONE: none stored; -2: not known yet */
};

#define LAST_UNKNOWN (-2)

/* A non-negative decimal integer (no sign, no spaces). */
static bool parse_seq(const char *s, int64_t *out)
{
    long long v = 0;

    if (!s || s[0] < '0' || s[0] > '9' || chat_parse_ll(s, 0, INT64_MAX, &v) != CHAT_OK)
        return false;
    *out = v;
    return true;
}

/* The query string: before/after (not both), limit. False: answered 400. */
static bool parse_page(struct api_req *r, struct page *pg)
{
    const char *before = api_query(r, "before"), *after = api_query(r, "after");
    const char *limit = api_query(r, "limit");
    long long n = HISTORY_DEFAULT_LIMIT;

    *pg = (struct page){.kind = PAGE_NEWEST, .last = LAST_UNKNOWN};
    if ((before && after) || (before && !parse_seq(before, &pg->cursor)) ||
        (after && !parse_seq(after, &pg->cursor))) {
        api_reply_error(r, 400, "bad_field", "before and after are seqs (integers >= 0), not both");
        return false;
    }
    if (limit &&
        (limit[0] < '1' || limit[0] > '9' || chat_parse_ll(limit, 1, INT64_MAX, &n) != CHAT_OK)) {
        api_reply_error(r, 400, "bad_field", "limit is an integer >= 1");
        return false;
    }
    pg->kind = before ? PAGE_BEFORE : after ? PAGE_AFTER : PAGE_NEWEST;
    pg->limit = n > r->api->cfg->history_max ? r->api->cfg->history_max : (int)n;
    return true;
}

enum access { ACCESS_OK, ACCESS_DENIED, ACCESS_ERROR };

/* May the caller read room? Fills pg->last from rooms.last_seq when the room has a row. */
static enum access
read_access(struct api_req *r, struct api_db *db, const char *room, struct page *pg)
{
    const char *p[2] = {room, r_viewer(r)};
    PGresult *res = api_db_qn(db, API_Q_room_read_access, 2, p);
    enum access acc;

    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading room access"))
        return ACCESS_ERROR;
    if (PQntuples(res) == 0) { /* no row: an ad-hoc room is public, a restricted id unknown */
        acc = room[0] == '_' ? ACCESS_DENIED : ACCESS_OK;
    } else {
        acc = strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? ACCESS_OK : ACCESS_DENIED;
        if (!PQgetisnull(res, 0, 2))
            pg->last = api_db_ll(res, 0, 2);
    }
    PQclear(res);
    return acc;
}

/* pg->last when rooms.last_seq did not give it: the newest stored seq. False: database error. */
static bool last_stored(struct api_db *db, const char *room, struct page *pg)
{
    const char *p[1] = {room};
    PGresult *res;

    if (pg->last != LAST_UNKNOWN)
        return true;
    res = api_db_qn(db, API_Q_room_last_stored, 1, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a room's last seq"))
        return false;
    pg->last = PQntuples(res) == 1 ? api_db_ll(res, 0, 0) : SEQ_NONE;
    PQclear(res);
    return true;
}

/* ---- the cache ---- */

struct entry {
    const char *v; /* borrowed from the reply */
    size_t len;
    int64_t seq, prev;
};

/* Decodes the reply's members into e[] (at most cap). False when one is not a message frame of
 * this room (then the cache is not used). */
static bool
decode_entries(const redisReply *rep, const char *room, struct entry *e, size_t cap, size_t *n)
{
    *n = 0;
    if (!rep || rep->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i < rep->elements && *n < cap; i++) {
        const redisReply *m = rep->element[i];
        struct chat_event_msg msg;
        void *doc = NULL;
        bool ok;

        if (m->type != REDIS_REPLY_STRING)
            return false;
        ok = chat_msg_decode(m->str, m->len, &msg, &doc) == CHAT_OK && msg.seq >= 0 &&
             strcmp(msg.room, room) == 0;
        if (!ok) { /* the room's other events (message_deleted, system) */
            struct chat_stream_ev ev;
            chat_json_free(doc);
            ok = chat_stream_ev_decode(m->str, m->len, &ev, &doc) == CHAT_OK && ev.seq >= 0 &&
                 strcmp(ev.room, room) == 0;
            msg.seq = ev.seq;
            msg.prev = ev.prev;
        }
        e[*n] = (struct entry){.v = m->str, .len = m->len, .seq = msg.seq, .prev = msg.prev};
        chat_json_free(doc);
        if (!ok)
            return false;
        (*n)++;
    }
    return true;
}

/* Appends e[from..to) (or reversed when step < 0) to frames, comma-separated. */
static int add_entries(struct chat_buf *frames, const struct entry *e, long from, long to, int step)
{
    int rc = CHAT_OK;

    for (long i = from; i != to && rc == CHAT_OK; i += step) {
        if (frames->len > 0)
            rc = chat_buf_append(frames, ",", 1);
        if (rc == CHAT_OK)
            rc = chat_buf_append(frames, e[i].v, e[i].len);
    }
    return rc;
}

/* Tries the page from the cache. Returns true when it answered into frames/more. */
static bool from_cache(struct api_req *r,
                       struct api_redis *rd,
                       struct api_db *db,
                       const char *room,
                       struct page *pg,
                       struct chat_buf *frames,
                       bool *more,
                       bool *db_failed)
{
    char key[128];
    struct entry *e = NULL;
    redisReply *rep = NULL;
    size_t n = 0, want = (size_t)pg->limit + 1;
    bool used = false;
    long first = 0;

    if (r->api->cfg->recent_per_room <= 0 || (size_t)r->api->cfg->recent_per_room < want)
        return false;
    snprintf(key, sizeof(key), CHAT_KEY_RECENT_FMT, room);
    if (pg->kind == PAGE_NEWEST)
        rep = api_redis_cmd(rd, "ZREVRANGEBYSCORE %s +inf -inf LIMIT 0 %d", key, pg->limit);
    else if (pg->kind == PAGE_BEFORE) /* the entry at the cursor itself anchors the page */
        rep = api_redis_cmd(rd, "ZREVRANGEBYSCORE %s %lld -inf LIMIT 0 %d", key,
                            (long long)pg->cursor, (int)want);
    else
        rep = api_redis_cmd(rd, "ZRANGEBYSCORE %s (%lld +inf LIMIT 0 %d", key,
                            (long long)pg->cursor, (int)want);
    if (!rep)
        return false;
    e = chat_xcalloc(want, sizeof(*e));
    if (!decode_entries(rep, room, e, want, &n) || n == 0)
        goto out;
    if (pg->kind == PAGE_AFTER) {
        /* ascending: reaches down to the cursor, links up, and either fills the page (+1: more)
         * or ends at the room's newest stored message */
        if (e[0].prev == SEQ_NONE || e[0].prev > pg->cursor)
            goto out;
        for (size_t i = 1; i < n; i++)
            if (e[i].prev != e[i - 1].seq)
                goto out;
        if (n < want) {
            if (!last_stored(db, room, pg)) {
                *db_failed = true;
                goto out;
            }
            if (pg->last > e[n - 1].seq)
                goto out; /* the cache lags the database */
        }
        *more = n == want;
        used = add_entries(frames, e, 0, n == want ? (long)n - 1 : (long)n, 1) == CHAT_OK;
        goto out;
    }
    /* descending */
    if (pg->kind == PAGE_BEFORE) {
        if (e[0].seq != pg->cursor)
            goto out; /* not anchored: a message right below the cursor may be missing */
        first = 1;
    } else {
        if (!last_stored(db, room, pg)) {
            *db_failed = true;
            goto out;
        }
        if (pg->last > e[0].seq)
            goto out;
    }
    if (n - (size_t)first < (size_t)pg->limit)
        goto out; /* cannot tell whether the room has fewer messages: the database can */
    for (size_t i = 1; i < n; i++)
        if (e[i - 1].prev != e[i].seq)
            goto out;
    if (e[n - 1].prev == SEQ_NONE)
        goto out; /* the oldest one's predecessor is unknown (after a persister start) */
    *more = true; /* the oldest one has a predecessor */
    used = add_entries(frames, e, (long)n - 1, first - 1, -1) == CHAT_OK;
out:
    chat_free(e);
    freeReplyObject(rep);
    if (!used)
        chat_buf_reset(frames);
    return used;
}

/* ---- the database ---- */

/* Appends row i of a history result as a message frame with seq and prev (< 0: none). */
static int add_row(struct chat_buf *frames,
                   struct chat_buf *tmp,
                   const PGresult *res,
                   int i,
                   const char *room,
                   int64_t prev)
{
    struct chat_event_msg m = {.room = room, .seq = SEQ_NONE, .prev = SEQ_NONE};
    long long id = 0;
    int rc;

    if (strcmp(PQgetvalue(res, i, 7), "message") != 0) { /* an event: the record as produced */
        rc = frames->len > 0 ? chat_buf_append(frames, ",", 1) : CHAT_OK;
        if (rc != CHAT_OK || strcmp(PQgetvalue(res, i, 8), "t") != 0)
            return rc == CHAT_OK ? chat_msg_splice_seq_prev(frames, PQgetvalue(res, i, 4),
                                                            (size_t)PQgetlength(res, i, 4),
                                                            api_db_ll(res, i, 0), prev)
                                 : rc;
        /* an edit of a deleted message: without its text */
        chat_buf_reset(tmp);
        rc = chat_msg_splice_seq_prev(tmp, PQgetvalue(res, i, 4), (size_t)PQgetlength(res, i, 4),
                                      api_db_ll(res, i, 0), prev);
        return rc == CHAT_OK ? chat_msg_to_deleted(frames, chat_buf_data(tmp), tmp->len) : rc;
    }
    m.deleted = strcmp(PQgetvalue(res, i, 8), "t") == 0;
    m.edited_at = PQgetisnull(res, i, 9) ? 0 : api_db_ll(res, i, 9);
    if (chat_parse_ll(PQgetvalue(res, i, 1), 0, INT64_MAX, &id) != CHAT_OK)
        return CHAT_EPROTO;
    m.id = (uint64_t)id;
    m.user = PQgetvalue(res, i, 2);
    m.nick = PQgetvalue(res, i, 3);
    m.text = PQgetvalue(res, i, 4);
    m.client_msg_id = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5);
    m.ts = api_db_ll(res, i, 6);
    chat_buf_reset(tmp);
    rc = chat_enc_message(tmp, &m);
    if (rc == CHAT_OK && frames->len > 0)
        rc = chat_buf_append(frames, ",", 1);
    if (rc == CHAT_OK)
        rc = chat_msg_splice_seq_prev(frames, chat_buf_data(tmp), tmp->len, api_db_ll(res, i, 0),
                                      prev);
    return rc;
}

/* The page from PostgreSQL. Returns CHAT_OK, CHAT_EIO (database error) or an encoding error. */
static int from_db(
    struct api_db *db, const char *room, const struct page *pg, struct chat_buf *frames, bool *more)
{
    char cur[24], lim[16];
    const char *p[3] = {room, cur, lim};
    struct chat_buf tmp;
    PGresult *res;
    int rc = CHAT_OK, rows, base = 0, n;

    snprintf(cur, sizeof(cur), "%" PRId64, pg->kind == PAGE_NEWEST ? INT64_MAX : pg->cursor);
    snprintf(lim, sizeof(lim), "%d", pg->limit + 1);
    res = api_db_qn(db, pg->kind == PAGE_AFTER ? API_Q_history_after : API_Q_history_before, 3, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading history"))
        return CHAT_EIO;
    chat_buf_init(&tmp, 0, 0);
    rows = PQntuples(res);
    if (pg->kind == PAGE_AFTER) {
        /* an optional anchor row (seq <= cursor), then ascending rows */
        if (rows > 0 && api_db_ll(res, 0, 0) <= pg->cursor)
            base = 1;
        n = rows - base;
        *more = n > pg->limit;
        if (*more)
            n = pg->limit;
        for (int i = base; i < base + n && rc == CHAT_OK; i++)
            rc = add_row(frames, &tmp, res, i, room, i > 0 ? api_db_ll(res, i - 1, 0) : SEQ_NONE);
    } else {
        /* descending; the row past the page gives its oldest one's prev (and more) */
        *more = rows > pg->limit;
        n = *more ? pg->limit : rows;
        for (int i = n - 1; i >= 0 && rc == CHAT_OK; i--)
            rc = add_row(frames, &tmp, res, i, room,
                         i + 1 < rows ? api_db_ll(res, i + 1, 0) : SEQ_NONE);
    }
    chat_buf_fini(&tmp);
    PQclear(res);
    return rc;
}

void r_history_list(struct api_req *r)
{
    struct api_conns *cx = api_conns_get(r->api);
    const char *room = api_param_get(&r->params, "room")->str;
    struct chat_buf frames;
    struct page pg;
    bool more = false, db_failed = false;
    const char *source = "cache";
    int rc;

    if (!chat_room_valid(room)) {
        api_reply_code(r, CHAT_ERR_bad_room);
        return;
    }
    if (!parse_page(r, &pg))
        return;
    switch (read_access(r, &cx->db, room, &pg)) {
    case ACCESS_ERROR:
        api_reply_unavailable(r);
        return;
    case ACCESS_DENIED: /* a restricted room is invisible to those who may not read it */
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    case ACCESS_OK:
        break;
    }
    chat_buf_init(&frames, 0, 0);
    if (!from_cache(r, &cx->redis, &cx->db, room, &pg, &frames, &more, &db_failed)) {
        source = "db";
        more = false;
        rc = db_failed ? CHAT_EIO : from_db(&cx->db, room, &pg, &frames, &more);
        if (rc == CHAT_EIO) {
            chat_buf_fini(&frames);
            api_reply_unavailable(r);
            return;
        }
        if (rc != CHAT_OK) {
            chat_buf_fini(&frames);
            api_reply_code(r, CHAT_ERR_internal);
            return;
        }
    }
    chat_buf_reset(&r->resp);
    api_reply_json(r, 200, chat_enc_history(&r->resp, &frames, more, source));
    chat_buf_fini(&frames);
}

/* {"seq":N} and the room: checked before the handler (which decodes the body again). */
void r_history_read_check(struct api_req *r)
{
    enum chat_errcode code = CHAT_ERR_internal;
    int64_t seq;

    if (!chat_room_valid(api_param_get(&r->params, "room")->str))
        api_reply_code(r, CHAT_ERR_bad_room);
    else if (chat_read_body_decode(chat_buf_data(&r->body), r->body.len, &seq, &code) != CHAT_OK)
        api_reply_code(r, code);
}

void r_history_read(struct api_req *r)
{
    struct api_conns *cx = api_conns_get(r->api);
    const char *room = api_param_get(&r->params, "room")->str;
    enum chat_errcode code = CHAT_ERR_internal;
    char seqs[24];
    const char *p[3] = {room, r_viewer(r), seqs};
    int64_t seq = 0;
    PGresult *res;

    if (chat_read_body_decode(chat_buf_data(&r->body), r->body.len, &seq, &code) != CHAT_OK) {
        api_reply_code(r, code);
        return;
    }
    if (!p[1]) { /* not an account: member of nothing */
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    snprintf(seqs, sizeof(seqs), "%" PRId64, seq);
    res = api_db_qn(&cx->db, API_Q_read_marker_set, 3, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "setting a read marker")) {
        api_reply_unavailable(r);
        return;
    }
    if (PQntuples(res) != 1) { /* not an active member: the room is invisible */
        PQclear(res);
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    chat_buf_reset(&r->resp);
    api_reply_json(r, 200,
                   chat_enc_read_state(&r->resp, api_db_ll(res, 0, 0), api_db_ll(res, 0, 1)));
    PQclear(res);
}
