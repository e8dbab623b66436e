/* chat/buf.h - growable byte buffer with reserved headroom (LWS_PRE for WebSocket frames) and a
 * hard cap. Thread-safety: none; a buffer is owned by one thread at a time. */
#ifndef CHAT_BUF_H
#define CHAT_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "chat/err.h"

struct chat_buf {
    unsigned char *base; /* owns; NULL until first append */
    size_t head;         /* headroom reserved before data (LWS_PRE for ws frames) */
    size_t len;          /* data bytes after headroom */
    size_t cap;          /* allocated bytes including headroom */
    size_t max;          /* data beyond this fails with CHAT_ETOOBIG (0: no cap) */
};

void chat_buf_init(struct chat_buf *b, size_t headroom, size_t max); /* cannot fail */
/* Returns CHAT_OK or CHAT_ETOOBIG (b->max exceeded); b unchanged on error. */
CHAT_NODISCARD int chat_buf_append(struct chat_buf *b, const void *p, size_t n);
CHAT_NODISCARD int chat_buf_appends(struct chat_buf *b, const char *s);
CHAT_NODISCARD int chat_buf_appendf(struct chat_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* v in decimal into out (at least CHAT_I64_DIGITS bytes; no NUL); returns the length. */
#define CHAT_I64_DIGITS 20
size_t chat_fmt_i64(char *out, int64_t v);
size_t chat_fmt_u64(char *out, uint64_t v);
/* Appends v in decimal. Returns CHAT_OK or CHAT_ETOOBIG. */
CHAT_NODISCARD int chat_buf_append_i64(struct chat_buf *b, int64_t v);
/* Ensures room for n more data bytes; returns CHAT_OK or CHAT_ETOOBIG. */
CHAT_NODISCARD int chat_buf_reserve(struct chat_buf *b, size_t n);
/* Pointer to the data (after headroom); valid until the next append. NUL-terminated. */
static inline char *chat_buf_data(const struct chat_buf *b)
{
    static char empty[1];
    return b->base ? (char *)b->base + b->head : empty;
}
void chat_buf_reset(struct chat_buf *b); /* len = 0, keeps storage */
/* Hands the storage to the caller (free with chat_free); b becomes empty. */
unsigned char *chat_buf_steal(struct chat_buf *b);
void chat_buf_fini(struct chat_buf *b); /* frees storage; safe on zeroed or finished buffers */

#endif
