/* it_util.c - see it_util.h. Test code: plain libc allocation is fine here. */
#include "it_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <strings.h>

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

/* Whether 127.0.0.1:port can be bound now (SO_REUSEADDR, as the services bind). */
static bool port_free(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    if (fd < 0)
        return false;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

int it_free_ports(int n)
{
    static int next = -1; /* successive calls in one test process go on from the last port */

    if (next < 0)
        next = (int)(getpid() % 9000);
    for (int tries = 0; tries < 9000; tries++) {
        int base = 10000 + next, i;
        next = (next + n) % (10000 - n);
        for (i = 0; i < n && port_free(base + i); i++)
            ;
        if (i == n)
            return base;
    }
    fail_msg("no %d free consecutive ports in 10000-19999", n);
    return -1;
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

struct wsc *it_connect_ex(const char *base, const char *token, bool bearer, json_t **hello)
{
    char path[4200], err[256];
    struct wsc *c;
    json_t *h;

    if (token && !bearer)
        snprintf(path, sizeof(path), "/ws?token=%s", token);
    else
        snprintf(path, sizeof(path), "/ws");
    c = wsc_connect(base, path, bearer ? token : NULL, it_timeout(5000), err, sizeof(err));
    if (!c)
        fail_msg("connect %s: %s", base, err);
    h = it_wait_type(c, "hello", it_timeout(5000));
    if (!h)
        fail_msg("no hello from %s", base);
    if (hello)
        *hello = h;
    else
        json_decref(h);
    return c;
}

struct wsc *it_connect(const char *base, const char *token)
{
    return it_connect_ex(base, token, false, NULL);
}

void it_expect_refused_authz(const char *base,
                             const char *path,
                             const char *authz,
                             const char *code)
{
    char err[256];
    int close_code = 0;
    struct wsc *c;
    json_t *e = NULL;
    char *text;

    c = wsc_connect_authz(base, path, authz, it_timeout(5000), err, sizeof(err));
    if (!c)
        fail_msg("connect %s: %s", base, err);
    /* the first frame must be the error: no hello for a refused token */
    while (!e && wsc_recv_text(c, &text, it_timeout(5000), &close_code) > 0) {
        json_t *j = json_loads(text, 0, NULL);
        const char *type = json_string_value(json_object_get(j, "type"));
        wsc_free_text(text);
        if (!type) {
            fail_msg("server sent a frame without a type");
            return; /* not reached */
        }
        if (strcmp(type, "error") != 0) { /* hello included */
            fail_msg("%s token (%s): got %s instead of an error", code, authz ? "header" : "query",
                     type);
        }
        e = j;
    }
    if (!e)
        fail_msg("no error frame for a %s token (close code %d)", code, close_code);
    if (!json_is_string(json_object_get(e, "code")) ||
        strcmp(json_string_value(json_object_get(e, "code")), code) != 0) {
        fail_msg("refused %s token: error code %s", code,
                 json_string_value(json_object_get(e, "code")));
    }
    json_decref(e);
    while (wsc_recv_text(c, &text, it_timeout(5000), &close_code) > 0)
        wsc_free_text(text);
    if (close_code != 4001)
        fail_msg("refused %s token: close code %d, expected 4001", code, close_code);
    wsc_close(c);
}

void it_expect_refused(const char *base, const char *token, bool bearer, const char *code)
{
    char path[4200], authz[4200];

    if (bearer) {
        snprintf(path, sizeof(path), "/ws");
        snprintf(authz, sizeof(authz), "Bearer %s", token);
    } else {
        snprintf(path, sizeof(path), "/ws?token=%s", token);
    }
    it_expect_refused_authz(base, path, bearer ? authz : NULL, code);
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

void it_sh_line(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    FILE *f;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    f = popen(cmd, "r");
    assert_non_null(f);
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    pclose(f);
    out[strcspn(out, "\n")] = '\0';
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

/* Creates an empty temporary file from template (mkstemp); returns its descriptor. */
static int tmp_file(char *tmpl, size_t cap, const char *what)
{
    const char *dir = getenv("TMPDIR");
    int fd;

    snprintf(tmpl, cap, "%s/it_http_%s_XXXXXX", dir && dir[0] ? dir : "/tmp", what);
    fd = mkstemp(tmpl);
    if (fd < 0)
        tmpl[0] = '\0';
    return fd;
}

static int write_all_fd(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The whole file as a new NUL-terminated string (empty when it cannot be read); aborts on OOM. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);

    if (!buf)
        abort();
    while (f) {
        size_t n;
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                abort();
            buf = nb;
            cap *= 2;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        if (n == 0)
            break;
        len += n;
    }
    if (f)
        fclose(f);
    buf[len] = '\0';
    return buf;
}

static bool header_value_ok(const char *v)
{
    return !v || !strpbrk(v, "\r\n");
}

/* Retry-After of the last response in the header dump (curl -D), or -1. */
static int parse_retry_after(const char *hdrs)
{
    const char *p = hdrs, *last = hdrs;
    int ra = -1;

    while ((p = strstr(p, "HTTP/")) != NULL) { /* the last response's block */
        if (p == hdrs || p[-1] == '\n')
            last = p;
        p++;
    }
    for (p = last; p && *p;) {
        if (strncasecmp(p, "retry-after:", 12) == 0)
            ra = (int)strtol(p + 12, NULL, 10);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return ra;
}

/* Writes the request headers of rq to fd, one per line for curl -H @file (no shell quoting
 * involved). Consumes fd. 0 or -1. */
static int write_req_headers(int fd, const struct it_req *rq)
{
    FILE *hf = fdopen(fd, "w");

    if (!hf) {
        close(fd);
        return -1;
    }
    fprintf(hf, "Expect:\n"); /* no 100-continue round trip for larger bodies */
    if (rq->body)
        fprintf(hf, "Content-Type: application/json\n");
    if (rq->bearer)
        fprintf(hf, "Authorization: Bearer %s\n", rq->bearer);
    if (rq->xff)
        fprintf(hf, "X-Forwarded-For: %s\n", rq->xff);
    if (rq->user_agent)
        fprintf(hf, "User-Agent: %s\n", rq->user_agent);
    return fclose(hf) == 0 ? 0 : -1;
}

/* Temporary files of one request: body (when there is one), request headers, response body,
 * response headers. */
enum { TF_BODY, TF_REQ, TF_RESP, TF_HDR, TF_N };

/* Runs curl for rq over the files; returns the HTTP status or -1. */
static int run_curl(const struct it_req *rq, char f[TF_N][256])
{
    char cmd[4096], out[64];
    size_t n;
    int status;
    FILE *p;

    snprintf(cmd, sizeof(cmd),
             "curl -s -g -m %d -X '%s' -H @'%s' -D '%s' -o '%s' -w '%%{http_code}' %s%s%s '%s%s'",
             it_timeout(10000) / 1000, rq->method, f[TF_REQ], f[TF_HDR], f[TF_RESP],
             rq->body ? "--data-binary @'" : "", rq->body ? f[TF_BODY] : "", rq->body ? "'" : "",
             rq->base, rq->path);
    p = popen(cmd, "r");
    if (!p)
        return -1;
    n = fread(out, 1, sizeof(out) - 1, p);
    pclose(p);
    out[n] = '\0';
    status = (int)strtol(out, NULL, 10);
    return status > 0 ? status : -1; /* curl says 000 when there was no response */
}

int it_http_req(const struct it_req *rq, char **resp_body, int *retry_after)
{
    static const char *const what[TF_N] = {"body", "req", "resp", "hdr"};
    char f[TF_N][256];
    int fd[TF_N] = {-1, -1, -1, -1}, status = -1;
    bool ok = true;

    if (resp_body)
        *resp_body = NULL;
    if (retry_after)
        *retry_after = -1;
    if (!header_value_ok(rq->bearer) || !header_value_ok(rq->xff) ||
        !header_value_ok(rq->user_agent) || strchr(rq->method, '\'') || strchr(rq->base, '\'') ||
        strchr(rq->path, '\''))
        return -1;
    for (int i = 0; i < TF_N; i++) {
        f[i][0] = '\0';
        fd[i] = i == TF_BODY && !rq->body ? -1 : tmp_file(f[i], sizeof(f[i]), what[i]);
        if (fd[i] < 0 && (i != TF_BODY || rq->body))
            ok = false;
    }
    if (ok && rq->body) {
        size_t n = rq->body_len ? rq->body_len : strlen(rq->body);
        ok = write_all_fd(fd[TF_BODY], rq->body, n) == 0;
    }
    if (ok) {
        ok = write_req_headers(fd[TF_REQ], rq) == 0;
        fd[TF_REQ] = -1; /* consumed */
    }
    if (ok)
        status = run_curl(rq, f);
    if (status > 0 && resp_body)
        *resp_body = slurp(f[TF_RESP]);
    if (status > 0 && retry_after) {
        char *h = slurp(f[TF_HDR]);
        *retry_after = parse_retry_after(h);
        free(h);
    }
    for (int i = 0; i < TF_N; i++) {
        if (fd[i] >= 0)
            close(fd[i]);
        if (f[i][0])
            unlink(f[i]);
    }
    return status;
}

int it_http(const char *method,
            const char *base,
            const char *path,
            const char *bearer,
            const char *json_body,
            const char *xff,
            char **resp_body,
            int *retry_after)
{
    struct it_req rq = {.method = method,
                        .base = base,
                        .path = path,
                        .bearer = bearer,
                        .body = json_body,
                        .xff = xff};
    return it_http_req(&rq, resp_body, retry_after);
}

long long it_metric(const char *base, const char *name)
{
    char *body = NULL;
    long long v = -1;
    size_t n = strlen(name);

    if (it_http_get(base, "/metrics", &body) == 200 && body) {
        for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
            if (strncmp(p, name, n) == 0 && p[n] == ' ') {
                v = strtoll(p + n + 1, NULL, 10);
                break;
            }
        }
    }
    free(body);
    return v;
}
