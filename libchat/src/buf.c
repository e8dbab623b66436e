#include "chat/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "chat/mem.h"

void chat_buf_init(struct chat_buf *b, size_t headroom, size_t max)
{
    b->base = NULL;
    b->head = headroom;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int chat_buf_reserve(struct chat_buf *b, size_t n)
{
    size_t need;

    if (b->max && (n > b->max || b->len > b->max - n))
        return CHAT_ETOOBIG;
    /* also for an uncapped buffer: the sums below must not wrap around */
    if (n > SIZE_MAX / 2 - b->head - b->len)
        return CHAT_ETOOBIG;
    need = b->head + b->len + n + 1; /* +1 keeps a NUL terminator */
    if (need <= b->cap)
        return CHAT_OK;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap *= 2;
    b->base = chat_xrealloc(b->base, ncap);
    b->cap = ncap;
    return CHAT_OK;
}

int chat_buf_append(struct chat_buf *b, const void *p, size_t n)
{
    int rc = chat_buf_reserve(b, n);
    if (rc != CHAT_OK)
        return rc;
    if (n)
        memcpy(b->base + b->head + b->len, p, n);
    b->len += n;
    b->base[b->head + b->len] = '\0';
    return CHAT_OK;
}

size_t chat_fmt_u64(char *out, uint64_t v)
{
    char tmp[CHAT_I64_DIGITS];
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        out[len++] = tmp[--n];
    return len;
}

size_t chat_fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return chat_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + chat_fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

int chat_buf_append_i64(struct chat_buf *b, int64_t v)
{
    char num[CHAT_I64_DIGITS];

    return chat_buf_append(b, num, chat_fmt_i64(num, v));
}

int chat_buf_appends(struct chat_buf *b, const char *s)
{
    return chat_buf_append(b, s, strlen(s));
}

int chat_buf_appendf(struct chat_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return CHAT_EINVAL;
    if ((size_t)n < sizeof(small))
        return chat_buf_append(b, small, (size_t)n);
    rc = chat_buf_reserve(b, (size_t)n);
    if (rc != CHAT_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->base + b->head + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CHAT_OK;
}

void chat_buf_reset(struct chat_buf *b)
{
    b->len = 0;
    if (b->base)
        b->base[b->head] = '\0';
}

unsigned char *chat_buf_steal(struct chat_buf *b)
{
    unsigned char *p = b->base;
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void chat_buf_fini(struct chat_buf *b)
{
    CHAT_FREE(b->base);
    b->len = 0;
    b->cap = 0;
}
