/* mem.c - the only file allowed to call the raw allocator. */
#include "chat/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/log.h"

static _Noreturn void oom(size_t n)
{
    chat_log_raw(CHAT_LOG_ERROR, "out of memory allocating %zu bytes, aborting", n);
    abort();
}

void *chat_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *chat_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *chat_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *chat_xstrdup(const char *s)
{
    return chat_xstrndup(s, strlen(s));
}

char *chat_xstrndup(const char *s, size_t n)
{
    char *p = chat_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *chat_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    p = chat_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void chat_free(void *p)
{
    free(p);
}
