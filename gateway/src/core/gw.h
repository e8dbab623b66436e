/* gw.h - the gateway's context: one struct gw owning the libuv loop, the lws context, Kafka
 * handles, the Redis connection, the room index and every connection; and its configuration
 * (struct gw_config, immutable after load; the option table is in core/main.c). Every module
 * takes a struct gw *; each module's own types and functions are in its header
 * (gateway/README.md has the map).
 *
 * Threading: everything here belongs to the event-loop thread (the thread running uv_run), the
 * only thread that touches lws, connections and rooms. librdkafka's internal threads hand work to
 * the loop only through the queue wake-up pipes (rd_kafka_queue_io_event_enable), the
 * partition-count watch thread (bus/gw_kafka.c) only through parts_async. Nothing on the loop
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
#include "chat/lease.h"
#include "chat/log.h"
#include "chat/metrics.h"
#include "chat/msg.h"
#include "chat/proto.h"
#include "chat/shared_cfg.h"
#include "chat/spam.h"

#include "core/gw_metrics.h"
#include "room/gw_map.h"
#include "room/gw_room.h"

/* Bytes of queued frames joined into one socket write. */
#define GW_COALESCE_BYTES 65536

struct gw_recent; /* room/gw_recent.h */

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
    int max_frame;         /* bytes of one client frame */
    int max_text;          /* code points of a message */
    int max_rooms;         /* rooms per connection */
    int max_conns;         /* connections per process */
    int outq_max_msgs;     /* queued frames per connection */
    int outq_max_bytes;    /* queued bytes per connection */
    int recovery_bytes;    /* recent room events kept for join {since}, all rooms */
    int recovery_per_room; /* ... per room */
    int rate_per_s;        /* sends per second per connection, sustained */
    int rate_burst;        /* sends in a burst */
    int frame_rate_per_s;  /* client frames per second per connection, sustained */
    int frame_rate_burst;
    int max_pending;        /* sends awaiting Kafka per connection */
    int produce_timeout_ms; /* Kafka message.timeout.ms: then the sender gets "unavailable" */
    int partition_check_ms; /* re-read the partition count of chat.messages this often */
    int idle_ping_s;        /* ping a silent connection after this */
    int idle_timeout_s;     /* drop it after this without any frame */
    int header_timeout_s;   /* a new connection must send its request within this */
    int max_handshakes;     /* connections held before their first byte (ws/gw_accept.c) */
    int listen_backlog;
    int drain_ms;    /* SIGTERM: time allowed to flush and say bye */
    int max_errors;  /* malformed frames in a row before closing */
    int rooms_adhoc; /* 1: rooms chat-api does not know may be joined (public, node limits) */
    /* sessions (tokens are issued by chat-api; the gateway verifies them) */
    int access_ttl_s;          /* lifetime of an access token */
    int token_max_ttl_s;       /* longest lifetime of a session token accepted (chatctl may sign) */
    int grant_ttl_s;           /* longest lifetime of a room grant; removals are kept this long */
    int idem_ttl_s;            /* a send's client_msg_id and ack are remembered this long (Redis) */
    struct chat_spam_cfg spam; /* the spam rule (chat/spam.h) */
    int session_warn_s;        /* session_expiring this long before exp */
    struct chat_kafka_cfg kafka;
};

struct gw_conn;
struct gw_held;

/* A topic a node must read up to where it ended at start before it is ready (bus/gw_kafka.c). */
struct gw_catchup {
    int64_t *target; /* owns: per partition, the end offset at start; -1 once read up to it */
    int nparts;
    int behind; /* partitions not read up to their target yet */
    bool done;
};

struct gw {
    const struct gw_config *cfg;
    uv_loop_t loop;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    /* our listening socket (ws/gw_accept.c): connections wait here for their first byte */
    int listen_fd;
    bool accept_ok;
    bool accept_paused; /* out of descriptors: listen_poll stopped until the next expiry tick */
    uv_poll_t listen_poll;
    uv_timer_t expire_timer;
    struct gw_held *held_head, *held_tail; /* FIFO = deadline order */
    long nheld;
    int held_ms; /* a silent connection's time in the FIFO: the header timeout less what the
                    kernel held it (TCP_DEFER_ACCEPT) */
    struct chat_jwt_keyring keys;
    struct chat_limits limits;
    struct chat_idgen idgen;
    struct chat_lease lease; /* the message-id node number (chat/lease.h) */
    /* Kafka */
    rd_kafka_t *prod, *cons;
    rd_kafka_queue_t *prod_q, *cons_q;
    int prod_pipe[2], cons_pipe[2];
    uv_poll_t prod_poll, cons_poll;
    uv_idle_t cons_idle; /* continues draining the consumer past one batch */
    bool kafka_assigned;
    bool kafka_fatal; /* the idempotent producer hit a fatal error: drain and exit */
    bool kafka_polls; /* the uv handles below were initialised */
    /* the partition count of chat.messages is fixed (bus/gw_kafka.c): a watch thread re-reads it */
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
    long redis_inflight;                /* commands sent, reply not yet seen */
    int64_t redis_reply_ms;             /* last reply (mono ms): a watchdog for a silent Redis */
    bool redis_resolving;
    uv_getaddrinfo_t redis_gai;
    uv_timer_t redis_kill; /* shutdown: gives up on Redis replies after a moment */
    bool pres_total_dirty;
    /* timers and signals */
    uv_timer_t tick; /* 1 s: presence report, lease renewal, Redis reconnect */
    uv_timer_t drain_timer;
    uv_signal_t sigterm, sigint;
    bool draining;
    bool shut;    /* gw_main_shutdown() ran: handles closing */
    bool loop_ok; /* loop and the handles of gw_init() exist */
    int64_t drain_deadline_ms;
    bool drain_forced; /* drain_ms passed: remaining connections are being closed */
    /* connections and rooms */
    struct gw_conn *conns; /* all connections, doubly linked */
    struct gw_conn *flush; /* connections to write before the loop waits (ws/gw_conn.c) */
    uv_prepare_t flush_prep;
    long nconns;
    uint64_t next_cid;
    struct gw_rooms rooms;
    struct gw_recent *recent; /* owns: every room's recent events, for join {since} */
    struct gw_map users;      /* user id -> connections on this node */
    struct gw_map send_rates; /* user id -> send bucket, shared by the user's connections */
    long anon_conns;
    struct chat_msg *presence_total; /* owns a ref: the last cluster-wide presence frame */
    struct chat_buf scratch;         /* LWS_PRE headroom; reused for encoding */
    unsigned char wbuf[LWS_PRE + GW_COALESCE_BYTES]; /* coalesced frames of one write */
    /* sessions */
    struct gw_map revoked; /* revoked session id -> until_ms (kept one access-token lifetime) */
    struct gw_map nicks;   /* user id -> nickname changed at until_ms (same lifetime) */
    /* chat.events is read from CHAT_REVOKE_KEEP_S back at start (bus/gw_kafka.c); until every
     * partition has been read up to its end as of start, revoked tokens would pass: not ready.
     * Likewise chat.rooms from its start: until then a room's settings could be missing. */
    struct gw_catchup ev_cu, rooms_cu, sanctions_cu;
    /* rooms (room/gw_acl.c): settings from chat.rooms, removals from chat.events */
    struct gw_map room_cfg;  /* room id -> max_text (count), kind (str), slow mode ms (until_ms) */
    struct gw_map denied;    /* "user\nroom" -> removed at (until_ms): older grants refused */
    struct gw_map sanctions; /* "USER ROOM KIND" -> until_ms (0: until lifted), reason (str) */
    struct gw_metrics m;
};

/* core/main.c: closes every handle on the loop (lws context included); uv_run then returns.
 * Idempotent. */
void gw_main_shutdown(struct gw *gw);

#endif
