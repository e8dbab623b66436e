#include "chat/msg.h"

#include <string.h>

#include "chat/err.h"
#include "chat/mem.h"

struct chat_msg *chat_msg_new(const void *p, size_t len)
{
    struct chat_msg *m = chat_xmalloc(sizeof(*m) + LWS_PRE + len + 1);
    m->refs = 1;
    m->len = len;
    memcpy(m->buf + LWS_PRE, p, len);
    m->buf[LWS_PRE + len] = '\0';
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
