/* chat/shared_cfg.h - options that mean the same in the gateway and in chat-api, defined once so
 * the two services cannot disagree on a name, a range or a default: the token settings (chat-api
 * signs what the gateways verify) and the chat limits (the gateways enforce them, chat-api
 * publishes them in GET /api/v1/config). T is the service's configuration struct; it must have
 * fields of the names used here. */
#ifndef CHAT_SHARED_CFG_H
#define CHAT_SHARED_CFG_H

#include <stddef.h>

#include "chat/config.h"
#include "chat/jwt.h"

/* How long a revoked session must stay known (s): no token of it can be valid after that. The
 * gateways keep revocations this long (and read chat.events this far back at start-up);
 * chat-api's retention purge keeps revoked sessions at least this long. */
#define CHAT_REVOKE_KEEP_S(cfg)                                                \
    (((cfg)->access_ttl_s > (cfg)->token_max_ttl_s ? (cfg)->access_ttl_s       \
                                                   : (cfg)->token_max_ttl_s) + \
     2 * CHAT_JWT_LEEWAY_S)

#define CHAT_TOKEN_CFG_OPTS(T)                                                             \
    {"jwt-keys",                                                                           \
     "CHAT_JWT_KEYS",                                                                      \
     CHAT_CFG_STR,                                                                         \
     0,                                                                                    \
     0,                                                                                    \
     "",                                                                                   \
     offsetof(T, jwt_keys),                                                                \
     CHAT_CFG_SECRET | CHAT_CFG_REQUIRED,                                                  \
     "HS256 keys: SECRET or kid:SECRET,kid2:SECRET2 (>= 32 bytes each; the first signs)"}, \
        {"jwt-issuer",                                                                     \
         "CHAT_JWT_ISSUER",                                                                \
         CHAT_CFG_STR,                                                                     \
         0,                                                                                \
         0,                                                                                \
         "chatcluster",                                                                    \
         offsetof(T, jwt_issuer),                                                          \
         CHAT_CFG_REQUIRED,                                                                \
         "iss claim, signed and required"},                                                \
        {"access-ttl-s",                                                                   \
         "CHAT_ACCESS_TTL_S",                                                              \
         CHAT_CFG_INT,                                                                     \
         30,                                                                               \
         86400,                                                                            \
         "900",                                                                            \
         offsetof(T, access_ttl_s),                                                        \
         0,                                                                                \
         "lifetime of an access token"},                                                   \
    {                                                                                      \
        "token-max-ttl-s", "CHAT_TOKEN_MAX_TTL_S", CHAT_CFG_INT, 30, 2592000, "86400",     \
            offsetof(T, token_max_ttl_s), 0,                                               \
            "a token naming a session (sid) that lives longer (exp - iat) is refused; "    \
            "revocations "                                                                 \
            "are remembered at least this long"                                            \
    }

#define CHAT_LIMIT_CFG_OPTS(T)                                                                     \
    {"max-frame",                                                                                  \
     "CHAT_MAX_FRAME",                                                                             \
     CHAT_CFG_INT,                                                                                 \
     256,                                                                                          \
     1 << 20,                                                                                      \
     "8192",                                                                                       \
     offsetof(T, max_frame),                                                                       \
     0,                                                                                            \
     "largest client frame in bytes"},                                                             \
        {"max-text",                                                                               \
         "CHAT_MAX_TEXT",                                                                          \
         CHAT_CFG_INT,                                                                             \
         1,                                                                                        \
         100000,                                                                                   \
         "2000",                                                                                   \
         offsetof(T, max_text),                                                                    \
         0,                                                                                        \
         "longest message in Unicode code points"},                                                \
        {"max-rooms", "CHAT_MAX_ROOMS",      CHAT_CFG_INT, 1, 10000, "64", offsetof(T, max_rooms), \
         0,           "rooms per connection"},                                                     \
        {"rate-per-s",                                                                             \
         "CHAT_RATE_PER_S",                                                                        \
         CHAT_CFG_INT,                                                                             \
         1,                                                                                        \
         1000000,                                                                                  \
         "20",                                                                                     \
         offsetof(T, rate_per_s),                                                                  \
         0,                                                                                        \
         "sustained sends per second per user: one bucket per gateway, one for REST"},             \
    {                                                                                              \
        "rate-burst", "CHAT_RATE_BURST", CHAT_CFG_INT, 1, 1000000, "40", offsetof(T, rate_burst),  \
            0, "burst of sends per user"                                                           \
    }

/* Rooms: a room grant's lifetime (chat-api signs grants, the gateways check them and keep the
 * removals that outrun them this long) and how long a send's client_msg_id is remembered
 * (gateways and chat-api's REST send share the keys, proto/README.md section 12). */
#define CHAT_ROOM_CFG_OPTS(T)                                                                  \
    {"grant-ttl-s",                                                                            \
     "CHAT_GRANT_TTL_S",                                                                       \
     CHAT_CFG_INT,                                                                             \
     30,                                                                                       \
     3600,                                                                                     \
     "300",                                                                                    \
     offsetof(T, grant_ttl_s),                                                                 \
     0,                                                                                        \
     "lifetime of a room grant (joining a private, group or direct room)"},                    \
    {                                                                                          \
        "idem-ttl-s", "CHAT_IDEM_TTL_S", CHAT_CFG_INT, 60, 604800, "86400",                    \
            offsetof(T, idem_ttl_s), 0,                                                        \
            "how long a send's client_msg_id and its ack are remembered (retries get the ack)" \
    }

#endif
