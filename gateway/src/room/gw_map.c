/* gw_map.c - a small string-keyed hash map (user id -> count, rate bucket, nickname or
 * revocation; a user's connections). Keys are chosen by clients: hashed with a per-process key.
 * Event-loop thread only (no locking). */
#include "room/gw_map.h"

#include <string.h>

#include "chat/hash.h"
#include "chat/mem.h"

/* Room and user ids are chosen by clients: keyed, so nobody can aim them all at one bucket. */
#define hash_str chat_hash_str

void gw_map_init(struct gw_map *m)
{
    m->nslots = 16;
    m->n = 0;
    m->slots = chat_xcalloc(m->nslots, sizeof(*m->slots));
}

static void ent_free(struct gw_map_ent *e)
{
    chat_free(e->str);
    chat_free(e);
}

void gw_map_fini(struct gw_map *m)
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct gw_map_ent *e = m->slots[i];
        while (e) {
            struct gw_map_ent *next = e->next;
            ent_free(e);
            e = next;
        }
    }
    CHAT_FREE(m->slots);
    m->n = m->nslots = 0;
}

static void map_grow(struct gw_map *m)
{
    size_t nn = m->nslots * 2;
    struct gw_map_ent **ns = chat_xcalloc(nn, sizeof(*ns));

    for (size_t i = 0; i < m->nslots; i++) {
        struct gw_map_ent *e = m->slots[i];
        while (e) {
            struct gw_map_ent *next = e->next;
            size_t k = hash_str(e->key) & (nn - 1);
            e->next = ns[k];
            ns[k] = e;
            e = next;
        }
    }
    chat_free(m->slots);
    m->slots = ns;
    m->nslots = nn;
}

struct gw_map_ent *gw_map_find(const struct gw_map *m, const char *key)
{
    struct gw_map_ent *e = m->slots[hash_str(key) & (m->nslots - 1)];
    while (e && strcmp(e->key, key) != 0)
        e = e->next;
    return e;
}

struct gw_map_ent *gw_map_get(struct gw_map *m, const char *key)
{
    struct gw_map_ent *e = gw_map_find(m, key);
    size_t k, len = strlen(key);

    if (e)
        return e;
    if (m->n + 1 > m->nslots * 2)
        map_grow(m);
    k = hash_str(key) & (m->nslots - 1);
    e = chat_xcalloc(1, sizeof(*e) + len + 1);
    memcpy(e->key, key, len + 1);
    e->next = m->slots[k];
    m->slots[k] = e;
    m->n++;
    return e;
}

void gw_map_sweep(struct gw_map *m, bool (*drop)(const struct gw_map_ent *e, void *ud), void *ud)
{
    for (size_t i = 0; i < m->nslots; i++) {
        struct gw_map_ent **pp = &m->slots[i];
        while (*pp) {
            struct gw_map_ent *e = *pp;
            if (drop(e, ud)) {
                *pp = e->next;
                ent_free(e);
                m->n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

void gw_map_remove(struct gw_map *m, const char *key)
{
    struct gw_map_ent **pp = &m->slots[hash_str(key) & (m->nslots - 1)];

    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    if (*pp) {
        struct gw_map_ent *e = *pp;
        *pp = e->next;
        ent_free(e);
        m->n--;
    }
}
