/* r_system.h - system messages of a room (issue 13; proto/README.md section 5, `system`): a
 * {"type":"system"} record of the room's stream, written through the outbox (topic 'messages',
 * key the room) inside the caller's transaction, so it is announced if and only if the change
 * commits. Request threads only. */
#ifndef API_R_SYSTEM_H
#define API_R_SYSTEM_H

#include <stdbool.h>

struct api;
struct api_db;

/* Queues the system event `event` (joined, left, kicked, banned, muted, room_updated, ...) of
 * room for user (its nick) with text; user, nick and text may be NULL (left out; nick NULL with
 * an account's user: its nickname from the database). joined and
 * left are written only while the room has at most CHAT_SYSTEM_JOINS_MAX active members (call
 * after the membership change). Returns false when a statement failed or no id could be made
 * (logged): the caller rolls back and answers 503. True also when the event was left out. */
bool api_system_event(struct api *a,
                      struct api_db *db,
                      const char *room,
                      const char *event,
                      const char *user,
                      const char *nick,
                      const char *text);
/* As api_system_event, with the message it concerns (pinned, unpinned: its decimal id). */
bool api_system_event_msg(struct api *a,
                          struct api_db *db,
                          const char *room,
                          const char *event,
                          const char *user,
                          const char *message);

#endif
