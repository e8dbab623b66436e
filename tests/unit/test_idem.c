/* test_idem.c - idempotent sends (chat/idem.h): the remembered ack's codec, the key, the PX of
 * the pending value and the verdicts on an existing key's value. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "chat/buf.h"
#include "chat/idem.h"
#include "chat/proto.h"

static void test_idem_ack_roundtrip(void **state)
{
    struct chat_buf b;
    struct chat_idem_ack a;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(
        chat_enc_idem_ack(&b, "room-1", UINT64_C(264905530269511687), 1234, 1767225600123),
        CHAT_OK);
    assert_string_equal(chat_buf_data(&b),
                        "{\"room\":\"room-1\",\"id\":\"264905530269511687\",\"seq\":1234,"
                        "\"ts\":1767225600123}");
    assert_int_equal(chat_idem_ack_decode(chat_buf_data(&b), b.len, &a), CHAT_OK);
    assert_string_equal(a.room, "room-1");
    assert_true(a.id == UINT64_C(264905530269511687));
    assert_int_equal(a.seq, 1234);
    assert_int_equal(a.ts, 1767225600123);
    chat_buf_fini(&b);
}

static void test_idem_ack_decode_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        "p",
        "[]",
        "{\"room\":\"r\",\"id\":\"1\",\"seq\":1}",                             /* ts missing */
        "{\"room\":\"r\",\"id\":1,\"seq\":1,\"ts\":1}",                        /* id a number */
        "{\"room\":\"r\",\"id\":\"-1\",\"seq\":1,\"ts\":1}",                   /* id negative */
        "{\"room\":\"r\",\"id\":\"1x\",\"seq\":1,\"ts\":1}",                   /* id not decimal */
        "{\"room\":\"r\",\"id\":\"99999999999999999999\",\"seq\":1,\"ts\":1}", /* over u64 */
        "{\"room\":\"r\",\"id\":\"1\",\"seq\":-1,\"ts\":1}",                   /* seq negative */
        "{\"room\":\"a b\",\"id\":\"1\",\"seq\":1,\"ts\":1}",                  /* room invalid */
        "{\"room\":\"r\",\"room\":\"s\",\"id\":\"1\",\"seq\":1,\"ts\":1}",     /* duplicate key */
    };
    struct chat_idem_ack a;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (chat_idem_ack_decode(bad[i], strlen(bad[i]), &a) != CHAT_EPROTO)
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(a.room[0], '\0');
    }
}

static void test_idem_key(void **state)
{
    char key[CHAT_IDEM_KEY_MAX], small[16];
    char id[CHAT_CLIENT_MSG_ID_MAX + 1], user[CHAT_USER_MAX];

    (void)state;
    assert_int_equal(chat_idem_key(key, sizeof(key), "42", "c-1"), CHAT_OK);
    assert_string_equal(key, "chat:idem:42:c-1");
    assert_int_equal(chat_idem_key(small, sizeof(small), "42", "c-1"), CHAT_ETOOBIG);
    /* the longest user (a token's sub) and client_msg_id fit */
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    memset(user, 'u', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    assert_int_equal(chat_idem_key(key, sizeof(key), user, id), CHAT_OK);
    assert_int_equal(chat_idem_pending_px(10000), 15000);
}

static void test_idem_judge(void **state)
{
    static const char done[] = "{\"room\":\"r1\",\"id\":\"7\",\"seq\":3,\"ts\":99}";
    struct chat_idem_ack a;
    int retry;

    (void)state;
    assert_int_equal(chat_idem_judge("r1", done, strlen(done), 86000000, &a, &retry),
                     CHAT_IDEM_DONE);
    assert_true(a.id == 7);
    assert_int_equal(a.seq, 3);
    assert_int_equal(a.ts, 99);
    assert_int_equal(chat_idem_judge("r2", done, strlen(done), 86000000, &a, &retry),
                     CHAT_IDEM_OTHER_ROOM);
    assert_int_equal(chat_idem_judge("r1", "p", 1, 12000, &a, &retry), CHAT_IDEM_IN_FLIGHT);
    assert_int_equal(retry, CHAT_IDEM_RETRY_MS);
    assert_int_equal(chat_idem_judge("r1", "p", 1, 120, &a, &retry), CHAT_IDEM_IN_FLIGHT);
    assert_int_equal(retry, 120); /* the key expires sooner */
    assert_int_equal(chat_idem_judge("r1", "p", 1, -1, &a, &retry), CHAT_IDEM_IN_FLIGHT);
    assert_int_equal(retry, CHAT_IDEM_RETRY_MS);
    assert_int_equal(chat_idem_judge("r1", "px", 2, 100, &a, &retry), CHAT_IDEM_UNREADABLE);
    assert_int_equal(chat_idem_judge("r1", "{}", 2, 100, &a, &retry), CHAT_IDEM_UNREADABLE);
    assert_int_equal(chat_idem_judge("r1", NULL, 0, 100, &a, &retry), CHAT_IDEM_UNREADABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idem_ack_roundtrip),
        cmocka_unit_test(test_idem_ack_decode_rejects),
        cmocka_unit_test(test_idem_key),
        cmocka_unit_test(test_idem_judge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
