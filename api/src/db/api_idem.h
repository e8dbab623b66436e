/* api_idem.h - idempotent REST sends by client_msg_id (chat/idem.h has the scheme, shared with
 * the gateways): the claim of a send's Redis key before it is produced and the settling after
 * Kafka's answer, on the request thread's synchronous Redis connection. When Redis is out the
 * send goes on without dedupe (counted in chat_api_idem_skipped_total). Thread-safety: the
 * connection's thread only. */
#ifndef API_IDEM_H
#define API_IDEM_H

#include <stdbool.h>
#include <stdint.h>

#include "chat/idem.h"

#include "api_redis.h"

/* What the claim found. */
enum api_idem_outcome {
    API_IDEM_CLAIMED,    /* the key is this send's now: produce, then api_idem_settle */
    API_IDEM_SKIPPED,    /* Redis out or an unreadable value: produce without dedupe */
    API_IDEM_DONE,       /* stored before in this room: answer *ack */
    API_IDEM_OTHER_ROOM, /* stored before in another room: bad_field */
    API_IDEM_IN_FLIGHT,  /* the first send waits for Kafka: in_flight after *retry_ms */
};

/* Claims key (chat_idem_key) for a send to room, pending for px_ms. Fills *ack for
 * API_IDEM_DONE, *retry_ms for API_IDEM_IN_FLIGHT. */
enum api_idem_outcome api_idem_claim(struct api_redis *rd,
                                     const char *key,
                                     int64_t px_ms,
                                     const char *room,
                                     struct chat_idem_ack *ack,
                                     int *retry_ms);
/* After Kafka's answer to a claimed send: stored -> the key holds the ack for ttl_s seconds;
 * not stored -> deleted; maybe stored -> left to expire. A Redis failure is ignored (the
 * pending value expires). */
void api_idem_settle(struct api_redis *rd,
                     const char *key,
                     bool stored,
                     bool maybe_stored,
                     const struct chat_idem_ack *ack,
                     int ttl_s);

#endif
