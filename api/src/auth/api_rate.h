/* api_rate.h - the abuse limits, in Redis for every replica (proto/README.md section 9): fixed
 * windows of CHAT_AUTH_WINDOW_S, the key expiring with its window (chat:rl:KIND:SUBJECT).
 * Redis unreachable: every attempt passes (the limits fail open; logged). */
#ifndef API_RATE_H
#define API_RATE_H

#include <stdbool.h>
#include <stddef.h>

struct api_redis;
struct api_cfg;

/* Counts one attempt of kind by subject against limit per window_ms. Returns 0 (let through) or
 * the ms until the window that is full ends. */
int api_rate_hit(
    struct api_redis *rd, const char *kind, const char *subject, int limit, int window_ms);

/* A token bucket (rate_per_s sustained, burst at once) of kind for subject, on Redis's clock so
 * every replica counts alike. Returns 0 (a token taken) or the ms until one is there. */
int api_rate_bucket(
    struct api_redis *rd, const char *kind, const char *subject, int rate_per_s, int burst);

/* An address as a per-address subject: IPv6 by its /64, anything else as is. Returns ip or buf. */
const char *api_rate_subject(const char *ip, char *buf, size_t cap);

/* The failed-login limits of one login attempt (see api_rate.c). */
struct api_login_limit {
    bool reserved; /* a failure was reserved: settle it */
    char net_key[192], user_key[160];
};

/* Counts a login attempt from ip for user (lower-cased, or "~invalid"); when it is let through a
 * failure is reserved. Returns 0 or the ms until the attempt may be retried. */
int api_login_limit(struct api_redis *rd,
                    const struct api_cfg *cfg,
                    const char *ip,
                    const char *user,
                    struct api_login_limit *l);
/* When the login is answered: gives the reserved failure back unless it failed. */
void api_login_settle(struct api_redis *rd, struct api_login_limit *l, bool failed);

#endif
