/* chat/mem.h - allocation wrappers. The chat_x* functions abort with a log line on OOM, so
 * callers never check for NULL; real protection against memory growth comes from limits.
 * Raw malloc/free/strdup are banned outside libchat/src/mem.c (CI greps for it).
 * Thread-safety: all functions are thread-safe. */
#ifndef CHAT_MEM_H
#define CHAT_MEM_H

#include <stddef.h>

/* Returns new memory (never NULL); free with chat_free(). */
void *chat_xmalloc(size_t n);
void *chat_xcalloc(size_t nmemb, size_t size);
void *chat_xrealloc(void *p, size_t n);
char *chat_xstrdup(const char *s);
char *chat_xstrndup(const char *s, size_t n);
/* Returns a new string formatted like printf; free with chat_free(). */
char *chat_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Frees p (NULL-safe); also used for memory libraries hand back (json_dumps, PQ strings excluded).
 */
void chat_free(void *p);

#define CHAT_FREE(p)  \
    do {              \
        chat_free(p); \
        (p) = NULL;   \
    } while (0)

#endif
