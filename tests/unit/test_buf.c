/* test_buf.c - the capped byte buffer with headroom (libchat/src/buf.c). */
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

#include "chat/buf.h"
#include "chat/mem.h"

static void test_buf_empty(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 16, 100);
    assert_null(b.base);
    assert_int_equal(b.len, 0);
    assert_string_equal(chat_buf_data(&b), ""); /* readable before the first append */
    assert_int_equal(chat_buf_append(&b, NULL, 0), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "");
    chat_buf_fini(&b);
}

static void test_buf_append_nul_terminated(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_buf_append(&b, "abcXYZ", 3), CHAT_OK);
    assert_int_equal(chat_buf_appends(&b, "def"), CHAT_OK);
    assert_int_equal(b.len, 6);
    assert_string_equal(chat_buf_data(&b), "abcdef");
    assert_int_equal(chat_buf_append(&b, "\0z", 2), CHAT_OK); /* binary safe */
    assert_int_equal(b.len, 8);
    assert_memory_equal(chat_buf_data(&b), "abcdef\0z", 9);
    chat_buf_fini(&b);
}

static void test_buf_headroom(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 16, 0);
    assert_int_equal(chat_buf_appends(&b, "x"), CHAT_OK);
    assert_ptr_equal(chat_buf_data(&b), (char *)b.base + 16);
    for (int i = 0; i < 1000; i++) /* growth keeps the headroom in front */
        assert_int_equal(chat_buf_appends(&b, "y"), CHAT_OK);
    assert_ptr_equal(chat_buf_data(&b), (char *)b.base + 16);
    assert_true(b.cap >= 16 + 1001 + 1);
    assert_int_equal(chat_buf_data(&b)[0], 'x');
    assert_int_equal(chat_buf_data(&b)[1000], 'y');
    assert_int_equal(chat_buf_data(&b)[1001], '\0');
    chat_buf_fini(&b);
}

static void test_buf_cap_exact(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 8, 10); /* the cap counts data bytes, not headroom */
    assert_int_equal(chat_buf_append(&b, "0123456789", 10), CHAT_OK);
    assert_int_equal(chat_buf_append(&b, "a", 1), CHAT_ETOOBIG);
    assert_int_equal(b.len, 10); /* unchanged on error */
    assert_string_equal(chat_buf_data(&b), "0123456789");
    assert_int_equal(chat_buf_append(&b, NULL, 0), CHAT_OK);
    chat_buf_fini(&b);
}

static void test_buf_cap_single_append(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 10);
    assert_int_equal(chat_buf_append(&b, "0123456789a", 11), CHAT_ETOOBIG);
    assert_null(b.base); /* nothing allocated for a refused append */
    assert_int_equal(chat_buf_reserve(&b, SIZE_MAX), CHAT_ETOOBIG);
    assert_int_equal(chat_buf_appends(&b, "0123"), CHAT_OK);
    assert_int_equal(chat_buf_reserve(&b, SIZE_MAX - 2), CHAT_ETOOBIG); /* len + n wraps */
    chat_buf_fini(&b);
}

static void test_buf_uncapped_huge_reserve(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 16, 0); /* max 0: no cap, but sizes must not wrap around */
    assert_int_equal(chat_buf_appends(&b, "abc"), CHAT_OK);
    assert_int_equal(chat_buf_reserve(&b, SIZE_MAX), CHAT_ETOOBIG);
    assert_int_equal(chat_buf_reserve(&b, SIZE_MAX - 16), CHAT_ETOOBIG);
    assert_int_equal(chat_buf_append(&b, "x", SIZE_MAX - 3), CHAT_ETOOBIG);
    assert_string_equal(chat_buf_data(&b), "abc");
    chat_buf_fini(&b);
}

static void test_buf_appendf_small(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 4, 0);
    assert_int_equal(chat_buf_appendf(&b, "%s=%d", "n", 42), CHAT_OK);
    assert_int_equal(chat_buf_appendf(&b, ",%05.1f", 2.5), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "n=42,002.5");
    assert_int_equal(chat_buf_appendf(&b, "%s", ""), CHAT_OK);
    assert_int_equal(b.len, 10);
    chat_buf_fini(&b);
}

static void test_buf_appendf_large(void **state)
{
    char *big = chat_xmalloc(5001);
    struct chat_buf b;

    (void)state;
    memset(big, 'q', 5000);
    big[5000] = '\0';
    chat_buf_init(&b, 16, 0);
    assert_int_equal(chat_buf_appends(&b, "<"), CHAT_OK);
    assert_int_equal(chat_buf_appendf(&b, "%s|%0300d", big, 7), CHAT_OK); /* > 256-byte stack */
    assert_int_equal(b.len, 1 + 5000 + 1 + 300);
    assert_memory_equal(chat_buf_data(&b) + 1, big, 5000);
    assert_int_equal(chat_buf_data(&b)[5001], '|');
    assert_int_equal(chat_buf_data(&b)[5301], '7');
    assert_int_equal(chat_buf_data(&b)[5302], '\0');
    assert_int_equal(chat_buf_appends(&b, ">"), CHAT_OK);
    assert_int_equal(chat_buf_data(&b)[5302], '>');
    chat_buf_fini(&b);
    chat_free(big);
}

static void test_buf_appendf_cap(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 300);
    assert_int_equal(chat_buf_appendf(&b, "%0299d", 1), CHAT_OK);      /* large path, fits */
    assert_int_equal(chat_buf_appendf(&b, "%s", "ab"), CHAT_ETOOBIG);  /* small path, over */
    assert_int_equal(chat_buf_appendf(&b, "%0400d", 1), CHAT_ETOOBIG); /* large path, over */
    assert_int_equal(b.len, 299);
    assert_int_equal(chat_buf_data(&b)[299], '\0');
    assert_int_equal(chat_buf_appendf(&b, "%s", "c"), CHAT_OK); /* exactly at the cap */
    assert_int_equal(b.len, 300);
    chat_buf_fini(&b);
}

static void test_buf_reset_keeps_storage(void **state)
{
    struct chat_buf b;
    unsigned char *base;

    (void)state;
    chat_buf_init(&b, 8, 0);
    assert_int_equal(chat_buf_appends(&b, "hello"), CHAT_OK);
    base = b.base;
    chat_buf_reset(&b);
    assert_ptr_equal(b.base, base);
    assert_int_equal(b.len, 0);
    assert_string_equal(chat_buf_data(&b), "");
    assert_int_equal(chat_buf_appends(&b, "hi"), CHAT_OK);
    assert_ptr_equal(b.base, base);
    assert_string_equal(chat_buf_data(&b), "hi");
    chat_buf_fini(&b);
}

static void test_buf_i64(void **state)
{
    const int64_t v[] = {0, 7, -7, 10, 1709164801234LL, INT64_MAX, INT64_MIN, -1};
    char want[32], got[CHAT_I64_DIGITS];
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 0);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = chat_fmt_i64(got, v[i]);
        snprintf(want, sizeof(want), "%lld", (long long)v[i]);
        assert_int_equal(n, strlen(want));
        assert_memory_equal(got, want, n);
        chat_buf_reset(&b);
        assert_int_equal(chat_buf_append_i64(&b, v[i]), CHAT_OK);
        assert_string_equal(chat_buf_data(&b), want);
    }
    chat_buf_fini(&b);
    assert_int_equal(chat_fmt_u64(got, UINT64_MAX), 20);
    assert_memory_equal(got, "18446744073709551615", 20);
    assert_int_equal(chat_fmt_u64(got, 0), 1);
    assert_memory_equal(got, "0", 1);
    chat_buf_init(&b, 0, 3); /* the cap holds */
    assert_int_equal(chat_buf_append_i64(&b, 1234), CHAT_ETOOBIG);
    assert_int_equal(b.len, 0);
    chat_buf_fini(&b);
}

static void test_buf_steal(void **state)
{
    struct chat_buf b;
    unsigned char *p;

    (void)state;
    chat_buf_init(&b, 4, 0);
    assert_int_equal(chat_buf_appends(&b, "mine"), CHAT_OK);
    p = chat_buf_steal(&b);
    assert_non_null(p);
    assert_string_equal((char *)p + 4, "mine");
    assert_null(b.base);
    assert_int_equal(b.len, 0);
    assert_string_equal(chat_buf_data(&b), "");
    assert_int_equal(chat_buf_appends(&b, "again"), CHAT_OK); /* reusable */
    assert_string_equal(chat_buf_data(&b), "again");
    chat_buf_fini(&b);
    chat_free(p);
}

static void test_buf_fini_idempotent(void **state)
{
    struct chat_buf b;

    (void)state;
    memset(&b, 0, sizeof(b));
    chat_buf_fini(&b); /* zeroed */
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_buf_appends(&b, "x"), CHAT_OK);
    chat_buf_fini(&b);
    assert_null(b.base);
    chat_buf_fini(&b);
}

static void test_buf_many_small_appends(void **state)
{
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 100000);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(chat_buf_append(&b, &"0123456789"[i % 10], 1), CHAT_OK);
    assert_int_equal(chat_buf_append(&b, "x", 1), CHAT_ETOOBIG);
    for (int i = 0; i < 100000; i += 9973)
        assert_int_equal(chat_buf_data(&b)[i], '0' + i % 10);
    chat_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_empty),
        cmocka_unit_test(test_buf_append_nul_terminated),
        cmocka_unit_test(test_buf_headroom),
        cmocka_unit_test(test_buf_cap_exact),
        cmocka_unit_test(test_buf_cap_single_append),
        cmocka_unit_test(test_buf_uncapped_huge_reserve),
        cmocka_unit_test(test_buf_appendf_small),
        cmocka_unit_test(test_buf_appendf_large),
        cmocka_unit_test(test_buf_appendf_cap),
        cmocka_unit_test(test_buf_reset_keeps_storage),
        cmocka_unit_test(test_buf_i64),
        cmocka_unit_test(test_buf_steal),
        cmocka_unit_test(test_buf_fini_idempotent),
        cmocka_unit_test(test_buf_many_small_appends),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
