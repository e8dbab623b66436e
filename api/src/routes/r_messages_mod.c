/* r_messages_mod.c - moderation and edits of single messages (issue 13; proto/README.md
 * section 9, "Moderation"):
 *   PATCH /api/v1/rooms/{room}/messages/{id} {"text"}: an edit by the author, while it may send
 *     in the room (the rules and sanctions of a REST send): in one transaction under the
 *     message's lock, the message_edited record of the room's stream; the persister sets the
 *     stored text when it stores the record. A deleted message is not edited (404).
 *   DELETE /api/v1/rooms/{room}/messages/{id}: a soft delete by the author, the room's owner or
 *     an admin of it, or a site admin. In one transaction: the row's deleted_at/deleted_by (when
 *     the persister stored it already), its pin dropped (no event), the audit row and the
 *     message_deleted record of the room's stream (outbox topic 'messages', key the room).
 *     Deleting twice: 204, no second event.
 *   POST /api/v1/rooms/{room}/messages/{id}/report {"reason"}: any account that can read the
 *     room; one open report per reporter and message (409 already_reported).
 * A message is found in PostgreSQL, else in the Redis recent cache (chat:recent:ROOM), else 404.
 * Finding and deleting a message (r_msg_find, r_msg_delete: r_messages_mod.h) is shared with
 * resolving a report with the action "delete" (r_admin.c).
 * Both run on request threads (blocking I/O is theirs). */
#include "routes/r_messages_mod.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "chat/keys.h"
#include "chat/mem.h"
#include "chat/time.h"
#include "chat/utf8.h"

#include "acct/api_acct.h"
#include "api.h"
#include "bus/api_outbox.h"
#include "db/api_conns.h"
#include "mod/api_audit.h"
#include "routes.h"
#include "routes/r_rooms_int.h"
#include "routes/r_util.h"

/* What the caller may do in the room, and the message. */
struct target {
    struct r_standing s;
    struct r_msg msg;
};

bool r_standing_get(struct api_req *r, struct api_db *db, const char *room, struct r_standing *t)
{
    const char *p[2] = {room, r->uid};
    PGresult *res;

    if (!(res = r_run(r, db, API_Q_msg_room_access, 2, p, PGRES_TUPLES_OK)))
        return false;
    if (PQntuples(res) == 1) {
        const char *role = PQgetvalue(res, 0, 1), *state = PQgetvalue(res, 0, 2);
        t->room_found = true;
        t->public_room = strcmp(PQgetvalue(res, 0, 0), "public") == 0;
        t->direct = strcmp(PQgetvalue(res, 0, 0), "direct") == 0;
        t->member = strcmp(state, "active") == 0;
        t->reader = t->public_room || t->member ||
                    (strcmp(state, "left") == 0 && strcmp(PQgetvalue(res, 0, 3), "t") == 0);
        t->manager =
            t->member && (strcmp(role, "owner") == 0 || strcmp(role, "admin") == 0) && !t->direct;
    }
    PQclear(res);
    return r_site_admin(r, db, &t->site_admin);
}

/* The message from the recent cache: the newest CHAT_RECENT_PER_ROOM of the room. False after
 * answering 503 (Redis failed); m->found tells. */
static bool from_cache(struct api_req *r, const char *room, uint64_t id, struct r_msg *m)
{
    struct api_redis *rd = &api_conns_get(r->api)->redis;
    char key[128];
    redisReply *rep;

    snprintf(key, sizeof(key), CHAT_KEY_RECENT_FMT, room);
    rep = api_redis_cmd(rd, "ZRANGE %s 0 -1", key);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        api_reply_unavailable(r);
        return false;
    }
    for (size_t i = 0; i < rep->elements && !m->found; i++) {
        const redisReply *e = rep->element[i];
        struct chat_event_msg msg;
        void *doc = NULL;

        if (e->type != REDIS_REPLY_STRING || !chat_msg_has_id(e->str, id))
            continue;
        if (chat_msg_decode(e->str, e->len, &msg, &doc) == CHAT_OK && msg.id == id &&
            strcmp(msg.room, room) == 0) {
            m->found = true;
            snprintf(m->author, sizeof(m->author), "%s", msg.user);
        }
        chat_json_free(doc);
    }
    freeReplyObject(rep);
    return true;
}

bool r_msg_lock(struct api_req *r, struct api_db *db, const char *ids)
{
    const char *p[1] = {ids};

    return r_exec(r, db, API_Q_msg_lock, 1, p, PGRES_TUPLES_OK);
}

bool r_msg_find(struct api_req *r,
                struct api_db *db,
                const char *room,
                const char *ids,
                uint64_t id,
                struct r_msg *m)
{
    const char *p[2] = {ids, room};
    PGresult *res;

    if (!(res = r_run(r, db, API_Q_msg_lookup, 2, p, PGRES_TUPLES_OK)))
        return false;
    if (PQntuples(res) == 1) {
        m->found = true;
        m->deleted = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
        snprintf(m->author, sizeof(m->author), "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    if (!m->found) {
        api_db_rollback(db); /* no statement waits while Redis answers */
        m->anew = true;
        if (!from_cache(r, room, id, m) || !api_acct_begin(r, db) ||
            !r_msg_lock(r, db, ids)) /* lock again */
            return false;
    }
    if (!m->found) {
        r_fail(r, db, CHAT_ERR_not_found, "no such message");
        return false;
    }
    return true;
}

int r_msg_deleted(struct api_req *r, struct api_db *db, const char *ids, const struct r_msg *m)
{
    const char *p[1] = {ids};
    PGresult *res;
    int deleted;

    if (m->deleted)
        return 1;
    if (!(res = r_run(r, db, API_Q_msg_deleted_before, 1, p, PGRES_TUPLES_OK)))
        return -1;
    deleted = PQntuples(res) > 0;
    PQclear(res);
    return deleted;
}

int r_msg_delete(struct api_req *r,
                 struct api_db *db,
                 const char *room,
                 const char *ids,
                 uint64_t id,
                 const struct r_msg *m)
{
    char tsb[24];
    int64_t ts = chat_now_ms();
    struct chat_buf b;
    int deleted = r_msg_deleted(r, db, ids, m);
    bool good;

    if (deleted != 0) /* deleting twice: nothing new (or 503 answered) */
        return deleted > 0 ? 0 : -1;
    snprintf(tsb, sizeof(tsb), "%" PRId64, ts);
    {
        const char *p[4] = {ids, room, tsb, r->uid}, *pp[2] = {room, ids};
        if (!r_exec(r, db, API_Q_msg_soft_delete, 4, p, PGRES_COMMAND_OK) ||
            !r_exec(r, db, API_Q_pin_remove, 2, pp, PGRES_TUPLES_OK)) /* unpinned, no event */
            return -1;
    }
    chat_buf_init(&b, 0, 0);
    good = api_audit_add(db, &(struct api_audit){.actor = r->uid,
                                                 .action = "delete_message",
                                                 .target = m->author,
                                                 .room = room,
                                                 .message = ids}) &&
           chat_enc_msg_deleted(&b, room, id, r->uid, ts) == CHAT_OK &&
           api_outbox_put(db, "messages", room, "message_deleted", &b);
    chat_buf_fini(&b);
    if (!good) {
        r_fail_503(r, db);
        return -1;
    }
    return 1;
}

bool r_msg_id_parse(const char *s, uint64_t *id, char *ids, size_t cap)
{
    char *end = NULL;
    unsigned long long v = (s && s[0] >= '1' && s[0] <= '9') ? strtoull(s, &end, 10) : 0;

    if (v == 0 || !end || *end || v > INT64_MAX)
        return false;
    *id = (uint64_t)v;
    snprintf(ids, cap, "%" PRIu64, *id);
    return true;
}

/* The room and message of the path: false after answering 400/404. */
static bool path(struct api_req *r, const char **room, char *ids, size_t cap, uint64_t *id)
{
    *room = api_param_get(&r->params, "room")->str;
    if (!chat_room_valid(*room)) {
        api_reply_code(r, CHAT_ERR_bad_room);
        return false;
    }
    if (!r_msg_id_parse(api_param_get(&r->params, "id")->str, id, ids, cap)) {
        api_reply_error(r, 404, "not_found", "no such message");
        return false;
    }
    return true;
}

void r_messages_delete(struct api_req *r)
{
    struct api_db *db = r_db(r);
    struct target t = {0};
    const char *room;
    char ids[24];
    uint64_t id;

    if (!path(r, &room, ids, sizeof(ids), &id) || !api_acct_begin(r, db) ||
        !r_msg_lock(r, db, ids) || !r_standing_get(r, db, room, &t.s))
        return;
    if (t.s.room_found && !t.s.public_room && !t.s.member && !t.s.site_admin) {
        r_fail(r, db, CHAT_ERR_not_found, "no such message"); /* the room is invisible */
        return;
    }
    if (!r_msg_find(r, db, room, ids, id, &t.msg))
        return;
    if (strcmp(t.msg.author, r->uid) != 0 && !t.s.manager && !t.s.site_admin) {
        r_fail(r, db, CHAT_ERR_forbidden,
               "only the author, the room's owner and admins and site admins delete a message");
        return;
    }
    if (r_msg_delete(r, db, room, ids, id, &t.msg) >= 0)
        r_commit_204(r, db);
}

void r_messages_edit(struct api_req *r)
{
    struct api_db *db = r_db(r);
    struct r_msg m = {0};
    const char *room;
    char ids[24];
    uint64_t id;
    int64_t ts;
    int slow_s = 0, deleted;
    struct chat_buf b;
    bool good;

    /* who may send what there first (a restricted room stays invisible to others) */
    if (!path(r, &room, ids, sizeof(ids), &id) || !r_messages_room_allows(r, db, room, &slow_s) ||
        !api_acct_begin(r, db) || !r_msg_lock(r, db, ids) || !r_msg_find(r, db, room, ids, id, &m))
        return;
    if ((deleted = r_msg_deleted(r, db, ids, &m)) != 0) {
        if (deleted > 0)
            r_fail(r, db, CHAT_ERR_not_found, "no such message");
        return;
    }
    if (strcmp(m.author, r->uid) != 0) {
        r_fail(r, db, CHAT_ERR_forbidden, "only the author edits a message");
        return;
    }
    ts = chat_now_ms();
    chat_buf_init(&b, 0, 0);
    good = chat_enc_msg_edited(&b, room, id, r->uid, r->cf.text, ts) == CHAT_OK &&
           api_outbox_put(db, "messages", room, "message_edited", &b);
    chat_buf_fini(&b);
    if (!good) {
        r_fail_503(r, db);
        return;
    }
    r_commit_json(r, db, 200,
                  json_pack("{s:s, s:s, s:s%, s:I}", "id", ids, "room", room, "text", r->cf.text,
                            r->cf.text_len, "edited_at", (json_int_t)ts));
}

/* {"reason": 1..CHAT_REPORT_REASON_MAX code points, no control characters but newline/tab} */
void r_messages_report_check(struct api_req *r)
{
    json_error_t e;
    json_t *o;
    const char *reason;
    size_t cps = 0;

    if (!chat_utf8_valid(chat_buf_data(&r->body), r->body.len, NULL)) {
        api_reply_code(r, CHAT_ERR_bad_utf8);
        return;
    }
    o = json_loadb(chat_buf_data(&r->body), r->body.len, JSON_REJECT_DUPLICATES, &e);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        api_reply_code(r, CHAT_ERR_bad_json);
        return;
    }
    r->doc = o;
    reason = json_string_value(json_object_get(o, "reason"));
    if (!reason || strlen(reason) != json_string_length(json_object_get(o, "reason")) ||
        !chat_utf8_valid(reason, strlen(reason), &cps) || cps < 1 ||
        cps > (size_t)r->api->cfg->report_reason_max ||
        chat_utf8_has_control(reason, strlen(reason), "\n\t")) {
        char msg[96];
        snprintf(msg, sizeof(msg), "reason must be 1 to %d code points of text",
                 r->api->cfg->report_reason_max);
        api_reply_error(r, 400, "bad_field", msg);
    }
}

void r_messages_report(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *reason = json_string_value(json_object_get(r->doc, "reason"));
    struct target t = {0};
    const char *room;
    char ids[24];
    uint64_t id;
    PGresult *res;
    json_t *j;

    if (!path(r, &room, ids, sizeof(ids), &id) || !api_acct_begin(r, db) ||
        !r_msg_lock(r, db, ids) || !r_standing_get(r, db, room, &t.s))
        return;
    if ((t.s.room_found && !t.s.reader && !t.s.site_admin) ||
        (!t.s.room_found && (room[0] == '_' || !r->api->cfg->rooms_adhoc))) {
        r_fail(r, db, CHAT_ERR_not_found, "no such message");
        return;
    }
    if (!r_msg_find(r, db, room, ids, id, &t.msg))
        return;
    {
        const char *p[4] = {r->uid, room, ids, reason};
        if (!(res = r_run(r, db, API_Q_report_add, 4, p, PGRES_TUPLES_OK)))
            return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        r_fail(r, db, CHAT_ERR_already_reported, NULL);
        return;
    }
    j = json_pack("{s:s, s:s}", "id", PQgetvalue(res, 0, 0), "status", "open");
    PQclear(res);
    if (api_acct_commit(r, db))
        r_answer_json(r, 201, j);
    else
        json_decref(j);
}
