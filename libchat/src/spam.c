/* spam.c - the spam rule and slow mode: normalisation, hash, keys and script (chat/spam.h). */
#include "chat/spam.h"

#include <stdio.h>
#include <string.h>

#include "chat/keys.h"

/* KEYS: last, offences, slow, ban; ARGV: hash, same, keep, ban_ms, max_ms, window_s, slow_ms */
const char chat_spam_lua[] =
    "local t = redis.call('PTTL', KEYS[4])\n"
    "if t > 0 then return {3, t} end\n"
    "local slow = tonumber(ARGV[7])\n"
    "if slow > 0 and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', slow) then\n"
    "  local p = redis.call('PTTL', KEYS[3])\n"
    "  if p < 1 then p = 1 end\n"
    "  return {2, p}\n"
    "end\n"
    "local same = tonumber(ARGV[2])\n"
    "if same <= 0 then return {0} end\n"
    "redis.call('LPUSH', KEYS[1], ARGV[1])\n"
    "redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)\n"
    "redis.call('PEXPIRE', KEYS[1], 86400000)\n"
    "local n = 0\n"
    "for _, h in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do\n"
    "  if h == ARGV[1] then n = n + 1 end\n"
    "end\n"
    "if n < same then return {0} end\n"
    "local off = redis.call('INCR', KEYS[2])\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[6])\n"
    "local ban = tonumber(ARGV[4]) * 2 ^ math.min(off - 1, 40)\n"
    "if ban > tonumber(ARGV[5]) then ban = tonumber(ARGV[5]) end\n"
    "ban = math.floor(ban)\n"
    "redis.call('DEL', KEYS[1])\n"
    "if slow > 0 then redis.call('DEL', KEYS[3]) end\n"
    "redis.call('SET', KEYS[4], '1', 'PX', ban)\n"
    "return {1, ban, off}\n";

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

void chat_spam_hash(const char *text, size_t len, char out[CHAT_SPAM_HASH_LEN + 1])
{
    snprintf(out, CHAT_SPAM_HASH_LEN + 1, "%016llx",
             (unsigned long long)chat_spam_hash64(text, len));
}

uint64_t chat_spam_hash64(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
    size_t b = 0, e = len;
    int gap = 0;

    while (b < e && is_space(s[b]))
        b++;
    while (e > b && is_space(s[e - 1]))
        e--;
    for (size_t i = b; i < e; i++) {
        unsigned char ch = s[i];
        if (is_space(ch)) {
            gap = 1;
            continue;
        }
        if (gap) {
            h = (h ^ ' ') * 1099511628211ULL;
            gap = 0;
        }
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        h = (h ^ ch) * 1099511628211ULL;
    }
    return h;
}

int chat_spam_keys(char keys[4][CHAT_SPAM_KEY_MAX], const char *user, const char *room)
{
    int n[4];

    n[0] = snprintf(keys[0], CHAT_SPAM_KEY_MAX, CHAT_KEY_SPAM_LAST_FMT, user);
    n[1] = snprintf(keys[1], CHAT_SPAM_KEY_MAX, CHAT_KEY_SPAM_OFFENCES_FMT, user);
    n[2] = snprintf(keys[2], CHAT_SPAM_KEY_MAX, CHAT_KEY_SLOW_FMT, room, user);
    n[3] = snprintf(keys[3], CHAT_SPAM_KEY_MAX, CHAT_KEY_SPAM_BAN_FMT, user);
    for (int i = 0; i < 4; i++)
        if (n[i] < 0 || n[i] >= CHAT_SPAM_KEY_MAX)
            return CHAT_ETOOBIG;
    return CHAT_OK;
}

void chat_spam_args(char args[7][24],
                    const char *hash,
                    const struct chat_spam_cfg *cfg,
                    int64_t slow_ms)
{
    snprintf(args[0], 24, "%s", hash);
    snprintf(args[1], 24, "%d", cfg->same);
    snprintf(args[2], 24, "%d", cfg->last);
    snprintf(args[3], 24, "%lld", (long long)cfg->ban_s * 1000);
    snprintf(args[4], 24, "%lld", (long long)cfg->ban_max_s * 1000);
    snprintf(args[5], 24, "%d", cfg->window_s);
    snprintf(args[6], 24, "%lld", (long long)(slow_ms > 0 ? slow_ms : 0));
}

int chat_spam_call_init(struct chat_spam_call *c,
                        const char *user,
                        const char *room,
                        const char *text,
                        size_t len,
                        const struct chat_spam_cfg *cfg,
                        int64_t slow_ms)
{
    if (chat_spam_keys(c->keys, user, room) != CHAT_OK)
        return CHAT_ETOOBIG;
    chat_spam_hash(text, len, c->hash);
    chat_spam_args(c->args, c->hash, cfg, slow_ms);
    c->argv[0] = "EVAL";
    c->argv[1] = chat_spam_lua;
    c->argv[2] = "4";
    for (int i = 0; i < 4; i++)
        c->argv[3 + i] = c->keys[i];
    for (int i = 0; i < 7; i++)
        c->argv[7 + i] = c->args[i];
    return CHAT_OK;
}

int chat_spam_judge(const long long *v, size_t n, int64_t *ms, int *offence)
{
    *ms = 0;
    *offence = 0;
    if (n < 1)
        return -1;
    switch (v[0]) {
    case CHAT_SPAM_OK:
        return CHAT_SPAM_OK;
    case CHAT_SPAM_TRIPPED:
        if (n != 3 || v[1] <= 0 || v[2] <= 0 || v[2] > 1000000)
            return -1;
        *ms = v[1];
        *offence = (int)v[2];
        return CHAT_SPAM_TRIPPED;
    case CHAT_SPAM_SLOW:
    case CHAT_SPAM_BANNED:
        if (n != 2)
            return -1;
        *ms = v[1] > 0 ? v[1] : 1;
        return (int)v[0];
    default:
        return -1;
    }
}
