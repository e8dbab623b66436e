/* r_rooms.c - rooms: create, read, change, delete, join, leave, grants, favourites, my rooms and
 * the directory (proto/README.md section 9, "Rooms"), and what the room route files share
 * (r_rooms_int.h). Members and roles are r_members.c, invites and direct rooms r_invites.c, room
 * and site moderation r_moderation.c.
 *
 * PostgreSQL holds the record (db/migrations/0005_rooms.sql) and builds the room objects clients
 * see (room_json); these files check who may do what, change membership under the room row's
 * lock (room_access ... FOR UPDATE: member limits and invite uses cannot race), and tell the
 * gateways in the same transaction through the outbox: a room's settings as a chat.rooms record,
 * a member taken out of a restricted room as a member_removed event. A member of a room also gets
 * a room grant (a short-lived JWT) that the gateways check on join.
 *
 * Visibility: a public room is visible to anyone; any other room only to its active members
 * (404 for everyone else: a private room's existence is not leaked). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chat/config.h"
#include "chat/jwt.h"
#include "chat/mem.h"
#include "chat/time.h"
#include "chat/utf8.h"

#include "acct/api_acct.h"
#include "api.h"
#include "bus/api_outbox.h"
#include "db/api_conns.h"
#include "routes.h"
#include "routes/r_rooms_int.h"
#include "routes/r_system.h"
#include "routes/r_util.h"

#define NAME_MAX_CPS 64
#define MINE_MAX     1000
#define CREATE_TRIES 3
#define LOBBY        "lobby"
#define SLOW_MAX_S   3600 /* slow mode: at most an hour between one user's messages */

/* ---- the caller's standing ---- */

/* The viewer as a query parameter: an account's id, or NULL (anonymous, a bot's token). */
const char *r_viewer(const struct api_req *r)
{
    size_t n = strlen(r->uid);
    return n > 0 && n <= 18 && strspn(r->uid, "0123456789") == n ? r->uid : NULL;
}

bool r_room_access_user(
    struct api_req *r, struct api_db *db, const char *room, const char *user, struct r_acc *a)
{
    const char *p[2] = {room, user};
    PGresult *res = api_db_qn(db, API_Q_room_access, 2, p);

    memset(a, 0, sizeof(*a));
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a room")) {
        r_fail_503(r, db);
        return false;
    }
    if (PQntuples(res) == 1) {
        a->found = true;
        snprintf(a->kind, sizeof(a->kind), "%s", PQgetvalue(res, 0, 0));
        a->member_limit = (int)api_db_ll(res, 0, 1);
        a->max_text = (int)api_db_ll(res, 0, 2);
        a->history_after_leave = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
        snprintf(a->role, sizeof(a->role), "%s", PQgetvalue(res, 0, 4));
        snprintf(a->state, sizeof(a->state), "%s", PQgetvalue(res, 0, 5));
    }
    PQclear(res);
    return true;
}

bool r_room_access(struct api_req *r, struct api_db *db, const char *room, struct r_acc *a)
{
    return r_room_access_user(r, db, room, r_viewer(r), a);
}

bool r_room_read(struct api_req *r, struct api_db *db, const char *room, struct r_acc *a)
{
    if (!r_room_access(r, db, room, a))
        return false;
    if (r_acc_visible(a))
        return true;
    api_reply_code(r, CHAT_ERR_not_found);
    return false;
}

bool r_room_open(struct api_req *r, struct api_db *db, const char *room, struct r_acc *a)
{
    if (!api_acct_begin(r, db) || !r_room_access(r, db, room, a))
        return false;
    if (r_acc_visible(a))
        return true;
    r_fail(r, db, CHAT_ERR_not_found, NULL);
    return false;
}

bool r_site_admin(struct api_req *r, struct api_db *db, bool *yes)
{
    const char *p[1] = {r->uid};
    PGresult *res;

    *yes = false;
    if (!(res = r_run(r, db, API_Q_user_site_role, 1, p, PGRES_TUPLES_OK)))
        return false;
    *yes = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "admin") == 0;
    PQclear(res);
    return true;
}

/* ---- grants and answers ---- */

char *r_room_grant(struct api_req *r, const char *room, const char *role)
{
    struct chat_claims c;
    char *tok = NULL;
    int64_t now = (int64_t)time(NULL);

    memset(&c, 0, sizeof(c));
    snprintf(c.sub, sizeof(c.sub), "%s", r->uid);
    snprintf(c.room, sizeof(c.room), "%s", room);
    snprintf(c.role, sizeof(c.role), "%s", role[0] ? role : "member");
    c.iat = now;
    c.exp = now + r->api->cfg->grant_ttl_s;
    if (chat_jwt_sign(&r->api->keys, &c, r->api->cfg->jwt_issuer, &tok) != CHAT_OK)
        return NULL;
    return tok;
}

json_t *r_room_obj(struct api_req *r, const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    json_t *me = json_object_get(o, "me");

    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    if (json_is_object(me) && r_viewer(r)) {
        const char *role = json_string_value(json_object_get(me, "role"));
        char *g = r_room_grant(r, json_string_value(json_object_get(o, "id")), role ? role : "");
        if (g)
            json_object_set_new(o, "grant", json_string(g));
        chat_free(g);
    }
    return o;
}

void r_room_answer(struct api_req *r, struct api_db *db, const char *room, int status)
{
    const char *p[2] = {room, r_viewer(r)};
    PGresult *res = api_db_qn(db, API_Q_room_view, 2, p);
    json_t *o;

    if (!r_one_row(r, res, "reading a room"))
        return;
    o = r_room_obj(r, PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!o) {
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    r_answer_json(r, status, o);
}

void r_room_commit_answer(struct api_req *r, struct api_db *db, const char *room, int status)
{
    if (api_acct_commit(r, db))
        r_room_answer(r, db, room, status);
}

/* ---- what the gateways learn (outbox, inside the caller's transaction) ---- */

bool r_room_announce(
    struct api_db *db, const char *room, const char *kind, int max_text, int slow_s)
{
    struct chat_buf b;
    bool good;

    chat_buf_init(&b, 0, 0);
    good = chat_enc_room_rec(&b, room, kind, max_text, slow_s, chat_now_ms()) == CHAT_OK &&
           api_outbox_put(db, "rooms", room, "room", &b);
    chat_buf_fini(&b);
    return good;
}

bool r_room_announce_removed(struct api_db *db, const char *user, const char *room, const char *why)
{
    struct chat_buf b;
    bool good;

    chat_buf_init(&b, 0, 0);
    good = chat_enc_ev_member_removed(&b, user, room, why, chat_now_ms()) == CHAT_OK &&
           api_outbox_put(db, "events", user, "member_removed", &b);
    chat_buf_fini(&b);
    return good;
}

static bool announce_deleted(struct api_db *db, const char *room)
{
    struct chat_buf b;
    bool good;

    chat_buf_init(&b, 0, 0);
    good = chat_enc_ev_room_deleted(&b, room, chat_now_ms()) == CHAT_OK &&
           api_outbox_put(db, "events", room, "room_deleted", &b) &&
           api_outbox_put(db, "rooms", room, "room", NULL);
    chat_buf_fini(&b);
    return good;
}

/* ---- bodies ---- */

static const char *tf(int b)
{
    return b < 0 ? NULL : b ? "true" : "false";
}

/* The settings of a create or update body. */
struct settings {
    const char *name, *description;
    long long member_limit, max_text, slow_mode_s;
    int history_after_leave;
    bool has_limit, has_max_text, has_slow;
};

static bool read_settings(struct api_req *r, struct settings *s)
{
    const struct api_cfg *cfg = r->api->cfg;

    memset(s, 0, sizeof(*s));
    s->member_limit = -1;
    s->max_text = -1;
    s->slow_mode_s = -1;
    if (!r_opt_text(r, "name", NAME_MAX_CPS, false, &s->name) ||
        !r_opt_text(r, "description", R_ROOM_DESC_MAX_CPS, true, &s->description) ||
        !r_opt_int(r, "member_limit", 0, cfg->room_member_limit_max, &s->member_limit) ||
        !r_opt_int(r, "max_text", 1, cfg->max_text, &s->max_text) ||
        !r_opt_int(r, "slow_mode_s", 0, SLOW_MAX_S, &s->slow_mode_s) ||
        !r_opt_bool(r, "history_after_leave", &s->history_after_leave))
        return false;
    if (s->name && !s->name[strspn(s->name, " ")]) {
        api_reply_error(r, 400, "bad_field", "name must not be empty");
        return false;
    }
    s->has_limit = s->member_limit >= 0;
    s->has_max_text = s->max_text >= 0;
    s->has_slow = s->slow_mode_s >= 0;
    return true;
}

/* ---- rooms ---- */

void r_rooms_create(struct api_req *r)
{
    const struct api_cfg *cfg = r->api->cfg;
    struct api_db *db = r_db(r);
    json_t *jk = json_object_get(r->doc, "kind"), *jid = json_object_get(r->doc, "id");
    const char *kind = json_string_value(jk), *id = NULL, *prefix;
    char limit[24], maxt[24], room[CHAT_ROOM_MAX + 1] = "";
    struct settings s;

    if (!kind || (strcmp(kind, "public") && strcmp(kind, "private") && strcmp(kind, "group"))) {
        api_reply_error(r, 400, "bad_field", "kind must be public, private or group");
        return;
    }
    if (!read_settings(r, &s))
        return;
    if (!s.name) {
        api_reply_error(r, 400, "bad_field", "name is required");
        return;
    }
    prefix = strcmp(kind, "public") == 0 ? "r" : strcmp(kind, "private") == 0 ? "_p" : "_g";
    if (jid && !json_is_null(jid)) {
        id = json_string_value(jid);
        if (strcmp(kind, "public") != 0) {
            api_reply_error(r, 400, "bad_field", "only public rooms choose their id");
            return;
        }
        if (!id || !chat_room_valid(id) || id[0] == '_') {
            api_reply_error(r, 400, "bad_room",
                            "id must be 1-64 characters of [A-Za-z0-9_.-], not starting with _");
            return;
        }
    }
    if (strcmp(kind, "public") == 0)
        s.member_limit = 0; /* watching needs no membership: a limit would only stop favourites */
    else if (!s.has_limit)
        s.member_limit = cfg->room_member_limit;
    else if (s.member_limit < 2) {
        api_reply_error(r, 400, "bad_field", "member_limit must be at least 2");
        return;
    }
    if (!s.has_max_text)
        s.max_text = cfg->max_text;
    snprintf(limit, sizeof(limit), "%lld", s.member_limit);
    snprintf(maxt, sizeof(maxt), "%lld", s.max_text);
    for (int tries = 0; !room[0] && tries < CREATE_TRIES; tries++) {
        const char *hal = s.history_after_leave == 0 ? "false" : "true";
        const char *p[10] = {id,     prefix, kind, s.name, s.description ? s.description : "",
                             r->uid, limit,  maxt, hal,    NULL};
        const char *pm[3] = {NULL, r->uid, "owner"};
        PGresult *res;

        if (!api_acct_begin(r, db))
            return;
        if (!(res = r_run(r, db, API_Q_room_insert, 10, p, PGRES_TUPLES_OK)))
            return;
        if (PQntuples(res) == 0) { /* the id is taken */
            PQclear(res);
            api_db_rollback(db);
            if (id) {
                api_reply_code(r, CHAT_ERR_room_exists);
                return;
            }
            continue; /* a generated id met a chosen one: the next serial */
        }
        snprintf(room, sizeof(room), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        pm[0] = room;
        if (!r_exec(r, db, API_Q_member_upsert, 3, pm, PGRES_COMMAND_OK))
            return;
        if (!r_room_announce(db, room, kind, (int)s.max_text, 0)) {
            r_fail_503(r, db);
            return;
        }
        if (!api_acct_commit(r, db))
            return;
    }
    if (!room[0]) {
        api_reply_code(r, CHAT_ERR_room_exists);
        return;
    }
    r_room_answer(r, db, room, 201);
}

void r_rooms_get(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    struct r_acc a;

    if (!room || !r_room_read(r, db, room, &a))
        return;
    r_room_answer(r, db, room, 200);
}

void r_rooms_update(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    char limit[24], maxt[24], slow[24], changed[128] = "";
    struct settings s;
    struct r_acc a;
    PGresult *res;
    bool good;

    if (!room || !read_settings(r, &s))
        return;
    snprintf(limit, sizeof(limit), "%lld", s.member_limit);
    snprintf(maxt, sizeof(maxt), "%lld", s.max_text);
    snprintf(slow, sizeof(slow), "%lld", s.slow_mode_s);
    if (!r_room_open(r, db, room, &a))
        return;
    if (!r_acc_manager(&a)) {
        r_fail(r, db, CHAT_ERR_forbidden, "only the room's owner and admins change it");
        return;
    }
    if (s.has_limit && (strcmp(a.kind, "public") == 0 || strcmp(a.kind, "direct") == 0)) {
        r_fail(r, db, CHAT_ERR_bad_field, "public and direct rooms have no member limit");
        return;
    }
    if (s.has_limit && s.member_limit < 2) {
        r_fail(r, db, CHAT_ERR_bad_field, "member_limit must be at least 2");
        return;
    }
    {
        const char *p[7] = {room,
                            s.name,
                            s.description,
                            s.has_limit ? limit : NULL,
                            s.has_max_text ? maxt : NULL,
                            tf(s.history_after_leave),
                            s.has_slow ? slow : NULL};
        if (!(res = r_run(r, db, API_Q_room_update, 7, p, PGRES_TUPLES_OK)))
            return;
    }
    if (PQntuples(res) == 1)
        snprintf(changed, sizeof(changed), "%s", PQgetvalue(res, 0, 3));
    /* the room (and the gateways, chat.rooms) hear of a change only: a PATCH that changes
     * nothing says nothing */
    good = PQntuples(res) == 1 &&
           (!changed[0] || r_room_announce(db, room, PQgetvalue(res, 0, 0),
                                           (int)api_db_ll(res, 0, 1), (int)api_db_ll(res, 0, 2)));
    PQclear(res);
    if (!good || (changed[0] &&
                  !api_system_event(r->api, db, room, "room_updated", r->uid, NULL, changed))) {
        r_fail_503(r, db);
        return;
    }
    r_room_commit_answer(r, db, room, 200);
}

void r_rooms_delete(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    const char *p[1] = {room};
    struct r_acc a;

    if (!room)
        return;
    if (strcmp(room, LOBBY) == 0) {
        api_reply_error(r, 403, "forbidden", "the lobby cannot be deleted");
        return;
    }
    /* the owner, or a site admin (the database's role), whatever the room's kind: a restricted
     * room the admin is not in is found too (404 for anyone else who cannot see it) */
    if (!api_acct_begin(r, db) || !r_room_access(r, db, room, &a))
        return;
    if (!(r_acc_active(&a) && strcmp(a.role, "owner") == 0)) {
        bool site = false;
        if (a.found && !r_site_admin(r, db, &site))
            return;
        if (!site) {
            if (!r_acc_visible(&a))
                r_fail(r, db, CHAT_ERR_not_found, NULL);
            else
                r_fail(r, db, CHAT_ERR_forbidden, "only the room's owner deletes it");
            return;
        }
    }
    if (!r_exec(r, db, API_Q_room_delete, 1, p, PGRES_TUPLES_OK))
        return;
    if (!announce_deleted(db, room)) {
        r_fail_503(r, db);
        return;
    }
    r_commit_204(r, db);
}

/* Adds the caller (role member) under the lock access_of took; false after answering. */
bool r_room_add_member(struct api_req *r,
                       struct api_db *db,
                       const char *room,
                       const struct r_acc *a)
{
    const char *p[3] = {room, r->uid, "member"};
    const char *pb[2] = {r->uid, room};
    PGresult *res;

    /* a ban in force: no way back in, by a join or by any invite */
    if (!(res = r_run(r, db, API_Q_room_ban_of, 2, pb, PGRES_TUPLES_OK)))
        return false;
    if (PQntuples(res) == 1) {
        r_fail_sanction(r, db, CHAT_ERR_banned, res, 0, 1);
        PQclear(res);
        return false;
    }
    PQclear(res);
    if (a->member_limit > 0) {
        const char *pc[1] = {room};
        if (!(res = r_run(r, db, API_Q_room_active_members, 1, pc, PGRES_TUPLES_OK)))
            return false;
        long long n = api_db_ll(res, 0, 0);
        PQclear(res);
        if (n >= a->member_limit) {
            r_fail(r, db, CHAT_ERR_room_full, NULL);
            return false;
        }
    }
    if (!r_exec(r, db, API_Q_member_upsert, 3, p, PGRES_COMMAND_OK))
        return false;
    return true;
}

bool r_member_end(
    struct api_req *r, struct api_db *db, const char *room, const char *user, const char *state)
{
    const char *p[3] = {room, user, state};
    PGresult *res = r_run(r, db, API_Q_member_leave, 3, p, PGRES_TUPLES_OK);
    bool owner;

    if (!res)
        return false;
    owner = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "owner") == 0;
    PQclear(res);
    return !owner || r_exec(r, db, API_Q_room_hand_over, 1, p, PGRES_TUPLES_OK);
}

void r_rooms_join(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    struct r_acc a;

    if (!room || !r_room_open(r, db, room, &a))
        return;
    if (r_acc_restricted(&a) && !r_acc_active(&a)) { /* r_acc_visible(): only a member sees it */
        r_fail(r, db, CHAT_ERR_forbidden, "private and group rooms are joined with an invite");
        return;
    }
    if (!r_acc_active(&a) && (!r_room_add_member(r, db, room, &a) ||
                              !api_system_event(r->api, db, room, "joined", r->uid, NULL, NULL))) {
        if (!r->status)
            r_fail_503(r, db);
        return;
    }
    r_room_commit_answer(r, db, room, 200);
}

void r_rooms_leave(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    struct r_acc a;

    if (!room || !api_acct_begin(r, db) || !r_room_access(r, db, room, &a))
        return;
    if (!a.found || !r_acc_active(&a)) {
        r_fail(r, db, CHAT_ERR_not_found, NULL);
        return;
    }
    if (!r_member_end(r, db, room, r->uid, "left"))
        return;
    if ((r_acc_restricted(&a) && !r_room_announce_removed(db, r->uid, room, "left")) ||
        !api_system_event(r->api, db, room, "left", r->uid, NULL, NULL)) {
        r_fail_503(r, db);
        return;
    }
    r_commit_204(r, db);
}

void r_rooms_grant(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    struct r_acc a;
    char *g;
    json_t *o;

    if (!room || !r_room_read(r, db, room, &a))
        return;
    g = r_room_grant(r, room, r_acc_active(&a) ? a.role : "");
    if (!g) {
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    o = json_pack("{s:s, s:i}", "grant", g, "expires_in", r->api->cfg->grant_ttl_s);
    chat_free(g);
    r_answer_json(r, 200, o);
}

void r_rooms_favourite(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    json_t *v = json_object_get(r->doc, "favourite");
    const char *p[3] = {room, r->uid, json_is_true(v) ? "true" : "false"};
    PGresult *res;

    if (!room)
        return;
    if (!json_is_boolean(v)) {
        api_reply_error(r, 400, "bad_field", "favourite must be true or false");
        return;
    }
    res = api_db_qn(db, API_Q_member_favourite, 3, p);
    if (!r_one_row(r, res, "marking a favourite"))
        return;
    PQclear(res);
    r_room_answer(r, db, room, 200);
}

/* ---- lists ---- */

void r_rooms_mine(struct api_req *r)
{
    struct api_db *db = r_db(r);
    char lim[16];
    const char *p[2] = {r->uid, lim};
    PGresult *res;
    json_t *arr;

    snprintf(lim, sizeof(lim), "%d", MINE_MAX);
    res = api_db_qn(db, API_Q_rooms_mine, 2, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "listing rooms")) {
        api_reply_unavailable(r);
        return;
    }
    arr = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *o = r_room_obj(r, PQgetvalue(res, i, 3));
        if (o)
            json_array_append_new(arr, o);
    }
    PQclear(res);
    r_answer_json(r, 200, json_pack("{s:o}", "rooms", arr));
}

void r_rooms_directory(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *after = api_query(r, "after");
    long long limit = R_ROOM_PAGE_DEFAULT;
    char sl[16];
    const char *p[4] = {NULL, after, sl, r_viewer(r)};
    PGresult *res;
    json_t *arr, *next = json_null();
    int n, shown;

    /* q: as long as a room's name may be, in any script (code points, not bytes) */
    if (!r_query_int(r, "limit", 1, R_ROOM_PAGE_MAX, &limit) ||
        !r_query_text(r, "q", NAME_MAX_CPS, &p[0]))
        return;
    if (after && !chat_room_valid(after)) {
        api_reply_code(r, CHAT_ERR_bad_room);
        return;
    }
    snprintf(sl, sizeof(sl), "%lld", limit);
    res = api_db_qn(db, API_Q_rooms_directory, 4, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "listing public rooms")) {
        api_reply_unavailable(r);
        return;
    }
    n = PQntuples(res);
    shown = n > limit ? (int)limit : n;
    arr = json_array();
    for (int i = 0; i < shown; i++) {
        json_t *o = r_room_obj(r, PQgetvalue(res, i, 0));
        if (!o)
            continue;
        if (i == shown - 1 && n > limit)
            next = json_incref(json_object_get(o, "id"));
        json_array_append_new(arr, o);
    }
    PQclear(res);
    r_answer_json(r, 200, json_pack("{s:o, s:o}", "rooms", arr, "next", next));
}
