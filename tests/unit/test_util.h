/* tests/unit/test_util.h - small helpers shared by the libchat unit tests (header-only, static).
 * Ownership: read_file() returns a new NUL-terminated buffer (free with chat_free); the capture
 * helpers redirect one fd to an anonymous temp file and hand back what was written (new string).
 * Thread-safety: none; tests are single-threaded. */
#ifndef CHAT_TEST_UTIL_H
#define CHAT_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "chat/mem.h"

/* Reads a whole file; returns NULL when it cannot be opened. *len (optional) gets the size. */
static inline char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p;
    size_t n = 0, cap = 4096, got;

    if (!f)
        return NULL;
    p = chat_xmalloc(cap + 1);
    while ((got = fread(p + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            p = chat_xrealloc(p, cap + 1);
        }
    }
    (void)fclose(f);
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

/* Captures everything written to fd (1 or 2) between capture_begin() and capture_end(). */
struct capture {
    int fd;    /* the captured descriptor */
    int saved; /* dup of the original */
    FILE *tmp; /* owns: where fd points meanwhile */
};

static inline void capture_begin(struct capture *c, int fd)
{
    (void)fflush(stdout);
    (void)fflush(stderr);
    c->fd = fd;
    c->saved = dup(fd);
    c->tmp = tmpfile();
    if (c->saved < 0 || !c->tmp || dup2(fileno(c->tmp), fd) < 0)
        abort();
}

/* Restores the descriptor; returns the captured text (new string, free with chat_free). */
static inline char *capture_end(struct capture *c)
{
    off_t n;
    char *s;

    (void)fflush(stdout);
    (void)fflush(stderr);
    if (dup2(c->saved, c->fd) < 0)
        abort();
    (void)close(c->saved);
    n = lseek(fileno(c->tmp), 0, SEEK_END); /* written through the fd, not the FILE */
    s = chat_xmalloc(n > 0 ? (size_t)n + 1 : 1);
    rewind(c->tmp);
    n = n > 0 ? (off_t)fread(s, 1, (size_t)n, c->tmp) : 0;
    s[n] = '\0';
    (void)fclose(c->tmp);
    return s;
}

/* Number of (non-overlapping) occurrences of needle in hay. */
static inline int count_substr(const char *hay, const char *needle)
{
    int n = 0;
    size_t k = strlen(needle);

    for (const char *p = strstr(hay, needle); p; p = strstr(p + k, needle))
        n++;
    return n;
}

#endif
