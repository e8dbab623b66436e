/* chat/account.h - account rules and credentials: the validators for usernames, nicknames and
 * passwords (the rules clients get from GET /api/v1/config), password hashing with libxcrypt,
 * and opaque refresh tokens (random, stored only as their SHA-256).
 * Thread-safety: every function is reentrant (hashing uses crypt_rn with a private buffer), so
 * they run on worker threads. */
#ifndef CHAT_ACCOUNT_H
#define CHAT_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "chat/err.h"

#define CHAT_USERNAME_MIN    4
#define CHAT_USERNAME_MAX    20 /* bytes = characters: [A-Za-z0-9_] only */
#define CHAT_USERNAME_RE     "^[A-Za-z0-9_]{4,20}$"
#define CHAT_NICK_MIN        2 /* code points, after trimming */
#define CHAT_NICK_MAX        20
#define CHAT_NICK_BYTES      (CHAT_NICK_MAX * 4 + 1) /* buffer for a normalized nickname */
#define CHAT_PASSWORD_MIN    8                       /* code points */
#define CHAT_PASSWORD_MAX    128 /* code points; bounds the hashing work an attacker can ask */
#define CHAT_PASSWD_HASH_MAX 256 /* bytes of a crypt(3) hash string, NUL included */
#define CHAT_REFRESH_BYTES   32  /* random bytes of a refresh token */
#define CHAT_REFRESH_MAX     64  /* its base64url text (43 chars) + NUL, rounded up */
#define CHAT_SHA256_LEN      32
#define CHAT_SHA1_HEX_LEN    40

/* True when s is 4-20 characters of [A-Za-z0-9_]. */
bool chat_username_valid(const char *s);

/* Trims leading and trailing white space (ASCII and Unicode White_Space) from the NUL-terminated
 * UTF-8 string in and checks the rest: valid UTF-8, 2-20 code points, no control characters
 * (U+0000-U+001F, U+007F-U+009F), no bidi overrides or isolates (U+202A-U+202E,
 * U+2066-U+2069). On success writes the trimmed nickname to out (cap >= CHAT_NICK_BYTES is
 * always enough; in and out may be the same buffer) and returns CHAT_OK; otherwise CHAT_EINVAL
 * (out set to ""). */
CHAT_NODISCARD int chat_nickname_normalize(const char *in, char *out, size_t cap);

/* True when s is valid UTF-8 of 8-128 code points without control characters, holding at least
 * one letter (A-Za-z, or any code point >= U+0080 that is not white space) and one digit 0-9. */
bool chat_password_valid(const char *s);

/* Hashes password with a fresh random salt: yescrypt ("$y$") at cost (1-11; the libxcrypt
 * default is 5). Writes the crypt string (at most CHAT_PASSWD_HASH_MAX bytes with the NUL) to
 * out. Returns CHAT_OK, CHAT_EINVAL (bad cost, cap too small) or CHAT_EIO (libxcrypt failed). */
CHAT_NODISCARD int chat_passwd_hash(const char *password, int cost, char *out, size_t cap);

/* True when password matches hash (a crypt string). The comparison of the computed and the
 * stored hash is constant-time. A malformed or unsupported hash (anything but a "$id$" string
 * libxcrypt accepts; no traditional DES) never matches. */
bool chat_passwd_verify(const char *password, const char *hash);

/* A hash of a random password at cost, computed once at startup: verifying against it costs the
 * same as verifying a real user's password, so a login for an unknown user takes as long as
 * one for a known user. Returns CHAT_OK or like chat_passwd_hash. */
CHAT_NODISCARD int chat_passwd_dummy(int cost, char *out, size_t cap);

/* True when hash was made with another algorithm or cost than (yescrypt, cost): the caller may
 * store a fresh hash after a successful login. */
bool chat_passwd_needs_rehash(const char *hash, int cost);

/* Writes a new refresh token: CHAT_REFRESH_BYTES from the kernel's CSPRNG (getrandom), in
 * unpadded base64url, to out (cap >= CHAT_REFRESH_MAX). Returns CHAT_OK, CHAT_EINVAL (out NULL
 * or cap below 44) or CHAT_EIO. */
CHAT_NODISCARD int chat_refresh_new(char *out, size_t cap);

/* SHA-256 of the len bytes at s (a token): what the database stores instead of the token. */
void chat_sha256(const char *s, size_t len, unsigned char out[CHAT_SHA256_LEN]);
/* The SHA-1 of s[0..len) in lowercase hex: the name Redis gives a Lua script (EVALSHA). */
void chat_sha1_hex(const char *s, size_t len, char out[CHAT_SHA1_HEX_LEN + 1]);

/* HMAC-SHA256 of the len bytes at s under the key_len bytes at key (key_len may be 0): a keyed
 * hash, e.g. of an unknown username kept for the login history without keeping the name. */
void chat_hmac_sha256(
    const void *key, size_t key_len, const char *s, size_t len, unsigned char out[CHAT_SHA256_LEN]);

#endif
