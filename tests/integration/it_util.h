/* it_util.h - helpers for integration tests against a running cluster (see
 * fixtures/cluster.sh): the cluster's env file, tokens, connecting, and waiting for frames of a
 * type while skipping unrelated ones (presence frames arrive at any time).
 * Every wait is bounded; timeouts scale with CHAT_TEST_TIMEOUT_MULT. */
#ifndef IT_UTIL_H
#define IT_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "wsc.h"

/* Loads $CHAT_TEST_ENV (a cluster.env file). Aborts the test run when missing. */
void it_env_load(void);
/* Value of key from the env file (or the process environment); aborts when absent. */
const char *it_env(const char *key);
int it_timeout(int ms); /* ms scaled by CHAT_TEST_TIMEOUT_MULT */
/* The first of n consecutive loopback ports that nothing holds now, for a service a test starts
 * itself. Taken from 10000-19999: below the cluster's (20000-31999, scripts/lib/cluster.sh) and
 * the kernel's ephemeral range (32768 up), so neither can take it before the service binds. */
int it_free_ports(int n);

/* Returns a new token (free with free()) for user, valid ttl seconds (negative: expired). */
char *it_token(const char *user, int ttl);

/* Connects to base/ws, optionally with a token (query string), and waits for hello.
 * Aborts the test on failure. */
struct wsc *it_connect(const char *base, const char *token);
/* Sends a JSON text built with json_pack format (aborts on failure). */
void it_send(struct wsc *c, const char *fmt, ...);
/* Waits for the next frame whose "type" equals type (others skipped); NULL on timeout/close. */
json_t *it_wait_type(struct wsc *c, const char *type, int timeout_ms);
/* Waits for a frame of type whose string field key equals val. */
json_t *
it_wait_field(struct wsc *c, const char *type, const char *key, const char *val, int timeout_ms);
/* Joins room and waits for "joined". */
void it_join(struct wsc *c, const char *room);
/* ping -> pong round trip: proves the connection is still usable. */
bool it_ping(struct wsc *c);
/* Runs a shell command line; returns its exit status. */
int it_sh(const char *fmt, ...);
/* Runs a shell command line; out gets the first line it prints (no newline; empty when none). */
void it_sh_line(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* HTTP GET base+path; returns the status and the body (free()) in *body when given. */
int it_http_get(const char *base, const char *path, char **body);
/* The value of the line "name value" of base's /metrics (a counter or gauge without labels); -1
 * when absent or when base does not answer 200. */
long long it_metric(const char *base, const char *name);

/* One REST request for it_http_req(). Every string is borrowed; header values (bearer, xff,
 * user_agent) must not hold CR or LF. */
struct it_req {
    const char *method;     /* "GET", "POST", ... */
    const char *base;       /* "http://127.0.0.1:PORT" */
    const char *path;       /* "/api/v1/...", with the query string */
    const char *bearer;     /* sent as "Authorization: Bearer <bearer>", or NULL */
    const char *body;       /* request body, sent byte for byte as application/json, or NULL */
    size_t body_len;        /* bytes of body; 0: strlen(body) */
    const char *xff;        /* X-Forwarded-For value, or NULL */
    const char *user_agent; /* User-Agent value, or NULL (curl's own) */
};
/* Performs rq with curl (through popen). The body, the request headers and the response travel
 * through mkstemp files, so any bytes survive (quotes, backslashes, UTF-8). Returns the HTTP
 * status, or -1 when there was no response. *resp_body (when given): the response body, a new
 * NUL-terminated string (free()); *retry_after (when given): the Retry-After header in seconds,
 * -1 when absent. */
int it_http_req(const struct it_req *rq, char **resp_body, int *retry_after);
/* it_http_req() without a User-Agent of its own; json_body and xff may be NULL. */
int it_http(const char *method,
            const char *base,
            const char *path,
            const char *bearer,
            const char *json_body,
            const char *xff,
            char **resp_body,
            int *retry_after);

/* Connects to base/ws presenting token (NULL: anonymous) in the header "Authorization: Bearer"
 * (bearer true) or as the query parameter token, and waits for hello, returned in *hello when
 * hello is not NULL (json_decref it), else dropped. Aborts the test on failure. */
struct wsc *it_connect_ex(const char *base, const char *token, bool bearer, json_t **hello);
/* Expects the handshake with token (header or query as in it_connect_ex) to be refused: an error
 * frame with code and no hello, then close code 4001. Aborts the test otherwise. */
void it_expect_refused(const char *base, const char *token, bool bearer, const char *code);
/* The same for a handshake to path with the whole Authorization header value authz (NULL: none). */
void it_expect_refused_authz(const char *base,
                             const char *path,
                             const char *authz,
                             const char *code);

#endif
