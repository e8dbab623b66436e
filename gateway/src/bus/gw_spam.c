/* gw_spam.c - the spam rule and slow mode on the gateway (gw_spam.h, chat/spam.h). Event-loop
 * thread only. */
#include "bus/gw_spam.h"

#include <string.h>

#include <hiredis/hiredis.h>

#include "chat/log.h"
#include "chat/spam.h"
#include "chat/time.h"

#include "bus/gw_send.h"
#include "cache/gw_redis.h"
#include "core/gw.h"
#include "room/gw_acl.h"

static void on_check(struct gw *gw, struct redisReply *r, void *priv)
{
    struct gw_pending *p = priv;
    long long v[3] = {0, 0, 0};
    size_t n = 0;
    int64_t ms = 0;
    int offence = 0, verdict = -1;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements <= 3) {
        for (n = 0; n < r->elements && r->element[n]->type == REDIS_REPLY_INTEGER; n++)
            v[n] = r->element[n]->integer;
        if (n == r->elements)
            verdict = chat_spam_judge(v, n, &ms, &offence);
    }
    if (verdict < 0) {
        chat_metric_add(&gw->m.spam_skipped, 1);
        verdict = CHAT_SPAM_OK;
    }
    gw_send_checked(gw, p, verdict, ms, offence);
}

int gw_spam_check(struct gw *gw, struct gw_pending *p, const char *user)
{
    const struct chat_spam_cfg *cfg = &gw->cfg->spam;
    int64_t slow_ms = gw_acl_slow_ms(gw, p->room);
    char keys[4][CHAT_SPAM_KEY_MAX], args[7][24], hash[CHAT_SPAM_HASH_LEN + 1];
    const char *argv[14];
    size_t lens[14];

    if (cfg->same <= 0 && slow_ms <= 0)
        return CHAT_ESTATE; /* nothing to check: not counted as skipped */
    if (chat_spam_keys(keys, user, p->room) != CHAT_OK) {
        chat_metric_add(&gw->m.spam_skipped, 1); /* cannot happen: user and room are capped */
        return CHAT_ESTATE;
    }
    chat_spam_hash(p->text, p->text_len, hash);
    chat_spam_args(args, hash, cfg, slow_ms);
    argv[0] = "EVAL";
    argv[1] = chat_spam_lua;
    argv[2] = "4";
    for (int i = 0; i < 4; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < 7; i++)
        argv[7 + i] = args[i];
    for (int i = 0; i < 14; i++)
        lens[i] = strlen(argv[i]);
    if (gw_redis_call(gw, on_check, p, 14, argv, lens) != CHAT_OK) {
        chat_metric_add(&gw->m.spam_skipped, 1);
        return CHAT_ESTATE;
    }
    return CHAT_OK;
}

void gw_spam_ban(struct gw *gw, const char *user, int64_t until_ms, int offence)
{
    rd_kafka_resp_err_t kerr;
    int64_t ts = chat_now_ms();

    chat_metric_add(&gw->m.spam_bans, 1);
    gw_acl_sanction_put(gw, user, "*", "chat_ban", until_ms, CHAT_SPAM_REASON);
    chat_buf_reset(&gw->scratch);
    if (chat_enc_spam_ban(&gw->scratch, user, until_ms, offence, ts) != CHAT_OK)
        return;
    /* opaque NULL: the delivery report of a chat.events record is only logged on failure; the
     * Redis ban key (chat/spam.h) refuses the user's sends on every node meanwhile anyway */
    kerr = rd_kafka_producev(
        gw->prod, RD_KAFKA_V_TOPIC(gw->cfg->kafka.topic_events), RD_KAFKA_V_KEY(user, strlen(user)),
        RD_KAFKA_V_VALUE(chat_buf_data(&gw->scratch), gw->scratch.len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADER("type", "sanction", 8),
        RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            chat_metric_add(&gw->m.produce_queue_full, 1);
        chat_log(CHAT_LOG_WARN, "producing a spam-rule chat ban failed: %s",
                 rd_kafka_err2str(kerr));
    }
}
