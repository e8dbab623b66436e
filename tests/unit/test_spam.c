/* test_spam.c - the spam rule's shared parts (chat/spam.h): the normalisation behind the hash,
 * the script's keys and arguments, the reading of its answer, and the spam-rule sanction event. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "chat/buf.h"
#include "chat/proto.h"
#include "chat/spam.h"

static void hash_of(const char *s, char out[CHAT_SPAM_HASH_LEN + 1])
{
    chat_spam_hash(s, strlen(s), out);
}

static void test_spam_normalise(void **state)
{
    char a[CHAT_SPAM_HASH_LEN + 1], b[CHAT_SPAM_HASH_LEN + 1];
    static const char *const same[] = {"buy now", "Buy Now", "  BUY   now ", "\tbuy\n now\r\n",
                                       "bUy\v\fNOW"};
    static const char *const other[] = {"buynow", "buy now!", "buy  no w", "", "buy now \xc3\x89"};

    (void)state;
    hash_of("buy now", a);
    assert_int_equal(strlen(a), CHAT_SPAM_HASH_LEN);
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        hash_of(same[i], b);
        assert_string_equal(a, b);
    }
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        hash_of(other[i], b);
        assert_string_not_equal(a, b);
    }
    /* other scripts compare as is: no case folding beyond ASCII */
    hash_of("\xc3\x89t\xc3\xa9", a); /* Été */
    hash_of("\xc3\xa9t\xc3\xa9", b); /* été */
    assert_string_not_equal(a, b);
    hash_of("  \xc3\x89T\xc3\xa9 ", b);
    assert_string_equal(a, b);
}

static void test_spam_keys_args(void **state)
{
    char keys[4][CHAT_SPAM_KEY_MAX], args[7][24], big[300];
    struct chat_spam_cfg cfg = {
        .same = 4, .last = 5, .ban_s = 60, .ban_max_s = 86400, .window_s = 3600};

    (void)state;
    assert_int_equal(chat_spam_keys(keys, "42", "lobby"), CHAT_OK);
    assert_string_equal(keys[0], "chat:spam:last:42");
    assert_string_equal(keys[1], "chat:spam:offences:42");
    assert_string_equal(keys[2], "chat:slow:lobby:42");
    assert_string_equal(keys[3], "chat:spam:ban:42");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(chat_spam_keys(keys, big, "lobby"), CHAT_ETOOBIG);
    chat_spam_args(args, "0123456789abcdef", &cfg, 2000);
    assert_string_equal(args[0], "0123456789abcdef");
    assert_string_equal(args[1], "4");
    assert_string_equal(args[2], "5");
    assert_string_equal(args[3], "60000");
    assert_string_equal(args[4], "86400000");
    assert_string_equal(args[5], "3600");
    assert_string_equal(args[6], "2000");
    chat_spam_args(args, "h", &cfg, -5);
    assert_string_equal(args[6], "0");
}

/* The whole call: EVAL, the script, 4 keys, then the 7 arguments (the normalised text's hash). */
static void test_spam_call(void **state)
{
    struct chat_spam_call c;
    struct chat_spam_cfg cfg = {
        .same = 4, .last = 5, .ban_s = 60, .ban_max_s = 86400, .window_s = 3600};
    char hash[CHAT_SPAM_HASH_LEN + 1], big[300];

    (void)state;
    assert_int_equal(chat_spam_call_init(&c, "42", "lobby", " Buy  NOW", 9, &cfg, 1500), CHAT_OK);
    assert_string_equal(c.argv[0], "EVAL");
    assert_ptr_equal(c.argv[1], chat_spam_lua);
    assert_string_equal(c.argv[2], "4");
    assert_string_equal(c.argv[3], "chat:spam:last:42");
    assert_string_equal(c.argv[6], "chat:spam:ban:42");
    chat_spam_hash("buy now", 7, hash);
    assert_string_equal(c.argv[7], hash);
    assert_string_equal(c.argv[8], "4");
    assert_string_equal(c.argv[CHAT_SPAM_ARGC - 1], "1500");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(chat_spam_call_init(&c, big, "lobby", "x", 1, &cfg, 0), CHAT_ETOOBIG);
}

static void test_spam_judge(void **state)
{
    long long ok[1] = {0}, trip[3] = {1, 120000, 2}, slow[2] = {2, 1500}, ban[2] = {3, 0},
              bad[2] = {7, 1}, short_trip[2] = {1, 5};
    int64_t ms;
    int off;

    (void)state;
    assert_int_equal(chat_spam_judge(ok, 1, &ms, &off), CHAT_SPAM_OK);
    assert_int_equal(chat_spam_judge(trip, 3, &ms, &off), CHAT_SPAM_TRIPPED);
    assert_int_equal(ms, 120000);
    assert_int_equal(off, 2);
    assert_int_equal(chat_spam_judge(slow, 2, &ms, &off), CHAT_SPAM_SLOW);
    assert_int_equal(ms, 1500);
    assert_int_equal(chat_spam_judge(ban, 2, &ms, &off), CHAT_SPAM_BANNED);
    assert_int_equal(ms, 1); /* never 0: a refusal always says "later" */
    assert_int_equal(chat_spam_judge(bad, 2, &ms, &off), -1);
    assert_int_equal(chat_spam_judge(short_trip, 2, &ms, &off), -1);
    assert_int_equal(chat_spam_judge(ok, 0, &ms, &off), -1);
}

static void test_spam_event(void **state)
{
    struct chat_buf b;
    struct chat_event ev;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_spam_ban(&b, "42", 1767229200000, 3, 1767229140000), CHAT_OK);
    assert_int_equal(chat_event_decode(chat_buf_data(&b), b.len, &ev), CHAT_OK);
    assert_int_equal(ev.type, CHAT_EV_sanction);
    assert_string_equal(ev.user, "42");
    assert_string_equal(ev.room, "*");
    assert_string_equal(ev.kind, "chat_ban");
    assert_string_equal(ev.reason, "spam");
    assert_int_equal(ev.until, 1767229200000);
    assert_int_equal(ev.offence, 3);
    assert_int_equal(ev.ts, 1767229140000);
    chat_event_fini(&ev);
    chat_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spam_normalise), cmocka_unit_test(test_spam_keys_args),
        cmocka_unit_test(test_spam_call),      cmocka_unit_test(test_spam_judge),
        cmocka_unit_test(test_spam_event),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
