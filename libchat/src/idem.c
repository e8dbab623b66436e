/* idem.c - idempotent sends by client_msg_id: key, claim script, verdicts (chat/idem.h). */
#include "chat/idem.h"

#include <stdio.h>
#include <string.h>

#include "chat/keys.h"

/* SET NX, and when the key existed its value and PTTL, in one atomic step. */
const char chat_idem_claim_lua[] =
    "if redis.call('SET', KEYS[1], 'p', 'NX', 'PX', ARGV[1]) then return {1} end\n"
    "return {0, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}\n";

int chat_idem_key(char *out, size_t cap, const char *user, const char *client_msg_id)
{
    int n = snprintf(out, cap, CHAT_KEY_IDEM_FMT, user, client_msg_id);

    return n < 0 || (size_t)n >= cap ? CHAT_ETOOBIG : CHAT_OK;
}

int64_t chat_idem_pending_px(int produce_timeout_ms)
{
    return (int64_t)produce_timeout_ms + CHAT_IDEM_PENDING_EXTRA_MS;
}

enum chat_idem_verdict chat_idem_judge(const char *room,
                                       const char *value,
                                       size_t len,
                                       int64_t pttl_ms,
                                       struct chat_idem_ack *ack,
                                       int *retry_ms)
{
    *retry_ms = -1;
    if (value && len == strlen(CHAT_IDEM_PENDING) && memcmp(value, CHAT_IDEM_PENDING, len) == 0) {
        *retry_ms = pttl_ms > 0 && pttl_ms < CHAT_IDEM_RETRY_MS ? (int)pttl_ms : CHAT_IDEM_RETRY_MS;
        return CHAT_IDEM_IN_FLIGHT;
    }
    if (!value || chat_idem_ack_decode(value, len, ack) != CHAT_OK)
        return CHAT_IDEM_UNREADABLE;
    return strcmp(ack->room, room) == 0 ? CHAT_IDEM_DONE : CHAT_IDEM_OTHER_ROOM;
}
