/* ps_batch.c - the batch being built: rows owned by the batch, the next offset to commit per
 * Kafka partition, and the encoding of the rows as PostgreSQL array literals (text format
 * parameters of the unnest() insert). No I/O; see ps.h. */
#include <inttypes.h>
#include <string.h>

#include "chat/mem.h"

#include "ps.h"

void ps_batch_init(struct ps_batch *b)
{
    memset(b, 0, sizeof(*b));
    chat_buf_init(&b->copy, 0, 0);
}

/* The rows changed other than by an append: their COPY data is made again. */
static void uncopy(struct ps_batch *b)
{
    chat_buf_reset(&b->copy);
    b->ncopied = 0;
}

static void row_free(struct ps_row *r)
{
    CHAT_FREE(r->blk);
    CHAT_FREE(r->edit_text);
}

void ps_batch_reset(struct ps_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        row_free(&b->rows[i]);
    b->n = 0;
    b->ncommits = 0;
    b->first_ms = 0;
    uncopy(b);
}

void ps_batch_clear_rows(struct ps_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        row_free(&b->rows[i]);
    b->n = 0;
    b->first_ms = 0;
    uncopy(b);
}

void ps_batch_fini(struct ps_batch *b)
{
    ps_batch_reset(b);
    CHAT_FREE(b->rows);
    CHAT_FREE(b->commits);
    b->cap = 0;
    b->commits_cap = 0;
    chat_buf_fini(&b->copy);
}

/* Records that partition has been consumed up to offset (inclusive). */
static void note_offset(struct ps_batch *b, int32_t partition, int64_t offset, int64_t now_ms)
{
    if (b->first_ms == 0)
        b->first_ms = now_ms; /* the first record not yet written (commits may be held) */
    for (size_t i = 0; i < b->ncommits; i++) {
        if (b->commits[i].partition == partition) {
            if (offset + 1 > b->commits[i].next)
                b->commits[i].next = offset + 1;
            return;
        }
    }
    if (b->ncommits == b->commits_cap) {
        b->commits_cap = b->commits_cap ? b->commits_cap * 2 : 16;
        b->commits = chat_xrealloc(b->commits, b->commits_cap * sizeof(*b->commits));
    }
    b->commits[b->ncommits].partition = partition;
    b->commits[b->ncommits].next = offset + 1;
    b->ncommits++;
}

void ps_batch_merge_commits(struct ps_batch *dst, const struct ps_batch *src)
{
    int64_t first_ms = dst->first_ms;

    for (size_t i = 0; i < src->ncommits; i++)
        note_offset(dst, src->commits[i].partition, src->commits[i].next - 1, 1);
    dst->first_ms = first_ms; /* offsets only: no record waits for a write */
}

void ps_batch_skip(struct ps_batch *b, int32_t partition, int64_t offset, int64_t now_ms)
{
    note_offset(b, partition, offset, now_ms);
}

/* Copies s into *p (advancing it) and returns the copy. */
static const char *put_str(char **p, const char *s, size_t n)
{
    char *dst = *p;

    memcpy(dst, s, n);
    dst[n] = '\0';
    *p += n + 1;
    return dst;
}

int ps_batch_add(struct ps_batch *b,
                 int32_t partition,
                 int64_t offset,
                 const struct chat_event_msg *m,
                 const char *raw,
                 size_t raw_len,
                 int64_t now_ms)
{
    size_t lr, lu, ln, lt, lc;
    struct ps_row *r;
    int32_t day;
    char *p;

    if (m->id > (uint64_t)INT64_MAX || ps_day_of_ms(m->ts, &day) != CHAT_OK)
        return CHAT_EINVAL;
    lr = strlen(m->room);
    lu = strlen(m->user);
    ln = strlen(m->nick);
    lt = strlen(m->text);
    lc = m->client_msg_id ? strlen(m->client_msg_id) : 0;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->rows = chat_xrealloc(b->rows, b->cap * sizeof(*b->rows));
    }
    r = &b->rows[b->n];
    memset(r, 0, sizeof(*r));
    r->id = (int64_t)m->id;
    r->offset = offset;
    r->ts_ms = m->ts;
    r->partition = partition;
    r->day = day;
    r->blk = chat_xmalloc(lr + lu + ln + lt + lc + (raw ? raw_len : 0) + 6);
    p = r->blk;
    r->room = put_str(&p, m->room, lr);
    r->user = put_str(&p, m->user, lu);
    r->nick = put_str(&p, m->nick, ln);
    r->body = put_str(&p, m->text, lt);
    r->cmid = m->client_msg_id ? put_str(&p, m->client_msg_id, lc) : NULL;
    r->raw = raw ? put_str(&p, raw, raw_len) : NULL;
    r->raw_len = raw ? raw_len : 0;
    r->kind = "message";
    b->n++;
    note_offset(b, partition, offset, now_ms);
    return CHAT_OK;
}

int ps_batch_add_event(struct ps_batch *b,
                       int32_t partition,
                       int64_t offset,
                       const struct chat_stream_ev *e,
                       const char *raw,
                       size_t raw_len,
                       int64_t now_ms)
{
    bool deleted = e->type == CHAT_STREAM_DELETED, edited = e->type == CHAT_STREAM_EDITED;
    struct chat_event_msg m = {
        .room = e->room,
        .user = e->user ? e->user : "",
        .nick = e->nick ? e->nick : "",
        .id = deleted || edited ? 0 : e->id,
        .ts = e->ts,
        .seq = -1,
        .prev = -1,
    };
    char *body;
    int rc;

    /* the body is the record itself (NUL-terminated copy for the text column) */
    body = chat_xcalloc(1, raw_len + 1);
    memcpy(body, raw, raw_len);
    m.text = body;
    rc = ps_batch_add(b, partition, offset, &m, raw, raw_len, now_ms);
    chat_free(body);
    if (rc != CHAT_OK)
        return rc;
    b->rows[b->n - 1].kind = deleted ? "message_deleted" : edited ? "message_edited" : "system";
    if (deleted || edited)
        b->rows[b->n - 1].id = PS_DELETED_ROW_ID(partition, offset);
    if (deleted)
        b->rows[b->n - 1].deletes = (int64_t)e->id;
    if (edited && e->id <= (uint64_t)INT64_MAX) {
        b->rows[b->n - 1].edits = (int64_t)e->id;
        b->rows[b->n - 1].edit_text = chat_xstrdup(e->text);
    }
    return CHAT_OK;
}

static bool in_list(int32_t v, const int32_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == v)
            return true;
    return false;
}

size_t ps_batch_drop_partitions(struct ps_batch *b, const int32_t *parts, size_t nparts)
{
    size_t keep = 0, dropped = 0;

    for (size_t i = 0; i < b->n; i++) {
        if (in_list(b->rows[i].partition, parts, nparts)) {
            row_free(&b->rows[i]);
            dropped++;
        } else {
            b->rows[keep++] = b->rows[i];
        }
    }
    b->n = keep;
    if (dropped > 0)
        uncopy(b);
    keep = 0;
    for (size_t i = 0; i < b->ncommits; i++)
        if (!in_list(b->commits[i].partition, parts, nparts))
            b->commits[keep++] = b->commits[i];
    b->ncommits = keep;
    return dropped;
}

int ps_pg_array_text(struct chat_buf *out, const char *s)
{
    const char *run;
    int rc;

    if (!s)
        return chat_buf_appends(out, "NULL");
    rc = chat_buf_append(out, "\"", 1);
    run = s;
    for (const char *p = s; rc == CHAT_OK && *p; p++) {
        if (*p != '"' && *p != '\\')
            continue;
        rc = chat_buf_append(out, run, (size_t)(p - run));
        if (rc == CHAT_OK)
            rc = chat_buf_append(out, "\\", 1);
        run = p; /* the quote or backslash itself goes out with the next run */
    }
    if (rc == CHAT_OK)
        rc = chat_buf_appends(out, run);
    if (rc == CHAT_OK)
        rc = chat_buf_append(out, "\"", 1);
    return rc;
}

/* Appends row r's value of column c (an array element) to out. */
static int encode_cell(struct chat_buf *out, const struct ps_row *r, enum ps_col c)
{
    switch (c) {
    case PS_COL_ID:
        return chat_buf_appendf(out, "%" PRId64, r->id);
    case PS_COL_ROOM:
        return ps_pg_array_text(out, r->room);
    case PS_COL_PARTITION:
        return chat_buf_appendf(out, "%" PRId32, r->partition);
    case PS_COL_OFFSET:
        return chat_buf_appendf(out, "%" PRId64, r->offset);
    case PS_COL_USER:
        return ps_pg_array_text(out, r->user);
    case PS_COL_NICK:
        return ps_pg_array_text(out, r->nick);
    case PS_COL_BODY:
        return ps_pg_array_text(out, r->body);
    case PS_COL_CMID:
        return ps_pg_array_text(out, r->cmid);
    case PS_COL_TS:
        return chat_buf_appendf(out, "%" PRId64, r->ts_ms);
    case PS_COL_KIND:
        return ps_pg_array_text(out, r->kind ? r->kind : "message");
    case PS_COL_TARGET:
        return r->edits ? chat_buf_appendf(out, "%" PRId64, r->edits)
                        : chat_buf_appends(out, "NULL");
    case PS_NCOLS:
        break;
    }
    return CHAT_EINVAL;
}

int ps_batch_encode(const struct ps_batch *b, struct chat_buf cols[PS_NCOLS])
{
    int rc = CHAT_OK;

    for (int c = 0; c < PS_NCOLS && rc == CHAT_OK; c++) {
        struct chat_buf *out = &cols[c];

        chat_buf_reset(out);
        rc = chat_buf_append(out, "{", 1);
        for (size_t i = 0; i < b->n && rc == CHAT_OK; i++) {
            if (i > 0)
                rc = chat_buf_append(out, ",", 1);
            if (rc == CHAT_OK)
                rc = encode_cell(out, &b->rows[i], (enum ps_col)c);
        }
        if (rc == CHAT_OK)
            rc = chat_buf_append(out, "}", 1);
    }
    return rc;
}
