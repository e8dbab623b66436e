/* gw_authrate.c - the failed-login limits, in Redis for all gateways (proto/README.md section
 * 9): every attempt counts against the client address (CHAT_LOGIN_PER_IP); failures only count
 * against the username from the client's network (CHAT_LOGIN_FAILS_PER_NET) and against the
 * username from anywhere (CHAT_LOGIN_FAILS_PER_USER, which stops only networks that have failed
 * for that username already: the owner, from a network without failures, always gets to try).
 *
 * A failure is reserved when the attempt is let through (so a burst of parallel guesses cannot
 * all pass before the first one fails) and refunded when the answer is not "invalid
 * credentials". Redis down: attempts pass (as gw_redis_rate), nothing is reserved.
 * Event-loop thread only. */
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "chat/account.h"
#include "chat/keys.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "gw_auth.h"

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

struct limit_req {
    struct gw_job *j;
    gw_rate_cb cb;
};

/* ip's network for the failure limits: "ADDR/BITS" (cfg->net_bits_v4 / _v6), ip as is when it
 * is not an address. */
static void client_net(const struct gw *gw, const char *ip, char *out, size_t cap)
{
    unsigned char a[16];
    char txt[INET6_ADDRSTRLEN];
    int fam = strchr(ip, ':') ? AF_INET6 : AF_INET;
    int bits = fam == AF_INET ? gw->cfg->net_bits_v4 : gw->cfg->net_bits_v6;
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

static void on_check(redisAsyncContext *ac, void *r, void *priv)
{
    struct gw *gw = ac->data;
    struct limit_req *q = priv;
    redisReply *reply = r;
    int retry = 0;

    gw_redis_replied(gw);
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        retry = reply->integer > 0 ? (int)reply->integer : 0;
        q->j->fail_reserved = retry == 0;
    } else if (reply && reply->type == REDIS_REPLY_ERROR) {
        chat_log(CHAT_LOG_WARN, "redis: login limit: %s", reply->str);
    }
    q->cb(gw, q->j, retry);
    chat_free(q);
}

void gw_login_limit(struct gw *gw, struct gw_job *j, const char *user, gw_rate_cb cb)
{
    const struct gw_config *cfg = gw->cfg;
    char net[GW_IP_MAX + 8], v6[GW_IP_MAX + 8], ipkey[GW_IP_MAX + 32], num[4][16];
    const char *argv[10];
    struct limit_req *q;

    client_net(gw, j->ip, net, sizeof(net));
    snprintf(j->fail_net_key, sizeof(j->fail_net_key), CHAT_KEY_RATE_FMT "@%s", "login_fail_net",
             user, net);
    snprintf(j->fail_user_key, sizeof(j->fail_user_key), CHAT_KEY_RATE_FMT, "login_fail_user",
             user);
    snprintf(ipkey, sizeof(ipkey), CHAT_KEY_RATE_FMT, "login_ip",
             gw_rate_subject(j->ip, v6, sizeof(v6)));
    j->submitted = true;
    if (!gw->redis || !gw->redis_ok) {
        cb(gw, j, 0); /* fail open, as every attempt limit */
        return;
    }
    snprintf(num[0], sizeof(num[0]), "%d", cfg->auth_window_s * 1000);
    snprintf(num[1], sizeof(num[1]), "%d", cfg->login_per_ip);
    snprintf(num[2], sizeof(num[2]), "%d", cfg->login_fails_per_net);
    snprintf(num[3], sizeof(num[3]), "%d", cfg->login_fails_per_user);
    argv[0] = "EVAL";
    argv[1] = check_lua;
    argv[2] = "3";
    argv[3] = ipkey;
    argv[4] = j->fail_net_key;
    argv[5] = j->fail_user_key;
    for (int i = 0; i < 4; i++)
        argv[6 + i] = num[i];
    q = chat_xcalloc(1, sizeof(*q));
    q->j = j;
    q->cb = cb;
    gw_redis_sent(gw);
    if (redisAsyncCommandArgv(gw->redis, on_check, q, 10, argv, NULL) != REDIS_OK) {
        gw_redis_replied(gw);
        chat_free(q);
        cb(gw, j, 0);
    }
}

static void on_refund(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;

    (void)priv;
    gw_redis_replied(ac->data);
    if (reply && reply->type == REDIS_REPLY_ERROR)
        chat_log(CHAT_LOG_WARN, "redis: login limit refund: %s", reply->str);
}

void gw_login_settle(struct gw *gw, struct gw_job *j)
{
    const char *argv[5] = {"EVAL", refund_lua, "2", j->fail_net_key, j->fail_user_key};

    if (!j->fail_reserved)
        return;
    j->fail_reserved = false;
    if (j->status == 401 && j->err == CHAT_ERR_invalid_credentials)
        return; /* a failure: it stays counted */
    if (!gw->redis || !gw->redis_ok)
        return;
    gw_redis_sent(gw);
    if (redisAsyncCommandArgv(gw->redis, on_refund, NULL, 5, argv, NULL) != REDIS_OK)
        gw_redis_replied(gw);
}
