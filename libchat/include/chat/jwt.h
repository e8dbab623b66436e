/* chat/jwt.h - HS256 access tokens done safely on top of libjwt 1.10.
 *
 * libjwt 1.10 accepts unsigned tokens with a NULL key, verifies HS256 with an RSA public key and
 * never checks exp. Here: the header is parsed first and anything but alg=HS256 is refused, the
 * key is chosen by kid from a keyring (never empty), exp is required and checked, nbf and iss are
 * checked, sub is required.
 * Thread-safety: a keyring is immutable after chat_jwt_keyring_parse(); functions are reentrant. */
#ifndef CHAT_JWT_H
#define CHAT_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "chat/err.h"

#define CHAT_JWT_MAX_KEYS   8
#define CHAT_JWT_MAX_TOKEN  4096
#define CHAT_JWT_MIN_SECRET 32 /* bytes; shorter HS256 secrets are refused at startup */
/* Seconds of clock skew tolerated on exp/nbf, the same everywhere a token is checked. */
#define CHAT_JWT_LEEWAY_S 5

struct chat_jwt_key {
    char kid[32]; /* key id, matched against the token header's kid */
    char *secret; /* owns */
    size_t len;
};

struct chat_jwt_keyring {
    struct chat_jwt_key keys[CHAT_JWT_MAX_KEYS]; /* keys[0] signs; all verify */
    int n;
};

struct chat_claims {
    char sub[64];          /* user id / name */
    char sid[64];          /* session id ("" when absent) */
    char role[16];         /* "user" when absent */
    char name[96];         /* display name (nickname, <= 20 code points) or "" */
    char room[72];         /* a room grant's room ("" in access tokens) */
    int64_t exp, iat, nbf; /* seconds since the epoch; nbf 0 when absent */
};

/* Parses "SECRET" (kid "k1") or "kid1:SECRET1,kid2:SECRET2" (first one signs).
 * Returns CHAT_OK or CHAT_EINVAL (empty, too short, too many, duplicate kid). */
CHAT_NODISCARD int chat_jwt_keyring_parse(const char *spec, struct chat_jwt_keyring *kr);
void chat_jwt_keyring_fini(struct chat_jwt_keyring *kr);

/* Verifies token (length-capped) at time now (s) with leeway seconds for exp/nbf.
 * iss: required issuer (NULL: not checked).
 * Returns CHAT_OK (claims filled), CHAT_EEXPIRED (valid signature, expired), CHAT_EAUTH (any
 * other failure: malformed, wrong alg, unknown kid, bad signature, missing sub/exp, wrong iss). */
CHAT_NODISCARD int chat_jwt_verify(const struct chat_jwt_keyring *kr,
                                   const char *token,
                                   const char *iss,
                                   int64_t now,
                                   int leeway,
                                   struct chat_claims *out);

/* A token as every service checks it: chat_jwt_verify at the current time with
 * CHAT_JWT_LEEWAY_S, then a token naming a session (sid) that lives longer than max_ttl_s
 * (exp - iat) is refused: no revocation record would outlive it. Returns CHAT_OK,
 * CHAT_EEXPIRED, or CHAT_EAUTH for any other refusal. */
CHAT_NODISCARD int chat_jwt_check(const struct chat_jwt_keyring *kr,
                                  const char *token,
                                  const char *iss,
                                  int max_ttl_s,
                                  struct chat_claims *out);

/* A room grant (chat-api's permission to join a restricted room, proto/README.md section 4
 * `join`): chat_jwt_verify at the current time with CHAT_JWT_LEEWAY_S, then the grant must name
 * room and user (sub) and live at most max_ttl_s (exp - iat). Returns CHAT_OK, CHAT_EEXPIRED, or
 * CHAT_EAUTH for any other refusal (an access token is never a grant). */
CHAT_NODISCARD int chat_jwt_check_grant(const struct chat_jwt_keyring *kr,
                                        const char *token,
                                        const char *iss,
                                        const char *room,
                                        const char *user,
                                        int max_ttl_s,
                                        struct chat_claims *out);

/* Signs claims with kr->keys[0]; *out is a new string (free with chat_free).
 * Returns CHAT_OK or CHAT_EINVAL. */
CHAT_NODISCARD int chat_jwt_sign(const struct chat_jwt_keyring *kr,
                                 const struct chat_claims *c,
                                 const char *iss,
                                 char **out);

/* Signs a throwaway token with kr->keys[0] and verifies it: a start-up check of the keyring and
 * the crypto library under it. It also takes the library's one-time set-up (OpenSSL loads its
 * HMAC on first use: about 1 ms and 150 kB) out of the first client's token check.
 * Returns CHAT_OK, or CHAT_EAUTH when the token does not verify. */
CHAT_NODISCARD int chat_jwt_selftest(const struct chat_jwt_keyring *kr);

#endif
