/* chat/keys.h - Redis key names shared by the gateways, chat-api, the persister and the presence
 * worker. One place, so the writers and the readers cannot drift. NODE is the gateway's node name,
 * ROOM a room id.
 *
 * Presence (written by each gateway, read by the presence worker):
 *   CHAT_KEY_PRES_NODES            ZSET  member NODE, score = unix ms until which NODE is alive
 *   chat:pres:conns:NODE           HASH  field ROOM -> connections of NODE joined to ROOM
 *                                        field "*" -> all connections of NODE (joined or not)
 *   chat:pres:users:NODE:ROOM      SET   distinct logged-in user ids of NODE in ROOM
 *   chat:pres:users:NODE:*         SET   distinct logged-in user ids connected to NODE
 *   every key above except the ZSET carries a TTL (CHAT_PRES_TTL_MS) refreshed every second,
 *   so a dead node's counts disappear on their own.
 * Leases:
 *   chat:node:ID                   STRING "NODE:PID:START-MS", the holder's token (lease.c);
 *                                  PX lease of message-id node number ID (0..1023), held by a
 *                                  gateway or a chat-api replica
 *   chat:node:ID:last              STRING "MS:live:TOKEN" or "MS:clean": how far the ids of
 *                                  number ID went (EX 7 days)
 *   CHAT_KEY_PRES_LEADER           STRING instance id of the presence leader, PX lease
 * Abuse limits (chat-api, api/src/auth/api_rate.c):
 *   chat:rl:KIND:SUBJECT           STRING attempts in the current fixed window of
 *                                  CHAT_AUTH_WINDOW_S (the key expires with it). KIND and SUBJECT:
 *                                  login_ip and register_ip: the client address (IPv6 by its /64);
 *                                  login_fail_user: the lower-cased username; logout_user,
 *                                  nick_user, password_user, room_create_user, redeem_user: the
 *                                  user id
 *   chat:rl:login_fail_net:NAME@NET STRING failed logins for the lower-cased username NAME from
 *                                  the client network NET ("ADDR/BITS"), same window
 *   chat:rl:send_user:USER         HASH  token bucket of REST sends (t tokens, at ms; Redis's
 *                                  clock), PX the time to refill the burst + 1 s
 * Recent messages (written by the persister after its database commit, read by chat-api's
 * history; proto/README.md section 12):
 *   chat:recent:ROOM               ZSET  score = seq, member = the message frame as a client gets
 *                                        it live ("seq" and, when known, "prev"); newest
 *                                        CHAT_RECENT_PER_ROOM kept (to 1/8 more between
 *                                        trims), EX CHAT_RECENT_TTL_S (set at most hourly)
 *   chat:urecent:USER              ZSET  score = ts (ms), the same member; newest
 *                                        CHAT_RECENT_PER_USER kept, likewise
 * Idempotent sends (gateways and chat-api, chat/idem.h):
 *   chat:idem:USER:CLIENT_MSG_ID   STRING "p" while the send waits for Kafka (PX produce timeout
 *                                  + 5 s), then the ack {"room","id","seq","ts"} (EX
 *                                  CHAT_IDEM_TTL_S); USER is the token subject
 * Spam rule and slow mode (gateways and chat-api, chat/spam.h; USER is the token subject):
 *   chat:spam:last:USER            LIST  hashes of the user's last CHAT_SPAM_LAST texts, newest
 *                                        first; PX CHAT_SPAM_LIST_PX; deleted when it trips
 *   chat:spam:offences:USER        STRING offences so far, EX CHAT_SPAM_WINDOW_S from the last
 *   chat:spam:ban:USER             STRING "1" PX the spam-rule chat ban (a lift DELs it)
 *   chat:slow:ROOM:USER            STRING "1" PX the room's slow mode: the user's last send
 */
#ifndef CHAT_KEYS_H
#define CHAT_KEYS_H

#define CHAT_KEY_PRES_NODES     "chat:pres:nodes"
#define CHAT_KEY_PRES_CONNS_FMT "chat:pres:conns:%s"    /* NODE */
#define CHAT_KEY_PRES_USERS_FMT "chat:pres:users:%s:%s" /* NODE, ROOM or "*" */
#define CHAT_KEY_PRES_ALL       "*"                     /* pseudo-room: the whole node */
#define CHAT_KEY_NODE_LEASE_FMT "chat:node:%u"          /* node number */
#define CHAT_KEY_NODE_LAST_FMT  "chat:node:%u:last"     /* node number: last id ms */
#define CHAT_KEY_PRES_LEADER    "chat:pres:leader"
#define CHAT_PRES_TTL_MS        5000
#define CHAT_KEY_RATE_FMT       "chat:rl:%s:%s"   /* KIND, SUBJECT */
#define CHAT_KEY_IDEM_FMT       "chat:idem:%s:%s" /* USER, CLIENT_MSG_ID */

#define CHAT_KEY_SPAM_LAST_FMT     "chat:spam:last:%s"     /* USER */
#define CHAT_KEY_SPAM_OFFENCES_FMT "chat:spam:offences:%s" /* USER */
#define CHAT_KEY_SPAM_BAN_FMT      "chat:spam:ban:%s"      /* USER */
#define CHAT_KEY_SLOW_FMT          "chat:slow:%s:%s"       /* ROOM, USER */

#define CHAT_KEY_RECENT_FMT  "chat:recent:%s"  /* ROOM */
#define CHAT_KEY_URECENT_FMT "chat:urecent:%s" /* USER */
#define CHAT_RECENT_TTL_S    (7 * 86400)       /* both recent ZSETs expire after a quiet week */

#endif
