/* fuzz_rest.c - libFuzzer target: the REST body decoders on arbitrary bytes (not NUL-terminated)
 * and what the gateway does next with the fields:
 *   - chat_rest_send_decode(): POST /api/v1/rooms/{room}/messages
 *   - chat_auth_body_decode(): the account endpoints (register, login, refresh, logout,
 *     nickname, password), then every decoded field through the account validators
 *     (chat_username_valid, chat_password_valid, chat_nickname_normalize).
 * Invariants: rejected bodies have a stable error code; accepted strings are NUL-free, valid
 * UTF-8 and capped; a normalized nickname is 2-20 code points, control-free, trimmed and
 * normalizes to itself. */
#include <stdbool.h>
#include <string.h>

#include "chat/account.h"
#include "chat/proto.h"
#include "chat/utf8.h"

#include "fuzz.h"

#define MAX_TEXT 64 /* code points */

static void check_send(const uint8_t *data, size_t size)
{
    struct chat_cframe f;
    enum chat_errcode err = CHAT_ERR__COUNT;
    size_t cps = 0;

    if (chat_rest_send_decode((const char *)data, size, MAX_TEXT, &f, &err) == CHAT_OK) {
        FUZZ_CHECK(f.type == CHAT_F_send && f.room == NULL);
        FUZZ_CHECK(f.text && f.text_len > 0 && strlen(f.text) == f.text_len);
        FUZZ_CHECK(chat_utf8_valid(f.text, f.text_len, &cps) && cps == f.text_cps);
        FUZZ_CHECK(cps <= MAX_TEXT && !chat_utf8_has_control(f.text, f.text_len, "\n\t"));
        FUZZ_CHECK(fuzz_len_le(f.client_msg_id, CHAT_CLIENT_MSG_ID_MAX));
    } else {
        FUZZ_CHECK(err >= 0 && err < CHAT_ERR__COUNT && err != CHAT_ERR_internal);
        FUZZ_CHECK(err != CHAT_ERR_bad_room && err != CHAT_ERR_unknown_type);
    }
    chat_cframe_fini(&f);
}

static bool is_space_ascii(unsigned char c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0D);
}

static void check_field(const char *s)
{
    char nick[CHAT_NICK_BYTES], again[CHAT_NICK_BYTES];
    size_t n, cps = 0;

    if (!s)
        return;
    n = strlen(s);
    FUZZ_CHECK(n <= CHAT_AUTH_FIELD_MAX && chat_utf8_valid(s, n, NULL));
    (void)chat_username_valid(s);
    (void)chat_password_valid(s);
    if (chat_nickname_normalize(s, nick, sizeof(nick)) != CHAT_OK) {
        FUZZ_CHECK(nick[0] == '\0');
        return;
    }
    n = strlen(nick);
    FUZZ_CHECK(n < CHAT_NICK_BYTES && chat_utf8_valid(nick, n, &cps));
    FUZZ_CHECK(cps >= CHAT_NICK_MIN && cps <= CHAT_NICK_MAX);
    FUZZ_CHECK(!chat_utf8_has_control(nick, n, NULL));
    FUZZ_CHECK(!is_space_ascii((unsigned char)nick[0]) &&
               !is_space_ascii((unsigned char)nick[n - 1]));
    FUZZ_CHECK(chat_nickname_normalize(nick, again, sizeof(again)) == CHAT_OK);
    FUZZ_CHECK(strcmp(nick, again) == 0);
    /* in place, as the header allows */
    FUZZ_CHECK(chat_nickname_normalize(again, again, sizeof(again)) == CHAT_OK);
    FUZZ_CHECK(strcmp(nick, again) == 0);
}

static void check_auth(const uint8_t *data, size_t size)
{
    struct chat_auth_body b;
    enum chat_errcode err = CHAT_ERR__COUNT;

    if (chat_auth_body_decode((const char *)data, size, &b, &err) == CHAT_OK) {
        check_field(b.username);
        check_field(b.password);
        check_field(b.nickname);
        check_field(b.refresh_token);
        check_field(b.current_password);
        check_field(b.new_password);
    } else {
        FUZZ_CHECK(err == CHAT_ERR_bad_json || err == CHAT_ERR_bad_utf8 ||
                   err == CHAT_ERR_bad_field);
    }
    chat_auth_body_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_send(data, size);
    check_auth(data, size);
    return 0;
}
