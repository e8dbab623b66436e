/* jflat.c - the scanner of flat JSON objects (chat/jflat.h). One pass over a private copy of
 * the input; strings are unescaped in place (the output never runs ahead of the input) and
 * NUL-terminated where their closing quote was. */
#include "chat/jflat.h"

#include <stdbool.h>
#include <string.h>

#include "chat/err.h"
#include "chat/mem.h"

#define INT_DIGITS_MAX 18 /* fits int64_t with any sign; longer: jansson decides */

struct scan {
    char *p, *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* A string at s->p (its opening quote): unescaped in place. */
static bool scan_str(struct scan *s, const char **out, size_t *len)
{
    char *w, *r = s->p + 1;

    w = r;
    *out = r;
    for (;;) {
        unsigned char c;

        if (r >= s->end)
            return false;
        c = (unsigned char)*r;
        if (c == '"')
            break;
        if (c < 0x20)
            return false; /* a raw control byte: not JSON */
        if (c == '\\') {
            if (r + 1 >= s->end)
                return false;
            switch (r[1]) {
            case '"':
            case '\\':
            case '/':
                c = (unsigned char)r[1];
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            default: /* \u (surrogates, NULs) and invalid escapes: jansson's */
                return false;
            }
            r += 2;
        } else {
            r++;
        }
        *w++ = (char)c;
    }
    *len = (size_t)(w - *out);
    *w = '\0'; /* w <= r: at most the closing quote is overwritten */
    s->p = r + 1;
    return true;
}

static bool scan_int(struct scan *s, int64_t *out)
{
    bool neg = false;
    int64_t v = 0;
    int digits = 0;

    if (*s->p == '-') {
        neg = true;
        s->p++;
    }
    if (s->p >= s->end || *s->p < '0' || *s->p > '9')
        return false;
    if (*s->p == '0' && s->p + 1 < s->end && s->p[1] >= '0' && s->p[1] <= '9')
        return false; /* a leading zero: not JSON */
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        if (++digits > INT_DIGITS_MAX)
            return false;
        v = v * 10 + (*s->p - '0');
        s->p++;
    }
    if (s->p < s->end && (*s->p == '.' || *s->p == 'e' || *s->p == 'E'))
        return false; /* a real number */
    *out = neg ? -v : v;
    return true;
}

static bool scan_word(struct scan *s, const char *w)
{
    size_t n = strlen(w);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool scan_value(struct scan *s, struct chat_jflat_member *m)
{
    if (s->p >= s->end)
        return false;
    switch (*s->p) {
    case '"':
        m->kind = CHAT_JFLAT_STR;
        return scan_str(s, &m->s, &m->len);
    case 't':
        m->kind = CHAT_JFLAT_TRUE;
        return scan_word(s, "true");
    case 'f':
        m->kind = CHAT_JFLAT_FALSE;
        return scan_word(s, "false");
    case 'n':
        m->kind = CHAT_JFLAT_NULL;
        return scan_word(s, "null");
    default:
        m->kind = CHAT_JFLAT_INT;
        return scan_int(s, &m->i);
    }
}

static bool duplicate(const struct chat_jflat *j, const struct chat_jflat_member *m)
{
    for (int i = 0; i < j->n; i++)
        if (j->m[i].key_len == m->key_len && memcmp(j->m[i].key, m->key, m->key_len) == 0)
            return true;
    return false;
}

static bool scan_object(struct scan *s, struct chat_jflat *j)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != '{')
        return false;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        struct chat_jflat_member *m;

        if (j->n == CHAT_JFLAT_MAX || s->p >= s->end || *s->p != '"')
            return false;
        m = &j->m[j->n];
        memset(m, 0, sizeof(*m));
        if (!scan_str(s, &m->key, &m->key_len) || duplicate(j, m))
            return false;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        skip_ws(s);
        if (!scan_value(s, m))
            return false;
        j->n++;
        skip_ws(s);
        if (s->p >= s->end)
            return false;
        if (*s->p == '}') {
            s->p++;
            return true;
        }
        if (*s->p != ',')
            return false;
        s->p++;
        skip_ws(s);
    }
}

int chat_jflat_scan(const char *text, size_t len, struct chat_jflat *out)
{
    struct scan s;

    out->n = 0;
    out->buf = chat_xmalloc(len + 1);
    memcpy(out->buf, text, len);
    out->buf[len] = '\0';
    s.p = out->buf;
    s.end = out->buf + len;
    if (scan_object(&s, out)) {
        skip_ws(&s);
        if (s.p == s.end)
            return CHAT_OK;
    }
    chat_jflat_fini(out);
    return CHAT_EPROTO;
}

const struct chat_jflat_member *chat_jflat_get(const struct chat_jflat *j, const char *key)
{
    size_t n = strlen(key);

    for (int i = 0; i < j->n; i++)
        if (j->m[i].key_len == n && memcmp(j->m[i].key, key, n) == 0)
            return &j->m[i];
    return NULL;
}

void chat_jflat_fini(struct chat_jflat *j)
{
    if (!j)
        return;
    chat_free(j->buf);
    j->buf = NULL;
    j->n = 0;
}
