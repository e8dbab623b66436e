/* r_pins.c - a room's pinned messages (proto/README.md section 9, "Pins"; queries in
 * db/queries/pins.sql, table room_pins of db/migrations/0009_pins.sql):
 *   GET /api/v1/rooms/{room}/pins: whoever may read the room's history; the pinned messages
 *     that are stored and not deleted, in their newest form, the newest pin first.
 *   POST /api/v1/rooms/{room}/pins {"id"}: the room's owner and admins, site admins, and in a
 *     direct room either member. Under the message's lock (as a delete) the message is found
 *     (PostgreSQL, else the recent cache) and must not be deleted; under the room's pin lock
 *     the count stays within CHAT_PINS_MAX; the pin and the system event `pinned` (outbox) in
 *     one transaction. Pinned already: 200 with the pin as it is, no event.
 *   DELETE /api/v1/rooms/{room}/pins/{id}: the same people; the pin and the system event
 *     `unpinned`. A deleted message's pin is dropped by the delete (r_msg_delete).
 * Request threads only (blocking I/O is theirs). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "acct/api_acct.h"
#include "api.h"
#include "routes.h"
#include "routes/r_messages_mod.h"
#include "routes/r_rooms_int.h"
#include "routes/r_system.h"
#include "routes/r_util.h"

void r_pins_list(struct api_req *r)
{
    const char *room = api_param_get(&r->params, "room")->str;
    const char *p[2] = {room, r_viewer(r)};
    struct api_db *db = r_db(r);
    PGresult *res;
    json_t *pins;
    bool readable;

    if (!chat_room_valid(room)) {
        api_reply_code(r, CHAT_ERR_bad_room);
        return;
    }
    res = api_db_qn(db, API_Q_room_read_access, 2, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading room access")) {
        api_reply_unavailable(r);
        return;
    }
    /* no row: an ad-hoc public room (no pins), or a restricted id nobody may see */
    readable = PQntuples(res) == 1 ? strcmp(PQgetvalue(res, 0, 1), "t") == 0 : room[0] != '_';
    PQclear(res);
    if (!readable) {
        api_reply_error(r, 404, "not_found", "no such room");
        return;
    }
    res = api_db_qn(db, API_Q_pins_list, 1, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a room's pins")) {
        api_reply_unavailable(r);
        return;
    }
    pins = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(pins, json_loads(PQgetvalue(res, i, 0), 0, NULL));
    PQclear(res);
    r_answer_json(r, 200, json_pack("{s:o}", "pins", pins));
}

/* The room of the path and the caller's right to pin there, in the open transaction: false
 * after answering (404 a room it cannot read or without a row, 403 not one who pins, 503). */
static bool may_pin(struct api_req *r, struct api_db *db, const char *room)
{
    struct r_standing t = {0};

    if (!r_standing_get(r, db, room, &t))
        return false;
    if (!t.room_found || (!t.reader && !t.site_admin)) {
        r_fail(r, db, CHAT_ERR_not_found, "no such room");
        return false;
    }
    if (!t.manager && !t.site_admin && !(t.direct && t.member)) {
        r_fail(r, db, CHAT_ERR_forbidden,
               "only the room's owner and admins and site admins pin messages (in a direct room, "
               "its members)");
        return false;
    }
    return true;
}

/* {"room","id","pinned_by","pinned_at"} */
static json_t *pin_json(const char *room, const char *ids, const char *by, long long at)
{
    return json_pack("{s:s, s:s, s:s, s:I}", "room", room, "id", ids, "pinned_by", by, "pinned_at",
                     (json_int_t)at);
}

void r_pins_add(struct api_req *r)
{
    const char *room = api_param_get(&r->params, "room")->str;
    const char *sid = json_string_value(json_object_get(r->doc, "id"));
    struct api_db *db = r_db(r);
    struct r_msg m = {0};
    char ids[24];
    const char *p[3] = {room, ids, r->uid};
    int deleted;
    PGresult *res;
    uint64_t id;
    long long n;

    if (!chat_room_valid(room)) {
        api_reply_code(r, CHAT_ERR_bad_room);
        return;
    }
    if (!r_msg_id_parse(sid, &id, ids, sizeof(ids))) {
        api_reply_error(r, 400, "bad_field", "id must be a message id (a decimal string)");
        return;
    }
    /* a sanction first (no transaction); then the locks: the message's (as a delete takes it),
     * the room row's, the room's pins. The standing is read again when r_msg_find began the
     * transaction anew (a message found in the recent cache only). */
    if (!r_messages_not_sanctioned(r, db, room) || !api_acct_begin(r, db) ||
        !r_msg_lock(r, db, ids) || !may_pin(r, db, room) || !r_msg_find(r, db, room, ids, id, &m) ||
        (m.anew && !may_pin(r, db, room)) || (deleted = r_msg_deleted(r, db, ids, &m)) < 0)
        return;
    if (deleted) {
        r_fail(r, db, CHAT_ERR_not_found, "no such message");
        return;
    }
    if (!(res = r_run(r, db, API_Q_pins_room, 1, p, PGRES_TUPLES_OK)))
        return;
    n = PQntuples(res);
    PQclear(res);
    if (n == 0) { /* deleted meanwhile */
        r_fail(r, db, CHAT_ERR_not_found, "no such room");
        return;
    }
    if (!r_exec(r, db, API_Q_pins_lock, 1, p, PGRES_TUPLES_OK) ||
        !(res = r_run(r, db, API_Q_pin_get, 2, p, PGRES_TUPLES_OK)))
        return;
    if (PQntuples(res) == 1) { /* pinned already: as it is */
        json_t *j = pin_json(room, ids, PQgetvalue(res, 0, 0), api_db_ll(res, 0, 1));
        PQclear(res);
        r_commit_json(r, db, 200, j);
        return;
    }
    PQclear(res);
    if (!(res = r_run(r, db, API_Q_pins_count, 1, p, PGRES_TUPLES_OK)))
        return;
    n = api_db_ll(res, 0, 0);
    PQclear(res);
    if (n >= r->api->cfg->pins_max) {
        r_fail(r, db, CHAT_ERR_too_many_pins, NULL);
        return;
    }
    if (!(res = r_run(r, db, API_Q_pin_add, 3, p, PGRES_TUPLES_OK)))
        return;
    n = api_db_ll(res, 0, 0);
    PQclear(res);
    if (!api_system_event_msg(r->api, db, room, "pinned", r->uid, ids)) {
        r_fail_503(r, db);
        return;
    }
    r_commit_json(r, db, 201, pin_json(room, ids, r->uid, n));
}

void r_pins_remove(struct api_req *r)
{
    const char *room = api_param_get(&r->params, "room")->str;
    struct api_db *db = r_db(r);
    char ids[24];
    const char *p[2] = {room, ids};
    PGresult *res;
    uint64_t id;
    bool pinned;

    if (!chat_room_valid(room)) {
        api_reply_code(r, CHAT_ERR_bad_room);
        return;
    }
    if (!r_msg_id_parse(api_param_get(&r->params, "id")->str, &id, ids, sizeof(ids))) {
        api_reply_error(r, 404, "not_found", "not pinned");
        return;
    }
    if (!r_messages_not_sanctioned(r, db, room) || !api_acct_begin(r, db) ||
        !may_pin(r, db, room) || !(res = r_run(r, db, API_Q_pin_remove, 2, p, PGRES_TUPLES_OK)))
        return;
    pinned = PQntuples(res) > 0;
    PQclear(res);
    if (!pinned) {
        r_fail(r, db, CHAT_ERR_not_found, "not pinned");
        return;
    }
    if (!api_system_event_msg(r->api, db, room, "unpinned", r->uid, ids)) {
        r_fail_503(r, db);
        return;
    }
    r_commit_204(r, db);
}
