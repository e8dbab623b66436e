/* test_hash.c - SipHash-2-4 against the reference vectors, and the per-process key
 * (libchat/src/hash.c). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdint.h>
#include <string.h>

#include "chat/hash.h"

/* From the SipHash paper's reference implementation (vectors.h): key 00 01 .. 0f, message
 * 00 01 .. (len-1). */
static void test_reference_vectors(void **state)
{
    static const struct {
        size_t len;
        uint64_t want;
    } v[] = {
        {0, 0x726fdb47dd0e0e31ULL},
        {1, 0x74f839c593dc67fdULL},
        {15, 0xa129ca6149be45e5ULL},
    };
    uint8_t key[16], msg[64];

    (void)state;
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        assert_true(chat_siphash(key, msg, v[i].len) == v[i].want);
}

static void test_process_key(void **state)
{
    uint8_t zero[16] = {0};

    (void)state;
    /* stable within the process, keyed (not the all-zero key), sensitive to every byte */
    assert_true(chat_hash_str("lobby") == chat_hash_str("lobby"));
    assert_true(chat_hash_str("lobby") != chat_siphash(zero, "lobby", 5));
    assert_true(chat_hash_str("lobby") != chat_hash_str("lobbz"));
    assert_true(chat_hash_str("") == chat_hash_str(""));
    /* the length-delimited form agrees, and stops at len (not at a NUL) */
    assert_true(chat_hash_mem("lobby", 5) == chat_hash_str("lobby"));
    assert_true(chat_hash_mem("lobby-2", 5) == chat_hash_str("lobby"));
    assert_true(chat_hash_mem("", 0) == chat_hash_str(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_process_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
