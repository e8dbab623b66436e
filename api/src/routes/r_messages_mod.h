/* r_messages_mod.h - the room's rules for a send or an edit; one message of a room, found and
 * soft-deleted inside the caller's
 * transaction: what DELETE /api/v1/rooms/{room}/messages/{id} (r_messages_mod.c) and resolving a
 * report with the action "delete" (r_admin.c) share. Request threads only. */
#ifndef API_R_MESSAGES_MOD_H
#define API_R_MESSAGES_MOD_H

#include <stdbool.h>
#include <stdint.h>

struct api_req;
struct api_db;

/* A message as r_msg_find found it (zero it first). */
struct r_msg {
    bool found;      /* in PostgreSQL or in the room's recent cache */
    bool deleted;    /* its row is deleted already */
    char author[72]; /* the token sub of its sender */
};

/* The room's rules for a send or an edit of r->cf.text (r_messages.c), outside a transaction: a
 * restricted room (an id starting with "_") takes an active member, a public room must exist
 * (unless CHAT_ROOMS_ADHOC), the text must fit the room's max_text, and an account must not be
 * muted or banned there (nor chat-banned site-wide). *slow_s: the room's slow mode. False after
 * answering (404, 400 text_too_long, 403 muted|banned|chat_banned, 503). */
bool r_messages_room_allows(struct api_req *r, struct api_db *db, const char *room, int *slow_s);
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
/* Soft-deletes message m (found by r_msg_find) as the caller r->uid in its open transaction:
 * the row's deleted_at/deleted_by (when stored already), the audit row delete_message and the
 * message_deleted record of the room's stream (outbox 'messages', key room). Returns 1 deleted
 * now, 0 deleted already (nothing written), -1 after rolling back and answering 503. The caller
 * commits. */
int r_msg_delete(struct api_req *r,
                 struct api_db *db,
                 const char *room,
                 const char *ids,
                 uint64_t id,
                 const struct r_msg *m);

#endif
