/* gw_metrics.h - the gateway's Prometheus metrics: counters and gauges are atomics (the
 * rendering reads them; only the event loop writes them), histograms are chat_hist.
 * Thread-safety: as above. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdatomic.h>

#include "chat/buf.h"
#include "chat/metrics.h"

struct gw;

struct gw_metrics {
    atomic_llong conns, conns_total, conns_authed, rooms;
    atomic_llong frames_in, frames_bad, sends, acks, send_errors, rate_limited;
    atomic_llong kafka_in, kafka_bad, deliveries, slow_closes, outq_dropped;
    atomic_llong kafka_replayed; /* records consumed again (a reassignment): not sent twice */
    atomic_llong recovered, recover_misses; /* join {since}: replayed / not held */
    atomic_llong joins_refused;             /* join: no grant, a bad one, unknown room */
    atomic_llong rooms_known;               /* gauge: rooms of chat.rooms in the table */
    atomic_llong sanctions;                 /* gauge: mutes and bans known (not expired) */
    atomic_llong sanctioned;                /* sends refused by a mute or ban */
    atomic_llong produce_queue_full, redis_errors, http_requests;
    atomic_llong redis_noscript; /* script calls answered NOSCRIPT (Redis lost its scripts) */
    atomic_llong write_errors;   /* socket writes that failed outside the writable callback */
    atomic_llong conflated;      /* presence frames that replaced an older one still queued */
    atomic_llong accepted, accept_dropped, header_timeouts;
    atomic_llong pings, idle_timeouts; /* keep-alive (ws/gw_conn.c gw_conn_keepalive) */
    atomic_llong sessions_revoked, events_in, events_bad;
    atomic_llong partition_changes; /* chat.messages partition count changed (0 or 1) */
    atomic_llong idem_skipped;      /* sends with client_msg_id not deduplicated (Redis out) */
    atomic_llong idem_hits;         /* retries answered with the remembered ack */
    atomic_llong reads;             /* read frames produced to chat.events */
    atomic_llong spam_skipped;      /* sends not checked by the spam rule / slow mode (Redis out) */
    atomic_llong spam_bans;         /* spam-rule chat bans this node imposed */
    atomic_llong slow_refused;      /* sends refused by a room's slow mode */
    /* the stages of a message (issue 12): accepted -> produced -> acked -> consumed -> written */
    struct chat_hist send_check_us; /* send frame read -> produce (claim, spam and slow checks) */
    struct chat_hist send_ack_us;   /* produce -> Kafka delivery report */
    struct chat_hist kafka_age_us;  /* produce timestamp -> consumed here */
    struct chat_hist deliver_us;    /* consumed here -> written to a recipient's socket */
};

/* Appends the exposition text of every metric to out; returns CHAT_OK or the chat_buf error. */
int gw_metrics_render(struct gw *gw, struct chat_buf *out);

#endif
