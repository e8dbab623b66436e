/* r_messages.c - POST /api/v1/rooms/{room}/messages: a message without a WebSocket (bots,
 * integrations; proto/README.md section 6). The same checks and the same record as a
 * WebSocket send: text rules, the user's send bucket (here in Redis, for every replica), an id
 * under chat-api's own node number, produced to chat.messages keyed by room; answered with the
 * ack once Kafka acknowledged it (at most CHAT_PRODUCE_TIMEOUT_MS). At most
 * CHAT_REST_MAX_PENDING sends wait at once per replica, so a Kafka outage cannot take every
 * request thread. A send with client_msg_id is deduplicated with the gateways' scheme
 * (chat/idem.h, db/api_idem.h): a retry gets the first send's ack. The spam rule and the room's
 * slow mode run the gateways' Redis script (chat/spam.h) after the claim; a send that trips the
 * rule produces the chat.events `sanction` record itself (directly, waiting for Kafka: there is
 * nothing to write in the database here, the persister stores the sanction). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "chat/mem.h"
#include "chat/spam.h"
#include "chat/time.h"

#include "api.h"
#include "auth/api_rate.h"
#include "bus/api_ids.h"
#include "bus/api_kafka.h"
#include "db/api_conns.h"
#include "db/api_idem.h"
#include "r_util.h"
#include "routes.h"
#include "routes/r_messages_mod.h"

/* The sender's nickname now: an account's from the database (the token's name claim may be
 * older than a change), else the token's name, else its subject (as the gateways do). */
static bool nickname(struct api_req *r, struct api_db *db, char *out, size_t cap)
{
    const char *p[1] = {r->uid};
    PGresult *res;
    bool account = r->uid[0] && strspn(r->uid, "0123456789") == strlen(r->uid);

    snprintf(out, cap, "%s", r->claims.name[0] ? r->claims.name : r->uid);
    if (!account || strlen(r->uid) > 18 || !r->db_ready) /* not an account's token */
        return true;
    res = api_db_qn(db, API_Q_user_by_id, 1, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a nickname")) {
        api_reply_unavailable(r);
        return false;
    }
    if (PQntuples(res) == 1)
        snprintf(out, cap, "%s", PQgetvalue(res, 0, 2)); /* id, username, nickname, ... */
    PQclear(res);
    return true;
}

/* The claimed key of ev (NULL: none) after Kafka's answer: the ack remembered, or given back. */
static void settle(struct api_req *r,
                   const char *key,
                   const struct chat_event_msg *ev,
                   const struct api_delivery *d)
{
    struct chat_idem_ack ack;

    if (!key)
        return;
    memset(&ack, 0, sizeof(ack));
    snprintf(ack.room, sizeof(ack.room), "%s", ev->room);
    ack.id = ev->id;
    ack.seq = d ? d->offset : -1;
    ack.ts = ev->ts;
    api_idem_settle(&api_conns_get(r->api)->redis, key, d && !d->err, d && d->maybe_stored, &ack,
                    r->api->cfg->idem_ttl_s);
}

/* Produces the message and waits for Kafka; answers the ack or the failure. key: the claimed
 * idempotency key of the send, or NULL. */
static void produce(struct api_req *r, struct chat_event_msg *ev, const char *key)
{
    struct api *a = r->api;
    struct api_delivery d;
    struct chat_buf v;
    rd_kafka_resp_err_t err;

    chat_buf_init(&v, 0, 0);
    if (chat_enc_message(&v, ev) != CHAT_OK) {
        chat_buf_fini(&v);
        settle(r, key, ev, NULL);
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    err = api_kafka_produce(a->kafka, a->cfg->kafka.topic_messages, ev->room,
                            (char *)chat_buf_data(&v), v.len, "message", ev->ts, &d);
    chat_buf_fini(&v);
    if (err) {
        settle(r, key, ev, NULL);
        chat_metric_add(&a->m.send_errors, 1);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            r->retry_after_s = 1;
        api_reply_code(r, err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? CHAT_ERR_overloaded
                                                               : CHAT_ERR_unavailable);
        return;
    }
    api_kafka_wait(a->kafka, &d, 1);
    settle(r, key, ev, &d);
    if (d.err) {
        chat_metric_add(&a->m.send_errors, 1);
        api_reply_code(r, d.maybe_stored ? CHAT_ERR_unconfirmed : CHAT_ERR_unavailable);
        return;
    }
    chat_metric_add(&a->m.sends, 1);
    chat_hist_record(&a->m.send_ack_us,
                     chat_now_ms() > ev->ts ? (uint64_t)(chat_now_ms() - ev->ts) * 1000 : 0);
    chat_buf_reset(&r->resp);
    api_reply_json(r, 200,
                   chat_enc_ack(&r->resp, ev->client_msg_id, ev->id, d.offset, ev->ts, NULL));
}

/* The room and the body: the rules of a WebSocket send (proto/README.md section 4). */
void r_messages_send_check(struct api_req *r)
{
    enum chat_errcode code = CHAT_ERR_internal;

    r->cf_set = true; /* decoded or not, api_server.c frees it with the request */
    if (!chat_room_valid(api_param_get(&r->params, "room")->str))
        api_reply_code(r, CHAT_ERR_bad_room);
    else if (chat_rest_send_decode(chat_buf_data(&r->body), r->body.len,
                                   (size_t)r->api->cfg->max_text, &r->cf, &code) != CHAT_OK)
        api_reply_code(r, code);
    else if (memchr(r->cf.text, '\0', r->cf.text_len))
        api_reply_code(r, CHAT_ERR_bad_text);
}

bool r_messages_not_sanctioned(struct api_req *r, struct api_db *db, const char *room)
{
    const char *p[2] = {r->uid, room};
    PGresult *res = api_db_qn(db, API_Q_send_sanction, 2, p);
    const char *kind;

    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a user's sanctions")) {
        api_reply_unavailable(r);
        return false;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return true;
    }
    kind = PQgetvalue(res, 0, 0);
    r_fail_sanction(r, NULL,
                    strcmp(kind, "chat_ban") == 0 ? CHAT_ERR_chat_banned
                    : strcmp(kind, "ban") == 0    ? CHAT_ERR_banned
                                                  : CHAT_ERR_muted,
                    res, 1, 2);
    PQclear(res);
    return false;
}

bool r_messages_room_allows(struct api_req *r, struct api_db *db, const char *room, int *slow_s)
{
    size_t n = strlen(r->uid);
    bool account = n > 0 && n <= 18 && strspn(r->uid, "0123456789") == n;
    const char *p[2] = {room, account ? r->uid : NULL};
    PGresult *res = api_db_qn(db, API_Q_room_send_rules, 2, p);
    long long max_text;
    char msg[80];

    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a room's rules")) {
        api_reply_unavailable(r);
        return false;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        if (room[0] != '_' && r->api->cfg->rooms_adhoc)
            return true; /* an ad-hoc public room: the node's limits */
        api_reply_error(r, 404, "not_found", "no such room");
        return false;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "public") != 0 &&
        strcmp(PQgetvalue(res, 0, 2), "active") != 0) { /* invisible to non-members */
        PQclear(res);
        api_reply_error(r, 404, "not_found", "no such room");
        return false;
    }
    max_text = api_db_ll(res, 0, 1);
    *slow_s = (int)api_db_ll(res, 0, 3);
    PQclear(res);
    if ((long long)r->cf.text_cps > max_text) {
        snprintf(msg, sizeof(msg), "text is longer than this room's %lld code points", max_text);
        api_reply_error(r, 400, "text_too_long", msg);
        return false;
    }
    return account ? r_messages_not_sanctioned(r, db, room) : true;
}

/* A send with client_msg_id: claims its key (into key). Returns false when the send was
 * answered here: the remembered ack of a retry, or its error. */
static bool dedupe(struct api_req *r, struct api_conns *cx, char *key, size_t cap, bool *claimed)
{
    struct api *a = r->api;
    struct chat_idem_ack ack;
    const char *room = api_param_get(&r->params, "room")->str;
    int retry_ms;

    *claimed = false;
    if (chat_idem_key(key, cap, r->uid, r->cf.client_msg_id) != CHAT_OK) {
        chat_metric_add(&a->m.idem_skipped, 1); /* cannot happen: both parts are capped */
        return true;
    }
    switch (api_idem_claim(&cx->redis, key, chat_idem_pending_px(a->cfg->produce_timeout_ms), room,
                           &ack, &retry_ms)) {
    case API_IDEM_CLAIMED:
        *claimed = true;
        return true;
    case API_IDEM_DONE: /* the first send's ack: nothing is produced again */
        chat_metric_add(&a->m.idem_hits, 1);
        chat_buf_reset(&r->resp);
        api_reply_json(r, 200,
                       chat_enc_ack(&r->resp, r->cf.client_msg_id, ack.id, ack.seq, ack.ts, NULL));
        return false;
    case API_IDEM_OTHER_ROOM:
        chat_metric_add(&a->m.send_errors, 1);
        api_reply_error(r, 400, "bad_field", "client_msg_id already used in another room");
        return false;
    case API_IDEM_IN_FLIGHT:
        chat_metric_add(&a->m.send_errors, 1);
        r->retry_after_s = (retry_ms + 999) / 1000;
        api_reply_code(r, CHAT_ERR_in_flight);
        return false;
    case API_IDEM_SKIPPED:
    default:
        chat_metric_add(&a->m.idem_skipped, 1);
        return true;
    }
}

/* The spam-rule chat ban of user to chat.events (the gateways apply it, the persister stores
 * it). A failure is logged: the Redis ban key refuses the user's sends everywhere anyway. */
static void spam_ban_event(struct api *a, const char *user, int64_t until_ms, int offence)
{
    struct api_delivery d;
    struct chat_buf v;
    int64_t ts = chat_now_ms();
    rd_kafka_resp_err_t err;

    chat_buf_init(&v, 0, 0);
    if (chat_enc_spam_ban(&v, user, until_ms, offence, ts) != CHAT_OK) {
        chat_buf_fini(&v);
        return;
    }
    err = api_kafka_produce(a->kafka, a->cfg->kafka.topic_events, user, (char *)chat_buf_data(&v),
                            v.len, "sanction", ts, &d);
    chat_buf_fini(&v);
    if (!err) {
        api_kafka_wait(a->kafka, &d, 1);
        err = d.err;
    }
    if (err)
        chat_log(CHAT_LOG_WARN, "producing a spam-rule chat ban failed: %s", rd_kafka_err2str(err));
}

/* The spam rule and the room's slow mode (chat/spam.h). Returns false after answering the
 * refusal (the claimed key of ev, if any, given back); Redis out: true, unchecked. */
static bool spam_check(struct api_req *r,
                       struct api_conns *cx,
                       int slow_s,
                       const char *key,
                       const struct chat_event_msg *ev)
{
    struct api *a = r->api;
    const struct chat_spam_cfg *cfg = &a->cfg->spam;
    struct chat_spam_call call;
    char msg[96];
    long long v[3] = {0, 0, 0};
    redisReply *rep;
    int64_t ms = 0, until;
    int offence = 0, verdict = -1;
    size_t n = 0;

    if (cfg->same <= 0 && slow_s <= 0)
        return true;
    if (chat_spam_call_init(&call, r->uid, ev->room, r->cf.text, r->cf.text_len, cfg,
                            (int64_t)slow_s * 1000) != CHAT_OK) {
        chat_metric_add(&a->m.spam_skipped, 1); /* cannot happen: user and room are capped */
        return true;
    }
    rep = api_redis_argv(&cx->redis, CHAT_SPAM_ARGC, call.argv);
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements <= 3) {
        for (n = 0; n < rep->elements && rep->element[n]->type == REDIS_REPLY_INTEGER; n++)
            v[n] = rep->element[n]->integer;
        if (n == rep->elements)
            verdict = chat_spam_judge(v, n, &ms, &offence);
    }
    if (rep)
        freeReplyObject(rep);
    if (verdict < 0)
        chat_metric_add(&a->m.spam_skipped, 1);
    if (verdict <= CHAT_SPAM_OK)
        return true;
    settle(r, key, ev, NULL); /* refused before Kafka: a retry may send it */
    chat_metric_add(&a->m.send_errors, 1);
    if (verdict == CHAT_SPAM_SLOW) {
        r->retry_after_s = (int)((ms + 999) / 1000);
        api_reply_code(r, CHAT_ERR_slow_mode);
        return false;
    }
    until = chat_now_ms() + ms;
    if (verdict == CHAT_SPAM_TRIPPED) {
        chat_metric_add(&a->m.spam_bans, 1);
        spam_ban_event(a, r->uid, until, offence);
    }
    snprintf(msg, sizeof(msg), "%d of your last %d messages were the same", cfg->same, cfg->last);
    chat_buf_reset(&r->resp);
    api_reply_json(r, chat_errcode_http(CHAT_ERR_chat_banned),
                   chat_enc_http_error_until(&r->resp, chat_errcode_name(CHAT_ERR_chat_banned), msg,
                                             until, CHAT_SPAM_REASON));
    return false;
}

void r_messages_send(struct api_req *r)
{
    struct api *a = r->api;
    struct api_conns *cx = api_conns_get(a);
    struct chat_event_msg ev;
    char nick[128]; /* a nickname (CHAT_NICK_BYTES) or a name claim */
    char key[CHAT_IDEM_KEY_MAX];
    bool claimed = false;
    int retry, slow_s = 0;

    memset(&ev, 0, sizeof(ev));
    if (api_kafka_partitions_changed(a->kafka)) { /* a room's seq would break: until restart */
        api_reply_code(r, CHAT_ERR_unavailable);
        return;
    }
    if (!r_messages_room_allows(r, &cx->db, api_param_get(&r->params, "room")->str, &slow_s))
        return;
    /* one bucket per user for every replica; the WebSocket's is per gateway (proto/README.md) */
    retry =
        api_rate_bucket(&cx->redis, "send_user", r->uid, a->cfg->rate_per_s, a->cfg->rate_burst);
    if (retry > 0) {
        chat_metric_add(&a->m.rate_limited, 1);
        r->retry_after_s = (retry + 999) / 1000;
        api_reply_code(r, CHAT_ERR_rate_limited);
        return;
    }
    if (!nickname(r, &cx->db, nick, sizeof(nick)))
        return;
    /* after the rate limit: a retry draws from the send bucket too */
    if (r->cf.client_msg_id && !dedupe(r, cx, key, sizeof(key), &claimed))
        return;
    ev.room = api_param_get(&r->params, "room")->str;
    ev.user = r->uid;
    ev.nick = nick;
    ev.text = r->cf.text; /* NUL-terminated by the decoder */
    ev.client_msg_id = r->cf.client_msg_id;
    ev.seq = -1;
    if (!spam_check(r, cx, slow_s, claimed ? key : NULL, &ev))
        return;
    if (!api_ids_next(a, &ev.id, &ev.ts)) { /* no node number (Redis out): no id */
        settle(r, claimed ? key : NULL, &ev, NULL);
        r->retry_after_s = 1;
        api_reply_code(r, CHAT_ERR_overloaded);
        return;
    }
    if (atomic_fetch_add(&a->sends_pending, 1) >= a->cfg->rest_max_pending) {
        settle(r, claimed ? key : NULL, &ev, NULL);
        r->retry_after_s = 1;
        api_reply_code(r, CHAT_ERR_overloaded);
    } else {
        produce(r, &ev, claimed ? key : NULL);
    }
    atomic_fetch_sub(&a->sends_pending, 1);
}
