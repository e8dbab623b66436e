/* presence/src/pres.h - chat-presence: the presence worker.
 *
 * Several replicas run; one is the leader by a Redis lease (CHAT_KEY_PRES_LEADER). Every
 * interval the leader reads what each live gateway node wrote to Redis (see chat/keys.h),
 * aggregates per room (connections summed, distinct users unioned across nodes) plus the total,
 * and publishes to chat.presence only the rooms whose counts changed since its last publish.
 *
 * Modules (one file each):
 *   pres_count.c   pure aggregation and diff (no I/O; unit-tested)
 *   pres_read.c    one Redis snapshot of all live nodes, pipelined (a few round trips a tick)
 *   pres_lease.c   leader lease: acquire-or-renew and release, Lua scripts (atomic)
 *   pres_publish.c Kafka producer: encode, produce, delivery reports, readiness, flush
 *   pres_http.c    /healthz /readyz /metrics (httpd thread)
 *   main.c         config, signals, the worker loop
 *
 * Threads: the main thread is the worker; it owns the Redis context, the producer handle and
 * every table. The httpd thread only reads the atomics in struct pres_metrics and struct pres.
 */
#ifndef PRES_H
#define PRES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "chat/err.h"
#include "chat/httpd.h"
#include "chat/kafka.h"
#include "chat/metrics.h"

/* ---- configuration (immutable after startup) ---- */
struct pres_cfg {
    char *log_level;             /* debug|info|warn|error */
    struct chat_kafka_cfg kafka; /* shared CHAT_KAFKA_* settings */
    char *redis_host;
    int redis_port;
    char *metrics_addr; /* /healthz /readyz /metrics listener */
    int metrics_port;
    int interval_ms;   /* tick period: lease renewal and aggregation */
    int lease_ms;      /* leader lease; must exceed interval_ms */
    char *instance_id; /* lease holder value; "" at load -> hostname:pid */
};

/* ---- pres_count.c: string-keyed tables, aggregation and diff (pure, no I/O) ----
 * Thread-safety: none; a table is owned by one thread. */

struct pres_tab;

/* What a last-published entry stands for (struct pres_ent.zero). */
enum pres_zero {
    PRES_ZERO_NONE = 0,  /* the room has presence: conns and users are what was published */
    PRES_ZERO_PENDING,   /* the room vanished: its 0/0 is not yet known to be delivered */
    PRES_ZERO_DELIVERED, /* its 0/0 was delivered (or can never be): forgotten at the next diff */
};

struct pres_ent {
    char *key;            /* owns; NULL marks an empty slot */
    int64_t conns;        /* connections: summed over nodes (aggregate) or last published */
    int64_t users;        /* last-published tables only: distinct users published */
    struct pres_tab *set; /* aggregate tables only: owns the set of distinct user ids, or NULL */
    int zero;             /* last-published tables only: enum pres_zero */
    uintptr_t zero_id;    /* last-published, PRES_ZERO_PENDING: id of the latest 0/0 record
                           * handed to the producer (pres_zero_sent), 0 before the first */
};

struct pres_tab {
    struct pres_ent *slots; /* owns; open addressing, linear probing; NULL until first insert */
    size_t cap;             /* 0 or a power of two */
    size_t len;             /* used slots */
};

/* One room to publish. room is CHAT_KEY_PRES_ALL ("*") for the cluster-wide total. */
struct pres_change {
    char *room; /* owns */
    int64_t conns;
    int64_t users;
};

struct pres_changes {
    struct pres_change *v; /* owns; len entries */
    size_t len;
    size_t cap;
};

void pres_tab_init(struct pres_tab *t); /* empty table; cannot fail */
void pres_tab_fini(struct pres_tab *t); /* frees keys and sets; the table is empty afterwards */
/* Returns the entry for key (borrowed: valid until the next insert or fini), or NULL. */
const struct pres_ent *pres_tab_get(const struct pres_tab *t, const char *key);
/* Iteration: *pos starts at 0; returns the next used entry (borrowed) or NULL at the end. */
const struct pres_ent *pres_tab_next(const struct pres_tab *t, size_t *pos);

/* Aggregate table: adds n connections of one node to room (CHAT_KEY_PRES_ALL: the total). */
void pres_agg_add_conns(struct pres_tab *agg, const char *room, int64_t n);
/* Aggregate table: adds user to room's set of distinct users (copied; duplicates count once). */
void pres_agg_add_user(struct pres_tab *agg, const char *room, const char *user);
/* Distinct users of an aggregate entry. */
int64_t pres_agg_users(const struct pres_ent *e);

/* A growable vector of owned strings. */
struct pres_strv {
    char **v; /* owns each string and the array */
    size_t len;
    size_t cap;
};
void pres_strv_init(struct pres_strv *s);
void pres_strv_push(struct pres_strv *s, const char *str, size_t len); /* copies str[0..len) */
void pres_strv_fini(struct pres_strv *s);

void pres_changes_init(struct pres_changes *c);
void pres_changes_fini(struct pres_changes *c); /* frees every change */

/* Compares the aggregate agg with last (what was last published) and appends to out:
 * every room whose (conns, users) differ from last, every room when full is true, and
 * (0, 0) for every room of last that is gone from agg (or counts 0/0 now). The total "*"
 * is always present: (0, 0) when agg has no "*" entry. Rooms with 0 connections and 0 users
 * count as gone. Then last is replaced by agg's counts plus the gone rooms, kept as
 * PRES_ZERO_PENDING until pres_zero_done() confirms their 0/0: a pending room's (0, 0) is
 * appended when it vanishes and again at every full diff; a PRES_ZERO_DELIVERED room is
 * forgotten. A gone room that comes back is an ordinary room again.
 * Returns the number of rooms with presence in agg (the total not counted). */
size_t
pres_diff(const struct pres_tab *agg, struct pres_tab *last, bool full, struct pres_changes *out);
/* Last-published table: the 0/0 record of room was handed to the producer with id (> 0, unique
 * per record). If room is PRES_ZERO_PENDING, id becomes the one whose delivery confirms it. */
void pres_zero_sent(struct pres_tab *last, const char *room, uintptr_t id);
/* Last-published table: the 0/0 record id of room was delivered, or (id 0) room's 0/0 can never
 * be sent. If room is PRES_ZERO_PENDING and id is 0 or its latest id, it becomes
 * PRES_ZERO_DELIVERED (forgotten at the next diff); otherwise nothing changes (an older record,
 * a room that came back, or one forgotten since). */
void pres_zero_done(struct pres_tab *last, const char *room, uintptr_t id);

/* ---- metrics (any thread) ---- */
struct pres_metrics {
    atomic_llong ticks;           /* counter: worker ticks (leader or not) */
    atomic_llong published;       /* counter: presence records handed to the producer */
    atomic_llong publish_errors;  /* counter: produce refusals + failed delivery reports */
    atomic_llong redis_errors;    /* counter: connect/I/O failures and error replies */
    atomic_llong leader;          /* gauge: 1 while this replica holds the lease */
    atomic_llong leader_acquired; /* counter: times this replica became leader */
    atomic_llong nodes;           /* gauge: live gateway nodes in the last snapshot */
    atomic_llong rooms;           /* gauge: rooms with presence in the last snapshot */
    struct chat_hist tick_us;     /* histogram: duration of a leader tick (Redis + publish) */
};

/* ---- the worker context ---- */
struct pres {
    const struct pres_cfg *cfg; /* borrowed, immutable */
    struct pres_metrics m;      /* any thread */
    atomic_bool redis_ok;       /* worker writes, httpd reads: Redis connected */
    atomic_bool kafka_ok;       /* worker writes, httpd reads: producer saw topic metadata */
    atomic_llong alive_ms;      /* worker writes, httpd reads: monotonic ms of the last loop */

    /* worker thread only: */
    redisContext *rc;      /* owns; NULL while disconnected */
    int64_t retry_at_ms;   /* monotonic: next connect attempt */
    int backoff_ms;        /* reconnect backoff, doubled up to PRES_BACKOFF_MAX_MS */
    int64_t warn_at_ms;    /* monotonic: rate limit of per-key Redis warnings */
    bool leader;           /* holds the lease (as of the last renewal) */
    int64_t lease_t0_ms;   /* monotonic: when the last successful renewal was sent */
    bool force_full;       /* publish every room next tick (a publish failed) */
    struct pres_tab last;  /* what the last publishes said, per room, plus vanished rooms whose
                            * 0/0 is unconfirmed (delivery reports also run on this thread) */
    uintptr_t zero_id;     /* id of the latest 0/0 record produced (its message opaque) */
    rd_kafka_t *rk;        /* owns: the producer */
    rd_kafka_topic_t *rkt; /* owns: chat.presence */
    int64_t meta_at_ms;    /* monotonic: next metadata (readiness) check */
    int64_t kwarn_at_ms;   /* monotonic: rate limit of produce/delivery warnings */
};

#define PRES_BACKOFF_MIN_MS 100
#define PRES_BACKOFF_MAX_MS 5000
#define PRES_PIPE_MAX       512         /* commands per pipelined round trip */
#define PRES_COUNT_MAX      (1LL << 40) /* a connection count above this is treated as garbage */

/* ---- pres_read.c (worker thread) ----
 * Connection: pres_redis_connect() connects when due (backoff) and sets the command timeout;
 * returns CHAT_OK when p->rc is usable, CHAT_EIO otherwise (logged, retry scheduled).
 * pres_redis_drop() frees p->rc after an I/O failure, clears leadership and schedules a retry. */
CHAT_NODISCARD int pres_redis_connect(struct pres *p);
void pres_redis_drop(struct pres *p, const char *why);
/* Counts a bad reply for key (error reply or garbage) and logs it, rate limited. */
void pres_redis_key_error(struct pres *p, const char *key, const redisReply *r);
/* Reads one snapshot of every live node into agg (an empty aggregate table): removes dead
 * nodes from CHAT_KEY_PRES_NODES (score < now_ms), lists the live ones, then HGETALL of each
 * node's conns hash and SMEMBERS of its user sets, pipelined. A bad key (error reply, garbage
 * count) is skipped and counted in p->m.redis_errors. *nnodes receives the live node count.
 * Returns CHAT_OK; CHAT_EPROTO when the node list itself was unreadable (publish nothing this
 * tick); CHAT_EIO when the connection failed or timed out (the caller drops p->rc). */
CHAT_NODISCARD int
pres_read_snapshot(struct pres *p, int64_t now_ms, struct pres_tab *agg, size_t *nnodes);
/* Adds one node's HGETALL reply (field ROOM or "*" -> count) to agg and appends every room
 * other than "*" to rooms (copied). Garbage entries are skipped; returns how many. */
size_t pres_read_conns(struct pres_tab *agg, const redisReply *r, struct pres_strv *rooms);
/* Adds one SMEMBERS reply (user ids) to room's distinct users in agg. Returns 0 or 1 when the
 * reply was not an array (skipped). */
size_t pres_read_users(struct pres_tab *agg, const char *room, const redisReply *r);

/* ---- pres_lease.c (worker thread) ---- */
enum pres_lease_state {
    PRES_LEASE_OTHER = 0,    /* another instance holds the lease */
    PRES_LEASE_RENEWED = 1,  /* we held it and extended it: our last publishes still stand */
    PRES_LEASE_ACQUIRED = 2, /* it was free and is ours now: publish everything */
};
/* Acquires the lease if free, or extends it if we hold it (one atomic script).
 * Returns a pres_lease_state (>= 0) or CHAT_EIO (connection failed: drop p->rc). */
CHAT_NODISCARD int pres_lease_acquire(struct pres *p);
/* Deletes the lease only if we still hold it. Returns CHAT_OK or CHAT_EIO. */
CHAT_NODISCARD int pres_lease_release(struct pres *p);

/* ---- pres_publish.c (worker thread) ---- */
/* Creates the idempotent acks=all producer. Returns CHAT_OK or CHAT_EINVAL (logged). */
CHAT_NODISCARD int pres_publish_init(struct pres *p);
/* Produces one presence record per change (key = room, "*" for the total). A refused record
 * sets p->force_full. A room's 0/0 record carries an id (the message opaque, pres_zero_sent);
 * its successful delivery report calls pres_zero_done(), a failed one sets p->force_full. A
 * record that cannot be encoded is counted and skipped (a 0/0 one: pres_zero_done with id 0).
 * Returns the number handed to the producer. */
size_t pres_publish(struct pres *p, const struct pres_changes *c);
/* Serves delivery reports (up to timeout_ms; they update p->force_full and p->last) and
 * refreshes p->kafka_ok when due. */
void pres_publish_poll(struct pres *p, int timeout_ms);
/* Flushes queued records for at most timeout_ms and destroys the producer (NULL-safe). */
void pres_publish_fini(struct pres *p, int timeout_ms);

/* ---- pres_http.c ---- */
/* Handler for chat_httpd: /healthz, /readyz, /metrics. ud is the struct pres. */
int pres_http_handler(void *ud, const char *path, struct chat_buf *body, const char **ctype);

#endif
