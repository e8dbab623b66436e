/* test_proto_decode.c - the client-frame decoder against malformed input: every
 * tests/data/bad/<code>__<what>.json must fail chat_cframe_decode() with exactly <code>, plus the
 * decoder's details (unknown fields, ref echo, limits) and the REST send body decoder. Likewise
 * every tests/data/bad_auth_body/<code>__<what>.json must fail chat_auth_body_decode() (the body
 * of the account endpoints) with exactly <code>, and the valid seeds of the fuzzers
 * (tests/data/fuzz/<target>/) decode.
 * The data directory comes from the compile definition CHAT_TEST_DATA_DIR or argv[1]. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include <dirent.h>

#include "chat/buf.h"
#include "chat/mem.h"
#include "chat/proto.h"

#include "test_util.h"

#define TEST_MAX_TEXT 64 /* code points: the fixed limit the bad files assume */

static const char *data_dir = CHAT_TEST_DATA_DIR;

/* ---- malformed inputs: tests/data/bad/<code>__<what>.json ---- */

static enum chat_errcode code_from_filename(const char *file)
{
    const char *sep = strstr(file, "__");

    if (!sep)
        fail_msg("%s: name must be <expected_code>__<what>.json", file);
    for (int i = 0; i < CHAT_ERR__COUNT; i++) {
        const char *n = chat_errcode_name((enum chat_errcode)i);
        if (strlen(n) == (size_t)(sep - file) && strncmp(file, n, strlen(n)) == 0)
            return (enum chat_errcode)i;
    }
    fail_msg("%s: unknown error code prefix", file);
    return CHAT_ERR__COUNT;
}

static void test_proto_bad_inputs(void **state)
{
    char *dir = chat_xasprintf("%s/bad", data_dir);
    int per_code[CHAT_ERR__COUNT] = {0};
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;

    (void)state;
    if (!d)
        fail_msg("cannot open %s", dir);
    while ((e = readdir(d)) != NULL) {
        struct chat_cframe f;
        enum chat_errcode want, got;
        char *path, *text;
        size_t len = 0;
        int rc;

        if (e->d_name[0] == '.')
            continue;
        want = code_from_filename(e->d_name);
        path = chat_xasprintf("%s/%s", dir, e->d_name);
        text = read_file(path, &len);
        assert_non_null(text);
        rc = chat_cframe_decode(text, len, TEST_MAX_TEXT, &f, &got);
        if (rc != CHAT_EPROTO || got != want)
            fail_msg("%s: want %s, got rc %d code %s", e->d_name, chat_errcode_name(want), rc,
                     rc == CHAT_OK ? "-" : chat_errcode_name(got));
        chat_cframe_fini(&f);
        chat_free(text);
        chat_free(path);
        per_code[want]++;
        files++;
    }
    (void)closedir(d);
    chat_free(dir);
    assert_true(files >= 50);
    /* every code the decoder itself can return has at least one file */
    assert_true(per_code[CHAT_ERR_bad_json] > 0);
    assert_true(per_code[CHAT_ERR_bad_utf8] > 0);
    assert_true(per_code[CHAT_ERR_unknown_type] > 0);
    assert_true(per_code[CHAT_ERR_bad_field] > 0);
    assert_true(per_code[CHAT_ERR_bad_room] > 0);
    assert_true(per_code[CHAT_ERR_empty_text] > 0);
    assert_true(per_code[CHAT_ERR_text_too_long] > 0);
    assert_true(per_code[CHAT_ERR_bad_text] > 0);
}

/* tests/data/bad_auth_body/<code>__<what>.json: account request bodies */
static void test_proto_bad_auth_bodies(void **state)
{
    char *dir = chat_xasprintf("%s/bad_auth_body", data_dir);
    int per_code[CHAT_ERR__COUNT] = {0};
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;

    (void)state;
    if (!d)
        fail_msg("cannot open %s", dir);
    while ((e = readdir(d)) != NULL) {
        struct chat_auth_body b;
        enum chat_errcode want, got = CHAT_ERR__COUNT;
        char *path, *text;
        size_t len = 0;
        int rc;

        if (e->d_name[0] == '.')
            continue;
        want = code_from_filename(e->d_name);
        path = chat_xasprintf("%s/%s", dir, e->d_name);
        text = read_file(path, &len);
        assert_non_null(text);
        rc = chat_auth_body_decode(text, len, &b, &got);
        if (rc != CHAT_EPROTO || got != want)
            fail_msg("%s: want %s, got rc %d code %s", e->d_name, chat_errcode_name(want), rc,
                     rc == CHAT_OK ? "-" : chat_errcode_name(got));
        chat_auth_body_fini(&b);
        chat_free(text);
        chat_free(path);
        per_code[want]++;
        files++;
    }
    (void)closedir(d);
    chat_free(dir);
    /* the three codes the body decoder can return */
    assert_true(per_code[CHAT_ERR_bad_json] > 0);
    assert_true(per_code[CHAT_ERR_bad_utf8] > 0);
    assert_true(per_code[CHAT_ERR_bad_field] > 0);
    assert_int_equal(files, per_code[CHAT_ERR_bad_json] + per_code[CHAT_ERR_bad_utf8] +
                                per_code[CHAT_ERR_bad_field]);
}

/* ---- decoder details ---- */

static int decode_str(const char *s, struct chat_cframe *f, enum chat_errcode *err)
{
    return chat_cframe_decode(s, strlen(s), TEST_MAX_TEXT, f, err);
}

static void test_proto_decode_unknown_fields_ignored(void **state)
{
    struct chat_cframe f;
    enum chat_errcode err;

    (void)state;
    assert_int_equal(decode_str("{\"future\":{\"x\":[1,2,{\"y\":null}]},\"type\":\"join\","
                                "\"room\":\"lobby\",\"v\":2,\"text\":7}",
                                &f, &err),
                     CHAT_OK);
    assert_int_equal(f.type, CHAT_F_join);
    assert_string_equal(f.room, "lobby");
    assert_null(f.text); /* not a send: text is not read */
    chat_cframe_fini(&f);
    assert_int_equal(decode_str(" \n{\"type\":\"ping\"}\n ", &f, &err), CHAT_OK);
    assert_null(f.ref);
    chat_cframe_fini(&f);
}

static void test_proto_decode_error_echoes_ref(void **state)
{
    struct chat_cframe f;
    enum chat_errcode err;

    (void)state;
    assert_int_equal(decode_str("{\"type\":\"join\",\"room\":\"a b\",\"ref\":\"r7\"}", &f, &err),
                     CHAT_EPROTO);
    assert_int_equal(err, CHAT_ERR_bad_room);
    assert_string_equal(f.ref, "r7");
    chat_cframe_fini(&f);
    assert_int_equal(decode_str("{\"type\":\"nope\",\"ref\":\"r8\"}", &f, &err), CHAT_EPROTO);
    assert_int_equal(err, CHAT_ERR_unknown_type);
    assert_string_equal(f.ref, "r8");
    chat_cframe_fini(&f);
    assert_int_equal(decode_str("{\"type\":\"send\",\"room\":\"r\",\"text\":\" \",\"ref\":\"r9\","
                                "\"client_msg_id\":\"c9\"}",
                                &f, &err),
                     CHAT_EPROTO);
    assert_int_equal(err, CHAT_ERR_empty_text);
    assert_string_equal(f.ref, "r9");
    assert_string_equal(f.client_msg_id, "c9");
    chat_cframe_fini(&f);
    chat_cframe_fini(&f); /* idempotent */
}

static void test_proto_decode_text_limit_boundary(void **state)
{
    struct chat_buf b;
    struct chat_cframe f;
    enum chat_errcode err;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_buf_appends(&b, "{\"type\":\"send\",\"room\":\"r\",\"text\":\""),
                     CHAT_OK);
    for (int i = 0; i < TEST_MAX_TEXT; i++) /* 64 x EURO SIGN: 64 code points, 192 bytes */
        assert_int_equal(chat_buf_appends(&b, "\xe2\x82\xac"), CHAT_OK);
    assert_int_equal(chat_buf_appends(&b, "\"}"), CHAT_OK);
    assert_int_equal(chat_cframe_decode(chat_buf_data(&b), b.len, TEST_MAX_TEXT, &f, &err),
                     CHAT_OK);
    assert_int_equal(f.text_cps, TEST_MAX_TEXT);
    assert_int_equal(f.text_len, 3 * TEST_MAX_TEXT);
    chat_cframe_fini(&f);
    assert_int_equal(chat_cframe_decode(chat_buf_data(&b), b.len, TEST_MAX_TEXT - 1, &f, &err),
                     CHAT_EPROTO);
    assert_int_equal(err, CHAT_ERR_text_too_long);
    chat_cframe_fini(&f);
    chat_buf_fini(&b);
    /* newline and tab are the control characters text may hold */
    assert_int_equal(
        decode_str("{\"type\":\"send\",\"room\":\"r\",\"text\":\"a\\nb\\tc\"}", &f, &err), CHAT_OK);
    assert_string_equal(f.text, "a\nb\tc");
    chat_cframe_fini(&f);
}

static void test_proto_decode_not_nul_terminated(void **state)
{
    static const char in[] = "{\"type\":\"join\",\"room\":\"lobby\"}GARBAGE";
    struct chat_cframe f;
    enum chat_errcode err;

    (void)state;
    assert_int_equal(chat_cframe_decode(in, sizeof(in) - 1 - 7, TEST_MAX_TEXT, &f, &err), CHAT_OK);
    assert_string_equal(f.room, "lobby");
    chat_cframe_fini(&f);
}

static void test_proto_room_valid(void **state)
{
    char room[CHAT_ROOM_MAX + 2];

    (void)state;
    memset(room, 'a', sizeof(room));
    room[CHAT_ROOM_MAX] = '\0';
    assert_true(chat_room_valid(room));
    room[CHAT_ROOM_MAX] = 'a';
    room[CHAT_ROOM_MAX + 1] = '\0';
    assert_false(chat_room_valid(room));
    assert_true(chat_room_valid("A-z_0.9"));
    assert_false(chat_room_valid(""));
    assert_false(chat_room_valid(NULL));
    assert_false(chat_room_valid("a:b"));
    assert_false(chat_room_valid("*"));
}

/* ---- REST bodies ---- */

static void test_proto_rest_send_decode(void **state)
{
    static const struct {
        const char *body;
        enum chat_errcode err;
    } bad[] = {
        {"{\"text\":\"\"}", CHAT_ERR_empty_text},
        {"{\"text\":\"a\\u0000b\"}", CHAT_ERR_bad_text},
        {"{\"text\":5}", CHAT_ERR_bad_field},
        {"{}", CHAT_ERR_bad_field},
        {"{\"text\":\"hi\",\"client_msg_id\":7}", CHAT_ERR_bad_field},
        {"{\"text\":\"hi\",\"text\":\"hi\"}", CHAT_ERR_bad_json},
        {"[\"hi\"]", CHAT_ERR_bad_json},
        {"", CHAT_ERR_bad_json},
        {"{\"text\":\"\xc0\xaf\"}", CHAT_ERR_bad_utf8},
        {"{\"text\":\"\\u0007\"}", CHAT_ERR_bad_text},
    };
    struct chat_cframe f;
    enum chat_errcode err;
    char big[TEST_MAX_TEXT + 32];

    (void)state;
    assert_int_equal(chat_rest_send_decode("{\"text\":\"hi\",\"client_msg_id\":\"c1\","
                                           "\"room\":\"ignored\",\"extra\":[1]}",
                                           strlen("{\"text\":\"hi\",\"client_msg_id\":\"c1\","
                                                  "\"room\":\"ignored\",\"extra\":[1]}"),
                                           TEST_MAX_TEXT, &f, &err),
                     CHAT_OK);
    assert_string_equal(f.text, "hi");
    assert_string_equal(f.client_msg_id, "c1");
    assert_null(f.room); /* the room comes from the URL path */
    chat_cframe_fini(&f);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = chat_rest_send_decode(bad[i].body, strlen(bad[i].body), TEST_MAX_TEXT, &f, &err);
        if (rc != CHAT_EPROTO || err != bad[i].err)
            fail_msg("body %zu: want %s, got rc %d %s", i, chat_errcode_name(bad[i].err), rc,
                     chat_errcode_name(err));
        chat_cframe_fini(&f);
    }
    memset(big, 'a', sizeof(big));
    memcpy(big, "{\"text\":\"", 9);
    memcpy(big + 9 + TEST_MAX_TEXT + 1, "\"}", 2); /* 65 code points */
    assert_int_equal(chat_rest_send_decode(big, 9 + TEST_MAX_TEXT + 3, TEST_MAX_TEXT, &f, &err),
                     CHAT_EPROTO);
    assert_int_equal(err, CHAT_ERR_text_too_long);
    chat_cframe_fini(&f);
}

/* tests/data/fuzz/<target>/: the valid seeds of the fuzzers (scripts/fuzz.sh) must stay valid, or
 * the fuzzers start from rejected input only. frame: client frames; rest: send*.json are message
 * bodies, the others account bodies; kafka: message*, presence*, and events (unknown_* is an
 * event of another version). */
static int seed_decodes(const char *target, const char *file, const char *text, size_t len)
{
    enum chat_errcode err;
    int rc;

    if (strcmp(target, "frame") == 0) {
        struct chat_cframe f;
        rc = chat_cframe_decode(text, len, TEST_MAX_TEXT, &f, &err);
        chat_cframe_fini(&f);
    } else if (strcmp(target, "rest") == 0 && strncmp(file, "send", 4) == 0) {
        struct chat_cframe f;
        rc = chat_rest_send_decode(text, len, TEST_MAX_TEXT, &f, &err);
        chat_cframe_fini(&f);
    } else if (strcmp(target, "rest") == 0) {
        struct chat_auth_body b;
        rc = chat_auth_body_decode(text, len, &b, &err);
        chat_auth_body_fini(&b);
    } else if (strncmp(file, "message", 7) == 0) {
        struct chat_event_msg m;
        void *doc = NULL;
        rc = chat_msg_decode(text, len, &m, &doc);
        chat_json_free(doc);
    } else if (strncmp(file, "presence", 8) == 0) {
        char room[CHAT_ROOM_MAX + 1];
        int64_t conns, users;
        rc = chat_presence_decode(text, len, room, sizeof(room), &conns, &users);
    } else {
        struct chat_event ev;
        rc = chat_event_decode(text, len, &ev);
        chat_event_fini(&ev);
        if (strncmp(file, "unknown_", 8) == 0)
            rc = rc == CHAT_ENOENT ? CHAT_OK : CHAT_EPROTO;
    }
    return rc;
}

static void test_proto_fuzz_seeds_valid(void **state)
{
    static const char *const targets[] = {"frame", "rest", "kafka"};

    (void)state;
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        char *dir = chat_xasprintf("%s/fuzz/%s", data_dir, targets[i]);
        DIR *d = opendir(dir);
        struct dirent *e;
        int files = 0;

        if (!d)
            fail_msg("cannot open %s", dir);
        while ((e = readdir(d)) != NULL) {
            char *path, *text;
            size_t len = 0;

            if (e->d_name[0] == '.')
                continue;
            path = chat_xasprintf("%s/%s", dir, e->d_name);
            text = read_file(path, &len);
            assert_non_null(text);
            if (seed_decodes(targets[i], e->d_name, text, len) != CHAT_OK)
                fail_msg("%s: a fuzz seed that does not decode", path);
            chat_free(text);
            chat_free(path);
            files++;
        }
        (void)closedir(d);
        chat_free(dir);
        assert_true(files > 0);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_bad_inputs),
        cmocka_unit_test(test_proto_bad_auth_bodies),
        cmocka_unit_test(test_proto_decode_unknown_fields_ignored),
        cmocka_unit_test(test_proto_decode_error_echoes_ref),
        cmocka_unit_test(test_proto_decode_text_limit_boundary),
        cmocka_unit_test(test_proto_decode_not_nul_terminated),
        cmocka_unit_test(test_proto_room_valid),
        cmocka_unit_test(test_proto_rest_send_decode),
        cmocka_unit_test(test_proto_fuzz_seeds_valid),
    };

    if (argc > 1)
        data_dir = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
