/* chat/idem.h - idempotent sends by client_msg_id (proto/README.md section 4 `send`, section
 * 12): the Redis key, the claim script and the reading of its answer. Shared by the gateways
 * (hiredis async on their loop) and chat-api (hiredis sync per request thread); Redis itself is
 * driven by each service. Thread-safety: pure functions and constants.
 *
 * A send with client_msg_id C by user U runs chat_idem_claim_lua on CHAT_KEY_IDEM_FMT(U, C):
 *   - claimed: the key now holds CHAT_IDEM_PENDING for chat_idem_pending_px() ms: produce; on
 *     Kafka's ack SET the key to chat_enc_idem_ack() EX CHAT_IDEM_TTL_S; on `unavailable` (not
 *     stored) DEL it; on `unconfirmed` leave it to expire.
 *   - not claimed: the script returns the key's value and PTTL in the same atomic step (the key
 *     cannot vanish in between), and chat_idem_judge() says what to answer. */
#ifndef CHAT_IDEM_H
#define CHAT_IDEM_H

#include <stddef.h>
#include <stdint.h>

#include "chat/err.h"
#include "chat/proto.h"

#define CHAT_IDEM_KEY_MAX          160  /* bytes of a key: "chat:idem:" + user + ":" + id + NUL */
#define CHAT_IDEM_PENDING          "p"  /* the value while the send waits for Kafka */
#define CHAT_IDEM_RETRY_MS         500  /* retry_ms of in_flight (or the key's PTTL if smaller) */
#define CHAT_IDEM_PENDING_EXTRA_MS 5000 /* the pending key outlives the produce timeout by this */

/* EVAL chat_idem_claim_lua 1 KEY PX_MS -> {1} (claimed: KEY = "p" PX PX_MS) or
 * {0, VALUE, PTTL} (KEY existed: its value and remaining ms, read atomically with the SET). */
extern const char chat_idem_claim_lua[];

/* What to do with a send whose key existed. */
enum chat_idem_verdict {
    CHAT_IDEM_DONE,       /* stored before, same room: answer ack with *ack, produce nothing */
    CHAT_IDEM_OTHER_ROOM, /* stored before in another room: bad_field */
    CHAT_IDEM_IN_FLIGHT,  /* the first send still waits for Kafka: in_flight, retry_ms */
    CHAT_IDEM_UNREADABLE, /* a value that is neither: treat Redis as unavailable (no dedupe) */
};

/* Writes the key of (user, client_msg_id) into out. Returns CHAT_OK or CHAT_ETOOBIG (cap). */
CHAT_NODISCARD int
chat_idem_key(char *out, size_t cap, const char *user, const char *client_msg_id);
/* The PX of the pending key: produce_timeout_ms + CHAT_IDEM_PENDING_EXTRA_MS (librdkafka
 * cannot deliver after message.timeout.ms, so a pending key that expires is dead). */
int64_t chat_idem_pending_px(int produce_timeout_ms);
/* Judges the value (value[0..len)) and PTTL (ms; < 0: none) of an existing key for a send to
 * room. Fills *ack for CHAT_IDEM_DONE and CHAT_IDEM_OTHER_ROOM, *retry_ms for
 * CHAT_IDEM_IN_FLIGHT (CHAT_IDEM_RETRY_MS, or pttl_ms when smaller and > 0). */
enum chat_idem_verdict chat_idem_judge(const char *room,
                                       const char *value,
                                       size_t len,
                                       int64_t pttl_ms,
                                       struct chat_idem_ack *ack,
                                       int *retry_ms);

#endif
