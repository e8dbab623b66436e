#include "chat/kafka.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "chat/log.h"
#include "chat/mem.h"

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int lvl = level <= 3   ? CHAT_LOG_ERROR
              : level <= 4 ? CHAT_LOG_WARN
              : level <= 6 ? CHAT_LOG_INFO
                           : CHAT_LOG_DEBUG;
    chat_log(lvl, "kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int chat_kafka_conf_set(
    rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr, size_t errlen)
{
    if (rd_kafka_conf_set(conf, k, v, errstr, errlen) != RD_KAFKA_CONF_OK)
        return CHAT_EINVAL;
    return CHAT_OK;
}

int chat_kafka_conf_extra(rd_kafka_conf_t *conf, const char *extra, char *errstr, size_t errlen)
{
    char *copy, *save = NULL, *tok;
    int rc = CHAT_OK;

    if (!extra || !*extra)
        return CHAT_OK;
    copy = chat_xstrdup(extra);
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(errstr, errlen, "CHAT_KAFKA_EXTRA: '%s' is not key=value", tok);
            rc = CHAT_EINVAL;
            break;
        }
        *eq = '\0';
        rc = chat_kafka_conf_set(conf, tok, eq + 1, errstr, errlen);
        if (rc != CHAT_OK)
            break;
    }
    chat_free(copy);
    return rc;
}

rd_kafka_conf_t *chat_kafka_conf_new(const struct chat_kafka_cfg *kc,
                                     enum chat_kafka_role role,
                                     const char *group_id,
                                     char *errstr,
                                     size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];
    int rc;

    rd_kafka_conf_set_log_cb(conf, log_cb);
    rc = chat_kafka_conf_set(conf, "bootstrap.servers", kc->brokers, errstr, errlen);
    /* After a broker outage, reconnect attempts back off from 100 ms up to 1 s instead of
     * librdkafka's 10 s, so a returning broker is in use again within about a second. */
    rc |= chat_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", errstr, errlen);
    if (role == CHAT_KAFKA_PRODUCER) {
        snprintf(num, sizeof(num), "%d", kc->linger_ms);
        rc |= chat_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "acks", "all", errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "linger.ms", num, errstr, errlen);
        /* Not compressed: chat messages are small and a 1 ms linger gathers one or two per
         * partition batch, so lz4 saved nothing and cost the broker and the gateways 3-5 % of
         * their CPU per message (docs/BENCHMARKS.md, "Broker requests per message").
         * CHAT_KAFKA_EXTRA may set compression.type. */
        rc |= chat_kafka_conf_set(conf, "compression.type", "none", errstr, errlen);
    } else {
        snprintf(num, sizeof(num), "%d", kc->fetch_wait_ms);
        rc |= chat_kafka_conf_set(conf, "fetch.wait.max.ms", num, errstr, errlen);
        snprintf(num, sizeof(num), "%d", kc->fetch_min_bytes);
        rc |= chat_kafka_conf_set(conf, "fetch.min.bytes", num, errstr, errlen);
        snprintf(num, sizeof(num), "%d", kc->session_timeout_ms);
        rc |= chat_kafka_conf_set(conf, "session.timeout.ms", num, errstr, errlen);
        snprintf(num, sizeof(num), "%d", kc->heartbeat_ms);
        rc |= chat_kafka_conf_set(conf, "heartbeat.interval.ms", num, errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "group.id", group_id ? group_id : "chat-unused", errstr,
                                  errlen);
    }
    if (rc == CHAT_OK)
        rc = chat_kafka_conf_extra(conf, kc->extra, errstr, errlen);
    if (rc != CHAT_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int chat_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err;
    int rc = CHAT_EIO;

    if (!rkt)
        return CHAT_EIO;
    err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && !md->topics[0].err &&
        md->topics[0].partition_cnt > 0) {
        *count = md->topics[0].partition_cnt;
        rc = CHAT_OK;
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

/* ---- partition-count watch ---- */

struct chat_kafka_watch {
    rd_kafka_t *rk;  /* borrowed */
    char *topic;     /* owns */
    int interval_ms; /* immutable */
    int expected;    /* {lock}: the count to keep; 0 until the first one is read */
    bool stop;       /* {lock} */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; signalled by stop */
    chat_kafka_watch_fn *fn;
    void *ud;
    pthread_t thread;
};

static void *watch_main(void *arg)
{
    struct chat_kafka_watch *w = arg;
    int timeout_ms =
        w->interval_ms < CHAT_KAFKA_WATCH_TIMEOUT_MS ? w->interval_ms : CHAT_KAFKA_WATCH_TIMEOUT_MS;
    struct timespec at;
    int n = 0;

    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        pthread_mutex_unlock(&w->lock);
        /* blocking, on this thread only: at most timeout_ms */
        bool got = chat_kafka_partition_count(w->rk, w->topic, timeout_ms, &n) == CHAT_OK;
        pthread_mutex_lock(&w->lock);
        if (w->stop)
            break;
        if (got && w->expected == 0) {
            w->expected = n;
            chat_log(CHAT_LOG_INFO, "kafka: %s has %d partitions (checked every %d ms)", w->topic,
                     n, w->interval_ms);
        } else if (got && n != w->expected) {
            w->fn(w->ud, w->expected, n); /* under the lock: stop() waits for it */
            break;                        /* told once; the state is final until restart */
        }
        clock_gettime(CLOCK_MONOTONIC, &at);
        at.tv_sec += w->interval_ms / 1000;
        at.tv_nsec += (long)(w->interval_ms % 1000) * 1000000L;
        if (at.tv_nsec >= 1000000000L) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000L;
        }
        while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &at) == 0) {
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int chat_kafka_watch_start(rd_kafka_t *rk,
                           const char *topic,
                           int expected,
                           int interval_ms,
                           chat_kafka_watch_fn *fn,
                           void *ud,
                           struct chat_kafka_watch **out)
{
    struct chat_kafka_watch *w;
    pthread_condattr_t ca;
    int err;

    *out = NULL;
    if (!rk || !topic || !fn || interval_ms <= 0 || expected < 0)
        return CHAT_EINVAL;
    w = chat_xcalloc(1, sizeof(*w));
    w->rk = rk;
    w->topic = chat_xstrdup(topic);
    w->interval_ms = interval_ms;
    w->expected = expected;
    w->fn = fn;
    w->ud = ud;
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    err = pthread_create(&w->thread, NULL, watch_main, w);
    if (err != 0) {
        chat_log(CHAT_LOG_ERROR, "kafka: partition watch thread: %s", strerror(err));
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        chat_free(w->topic);
        chat_free(w);
        return CHAT_EIO;
    }
    *out = w;
    return CHAT_OK;
}

void chat_kafka_watch_stop(struct chat_kafka_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void chat_kafka_watch_free(struct chat_kafka_watch *w)
{
    if (!w)
        return;
    chat_kafka_watch_stop(w);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    chat_free(w->topic);
    chat_free(w);
}
