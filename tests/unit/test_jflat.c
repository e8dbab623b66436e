/* test_jflat.c - the flat JSON scanner (chat/jflat.h) and the client-frame decoder's two parses:
 * what the scanner takes and what it leaves to jansson, and that chat_cframe_decode() gives the
 * same answer with and without it on every malformed input of tests/data/bad, every fuzz seed
 * of tests/data/fuzz/frame, a list of frames written here and 40,000 deterministic mutations of
 * them (bytes flipped, JSON punctuation inserted, bytes dropped, truncation).
 * The data directory comes from the compile definition CHAT_TEST_DATA_DIR. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <dirent.h>

#include "chat/err.h"
#include "chat/jflat.h"
#include "chat/mem.h"
#include "chat/proto.h"

#include "test_util.h"

#define MAX_TEXT 64

static int scan(const char *s, struct chat_jflat *j)
{
    return chat_jflat_scan(s, strlen(s), j);
}

static void test_jflat_takes_flat_objects(void **state)
{
    struct chat_jflat j;
    const struct chat_jflat_member *m;

    (void)state;
    assert_int_equal(scan(" {\"type\" : \"send\",\"n\":-12,\"z\":0,\"t\":true,\"f\":false,"
                          "\"x\":null,\"text\":\"a\\\"b\\\\c\\/d\\n\\t\\r\\b\\f\"} \n",
                          &j),
                     CHAT_OK);
    assert_int_equal(j.n, 7);
    m = chat_jflat_get(&j, "type");
    assert_non_null(m);
    assert_int_equal(m->kind, CHAT_JFLAT_STR);
    assert_string_equal(m->s, "send");
    assert_int_equal(m->len, 4);
    m = chat_jflat_get(&j, "n");
    assert_int_equal(m->kind, CHAT_JFLAT_INT);
    assert_int_equal(m->i, -12);
    assert_int_equal(chat_jflat_get(&j, "z")->i, 0);
    assert_int_equal(chat_jflat_get(&j, "t")->kind, CHAT_JFLAT_TRUE);
    assert_int_equal(chat_jflat_get(&j, "f")->kind, CHAT_JFLAT_FALSE);
    assert_int_equal(chat_jflat_get(&j, "x")->kind, CHAT_JFLAT_NULL);
    m = chat_jflat_get(&j, "text");
    assert_string_equal(m->s, "a\"b\\c/d\n\t\r\b\f");
    assert_int_equal(m->len, 12);
    assert_null(chat_jflat_get(&j, "missing"));
    chat_jflat_fini(&j);
    chat_jflat_fini(&j); /* idempotent */

    assert_int_equal(scan("{}", &j), CHAT_OK);
    assert_int_equal(j.n, 0);
    chat_jflat_fini(&j);
    assert_int_equal(scan("{\"n\":999999999999999999}", &j), CHAT_OK); /* 18 digits */
    assert_int_equal(chat_jflat_get(&j, "n")->i, 999999999999999999LL);
    chat_jflat_fini(&j);
}

static void test_jflat_leaves_the_rest_to_jansson(void **state)
{
    static const char *const not_taken[] = {
        "",
        "   ",
        "[]",
        "\"s\"",
        "{",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\":1}x",
        "{\"a\":1}{}",
        "{\"a\":{\"b\":1}}",
        "{\"a\":[1]}",
        "{\"a\":1.5}",
        "{\"a\":1e3}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":+1}",
        "{\"a\":1234567890123456789}",
        "{\"a\":\"\\u0041\"}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"unterminated}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":1,\"a\":2}",
        "{\"\\u0061\":1}",
        "{a:1}",
        "{\"1\":1,\"2\":2,\"3\":3,\"4\":4,\"5\":5,\"6\":6,\"7\":7,\"8\":8,\"9\":9,\"10\":10,"
        "\"11\":11,\"12\":12,\"13\":13,\"14\":14,\"15\":15,\"16\":16,\"17\":17}",
    };
    struct chat_jflat j;

    (void)state;
    for (size_t i = 0; i < sizeof(not_taken) / sizeof(not_taken[0]); i++) {
        if (scan(not_taken[i], &j) != CHAT_EPROTO)
            fail_msg("taken: %s", not_taken[i]);
        assert_null(j.buf);
    }
}

/* ---- the decoder's two parses agree ---- */

static void same_str(const char *what, const char *a, const char *b, const char *in, size_t len)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        fail_msg("%s differs (flat '%s', jansson '%s') on %.*s", what, a ? a : "(null)",
                 b ? b : "(null)", (int)len, in);
}

static void agree(const char *in, size_t len)
{
    struct chat_cframe a, b;
    enum chat_errcode ea = CHAT_ERR__COUNT, eb = CHAT_ERR__COUNT;
    int ra = chat_cframe_decode_as(in, len, MAX_TEXT, true, &a, &ea);
    int rb = chat_cframe_decode_as(in, len, MAX_TEXT, false, &b, &eb);

    if (ra != rb || (ra != CHAT_OK && ea != eb) || a.type != b.type)
        fail_msg("flat rc %d code %s type %d, jansson rc %d code %s type %d on %.*s", ra,
                 chat_errcode_name(ea), a.type, rb, chat_errcode_name(eb), b.type, (int)len, in);
    same_str("ref", a.ref, b.ref, in, len);
    same_str("client_msg_id", a.client_msg_id, b.client_msg_id, in, len);
    if (ra == CHAT_OK) {
        same_str("room", a.room, b.room, in, len);
        same_str("token", a.token, b.token, in, len);
        same_str("grant", a.grant, b.grant, in, len);
        if (a.text_len != b.text_len || a.text_cps != b.text_cps ||
            (a.text && memcmp(a.text, b.text, a.text_len) != 0) || a.since != b.since ||
            a.seq != b.seq)
            fail_msg("text, since or seq differs on %.*s", (int)len, in);
    }
    chat_cframe_fini(&a);
    chat_cframe_fini(&b);
}

static const char *const frames[] = {
    "{\"type\":\"send\",\"room\":\"lobby\",\"text\":\"hello\",\"client_msg_id\":\"c1\"}",
    "{\"type\":\"send\",\"room\":\"lobby\",\"text\":\"say "
    "\\\"hi\\\"\\nnext\\tline\",\"ref\":\"r\"}",
    "{\"type\":\"send\",\"room\":\"lobby\",\"text\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}",
    "{\"type\":\"send\",\"room\":\"lobby\",\"text\":\"   \"}",
    "{\"type\":\"send\",\"room\":\"lobby\",\"text\":\"a\\u0000b\"}",
    "{\"type\":\"send\",\"room\":\"lob by\",\"text\":\"x\"}",
    "{\"type\":\"send\",\"room\":\"lobby\",\"text\":\"\\r\"}",
    "{\"type\":\"send\",\"room\":\"lobby\",\"text\":1}",
    "{\"type\":\"join\",\"room\":\"lobby\",\"since\":41,\"grant\":\"g.h.i\"}",
    "{\"type\":\"join\",\"room\":\"lobby\",\"since\":null}",
    "{\"type\":\"join\",\"room\":\"lobby\",\"since\":-1}",
    "{\"type\":\"join\",\"room\":\"lobby\",\"since\":true}",
    "{\"type\":\"read\",\"room\":\"lobby\",\"seq\":7}",
    "{\"type\":\"read\",\"room\":\"lobby\"}",
    "{\"type\":\"leave\",\"room\":\"lobby\",\"ref\":\"x\"}",
    "{\"type\":\"auth\",\"token\":\"a.b.c\"}",
    "{\"type\":\"auth\",\"token\":null}",
    "{\"type\":\"ping\",\"ref\":\"p1\"}",
    "{\"type\":\"pong\"}",
    "{\"type\":\"nope\"}",
    "{\"type\":null}",
    "{\"ref\":5,\"type\":\"ping\"}",
    "{\"type\":\"ping\",\"extra\":{\"nested\":[1,2]}}",
};

static void test_jflat_decoders_agree_on_examples(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++)
        agree(frames[i], strlen(frames[i]));
}

static void agree_dir(const char *sub)
{
    char *dir = chat_xasprintf("%s/%s", CHAT_TEST_DATA_DIR, sub);
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
        agree(text, len);
        chat_free(text);
        chat_free(path);
        files++;
    }
    closedir(d);
    assert_true(files > 0);
    chat_free(dir);
}

static void test_jflat_decoders_agree_on_test_data(void **state)
{
    (void)state;
    agree_dir("bad");
    agree_dir("fuzz/frame");
}

static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

/* 40,000 mutations (1-3 edits each: a byte flipped, a punct character inserted, a byte dropped,
 * the rest cut off) of srcs[0..n), each handed to check. */
static void mutations(const char *const *srcs,
                      size_t n,
                      const char *punct,
                      uint64_t seed,
                      void (*check)(const char *, size_t))
{
    size_t npunct = strlen(punct);
    char buf[512];

    for (int round = 0; round < 40000; round++) {
        const char *src = srcs[rnd(&seed) % n];
        size_t len = strlen(src);
        int edits = 1 + (int)(rnd(&seed) % 3);

        memcpy(buf, src, len);
        for (int k = 0; k < edits && len > 0; k++) {
            size_t at = rnd(&seed) % len;
            switch (rnd(&seed) % 4) {
            case 0: /* flip */
                buf[at] = (char)(rnd(&seed) & 0x7f);
                break;
            case 1: /* insert punctuation */
                if (len + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = punct[rnd(&seed) % npunct];
                    len++;
                }
                break;
            case 2: /* drop */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* truncate */
                len = at;
                break;
            }
        }
        check(buf, len);
    }
}

static void test_jflat_decoders_agree_on_mutations(void **state)
{
    (void)state;
    mutations(frames, sizeof(frames) / sizeof(frames[0]), "{}[]\",:\\ -0123456789.eEtfnul\t\n",
              12345, agree);
}

/* ---- the message event's two parses agree (chat_msg_decode) ---- */

static void msg_agree(const char *in, size_t len)
{
    struct chat_event_msg a, b;
    void *da = NULL, *db = NULL;
    int ra = chat_msg_decode_as(in, len, &a, &da, true);
    int rb = chat_msg_decode_as(in, len, &b, &db, false);

    if (ra != rb)
        fail_msg("flat rc %d, jansson rc %d on %.*s", ra, rb, (int)len, in);
    if (ra == CHAT_OK) {
        same_str("room", a.room, b.room, in, len);
        same_str("user", a.user, b.user, in, len);
        same_str("nick", a.nick, b.nick, in, len);
        same_str("text", a.text, b.text, in, len);
        same_str("client_msg_id", a.client_msg_id, b.client_msg_id, in, len);
        if (a.id != b.id || a.ts != b.ts || a.seq != b.seq || a.prev != b.prev ||
            a.deleted != b.deleted)
            fail_msg("id, ts, seq, prev or deleted differs on %.*s", (int)len, in);
    }
    chat_json_free(da);
    chat_json_free(db);
}

static const char *const events[] = {
    "{\"type\":\"message\",\"seq\":7,\"prev\":5,\"room\":\"r1\",\"id\":\"123\",\"user\":\"u\","
    "\"nick\":\"N "
    "\\\"q\\\"\",\"text\":\"hi\\nthere\",\"ts\":1700000000000,\"client_msg_id\":\"c\"}",
    "{\"type\":\"message\",\"room\":\"r1\",\"id\":\"18446744073709551615\",\"user\":\"u\","
    "\"nick\":\"n\",\"text\":\"\",\"ts\":1,\"deleted\":true}",
    "{\"type\":\"message\",\"seq\":3,\"room\":\"r1\",\"id\":\"9\",\"user\":\"u\",\"nick\":\"n\","
    "\"text\":\"t\",\"ts\":2,\"client_msg_id\":null}",
    "{\"type\":\"message\",\"seq\":3,\"prev\":3,\"room\":\"r1\",\"id\":\"9\",\"user\":\"u\","
    "\"nick\":\"n\",\"text\":\"t\",\"ts\":2}",
    "{\"type\":\"message\",\"prev\":1,\"room\":\"r1\",\"id\":\"9\",\"user\":\"u\",\"nick\":\"n\","
    "\"text\":\"t\",\"ts\":2}",
    "{\"type\":\"message\",\"room\":\"r 1\",\"id\":\"+9\",\"user\":\"u\",\"nick\":\"n\","
    "\"text\":\"t\",\"ts\":2,\"deleted\":false,\"x\":[1]}",
    "{\"type\":\"system\",\"room\":\"r1\",\"event\":\"join\",\"id\":\"1\",\"ts\":2}",
    /* not UTF-8 (fuzz_kafka found it): jansson refuses it, so must the flat path */
    "{\"type\":\"message\",\"room\":\"b\",\"id\":\"1\",\"user\":\"1\x98\",\"nick\":\"\","
    "\"text\":\"\",\"ts\":4,\"\":\"\"}",
};

static void test_jflat_message_decoders_agree(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        msg_agree(events[i], strlen(events[i]));
    mutations(events, sizeof(events) / sizeof(events[0]), "{}[]\",:\\ -0123456789.eEtfnul", 777,
              msg_agree);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jflat_takes_flat_objects),
        cmocka_unit_test(test_jflat_leaves_the_rest_to_jansson),
        cmocka_unit_test(test_jflat_decoders_agree_on_examples),
        cmocka_unit_test(test_jflat_decoders_agree_on_test_data),
        cmocka_unit_test(test_jflat_decoders_agree_on_mutations),
        cmocka_unit_test(test_jflat_message_decoders_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
