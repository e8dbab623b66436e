/* chat/proto.h - the wire codec: decoders for client frames, encoders for server frames.
 *
 * Frame types, error codes and close codes come from proto/chat_proto.def. Every client frame has
 * one decoder (strict: JSON object, duplicate keys rejected, explicit field types, length caps,
 * UTF-8 checked) and every server frame one encoder writing compact JSON into a chat_buf that may
 * carry LWS_PRE headroom. No other code builds JSON by hand.
 * Thread-safety: pure functions; a decoded frame belongs to its caller. */
#ifndef CHAT_PROTO_H
#define CHAT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/buf.h"
#include "chat/err.h"

#define CHAT_PROTO_VERSION     4
#define CHAT_ROOM_MAX          64 /* bytes of a room id */
#define CHAT_CLIENT_MSG_ID_MAX 64
#define CHAT_REF_MAX           64 /* bytes of a client frame's ref */
#define CHAT_USER_MAX          64

/* What the server checks before it handles a client frame (chat_proto.def's third column). */
enum chat_frame_flag {
    CHAT_FF_AUTH = 1 << 0,      /* a logged-in identity whose token has not expired */
    CHAT_FF_JOINED = 1 << 1,    /* the frame's room is joined by the connection */
    CHAT_FF_RATE_SEND = 1 << 2, /* a token of the user's send bucket (CHAT_RATE_PER_S / _BURST) */
};

enum chat_frame_type {
    CHAT_F_NONE = 0,
#define CHAT_FRAME(name, dir, flags) CHAT_F_##name,
#include "../../../proto/chat_proto.def"
#undef CHAT_FRAME
    CHAT_F__COUNT
};

enum chat_errcode {
#define CHAT_ERROR(name, http, desc) CHAT_ERR_##name,
#include "../../../proto/chat_proto.def"
#undef CHAT_ERROR
    CHAT_ERR__COUNT
};

enum chat_close {
#define CHAT_CLOSE(name, code, reason) CHAT_CLOSE_##name = code,
#include "../../../proto/chat_proto.def"
#undef CHAT_CLOSE
};

const char *chat_frame_name(enum chat_frame_type t);      /* "send"; "" for NONE */
enum chat_frame_type chat_frame_lookup(const char *name); /* CHAT_F_NONE when unknown */
unsigned chat_frame_flags(enum chat_frame_type t);        /* enum chat_frame_flag bits */
const char *chat_errcode_name(enum chat_errcode e);       /* "bad_json" */
const char *chat_errcode_desc(enum chat_errcode e);
/* The HTTP status of a REST answer carrying e (400, 503 ...; 400 for a WebSocket-only code). */
int chat_errcode_http(enum chat_errcode e);
bool chat_errcode_rest(enum chat_errcode e); /* false for the WebSocket-only codes */
const char *chat_close_reason(int code);     /* NULL for codes not in the table */

/* A decoded client frame. String fields are borrowed from the internal JSON document and are
 * valid until chat_cframe_fini(). Absent optional strings are NULL. */
struct chat_cframe {
    enum chat_frame_type type;
    const char *room;          /* join, leave, send */
    const char *text;          /* send */
    size_t text_len;           /* bytes */
    size_t text_cps;           /* Unicode code points */
    const char *client_msg_id; /* send (optional), echoed in ack/error */
    const char *token;         /* auth */
    int64_t since;             /* join: the last seq of the room the client holds; -1: absent */
    const char *grant;         /* join (optional): a room grant from chat-api */
    int64_t seq;               /* read: the seq of the last message read; -1: absent */
    const char *ref;           /* any frame (optional): echoed in the reply's "ref" */
    void *_doc;                /* owns: json_t (a frame the flat scanner did not take) */
    void *_flat;               /* owns: struct chat_jflat (chat/jflat.h), or NULL */
};

/* Decodes one client frame. text[0..len) need not be NUL-terminated.
 * Returns CHAT_OK with *f filled, or CHAT_EPROTO with *err set to the error code for the client;
 * on failure f->ref (and f->client_msg_id) are set when they could be read, so the error reply
 * can echo them. Call chat_cframe_fini() after either result. max_text is the code-point limit
 * for send.text. */
CHAT_NODISCARD int chat_cframe_decode(
    const char *text, size_t len, size_t max_text, struct chat_cframe *f, enum chat_errcode *err);
void chat_cframe_fini(struct chat_cframe *f); /* NULL-safe, idempotent */
/* The same, with the flat scanner (chat/jflat.h) tried first or not: for the tests that hold
 * both parses to the same answers. */
CHAT_NODISCARD int chat_cframe_decode_as(const char *text,
                                         size_t len,
                                         size_t max_text,
                                         bool flat,
                                         struct chat_cframe *f,
                                         enum chat_errcode *err);

/* Valid room id: 1..CHAT_ROOM_MAX bytes of [A-Za-z0-9_.-]. */
bool chat_room_valid(const char *room);

/* ---- server frames: each appends compact JSON to out (which may have headroom) ---- */

struct chat_limits {
    int max_frame;  /* bytes */
    int max_text;   /* code points */
    int max_rooms;  /* per connection */
    int rate_per_s; /* sustained sends per second per connection */
    int rate_burst;
};

/* user may be NULL (anonymous). Returns CHAT_OK or CHAT_ETOOBIG. */
CHAT_NODISCARD int chat_enc_hello(struct chat_buf *out,
                                  const char *node,
                                  const char *user,
                                  const struct chat_limits *lim);
CHAT_NODISCARD int
chat_enc_authed(struct chat_buf *out, const char *user, int64_t exp, const char *ref);
CHAT_NODISCARD int chat_enc_joined(struct chat_buf *out, const char *room, const char *ref);
/* The answer to join with since: {"type":"joined","room","recovered":true,"replayed":N} (the N
 * events after since follow, then live), or {"type":"joined","room","recovered":false,
 * "oldest":SEQ|null} (live only; the client reads the rest from history). */
CHAT_NODISCARD int chat_enc_joined_since(struct chat_buf *out,
                                         const char *room,
                                         const char *ref,
                                         bool recovered,
                                         size_t replayed,
                                         int64_t oldest);
CHAT_NODISCARD int chat_enc_left(struct chat_buf *out, const char *room, const char *ref);
/* The server took the connection out of room: {"type":"left","room":R,"reason":"removed"|"left"|
 * "deleted"} (a member removed, a member that left on another device, the room deleted). */
CHAT_NODISCARD int chat_enc_left_why(struct chat_buf *out, const char *room, const char *reason);
CHAT_NODISCARD int chat_enc_ack(struct chat_buf *out,
                                const char *client_msg_id,
                                uint64_t id,
                                int64_t seq,
                                int64_t ts,
                                const char *ref);
/* A refusal that lasts (muted, chat_banned, banned, site_banned): the error frame with
 * "until" (ms since the epoch; null when until_ms is 0: until lifted) and "reason" (may be NULL:
 * omitted). client_msg_id/ref may be NULL. */
CHAT_NODISCARD int chat_enc_error_until(struct chat_buf *out,
                                        enum chat_errcode code,
                                        const char *message,
                                        const char *client_msg_id,
                                        const char *ref,
                                        int64_t until_ms,
                                        const char *reason);
/* retry_ms < 0: omitted. client_msg_id/ref may be NULL. */
CHAT_NODISCARD int chat_enc_error(struct chat_buf *out,
                                  enum chat_errcode code,
                                  const char *message,
                                  const char *client_msg_id,
                                  const char *ref,
                                  int retry_ms);
/* {"type":"read","room":R,"seq":N}: the user marked room read up to seq (on any connection). */
CHAT_NODISCARD int chat_enc_read(struct chat_buf *out, const char *room, int64_t seq);
CHAT_NODISCARD int chat_enc_pong(struct chat_buf *out, const char *ref, int64_t ts);
CHAT_NODISCARD int chat_enc_bye(struct chat_buf *out, int code, const char *reason);
/* room NULL: the cluster-wide total ("scope":"total"). */
CHAT_NODISCARD int
chat_enc_presence(struct chat_buf *out, const char *room, int64_t conns, int64_t users);

/* Decodes a presence frame (as carried on chat.presence). room gets "" for the total.
 * Returns CHAT_OK or CHAT_EPROTO. */
CHAT_NODISCARD int chat_presence_decode(
    const char *v, size_t len, char *room, size_t cap, int64_t *conns, int64_t *users);

/* ---- REST bodies ---- */
/* {"error":{"code":CODE,"message":MSG}} */
CHAT_NODISCARD int chat_enc_http_error(struct chat_buf *out, const char *code, const char *message);
/* {"node":..,"v":..,"limits":{..},"rules":{"room","client_msg_id_max","username","nickname",
 * "password"}} for GET /api/v1/config */
CHAT_NODISCARD int
chat_enc_config(struct chat_buf *out, const char *node, const struct chat_limits *lim);
/* Decodes the body of POST /api/v1/rooms/{room}/messages: {"text":..,"client_msg_id":..}.
 * Strings borrowed from *doc (free with chat_json_free). Returns CHAT_OK or CHAT_EPROTO with
 * *err set like chat_cframe_decode. */
CHAT_NODISCARD int chat_rest_send_decode(
    const char *body, size_t len, size_t max_text, struct chat_cframe *f, enum chat_errcode *err);

/* ---- sessions on an open WebSocket ---- */
/* {"type":"session_expiring","exp":S,"in_ms":N} */
CHAT_NODISCARD int chat_enc_session_expiring(struct chat_buf *out, int64_t exp, int64_t in_ms);
CHAT_NODISCARD int chat_enc_session_expired(struct chat_buf *out);
/* {"type":"session_revoked","reason":R} */
CHAT_NODISCARD int chat_enc_session_revoked(struct chat_buf *out, const char *reason);

/* ---- accounts (REST bodies) ---- */
struct chat_user {
    const char *id, *username, *nickname, *role; /* borrowed */
    int64_t created_at;                          /* ms since the epoch */
};
struct chat_session_out {
    const char *access_token, *refresh_token, *session_id; /* borrowed */
    int64_t expires_in, refresh_expires_in;                /* seconds */
};
struct chat_login {
    const char *id, *ip, *user_agent, *reason; /* borrowed; ip/user_agent may be NULL */
    int64_t at;                                /* ms since the epoch */
    bool success;
};
/* {"id","username","nickname","role","created_at"} */
CHAT_NODISCARD int chat_enc_user(struct chat_buf *out, const struct chat_user *u);
/* {"user":{..},"access_token","token_type":"Bearer","expires_in","refresh_token",
 *  "refresh_expires_in","session_id"} */
CHAT_NODISCARD int
chat_enc_session(struct chat_buf *out, const struct chat_user *u, const struct chat_session_out *s);
/* {"revoked_sessions":N} */
CHAT_NODISCARD int chat_enc_revoked(struct chat_buf *out, long n);
/* {"logins":[..],"next_before":ID|null} */
CHAT_NODISCARD int chat_enc_logins(struct chat_buf *out,
                                   const struct chat_login *v,
                                   size_t n,
                                   const char *next_before);

#define CHAT_AUTH_FIELD_MAX 1024 /* bytes of one string field of an account request body */

/* The body of any account request: every field optional here, the handler says which it needs.
 * Strings are borrowed from _doc, valid until chat_auth_body_fini(). */
struct chat_auth_body {
    const char *username, *password, *nickname, *refresh_token, *current_password, *new_password;
    bool all; /* logout: every session of the user */
    void *_doc;
};
/* An empty body is {}. Unknown fields are ignored. Returns CHAT_OK, or CHAT_EPROTO with *err
 * bad_utf8, bad_json (not an object, duplicate key) or bad_field (wrong type, NUL inside, longer
 * than CHAT_AUTH_FIELD_MAX). Call chat_auth_body_fini() after either result. */
CHAT_NODISCARD int chat_auth_body_decode(const char *body,
                                         size_t len,
                                         struct chat_auth_body *b,
                                         enum chat_errcode *err);
void chat_auth_body_fini(struct chat_auth_body *b);

/* ---- chat.events: control events, key = user id ----
 *   {"type":"sessions_revoked","user":U,"sids":["34",..],"reason":R,"ts":MS}
 *   {"type":"user_updated","user":U,"nick":N,"ts":MS}
 *   {"type":"member_removed","user":U,"room":R,"reason":"removed|left|banned","ts":MS}
 *   {"type":"room_deleted","user":"","room":R,"ts":MS}   (key = room id)
 *   {"type":"read","user":U,"room":R,"seq":N,"ts":MS}
 *   {"type":"sanction","user":U,"room":R|"*","kind":K,"until":MS|null,"reason":S,"ts":MS}
 *       (a gateway's spam-rule chat ban; the same value as a chat.sanctions record)
 *   {"type":"announcement","user":"","room":R|"*","id":"ID","text":T,"ts":MS} */
enum chat_event_type {
    CHAT_EV_NONE = 0,
    CHAT_EV_sessions_revoked,
    CHAT_EV_user_updated,
    CHAT_EV_member_removed,
    CHAT_EV_room_deleted,
    CHAT_EV_read,
    CHAT_EV_sanction,
    CHAT_EV_announcement,
};
struct chat_event {
    enum chat_event_type type;
    const char *user, *nick, *reason, *room; /* borrowed from _doc */
    const char **sids;                       /* owns the array; strings borrowed */
    size_t nsids;
    int64_t ts;
    int64_t seq;                  /* read */
    const char *kind, *text, *id; /* sanction (kind), announcement (text, id); borrowed */
    int64_t until;                /* sanction: ms since the epoch, 0 = until lifted */
    int64_t offence;              /* sanction of the spam rule: the offence number (0: none) */
    void *_doc;
};
/* {"type":"sanction",...}: the value of a chat.sanctions record and of a chat.events sanction;
 * until_ms 0: null (until lifted). */
CHAT_NODISCARD int chat_enc_sanction(struct chat_buf *out,
                                     const char *user,
                                     const char *room,
                                     const char *kind,
                                     int64_t until_ms,
                                     const char *reason,
                                     int64_t ts);
/* To every connection of the sanctioned user: {"type":"sanction","room":R|"*","kind":K,
 * "until":MS|null,"reason":S} (until_ms 0: null) and, when lifted early,
 * {"type":"sanction_lifted","room":R|"*","kind":K}. */
CHAT_NODISCARD int chat_enc_sanction_frame(
    struct chat_buf *out, const char *room, const char *kind, int64_t until_ms, const char *reason);
CHAT_NODISCARD int
chat_enc_sanction_lifted(struct chat_buf *out, const char *room, const char *kind);
/* A gateway's or chat-api's spam-rule chat ban for chat.events: a site-wide (room "*") chat_ban
 * with reason "spam" until until_ms, plus "offence": N (the user's N-th within the window). */
CHAT_NODISCARD int chat_enc_spam_ban(
    struct chat_buf *out, const char *user, int64_t until_ms, int offence, int64_t ts);
/* The key of a chat.sanctions record: "USER ROOM KIND" (room "*": site-wide). CHAT_OK or
 * CHAT_ETOOBIG. */
CHAT_NODISCARD int
chat_sanction_key(char *out, size_t cap, const char *user, const char *room, const char *kind);
CHAT_NODISCARD int chat_enc_ev_member_removed(
    struct chat_buf *out, const char *user, const char *room, const char *reason, int64_t ts);
CHAT_NODISCARD int chat_enc_ev_room_deleted(struct chat_buf *out, const char *room, int64_t ts);
CHAT_NODISCARD int
chat_enc_ev_read(struct chat_buf *out, const char *user, const char *room, int64_t seq, int64_t ts);
CHAT_NODISCARD int chat_enc_ev_sessions_revoked(struct chat_buf *out,
                                                const char *user,
                                                const char *const *sids,
                                                size_t n,
                                                const char *reason,
                                                int64_t ts);
CHAT_NODISCARD int
chat_enc_ev_user_updated(struct chat_buf *out, const char *user, const char *nick, int64_t ts);
/* Returns CHAT_OK, CHAT_ENOENT (a well-formed event of a type this version does not know: skip
 * it) or CHAT_EPROTO. Call chat_event_fini() after any result. */
CHAT_NODISCARD int chat_event_decode(const char *v, size_t len, struct chat_event *ev);
void chat_event_fini(struct chat_event *ev);

/* ---- chat.rooms: a room's settings, key = room id (compacted; a null value = deleted) ----
 *   {"type":"room","room":R,"kind":"public|private|group|direct","max_text":N,"slow_mode_s":S,
 *    "ts":MS} */
struct chat_room_rec {
    const char *room, *kind; /* borrowed from _doc */
    int max_text;
    int slow_mode_s; /* 0: off (absent in records written before issue 13) */
    int64_t ts;
    void *_doc;
};
CHAT_NODISCARD int chat_enc_room_rec(struct chat_buf *out,
                                     const char *room,
                                     const char *kind,
                                     int max_text,
                                     int slow_mode_s,
                                     int64_t ts);
/* Returns CHAT_OK or CHAT_EPROTO (kind unknown, max_text < 1, room invalid). Call
 * chat_room_rec_fini() after either result. */
CHAT_NODISCARD int chat_room_rec_decode(const char *v, size_t len, struct chat_room_rec *r);
void chat_room_rec_fini(struct chat_room_rec *r);

/* ---- the message event: produced once by the accepting gateway, spliced per node ----
 * The Kafka value of chat.messages is the message frame without "seq":
 *   {"type":"message","room":R,"id":"ID","user":U,"nick":N,"text":T,"ts":MS[,"client_msg_id":C]}
 * Each consuming node inserts "seq":OFFSET, (chat_msg_splice_seq) or "seq":OFFSET,"prev":P,
 * (chat_msg_splice_seq_prev: P is the seq of the room's previous event when the node saw it)
 * after the leading {"type":"message", prefix; nothing else in the value changes. */
struct chat_event_msg {
    const char *room, *user, *nick, *text, *client_msg_id; /* borrowed; client_msg_id may be NULL */
    uint64_t id;
    int64_t ts;   /* server time, ms since the epoch */
    int64_t seq;  /* -1 when absent */
    int64_t prev; /* -1 when absent; read by chat_msg_decode, never written by chat_enc_message */
    bool deleted; /* soft-deleted: encoded as ...,"ts":TS,"deleted":true,"text":"" (text and
                   * client_msg_id left out); read by chat_msg_decode */
    int64_t edited_at; /* > 0: the newest edit's ts, encoded after "ts" (history and recovery
                        * forms of an edited message); 0: never edited */
};

#define CHAT_MSG_PREFIX     "{\"type\":\"message\","
#define CHAT_MSG_PREFIX_LEN (sizeof(CHAT_MSG_PREFIX) - 1)

CHAT_NODISCARD int chat_enc_message(struct chat_buf *out, const struct chat_event_msg *m);
/* Writes the client frame for Kafka value v (seq spliced in) into out: v is any record of a
 * room's stream (message, message_deleted, system: chat_msg_stream_prefix).
 * Returns CHAT_OK or CHAT_EPROTO when v does not start with a stream type's prefix. */
CHAT_NODISCARD int
chat_msg_splice_seq(struct chat_buf *out, const char *v, size_t len, int64_t seq);
/* As chat_msg_splice_seq, inserting "seq":SEQ,"prev":PREV, (just "seq":SEQ, when prev < 0: the
 * node has not seen the room's previous event). Returns CHAT_OK, CHAT_EPROTO (v does not start
 * with a stream type's prefix) or an error of chat_buf_reserve (CHAT_ETOOBIG); out unchanged on
 * error. */
CHAT_NODISCARD int chat_msg_splice_seq_prev(
    struct chat_buf *out, const char *v, size_t len, int64_t seq, int64_t prev);
/* A quick filter before chat_msg_decode(): whether the NUL-terminated message frame (as this
 * codec encodes it) may be message id's. */
bool chat_msg_has_id(const char *frame, uint64_t id);
/* Writes the deleted form of a message frame (seq and prev kept, text dropped) or of a
 * message_edited frame (text "" and "deleted":true) into out. Returns CHAT_OK, CHAT_EPROTO
 * (neither) or a chat_buf error. */
CHAT_NODISCARD int chat_msg_to_deleted(struct chat_buf *out, const char *frame, size_t len);
/* Writes the edited form of message frame (seq, prev and client_msg_id kept; text, and
 * "edited_at":edited_at after "ts") into out, unless the message is deleted (then CHAT_ENOENT,
 * out unchanged). Edits are applied in stream order, so the last one applied is the newest.
 * Returns CHAT_OK, CHAT_ENOENT, CHAT_EPROTO (not a message frame) or a chat_buf error. */
CHAT_NODISCARD int chat_msg_to_edited(
    struct chat_buf *out, const char *frame, size_t len, const char *text, int64_t edited_at);

/* ---- the other record types of a room's stream (chat.messages, keyed by room) ----
 * Every record of a room's stream starts {"type":"<type>", and gets "seq"/"prev" spliced after
 * that prefix like a message (one sequence per room, proto/README.md sections 5 and 11):
 *   {"type":"message_deleted","room":R,"id":"MSGID","by":U,"ts":MS}
 *   {"type":"message_edited","room":R,"id":"MSGID","user":AUTHOR,"text":T,"ts":MS}
 *     (its deleted form, once the message is deleted: ...,"text":"","ts":MS,"deleted":true})
 *   {"type":"system","room":R,"event":E,"id":"ID","ts":MS[,"user":U][,"nick":N][,"text":T]}
 * A record whose type this version does not know is not a stream event here: the splice
 * refuses it (CHAT_EPROTO), so gateways and the persister skip it without advancing the room's
 * last seq, and the prev chain links the events they do deliver. */
enum chat_stream_type {
    CHAT_STREAM_UNKNOWN = 0,
    CHAT_STREAM_MESSAGE = 1,
    CHAT_STREAM_DELETED = 2, /* message_deleted */
    CHAT_STREAM_SYSTEM = 3,
    CHAT_STREAM_EDITED = 4, /* message_edited */
};
/* The longest type name looked at (longer ones are not stream types). */
#define CHAT_STREAM_TYPE_MAX 32
/* Returns the length of v's leading {"type":"<type>", when <type> is a stream type of this
 * version (*type set, when type is not NULL), else 0 (*type CHAT_STREAM_UNKNOWN). */
size_t chat_msg_stream_prefix(const char *v, size_t len, enum chat_stream_type *type);
/* {"type":"message_deleted","room":R,"id":"ID","by":BY,"ts":TS}. Returns CHAT_OK or a chat_buf
 * error. */
CHAT_NODISCARD int chat_enc_msg_deleted(
    struct chat_buf *out, const char *room, uint64_t id, const char *by, int64_t ts);
/* {"type":"message_edited","room":R,"id":"ID","user":AUTHOR,"text":T,"ts":TS}. Returns CHAT_OK
 * or a chat_buf error. */
CHAT_NODISCARD int chat_enc_msg_edited(struct chat_buf *out,
                                       const char *room,
                                       uint64_t id,
                                       const char *user,
                                       const char *text,
                                       int64_t ts);
/* A system event of a room (chat-api: a member joined, left, was removed, the room changed). */
struct chat_system_ev {
    const char *room, *event;       /* event: joined|left|kicked|banned|muted|room_updated|... */
    const char *user, *nick, *text; /* each may be NULL: left out */
    const char *message;            /* pinned, unpinned: the message's id; may be NULL */
    uint64_t id;
    int64_t ts;
};
/* {"type":"system","room","event","id","ts"[,"user"][,"nick"][,"text"][,"message"]}. Returns
 * CHAT_OK or a chat_buf error. */
CHAT_NODISCARD int chat_enc_system(struct chat_buf *out, const struct chat_system_ev *e);

/* A decoded message_deleted, message_edited or system record (strings borrowed from the
 * decoder's doc). */
struct chat_stream_ev {
    enum chat_stream_type type; /* CHAT_STREAM_DELETED, CHAT_STREAM_EDITED or CHAT_STREAM_SYSTEM */
    const char *room;
    uint64_t id;           /* deleted, edited: the message's id; system: the event's id */
    const char *user;      /* deleted: "by" (who deleted); edited: the author; system: the member
                            * concerned or NULL */
    const char *nick;      /* system only; may be NULL */
    const char *event;     /* system only */
    const char *text;      /* edited: the new text ("" in its deleted form); system: may be NULL */
    bool deleted;          /* edited: its deleted form */
    int64_t ts, seq, prev; /* seq/prev -1 when absent */
};
/* Decodes a message_deleted, message_edited or system record (with or without seq/prev);
 * strings borrowed from *doc (chat_json_free()). Returns CHAT_OK or CHAT_EPROTO (a message, an
 * unknown type, a field missing or malformed). */
CHAT_NODISCARD int
chat_stream_ev_decode(const char *v, size_t len, struct chat_stream_ev *e, void **doc);

/* Decodes a message event (with or without seq; prev, when present, needs 0 <= prev < seq);
 * strings borrowed from *doc, which the caller frees with chat_json_free(). Returns CHAT_OK or
 * CHAT_EPROTO. */
CHAT_NODISCARD int chat_msg_decode(const char *v, size_t len, struct chat_event_msg *m, void **doc);
/* The same, with the flat scanner (chat/jflat.h) tried first or not (jansson only): the
 * document then is a flat one or jansson's, both freed by chat_json_free(); for the tests that
 * hold both parses to the same answers. */
CHAT_NODISCARD int
chat_msg_decode_as(const char *v, size_t len, struct chat_event_msg *m, void **doc, bool flat);
/* Frees a document of any decoder here (NULL-safe). */
void chat_json_free(void *doc);

/* ---- history (REST, proto/README.md section 9 "History") ----
 * {"messages":[FRAME,..],"more":bool,"source":SOURCE}: frames is n message frames already encoded
 * by this codec (chat_msg_splice_seq_prev) or checked with chat_msg_decode (the Redis cache),
 * separated by commas (frames->len 0: none). Returns CHAT_OK or a chat_buf error. */
CHAT_NODISCARD int chat_enc_history(struct chat_buf *out,
                                    const struct chat_buf *frames,
                                    bool more,
                                    const char *source);
/* The body of POST /api/v1/rooms/{room}/read: {"seq":N}, 0 <= N <= INT64_MAX; other fields are
 * ignored. Returns CHAT_OK, or CHAT_EPROTO with *err bad_utf8, bad_json (not an object,
 * duplicate key) or bad_field (seq missing, not an integer, negative). */
CHAT_NODISCARD int
chat_read_body_decode(const char *body, size_t len, int64_t *seq, enum chat_errcode *err);
/* {"last_read_seq":M,"unread":K} */
CHAT_NODISCARD int chat_enc_read_state(struct chat_buf *out, int64_t last_read_seq, int64_t unread);

/* ---- idempotent sends: the ack remembered under chat:idem:USER:CLIENT_MSG_ID (chat/idem.h) ----
 *   {"room":R,"id":"ID","seq":N,"ts":MS} */
struct chat_idem_ack {
    char room[CHAT_ROOM_MAX + 1];
    uint64_t id;
    int64_t seq;
    int64_t ts;
};
/* Returns CHAT_OK or CHAT_ETOOBIG (out's cap). */
CHAT_NODISCARD int
chat_enc_idem_ack(struct chat_buf *out, const char *room, uint64_t id, int64_t seq, int64_t ts);
/* Returns CHAT_OK with *a filled, or CHAT_EPROTO (not such an object, room invalid, id not a
 * decimal u64, seq < 0). Unknown fields are ignored. */
CHAT_NODISCARD int chat_idem_ack_decode(const char *v, size_t len, struct chat_idem_ack *a);

/* ---- announcements (issue 13, POST /api/v1/admin/announce) ----
 * The chat.events record (key "*" for everyone, room "*"):
 *   {"type":"announcement","user":"","room":R|"*","id":"ID","text":T,"ts":MS}
 * The frame every connection gets: {"type":"announcement","id":"ID","text":T,"ts":MS}.
 * Strings borrowed; returns CHAT_OK or a chat_buf error. */
CHAT_NODISCARD int chat_enc_ev_announcement(
    struct chat_buf *out, const char *room, const char *id, const char *text, int64_t ts);
CHAT_NODISCARD int
chat_enc_announcement(struct chat_buf *out, const char *id, const char *text, int64_t ts);

/* A REST error with the end of a sanction (site_banned):
 * {"error":{"code","message","until":MS|null,"reason":S}}; until_ms 0: null (until lifted). */
CHAT_NODISCARD int chat_enc_http_error_until(struct chat_buf *out,
                                             const char *code,
                                             const char *message,
                                             int64_t until_ms,
                                             const char *reason);

#endif
