/* api_router.c - matching a request against the route table (see api_router.h). */
#include "api_router.h"

#include <stdio.h>
#include <string.h>

#include "chat/proto.h"

enum ptype { PT_LITERAL, PT_INT, PT_ROOM, PT_NAME, PT_SEG, PT_BAD };

static const struct {
    unsigned bit;
    const char *name;
} methods[] = {
    {API_GET, "GET"},     {API_POST, "POST"},     {API_PUT, "PUT"},
    {API_PATCH, "PATCH"}, {API_DELETE, "DELETE"},
};

unsigned api_method_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(s, methods[i].name) == 0)
            return methods[i].bit;
    return 0;
}

const char *api_method_name(unsigned m)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (m == methods[i].bit)
            return methods[i].name;
    return "?";
}

/* The segment starting at s (after a '/'): its length up to the next '/' or the end. */
static size_t seg_len(const char *s)
{
    return strcspn(s, "/");
}

/* A pattern segment "{name:type}" (len bytes at p): its type, the name copied into name. */
static enum ptype param_type(const char *p, size_t len, char *name, size_t cap)
{
    const char *colon;
    size_t nlen, tlen;

    if (len < 5 || p[0] != '{' || p[len - 1] != '}')
        return PT_LITERAL;
    colon = memchr(p, ':', len);
    if (!colon)
        return PT_BAD;
    nlen = (size_t)(colon - p - 1);
    tlen = len - nlen - 3;
    if (nlen == 0 || nlen >= cap)
        return PT_BAD;
    memcpy(name, p + 1, nlen);
    name[nlen] = '\0';
    if (tlen == 3 && memcmp(colon + 1, "int", 3) == 0)
        return PT_INT;
    if (tlen == 4 && memcmp(colon + 1, "room", 4) == 0)
        return PT_ROOM;
    if (tlen == 4 && memcmp(colon + 1, "name", 4) == 0)
        return PT_NAME;
    if (tlen == 3 && memcmp(colon + 1, "seg", 3) == 0)
        return PT_SEG;
    return PT_BAD;
}

static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Does the path segment (len bytes at s) fit type t? Fills v (and v->num for int). */
static bool param_ok(enum ptype t, const char *s, size_t len, struct api_param *v)
{
    if (len == 0 || len > API_PARAM_MAX)
        return false;
    memcpy(v->str, s, len);
    v->str[len] = '\0';
    v->num = 0;
    switch (t) {
    case PT_INT:
        if (len > 18 || (len > 1 && s[0] == '0'))
            return false;
        for (size_t i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            v->num = v->num * 10 + (s[i] - '0');
        }
        return true;
    case PT_ROOM:
        return chat_room_valid(v->str);
    case PT_NAME:
        for (size_t i = 0; i < len; i++)
            if (!name_char(s[i]))
                return false;
        return true;
    case PT_SEG: /* any bytes but '/' (the segment split), '%' and controls */
        for (size_t i = 0; i < len; i++)
            if (s[i] == '%' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return false;
        return true;
    default:
        return false;
    }
}

/* Matches path against pattern; params filled on a match (and garbage otherwise). */
static bool pattern_match(const char *pattern, const char *path, struct api_params *params)
{
    const char *p = pattern, *s = path;

    params->n = 0;
    if (*p != '/' || *s != '/')
        return false;
    while (*p == '/' && *s == '/') {
        size_t pl, sl;
        enum ptype t;
        char name[sizeof(params->v[0].name)];

        p++;
        s++;
        pl = seg_len(p);
        sl = seg_len(s);
        t = param_type(p, pl, name, sizeof(name));
        if (t == PT_LITERAL) {
            if (pl != sl || memcmp(p, s, pl) != 0)
                return false;
        } else {
            struct api_param *v;
            if (t == PT_BAD || params->n == API_MAX_PARAMS)
                return false;
            v = &params->v[params->n];
            if (!param_ok(t, s, sl, v))
                return false;
            memcpy(v->name, name, sizeof(name));
            params->n++;
        }
        p += pl;
        s += sl;
    }
    return *p == '\0' && *s == '\0';
}

enum api_match api_route_match(const struct api_route *table,
                               size_t n,
                               unsigned method,
                               const char *path,
                               const struct api_route **out,
                               struct api_params *params,
                               char *allow,
                               size_t allow_cap)
{
    unsigned other = 0;
    struct api_params scratch;

    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        if (table[i].method == method) {
            if (pattern_match(table[i].pattern, path, params)) {
                *out = &table[i];
                return API_MATCH_OK;
            }
        } else if (!(other & table[i].method) && pattern_match(table[i].pattern, path, &scratch)) {
            other |= table[i].method;
        }
    }
    if (!other)
        return API_MATCH_NOT_FOUND;
    if (allow_cap)
        allow[0] = '\0';
    for (size_t i = 0, len = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (!(other & methods[i].bit))
            continue;
        int w = snprintf(allow + len, allow_cap - len, "%s%s", len ? ", " : "", methods[i].name);
        if (w < 0 || (size_t)w >= allow_cap - len)
            break;
        len += (size_t)w;
    }
    return API_MATCH_BAD_METHOD;
}

/* The pattern with every parameter replaced by '*', for comparing shapes. */
static bool pattern_shape(const char *pattern, char *out, size_t cap)
{
    const char *p = pattern;
    size_t o = 0;

    if (*p != '/')
        return false;
    while (*p == '/') {
        char name[sizeof(((struct api_param *)0)->name)];
        size_t pl;
        enum ptype t;

        p++;
        pl = seg_len(p);
        t = param_type(p, pl, name, sizeof(name));
        if (t == PT_BAD || pl == 0)
            return false;
        if (o + pl + 2 >= cap)
            return false;
        out[o++] = '/';
        if (t == PT_LITERAL) {
            if (memchr(p, '{', pl) || memchr(p, '}', pl))
                return false;
            memcpy(out + o, p, pl);
            o += pl;
        } else {
            out[o++] = '*';
        }
        p += pl;
    }
    out[o] = '\0';
    return *p == '\0';
}

const char *api_routes_check(const struct api_route *table, size_t n)
{
    char a[256], b[256];

    for (size_t i = 0; i < n; i++) {
        if (!table[i].fn || !table[i].name || strcmp(api_method_name(table[i].method), "?") == 0)
            return "a route lacks a handler, a name or a single method";
        if (!pattern_shape(table[i].pattern, a, sizeof(a)))
            return "a route pattern does not parse";
        if (!!(table[i].flags & (API_RATE_IP | API_RATE_USER)) != !!table[i].rate ||
            ((table[i].flags & (API_RATE_USER | API_ACCOUNT)) &&
             !(table[i].flags & (API_BEARER | API_ADMIN))))
            return "a rate-limited route lacks its kind, or limits a user without a bearer";
        for (size_t k = 0; k < i; k++) {
            if (strcmp(table[i].name, table[k].name) == 0)
                return "two routes share a name";
            if (table[i].method == table[k].method &&
                pattern_shape(table[k].pattern, b, sizeof(b)) && strcmp(a, b) == 0)
                return "two routes with one method share a pattern shape";
        }
    }
    return NULL;
}

const struct api_param *api_param_get(const struct api_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->v[i].name, name) == 0)
            return &p->v[i];
    return NULL;
}
