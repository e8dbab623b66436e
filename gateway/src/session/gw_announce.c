/* gw_announce.c - site-wide announcements (gw_announce.h). */
#include "session/gw_announce.h"

#include "chat/log.h"
#include "chat/proto.h"

#include "core/gw.h"
#include "ws/gw_conn.h"

void gw_announce_all(struct gw *gw, const char *id, const char *text, int64_t ts)
{
    struct chat_msg *m;
    struct gw_conn *c, *next;
    long n = 0;

    chat_buf_reset(&gw->scratch);
    if (!id || !text || chat_enc_announcement(&gw->scratch, id, text, ts) != CHAT_OK)
        return;
    m = chat_msg_from_buf(&gw->scratch);
    if (!m)
        return;
    /* a push over the queue limit closes that connection: read next first */
    for (c = gw->conns; c; c = next) {
        next = c->next;
        if (!c->closing && gw_conn_push(c, m) == CHAT_OK)
            n++;
    }
    chat_msg_unref(m);
    chat_log(CHAT_LOG_INFO, "announcement %s given to %ld connections", id, n);
}
