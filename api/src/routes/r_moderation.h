/* r_moderation.h - sanctions (issue 13): a sanctions row and its chat.sanctions record, written
 * in the caller's transaction (r_moderation.c); shared by the room moderation routes, the
 * site-wide sanctions and the site ban of r_admin.c. Request threads only. */
#ifndef API_R_MODERATION_H
#define API_R_MODERATION_H

#include <stdbool.h>
#include <stdint.h>

struct api_req;
struct api_db;

/* Puts sanction kind (mute, ban, chat_ban) of user in room (NULL: site-wide) in place of the one
 * in force, by the caller, with reason (NULL: none) for duration seconds (<= 0: until lifted),
 * and queues its chat.sanctions record (key "USER ROOM KIND", ROOM "*" site-wide). *until: its
 * end in ms since the epoch, 0 until lifted. False after rolling back and answering 503. */
bool r_sanction_put(struct api_req *r,
                    struct api_db *db,
                    const char *kind,
                    const char *user,
                    const char *room,
                    const char *reason,
                    long long duration,
                    int64_t *until);
/* Lifts the sanction kind of user in room (NULL: site-wide) in force, by the caller, and queues
 * the record's tombstone. False after rolling back and answering: 404 not_found with message
 * none when no such sanction is in force, or 503. */
bool r_sanction_lift(struct api_req *r,
                     struct api_db *db,
                     const char *kind,
                     const char *user,
                     const char *room,
                     const char *none);

#endif
