/* r_moderation.c - room moderation (issue 13; proto/README.md section 9, "Moderation"): mute,
 * ban, kick and lift by the room's owner and admins or a site admin, the room's sanctions in
 * force, and the site-wide chat bans and mutes of the admin API (the shared room internals:
 * r_rooms_int.h). */
#include "routes/r_moderation.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
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

/* ---- room moderation (issue 13): mute, ban, kick, lift ----
 * The room's owner and admins, and site admins, act on a user in the room (a member or anyone
 * chatting in a public room). A mute or ban is a `sanctions` row and a chat.sanctions record
 * (every gateway enforces it within a second); a kick removes the member and takes its sockets
 * out (member_removed, reason kicked); every action writes its audit row in its transaction. */

#define MOD_DURATION_MAX (366 * 86400) /* a timed sanction lasts at most a year */

/* The caller may moderate room: an active owner or admin, or a site admin (the database's
 * role). *site tells which. False after answering (and rolling back). */
static bool moderator(struct api_req *r, struct api_db *db, const struct r_acc *a, bool *site)
{
    *site = false;
    if (r_acc_manager(a))
        return true;
    if (!r_site_admin(r, db, site))
        return false;
    if (*site)
        return true;
    if (!r_acc_visible(a))
        r_fail(r, db, CHAT_ERR_not_found, NULL);
    else
        r_fail(r, db, CHAT_ERR_forbidden, "only the room's owner and admins moderate it");
    return false;
}

/* May the caller act on target (its standing in the room: t)? Not on itself; on the owner only
 * a site admin; on an admin the owner or a site admin. False after answering. */
static bool may_act_on(struct api_req *r,
                       struct api_db *db,
                       const struct r_acc *me,
                       bool site,
                       const char *target,
                       const struct r_acc *t)
{
    if (strcmp(target, r->uid) == 0) {
        r_fail(r, db, CHAT_ERR_bad_field, "a moderator cannot act on itself");
        return false;
    }
    if (!r_user_known(r, db, target))
        return false;
    if (r_acc_active(t) && !site &&
        (strcmp(t->role, "owner") == 0 ||
         (strcmp(t->role, "admin") == 0 && strcmp(me->role, "owner") != 0))) {
        r_fail(r, db, CHAT_ERR_forbidden, "admins act on members only; the owner on admins");
        return false;
    }
    return true;
}

/* Begins the transaction, reads the caller's standing in room (*me) and checks that it may
 * moderate the room (moderator). False after answering (rolled back). */
static bool
mod_open(struct api_req *r, struct api_db *db, const char *room, struct r_acc *me, bool *site)
{
    if (!api_acct_begin(r, db) || !r_room_access(r, db, room, me))
        return false;
    if (!me->found) {
        r_fail(r, db, CHAT_ERR_not_found, NULL);
        return false;
    }
    return moderator(r, db, me, site);
}

/* Queues the chat.sanctions record of user's sanction kind in room ("*": site-wide); until_ms
 * < 0: lifted (the tombstone). */
static bool announce_sanction(struct api_db *db,
                              const char *user,
                              const char *room,
                              const char *kind,
                              int64_t until_ms,
                              const char *reason)
{
    char key[CHAT_USER_MAX + CHAT_ROOM_MAX + 16];
    struct chat_buf b;
    bool good;

    if (chat_sanction_key(key, sizeof(key), user, room, kind) != CHAT_OK)
        return false;
    if (until_ms < 0) /* lifted: the tombstone */
        return api_outbox_put(db, "sanctions", key, "sanction", NULL);
    chat_buf_init(&b, 0, 0);
    good = chat_enc_sanction(&b, user, room, kind, until_ms, reason, chat_now_ms()) == CHAT_OK &&
           api_outbox_put(db, "sanctions", key, "sanction", &b);
    chat_buf_fini(&b);
    return good;
}

bool r_sanction_put(struct api_req *r,
                    struct api_db *db,
                    const char *kind,
                    const char *user,
                    const char *room,
                    const char *reason,
                    long long duration,
                    int64_t *until)
{
    const char *pl[4] = {user, room, kind, r->uid};
    const char *pa[6] = {kind, user, room, reason, r->uid, NULL};
    char dur[24];
    PGresult *res;

    if (!r_exec(r, db, API_Q_sanction_lift, 4, pl, PGRES_TUPLES_OK))
        return false;
    if (duration > 0) {
        snprintf(dur, sizeof(dur), "%lld", duration);
        pa[5] = dur;
    }
    if (!(res = r_run(r, db, API_Q_sanction_add, 6, pa, PGRES_TUPLES_OK)))
        return false;
    *until = PQntuples(res) == 1 && !PQgetisnull(res, 0, 1) ? api_db_ll(res, 0, 1) : 0;
    PQclear(res);
    if (announce_sanction(db, user, room ? room : "*", kind, *until, reason ? reason : ""))
        return true;
    r_fail_503(r, db);
    return false;
}

bool r_sanction_lift(struct api_req *r,
                     struct api_db *db,
                     const char *kind,
                     const char *user,
                     const char *room,
                     const char *none)
{
    const char *pl[4] = {user, room, kind, r->uid};
    PGresult *res;
    int n;

    if (!(res = r_run(r, db, API_Q_sanction_lift, 4, pl, PGRES_TUPLES_OK)))
        return false;
    n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        r_fail(r, db, CHAT_ERR_not_found, none);
        return false;
    }
    if (announce_sanction(db, user, room ? room : "*", kind, -1, NULL))
        return true;
    r_fail_503(r, db);
    return false;
}

/* Answers 201 with the sanction put in force. */
static void answer_sanction(struct api_req *r,
                            const char *kind,
                            const char *user,
                            const char *room,
                            int64_t until,
                            const char *reason)
{
    r_answer_json(r, 201,
                  json_pack("{s:s, s:s, s:s, s:o, s:s}", "kind", kind, "user", user, "room", room,
                            "until", until > 0 ? json_integer(until) : json_null(), "reason",
                            reason ? reason : ""));
}

/* The moderation body: {"user":ID, "duration_s":N|null, "reason":S}. *duration -1: absent or
 * null (until lifted). False after answering 400. */
static bool mod_body(struct api_req *r, const char **user, long long *duration, const char **reason)
{
    json_t *u = json_object_get(r->doc, "user");
    const char *s = json_string_value(u);
    size_t n = s ? strlen(s) : 0;

    *duration = -1;
    if (!s || n == 0 || n > 18 || strspn(s, "0123456789") != n) {
        api_reply_error(r, 400, "bad_field", "user must be an account id (a string of digits)");
        return false;
    }
    *user = s;
    return r_opt_int(r, "duration_s", 1, MOD_DURATION_MAX, duration) &&
           r_opt_text(r, "reason", R_ROOM_DESC_MAX_CPS, false, reason);
}

void r_rooms_moderate(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r), *action = r_param(r, "action"), *user, *reason;
    long long duration;
    int64_t until = 0;
    struct r_acc me, t;
    bool site, kick, ban;

    if (!room)
        return;
    kick = strcmp(action, "kick") == 0;
    ban = strcmp(action, "ban") == 0;
    if (!kick && !ban && strcmp(action, "mute") != 0) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    if (!mod_body(r, &user, &duration, &reason) || !mod_open(r, db, room, &me, &site) ||
        !r_room_access_user(r, db, room, user, &t) || !may_act_on(r, db, &me, site, user, &t))
        return;
    /* a new sanction replaces the one in force */
    if (!kick && !r_sanction_put(r, db, action, user, room, reason, duration, &until))
        return;
    if ((kick || ban) && r_acc_active(&t) && !r_member_end(r, db, room, user, "removed"))
        return; /* a site admin may remove the owner: the room is handed over */
    /* a kick takes the user's sockets out now (it may come back to a public room); a ban does
     * so through its sanction. The room sees the action (a mute, a kick, a ban) as a system
     * message. */
    if ((kick && !r_room_announce_removed(db, user, room, "kicked")) ||
        !api_system_event(r->api, db, room,
                          kick  ? "kicked"
                          : ban ? "banned"
                                : "muted",
                          user, NULL, reason) ||
        !api_audit_add(db, &(struct api_audit){.actor = r->uid,
                                               .action = action,
                                               .target = user,
                                               .room = room,
                                               .reason = reason,
                                               .expires_ms = until})) {
        r_fail_503(r, db);
        return;
    }
    if (!api_acct_commit(r, db))
        return;
    if (kick)
        api_reply(r, 204, NULL);
    else
        answer_sanction(r, action, user, room, until, reason);
}

void r_rooms_unmoderate(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r), *action = r_param(r, "action"), *user = r_param(r, "user");
    struct r_acc me;
    bool site;

    if (!room)
        return;
    if (strcmp(action, "mute") != 0 && strcmp(action, "ban") != 0) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    if (!mod_open(r, db, room, &me, &site) ||
        !r_sanction_lift(r, db, action, user, room, "no such sanction in force"))
        return;
    if (!api_audit_add(
            db, &(struct api_audit){.actor = r->uid,
                                    .action = strcmp(action, "mute") == 0 ? "unmute" : "unban",
                                    .target = user,
                                    .room = room})) {
        r_fail_503(r, db);
        return;
    }
    r_commit_204(r, db);
}

void r_rooms_sanctions(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    const char *p[1] = {room};
    struct r_acc me;
    bool site;
    PGresult *res;
    json_t *arr;

    if (!room || !mod_open(r, db, room, &me, &site))
        return;
    if (!(res = r_run(r, db, API_Q_sanctions_of_room, 1, p, PGRES_TUPLES_OK)))
        return;
    arr = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    r_commit_json(r, db, 200, arr ? json_pack("{s:o}", "sanctions", arr) : NULL);
}

/* ---- site-wide sanctions (site admins; the router checked the role: API_ADMIN) ----
 * POST /api/v1/admin/users/{id}/sanctions/{chat_ban|mute} {"duration_s","reason"}: the user may
 * not send anywhere; DELETE .../{chat_ban|mute}: lifted. (A site ban is POST .../ban: sessions
 * revoked, login refused; routes/r_admin.c.) */

/* The kind of a site sanction route: chat_ban or mute; NULL after answering 404. */
static const char *site_kind(struct api_req *r)
{
    const char *kind = r_param(r, "action");

    if (strcmp(kind, "chat_ban") == 0 || strcmp(kind, "mute") == 0)
        return kind;
    api_reply_code(r, CHAT_ERR_not_found);
    return NULL;
}

void r_site_sanction(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *kind = site_kind(r), *user = r_param(r, "id"), *reason = NULL;
    long long duration = -1;
    int64_t until;

    if (!kind)
        return;
    if (strcmp(user, r->uid) == 0) {
        api_reply_error(r, 400, "bad_field", "an admin cannot act on itself");
        return;
    }
    if (!r_opt_int(r, "duration_s", 1, MOD_DURATION_MAX, &duration) ||
        !r_opt_text(r, "reason", R_ROOM_DESC_MAX_CPS, false, &reason) || !api_acct_begin(r, db) ||
        !r_user_known(r, db, user) ||
        !r_sanction_put(r, db, kind, user, NULL, reason, duration, &until))
        return;
    if (!api_audit_add(db, &(struct api_audit){.actor = r->uid,
                                               .action = kind,
                                               .target = user,
                                               .reason = reason,
                                               .expires_ms = until})) {
        r_fail_503(r, db);
        return;
    }
    if (api_acct_commit(r, db))
        answer_sanction(r, kind, user, "*", until, reason);
}

void r_site_unsanction(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *kind = site_kind(r), *user = r_param(r, "id");

    if (!kind || !api_acct_begin(r, db) ||
        !r_sanction_lift(r, db, kind, user, NULL, "no such sanction in force"))
        return;
    if (!api_audit_add(db, &(struct api_audit){
                               .actor = r->uid,
                               .action = strcmp(kind, "mute") == 0 ? "unmute" : "lift_chat_ban",
                               .target = user})) {
        r_fail_503(r, db);
        return;
    }
    if (!api_acct_commit(r, db))
        return;
    if (strcmp(kind, "chat_ban") == 0) { /* the spam rule's own memory of the ban goes too */
        redisReply *rep =
            api_redis_cmd(&api_conns_get(r->api)->redis, "DEL " CHAT_KEY_SPAM_BAN_FMT, user);
        if (rep)
            freeReplyObject(rep);
    }
    api_reply(r, 204, NULL);
}
