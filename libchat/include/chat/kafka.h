/* chat/kafka.h - shared Kafka settings and librdkafka configuration for every service.
 *
 * Every service embeds a struct chat_kafka_cfg in its config struct and lists
 * CHAT_KAFKA_CFG_OPTS(type, member) in its config table, so the same CHAT_KAFKA_* variables mean
 * the same thing everywhere (one exception: the persister's chat.messages consumer sets its own
 * fetch.min.bytes and fetch.wait.max.ms, persister/src/ps_conf.c). Defaults suit a real broker
 * (measured against the local one: docs/BENCHMARKS.md, "Kafka client settings"); the local cluster
 * lowers only the group timeouts (faster failover in tests), and its mock option also
 * fetch.wait.max.ms and linger.ms. Thread-safety: chat_kafka_conf_new() is reentrant; the log
 * callback is thread-safe; a partition watch (below) runs its own thread. */
#ifndef CHAT_KAFKA_H
#define CHAT_KAFKA_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "chat/config.h"
#include "chat/err.h"

struct chat_kafka_cfg {
    char *brokers;          /* bootstrap.servers */
    char *topic_messages;   /* chat.messages: key = room, value = message event */
    char *topic_events;     /* chat.events: control events */
    char *topic_presence;   /* chat.presence: counts, key = room ("*" for the total) */
    char *topic_rooms;      /* chat.rooms: a room's settings, key = room (compacted) */
    char *topic_sanctions;  /* chat.sanctions: mutes and bans, key = "USER ROOM KIND" (compacted) */
    int linger_ms;          /* producer linger.ms */
    int fetch_wait_ms;      /* consumer fetch.wait.max.ms */
    int fetch_min_bytes;    /* consumer fetch.min.bytes */
    int session_timeout_ms; /* group session.timeout.ms */
    int heartbeat_ms;       /* group heartbeat.interval.ms */
    char *extra;            /* "key=value,key=value" passed to librdkafka as is */
};

#define CHAT_KAFKA_CFG_OPTS(T, m)                                                        \
    {"kafka-brokers",                                                                    \
     "CHAT_KAFKA_BROKERS",                                                               \
     CHAT_CFG_STR,                                                                       \
     0,                                                                                  \
     0,                                                                                  \
     "",                                                                                 \
     offsetof(T, m.brokers),                                                             \
     CHAT_CFG_REQUIRED,                                                                  \
     "Kafka bootstrap servers (host:port,...)"},                                         \
        {"topic-messages",                                                               \
         "CHAT_TOPIC_MESSAGES",                                                          \
         CHAT_CFG_STR,                                                                   \
         0,                                                                              \
         0,                                                                              \
         "chat.messages",                                                                \
         offsetof(T, m.topic_messages),                                                  \
         CHAT_CFG_REQUIRED,                                                              \
         "topic of chat messages (key = room)"},                                         \
        {"topic-events",                                                                 \
         "CHAT_TOPIC_EVENTS",                                                            \
         CHAT_CFG_STR,                                                                   \
         0,                                                                              \
         0,                                                                              \
         "chat.events",                                                                  \
         offsetof(T, m.topic_events),                                                    \
         CHAT_CFG_REQUIRED,                                                              \
         "topic of control events"},                                                     \
        {"topic-presence",                                                               \
         "CHAT_TOPIC_PRESENCE",                                                          \
         CHAT_CFG_STR,                                                                   \
         0,                                                                              \
         0,                                                                              \
         "chat.presence",                                                                \
         offsetof(T, m.topic_presence),                                                  \
         CHAT_CFG_REQUIRED,                                                              \
         "topic of presence counts"},                                                    \
        {"topic-rooms",                                                                  \
         "CHAT_TOPIC_ROOMS",                                                             \
         CHAT_CFG_STR,                                                                   \
         0,                                                                              \
         0,                                                                              \
         "chat.rooms",                                                                   \
         offsetof(T, m.topic_rooms),                                                     \
         CHAT_CFG_REQUIRED,                                                              \
         "topic of room settings (compacted, key = room)"},                              \
        {"topic-sanctions",                                                              \
         "CHAT_TOPIC_SANCTIONS",                                                         \
         CHAT_CFG_STR,                                                                   \
         0,                                                                              \
         0,                                                                              \
         "chat.sanctions",                                                               \
         offsetof(T, m.topic_sanctions),                                                 \
         CHAT_CFG_REQUIRED,                                                              \
         "topic of mutes and bans (compacted, key = \"USER ROOM KIND\")"},               \
        {"kafka-linger-ms",                                                              \
         "CHAT_KAFKA_LINGER_MS",                                                         \
         CHAT_CFG_INT,                                                                   \
         0,                                                                              \
         1000,                                                                           \
         "1",                                                                            \
         offsetof(T, m.linger_ms),                                                       \
         0,                                                                              \
         "producer linger.ms"},                                                          \
        {"kafka-fetch-wait-ms",                                                          \
         "CHAT_KAFKA_FETCH_WAIT_MS",                                                     \
         CHAT_CFG_INT,                                                                   \
         1,                                                                              \
         10000,                                                                          \
         "100",                                                                          \
         offsetof(T, m.fetch_wait_ms),                                                   \
         0,                                                                              \
         "consumer fetch.wait.max.ms (longest a fetch waits for data)"},                 \
        {"kafka-fetch-min-bytes",                                                        \
         "CHAT_KAFKA_FETCH_MIN_BYTES",                                                   \
         CHAT_CFG_INT,                                                                   \
         1,                                                                              \
         52428800,                                                                       \
         "1",                                                                            \
         offsetof(T, m.fetch_min_bytes),                                                 \
         0,                                                                              \
         "consumer fetch.min.bytes (waited for, at most the fetch wait)"},               \
        {"kafka-session-timeout-ms",                                                     \
         "CHAT_KAFKA_SESSION_TIMEOUT_MS",                                                \
         CHAT_CFG_INT,                                                                   \
         1000,                                                                           \
         300000,                                                                         \
         "10000",                                                                        \
         offsetof(T, m.session_timeout_ms),                                              \
         0,                                                                              \
         "consumer group session.timeout.ms"},                                           \
        {"kafka-heartbeat-ms",                                                           \
         "CHAT_KAFKA_HEARTBEAT_MS",                                                      \
         CHAT_CFG_INT,                                                                   \
         100,                                                                            \
         60000,                                                                          \
         "1000",                                                                         \
         offsetof(T, m.heartbeat_ms),                                                    \
         0,                                                                              \
         "consumer group heartbeat.interval.ms"},                                        \
    {                                                                                    \
        "kafka-extra", "CHAT_KAFKA_EXTRA", CHAT_CFG_STR, 0, 0, "", offsetof(T, m.extra), \
            CHAT_CFG_SECRET, "extra librdkafka settings: key=value,key=value"            \
    }

enum chat_kafka_role {
    CHAT_KAFKA_PRODUCER,
    CHAT_KAFKA_CONSUMER,
};

/* Returns a new rd_kafka_conf_t (free with rd_kafka_conf_destroy, or hand to rd_kafka_new) with
 * bootstrap servers, the role's settings, the extra settings and a log callback into chat_log.
 * group_id: consumer group (NULL for producers). On error returns NULL and writes errstr. */
rd_kafka_conf_t *chat_kafka_conf_new(const struct chat_kafka_cfg *kc,
                                     enum chat_kafka_role role,
                                     const char *group_id,
                                     char *errstr,
                                     size_t errlen);

/* Sets one librdkafka property; returns CHAT_OK or CHAT_EINVAL (errstr written). */
CHAT_NODISCARD int chat_kafka_conf_set(
    rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr, size_t errlen);

/* Applies CHAT_KAFKA_EXTRA ("key=value,key=value"). chat_kafka_conf_new() applies it last; a
 * service that sets more of its own afterwards applies it again, so the operator's word stays
 * last. CHAT_EINVAL with errstr on a malformed pair or a value librdkafka refuses. */
CHAT_NODISCARD int
chat_kafka_conf_extra(rd_kafka_conf_t *conf, const char *extra, char *errstr, size_t errlen);

/* Blocking (one metadata request of at most timeout_ms; never on an event loop): the partition
 * count of topic as the cluster reports it now. rk: any client handle. Returns CHAT_OK with
 * *count > 0, or CHAT_EIO (no answer in time, unknown topic; nothing logged). */
CHAT_NODISCARD int
chat_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count);

/* ---- partition-count watch ----
 * The partition count of chat.messages is part of the stream contract (a room's partition and
 * so its seq follow from it), and a client with assign() never sees new partitions. A watch is
 * a thread that re-reads the count with chat_kafka_partition_count() at once and then every
 * interval_ms, and reports the first difference from the count it started with.
 * Thread-safety: start, stop and free from one owner thread; fn runs on the watch thread. */

#define CHAT_KAFKA_WATCH_TIMEOUT_MS 5000 /* one metadata request, at most (and interval_ms) */

struct chat_kafka_watch;
/* Called once, on the watch thread with the watch's lock held, when the count (was) became
 * now. Must not block and must not call chat_kafka_watch_*(): set a flag, wake a loop. */
typedef void chat_kafka_watch_fn(void *ud, int was, int now);

/* Starts a watch of topic on rk. expected: the count the caller works with, or 0 to take the
 * first count read (logged at info). rk and ud are borrowed: valid until chat_kafka_watch_free;
 * topic is copied. The thread ends after it called fn. On CHAT_OK *out is a new watch (free
 * with chat_kafka_watch_free); returns CHAT_EINVAL (bad arguments) or CHAT_EIO (no thread,
 * logged), fn never called then. */
CHAT_NODISCARD int chat_kafka_watch_start(rd_kafka_t *rk,
                                          const char *topic,
                                          int expected,
                                          int interval_ms,
                                          chat_kafka_watch_fn *fn,
                                          void *ud,
                                          struct chat_kafka_watch **out);
/* Non-blocking (waits only for a running fn): once it returns fn is not running and is never
 * called again. NULL-safe; may be called more than once. */
void chat_kafka_watch_stop(struct chat_kafka_watch *w);
/* Stops the watch, joins its thread (blocks up to CHAT_KAFKA_WATCH_TIMEOUT_MS while a request
 * is out: not on an event loop) and frees it. NULL-safe. Call before rk is destroyed. */
void chat_kafka_watch_free(struct chat_kafka_watch *w);

#endif
