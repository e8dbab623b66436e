/* gw_kafka.h - the gateway's Kafka side on the event loop: the producer (delivery reports on
 * the loop), the assign()-only consumer of chat.messages, chat.presence and chat.events with
 * the fan-out of what it reads, and the partition-count watch (a thread of libchat that wakes
 * the loop through a uv_async). Thread-safety: event-loop thread only, except where
 * gw_kafka.c says otherwise (the watch callback). */
#ifndef GW_KAFKA_H
#define GW_KAFKA_H

struct gw;

/* Creates the clients, assigns every partition (blocking metadata requests: start-up only) and
 * starts polling on the loop. Returns CHAT_OK, CHAT_EINVAL (configuration) or CHAT_EIO. */
int gw_kafka_start(struct gw *gw);
/* Stops the loop side (handles closed asynchronously by uv) and the watch thread. */
void gw_kafka_stop(struct gw *gw);
/* Until chat.events has been read up to where it ended at start-up: compares the consumer's
 * position with that end (the 1 s tick; records read count at once too). */
void gw_kafka_events_poll(struct gw *gw);
/* Destroys the clients after the loop has stopped (may block briefly: not on the loop). */
void gw_kafka_destroy(struct gw *gw);

#endif
