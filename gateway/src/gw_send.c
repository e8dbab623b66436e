/* gw_send.c - the path of a message into Kafka: identity and rate checks, id and timestamp,
 * encoding once, a non-blocking produce keyed by room, and the ack (or error) when the delivery
 * report arrives. Event-loop thread only. */
#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "gw.h"

void gw_pending_free(struct gw_pending *p)
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

void gw_pending_detach_all(struct gw_conn *c)
{
    while (c->pending)
        pending_unlink(c->pending);
}

/* Token bucket; returns 0 when allowed, else the ms until one token is available. */
static int rate_take(struct gw_conn *c)
{
    const struct gw_config *cfg = c->gw->cfg;
    int64_t now = chat_mono_us();
    double t = c->tokens + (double)(now - c->tokens_at_us) * cfg->rate_per_s / 1e6;

    if (t > cfg->rate_burst)
        t = cfg->rate_burst;
    c->tokens_at_us = now;
    if (t >= 1.0) {
        c->tokens = t - 1.0;
        return 0;
    }
    c->tokens = t;
    return (int)((1.0 - t) * 1000.0 / cfg->rate_per_s) + 1;
}

int gw_send_produce(struct gw *gw, struct gw_conn *c, const struct chat_claims *who,
                    const char *room, const char *text, size_t text_len,
                    const char *client_msg_id, const char *ref, struct gw_pending **out,
                    enum chat_errcode *code)
{
    struct chat_event_msg ev;
    struct gw_pending *p;
    rd_kafka_resp_err_t kerr;
    int rc;

    *out = NULL;
    if (gw->node_num < 0 || gw->draining) {
        *code = CHAT_ERR_overloaded;
        return CHAT_EAGAIN;
    }
    if (c && c->npending >= gw->cfg->max_pending) {
        *code = CHAT_ERR_overloaded;
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
    kerr = rd_kafka_producev(
        gw->prod, RD_KAFKA_V_TOPIC(gw->cfg->kafka.topic_messages),
        RD_KAFKA_V_KEY(room, strlen(room)),
        RD_KAFKA_V_VALUE(chat_buf_data(&gw->scratch), gw->scratch.len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADER("type", "message", 7),
        RD_KAFKA_V_TIMESTAMP(ev.ts), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL ? CHAT_EAGAIN : CHAT_EIO;
        if (rc == CHAT_EAGAIN)
            chat_metric_add(&gw->m.produce_queue_full, 1);
        else
            chat_log(CHAT_LOG_WARN, "produce failed: %s", rd_kafka_err2str(kerr));
        *code = rc == CHAT_EAGAIN ? CHAT_ERR_overloaded : CHAT_ERR_unavailable;
        gw_pending_free(p);
        return rc;
    }
    if (c) {
        p->c = c;
        p->next = c->pending;
        if (c->pending)
            c->pending->prev = p;
        c->pending = p;
        c->npending++;
    }
    chat_metric_add(&gw->m.sends, 1);
    *out = p;
    return CHAT_OK;
}

void gw_send_frame(struct gw_conn *c, const struct chat_cframe *f)
{
    struct gw *gw = c->gw;
    struct gw_pending *p;
    enum chat_errcode code;
    int wait_ms;

    if (!c->authed) {
        gw_conn_error(c, CHAT_ERR_auth_required, NULL, f->client_msg_id, f->ref, -1);
        return;
    }
    if ((int64_t)time(NULL) >= c->claims.exp) {
        gw_conn_clear_identity(c);
        gw_conn_error(c, CHAT_ERR_token_expired, "the token expired; send auth with a fresh one",
                      f->client_msg_id, f->ref, -1);
        return;
    }
    if (!gw_conn_in_room(c, f->room)) {
        gw_conn_error(c, CHAT_ERR_not_joined, NULL, f->client_msg_id, f->ref, -1);
        return;
    }
    wait_ms = rate_take(c);
    if (wait_ms > 0) {
        chat_metric_add(&gw->m.rate_limited, 1);
        gw_conn_error(c, CHAT_ERR_rate_limited, NULL, f->client_msg_id, f->ref, wait_ms);
        return;
    }
    if (gw_send_produce(gw, c, &c->claims, f->room, f->text, f->text_len, f->client_msg_id,
                        f->ref, &p, &code) != CHAT_OK) {
        chat_metric_add(&gw->m.send_errors, 1);
        gw_conn_error(c, code, NULL, f->client_msg_id, f->ref, code == CHAT_ERR_overloaded ? 100 : -1);
    }
}

/* Called from the producer's delivery report (event loop). Consumes p. */
void gw_send_delivered(struct gw *gw, struct gw_pending *p)
{
    struct gw_conn *c = p->c;

    chat_hist_record(&gw->m.send_ack_us, (uint64_t)(chat_now_ms() - p->ts) * 1000);
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
            gw_conn_error(c, CHAT_ERR_unavailable, NULL, p->client_msg_id, p->ref, -1);
        }
    }
    if (p->http) {
        /* the REST handler owns p from here: it answers and frees it */
        gw_http_delivered(gw, p);
        return;
    }
    gw_pending_free(p);
}
