/* persister/src/ps.h - chat-persister: consumes chat.messages as a consumer group and stores the
 * messages in PostgreSQL in batches (a COPY per batch, idempotent on (created_at, id); the next
 * batch is decoded while the database writes this one), committing the Kafka offsets of a batch
 * only after its database commit. After the commit the
 * batch goes to the Redis recent cache (chat:recent:ROOM, chat:urecent:USER; skipped, counted,
 * while Redis is down). A second consumer (group CHAT_PERSISTER_EVENTS_GROUP) reads chat.events
 * and stores `read` events as room_members.last_read_seq and spam-rule `sanction` events as
 * sanctions and audit_log rows.
 *
 * Modules (split by role):
 *   ps_partition.c  pure UTC-day arithmetic, partition names and DDL, the known-partition set
 *   ps_batch.c      the batch being built: owned rows, offsets to commit, PostgreSQL array params
 *   ps_store.c      the PostgreSQL connection: (re)connect, schema, partitions, batch insert
 *   ps_guard.c      the deadline of a database operation (a thread that cuts a hung one off)
 *   ps_consume.c    the Kafka consumer: poll loop, rebalance, flush/commit, pause on PG outage
 *   ps_cache.c      the Redis recent cache: frames with seq/prev, pipelined writes, backoff
 *   ps_events.c     the chat.events consumer: read markers, coalesced per (user, room)
 *   ps_conf.c       the consumers' librdkafka configuration (chat.messages, chat.events)
 *   main.c          config table, signals, /healthz /readyz /metrics, startup and shutdown
 *
 * Threads: the main thread owns struct ps and everything in it (consumer, batch, store); the
 * httpd thread reads only the atomics in struct ps_metrics; the guard thread (ps_guard.c) only
 * its own fields, under its mutex, and the stop counter. The signal handler writes only the stop
 * counter (a lock-free atomic). */
#ifndef PS_H
#define PS_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "chat/buf.h"
#include "chat/err.h"
#include "chat/httpd.h"
#include "chat/kafka.h"
#include "chat/log.h"
#include "chat/metrics.h"
#include "chat/proto.h"

/* ------------------------------------------------------------------------------------------ */
/* Configuration (immutable after chat_cfg_load) */

struct ps_cfg {
    char *log_level;    /* debug|info|warn|error */
    char *pg_dsn;       /* libpq conninfo or URI; secret (may hold a password) */
    char *metrics_addr; /* /healthz /readyz /metrics listen address */
    int metrics_port;
    int batch_max;               /* rows per batch */
    int batch_ms;                /* max age of a batch, from its first message */
    int fetch_min_bytes;         /* a fetch waits for this much (at most batch_ms) */
    char *group;                 /* Kafka consumer group */
    int ahead_days;              /* partitions created ahead of a day */
    bool migrate_only;           /* apply migrations and partitions, then exit */
    int part_lock_timeout_ms;    /* lock_timeout of partition DDL (SET LOCAL) */
    int part_retry_ms;           /* wait after a failed roll-ahead before the next attempt */
    int pg_statement_timeout_ms; /* statement_timeout of the session (0: none) */
    int pg_lock_timeout_ms;      /* lock_timeout of the session (0: none) */
    int pg_keepalives_idle_s;    /* TCP keepalive: idle time before the first probe */
    int pg_keepalives_interval_s;
    int pg_keepalives_count;
    int pg_tcp_user_timeout_ms; /* unacknowledged data: the connection is dropped after this */
    int pg_hang_timeout_ms;     /* a database operation without an end is cut off after this */
    int stuck_write_ms;         /* /readyz 503 when a batch write runs or fails this long */
    int commit_interval_ms;     /* offsets committed at most this often (0: after every batch) */
    int partition_check_ms;     /* re-read the partition count of chat.messages this often */
    char *redis_host;           /* the recent cache */
    int redis_port;
    int redis_timeout_ms;            /* connect and command deadline of the cache writes */
    int recent_per_room;             /* chat:recent:ROOM entries kept (0: not written) */
    int recent_per_user;             /* chat:urecent:USER entries kept (0: not written) */
    char *events_group;              /* Kafka consumer group of the chat.events consumer */
    struct chat_httpd_limits health; /* /healthz /readyz /metrics responder */
    struct chat_kafka_cfg kafka;
};

/* ------------------------------------------------------------------------------------------ */
/* Metrics: written by the main thread, read by the httpd thread (atomics) */

struct ps_metrics {
    atomic_llong stored;             /* rows inserted */
    atomic_llong duplicates;         /* rows skipped by ON CONFLICT (replays) */
    atomic_llong batches;            /* batches written */
    atomic_llong undecodable;        /* Kafka records skipped as not a valid message event */
    atomic_llong pg_errors;          /* failed PostgreSQL operations (connect, DDL, insert) */
    atomic_llong commit_errors;      /* failed Kafka offset commits */
    atomic_llong partitions_created; /* day partitions created by this process */
    atomic_llong kafka_errors;       /* consumer error events */
    atomic_llong pg_up;              /* gauge: 1 when connected with the schema in place */
    atomic_llong assigned;           /* gauge: partitions assigned to this consumer */
    atomic_llong lag;                /* gauge: high watermark - position, summed, cached */
    atomic_llong batch_rows;         /* gauge: rows in the batch being built */
    atomic_llong id_conflicts;       /* rows whose id was stored from another Kafka position */
                                     /* (not in duplicates: those are replays only) */
    atomic_llong part_ddl_failures;  /* failed partition DDL (lock_timeout, errors) */
    atomic_llong write_since_ms;     /* monotonic ms since a batch write runs or fails; 0: none */
    atomic_llong partition_changes;  /* chat.messages partition count changed (0 or 1): halted */
    atomic_llong cached;             /* messages written to the Redis recent cache */
    atomic_llong cache_skipped;      /* messages not cached (Redis down or failing) */
    atomic_llong cache_errors;       /* failed Redis connects and pipelines */
    atomic_llong redis_up;           /* gauge: 1 when the last cache write (or connect) worked */
    atomic_llong read_events;        /* `read` events consumed from chat.events */
    atomic_llong reads_applied;      /* room_members rows whose last_read_seq was written */
    atomic_llong spam_bans;          /* spam-rule chat bans stored (sanctions + audit rows) */
    atomic_llong pg_cut;             /* operations cut off by the guard (hung server, stop) */
    struct chat_hist batch_us;       /* write + commit time of a batch (main thread: _1w) */
    struct chat_hist delay_us;       /* message ts -> stored (main thread: _1w) */
};

/* ------------------------------------------------------------------------------------------ */
/* ps_partition.c: UTC days (days since 1970-01-01) and daily partitions. Pure functions. */

#define PS_DAY_MIN       0       /* 1970-01-01 */
#define PS_DAY_MAX       2932895 /* 9999-12-30: the day after still has a 4-digit year */
#define PS_PART_NAME_MAX 32      /* "messages_YYYYMMDD" + NUL fits */
#define PS_DAYS_CAP      4096    /* the known-day set is cleared when it would grow past this */

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d. Years 1..9999.
 * Returns CHAT_OK or CHAT_EINVAL (year, month or day out of range, e.g. 2023-02-29). */
CHAT_NODISCARD int ps_days_from_civil(int y, int m, int d, int32_t *days);
/* Inverse of ps_days_from_civil for any day (negative: before 1970). */
void ps_civil_from_days(int32_t days, int *y, int *m, int *d);
/* UTC day of a Unix time in ms (floor, so -1 ms is day -1).
 * Returns CHAT_OK, or CHAT_EINVAL when the day is outside [PS_DAY_MIN, PS_DAY_MAX]. */
CHAT_NODISCARD int ps_day_of_ms(int64_t ms, int32_t *day);
/* Writes "messages_YYYYMMDD" into out[len]. Returns CHAT_OK, CHAT_EINVAL (day out of range) or
 * CHAT_ETOOBIG (len too small). */
CHAT_NODISCARD int ps_partition_name(int32_t day, char *out, size_t len);
/* Parses a partition name written by ps_partition_name (strict: exact length, a valid date).
 * Returns CHAT_OK or CHAT_EINVAL. */
CHAT_NODISCARD int ps_partition_parse(const char *name, int32_t *day);
/* Appends "CREATE TABLE IF NOT EXISTS messages_YYYYMMDD PARTITION OF messages FOR VALUES
 * FROM ('YYYY-MM-DD 00:00:00+00') TO ('<next day> 00:00:00+00');\n" to out.
 * Returns CHAT_OK, CHAT_EINVAL (day out of range) or CHAT_ETOOBIG (out->max). */
CHAT_NODISCARD int ps_partition_ddl(struct chat_buf *out, int32_t day);

/* A sorted set of days (partitions known to exist). Owner: one thread. Zero-init is empty. */
struct ps_days {
    int32_t *v; /* owns; sorted ascending, unique */
    size_t n, cap;
};
bool ps_days_has(const struct ps_days *s, int32_t day);
/* Adds day (no-op when present). When the set holds PS_DAYS_CAP days it is cleared first. */
void ps_days_add(struct ps_days *s, int32_t day);
void ps_days_clear(struct ps_days *s); /* keeps storage */
void ps_days_fini(struct ps_days *s);  /* frees storage; idempotent */

/* ------------------------------------------------------------------------------------------ */
/* ps_batch.c: the batch being built. Owner: the main thread. */

/* One message to store. The strings point into blk (one allocation per row). */
struct ps_row {
    int64_t id;        /* message id, <= INT64_MAX */
    int64_t offset;    /* Kafka offset = seq */
    int64_t ts_ms;     /* server timestamp */
    int32_t partition; /* Kafka partition */
    int32_t day;       /* UTC day of ts_ms */
    const char *room, *user, *nick, *body;
    const char *cmid; /* client_msg_id; NULL when absent */
    const char *raw;  /* the Kafka value (for the cache frame); NULL when not kept */
    size_t raw_len;
    char *blk; /* owns the strings above */
    /* the record type (migrations 0007, 0008): "message", "message_deleted", "message_edited"
     * or "system" (static) */
    const char *kind;
    int64_t deletes; /* message_deleted: the id of the message it deletes; else 0 */
    int64_t edits;   /* message_edited: the id of the message it edits (target_id); else 0 */
    char *edit_text; /* message_edited: the new text (owned); else NULL */
};

/* Next offset to commit for one partition (last consumed + 1). */
struct ps_commit {
    int32_t partition;
    int64_t next;
};

struct ps_batch {
    struct ps_row *rows; /* owns; n used of cap */
    size_t n, cap;
    struct ps_commit *commits; /* owns; one per partition seen since the last reset */
    size_t ncommits, commits_cap;
    int64_t first_ms;     /* monotonic ms of the first record not yet written; 0: none */
    struct chat_buf copy; /* the binary COPY data of rows[0 .. ncopied) (ps_store_encode) */
    size_t ncopied;
};

/* Columns of the insert, in parameter order ($1..$10). */
enum ps_col {
    PS_COL_ID,
    PS_COL_ROOM,
    PS_COL_PARTITION,
    PS_COL_OFFSET,
    PS_COL_USER,
    PS_COL_NICK,
    PS_COL_BODY,
    PS_COL_CMID,
    PS_COL_TS,
    PS_COL_KIND,
    PS_COL_TARGET, /* target_id: an edit row's message; NULL otherwise */
    PS_NCOLS
};

/* ---- the consumers' librdkafka configuration (ps_conf.c) ---- */

/* The shared CHAT_KAFKA_* settings (chat_kafka_conf_new) for consumer group `group`, then the
 * persister's own: a new group starts at the earliest offset, and with batch_fetch (the
 * chat.messages consumer) a fetch waits for cfg->fetch_min_bytes, at most cfg->batch_ms,
 * whatever CHAT_KAFKA_FETCH_MIN_BYTES and CHAT_KAFKA_FETCH_WAIT_MS say; CHAT_KAFKA_EXTRA last.
 * NULL with errstr on a refused setting. */
rd_kafka_conf_t *ps_consumer_conf_new(
    const struct ps_cfg *cfg, const char *group, bool batch_fetch, char *errstr, size_t errlen);

void ps_batch_init(struct ps_batch *b);
void ps_batch_fini(struct ps_batch *b); /* frees everything; idempotent */
/* True when records (rows or skipped ones) wait for a write and/or an offset commit. */
static inline bool ps_batch_pending(const struct ps_batch *b)
{
    return b->ncommits > 0;
}
/* Copies message m (consumed from partition/offset at monotonic now_ms) and its Kafka value
 * raw[0..raw_len) (may be NULL: no cache frame) into the batch.
 * Returns CHAT_OK, or CHAT_EINVAL when m cannot be stored (id > INT64_MAX, ts outside the
 * partition range); the batch is unchanged then and the caller records it with skip. */
CHAT_NODISCARD int ps_batch_add(struct ps_batch *b,
                                int32_t partition,
                                int64_t offset,
                                const struct chat_event_msg *m,
                                const char *raw,
                                size_t raw_len,
                                int64_t now_ms);
/* Copies a message_deleted, message_edited or system record e (its raw value the row's body and
 * cache frame) into the batch as a row of kind e's type: a system row has the event's id, user
 * and nick; a message_deleted row has the id PS_DELETED_ROW_ID(partition, offset), user = who
 * deleted, and deletes the message e->id of the room in the batch's transaction; a
 * message_edited row has that id too, user = the author, target_id = e->id, and sets that
 * message's text in the batch's transaction. Returns as ps_batch_add. */
CHAT_NODISCARD int ps_batch_add_event(struct ps_batch *b,
                                      int32_t partition,
                                      int64_t offset,
                                      const struct chat_stream_ev *e,
                                      const char *raw,
                                      size_t raw_len,
                                      int64_t now_ms);
/* The id of a message_deleted or message_edited row: negative (no message id is), unique per
 * stream position. */
#define PS_DELETED_ROW_ID(partition, offset) (-(((int64_t)(partition) << 40) | (int64_t)(offset)))
/* Adds src's offsets to commit to dst's (the greater per partition); dst's rows and first_ms are
 * unchanged. */
void ps_batch_merge_commits(struct ps_batch *dst, const struct ps_batch *src);
/* Records a consumed record that is not stored (undecodable), so its offset is committed. */
void ps_batch_skip(struct ps_batch *b, int32_t partition, int64_t offset, int64_t now_ms);
/* Forgets rows and commits of the given partitions (revoked while the batch could not be
 * written). Returns the number of rows dropped. */
size_t ps_batch_drop_partitions(struct ps_batch *b, const int32_t *parts, size_t nparts);
void ps_batch_reset(struct ps_batch *b); /* empties the batch, keeps storage */
/* Forgets the rows (written) but keeps the offsets to commit (a held commit); first_ms = 0. */
void ps_batch_clear_rows(struct ps_batch *b);
/* Writes the rows as PostgreSQL array literals, one per column, into cols[PS_NCOLS] (each
 * reset first): "{1,2}", "{\"a\",\"b\\\"c\"}", NULL client_msg_id as NULL.
 * Returns CHAT_OK or CHAT_ETOOBIG (a column buffer's max). */
CHAT_NODISCARD int ps_batch_encode(const struct ps_batch *b, struct chat_buf cols[PS_NCOLS]);
/* Appends one text array element, double-quoted with " and \ escaped, or NULL when s is NULL.
 * Returns CHAT_OK or CHAT_ETOOBIG. */
CHAT_NODISCARD int ps_pg_array_text(struct chat_buf *out, const char *s);

/* ------------------------------------------------------------------------------------------ */
/* Advisory lock keys. The migrations' (CHAT_DB_LOCK_MIGRATE) is chat/db_migrate.h's: the
 * schema migrations are applied by chat_db_migrate (db/, shared with chatctl and chat-api). */
#define PS_LOCK_PARTITION 0x6368617470617274LL /* "chatpart": advisory lock for partition DDL */

/* ------------------------------------------------------------------------------------------ */
/* ps_guard.c: the deadline of a database operation. libpq waits for the server without a limit,
 * and a hung server (SIGSTOP, a frozen VM) is still acknowledged by its kernel, so neither
 * TCP_USER_TIMEOUT nor keepalives end the wait. A thread of its own shuts the armed socket down
 * when the operation passes its deadline, or when a stop gives up on it (drain_ms after the first
 * signal, at once on a second): the blocked libpq call fails and the store reconnects later. */

#define PS_DRAIN_MS                                                              \
    10000 /* on SIGTERM, the last batch is tried this long (then left unwritten) \
           */

struct ps_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; signalled on arm and quit */
    pthread_t thread;
    bool started, quit;
    int fd;              /* socket of the operation in progress; -1: none */
    int64_t deadline_ms; /* monotonic */
    int drain_ms;        /* after a stop an operation ends drain_ms after *stop_at at the latest */
    bool fired;          /* the armed operation was cut */
    atomic_int *stop;    /* borrowed: signals received; NULL: none */
    atomic_llong *stop_at; /* borrowed: monotonic ms of the first signal (0: none yet), stored
                            * before *stop counts it; NULL: no drain, only a second signal cuts */
    int fd_dup;            /* a dup of the watched socket: its number cannot be reused meanwhile */
    atomic_llong *cuts;    /* borrowed counter of cut operations; NULL: none */
};

/* Starts the thread. stop_at (may be NULL): when the first signal came, as the signal handler
 * records it before counting the signal in *stop. Returns CHAT_OK or CHAT_ENOMEM (then arm/disarm
 * do nothing). */
CHAT_NODISCARD int ps_guard_start(
    struct ps_guard *g, atomic_int *stop, atomic_llong *stop_at, int drain_ms, atomic_llong *cuts);
void ps_guard_stop(struct ps_guard *g); /* joins the thread; idempotent */
/* Watches fd until ps_guard_disarm: at deadline_ms (monotonic), or a stop, it is shut down. */
void ps_guard_arm(struct ps_guard *g, int fd, int64_t deadline_ms);
/* Stops watching (before the socket is closed). Returns true when the guard cut the operation. */
bool ps_guard_disarm(struct ps_guard *g);
/* When the first signal came (monotonic ms, *stop_at), or 0. */
int64_t ps_guard_stop_ms(const struct ps_guard *g);

/* ------------------------------------------------------------------------------------------ */
/* ps_store.c: the PostgreSQL side. Owner: the main thread. Blocking libpq calls, but for the
 * batch write, which runs on the non-blocking connection while the consumer goes on
 * (ps_store_write_start / ps_store_write_poll). */

/* A room of the batch being written with its greatest seq and ts (the rooms update). */
struct ps_room_max {
    const char *room; /* borrowed from a row; NULL: free slot */
    int64_t seq, ts;
};

/* The stages of a batch write (ps_store_write_start .. ps_store_write_poll). */
enum ps_write_stage {
    PS_WRITE_IDLE,   /* no write runs */
    PS_WRITE_COPY,   /* BEGIN done; the COPY's data and end queued (maybe not all sent yet) */
    PS_WRITE_ROOMS,  /* the rooms' last_seq update sent */
    PS_WRITE_COMMIT, /* COMMIT sent */
};

struct ps_store {
    const struct ps_cfg *cfg;      /* borrowed */
    struct ps_metrics *m;          /* borrowed */
    PGconn *conn;                  /* owns; NULL while disconnected */
    struct ps_days days;           /* partitions known to exist */
    int64_t ddl_retry_ms;          /* monotonic ms before which the roll-ahead is not tried again */
    struct chat_log_limit ddl_log; /* failed roll-ahead lines */
    struct chat_log_limit conflict_log; /* id conflict lines */
    int64_t last_io_ms;                 /* monotonic ms of the last successful round trip */
    int64_t retry_ms;               /* monotonic ms before which ps_store_tick does not reconnect */
    int backoff_ms;                 /* current reconnect backoff of ps_store_tick */
    struct chat_buf cols[PS_NCOLS]; /* scratch: the insert's array parameters */
    struct chat_buf rcols[3];       /* scratch: the rooms update's (room, seq, ts) arrays */
    struct ps_room_max *rmax;       /* owns, scratch: rmax_cap slots, empty between batches */
    size_t rmax_cap;
    const struct ps_batch *wb;  /* borrowed: the batch being written; NULL: none */
    enum ps_write_stage wstage; /* where the write of wb is */
    int wres;                   /* outcome of the current statement's results so far */
    long long winserted;        /* rows of wb inserted (the rest were stored before) */
    long long wconflicts;       /* rows of wb skipped as id conflicts (not replays) */
    bool recheck_partitions;    /* the write met a missing partition: re-read the catalog */
    struct ps_guard guard;      /* cuts an operation off after cfg->pg_hang_timeout_ms */
    int guard_depth;            /* nested guarded calls; the outermost ends the watch */
    bool guard_armed;           /* the guard watches conn's socket */
};

/* stop (may be NULL): the signal counter, and stop_at (may be NULL) the time of the first signal,
 * read by the guard thread started here (a stop cuts a hung operation off PS_DRAIN_MS after the
 * first signal, at once on the second). */
void ps_store_init(struct ps_store *s,
                   const struct ps_cfg *cfg,
                   struct ps_metrics *m,
                   atomic_int *stop,
                   atomic_llong *stop_at);
void ps_store_fini(struct ps_store *s); /* closes the connection, stops the guard; idempotent */
/* Connects unless connected, sets the session timeouts, applies migrations, loads the existing
 * partitions, tries the roll-ahead (a failure there is logged, not fatal: the tick retries) and
 * prepares the insert. Returns CHAT_OK or
 * CHAT_EIO (logged; the connection is closed so the next call starts over). */
CHAT_NODISCARD int ps_store_connect(struct ps_store *s);
static inline bool ps_store_connected(const struct ps_store *s)
{
    return s->conn != NULL;
}
/* Periodic upkeep (call about once a second): reconnects with backoff while disconnected,
 * checks an idle connection with an empty query every few seconds (so /readyz notices a dead
 * server without traffic) and rolls the partition window ahead. Never blocks longer than one
 * connect attempt (connect_timeout) or one round trip (partition DDL: part_lock_timeout_ms). */
void ps_store_tick(struct ps_store *s, int64_t now_ms);
/* The roll-ahead: ensures the partitions of today (UTC, from now_ms) and the ahead_days after
 * it exist; a no-op (no round trip) when they are known. The DDL runs with SET LOCAL
 * lock_timeout = part_lock_timeout_ms, so a long reader of messages cannot make it (and every
 * session queued behind its ACCESS EXCLUSIVE request) wait longer; after a failure it is not
 * tried again for part_retry_ms. Returns CHAT_OK, CHAT_EAGAIN (failed recently, not tried) or
 * CHAT_EIO (logged rate-limited, counted; connection closed if bad). */
CHAT_NODISCARD int ps_store_ensure_today(struct ps_store *s, int64_t now_ms);
/* Writes the batch in one transaction: COPY (fast path); when a row was stored before (a replay),
 * one INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING id, then, for the
 * conflicting rows only, a look-up of the stored rows' Kafka positions: a different position
 * means two messages share an id (counted in id_conflicts, logged rate-limited; in a savepoint,
 * so a failed look-up does not undo the rows); then the batch's message_deleted rows delete
 * their messages and the batch's rooms get their last_seq and last_message_at (GREATEST; rooms
 * without a row are not touched). Missing day partitions are created first (one round trip,
 * under PS_LOCK_PARTITION, with the DDL lock timeout).
 *
 * Asynchronous, so the next batch is decoded while the database works on this one:
 * ps_store_write_start connects if needed, creates missing partitions, starts the transaction and
 * its COPY (one round trip), then queues the batch's COPY data (rows not yet encoded are encoded
 * first: ps_store_encode) without waiting for the server (the connection is non-blocking until
 * the write ends). b is borrowed until the write ends.
 * Returns CHAT_OK (the write runs: call ps_store_write_poll), CHAT_EAGAIN (a write runs already)
 * or CHAT_EIO (logged; nothing committed; retry later).
 * ps_store_write_poll advances it: sends what libpq still holds, reads the results that arrived,
 * sends the next statement (rooms, COMMIT); the replay and delete paths finish blocking. It waits
 * for the server up to wait_ms (0: not at all; < 0: until the write ends; a signal may end the
 * wait early). Returns CHAT_EAGAIN (still running), CHAT_OK (committed; *inserted = the rows
 * actually inserted, the rest were stored before; s->wconflicts of those are id conflicts, not
 * replays), CHAT_EIO (logged; rolled back, nothing
 * committed; the connection is closed when broken) or CHAT_EINVAL (no write runs).
 * While a write runs the connection serves nothing else (ps_store_apply_reads and
 * ps_store_spam_ban answer CHAT_EAGAIN, ps_store_tick does nothing). */
CHAT_NODISCARD int ps_store_write_start(struct ps_store *s, struct ps_batch *b);
CHAT_NODISCARD int ps_store_write_poll(struct ps_store *s, int wait_ms, long long *inserted);
/* Sends what libpq still holds of the running write (the COPY data), never waiting; errors are
 * left to ps_store_write_poll. */
void ps_store_pump(struct ps_store *s);
static inline bool ps_store_busy(const struct ps_store *s)
{
    return s->wb != NULL;
}
/* Both in one: the write of b to its end. Returns CHAT_OK (committed, or b holds no rows) or
 * CHAT_EIO (logged; nothing committed). */
CHAT_NODISCARD int ps_store_write(struct ps_store *s, struct ps_batch *b, long long *inserted);
/* Appends b's rows not yet encoded (from b->ncopied) to b->copy in COPY's binary format (the
 * header first), so that a due batch is ready before the database is free. Returns CHAT_OK or
 * CHAT_ETOOBIG (b->copy emptied; ps_store_write_start encodes it again and fails the write then).
 */
int ps_store_encode(struct ps_batch *b);
/* Moves read markers forward: for each i, room_members (rooms[i], users[i]) with state active
 * gets last_read_seq = GREATEST(last_read_seq, seqs[i]); the arrays are PostgreSQL array literals
 * of n unique (user, room) pairs. Only while connected (never connects: the batch path does).
 * *updated gets the rows written. Returns CHAT_OK, CHAT_EAGAIN (not connected, or a batch write
 * runs) or CHAT_EIO
 * (logged; the connection closed when broken). */
CHAT_NODISCARD int ps_store_apply_reads(
    struct ps_store *s, const char *users, const char *rooms, const char *seqs, long long *updated);
/* Stores a spam-rule chat ban (a chat.events `sanction` with reason "spam", issue 13) in one
 * statement: a sanctions row (chat_ban, site-wide, created_by NULL, reason 'spam', expires_at
 * until_ms) and its audit_log row (actor NULL, action chat_ban, details {"rule":"spam",
 * "offence":N}); nothing when the same ban (user, expires_at) is stored already (a replay).
 * *stored: 1 when written. Only while connected and no batch write runs. Returns CHAT_OK,
 * CHAT_EAGAIN or CHAT_EIO. */
CHAT_NODISCARD int ps_store_spam_ban(struct ps_store *s,
                                     const char *user,
                                     int64_t until_ms,
                                     int64_t offence,
                                     int64_t ts,
                                     long long *stored);
/* Runs sql (one or more statements) with PQexec. Returns CHAT_OK when the (last) result is
 * COMMAND_OK or TUPLES_OK, else logs "what" with the SQLSTATE and primary message (never the
 * DETAIL, which may quote row data) and returns CHAT_EIO. */
CHAT_NODISCARD int ps_pg_exec(PGconn *conn, const char *what, const char *sql);
/* Logs a failed operation: SQLSTATE and primary message of res, or the connection's error
 * when res is NULL or carries none. */
void ps_pg_log_error(PGconn *conn, const PGresult *res, const char *what);

/* ------------------------------------------------------------------------------------------ */
/* ps_cache.c: the Redis recent cache. Owner: the main thread. Blocking hiredis calls, each within
 * redis_timeout_ms; after a failure no connect is tried before a backoff (100 ms doubling to
 * 5 s), so an outage costs the database path at most one deadline per backoff. */

struct redisContext;

/* What this process knows of one cache key's owner (a room, or a user): for a room, its last
 * seq written here (the next message's "prev"); for both, the entries added to the key since
 * its last trim and when its TTL was last set, so a write trims and re-arms the TTL only when
 * due (ps_cache_write). */
struct ps_key {
    char *name;         /* owns; NULL: free slot */
    int64_t seq;        /* rooms: the last seq written (-1: none) */
    int64_t expire_ms;  /* monotonic ms of the key's last EXPIRE; 0: not sent since connecting */
    uint32_t untrimmed; /* entries added since the last trim (PS_TRIM_NOW: trim at the next) */
};

/* An open-addressing table of ps_key by name: cap slots (a power of 2), at most PS_PREV_MAX
 * names (cleared when full). */
struct ps_keys {
    struct ps_key *v; /* owns */
    size_t n, cap;
};

struct ps_cache {
    const struct ps_cfg *cfg; /* borrowed */
    struct ps_metrics *m;     /* borrowed */
    struct redisContext *c;   /* owns (hiredis); NULL while disconnected */
    int64_t retry_ms;         /* monotonic ms before which no connect is tried */
    int backoff_ms;
    struct chat_log_limit log;
    struct ps_keys rooms;   /* every room written: prev chain, trim and TTL state */
    struct ps_keys users;   /* every user written: trim and TTL state */
    struct ps_keys stale;   /* rooms whose cached copies a batch not written changed (a delete or
                             * an edit): their chat:recent key is dropped before the next write */
    struct chat_buf frames; /* scratch: the batch's frames */
    struct chat_buf resp;   /* scratch: the batch's commands (RESP) */
    size_t ncmds;           /* commands in resp */
    size_t *cuts;           /* owns: resp offsets after every PS_CACHE_CHUNK commands */
    size_t ncuts, cuts_cap;
    void (*pump)(void *); /* called between chunks of the pipeline; NULL: none */
    void *pump_arg;
};

#define PS_PREV_MAX 65536 /* rooms (users) remembered; a table is cleared when it is full */
/* A key may hold up to keep + keep/PS_TRIM_SLACK_DIV entries between trims (ZREMRANGEBYRANK
 * back to keep), and its TTL is re-armed at most every PS_EXPIRE_EVERY_MS while written (the
 * TTL is CHAT_RECENT_TTL_S, a week): most batches write a key with its ZADD alone. */
#define PS_TRIM_SLACK_DIV  8
#define PS_EXPIRE_EVERY_MS (3600 * 1000)
#define PS_TRIM_NOW        UINT32_MAX

void ps_cache_init(struct ps_cache *c, const struct ps_cfg *cfg, struct ps_metrics *m);
void ps_cache_fini(struct ps_cache *c); /* closes the connection, frees the map; idempotent */
/* Forgets every room's last seq (a rebalance: the next message of a room gets no prev). */
void ps_cache_forget(struct ps_cache *c);
/* The prev of a message of room at seq, and remembers seq as the room's last: the room's last
 * seq when it is below seq, else -1 (none, or a replay going back). */
int64_t ps_cache_prev(struct ps_cache *c, const char *room, int64_t seq);
/* After the batch's database commit: computes every row's frame (its Kafka value with seq and
 * prev spliced in; the prev map advances even when Redis is down) and writes them with one
 * pipeline: per room ZREMRANGEBYSCORE (the batch's seqs: a replay replaces, never duplicates),
 * ZADD, and when due ZREMRANGEBYRANK (keep recent_per_room) and EXPIRE; per user ZADD (score
 * ts), and when due ZREMRANGEBYRANK and EXPIRE. A key's first write since connecting trims and
 * sets the TTL. Failures are counted (cache_skipped, cache_errors) and logged rate-limited, never
 * returned; after one, every key is trimmed and re-armed again at its next write. */
void ps_cache_write(struct ps_cache *c, const struct ps_batch *b);
/* fn(arg) runs between chunks of PS_CACHE_CHUNK commands of a cache write (their answers read):
 * the consumer uses it to keep the database's COPY data flowing meanwhile (ps_store_pump). */
void ps_cache_set_pump(struct ps_cache *c, void (*fn)(void *), void *arg);
#define PS_CACHE_CHUNK 512
/* ------------------------------------------------------------------------------------------ */
/* ps_events.c: the chat.events consumer (read markers). Owner: the main thread. */

struct ps_read {
    int64_t user;
    char room[CHAT_ROOM_MAX + 1];
    int64_t seq;
};

/* A spam-rule chat ban read from chat.events, to store with the held reads. */
struct ps_spam_ban {
    char user[CHAT_AUTH_FIELD_MAX + 1];
    int64_t until, offence, ts;
};

struct ps_events {
    rd_kafka_t *rk;        /* owns; NULL before ps_events_start */
    struct ps_read *reads; /* owns: coalesced per (user, room), n of cap */
    size_t n, cap;
    struct ps_spam_ban *bans; /* owns: nbans of bans_cap, in the order read */
    size_t nbans, bans_cap;
    struct ps_commit *commits; /* owns: next offset per partition of what reads hold */
    size_t ncommits, commits_cap;
    int64_t first_ms; /* monotonic ms of the oldest record not yet written; 0: none */
    int64_t retry_ms; /* monotonic ms before which a failed write is not retried */
    int backoff_ms;
};

/* ------------------------------------------------------------------------------------------ */
/* ps_consume.c: the consumer loop. */

struct ps {
    const struct ps_cfg *cfg; /* borrowed; immutable */
    struct ps_metrics m;
    struct ps_store store;
    /* Three batches, so the next one is decoded while the database writes this one: */
    struct ps_batch batch;    /* being built from the records consumed */
    struct ps_batch wbatch;   /* being written (in the store while writing), or failed: retried */
    struct ps_batch done;     /* written (database committed): cache, then offsets to commit */
    struct ps_batch held;     /* offsets only: of written rows, commit held (commit_interval_ms) */
    bool writing;             /* wbatch's write runs in the store */
    long long done_inserted;  /* rows of done actually inserted */
    long long done_conflicts; /* rows of done skipped as id conflicts */
    int64_t write_t0_us;      /* monotonic us: the write of wbatch began */
    unsigned since_check;     /* records consumed since the running write was last looked at */
    struct ps_cache cache;
    struct ps_events events;
    rd_kafka_t *rk;             /* owns; NULL before ps_consumer_start */
    bool paused;                /* assignment paused while the batch cannot be written */
    atomic_bool fatal;          /* set by the Kafka error callback: stop, exit 1 */
    atomic_int *stop;           /* borrowed: signals received (1: drain, 2+: hurry) */
    int64_t drain_until_ms;     /* monotonic ms: stop retrying the last batch */
    int64_t next_commit_ms;     /* monotonic ms: held offsets are committed from then on */
    int64_t undecodable_log_ms; /* rate limit of undecodable-record log lines */
    int undecodable_logged;
    struct chat_kafka_watch *watch;  /* owns: the partition count of chat.messages */
    atomic_int parts_was, parts_now; /* {watch thread -> main}: a changed count; 0: none */
    bool halted;                     /* it changed: nothing is written until restart */
};

/* Creates the consumer, subscribes to the messages topic and starts the partition-count watch.
 * Returns CHAT_OK, CHAT_EINVAL (bad Kafka settings, logged) or CHAT_EIO (no watch thread). */
CHAT_NODISCARD int ps_consumer_start(struct ps *ps);
/* Runs until *ps->stop: consume, batch, write, commit. Then flushes the last batch (giving up
 * after a drain deadline if PostgreSQL stays down: those offsets stay uncommitted, so nothing is
 * lost) and closes the consumer. Returns CHAT_OK, or CHAT_EIO after a fatal Kafka error. */
CHAT_NODISCARD int ps_run(struct ps *ps);
/* Destroys the consumer (after ps_run closed it). NULL-safe on ps->rk. */
void ps_consumer_free(struct ps *ps);

/* ps_events.c. start: creates the chat.events consumer and subscribes (CHAT_OK or CHAT_EINVAL,
 * logged). service: polls what is there (never waits), coalesces `read` events and, once
 * batch_ms old or batch_max big, writes them (ps_store_apply_reads) and commits their offsets;
 * while the database is down or failing they wait (backoff) and no more are read. stop: one
 * last write, then closes the consumer (bounded) and frees everything; idempotent. */
CHAT_NODISCARD int ps_events_start(struct ps *ps);
void ps_events_service(struct ps *ps);
void ps_events_stop(struct ps *ps);

#endif
