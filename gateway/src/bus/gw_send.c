/* gw_send.c - the path of a message into Kafka: identity and rate checks, id and timestamp,
 * encoding once, a non-blocking produce keyed by room, and the ack (or error) when the delivery
 * report arrives. Event-loop thread only. */
#include "bus/gw_send.h"

#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "cache/gw_redis.h"
#include "core/gw.h"
#include "ws/gw_conn.h"

static void pending_free(struct gw_pending *p)
{
    if (!p)
        return;
    chat_free(p->client_msg_id);
    chat_free(p->ref);
    chat_free(p);
}

static void pending_unlink(struct gw_pending *p)
{
    struct gw_conn *c = p->c;

    if (!c)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        c->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    c->npending--;
    p->c = NULL;
    p->prev = p->next = NULL;
}

void gw_send_detach_all(struct gw_conn *c)
{
    while (c->pending)
        pending_unlink(c->pending);
}

/* Checks the lease and c's pending cap (the user's send rate was checked by the dispatcher,
 * CHAT_FF_RATE_SEND), then produces. On CHAT_OK, *out is
 * the pending send (owned by the producer until its delivery report). On failure, *code says why
 * and *retry_ms (or -1) when to try again. */
static int send_produce(struct gw *gw,
                        struct gw_conn *c,
                        const struct chat_claims *who,
                        const char *room,
                        const char *text,
                        size_t text_len,
                        const char *client_msg_id,
                        const char *ref,
                        struct gw_pending **out,
                        enum chat_errcode *code,
                        int *retry_ms)
{
    struct chat_event_msg ev;
    struct gw_pending *p;
    rd_kafka_resp_err_t kerr;
    int rc;

    *out = NULL;
    *retry_ms = -1;
    if (gw->partitions_changed) { /* a room's seq would break (bus/gw_kafka.c): until restart */
        *code = CHAT_ERR_unavailable;
        return CHAT_ESTATE;
    }
    if (!gw_redis_lease_valid(gw) || gw->draining) { /* no id without a live node number */
        *code = CHAT_ERR_overloaded;
        *retry_ms = 1000;
        return CHAT_EAGAIN;
    }
    if (c->npending >= gw->cfg->max_pending) {
        *code = CHAT_ERR_overloaded;
        *retry_ms = 100;
        return CHAT_EAGAIN;
    }
    memset(&ev, 0, sizeof(ev));
    ev.room = room;
    ev.user = who->sub;
    ev.nick = who->name[0] ? who->name : who->sub;
    if (memchr(text, '\0', text_len)) {
        *code = CHAT_ERR_bad_text;
        return CHAT_EPROTO;
    }
    ev.text = text; /* NUL-terminated by the decoder (jansson strings are) */
    ev.client_msg_id = client_msg_id;
    ev.id = chat_idgen_next(&gw->idgen, chat_now_ms());
    ev.ts = chat_id_time_ms(ev.id);
    ev.seq = -1;
    chat_buf_reset(&gw->scratch);
    if (chat_enc_message(&gw->scratch, &ev) != CHAT_OK) {
        *code = CHAT_ERR_internal;
        return CHAT_EINVAL;
    }
    p = chat_xcalloc(1, sizeof(*p));
    p->id = ev.id;
    p->ts = ev.ts;
    p->seq = -1;
    p->client_msg_id = client_msg_id ? chat_xstrdup(client_msg_id) : NULL;
    p->ref = ref ? chat_xstrdup(ref) : NULL;
    kerr = rd_kafka_producev(gw->prod, RD_KAFKA_V_TOPIC(gw->cfg->kafka.topic_messages),
                             RD_KAFKA_V_KEY(room, strlen(room)),
                             RD_KAFKA_V_VALUE(chat_buf_data(&gw->scratch), gw->scratch.len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_HEADER("type", "message", 7), RD_KAFKA_V_TIMESTAMP(ev.ts),
                             RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL ? CHAT_EAGAIN : CHAT_EIO;
        if (rc == CHAT_EAGAIN)
            chat_metric_add(&gw->m.produce_queue_full, 1);
        else
            chat_log(CHAT_LOG_WARN, "produce failed: %s", rd_kafka_err2str(kerr));
        *code = rc == CHAT_EAGAIN ? CHAT_ERR_overloaded : CHAT_ERR_unavailable;
        *retry_ms = rc == CHAT_EAGAIN ? 100 : -1;
        pending_free(p);
        return rc;
    }
    p->c = c;
    p->next = c->pending;
    if (c->pending)
        c->pending->prev = p;
    c->pending = p;
    c->npending++;
    chat_metric_add(&gw->m.sends, 1);
    *out = p;
    return CHAT_OK;
}

void gw_send_frame(struct gw_conn *c, const struct chat_cframe *f)
{
    struct gw *gw = c->gw;
    struct gw_pending *p;
    enum chat_errcode code;
    int retry_ms;

    /* identity, expiry and membership: checked by the frame dispatcher (CHAT_FF_*) */
    if (send_produce(gw, c, &c->claims, f->room, f->text, f->text_len, f->client_msg_id, f->ref, &p,
                     &code, &retry_ms) != CHAT_OK) {
        chat_metric_add(&gw->m.send_errors, 1);
        gw_conn_error(c, code, NULL, f->client_msg_id, f->ref, retry_ms);
    }
}

/* Called from the producer's delivery report (event loop). Consumes p. */
void gw_send_delivered(struct gw *gw, struct gw_pending *p)
{
    struct gw_conn *c = p->c;

    chat_hist_record(&gw->m.send_ack_us, /* ids may run ahead of the clock after a lease retake */
                     chat_now_ms() > p->ts ? (uint64_t)(chat_now_ms() - p->ts) * 1000 : 0);
    if (c) {
        pending_unlink(p);
        if (p->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            chat_buf_reset(&gw->scratch);
            if (chat_enc_ack(&gw->scratch, p->client_msg_id, p->id, p->seq, p->ts, p->ref) ==
                CHAT_OK)
                (void)gw_conn_push_scratch(c);
            chat_metric_add(&gw->m.acks, 1);
        } else {
            chat_metric_add(&gw->m.send_errors, 1);
            gw_conn_error(c, p->maybe_stored ? CHAT_ERR_unconfirmed : CHAT_ERR_unavailable, NULL,
                          p->client_msg_id, p->ref, -1);
        }
        if (gw->draining && c->npending == 0) /* its last ack is queued: now say goodbye */
            gw_conn_close(c, CHAT_CLOSE_going_away, "going_away");
    }
    pending_free(p);
}
