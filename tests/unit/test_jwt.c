/* test_jwt.c - HS256 access tokens (libchat/src/jwt.c) against the ways libjwt 1.10 is unsafe:
 * alg none, foreign algorithms, RS/HS key confusion, unchecked exp/nbf/iss, unknown kids. Tokens
 * the chat code would never mint are built with libjwt directly or by hand (base64url). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>

#include "chat/buf.h"
#include "chat/jwt.h"
#include "chat/mem.h"

#define NOW 1767225600LL /* fixed clock: 2026-01-01T00:00:00Z */
#define ISS "chatcluster"
#define K1  "k1-secret-0123456789abcdefghijklmnop" /* >= 32 bytes */
#define K2  "k2-secret-0123456789abcdefghijklmnop"

static const char pem_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n"
                              "4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u\n"
                              "+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyeh\n"
                              "kd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdjykkJ\n"
                              "0iT9wCS0DRTXu269V264Vf/3jvredZiKRkgwlL9xNAwxXFg0x/XFw005UWVRIkdg\n"
                              "cKWTjpBP2dPwVZ4WWC+9aGVd+Gyn1o0CLelf4rEjGoXbAAEgAqeGUxrcIlbjXfbc\n"
                              "mwIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";

static void ring(struct chat_jwt_keyring *kr, const char *spec)
{
    assert_int_equal(chat_jwt_keyring_parse(spec, kr), CHAT_OK);
}

static struct chat_claims claims(const char *sub, int64_t exp)
{
    struct chat_claims c;

    memset(&c, 0, sizeof(c));
    strncpy(c.sub, sub, sizeof(c.sub) - 1);
    strncpy(c.name, "Alice", sizeof(c.name) - 1);
    strncpy(c.sid, "sess-1", sizeof(c.sid) - 1);
    strncpy(c.role, "admin", sizeof(c.role) - 1);
    c.exp = exp;
    c.iat = NOW;
    return c;
}

/* Signs with chat_jwt_sign; returns a new token. */
/* noinline: gcc 12 -O3 otherwise reports a false -Wdangling-pointer on the returned token */
__attribute__((noinline)) static char *
sign(const char *spec, const struct chat_claims *c, const char *iss)
{
    struct chat_jwt_keyring kr;
    char *tok = NULL;

    ring(&kr, spec);
    assert_int_equal(chat_jwt_sign(&kr, c, iss, &tok), CHAT_OK);
    chat_jwt_keyring_fini(&kr);
    return tok;
}

/* Verifies tok against the keyring spec at NOW with leeway 0. */
static int verify(const char *spec, const char *tok, struct chat_claims *out)
{
    struct chat_jwt_keyring kr;
    struct chat_claims tmp;
    int rc;

    ring(&kr, spec);
    rc = chat_jwt_verify(&kr, tok, ISS, NOW, 0, out ? out : &tmp);
    chat_jwt_keyring_fini(&kr);
    return rc;
}

/* A token minted by libjwt with raw grants. grants: "name=value" strings ("#name=N" for ints);
 * key NULL = alg none. Returns a new string (chat_free). */
static char *raw_token(jwt_alg_t alg, const char *key, const char *kid, const char *const *grants)
{
    jwt_t *j = NULL;
    char *s, *out;

    assert_int_equal(jwt_new(&j), 0);
    for (; grants && *grants; grants++) {
        const char *g = *grants, *eq = strchr(g, '=');
        char name[32];

        assert_non_null(eq);
        if (g[0] == '#') {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - g - 1), g + 1);
            assert_int_equal(jwt_add_grant_int(j, name, strtol(eq + 1, NULL, 10)), 0);
        } else {
            snprintf(name, sizeof(name), "%.*s", (int)(eq - g), g);
            assert_int_equal(jwt_add_grant(j, name, eq + 1), 0);
        }
    }
    if (kid)
        assert_int_equal(jwt_add_header(j, "kid", kid), 0);
    assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key, key ? (int)strlen(key) : 0),
                     0);
    s = jwt_encode_str(j);
    assert_non_null(s);
    out = chat_xstrdup(s);
    chat_free(s);
    jwt_free(j);
    return out;
}

static void b64url(struct chat_buf *b, const char *s)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);

    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        assert_int_equal(chat_buf_appendf(b, "%c%c", tab[(v >> 18) & 63], tab[(v >> 12) & 63]),
                         CHAT_OK);
        if (i + 1 < n)
            assert_int_equal(chat_buf_appendf(b, "%c", tab[(v >> 6) & 63]), CHAT_OK);
        if (i + 2 < n)
            assert_int_equal(chat_buf_appendf(b, "%c", tab[v & 63]), CHAT_OK);
    }
}

/* header.payload.sig built by hand; sig is used verbatim. Returns a new string. */
static char *hand_token(const char *header, const char *payload, const char *sig)
{
    struct chat_buf b;

    chat_buf_init(&b, 0, 0);
    b64url(&b, header);
    assert_int_equal(chat_buf_appends(&b, "."), CHAT_OK);
    b64url(&b, payload);
    assert_int_equal(chat_buf_appends(&b, "."), CHAT_OK);
    assert_int_equal(chat_buf_appends(&b, sig), CHAT_OK);
    return (char *)chat_buf_steal(&b);
}

#define GOOD_PAYLOAD "{\"sub\":\"alice\",\"exp\":1767229200,\"iss\":\"chatcluster\"}"

/* ---- tests ---- */

static void test_jwt_valid(void **state)
{
    struct chat_claims c = claims("alice", NOW + 900), got;
    char *tok = sign(K1, &c, ISS);

    (void)state;
    assert_int_equal(verify(K1, tok, &got), CHAT_OK);
    assert_string_equal(got.sub, "alice");
    assert_string_equal(got.name, "Alice");
    assert_string_equal(got.sid, "sess-1");
    assert_string_equal(got.role, "admin");
    assert_int_equal(got.exp, NOW + 900);
    assert_int_equal(got.iat, NOW);
    assert_int_equal(got.nbf, 0);
    chat_free(tok);
}

/* chat_jwt_check: the real clock, the leeway, and the longest lifetime of a session token. */
static void test_jwt_check_max_ttl(void **state)
{
    struct chat_jwt_keyring kr;
    struct chat_claims c, got;
    int64_t now = (int64_t)time(NULL);
    char *tok;

    (void)state;
    ring(&kr, K1);
    c = claims("alice", now + 600);
    c.iat = now;
    tok = sign(K1, &c, ISS);
    assert_int_equal(chat_jwt_check(&kr, tok, ISS, 600, &got), CHAT_OK);
    assert_int_equal(chat_jwt_check(&kr, tok, ISS, 599, &got), CHAT_EAUTH); /* lives too long */
    chat_free(tok);
    c.sid[0] = '\0'; /* no session: no revocation to outlive */
    tok = sign(K1, &c, ISS);
    assert_int_equal(chat_jwt_check(&kr, tok, ISS, 1, &got), CHAT_OK);
    chat_free(tok);
    c = claims("alice", now - CHAT_JWT_LEEWAY_S + 2); /* within the leeway */
    c.iat = now - 60;
    tok = sign(K1, &c, ISS);
    assert_int_equal(chat_jwt_check(&kr, tok, ISS, 3600, &got), CHAT_OK);
    chat_free(tok);
    c = claims("alice", now - CHAT_JWT_LEEWAY_S - 60);
    c.iat = now - 600;
    tok = sign(K1, &c, ISS);
    assert_int_equal(chat_jwt_check(&kr, tok, ISS, 3600, &got), CHAT_EEXPIRED);
    assert_int_equal(chat_jwt_check(&kr, tok, "other", 3600, &got), CHAT_EAUTH);
    chat_free(tok);
    chat_jwt_keyring_fini(&kr);
}

static void test_jwt_claim_defaults(void **state)
{
    static const char *const g[] = {"sub=bob", "#exp=1767229200", "iss=chatcluster", NULL};
    char *tok = raw_token(JWT_ALG_HS256, K1, NULL, g);
    struct chat_claims got;

    (void)state;
    assert_int_equal(verify(K1, tok, &got), CHAT_OK);
    assert_string_equal(got.role, "user");
    assert_string_equal(got.sid, "");
    assert_string_equal(got.name, "");
    chat_free(tok);
}

static void test_jwt_alg_none_rejected(void **state)
{
    static const char *const g[] = {"sub=alice", "#exp=1767229200", "iss=chatcluster", NULL};
    char *lib = raw_token(JWT_ALG_NONE, NULL, NULL, g);
    char *hand = hand_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, "");
    char *hand2 = hand_token("{\"alg\":\"NONE\"}", GOOD_PAYLOAD, "");
    char *noalg = hand_token("{\"typ\":\"JWT\"}", GOOD_PAYLOAD, "");

    (void)state;
    assert_int_equal(verify(K1, lib, NULL), CHAT_EAUTH);
    assert_int_equal(verify(K1, hand, NULL), CHAT_EAUTH);
    assert_int_equal(verify(K1, hand2, NULL), CHAT_EAUTH);
    assert_int_equal(verify(K1, noalg, NULL), CHAT_EAUTH);
    chat_free(lib);
    chat_free(hand);
    chat_free(hand2);
    chat_free(noalg);
}

static void test_jwt_wrong_key(void **state)
{
    struct chat_claims c = claims("alice", NOW + 900);
    char *tok = sign(K1, &c, ISS);

    (void)state;
    assert_int_equal(verify(K2, tok, NULL), CHAT_EAUTH); /* same kid "k1", other secret */
    chat_free(tok);
}

static void test_jwt_expired(void **state)
{
    struct chat_jwt_keyring kr;
    struct chat_claims c = claims("alice", NOW - 10), got;
    char *tok = sign(K1, &c, ISS);

    (void)state;
    ring(&kr, K1);
    assert_int_equal(chat_jwt_verify(&kr, tok, ISS, NOW, 0, &got), CHAT_EEXPIRED);
    assert_int_equal(chat_jwt_verify(&kr, tok, ISS, NOW - 10, 0, &got), CHAT_EEXPIRED); /* at exp */
    assert_int_equal(chat_jwt_verify(&kr, tok, ISS, NOW - 11, 0, &got), CHAT_OK);
    assert_int_equal(chat_jwt_verify(&kr, tok, ISS, NOW, 30, &got), CHAT_OK); /* leeway */
    chat_jwt_keyring_fini(&kr);
    chat_free(tok);
}

static void test_jwt_nbf_in_future(void **state)
{
    struct chat_jwt_keyring kr;
    struct chat_claims c = claims("alice", NOW + 900), got;
    char *tok;

    (void)state;
    c.nbf = NOW + 60;
    tok = sign(K1, &c, ISS);
    ring(&kr, K1);
    assert_int_equal(chat_jwt_verify(&kr, tok, ISS, NOW, 0, &got), CHAT_EAUTH);
    assert_int_equal(chat_jwt_verify(&kr, tok, ISS, NOW, 60, &got), CHAT_OK);
    assert_int_equal(chat_jwt_verify(&kr, tok, ISS, NOW + 60, 0, &got), CHAT_OK);
    assert_int_equal(got.nbf, NOW + 60);
    chat_jwt_keyring_fini(&kr);
    chat_free(tok);
}

static void test_jwt_bad_claim_types(void **state)
{
    static const char *const exp_str[] = {"sub=alice", "exp=1767229200", "iss=chatcluster", NULL};
    static const char *const nbf_str[] = {"sub=alice", "#exp=1767229200", "nbf=1767229100",
                                          "iss=chatcluster", NULL};
    char *a = raw_token(JWT_ALG_HS256, K1, NULL, exp_str);
    char *b = raw_token(JWT_ALG_HS256, K1, NULL, nbf_str);

    (void)state;
    assert_int_equal(verify(K1, a, NULL), CHAT_EAUTH); /* exp must be a number */
    assert_int_equal(verify(K1, b, NULL), CHAT_EAUTH); /* nbf present but not a number */
    chat_free(a);
    chat_free(b);
}

static void test_jwt_tampered_payload(void **state)
{
    struct chat_claims c = claims("alice", NOW + 900), m = claims("mallory", NOW + 900);
    char *tok = sign(K1, &c, ISS), *other = sign(K2, &m, ISS);
    char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
    char *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
    char *forged;

    (void)state;
    /* alice's header and signature around mallory's payload */
    forged = chat_xasprintf("%.*s%.*s%s", (int)(d1 - tok), tok, (int)(o2 - o1), o1, d2);
    assert_int_equal(verify(K1, forged, NULL), CHAT_EAUTH);
    chat_free(forged);
    chat_free(other);
    chat_free(tok);
}

static void test_jwt_tampered_signature(void **state)
{
    struct chat_claims c = claims("alice", NOW + 900);
    char *tok = sign(K1, &c, ISS);
    char *sig = strrchr(tok, '.') + 1;
    size_t n = strlen(sig);

    (void)state;
    assert_int_equal(n, 43);                    /* 32 bytes of HMAC-SHA256 */
    sig[n / 2] = sig[n / 2] == 'A' ? 'B' : 'A'; /* a middle char: every bit of it is used */
    assert_int_equal(verify(K1, tok, NULL), CHAT_EAUTH);
    sig[0] = '\0'; /* signature stripped */
    assert_int_equal(verify(K1, tok, NULL), CHAT_EAUTH);
    chat_free(tok);
}

static void test_jwt_missing_exp(void **state)
{
    static const char *const g[] = {"sub=alice", "iss=chatcluster", NULL};
    char *tok = raw_token(JWT_ALG_HS256, K1, NULL, g);

    (void)state;
    assert_int_equal(verify(K1, tok, NULL), CHAT_EAUTH);
    chat_free(tok);
}

static void test_jwt_missing_sub(void **state)
{
    static const char *const none[] = {"#exp=1767229200", "iss=chatcluster", NULL};
    static const char *const empty[] = {"sub=", "#exp=1767229200", "iss=chatcluster", NULL};
    static const char *const num[] = {"#sub=12", "#exp=1767229200", "iss=chatcluster", NULL};
    char *a = raw_token(JWT_ALG_HS256, K1, NULL, none);
    char *b = raw_token(JWT_ALG_HS256, K1, NULL, empty);
    char *c = raw_token(JWT_ALG_HS256, K1, NULL, num);

    (void)state;
    assert_int_equal(verify(K1, a, NULL), CHAT_EAUTH);
    assert_int_equal(verify(K1, b, NULL), CHAT_EAUTH);
    assert_int_equal(verify(K1, c, NULL), CHAT_EAUTH);
    chat_free(a);
    chat_free(b);
    chat_free(c);
}

static void test_jwt_wrong_issuer(void **state)
{
    struct chat_jwt_keyring kr;
    struct chat_claims c = claims("alice", NOW + 900), got;
    char *other = sign(K1, &c, "someone-else");
    char *none = sign(K1, &c, NULL);

    (void)state;
    ring(&kr, K1);
    assert_int_equal(chat_jwt_verify(&kr, other, ISS, NOW, 0, &got), CHAT_EAUTH);
    assert_int_equal(chat_jwt_verify(&kr, none, ISS, NOW, 0, &got), CHAT_EAUTH);
    assert_int_equal(chat_jwt_verify(&kr, none, NULL, NOW, 0, &got), CHAT_OK); /* not checked */
    chat_jwt_keyring_fini(&kr);
    chat_free(other);
    chat_free(none);
}

static void test_jwt_rs256_header_rejected(void **state)
{
    char *rs = hand_token("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", GOOD_PAYLOAD,
                          "c2lnbmF0dXJlLWlzLW5vdC1yZWFsLWluLXRoaXMtZXhhbXBsZQ");
    char *hs512 = hand_token("{\"alg\":\"HS512\"}", GOOD_PAYLOAD, "AAAA");

    (void)state;
    assert_int_equal(verify(K1, rs, NULL), CHAT_EAUTH);
    assert_int_equal(verify(K1, hs512, NULL), CHAT_EAUTH);
    chat_free(rs);
    chat_free(hs512);
}

static void test_jwt_rs_hs_confusion(void **state)
{
    /* the classic attack: HS256 keyed with the server's RSA public key (public knowledge) */
    static const char *const g[] = {"sub=alice", "#exp=1767229200", "iss=chatcluster", NULL};
    char *tok = raw_token(JWT_ALG_HS256, pem_pub, NULL, g);
    char *tok_kid = raw_token(JWT_ALG_HS256, pem_pub, "k1", g);

    (void)state;
    assert_int_equal(verify(K1, tok, NULL), CHAT_EAUTH);
    assert_int_equal(verify(K1, tok_kid, NULL), CHAT_EAUTH);
    chat_free(tok);
    chat_free(tok_kid);
}

static void test_jwt_unknown_kid(void **state)
{
    struct chat_claims c = claims("alice", NOW + 900);
    char *tok = sign("k9:" K1, &c, ISS);
    static const char *const g[] = {"sub=alice", "#exp=1767229200", "iss=chatcluster", NULL};
    char *long_kid = raw_token(JWT_ALG_HS256, K1, "k1-this-kid-is-far-too-long-for-the-ring", g);

    (void)state;
    assert_int_equal(verify("k1:" K1 ",k2:" K2, tok, NULL), CHAT_EAUTH);
    assert_int_equal(verify("k1:" K1, long_kid, NULL), CHAT_EAUTH);
    chat_free(tok);
    chat_free(long_kid);
}

static void test_jwt_key_rotation(void **state)
{
    struct chat_claims c = claims("alice", NOW + 900);
    char *old = sign("k1:" K1, &c, ISS);             /* minted before the rotation */
    char *fresh = sign("k2:" K2 ",k1:" K1, &c, ISS); /* after: k2 signs */

    (void)state;
    assert_int_equal(verify("k2:" K2 ",k1:" K1, old, NULL), CHAT_OK); /* second key verifies */
    assert_int_equal(verify("k2:" K2 ",k1:" K1, fresh, NULL), CHAT_OK);
    assert_int_equal(verify("k1:" K1 ",k2:" K2, fresh, NULL), CHAT_OK);
    assert_int_equal(verify("k1:" K1, fresh, NULL), CHAT_EAUTH); /* k2 unknown here */
    assert_int_equal(verify("k2:" K2, old, NULL), CHAT_EAUTH);   /* k1 retired */
    chat_free(old);
    chat_free(fresh);
}

static void test_jwt_keyring_parse(void **state)
{
    static const char *const bad[] = {
        "",
        "short-secret",
        "0123456789abcdef0123456789abcde", /* 31 bytes */
        "k1:short",
        "k1:" K1 ",k1:" K2,  /* duplicate kid */
        ":" K1,              /* empty kid */
        "k1:" K1 ",garbage", /* entry without a colon */
        "k1:" K1 ",k2:",     /* empty secret */
        "a-kid-of-thirty-two-characters-x:" K1,
        "a:" K1 ",b:" K1 ",c:" K1 ",d:" K1 ",e:" K1 ",f:" K1 ",g:" K1 ",h:" K1 ",i:" K1,
    };
    struct chat_jwt_keyring kr;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (chat_jwt_keyring_parse(bad[i], &kr) != CHAT_EINVAL)
            fail_msg("keyring accepted: %zu", i);
        assert_int_equal(kr.n, 0);
    }
    assert_int_equal(chat_jwt_keyring_parse(NULL, &kr), CHAT_EINVAL);
    assert_int_equal(chat_jwt_keyring_parse("0123456789abcdef0123456789abcdef", &kr), CHAT_OK);
    assert_int_equal(kr.n, 1);
    assert_string_equal(kr.keys[0].kid, "k1");
    assert_int_equal(kr.keys[0].len, 32);
    chat_jwt_keyring_fini(&kr);
    assert_int_equal(chat_jwt_keyring_parse("a:" K1 ",b:" K2, &kr), CHAT_OK);
    assert_int_equal(kr.n, 2);
    assert_string_equal(kr.keys[1].kid, "b");
    assert_string_equal(kr.keys[1].secret, K2);
    chat_jwt_keyring_fini(&kr);
    chat_jwt_keyring_fini(&kr); /* idempotent */
}

static void test_jwt_malformed_tokens(void **state)
{
    static const char *const bad[] = {"",
                                      ".",
                                      "..",
                                      "a.b",
                                      "a.b.c",
                                      "not a token",
                                      "eyJhbGciOiJIUzI1NiJ9",
                                      "eyJhbGciOiJIUzI1NiJ9..",
                                      "!!!.eyJzdWIiOiJhIn0.x"};
    struct chat_claims c = claims("alice", NOW + 900);
    char *tok = sign(K1, &c, ISS);
    char *huge = chat_xmalloc(CHAT_JWT_MAX_TOKEN + 100);
    size_t n = strlen(tok);

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (verify(K1, bad[i], NULL) != CHAT_EAUTH)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(verify(K1, NULL, NULL), CHAT_EAUTH);
    /* a valid token padded past the length cap */
    memcpy(huge, tok, n);
    memset(huge + n, 'A', CHAT_JWT_MAX_TOKEN + 99 - n);
    huge[CHAT_JWT_MAX_TOKEN + 99] = '\0';
    assert_int_equal(verify(K1, huge, NULL), CHAT_EAUTH);
    chat_free(huge);
    chat_free(tok);
}

static void test_jwt_sign_requires_sub(void **state)
{
    struct chat_jwt_keyring kr;
    struct chat_claims c = claims("", NOW + 900);
    char sentinel[] = "x";
    char *tok = sentinel;

    (void)state;
    ring(&kr, K1);
    assert_int_equal(chat_jwt_sign(&kr, &c, ISS, &tok), CHAT_EINVAL);
    assert_null(tok);
    chat_jwt_keyring_fini(&kr);
}

/* The start-up check signs with the first key and verifies; an empty keyring fails it. */
static void test_jwt_selftest(void **state)
{
    struct chat_jwt_keyring kr;

    (void)state;
    ring(&kr, "k2:" K2 ",k1:" K1);
    assert_int_equal(chat_jwt_selftest(&kr), CHAT_OK);
    chat_jwt_keyring_fini(&kr);
    memset(&kr, 0, sizeof(kr));
    assert_int_equal(chat_jwt_selftest(&kr), CHAT_EAUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jwt_valid),
        cmocka_unit_test(test_jwt_claim_defaults),
        cmocka_unit_test(test_jwt_alg_none_rejected),
        cmocka_unit_test(test_jwt_wrong_key),
        cmocka_unit_test(test_jwt_expired),
        cmocka_unit_test(test_jwt_nbf_in_future),
        cmocka_unit_test(test_jwt_bad_claim_types),
        cmocka_unit_test(test_jwt_tampered_payload),
        cmocka_unit_test(test_jwt_tampered_signature),
        cmocka_unit_test(test_jwt_missing_exp),
        cmocka_unit_test(test_jwt_missing_sub),
        cmocka_unit_test(test_jwt_wrong_issuer),
        cmocka_unit_test(test_jwt_rs256_header_rejected),
        cmocka_unit_test(test_jwt_rs_hs_confusion),
        cmocka_unit_test(test_jwt_unknown_kid),
        cmocka_unit_test(test_jwt_key_rotation),
        cmocka_unit_test(test_jwt_keyring_parse),
        cmocka_unit_test(test_jwt_malformed_tokens),
        cmocka_unit_test(test_jwt_sign_requires_sub),
        cmocka_unit_test(test_jwt_check_max_ttl),
        cmocka_unit_test(test_jwt_selftest),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
