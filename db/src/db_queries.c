/* db_queries.c - the query file parser (chat/db_queries.h). */
#include "chat/db_queries.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NAME_TAG "-- name:"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* The line starting at p (end: one past its last byte, the '\n' excluded). */
static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

/* True when the line is blank or a "--" comment. */
static bool blank_or_comment(const char *p, const char *e)
{
    while (p < e && is_space(*p))
        p++;
    return p == e || (e - p >= 2 && p[0] == '-' && p[1] == '-');
}

static bool is_name_line(const char *p, const char *e)
{
    size_t n = strlen(NAME_TAG);
    return (size_t)(e - p) >= n && memcmp(p, NAME_TAG, n) == 0;
}

/* A comment that looks like a name line but is not one ("--name:", " -- name :", ...): it
 * would silently join two blocks. */
static bool is_near_name_line(const char *p, const char *e)
{
    while (p < e && is_space(*p))
        p++;
    if (e - p < 2 || p[0] != '-' || p[1] != '-')
        return false;
    for (p += 2; p < e && (is_space(*p) || *p == '-'); p++)
        ;
    if ((size_t)(e - p) < 4 || memcmp(p, "name", 4) != 0)
        return false;
    for (p += 4; p < e && is_space(*p); p++)
        ;
    return p < e && *p == ':';
}

/* Reads the name of a "-- name:" line into q; false when it is not a valid name. */
static bool read_name(const char *p, const char *e, struct chat_db_query_src *q)
{
    p += strlen(NAME_TAG);
    while (p < e && is_space(*p))
        p++;
    while (e > p && is_space(e[-1]))
        e--;
    if (p == e || (size_t)(e - p) > CHAT_DB_QUERY_NAME_MAX || *p < 'a' || *p > 'z')
        return false;
    for (const char *c = p; c < e; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    q->name = p;
    q->name_len = (size_t)(e - p);
    return true;
}

static bool same_name(const struct chat_db_query_src *a, const struct chat_db_query_src *b)
{
    return a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0;
}

/* Sets q's statement to [p, e) without its leading comment lines, surrounding blank space and
 * one trailing ';'. */
static void set_sql(struct chat_db_query_src *q, const char *p, const char *e)
{
    for (;;) { /* leading blank and comment lines: the block's comment */
        const char *le = line_end(p, e);
        if (p == e || !blank_or_comment(p, le))
            break;
        p = le < e ? le + 1 : e;
    }
    while (e > p && is_space(e[-1]))
        e--;
    if (e > p && e[-1] == ';')
        e--;
    while (e > p && is_space(e[-1]))
        e--;
    q->sql = p;
    q->sql_len = (size_t)(e - p);
}

static int fail(char *err, size_t errcap, int line, const char *why, int rc)
{
    if (errcap > 0)
        (void)snprintf(err, errcap, "line %d: %s", line, why);
    return rc;
}

/* Closes the open block q (its statement ends at e); checks it. */
static int close_block(struct chat_db_query_src *out,
                       size_t *n,
                       const char *body,
                       const char *e,
                       char *err,
                       size_t errcap)
{
    struct chat_db_query_src *q = &out[*n];

    set_sql(q, body, e);
    if (q->sql_len == 0)
        return fail(err, errcap, q->line, "empty statement", CHAT_EINVAL);
    for (size_t i = 0; i < *n; i++)
        if (same_name(&out[i], q))
            return fail(err, errcap, q->line, "duplicate query name", CHAT_EINVAL);
    (*n)++;
    return CHAT_OK;
}

int chat_db_queries_parse(const char *text,
                          size_t len,
                          struct chat_db_query_src *out,
                          size_t cap,
                          size_t *n,
                          char *err,
                          size_t errcap)
{
    const char *p = text, *end = text + len, *body = NULL;
    int line = 0, rc;

    if (errcap > 0)
        err[0] = '\0';
    while (p < end) {
        const char *e = line_end(p, end);

        line++;
        if (is_name_line(p, e)) {
            if (body) {
                rc = close_block(out, n, body, p, err, errcap);
                if (rc != CHAT_OK)
                    return rc;
            }
            if (*n >= cap)
                return fail(err, errcap, line, "too many queries", CHAT_ETOOBIG);
            memset(&out[*n], 0, sizeof(out[*n]));
            out[*n].line = line;
            if (!read_name(p, e, &out[*n]))
                return fail(err, errcap, line, "bad query name (want [a-z][a-z0-9_]*, <= 63)",
                            CHAT_EINVAL);
            body = e < end ? e + 1 : end;
        } else if (is_near_name_line(p, e)) {
            return fail(err, errcap, line, "malformed '-- name:' line", CHAT_EINVAL);
        } else if (!body && !blank_or_comment(p, e)) {
            return fail(err, errcap, line, "SQL before the first '-- name:' line", CHAT_EINVAL);
        }
        p = e < end ? e + 1 : end;
    }
    return body ? close_block(out, n, body, end, err, errcap) : CHAT_OK;
}

int chat_db_query_nparams(const char *sql, size_t len)
{
    int max = 0;

    for (size_t i = 0; i < len; i++) {
        char c = sql[i];

        if (c == '\'' || c == '"') { /* to the closing quote ('' inside is two quotes) */
            for (i++; i < len && sql[i] != c; i++)
                ;
        } else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
            while (i < len && sql[i] != '\n')
                i++;
        } else if (c == '$' && i + 1 < len && sql[i + 1] >= '1' && sql[i + 1] <= '9') {
            int v = 0;
            for (i++; i < len && sql[i] >= '0' && sql[i] <= '9' && v < 100000; i++)
                v = v * 10 + (sql[i] - '0');
            i--;
            if (v > max)
                max = v;
        }
    }
    return max;
}
