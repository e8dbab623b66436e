/* api_rate.c - the abuse limits (api_rate.h).
 *
 * Logins: every attempt counts against the client address (CHAT_LOGIN_PER_IP); failures only
 * count against the username from the client's network (CHAT_LOGIN_FAILS_PER_NET) and against
 * the username from anywhere (CHAT_LOGIN_FAILS_PER_USER, which stops only networks that have
 * failed for that username already: the owner, from a network without failures, always gets to
 * try). A failure is reserved when the attempt is let through (so a burst of parallel guesses
 * cannot all pass before the first one fails) and refunded when the answer is not "invalid
 * credentials". */
#include "api_rate.h"

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "chat/keys.h"

#include "api.h"
#include "db/api_redis.h"

#define IP_MAX 64

/* KEYS: one counter. ARGV: window ms, limit. Returns 0 or the ms left in a full window. */
static const char rate_lua[] =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "if n <= tonumber(ARGV[2]) then return 0 end "
    "local t = redis.call('PTTL', KEYS[1]) "
    "if t < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) t = tonumber(ARGV[1]) end "
    "return t";

/* KEYS: the bucket (a hash: tokens t, at ms). ARGV: rate per s, burst. Returns 0 (a token
 * taken) or the ms until one is there. Redis's clock (TIME; scripts replicate their effects). */
static const char bucket_lua[] =
    "local tm = redis.call('TIME') "
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000) "
    "local rate = tonumber(ARGV[1]) local burst = tonumber(ARGV[2]) "
    "local v = redis.call('HMGET', KEYS[1], 't', 'at') "
    "local t = tonumber(v[1]) or burst local at = tonumber(v[2]) or now "
    "t = math.min(burst, t + (now - at) * rate / 1000) "
    "if t < 1 then return math.ceil((1 - t) * 1000 / rate) end "
    "redis.call('HSET', KEYS[1], 't', tostring(t - 1), 'at', now) "
    "redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000) "
    "return 0";

/* KEYS: ip, net, user. ARGV: window ms, ip limit, net limit, user limit. Returns 0 (let
 * through, failure reserved on net and user) or the ms until the fullest exceeded window ends. */
static const char check_lua[] =
    "local worst = 0 "
    "local function over(k) "
    "  local t = redis.call('PTTL', k) "
    "  if t < 0 then redis.call('PEXPIRE', k, ARGV[1]) t = tonumber(ARGV[1]) end "
    "  if t > worst then worst = t end "
    "end "
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "if n > tonumber(ARGV[2]) then over(KEYS[1]) end "
    "local f = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "if f >= tonumber(ARGV[3]) then over(KEYS[2]) end "
    "if f > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[4]) then "
    "  over(KEYS[3]) end "
    "if worst == 0 then "
    "  for i = 2, 3 do "
    "    if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end "
    "  end "
    "end "
    "return worst";

/* KEYS: net, user: gives a reserved failure back. */
static const char refund_lua[] = "for i = 1, 2 do "
                                 "  if redis.call('DECR', KEYS[i]) <= 0 then "
                                 "    redis.call('DEL', KEYS[i]) end "
                                 "end "
                                 "return 0";

static int retry_of(redisReply *rep)
{
    int retry = 0;

    if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
        retry = (int)rep->integer;
    if (rep)
        freeReplyObject(rep);
    return retry;
}

int api_rate_hit(
    struct api_redis *rd, const char *kind, const char *subject, int limit, int window_ms)
{
    char key[192], net[IP_MAX + 8];

    snprintf(key, sizeof(key), CHAT_KEY_RATE_FMT, kind,
             api_rate_subject(subject, net, sizeof(net)));
    return retry_of(api_redis_cmd(rd, "EVAL %s 1 %s %d %d", rate_lua, key, window_ms, limit));
}

int api_rate_bucket(
    struct api_redis *rd, const char *kind, const char *subject, int rate_per_s, int burst)
{
    char key[192];

    snprintf(key, sizeof(key), CHAT_KEY_RATE_FMT, kind, subject);
    return retry_of(api_redis_cmd(rd, "EVAL %s 1 %s %d %d", bucket_lua, key, rate_per_s, burst));
}

const char *api_rate_subject(const char *ip, char *buf, size_t cap)
{
    unsigned char a[16];

    if (!strchr(ip, ':') || inet_pton(AF_INET6, ip, a) != 1)
        return ip;
    memset(a + 8, 0, 8);
    if (!inet_ntop(AF_INET6, a, buf, (socklen_t)cap))
        return ip;
    snprintf(buf + strlen(buf), cap - strlen(buf), "/64");
    return buf;
}

/* ip's network for the failure limits: "ADDR/BITS", ip as is when it is not an address. */
static void client_net(const struct api_cfg *cfg, const char *ip, char *out, size_t cap)
{
    unsigned char a[16];
    char txt[INET6_ADDRSTRLEN];
    int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
    int bits = fam == AF_INET ? cfg->net_bits_v4 : cfg->net_bits_v6;
    int full, rest;

    if (inet_pton(fam, ip, a) != 1) {
        snprintf(out, cap, "%s", ip); /* "unknown": a subject of its own */
        return;
    }
    full = bits / 8;
    rest = bits % 8;
    if (rest) {
        a[full] &= (unsigned char)(0xff << (8 - rest));
        full++;
    }
    memset(a + full, 0, (size_t)((fam == AF_INET ? 4 : 16) - full));
    if (!inet_ntop(fam, a, txt, sizeof(txt))) {
        snprintf(out, cap, "%s", ip);
        return;
    }
    snprintf(out, cap, "%s/%d", txt, bits);
}

int api_login_limit(struct api_redis *rd,
                    const struct api_cfg *cfg,
                    const char *ip,
                    const char *user,
                    struct api_login_limit *l)
{
    char net[IP_MAX + 8], v6[IP_MAX + 8], ipkey[IP_MAX + 32];
    redisReply *rep;
    int retry;

    client_net(cfg, ip, net, sizeof(net));
    snprintf(l->net_key, sizeof(l->net_key), CHAT_KEY_RATE_FMT "@%s", "login_fail_net", user, net);
    snprintf(l->user_key, sizeof(l->user_key), CHAT_KEY_RATE_FMT, "login_fail_user", user);
    snprintf(ipkey, sizeof(ipkey), CHAT_KEY_RATE_FMT, "login_ip",
             api_rate_subject(ip, v6, sizeof(v6)));
    l->reserved = false;
    rep = api_redis_cmd(rd, "EVAL %s 3 %s %s %s %d %d %d %d", check_lua, ipkey, l->net_key,
                        l->user_key, cfg->auth_window_s * 1000, cfg->login_per_ip,
                        cfg->login_fails_per_net, cfg->login_fails_per_user);
    if (!rep)
        return 0; /* fail open, as every attempt limit */
    l->reserved = rep->type == REDIS_REPLY_INTEGER && rep->integer == 0;
    retry = retry_of(rep);
    return retry;
}

void api_login_settle(struct api_redis *rd, struct api_login_limit *l, bool failed)
{
    redisReply *rep;

    if (!l->reserved)
        return;
    l->reserved = false;
    if (failed)
        return; /* it stays counted */
    rep = api_redis_cmd(rd, "EVAL %s 2 %s %s", refund_lua, l->net_key, l->user_key);
    if (rep)
        freeReplyObject(rep);
}
