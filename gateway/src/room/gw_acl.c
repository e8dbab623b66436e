/* gw_acl.c - room permissions on a node without a database (gw_acl.h). */
#include "room/gw_acl.h"

#include <stdio.h>
#include <string.h>

#include "chat/jwt.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "core/gw.h"
#include "room/gw_map.h"
#include "room/gw_room.h"
#include "ws/gw_conn.h"

#define DENY_KEY_MAX     (CHAT_USER_MAX + CHAT_ROOM_MAX + 2)
#define SANCTION_KEY_MAX (CHAT_USER_MAX + CHAT_ROOM_MAX + 16)

static bool restricted(const char *room)
{
    return room[0] == '_';
}

/* "user\nroom": neither may hold a newline */
static void deny_key(char *out, const char *user, const char *room)
{
    snprintf(out, DENY_KEY_MAX, "%s\n%s", user, room);
}

/* ms a removal is kept: past it, every grant issued before it has expired */
static int64_t deny_keep_ms(const struct gw *gw)
{
    return ((int64_t)gw->cfg->grant_ttl_s + 2 * CHAT_JWT_LEEWAY_S) * 1000;
}

void gw_acl_room_record(struct gw *gw, const void *key, size_t klen, const void *v, size_t len)
{
    char room[CHAT_ROOM_MAX + 1];
    struct chat_room_rec rec;
    struct gw_map_ent *e;

    if (!key || klen == 0 || klen > CHAT_ROOM_MAX)
        goto bad;
    memcpy(room, key, klen);
    room[klen] = '\0';
    if (!chat_room_valid(room))
        goto bad;
    if (!v) { /* a tombstone: the room was deleted */
        gw_map_remove(&gw->room_cfg, room);
        chat_metric_set(&gw->m.rooms_known, (long long)gw->room_cfg.n);
        return;
    }
    if (chat_room_rec_decode(v, len, &rec) != CHAT_OK || strcmp(rec.room, room) != 0) {
        chat_room_rec_fini(&rec);
        goto bad;
    }
    e = gw_map_get(&gw->room_cfg, room);
    e->count = rec.max_text;
    e->until_ms = (int64_t)rec.slow_mode_s * 1000; /* the room's slow mode, ms (0: off) */
    chat_free(e->str);
    e->str = chat_xstrdup(rec.kind);
    chat_room_rec_fini(&rec);
    chat_metric_set(&gw->m.rooms_known, (long long)gw->room_cfg.n);
    return;
bad:
    chat_metric_add(&gw->m.events_bad, 1);
    chat_log(CHAT_LOG_WARN, "kafka: undecodable chat.rooms record skipped");
}

int gw_acl_max_text(const struct gw *gw, const char *room)
{
    const struct gw_map_ent *e = gw_map_find(&gw->room_cfg, room);

    return e && e->count > 0 && e->count < gw->cfg->max_text ? e->count : gw->cfg->max_text;
}

/* The sanction user/room/kind in force now: its entry, or NULL (none, or expired). */
static const struct gw_map_ent *
sanction_of(struct gw *gw, const char *user, const char *room, const char *kind)
{
    char key[SANCTION_KEY_MAX];
    const struct gw_map_ent *e;

    if (chat_sanction_key(key, sizeof(key), user, room, kind) != CHAT_OK ||
        !(e = gw_map_find(&gw->sanctions, key)))
        return NULL;
    return e->until_ms == 0 || e->until_ms > chat_now_ms() ? e : NULL;
}

int64_t gw_acl_slow_ms(const struct gw *gw, const char *room)
{
    const struct gw_map_ent *e = gw_map_find(&gw->room_cfg, room);

    return e ? e->until_ms : 0;
}

enum chat_errcode gw_acl_join_check(struct gw *gw,
                                    const struct gw_conn *c,
                                    const char *room,
                                    const char *grant,
                                    const char **msg,
                                    int64_t *until_ms,
                                    const char **reason)
{
    char key[DENY_KEY_MAX];
    struct chat_claims cl;
    const struct gw_map_ent *e;
    int rc;

    *until_ms = -1;
    if (c->authed && (e = sanction_of(gw, c->claims.sub, room, "ban")) != NULL) {
        *msg = "banned from this room";
        *reason = e->str ? e->str : ""; /* the moderator's, as the send refusal and sanction say */
        *until_ms = e->until_ms;
        return CHAT_ERR_banned;
    }
    if (!grant) {
        if (restricted(room)) {
            *msg = "this room is joined with a grant (GET /api/v1/rooms/{room}/grant)";
            return CHAT_ERR_forbidden;
        }
        if (!gw->cfg->rooms_adhoc && !gw_map_find(&gw->room_cfg, room)) {
            *msg = "no such room";
            return CHAT_ERR_not_found;
        }
        return CHAT_ERR__COUNT;
    }
    /* a grant vouches for the room: also a public room this node has not heard of yet */
    if (!c->authed) {
        *msg = "a grant needs a logged-in connection";
        return CHAT_ERR_forbidden;
    }
    rc = chat_jwt_check_grant(&gw->keys, grant, gw->cfg->jwt_issuer, room, c->claims.sub,
                              gw->cfg->grant_ttl_s, &cl);
    if (rc != CHAT_OK) {
        *msg = rc == CHAT_EEXPIRED ? "the grant has expired; get a fresh one"
                                   : "the grant is not valid for this user and room";
        return CHAT_ERR_forbidden;
    }
    deny_key(key, c->claims.sub, room);
    e = gw_map_find(&gw->denied, key);
    /* iat has 1 s resolution: a grant of the removal's second counts as older */
    if (e && cl.iat * 1000 <= e->until_ms) {
        *msg = "removed from the room";
        return CHAT_ERR_forbidden;
    }
    return CHAT_ERR__COUNT;
}

/* c leaves room and is told why. */
static void take_out(struct gw *gw, struct gw_conn *c, const char *room, const char *reason)
{
    if (gw_room_leave(gw, c, room) != CHAT_OK)
        return;
    chat_buf_reset(&gw->scratch);
    if (chat_enc_left_why(&gw->scratch, room, reason) == CHAT_OK)
        (void)gw_conn_push_scratch(c);
}

void gw_acl_member_removed(
    struct gw *gw, const char *user, const char *room, const char *reason, int64_t at_ms)
{
    char key[DENY_KEY_MAX];
    struct gw_map_ent *e;

    if (strchr(user, '\n') || !user[0])
        return;
    deny_key(key, user, room);
    e = gw_map_get(&gw->denied, key);
    if (e->until_ms < at_ms)
        e->until_ms = at_ms;
    e = gw_map_find(&gw->users, user);
    for (struct gw_conn *c = e ? e->conns : NULL; c; c = c->unext)
        take_out(gw, c, room, reason && reason[0] ? reason : "removed");
}

void gw_acl_identity_lost(struct gw *gw, struct gw_conn *c)
{
    char room[CHAT_ROOM_MAX + 1];

    /* from the last slot down: leaving slot i moves the last one, already seen, into it */
    for (int i = c->nrooms - 1; i >= 0; i--) {
        if (i >= c->nrooms || !restricted(c->rooms[i].room->name))
            continue;
        /* a copy: leaving may free the room and its name */
        snprintf(room, sizeof(room), "%s", c->rooms[i].room->name);
        take_out(gw, c, room, "signed_out"); /* not a removal: the user may join again */
    }
}

void gw_acl_room_deleted(struct gw *gw, const char *room)
{
    struct gw_room *r = gw_room_find(&gw->rooms, room);
    struct gw_conn **cs;
    size_t n;

    gw_map_remove(&gw->room_cfg, room);
    chat_metric_set(&gw->m.rooms_known, (long long)gw->room_cfg.n);
    if (!r || r->nsubs == 0)
        return;
    n = r->nsubs; /* leaving changes the room (and may free it): take the list first */
    cs = chat_xcalloc(n, sizeof(*cs));
    for (size_t i = 0; i < n; i++)
        cs[i] = r->subs[i].c;
    for (size_t i = 0; i < n; i++)
        take_out(gw, cs[i], room, "deleted");
    chat_free(cs);
}

/* Tells c (or, when c is NULL, every connection of user here) of a sanction in force
 * (lifted false) or lifted early. The frame is made once, on the first connection. */
static void tell_sanction(struct gw *gw,
                          struct gw_conn *c,
                          const char *user,
                          const char *room,
                          const char *kind,
                          const struct gw_map_ent *e)
{
    const struct gw_map_ent *u = NULL;
    struct gw_conn *next;
    struct chat_msg *m = NULL;
    int rc;

    if (!c) {
        u = gw_map_find(&gw->users, user);
        c = u ? u->conns : NULL;
    }
    for (; c; c = next) {
        next = u ? c->unext : NULL; /* a slow consumer's close unlinks c: read next first */
        if (!m) {
            chat_buf_reset(&gw->scratch);
            rc = e ? chat_enc_sanction_frame(&gw->scratch, room, kind, e->until_ms, e->str)
                   : chat_enc_sanction_lifted(&gw->scratch, room, kind);
            if (rc != CHAT_OK)
                return;
            m = chat_msg_from_buf(&gw->scratch);
        }
        (void)gw_conn_push(c, m);
    }
    chat_msg_unref(m);
}

void gw_acl_sanction_put(struct gw *gw,
                         const char *user,
                         const char *room,
                         const char *kind,
                         int64_t until_ms,
                         const char *reason)
{
    char key[SANCTION_KEY_MAX];
    struct gw_map_ent *e;
    bool same;

    if (chat_sanction_key(key, sizeof(key), user, room, kind) != CHAT_OK)
        return;
    if (!reason)
        reason = "";
    until_ms = until_ms > 0 ? until_ms : 0;
    e = gw_map_get(&gw->sanctions, key);
    /* the same sanction again (the spam rule's ban is put here first, then read back from
     * chat.events): the user was told already */
    same = e->str && e->until_ms == until_ms && strcmp(e->str, reason) == 0;
    e->until_ms = until_ms;
    chat_free(e->str);
    e->str = chat_xstrdup(reason);
    chat_metric_set(&gw->m.sanctions, (long long)gw->sanctions.n);
    if (until_ms != 0 && until_ms <= chat_now_ms())
        return; /* already over (an old record read at start) */
    if (!same)
        tell_sanction(gw, NULL, user, room, kind, e);
    if (strcmp(kind, "ban") == 0 && strcmp(room, "*") != 0) {
        const struct gw_map_ent *u = gw_map_find(&gw->users, user);
        struct gw_conn *c = u ? u->conns : NULL, *next;
        for (; c; c = next) { /* leaving cannot drop c from the user's list, but be safe */
            next = c->unext;
            take_out(gw, c, room, "banned");
        }
    }
}

void gw_acl_sanction_drop(struct gw *gw, const char *user, const char *room, const char *kind)
{
    char key[SANCTION_KEY_MAX];

    if (chat_sanction_key(key, sizeof(key), user, room, kind) != CHAT_OK)
        return;
    if (sanction_of(gw, user, room, kind))
        tell_sanction(gw, NULL, user, room, kind, NULL); /* lifted before its time */
    gw_map_remove(&gw->sanctions, key);
    chat_metric_set(&gw->m.sanctions, (long long)gw->sanctions.n);
}

void gw_acl_sanction_tell(struct gw *gw, struct gw_conn *c, const char *room)
{
    static const struct {
        bool site;
        const char *kind;
    } kinds[] = {{true, "chat_ban"}, {true, "mute"}, {false, "mute"}};

    if (gw->sanctions.n == 0 || !c->authed)
        return;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const char *r = kinds[i].site ? "*" : room;
        const struct gw_map_ent *e = sanction_of(gw, c->claims.sub, r, kinds[i].kind);
        if (e)
            tell_sanction(gw, c, c->claims.sub, r, kinds[i].kind, e);
    }
}

void gw_acl_sanction_record(struct gw *gw, const void *key, size_t klen, const void *v, size_t len)
{
    char k[SANCTION_KEY_MAX], *room, *kind;
    struct chat_event ev;

    if (!key || klen == 0 || klen >= sizeof(k))
        goto bad;
    memcpy(k, key, klen);
    k[klen] = '\0';
    /* "USER ROOM KIND": the user id holds no space (a token subject of ours never does) */
    if (!(room = strchr(k, ' ')) || !(kind = strchr(room + 1, ' ')))
        goto bad;
    *room++ = '\0';
    *kind++ = '\0';
    if (!v) { /* a tombstone: lifted */
        gw_acl_sanction_drop(gw, k, room, kind);
        return;
    }
    if (chat_event_decode(v, len, &ev) != CHAT_OK || ev.type != CHAT_EV_sanction ||
        strcmp(ev.user, k) != 0 || strcmp(ev.room, room) != 0 || strcmp(ev.kind, kind) != 0) {
        chat_event_fini(&ev);
        goto bad;
    }
    gw_acl_sanction_put(gw, ev.user, ev.room, ev.kind, ev.until, ev.reason);
    chat_event_fini(&ev);
    return;
bad:
    chat_metric_add(&gw->m.events_bad, 1);
    chat_log(CHAT_LOG_WARN, "kafka: undecodable chat.sanctions record skipped");
}

enum chat_errcode gw_acl_send_check(
    struct gw *gw, const char *user, const char *room, int64_t *until_ms, const char **reason)
{
    static const struct {
        bool site;
        const char *kind;
        enum chat_errcode code;
    } order[] = {
        {true, "chat_ban", CHAT_ERR_chat_banned},
        {true, "mute", CHAT_ERR_muted},
        {false, "ban", CHAT_ERR_banned},
        {false, "mute", CHAT_ERR_muted},
    };

    if (gw->sanctions.n == 0) /* the common case: one branch */
        return CHAT_ERR__COUNT;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const struct gw_map_ent *e =
            sanction_of(gw, user, order[i].site ? "*" : room, order[i].kind);
        if (e) {
            *until_ms = e->until_ms;
            *reason = e->str ? e->str : "";
            return order[i].code;
        }
    }
    return CHAT_ERR__COUNT;
}

static bool expired_sanction(const struct gw_map_ent *e, void *ud)
{
    const int64_t *now = ud;
    return e->until_ms != 0 && e->until_ms <= *now;
}

static bool old_denial(const struct gw_map_ent *e, void *ud)
{
    const int64_t *cut = ud;
    return e->until_ms < *cut;
}

void gw_acl_tick(struct gw *gw)
{
    int64_t now = chat_now_ms(), cut = now - deny_keep_ms(gw);

    gw_map_sweep(&gw->denied, old_denial, &cut);
    gw_map_sweep(&gw->sanctions, expired_sanction, &now);
    chat_metric_set(&gw->m.sanctions, (long long)gw->sanctions.n);
}
