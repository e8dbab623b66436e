/* gw_conn.c - per-connection state: identity, the bounded send queue, frame assembly and the
 * dispatch of client frames. Event-loop thread only. */
#include "ws/gw_conn.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <malloc.h>

#include "chat/jflat.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"
#include "chat/utf8.h"

#include "bus/gw_send.h"
#include "core/gw.h"
#include "room/gw_acl.h"
#include "room/gw_bucket.h"
#include "room/gw_map.h"
#include "room/gw_recent.h"
#include "room/gw_room.h"
#include "session/gw_events.h"
#include "session/gw_reads.h"
#include "ws/gw_ring.h"

/* lws's internal write type for a close frame (public header: "handled by lws_close_reason") */
#define GW_LWS_WRITE_CLOSE ((enum lws_write_protocol)4)

/* writes per WRITEABLE callback at most (fairness between connections) */
#define GW_WRITES_PER_CALLBACK 16

/* Connection opens + closes after which a settled heap is trimmed (gw_conn_heap_trim). */
#define GW_TRIM_BURST 256

/* The reassembly buffer of fragmented frames: its first size, and the size over which it is
 * given back right after its frame (smaller ones are kept until the idle sweep). */
#define GW_RX_FIRST 512
#define GW_RX_KEEP  4096

/* gw->users counts each user's connections on this node and lists them, so an event about a
 * user (nickname, revocation) touches only that user's sockets. */
static void user_link(struct gw *gw, struct gw_conn *c, int d)
{
    struct gw_map_ent *e;

    if (d > 0) {
        e = gw_map_get(&gw->users, c->claims.sub);
        c->claims.sub = e->key; /* interned: valid while the entry lives, i.e. while c is in it */
        e->count++;
        c->uprev = NULL;
        c->unext = e->conns;
        if (e->conns)
            e->conns->uprev = c;
        e->conns = c;
        return;
    }
    e = gw_map_find(&gw->users, c->claims.sub);
    if (!e) {
        c->claims.sub = "";
        return;
    }
    if (c->uprev)
        c->uprev->unext = c->unext;
    else
        e->conns = c->unext;
    if (c->unext)
        c->unext->uprev = c->uprev;
    c->uprev = c->unext = NULL;
    if (--e->count <= 0)
        gw_map_remove(&gw->users, c->claims.sub);
    c->claims.sub = ""; /* the entry's key may be gone */
}

static void identity_delta(struct gw_conn *c, int d)
{
    struct gw *gw = c->gw;

    if (c->authed) {
        gw_room_authed_delta(c, d);
        user_link(gw, c, d);
        chat_metric_add(&gw->m.conns_authed, d);
    } else {
        gw->anon_conns += d;
    }
    gw->pres_total_dirty = true;
}

/* sid and name in one allocation (none when both are empty). */
static void ident_set_ext(struct gw_ident *id, const char *sid, const char *name)
{
    size_t a = strlen(sid), b = strlen(name);
    char *ext = NULL;

    if (a + b > 0) {
        ext = chat_xmalloc(a + b + 2);
        memcpy(ext, sid, a + 1);
        memcpy(ext + a + 1, name, b + 1);
    }
    chat_free(id->ext);
    id->ext = ext;
    id->sid = ext ? ext : "";
    id->name = ext ? ext + a + 1 : "";
}

static void ident_clear(struct gw_ident *id)
{
    CHAT_FREE(id->ext);
    id->sub = id->sid = id->name = "";
    id->exp = 0;
}

void gw_conn_set_identity(struct gw_conn *c, const struct chat_claims *cl)
{
    /* session_expiring comes once per token: a repeat of the token in hand (the same exp) is no
     * new token, and must not bring a second warning */
    if (!c->authed || c->claims.exp != cl->exp)
        c->expiry_warned = false;
    identity_delta(c, -1);
    c->authed = true;
    c->claims.sub = cl->sub; /* until user_link() points it at the gw->users key */
    ident_set_ext(&c->claims, cl->sid, cl->name);
    c->claims.exp = cl->exp;
    identity_delta(c, +1);
}

void gw_conn_clear_identity(struct gw_conn *c)
{
    identity_delta(c, -1);
    c->authed = false;
    ident_clear(&c->claims);
    identity_delta(c, +1);
    gw_acl_identity_lost(c->gw, c); /* out of the rooms its grants opened */
}

void gw_conn_set_name(struct gw_conn *c, const char *name)
{
    char sid[sizeof(((struct chat_claims *)0)->sid)];

    if (!c->authed)
        return;
    snprintf(sid, sizeof(sid), "%s", c->claims.sid); /* ext is replaced */
    ident_set_ext(&c->claims, sid, name);
}

void gw_conn_claims(const struct gw_conn *c, struct chat_claims *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->sub, sizeof(out->sub), "%s", c->claims.sub);
    snprintf(out->sid, sizeof(out->sid), "%s", c->claims.sid);
    snprintf(out->name, sizeof(out->name), "%s", c->claims.name);
    snprintf(out->role, sizeof(out->role), "user");
    out->exp = c->claims.exp;
}

/* The client was heard from (the upgrade, a pong): the keep-alive's clock, the frame bucket's
 * at_us, restarts. A text frame restarts it by taking a token (handle_text). */
static void heard(struct gw_conn *c)
{
    const struct gw_config *cfg = c->gw->cfg;

    c->pinged = false;
    gw_bucket_refill(&c->frames, cfg->frame_rate_per_s, cfg->frame_rate_burst, chat_mono_us());
}

struct gw_conn *gw_conn_open(struct gw *gw, struct lws *wsi, struct gw_conn *c)
{
    memset(c, 0, sizeof(*c));
    c->gw = gw;
    c->wsi = wsi;
    c->cid = (uint32_t)++gw->next_cid;
    ident_clear(&c->claims);
    heard(c); /* the keep-alive counts from the upgrade */
    c->next = gw->conns;
    if (gw->conns)
        gw->conns->prev = c;
    gw->conns = c;
    gw->nconns++;
    gw->anon_conns++;
    gw->pres_total_dirty = true;
    chat_metric_set(&gw->m.conns, gw->nconns);
    chat_metric_add(&gw->m.conns_total, 1);
    return c;
}

/* ---- writing at once ----
 * A frame queued on an empty queue is not written after a round of POLLOUT (arm it, wait for
 * the event, write, disarm it: four system calls and a loop turn for one frame) but before the
 * loop next waits for I/O, as Redis writes replies in beforeSleep: everything queued on the
 * connection in this turn goes out coalesced in one write. What the socket does not take, lws
 * keeps and drains itself; what is left in the queue waits for the writable callback as before.
 * The flush list is doubly linked so a connection closed meanwhile leaves it in O(1). */
static void flush_add(struct gw *gw, struct gw_conn *c)
{
    if (c->flushing)
        return;
    c->flushing = true;
    c->fprev = NULL;
    c->fnext = gw->flush;
    if (gw->flush)
        gw->flush->fprev = c;
    gw->flush = c;
}

static void flush_del(struct gw *gw, struct gw_conn *c)
{
    if (!c->flushing)
        return;
    if (c->fprev)
        c->fprev->fnext = c->fnext;
    else
        gw->flush = c->fnext;
    if (c->fnext)
        c->fnext->fprev = c->fprev;
    c->fprev = c->fnext = NULL;
    c->flushing = false;
}

void gw_conn_closed(struct gw_conn *c)
{
    struct gw *gw = c->gw;

    if (!c->gw)
        return; /* never opened (rejected before ESTABLISHED) */
    flush_del(gw, c);
    gw_send_detach_all(c);
    gw_room_leave_all(gw, c);
    identity_delta(c, -1);
    ident_clear(&c->claims);
    gw_ring_fini(&c->outq);
    CHAT_FREE(c->sent);
    CHAT_FREE(c->rx);
    if (c->prev)
        c->prev->next = c->next;
    else
        gw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gw->nconns--;
    chat_metric_set(&gw->m.conns, gw->nconns);
    c->gw = NULL;
}

int gw_conn_push(struct gw_conn *c, struct chat_msg *m)
{
    const struct gw_config *cfg = c->gw->cfg;

    if (c->closing) {
        chat_metric_add(&c->gw->m.outq_dropped, 1);
        return CHAT_EAGAIN;
    }
    /* a newer count takes the place of the one still queued: a backlog never holds two */
    if (m->latest && c->outq.len > 0 && gw_ring_replace_latest(&c->outq, m)) {
        chat_metric_add(&c->gw->m.conflated, 1);
        return CHAT_OK;
    }
    if (c->outq.len == cfg->outq_max_msgs ||
        (size_t)c->outq.bytes + m->len > (size_t)cfg->outq_max_bytes) {
        chat_log(CHAT_LOG_WARN, "conn %llu: send queue full (%d frames, %u bytes), closing",
                 (unsigned long long)c->cid, c->outq.len, (unsigned)c->outq.bytes);
        chat_metric_add(&c->gw->m.slow_closes, 1);
        gw_ring_pop(&c->outq, c->outq.len); /* a slow consumer gets no more of the backlog */
        c->closing = true;
        c->close_code = CHAT_CLOSE_slow_consumer;
        c->close_reason = "slow_consumer";
        lws_callback_on_writable(c->wsi);
        return CHAT_EAGAIN;
    }
    gw_ring_push(&c->outq, m, cfg->outq_max_msgs);
    if (c->outq.len == 1 && !c->gw->shut)
        flush_add(c->gw, c); /* gw_conn_flush() writes it before the loop waits */
    else if (c->outq.len == 1)
        lws_callback_on_writable(c->wsi); /* shut down: the flush no longer runs */
    return CHAT_OK;
}

int gw_conn_push_scratch(struct gw_conn *c)
{
    struct chat_msg *m = chat_msg_from_buf(&c->gw->scratch);
    int rc = gw_conn_push(c, m);
    chat_msg_unref(m);
    return rc;
}

void gw_conn_error(struct gw_conn *c,
                   enum chat_errcode code,
                   const char *msg,
                   const char *client_msg_id,
                   const char *ref,
                   int retry_ms)
{
    chat_buf_reset(&c->gw->scratch);
    if (chat_enc_error(&c->gw->scratch, code, msg, client_msg_id, ref, retry_ms) == CHAT_OK)
        (void)gw_conn_push_scratch(c);
}

void gw_conn_error_until(struct gw_conn *c,
                         enum chat_errcode code,
                         const char *msg,
                         const char *client_msg_id,
                         const char *ref,
                         int64_t until_ms,
                         const char *reason)
{
    chat_buf_reset(&c->gw->scratch);
    if (chat_enc_error_until(&c->gw->scratch, code, msg, client_msg_id, ref, until_ms, reason) ==
        CHAT_OK)
        (void)gw_conn_push_scratch(c);
}

void gw_conn_close(struct gw_conn *c, int code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_code = code;
    c->close_reason = reason;
    lws_callback_on_writable(c->wsi);
}

/* Writes up to writes times from the queue's head. Frames are pre-built once per node
 * (chat_msg_wire), so queued frames are written raw and coalesced: up to GW_COALESCE_BYTES of
 * them in one write, i.e. one send() for a burst instead of one per frame. A single frame goes
 * out without a copy. lws buffers a partial write itself and drains it before anything else
 * (pings included), so frames never interleave. Returns -1 when a write failed. */
static int write_queued(struct gw_conn *c, int writes)
{
    struct chat_hist *h = &c->gw->m.deliver_us;
    int64_t now = chat_mono_us();
    struct chat_msg *m;
    int rc;

    for (int n = 0; n < writes && c->outq.len > 0; n++) {
        unsigned char *out;
        size_t len = 0;

        if (n > 0 && lws_send_pipe_choked(c->wsi))
            break;
        m = gw_ring_at(&c->outq, 0);
        if (c->outq.len == 1 || chat_msg_wire_len(m) >= GW_COALESCE_BYTES / 2) {
            rc = lws_write(c->wsi, chat_msg_wire(m), chat_msg_wire_len(m), LWS_WRITE_HTTP);
            if (m->t_us)
                chat_hist_record_1w(h, (uint64_t)(now - m->t_us));
            gw_ring_pop(&c->outq, 1);
        } else {
            int k = 0;
            out = c->gw->wbuf + LWS_PRE;
            while (k < c->outq.len) {
                struct chat_msg *q = gw_ring_at(&c->outq, k);
                if (len + chat_msg_wire_len(q) > GW_COALESCE_BYTES)
                    break;
                memcpy(out + len, chat_msg_wire(q), chat_msg_wire_len(q));
                len += chat_msg_wire_len(q);
                if (q->t_us)
                    chat_hist_record_1w(h, (uint64_t)(now - q->t_us));
                k++;
            }
            rc = lws_write(c->wsi, out, len, LWS_WRITE_HTTP);
            gw_ring_pop(&c->outq, k);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

int gw_conn_writable(struct gw_conn *c)
{
    if (c->outq.len == 0) {
        unsigned char frame[LWS_PRE + 2 + 64];
        size_t rl;

        if (!c->closing)
            return 0;
        /* write the close frame ourselves: lws 4.1 drops the connection without one when a
         * WRITEABLE callback returns -1, even after lws_close_reason() */
        rl = strnlen(c->close_reason, 64);
        frame[LWS_PRE] = (unsigned char)(c->close_code >> 8);
        frame[LWS_PRE + 1] = (unsigned char)(c->close_code & 0xFF);
        memcpy(frame + LWS_PRE + 2, c->close_reason, rl);
        (void)lws_write(c->wsi, frame + LWS_PRE, 2 + rl, GW_LWS_WRITE_CLOSE);
        return -1;
    }
    if (write_queued(c, GW_WRITES_PER_CALLBACK) < 0)
        return -1;
    if (c->outq.len > 0 || c->closing)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void gw_conn_flush(struct gw *gw)
{
    struct gw_conn *c;

    while ((c = gw->flush) != NULL) {
        flush_del(gw, c);
        if (c->closing || c->outq.len == 0)
            continue;                       /* a close asked for the writable callback itself */
        if (lws_partial_buffered(c->wsi)) { /* lws still holds a partial write: after it */
            lws_callback_on_writable(c->wsi);
            continue;
        }
        if (write_queued(c, 1) < 0) { /* the socket is gone: lws closes it on its next turn */
            chat_metric_add(&gw->m.write_errors, 1);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            continue;
        }
        if (c->outq.len > 0)
            lws_callback_on_writable(c->wsi);
    }
}

/* ---- client frames ---- */

static void reply_scratch(struct gw_conn *c, int rc)
{
    if (rc == CHAT_OK)
        (void)gw_conn_push_scratch(c);
}

static void handle_auth(struct gw_conn *c, const struct chat_cframe *f)
{
    struct gw *gw = c->gw;
    struct chat_claims cl;
    enum chat_errcode code;
    bool was_authed;

    if (gw_events_token_check(gw, f->token, &cl, &code) != CHAT_OK) {
        gw_conn_error(c, code, NULL, NULL, f->ref, -1);
        return;
    }
    if (c->authed && strcmp(c->claims.sub, cl.sub) != 0) {
        gw_conn_error(c, CHAT_ERR_bad_field, "a connection cannot switch to another user", NULL,
                      f->ref, -1);
        return;
    }
    was_authed = c->authed;
    gw_conn_set_identity(c, &cl);
    chat_buf_reset(&gw->scratch);
    reply_scratch(c, chat_enc_authed(&gw->scratch, cl.sub, cl.exp, f->ref));
    /* logged in on a connection that joined rooms anonymously: the user's mutes in force there,
     * as after a join (a refresh of the same user's token tells nothing new) */
    for (int i = 0; !was_authed && i < c->nrooms; i++)
        gw_acl_sanction_tell(gw, c, c->rooms[i].room->name);
}

/* join {room, since}: every event of the room after since that this node holds, then live.
 * The subscription and the replay happen in one turn of the loop, so no live event falls
 * between them or comes twice. A replay that would take more than half the connection's queue
 * limits is not attempted (recovered: false, the client reads history). */
static void join_since(struct gw_conn *c, const struct chat_cframe *f)
{
    struct gw *gw = c->gw;
    struct gw_recent_iter it;
    struct gw_recent_info info;
    struct chat_msg *m;
    struct gw_room *r;
    int64_t oldest = -1;
    bool rec;

    rec = gw_recent_since(gw->recent, f->room, strlen(f->room), f->since, &it, &oldest) ==
          GW_RECENT_RECOVERED;
    if (rec && (it.n > (size_t)gw->cfg->outq_max_msgs / 2 ||
                it.bytes > (size_t)gw->cfg->outq_max_bytes / 2)) {
        rec = false;
        oldest = gw_recent_peek(gw->recent, f->room, strlen(f->room), &info) ? info.oldest : -1;
    }
    chat_buf_reset(&gw->scratch);
    reply_scratch(
        c, chat_enc_joined_since(&gw->scratch, f->room, f->ref, rec, rec ? it.n : 0, oldest));
    chat_metric_add(rec ? &gw->m.recovered : &gw->m.recover_misses, 1);
    while (rec && (m = gw_recent_next(&it, NULL)) != NULL)
        if (gw_conn_push(c, m) != CHAT_OK)
            return; /* closed as a slow consumer */
    /* this node has not consumed the room up to since yet (the client came from a node ahead):
     * the events up to since are still to come live, and the client holds them */
    if (rec && gw_recent_peek(gw->recent, f->room, strlen(f->room), &info) &&
        info.last < f->since && (r = gw_room_find(&gw->rooms, f->room)) != NULL)
        gw_room_skip_add(r, c, f->since);
}

static void handle_join(struct gw_conn *c, const struct chat_cframe *f)
{
    struct gw *gw = c->gw;
    struct gw_room *r;
    const char *why = NULL, *reason = NULL;
    enum chat_errcode code;
    int64_t until = -1;

    /* may this connection join? (a join already made is answered again: idempotent) */
    if (!gw_room_joined(c, f->room) &&
        (code = gw_acl_join_check(gw, c, f->room, f->grant, &why, &until, &reason)) !=
            CHAT_ERR__COUNT) {
        chat_metric_add(&gw->m.joins_refused, 1);
        if (until >= 0) /* a ban: the moderator's reason, as a refused send carries it */
            gw_conn_error_until(c, code, why, NULL, f->ref, until, reason);
        else
            gw_conn_error(c, code, why, NULL, f->ref, -1);
        return;
    }
    if (gw_room_join(gw, c, f->room) == CHAT_ETOOBIG) {
        gw_conn_error(c, CHAT_ERR_too_many_rooms, NULL, NULL, f->ref, -1);
        return;
    }
    if (f->since >= 0) {
        join_since(c, f);
    } else {
        chat_buf_reset(&gw->scratch);
        reply_scratch(c, chat_enc_joined(&gw->scratch, f->room, f->ref));
    }
    r = gw_room_find(&gw->rooms, f->room);
    if (r && r->presence)
        (void)gw_conn_push(c, r->presence); /* the current counts, right away */
    gw_acl_sanction_tell(gw, c, f->room);   /* a mute in force, before the first send */
}

static void handle_leave(struct gw_conn *c, const struct chat_cframe *f)
{
    struct gw *gw = c->gw;

    (void)gw_room_leave(gw, c, f->room); /* joined: checked by the dispatcher */
    chat_buf_reset(&gw->scratch);
    reply_scratch(c, chat_enc_left(&gw->scratch, f->room, f->ref));
}

static void handle_ping(struct gw_conn *c, const struct chat_cframe *f)
{
    chat_buf_reset(&c->gw->scratch);
    reply_scratch(c, chat_enc_pong(&c->gw->scratch, f->ref, chat_now_ms()));
}

/* The client frames: one handler each. What the row's flags in chat_proto.def demand
 * (CHAT_FF_AUTH, CHAT_FF_JOINED, CHAT_FF_RATE_SEND) is checked once, here, in that order, before
 * the handler runs. */
static void (*const handlers[CHAT_F__COUNT])(struct gw_conn *c, const struct chat_cframe *f) = {
    [CHAT_F_auth] = handle_auth, [CHAT_F_join] = handle_join,   [CHAT_F_leave] = handle_leave,
    [CHAT_F_ping] = handle_ping, [CHAT_F_send] = gw_send_frame, [CHAT_F_read] = gw_reads_frame,
};

static void dispatch(struct gw_conn *c, const struct chat_cframe *f)
{
    unsigned flags = chat_frame_flags(f->type);

    if (f->type <= CHAT_F_NONE || f->type >= CHAT_F__COUNT || !handlers[f->type]) {
        gw_conn_error(c, CHAT_ERR_unknown_type, NULL, NULL, f->ref, -1);
        return;
    }
    if (f->type == CHAT_F_send && f->text_cps > (size_t)gw_acl_max_text(c->gw, f->room)) {
        char msg[80]; /* the room's own limit (the node's was checked by the decoder) */
        snprintf(msg, sizeof(msg), "text is longer than this room's %d code points",
                 gw_acl_max_text(c->gw, f->room));
        gw_conn_error(c, CHAT_ERR_text_too_long, msg, f->client_msg_id, f->ref, -1);
        return;
    }
    if ((flags & CHAT_FF_AUTH) && !c->authed) {
        gw_conn_error(c, CHAT_ERR_auth_required, NULL, f->client_msg_id, f->ref, -1);
        return;
    }
    if ((flags & CHAT_FF_AUTH) && (int64_t)time(NULL) - CHAT_JWT_LEEWAY_S >= c->claims.exp) {
        gw_conn_error(c, CHAT_ERR_token_expired, "the token expired; send auth with a fresh one",
                      f->client_msg_id, f->ref, -1);
        gw_conn_clear_identity(c); /* after the reason: its restricted rooms' left frames */
        return;
    }
    if ((flags & CHAT_FF_JOINED) && !gw_room_joined(c, f->room)) {
        gw_conn_error(c, CHAT_ERR_not_joined, NULL, f->client_msg_id, f->ref, -1);
        return;
    }
    if (f->type == CHAT_F_send) { /* a mute or ban holds for the user, on every connection */
        int64_t until;
        const char *reason;
        enum chat_errcode code = gw_acl_send_check(c->gw, c->claims.sub, f->room, &until, &reason);
        if (code != CHAT_ERR__COUNT) {
            chat_metric_add(&c->gw->m.sanctioned, 1);
            gw_conn_error_until(c, code, NULL, f->client_msg_id, f->ref, until, reason);
            return;
        }
    }
    if (flags & CHAT_FF_RATE_SEND) { /* one bucket per user, whichever of its connections */
        struct gw *gw = c->gw;
        int retry_ms = gw_bucket_take(&gw_map_get(&gw->send_rates, c->claims.sub)->bucket,
                                      gw->cfg->rate_per_s, gw->cfg->rate_burst, chat_mono_us());
        if (retry_ms > 0) {
            chat_metric_add(&gw->m.rate_limited, 1);
            gw_conn_error(c, CHAT_ERR_rate_limited, NULL, f->client_msg_id, f->ref, retry_ms);
            return;
        }
    }
    handlers[f->type](c, f);
}

static void rx_free(struct gw_conn *c)
{
    CHAT_FREE(c->rx);
    c->rx_len = c->rx_cap = 0;
}

/* Appends a fragment to the reassembly buffer; false (nothing appended) when the frame would
 * pass max bytes. */
static bool rx_append(struct gw_conn *c, const void *in, size_t len, size_t max)
{
    size_t need = (size_t)c->rx_len + len, ncap;

    if (need > max)
        return false;
    if (need > c->rx_cap) {
        ncap = c->rx_cap ? c->rx_cap : GW_RX_FIRST;
        while (ncap < need)
            ncap *= 2;
        if (ncap > max)
            ncap = max;
        c->rx = chat_xrealloc(c->rx, ncap);
        c->rx_cap = (uint32_t)ncap;
    }
    if (len)
        memcpy(c->rx + c->rx_len, in, len);
    c->rx_len = (uint32_t)need;
    return true;
}

void gw_conn_trim(struct gw_conn *c)
{
    if (c->outq.len == 0)
        gw_ring_trim(&c->outq);
    if (c->rx_len == 0 && !c->rx_discard)
        rx_free(c);
}

void gw_conn_pong(struct gw_conn *c)
{
    heard(c);
}

long gw_conn_ping_budget(const struct gw *gw)
{
    long spread_s = (gw->cfg->idle_timeout_s - gw->cfg->idle_ping_s) / 2;

    return gw->nconns / (spread_s > 1 ? spread_s : 1) + 1;
}

void gw_conn_keepalive(struct gw_conn *c, int64_t now_us, long *pings)
{
    const struct gw_config *cfg = c->gw->cfg;
    int64_t silent_us = now_us - c->frames.at_us;
    unsigned char ping[LWS_PRE + 1] = {[LWS_PRE] = 'k'};

    if (silent_us < (int64_t)cfg->idle_ping_s * 1000000)
        return;
    if (silent_us >= (int64_t)cfg->idle_timeout_s * 1000000) {
        if (c->closing) { /* a close (this one a sweep ago, or another) did not finish: gone */
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            return;
        }
        chat_metric_add(&c->gw->m.idle_timeouts, 1);
        gw_conn_close(c, CHAT_CLOSE_idle_timeout, "idle_timeout");
        return;
    }
    /* once per silence, whatever is queued: a client that only reads a busy room must be pinged
     * too. Between whole frames: lws puts a write behind a partial one it still holds. */
    if (c->pinged || c->closing || *pings <= 0)
        return;
    --*pings;
    c->pinged = true;
    chat_metric_add(&c->gw->m.pings, 1);
    /* a payload: lws 4.1 passes an empty pong to no callback (gw_conn_pong would not hear it) */
    if (lws_write(c->wsi, ping + LWS_PRE, 1, LWS_WRITE_PING) < 0) {
        chat_metric_add(&c->gw->m.write_errors, 1);
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

void gw_conn_heap_trim(struct gw *gw)
{
    /* opens + closes at the last tick and at the last trim; event-loop thread only */
    static uint64_t seen, trimmed;
    static bool started; /* the first tick trims what starting up left */
    uint64_t churn = 2 * gw->next_cid - (uint64_t)gw->nconns;
    int64_t t0;

    if (churn != seen) { /* still moving: trim once it settles */
        seen = churn;
        return;
    }
    if (started && churn - trimmed < GW_TRIM_BURST)
        return;
    started = true;
    trimmed = churn;
    t0 = chat_mono_us();
    (void)malloc_trim(0);
    chat_log(CHAT_LOG_INFO, "heap trimmed after a burst of connections (%ld open): %lld us",
             gw->nconns, (long long)(chat_mono_us() - t0));
}

static void
bad_frame(struct gw_conn *c, enum chat_errcode code, const char *ref, const char *client_msg_id)
{
    chat_metric_add(&c->gw->m.frames_bad, 1);
    gw_conn_error(c, code, NULL, client_msg_id, ref, -1);
    if (++c->errors_in_row >= c->gw->cfg->max_errors)
        gw_conn_close(c, CHAT_CLOSE_too_many_errors, "too_many_errors");
}

/* A frame over the connection's frame rate is refused without being decoded, yet its error
 * echoes the frame's ref and, of a send, its client_msg_id when they can be read (a send is never
 * left unanswered, and the client matches the answer by them): they are read only from a frame
 * the flat scanner takes (chat/jflat.h: valid UTF-8, a flat object; one pass and one copy,
 * bounded by max_frame), each a string within its cap (proto/README.md section 3). Anything else
 * (nesting, \u escapes, a field of the wrong type or too long) is answered without them, as the
 * decoder would. The refusal stays cheap under a flood: no tree, no field checks. */
static void rate_limited(struct gw_conn *c, const char *text, size_t len, int wait_ms)
{
    const struct chat_jflat_member *ref = NULL, *cmid = NULL, *type;
    struct chat_jflat j = {.n = 0, .buf = NULL};

    chat_metric_add(&c->gw->m.rate_limited, 1);
    if (chat_utf8_valid(text, len, NULL) && chat_jflat_scan(text, len, &j) == CHAT_OK) {
        ref = chat_jflat_get(&j, "ref");
        if (ref && (ref->kind != CHAT_JFLAT_STR || ref->len > CHAT_REF_MAX))
            ref = NULL;
        type = chat_jflat_get(&j, "type");
        if (type && type->kind == CHAT_JFLAT_STR && strcmp(type->s, "send") == 0)
            cmid = chat_jflat_get(&j, "client_msg_id");
        if (cmid && (cmid->kind != CHAT_JFLAT_STR || cmid->len > CHAT_CLIENT_MSG_ID_MAX))
            cmid = NULL;
    }
    gw_conn_error(c, CHAT_ERR_rate_limited, "too many frames", cmid ? cmid->s : NULL,
                  ref ? ref->s : NULL, wait_ms);
    chat_jflat_fini(&j);
}

static void handle_text(struct gw_conn *c, const char *text, size_t len)
{
    const struct gw_config *cfg = c->gw->cfg;
    struct chat_cframe f;
    enum chat_errcode err;
    int wait_ms;

    chat_metric_add(&c->gw->m.frames_in, 1);
    /* every frame costs a token: join/leave/auth floods are limited like sends */
    wait_ms =
        gw_bucket_take(&c->frames, cfg->frame_rate_per_s, cfg->frame_rate_burst, chat_mono_us());
    c->pinged = false; /* heard from (the bucket's at_us is the keep-alive's clock) */
    if (wait_ms > 0) {
        rate_limited(c, text, len, wait_ms);
        return;
    }
    if (chat_cframe_decode(text, len, (size_t)c->gw->cfg->max_text, &f, &err) != CHAT_OK) {
        bad_frame(c, err, f.ref, f.client_msg_id);
    } else {
        c->errors_in_row = 0;
        dispatch(c, &f);
    }
    chat_cframe_fini(&f);
}

int gw_conn_receive(struct gw_conn *c, const void *in, size_t len)
{
    struct lws *wsi = c->wsi;
    bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    size_t max = (size_t)c->gw->cfg->max_frame;

    if (c->closing)
        return 0;
    if (first) {
        c->rx_len = 0;
        c->rx_discard = lws_frame_is_binary(wsi) != 0;
    }
    if (!c->rx_discard) {
        if (first && final) {
            if (len > max)
                bad_frame(c, CHAT_ERR_too_big, NULL, NULL);
            else
                handle_text(c, in, len);
            return 0;
        }
        if (!rx_append(c, in, len, max)) {
            c->rx_discard = true; /* over max_frame: swallow the rest, then report */
            rx_free(c);
        }
    }
    if (!final)
        return 0;
    if (lws_frame_is_binary(wsi))
        bad_frame(c, CHAT_ERR_bad_frame, NULL, NULL);
    else if (c->rx_discard)
        bad_frame(c, CHAT_ERR_too_big, NULL, NULL);
    else
        handle_text(c, (const char *)c->rx, c->rx_len);
    c->rx_discard = false;
    if (c->rx_cap > GW_RX_KEEP) /* a big buffer is not kept for the next frame */
        rx_free(c);
    else
        c->rx_len = 0;
    return 0;
}
