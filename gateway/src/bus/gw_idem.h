/* gw_idem.h - idempotent sends by client_msg_id on the gateway (chat/idem.h has the scheme):
 * the claim of a send's key in Redis before it is produced, and the settling of the key after
 * Kafka's delivery report (the ack remembered, or the key given back). Redis is hiredis async on
 * the loop (cache/gw_redis.h); when it is out, sends go on without dedupe (counted in
 * chat_gateway_idem_skipped_total). Thread-safety: event-loop thread only. */
#ifndef GW_IDEM_H
#define GW_IDEM_H

#include "chat/proto.h"

struct gw;
struct gw_pending;

/* What the claim of a send's key found (the argument of gw_send_claimed()). */
enum gw_idem_outcome {
    GW_IDEM_CLAIMED,    /* the key is the send's now (p->idem_key set): produce */
    GW_IDEM_SKIPPED,    /* Redis failed or held something unreadable: produce without dedupe */
    GW_IDEM_DONE,       /* stored before in this room: answer the remembered ack */
    GW_IDEM_OTHER_ROOM, /* stored before in another room: bad_field */
    GW_IDEM_IN_FLIGHT,  /* the first send waits for Kafka still: in_flight with retry_ms */
};

/* Claims the key of (user, p->client_msg_id) for p (which must stay alive until the answer:
 * it is, as a pending send of its connection). Returns CHAT_OK: gw_send_claimed() follows,
 * later, exactly once; or CHAT_ESTATE: Redis is not connected (counted as skipped), nothing
 * follows and the caller sends without dedupe. */
int gw_idem_claim(struct gw *gw, struct gw_pending *p, const char *user);
/* After p's delivery report (p->err, p->maybe_stored, p->id/seq/ts): stored -> the key holds
 * the ack for CHAT_IDEM_TTL_S; not stored -> the key is deleted; maybe stored -> left to
 * expire. No-op when p claimed no key. Fire and forget. */
void gw_idem_settle(struct gw *gw, struct gw_pending *p);
/* Gives p's claimed key back (DEL) and forgets it: the send was refused before Kafka. */
void gw_idem_forget(struct gw *gw, struct gw_pending *p);

#endif
