/* it_util.c - see it_util.h. Test code: plain libc allocation is fine here. */
#include "it_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "chat/jwt.h"

#define MAX_KEYS 128

static char *keys[MAX_KEYS], *vals[MAX_KEYS];
static int nkeys;

void it_env_load(void)
{
    const char *path = getenv("CHAT_TEST_ENV");
    char line[4096];
    FILE *f;

    if (!path) {
        fprintf(stderr, "CHAT_TEST_ENV is not set (path of a cluster.env)\n");
        exit(1);
    }
    f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    while (fgets(line, sizeof(line), f) && nkeys < MAX_KEYS) {
        char *eq = strchr(line, '=');
        if (!eq || line[0] == '#')
            continue;
        *eq = '\0';
        eq[strcspn(eq + 1, "\r\n") + 1] = '\0';
        keys[nkeys] = strdup(line);
        vals[nkeys] = strdup(eq + 1);
        nkeys++;
    }
    fclose(f);
}

const char *it_env(const char *key)
{
    for (int i = 0; i < nkeys; i++)
        if (strcmp(keys[i], key) == 0)
            return vals[i];
    if (getenv(key))
        return getenv(key);
    fail_msg("missing %s in the cluster env", key);
    return NULL;
}

int it_timeout(int ms)
{
    const char *m = getenv("CHAT_TEST_TIMEOUT_MULT");
    int mult = m ? (int)strtol(m, NULL, 10) : 1;
    return ms * (mult > 0 ? mult : 1);
}

char *it_token(const char *user, int ttl)
{
    struct chat_jwt_keyring kr;
    struct chat_claims cl;
    char *tok = NULL, *out;

    assert_int_equal(chat_jwt_keyring_parse(it_env("CHAT_JWT_KEYS"), &kr), 0);
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "%s", user);
    snprintf(cl.name, sizeof(cl.name), "%s", user);
    cl.iat = (int64_t)time(NULL) - (ttl < 0 ? 3600 : 0);
    cl.exp = (int64_t)time(NULL) + ttl;
    assert_int_equal(chat_jwt_sign(&kr, &cl, it_env("CHAT_JWT_ISSUER"), &tok), 0);
    chat_jwt_keyring_fini(&kr);
    out = strdup(tok);
    free(tok); /* chat_free == free */
    return out;
}

struct wsc *it_connect(const char *base, const char *token)
{
    char path[4200], err[256];
    struct wsc *c;
    json_t *hello;

    if (token)
        snprintf(path, sizeof(path), "/ws?token=%s", token);
    else
        snprintf(path, sizeof(path), "/ws");
    c = wsc_connect(base, path, NULL, it_timeout(5000), err, sizeof(err));
    if (!c)
        fail_msg("connect %s: %s", base, err);
    hello = it_wait_type(c, "hello", it_timeout(5000));
    if (!hello)
        fail_msg("no hello from %s", base);
    json_decref(hello);
    return c;
}

void it_send(struct wsc *c, const char *fmt, ...)
{
    va_list ap;
    json_t *j;
    char *s;

    va_start(ap, fmt);
    j = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    assert_non_null(j);
    s = json_dumps(j, JSON_COMPACT);
    assert_int_equal(wsc_send_text(c, s), 0);
    free(s);
    json_decref(j);
}

json_t *
it_wait_field(struct wsc *c, const char *type, const char *key, const char *val, int timeout_ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *text;
        int left, r;
        json_t *j;

        clock_gettime(CLOCK_MONOTONIC, &t1);
        left = timeout_ms -
               (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return NULL;
        r = wsc_recv_text(c, &text, left, NULL);
        if (r <= 0)
            return NULL;
        j = json_loads(text, 0, NULL);
        wsc_free_text(text);
        if (!j)
            fail_msg("server sent invalid JSON");
        if (strcmp(json_string_value(json_object_get(j, "type")), type) == 0 &&
            (!key || (json_is_string(json_object_get(j, key)) &&
                      strcmp(json_string_value(json_object_get(j, key)), val) == 0)))
            return j;
        json_decref(j);
    }
}

json_t *it_wait_type(struct wsc *c, const char *type, int timeout_ms)
{
    return it_wait_field(c, type, NULL, NULL, timeout_ms);
}

void it_join(struct wsc *c, const char *room)
{
    json_t *j;
    it_send(c, "{s:s, s:s}", "type", "join", "room", room);
    j = it_wait_field(c, "joined", "room", room, it_timeout(5000));
    if (!j)
        fail_msg("no joined for %s", room);
    json_decref(j);
}

bool it_ping(struct wsc *c)
{
    json_t *j;
    it_send(c, "{s:s, s:s}", "type", "ping", "ref", "p");
    j = it_wait_field(c, "pong", "ref", "p", it_timeout(5000));
    json_decref(j);
    return j != NULL;
}

int it_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int it_http_get(const char *base, const char *path, char **body)
{
    char cmd[1024], buf[65536];
    int status = -1;
    size_t n;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "curl -s -m 5 -w '\\n%%{http_code}' '%s%s'", base, path);
    p = popen(cmd, "r");
    if (!p)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, p);
    pclose(p);
    buf[n] = '\0';
    char *nl = strrchr(buf, '\n');
    if (nl) {
        status = (int)strtol(nl + 1, NULL, 10);
        *nl = '\0';
    }
    if (body)
        *body = strdup(buf);
    return status;
}
