/* gw_send.h - the path of a message into Kafka: checks (lease, pending cap, the user's rate),
 * for a send with client_msg_id the claim of its key in Redis (bus/gw_idem.h: a retry gets the
 * first send's ack), id and timestamp, encoding once, a non-blocking produce keyed by room, and
 * the ack or error when the delivery report arrives. A connection's sends are produced in the
 * order of its frames: while one waits for Redis (its claim, or the spam and slow-mode script of
 * bus/gw_spam.h), the later sends of the connection wait behind it (struct gw_conn.sendq), each
 * answered on its own. Thread-safety: event-loop thread only. */
#ifndef GW_SEND_H
#define GW_SEND_H

#include <stdbool.h>
#include <stdint.h>

#include "bus/gw_idem.h"

struct chat_cframe;
struct chat_claims;
struct gw;
struct gw_conn;

/* A send waiting for its turn (an earlier send of its connection waits for Redis), for Redis
 * (the claim of its client_msg_id, bus/gw_idem.h; the spam and slow-mode script, bus/gw_spam.h)
 * and then for its Kafka delivery report (the producer's opaque). Counts against the
 * connection's max_pending from the frame on, which bounds the sends waiting for their turn. */
struct gw_pending {
    struct gw_conn *c;              /* borrowed; NULL once the connection closed */
    struct gw_pending *prev, *next; /* in c->pending */
    struct gw_pending *qnext;       /* in c->sendq (circular; non-NULL) while not produced or
                                     * refused yet */
    char *client_msg_id;            /* owns, may be NULL */
    char *ref;                      /* owns, may be NULL */
    char *room;                     /* owns */
    char *idem_key;                 /* owns: the claimed Redis key; NULL: no dedupe */
    /* until the produce (NULL after): the frame's text and sender */
    char *text; /* owns */
    size_t text_len;
    struct chat_claims *who; /* owns: a copy of the sender's claims at the frame */
    uint64_t id;
    int64_t ts;
    int64_t t_us;      /* chat_mono_us(): when the frame was read, then when it was produced */
    int64_t seq;       /* filled by the delivery report */
    int err;           /* rd_kafka_resp_err_t of the delivery report */
    bool maybe_stored; /* failed, but the broker may have stored it (a timeout after sending) */
    bool started;      /* its checks began (the queue's head): a Redis answer will come back */
};

/* The send frame's handler: identity, expiry and membership were checked by the dispatcher. */
void gw_send_frame(struct gw_conn *c, const struct chat_cframe *f);
/* The delivery report of p (bus/gw_kafka.c): the ack or the error to its connection, if it is
 * still open. Consumes p. */
void gw_send_delivered(struct gw *gw, struct gw_pending *p);
/* The claim of p's key was answered (bus/gw_idem.c): produce, or answer the remembered ack or
 * the error, or (the connection closed meanwhile) give the key back. ack: for GW_IDEM_DONE;
 * retry_ms: for GW_IDEM_IN_FLIGHT. Consumes p unless it was produced. */
void gw_send_claimed(struct gw *gw,
                     struct gw_pending *p,
                     enum gw_idem_outcome o,
                     const struct chat_idem_ack *ack,
                     int retry_ms);
/* The spam rule's and slow mode's verdict on p (bus/gw_spam.c; enum chat_spam_verdict; ms: the
 * ban's length or the retry): produce, or refuse with chat_banned or slow_mode, or (the
 * connection closed meanwhile) give the claimed key back. A trip chat-bans the user in any case.
 * Consumes p unless it was produced. */
void gw_send_checked(struct gw *gw, struct gw_pending *p, int verdict, int64_t ms, int offence);
/* c is closing: its pending sends forget it (their reports then answer nobody); the sends still
 * waiting for their turn are dropped (never produced, nobody to answer). */
void gw_send_detach_all(struct gw_conn *c);

#endif
