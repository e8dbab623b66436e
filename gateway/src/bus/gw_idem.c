/* gw_idem.c - idempotent sends by client_msg_id: the claim before the produce and the
 * settling after the delivery report (gw_idem.h, chat/idem.h). Event-loop thread only. */
#include "bus/gw_idem.h"

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "chat/idem.h"
#include "chat/mem.h"

#include "bus/gw_send.h"
#include "cache/gw_redis.h"
#include "core/gw.h"

/* Reads the claim script's answer: {1} or {0, VALUE, PTTL}. */
static enum gw_idem_outcome
judge(const struct gw_pending *p, const redisReply *r, struct chat_idem_ack *ack, int *retry_ms)
{
    const redisReply *v, *ttl;

    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return GW_IDEM_SKIPPED;
    if (r->element[0]->integer == 1)
        return GW_IDEM_CLAIMED;
    if (r->elements != 3)
        return GW_IDEM_SKIPPED;
    v = r->element[1];
    ttl = r->element[2];
    if (v->type != REDIS_REPLY_STRING || ttl->type != REDIS_REPLY_INTEGER)
        return GW_IDEM_SKIPPED;
    switch (chat_idem_judge(p->room, v->str, v->len, ttl->integer, ack, retry_ms)) {
    case CHAT_IDEM_DONE:
        return GW_IDEM_DONE;
    case CHAT_IDEM_OTHER_ROOM:
        return GW_IDEM_OTHER_ROOM;
    case CHAT_IDEM_IN_FLIGHT:
        return GW_IDEM_IN_FLIGHT;
    default:
        return GW_IDEM_SKIPPED;
    }
}

static void on_claim(struct gw *gw, struct redisReply *r, void *priv)
{
    struct gw_pending *p = priv;
    struct chat_idem_ack ack;
    int retry_ms = -1;
    enum gw_idem_outcome o;

    memset(&ack, 0, sizeof(ack));
    o = judge(p, r, &ack, &retry_ms);
    if (o != GW_IDEM_CLAIMED) { /* not ours: the delivery report must not touch it */
        chat_free(p->idem_key);
        p->idem_key = NULL;
    }
    if (o == GW_IDEM_SKIPPED)
        chat_metric_add(&gw->m.idem_skipped, 1);
    gw_send_claimed(gw, p, o, &ack, retry_ms);
}

int gw_idem_claim(struct gw *gw, struct gw_pending *p, const char *user)
{
    char key[CHAT_IDEM_KEY_MAX], px[24];
    const char *argv[5];
    size_t lens[5];

    if (chat_idem_key(key, sizeof(key), user, p->client_msg_id) != CHAT_OK) {
        chat_metric_add(&gw->m.idem_skipped, 1); /* cannot happen: both parts are capped */
        return CHAT_ESTATE;
    }
    snprintf(px, sizeof(px), "%lld", (long long)chat_idem_pending_px(gw->cfg->produce_timeout_ms));
    argv[0] = "EVAL";
    argv[1] = chat_idem_claim_lua;
    argv[2] = "1";
    argv[3] = key;
    argv[4] = px;
    for (int i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    if (gw_redis_call(gw, on_claim, p, 5, argv, lens) != CHAT_OK) {
        chat_metric_add(&gw->m.idem_skipped, 1);
        return CHAT_ESTATE;
    }
    p->idem_key = chat_xstrdup(key);
    return CHAT_OK;
}

void gw_idem_settle(struct gw *gw, struct gw_pending *p)
{
    struct chat_buf v;
    char ttl[16];
    const char *argv[5];
    size_t lens[5];

    if (!p->idem_key)
        return;
    if (p->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (!p->maybe_stored) /* not stored: a retry may produce it */
            gw_idem_forget(gw, p);
        return; /* maybe stored: "p" expires after the produce timeout + 5 s */
    }
    chat_buf_init(&v, 0, 0);
    if (chat_enc_idem_ack(&v, p->room, p->id, p->seq, p->ts) == CHAT_OK) {
        snprintf(ttl, sizeof(ttl), "%d", gw->cfg->idem_ttl_s);
        argv[0] = "SET";
        argv[1] = p->idem_key;
        argv[2] = chat_buf_data(&v);
        argv[3] = "EX";
        argv[4] = ttl;
        for (int i = 0; i < 5; i++)
            lens[i] = i == 2 ? v.len : strlen(argv[i]);
        (void)gw_redis_call(gw, NULL, NULL, 5, argv, lens); /* Redis out: "p" expires */
    }
    chat_buf_fini(&v);
}

void gw_idem_forget(struct gw *gw, struct gw_pending *p)
{
    const char *argv[2] = {"DEL", p->idem_key};
    size_t lens[2];

    if (!p->idem_key)
        return;
    lens[0] = 3;
    lens[1] = strlen(p->idem_key);
    (void)gw_redis_call(gw, NULL, NULL, 2, argv, lens); /* Redis out: "p" expires */
    chat_free(p->idem_key);
    p->idem_key = NULL;
}
