/* api.h - chat-api, the REST service: its configuration, the process context and the request
 * every handler gets.
 *
 * Threads (api/README.md):
 * - libmicrohttpd runs CHAT_API_THREADS request threads, each serving its connections start to
 *   finish. A handler runs on one of them and may block (password hashing, PostgreSQL, Redis):
 *   each request thread owns one PostgreSQL and one Redis connection (struct api_conns,
 *   db/api_conns.c), made on first use and kept.
 * - the outbox relay thread (bus/api_outbox.c): produces committed chat.events rows to Kafka.
 * - the retention thread (acct/api_purge.c): deletes old login events and sessions.
 * Shared between threads: struct api (read-only after start-up), its atomic counters, the
 * PostgreSQL health flags (db/api_db.c) and the Kafka producer (thread-safe). */
#ifndef API_H
#define API_H

#include <stdatomic.h>
#include <stdbool.h>

#include <pthread.h>

#include "chat/account.h"
#include "chat/buf.h"
#include "chat/jwt.h"
#include "chat/kafka.h"
#include "chat/metrics.h"
#include "chat/proto.h"
#include "chat/spam.h"

#include "api_router.h"
#include "db/api_db.h"

struct api_cfg {
    char *listen_addr;
    int port;
    int threads;           /* request threads (each handles a request start to finish) */
    int max_body;          /* bytes of a request body */
    int request_timeout_s; /* a connection idle this long (no request, no byte) is closed */
    int max_conns;         /* connections at once; more are refused */
    int nice;              /* request threads' nice value (password hashing yields) */
    char *log_level;
    char *node_name; /* this replica, in /api/v1/config and the Kafka client id */
    /* dependencies */
    char *pg_dsn;      /* secret (may hold a password) */
    int pg_timeout_ms; /* PostgreSQL connect/statement deadline, then 503 */
    char *redis_host;
    int redis_port;
    int redis_timeout_ms;
    struct chat_kafka_cfg kafka;
    /* tokens and sessions */
    char *jwt_keys; /* secret */
    char *jwt_issuer;
    int password_cost;
    int access_ttl_s;
    int token_max_ttl_s;
    int grant_ttl_s;           /* room grants */
    int idem_ttl_s;            /* client_msg_id of REST sends */
    struct chat_spam_cfg spam; /* the spam rule (chat/spam.h) */
    int refresh_ttl_s;
    int refresh_grace_s;
    /* abuse limits (Redis, all replicas) */
    int proxy_hops;
    int auth_window_s;
    int login_per_ip, register_per_ip;
    int login_fails_per_net, login_fails_per_user;
    int net_bits_v4, net_bits_v6;
    int password_per_user, nick_per_user, logout_per_user;
    int room_create_per_user, redeem_per_user;
    int edit_per_user; /* message edits per user per auth window */
    int pin_per_user;  /* pins and unpins per user per auth window */
    /* rooms and history */
    int room_member_limit, room_member_limit_max, history_max, recent_per_room;
    int rooms_adhoc; /* REST sends to unknown public rooms (as the gateways' CHAT_ROOMS_ADHOC) */
    int system_joins_max;  /* joined/left system messages only in rooms this small */
    int report_reason_max; /* code points of a report's reason */
    int pins_max;          /* pinned messages per room */
    char *login_name_key;  /* secret */
    /* retention */
    int retain_logins_s, retain_sessions_s, purge_interval_s, purge_batch;
    int produce_timeout_ms; /* Kafka message.timeout.ms */
    int partition_check_ms; /* re-read the partition count of chat.messages this often */
    int rest_max_pending;   /* REST sends waiting for Kafka at once, per replica */
    /* the outbox relay */
    int outbox_batch, outbox_poll_ms;
    /* the chat limits clients read from GET /api/v1/config (the gateways enforce them) */
    int max_frame, max_text, max_rooms, rate_per_s, rate_burst;
};

struct api_metrics {
    atomic_llong requests, by_class[6]; /* by_class[k]: kxx answers (1..5) */
    atomic_llong too_big;
    atomic_llong rate_limited, auth_failures, db_unavailable;
    atomic_llong outbox_relayed, outbox_failures;
    atomic_llong sends, send_errors, partition_changes;
    atomic_llong idem_skipped;      /* REST sends with client_msg_id not deduplicated (Redis out) */
    atomic_llong spam_skipped;      /* REST sends not checked by the spam rule (Redis out) */
    atomic_llong spam_bans;         /* spam-rule chat bans imposed by REST sends */
    atomic_llong idem_hits;         /* REST retries answered with the remembered ack */
    atomic_llong outbox_pending;    /* gauge: rows seen waiting at the last relay pass */
    struct chat_hist latency_us;    /* request in -> answer queued (atomic buckets) */
    struct chat_hist outbox_lag_us; /* event committed -> produced and acknowledged */
    struct chat_hist send_ack_us;   /* REST send: produced -> acknowledged */
};

struct api_kafka;  /* bus/api_kafka.c */
struct api_ids;    /* bus/api_ids.c */
struct api_outbox; /* bus/api_outbox.c */
struct api_purge;  /* acct/api_purge.c */

struct api {
    const struct api_cfg *cfg;
    const struct api_route *routes; /* the route table (api_routes.c) */
    size_t nroutes;
    struct MHD_Daemon *daemon;
    int port; /* bound (cfg->port may be 0) */
    struct chat_jwt_keyring keys;
    char dummy_hash[CHAT_PASSWD_HASH_MAX]; /* chat_passwd_dummy: unknown users cost the same */
    struct chat_limits limits;
    struct api_kafka *kafka;
    struct api_ids *ids;
    atomic_int sends_pending; /* REST sends waiting for Kafka */
    struct api_outbox *outbox;
    struct api_purge *purge;
    struct api_db_health db_health; /* PostgreSQL, shared by every thread */
    atomic_bool db_seen;            /* PostgreSQL answered once since start (readiness) */
    atomic_bool redis_ok;           /* the last Redis call of any thread worked */
    atomic_bool draining;           /* SIGTERM: /readyz answers 503 */
    pthread_mutex_t conns_mu;
    struct api_conns *conns; /* every request thread's connections (db/api_conns.c) */
    struct api_metrics m;
};

/* One request, from its headers to its answer. The router fills route and params, checks the
 * route's flags (claims for API_BEARER); the handler reads body and fills status/resp
 * (api_reply_*). */
struct api_req {
    struct api *api;
    struct MHD_Connection *conn;
    unsigned method;
    char path[256];
    const struct api_route *route;
    struct api_params params;
    struct chat_buf body;      /* request body, capped at cfg->max_body */
    bool too_big;              /* the body went over the cap: answered 413 */
    struct chat_claims claims; /* API_BEARER: the verified token */
    bool db_ready;             /* the router got this thread's PostgreSQL connection */
    struct chat_auth_body ab;  /* the account body a route's check decoded (ab_set) */
    struct chat_cframe cf;     /* REST send: the body its check decoded (cf_set) */
    bool ab_set, cf_set;
    void *doc; /* a JSON body a route's check decoded (json_t, freed with the request) */
    char uid[64], sid[64]; /* API_BEARER: claims.sub, claims.sid ("" without) as checked ids */
    int status;            /* 0 until answered */
    int retry_after_s;     /* > 0: a Retry-After header */
    struct chat_buf resp;
    const char *ctype;
    char allow[64]; /* 405: the methods the path takes */
    long long t0_us;
};

/* Answers: the JSON error of proto/README.md section 6 with the HTTP status given. */
void api_reply_error(struct api_req *r, int status, const char *code, const char *msg);
/* The error code's own HTTP status and description (the error table, chat_errcode_http). */
void api_reply_code(struct api_req *r, enum chat_errcode code);
/* 503 unavailable with Retry-After: 1 (a dependency failed). */
void api_reply_unavailable(struct api_req *r);
/* Answers status with body (text or JSON per ctype): resp is filled by the caller. */
void api_reply(struct api_req *r, int status, const char *ctype);
/* Answers status with the JSON the caller wrote into resp; 500 when enc_rc is not CHAT_OK. */
void api_reply_json(struct api_req *r, int status, int enc_rc);

/* A request header, NULL when absent. */
const char *api_header(const struct api_req *r, const char *name);
/* A query-string argument, NULL when absent. */
const char *api_query(const struct api_req *r, const char *name);

/* api_server.c: the libmicrohttpd daemon. start: CHAT_OK, or an error already logged. */
int api_server_start(struct api *a);
void api_server_stop(struct api *a);

/* api_routes.c: the route table of chat-api. */
extern const struct api_route api_routes[];
extern const size_t api_nroutes;

/* api_config.c: the options (env and flags) of chat-api. */
int api_config_load(struct api_cfg *cfg, int argc, char **argv);
void api_config_dump(const struct api_cfg *cfg);
void api_config_free(struct api_cfg *cfg);

#endif
