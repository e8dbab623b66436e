/* lease.c - the node-number lease state machine (chat/lease.h). */
#include "chat/lease.h"

#include <stdio.h>

#include "chat/id.h"
#include "chat/keys.h"

/* KEYS[1] lease key, KEYS[2] its last-used key; ARGV[1] our token, ARGV[2] lease ms, ARGV[3]
 * the Unix ms our ids have reached (or our clock), ARGV[4] "1" when we take the number anew.
 * Takes (or renews) the lease if free or ours, else returns 0. Taken anew, it returns the ms
 * every new id must be after: the previous holder's last-used ms, plus the lease time when that
 * holder did not stop cleanly (it may have made ids until its lease ran out) and was not us
 * (our own lapsed lease: our ids never went past what we report). Renewed, it returns ARGV[3].
 * Either way the last-used key then holds "MS:live:TOKEN" (kept 7 days). */
const char chat_lease_lua[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v ~= false and v ~= ARGV[1] then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "local mine = tonumber(ARGV[3]) "
    "if ARGV[4] == '1' then "
    "  local prev = redis.call('GET', KEYS[2]) "
    "  if prev then "
    "    local ms, st, tok = string.match(prev, '^(%d+):(%a+):?(.*)$') "
    "    if ms then "
    "      ms = tonumber(ms) "
    "      if st ~= 'clean' and tok ~= ARGV[1] then ms = ms + tonumber(ARGV[2]) end "
    "      if ms > mine then mine = ms end "
    "    end "
    "  end "
    "end "
    "redis.call('SET', KEYS[2], string.format('%d', mine) .. ':live:' .. ARGV[1], 'EX', 604800) "
    "return mine";

/* KEYS[1] lease key, KEYS[2] last-used key; ARGV[1] our token, ARGV[2] the Unix ms of our last
 * id: a clean stop records exactly how far our ids went, then gives the number back. */
const char chat_lease_release_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
    "redis.call('SET', KEYS[2], ARGV[2] .. ':clean', 'EX', 604800) "
    "return redis.call('DEL', KEYS[1])";

static unsigned name_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void chat_lease_init(struct chat_lease *l, const char *name, int pid, int64_t wall_ms)
{
    *l = (struct chat_lease){.node_num = -1};
    snprintf(l->token, sizeof(l->token), "%s:%d:%lld", name, pid, (long long)wall_ms);
    l->candidate = name_hash(name) % (CHAT_ID_MAX_NODE + 1);
}

bool chat_lease_valid(const struct chat_lease *l, int64_t mono_ms)
{
    return l->node_num >= 0 && mono_ms < l->until_ms;
}

static void
fill(const struct chat_lease *l, unsigned num, int64_t reached, struct chat_lease_req *rq)
{
    rq->num = num;
    rq->token = l->token;
    snprintf(rq->key, sizeof(rq->key), CHAT_KEY_NODE_LEASE_FMT, num);
    snprintf(rq->last_key, sizeof(rq->last_key), CHAT_KEY_NODE_LAST_FMT, num);
    snprintf(rq->ms, sizeof(rq->ms), "%d", CHAT_LEASE_MS);
    snprintf(rq->reached, sizeof(rq->reached), "%lld", (long long)reached);
}

bool chat_lease_due(struct chat_lease *l,
                    int64_t mono_ms,
                    int64_t wall_ms,
                    int64_t used_ms,
                    struct chat_lease_req *rq)
{
    unsigned num = l->node_num >= 0 ? (unsigned)l->node_num : l->candidate;

    if (l->inflight)
        return false;
    if (l->node_num >= 0 && l->until_ms - mono_ms > CHAT_LEASE_MS - CHAT_LEASE_RENEW_MS)
        return false;
    fill(l, num, l->node_num >= 0 && used_ms > wall_ms ? used_ms : wall_ms, rq);
    rq->fresh = l->node_num == (int)num && chat_lease_valid(l, mono_ms) ? "0" : "1";
    l->sent_ms = mono_ms;
    l->inflight = true;
    return true;
}

enum chat_lease_ev chat_lease_reply(
    struct chat_lease *l, const struct chat_lease_req *rq, bool ok, long long v, int64_t *floor_ms)
{
    enum chat_lease_ev ev;

    l->inflight = false;
    *floor_ms = 0;
    if (!ok)
        return CHAT_LEASE_NONE; /* retried on a later step */
    if (v > 0) {
        ev = l->node_num == (int)rq->num ? CHAT_LEASE_RENEWED : CHAT_LEASE_TAKEN;
        l->node_num = (int)rq->num;
        /* counted from when the request left: Redis may have set it that early */
        l->until_ms = l->sent_ms + CHAT_LEASE_MS - CHAT_LEASE_MARGIN_MS;
        *floor_ms = (int64_t)v;
        return ev;
    }
    l->candidate = (rq->num + 1) % (CHAT_ID_MAX_NODE + 1);
    if (l->node_num == (int)rq->num) {
        l->node_num = -1;
        return CHAT_LEASE_LOST;
    }
    return CHAT_LEASE_REFUSED;
}

bool chat_lease_release(const struct chat_lease *l, int64_t used_ms, struct chat_lease_req *rq)
{
    if (l->node_num < 0)
        return false;
    fill(l, (unsigned)l->node_num, used_ms, rq);
    rq->fresh = "0";
    return true;
}
