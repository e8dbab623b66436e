/* r_rooms_int.h - what the room route files share (r_rooms.c: rooms and the directory,
 * r_members.c: members and roles, r_invites.c: invites and direct rooms, r_moderation.c: room
 * and site moderation): the caller's standing in a room, room grants, the room answer and what
 * the gateways learn through the outbox. Functions returning false have answered the request
 * (and rolled its transaction back). Request threads only. */
#ifndef API_R_ROOMS_INT_H
#define API_R_ROOMS_INT_H

#include <stdbool.h>
#include <string.h>

#include <jansson.h>

struct api_req;
struct api_db;

#define R_ROOM_PAGE_DEFAULT 50
#define R_ROOM_PAGE_MAX     200
#define R_ROOM_DESC_MAX_CPS 500 /* a room's description; a moderation reason */

/* The caller's standing in a room (room_access). */
struct r_acc {
    bool found;
    char kind[8];  /* public, private, group, direct */
    char role[8];  /* owner, admin, member; "" never a member */
    char state[8]; /* active, left, removed; "" never a member */
    int member_limit;
    int max_text;
    bool history_after_leave;
};

static inline bool r_acc_restricted(const struct r_acc *a)
{
    return strcmp(a->kind, "public") != 0;
}

static inline bool r_acc_active(const struct r_acc *a)
{
    return strcmp(a->state, "active") == 0;
}

static inline bool r_acc_manager(const struct r_acc *a)
{
    return r_acc_active(a) && (strcmp(a->role, "owner") == 0 || strcmp(a->role, "admin") == 0);
}

/* A public room is visible to anyone; any other room only to its active members. */
static inline bool r_acc_visible(const struct r_acc *a)
{
    return a->found && (!r_acc_restricted(a) || r_acc_active(a));
}

/* The viewer as a query parameter: an account's id, or NULL (anonymous, a bot's token). */
const char *r_viewer(const struct api_req *r);

/* Reads user's standing in room into *a (locking the room row inside a transaction). False
 * after answering 503 (rolled back). */
bool r_room_access_user(
    struct api_req *r, struct api_db *db, const char *room, const char *user, struct r_acc *a);
/* r_room_access_user() for the caller (r_viewer). */
bool r_room_access(struct api_req *r, struct api_db *db, const char *room, struct r_acc *a);
/* Reads the caller's standing outside a transaction: false after answering 503, or 404 when the
 * room is not visible to the caller. */
bool r_room_read(struct api_req *r, struct api_db *db, const char *room, struct r_acc *a);
/* Begins the request's transaction and reads the caller's standing under the room row's lock:
 * false after answering 503, or 404 (rolled back) when the room is not visible to the caller. */
bool r_room_open(struct api_req *r, struct api_db *db, const char *room, struct r_acc *a);

/* Whether the caller is a site admin, from the database (a token's role claim does not count):
 * *yes. False after answering 503 (rolled back). */
bool r_site_admin(struct api_req *r, struct api_db *db, bool *yes);

/* A room grant (JWT) of room for the caller with role ("": member): a new string (chat_free),
 * or NULL. */
char *r_room_grant(struct api_req *r, const char *room, const char *role);
/* Parses a room object of room_json and adds the caller's grant when it is an active member.
 * A new reference, or NULL when the text is not an object (a bug). */
json_t *r_room_obj(struct api_req *r, const char *text);
/* Answers the room as the caller sees it (after any commit). */
void r_room_answer(struct api_req *r, struct api_db *db, const char *room, int status);
/* Commits the request's transaction and answers the room with status. */
void r_room_commit_answer(struct api_req *r, struct api_db *db, const char *room, int status);
/* Ends user's active membership of room (state "left" or "removed"; not a member: nothing
 * happens). A room that lost its owner so goes to the oldest admin, else the oldest member: a
 * room never stays without an owner while it has members. False after answering 503. */
bool r_member_end(
    struct api_req *r, struct api_db *db, const char *room, const char *user, const char *state);
/* Adds the caller (role member) under the lock r_room_access took: not while a ban of the room
 * is in force (403 banned, with until and reason), within the member limit (409 room_full).
 * False after answering (rolled back). */
bool r_room_add_member(struct api_req *r,
                       struct api_db *db,
                       const char *room,
                       const struct r_acc *a);

/* What the gateways learn, queued in the caller's transaction (outbox): false when a statement
 * failed (the caller rolls back and answers 503). */
/* the room's settings: a chat.rooms record */
bool r_room_announce(
    struct api_db *db, const char *room, const char *kind, int max_text, int slow_s);
/* user's sockets leave room: a member_removed event with reason why */
bool r_room_announce_removed(struct api_db *db,
                             const char *user,
                             const char *room,
                             const char *why);

#endif
