/* gw_reads.c - read markers: the read frame produced to chat.events (gw_reads.h). The
 * persister applies the record (room_members.last_read_seq); a failed delivery is only logged
 * (bus/gw_kafka.c): a read marker is advisory and the next one supersedes it. Event-loop
 * thread only. */
#include "session/gw_reads.h"

#include <string.h>

#include "chat/log.h"
#include "chat/time.h"

#include "core/gw.h"
#include "ws/gw_conn.h"

void gw_reads_frame(struct gw_conn *c, const struct chat_cframe *f)
{
    struct gw *gw = c->gw;
    rd_kafka_resp_err_t kerr;
    int64_t ts = chat_now_ms();

    chat_buf_reset(&gw->scratch);
    if (chat_enc_ev_read(&gw->scratch, c->claims.sub, f->room, f->seq, ts) != CHAT_OK) {
        gw_conn_error(c, CHAT_ERR_internal, NULL, NULL, f->ref, -1);
        return;
    }
    /* opaque NULL: the delivery report of a chat.events record is only logged on failure */
    kerr = rd_kafka_producev(gw->prod, RD_KAFKA_V_TOPIC(gw->cfg->kafka.topic_events),
                             RD_KAFKA_V_KEY(c->claims.sub, strlen(c->claims.sub)),
                             RD_KAFKA_V_VALUE(chat_buf_data(&gw->scratch), gw->scratch.len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_HEADER("type", "read", 4), RD_KAFKA_V_TIMESTAMP(ts),
                             RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            chat_metric_add(&gw->m.produce_queue_full, 1);
        gw_conn_error(c, CHAT_ERR_unavailable, NULL, NULL, f->ref, -1);
        return;
    }
    chat_metric_add(&gw->m.reads, 1);
}
