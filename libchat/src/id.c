#include "chat/id.h"

#include "chat/err.h"

void chat_idgen_init(struct chat_idgen *g, unsigned node)
{
    CHAT_ASSERT(node <= CHAT_ID_MAX_NODE);
    g->node = node;
    g->last_ms = 0;
    g->seq = 0;
}

void chat_idgen_floor(struct chat_idgen *g, int64_t unix_ms)
{
    int64_t ms = unix_ms - CHAT_ID_EPOCH_MS;

    if (ms > g->last_ms) {
        g->last_ms = ms;
        g->seq = (1u << CHAT_ID_SEQ_BITS) - 1; /* the next id is in a later millisecond */
    }
}

int64_t chat_idgen_last_ms(const struct chat_idgen *g)
{
    return g->last_ms + CHAT_ID_EPOCH_MS;
}

uint64_t chat_idgen_next(struct chat_idgen *g, int64_t now_ms)
{
    int64_t ms = now_ms - CHAT_ID_EPOCH_MS;

    if (ms < 0)
        ms = 0;
    if (ms > g->last_ms) {
        g->last_ms = ms;
        g->seq = 0;
    } else if (++g->seq >= (1u << CHAT_ID_SEQ_BITS)) {
        /* sequence exhausted or clock went back: borrow the next millisecond */
        g->last_ms++;
        g->seq = 0;
    }
    return ((uint64_t)g->last_ms << (CHAT_ID_NODE_BITS + CHAT_ID_SEQ_BITS)) |
           (g->node << CHAT_ID_SEQ_BITS) | g->seq;
}

int64_t chat_id_time_ms(uint64_t id)
{
    return (int64_t)(id >> (CHAT_ID_NODE_BITS + CHAT_ID_SEQ_BITS)) + CHAT_ID_EPOCH_MS;
}

unsigned chat_id_node(uint64_t id)
{
    return (unsigned)((id >> CHAT_ID_SEQ_BITS) & CHAT_ID_MAX_NODE);
}
