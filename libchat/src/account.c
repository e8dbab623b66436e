/* account.c - account validators, password hashing (libxcrypt yescrypt), refresh tokens.
 *
 * UTF-8 work reuses chat/utf8.h for validation, code point counting and control characters.
 * White space and bidi controls are matched as their (fixed) UTF-8 byte sequences: in a valid
 * UTF-8 string a complete encoded sequence can only match at a code point boundary, so no
 * second decoder is needed. */
#include "chat/account.h"

#include <errno.h>
#include <string.h>

#include <sys/random.h>
#include <sys/types.h>

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "chat/mem.h"
#include "chat/utf8.h"

#define YESCRYPT_PREFIX   "$y$"
#define YESCRYPT_COST_MIN 1
#define YESCRYPT_COST_MAX 11
#define SALT_RBYTES       16 /* random bytes crypt_gensalt_rn turns into the yescrypt salt */
#define REFRESH_CHARS     43 /* unpadded base64url of CHAT_REFRESH_BYTES */

/* ---- UTF-8 white space and bidi controls ---------------------------------------------------- */

/* Returns the byte length of the Unicode White_Space code point that starts at p (n bytes
 * available), or 0 when there is none. */
static size_t space_len_at(const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    if ((p[0] >= 0x09 && p[0] <= 0x0D) || p[0] == 0x20)
        return 1;
    if (n >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0)) /* NEL, NBSP */
        return 2;
    if (n < 3)
        return 0;
    if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) /* U+1680 ogham space mark */
        return 3;
    if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) /* U+3000 ideographic space */
        return 3;
    if (p[0] != 0xE2)
        return 0;
    if (p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8A) || /* U+2000..U+200A */
                         p[2] == 0xA8 || p[2] == 0xA9 ||   /* U+2028, U+2029 */
                         p[2] == 0xAF))                    /* U+202F */
        return 3;
    if (p[1] == 0x81 && p[2] == 0x9F) /* U+205F */
        return 3;
    return 0;
}

/* Returns the byte length of the White_Space code point that ends s[0..n), or 0. */
static size_t space_len_before(const unsigned char *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        if (space_len_at(s + n - k, k) == k)
            return k;
    }
    return 0;
}

/* True when s[0..n) holds U+202A..U+202E (embeddings, overrides) or U+2066..U+2069 (isolates). */
static bool has_bidi_control(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if (s[i] != 0xE2)
            continue;
        if (s[i + 1] == 0x80 && s[i + 2] >= 0xAA && s[i + 2] <= 0xAE)
            return true;
        if (s[i + 1] == 0x81 && s[i + 2] >= 0xA6 && s[i + 2] <= 0xA9)
            return true;
    }
    return false;
}

/* ---- validators ------------------------------------------------------------------------------ */

bool chat_username_valid(const char *s)
{
    size_t n = 0;

    if (!s)
        return false;
    for (; s[n] != '\0'; n++) {
        char c = s[n];

        if (n == CHAT_USERNAME_MAX)
            return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return n >= CHAT_USERNAME_MIN;
}

int chat_nickname_normalize(const char *in, char *out, size_t cap)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t start = 0, end, sp, cps = 0;
    int rc = CHAT_EINVAL;

    if (!in || !out || cap == 0)
        goto out;
    end = strlen(in);
    if (!chat_utf8_valid(in, end, NULL))
        goto out;
    sp = space_len_at(s, end);
    while (sp > 0) {
        start += sp;
        sp = space_len_at(s + start, end - start);
    }
    sp = space_len_before(s + start, end - start);
    while (sp > 0) {
        end -= sp;
        sp = space_len_before(s + start, end - start);
    }
    s += start;
    end -= start;
    if (!chat_utf8_valid((const char *)s, end, &cps) || cps < CHAT_NICK_MIN || cps > CHAT_NICK_MAX)
        goto out;
    if (chat_utf8_has_control((const char *)s, end, NULL) || has_bidi_control(s, end))
        goto out;
    if (end >= cap)
        goto out;
    memmove(out, s, end); /* in and out may be the same buffer */
    out[end] = '\0';
    rc = CHAT_OK;
out:
    if (rc != CHAT_OK && out && cap > 0)
        out[0] = '\0';
    return rc;
}

bool chat_password_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len, cps = 0;
    bool letter = false, digit = false;

    if (!s)
        return false;
    len = strnlen(s, CHAT_PASSWORD_MAX * 4 + 1);
    if (len > CHAT_PASSWORD_MAX * 4) /* more bytes than 128 code points can take */
        return false;
    if (!chat_utf8_valid(s, len, &cps) || cps < CHAT_PASSWORD_MIN || cps > CHAT_PASSWORD_MAX)
        return false;
    if (chat_utf8_has_control(s, len, NULL))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned c = p[i];

        if (c >= '0' && c <= '9')
            digit = true;
        else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
            letter = true;
        else if (c >= 0xC0 && space_len_at(p + i, len - i) == 0) /* lead byte of a non-space */
            letter = true;
    }
    return letter && digit;
}

/* ---- password hashing ----------------------------------------------------------------------- */

/* Length of s up to and including its third '$' ("$y$j9T$" -> 7), or 0 when it has fewer. */
static size_t params_prefix_len(const char *s)
{
    int dollars = 0;

    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] != '$')
            continue;
        dollars++;
        if (dollars == 3)
            return i + 1;
    }
    return 0;
}

static bool cost_valid(int cost)
{
    return cost >= YESCRYPT_COST_MIN && cost <= YESCRYPT_COST_MAX;
}

int chat_passwd_hash(const char *password, int cost, char *out, size_t cap)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = NULL;
    const char *h;
    size_t n;
    int rc = CHAT_EIO;

    if (out && cap > 0)
        out[0] = '\0';
    if (!password || !out || cap == 0 || !cost_valid(cost))
        return CHAT_EINVAL;
    /* rbytes NULL: libxcrypt draws the salt from the kernel's CSPRNG */
    if (!crypt_gensalt_rn(YESCRYPT_PREFIX, (unsigned long)cost, NULL, 0, setting,
                          (int)sizeof(setting)))
        return CHAT_EIO;
    cd = chat_xcalloc(1, sizeof(*cd));
    h = crypt_rn(password, setting, cd, (int)sizeof(*cd));
    if (!h || h[0] == '*')
        goto out;
    n = strlen(h);
    if (n >= cap || n >= CHAT_PASSWD_HASH_MAX) {
        rc = CHAT_EINVAL;
        goto out;
    }
    memcpy(out, h, n + 1);
    rc = CHAT_OK;
out:
    explicit_bzero(cd, sizeof(*cd)); /* the buffer held the password and its intermediates */
    chat_free(cd);
    return rc;
}

bool chat_passwd_verify(const char *password, const char *hash)
{
    struct crypt_data *cd;
    const char *h;
    size_t n;
    bool ok = false;

    /* '$'-prefixed (modular) hashes only: no traditional DES / BSDI strings, and never a '*'
     * failure token or an empty string */
    if (!password || !hash || hash[0] != '$')
        return false;
    n = strnlen(hash, CHAT_PASSWD_HASH_MAX);
    if (n >= CHAT_PASSWD_HASH_MAX)
        return false;
    cd = chat_xcalloc(1, sizeof(*cd));
    h = crypt_rn(password, hash, cd, (int)sizeof(*cd));
    if (h && h[0] != '*' && strlen(h) == n)
        ok = CRYPTO_memcmp(h, hash, n) == 0;
    explicit_bzero(cd, sizeof(*cd));
    chat_free(cd);
    return ok;
}

int chat_passwd_dummy(int cost, char *out, size_t cap)
{
    char pw[CHAT_REFRESH_MAX];
    int rc;

    if (out && cap > 0)
        out[0] = '\0';
    if (!out || cap == 0 || !cost_valid(cost))
        return CHAT_EINVAL;
    rc = chat_refresh_new(pw, sizeof(pw)); /* 256 random bits nobody knows */
    if (rc == CHAT_OK)
        rc = chat_passwd_hash(pw, cost, out, cap);
    explicit_bzero(pw, sizeof(pw));
    return rc;
}

bool chat_passwd_needs_rehash(const char *hash, int cost)
{
    static const char zeros[SALT_RBYTES]; /* only the params field is used, not the salt */
    char want[CRYPT_GENSALT_OUTPUT_SIZE];
    size_t n;

    if (!hash || strncmp(hash, YESCRYPT_PREFIX, strlen(YESCRYPT_PREFIX)) != 0)
        return true;
    if (!cost_valid(cost) || !crypt_gensalt_rn(YESCRYPT_PREFIX, (unsigned long)cost, zeros,
                                               (int)sizeof(zeros), want, (int)sizeof(want)))
        return true;
    n = params_prefix_len(want);
    return n == 0 || params_prefix_len(hash) != n || strncmp(hash, want, n) != 0;
}

/* ---- refresh tokens -------------------------------------------------------------------------- */

static int random_bytes(unsigned char *p, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return CHAT_EIO;
        got += (size_t)r;
    }
    return CHAT_OK;
}

/* Writes the unpadded base64url text of p[0..n) and a NUL to out (4 * n / 3 + 2 bytes). */
static void base64url(const unsigned char *p, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0, o = 0;

    for (; i + 3 <= n; i += 3) {
        unsigned long v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 | p[i + 2];

        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        out[o++] = abc[p[i] >> 2];
        out[o++] = abc[(p[i] & 3) << 4];
    } else if (n - i == 2) {
        out[o++] = abc[p[i] >> 2];
        out[o++] = abc[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
        out[o++] = abc[(p[i + 1] & 15) << 2];
    }
    out[o] = '\0';
}

int chat_refresh_new(char *out, size_t cap)
{
    unsigned char raw[CHAT_REFRESH_BYTES];
    int rc;

    if (out && cap > 0)
        out[0] = '\0';
    if (!out || cap < REFRESH_CHARS + 1)
        return CHAT_EINVAL;
    rc = random_bytes(raw, sizeof(raw));
    if (rc == CHAT_OK)
        base64url(raw, sizeof(raw), out);
    explicit_bzero(raw, sizeof(raw));
    return rc;
}

void chat_sha256(const char *s, size_t len, unsigned char out[CHAT_SHA256_LEN])
{
    unsigned int n = 0;
    int ok = EVP_Digest(s, len, out, &n, EVP_sha256(), NULL);

    CHAT_ASSERT(ok == 1 && n == CHAT_SHA256_LEN); /* only fails when OpenSSL is broken */
}

void chat_sha1_hex(const char *s, size_t len, char out[CHAT_SHA1_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[20];
    unsigned int n = 0;
    int ok = EVP_Digest(s, len, d, &n, EVP_sha1(), NULL);

    CHAT_ASSERT(ok == 1 && n == sizeof(d)); /* only fails when OpenSSL is broken */
    for (size_t i = 0; i < sizeof(d); i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[CHAT_SHA1_HEX_LEN] = '\0';
}

void chat_hmac_sha256(
    const void *key, size_t key_len, const char *s, size_t len, unsigned char out[CHAT_SHA256_LEN])
{
    static const unsigned char none = 0;
    unsigned int n = 0;
    const unsigned char *r = HMAC(EVP_sha256(), key_len ? key : &none, (int)key_len,
                                  (const unsigned char *)s, len, out, &n);

    CHAT_ASSERT(r != NULL && n == CHAT_SHA256_LEN); /* only fails when OpenSSL is broken */
}
