/* chat/lease.h - the message-id node-number lease (Redis chat:node:N and chat:node:N:last, see
 * chat/keys.h) as a state machine without I/O. Every process that makes message ids (the
 * gateways, chat-api for REST send) holds one number 0..CHAT_ID_MAX_NODE at a time, so no two
 * live processes make ids with the same node bits: the gateway drives it on its event loop
 * (async hiredis), chat-api from a thread of its own (synchronous hiredis).
 *
 * A lease lasts CHAT_LEASE_MS and is renewed every CHAT_LEASE_RENEW_MS; ids are made only until
 * CHAT_LEASE_MARGIN_MS before it could have lapsed, counted from when the request left. Taking a
 * number anew returns the ms every new id must be after (the previous holder's last id, plus the
 * lease time when it did not stop cleanly): pass it to chat_idgen_floor. Not thread-safe: one
 * owner. */
#ifndef CHAT_LEASE_H
#define CHAT_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#define CHAT_LEASE_MS        30000
#define CHAT_LEASE_RENEW_MS  10000
#define CHAT_LEASE_MARGIN_MS 3000

/* EVAL chat_lease_lua 2 KEY LAST_KEY TOKEN LEASE_MS REACHED_MS FRESH (chat_lease_req). */
extern const char chat_lease_lua[];
/* EVAL chat_lease_release_lua 2 KEY LAST_KEY TOKEN USED_MS: a clean stop. */
extern const char chat_lease_release_lua[];

struct chat_lease {
    char token[96];     /* name:pid:ms, the value of our lease key */
    int node_num;       /* the number held, -1 until leased */
    unsigned candidate; /* the next number to try */
    int64_t until_ms;   /* ids may be made until then (mono ms) */
    int64_t sent_ms;    /* when the pending request left (mono ms) */
    bool inflight;
};

/* One request: the arguments of chat_lease_lua (or of the release script: key, last_key, token,
 * reached). */
struct chat_lease_req {
    unsigned num;
    char key[64], last_key[64], ms[16], reached[24];
    const char *token;
    const char *fresh; /* "1": taking the number anew, "0": renewing */
};

enum chat_lease_ev {
    CHAT_LEASE_NONE,    /* nothing changed (an error: retried on a later step) */
    CHAT_LEASE_TAKEN,   /* a new number: chat_idgen_init(node_num), then chat_idgen_floor */
    CHAT_LEASE_RENEWED, /* the same number, extended (chat_idgen_floor is harmless) */
    CHAT_LEASE_LOST,    /* our number went to another process: no ids until a new one */
    CHAT_LEASE_REFUSED, /* the candidate is someone else's: the next one is tried */
};

/* The candidate starts at a hash of name, so restarts of one node try its usual number first. */
void chat_lease_init(struct chat_lease *l, const char *name, int pid, int64_t wall_ms);
bool chat_lease_valid(const struct chat_lease *l, int64_t mono_ms);
/* True when a request is due (none in flight, and no number or a renewal due); fills rq and
 * marks it in flight. used_ms: the Unix ms our ids have reached (chat_idgen_last_ms). */
bool chat_lease_due(struct chat_lease *l,
                    int64_t mono_ms,
                    int64_t wall_ms,
                    int64_t used_ms,
                    struct chat_lease_req *rq);
/* The answer to rq: ok with the script's integer, or !ok (no answer, an error). *floor_ms gets
 * the ms new ids must be after (TAKEN, RENEWED). */
enum chat_lease_ev chat_lease_reply(
    struct chat_lease *l, const struct chat_lease_req *rq, bool ok, long long v, int64_t *floor_ms);
/* The release request of the number held (false: none held). */
bool chat_lease_release(const struct chat_lease *l, int64_t used_ms, struct chat_lease_req *rq);

#endif
