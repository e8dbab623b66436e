/* api_ids.h - message ids for REST send: chat-api holds a node number like every gateway (the
 * lease of chat/lease.h, renewed by a thread of its own with its own Redis connection) and makes
 * ids under a mutex from any request thread. Without a valid lease there is no id (the send is
 * answered 503 overloaded with Retry-After). */
#ifndef API_IDS_H
#define API_IDS_H

#include <stdbool.h>
#include <stdint.h>

struct api;

int api_ids_start(struct api *a);
/* Stops the lease thread and gives the number back (a clean stop: its last id is recorded). */
void api_ids_stop(struct api *a);
/* A new id and its time (ms); false when no lease is held. Any thread. */
bool api_ids_next(struct api *a, uint64_t *id, int64_t *ts);
/* The node number held, -1 when none (for /readyz). */
int api_ids_node(struct api *a);

#endif
