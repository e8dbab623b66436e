/* api_idem.c - idempotent REST sends by client_msg_id (api_idem.h, chat/idem.h). */
#include "api_idem.h"

#include <string.h>

#include "chat/buf.h"

enum api_idem_outcome api_idem_claim(struct api_redis *rd,
                                     const char *key,
                                     int64_t px_ms,
                                     const char *room,
                                     struct chat_idem_ack *ack,
                                     int *retry_ms)
{
    redisReply *r =
        api_redis_cmd(rd, "EVAL %s 1 %s %lld", chat_idem_claim_lua, key, (long long)px_ms);
    enum api_idem_outcome o = API_IDEM_SKIPPED;
    const redisReply *v, *ttl;

    memset(ack, 0, sizeof(*ack));
    *retry_ms = -1;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        goto out;
    if (r->element[0]->integer == 1) {
        o = API_IDEM_CLAIMED;
        goto out;
    }
    if (r->elements != 3)
        goto out;
    v = r->element[1];
    ttl = r->element[2];
    if (v->type != REDIS_REPLY_STRING || ttl->type != REDIS_REPLY_INTEGER)
        goto out;
    switch (chat_idem_judge(room, v->str, v->len, ttl->integer, ack, retry_ms)) {
    case CHAT_IDEM_DONE:
        o = API_IDEM_DONE;
        break;
    case CHAT_IDEM_OTHER_ROOM:
        o = API_IDEM_OTHER_ROOM;
        break;
    case CHAT_IDEM_IN_FLIGHT:
        o = API_IDEM_IN_FLIGHT;
        break;
    default:
        break;
    }
out:
    if (r)
        freeReplyObject(r);
    return o;
}

void api_idem_settle(struct api_redis *rd,
                     const char *key,
                     bool stored,
                     bool maybe_stored,
                     const struct chat_idem_ack *ack,
                     int ttl_s)
{
    struct chat_buf v;
    redisReply *r = NULL;

    if (!stored) {
        if (!maybe_stored) /* not stored: a retry may produce it */
            r = api_redis_cmd(rd, "DEL %s", key);
        if (r)
            freeReplyObject(r);
        return; /* maybe stored: "p" expires after the produce timeout + 5 s */
    }
    chat_buf_init(&v, 0, 0);
    if (chat_enc_idem_ack(&v, ack->room, ack->id, ack->seq, ack->ts) == CHAT_OK)
        r = api_redis_cmd(rd, "SET %s %b EX %d", key, chat_buf_data(&v), v.len, ttl_s);
    if (r)
        freeReplyObject(r);
    chat_buf_fini(&v);
}
