/* test_utf8.c - strict UTF-8 validation and control-character detection (libchat/src/utf8.c). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdbool.h>
#include <string.h>

#include "chat/utf8.h"

struct vcase {
    const char *s;
    size_t len; /* 0: strlen */
};

static bool valid(const char *s, size_t len, size_t *cps)
{
    return chat_utf8_valid(s, len ? len : strlen(s), cps);
}

static void assert_all_invalid(const struct vcase *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t cps = 12345;
        if (valid(c[i].s, c[i].len, &cps))
            fail_msg("case %zu accepted", i);
        assert_int_equal(cps, 12345); /* untouched on failure */
    }
}

static void assert_valid_cps(const char *s, size_t len, size_t want)
{
    size_t cps = 0;

    assert_true(valid(s, len, &cps));
    assert_int_equal(cps, want);
}

static void test_utf8_code_point_counts(void **state)
{
    (void)state;
    assert_true(chat_utf8_valid("", 0, NULL));
    assert_valid_cps("abc", 0, 3);
    assert_valid_cps("\xc3\xa9", 0, 1);         /* e-acute, 2 bytes */
    assert_valid_cps("\xe2\x82\xac", 0, 1);     /* euro, 3 bytes */
    assert_valid_cps("\xf0\x9f\x98\x80", 0, 1); /* emoji, 4 bytes */
    assert_valid_cps("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 0, 5);
    assert_valid_cps("a\0b", 3, 3); /* NUL is a valid code point; callers decide */
    assert_valid_cps("\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", 0, 2); /* emoji + skin tone */
}

static void test_utf8_boundaries_valid(void **state)
{
    (void)state;
    assert_valid_cps("\x7f", 0, 1);             /* U+007F */
    assert_valid_cps("\xc2\x80", 0, 1);         /* U+0080: smallest 2-byte */
    assert_valid_cps("\xdf\xbf", 0, 1);         /* U+07FF */
    assert_valid_cps("\xe0\xa0\x80", 0, 1);     /* U+0800: smallest 3-byte */
    assert_valid_cps("\xed\x9f\xbf", 0, 1);     /* U+D7FF: just below the surrogates */
    assert_valid_cps("\xee\x80\x80", 0, 1);     /* U+E000: just above */
    assert_valid_cps("\xef\xbf\xbf", 0, 1);     /* U+FFFF */
    assert_valid_cps("\xf0\x90\x80\x80", 0, 1); /* U+10000: smallest 4-byte */
    assert_valid_cps("\xf4\x8f\xbf\xbf", 0, 1); /* U+10FFFF: the last code point */
}

static void test_utf8_overlong(void **state)
{
    static const struct vcase c[] = {
        {"\xc0\x80", 0},         {"\xc0\xaf", 0},         {"\xc1\xbf", 0},
        {"\xe0\x80\x80", 0},     {"\xe0\x80\xaf", 0},     {"\xe0\x9f\xbf", 0},
        {"\xf0\x80\x80\x80", 0}, {"\xf0\x80\x80\xaf", 0}, {"\xf0\x8f\xbf\xbf", 0},
    };

    (void)state;
    assert_all_invalid(c, sizeof(c) / sizeof(c[0]));
}

static void test_utf8_surrogates(void **state)
{
    static const struct vcase c[] = {
        {"\xed\xa0\x80", 0},             /* U+D800 */
        {"\xed\xad\xbf", 0},             /* U+DB7F */
        {"\xed\xb0\x80", 0},             /* U+DC00 */
        {"\xed\xbf\xbf", 0},             /* U+DFFF */
        {"\xed\xa0\xbd\xed\xb8\x80", 0}, /* CESU-8 pair */
    };

    (void)state;
    assert_all_invalid(c, sizeof(c) / sizeof(c[0]));
}

static void test_utf8_above_max(void **state)
{
    static const struct vcase c[] = {
        {"\xf4\x90\x80\x80", 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", 0},
        {"\xf7\xbf\xbf\xbf", 0},
        {"\xf8\x88\x80\x80\x80", 0}, /* old 5-byte form */
        {"\xfc\x84\x80\x80\x80\x80", 0},
        {"\xfe", 0},
        {"\xff", 0},
    };

    (void)state;
    assert_all_invalid(c, sizeof(c) / sizeof(c[0]));
}

static void test_utf8_truncated(void **state)
{
    static const struct vcase c[] = {
        {"\xc3", 0},
        {"\xe2\x82", 0},
        {"\xf0\x9f\x98", 0},
        {"\xe2", 0},
        {"ab\xc3", 0},
        {"\xc3"
         "a",
         0},
        {"\xe2\x82"
         "a",
         0},
        {"\xf0\x9f\x98"
         "a",
         0},
        {"\xe2\x82\xac", 2}, /* cut by the length, not by a NUL */
    };

    (void)state;
    assert_all_invalid(c, sizeof(c) / sizeof(c[0]));
}

static void test_utf8_bad_continuation(void **state)
{
    static const struct vcase c[] = {
        {"\x80", 0},
        {"\xbf", 0},
        {"a\x80"
         "b",
         0},
        {"\xc3\x28", 0},
        {"\xe2\x28\xa1", 0},
        {"\xe2\x82\x28", 0},
        {"\xf0\x28\x8c\xbc", 0},
        {"\xc3\xa9\xa9", 0}, /* one continuation too many */
    };

    (void)state;
    assert_all_invalid(c, sizeof(c) / sizeof(c[0]));
}

static void test_utf8_control_c0_and_del(void **state)
{
    (void)state;
    assert_true(chat_utf8_has_control("\x01", 1, "\n\t"));
    assert_true(chat_utf8_has_control("a\x1f", 2, "\n\t"));
    assert_true(chat_utf8_has_control("\x7f", 1, "\n\t")); /* DEL */
    assert_true(chat_utf8_has_control("a\rb", 3, "\n\t"));
    assert_true(chat_utf8_has_control("a\x1b[31m", 6, "\n\t")); /* ESC */
    assert_true(chat_utf8_has_control("a\0b", 3, "\n\t"));      /* NUL never allowed */
    assert_false(chat_utf8_has_control("a\nb\tc", 5, "\n\t"));
    assert_true(chat_utf8_has_control("a\nb", 3, NULL)); /* nothing allowed */
    assert_true(chat_utf8_has_control("a\tb", 3, "\n"));
    assert_false(chat_utf8_has_control("", 0, NULL));
}

static void test_utf8_control_c1(void **state)
{
    (void)state;
    assert_true(chat_utf8_has_control("\xc2\x80", 2, "\n\t"));  /* U+0080 */
    assert_true(chat_utf8_has_control("a\xc2\x85", 3, "\n\t")); /* NEL */
    assert_true(chat_utf8_has_control("\xc2\x9b", 2, "\n\t"));  /* CSI */
    assert_true(chat_utf8_has_control("\xc2\x9f", 2, "\n\t"));  /* U+009F */
    assert_false(chat_utf8_has_control("\xc2\xa0", 2, "\n\t")); /* NBSP is not a control */
    assert_false(chat_utf8_has_control("\xc3\x80", 2, "\n\t")); /* A-grave */
    assert_false(chat_utf8_has_control("\xc2", 1, "\n\t"));     /* lead byte at the end */
}

static void test_utf8_control_none_in_text(void **state)
{
    static const char s[] = "Hello, world! \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 "
                            "\xf0\x9f\x91\x8b \xe2\x82\xac \xe4\xb8\xad\xe6\x96\x87";

    (void)state;
    assert_true(chat_utf8_valid(s, sizeof(s) - 1, NULL));
    assert_false(chat_utf8_has_control(s, sizeof(s) - 1, "\n\t"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_code_point_counts),
        cmocka_unit_test(test_utf8_boundaries_valid),
        cmocka_unit_test(test_utf8_overlong),
        cmocka_unit_test(test_utf8_surrogates),
        cmocka_unit_test(test_utf8_above_max),
        cmocka_unit_test(test_utf8_truncated),
        cmocka_unit_test(test_utf8_bad_continuation),
        cmocka_unit_test(test_utf8_control_c0_and_del),
        cmocka_unit_test(test_utf8_control_c1),
        cmocka_unit_test(test_utf8_control_none_in_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
