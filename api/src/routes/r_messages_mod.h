/* r_messages_mod.h - the room's rules for a send or an edit; one message of a room, found and
 * soft-deleted inside the caller's
 * transaction: what DELETE /api/v1/rooms/{room}/messages/{id} (r_messages_mod.c) and resolving a
 * report with the action "delete" (r_admin.c) share. Request threads only. */
#ifndef API_R_MESSAGES_MOD_H
#define API_R_MESSAGES_MOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct api_req;
struct api_db;

/* The caller's standing in a room (zero it first; room_found false: no such room row). */
struct r_standing {
    bool room_found, member, manager, site_admin;
    bool reader; /* may read the room: public, an active member, or one who left when
                  * history_after_leave (history.sql room_read_access) */
    bool public_room, direct;
};
/* Fills t for the caller r->uid in room: a manager is an active owner or admin of a room that is
 * not direct. False after answering 503 (rolled back). */
bool r_standing_get(struct api_req *r, struct api_db *db, const char *room, struct r_standing *t);
/* A message id of a path or body: a decimal 1..INT64_MAX without sign or spaces, into *id and
 * ids (decimal, cap bytes). False when s is not one. */
bool r_msg_id_parse(const char *s, uint64_t *id, char *ids, size_t cap);

/* A message as r_msg_find found it (zero it first). */
struct r_msg {
    bool found;      /* in PostgreSQL or in the room's recent cache */
    bool deleted;    /* its row is deleted already */
    bool anew;       /* found in the cache: the transaction was begun again (what was read
                      * before r_msg_find is not under its lock any more) */
    char author[72]; /* the token sub of its sender */
};

/* The room's rules for a send or an edit of r->cf.text (r_messages.c), outside a transaction: a
 * restricted room (an id starting with "_") takes an active member, a public room must exist
 * (unless CHAT_ROOMS_ADHOC), the text must fit the room's max_text, and an account must not be
 * muted or banned there (nor chat-banned site-wide). *slow_s: the room's slow mode. False after
 * answering (404, 400 text_too_long, 403 muted|banned|chat_banned, 503). */
bool r_messages_room_allows(struct api_req *r, struct api_db *db, const char *room, int *slow_s);
/* A mute or ban in force on account r->uid in room (or site-wide) refuses like on the gateways:
 * 403 muted, chat_banned or banned, with "until" (ms; null: until lifted) and "reason" in the
 * error object (r_messages.c; outside a transaction). False after answering (or 503). */
bool r_messages_not_sanctioned(struct api_req *r, struct api_db *db, const char *room);
/* Takes the transaction-scoped lock of message ids (a decimal id): deletes and reports of one
 * message are serialized. False after rolling back and answering 503. */
bool r_msg_lock(struct api_req *r, struct api_db *db, const char *ids);
/* Finds message ids (id) of room inside the caller's open transaction, which holds
 * r_msg_lock(ids): PostgreSQL first, else the Redis recent cache (the transaction is rolled
 * back while Redis answers, then begun and locked again: statements before this call are
 * lost, so make it the first one after the lock). False after answering: 404 not_found (no such
 * message) or 503, rolled back. */
bool r_msg_find(struct api_req *r,
                struct api_db *db,
                const char *room,
                const char *ids,
                uint64_t id,
                struct r_msg *m);
/* Whether message ids (found by r_msg_find, m) is deleted: its row, or the audit row of a delete
 * made before the persister stored it. 1 or 0; -1 after rolling back and answering 503. */
int r_msg_deleted(struct api_req *r, struct api_db *db, const char *ids, const struct r_msg *m);
/* Soft-deletes message m (found by r_msg_find) as the caller r->uid in its open transaction:
 * the row's deleted_at/deleted_by (when stored already), its pin dropped, the audit row
 * delete_message and the message_deleted record of the room's stream (outbox 'messages', key
 * room). Returns 1 deleted
 * now, 0 deleted already (nothing written), -1 after rolling back and answering 503. The caller
 * commits. */
int r_msg_delete(struct api_req *r,
                 struct api_db *db,
                 const char *room,
                 const char *ids,
                 uint64_t id,
                 const struct r_msg *m);

#endif
