/* fuzz_jwt.c - libFuzzer target: the access-token parser chat_jwt_verify() (header parse,
 * base64url, kid lookup, libjwt decode, claim type checks) on arbitrary bytes, copied into a
 * NUL-terminated buffer as the API takes a C string; then a sign/verify round trip of claims
 * taken from the same bytes ("sub\nsid\nrole\nname"). The input is also verified once more
 * re-signed with the right key, so that mutations of the header and the claims are not all
 * stopped by the signature check.
 * Invariants: a token is only accepted with a non-empty sub and an exp in the future (leeway
 * included); whatever chat_jwt_sign() signs, chat_jwt_verify() accepts with the same claims.
 * The keyring is fixed (kids k1, k2); tests/data/fuzz/jwt holds tokens signed with it. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "chat/jwt.h"

#include "fuzz.h"

#define NOW    1700000000 /* s; the seed tokens expire in 2033 */
#define LEEWAY 30
#define ISS    "chat"
#define KEYRING \
    "k1:fuzz-secret-k1-0123456789abcdef0123456789,k2:fuzz-secret-k2-0123456789abcdef0123456789"

static struct chat_jwt_keyring kr;

static void check_claims(const struct chat_claims *c)
{
    FUZZ_CHECK(c->sub[0] != '\0' && NOW - LEEWAY < c->exp);
    FUZZ_CHECK(!c->nbf || NOW + LEEWAY >= c->nbf);
    FUZZ_CHECK(c->role[0] != '\0');
}

static void verify_token(const char *token)
{
    struct chat_claims c;
    int rc;

    rc = chat_jwt_verify(&kr, token, ISS, NOW, LEEWAY, &c);
    FUZZ_CHECK(rc == CHAT_OK || rc == CHAT_EEXPIRED || rc == CHAT_EAUTH);
    if (rc == CHAT_OK)
        check_claims(&c);
    rc = chat_jwt_verify(&kr, token, NULL, NOW, LEEWAY, &c);
    FUZZ_CHECK(rc == CHAT_OK || rc == CHAT_EEXPIRED || rc == CHAT_EAUTH);
    if (rc == CHAT_OK)
        check_claims(&c);
}

/* Re-signs "HEADER.PAYLOAD[.ANY]" with key k1, so that mutated headers and claims get past the
 * signature and reach the claim checks (libjwt's decode, exp/nbf/iat types, sub/sid/role/name
 * lengths), then verifies that. */
static void verify_resigned(const char *s)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *dot = strchr(s, '.'), *end;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char *token;
    size_t n, o;

    if (!dot)
        return;
    end = strchr(dot + 1, '.');
    n = end ? (size_t)(end - s) : strlen(s);
    if (!HMAC(EVP_sha256(), kr.keys[0].secret, (int)kr.keys[0].len, (const unsigned char *)s, n,
              mac, &maclen))
        abort();
    token = chat_xmalloc(n + 1 + (maclen * 4 + 2) / 3 + 1);
    memcpy(token, s, n);
    o = n;
    token[o++] = '.';
    for (unsigned int i = 0; i < maclen; i += 3) { /* unpadded base64url */
        unsigned v = (unsigned)mac[i] << 16;
        if (i + 1 < maclen)
            v |= (unsigned)mac[i + 1] << 8;
        if (i + 2 < maclen)
            v |= mac[i + 2];
        token[o++] = b64[(v >> 18) & 63];
        token[o++] = b64[(v >> 12) & 63];
        if (i + 1 < maclen)
            token[o++] = b64[(v >> 6) & 63];
        if (i + 2 < maclen)
            token[o++] = b64[v & 63];
    }
    token[o] = '\0';
    verify_token(token);
    chat_free(token);
}

/* Copies the next '\n'-terminated field of s (truncated to cap - 1) into dst; returns the rest. */
static const char *next_field(const char *s, char *dst, size_t cap)
{
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);

    memcpy(dst, s, n < cap - 1 ? n : cap - 1);
    dst[n < cap - 1 ? n : cap - 1] = '\0';
    return nl ? nl + 1 : s + n;
}

static void round_trip(const char *s)
{
    struct chat_claims c = {.exp = NOW + 600, .iat = NOW}, back;
    char *token = NULL;

    s = next_field(s, c.sub, sizeof(c.sub));
    s = next_field(s, c.sid, sizeof(c.sid));
    s = next_field(s, c.role, sizeof(c.role));
    (void)next_field(s, c.name, sizeof(c.name));
    if (chat_jwt_sign(&kr, &c, ISS, &token) != CHAT_OK) {
        FUZZ_CHECK(token == NULL);
        return;
    }
    FUZZ_CHECK(strlen(token) <= CHAT_JWT_MAX_TOKEN);
    FUZZ_CHECK(chat_jwt_verify(&kr, token, ISS, NOW, 0, &back) == CHAT_OK);
    FUZZ_CHECK(strcmp(back.sub, c.sub) == 0 && strcmp(back.sid, c.sid) == 0);
    FUZZ_CHECK(strcmp(back.role, c.role[0] ? c.role : "user") == 0);
    FUZZ_CHECK(strcmp(back.name, c.name) == 0);
    FUZZ_CHECK(back.exp == c.exp && back.iat == c.iat && back.nbf == 0);
    FUZZ_CHECK(chat_jwt_verify(&kr, token, ISS, c.exp, 0, &back) == CHAT_EEXPIRED);
    chat_free(token);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;

    if (kr.n == 0 && chat_jwt_keyring_parse(KEYRING, &kr) != CHAT_OK)
        abort();
    s = fuzz_cstr(data, size);
    verify_token(s);
    verify_resigned(s);
    round_trip(s);
    chat_free(s);
    return 0;
}
