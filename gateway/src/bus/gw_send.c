/* gw_send.c - the path of a message into Kafka: identity and rate checks, the claim of a
 * client_msg_id (bus/gw_idem.c), the spam rule and slow mode (bus/gw_spam.c), id and timestamp,
 * encoding once, a non-blocking produce keyed by room, and the ack (or error) when the delivery
 * report arrives; a connection's sends go to Kafka in the order of its frames. Event-loop thread
 * only. */
#include "bus/gw_send.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "chat/mem.h"
#include "chat/spam.h"
#include "chat/time.h"

#include "bus/gw_idem.h"
#include "bus/gw_spam.h"
#include "cache/gw_redis.h"
#include "core/gw.h"
#include "room/gw_acl.h"
#include "room/gw_room.h"
#include "ws/gw_conn.h"

/* The text and sender kept while a claim is in Redis, no longer needed. */
static void pending_drop_frame(struct gw_pending *p)
{
    chat_free(p->text);
    chat_free(p->who);
    p->text = NULL;
    p->who = NULL;
}

static void pending_free(struct gw_pending *p)
{
    if (!p)
        return;
    pending_drop_frame(p);
    chat_free(p->client_msg_id);
    chat_free(p->ref);
    chat_free(p->room);
    chat_free(p->idem_key);
    chat_free(p);
}

/* ---- the connection's send queue ----
 * The server handles a connection's frames in order (proto/README.md section 1), so its sends
 * reach Kafka in frame order too: a send that waits for Redis (the claim of its client_msg_id,
 * the spam and slow-mode script) holds every later send of its connection, which waits its turn
 * with its frame kept, and starts its own checks (and Redis calls, so the script sees the
 * connection's texts in order) only once every earlier one was produced or refused. A send that
 * comes while none waits and needs no Redis is produced at once (the common case). c->sendq is
 * the tail of a circular list through qnext, oldest first; the head is the one being checked.
 * Sends waiting their turn count against max_pending (the list is bounded by it). */

static struct gw_pending *sendq_head(const struct gw_conn *c)
{
    return c->sendq ? c->sendq->qnext : NULL;
}

static void sendq_push(struct gw_conn *c, struct gw_pending *p)
{
    p->qnext = c->sendq ? c->sendq->qnext : p;
    if (c->sendq)
        c->sendq->qnext = p;
    c->sendq = p;
}

/* p (the queue's head: sends leave in order) was produced or refused. */
static void sendq_leave(struct gw_conn *c, struct gw_pending *p)
{
    if (!p->qnext) /* not in the queue: produced or refused already */
        return;
    CHAT_ASSERT(sendq_head(c) == p);
    if (p == c->sendq)
        c->sendq = NULL;
    else
        c->sendq->qnext = p->qnext;
    p->qnext = NULL;
}

static void pending_unlink(struct gw_pending *p)
{
    struct gw_conn *c = p->c;

    if (!c)
        return;
    sendq_leave(c, p);
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
    struct gw_pending *p;

    /* the queue goes first: its head waits for Redis (its answer frees it), the others have
     * not started and nothing else holds them */
    while ((p = sendq_head(c)) != NULL) {
        sendq_leave(c, p);
        if (!p->started) {
            pending_unlink(p);
            pending_free(p);
        }
    }
    while (c->pending)
        pending_unlink(c->pending);
}

/* A new pending send of c (linked: it counts against c's max_pending from now on). */
static struct gw_pending *pending_new(struct gw_conn *c, const char *client_msg_id, const char *ref)
{
    struct gw_pending *p = chat_xcalloc(1, sizeof(*p));

    p->seq = -1;
    p->t_us = chat_mono_us();
    p->client_msg_id = client_msg_id ? chat_xstrdup(client_msg_id) : NULL;
    p->ref = ref ? chat_xstrdup(ref) : NULL;
    p->c = c;
    p->next = c->pending;
    if (c->pending)
        c->pending->prev = p;
    c->pending = p;
    c->npending++;
    return p;
}

/* The node can take a send from c now: the lease, draining, the partition count and (cap) c's
 * pending cap (the user's send rate was checked by the dispatcher, CHAT_FF_RATE_SEND). On
 * failure, *code says why and *retry_ms (or -1) when to try again. */
static int
send_check(struct gw *gw, const struct gw_conn *c, bool cap, enum chat_errcode *code, int *retry_ms)
{
    *retry_ms = -1;
    if (gw->partitions_changed || gw->shut) { /* a room's seq would break (bus/gw_kafka.c) */
        *code = CHAT_ERR_unavailable;
        return CHAT_ESTATE;
    }
    if (!gw_redis_lease_valid(gw) || gw->draining) { /* no id without a live node number */
        *code = CHAT_ERR_overloaded;
        *retry_ms = 1000;
        return CHAT_EAGAIN;
    }
    if (cap && c->npending >= gw->cfg->max_pending) {
        *code = CHAT_ERR_overloaded;
        *retry_ms = 100;
        return CHAT_EAGAIN;
    }
    return CHAT_OK;
}

/* Gives p an id and produces its message (p is the delivery report's opaque from then on). On
 * failure, *code and *retry_ms say why. */
static int produce(struct gw *gw,
                   struct gw_pending *p,
                   const struct chat_claims *who,
                   const char *room,
                   const char *text,
                   enum chat_errcode *code,
                   int *retry_ms)
{
    struct chat_event_msg ev;
    rd_kafka_resp_err_t kerr;
    int64_t now;
    int rc;

    memset(&ev, 0, sizeof(ev));
    ev.room = room;
    ev.user = who->sub;
    ev.nick = who->name[0] ? who->name : who->sub;
    ev.text = text; /* NUL-terminated by the decoder (jansson strings are) */
    ev.client_msg_id = p->client_msg_id;
    ev.id = chat_idgen_next(&gw->idgen, chat_now_ms());
    ev.ts = chat_id_time_ms(ev.id);
    ev.seq = -1;
    chat_buf_reset(&gw->scratch);
    if (chat_enc_message(&gw->scratch, &ev) != CHAT_OK) {
        *code = CHAT_ERR_internal;
        return CHAT_EINVAL;
    }
    p->id = ev.id;
    p->ts = ev.ts;
    now = chat_mono_us();
    chat_hist_record_1w(&gw->m.send_check_us, (uint64_t)(now - p->t_us));
    p->t_us = now;
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
        return rc;
    }
    chat_metric_add(&gw->m.sends, 1);
    return CHAT_OK;
}

/* A draining node says goodbye once the last answer of c is queued. */
static void drain_check(struct gw *gw, struct gw_conn *c)
{
    if (gw->draining && c->npending == 0)
        gw_conn_close(c, CHAT_CLOSE_going_away, "going_away");
}

/* Answers p's send with an error and drops p (unlinked from its open connection c). */
static void refuse(struct gw *gw,
                   struct gw_conn *c,
                   struct gw_pending *p,
                   enum chat_errcode code,
                   const char *msg,
                   int retry_ms)
{
    pending_unlink(p);
    chat_metric_add(&gw->m.send_errors, 1);
    gw_conn_error(c, code, msg, p->client_msg_id, p->ref, retry_ms);
    pending_free(p);
    drain_check(gw, c);
}

/* Produces p's kept frame, or refuses it (and gives its claimed key back). The lease or the
 * partitions may have changed while Redis answered (not the cap: the send counts against it
 * already). */
static void finish(struct gw *gw, struct gw_conn *c, struct gw_pending *p)
{
    enum chat_errcode code;
    int retry_ms;

    if (send_check(gw, c, false, &code, &retry_ms) == CHAT_OK &&
        produce(gw, p, p->who, p->room, p->text, &code, &retry_ms) == CHAT_OK) {
        sendq_leave(c, p);
        pending_drop_frame(p);
        return;
    }
    gw_idem_forget(gw, p);
    refuse(gw, c, p, code, NULL, retry_ms);
}

/* The spam rule and slow mode (bus/gw_spam.h), then the produce: the script's answer is
 * waited for only when it can refuse this send (slow mode, or a text this connection repeats);
 * otherwise the script runs beside the produce. Returns true when p waits for the script
 * (gw_send_checked() follows), false when it was produced or refused. */
static bool check_and_produce(struct gw *gw, struct gw_conn *c, struct gw_pending *p)
{
    bool repeat = gw_spam_repeat(gw, c, p->text, p->text_len);

    if (!repeat && gw_acl_slow_ms(gw, p->room) <= 0) {
        gw_spam_beside(gw, p->who->sub, p->room, p->text, p->text_len);
        finish(gw, c, p);
        return false;
    }
    if (gw_spam_check(gw, p, p->who->sub) == CHAT_OK)
        return true;
    finish(gw, c, p);
    return false;
}

/* The checks of p's frame (gw_conn.c's dispatcher) once more, as p starts: a send that waited
 * behind another may find that the connection lost its identity or left the room meanwhile, or
 * that a sanction came (a moderator's mute, or the spam rule's ban the send ahead of it
 * tripped). True when p may go on; false after refusing it. */
static bool still_allowed(struct gw *gw, struct gw_conn *c, struct gw_pending *p)
{
    enum chat_errcode code = CHAT_ERR__COUNT;
    const char *reason = NULL;
    int64_t until = -1;

    if (!c->authed || strcmp(c->claims.sub, p->who->sub) != 0)
        code = CHAT_ERR_auth_required;
    else if (!gw_room_joined(c, p->room))
        code = CHAT_ERR_not_joined;
    else
        code = gw_acl_send_check(gw, p->who->sub, p->room, &until, &reason);
    if (code == CHAT_ERR__COUNT)
        return true;
    pending_unlink(p);
    chat_metric_add(&gw->m.send_errors, 1);
    if (code != CHAT_ERR_auth_required && code != CHAT_ERR_not_joined) {
        /* a sanction: with until and reason, as the dispatcher answers it */
        chat_metric_add(&gw->m.sanctioned, 1);
        gw_conn_error_until(c, code, NULL, p->client_msg_id, p->ref, until, reason);
    } else {
        gw_conn_error(c, code, NULL, p->client_msg_id, p->ref, -1);
    }
    pending_free(p);
    drain_check(gw, c);
    return false;
}

/* Starts the checks of the sends at the head of c's queue, one after the other, until one waits
 * for Redis (its answer calls this again) or none is left. The sender is the one of the frame
 * (p->who); a send is refused if the connection is no longer it, or no longer in the room. */
static void sendq_run(struct gw *gw, struct gw_conn *c)
{
    struct gw_pending *p;

    while ((p = sendq_head(c)) != NULL && !p->started) {
        if (!still_allowed(gw, c, p))
            continue;
        p->started = true;
        if (p->client_msg_id && gw_idem_claim(gw, p, p->who->sub) == CHAT_OK)
            return; /* gw_send_claimed() follows */
        if (check_and_produce(gw, c, p))
            return; /* gw_send_checked() follows */
    }
}

void gw_send_frame(struct gw_conn *c, const struct chat_cframe *f)
{
    struct gw *gw = c->gw;
    struct gw_pending *p;
    enum chat_errcode code = CHAT_ERR__COUNT; /* none */
    int retry_ms;

    /* identity, expiry, membership and the send rate: checked by the frame dispatcher
     * (CHAT_FF_*), so a retry of a remembered send draws from the send bucket too */
    if (send_check(gw, c, true, &code, &retry_ms) == CHAT_OK &&
        memchr(f->text, '\0', f->text_len)) {
        code = CHAT_ERR_bad_text;
        retry_ms = -1;
    }
    if (code != CHAT_ERR__COUNT) {
        chat_metric_add(&gw->m.send_errors, 1);
        gw_conn_error(c, code, NULL, f->client_msg_id, f->ref, retry_ms);
        return;
    }
    p = pending_new(c, f->client_msg_id, f->ref);
    p->room = chat_xstrdup(f->room);
    p->text = chat_xstrndup(f->text, f->text_len); /* kept while Redis answers */
    p->text_len = f->text_len;
    p->who = chat_xcalloc(1, sizeof(*p->who));
    gw_conn_claims(c, p->who);
    sendq_push(c, p); /* behind the sends still waiting, if any: they go first */
    sendq_run(gw, c);
}

void gw_send_checked(struct gw *gw, struct gw_pending *p, int verdict, int64_t ms, int offence)
{
    struct gw_conn *c = p->c;
    int64_t until = chat_now_ms() + ms;
    char msg[96];

    if (verdict == CHAT_SPAM_TRIPPED) /* the user's, whether or not this connection still is */
        gw_spam_ban(gw, p->who->sub, until, offence);
    if (!c) { /* closed meanwhile: nobody to answer */
        gw_idem_forget(gw, p);
        pending_free(p);
        return;
    }
    switch (verdict) {
    case CHAT_SPAM_OK:
        finish(gw, c, p);
        break;
    case CHAT_SPAM_SLOW:
        gw_idem_forget(gw, p);
        chat_metric_add(&gw->m.slow_refused, 1);
        refuse(gw, c, p, CHAT_ERR_slow_mode, NULL, ms < 1 ? 1 : (int)ms);
        break;
    default: /* CHAT_SPAM_TRIPPED, CHAT_SPAM_BANNED */
        gw_idem_forget(gw, p);
        snprintf(msg, sizeof(msg), "%d of your last %d messages were the same", gw->cfg->spam.same,
                 gw->cfg->spam.last);
        pending_unlink(p);
        chat_metric_add(&gw->m.send_errors, 1);
        chat_metric_add(&gw->m.sanctioned, 1);
        gw_conn_error_until(c, CHAT_ERR_chat_banned, msg, p->client_msg_id, p->ref, until,
                            CHAT_SPAM_REASON);
        pending_free(p);
        drain_check(gw, c);
        break;
    }
    sendq_run(gw, c); /* p is out of the way: the connection's next sends */
}

void gw_send_claimed(struct gw *gw,
                     struct gw_pending *p,
                     enum gw_idem_outcome o,
                     const struct chat_idem_ack *ack,
                     int retry_ms)
{
    struct gw_conn *c = p->c;

    if (!c) { /* closed meanwhile: nobody to answer; a retry on another connection may send it */
        gw_idem_forget(gw, p);
        pending_free(p);
        return;
    }
    switch (o) {
    case GW_IDEM_CLAIMED:
    case GW_IDEM_SKIPPED:
        if (check_and_produce(gw, c, p))
            return; /* still the queue's head: gw_send_checked() follows */
        break;
    case GW_IDEM_DONE: /* the first send's ack, this send's ids: nothing is produced again */
        pending_unlink(p);
        chat_metric_add(&gw->m.idem_hits, 1);
        chat_buf_reset(&gw->scratch);
        if (chat_enc_ack(&gw->scratch, p->client_msg_id, ack->id, ack->seq, ack->ts, p->ref) ==
            CHAT_OK)
            (void)gw_conn_push_scratch(c);
        pending_free(p);
        drain_check(gw, c);
        break;
    case GW_IDEM_OTHER_ROOM:
        refuse(gw, c, p, CHAT_ERR_bad_field, "client_msg_id already used in another room", -1);
        break;
    case GW_IDEM_IN_FLIGHT:
    default:
        refuse(gw, c, p, CHAT_ERR_in_flight, NULL, retry_ms);
        break;
    }
    sendq_run(gw, c); /* p is out of the way: the connection's next sends */
}

/* Called from the producer's delivery report (event loop). Consumes p. */
void gw_send_delivered(struct gw *gw, struct gw_pending *p)
{
    struct gw_conn *c = p->c;

    chat_hist_record_1w(&gw->m.send_ack_us, (uint64_t)(chat_mono_us() - p->t_us));
    gw_idem_settle(gw, p); /* also when the sender is gone: a retry gets this ack */
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
        drain_check(gw, c); /* its last ack is queued: now say goodbye */
    }
    pending_free(p);
}
