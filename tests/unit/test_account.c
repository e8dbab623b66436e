/* test_account.c - account validators, password hashing, refresh tokens and SHA-256
 * (libchat/src/account.c). Hashing uses yescrypt cost 1 (4 at most) so the tests stay fast. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "chat/account.h"

#define COST 1 /* the cheapest yescrypt cost: hashing takes about a millisecond */

/* Unicode White_Space code points, UTF-8 encoded (what the nickname trim removes). */
static const char *const spaces[] = {
    "\t",           "\n",           "\v",           "\f",           "\r",           " ",
    "\xc2\x85",     "\xc2\xa0",     "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x81", "\xe2\x80\x82",
    "\xe2\x80\x83", "\xe2\x80\x84", "\xe2\x80\x85", "\xe2\x80\x86", "\xe2\x80\x87", "\xe2\x80\x88",
    "\xe2\x80\x89", "\xe2\x80\x8a", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\x9f",
    "\xe3\x80\x80",
};
#define NSPACES (sizeof(spaces) / sizeof(spaces[0]))

#define E_ACUTE "\xc3\xa9"         /* U+00E9, 2 bytes */
#define EMOJI   "\xf0\x9f\x98\x80" /* U+1F600, 4 bytes */

/* Writes prefix, n copies of unit and suffix to buf (fails the test when cap is too small). */
static void
build(char *buf, size_t cap, const char *prefix, const char *unit, int n, const char *suffix)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int i = -1; i <= n; i++) {
        const char *part = i < 0 ? prefix : i == n ? suffix : unit;
        size_t k = strlen(part);

        if (len + k >= cap)
            fail_msg("build: %zu bytes do not fit in %zu", len + k, cap);
        memcpy(buf + len, part, k + 1);
        len += k;
    }
}

/* Normalizes in and checks the result: want NULL means CHAT_EINVAL and out == "". */
static void nick_is(const char *in, const char *want)
{
    char out[CHAT_NICK_BYTES];
    int rc;

    memcpy(out, "junk", 5);
    rc = chat_nickname_normalize(in, out, sizeof(out));
    if (want) {
        if (rc != CHAT_OK)
            fail_msg("nickname \"%s\" rejected (%d), want \"%s\"", in, rc, want);
        assert_string_equal(out, want);
    } else {
        if (rc != CHAT_EINVAL)
            fail_msg("nickname \"%s\" accepted as \"%s\"", in, out);
        assert_string_equal(out, "");
    }
}

/* ---- usernames ------------------------------------------------------------------------------- */

static void test_account_username_length(void **state)
{
    char buf[64];

    (void)state;
    assert_false(chat_username_valid(NULL));
    assert_false(chat_username_valid(""));
    assert_false(chat_username_valid("a"));
    assert_false(chat_username_valid("abc")); /* 3 */
    assert_true(chat_username_valid("abcd")); /* 4 */
    build(buf, sizeof(buf), "", "a", CHAT_USERNAME_MAX, "");
    assert_true(chat_username_valid(buf)); /* 20 */
    build(buf, sizeof(buf), "", "a", CHAT_USERNAME_MAX + 1, "");
    assert_false(chat_username_valid(buf)); /* 21 */
    build(buf, sizeof(buf), "", "a", 40, "");
    assert_false(chat_username_valid(buf));
    assert_true(chat_username_valid("abcdefghij0123456789"));
    assert_false(chat_username_valid("abcdefghij0123456789_"));
}

static void test_account_username_charset(void **state)
{
    (void)state;
    assert_true(chat_username_valid("alice"));
    assert_true(chat_username_valid("ALICE"));
    assert_true(chat_username_valid("AliCe_99"));
    assert_true(chat_username_valid("____"));
    assert_true(chat_username_valid("0123"));
    assert_true(chat_username_valid("_a_Z_0_9_"));
    /* every single byte in the middle of a valid name: only [A-Za-z0-9_] is accepted */
    for (int c = 1; c < 256; c++) {
        char name[] = "ab?cd";
        bool ok =
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';

        name[2] = (char)c;
        if (chat_username_valid(name) != ok)
            fail_msg("byte 0x%02x: got %d, want %d", c, !ok, ok);
    }
}

static void test_account_username_rejects(void **state)
{
    static const char *const bad[] = {
        "ali ce",
        " alice",
        "alice ",
        "ali-ce",
        "ali.ce",
        "alice@example",
        "ali+ce",
        "ali/ce",
        "ali\\ce",
        "ali'ce",
        "ali\"ce",
        "ali;ce",
        "ali\tce",
        "alice\n",
        "ali\x7f"
        "ce",
        "al" E_ACUTE "ce",
        "\xd0\xb0\xd0\xbb\xd0\xb8\xd1\x81\xd0\xb0", /* Cyrillic "alisa" */
        "alice" EMOJI,
        "\xef\xbc\xa1\xef\xbc\xa1\xef\xbc\xa1\xef\xbc\xa1", /* fullwidth A */
        "abc\xff",
        "abcd\xc3",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (chat_username_valid(bad[i]))
            fail_msg("username case %zu \"%s\" accepted", i, bad[i]);
    }
}

/* ---- nicknames ------------------------------------------------------------------------------- */

static void test_account_nick_plain(void **state)
{
    (void)state;
    nick_is("Bob", "Bob");
    nick_is("Bob Smith", "Bob Smith");
    nick_is("bo  b", "bo  b"); /* inner spaces are kept */
    nick_is("Zo" E_ACUTE, "Zo" E_ACUTE);
    nick_is("\xe5\xb0\x8f\xe6\x98\x8e", "\xe5\xb0\x8f\xe6\x98\x8e"); /* CJK, 2 code points */
    nick_is("a\xe3\x80\x80"
            "b",
            "a\xe3\x80\x80"
            "b"); /* an inner ideographic space is kept */
}

static void test_account_nick_trim_ascii(void **state)
{
    (void)state;
    nick_is("  Bob  ", "Bob");
    nick_is("Bob ", "Bob");
    nick_is(" Bob", "Bob");
    nick_is("\t\n\v\f\r Bob \r\f\v\n\t", "Bob");
    nick_is("  Bob Smith  ", "Bob Smith");
}

static void test_account_nick_trim_unicode(void **state)
{
    char in[64], want[16];

    (void)state;
    for (size_t i = 0; i < NSPACES; i++) {
        build(in, sizeof(in), spaces[i], "Bob", 1, spaces[i]);
        nick_is(in, "Bob");
        build(in, sizeof(in), spaces[i], spaces[i], 2, "Bo");
        nick_is(in, "Bo");
        build(in, sizeof(in), "Bo", spaces[i], 3, "");
        nick_is(in, "Bo");
    }
    /* all of them at once, mixed, on both sides */
    build(in, sizeof(in), "\xe3\x80\x80\xc2\xa0 \xe2\x80\xaf", E_ACUTE "x", 1,
          "\xe2\x81\x9f\xc2\x85\xe1\x9a\x80\t");
    build(want, sizeof(want), "", E_ACUTE "x", 1, "");
    nick_is(in, want);
    /* look-alikes that are not White_Space stay: U+200B zero width space, U+2060 word joiner */
    nick_is("Bob\xe2\x80\x8b", "Bob\xe2\x80\x8b");
    nick_is("\xe2\x81\xa0"
            "Bob",
            "\xe2\x81\xa0"
            "Bob");
}

static void test_account_nick_all_space(void **state)
{
    char in[128];

    (void)state;
    nick_is("", NULL);
    nick_is(" ", NULL);
    nick_is("          ", NULL);
    nick_is("\t\n\r", NULL);
    for (size_t i = 0; i < NSPACES; i++) {
        build(in, sizeof(in), "", spaces[i], 4, "");
        nick_is(in, NULL);
    }
    build(in, sizeof(in), " ", "\xe3\x80\x80\xc2\xa0\xe2\x80\x8a", 3, "\t");
    nick_is(in, NULL);
}

static void test_account_nick_length(void **state)
{
    char in[256], want[CHAT_NICK_BYTES];

    (void)state;
    nick_is("a", NULL);     /* 1 */
    nick_is("ab", "ab");    /* 2 */
    nick_is("  a  ", NULL); /* 1 after trimming */
    nick_is(E_ACUTE, NULL);
    nick_is(E_ACUTE E_ACUTE, E_ACUTE E_ACUTE);
    nick_is(EMOJI, NULL);
    nick_is(EMOJI EMOJI, EMOJI EMOJI);
    nick_is("\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd"); /* + tone */

    build(in, sizeof(in), "", "a", CHAT_NICK_MAX, "");
    nick_is(in, in); /* 20 */
    build(in, sizeof(in), "", "a", CHAT_NICK_MAX + 1, "");
    nick_is(in, NULL); /* 21 */
    build(in, sizeof(in), "", E_ACUTE, CHAT_NICK_MAX, "");
    nick_is(in, in); /* 20 code points, 40 bytes */
    build(in, sizeof(in), "", E_ACUTE, CHAT_NICK_MAX + 1, "");
    nick_is(in, NULL);
    build(in, sizeof(in), "", EMOJI, CHAT_NICK_MAX, "");
    nick_is(in, in); /* 20 code points, 80 bytes: the largest nickname fits CHAT_NICK_BYTES */
    build(in, sizeof(in), "", EMOJI, CHAT_NICK_MAX + 1, "");
    nick_is(in, NULL);
    /* the limit counts after trimming */
    build(in, sizeof(in), "\xe3\x80\x80\xe3\x80\x80   ", EMOJI, CHAT_NICK_MAX, "   \xe3\x80\x80");
    build(want, sizeof(want), "", EMOJI, CHAT_NICK_MAX, "");
    nick_is(in, want);
    /* inner spaces count */
    build(in, sizeof(in), "a", " ", CHAT_NICK_MAX - 2, "b");
    nick_is(in, in);
    build(in, sizeof(in), "a", " ", CHAT_NICK_MAX - 1, "b");
    nick_is(in, NULL);
}

static void test_account_nick_controls(void **state)
{
    static const char *const bad[] = {
        "Bo\x01"
        "b",
        "Bo\x1f"
        "b",
        "Bo\x1b[31mb",
        "Bo\tb",
        "Bo\nb",
        "Bo\rb",
        "Bo\x7f"
        "b",       /* DEL */
        "Bob\x7f", /* DEL is not white space: not trimmed */
        "\x7f"
        "Bob",
        "Bo\xc2\x80"
        "b", /* C1 U+0080 */
        "Bo\xc2\x85"
        "b", /* NEL inside (trimmed only at the ends) */
        "Bo\xc2\x9b"
        "b", /* CSI */
        "Bo\xc2\x9f"
        "b", /* U+009F */
        "Bob\xc2\x9f",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        nick_is(bad[i], NULL);
}

static void test_account_nick_bidi(void **state)
{
    char in[32];

    (void)state;
    for (unsigned c = 0xAA; c <= 0xAE; c++) { /* U+202A..U+202E */
        char seq[4] = {(char)0xE2, (char)0x80, (char)c, 0};

        build(in, sizeof(in), "Bo", seq, 1, "b");
        nick_is(in, NULL);
        build(in, sizeof(in), "", seq, 1, "Bob");
        nick_is(in, NULL);
    }
    for (unsigned c = 0xA6; c <= 0xA9; c++) { /* U+2066..U+2069 */
        char seq[4] = {(char)0xE2, (char)0x81, (char)c, 0};

        build(in, sizeof(in), "Bo", seq, 1, "b");
        nick_is(in, NULL);
        build(in, sizeof(in), "Bob", seq, 1, "");
        nick_is(in, NULL);
    }
    nick_is("\xe2\x80\xae"
            "evil"
            "\xe2\x80\xac",
            NULL); /* RLO ... PDF */
    /* the neighbours are not bidi controls: U+2029 and U+202F are white space (trimmed at the
     * ends, kept inside), U+2065 and U+206A pass */
    nick_is("Bo\xe2\x80\xa9", "Bo");
    nick_is("B\xe2\x80\xa9o", "B\xe2\x80\xa9o");
    nick_is("B\xe2\x80\xafo", "B\xe2\x80\xafo");
    nick_is("Bo\xe2\x81\xa5", "Bo\xe2\x81\xa5");
    nick_is("Bo\xe2\x81\xaa", "Bo\xe2\x81\xaa");
}

static void test_account_nick_bad_utf8(void **state)
{
    static const char *const bad[] = {
        "\xc3",
        "Bob\xc3",
        "Bo\xffz",
        "\xfe\xfe\xfe",
        "Bo\x80z",
        "\xc0\xaf\xc0\xaf",
        "\xe0\x80\xaf"
        "ab",
        "\xed\xa0\x80"
        "ab",
        "\xf4\x90\x80\x80"
        "ab",
        "Bob \xff",
        "\xff Bob",
        "Bob\xe3\x80",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        nick_is(bad[i], NULL);
}

static void test_account_nick_buffer(void **state)
{
    char out[8], same[] = "  Bob Smith \xe3\x80\x80";

    (void)state;
    assert_int_equal(chat_nickname_normalize(NULL, out, sizeof(out)), CHAT_EINVAL);
    assert_int_equal(chat_nickname_normalize("Bob", NULL, 16), CHAT_EINVAL);
    assert_int_equal(chat_nickname_normalize("Bob", out, 0), CHAT_EINVAL);
    memcpy(out, "junk", 5);
    assert_int_equal(chat_nickname_normalize("Bob", out, 3), CHAT_EINVAL); /* no room for NUL */
    assert_string_equal(out, "");
    assert_int_equal(chat_nickname_normalize("  Bob  ", out, 4), CHAT_OK);
    assert_string_equal(out, "Bob");
    /* in and out may be the same buffer */
    assert_int_equal(chat_nickname_normalize(same, same, sizeof(same)), CHAT_OK);
    assert_string_equal(same, "Bob Smith");
}

/* ---- passwords ------------------------------------------------------------------------------- */

static void test_account_password_length(void **state)
{
    char buf[1024];

    (void)state;
    assert_false(chat_password_valid(NULL));
    assert_false(chat_password_valid(""));
    assert_false(chat_password_valid("abcdef1"));           /* 7 */
    assert_true(chat_password_valid("abcdefg1"));           /* 8 */
    assert_false(chat_password_valid("a" E_ACUTE "cdef1")); /* 7 code points, 8 bytes */
    assert_true(chat_password_valid(E_ACUTE E_ACUTE E_ACUTE E_ACUTE "1234")); /* 8 cps */

    build(buf, sizeof(buf), "a1", "x", CHAT_PASSWORD_MAX - 2, "");
    assert_true(chat_password_valid(buf)); /* 128 */
    build(buf, sizeof(buf), "a1", "x", CHAT_PASSWORD_MAX - 1, "");
    assert_false(chat_password_valid(buf)); /* 129 */
    build(buf, sizeof(buf), "a1", E_ACUTE, CHAT_PASSWORD_MAX - 2, "");
    assert_true(chat_password_valid(buf)); /* 128 code points, 254 bytes */
    build(buf, sizeof(buf), "a1", E_ACUTE, CHAT_PASSWORD_MAX - 1, "");
    assert_false(chat_password_valid(buf));
    build(buf, sizeof(buf), "1", EMOJI, CHAT_PASSWORD_MAX - 1, "");
    assert_true(chat_password_valid(buf)); /* 128 code points, 509 bytes */
    build(buf, sizeof(buf), "1", EMOJI, CHAT_PASSWORD_MAX, "");
    assert_false(chat_password_valid(buf)); /* 129 code points, 513 bytes */
    build(buf, sizeof(buf), "a1", "x", 1000, "");
    assert_false(chat_password_valid(buf));
}

static void test_account_password_classes(void **state)
{
    (void)state;
    assert_false(chat_password_valid("abcdefgh")); /* letters only */
    assert_false(chat_password_valid("ABCDEFGHIJKL"));
    assert_false(chat_password_valid("12345678"));       /* digits only */
    assert_false(chat_password_valid("1234 5678 !@#$")); /* digits and symbols */
    assert_false(chat_password_valid("abcd efgh !@#$")); /* letters and symbols */
    assert_false(chat_password_valid("!@#$%^&*()"));
    assert_true(chat_password_valid("1234567a"));
    assert_true(chat_password_valid("Z1234567"));
    assert_true(chat_password_valid("correct horse battery 9"));
    assert_true(chat_password_valid("!@#$%^&*()a1"));
    /* non-ASCII letters count as letters */
    assert_true(chat_password_valid(E_ACUTE "1234567"));
    assert_true(chat_password_valid("\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c"
                                    "123"));
    assert_true(chat_password_valid("\xe5\xaf\x86\xe7\xa0\x81"
                                    "123456"));
    assert_true(chat_password_valid(EMOJI "1234567"));
    /* ... but non-ASCII white space does not */
    assert_false(chat_password_valid("\xc2\xa0"
                                     "1234567"));
    assert_false(chat_password_valid("\xe3\x80\x80"
                                     "1234567"));
    assert_false(chat_password_valid("\xe2\x80\x83\xe2\x80\xaf"
                                     "123456"));
    /* non-ASCII digits are not digits */
    assert_false(chat_password_valid("abcdefg\xd9\xa1"));     /* U+0661 Arabic-Indic one */
    assert_false(chat_password_valid("abcdefg\xef\xbc\x91")); /* U+FF11 fullwidth one */
}

static void test_account_password_rejects(void **state)
{
    static const char *const bad[] = {
        "abcdefg1\t",
        "abc\x01"
        "defg1",
        "abcdefg1\n",
        "abcdefg1\r",
        "abcdefg1\x1b",
        "abcdefg1\x7f",
        "abcdefg1\xc2\x80",
        "abcdefg1\xc2\x85",
        "abcdefg1\xc2\x9f",
        "abcdefg1\xff",
        "abcdefg1\xc3",
        "abcdefg1\xc0\xaf",
        "abcdefg1\xed\xa0\x80",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (chat_password_valid(bad[i]))
            fail_msg("password case %zu accepted", i);
    }
    assert_true(chat_password_valid("abcdefg1 ")); /* spaces are fine */
    assert_true(chat_password_valid("abcdefg1\xc2\xa0"));
}

/* ---- hashing --------------------------------------------------------------------------------- */

static void test_account_hash_verify(void **state)
{
    char h[CHAT_PASSWD_HASH_MAX];

    (void)state;
    assert_int_equal(chat_passwd_hash("s3cret-pass", COST, h, sizeof(h)), CHAT_OK);
    assert_memory_equal(h, "$y$", 3);
    assert_true(strlen(h) < CHAT_PASSWD_HASH_MAX);
    assert_true(chat_passwd_verify("s3cret-pass", h));
    assert_false(chat_passwd_verify("s3cret-pasS", h));
    assert_false(chat_passwd_verify("s3cret-pas", h));
    assert_false(chat_passwd_verify("s3cret-pass ", h));
    assert_false(chat_passwd_verify("", h));
    assert_false(chat_passwd_verify(NULL, h));

    /* UTF-8 passwords hash their bytes */
    assert_int_equal(chat_passwd_hash(E_ACUTE EMOJI "pass1", COST, h, sizeof(h)), CHAT_OK);
    assert_true(chat_passwd_verify(E_ACUTE EMOJI "pass1", h));
    assert_false(chat_passwd_verify("e" EMOJI "pass1", h));
}

static void test_account_hash_salted(void **state)
{
    char a[CHAT_PASSWD_HASH_MAX], b[CHAT_PASSWD_HASH_MAX];

    (void)state;
    assert_int_equal(chat_passwd_hash("same-password1", COST, a, sizeof(a)), CHAT_OK);
    assert_int_equal(chat_passwd_hash("same-password1", COST, b, sizeof(b)), CHAT_OK);
    assert_string_not_equal(a, b);
    assert_true(chat_passwd_verify("same-password1", a));
    assert_true(chat_passwd_verify("same-password1", b));
}

static void test_account_hash_bad_args(void **state)
{
    static const int bad_cost[] = {-1, 0, 12, 100};
    char h[CHAT_PASSWD_HASH_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(bad_cost) / sizeof(bad_cost[0]); i++) {
        memcpy(h, "junk", 5);
        assert_int_equal(chat_passwd_hash("password1", bad_cost[i], h, sizeof(h)), CHAT_EINVAL);
        assert_string_equal(h, "");
        assert_int_equal(chat_passwd_dummy(bad_cost[i], h, sizeof(h)), CHAT_EINVAL);
    }
    assert_int_equal(chat_passwd_hash(NULL, COST, h, sizeof(h)), CHAT_EINVAL);
    assert_int_equal(chat_passwd_hash("password1", COST, NULL, 64), CHAT_EINVAL);
    assert_int_equal(chat_passwd_hash("password1", COST, h, 0), CHAT_EINVAL);
    memcpy(h, "junk", 5);
    assert_int_equal(chat_passwd_hash("password1", COST, h, 20), CHAT_EINVAL); /* cap too small */
    assert_string_equal(h, "");
}

static void test_account_hash_malformed_never_verifies(void **state)
{
    char h[CHAT_PASSWD_HASH_MAX], bad[2 * CHAT_PASSWD_HASH_MAX];
    size_t n;

    (void)state;
    assert_false(chat_passwd_verify("", ""));
    assert_false(chat_passwd_verify("password1", ""));
    assert_false(chat_passwd_verify("password1", NULL));
    assert_false(chat_passwd_verify("password1", "*0"));
    assert_false(chat_passwd_verify("password1", "*1"));
    assert_false(chat_passwd_verify("*0", "*0"));
    assert_false(chat_passwd_verify("password1", "$y$garbage"));
    assert_false(chat_passwd_verify("password1", "$y$"));
    assert_false(chat_passwd_verify("password1", "$"));
    assert_false(chat_passwd_verify("password1", "$y$j9T$"));
    assert_false(chat_passwd_verify("password1", "$unknown$abc$def"));
    /* traditional DES crypt of "pw" (salt "ab"): legacy, not accepted */
    assert_false(chat_passwd_verify("pw", "abzlUXK5ed5rs"));

    /* a real hash, damaged */
    assert_int_equal(chat_passwd_hash("password1", COST, h, sizeof(h)), CHAT_OK);
    n = strlen(h);
    memcpy(bad, h, n + 1);
    bad[n - 1] = bad[n - 1] == 'A' ? 'B' : 'A';
    assert_false(chat_passwd_verify("password1", bad)); /* last character changed */
    memcpy(bad, h, n + 1);
    bad[n - 1] = '\0';
    assert_false(chat_passwd_verify("password1", bad)); /* truncated */
    bad[n - 1] = h[n - 1];
    bad[n] = 'x';
    bad[n + 1] = '\0';
    assert_false(chat_passwd_verify("password1", bad)); /* one character appended */
    build(bad, sizeof(bad), h, "A", CHAT_PASSWD_HASH_MAX, "");
    assert_false(chat_passwd_verify("password1", bad)); /* overlong */
    assert_true(chat_passwd_verify("password1", h));
}

static void test_account_needs_rehash(void **state)
{
    char h1[CHAT_PASSWD_HASH_MAX], h4[CHAT_PASSWD_HASH_MAX];

    (void)state;
    assert_int_equal(chat_passwd_hash("password1", 1, h1, sizeof(h1)), CHAT_OK);
    assert_int_equal(chat_passwd_hash("password1", 4, h4, sizeof(h4)), CHAT_OK);
    assert_false(chat_passwd_needs_rehash(h1, 1));
    assert_false(chat_passwd_needs_rehash(h4, 4));
    assert_true(chat_passwd_needs_rehash(h1, 4));
    assert_true(chat_passwd_needs_rehash(h4, 1));
    assert_true(chat_passwd_needs_rehash(h1, 5));
    assert_true(chat_passwd_needs_rehash(h1, 11));
    /* libxcrypt's params for the default cost 5 and for 4 */
    assert_false(chat_passwd_needs_rehash("$y$j9T$abcdefghijklmnopqrstuv$hash", 5));
    assert_true(chat_passwd_needs_rehash("$y$j9T$abcdefghijklmnopqrstuv$hash", 4));
    assert_false(chat_passwd_needs_rehash("$y$j8T$abcdefghijklmnopqrstuv$hash", 4));
    /* another algorithm */
    assert_true(chat_passwd_needs_rehash(
        "$2b$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q", 5));
    assert_true(chat_passwd_needs_rehash("$2b$04$abcdefghijklmnopqrstuu", 4));
    assert_true(chat_passwd_needs_rehash("$6$rounds=5000$salt$hash", 5));
    assert_true(chat_passwd_needs_rehash("$7$CU..../....salt$hash", 5)); /* scrypt */
    assert_true(chat_passwd_needs_rehash("abzlUXK5ed5rs", 5));
    /* malformed */
    assert_true(chat_passwd_needs_rehash(NULL, 5));
    assert_true(chat_passwd_needs_rehash("", 5));
    assert_true(chat_passwd_needs_rehash("*0", 5));
    assert_true(chat_passwd_needs_rehash("$y$garbage", 5));
    assert_true(chat_passwd_needs_rehash("$y$j9T", 5));
    assert_true(chat_passwd_needs_rehash("$y$j9Tx$salt$hash", 5));
    /* a cost we cannot produce */
    assert_true(chat_passwd_needs_rehash(h1, 0));
    assert_true(chat_passwd_needs_rehash(h1, 12));
}

static void test_account_dummy(void **state)
{
    char a[CHAT_PASSWD_HASH_MAX], b[CHAT_PASSWD_HASH_MAX];

    (void)state;
    assert_int_equal(chat_passwd_dummy(COST, a, sizeof(a)), CHAT_OK);
    assert_int_equal(chat_passwd_dummy(COST, b, sizeof(b)), CHAT_OK);
    assert_memory_equal(a, "$y$", 3);
    assert_string_not_equal(a, b);
    assert_false(chat_passwd_needs_rehash(a, COST)); /* same work as a real hash at COST */
    assert_false(chat_passwd_verify("", a));
    assert_false(chat_passwd_verify("password1", a));
    assert_false(chat_passwd_verify(a, a));
    assert_int_equal(chat_passwd_dummy(COST, a, 10), CHAT_EINVAL);
    assert_int_equal(chat_passwd_dummy(COST, NULL, 64), CHAT_EINVAL);
}

/* ---- refresh tokens and SHA-256 -------------------------------------------------------------- */

static int b64url_value(char c)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = c ? strchr(abc, c) : NULL;

    return p ? (int)(p - abc) : -1;
}

/* Decodes a refresh token to its CHAT_REFRESH_BYTES (fails the test on a bad token). */
static void refresh_decode(const char *tok, unsigned char raw[CHAT_REFRESH_BYTES])
{
    unsigned long acc = 0;
    int bits = 0;
    size_t n = 0;

    assert_int_equal(strlen(tok), 43);
    for (const char *p = tok; *p; p++) {
        int v = b64url_value(*p);

        if (v < 0)
            fail_msg("refresh token \"%s\": '%c' is not base64url", tok, *p);
        acc = (acc << 6 | (unsigned long)v) & 0xFFFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            assert_true(n < CHAT_REFRESH_BYTES);
            raw[n++] = (unsigned char)(acc >> bits);
        }
    }
    assert_int_equal(n, CHAT_REFRESH_BYTES);
    assert_int_equal(bits, 2);
    assert_int_equal(acc & 3, 0); /* canonical: the unused low bits are zero */
}

static void test_account_refresh_format(void **state)
{
    char a[CHAT_REFRESH_MAX], b[CHAT_REFRESH_MAX];
    unsigned char ra[CHAT_REFRESH_BYTES], rb[CHAT_REFRESH_BYTES];

    (void)state;
    assert_int_equal(chat_refresh_new(a, sizeof(a)), CHAT_OK);
    assert_int_equal(chat_refresh_new(b, sizeof(b)), CHAT_OK);
    assert_int_equal(strlen(a), 43);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     43);
    refresh_decode(a, ra);
    refresh_decode(b, rb);
    assert_string_not_equal(a, b);
    assert_memory_not_equal(ra, rb, sizeof(ra));
}

static void test_account_refresh_many_differ(void **state)
{
    char toks[64][CHAT_REFRESH_MAX];
    unsigned char raw[CHAT_REFRESH_BYTES];

    (void)state;
    for (int i = 0; i < 64; i++) {
        assert_int_equal(chat_refresh_new(toks[i], sizeof(toks[i])), CHAT_OK);
        refresh_decode(toks[i], raw);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(toks[i], toks[j]);
    }
}

static void test_account_refresh_cap(void **state)
{
    char t[CHAT_REFRESH_MAX];

    (void)state;
    assert_int_equal(chat_refresh_new(t, 44), CHAT_OK); /* 43 characters + NUL */
    assert_int_equal(strlen(t), 43);
    memcpy(t, "junk", 5);
    assert_int_equal(chat_refresh_new(t, 43), CHAT_EINVAL);
    assert_string_equal(t, "");
    assert_int_equal(chat_refresh_new(NULL, 64), CHAT_EINVAL);
}

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void test_account_sha256_vectors(void **state)
{
    unsigned char d[CHAT_SHA256_LEN];
    char x[2 * CHAT_SHA256_LEN + 1];

    (void)state;
    chat_sha256("abc", 3, d);
    hex(d, sizeof(d), x);
    assert_string_equal(x, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    chat_sha256("", 0, d);
    hex(d, sizeof(d), x);
    assert_string_equal(x, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    chat_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, d);
    hex(d, sizeof(d), x);
    assert_string_equal(x, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    chat_sha256("abcdef", 3, d); /* len, not the NUL, bounds the input */
    hex(d, sizeof(d), x);
    assert_string_equal(x, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* RFC 4231 test cases 2 (a short key) and 6 (a key longer than the block) */
static void test_account_hmac_sha256_vectors(void **state)
{
    unsigned char d[CHAT_SHA256_LEN], key[131];
    char x[2 * CHAT_SHA256_LEN + 1];
    static const char msg6[] = "Test Using Larger Than Block-Size Key - Hash Key First";

    (void)state;
    chat_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
    hex(d, sizeof(d), x);
    assert_string_equal(x, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(key, 0xaa, sizeof(key));
    chat_hmac_sha256(key, sizeof(key), msg6, strlen(msg6), d);
    hex(d, sizeof(d), x);
    assert_string_equal(x, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_account_username_length),
        cmocka_unit_test(test_account_username_charset),
        cmocka_unit_test(test_account_username_rejects),
        cmocka_unit_test(test_account_nick_plain),
        cmocka_unit_test(test_account_nick_trim_ascii),
        cmocka_unit_test(test_account_nick_trim_unicode),
        cmocka_unit_test(test_account_nick_all_space),
        cmocka_unit_test(test_account_nick_length),
        cmocka_unit_test(test_account_nick_controls),
        cmocka_unit_test(test_account_nick_bidi),
        cmocka_unit_test(test_account_nick_bad_utf8),
        cmocka_unit_test(test_account_nick_buffer),
        cmocka_unit_test(test_account_password_length),
        cmocka_unit_test(test_account_password_classes),
        cmocka_unit_test(test_account_password_rejects),
        cmocka_unit_test(test_account_hash_verify),
        cmocka_unit_test(test_account_hash_salted),
        cmocka_unit_test(test_account_hash_bad_args),
        cmocka_unit_test(test_account_hash_malformed_never_verifies),
        cmocka_unit_test(test_account_needs_rehash),
        cmocka_unit_test(test_account_dummy),
        cmocka_unit_test(test_account_refresh_format),
        cmocka_unit_test(test_account_refresh_many_differ),
        cmocka_unit_test(test_account_refresh_cap),
        cmocka_unit_test(test_account_sha256_vectors),
        cmocka_unit_test(test_account_hmac_sha256_vectors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
