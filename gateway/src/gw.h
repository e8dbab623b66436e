/* gw.h - the gateway: one context (struct gw) owning the libuv loop, the lws context, Kafka
 * handles, the Redis connection, the room index and every connection.
 *
 * Threading: everything here belongs to the event-loop thread (the thread running uv_run), the
 * only thread that touches lws, connections and rooms. librdkafka's internal threads hand work to
 * the loop only through the queue wake-up pipes (rd_kafka_queue_io_event_enable), the
 * partition-count watch thread (gw_kafka.c) only through parts_async. Nothing on the loop
 * blocks: Kafka produce is non-blocking, Redis is hiredis async on the same loop. */
#ifndef GW_H
#define GW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <librdkafka/rdkafka.h>
#include <libwebsockets.h>
#include <uv.h>

#include "chat/id.h"
#include "chat/jwt.h"
#include "chat/kafka.h"
#include "chat/log.h"
#include "chat/metrics.h"
#include "chat/msg.h"
#include "chat/proto.h"

/* Seconds of clock skew tolerated on exp/nbf, the same everywhere a token is checked. */
#define GW_JWT_LEEWAY_S 5
/* How long a revoked session must stay known (s): no token of it can be valid after that. */
#define GW_REVOKE_KEEP_S(cfg)                                                  \
    (((cfg)->access_ttl_s > (cfg)->token_max_ttl_s ? (cfg)->access_ttl_s       \
                                                   : (cfg)->token_max_ttl_s) + \
     2 * GW_JWT_LEEWAY_S)

/* Bytes of queued frames joined into one socket write. */
#define GW_COALESCE_BYTES 65536

/* ---- configuration (immutable after load) ---- */
struct gw_config {
    char *listen_addr;
    int port;
    char *node_name;
    char *jwt_keys; /* secret */
    char *jwt_issuer;
    char *redis_host;
    int redis_port;
    char *web_root;
    char *log_level;
    int max_frame;        /* bytes of one client frame */
    int max_text;         /* code points of a message */
    int max_rooms;        /* rooms per connection */
    int max_conns;        /* connections per process */
    int outq_max_msgs;    /* queued frames per connection */
    int outq_max_bytes;   /* queued bytes per connection */
    int rate_per_s;       /* sends per second per connection, sustained */
    int rate_burst;       /* sends in a burst */
    int frame_rate_per_s; /* client frames per second per connection, sustained */
    int frame_rate_burst;
    int rest_max_pending;   /* REST sends awaiting Kafka per node */
    int max_pending;        /* sends awaiting Kafka per connection */
    int produce_timeout_ms; /* Kafka message.timeout.ms: then the sender gets "unavailable" */
    int partition_check_ms; /* re-read the partition count of chat.messages this often */
    int max_body;           /* bytes of a REST request body */
    int idle_ping_s;        /* ping a silent connection after this */
    int idle_timeout_s;     /* drop it after this without any frame */
    int header_timeout_s;   /* a new connection must send its request within this */
    int request_timeout_s;  /* a REST request must be answered within this */
    int max_handshakes;     /* connections held before their first byte (gw_accept.c) */
    int listen_backlog;
    int drain_ms;   /* SIGTERM: time allowed to flush and say bye */
    int max_errors; /* malformed frames in a row before closing */
    /* sessions (tokens are issued by chat-api; the gateway verifies them) */
    int access_ttl_s;    /* lifetime of an access token */
    int token_max_ttl_s; /* longest lifetime of a session token accepted (chatctl may sign) */
    int session_warn_s;  /* session_expiring this long before exp */
    struct chat_kafka_cfg kafka;
};

/* ---- rate limiting: a token bucket ---- */
struct gw_bucket {
    double tokens;
    int64_t at_us; /* last update (mono us); 0 = new (starts full) */
};
/* Takes one token at now_us; returns 0, or the ms until one is available. */
int gw_bucket_take(struct gw_bucket *b, double rate, double burst, int64_t now_us);

/* ---- small string map: user id -> count (distinct users) or rate bucket ---- */
struct gw_map_ent {
    char *key; /* owns */
    struct gw_map_ent *next;
    int count;
    struct gw_bucket bucket;
    char *str;        /* owns, may be NULL: a value (nickname) */
    int64_t until_ms; /* revocations: forget after (wall ms); nicknames: changed at (wall ms) */
    struct gw_conn *conns; /* gw->users: the user's connections on this node (gw_conn.unext) */
};
struct gw_map {
    struct gw_map_ent **slots; /* owns */
    size_t nslots, n;
};

struct gw_conn;
struct gw_held;

#define GW_IP_MAX 64 /* bytes of a textual client address */

/* A connection's membership of a room; the room keeps a dense array of subscribers. */
struct gw_sub {
    struct gw_conn *c;
};

struct gw_room {
    char *name;            /* owns */
    struct gw_room *hnext; /* hash chain */
    struct gw_sub *subs;   /* owns; dense, unordered */
    size_t nsubs, cap;
    struct gw_map users;       /* logged-in user id -> connections of this node in the room */
    struct chat_msg *presence; /* owns a ref: the room's last presence frame, or NULL */
    bool dirty;                /* presence changed since the last report to Redis */
    bool reported;             /* Redis holds keys for this room (must be cleared when empty) */
};

struct gw_rooms {
    struct gw_room **slots; /* owns rooms */
    size_t nslots, n;
};

/* A send waiting for its Kafka delivery report. */
struct gw_pending {
    struct gw_conn *c;              /* borrowed; NULL once the connection closed */
    struct lws *http;               /* REST sender awaiting its response, or NULL */
    struct gw_pending *prev, *next; /* in c->pending */
    char *client_msg_id;            /* owns, may be NULL */
    char *ref;                      /* owns, may be NULL */
    uint64_t id;
    int64_t ts;
    int64_t seq;       /* filled by the delivery report */
    int err;           /* rd_kafka_resp_err_t of the delivery report */
    bool maybe_stored; /* failed, but the broker may have stored it (a timeout after sending) */
    bool rest;         /* counted in gw->rest_pending */
};

struct gw_membership {
    struct gw_room *room;
    size_t idx; /* index in room->subs */
};

struct gw_conn {
    struct gw *gw;
    struct lws *wsi;
    uint64_t cid;                  /* connection number, for logs */
    struct gw_conn *prev, *next;   /* in gw->conns */
    struct gw_conn *uprev, *unext; /* in gw->users' entry of claims.sub while authed */
    /* identity */
    bool authed;
    struct chat_claims claims; /* valid when authed */
    bool expiry_warned;        /* session_expiring sent for claims.exp */
    /* rooms */
    struct gw_membership *rooms; /* owns; rooms_cap slots, grown on demand to max_rooms */
    int nrooms, rooms_cap;
    /* send queue (ring) */
    struct chat_msg **outq; /* owns refs; a ring of oq_cap slots, grown on demand up to
                             * cfg->outq_max_msgs and shrunk back when it empties */
    int oq_head, oq_len, oq_cap;
    size_t oq_bytes;
    bool closing; /* close after the queue's current frame; queue no more */
    int close_code;
    const char *close_reason;
    /* receive */
    struct chat_buf rx; /* fragments of a multi-fragment frame */
    bool rx_discard;    /* current message is over max_frame: drop until final */
    int errors_in_row;
    /* frames per second from this connection (all types) */
    struct gw_bucket frames;
    /* sends awaiting Kafka */
    struct gw_pending *pending;
    int npending;
};

struct gw_metrics {
    atomic_llong conns, conns_total, conns_authed, rooms;
    atomic_llong frames_in, frames_bad, sends, acks, send_errors, rate_limited;
    atomic_llong kafka_in, kafka_bad, deliveries, slow_closes, outq_dropped;
    atomic_llong produce_queue_full, redis_errors, http_requests;
    atomic_llong accepted, accept_dropped, header_timeouts;
    atomic_llong sessions_revoked, events_in, events_bad;
    atomic_llong partition_changes; /* chat.messages partition count changed (0 or 1) */
    struct chat_hist send_ack_us;   /* send -> Kafka delivery report */
    struct chat_hist kafka_age_us;  /* produce timestamp -> consumed here */
};

struct gw {
    const struct gw_config *cfg;
    uv_loop_t loop;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    /* our listening socket (gw_accept.c): connections wait here for their first byte */
    int listen_fd;
    bool accept_ok;
    bool accept_paused; /* out of descriptors: listen_poll stopped until the next expiry tick */
    uv_poll_t listen_poll;
    uv_timer_t expire_timer;
    struct gw_held *held_head, *held_tail; /* FIFO = deadline order */
    long nheld;
    struct chat_jwt_keyring keys;
    struct chat_limits limits;
    struct chat_idgen idgen;
    int node_num; /* leased message-id node number, -1 until leased */
    /* Kafka */
    rd_kafka_t *prod, *cons;
    rd_kafka_queue_t *prod_q, *cons_q;
    int prod_pipe[2], cons_pipe[2];
    uv_poll_t prod_poll, cons_poll;
    uv_idle_t cons_idle; /* continues draining the consumer past one batch */
    bool kafka_assigned;
    bool kafka_fatal; /* the idempotent producer hit a fatal error: drain and exit */
    bool kafka_polls; /* the uv handles below were initialised */
    /* the partition count of chat.messages is fixed (gw_kafka.c): a watch thread re-reads it */
    struct chat_kafka_watch *parts_watch; /* owns */
    uv_async_t parts_async;               /* the watch thread's wake-up */
    atomic_int parts_now;                 /* {watch thread -> loop}: the changed count */
    int parts_start;                      /* the count this node started with */
    bool partitions_changed;              /* it changed: not ready, sends refused, until restart */
    /* Redis */
    redisAsyncContext *redis;
    bool redis_ok;
    int64_t redis_retry_at_ms;
    int64_t redis_connect_ms;           /* when the current connect began (mono ms) */
    int redis_backoff_ms;               /* the last retry delay; 0 after a success */
    struct chat_log_limit delivery_log; /* failed sends: one line per 10 s during an outage */
    int64_t lease_until_ms; /* ids may be generated until then (mono ms), see gw_lease_valid */
    int64_t lease_sent_ms;  /* when the pending lease request was sent */
    bool lease_inflight;
    long redis_inflight;    /* commands sent, reply not yet seen */
    int64_t redis_reply_ms; /* last reply (mono ms): a watchdog for a silent Redis */
    bool redis_resolving;
    uv_getaddrinfo_t redis_gai;
    uv_timer_t redis_kill;    /* shutdown: gives up on Redis replies after a moment */
    char lease_token[96];     /* node:pid:ms, the value of our lease key */
    unsigned lease_candidate; /* next node number to try */
    bool pres_total_dirty;
    /* timers and signals */
    uv_timer_t tick; /* 1 s: presence report, lease renewal, Redis reconnect */
    uv_timer_t drain_timer;
    uv_signal_t sigterm, sigint;
    bool draining;
    bool shut;    /* gw_shutdown() ran: handles closing */
    bool loop_ok; /* loop and the handles of gw_init() exist */
    int64_t drain_deadline_ms;
    bool drain_forced; /* drain_ms passed: remaining connections are being closed */
    /* connections and rooms */
    struct gw_conn *conns; /* all connections, doubly linked */
    long nconns;
    uint64_t next_cid;
    struct gw_rooms rooms;
    struct gw_map users;      /* user id -> connections on this node */
    struct gw_map send_rates; /* user id -> send bucket, shared by WebSocket and REST */
    long rest_pending;        /* REST sends awaiting Kafka, node-wide */
    long anon_conns;
    struct chat_msg *presence_total; /* owns a ref: the last cluster-wide presence frame */
    struct chat_buf scratch;         /* LWS_PRE headroom; reused for encoding */
    unsigned char wbuf[LWS_PRE + GW_COALESCE_BYTES]; /* coalesced frames of one write */
    /* sessions */
    struct gw_map revoked; /* revoked session id -> until_ms (kept one access-token lifetime) */
    struct gw_map nicks;   /* user id -> nickname changed at until_ms (same lifetime) */
    /* chat.events is read from GW_REVOKE_KEEP_S back at start (gw_kafka.c); until every
     * partition has been read up to its end as of start, revoked tokens would pass: not ready */
    bool sessions_loaded;
    int64_t *ev_target; /* owns: per chat.events partition, the end offset at start */
    int ev_nparts;
    int ev_behind; /* partitions not read up to their target yet */
    struct gw_metrics m;
};

/* gw_room.c */
void gw_map_init(struct gw_map *m);
void gw_map_fini(struct gw_map *m);
struct gw_map_ent *gw_map_find(const struct gw_map *m, const char *key);
/* Returns the entry, creating a zeroed one when missing. */
struct gw_map_ent *gw_map_get(struct gw_map *m, const char *key);
void gw_map_remove(struct gw_map *m, const char *key);
/* Removes (and frees) every entry for which drop() is true. */
void gw_map_sweep(struct gw_map *m, bool (*drop)(const struct gw_map_ent *e, void *ud), void *ud);
/* Adds delta to key's count; returns the new count (entry removed at 0). */
int gw_countmap_add(struct gw_map *m, const char *key, int delta);
void gw_rooms_init(struct gw_rooms *r);
void gw_rooms_fini(struct gw_rooms *r);
struct gw_room *gw_room_find(struct gw_rooms *r, const char *name);
/* Returns the room, creating it when missing. */
struct gw_room *gw_room_get(struct gw_rooms *r, const char *name);
/* Removes and frees an empty room that has nothing left to report. */
void gw_room_maybe_free(struct gw_rooms *r, struct gw_room *room);
/* Subscribes c; returns CHAT_OK, CHAT_EEXIST (already) or CHAT_ETOOBIG (max_rooms). */
int gw_room_join(struct gw *gw, struct gw_conn *c, const char *name);
/* Returns CHAT_OK or CHAT_ENOENT (not joined). */
int gw_room_leave(struct gw *gw, struct gw_conn *c, const char *name);
void gw_room_leave_all(struct gw *gw, struct gw_conn *c);
bool gw_conn_in_room(const struct gw_conn *c, const char *name);

/* gw_conn.c */
struct gw_conn *gw_conn_open(struct gw *gw, struct lws *wsi, struct gw_conn *c);
void gw_conn_closed(struct gw_conn *c);
/* Queues m (takes a new reference). Over the queue limit the connection is closed as a slow
 * consumer. Returns CHAT_OK or CHAT_EAGAIN (not queued). */
int gw_conn_push(struct gw_conn *c, struct chat_msg *m);
/* Encodes nothing: queues the bytes of gw->scratch as a private frame. */
int gw_conn_push_scratch(struct gw_conn *c);
void gw_conn_error(struct gw_conn *c,
                   enum chat_errcode code,
                   const char *msg,
                   const char *client_msg_id,
                   const char *ref,
                   int retry_ms);
/* Closes after what is queued now with a WebSocket close code. */
void gw_conn_close(struct gw_conn *c, int code, const char *reason);
/* Handles LWS_CALLBACK_SERVER_WRITEABLE; returns -1 to close. */
int gw_conn_writable(struct gw_conn *c);
/* Handles LWS_CALLBACK_RECEIVE; returns -1 to close. */
int gw_conn_receive(struct gw_conn *c, const void *in, size_t len);
void gw_conn_set_identity(struct gw_conn *c, const struct chat_claims *cl);
void gw_conn_clear_identity(struct gw_conn *c);

/* gw_send.c */
/* The send frame's handler: identity, expiry and membership were checked by the dispatcher. */
void gw_send_frame(struct gw_conn *c, const struct chat_cframe *f);
void gw_send_delivered(struct gw *gw, struct gw_pending *p);
void gw_pending_detach_all(struct gw_conn *c);
/* Shared by WS (c) and REST (c NULL): checks the lease, pending caps and the user's send rate,
 * then produces. On CHAT_OK, *out is the pending send (owned by the producer until its delivery
 * report). On failure, *code says why and *retry_ms (or -1) when to try again. */
int gw_send_produce(struct gw *gw,
                    struct gw_conn *c,
                    const struct chat_claims *who,
                    const char *room,
                    const char *text,
                    size_t text_len,
                    const char *client_msg_id,
                    const char *ref,
                    struct gw_pending **out,
                    enum chat_errcode *code,
                    int *retry_ms);
void gw_pending_free(struct gw_pending *p);

/* gw_kafka.c */
int gw_kafka_start(struct gw *gw);
void gw_kafka_stop(struct gw *gw);
void gw_kafka_destroy(struct gw *gw);
/* Fans a consumed record out to local subscribers. */
void gw_fanout_room(struct gw *gw, const char *room, size_t room_len, struct chat_msg *m);
void gw_fanout_all(struct gw *gw, struct chat_msg *m);

/* gw_redis.c */
void gw_redis_start(struct gw *gw);
void gw_redis_tick(struct gw *gw);
void gw_redis_stop(struct gw *gw);
void gw_redis_arm_kill(struct gw *gw);
/* Counts one attempt under each of keys[0..n) in fixed windows of window_ms; cb gets 0 when
 * every count is within its limit, else the ms until the fullest window ends. Without Redis the
 * attempt is allowed (Redis is a cache; logins must not depend on it). cb may run before this
 * returns. */
typedef void (*gw_rate_cb)(struct gw *gw, void *ud, int retry_ms);
void gw_redis_rate(struct gw *gw,
                   const char *const *keys,
                   const int *limits,
                   int n,
                   int window_ms,
                   gw_rate_cb cb,
                   void *ud);
/* Bookkeeping of every Redis command (the watchdog's in-flight count and last reply). */
void gw_redis_sent(struct gw *gw);
void gw_redis_replied(struct gw *gw);
/* True while this node holds its message-id node number (lease not expired). */
bool gw_lease_valid(const struct gw *gw);

/* gw_accept.c: listen on cfg->listen_addr:port, hold new connections until their first byte,
 * then hand them to lws; stop closes the socket and every held connection. */
int gw_accept_start(struct gw *gw);
void gw_accept_stop(struct gw *gw);

/* gw_http.c */
int gw_http_callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
bool gw_ready(const struct gw *gw);
/* Answers a REST send whose delivery report arrived; consumes p. */
void gw_http_delivered(struct gw *gw, struct gw_pending *p);
/* The HTTP connection went away: detach it from its pending send. */
void gw_http_closed(struct lws *wsi, void *user);
int gw_http_reject(struct lws *wsi,
                   int status,
                   const char *code,
                   const char *msg,
                   const char *hname,
                   const char *hval);
int gw_metrics_render(struct gw *gw, struct chat_buf *out);

/* gw_events.c: chat.events, revocations, nicknames, token expiry on open sockets */
/* Verifies token and applies what this node knows: a revoked session fails (CHAT_EAUTH with
 * *code session_revoked), a nickname changed after the token was issued replaces the name.
 * Returns CHAT_OK, or an error with *code the error code for the client. */
int gw_token_check(struct gw *gw,
                   const char *token,
                   struct chat_claims *cl,
                   enum chat_errcode *code);
/* Same checks for claims already verified (a connection's identity). */
void gw_claims_fresh_nick(struct gw *gw, struct chat_claims *cl);
/* gw_kafka.c: chat.events partition part has been read up to offset next (exclusive). */
void gw_kafka_events_read(struct gw *gw, int32_t part, int64_t next);
/* Consumed chat.events record. */
void gw_events_handle(struct gw *gw, const char *v, size_t len);
/* Records a revocation (from a chat.events record); gw_sessions_apply* act on it. */
void gw_sessions_revoke(struct gw *gw, const char *sid, const char *reason, int64_t at_ms);
/* One pass over the connections: those of revoked sessions get session_revoked. */
void gw_sessions_apply(struct gw *gw);
/* The same for the connections of one user only (an event names its user). */
void gw_sessions_apply_user(struct gw *gw, const char *user);
void gw_nick_changed(struct gw *gw, const char *user, const char *nick, int64_t at_ms);
/* 1 s: session_expiring / session_expired on open sockets, forgets old revocations. */
void gw_sessions_tick(struct gw *gw);

/* gw_ws.c */
extern const struct lws_protocols gw_protocols[];
int gw_ws_callback(
    struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
void gw_begin_drain(struct gw *gw);
/* Closes every handle on the loop (lws context included); uv_run then returns. main.c */
void gw_shutdown(struct gw *gw);

#endif
