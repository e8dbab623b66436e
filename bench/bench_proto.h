/* bench/bench_proto.h - the chat protocol as chat-bench speaks it, cheaply.
 *
 * Client frames are built with jansson (no JSON by hand): the send frame once per sender as a
 * template whose ref and text are then overwritten in place for every message, so sending
 * allocates nothing. Server frames are scanned, not parsed: the gateway writes compact JSON in
 * a fixed key order (jansson, JSON_PRESERVE_ORDER), every quote inside a string is escaped, so
 * `"key":` occurs in a frame only as a key. A message frame starts with
 * {"type":"message","seq": (the splice point of chat_msg_splice_seq), and a gateway that saw the
 * room's previous message puts "prev":P, right after the seq (chat_msg_splice_seq_prev).
 * Thread-safety: pure functions; a template belongs to one thread. */
#ifndef BENCH_PROTO_H
#define BENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat/proto.h"

#define BENCH_REF_DIGITS 10 /* send refs are fixed-width decimal numbers */
#define BENCH_TEXT_MIN   48 /* "b:<sender>:<n>:<ns>:" fits in 44 bytes */

/* What a server frame says, as far as chat-bench needs it. Pointers borrow the frame. */
struct bench_frame {
    enum chat_frame_type type; /* CHAT_F_NONE: unknown or not a frame */
    int64_t seq;               /* message, ack: -1 when absent */
    int64_t prev;              /* message: the room's previous seq; -1 when absent */
    const char *room;          /* message, joined, left */
    size_t room_len;
    const char *text; /* message: raw JSON string contents (escapes not decoded) */
    size_t text_len;
    const char *ref; /* ack, joined, left, error, pong */
    size_t ref_len;
    const char *code; /* error: the error code */
    size_t code_len;
    int recovered;    /* joined after join {since}: 1 true, 0 false; -1 when absent */
    int64_t replayed; /* joined with recovered true: messages replayed; -1 when absent */
};

/* Scans one text frame. Never fails: unknown content gives type CHAT_F_NONE. */
void bench_frame_scan(const char *p, size_t n, struct bench_frame *f);

/* Parses a decimal ref (as written by bench_tpl_fill); false when it is not one. */
bool bench_ref_parse(const char *p, size_t n, uint64_t *out);

/* Error code of an error frame as enum chat_errcode; CHAT_ERR__COUNT when unknown. */
enum chat_errcode bench_frame_errcode(const struct bench_frame *f);

/* A send frame {"type":"send","room":R,"ref":"NNNNNNNNNN","text":"..."} with a fixed text
 * length; bench_tpl_fill() patches ref and text in place. */
struct bench_tpl {
    char *buf; /* owns: the whole frame */
    size_t len;
    size_t ref_off;
    size_t text_off, text_len;
};

/* Builds the template for room with a text of text_len bytes.
 * Returns CHAT_OK or CHAT_EINVAL (room not a valid room id, text_len out of range). */
int bench_tpl_init(struct bench_tpl *t, const char *room, size_t text_len);
/* Writes ref (BENCH_REF_DIGITS digits) and the text (exactly t->text_len bytes). */
void bench_tpl_fill(struct bench_tpl *t, uint64_t ref, const char *text);
void bench_tpl_fini(struct bench_tpl *t); /* NULL-safe, idempotent */

/* Writes a {"type":TYPE,"room":ROOM,"ref":REF} frame (join, leave) into out.
 * Returns its length, or 0 when it does not fit in cap. */
size_t bench_enc_room(char *out, size_t cap, const char *type, const char *room, const char *ref);

/* Writes {"type":"join","room":ROOM,"since":SINCE,"ref":REF} (since >= 0) into out.
 * Returns its length, or 0 when it does not fit in cap. */
size_t
bench_enc_join_since(char *out, size_t cap, const char *room, int64_t since, const char *ref);

/* Writes the message text "b:<sender>:<n>:<ns>:" padded with 'x' to len bytes into out (cap
 * >= len + 1, len >= BENCH_TEXT_MIN). Returns len. */
size_t bench_text_fill(char *out, size_t len, uint32_t sender, uint32_t n, int64_t ns);

/* Reads the fields of a text written by bench_text_fill; false for any other text. */
bool bench_text_parse(const char *t, size_t n, uint32_t *sender, uint32_t *num, int64_t *ns);

#endif
