#include "chat/jwt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>

#include "chat/mem.h"

int chat_jwt_keyring_parse(const char *spec, struct chat_jwt_keyring *kr)
{
    const char *p = spec;
    int rc = CHAT_EINVAL;

    memset(kr, 0, sizeof(*kr));
    if (!spec || !*spec)
        return CHAT_EINVAL;
    if (!strchr(spec, ':')) {
        if (strlen(spec) < CHAT_JWT_MIN_SECRET)
            return CHAT_EINVAL;
        strcpy(kr->keys[0].kid, "k1"); /* NOLINT: fixed literal into 32 bytes */
        kr->keys[0].secret = chat_xstrdup(spec);
        kr->keys[0].len = strlen(spec);
        kr->n = 1;
        return CHAT_OK;
    }
    while (*p) {
        const char *colon = strchr(p, ':');
        const char *comma;
        size_t kidlen, seclen;

        if (!colon || kr->n == CHAT_JWT_MAX_KEYS)
            goto out;
        comma = strchr(colon, ',');
        if (!comma)
            comma = colon + strlen(colon);
        kidlen = (size_t)(colon - p);
        seclen = (size_t)(comma - colon - 1);
        if (kidlen == 0 || kidlen >= sizeof(kr->keys[0].kid) || seclen < CHAT_JWT_MIN_SECRET)
            goto out;
        for (int i = 0; i < kr->n; i++)
            if (strlen(kr->keys[i].kid) == kidlen && memcmp(kr->keys[i].kid, p, kidlen) == 0)
                goto out;
        memcpy(kr->keys[kr->n].kid, p, kidlen);
        kr->keys[kr->n].secret = chat_xstrndup(colon + 1, seclen);
        kr->keys[kr->n].len = seclen;
        kr->n++;
        p = *comma ? comma + 1 : comma;
    }
    rc = kr->n > 0 ? CHAT_OK : CHAT_EINVAL;
out:
    if (rc != CHAT_OK)
        chat_jwt_keyring_fini(kr);
    return rc;
}

void chat_jwt_keyring_fini(struct chat_jwt_keyring *kr)
{
    for (int i = 0; i < CHAT_JWT_MAX_KEYS; i++) {
        if (kr->keys[i].secret)
            memset(kr->keys[i].secret, 0, kr->keys[i].len);
        CHAT_FREE(kr->keys[i].secret);
    }
    kr->n = 0;
}

/* base64url-decodes src[0..n) into out (cap bytes); returns the length or -1. */
static long b64url_decode(const char *src, size_t n, unsigned char *out, size_t cap)
{
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)src[i], v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (unsigned char)((acc >> bits) & 0xFF);
        }
    }
    return (long)o;
}

/* Reads alg and kid from the token's header; kid may be "" when absent. */
static int parse_header(const char *token, char *kid, size_t kidcap)
{
    unsigned char raw[512];
    const char *dot = strchr(token, '.');
    const char *alg = NULL, *k = NULL;
    json_t *h;
    long n;
    int rc = CHAT_EAUTH;

    if (!dot)
        return CHAT_EAUTH;
    n = b64url_decode(token, (size_t)(dot - token), raw, sizeof(raw));
    if (n <= 0)
        return CHAT_EAUTH;
    h = json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (!h || json_unpack(h, "{s:s, s?s}", "alg", &alg, "kid", &k) != 0)
        goto out;
    if (strcmp(alg, "HS256") != 0)
        goto out;
    if (k && strlen(k) >= kidcap)
        goto out;
    strcpy(kid, k ? k : ""); /* NOLINT: length checked above */
    rc = CHAT_OK;
out:
    json_decref(h);
    return rc;
}

static int copy_grant(jwt_t *j, const char *name, char *dst, size_t cap, const char *def)
{
    const char *v = jwt_get_grant(j, name);
    if (!v)
        v = def;
    if (!v || strlen(v) >= cap)
        return CHAT_EAUTH;
    strcpy(dst, v); /* NOLINT: length checked above */
    return CHAT_OK;
}

/* Integer claim: CHAT_OK (*v set), CHAT_ENOENT (absent, *v = 0) or CHAT_EAUTH (present but not an
 * integer). libjwt 1.10's jwt_get_grant_int() returns 0 without setting errno for strings,
 * floats and booleans, so the claim's JSON is type-checked here. */
static int grant_int(jwt_t *j, const char *name, int64_t *v)
{
    char *js = jwt_get_grants_json(j, name); /* NULL when absent */
    json_t *val;
    int rc = CHAT_EAUTH;

    *v = 0;
    if (!js)
        return CHAT_ENOENT;
    val = json_loads(js, JSON_DECODE_ANY, NULL);
    if (json_is_integer(val)) {
        *v = json_integer_value(val);
        rc = CHAT_OK;
    }
    json_decref(val);
    chat_free(js); /* allocated by jansson's default allocator */
    return rc;
}

int chat_jwt_verify(const struct chat_jwt_keyring *kr,
                    const char *token,
                    const char *iss,
                    int64_t now,
                    int leeway,
                    struct chat_claims *out)
{
    const struct chat_jwt_key *key = NULL;
    char kid[32];
    jwt_t *j = NULL;
    int rc = CHAT_EAUTH;

    memset(out, 0, sizeof(*out));
    if (!token || kr->n == 0 || strnlen(token, CHAT_JWT_MAX_TOKEN + 1) > CHAT_JWT_MAX_TOKEN)
        return CHAT_EAUTH;
    if (parse_header(token, kid, sizeof(kid)) != CHAT_OK)
        return CHAT_EAUTH;
    if (!kid[0]) {
        key = &kr->keys[0];
    } else {
        for (int i = 0; i < kr->n; i++)
            if (strcmp(kr->keys[i].kid, kid) == 0)
                key = &kr->keys[i];
    }
    if (!key || key->len == 0)
        return CHAT_EAUTH;
    if (jwt_decode(&j, token, (const unsigned char *)key->secret, (int)key->len) != 0 || !j)
        goto out;
    if (jwt_get_alg(j) != JWT_ALG_HS256)
        goto out;
    if (grant_int(j, "exp", &out->exp) != CHAT_OK) /* required */
        goto out;
    /* nbf and iat are optional, but present and not an integer is never treated as absent */
    if (grant_int(j, "nbf", &out->nbf) == CHAT_EAUTH ||
        grant_int(j, "iat", &out->iat) == CHAT_EAUTH)
        goto out;
    if (iss) {
        const char *ti = jwt_get_grant(j, "iss");
        if (!ti || strcmp(ti, iss) != 0)
            goto out;
    }
    if (copy_grant(j, "sub", out->sub, sizeof(out->sub), NULL) != CHAT_OK || !out->sub[0] ||
        copy_grant(j, "sid", out->sid, sizeof(out->sid), "") != CHAT_OK ||
        copy_grant(j, "role", out->role, sizeof(out->role), "user") != CHAT_OK ||
        copy_grant(j, "name", out->name, sizeof(out->name), "") != CHAT_OK ||
        copy_grant(j, "room", out->room, sizeof(out->room), "") != CHAT_OK)
        goto out;
    if (out->nbf && now + leeway < out->nbf)
        goto out;
    if (now - leeway >= out->exp) {
        rc = CHAT_EEXPIRED;
        goto out;
    }
    rc = CHAT_OK;
out:
    jwt_free(j);
    return rc;
}

int chat_jwt_sign(const struct chat_jwt_keyring *kr,
                  const struct chat_claims *c,
                  const char *iss,
                  char **out)
{
    const struct chat_jwt_key *key = &kr->keys[0];
    jwt_t *j = NULL;
    char *s = NULL;
    int rc = CHAT_EINVAL;

    *out = NULL;
    if (kr->n == 0 || !c->sub[0])
        return CHAT_EINVAL;
    if (jwt_new(&j) != 0)
        return CHAT_ENOMEM;
    if (jwt_add_grant(j, "sub", c->sub) || jwt_add_grant_int(j, "exp", (long)c->exp) ||
        jwt_add_grant_int(j, "iat", (long)c->iat))
        goto out;
    if (c->nbf && jwt_add_grant_int(j, "nbf", (long)c->nbf))
        goto out;
    if ((c->sid[0] && jwt_add_grant(j, "sid", c->sid)) ||
        (c->role[0] && jwt_add_grant(j, "role", c->role)) ||
        (c->name[0] && jwt_add_grant(j, "name", c->name)) ||
        (c->room[0] && jwt_add_grant(j, "room", c->room)) || (iss && jwt_add_grant(j, "iss", iss)))
        goto out;
    if (jwt_add_header(j, "kid", key->kid))
        goto out;
    if (jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)key->secret, (int)key->len))
        goto out;
    s = jwt_encode_str(j);
    if (!s)
        goto out;
    *out = chat_xstrdup(s);
    rc = CHAT_OK;
out:
    chat_free(s); /* libjwt allocates with the system allocator */
    jwt_free(j);
    return rc;
}

int chat_jwt_check(const struct chat_jwt_keyring *kr,
                   const char *token,
                   const char *iss,
                   int max_ttl_s,
                   struct chat_claims *out)
{
    int rc = chat_jwt_verify(kr, token, iss, (int64_t)time(NULL), CHAT_JWT_LEEWAY_S, out);

    if (rc != CHAT_OK)
        return rc == CHAT_EEXPIRED ? CHAT_EEXPIRED : CHAT_EAUTH;
    if (out->room[0] || (out->sid[0] && out->exp - out->iat > max_ttl_s))
        return CHAT_EAUTH;
    return CHAT_OK;
}

int chat_jwt_check_grant(const struct chat_jwt_keyring *kr,
                         const char *token,
                         const char *iss,
                         const char *room,
                         const char *user,
                         int max_ttl_s,
                         struct chat_claims *out)
{
    int rc = chat_jwt_verify(kr, token, iss, (int64_t)time(NULL), CHAT_JWT_LEEWAY_S, out);

    if (rc != CHAT_OK)
        return rc == CHAT_EEXPIRED ? CHAT_EEXPIRED : CHAT_EAUTH;
    if (strcmp(out->room, room) != 0 || strcmp(out->sub, user) != 0 ||
        out->exp - out->iat > max_ttl_s)
        return CHAT_EAUTH;
    return CHAT_OK;
}

int chat_jwt_selftest(const struct chat_jwt_keyring *kr)
{
    struct chat_claims c = {0}, out;
    char *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    int rc;

    snprintf(c.sub, sizeof(c.sub), "selftest");
    c.iat = now;
    c.exp = now + 60;
    if (chat_jwt_sign(kr, &c, NULL, &tok) != CHAT_OK)
        return CHAT_EAUTH;
    rc = chat_jwt_verify(kr, tok, NULL, now, 0, &out);
    chat_free(tok);
    return rc == CHAT_OK && strcmp(out.sub, "selftest") == 0 ? CHAT_OK : CHAT_EAUTH;
}
