/* r_members.c - the members of a room (proto/README.md section 9, "Rooms"): the list with live
 * online flags, role changes by the owner, removal by the owner and admins (r_rooms.c has the
 * shared internals: r_rooms_int.h). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "chat/config.h"
#include "chat/keys.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "acct/api_acct.h"
#include "api.h"
#include "bus/api_outbox.h"
#include "db/api_conns.h"
#include "mod/api_audit.h"
#include "routes.h"
#include "routes/r_rooms_int.h"
#include "routes/r_system.h"
#include "routes/r_util.h"

/* online[i]: whether ids[i] has a connection to a live gateway (presence sets in Redis); all
 * false when Redis is out (the answer is degraded, not refused). */
static void online_of(struct api_req *r, const char *const *ids, int n, bool *online)
{
    struct api_redis *rd = &api_conns_get(r->api)->redis;
    char now[24];
    redisReply *nodes;

    if (n <= 0)
        return;
    memset(online, 0, (size_t)n * sizeof(*online));
    snprintf(now, sizeof(now), "%lld", (long long)chat_now_ms());
    nodes = api_redis_cmd(rd, "ZRANGEBYSCORE %s %s +inf", CHAT_KEY_PRES_NODES, now);
    if (!nodes)
        return;
    for (size_t i = 0; nodes->type == REDIS_REPLY_ARRAY && i < nodes->elements; i++) {
        const char **argv = chat_xcalloc((size_t)n + 2, sizeof(*argv));
        char key[160];
        redisReply *rep;

        snprintf(key, sizeof(key), CHAT_KEY_PRES_USERS_FMT, nodes->element[i]->str, "*");
        argv[0] = "SMISMEMBER";
        argv[1] = key;
        for (int k = 0; k < n; k++)
            argv[k + 2] = ids[k];
        rep = api_redis_argv(rd, n + 2, argv);
        chat_free(argv);
        for (size_t k = 0;
             rep && rep->type == REDIS_REPLY_ARRAY && k < rep->elements && k < (size_t)n; k++)
            online[k] = online[k] || rep->element[k]->integer == 1;
        if (rep)
            freeReplyObject(rep);
    }
    freeReplyObject(nodes);
}

void r_rooms_members(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    long long after = 0, limit = R_ROOM_PAGE_DEFAULT;
    char sa[24], sl[16];
    const char *p[3] = {room, sa, sl};
    struct r_acc a;
    PGresult *res;
    json_t *arr, *o;
    int n, shown;
    const char **ids;
    bool *online;

    if (!room || !r_query_int(r, "after", 0, 999999999999999999LL, &after) ||
        !r_query_int(r, "limit", 1, R_ROOM_PAGE_MAX, &limit) || !r_room_read(r, db, room, &a))
        return;
    snprintf(sa, sizeof(sa), "%lld", after);
    snprintf(sl, sizeof(sl), "%lld", limit);
    res = api_db_qn(db, API_Q_members_page, 3, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "listing members")) {
        api_reply_unavailable(r);
        return;
    }
    n = PQntuples(res);
    shown = n > limit ? (int)limit : n;
    ids = chat_xcalloc((size_t)shown + 1, sizeof(*ids));
    online = chat_xcalloc((size_t)shown + 1, sizeof(*online));
    for (int i = 0; i < shown; i++)
        ids[i] = PQgetvalue(res, i, 0);
    online_of(r, ids, shown, online);
    arr = json_array();
    for (int i = 0; i < shown; i++)
        json_array_append_new(arr, json_pack("{s:{s:s, s:s, s:s}, s:s, s:I, s:b}", "user", "id",
                                             ids[i], "username", PQgetvalue(res, i, 1), "nickname",
                                             PQgetvalue(res, i, 2), "role", PQgetvalue(res, i, 3),
                                             "joined_at", (json_int_t)api_db_ll(res, i, 4),
                                             "online", online[i]));
    o = json_pack("{s:o, s:o}", "members", arr, "next",
                  n > limit ? json_string(ids[shown - 1]) : json_null());
    chat_free(ids);
    chat_free(online);
    PQclear(res);
    r_answer_json(r, 200, o);
}

/* The target member's role (under the room's lock); false after answering. */
static bool target_role(struct api_req *r, struct api_db *db, const char *room, char *role)
{
    struct r_acc t;

    if (!r_room_access_user(r, db, room, r_param(r, "id"), &t))
        return false;
    if (!r_acc_active(&t)) {
        r_fail(r, db, CHAT_ERR_not_found, "that user is not a member of the room");
        return false;
    }
    snprintf(role, 8, "%s", t.role);
    return true;
}

void r_rooms_member_role(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r), *target = r_param(r, "id");
    const char *role = json_string_value(json_object_get(r->doc, "role"));
    char trole[8];
    struct r_acc a;

    if (!room)
        return;
    if (!role || (strcmp(role, "owner") && strcmp(role, "admin") && strcmp(role, "member"))) {
        api_reply_error(r, 400, "bad_field", "role must be owner, admin or member");
        return;
    }
    if (!r_room_open(r, db, room, &a))
        return;
    if (!r_acc_active(&a) || strcmp(a.role, "owner") != 0 || strcmp(a.kind, "direct") == 0) {
        r_fail(r, db, CHAT_ERR_forbidden, "only the room's owner changes roles");
        return;
    }
    if (strcmp(target, r->uid) == 0) {
        r_fail(r, db, CHAT_ERR_bad_field, "hand ownership to another member instead");
        return;
    }
    if (!target_role(r, db, room, trole))
        return;
    {
        const char *p[3] = {room, target, role};
        if (!r_exec(r, db, API_Q_member_set_role, 3, p, PGRES_TUPLES_OK))
            return;
    }
    if (strcmp(role, "owner") == 0) { /* one owner: the old one becomes an admin */
        const char *p[3] = {room, r->uid, "admin"};
        if (!r_exec(r, db, API_Q_member_set_role, 3, p, PGRES_TUPLES_OK))
            return;
    }
    r_commit_204(r, db);
}

void r_rooms_member_remove(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r), *target = r_param(r, "id");
    char trole[8];
    struct r_acc a;

    if (!room || !r_room_open(r, db, room, &a))
        return;
    if (!r_acc_manager(&a) || strcmp(a.kind, "direct") == 0) {
        r_fail(r, db, CHAT_ERR_forbidden, "only the room's owner and admins remove members");
        return;
    }
    if (strcmp(target, r->uid) == 0) {
        r_fail(r, db, CHAT_ERR_bad_field, "leave the room instead");
        return;
    }
    if (!target_role(r, db, room, trole))
        return;
    if (strcmp(a.role, "owner") != 0 && strcmp(trole, "member") != 0) {
        r_fail(r, db, CHAT_ERR_forbidden, "admins remove members only");
        return;
    }
    if (!r_member_end(r, db, room, target, "removed"))
        return;
    if (!r_room_announce_removed(db, target, room, "removed") ||
        !api_system_event(r->api, db, room, "kicked", target, NULL, NULL)) {
        r_fail_503(r, db);
        return;
    }
    r_commit_204(r, db);
}
