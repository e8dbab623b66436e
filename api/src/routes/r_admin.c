/* r_admin.c - /api/v1/admin/...: site administration (proto/README.md section 9,
 * "Administration API"). Every route is API_ADMIN: the router checked the token, its session
 * and the admin role in the database. PostgreSQL builds the objects (db/queries/admin.sql); every
 * action writes its audit row (api_audit_add) and tells the gateways (outbox) in the
 * transaction of the action. Lists are pages, newest first: ?after= (or ?before=) the last key
 * of the previous page, ?limit= 1..PAGE_MAX; the answer's "next" is the key of the next page. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat/config.h"
#include "chat/keys.h"
#include "chat/mem.h"
#include "chat/time.h"
#include "chat/utf8.h"

#include "acct/api_acct.h"
#include "api.h"
#include "bus/api_ids.h"
#include "bus/api_outbox.h"
#include "db/api_conns.h"
#include "mod/api_audit.h"
#include "routes.h"
#include "routes/r_messages_mod.h"
#include "routes/r_moderation.h"
#include "routes/r_util.h"

#define PAGE_DEFAULT     50
#define PAGE_MAX         200
#define REASON_MAX_CPS   500
#define QUERY_MAX_CPS    64
#define ANNOUNCE_MAX_CPS 2000
#define BAN_MAX_S        315360000LL /* ten years; longer is "until lifted" (null) */
#define ID_MAX           999999999999999999LL

/* ---- small helpers ---- */

/* The compact text of j (stolen), for an audit row's details: a new string (chat_free) or NULL. */
static char *details_of(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(j);
    return s;
}

/* Writes the audit row a with details j (stolen; its compact text) in the transaction. False
 * after rolling back and answering 503. */
static bool audit_with(struct api_req *r, struct api_db *db, struct api_audit a, json_t *j)
{
    char *details = details_of(j);
    bool good;

    a.details = details;
    good = details && api_audit_add(db, &a);
    chat_free(details);
    if (!good)
        r_fail_503(r, db);
    return good;
}

/* The paging arguments: the cursor key (after or before; NULL: from the newest) and limit. */
static bool page_args(struct api_req *r, const char *key, char *cur, size_t cap, char *lim)
{
    long long c = -1, l = PAGE_DEFAULT;

    if (!r_query_int(r, key, 0, ID_MAX, &c) || !r_query_int(r, "limit", 1, PAGE_MAX, &l))
        return false;
    if (c >= 0)
        snprintf(cur, cap, "%lld", c);
    else
        cur[0] = '\0';
    snprintf(lim, 16, "%lld", l);
    return true;
}

/* Answers {"<name>":[row col 1 as JSON..],"next":col 0 of the last row shown|null} from res
 * (limit + 1 rows read: the extra one says there is more); frees res. */
static void answer_page(struct api_req *r, PGresult *res, const char *name, const char *lim)
{
    long long l = PAGE_DEFAULT;
    int n = PQntuples(res), limit, shown;

    if (chat_parse_ll(lim, 1, PAGE_MAX, &l) != CHAT_OK) /* written by page_args: never */
        l = PAGE_DEFAULT;
    limit = (int)l;
    shown = n > limit ? limit : n;
    json_t *arr = json_array(), *o;

    for (int i = 0; i < shown; i++) {
        json_t *v = json_loads(PQgetvalue(res, i, 1), 0, NULL);
        json_array_append_new(arr, v ? v : json_null());
    }
    o = json_pack("{s:o, s:o}", name, arr, "next",
                  n > limit ? json_string(PQgetvalue(res, shown - 1, 0)) : json_null());
    PQclear(res);
    r_answer_json(r, 200, o);
}

/* Runs a read-only page query and answers it. */
static void
list(struct api_req *r, enum api_q q, int n, const char *const *p, const char *name, const char *l)
{
    PGresult *res = api_db_qn(r_db(r), q, n, p);

    if (!api_db_ok(res, PGRES_TUPLES_OK, "an admin listing")) {
        api_reply_unavailable(r);
        return;
    }
    answer_page(r, res, name, l);
}

/* Whether user id exists (false after answering 404 or 503). */
static bool user_found(struct api_req *r, const char *id)
{
    return r_user_known(r, r_db(r), id);
}

/* ---- bodies ---- */

/* A body, if any, is a valid JSON object; its fields are ignored. */
void r_admin_revoke_check(struct api_req *r)
{
    r_json_body_check(r);
}

/* ---- sessions ---- */

/* POST /api/v1/admin/users/{id}/revoke: every live session of the user ends. */
void r_admin_revoke(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *p[1] = {r_param(r, "id")};
    long n;

    if (!user_found(r, p[0]) || !api_acct_begin(r, db))
        return;
    n = api_acct_revoke(r, db, p[0], API_Q_session_revoke_admin, 1, p, "admin", true);
    if (n < 0) {
        api_db_rollback(db);
        return;
    }
    if (!audit_with(
            r, db, (struct api_audit){.actor = r->uid, .action = "revoke_sessions", .target = p[0]},
            json_pack("{s:I}", "revoked", (json_int_t)n)))
        return;
    (void)api_acct_commit(r, db);
}

/* GET /api/v1/admin/users/{id}/sessions?after=&limit= */
void r_admin_sessions(struct api_req *r)
{
    char after[24], lim[16];
    const char *p[3] = {r_param(r, "id"), after, lim};

    if (!page_args(r, "after", after, sizeof(after), lim) || !user_found(r, p[0]))
        return;
    if (!after[0])
        p[1] = NULL;
    list(r, API_Q_admin_sessions, 3, p, "sessions", lim);
}

/* ---- rooms ---- */

/* online[i]: the distinct users of rooms[i] on live gateways (SUNION of the presence sets of
 * every live node; proto/README.md section 12); -1 each when Redis is out (degraded). */
static void online_counts(struct api_req *r, const char *const *rooms, int n, long long *online)
{
    struct api_redis *rd = &api_conns_get(r->api)->redis;
    char now[24];
    redisReply *nodes;

    for (int i = 0; i < n; i++)
        online[i] = -1;
    snprintf(now, sizeof(now), "%lld", (long long)chat_now_ms());
    nodes = api_redis_cmd(rd, "ZRANGEBYSCORE %s %s +inf", CHAT_KEY_PRES_NODES, now);
    if (!nodes)
        return;
    if (nodes->type != REDIS_REPLY_ARRAY || nodes->elements == 0) {
        for (int i = 0; i < n; i++)
            online[i] = nodes->type == REDIS_REPLY_ARRAY ? 0 : -1;
        freeReplyObject(nodes);
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t k = nodes->elements;
        const char **argv = chat_xcalloc(k + 1, sizeof(*argv));
        char **keys = chat_xcalloc(k, sizeof(*keys));
        redisReply *rep;

        argv[0] = "SUNION";
        for (size_t j = 0; j < k; j++) {
            size_t cap = strlen(nodes->element[j]->str) + strlen(rooms[i]) + 32;
            keys[j] = chat_xcalloc(cap, 1);
            snprintf(keys[j], cap, CHAT_KEY_PRES_USERS_FMT, nodes->element[j]->str, rooms[i]);
            argv[j + 1] = keys[j];
        }
        rep = api_redis_argv(rd, (int)k + 1, argv);
        if (rep && rep->type == REDIS_REPLY_ARRAY)
            online[i] = (long long)rep->elements;
        if (rep)
            freeReplyObject(rep);
        for (size_t j = 0; j < k; j++)
            chat_free(keys[j]);
        chat_free(keys);
        chat_free(argv);
    }
    freeReplyObject(nodes);
}

/* GET /api/v1/admin/rooms?q=&after=ROOM&limit= : every kind, with "members" (room_json) and
 * "online" (live, null when Redis is out). */
void r_admin_rooms(struct api_req *r)
{
    long long l = PAGE_DEFAULT;
    const char *q, *after = api_query(r, "after");
    char lim[16];
    const char *p[3] = {NULL, NULL, lim};
    PGresult *res;
    int n, shown;
    const char **ids;
    long long *online;
    json_t *arr, *o;

    if (!r_query_text(r, "q", QUERY_MAX_CPS, &q) || !r_query_int(r, "limit", 1, PAGE_MAX, &l))
        return;
    if (after && after[0] && !chat_room_valid(after)) {
        api_reply_error(r, 400, "bad_field", "after must be a room id");
        return;
    }
    snprintf(lim, sizeof(lim), "%lld", l);
    p[0] = q;
    p[1] = after && after[0] ? after : NULL;
    res = api_db_qn(r_db(r), API_Q_admin_rooms, 3, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "listing rooms")) {
        api_reply_unavailable(r);
        return;
    }
    n = PQntuples(res);
    shown = n > l ? (int)l : n;
    ids = chat_xcalloc((size_t)shown + 1, sizeof(*ids));
    online = chat_xcalloc((size_t)shown + 1, sizeof(*online));
    for (int i = 0; i < shown; i++)
        ids[i] = PQgetvalue(res, i, 0);
    online_counts(r, ids, shown, online);
    arr = json_array();
    for (int i = 0; i < shown; i++) {
        json_t *v = json_loads(PQgetvalue(res, i, 1), 0, NULL);
        if (json_is_object(v))
            json_object_set_new(v, "online",
                                online[i] >= 0 ? json_integer(online[i]) : json_null());
        json_array_append_new(arr, v ? v : json_null());
    }
    o = json_pack("{s:o, s:o}", "rooms", arr, "next",
                  n > l ? json_string(ids[shown - 1]) : json_null());
    chat_free(ids);
    chat_free(online);
    PQclear(res);
    r_answer_json(r, 200, o);
}

/* GET /api/v1/admin/rooms/{room}/messages?before=SEQ&limit= : deleted ones included. */
void r_admin_room_messages(struct api_req *r)
{
    char before[24], lim[16];
    const char *p[3] = {r_param(r, "room"), before, lim};

    if (!chat_room_valid(p[0])) {
        api_reply_code(r, CHAT_ERR_bad_room);
        return;
    }
    if (!page_args(r, "before", before, sizeof(before), lim))
        return;
    if (!before[0])
        p[1] = NULL;
    list(r, API_Q_admin_room_messages, 3, p, "messages", lim);
}

/* ---- users ---- */

/* GET /api/v1/admin/users?q=&after=ID&limit= */
void r_admin_users(struct api_req *r)
{
    char after[24], lim[16];
    const char *p[3] = {NULL, after, lim};

    if (!r_query_text(r, "q", QUERY_MAX_CPS, &p[0]) ||
        !page_args(r, "after", after, sizeof(after), lim))
        return;
    if (!after[0])
        p[1] = NULL;
    list(r, API_Q_admin_users, 3, p, "users", lim);
}

/* POST /api/v1/admin/users/{id}/role {"role":"user"|"admin"}: not one's own. */
void r_admin_role(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *id = r_param(r, "id");
    const char *role = json_string_value(json_object_get(r->doc, "role"));
    const char *p[2] = {id, role};
    PGresult *res;
    json_t *j;

    if (!role || (strcmp(role, "user") != 0 && strcmp(role, "admin") != 0)) {
        api_reply_error(r, 400, "bad_field", "role must be user or admin");
        return;
    }
    if (strcmp(id, r->uid) == 0) {
        api_reply_error(r, 400, "bad_field", "an admin cannot change their own role");
        return;
    }
    if (!api_acct_begin(r, db) ||
        !(res = r_run(r, db, API_Q_admin_user_role, 2, p, PGRES_TUPLES_OK)))
        return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        r_fail(r, db, CHAT_ERR_not_found, "no such user");
        return;
    }
    j = json_pack("{s:s, s:s}", "from", PQgetvalue(res, 0, 0), "to", role);
    PQclear(res);
    if (audit_with(r, db,
                   (struct api_audit){.actor = r->uid, .action = "role_change", .target = id}, j))
        r_commit_json(r, db, 200, json_pack("{s:s, s:s}", "id", id, "role", role));
}

/* POST /api/v1/admin/users/{id}/ban {"duration_s":N|null,"reason":S}: a site ban replacing any
 * active one; every session of the user revoked; login refused until it ends or is lifted. */
void r_admin_ban(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *id = r_param(r, "id"), *reason;
    json_t *jd = json_object_get(r->doc, "duration_s");
    const char *rp[1] = {id};
    long long duration = -1;
    int64_t until = 0;
    long revoked;

    if (jd && !json_is_null(jd) &&
        (!json_is_integer(jd) || json_integer_value(jd) < 1 ||
         json_integer_value(jd) > BAN_MAX_S)) {
        api_reply_error(r, 400, "bad_field",
                        "duration_s must be null or an integer in 1..315360000");
        return;
    }
    if (!r_opt_text(r, "reason", REASON_MAX_CPS, false, &reason))
        return;
    if (strcmp(id, r->uid) == 0) {
        api_reply_error(r, 400, "bad_field", "an admin cannot ban themselves");
        return;
    }
    if (jd && json_is_integer(jd))
        duration = (long long)json_integer_value(jd);
    if (!user_found(r, id) || !api_acct_begin(r, db) ||
        !r_sanction_put(r, db, "ban", id, NULL, reason, duration, &until))
        return;
    revoked = api_acct_revoke(r, db, id, API_Q_session_revoke_admin, 1, rp, "admin", true);
    if (revoked < 0) {
        api_db_rollback(db);
        return;
    }
    if (!api_audit_add(db, &(struct api_audit){.actor = r->uid,
                                               .action = "site_ban",
                                               .target = id,
                                               .reason = reason,
                                               .expires_ms = until})) {
        r_fail_503(r, db);
        return;
    }
    r_commit_json(r, db, 200,
                  json_pack("{s:s, s:o, s:s, s:I}", "user", id, "until",
                            until > 0 ? json_integer(until) : json_null(), "reason",
                            reason ? reason : "", "revoked_sessions", (json_int_t)revoked));
}

/* DELETE /api/v1/admin/users/{id}/ban: lifts the active site ban (404: none). */
void r_admin_unban(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *id = r_param(r, "id");

    if (!api_acct_begin(r, db) ||
        !r_sanction_lift(r, db, "ban", id, NULL, "the user has no active site ban"))
        return;
    if (!api_audit_add(
            db, &(struct api_audit){.actor = r->uid, .action = "site_unban", .target = id})) {
        r_fail_503(r, db);
        return;
    }
    r_commit_json(r, db, 200, json_pack("{s:s, s:b}", "user", id, "lifted", 1));
}

/* ---- reports ---- */

/* A report's message (action "delete"). */
struct report_msg {
    char room[CHAT_ROOM_MAX + 1];
    char ids[24];
    uint64_t id;
    struct r_msg msg;
};

/* GET /api/v1/admin/reports?status=open|resolved|dismissed&after=ID&limit= */
void r_admin_reports(struct api_req *r)
{
    const char *status = api_query(r, "status");
    char after[24], lim[16];
    const char *p[3] = {NULL, after, lim};

    if (!status || !status[0])
        status = "open";
    if (strcmp(status, "open") != 0 && strcmp(status, "resolved") != 0 &&
        strcmp(status, "dismissed") != 0) {
        api_reply_error(r, 400, "bad_field", "status must be open, resolved or dismissed");
        return;
    }
    if (!page_args(r, "after", after, sizeof(after), lim))
        return;
    p[0] = status;
    if (!after[0])
        p[1] = NULL;
    list(r, API_Q_admin_reports, 3, p, "reports", lim);
}

/* The report's message, for the action "delete": its room and id; the message locked and found
 * (r_msg_find: PostgreSQL, else the recent cache) in the open transaction. False after
 * answering (404: no such open report, or no such message; 503), rolled back. */
static bool
report_message(struct api_req *r, struct api_db *db, const char *report, struct report_msg *rm)
{
    const char *p[1] = {report};
    unsigned long long v;
    char *end = NULL;
    PGresult *res;

    if (!(res = r_run(r, db, API_Q_admin_report_target, 1, p, PGRES_TUPLES_OK)))
        return false;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 1)) {
        r_fail(r, db, CHAT_ERR_not_found,
               PQntuples(res) != 1 ? "no such open report" : "no such message");
        PQclear(res);
        return false;
    }
    snprintf(rm->room, sizeof(rm->room), "%s", PQgetvalue(res, 0, 0));
    snprintf(rm->ids, sizeof(rm->ids), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    v = strtoull(rm->ids, &end, 10);
    if (v == 0 || !end || *end) {
        r_fail(r, db, CHAT_ERR_not_found, "no such message");
        return false;
    }
    rm->id = (uint64_t)v;
    return r_msg_lock(r, db, rm->ids) && r_msg_find(r, db, rm->room, rm->ids, rm->id, &rm->msg);
}

/* POST /api/v1/admin/reports/{id}/resolve {"action":"dismiss"|"delete"|"resolve","reason":S}.
 * "dismiss": dismissed; "resolve": resolved, nothing else done; "delete": resolved and the
 * message deleted as DELETE /api/v1/rooms/{room}/messages/{id} by a site admin does it
 * (r_msg_delete), all in one transaction: the message is locked and found first, then the
 * report resolved, the message deleted (its audit row delete_message and the message_deleted
 * record), the audit row report_resolve. A sanction is not an action here ("mute", "ban": 400
 * bad_field): it is given with the moderation routes. */
void r_admin_report_resolve(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *id = r_param(r, "id"), *reason;
    const char *action = json_string_value(json_object_get(r->doc, "action"));
    const char *status;
    char room[CHAT_ROOM_MAX + 1], msg[24];
    struct report_msg rm = {0};
    bool del;
    PGresult *res;

    if (!action || (strcmp(action, "dismiss") != 0 && strcmp(action, "delete") != 0 &&
                    strcmp(action, "resolve") != 0)) {
        api_reply_error(r, 400, "bad_field", "action must be dismiss, delete or resolve");
        return;
    }
    if (!r_opt_text(r, "reason", REASON_MAX_CPS, false, &reason))
        return;
    del = strcmp(action, "delete") == 0;
    status = strcmp(action, "dismiss") == 0 ? "dismissed" : "resolved";
    if (!api_acct_begin(r, db) || (del && !report_message(r, db, id, &rm)))
        return;
    {
        const char *p[4] = {id, status, r->uid, action};
        if (!(res = r_run(r, db, API_Q_admin_report_resolve, 4, p, PGRES_TUPLES_OK)))
            return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        r_fail(r, db, CHAT_ERR_not_found, "no such open report");
        return;
    }
    snprintf(room, sizeof(room), "%s", PQgetvalue(res, 0, 0));
    snprintf(msg, sizeof(msg), "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    if (del && r_msg_delete(r, db, rm.room, rm.ids, rm.id, &rm.msg) < 0)
        return;
    if (audit_with(r, db,
                   (struct api_audit){.actor = r->uid,
                                      .action = "report_resolve",
                                      .room = room,
                                      .message = msg,
                                      .reason = reason},
                   json_pack("{s:s, s:s}", "report", id, "action", action)))
        r_commit_json(r, db, 200,
                      json_pack("{s:s, s:s, s:s, s:b}", "id", id, "status", status, "resolution",
                                action, "message_deleted", del));
}

/* ---- audit ---- */

/* GET /api/v1/admin/audit?actor=&target=&room=&action=&before=ID&limit= */
void r_admin_audit(struct api_req *r)
{
    long long actor = -1;
    char sactor[24], before[24], lim[16];
    const char *p[6] = {NULL, NULL, NULL, NULL, before, lim};

    if (!r_query_int(r, "actor", 0, ID_MAX, &actor) ||
        !r_query_text(r, "target", QUERY_MAX_CPS, &p[1]) ||
        !r_query_text(r, "room", QUERY_MAX_CPS, &p[2]) ||
        !r_query_text(r, "action", QUERY_MAX_CPS, &p[3]) ||
        !page_args(r, "before", before, sizeof(before), lim))
        return;
    if (actor >= 0) {
        snprintf(sactor, sizeof(sactor), "%lld", actor);
        p[0] = sactor;
    }
    if (!before[0])
        p[4] = NULL;
    list(r, API_Q_admin_audit, 6, p, "audit", lim);
}

/* ---- announcements ---- */

/* POST /api/v1/admin/announce {"room":R|null,"text":T}: 202 {"id","ts"}. A room's: a system
 * message (event "announcement") in its stream (chat.messages, key R); everyone's: a chat.events
 * announcement that every gateway gives every connection. */
void r_admin_announce(struct api_req *r)
{
    struct api_db *db = r_db(r);
    json_t *jr = json_object_get(r->doc, "room");
    const char *room = json_string_value(jr), *text;
    char ids[24];
    uint64_t id;
    int64_t ts;
    struct chat_buf b;
    bool good;

    if (jr && !json_is_null(jr) && (!room || !chat_room_valid(room))) {
        api_reply_code(r, CHAT_ERR_bad_room);
        return;
    }
    if (!r_opt_text(r, "text", ANNOUNCE_MAX_CPS, true, &text))
        return;
    if (!text || !text[0]) {
        api_reply_error(r, 400, "bad_field", "text must be 1..2000 characters");
        return;
    }
    if (room) {
        const char *p[1] = {room};
        PGresult *res = api_db_qn(db, API_Q_admin_room_exists, 1, p);
        if (!r_one_row(r, res, "reading a room"))
            return;
        PQclear(res);
    }
    if (!api_ids_next(r->api, &id, &ts)) {
        api_reply_unavailable(r);
        return;
    }
    snprintf(ids, sizeof(ids), "%llu", (unsigned long long)id);
    if (!api_acct_begin(r, db))
        return;
    chat_buf_init(&b, 0, 0);
    if (room) {
        struct chat_system_ev e = {
            .room = room, .event = "announcement", .text = text, .id = id, .ts = ts};
        good = chat_enc_system(&b, &e) == CHAT_OK &&
               api_outbox_put(db, "messages", room, "system", &b);
    } else {
        good = chat_enc_ev_announcement(&b, "*", ids, text, ts) == CHAT_OK &&
               api_outbox_put(db, "events", "*", "announcement", &b);
    }
    chat_buf_fini(&b);
    if (!good) {
        r_fail_503(r, db);
        return;
    }
    if (audit_with(r, db, (struct api_audit){.actor = r->uid, .action = "announce", .room = room},
                   json_pack("{s:s}", "id", ids)))
        r_commit_json(r, db, 202, json_pack("{s:s, s:I}", "id", ids, "ts", (json_int_t)ts));
}
