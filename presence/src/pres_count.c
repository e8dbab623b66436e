/* presence/src/pres_count.c - string-keyed tables, per-room aggregation and the diff against
 * what was last published. Pure: no I/O, no clocks, no globals of its own (tables hash with
 * libchat's per-process SipHash key, chat/hash.h; see pres.h). */
#include <string.h>

#include "chat/hash.h"
#include "chat/keys.h"
#include "chat/mem.h"

#include "pres.h"

#define TAB_MIN_CAP 16

/* Room and user ids are chosen by clients: keyed, so nobody can aim them all at one bucket. */
#define hash_str chat_hash_str

void pres_tab_init(struct pres_tab *t)
{
    memset(t, 0, sizeof(*t));
}

void pres_tab_fini(struct pres_tab *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        struct pres_ent *e = &t->slots[i];
        if (!e->key)
            continue;
        chat_free(e->key);
        if (e->set) {
            pres_tab_fini(e->set);
            chat_free(e->set);
        }
    }
    chat_free(t->slots);
    pres_tab_init(t);
}

/* Slot holding key, or the empty slot where it would go. t->cap must be > 0. */
static struct pres_ent *tab_slot(const struct pres_tab *t, const char *key)
{
    size_t mask = t->cap - 1;
    size_t i = (size_t)hash_str(key) & mask;

    while (t->slots[i].key && strcmp(t->slots[i].key, key) != 0)
        i = (i + 1) & mask;
    return &t->slots[i];
}

/* Rehashes into a table of cap slots (a power of two, > len). Moves keys and sets. */
static void tab_resize(struct pres_tab *t, size_t cap)
{
    struct pres_tab n = {.slots = chat_xcalloc(cap, sizeof(struct pres_ent)), .cap = cap};

    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].key)
            continue;
        *tab_slot(&n, t->slots[i].key) = t->slots[i];
        n.len++;
    }
    chat_free(t->slots);
    *t = n;
}

/* Returns the entry for key, inserting a zeroed one (key copied) when absent. Load <= 3/4. */
static struct pres_ent *tab_upsert(struct pres_tab *t, const char *key)
{
    struct pres_ent *e;

    if ((t->len + 1) * 4 > t->cap * 3)
        tab_resize(t, t->cap ? t->cap * 2 : TAB_MIN_CAP);
    e = tab_slot(t, key);
    if (!e->key) {
        e->key = chat_xstrdup(key);
        t->len++;
    }
    return e;
}

const struct pres_ent *pres_tab_get(const struct pres_tab *t, const char *key)
{
    const struct pres_ent *e;

    if (t->cap == 0)
        return NULL;
    e = tab_slot(t, key);
    return e->key ? e : NULL;
}

const struct pres_ent *pres_tab_next(const struct pres_tab *t, size_t *pos)
{
    while (*pos < t->cap) {
        const struct pres_ent *e = &t->slots[(*pos)++];
        if (e->key)
            return e;
    }
    return NULL;
}

void pres_agg_add_conns(struct pres_tab *agg, const char *room, int64_t n)
{
    tab_upsert(agg, room)->conns += n;
}

void pres_agg_add_user(struct pres_tab *agg, const char *room, const char *user)
{
    struct pres_ent *e = tab_upsert(agg, room);

    if (!e->set) {
        e->set = chat_xmalloc(sizeof(*e->set));
        pres_tab_init(e->set);
    }
    (void)tab_upsert(e->set, user);
}

int64_t pres_agg_users(const struct pres_ent *e)
{
    return e->set ? (int64_t)e->set->len : 0;
}

void pres_strv_init(struct pres_strv *s)
{
    memset(s, 0, sizeof(*s));
}

void pres_strv_push(struct pres_strv *s, const char *str, size_t len)
{
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = chat_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->len++] = chat_xstrndup(str, len);
}

void pres_strv_fini(struct pres_strv *s)
{
    for (size_t i = 0; i < s->len; i++)
        chat_free(s->v[i]);
    chat_free(s->v);
    pres_strv_init(s);
}

void pres_changes_init(struct pres_changes *c)
{
    memset(c, 0, sizeof(*c));
}

void pres_changes_fini(struct pres_changes *c)
{
    for (size_t i = 0; i < c->len; i++)
        chat_free(c->v[i].room);
    chat_free(c->v);
    pres_changes_init(c);
}

static void changes_push(struct pres_changes *c, const char *room, int64_t conns, int64_t users)
{
    if (c->len == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = chat_xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    c->v[c->len++] =
        (struct pres_change){.room = chat_xstrdup(room), .conns = conns, .users = users};
}

/* Records (conns, users) of room in next and appends a change when it differs from last. */
static void diff_room(const struct pres_tab *last,
                      struct pres_tab *next,
                      bool full,
                      const char *room,
                      int64_t conns,
                      int64_t users,
                      struct pres_changes *out)
{
    const struct pres_ent *old = pres_tab_get(last, room);
    struct pres_ent *e = tab_upsert(next, room);

    e->conns = conns;
    e->users = users;
    if (full || !old || old->conns != conns || old->users != users)
        changes_push(out, room, conns, users);
}

/* Keeps the gone room of old (an entry of last) in next as a pending zero; appends its (0, 0)
 * when it has just vanished or when full. A zero already delivered is forgotten instead. */
static void
diff_gone(const struct pres_ent *old, struct pres_tab *next, bool full, struct pres_changes *out)
{
    struct pres_ent *e;

    if (old->zero == PRES_ZERO_DELIVERED)
        return;
    e = tab_upsert(next, old->key);
    e->zero = PRES_ZERO_PENDING;
    /* keep the id of a 0/0 record still in flight: its delivery report confirms the room */
    e->zero_id = old->zero == PRES_ZERO_PENDING ? old->zero_id : 0;
    if (full || old->zero == PRES_ZERO_NONE)
        changes_push(out, old->key, 0, 0);
}

size_t
pres_diff(const struct pres_tab *agg, struct pres_tab *last, bool full, struct pres_changes *out)
{
    struct pres_tab next;
    const struct pres_ent *e, *total;
    size_t pos = 0, rooms = 0;

    pres_tab_init(&next);
    total = pres_tab_get(agg, CHAT_KEY_PRES_ALL);
    diff_room(last, &next, full, CHAT_KEY_PRES_ALL, total ? total->conns : 0,
              total ? pres_agg_users(total) : 0, out);
    for (e = pres_tab_next(agg, &pos); e; e = pres_tab_next(agg, &pos)) {
        int64_t users = pres_agg_users(e);
        if (e == total || (e->conns == 0 && users == 0))
            continue;
        diff_room(last, &next, full, e->key, e->conns, users, out);
        rooms++;
    }
    pos = 0;
    for (e = pres_tab_next(last, &pos); e; e = pres_tab_next(last, &pos)) {
        if (!pres_tab_get(&next, e->key))
            diff_gone(e, &next, full, out);
    }
    pres_tab_fini(last);
    *last = next;
    return rooms;
}

/* The pending zero of room in last, or NULL. */
static struct pres_ent *pending_zero(struct pres_tab *last, const char *room)
{
    struct pres_ent *e;

    if (last->cap == 0)
        return NULL;
    e = tab_slot(last, room);
    return e->key && e->zero == PRES_ZERO_PENDING ? e : NULL;
}

void pres_zero_sent(struct pres_tab *last, const char *room, uintptr_t id)
{
    struct pres_ent *e = pending_zero(last, room);

    if (e)
        e->zero_id = id;
}

void pres_zero_done(struct pres_tab *last, const char *room, uintptr_t id)
{
    struct pres_ent *e = pending_zero(last, room);

    if (e && (id == 0 || e->zero_id == id))
        e->zero = PRES_ZERO_DELIVERED;
}
