/* chat/msg.h - an immutable, refcounted, ready-to-write frame for fan-out.
 *
 * A message is encoded once per node and shared by every recipient's send queue; each queue holds
 * one reference and the last chat_msg_unref() frees it. The payload starts LWS_PRE bytes into
 * buf, and the server-to-client WebSocket frame header (unmasked, so the same bytes for every
 * recipient) is written once, right before it: chat_msg_wire() is the complete frame.
 * Thread-safety: the refcount is a plain int: a message is only touched by the thread that owns
 * the connections (the gateway's event loop). */
#ifndef CHAT_MSG_H
#define CHAT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "chat/buf.h"

struct chat_msg {
    int refs;            /* owners; freed when it drops to 0 */
    int64_t t_us;        /* a consumed message: when it was consumed (chat_mono_us), else 0 */
    uint64_t latest;     /* a latest-value frame (a presence count): a newer one of the same key
                          * replaces it in a send queue (conflation); 0: an ordinary frame */
    size_t len;          /* payload bytes at buf + LWS_PRE */
    unsigned char hlen;  /* frame header bytes at buf + LWS_PRE - hlen (2, 4 or 10) */
    unsigned char buf[]; /* LWS_PRE headroom (frame header at its end), payload, NUL */
};

/* Returns a new message (refs 1) holding a copy of p[0..len); free with chat_msg_unref(). */
struct chat_msg *chat_msg_new(const void *p, size_t len);
/* Returns a new message (refs 1) with a copy of b's data (one copy per node, not per recipient);
 * b must have LWS_PRE headroom and is reset (storage kept for reuse). */
struct chat_msg *chat_msg_from_buf(struct chat_buf *b);
static inline unsigned char *chat_msg_payload(struct chat_msg *m)
{
    return m->buf + LWS_PRE;
}
/* The whole WebSocket text frame (header + payload), ready for a raw write. */
static inline unsigned char *chat_msg_wire(struct chat_msg *m)
{
    return m->buf + LWS_PRE - m->hlen;
}
static inline size_t chat_msg_wire_len(const struct chat_msg *m)
{
    return m->hlen + m->len;
}
static inline struct chat_msg *chat_msg_ref(struct chat_msg *m)
{
    m->refs++;
    return m;
}
void chat_msg_unref(struct chat_msg *m); /* NULL-safe */

#endif
