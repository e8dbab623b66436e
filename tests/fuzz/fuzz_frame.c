/* fuzz_frame.c - libFuzzer target: the WebSocket client-frame decoder chat_cframe_decode() on
 * arbitrary bytes (not NUL-terminated), then what the gateway does with the result: the error
 * reply echoing ref / client_msg_id, or for a send the message event round trip (encode, splice
 * seq, decode) that carries the text to every node and to the persister.
 * Invariants: a rejected frame has a real error code; an accepted one has a client frame type,
 * a valid room, and for send a text that is valid UTF-8, non-empty, within the limit and free of
 * controls, and that survives the round trip byte for byte. The decoder's flat scanner
 * (chat/jflat.h) changes no answer: jansson alone gives the same result. */
#include <stdbool.h>
#include <string.h>

#include "chat/buf.h"
#include "chat/proto.h"
#include "chat/utf8.h"

#include "fuzz.h"

#define MAX_TEXT 64 /* code points; the limit tests/data/bad assumes */

static bool same_str(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

/* The decode without the flat scanner agrees with f (rc, code, fields). */
static void check_jansson_agrees(
    const uint8_t *data, size_t size, int rc, enum chat_errcode err, const struct chat_cframe *f)
{
    struct chat_cframe g;
    enum chat_errcode e = CHAT_ERR__COUNT;
    int r = chat_cframe_decode_as((const char *)data, size, MAX_TEXT, false, &g, &e);

    FUZZ_CHECK(r == rc && (r == CHAT_OK || e == err) && g.type == f->type);
    FUZZ_CHECK(same_str(g.ref, f->ref) && same_str(g.client_msg_id, f->client_msg_id));
    if (r == CHAT_OK) {
        FUZZ_CHECK(same_str(g.room, f->room) && same_str(g.token, f->token) &&
                   same_str(g.grant, f->grant) && g.since == f->since && g.seq == f->seq);
        FUZZ_CHECK(g.text_len == f->text_len &&
                   (!g.text || memcmp(g.text, f->text, g.text_len) == 0));
    }
    chat_cframe_fini(&g);
}

static void check_send(const struct chat_cframe *f)
{
    struct chat_event_msg m = {.room = f->room,
                               .user = "u_fuzz",
                               .nick = "fuzz",
                               .text = f->text,
                               .client_msg_id = f->client_msg_id,
                               .id = 42,
                               .ts = 1700000000000,
                               .seq = -1};
    struct chat_event_msg back;
    struct chat_buf ev, wire;
    size_t cps = 0;
    void *doc = NULL;

    FUZZ_CHECK(f->text && f->text_len > 0 && strlen(f->text) == f->text_len);
    FUZZ_CHECK(chat_utf8_valid(f->text, f->text_len, &cps) && cps == f->text_cps);
    FUZZ_CHECK(cps <= MAX_TEXT);
    FUZZ_CHECK(!chat_utf8_has_control(f->text, f->text_len, "\n\t"));
    FUZZ_CHECK(fuzz_len_le(f->client_msg_id, CHAT_CLIENT_MSG_ID_MAX));

    chat_buf_init(&ev, 0, 0);
    chat_buf_init(&wire, 0, 0);
    FUZZ_CHECK(chat_enc_message(&ev, &m) == CHAT_OK);
    FUZZ_CHECK(chat_msg_splice_seq(&wire, chat_buf_data(&ev), ev.len, 7) == CHAT_OK);
    FUZZ_CHECK(chat_msg_decode(chat_buf_data(&wire), wire.len, &back, &doc) == CHAT_OK);
    FUZZ_CHECK(strcmp(back.text, f->text) == 0 && strcmp(back.room, f->room) == 0);
    FUZZ_CHECK(back.seq == 7 && back.id == 42);
    FUZZ_CHECK((back.client_msg_id == NULL) == (f->client_msg_id == NULL));
    FUZZ_CHECK(!f->client_msg_id || strcmp(back.client_msg_id, f->client_msg_id) == 0);
    chat_json_free(doc);
    chat_buf_fini(&wire);
    chat_buf_fini(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chat_cframe f;
    enum chat_errcode err = CHAT_ERR__COUNT;
    struct chat_buf out;
    int rc;

    rc = chat_cframe_decode((const char *)data, size, MAX_TEXT, &f, &err);
    FUZZ_CHECK(rc == CHAT_OK || rc == CHAT_EPROTO);
    FUZZ_CHECK(fuzz_len_le(f.ref, 64));
    check_jansson_agrees(data, size, rc, err, &f);
    chat_buf_init(&out, 16, 0);
    if (rc != CHAT_OK) {
        FUZZ_CHECK(err >= 0 && err < CHAT_ERR__COUNT && err != CHAT_ERR_internal);
        FUZZ_CHECK(chat_enc_error(&out, err, NULL, f.client_msg_id, f.ref, -1) == CHAT_OK);
    } else {
        FUZZ_CHECK(f.type == CHAT_F_join || f.type == CHAT_F_leave || f.type == CHAT_F_send ||
                   f.type == CHAT_F_auth || f.type == CHAT_F_ping || f.type == CHAT_F_read);
        switch (f.type) {
        case CHAT_F_join:
        case CHAT_F_leave:
            FUZZ_CHECK(chat_room_valid(f.room));
            FUZZ_CHECK(fuzz_len_le(f.grant, 4096));
            FUZZ_CHECK(chat_enc_joined(&out, f.room, f.ref) == CHAT_OK);
            break;
        case CHAT_F_read:
            FUZZ_CHECK(chat_room_valid(f.room) && f.seq >= 0);
            FUZZ_CHECK(chat_enc_read(&out, f.room, f.seq) == CHAT_OK);
            break;
        case CHAT_F_send:
            FUZZ_CHECK(chat_room_valid(f.room));
            check_send(&f);
            break;
        case CHAT_F_auth:
            FUZZ_CHECK(f.token && fuzz_len_le(f.token, 4096));
            break;
        default:
            FUZZ_CHECK(chat_enc_pong(&out, f.ref, 1) == CHAT_OK);
            break;
        }
    }
    chat_buf_fini(&out);
    chat_cframe_fini(&f);
    return 0;
}
