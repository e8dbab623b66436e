/* chat/id.h - 64-bit, time-ordered message ids, unique across the cluster.
 *
 * Layout (most significant first): 1 bit zero | 41 bits ms since CHAT_ID_EPOCH_MS |
 * 10 bits node id | 12 bits per-ms sequence. Up to 4096 ids per ms per node; when a
 * millisecond's sequence is used up, or the clock steps back, the generator borrows from the
 * next millisecond (ids stay strictly increasing per node). The node id is leased from Redis
 * by the gateway so no two live nodes share one.
 * Thread-safety: a generator belongs to one thread. */
#ifndef CHAT_ID_H
#define CHAT_ID_H

#include <stdint.h>

#define CHAT_ID_EPOCH_MS  1704067200000LL /* 2024-01-01T00:00:00Z */
#define CHAT_ID_NODE_BITS 10
#define CHAT_ID_SEQ_BITS  12
#define CHAT_ID_MAX_NODE  ((1u << CHAT_ID_NODE_BITS) - 1)

struct chat_idgen {
    uint64_t node;   /* 0..CHAT_ID_MAX_NODE */
    int64_t last_ms; /* ms (since CHAT_ID_EPOCH_MS) of the last id */
    uint32_t seq;    /* sequence within last_ms */
};

void chat_idgen_init(struct chat_idgen *g, unsigned node);
/* Every later id is in a millisecond after unix_ms: a node number taken over from an earlier
 * holder starts past that holder's last id, whatever the clock says (a clock stepped back). */
void chat_idgen_floor(struct chat_idgen *g, int64_t unix_ms);
/* The millisecond (Unix) of the last id, or of the floor. */
int64_t chat_idgen_last_ms(const struct chat_idgen *g);
/* Returns the next id for wall-clock time now_ms (ms since the Unix epoch). */
uint64_t chat_idgen_next(struct chat_idgen *g, int64_t now_ms);
/* Unix ms / node encoded in an id. */
int64_t chat_id_time_ms(uint64_t id);
unsigned chat_id_node(uint64_t id);

#endif
