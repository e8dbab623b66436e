/* ps_conf.c - the persister's consumers' librdkafka configuration (chat.messages, chat.events).
 *
 * Both start a new group at the earliest offset: the persister must not miss what was produced
 * before it first joined. The chat.messages consumer (batch_fetch) writes at most every
 * CHAT_BATCH_MS anyway, so its fetches need not return at each new record as the gateways' must: a
 * fetch waits until fetch_min_bytes are there, at most batch_ms. Under live traffic the broker then
 * serves it about 1000 / batch_ms fetches a second instead of one per produce request (issue 12
 * goal 1, docs/BENCHMARKS.md "Broker requests per message"); a drain's fetches are full at once. */
#include <stdio.h>

#include "ps.h"

rd_kafka_conf_t *ps_consumer_conf_new(
    const struct ps_cfg *cfg, const char *group, bool batch_fetch, char *errstr, size_t errlen)
{
    rd_kafka_conf_t *conf;
    char min[32], wait[32];

    conf = chat_kafka_conf_new(&cfg->kafka, CHAT_KAFKA_CONSUMER, group, errstr, errlen);
    if (!conf)
        return NULL;
    snprintf(min, sizeof(min), "%d", cfg->fetch_min_bytes);
    snprintf(wait, sizeof(wait), "%d", cfg->batch_ms);
    /* CHAT_KAFKA_EXTRA, applied again last, may still say otherwise */
    if (chat_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, errlen) != CHAT_OK ||
        (batch_fetch &&
         (chat_kafka_conf_set(conf, "fetch.min.bytes", min, errstr, errlen) != CHAT_OK ||
          chat_kafka_conf_set(conf, "fetch.wait.max.ms", wait, errstr, errlen) != CHAT_OK)) ||
        chat_kafka_conf_extra(conf, cfg->kafka.extra, errstr, errlen) != CHAT_OK ||
        /* The chat.events consumer keeps the eager protocol whatever CHAT_KAFKA_EXTRA says:
         * librdkafka before 2.3 aborts when a cooperative-sticky consumer is closed before its
         * first assignment (confluentinc/librdkafka#4312; Debian 12 has 2.0.2), which a replica
         * stopped early, in a group whose other member holds every partition, meets. Its small
         * stream gains nothing from incremental rebalances. */
        (!batch_fetch && chat_kafka_conf_set(conf, "partition.assignment.strategy",
                                             "range,roundrobin", errstr, errlen) != CHAT_OK)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}
