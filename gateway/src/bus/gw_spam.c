/* gw_spam.c - the spam rule and slow mode on the gateway (gw_spam.h, chat/spam.h). Event-loop
 * thread only. */
#include "bus/gw_spam.h"

#include <string.h>

#include <hiredis/hiredis.h>

#include "chat/log.h"
#include "chat/mem.h"
#include "chat/spam.h"
#include "chat/time.h"

#include "bus/gw_send.h"
#include "cache/gw_redis.h"
#include "core/gw.h"
#include "room/gw_acl.h"
#include "ws/gw_conn.h"

/* The script's answer: a CHAT_SPAM_* verdict with *ms and *offence, or -1 when there is none
 * (Redis out, an error, a reply of another shape: counted as skipped). */
static int verdict_of(struct gw *gw, const struct redisReply *r, int64_t *ms, int *offence)
{
    long long v[3] = {0, 0, 0};
    size_t n = 0;
    int verdict = -1;

    *ms = 0;
    *offence = 0;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements <= 3) {
        for (n = 0; n < r->elements && r->element[n]->type == REDIS_REPLY_INTEGER; n++)
            v[n] = r->element[n]->integer;
        if (n == r->elements)
            verdict = chat_spam_judge(v, n, ms, offence);
    }
    if (verdict < 0)
        chat_metric_add(&gw->m.spam_skipped, 1);
    return verdict;
}

static void on_check(struct gw *gw, struct redisReply *r, void *priv)
{
    int64_t ms;
    int offence, verdict = verdict_of(gw, r, &ms, &offence);

    gw_send_checked(gw, priv, verdict < 0 ? CHAT_SPAM_OK : verdict, ms, offence);
}

/* The script for user's send of text to room (slow_ms: the room's slow mode, 0: none); fn gets
 * the answer. CHAT_OK, or CHAT_ESTATE: nothing to check, or Redis is not connected (counted). */
static int run_script(struct gw *gw,
                      const char *user,
                      const char *room,
                      const char *text,
                      size_t len,
                      int64_t slow_ms,
                      gw_redis_reply_fn *fn,
                      void *priv)
{
    const struct chat_spam_cfg *cfg = &gw->cfg->spam;
    struct chat_spam_call call;
    size_t lens[CHAT_SPAM_ARGC];

    if (cfg->same <= 0 && slow_ms <= 0)
        return CHAT_ESTATE; /* nothing to check: not counted as skipped */
    if (chat_spam_call_init(&call, user, room, text, len, cfg, slow_ms) != CHAT_OK) {
        chat_metric_add(&gw->m.spam_skipped, 1); /* cannot happen: user and room are capped */
        return CHAT_ESTATE;
    }
    for (int i = 0; i < CHAT_SPAM_ARGC; i++)
        lens[i] = strlen(call.argv[i]);
    if (gw_redis_call(gw, fn, priv, CHAT_SPAM_ARGC, call.argv, lens) != CHAT_OK) {
        chat_metric_add(&gw->m.spam_skipped, 1);
        return CHAT_ESTATE;
    }
    return CHAT_OK;
}

int gw_spam_check(struct gw *gw, struct gw_pending *p, const char *user)
{
    return run_script(gw, user, p->room, p->text, p->text_len, gw_acl_slow_ms(gw, p->room),
                      on_check, p);
}

bool gw_spam_repeat(struct gw *gw, struct gw_conn *c, const char *text, size_t len)
{
    int last = gw->cfg->spam.last;
    uint64_t h;
    bool seen = false;

    if (gw->cfg->spam.same <= 0 || last <= 0)
        return false;
    h = chat_spam_hash64(text, len);
    if (!c->sent)
        c->sent = chat_xcalloc((size_t)last, sizeof(*c->sent));
    for (int i = 0; i < c->nsent && !seen; i++)
        seen = c->sent[i] == h;
    c->sent[c->sent_pos] = h;
    c->sent_pos = (c->sent_pos + 1) % last;
    if (c->nsent < last)
        c->nsent++;
    return seen;
}

/* The answer of a script run beside its send's produce (gw_spam_beside): only a ban matters. */
static void on_beside(struct gw *gw, struct redisReply *r, void *priv)
{
    char *user = priv;
    int64_t ms;
    int offence, verdict = verdict_of(gw, r, &ms, &offence);

    if (verdict == CHAT_SPAM_TRIPPED)
        gw_spam_ban(gw, user, chat_now_ms() + ms, offence);
    else if (verdict == CHAT_SPAM_BANNED) /* banned through another node: known here sooner */
        gw_acl_sanction_put(gw, user, "*", "chat_ban", chat_now_ms() + ms, CHAT_SPAM_REASON);
    chat_free(user);
}

void gw_spam_beside(struct gw *gw, const char *user, const char *room, const char *text, size_t len)
{
    char *u = chat_xstrdup(user);

    if (run_script(gw, user, room, text, len, 0, on_beside, u) != CHAT_OK)
        chat_free(u);
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
