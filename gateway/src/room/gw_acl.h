/* gw_acl.h - who may join which room, and how long a room's messages may be, known without a
 * database (proto/README.md section 4, `join`; docs/ARCHITECTURE.md, "Rooms"):
 *   - every room's settings (kind, max_text) from chat.rooms, a compacted topic read whole at
 *     start (bus/gw_kafka.c) and followed live;
 *   - a room whose id starts with "_" (private, group, direct) is joined with a room grant that
 *     chat-api signed for this user and room;
 *   - member_removed (chat.events) takes the user's sockets out of the room at once and refuses
 *     the grants issued before the removal for as long as one could live; room_deleted takes
 *     every socket out;
 *   - a grant opens a restricted room to its user only: a connection that stops being that user
 *     (session_expired, session_revoked, an expired token on a frame) leaves its restricted
 *     rooms, so each subscriber of one is logged in as the user it joined as, and removals and
 *     bans, which walk the user's connections, reach all of them.
 * Event-loop thread only. */
#ifndef GW_ACL_H
#define GW_ACL_H

#include <stddef.h>
#include <stdint.h>

#include "chat/proto.h"

struct gw;
struct gw_conn;

/* A chat.rooms record (key = room id; a NULL value: the room was deleted). */
void gw_acl_room_record(struct gw *gw, const void *key, size_t klen, const void *v, size_t len);
/* Code points a message in room may have: the room's max_text, at most the node's. */
int gw_acl_max_text(const struct gw *gw, const char *room);
/* The room's slow mode: ms between one user's messages (0: off; unknown rooms: off). */
int64_t gw_acl_slow_ms(const struct gw *gw, const char *room);
/* May c join room (grant: the join's, may be NULL)? CHAT_ERR__COUNT when it may; else the error
 * code, with *msg set to the error's message for the client; for a room ban (code banned)
 * *until_ms >= 0 (0: until lifted; -1 otherwise) and *reason the moderator's reason, "" when
 * none was given (borrowed: valid until the sanction map changes). */
enum chat_errcode gw_acl_join_check(struct gw *gw,
                                    const struct gw_conn *c,
                                    const char *room,
                                    const char *grant,
                                    const char **msg,
                                    int64_t *until_ms,
                                    const char **reason);
/* chat.events member_removed: user's sockets leave room ("left" with reason); grants issued up
 * to at_ms are refused from now on. */
void gw_acl_member_removed(
    struct gw *gw, const char *user, const char *room, const char *reason, int64_t at_ms);
/* chat.events room_deleted: every socket leaves room. */
void gw_acl_room_deleted(struct gw *gw, const char *room);
/* c has just lost the user it was logged in as (ws/gw_conn.c, gw_conn_clear_identity): it
 * leaves every restricted room (an id starting with "_"), each with {"type":"left","room":R,
 * "reason":"removed"}; its public rooms stay. */
void gw_acl_identity_lost(struct gw *gw, struct gw_conn *c);
/* ---- sanctions (mutes and bans; issue 13) ----
 * The map holds every sanction in force for a user: from chat.sanctions (chat-api's, read whole
 * at start, a tombstone lifts) and from chat.events (a gateway's spam-rule chat ban). Keys are
 * "USER ROOM KIND" (chat_sanction_key; ROOM "*": site-wide). */

/* A chat.sanctions record (key, value; a NULL value: lifted). */
void gw_acl_sanction_record(struct gw *gw, const void *key, size_t klen, const void *v, size_t len);
/* Puts a sanction in force on this node (until_ms 0: until lifted) and acts on it: the user's
 * connections here get a sanction frame (not again for the same sanction), and a room ban takes
 * the user's sockets out of the room ("left", reason "banned"). */
void gw_acl_sanction_put(struct gw *gw,
                         const char *user,
                         const char *room,
                         const char *kind,
                         int64_t until_ms,
                         const char *reason);
/* Lifts a sanction on this node; the user's connections get sanction_lifted when it was still
 * in force. */
void gw_acl_sanction_drop(struct gw *gw, const char *user, const char *room, const char *kind);
/* After c joined room: c gets a sanction frame for each mute or chat ban in force that refuses
 * its sends there (the room's, the site's), so a page opened while muted knows at once. */
void gw_acl_sanction_tell(struct gw *gw, struct gw_conn *c, const char *room);
/* The sanction in force that refuses a send of user to room: CHAT_ERR__COUNT when none, else
 * muted, chat_banned or banned with *until_ms (0: until lifted) and *reason (borrowed). */
enum chat_errcode gw_acl_send_check(
    struct gw *gw, const char *user, const char *room, int64_t *until_ms, const char **reason);

/* Once a second: forgets removals no grant can outlive. */
void gw_acl_tick(struct gw *gw);

#endif
