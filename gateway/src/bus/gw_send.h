/* gw_send.h - the path of a message into Kafka: checks (lease, pending cap, the user's rate),
 * id and timestamp, encoding once, a non-blocking produce keyed by room, and the ack or error
 * when the delivery report arrives. Thread-safety: event-loop thread only. */
#ifndef GW_SEND_H
#define GW_SEND_H

#include <stdbool.h>
#include <stdint.h>

struct chat_cframe;
struct gw;
struct gw_conn;

/* A send waiting for its Kafka delivery report (the producer's opaque). */
struct gw_pending {
    struct gw_conn *c;              /* borrowed; NULL once the connection closed */
    struct gw_pending *prev, *next; /* in c->pending */
    char *client_msg_id;            /* owns, may be NULL */
    char *ref;                      /* owns, may be NULL */
    uint64_t id;
    int64_t ts;
    int64_t seq;       /* filled by the delivery report */
    int err;           /* rd_kafka_resp_err_t of the delivery report */
    bool maybe_stored; /* failed, but the broker may have stored it (a timeout after sending) */
};

/* The send frame's handler: identity, expiry and membership were checked by the dispatcher. */
void gw_send_frame(struct gw_conn *c, const struct chat_cframe *f);
/* The delivery report of p (bus/gw_kafka.c): the ack or the error to its connection, if it is
 * still open. Consumes p. */
void gw_send_delivered(struct gw *gw, struct gw_pending *p);
/* c is closing: its pending sends forget it (their reports then answer nobody). */
void gw_send_detach_all(struct gw_conn *c);

#endif
