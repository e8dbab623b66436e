/* fuzz_kafka.c - libFuzzer target: the decoders of Kafka record values, which come from other
 * processes (or anyone who can produce to the topics) and are parsed on the gateways and the
 * persister: chat_msg_decode() and chat_msg_splice_seq() (chat.messages), chat_stream_ev_decode()
 * and the deleted and edited forms (the other events of a room's stream), chat_event_decode()
 * (chat.events), chat_presence_decode() (chat.presence). Input bytes are not NUL-terminated.
 * Invariants: an accepted message has a valid room and strings; a spliced value decodes with the
 * spliced seq; a deleted form decodes as deleted, without text; an edited form decodes with the
 * new text; an accepted event has its required fields; a decoded presence room fits. */
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "chat/buf.h"
#include "chat/proto.h"

#include "fuzz.h"

static bool same_str(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (!a || strcmp(a, b) == 0);
}

static void check_msg(const uint8_t *data, size_t size)
{
    struct chat_event_msg m, m2, j;
    struct chat_buf out;
    void *doc = NULL, *doc2 = NULL, *jdoc = NULL;
    int rc = chat_msg_decode((const char *)data, size, &m, &doc);

    if (rc == CHAT_OK) {
        FUZZ_CHECK(doc && chat_room_valid(m.room) && m.user && m.nick && m.text);
    } else {
        FUZZ_CHECK(doc == NULL);
    }
    /* the flat scanner changes no answer: jansson alone reads the same */
    FUZZ_CHECK(chat_msg_decode_as((const char *)data, size, &j, &jdoc, false) == rc);
    if (rc == CHAT_OK)
        FUZZ_CHECK(same_str(j.room, m.room) && same_str(j.user, m.user) &&
                   same_str(j.nick, m.nick) && same_str(j.text, m.text) &&
                   same_str(j.client_msg_id, m.client_msg_id) && j.id == m.id && j.ts == m.ts &&
                   j.seq == m.seq && j.prev == m.prev && j.deleted == m.deleted);
    chat_buf_init(&out, 16, 0);
    if (chat_msg_splice_seq(&out, (const char *)data, size, 123) == CHAT_OK) {
        FUZZ_CHECK(out.len == size + strlen("\"seq\":123,"));
        /* a decodable value without seq (as producers write it) stays decodable, with seq 123 */
        if (jdoc && !json_object_get(jdoc, "seq")) {
            FUZZ_CHECK(chat_msg_decode(chat_buf_data(&out), out.len, &m2, &doc2) == CHAT_OK);
            FUZZ_CHECK(m2.seq == 123 && m2.id == m.id && strcmp(m2.text, m.text) == 0);
            chat_json_free(doc2);
        }
    }
    chat_buf_fini(&out);
    chat_json_free(jdoc);
    chat_json_free(doc);
}

static void check_stream(const uint8_t *data, size_t size)
{
    struct chat_stream_ev e;
    struct chat_event_msg m;
    struct chat_buf out;
    void *doc = NULL;
    int rc = chat_stream_ev_decode((const char *)data, size, &e, &doc);

    if (rc == CHAT_OK) {
        FUZZ_CHECK(doc && chat_room_valid(e.room) && e.type != CHAT_STREAM_UNKNOWN &&
                   e.type != CHAT_STREAM_MESSAGE);
        FUZZ_CHECK(e.type == CHAT_STREAM_SYSTEM ? e.event != NULL : e.user != NULL);
        FUZZ_CHECK(e.type != CHAT_STREAM_EDITED || (e.text && (e.deleted || e.text[0])));
    } else {
        FUZZ_CHECK(doc == NULL);
    }
    chat_json_free(doc);
    chat_buf_init(&out, 16, 0);
    if (chat_msg_to_deleted(&out, (const char *)data, size) == CHAT_OK) {
        doc = NULL;
        if (chat_stream_ev_decode(chat_buf_data(&out), out.len, &e, &doc) == CHAT_OK) {
            FUZZ_CHECK(e.type == CHAT_STREAM_EDITED && e.deleted && e.text && !e.text[0]);
        } else {
            FUZZ_CHECK(chat_msg_decode(chat_buf_data(&out), out.len, &m, &doc) == CHAT_OK);
            FUZZ_CHECK(m.deleted && m.edited_at == 0);
        }
        chat_json_free(doc);
    }
    chat_buf_reset(&out);
    if (chat_msg_to_edited(&out, (const char *)data, size, "new \"text\"", 7) == CHAT_OK) {
        doc = NULL;
        FUZZ_CHECK(chat_msg_decode(chat_buf_data(&out), out.len, &m, &doc) == CHAT_OK);
        FUZZ_CHECK(!m.deleted && m.edited_at == 7 && strcmp(m.text, "new \"text\"") == 0);
        chat_json_free(doc);
    }
    chat_buf_fini(&out);
}

static void check_event(const uint8_t *data, size_t size)
{
    struct chat_event ev;
    int rc = chat_event_decode((const char *)data, size, &ev);

    FUZZ_CHECK(rc == CHAT_OK || rc == CHAT_ENOENT || rc == CHAT_EPROTO);
    if (rc == CHAT_OK) {
        FUZZ_CHECK(ev.user && strlen(ev.user) <= CHAT_USER_MAX);
        if (ev.type == CHAT_EV_user_updated) {
            FUZZ_CHECK(ev.nick != NULL);
        } else if (ev.type == CHAT_EV_member_removed || ev.type == CHAT_EV_room_deleted ||
                   ev.type == CHAT_EV_read) {
            FUZZ_CHECK(ev.room && chat_room_valid(ev.room));
            FUZZ_CHECK(ev.type != CHAT_EV_read || ev.seq >= 0);
            FUZZ_CHECK(ev.type == CHAT_EV_room_deleted || ev.user[0]);
        } else if (ev.type == CHAT_EV_sanction) {
            FUZZ_CHECK(ev.room && (strcmp(ev.room, "*") == 0 || chat_room_valid(ev.room)));
            FUZZ_CHECK(ev.kind && ev.user[0] && ev.until >= 0);
        } else if (ev.type == CHAT_EV_announcement) {
            FUZZ_CHECK(ev.room && ev.text && ev.id);
        } else {
            FUZZ_CHECK(ev.type == CHAT_EV_sessions_revoked && ev.reason && ev.sids);
            for (size_t i = 0; i < ev.nsids; i++)
                FUZZ_CHECK(ev.sids[i] && strlen(ev.sids[i]) <= CHAT_USER_MAX);
            FUZZ_CHECK(ev.sids[ev.nsids] == NULL);
        }
    }
    chat_event_fini(&ev);
}

static void check_room_rec(const uint8_t *data, size_t size)
{
    struct chat_room_rec r;

    if (chat_room_rec_decode((const char *)data, size, &r) == CHAT_OK) {
        FUZZ_CHECK(r.room && chat_room_valid(r.room) && r.kind);
        FUZZ_CHECK(r.max_text >= 1 && r.slow_mode_s >= 0);
    }
    chat_room_rec_fini(&r);
}

static void check_presence(const uint8_t *data, size_t size)
{
    char room[CHAT_ROOM_MAX + 1];
    int64_t conns = -1, users = -1;

    memset(room, 'x', sizeof(room));
    if (chat_presence_decode((const char *)data, size, room, sizeof(room), &conns, &users) ==
        CHAT_OK) {
        FUZZ_CHECK(memchr(room, '\0', sizeof(room)) != NULL);
        FUZZ_CHECK(room[0] == '\0' || chat_room_valid(room));
        FUZZ_CHECK(conns >= 0 && users >= 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_msg(data, size);
    check_stream(data, size);
    check_event(data, size);
    check_room_rec(data, size);
    check_presence(data, size);
    return 0;
}
