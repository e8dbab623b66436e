/* test_proto.c - the wire codec against proto/examples (the canonical encodings).
 *
 * Client examples must decode with the expected fields; every server example is rebuilt with its
 * chat_enc_* encoder from the decoded values and compared byte for byte (each file is the compact
 * encoding plus one newline). Also: the Kafka message value and its seq splice, the REST bodies
 * (config, accounts: users, sessions, login history), the account request body decoder, the
 * chat.events control events (encode, decode, unknown types, malformed values), and
 * proto/README.md naming every entry of chat_proto.def. Malformed client frames are covered by
 * test_proto_decode.c. The proto directory comes from CHAT_PROTO_DIR or argv[1]. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <dirent.h>
#include <jansson.h>

#include "chat/buf.h"
#include "chat/id.h"
#include "chat/mem.h"
#include "chat/proto.h"

#include "test_util.h"

#define TEST_MAX_TEXT 64 /* code points: the fixed limit the examples assume */

static const char *proto_dir = CHAT_PROTO_DIR;

/* ---- helpers ---- */

/* Loads proto/examples/NAME.json; returns new text without the final newline. */
static char *load_example(const char *name, size_t *len)
{
    char *path = chat_xasprintf("%s/examples/%s.json", proto_dir, name);
    char *s = read_file(path, len);

    if (!s)
        fail_msg("cannot read %s", path);
    chat_free(path);
    assert_true(*len > 0 && s[*len - 1] == '\n');
    s[--*len] = '\0';
    assert_null(memchr(s, '\n', *len)); /* one compact line */
    return s;
}

/* Parses a server example into a JSON object (test side: plain jansson). */
static json_t *parse_example(const char *text, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);

    if (!j)
        fail_msg("example does not parse: %s", e.text);
    assert_true(json_is_object(j));
    return j;
}

static const char *opt_string(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t req_int(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static uint64_t parse_id(const char *s)
{
    char *end = NULL;
    uint64_t v;

    assert_non_null(s);
    v = strtoull(s, &end, 10);
    assert_true(end && *end == '\0');
    return v;
}

/* Compares the encoder's output with the example text, byte for byte. */
static void assert_same(const struct chat_buf *b, const char *want, size_t len)
{
    if (b->len != len || memcmp(chat_buf_data(b), want, len) != 0)
        fail_msg("encoder output differs from the example\n  got:  %s\n  want: %s",
                 chat_buf_data(b), want);
}

/* ---- client examples decode ---- */

static void decode_example(const char *name, struct chat_cframe *f)
{
    enum chat_errcode err;
    size_t len;
    char *s = load_example(name, &len);
    int rc = chat_cframe_decode(s, len, TEST_MAX_TEXT, f, &err);

    if (rc != CHAT_OK)
        fail_msg("%s.json: decode failed with %s", name, chat_errcode_name(err));
    chat_free(s); /* decoded strings live in f->_doc, not in the input */
    assert_int_equal(f->type, chat_frame_lookup(name));
}

static void test_proto_example_auth(void **state)
{
    struct chat_cframe f;

    (void)state;
    decode_example("auth", &f);
    assert_non_null(f.token);
    assert_int_equal(strncmp(f.token, "eyJ", 3), 0);
    assert_string_equal(f.ref, "a1");
    assert_null(f.room);
    chat_cframe_fini(&f);
}

static void test_proto_example_join(void **state)
{
    struct chat_cframe f;

    (void)state;
    decode_example("join", &f);
    assert_string_equal(f.room, "lobby");
    assert_string_equal(f.ref, "j1");
    chat_cframe_fini(&f);
}

static void test_proto_example_leave(void **state)
{
    struct chat_cframe f;

    (void)state;
    decode_example("leave", &f);
    assert_string_equal(f.room, "lobby");
    assert_string_equal(f.ref, "l1");
    chat_cframe_fini(&f);
}

static void test_proto_example_send(void **state)
{
    struct chat_cframe f;

    (void)state;
    decode_example("send", &f);
    assert_string_equal(f.room, "lobby");
    assert_string_equal(f.text, "Hello, world! \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
                                "\xf0\x9f\x91\x8b");
    assert_int_equal(f.text_len, 31);
    assert_int_equal(f.text_cps, 22);
    assert_string_equal(f.client_msg_id, "c-42");
    assert_string_equal(f.ref, "s1");
    chat_cframe_fini(&f);
}

static void test_proto_example_ping(void **state)
{
    struct chat_cframe f;

    (void)state;
    decode_example("ping", &f);
    assert_string_equal(f.ref, "p1");
    assert_null(f.room);
    chat_cframe_fini(&f);
}

static void test_proto_example_read(void **state)
{
    struct chat_cframe f;

    (void)state;
    decode_example("read", &f);
    assert_string_equal(f.room, "lobby");
    assert_int_equal(f.seq, 1234);
    assert_string_equal(f.ref, "r1");
    assert_null(f.client_msg_id);
    chat_cframe_fini(&f);
}

/* ---- server examples re-encode byte for byte ---- */

struct server_case {
    const char *name;
    char *text;
    size_t len;
    json_t *j;
    struct chat_buf out;
};

static void server_begin(struct server_case *c, const char *name)
{
    c->name = name;
    c->text = load_example(name, &c->len);
    c->j = parse_example(c->text, c->len);
    chat_buf_init(&c->out, 16, 0); /* headroom must not leak into the output */
}

static void server_end(struct server_case *c, int rc)
{
    assert_int_equal(rc, CHAT_OK);
    assert_same(&c->out, c->text, c->len);
    chat_buf_fini(&c->out);
    json_decref(c->j);
    chat_free(c->text);
}

static void test_proto_example_hello(void **state)
{
    struct server_case c;
    struct chat_limits lim;
    json_t *l;

    (void)state;
    server_begin(&c, "hello");
    assert_string_equal(opt_string(c.j, "type"), "hello");
    assert_int_equal(req_int(c.j, "v"), CHAT_PROTO_VERSION);
    l = json_object_get(c.j, "limits");
    lim.max_frame = (int)req_int(l, "max_frame");
    lim.max_text = (int)req_int(l, "max_text");
    lim.max_rooms = (int)req_int(l, "max_rooms");
    lim.rate_per_s = (int)req_int(l, "rate_per_s");
    lim.rate_burst = (int)req_int(l, "rate_burst");
    server_end(&c, chat_enc_hello(&c.out, opt_string(c.j, "node"), opt_string(c.j, "user"), &lim));
}

static void test_proto_hello_anonymous(void **state)
{
    struct chat_limits lim = {8192, 2000, 50, 5, 20};
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_hello(&b, "gw2", NULL, &lim), CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"type\":\"hello\",\"v\":4,\"node\":\"gw2\",\"user\":null,\"limits\":"
                        "{\"max_frame\":8192,\"max_text\":2000,\"max_rooms\":50,\"rate_per_s\":5,"
                        "\"rate_burst\":20}}");
    chat_buf_fini(&b);
}

static void test_proto_example_authed(void **state)
{
    struct server_case c;

    (void)state;
    server_begin(&c, "authed");
    server_end(&c, chat_enc_authed(&c.out, opt_string(c.j, "user"), req_int(c.j, "exp"),
                                   opt_string(c.j, "ref")));
}

static void test_proto_example_joined(void **state)
{
    struct server_case c;

    (void)state;
    server_begin(&c, "joined");
    server_end(&c, chat_enc_joined(&c.out, opt_string(c.j, "room"), opt_string(c.j, "ref")));
}

static void test_proto_example_left(void **state)
{
    struct server_case c;

    (void)state;
    server_begin(&c, "left");
    server_end(&c, chat_enc_left(&c.out, opt_string(c.j, "room"), opt_string(c.j, "ref")));
}

static void test_proto_example_ack(void **state)
{
    struct server_case c;

    (void)state;
    server_begin(&c, "ack");
    server_end(&c, chat_enc_ack(&c.out, opt_string(c.j, "client_msg_id"),
                                parse_id(opt_string(c.j, "id")), req_int(c.j, "seq"),
                                req_int(c.j, "ts"), opt_string(c.j, "ref")));
}

static void fill_event(json_t *j, struct chat_event_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->room = opt_string(j, "room");
    m->user = opt_string(j, "user");
    m->nick = opt_string(j, "nick");
    m->text = opt_string(j, "text");
    m->client_msg_id = opt_string(j, "client_msg_id");
    m->id = parse_id(opt_string(j, "id"));
    m->ts = req_int(j, "ts");
    m->seq = json_object_get(j, "seq") ? req_int(j, "seq") : -1;
}

static void test_proto_example_message(void **state)
{
    struct server_case c;
    struct chat_event_msg m;

    (void)state;
    server_begin(&c, "message");
    fill_event(c.j, &m);
    /* the example is self-consistent: the id carries the server timestamp */
    assert_int_equal(chat_id_time_ms(m.id), m.ts);
    server_end(&c, chat_enc_message(&c.out, &m));
}

static void test_proto_example_presence(void **state)
{
    struct server_case c;

    (void)state;
    server_begin(&c, "presence");
    assert_string_equal(opt_string(c.j, "scope"), "room");
    server_end(&c, chat_enc_presence(&c.out, opt_string(c.j, "room"), req_int(c.j, "conns"),
                                     req_int(c.j, "users")));
}

static void test_proto_example_presence_total(void **state)
{
    struct server_case c;

    (void)state;
    server_begin(&c, "presence_total");
    assert_string_equal(opt_string(c.j, "scope"), "total");
    assert_null(json_object_get(c.j, "room"));
    server_end(&c, chat_enc_presence(&c.out, NULL, req_int(c.j, "conns"), req_int(c.j, "users")));
}

static void test_proto_example_pong(void **state)
{
    struct server_case c;

    (void)state;
    server_begin(&c, "pong");
    server_end(&c, chat_enc_pong(&c.out, opt_string(c.j, "ref"), req_int(c.j, "ts")));
}

static void test_proto_example_error(void **state)
{
    struct server_case c;
    enum chat_errcode code = CHAT_ERR__COUNT;
    const char *name;

    (void)state;
    server_begin(&c, "error");
    name = opt_string(c.j, "code");
    for (int i = 0; i < CHAT_ERR__COUNT; i++)
        if (strcmp(chat_errcode_name((enum chat_errcode)i), name) == 0)
            code = (enum chat_errcode)i;
    assert_int_not_equal(code, CHAT_ERR__COUNT);
    server_end(&c, chat_enc_error(&c.out, code, opt_string(c.j, "message"),
                                  opt_string(c.j, "client_msg_id"), opt_string(c.j, "ref"),
                                  (int)req_int(c.j, "retry_ms")));
}

static void test_proto_example_bye(void **state)
{
    struct server_case c;
    int code;

    (void)state;
    server_begin(&c, "bye");
    code = (int)req_int(c.j, "code");
    assert_string_equal(chat_close_reason(code), opt_string(c.j, "reason"));
    server_end(&c, chat_enc_bye(&c.out, code, opt_string(c.j, "reason")));
}

static void test_proto_example_session_expiring(void **state)
{
    struct server_case c;

    (void)state;
    server_begin(&c, "session_expiring");
    /* in_ms is what is left of the token when the warning goes out, in ms */
    assert_true(req_int(c.j, "in_ms") > 0);
    server_end(&c, chat_enc_session_expiring(&c.out, req_int(c.j, "exp"), req_int(c.j, "in_ms")));
}

static void test_proto_example_session_expired(void **state)
{
    struct server_case c;

    (void)state;
    server_begin(&c, "session_expired");
    assert_int_equal(json_object_size(c.j), 1); /* only the type */
    server_end(&c, chat_enc_session_expired(&c.out));
}

static void test_proto_example_session_revoked(void **state)
{
    static const char *const reasons[] = {"logout", "password_changed", "admin", "refresh_reused"};
    struct server_case c;
    const char *reason;
    bool known = false;

    (void)state;
    server_begin(&c, "session_revoked");
    reason = opt_string(c.j, "reason");
    assert_non_null(reason);
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        known = known || strcmp(reason, reasons[i]) == 0;
    assert_true(known);
    server_end(&c, chat_enc_session_revoked(&c.out, reason));
}

/* Every frame type of chat_proto.def has an example, and every example is one tested above. */
static void test_proto_examples_complete(void **state)
{
    static const char *const extra[] = {"presence_total"};
    char *dir = chat_xasprintf("%s/examples", proto_dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;

    (void)state;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char *name;
        bool known;

        if (e->d_name[0] == '.')
            continue;
        assert_true(n > 5 && strcmp(e->d_name + n - 5, ".json") == 0);
        name = chat_xstrndup(e->d_name, n - 5);
        known = chat_frame_lookup(name) != CHAT_F_NONE || strcmp(name, extra[0]) == 0;
        if (!known)
            fail_msg("example %s is not a frame type", e->d_name);
        chat_free(name);
        files++;
    }
    (void)closedir(d);
    chat_free(dir);
    assert_int_equal(files, (CHAT_F__COUNT - 1) + 1);
    for (int t = 1; t < CHAT_F__COUNT; t++) {
        char *path = chat_xasprintf("%s/examples/%s.json", proto_dir,
                                    chat_frame_name((enum chat_frame_type)t));
        char *s = read_file(path, NULL);
        if (!s)
            fail_msg("missing example %s", path);
        chat_free(s);
        chat_free(path);
    }
}

/* ---- the message event: Kafka value, splice, decode ---- */

static void test_proto_msg_splice_seq(void **state)
{
    struct server_case c;
    struct chat_event_msg m;
    struct chat_buf kv;

    (void)state;
    server_begin(&c, "message");
    fill_event(c.j, &m);
    m.seq = -1; /* what the accepting gateway produces to chat.messages */
    chat_buf_init(&kv, 0, 0);
    assert_int_equal(chat_enc_message(&kv, &m), CHAT_OK);
    assert_null(strstr(chat_buf_data(&kv), "\"seq\""));
    assert_memory_equal(chat_buf_data(&kv), CHAT_MSG_PREFIX, CHAT_MSG_PREFIX_LEN);
    /* each consuming node splices its Kafka offset in: the result is the canonical frame */
    server_end(&c, chat_msg_splice_seq(&c.out, chat_buf_data(&kv), kv.len, 1234));
    chat_buf_fini(&kv);
}

static void test_proto_msg_splice_rejects(void **state)
{
    static const char v[] = "{\"type\":\"message\",\"room\":\"r\"}";
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_msg_splice_seq(&b, "{\"type\":\"ack\"}", 14, 1), CHAT_EPROTO);
    assert_int_equal(chat_msg_splice_seq(&b, CHAT_MSG_PREFIX, CHAT_MSG_PREFIX_LEN, 1), CHAT_EPROTO);
    assert_int_equal(chat_msg_splice_seq(&b, "", 0, 1), CHAT_EPROTO);
    assert_int_equal(b.len, 0);
    chat_buf_fini(&b);
    chat_buf_init(&b, 0, sizeof(v) + 4); /* too small for the spliced "seq":N, */
    assert_int_equal(chat_msg_splice_seq(&b, v, sizeof(v) - 1, 123456789), CHAT_ETOOBIG);
    assert_int_equal(b.len, 0);
    chat_buf_fini(&b);
}

static void assert_event_eq(const struct chat_event_msg *a, const struct chat_event_msg *b)
{
    assert_string_equal(a->room, b->room);
    assert_string_equal(a->user, b->user);
    assert_string_equal(a->nick, b->nick);
    assert_string_equal(a->text, b->text);
    if (a->client_msg_id || b->client_msg_id)
        assert_string_equal(a->client_msg_id, b->client_msg_id);
    assert_true(a->id == b->id);
    assert_int_equal(a->ts, b->ts);
}

static void test_proto_msg_decode_roundtrip(void **state)
{
    struct chat_event_msg m = {
        .room = "room-1.a_b",
        .user = "u\"ser",
        .nick = "N\\ick </script>",
        .text = "line1\nline2\t\"quoted\" \\ / \xe2\x82\xac \xf0\x9f\x98\x80",
        .client_msg_id = NULL,
        .id = UINT64_MAX,
        .ts = 1767225600123,
        .seq = -1,
    };
    struct chat_event_msg d;
    struct chat_buf kv, fr, again;
    void *doc = NULL;

    (void)state;
    chat_buf_init(&kv, 0, 0);
    chat_buf_init(&fr, 0, 0);
    chat_buf_init(&again, 0, 0);
    assert_int_equal(chat_enc_message(&kv, &m), CHAT_OK);
    /* without seq (the Kafka value) */
    assert_int_equal(chat_msg_decode(chat_buf_data(&kv), kv.len, &d, &doc), CHAT_OK);
    assert_event_eq(&d, &m);
    assert_null(d.client_msg_id);
    assert_int_equal(d.seq, -1);
    chat_json_free(doc);
    /* with seq (the client frame) */
    assert_int_equal(chat_msg_splice_seq(&fr, chat_buf_data(&kv), kv.len, 0), CHAT_OK);
    assert_int_equal(chat_msg_decode(chat_buf_data(&fr), fr.len, &d, &doc), CHAT_OK);
    assert_event_eq(&d, &m);
    assert_int_equal(d.seq, 0);
    /* re-encoding the decoded event gives the same bytes */
    assert_int_equal(chat_enc_message(&again, &d), CHAT_OK);
    assert_string_equal(chat_buf_data(&again), chat_buf_data(&fr));
    chat_json_free(doc);
    chat_buf_fini(&kv);
    chat_buf_fini(&fr);
    chat_buf_fini(&again);
}

/* The node's splice with the room's previous seq: seq and prev read back; prev < 0 is omitted
 * (the same bytes as chat_msg_splice_seq); the rest of the value is untouched. */
/* message_deleted and system: encoded once without seq, spliced like a message; the result is
 * the canonical example. Unknown or malformed types are refused (skipped by consumers). */
static void test_proto_stream_splice(void **state)
{
    static const char *const bad[] = {
        "{\"type\":\"announcement\",\"room\":\"r\"}", /* not a stream type */
        "{\"type\":\"message_deleted\"}",             /* no comma after the type */
        "{\"type\":\"Message\",\"room\":\"r\"}",      /* not [a-z_] */
        "{\"type\":\"\",\"room\":\"r\"}",             /* empty */
        "{\"type\": \"system\",\"room\":\"r\"}",      /* not the canonical prefix */
        "{\"type\":\"messagex\",\"room\":\"r\"}",     /* a prefix of a type is not it */
        "{\"type\":\"message",                        /* truncated */
    };
    struct chat_system_ev e = {
        .room = "lobby",
        .event = "joined",
        .user = "42",
        .nick = "Bob",
        .id = 264905790269511690ULL,
        .ts = 1767225670000,
    };
    enum chat_stream_type t;
    struct server_case c;
    struct chat_buf kv;

    (void)state;
    chat_buf_init(&kv, 0, 0);
    server_begin(&c, "message_deleted");
    assert_int_equal(chat_enc_msg_deleted(&kv, "lobby", 264905530269511687ULL, "17", 1767225660000),
                     CHAT_OK);
    assert_int_equal(chat_msg_stream_prefix(chat_buf_data(&kv), kv.len, &t),
                     sizeof("{\"type\":\"message_deleted\",") - 1);
    assert_int_equal(t, CHAT_STREAM_DELETED);
    server_end(&c, chat_msg_splice_seq_prev(&c.out, chat_buf_data(&kv), kv.len, 1240, 1234));
    chat_buf_reset(&kv);
    server_begin(&c, "system");
    assert_int_equal(chat_enc_system(&kv, &e), CHAT_OK);
    assert_int_equal(chat_msg_stream_prefix(chat_buf_data(&kv), kv.len, &t),
                     sizeof("{\"type\":\"system\",") - 1);
    assert_int_equal(t, CHAT_STREAM_SYSTEM);
    server_end(&c, chat_msg_splice_seq_prev(&c.out, chat_buf_data(&kv), kv.len, 1241, 1240));
    /* optional fields left out */
    chat_buf_reset(&kv);
    e.user = e.nick = NULL;
    e.text = "name: \"Lobby\"";
    e.event = "room_updated";
    assert_int_equal(chat_enc_system(&kv, &e), CHAT_OK);
    assert_null(strstr(chat_buf_data(&kv), "\"user\""));
    assert_null(strstr(chat_buf_data(&kv), "\"message\""));
    assert_non_null(strstr(chat_buf_data(&kv), "\"text\":\"name: \\\"Lobby\\\"\""));
    /* a pin's event names its message, last */
    chat_buf_reset(&kv);
    e.text = NULL;
    e.event = "pinned";
    e.user = "42";
    e.message = "264905530269511687";
    assert_int_equal(chat_enc_system(&kv, &e), CHAT_OK);
    assert_non_null(
        strstr(chat_buf_data(&kv), "\"user\":\"42\",\"message\":\"264905530269511687\"}"));
    e.message = NULL;
    /* the message type is still one */
    assert_int_equal(chat_msg_stream_prefix(CHAT_MSG_PREFIX "\"room\":\"r\"}",
                                            sizeof(CHAT_MSG_PREFIX "\"room\":\"r\"}") - 1, &t),
                     CHAT_MSG_PREFIX_LEN);
    assert_int_equal(t, CHAT_STREAM_MESSAGE);
    /* the decoder of the persister and history: both examples, with their seq and prev */
    {
        static const char *const names[] = {"message_deleted", "system"};
        struct chat_stream_ev ev;
        void *doc = NULL;

        for (int k = 0; k < 2; k++) {
            size_t len;
            char *text = load_example(names[k], &len);
            assert_int_equal(chat_stream_ev_decode(text, len, &ev, &doc), CHAT_OK);
            assert_int_equal(ev.type, k == 0 ? CHAT_STREAM_DELETED : CHAT_STREAM_SYSTEM);
            assert_string_equal(ev.room, "lobby");
            assert_int_equal(ev.seq, k == 0 ? 1240 : 1241);
            assert_int_equal(ev.prev, k == 0 ? 1234 : 1240);
            assert_string_equal(ev.user, k == 0 ? "17" : "42");
            assert_true(ev.id == (k == 0 ? 264905530269511687ULL : 264905790269511690ULL));
            if (k == 1)
                assert_string_equal(ev.event, "joined");
            chat_json_free(doc);
            chat_free(text);
        }
        /* a message is not one; a delete needs "by", a system event "event" */
        assert_int_equal(chat_stream_ev_decode(CHAT_MSG_PREFIX "\"room\":\"r\"}",
                                               sizeof(CHAT_MSG_PREFIX "\"room\":\"r\"}") - 1, &ev,
                                               &doc),
                         CHAT_EPROTO);
        assert_null(doc);
        assert_int_equal(
            chat_stream_ev_decode(
                "{\"type\":\"message_deleted\",\"room\":\"r\",\"id\":\"1\",\"ts\":1}",
                sizeof("{\"type\":\"message_deleted\",\"room\":\"r\",\"id\":\"1\",\"ts\":1}") - 1,
                &ev, &doc),
            CHAT_EPROTO);
        assert_int_equal(
            chat_stream_ev_decode(
                "{\"type\":\"system\",\"room\":\"r\",\"id\":\"1\",\"ts\":1}",
                sizeof("{\"type\":\"system\",\"room\":\"r\",\"id\":\"1\",\"ts\":1}") - 1, &ev,
                &doc),
            CHAT_EPROTO);
    }
    /* the deleted form of a message: seq and prev kept, the text gone */
    {
        size_t len;
        char *text = load_example("message", &len);
        struct chat_event_msg d;
        void *doc = NULL;

        chat_buf_reset(&kv);
        assert_true(chat_msg_has_id(text, 264905530269511687ULL));
        assert_false(chat_msg_has_id(text, 26490553026951168ULL));
        assert_int_equal(chat_msg_to_deleted(&kv, text, len), CHAT_OK);
        assert_non_null(
            strstr(chat_buf_data(&kv), "\"ts\":1767225600123,\"deleted\":true,\"text\":\"\"}"));
        assert_null(strstr(chat_buf_data(&kv), "Hello"));
        assert_null(strstr(chat_buf_data(&kv), "client_msg_id"));
        assert_int_equal(chat_msg_decode(chat_buf_data(&kv), kv.len, &d, &doc), CHAT_OK);
        assert_true(d.deleted && d.seq == 1234 && d.prev == -1 && d.id == 264905530269511687ULL);
        chat_json_free(doc);
        chat_free(text);
    }
    chat_buf_reset(&kv);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = CHAT_STREAM_SYSTEM;
        assert_int_equal(chat_msg_stream_prefix(bad[i], strlen(bad[i]), &t), 0);
        assert_int_equal(t, CHAT_STREAM_UNKNOWN);
        assert_int_equal(chat_msg_splice_seq_prev(&kv, bad[i], strlen(bad[i]), 5, 4), CHAT_EPROTO);
        assert_int_equal(kv.len, 0);
    }
    chat_buf_fini(&kv);
}

/* message_edited: the example re-encoded and spliced; its decode; the edited form of a message
 * (text replaced, edited_at after ts, client_msg_id kept; edited again: the newest; a deleted
 * message refused) read back by both decoders; the deleted form of an edit (text gone). */
static void test_proto_message_edited(void **state)
{
    static const char msg[] =
        "{\"type\":\"message\",\"seq\":7,\"prev\":5,\"room\":\"r\",\"id\":\"42\",\"user\":\"u1\","
        "\"nick\":\"N\",\"text\":\"old\",\"ts\":100,\"client_msg_id\":\"c-1\"}";
    struct server_case c;
    struct chat_buf kv, ed;
    struct chat_stream_ev ev;
    struct chat_event_msg m;
    enum chat_stream_type t;
    void *doc = NULL;
    size_t len;
    char *text;

    (void)state;
    chat_buf_init(&kv, 0, 0);
    chat_buf_init(&ed, 0, 0);
    server_begin(&c, "message_edited");
    assert_int_equal(chat_enc_msg_edited(&kv, "lobby", 264905530269511687ULL, "alice",
                                         "Hello, world! (fixed)", 1767225690000),
                     CHAT_OK);
    assert_int_equal(chat_msg_stream_prefix(chat_buf_data(&kv), kv.len, &t),
                     sizeof("{\"type\":\"message_edited\",") - 1);
    assert_int_equal(t, CHAT_STREAM_EDITED);
    server_end(&c, chat_msg_splice_seq_prev(&c.out, chat_buf_data(&kv), kv.len, 1242, 1241));

    text = load_example("message_edited", &len);
    assert_true(chat_msg_has_id(text, 264905530269511687ULL)); /* found like its message */
    assert_int_equal(chat_stream_ev_decode(text, len, &ev, &doc), CHAT_OK);
    assert_int_equal(ev.type, CHAT_STREAM_EDITED);
    assert_true(ev.id == 264905530269511687ULL && ev.seq == 1242 && ev.prev == 1241);
    assert_string_equal(ev.user, "alice");
    assert_string_equal(ev.text, "Hello, world! (fixed)");
    assert_false(ev.deleted);
    chat_json_free(doc);
    /* its deleted form: seq and prev kept, the text gone, read back as deleted */
    assert_int_equal(chat_msg_to_deleted(&ed, text, len), CHAT_OK);
    assert_string_equal(
        chat_buf_data(&ed),
        "{\"type\":\"message_edited\",\"seq\":1242,\"prev\":1241,\"room\":\"lobby\","
        "\"id\":\"264905530269511687\",\"user\":\"alice\",\"text\":\"\","
        "\"ts\":1767225690000,\"deleted\":true}");
    assert_int_equal(chat_stream_ev_decode(chat_buf_data(&ed), ed.len, &ev, &doc), CHAT_OK);
    assert_true(ev.deleted && ev.text[0] == '\0');
    chat_json_free(doc);
    chat_free(text);
    /* an edit needs its author and a text (empty only in the deleted form) */
    {
        static const char *const bad[] = {
            "{\"type\":\"message_edited\",\"room\":\"r\",\"id\":\"1\",\"text\":\"x\",\"ts\":1}",
            "{\"type\":\"message_edited\",\"room\":\"r\",\"id\":\"1\",\"user\":\"u\",\"ts\":1}",
            "{\"type\":\"message_edited\",\"room\":\"r\",\"id\":\"1\",\"user\":\"u\",\"text\":\"\","
            "\"ts\":1}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            assert_int_equal(chat_stream_ev_decode(bad[i], strlen(bad[i]), &ev, &doc), CHAT_EPROTO);
            assert_null(doc);
        }
    }

    /* the edited form of a message */
    chat_buf_reset(&ed);
    assert_int_equal(chat_msg_to_edited(&ed, msg, sizeof(msg) - 1, "new \"one\"", 200), CHAT_OK);
    assert_string_equal(chat_buf_data(&ed),
                        "{\"type\":\"message\",\"seq\":7,\"prev\":5,\"room\":\"r\",\"id\":\"42\","
                        "\"user\":\"u1\",\"nick\":\"N\",\"text\":\"new \\\"one\\\"\",\"ts\":100,"
                        "\"edited_at\":200,\"client_msg_id\":\"c-1\"}");
    for (int flat = 0; flat < 2; flat++) {
        assert_int_equal(chat_msg_decode_as(chat_buf_data(&ed), ed.len, &m, &doc, flat), CHAT_OK);
        assert_true(m.edited_at == 200 && m.seq == 7 && m.prev == 5 && m.id == 42);
        assert_string_equal(m.text, "new \"one\"");
        chat_json_free(doc);
    }
    /* edited again: the newest text and time (applied in stream order) */
    chat_buf_reset(&kv);
    assert_int_equal(chat_msg_to_edited(&kv, chat_buf_data(&ed), ed.len, "third", 300), CHAT_OK);
    assert_non_null(strstr(chat_buf_data(&kv), "\"text\":\"third\",\"ts\":100,\"edited_at\":300,"));
    /* a deleted message: nothing */
    chat_buf_reset(&kv);
    assert_int_equal(chat_msg_to_deleted(&kv, chat_buf_data(&ed), ed.len), CHAT_OK);
    assert_null(strstr(chat_buf_data(&kv), "edited_at")); /* the deleted form has no text */
    assert_null(strstr(chat_buf_data(&kv), "new"));
    chat_buf_reset(&ed);
    assert_int_equal(chat_msg_to_edited(&ed, chat_buf_data(&kv), kv.len, "again", 300),
                     CHAT_ENOENT);
    /* a negative edited_at is no message */
    {
        static const char neg[] =
            "{\"type\":\"message\",\"room\":\"r\",\"id\":\"1\",\"user\":\"u\","
            "\"nick\":\"N\",\"text\":\"t\",\"ts\":1,\"edited_at\":-1}";
        for (int flat = 0; flat < 2; flat++) {
            assert_int_equal(chat_msg_decode_as(neg, sizeof(neg) - 1, &m, &doc, flat), CHAT_EPROTO);
            chat_json_free(doc);
        }
    }
    chat_buf_fini(&kv);
    chat_buf_fini(&ed);
}

static void test_proto_msg_splice_seq_prev(void **state)
{
    static const char v[] = "{\"type\":\"message\",\"room\":\"r\"}";
    struct chat_event_msg m = {
        .room = "lobby",
        .user = "alice",
        .nick = "Alice",
        .text = "hi \"there\"",
        .client_msg_id = "c-1",
        .id = 42,
        .ts = 1767225600123,
        .seq = -1,
    };
    struct chat_event_msg d;
    struct chat_buf kv, fr, plain;
    void *doc = NULL;

    (void)state;
    chat_buf_init(&kv, 0, 0);
    chat_buf_init(&fr, 0, 0);
    chat_buf_init(&plain, 0, 0);
    assert_int_equal(chat_enc_message(&kv, &m), CHAT_OK);
    assert_int_equal(chat_msg_splice_seq_prev(&fr, chat_buf_data(&kv), kv.len, 1234, 1200),
                     CHAT_OK);
    assert_memory_equal(chat_buf_data(&fr), CHAT_MSG_PREFIX "\"seq\":1234,\"prev\":1200,\"room\":",
                        sizeof(CHAT_MSG_PREFIX "\"seq\":1234,\"prev\":1200,\"room\":") - 1);
    assert_int_equal(chat_msg_decode(chat_buf_data(&fr), fr.len, &d, &doc), CHAT_OK);
    assert_event_eq(&d, &m);
    assert_int_equal(d.seq, 1234);
    assert_int_equal(d.prev, 1200);
    chat_json_free(doc);
    /* prev 0 is a seq like any other */
    chat_buf_reset(&fr);
    assert_int_equal(chat_msg_splice_seq_prev(&fr, chat_buf_data(&kv), kv.len, 7, 0), CHAT_OK);
    assert_int_equal(chat_msg_decode(chat_buf_data(&fr), fr.len, &d, &doc), CHAT_OK);
    assert_int_equal(d.seq, 7);
    assert_int_equal(d.prev, 0);
    chat_json_free(doc);
    /* prev unknown: omitted, byte for byte the plain splice */
    chat_buf_reset(&fr);
    assert_int_equal(chat_msg_splice_seq_prev(&fr, chat_buf_data(&kv), kv.len, 1234, -1), CHAT_OK);
    assert_int_equal(chat_msg_splice_seq(&plain, chat_buf_data(&kv), kv.len, 1234), CHAT_OK);
    assert_int_equal(fr.len, plain.len);
    assert_memory_equal(chat_buf_data(&fr), chat_buf_data(&plain), fr.len);
    assert_null(strstr(chat_buf_data(&fr), "\"prev\""));
    assert_int_equal(chat_msg_decode(chat_buf_data(&fr), fr.len, &d, &doc), CHAT_OK);
    assert_int_equal(d.seq, 1234);
    assert_int_equal(d.prev, -1);
    chat_json_free(doc);
    /* the largest values fit; errors leave out unchanged */
    chat_buf_reset(&fr);
    assert_int_equal(
        chat_msg_splice_seq_prev(&fr, chat_buf_data(&kv), kv.len, INT64_MAX, INT64_MAX - 1),
        CHAT_OK);
    assert_int_equal(chat_msg_decode(chat_buf_data(&fr), fr.len, &d, &doc), CHAT_OK);
    assert_true(d.seq == INT64_MAX && d.prev == INT64_MAX - 1);
    chat_json_free(doc);
    chat_buf_reset(&fr);
    assert_int_equal(chat_msg_splice_seq_prev(&fr, "{\"type\":\"ack\"}", 14, 1, 0), CHAT_EPROTO);
    assert_int_equal(fr.len, 0);
    chat_buf_fini(&fr);
    chat_buf_init(&fr, 0, sizeof(v) + 14); /* room for "seq":1, but not "seq":1,"prev":0, */
    assert_int_equal(chat_msg_splice_seq_prev(&fr, v, sizeof(v) - 1, 1, 0), CHAT_ETOOBIG);
    assert_int_equal(fr.len, 0);
    assert_int_equal(chat_msg_splice_seq_prev(&fr, v, sizeof(v) - 1, 1, -1), CHAT_OK);
    chat_buf_fini(&kv);
    chat_buf_fini(&fr);
    chat_buf_fini(&plain);
}

static void test_proto_msg_decode_rejects(void **state)
{
#define EV(id, extra)                                                                   \
    "{\"type\":\"message\",\"room\":\"r\",\"id\":" id ",\"user\":\"u\",\"nick\":\"n\"," \
    "\"text\":\"t\",\"ts\":1" extra "}"
    static const char *const bad[] = {
        EV("\"-1\"", ""),
        EV("\" 1\"", ""),
        EV("\"+1\"", ""),
        EV("\"\"", ""),
        EV("\"12a\"", ""),
        EV("\"18446744073709551616\"", ""), /* 2^64 */
        EV("12", ""),                       /* ids are strings */
        EV("\"1\"", ",\"seq\":\"5\""),
        EV("\"1\"", ",\"seq\":5,\"prev\":\"4\""),
        EV("\"1\"", ",\"seq\":5,\"prev\":5"),  /* prev before seq */
        EV("\"1\"", ",\"seq\":5,\"prev\":-1"), /* absent, not negative */
        EV("\"1\"", ",\"prev\":4"),            /* prev without seq */
        EV("\"1\"", ",\"client_msg_id\":5"),
        EV("\"1\"", ",\"room\":\"x\""), /* duplicate key */
        "{\"type\":\"ack\",\"room\":\"r\",\"id\":\"1\",\"user\":\"u\",\"nick\":\"n\",\"text\":"
        "\"t\","
        "\"ts\":1}",
        "{\"type\":\"message\",\"room\":\"a/b\",\"id\":\"1\",\"user\":\"u\",\"nick\":\"n\","
        "\"text\":\"t\",\"ts\":1}",
        "{\"type\":\"message\",\"room\":\"r\",\"id\":\"1\",\"user\":\"u\",\"text\":\"t\",\"ts\":1}",
        "not json",
        "",
    };
    struct chat_event_msg d;
    void *doc;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (chat_msg_decode(bad[i], strlen(bad[i]), &d, &doc) != CHAT_EPROTO)
            fail_msg("accepted: %s", bad[i]);
        assert_null(doc);
    }
    assert_int_equal(chat_msg_decode(EV("\"18446744073709551615\"", ""),
                                     strlen(EV("\"18446744073709551615\"", "")), &d, &doc),
                     CHAT_OK);
    assert_true(d.id == UINT64_MAX);
    chat_json_free(doc);
#undef EV
}

/* ---- names and encoders' details ---- */

static void test_proto_names(void **state)
{
    (void)state;
    for (int t = 1; t < CHAT_F__COUNT; t++)
        assert_int_equal(chat_frame_lookup(chat_frame_name((enum chat_frame_type)t)), t);
    assert_int_equal(chat_frame_lookup("nope"), CHAT_F_NONE);
    assert_int_equal(chat_frame_lookup(""), CHAT_F_NONE);
    assert_string_equal(chat_frame_name(CHAT_F_NONE), "");
    for (int i = 0; i < CHAT_ERR__COUNT; i++)
        for (int k = i + 1; k < CHAT_ERR__COUNT; k++)
            assert_string_not_equal(chat_errcode_name((enum chat_errcode)i),
                                    chat_errcode_name((enum chat_errcode)k));
    assert_string_equal(chat_errcode_name(CHAT_ERR_bad_json), "bad_json");
    assert_string_equal(chat_errcode_name(CHAT_ERR__COUNT), "internal");
    assert_int_equal(CHAT_CLOSE_going_away, 1001);
    assert_int_equal(CHAT_CLOSE_slow_consumer, 4008);
    assert_non_null(chat_close_reason(1000));
    assert_null(chat_close_reason(4242));
}

static void test_proto_enc_error_defaults(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_error(&b, CHAT_ERR_not_joined, NULL, NULL, NULL, -1), CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"type\":\"error\",\"code\":\"not_joined\",\"message\":\"the connection "
                        "has not joined that room\"}");
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_pong(&b, NULL, 5), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "{\"type\":\"pong\",\"ts\":5}");
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_ack(&b, NULL, 1, 2, 3, NULL), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "{\"type\":\"ack\",\"id\":\"1\",\"seq\":2,\"ts\":3}");
    chat_buf_fini(&b);
}

static void test_proto_enc_headroom_and_cap(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 16, 0);
    assert_int_equal(chat_enc_joined(&b, "r", NULL), CHAT_OK);
    assert_ptr_equal(chat_buf_data(&b), (char *)b.base + 16);
    assert_string_equal(chat_buf_data(&b), "{\"type\":\"joined\",\"room\":\"r\"}");
    /* encoders append: two frames in one buffer */
    assert_int_equal(chat_enc_left(&b, "r", NULL), CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"type\":\"joined\",\"room\":\"r\"}{\"type\":\"left\",\"room\":\"r\"}");
    chat_buf_fini(&b);
    chat_buf_init(&b, 16, 10);
    assert_int_equal(chat_enc_joined(&b, "lobby", NULL), CHAT_ETOOBIG);
    assert_int_equal(b.len, 0);
    chat_buf_fini(&b);
}

static void test_proto_enc_rest_bodies(void **state)
{
    struct chat_limits lim = {8192, 2000, 64, 20, 40};
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_config(&b, "gw1", &lim), CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"node\":\"gw1\",\"v\":4,\"limits\":{\"max_frame\":8192,"
                        "\"max_text\":2000,\"max_rooms\":64,\"rate_per_s\":20,\"rate_burst\":40},"
                        "\"rules\":{\"room\":\"^[A-Za-z0-9_.-]{1,64}$\",\"client_msg_id_max\":64,"
                        "\"username\":{\"pattern\":\"^[A-Za-z0-9_]{4,20}$\",\"min\":4,\"max\":20},"
                        "\"nickname\":{\"min\":2,\"max\":20},"
                        "\"password\":{\"min\":8,\"max\":128,\"letter\":true,\"digit\":true}}}");
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_http_error(&b, "not_found", "no \"such\" endpoint"), CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"error\":{\"code\":\"not_found\",\"message\":\"no \\\"such\\\" "
                        "endpoint\"}}");
    chat_buf_fini(&b);
}

/* ---- sessions on an open socket: the encoders' exact output ---- */

static void test_proto_enc_session_frames(void **state)
{
    static const char *const reasons[] = {"logout", "password_changed", "admin", "refresh_reused"};
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_session_expiring(&b, 1767226500, 0), CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"type\":\"session_expiring\",\"exp\":1767226500,\"in_ms\":0}");
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_session_expired(&b), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "{\"type\":\"session_expired\"}");
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        char *want = chat_xasprintf("{\"type\":\"session_revoked\",\"reason\":\"%s\"}", reasons[i]);
        chat_buf_reset(&b);
        assert_int_equal(chat_enc_session_revoked(&b, reasons[i]), CHAT_OK);
        assert_string_equal(chat_buf_data(&b), want);
        chat_free(want);
    }
    chat_buf_fini(&b);
    /* the cap holds as for every other frame */
    chat_buf_init(&b, 16, 20);
    assert_int_equal(chat_enc_session_expired(&b), CHAT_ETOOBIG);
    assert_int_equal(b.len, 0);
    chat_buf_fini(&b);
}

/* ---- accounts: REST bodies ---- */

static const struct chat_user test_user = {
    .id = "12",
    .username = "Alice_1",
    .nickname = "Alice",
    .role = "user",
    .created_at = 1767225600123,
};

#define TEST_USER_JSON                                                                  \
    "{\"id\":\"12\",\"username\":\"Alice_1\",\"nickname\":\"Alice\",\"role\":\"user\"," \
    "\"created_at\":1767225600123}"

static void test_proto_enc_user(void **state)
{
    struct chat_user u = test_user;
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 16, 0);
    assert_int_equal(chat_enc_user(&b, &u), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), TEST_USER_JSON);
    /* nicknames are free text: escaped as JSON, UTF-8 kept as is, no slash escaping */
    chat_buf_reset(&b);
    u.nickname = "Zo\xc3\xab \"Z\" </b>\\";
    u.role = "admin";
    assert_int_equal(chat_enc_user(&b, &u), CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"id\":\"12\",\"username\":\"Alice_1\",\"nickname\":\"Zo\xc3\xab "
                        "\\\"Z\\\" </b>\\\\\",\"role\":\"admin\",\"created_at\":1767225600123}");
    chat_buf_fini(&b);
}

static void test_proto_enc_session(void **state)
{
    struct chat_session_out s = {
        .access_token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMiJ9.c2ln",
        .refresh_token = "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c",
        .session_id = "34",
        .expires_in = 900,
        .refresh_expires_in = 2592000,
    };
    struct chat_buf b;
    json_t *j;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_session(&b, &test_user, &s), CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"user\":" TEST_USER_JSON ",\"access_token\":\"eyJhbGciOiJIUzI1NiJ9."
                        "eyJzdWIiOiIxMiJ9.c2ln\",\"token_type\":\"Bearer\",\"expires_in\":900,"
                        "\"refresh_token\":\"q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c\","
                        "\"refresh_expires_in\":2592000,\"session_id\":\"34\"}");
    /* the user object inside is the one GET /users/me answers */
    j = parse_example(chat_buf_data(&b), b.len);
    assert_int_equal(json_object_size(j), 7);
    assert_int_equal(json_object_size(json_object_get(j, "user")), 5);
    json_decref(j);
    chat_buf_fini(&b);
}

static void test_proto_enc_revoked(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_revoked(&b, 0), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "{\"revoked_sessions\":0}");
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_revoked(&b, 3), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "{\"revoked_sessions\":3}");
    chat_buf_fini(&b);
}

static void test_proto_enc_logins(void **state)
{
    static const struct chat_login v[] = {
        {.id = "7",
         .ip = "203.0.113.7",
         .user_agent = "curl/7.88",
         .reason = "ok",
         .at = 1767225600123,
         .success = true},
        {.id = "6",
         .ip = "2001:db8::1",
         .user_agent = NULL,
         .reason = "wrong_password",
         .at = 1767225500000,
         .success = false},
        {.id = "5",
         .ip = NULL,
         .user_agent = "Mozilla/5.0 \"x\"",
         .reason = "registered",
         .at = 1767225400000,
         .success = true},
    };
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_logins(&b, v, 3, "5"), CHAT_OK);
    assert_string_equal(
        chat_buf_data(&b),
        "{\"logins\":["
        "{\"id\":\"7\",\"at\":1767225600123,\"ip\":\"203.0.113.7\",\"user_agent\":\"curl/7.88\","
        "\"success\":true,\"reason\":\"ok\"},"
        "{\"id\":\"6\",\"at\":1767225500000,\"ip\":\"2001:db8::1\",\"user_agent\":null,"
        "\"success\":false,\"reason\":\"wrong_password\"},"
        "{\"id\":\"5\",\"at\":1767225400000,\"ip\":null,\"user_agent\":\"Mozilla/5.0 \\\"x\\\"\","
        "\"success\":true,\"reason\":\"registered\"}],\"next_before\":\"5\"}");
    /* the last page, and an empty history */
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_logins(&b, v, 1, NULL), CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"logins\":[{\"id\":\"7\",\"at\":1767225600123,\"ip\":\"203.0.113.7\","
                        "\"user_agent\":\"curl/7.88\",\"success\":true,\"reason\":\"ok\"}],"
                        "\"next_before\":null}");
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_logins(&b, NULL, 0, NULL), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "{\"logins\":[],\"next_before\":null}");
    chat_buf_fini(&b);
}

/* ---- accounts: request bodies ---- */

static int auth_decode(const char *body, struct chat_auth_body *b, enum chat_errcode *err)
{
    *err = CHAT_ERR__COUNT;
    return chat_auth_body_decode(body, strlen(body), b, err);
}

static void assert_body_empty(const struct chat_auth_body *b)
{
    assert_null(b->username);
    assert_null(b->password);
    assert_null(b->nickname);
    assert_null(b->refresh_token);
    assert_null(b->current_password);
    assert_null(b->new_password);
    assert_false(b->all);
}

static void test_proto_auth_body_empty(void **state)
{
    struct chat_auth_body b;
    enum chat_errcode err;

    (void)state;
    /* no body at all is {} (POST /auth/logout may come without one) */
    assert_int_equal(chat_auth_body_decode(NULL, 0, &b, &err), CHAT_OK);
    assert_body_empty(&b);
    chat_auth_body_fini(&b);
    assert_int_equal(auth_decode("", &b, &err), CHAT_OK);
    assert_body_empty(&b);
    chat_auth_body_fini(&b);
    assert_int_equal(auth_decode("{}", &b, &err), CHAT_OK);
    assert_body_empty(&b);
    chat_auth_body_fini(&b);
    assert_int_equal(auth_decode(" \r\n{ }\n", &b, &err), CHAT_OK);
    assert_body_empty(&b);
    chat_auth_body_fini(&b);
    chat_auth_body_fini(&b); /* idempotent */
    chat_auth_body_fini(NULL);
}

static void test_proto_auth_body_fields(void **state)
{
    struct chat_auth_body b;
    enum chat_errcode err;

    (void)state;
    assert_int_equal(auth_decode("{\"username\":\"Alice_1\",\"password\":\"p\\u00e4ss w0rd\","
                                 "\"nickname\":\"  Alice \\ud83d\\ude00 \"}",
                                 &b, &err),
                     CHAT_OK);
    assert_string_equal(b.username, "Alice_1");
    assert_string_equal(b.password, "p\xc3\xa4ss w0rd");
    assert_string_equal(b.nickname, "  Alice \xf0\x9f\x98\x80 "); /* trimmed by the handler */
    assert_null(b.refresh_token);
    assert_null(b.current_password);
    assert_null(b.new_password);
    assert_false(b.all);
    chat_auth_body_fini(&b);

    assert_int_equal(auth_decode("{\"refresh_token\":\"abc-_DEF\"}", &b, &err), CHAT_OK);
    assert_string_equal(b.refresh_token, "abc-_DEF");
    assert_null(b.username);
    chat_auth_body_fini(&b);

    assert_int_equal(auth_decode("{\"new_password\":\"n3w-password\",\"current_password\":"
                                 "\"0ld-password\"}",
                                 &b, &err),
                     CHAT_OK);
    assert_string_equal(b.current_password, "0ld-password");
    assert_string_equal(b.new_password, "n3w-password");
    assert_null(b.password);
    chat_auth_body_fini(&b);

    assert_int_equal(auth_decode("{\"all\":true}", &b, &err), CHAT_OK);
    assert_true(b.all);
    chat_auth_body_fini(&b);
    assert_int_equal(auth_decode("{\"all\":false}", &b, &err), CHAT_OK);
    assert_false(b.all);
    chat_auth_body_fini(&b);

    /* empty strings are strings: the handler decides what they mean */
    assert_int_equal(auth_decode("{\"username\":\"\",\"password\":\"\"}", &b, &err), CHAT_OK);
    assert_string_equal(b.username, "");
    assert_string_equal(b.password, "");
    chat_auth_body_fini(&b);
}

static void test_proto_auth_body_unknown_fields(void **state)
{
    struct chat_auth_body b;
    enum chat_errcode err;

    (void)state;
    /* whatever their type, even with a NUL inside: they are never read */
    assert_int_equal(auth_decode("{\"future\":{\"x\":[1,2,{\"y\":null}]},\"username\":\"bob_1\","
                                 "\"remember_me\":\"a\\u0000b\",\"ttl\":5,\"All\":\"yes\","
                                 "\"USERNAME\":7}",
                                 &b, &err),
                     CHAT_OK);
    assert_string_equal(b.username, "bob_1");
    assert_null(b.password);
    assert_false(b.all);
    chat_auth_body_fini(&b);
}

static void test_proto_auth_body_rejects(void **state)
{
    static const struct {
        const char *body;
        enum chat_errcode err;
    } bad[] = {
        /* wrong types */
        {"{\"username\":5}", CHAT_ERR_bad_field},
        {"{\"password\":null}", CHAT_ERR_bad_field},
        {"{\"nickname\":[\"a\"]}", CHAT_ERR_bad_field},
        {"{\"refresh_token\":{}}", CHAT_ERR_bad_field},
        {"{\"current_password\":true}", CHAT_ERR_bad_field},
        {"{\"new_password\":1.5}", CHAT_ERR_bad_field},
        {"{\"username\":\"ok_user\",\"password\":12345678}", CHAT_ERR_bad_field},
        /* "all" is a boolean, nothing else */
        {"{\"all\":1}", CHAT_ERR_bad_field},
        {"{\"all\":0}", CHAT_ERR_bad_field},
        {"{\"all\":\"true\"}", CHAT_ERR_bad_field},
        {"{\"all\":null}", CHAT_ERR_bad_field},
        {"{\"all\":[true]}", CHAT_ERR_bad_field},
        /* NUL inside a field that is read */
        {"{\"username\":\"a\\u0000b\"}", CHAT_ERR_bad_field},
        {"{\"password\":\"\\u0000\"}", CHAT_ERR_bad_field},
        {"{\"nickname\":\"Al\\u0000ice\"}", CHAT_ERR_bad_field},
        {"{\"refresh_token\":\"x\\u0000\"}", CHAT_ERR_bad_field},
        {"{\"current_password\":\"\\u0000x\"}", CHAT_ERR_bad_field},
        {"{\"new_password\":\"n3w\\u0000password\"}", CHAT_ERR_bad_field},
        /* not one JSON object */
        {"{\"username\":\"a\",\"username\":\"b\"}", CHAT_ERR_bad_json},
        {"{\"username\":\"a\",\"x\":{\"k\":1,\"k\":2}}", CHAT_ERR_bad_json},
        {"{\"all\":true,\"all\":true}", CHAT_ERR_bad_json},
        {"[]", CHAT_ERR_bad_json},
        {"null", CHAT_ERR_bad_json},
        {"\"username\"", CHAT_ERR_bad_json},
        {" ", CHAT_ERR_bad_json},
        {"{", CHAT_ERR_bad_json},
        {"{\"username\":\"a\"} {}", CHAT_ERR_bad_json},
        {"{'username':'a'}", CHAT_ERR_bad_json},
        {"{\"username\":\"\\ud800\"}", CHAT_ERR_bad_json},
        /* invalid UTF-8 anywhere, checked first */
        {"{\"password\":\"\xc3\x28\"}", CHAT_ERR_bad_utf8},
        {"{\"passw\xff\":\"x\"}", CHAT_ERR_bad_utf8},
        {"{\"unknown\":\"\xed\xa0\x80\"}", CHAT_ERR_bad_utf8},
        {"{\"username\":5,\"x\":\"\xc0\xaf\"}", CHAT_ERR_bad_utf8},
        {"{\"x\":\"\xc0\xaf\",\"x\":1}", CHAT_ERR_bad_utf8},
        {"\xef\xbb\xbf{}", CHAT_ERR_bad_json}, /* a BOM is valid UTF-8 but not JSON */
    };
    struct chat_auth_body b;
    enum chat_errcode err;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = auth_decode(bad[i].body, &b, &err);
        if (rc != CHAT_EPROTO || err != bad[i].err)
            fail_msg("body %zu (%s): want %s, got rc %d %s", i, bad[i].body,
                     chat_errcode_name(bad[i].err), rc,
                     rc == CHAT_OK ? "-" : chat_errcode_name(err));
        chat_auth_body_fini(&b);
        assert_null(b._doc);
    }
}

/* Every string field is capped at CHAT_AUTH_FIELD_MAX bytes (not code points). */
static void test_proto_auth_body_field_limit(void **state)
{
    static const char *const fields[] = {"username",      "password",     "nickname",
                                         "refresh_token", "new_password", "current_password"};
    struct chat_auth_body b;
    enum chat_errcode err;

    (void)state;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        for (size_t n = CHAT_AUTH_FIELD_MAX; n <= CHAT_AUTH_FIELD_MAX + 1; n++) {
            struct chat_buf in;
            int rc;

            chat_buf_init(&in, 0, 0);
            assert_int_equal(chat_buf_appends(&in, "{\""), CHAT_OK);
            assert_int_equal(chat_buf_appends(&in, fields[i]), CHAT_OK);
            assert_int_equal(chat_buf_appends(&in, "\":\""), CHAT_OK);
            for (size_t k = 0; k < n; k++)
                assert_int_equal(chat_buf_appends(&in, "a"), CHAT_OK);
            assert_int_equal(chat_buf_appends(&in, "\"}"), CHAT_OK);
            rc = chat_auth_body_decode(chat_buf_data(&in), in.len, &b, &err);
            if (n == CHAT_AUTH_FIELD_MAX) {
                assert_int_equal(rc, CHAT_OK);
            } else {
                assert_int_equal(rc, CHAT_EPROTO);
                assert_int_equal(err, CHAT_ERR_bad_field);
            }
            chat_auth_body_fini(&b);
            chat_buf_fini(&in);
        }
    }
}

static void test_proto_auth_body_limit_is_bytes(void **state)
{
    struct chat_auth_body b;
    enum chat_errcode err;
    struct chat_buf in;

    (void)state;
    /* 342 x EURO SIGN: 342 code points but 1026 bytes */
    chat_buf_init(&in, 0, 0);
    assert_int_equal(chat_buf_appends(&in, "{\"password\":\""), CHAT_OK);
    for (int k = 0; k < 342; k++)
        assert_int_equal(chat_buf_appends(&in, "\xe2\x82\xac"), CHAT_OK);
    assert_int_equal(chat_buf_appends(&in, "\"}"), CHAT_OK);
    assert_int_equal(chat_auth_body_decode(chat_buf_data(&in), in.len, &b, &err), CHAT_EPROTO);
    assert_int_equal(err, CHAT_ERR_bad_field);
    chat_auth_body_fini(&b);
    chat_buf_fini(&in);
    /* an unknown field may be longer: it is not read */
    chat_buf_init(&in, 0, 0);
    assert_int_equal(chat_buf_appends(&in, "{\"comment\":\""), CHAT_OK);
    for (int k = 0; k < 2 * CHAT_AUTH_FIELD_MAX; k++)
        assert_int_equal(chat_buf_appends(&in, "x"), CHAT_OK);
    assert_int_equal(chat_buf_appends(&in, "\",\"all\":true}"), CHAT_OK);
    assert_int_equal(chat_auth_body_decode(chat_buf_data(&in), in.len, &b, &err), CHAT_OK);
    assert_true(b.all);
    chat_auth_body_fini(&b);
    chat_buf_fini(&in);
}

/* The body's length is explicit: bytes after it are not read. */
static void test_proto_auth_body_not_nul_terminated(void **state)
{
    static const char in[] = "{\"username\":\"carol_1\"}{\"username\":\"x\"}";
    struct chat_auth_body b;
    enum chat_errcode err;

    (void)state;
    assert_int_equal(chat_auth_body_decode(in, strlen("{\"username\":\"carol_1\"}"), &b, &err),
                     CHAT_OK);
    assert_string_equal(b.username, "carol_1");
    chat_auth_body_fini(&b);
}

/* ---- chat.events: control events between gateways ---- */

static void test_proto_event_sessions_revoked(void **state)
{
    static const char *const sids[] = {"34", "35"};
    struct chat_buf b;
    struct chat_event ev;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_ev_sessions_revoked(&b, "12", sids, 2, "logout", 1767225600123),
                     CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "{\"type\":\"sessions_revoked\",\"user\":\"12\","
                                           "\"sids\":[\"34\",\"35\"],\"reason\":\"logout\","
                                           "\"ts\":1767225600123}");
    assert_int_equal(chat_event_decode(chat_buf_data(&b), b.len, &ev), CHAT_OK);
    assert_int_equal(ev.type, CHAT_EV_sessions_revoked);
    assert_string_equal(ev.user, "12");
    assert_int_equal(ev.nsids, 2);
    assert_string_equal(ev.sids[0], "34");
    assert_string_equal(ev.sids[1], "35");
    assert_string_equal(ev.reason, "logout");
    assert_null(ev.nick);
    assert_int_equal(ev.ts, 1767225600123);
    chat_event_fini(&ev);
    chat_event_fini(&ev); /* idempotent */
    chat_event_fini(NULL);

    /* no sessions: an empty list still decodes */
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_ev_sessions_revoked(&b, "7", NULL, 0, "admin", 1), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "{\"type\":\"sessions_revoked\",\"user\":\"7\","
                                           "\"sids\":[],\"reason\":\"admin\",\"ts\":1}");
    assert_int_equal(chat_event_decode(chat_buf_data(&b), b.len, &ev), CHAT_OK);
    assert_int_equal(ev.type, CHAT_EV_sessions_revoked);
    assert_int_equal(ev.nsids, 0);
    assert_string_equal(ev.reason, "admin");
    chat_event_fini(&ev);
    chat_buf_fini(&b);
}

static void test_proto_event_user_updated(void **state)
{
    static const char nick[] = "New \"nick\" \xe2\x82\xac \xf0\x9f\x98\x80";
    struct chat_buf b;
    struct chat_event ev;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_ev_user_updated(&b, "12", "New nick", 1767225600123), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "{\"type\":\"user_updated\",\"user\":\"12\","
                                           "\"nick\":\"New nick\",\"ts\":1767225600123}");
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_ev_user_updated(&b, "12", nick, 5), CHAT_OK);
    assert_int_equal(chat_event_decode(chat_buf_data(&b), b.len, &ev), CHAT_OK);
    assert_int_equal(ev.type, CHAT_EV_user_updated);
    assert_string_equal(ev.user, "12");
    assert_string_equal(ev.nick, nick);
    assert_null(ev.reason);
    assert_null(ev.sids);
    assert_int_equal(ev.nsids, 0);
    assert_int_equal(ev.ts, 5);
    chat_event_fini(&ev);
    chat_buf_fini(&b);
}

static void test_proto_event_decode_unknown_fields(void **state)
{
    static const char v[] = "{\"v\":3,\"ts\":9,\"sids\":[\"1\"],\"type\":\"sessions_revoked\","
                            "\"extra\":{\"a\":[null]},\"reason\":\"password_changed\","
                            "\"user\":\"12\",\"nick\":5}";
    struct chat_event ev;

    (void)state;
    /* key order is free and unknown fields are ignored, as in every format of the protocol */
    assert_int_equal(chat_event_decode(v, strlen(v), &ev), CHAT_OK);
    assert_int_equal(ev.type, CHAT_EV_sessions_revoked);
    assert_string_equal(ev.reason, "password_changed");
    assert_int_equal(ev.nsids, 1);
    assert_int_equal(ev.ts, 9);
    chat_event_fini(&ev);
}

/* A well-formed event of a type this version does not know: CHAT_ENOENT, for the caller to skip. */
static void test_proto_event_decode_unknown_type(void **state)
{
    static const char *const unknown[] = {
        "{\"type\":\"user_banned\",\"user\":\"12\",\"ts\":1,\"room\":\"lobby\"}",
        "{\"type\":\"SESSIONS_REVOKED\",\"user\":\"12\",\"ts\":1,\"sids\":[],\"reason\":\"x\"}",
        "{\"type\":\"\",\"user\":\"12\",\"ts\":1}",
    };
    struct chat_event ev;

    (void)state;
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        int rc = chat_event_decode(unknown[i], strlen(unknown[i]), &ev);
        if (rc != CHAT_ENOENT)
            fail_msg("%s: want ENOENT, got %s", unknown[i], chat_errname(rc));
        assert_int_equal(ev.type, CHAT_EV_NONE);
        chat_event_fini(&ev);
    }
}

static void test_proto_event_decode_rejects(void **state)
{
#define REV(body) "{\"type\":\"sessions_revoked\"" body "}"
#define UPD(body) "{\"type\":\"user_updated\"" body "}"
    static const char *const bad[] = {
        /* sessions_revoked: user, ts, sids, reason required */
        REV(",\"sids\":[\"34\"],\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[\"34\"],\"reason\":\"logout\""),
        REV(",\"user\":\"12\",\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[\"34\"],\"ts\":1"),
        REV(",\"user\":12,\"sids\":[\"34\"],\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":null,\"sids\":[\"34\"],\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[\"34\"],\"reason\":\"logout\",\"ts\":\"1\""),
        REV(",\"user\":\"12\",\"sids\":[\"34\"],\"reason\":\"logout\",\"ts\":1.5"),
        REV(",\"user\":\"12\",\"sids\":\"34\",\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":{\"a\":\"34\"},\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[34],\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[\"34\",35],\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[\"34\",null],\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[[\"34\"]],\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[\"34\"],\"reason\":7,\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[\"3\\u00004\"],\"reason\":\"logout\",\"ts\":1"),
        REV(",\"user\":\"12\",\"sids\":[\"34\"],\"reason\":\"logout\",\"ts\":1,\"ts\":2"),
        /* user_updated: user, ts, nick required */
        UPD(",\"user\":\"12\",\"ts\":1"),
        UPD(",\"user\":\"12\",\"nick\":5,\"ts\":1"),
        UPD(",\"user\":\"12\",\"nick\":null,\"ts\":1"),
        UPD(",\"nick\":\"n\",\"ts\":1"),
        UPD(",\"user\":\"12\",\"nick\":\"n\""),
        UPD(",\"user\":\"12\",\"nick\":\"n\",\"ts\":null"),
        /* any event: an object with a string type */
        "{\"user\":\"12\",\"ts\":1,\"nick\":\"n\"}",
        "{\"type\":7,\"user\":\"12\",\"ts\":1}",
        "{\"type\":null,\"user\":\"12\",\"ts\":1}",
        "[\"user_updated\"]",
        "\"user_updated\"",
        "null",
        "not json",
        "",
    };
#undef REV
#undef UPD
    struct chat_event ev;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = chat_event_decode(bad[i], strlen(bad[i]), &ev);
        if (rc != CHAT_EPROTO)
            fail_msg("%s: want EPROTO, got %s", bad[i], chat_errname(rc));
        chat_event_fini(&ev);
        assert_null(ev._doc);
        assert_null(ev.sids);
    }
}

static void test_proto_event_decode_user_limit(void **state)
{
    char user[CHAT_USER_MAX + 2];
    char *v;
    struct chat_event ev;

    (void)state;
    memset(user, '9', sizeof(user));
    user[CHAT_USER_MAX] = '\0';
    v = chat_xasprintf("{\"type\":\"user_updated\",\"user\":\"%s\",\"nick\":\"n\",\"ts\":1}", user);
    assert_int_equal(chat_event_decode(v, strlen(v), &ev), CHAT_OK);
    assert_int_equal(strlen(ev.user), CHAT_USER_MAX);
    chat_event_fini(&ev);
    chat_free(v);
    user[CHAT_USER_MAX] = '9';
    user[CHAT_USER_MAX + 1] = '\0';
    v = chat_xasprintf("{\"type\":\"user_updated\",\"user\":\"%s\",\"nick\":\"n\",\"ts\":1}", user);
    assert_int_equal(chat_event_decode(v, strlen(v), &ev), CHAT_EPROTO);
    chat_event_fini(&ev);
    chat_free(v);
}

/* proto/README.md documents every frame type, error code and close code of chat_proto.def. */
/* GET .../messages: the frames as given, then more and source. */
static void test_proto_enc_history(void **state)
{
    struct chat_buf out, frames;

    (void)state;
    chat_buf_init(&out, 0, 0);
    chat_buf_init(&frames, 0, 0);
    assert_int_equal(chat_enc_history(&out, &frames, false, "db"), CHAT_OK);
    assert_string_equal(chat_buf_data(&out), "{\"messages\":[],\"more\":false,\"source\":\"db\"}");
    chat_buf_reset(&out);
    assert_int_equal(chat_buf_appends(&frames, "{\"seq\":1},{\"seq\":2}"), CHAT_OK);
    assert_int_equal(chat_enc_history(&out, &frames, true, "cache"), CHAT_OK);
    assert_string_equal(
        chat_buf_data(&out),
        "{\"messages\":[{\"seq\":1},{\"seq\":2}],\"more\":true,\"source\":\"cache\"}");
    chat_buf_fini(&out);
    chat_buf_fini(&frames);
}

/* POST .../read: {"seq":N}, N >= 0; stable codes for the rest. */
static void test_proto_read_body(void **state)
{
    static const struct {
        const char *body;
        enum chat_errcode code;
    } bad[] = {
        {"", CHAT_ERR_bad_json},
        {"[1]", CHAT_ERR_bad_json},
        {"{\"seq\":1,\"seq\":2}", CHAT_ERR_bad_json},
        {"{}", CHAT_ERR_bad_field},
        {"{\"seq\":-1}", CHAT_ERR_bad_field},
        {"{\"seq\":\"5\"}", CHAT_ERR_bad_field},
        {"{\"seq\":1.5}", CHAT_ERR_bad_field},
        {"{\"seq\":null}", CHAT_ERR_bad_field},
        {"{\"seq\":\"\xff\"}", CHAT_ERR_bad_utf8},
    };
    struct chat_buf out;
    enum chat_errcode code = CHAT_ERR_internal;
    int64_t seq = 0;

    (void)state;
    assert_int_equal(chat_read_body_decode("{\"seq\":42,\"x\":1}", 16, &seq, &code), CHAT_OK);
    assert_int_equal(seq, 42);
    assert_int_equal(chat_read_body_decode("{\"seq\":0}", 9, &seq, &code), CHAT_OK);
    assert_int_equal(seq, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        code = CHAT_ERR_internal;
        assert_int_equal(chat_read_body_decode(bad[i].body, strlen(bad[i].body), &seq, &code),
                         CHAT_EPROTO);
        if (code != bad[i].code)
            fail_msg("%s: %s, expected %s", bad[i].body, chat_errcode_name(code),
                     chat_errcode_name(bad[i].code));
    }
    chat_buf_init(&out, 0, 0);
    assert_int_equal(chat_enc_read_state(&out, 7, 1000), CHAT_OK);
    assert_string_equal(chat_buf_data(&out), "{\"last_read_seq\":7,\"unread\":1000}");
    chat_buf_fini(&out);
}

static void test_proto_readme_complete(void **state)
{
    char *path = chat_xasprintf("%s/README.md", proto_dir);
    char *doc = read_file(path, NULL);

    (void)state;
    if (!doc)
        fail_msg("cannot read %s", path);
    for (int t = 1; t < CHAT_F__COUNT; t++) {
        char *key = chat_xasprintf("`%s`", chat_frame_name((enum chat_frame_type)t));
        if (!strstr(doc, key))
            fail_msg("README.md does not mention frame %s", key);
        chat_free(key);
    }
    for (int i = 0; i < CHAT_ERR__COUNT; i++) {
        char *key = chat_xasprintf("`%s`", chat_errcode_name((enum chat_errcode)i));
        if (!strstr(doc, key))
            fail_msg("README.md does not mention error code %s", key);
        chat_free(key);
    }
#define CHAT_CLOSE(name, code, reason) \
    if (!strstr(doc, #code))           \
        fail_msg("README.md does not mention close code %d", code);
#include "../../proto/chat_proto.def"
#undef CHAT_CLOSE
    chat_free(doc);
    chat_free(path);
}

/* The error table of proto/README.md (section 6) gives each code the HTTP status that
 * chat_proto.def gives it: "| `code` | what | STATUS |". */
static void test_proto_readme_http_status(void **state)
{
    char *path = chat_xasprintf("%s/README.md", proto_dir);
    char *doc = read_file(path, NULL);

    (void)state;
    if (!doc) {
        fail_msg("cannot read %s", path);
        return; /* not reached */
    }
    /* the table of section 6 only (other tables name some codes too) */
    char *sec = strstr(doc, "\n## 6. "), *next = sec ? strstr(sec + 1, "\n## ") : NULL;
    if (!sec) {
        fail_msg("README.md has no section 6");
        return; /* not reached */
    }
    if (next)
        *next = '\0';
    for (int i = 0; i < CHAT_ERR__COUNT; i++) {
        char *key = chat_xasprintf("\n| `%s` |", chat_errcode_name((enum chat_errcode)i));
        const char *row = strstr(sec, key), *end, *cell;
        if (!row) {
            fail_msg("README.md has no error table row for %s", key + 1);
            break; /* not reached */
        }
        end = strchr(row + 1, '\n');
        if (!end)
            end = row + strlen(row);
        cell = end;
        while (cell > row && cell[-1] != '|') /* the trailing '|' */
            cell--;
        cell--;
        while (cell > row && cell[-1] != '|') /* back to the last cell's start */
            cell--;
        while (*cell == ' ')
            cell++;
        if (!chat_errcode_rest((enum chat_errcode)i)) {
            if (*cell != '-')
                fail_msg("README.md gives the WebSocket-only %s an HTTP status", key + 1);
        } else if (atoi(cell) != chat_errcode_http((enum chat_errcode)i)) {
            fail_msg("README.md gives %s the status %d, chat_proto.def %d", key + 1, atoi(cell),
                     chat_errcode_http((enum chat_errcode)i));
        }
        chat_free(key);
    }
    chat_free(doc);
    chat_free(path);
}

/* announcement: the frame every connection gets, and the chat.events record it comes from */
static void test_proto_example_announcement(void **state)
{
    struct server_case c;
    struct chat_event ev;
    struct chat_buf b;

    (void)state;
    server_begin(&c, "announcement");
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_ev_announcement(&b, "*",
                                              json_string_value(json_object_get(c.j, "id")),
                                              json_string_value(json_object_get(c.j, "text")),
                                              json_integer_value(json_object_get(c.j, "ts"))),
                     CHAT_OK);
    assert_int_equal(chat_event_decode(chat_buf_data(&b), b.len, &ev), CHAT_OK);
    assert_int_equal(ev.type, CHAT_EV_announcement);
    assert_string_equal(ev.room, "*");
    server_end(&c, chat_enc_announcement(&c.out, ev.id, ev.text, ev.ts));
    chat_event_fini(&ev);
    chat_buf_fini(&b);
}

/* The message event and the ack are written without jansson: byte for byte what jansson's
 * compact dump of the same members in the same order gives, escapes, controls and UTF-8
 * included. */
static char *jansson_dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

static void test_proto_hot_encoders_match_jansson(void **state)
{
    static const char *const texts[] = {
        "hello",
        "say \"hi\"\\ / end",
        "line\nnext\ttab\rcr\bbs\fff",
        "\x01\x1f\x7f",
        "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac",
        "",
        "<script>alert(1)</script>",
    };
    static const char *const ids[] = {NULL, "c-1", "q\"uote"};
    static const int64_t seqs[] = {-1, 0, 7, 9007199254740993LL};
    const size_t ntexts = sizeof(texts) / sizeof(texts[0]);

    (void)state;
    for (size_t t = 0; t < ntexts; t++)
        for (size_t c = 0; c < sizeof(ids) / sizeof(ids[0]); c++)
            for (size_t q = 0; q < sizeof(seqs) / sizeof(seqs[0]); q++)
                for (int del = 0; del < 2; del++) {
                    struct chat_event_msg m = {.room = "r-1.x",
                                               .user = "u_\"1",
                                               .nick = texts[(t + 1) % ntexts],
                                               .text = texts[t],
                                               .client_msg_id = ids[c],
                                               .id = 18446744073709551615ULL - t,
                                               .ts = 1700000000123LL + (int64_t)q,
                                               .seq = seqs[q],
                                               .deleted = del};
                    char idb[24], *want;
                    struct chat_buf b;
                    json_t *j;

                    snprintf(idb, sizeof(idb), "%" PRIu64, m.id);
                    j = json_pack("{s:s}", "type", "message");
                    if (m.seq >= 0)
                        json_object_set_new(j, "seq", json_integer(m.seq));
                    json_object_set_new(j, "room", json_string(m.room));
                    json_object_set_new(j, "id", json_string(idb));
                    json_object_set_new(j, "user", json_string(m.user));
                    json_object_set_new(j, "nick", json_string(m.nick));
                    if (del) {
                        json_object_set_new(j, "ts", json_integer(m.ts));
                        json_object_set_new(j, "deleted", json_true());
                        json_object_set_new(j, "text", json_string(""));
                    } else {
                        json_object_set_new(j, "text", json_string(m.text));
                        json_object_set_new(j, "ts", json_integer(m.ts));
                        if (m.client_msg_id)
                            json_object_set_new(j, "client_msg_id", json_string(m.client_msg_id));
                    }
                    want = jansson_dump(j);
                    chat_buf_init(&b, 16, 0);
                    assert_int_equal(chat_enc_message(&b, &m), CHAT_OK);
                    assert_string_equal(chat_buf_data(&b), want);
                    free(want); /* jansson's */

                    j = json_pack("{s:s, s:s, s:I, s:I}", "type", "ack", "id", idb, "seq",
                                  (json_int_t)m.seq, "ts", (json_int_t)m.ts);
                    if (m.client_msg_id)
                        json_object_set_new(j, "client_msg_id", json_string(m.client_msg_id));
                    json_object_set_new(j, "ref", json_string(texts[t]));
                    want = jansson_dump(j);
                    chat_buf_reset(&b);
                    assert_int_equal(chat_enc_ack(&b, m.client_msg_id, m.id, m.seq, m.ts, texts[t]),
                                     CHAT_OK);
                    assert_string_equal(chat_buf_data(&b), want);
                    free(want);
                    chat_buf_fini(&b);
                }
}

/* A string that is not UTF-8 is refused, and the buffer is left as it was. */
static void test_proto_hot_encoders_refuse_bad_utf8(void **state)
{
    struct chat_event_msg m = {
        .room = "r", .user = "u", .nick = "n", .text = "bad \xff", .id = 1, .ts = 2, .seq = -1};
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_buf_appends(&b, "keep"), CHAT_OK);
    assert_int_equal(chat_enc_message(&b, &m), CHAT_EINVAL);
    assert_string_equal(chat_buf_data(&b), "keep");
    assert_int_equal(chat_enc_ack(&b, "\xc3", 1, 2, 3, NULL), CHAT_EINVAL);
    assert_string_equal(chat_buf_data(&b), "keep");
    chat_buf_fini(&b);
    chat_buf_init(&b, 0, 8); /* too small: ETOOBIG, unchanged */
    assert_int_equal(chat_enc_ack(&b, NULL, 1, 2, 3, NULL), CHAT_ETOOBIG);
    assert_int_equal(b.len, 0);
    chat_buf_fini(&b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_example_auth),
        cmocka_unit_test(test_proto_example_join),
        cmocka_unit_test(test_proto_example_leave),
        cmocka_unit_test(test_proto_example_send),
        cmocka_unit_test(test_proto_example_ping),
        cmocka_unit_test(test_proto_example_read),
        cmocka_unit_test(test_proto_example_hello),
        cmocka_unit_test(test_proto_hello_anonymous),
        cmocka_unit_test(test_proto_example_authed),
        cmocka_unit_test(test_proto_example_joined),
        cmocka_unit_test(test_proto_example_left),
        cmocka_unit_test(test_proto_example_ack),
        cmocka_unit_test(test_proto_example_message),
        cmocka_unit_test(test_proto_example_presence),
        cmocka_unit_test(test_proto_example_presence_total),
        cmocka_unit_test(test_proto_example_pong),
        cmocka_unit_test(test_proto_example_error),
        cmocka_unit_test(test_proto_example_bye),
        cmocka_unit_test(test_proto_example_session_expiring),
        cmocka_unit_test(test_proto_example_session_expired),
        cmocka_unit_test(test_proto_example_session_revoked),
        cmocka_unit_test(test_proto_examples_complete),
        cmocka_unit_test(test_proto_example_announcement),
        cmocka_unit_test(test_proto_msg_splice_seq),
        cmocka_unit_test(test_proto_msg_splice_rejects),
        cmocka_unit_test(test_proto_msg_splice_seq_prev),
        cmocka_unit_test(test_proto_stream_splice),
        cmocka_unit_test(test_proto_message_edited),
        cmocka_unit_test(test_proto_msg_decode_roundtrip),
        cmocka_unit_test(test_proto_msg_decode_rejects),
        cmocka_unit_test(test_proto_names),
        cmocka_unit_test(test_proto_enc_error_defaults),
        cmocka_unit_test(test_proto_enc_headroom_and_cap),
        cmocka_unit_test(test_proto_enc_rest_bodies),
        cmocka_unit_test(test_proto_enc_session_frames),
        cmocka_unit_test(test_proto_enc_user),
        cmocka_unit_test(test_proto_enc_session),
        cmocka_unit_test(test_proto_enc_revoked),
        cmocka_unit_test(test_proto_enc_logins),
        cmocka_unit_test(test_proto_auth_body_empty),
        cmocka_unit_test(test_proto_auth_body_fields),
        cmocka_unit_test(test_proto_auth_body_unknown_fields),
        cmocka_unit_test(test_proto_auth_body_rejects),
        cmocka_unit_test(test_proto_auth_body_field_limit),
        cmocka_unit_test(test_proto_auth_body_limit_is_bytes),
        cmocka_unit_test(test_proto_auth_body_not_nul_terminated),
        cmocka_unit_test(test_proto_event_sessions_revoked),
        cmocka_unit_test(test_proto_event_user_updated),
        cmocka_unit_test(test_proto_event_decode_unknown_fields),
        cmocka_unit_test(test_proto_event_decode_unknown_type),
        cmocka_unit_test(test_proto_event_decode_rejects),
        cmocka_unit_test(test_proto_event_decode_user_limit),
        cmocka_unit_test(test_proto_enc_history),
        cmocka_unit_test(test_proto_read_body),
        cmocka_unit_test(test_proto_readme_complete),
        cmocka_unit_test(test_proto_readme_http_status),
        cmocka_unit_test(test_proto_hot_encoders_match_jansson),
        cmocka_unit_test(test_proto_hot_encoders_refuse_bad_utf8),
    };

    if (argc > 1)
        proto_dir = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
