/* gw_ring.c - a connection's send queue (see gw_ring.h). Event-loop thread only. */
#include "ws/gw_ring.h"

#include "chat/mem.h"
#include "chat/msg.h"

struct chat_msg *gw_ring_at(const struct gw_ring *r, int i)
{
    return r->v[(r->head + i) % r->cap];
}

void gw_ring_pop(struct gw_ring *r, int k)
{
    while (k-- > 0) {
        struct chat_msg *m = r->v[r->head];
        r->head = (r->head + 1) % r->cap;
        r->len--;
        r->bytes -= (uint32_t)m->len;
        chat_msg_unref(m);
    }
    if (r->len == 0 && r->cap >= GW_RING_SHRINK_CAP)
        gw_ring_trim(r);
}

void gw_ring_trim(struct gw_ring *r)
{
    if (r->len > 0)
        return;
    if (r->v != r->inl)
        chat_free(r->v);
    r->v = NULL;
    r->cap = 0;
    r->head = 0;
}

/* Doubles the ring (up to max slots), unwrapping it: the inline slots first, then the heap. */
static void grow(struct gw_ring *r, int max)
{
    int ncap = r->cap ? r->cap * 2 : GW_RING_INLINE;
    struct chat_msg **n;

    if (ncap > max)
        ncap = max;
    if (ncap <= GW_RING_INLINE) {
        r->v = r->inl; /* only ever from cap 0: nothing to move */
        r->cap = ncap;
        r->head = 0;
        return;
    }
    n = chat_xmalloc((size_t)ncap * sizeof(*n));
    for (int i = 0; i < r->len; i++)
        n[i] = gw_ring_at(r, i);
    if (r->v != r->inl)
        chat_free(r->v);
    r->v = n;
    r->cap = ncap;
    r->head = 0;
}

void gw_ring_push(struct gw_ring *r, struct chat_msg *m, int max)
{
    if (r->len == r->cap)
        grow(r, max);
    r->v[(r->head + r->len) % r->cap] = chat_msg_ref(m);
    r->bytes += (uint32_t)m->len;
    r->len++;
}

bool gw_ring_replace_latest(struct gw_ring *r, struct chat_msg *m)
{
    for (int i = r->len - 1; i >= 0; i--) {
        struct chat_msg **slot = &r->v[(r->head + i) % r->cap];
        if ((*slot)->latest != m->latest)
            continue;
        r->bytes = r->bytes - (uint32_t)(*slot)->len + (uint32_t)m->len;
        chat_msg_unref(*slot);
        *slot = chat_msg_ref(m);
        return true;
    }
    return false;
}

void gw_ring_fini(struct gw_ring *r)
{
    gw_ring_pop(r, r->len);
    gw_ring_trim(r);
}
