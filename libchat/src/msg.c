#include "chat/msg.h"

#include <stdint.h>
#include <string.h>

#include "chat/err.h"
#include "chat/mem.h"

/* Writes the RFC 6455 header of an unmasked, final text frame of len bytes ending at end. */
static unsigned char frame_header(unsigned char *end, size_t len)
{
    unsigned char *h;

    if (len < 126) {
        h = end - 2;
        h[1] = (unsigned char)len;
    } else if (len <= 0xFFFF) {
        h = end - 4;
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
    } else {
        h = end - 10;
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    h[0] = 0x81; /* FIN + text */
    return (unsigned char)(end - h);
}

_Static_assert(LWS_PRE >= 10, "LWS_PRE must leave room for a 10-byte frame header");

struct chat_msg *chat_msg_new(const void *p, size_t len)
{
    struct chat_msg *m = chat_xmalloc(sizeof(*m) + LWS_PRE + len + 1);
    m->refs = 1;
    m->t_us = 0;
    m->latest = 0;
    m->len = len;
    memcpy(m->buf + LWS_PRE, p, len);
    m->buf[LWS_PRE + len] = '\0';
    m->hlen = frame_header(m->buf + LWS_PRE, len); /* LWS_PRE >= 10 */
    return m;
}

struct chat_msg *chat_msg_from_buf(struct chat_buf *b)
{
    struct chat_msg *m;
    size_t len = b->len;

    CHAT_ASSERT(b->head == LWS_PRE);
    /* one copy into a single allocation keeps the header and payload together */
    m = chat_msg_new(chat_buf_data(b), len);
    chat_buf_reset(b);
    return m;
}

void chat_msg_unref(struct chat_msg *m)
{
    if (m && --m->refs == 0)
        chat_free(m);
}
