/* api_audit.h - the audit log (issue 13): every moderation and administration action writes
 * one row in the transaction of the action (db/queries/moderation.sql audit_add), so an action
 * is never without its record, nor a record without its action. */
#ifndef API_AUDIT_H
#define API_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

struct api_db;

struct api_audit {
    const char *actor;   /* a user id, or NULL: the system */
    const char *action;  /* mute, unmute, ban, unban, kick, chat_ban, delete_message, ... */
    const char *target;  /* the user acted on, or NULL */
    const char *room;    /* or NULL */
    const char *message; /* a message id (decimal), or NULL */
    const char *reason;  /* or NULL: "" */
    int64_t expires_ms;  /* the sanction's end (ms since the epoch), 0: none or until lifted */
    const char *details; /* a JSON object as text, or NULL: {} */
};

/* Inside the caller's transaction: the row of a. False when the statement failed (logged); the
 * caller rolls back and answers 503. */
bool api_audit_add(struct api_db *db, const struct api_audit *a);

#endif
