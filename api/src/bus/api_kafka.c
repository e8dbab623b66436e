/* api_kafka.c - the producer of chat-api (api_kafka.h). message.timeout.ms is
 * CHAT_PRODUCE_TIMEOUT_MS: every record is acknowledged or failed within it, so a wait is
 * bounded without a timer of its own. */
#include "api_kafka.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <pthread.h>

#include "chat/kafka.h"
#include "chat/log.h"
#include "chat/mem.h"

#include "api.h"

struct api_kafka {
    struct api *a;
    rd_kafka_t *rk;
    struct chat_kafka_watch *watch; /* the partition count of chat.messages */
    atomic_bool parts_changed;
    atomic_bool fatal; /* a fatal producer error: restart the process */
    pthread_t poller;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a delivery report came in */
    bool stop;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct api_kafka *k = opaque;
    struct api_delivery *d = m->_private;

    (void)rk;
    if (!d)
        return;
    pthread_mutex_lock(&k->mu);
    d->err = m->err;
    d->offset = m->offset;
    d->maybe_stored = m->err && rd_kafka_message_status(m) != RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
    d->done = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

/* The watch thread: the count of chat.messages changed (logged once, counted). */
static void on_parts_changed(void *ud, int was, int now)
{
    struct api_kafka *k = ud;

    if (now == 0 || atomic_exchange(&k->parts_changed, true))
        return;
    chat_metric_add(&k->a->m.partition_changes, 1);
    chat_log(CHAT_LOG_ERROR,
             "kafka: topic %s has %d partitions, this process started with %d: REST sends are "
             "refused (unavailable) until restarted; the partition count of chat.messages is "
             "fixed; restore it or recreate the topic and restart",
             k->a->cfg->kafka.topic_messages, now, was);
}

/* librdkafka's errors: a fatal one (the idempotent producer's state is lost) ends this
 * producer for good: the process reports itself not alive (/healthz 503) so that it is
 * restarted, and its relay lets another replica take over. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct api_kafka *k = opaque;
    char why[256];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        (void)rd_kafka_fatal_error(rk, why, sizeof(why));
        if (!atomic_exchange(&k->fatal, true))
            chat_log(CHAT_LOG_ERROR, "kafka: fatal producer error: %s: not alive any more", why);
        return;
    }
    chat_log(CHAT_LOG_DEBUG, "kafka: %s: %s", rd_kafka_err2str((rd_kafka_resp_err_t)err), reason);
}

bool api_kafka_fatal(struct api_kafka *k)
{
    return atomic_load(&k->fatal);
}

static void *poll_main(void *arg)
{
    struct api_kafka *k = arg;

    for (;;) {
        bool stop;

        pthread_mutex_lock(&k->mu);
        stop = k->stop;
        pthread_mutex_unlock(&k->mu);
        if (stop)
            break;
        rd_kafka_poll(k->rk, 100);
    }
    return NULL;
}

int api_kafka_start(struct api *a, struct api_kafka **out)
{
    const struct api_cfg *cfg = a->cfg;
    struct api_kafka *k = chat_xcalloc(1, sizeof(*k));
    char err[512], num[16];
    rd_kafka_conf_t *conf;

    *out = NULL;
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    conf = chat_kafka_conf_new(&cfg->kafka, CHAT_KAFKA_PRODUCER, NULL, err, sizeof(err));
    snprintf(num, sizeof(num), "%d", cfg->produce_timeout_ms);
    if (!conf ||
        chat_kafka_conf_set(conf, "client.id", cfg->node_name, err, sizeof(err)) != CHAT_OK ||
        chat_kafka_conf_set(conf, "message.timeout.ms", num, err, sizeof(err)) != CHAT_OK) {
        chat_log(CHAT_LOG_ERROR, "kafka: producer config: %s", err);
        if (conf)
            rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, k);
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!k->rk) {
        chat_log(CHAT_LOG_ERROR, "kafka: cannot create the producer: %s", err);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new took it only on success */
        goto fail;
    }
    if (pthread_create(&k->poller, NULL, poll_main, k) != 0) {
        rd_kafka_destroy(k->rk);
        goto fail;
    }
    k->a = a;
    if (chat_kafka_watch_start(k->rk, cfg->kafka.topic_messages, 0, cfg->partition_check_ms,
                               on_parts_changed, k, &k->watch) != CHAT_OK)
        chat_log(CHAT_LOG_WARN, "kafka: no partition-count watch of %s", cfg->kafka.topic_messages);
    *out = k;
    return CHAT_OK;
fail:
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    chat_free(k);
    return CHAT_EIO;
}

bool api_kafka_partitions_changed(struct api_kafka *k)
{
    return atomic_load(&k->parts_changed);
}

void api_kafka_stop(struct api_kafka *k, int timeout_ms)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->poller, NULL);
    chat_kafka_watch_free(k->watch);
    if (rd_kafka_flush(k->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        chat_log(CHAT_LOG_WARN, "kafka: %d records not acknowledged at exit",
                 rd_kafka_outq_len(k->rk));
    rd_kafka_destroy(k->rk);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    chat_free(k);
}

rd_kafka_resp_err_t api_kafka_produce(struct api_kafka *k,
                                      const char *topic,
                                      const char *key,
                                      char *value,
                                      size_t len,
                                      const char *type,
                                      int64_t ts_ms,
                                      struct api_delivery *d)
{
    memset(d, 0, sizeof(*d));
    return rd_kafka_producev(k->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                             RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_HEADER("type", type, (ssize_t)strlen(type)),
                             RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
}

void api_kafka_wait(struct api_kafka *k, struct api_delivery *d, size_t n)
{
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < n; i++)
        while (!d[i].done)
            pthread_cond_wait(&k->cv, &k->mu);
    pthread_mutex_unlock(&k->mu);
}
