/* gw_conn.h - a WebSocket connection: its identity (and its place in the per-user index
 * gw->users), its rooms (the back-index of room/gw_room.h), the bounded send queue, the
 * assembly of fragmented client frames and the dispatch of client frames to their handlers.
 * The struct lives inside the lws per-session data (ws/gw_pss.h): lws owns the memory, and
 * gw_conn_closed() releases what the connection owns. Thread-safety: none; event-loop thread
 * only. */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/buf.h"
#include "chat/jwt.h"
#include "chat/proto.h"

#include "room/gw_bucket.h"
#include "room/gw_room.h"
#include "ws/gw_ring.h"

struct chat_msg;
struct gw;
struct gw_pending;
struct lws;

/* What a connection keeps of its access token: the claims the gateway uses after the check
 * (role, iat, nbf and room are not kept: gw_conn_claims() gives a struct chat_claims back).
 * sub is the key of the user's entry in gw->users (interned: no copy per connection); sid and
 * name share one allocation. Each is "" when anonymous or absent. */
struct gw_ident {
    const char *sub;
    const char *sid;
    const char *name;
    char *ext;   /* owns "SID\0NAME\0", or NULL when both are "" */
    int64_t exp; /* valid when authed */
};

/* Ordered by size so no byte is padding: every idle connection holds one (docs/BENCHMARKS.md,
 * "Idle memory per connection"). */
struct gw_conn {
    struct gw *gw;
    struct lws *wsi;
    struct gw_conn *prev, *next;   /* in gw->conns */
    struct gw_conn *uprev, *unext; /* in gw->users' entry of claims.sub while authed */
    /* identity */
    struct gw_ident claims; /* what the token said; "" fields when anonymous */
    /* rooms: rooms_cap slots; the first room's slot is room1 (no allocation for a connection in
     * one room), more rooms move to the heap, grown on demand to max_rooms (room/gw_room.c) */
    struct gw_membership *rooms;
    struct gw_membership room1;
    /* send queue: inline slots, grown on demand up to cfg->outq_max_msgs, given back when it
     * empties (big) or at the idle sweep (small) */
    struct gw_ring outq;
    struct gw_conn *fprev, *fnext; /* in gw->flush while flushing */
    const char *close_reason;
    /* receive: fragments of a multi-fragment frame (NULL while none; given back when the
     * frame is over rx_keep bytes or at the idle sweep) */
    unsigned char *rx;
    /* frames per second from this connection (all types); its at_us is also when the client
     * was last heard from (a frame, a pong, or the upgrade): the keep-alive's clock */
    struct gw_bucket frames;
    /* hashes of the last CHAT_SPAM_LAST texts sent (bus/gw_spam.c): NULL before the first */
    uint64_t *sent;
    /* sends awaiting Kafka (bus/gw_send.c) */
    struct gw_pending *pending;
    /* the sends not produced yet, in frame order (bus/gw_send.c): the tail of a circular list,
     * NULL when none waits; a send waiting for Redis holds the later ones of the connection */
    struct gw_pending *sendq;
    uint32_t cid; /* connection number (the low 32 bits of gw->next_cid), for logs */
    int errors_in_row;
    uint32_t rx_len, rx_cap;
    int npending;
    uint16_t nrooms, rooms_cap; /* max_rooms is at most 10,000 (shared_cfg.h) */
    uint16_t close_code;        /* a WebSocket close code */
    uint8_t nsent, sent_pos;    /* CHAT_SPAM_LAST is at most 100 (spam.h) */
    bool authed : 1;
    bool expiry_warned : 1; /* session_expiring sent for claims.exp */
    bool flushing : 1;      /* queued on an empty queue this turn: written before the loop waits */
    bool closing : 1;       /* close after the queue's current frame; queue no more */
    bool rx_discard : 1;    /* current message is over max_frame: drop until final */
    bool pinged : 1;        /* a keep-alive ping went out since the client was last heard */
};

/* LWS_CALLBACK_ESTABLISHED: initialises c (lws's memory) and links it into gw; returns c. */
struct gw_conn *gw_conn_open(struct gw *gw, struct lws *wsi, struct gw_conn *c);
/* LWS_CALLBACK_CLOSED: detaches pending sends, leaves every room, frees what c owns. No-op for a
 * connection never opened. */
void gw_conn_closed(struct gw_conn *c);
/* Queues m (takes a new reference). Over the queue limit the connection is closed as a slow
 * consumer. Returns CHAT_OK or CHAT_EAGAIN (not queued). */
int gw_conn_push(struct gw_conn *c, struct chat_msg *m);
/* Encodes nothing: queues the bytes of gw->scratch as a private frame. */
int gw_conn_push_scratch(struct gw_conn *c);
/* Queues an error frame (msg, client_msg_id and ref may be NULL; retry_ms -1 for none). */
void gw_conn_error(struct gw_conn *c,
                   enum chat_errcode code,
                   const char *msg,
                   const char *client_msg_id,
                   const char *ref,
                   int retry_ms);
/* An error frame for a refusal that lasts: "until" (until_ms 0: null, until lifted) and
 * "reason" (muted, chat_banned, banned). */
void gw_conn_error_until(struct gw_conn *c,
                         enum chat_errcode code,
                         const char *msg,
                         const char *client_msg_id,
                         const char *ref,
                         int64_t until_ms,
                         const char *reason);
/* Closes after what is queued now with a WebSocket close code. */
void gw_conn_close(struct gw_conn *c, int code, const char *reason);
/* Handles LWS_CALLBACK_SERVER_WRITEABLE; returns -1 to close. */
int gw_conn_writable(struct gw_conn *c);
/* Before the loop waits for I/O (a uv_prepare handle): writes what was queued this turn on the
 * connections whose queue was empty, without waiting for POLLOUT. */
void gw_conn_flush(struct gw *gw);
/* Handles LWS_CALLBACK_RECEIVE; returns -1 to close. */
int gw_conn_receive(struct gw_conn *c, const void *in, size_t len);
/* Logs c in as cl's user (presence counts and the per-user index follow). A token with another
 * exp than the one c holds re-arms session_expiring; the same token again does not. */
void gw_conn_set_identity(struct gw_conn *c, const struct chat_claims *cl);
/* Fills out with c's identity (sub, sid, name, exp; role "user"; the rest zero). */
void gw_conn_claims(const struct gw_conn *c, struct chat_claims *out);
/* A nickname change: c's display name becomes name. */
void gw_conn_set_name(struct gw_conn *c, const char *name);
/* Makes c anonymous. It leaves its restricted rooms (ids starting with "_"), each with a left
 * frame (reason "removed"): they were joined with a grant for the user c no longer is
 * (room/gw_acl.c, gw_acl_identity_lost). It stays in its public rooms, which anyone may watch.
 * So a connection in a restricted room is always logged in as the user its grant named (an
 * authenticated connection cannot switch users), and removals and bans, which walk the user's
 * connections (gw->users), reach every socket subscribed as that user. Tell c why it lost its
 * identity before calling this, so that its left frames come after the reason. */
void gw_conn_clear_identity(struct gw_conn *c);
/* The idle sweep (once a second): an empty send queue gives back its heap slots and a
 * connection between frames its reassembly buffer, so an idle connection holds neither. */
void gw_conn_trim(struct gw_conn *c);
/* LWS_CALLBACK_RECEIVE_PONG: the client was heard from. */
void gw_conn_pong(struct gw_conn *c);
/* The keep-alive, from the idle sweep: a WebSocket ping to a connection silent (no frame, no
 * pong) for CHAT_IDLE_PING_S, a close with 4009 idle_timeout after CHAT_IDLE_TIMEOUT_S, and the
 * socket dropped at a later sweep when a close (that one, or one for another reason) has not
 * finished while the connection stays silent that long. Here rather than lws's
 * validity timers: lws 4.1 keeps those in one sorted list inserted by a linear walk, so 19,000
 * connections stalled the loop for seconds at each round of pings (docs/ARCHITECTURE.md).
 * *pings is what this sweep may still send (gw_conn_ping_budget): a ping over it waits for a
 * later sweep. */
void gw_conn_keepalive(struct gw_conn *c, int64_t now_us, long *pings);
/* Pings one sweep may send: the node's connections spread over half the time between
 * CHAT_IDLE_PING_S and CHAT_IDLE_TIMEOUT_S (at least one sweep), so connections that went silent
 * together (opened together) are not all pinged in one turn of the loop (19,000 writes), and
 * each is still pinged well before its timeout. */
long gw_conn_ping_budget(const struct gw *gw);
/* The idle sweep's second half (once a second, after gw_conn_trim on every connection): at the
 * first tick (what starting up left) and once a burst of at least GW_TRIM_BURST connection
 * opens and closes has settled (a second with none), gives the heap's free pages back to the
 * system (malloc_trim: 0.2-1.6 ms for 8,000 connections). The handshakes and first frames
 * of a burst leave free pages between the connections' long-lived allocations (about 350 bytes
 * per connection after a ramp, docs/BENCHMARKS.md "Idle memory per connection") that glibc
 * would otherwise keep. Logs the time it took. */
void gw_conn_heap_trim(struct gw *gw);

#endif
