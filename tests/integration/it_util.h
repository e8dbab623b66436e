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
/* HTTP GET base+path; returns the status and the body (free()) in *body when given. */
int it_http_get(const char *base, const char *path, char **body);

#endif
