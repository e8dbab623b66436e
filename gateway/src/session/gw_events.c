/* gw_events.c - what a gateway knows about sessions beyond the token in hand, and keeps in step
 * with every other gateway through chat.events:
 *   - revoked sessions (logout, password change, administrator, refresh-token reuse): their
 *     tokens are refused at once, and open sockets of them get session_revoked and become
 *     anonymous (out of their restricted rooms, still watching their public ones);
 *   - nickname changes: tokens issued before the change carry the old name, so the new one
 *     replaces it, and open sockets of the user send with the new one at once;
 *   - token expiry on open sockets: session_expiring ahead of exp, session_expired at exp.
 * Both maps keep an entry for one token lifetime (CHAT_REVOKE_KEEP_S): a token older than that
 * has expired anyway. chat-api writes the events (its outbox, in the same transaction as the
 * change); a gateway reads chat.events from CHAT_REVOKE_KEEP_S back at startup (bus/gw_kafka.c,
 * rd_kafka_offsets_for_times) and is ready only once it has read up to where the topic ended
 * at startup, so every revocation a live token could meet is known. Event-loop thread only. */
#include "session/gw_events.h"

#include <string.h>
#include <time.h>

#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "core/gw.h"
#include "room/gw_acl.h"
#include "room/gw_map.h"
#include "room/gw_room.h"
#include "session/gw_announce.h"
#include "ws/gw_conn.h"

/* ms an entry is kept: past this, every token it could affect has expired */
static int64_t keep_ms(const struct gw *gw)
{
    return (int64_t)CHAT_REVOKE_KEEP_S(gw->cfg) * 1000;
}

/* A nickname changed after cl was issued replaces its name. */
static void fresh_nick(struct gw *gw, struct chat_claims *cl)
{
    const struct gw_map_ent *e = gw_map_find(&gw->nicks, cl->sub);

    /* iat has 1 s resolution: a change within the token's second may be newer, apply it */
    if (e && e->str && e->until_ms >= cl->iat * 1000)
        snprintf(cl->name, sizeof(cl->name), "%s", e->str);
}

int gw_events_token_check(struct gw *gw,
                          const char *token,
                          struct chat_claims *cl,
                          enum chat_errcode *code)
{
    int rc = chat_jwt_check(&gw->keys, token, gw->cfg->jwt_issuer, gw->cfg->token_max_ttl_s, cl);

    if (rc != CHAT_OK) {
        *code = rc == CHAT_EEXPIRED ? CHAT_ERR_token_expired : CHAT_ERR_bad_token;
        return rc;
    }
    if (cl->sid[0] && gw_map_find(&gw->revoked, cl->sid)) {
        *code = CHAT_ERR_session_revoked;
        return CHAT_EAUTH;
    }
    fresh_nick(gw, cl);
    return CHAT_OK;
}

/* Tells c why it loses its identity (m, may be NULL) and makes it anonymous: it keeps watching
 * its public rooms and leaves its restricted ones, whose left frames follow the reason. */
static void drop_to_anonymous(struct gw_conn *c, struct chat_msg *m)
{
    if (m)
        (void)gw_conn_push(c, m);
    gw_conn_clear_identity(c);
}

/* Records a revocation (from a chat.events record); apply_user() acts on it. */
static void record_revocation(struct gw *gw, const char *sid, const char *reason, int64_t at_ms)
{
    struct gw_map_ent *e = gw_map_get(&gw->revoked, sid);
    int64_t until = at_ms + keep_ms(gw);

    if (e->until_ms < until)
        e->until_ms = until;
    if (!e->str)
        e->str = chat_xstrdup(reason ? reason : "revoked");
}

/* c's session is revoked: session_revoked, then anonymous. */
static void apply_revoked(struct gw *gw, struct gw_conn *c)
{
    const struct gw_map_ent *e;
    struct chat_msg *m = NULL;

    if (!c->authed || !c->claims.sid[0] || !(e = gw_map_find(&gw->revoked, c->claims.sid)))
        return;
    chat_buf_reset(&gw->scratch);
    if (chat_enc_session_revoked(&gw->scratch, e->str) == CHAT_OK)
        m = chat_msg_from_buf(&gw->scratch);
    chat_metric_add(&gw->m.sessions_revoked, 1);
    chat_log(CHAT_LOG_INFO, "conn %llu: session %s revoked (%s): now anonymous",
             (unsigned long long)c->cid, c->claims.sid, e->str);
    drop_to_anonymous(c, m); /* unlinks c from the user's list */
    chat_msg_unref(m);
}

/* The connections of user whose session is revoked get session_revoked (an event names its
 * user, so only that user's connections are looked at). */
static void apply_user(struct gw *gw, const char *user)
{
    const struct gw_map_ent *u = gw_map_find(&gw->users, user);
    struct gw_conn *c = u ? u->conns : NULL, *next;

    /* apply_revoked may drop the last connection and with it the entry: read next first */
    for (; c; c = next) {
        next = c->unext;
        apply_revoked(gw, c);
    }
}

static void nick_changed(struct gw *gw, const char *user, const char *nick, int64_t at_ms)
{
    struct gw_map_ent *e = gw_map_get(&gw->nicks, user);

    if (e->str && e->until_ms > at_ms)
        return; /* an older change arriving late */
    chat_free(e->str);
    e->str = chat_xstrdup(nick);
    e->until_ms = at_ms;
    e = gw_map_find(&gw->users, user);
    for (struct gw_conn *c = e ? e->conns : NULL; c; c = c->unext)
        gw_conn_set_name(c, nick);
}

/* The user marked room read up to seq (a read frame on any connection of any gateway): its
 * connections here that joined the room are told, so every device can clear its badge. */
static void read_marked(struct gw *gw, const char *user, const char *room, int64_t seq)
{
    const struct gw_map_ent *e = gw_map_find(&gw->users, user);
    struct chat_msg *m = NULL;

    for (struct gw_conn *c = e ? e->conns : NULL; c; c = c->unext) {
        if (!gw_room_joined(c, room))
            continue;
        if (!m) {
            chat_buf_reset(&gw->scratch);
            if (chat_enc_read(&gw->scratch, room, seq) != CHAT_OK)
                return;
            m = chat_msg_from_buf(&gw->scratch);
        }
        (void)gw_conn_push(c, m);
    }
    chat_msg_unref(m);
}

void gw_events_handle(struct gw *gw, const char *v, size_t len)
{
    struct chat_event ev;
    int rc = chat_event_decode(v, len, &ev);

    chat_metric_add(&gw->m.events_in, 1);
    if (rc == CHAT_OK && ev.type == CHAT_EV_sessions_revoked) {
        for (size_t i = 0; i < ev.nsids; i++)
            record_revocation(gw, ev.sids[i], ev.reason, ev.ts);
        apply_user(gw, ev.user); /* the event's user's connections only */
    } else if (rc == CHAT_OK && ev.type == CHAT_EV_user_updated) {
        nick_changed(gw, ev.user, ev.nick, ev.ts);
    } else if (rc == CHAT_OK && ev.type == CHAT_EV_member_removed) {
        gw_acl_member_removed(gw, ev.user, ev.room, ev.reason, ev.ts);
    } else if (rc == CHAT_OK && ev.type == CHAT_EV_room_deleted) {
        gw_acl_room_deleted(gw, ev.room);
    } else if (rc == CHAT_OK && ev.type == CHAT_EV_sanction) {
        gw_acl_sanction_put(gw, ev.user, ev.room, ev.kind, ev.until, ev.reason);
    } else if (rc == CHAT_OK && ev.type == CHAT_EV_announcement && strcmp(ev.room, "*") == 0) {
        gw_announce_all(gw, ev.id, ev.text, ev.ts); /* session/gw_announce.c */
    } else if (rc == CHAT_OK && ev.type == CHAT_EV_read) {
        read_marked(gw, ev.user, ev.room, ev.seq); /* the persister stores it */
    } else if (rc != CHAT_ENOENT) { /* unknown types are for newer gateways: skipped silently */
        chat_metric_add(&gw->m.events_bad, 1);
        chat_log(CHAT_LOG_WARN, "kafka: undecodable chat.events record skipped");
    }
    chat_event_fini(&ev);
}

static bool expired_entry(const struct gw_map_ent *e, void *ud)
{
    const int64_t *now = ud;
    return e->until_ms < now[0];
}

static bool old_nick(const struct gw_map_ent *e, void *ud)
{
    const int64_t *now = ud;
    return e->until_ms < now[1];
}

void gw_events_tick(struct gw *gw)
{
    int64_t now = (int64_t)time(NULL);
    int64_t cut[2] = {chat_now_ms(), chat_now_ms() - keep_ms(gw)}, now_us = chat_mono_us();
    long pings = gw_conn_ping_budget(gw);
    struct chat_msg *m;

    for (struct gw_conn *c = gw->conns; c; c = c->next) {
        gw_conn_trim(c); /* idle memory: an empty queue and no fragment hold no heap */
        gw_conn_keepalive(c, now_us, &pings);
        if (!c->authed || c->closing)
            continue;
        if (now >= c->claims.exp) {
            chat_buf_reset(&gw->scratch);
            m = chat_enc_session_expired(&gw->scratch) == CHAT_OK ? chat_msg_from_buf(&gw->scratch)
                                                                  : NULL;
            drop_to_anonymous(c, m);
            chat_msg_unref(m);
        } else if (!c->expiry_warned && c->claims.exp - now <= gw->cfg->session_warn_s) {
            c->expiry_warned = true;
            chat_buf_reset(&gw->scratch);
            if (chat_enc_session_expiring(&gw->scratch, c->claims.exp,
                                          (c->claims.exp - now) * 1000) == CHAT_OK)
                (void)gw_conn_push_scratch(c);
        }
    }
    gw_conn_heap_trim(gw);
    gw_map_sweep(&gw->revoked, expired_entry, cut);
    gw_map_sweep(&gw->nicks, old_nick, cut);
    gw_acl_tick(gw);
}
