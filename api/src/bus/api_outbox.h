/* api_outbox.h - the transactional outbox of chat.events and chat.rooms. A handler that changes something the
 * gateways must learn (sessions revoked, a nickname changed) adds the event row in the same
 * transaction (api_outbox_add); the relay thread produces committed rows to chat.events in id
 * order and deletes each once Kafka acknowledged it. One relay in the cluster works at a time
 * (a session advisory lock); a commit wakes it through LISTEN/NOTIFY (migration 0004), else it
 * looks every CHAT_OUTBOX_POLL_MS. At least once: a row produced but not yet deleted when the
 * relay dies is produced again (the gateways apply events idempotently). While a named query is
 * refused by the schema (readiness), the relay also prepares the queries again on its connection
 * every CHAT_OUTBOX_POLL_MS, so /readyz heals without a request once the schema is fixed. */
#ifndef API_OUTBOX_H
#define API_OUTBOX_H

#include <stdbool.h>

#include "chat/buf.h"

struct api;
struct api_db;

/* Inside the caller's transaction: queues a record for topic "events" (chat.events) or "rooms"
 * (chat.rooms); v NULL: a tombstone (a deleted room). */
bool api_outbox_put(struct api_db *db,
                    const char *topic,
                    const char *key,
                    const char *type,
                    const struct chat_buf *v);
/* Inside the caller's transaction: queues a chat.events record (payload: the JSON value). */
bool api_outbox_add(struct api_db *db, const char *key, const char *type, const struct chat_buf *v);

int api_outbox_start(struct api *a);
void api_outbox_stop(struct api *a);

#endif
