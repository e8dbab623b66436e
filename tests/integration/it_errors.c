/* it_errors.c - bad input gets a clear error frame with a stable code and the connection stays
 * usable; anonymous connections may watch but not send; bad tokens are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "it_acct.h"
#include "it_util.h"

static char room[64];

/* Sends raw bytes as one text frame and expects an error with code; then ping must work. */
static void expect_error_raw(struct wsc *c, int opcode, const void *p, size_t n, const char *code)
{
    assert_int_equal(wsc_send_frame(c, opcode, true, p, n), 0);
    json_t *e = it_wait_type(c, "error", it_timeout(5000));
    if (!e)
        fail_msg("no error frame (expected %s)", code);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_true(json_is_string(json_object_get(e, "message")));
    json_decref(e);
    assert_true(it_ping(c));
}

static void expect_error(struct wsc *c, const char *text, const char *code)
{
    expect_error_raw(c, WSC_OP_TEXT, text, strlen(text), code);
}

static void test_anonymous_may_watch_not_send(void **state)
{
    (void)state;
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW1_URL"), NULL);
    it_join(c, room);
    it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "hi", "client_msg_id",
            "x1");
    json_t *e = it_wait_type(c, "error", it_timeout(5000));
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "auth_required");
    assert_string_equal(json_string_value(json_object_get(e, "client_msg_id")), "x1");
    json_decref(e);
    assert_true(it_ping(c));
    wsc_close(c);
}

static void test_malformed_frames_get_errors_and_connection_survives(void **state)
{
    (void)state;
    char *t = it_token("mallory", 600);
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW2_URL"), t);
    static const unsigned char bad_utf8[] = "{\"type\":\"ping\",\"ref\":\"\xc3\x28\"}";
    static const unsigned char overlong[] = "{\"type\":\"ping\",\"ref\":\"\xc0\xaf\"}";
    char *big;
    json_t *m;

    it_join(c, room);
    expect_error(c, "{not json", "bad_json");
    expect_error(c, "[1,2,3]", "bad_json");
    expect_error(c, "{\"type\":\"ping\",\"type\":\"ping\"}", "bad_json");
    expect_error(c, "{\"type\":\"teleport\"}", "unknown_type");
    expect_error(c, "{\"type\":\"message\"}", "unknown_type");
    expect_error(c, "{\"room\":\"x\"}", "unknown_type");
    expect_error(c, "{\"type\":\"join\",\"room\":7}", "bad_field");
    expect_error(c, "{\"type\":\"join\",\"room\":\"a/b\"}", "bad_room");
    expect_error(c, "{\"type\":\"send\",\"room\":\"nojoin\",\"text\":\"x\"}", "not_joined");
    expect_error_raw(c, WSC_OP_TEXT, bad_utf8, sizeof(bad_utf8) - 1, "bad_utf8");
    expect_error_raw(c, WSC_OP_TEXT, overlong, sizeof(overlong) - 1, "bad_utf8");
    expect_error_raw(c, WSC_OP_BINARY, "{\"type\":\"ping\"}", 15, "bad_frame");
    /* oversize: one frame over max_frame (8192 in the test cluster) */
    big = malloc(20000);
    memset(big, 'a', 20000);
    memcpy(big, "{\"type\":\"ping\",\"ref\":\"", 22);
    memcpy(big + 19998, "\"}", 2);
    expect_error_raw(c, WSC_OP_TEXT, big, 20000, "too_big");
    /* oversize spread over fragments */
    assert_int_equal(wsc_send_frame(c, WSC_OP_TEXT, false, big, 6000), 0);
    assert_int_equal(wsc_send_frame(c, WSC_OP_CONT, false, big + 6000, 6000), 0);
    expect_error_raw(c, WSC_OP_CONT, big + 12000, 8000, "too_big");
    free(big);
    /* text limits */
    {
        char *longtext = malloc(2002 * 3 + 64);
        char *p = longtext;
        p += sprintf(p, "{\"type\":\"send\",\"room\":\"%s\",\"text\":\"", room);
        for (int i = 0; i < 2001; i++)
            p += sprintf(p, "\xe2\x82\xac"); /* 2001 euro signs: 6003 bytes, 2001 code points */
        strcpy(p, "\"}");
        expect_error(c, longtext, "text_too_long");
        free(longtext);
    }
    {
        char msg[128];
        snprintf(msg, sizeof(msg), "{\"type\":\"send\",\"room\":\"%s\",\"text\":\"   \"}", room);
        expect_error(c, msg, "empty_text");
        snprintf(msg, sizeof(msg), "{\"type\":\"send\",\"room\":\"%s\",\"text\":\"a\\u0007b\"}",
                 room);
        expect_error(c, msg, "bad_text");
    }
    /* a fragmented valid frame is reassembled and works */
    {
        char msg[128];
        int n = snprintf(
            msg, sizeof(msg),
            "{\"type\":\"send\",\"room\":\"%s\",\"text\":\"frag ok\",\"client_msg_id\":\"f1\"}",
            room);
        assert_int_equal(wsc_send_frame(c, WSC_OP_TEXT, false, msg, 10), 0);
        assert_int_equal(wsc_send_frame(c, WSC_OP_CONT, false, msg + 10, 10), 0);
        assert_int_equal(wsc_send_frame(c, WSC_OP_CONT, true, msg + 20, (size_t)n - 20), 0);
    }
    m = it_wait_field(c, "message", "client_msg_id", "f1", it_timeout(10000));
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "text")), "frag ok");
    json_decref(m);
    /* after all that, a normal send still works: still the same, usable connection */
    it_expect_sent(c, room, "still here", "ok1", NULL);
    wsc_close(c);
    free(t);
}

static void expect_refused_token(const char *token, const char *code)
{
    char path[4200], err[256];
    int close_code = 0;
    struct wsc *c;
    json_t *e;

    snprintf(path, sizeof(path), "/ws?token=%s", token);
    c = wsc_connect(it_env("CHAT_TEST_GW1_URL"), path, NULL, it_timeout(5000), err, sizeof(err));
    assert_non_null(c);
    e = it_wait_type(c, "error", it_timeout(5000));
    if (!e)
        fail_msg("no error for a %s token", code);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    json_decref(e);
    char *text;
    while (wsc_recv_text(c, &text, it_timeout(5000), &close_code) > 0)
        wsc_free_text(text);
    assert_int_equal(close_code, 4001);
    wsc_close(c);
}

static void test_bad_tokens_refused_at_handshake(void **state)
{
    (void)state;
    char *expired = it_token("olduser", -60);
    char *good = it_token("gooduser", 600);
    char tampered[4200];

    expect_refused_token(expired, "token_expired");
    expect_refused_token("not.a.jwt", "bad_token");
    /* alg none: header {"alg":"none","typ":"JWT"} */
    expect_refused_token("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
                         "eyJzdWIiOiJldmUiLCJleHAiOjQxMDI0NDQ4MDAsImlzcyI6ImNoYXRjbHVzdGVyIn0.",
                         "bad_token");
    /* tampered signature */
    snprintf(tampered, sizeof(tampered), "%s", good);
    size_t n = strlen(tampered);
    tampered[n - 2] = tampered[n - 2] == 'A' ? 'B' : 'A';
    expect_refused_token(tampered, "bad_token");
    free(expired);
    free(good);
}

static void test_inband_auth_upgrades_anonymous(void **state)
{
    (void)state;
    char *t = it_token("grace", 600);
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    json_t *j;

    it_join(c, room);
    it_send(c, "{s:s, s:s}", "type", "auth", "token", "garbage");
    j = it_wait_type(c, "error", it_timeout(5000));
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "bad_token");
    json_decref(j);
    it_send(c, "{s:s, s:s, s:s}", "type", "auth", "token", t, "ref", "a1");
    j = it_wait_field(c, "authed", "ref", "a1", it_timeout(5000));
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "user")), "grace");
    json_decref(j);
    it_expect_sent(c, room, "now I can", "g1", NULL);
    wsc_close(c);
    free(t);
}

/* CHAT_MAX_ERRORS (the default 50 in the test cluster) malformed frames in a row close the
 * connection with 4010, each answered first; any valid frame between starts the count again. */
static void test_too_many_errors_closes_4010(void **state)
{
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW1_URL"), NULL);
    int errors = 0, close_code = 0, n;
    char *text;

    (void)state;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 49; i++)
            expect_error_raw(c, WSC_OP_TEXT, "{not json", 9, "bad_json"); /* each: + a ping */
        for (int i = 0; i < 49; i++)
            assert_int_equal(wsc_send_text(c, "{not json"), 0);
        assert_true(it_ping(c)); /* 49 in a row, then a valid frame: still open */
    }
    for (int i = 0; i < 50; i++)
        assert_int_equal(wsc_send_text(c, "[]"), 0);
    while ((n = wsc_recv_text(c, &text, it_timeout(5000), &close_code)) > 0) {
        json_t *j = json_loads(text, 0, NULL);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (type && strcmp(type, "error") == 0)
            errors++;
        json_decref(j);
        wsc_free_text(text);
    }
    if (close_code != 4010)
        fail_msg("close code %d after 50 malformed frames, expected 4010", close_code);
    assert_true(errors >= 50); /* the 49 of the last round's pings came before: >= */
    wsc_close(c);
}

/* ref on the wire: a ref of the wrong type or over 64 bytes fails the frame with bad_field, and
 * that error carries no ref; a good one is copied into the reply. */
static void test_ref_rules(void **state)
{
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    char longref[128];
    const char *frames[3];
    json_t *j;

    (void)state;
    memset(longref, 0, sizeof(longref));
    memcpy(longref, "{\"type\":\"ping\",\"ref\":\"", 22);
    memset(longref + 22, 'r', 65);
    memcpy(longref + 22 + 65, "\"}", 2);
    frames[0] = "{\"type\":\"ping\",\"ref\":7}";
    frames[1] = "{\"type\":\"ping\",\"ref\":null}";
    frames[2] = longref;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(wsc_send_text(c, frames[i]), 0);
        j = it_wait_type(c, "error", it_timeout(5000));
        if (!j)
            fail_msg("frame %d: no error", i);
        assert_string_equal(json_string_value(json_object_get(j, "code")), "bad_field");
        if (json_object_get(j, "ref"))
            fail_msg("frame %d: the error carries a ref", i);
        json_decref(j);
    }
    memset(longref + 22, 'r', 64); /* exactly 64 bytes: fine */
    memcpy(longref + 22 + 64, "\"}", 3);
    assert_int_equal(wsc_send_text(c, longref), 0);
    j = it_wait_type(c, "pong", it_timeout(5000));
    assert_non_null(j);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "ref"))), 64);
    json_decref(j);
    wsc_close(c);
}

/* An authenticated connection cannot switch users: auth with another sub's token is bad_field,
 * a failed auth keeps the identity (it still sends as its user). */
static void test_auth_keeps_identity(void **state)
{
    char *mine = it_token("keeper", 600), *other = it_token("intruder", 600);
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW1_URL"), mine),
               *w = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    json_t *j;

    (void)state;
    it_join(c, room);
    it_join(w, room);
    it_send(c, "{s:s, s:s, s:s}", "type", "auth", "token", other, "ref", "o1");
    j = it_wait_field(c, "error", "ref", "o1", it_timeout(5000));
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "bad_field");
    json_decref(j);
    it_send(c, "{s:s, s:s, s:s}", "type", "auth", "token", "garbage", "ref", "o2");
    j = it_wait_field(c, "error", "ref", "o2", it_timeout(5000));
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "bad_token");
    json_decref(j);
    it_expect_sent(c, room, "still me", "k1", NULL);
    j = it_wait_field(w, "message", "client_msg_id", "k1", it_timeout(10000));
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "user")), "keeper");
    json_decref(j);
    wsc_close(w);
    wsc_close(c);
    free(mine);
    free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anonymous_may_watch_not_send),
        cmocka_unit_test(test_malformed_frames_get_errors_and_connection_survives),
        cmocka_unit_test(test_bad_tokens_refused_at_handshake),
        cmocka_unit_test(test_inband_auth_upgrades_anonymous),
        cmocka_unit_test(test_too_many_errors_closes_4010),
        cmocka_unit_test(test_ref_rules),
        cmocka_unit_test(test_auth_keeps_identity),
    };
    it_env_load();
    snprintf(room, sizeof(room), "err-%d", (int)getpid());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
