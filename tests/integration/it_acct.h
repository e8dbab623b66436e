/* it_acct.h - helpers for the account and session tests (it_auth.c, it_sessions.c): fake
 * clients (an X-Forwarded-For address each, so per-IP limits of one test never hit another),
 * unique names, JSON paths, JWT parts, REST calls that check status and error codes, and
 * WebSocket waits that fail on a forbidden frame.
 * Every helper that checks something aborts the test (cmocka fail) on a mismatch. JSON results
 * are new references (json_decref); strings from it_jstr are borrowed from their object. */
#ifndef IT_ACCT_H
#define IT_ACCT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "it_util.h"

#define GW1 it_env("CHAT_TEST_GW1_URL")
#define GW2 it_env("CHAT_TEST_GW2_URL")
#define LB  it_env("CHAT_TEST_LB_URL")
/* the chat-api replicas (every REST endpoint but REST send) */
#define API1 it_env("CHAT_TEST_API1_URL")
#define API2 it_env("CHAT_TEST_API2_URL")

#define PW       "Secret_pass1"
#define PW2      "N3w-secret-pass"
#define PW_WRONG "Wrong_pass9"

/* A fake client: the address sent as X-Forwarded-For and an optional User-Agent. */
struct it_client {
    char ip[32];
    const char *ua; /* NULL: curl's own */
};

long long it_mono_ms(void);
long long it_wall_ms(void); /* ms since the epoch */
void it_sleep_ms(long long ms);
/* A new client address in net ("203.0.113"), never handed out before by this process. */
void it_client_new(struct it_client *cl, const char *net);
/* A username unique to this run: prefix (<= 6 chars) + pid + counter, <= 20 characters. */
void it_name_new(char *buf, size_t cap, const char *prefix);
/* A room id unique to this run: prefix-pid-counter. */
void it_room_new(char *buf, size_t cap, const char *prefix);
/* dst = src with the case of every ASCII letter swapped. */
void it_swap_case(char *dst, size_t cap, const char *src);
size_t it_utf8_len(const char *s); /* code points of valid UTF-8 */
bool it_is_decimal(const char *s); /* non-empty, digits only */
/* A setting of the test cluster from the environment (CMakeLists.txt), else dflt. */
int it_env_int(const char *key, int dflt);

/* Member of j at a dotted path ("user.id"), or NULL (borrowed). */
json_t *it_jget(const json_t *j, const char *path);
const char *it_jstr(const json_t *j, const char *path); /* fails unless a string */
long long it_jint(const json_t *j, const char *path);   /* fails unless an integer */

/* Unpadded base64url of n bytes: a new string (free()). */
char *it_b64url(const unsigned char *p, size_t n);
/* Part idx of a JWT (0 header, 1 claims) as JSON. */
json_t *it_jwt_part(const char *tok, int idx);

/* One REST call from cl with a raw body (NULL: none; body_len 0: strlen). Returns the status;
 * *out the answer as JSON (an answer that is not JSON fails the test); *retry_after (when
 * given) the Retry-After header or -1. */
int it_api_raw(const char *base,
               const char *method,
               const char *path,
               const char *bearer,
               const struct it_client *cl,
               const char *body,
               size_t body_len,
               json_t **out,
               int *retry_after);
/* it_api_raw() with a JSON body (consumed; NULL: none, sent as Content-Length: 0 unless GET). */
int it_api(const char *base,
           const char *method,
           const char *path,
           const char *bearer,
           const struct it_client *cl,
           json_t *body,
           json_t **out,
           int *retry_after);
/* A call that must answer want; returns the answer. */
json_t *it_api_ok(int want,
                  const char *base,
                  const char *method,
                  const char *path,
                  const char *bearer,
                  const struct it_client *cl,
                  json_t *body);
/* Checks st and out: want and {"error":{"code":code,"message":"..."}}. what names the call. */
void it_check_error(int st, json_t *out, int want, const char *code, const char *what);
/* A call that must fail with want and code; returns Retry-After (-1: absent). */
int it_api_err(int want,
               const char *code,
               const char *base,
               const char *method,
               const char *path,
               const char *bearer,
               const struct it_client *cl,
               json_t *body);

json_t *it_creds(const char *user, const char *pw); /* {"username","password"} */
/* POST /auth/register (nick NULL: none sent) -> 201; returns the session object. */
json_t *it_register(const char *base,
                    const struct it_client *cl,
                    const char *user,
                    const char *pw,
                    const char *nick);
void it_register_fails(const struct it_client *cl, json_t *body, const char *code); /* 400 */
/* POST /auth/login -> 200; returns the session object. */
json_t *it_login(const char *base, const struct it_client *cl, const char *user, const char *pw);
void it_login_fails(const char *base, const struct it_client *cl, const char *user, const char *pw);
json_t *it_refresh_ok(const char *base, const struct it_client *cl, const char *rt);
void it_refresh_fails(const char *base,
                      const struct it_client *cl,
                      const char *rt,
                      const char *code);      /* 401 code */
const char *it_access(const json_t *session); /* its access_token */
/* GET /users/me -> 200 (returns the user object), or 401 code. */
json_t *it_me(const char *base, const struct it_client *cl, const char *token);
void it_me_refused(const char *base,
                   const struct it_client *cl,
                   const char *token,
                   const char *code);
/* A user object with every field and type; username and nickname as given, role user. */
void it_check_user(const json_t *u, const char *username, const char *nick);
/* A session object of username / nick, and the claims of its access token. */
void it_check_session(const json_t *s, const char *username, const char *nick);

/* Waits up to timeout_ms for a frame of type whose string field key (when given) equals val;
 * a frame of type forbid (when given) on the way fails the test. NULL on timeout or close. */
json_t *it_wait_frame(struct wsc *c,
                      const char *type,
                      const char *key,
                      const char *val,
                      const char *forbid,
                      int timeout_ms);
/* Reads for ms: no frame of type forbid may come and the connection must stay open. */
void it_expect_quiet(struct wsc *c, const char *forbid, long long ms);
/* The ack or error answering client_msg_id cmid (other frames skipped; forbid as above). */
json_t *it_reply_to(struct wsc *c, const char *cmid, const char *forbid);
/* Sends text to room as cmid: it must be acked; returns the ack (id, seq, ts; json_decref it). */
json_t *it_send_acked(
    struct wsc *c, const char *room, const char *text, const char *cmid, const char *forbid);
/* Sends text to room as cmid: it must be acked. */
void it_expect_sent(
    struct wsc *c, const char *room, const char *text, const char *cmid, const char *forbid);
/* Sends to room as cmid: it must be refused with code. */
void it_expect_send_error(struct wsc *c, const char *room, const char *cmid, const char *code);
/* The message cmid arrives on c, from user uid (NULL: not checked) with nick. */
void it_expect_message(struct wsc *c, const char *cmid, const char *uid, const char *nick);
/* Sends from c to room until w sees one of them with nick (a nickname change reaching c's
 * gateway through chat.events); fails when that takes longer than ms. */
void it_expect_nick_within(
    struct wsc *c, struct wsc *w, const char *room, const char *uid, const char *nick, int ms);
/* c gets {"type":"session_revoked","reason":reason} within timeout_ms; who names c. */
void it_expect_revoked(struct wsc *c, const char *reason, int timeout_ms, const char *who);

#endif
