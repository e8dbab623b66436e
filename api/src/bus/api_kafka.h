/* api_kafka.h - chat-api's Kafka producer (idempotent, acks=all) and the wait for a record's
 * acknowledgement. One producer per process, used by any thread; a poll thread runs the
 * delivery reports, which wake the threads waiting for them. */
#ifndef API_KAFKA_H
#define API_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

struct api;
struct api_kafka;

/* One record's outcome, filled by the delivery report. */
struct api_delivery {
    bool done;
    rd_kafka_resp_err_t err;
    int64_t offset;    /* acknowledged: the record's offset (a message's seq) */
    bool maybe_stored; /* failed, but the broker may have written it (timeout, not refusal) */
};

/* Also starts the watch of the partition count of chat.messages (CHAT_PARTITION_CHECK_MS): a
 * room's partition, and so its seq, follow from it. */
int api_kafka_start(struct api *a, struct api_kafka **out);
/* True once the partition count of chat.messages differs from the one at start: REST send is
 * refused (unavailable) until a restart, like the gateways. */
bool api_kafka_partitions_changed(struct api_kafka *k);
/* True after a fatal producer error: nothing can be produced any more (restart). */
bool api_kafka_fatal(struct api_kafka *k);
/* Waits up to timeout_ms for what is in flight, then stops the poll thread. */
void api_kafka_stop(struct api_kafka *k, int timeout_ms);

/* Queues one record (value copied); d is filled when it is acknowledged or failed and must
 * stay valid until then (api_kafka_wait). Returns librdkafka's error (QUEUE_FULL: try later). */
rd_kafka_resp_err_t api_kafka_produce(struct api_kafka *k,
                                      const char *topic,
                                      const char *key,
                                      char *value,
                                      size_t len,
                                      const char *type,
                                      int64_t ts_ms,
                                      struct api_delivery *d);
/* Waits until every one of the n deliveries is done: each within CHAT_PRODUCE_TIMEOUT_MS while
 * the producer runs (message.timeout.ms). Callers are stopped before the producer
 * (api_kafka_stop), so d is never written after this returns. */
void api_kafka_wait(struct api_kafka *k, struct api_delivery *d, size_t n);

#endif
