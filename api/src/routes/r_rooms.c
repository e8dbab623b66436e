/* r_rooms.c - rooms, members, invites and direct rooms (proto/README.md section 9, "Rooms").
 *
 * PostgreSQL holds the record (db/migrations/0005_rooms.sql) and builds the room objects clients
 * see (room_json); this file checks who may do what, changes membership under the room row's
 * lock (room_access ... FOR UPDATE: member limits and invite uses cannot race), and tells the
 * gateways in the same transaction through the outbox: a room's settings as a chat.rooms record,
 * a member taken out of a restricted room as a member_removed event. A member of a room also gets
 * a room grant (a short-lived JWT) that the gateways check on join.
 *
 * Visibility: a public room is visible to anyone; any other room only to its active members
 * (404 for everyone else: a private room's existence is not leaked). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sys/random.h>

#include <jansson.h>

#include "chat/config.h"
#include "chat/jwt.h"
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
#include "routes/r_system.h"

#define NAME_MAX_CPS     64
#define DESC_MAX_CPS     500
#define PAGE_DEFAULT     50
#define PAGE_MAX         200
#define MINE_MAX         1000
#define INVITE_TTL_DEF   86400
#define INVITE_TTL_MIN   60
#define INVITE_TTL_MAX   2592000
#define INVITE_USES_MAX  10000
#define INVITE_CODE_BYTE 16
#define CREATE_TRIES     3
#define LOBBY            "lobby"
#define SLOW_MAX_S       3600 /* slow mode: at most an hour between one user's messages */

/* The caller's standing in a room (room_access). */
struct acc {
    bool found;
    char kind[8];  /* public, private, group, direct */
    char role[8];  /* owner, admin, member; "" never a member */
    char state[8]; /* active, left, removed; "" never a member */
    int member_limit;
    int max_text;
    bool history_after_leave;
};

static bool restricted(const struct acc *a)
{
    return strcmp(a->kind, "public") != 0;
}

static bool active(const struct acc *a)
{
    return strcmp(a->state, "active") == 0;
}

static bool manager(const struct acc *a)
{
    return active(a) && (strcmp(a->role, "owner") == 0 || strcmp(a->role, "admin") == 0);
}

static bool visible(const struct acc *a)
{
    return a->found && (!restricted(a) || active(a));
}

/* The viewer as a query parameter: an account's id, or NULL (anonymous, a bot's token). */
static const char *viewer(const struct api_req *r)
{
    size_t n = strlen(r->uid);
    return n > 0 && n <= 18 && strspn(r->uid, "0123456789") == n ? r->uid : NULL;
}

/* A path parameter of the route ("" when absent: the pattern has it, so never). */
static const char *param(const struct api_req *r, const char *name)
{
    const struct api_param *p = api_param_get(&r->params, name);
    return p ? p->str : "";
}

/* The {room} parameter, or NULL after answering 400 bad_room. */
static const char *room_param(struct api_req *r)
{
    const char *room = param(r, "room");

    if (room && chat_room_valid(room))
        return room;
    api_reply_code(r, CHAT_ERR_bad_room);
    return NULL;
}

/* Reads the caller's standing (locking the room row inside a transaction). False after
 * answering 503. */
static bool
access_user(struct api_req *r, struct api_db *db, const char *room, const char *user, struct acc *a)
{
    const char *p[2] = {room, user};
    PGresult *res = api_db_qn(db, API_Q_room_access, 2, p);

    memset(a, 0, sizeof(*a));
    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a room")) {
        api_reply_unavailable(r);
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

static bool access_of(struct api_req *r, struct api_db *db, const char *room, struct acc *a)
{
    return access_user(r, db, room, viewer(r), a);
}

/* Answers 503 after rolling back the transaction (a dependency failed). */
static void fail_503(struct api_req *r, struct api_db *db)
{
    api_db_rollback(db);
    api_reply_unavailable(r);
}

/* Runs a statement expecting status want; false after answering 503 (and rolling back). */
static PGresult *
run(struct api_req *r, struct api_db *db, enum api_q q, int n, const char *const *p, int want)
{
    PGresult *res = api_db_qn(db, q, n, p);

    if (api_db_ok(res, (ExecStatusType)want, "a rooms statement"))
        return res;
    fail_503(r, db);
    return NULL;
}

/* Answers code after rolling back the transaction. */
static void fail(struct api_req *r, struct api_db *db, enum chat_errcode code)
{
    api_db_rollback(db);
    api_reply_code(r, code);
}

static void fail_msg(struct api_req *r, struct api_db *db, enum chat_errcode code, const char *msg)
{
    api_db_rollback(db);
    api_reply_error(r, chat_errcode_http(code), chat_errcode_name(code), msg);
}

/* ---- grants and answers ---- */

/* A room grant for the caller, as a new string (chat_free), or NULL. */
static char *grant_for(struct api_req *r, const char *room, const char *role)
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

/* Writes j (stolen) as the answer with status. */
static void answer_json(struct api_req *r, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    json_decref(j);
    chat_buf_reset(&r->resp);
    if (!s || chat_buf_appends(&r->resp, s) != CHAT_OK) {
        chat_free(s);
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    chat_free(s);
    api_reply(r, status, "application/json");
}

/* Parses a room object of room_json and adds the caller's grant when it is an active member
 * ("me" set). NULL when the text is not an object (a bug). */
static json_t *room_obj(struct api_req *r, const char *text)
{
    json_t *o = json_loads(text, 0, NULL);
    json_t *me = json_object_get(o, "me");

    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    if (json_is_object(me) && viewer(r)) {
        const char *role = json_string_value(json_object_get(me, "role"));
        char *g = grant_for(r, json_string_value(json_object_get(o, "id")), role ? role : "");
        if (g)
            json_object_set_new(o, "grant", json_string(g));
        chat_free(g);
    }
    return o;
}

/* Answers the room as the caller sees it (after any commit). */
static void answer_room(struct api_req *r, struct api_db *db, const char *room, int status)
{
    const char *p[2] = {room, viewer(r)};
    PGresult *res = api_db_qn(db, API_Q_room_view, 2, p);
    json_t *o;

    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a room")) {
        api_reply_unavailable(r);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    o = room_obj(r, PQgetvalue(res, 0, 0));
    PQclear(res);
    if (!o) {
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    answer_json(r, status, o);
}

/* ---- what the gateways learn (outbox, inside the caller's transaction) ---- */

static bool
announce_room(struct api_db *db, const char *room, const char *kind, int max_text, int slow_s)
{
    struct chat_buf b;
    bool good;

    chat_buf_init(&b, 0, 0);
    good = chat_enc_room_rec(&b, room, kind, max_text, slow_s, chat_now_ms()) == CHAT_OK &&
           api_outbox_put(db, "rooms", room, "room", &b);
    chat_buf_fini(&b);
    return good;
}

static bool announce_removed(struct api_db *db, const char *user, const char *room, const char *why)
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

/* The JSON object body of a route (empty: {}), kept in r->doc for the handler: the body check
 * of the rooms, moderation and admin routes (routes.h). */
void r_json_body_check(struct api_req *r)
{
    json_error_t e;
    json_t *o;

    if (!chat_utf8_valid(chat_buf_data(&r->body), r->body.len, NULL)) {
        api_reply_code(r, CHAT_ERR_bad_utf8);
        return;
    }
    o = r->body.len ? json_loadb(chat_buf_data(&r->body), r->body.len, JSON_REJECT_DUPLICATES, &e)
                    : json_object();
    if (!json_is_object(o)) {
        json_decref(o);
        api_reply_code(r, CHAT_ERR_bad_json);
        return;
    }
    r->doc = o;
}

/* An optional string field: absent (*out NULL, true), or 1..max_cps code points without control
 * characters (newlines allowed when multiline). False after answering 400 bad_field. */
static bool
opt_text(struct api_req *r, const char *key, size_t max_cps, bool multiline, const char **out)
{
    json_t *v = json_object_get(r->doc, key);
    size_t cps = 0;

    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (json_is_string(v) && chat_utf8_valid(json_string_value(v), json_string_length(v), &cps) &&
        cps <= max_cps && strlen(json_string_value(v)) == json_string_length(v) &&
        !chat_utf8_has_control(json_string_value(v), json_string_length(v),
                               multiline ? "\n" : "")) {
        *out = json_string_value(v);
        return true;
    }
    char msg[96];
    snprintf(msg, sizeof(msg), "%s must be a string of at most %zu characters", key, max_cps);
    api_reply_error(r, 400, "bad_field", msg);
    return false;
}

/* An optional integer field in [lo, hi]: absent leaves *out. False after answering 400. */
static bool opt_int(struct api_req *r, const char *key, long long lo, long long hi, long long *out)
{
    json_t *v = json_object_get(r->doc, key);
    char msg[96];

    if (!v || json_is_null(v))
        return true;
    if (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi) {
        *out = json_integer_value(v);
        return true;
    }
    snprintf(msg, sizeof(msg), "%s must be an integer in %lld..%lld", key, lo, hi);
    api_reply_error(r, 400, "bad_field", msg);
    return false;
}

/* An optional boolean: -1 absent, 0, 1. False after answering 400. */
static bool opt_bool(struct api_req *r, const char *key, int *out)
{
    json_t *v = json_object_get(r->doc, key);

    *out = -1;
    if (!v || json_is_null(v))
        return true;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    api_reply_error(r, 400, "bad_field", "a field must be true or false");
    return false;
}

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
    if (!opt_text(r, "name", NAME_MAX_CPS, false, &s->name) ||
        !opt_text(r, "description", DESC_MAX_CPS, true, &s->description) ||
        !opt_int(r, "member_limit", 0, cfg->room_member_limit_max, &s->member_limit) ||
        !opt_int(r, "max_text", 1, cfg->max_text, &s->max_text) ||
        !opt_int(r, "slow_mode_s", 0, SLOW_MAX_S, &s->slow_mode_s) ||
        !opt_bool(r, "history_after_leave", &s->history_after_leave))
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
    struct api_db *db = &api_conns_get(r->api)->db;
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
        if (!(res = run(r, db, API_Q_room_insert, 10, p, PGRES_TUPLES_OK)))
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
        if (!(res = run(r, db, API_Q_member_upsert, 3, pm, PGRES_COMMAND_OK)))
            return;
        PQclear(res);
        if (!announce_room(db, room, kind, (int)s.max_text, 0)) {
            fail_503(r, db);
            return;
        }
        if (!api_acct_commit(r, db))
            return;
    }
    if (!room[0]) {
        api_reply_code(r, CHAT_ERR_room_exists);
        return;
    }
    answer_room(r, db, room, 201);
}

void r_rooms_get(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    struct acc a;

    if (!room || !access_of(r, db, room, &a))
        return;
    if (!visible(&a)) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    answer_room(r, db, room, 200);
}

void r_rooms_update(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    char limit[24], maxt[24], slow[24];
    struct settings s;
    struct acc a;
    PGresult *res;

    if (!room || !read_settings(r, &s))
        return;
    snprintf(limit, sizeof(limit), "%lld", s.member_limit);
    snprintf(maxt, sizeof(maxt), "%lld", s.max_text);
    snprintf(slow, sizeof(slow), "%lld", s.slow_mode_s);
    if (!api_acct_begin(r, db) || !access_of(r, db, room, &a))
        return;
    if (!visible(&a)) {
        fail(r, db, CHAT_ERR_not_found);
        return;
    }
    if (!manager(&a)) {
        fail_msg(r, db, CHAT_ERR_forbidden, "only the room's owner and admins change it");
        return;
    }
    if (s.has_limit && (strcmp(a.kind, "public") == 0 || strcmp(a.kind, "direct") == 0)) {
        fail_msg(r, db, CHAT_ERR_bad_field, "public and direct rooms have no member limit");
        return;
    }
    if (s.has_limit && s.member_limit < 2) {
        fail_msg(r, db, CHAT_ERR_bad_field, "member_limit must be at least 2");
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
        if (!(res = run(r, db, API_Q_room_update, 7, p, PGRES_TUPLES_OK)))
            return;
    }
    if (PQntuples(res) != 1 ||
        !announce_room(db, room, PQgetvalue(res, 0, 0), (int)api_db_ll(res, 0, 1),
                       (int)api_db_ll(res, 0, 2))) {
        PQclear(res);
        fail_503(r, db);
        return;
    }
    PQclear(res);
    if (!api_system_event(r->api, db, room, "room_updated", r->uid, NULL, NULL)) {
        fail_503(r, db);
        return;
    }
    if (api_acct_commit(r, db))
        answer_room(r, db, room, 200);
}

void r_rooms_delete(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    const char *p[1] = {room};
    struct acc a;
    PGresult *res;

    if (!room)
        return;
    if (strcmp(room, LOBBY) == 0) {
        api_reply_error(r, 403, "forbidden", "the lobby cannot be deleted");
        return;
    }
    if (!api_acct_begin(r, db) || !access_of(r, db, room, &a))
        return;
    if (!visible(&a)) {
        fail(r, db, CHAT_ERR_not_found);
        return;
    }
    if (!(active(&a) && strcmp(a.role, "owner") == 0) && strcmp(r->claims.role, "admin") != 0) {
        fail_msg(r, db, CHAT_ERR_forbidden, "only the room's owner deletes it");
        return;
    }
    if (!(res = run(r, db, API_Q_room_delete, 1, p, PGRES_TUPLES_OK)))
        return;
    PQclear(res);
    if (!announce_deleted(db, room)) {
        fail_503(r, db);
        return;
    }
    if (api_acct_commit(r, db))
        api_reply(r, 204, NULL);
}

/* Adds the caller (role member) under the lock access_of took; false after answering. */
static bool add_member(struct api_req *r, struct api_db *db, const char *room, const struct acc *a)
{
    const char *p[3] = {room, r->uid, "member"};
    PGresult *res;

    if (a->member_limit > 0) {
        const char *pc[1] = {room};
        if (!(res = run(r, db, API_Q_room_active_members, 1, pc, PGRES_TUPLES_OK)))
            return false;
        long long n = api_db_ll(res, 0, 0);
        PQclear(res);
        if (n >= a->member_limit) {
            fail(r, db, CHAT_ERR_room_full);
            return false;
        }
    }
    if (!(res = run(r, db, API_Q_member_upsert, 3, p, PGRES_COMMAND_OK)))
        return false;
    PQclear(res);
    return true;
}

void r_rooms_join(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    struct acc a;

    if (!room || !api_acct_begin(r, db) || !access_of(r, db, room, &a))
        return;
    if (!visible(&a)) {
        fail(r, db, CHAT_ERR_not_found);
        return;
    }
    if (restricted(&a) && !active(&a)) { /* visible(): only a member sees it */
        fail_msg(r, db, CHAT_ERR_forbidden, "private and group rooms are joined with an invite");
        return;
    }
    if (!active(&a) && (!add_member(r, db, room, &a) ||
                        !api_system_event(r->api, db, room, "joined", r->uid, NULL, NULL))) {
        if (!r->status)
            fail_503(r, db);
        return;
    }
    if (api_acct_commit(r, db))
        answer_room(r, db, room, 200);
}

void r_rooms_leave(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    const char *p[3] = {room, r->uid, "left"};
    struct acc a;
    PGresult *res;

    if (!room || !api_acct_begin(r, db) || !access_of(r, db, room, &a))
        return;
    if (!a.found || !active(&a)) {
        fail(r, db, CHAT_ERR_not_found);
        return;
    }
    if (!(res = run(r, db, API_Q_member_leave, 3, p, PGRES_TUPLES_OK)))
        return;
    PQclear(res);
    if (strcmp(a.role, "owner") == 0) {
        if (!(res = run(r, db, API_Q_room_hand_over, 1, p, PGRES_TUPLES_OK)))
            return;
        PQclear(res);
    }
    if ((restricted(&a) && !announce_removed(db, r->uid, room, "left")) ||
        !api_system_event(r->api, db, room, "left", r->uid, NULL, NULL)) {
        fail_503(r, db);
        return;
    }
    if (api_acct_commit(r, db))
        api_reply(r, 204, NULL);
}

void r_rooms_grant(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    struct acc a;
    char *g;
    json_t *o;

    if (!room || !access_of(r, db, room, &a))
        return;
    if (!visible(&a)) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    g = grant_for(r, room, active(&a) ? a.role : "");
    if (!g) {
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    o = json_pack("{s:s, s:i}", "grant", g, "expires_in", r->api->cfg->grant_ttl_s);
    chat_free(g);
    answer_json(r, 200, o);
}

void r_rooms_favourite(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
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
    if (!api_db_ok(res, PGRES_TUPLES_OK, "marking a favourite")) {
        api_reply_unavailable(r);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    PQclear(res);
    answer_room(r, db, room, 200);
}

/* ---- members ---- */

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

/* A paging query argument: absent -> def; else an integer in [lo, hi] (false after 400). */
static bool query_int(struct api_req *r, const char *key, long long lo, long long hi, long long *v)
{
    const char *s = api_query(r, key);
    long long x;
    char msg[96];

    if (!s)
        return true;
    if (chat_parse_ll(s, lo, hi, &x) == CHAT_OK) {
        *v = x;
        return true;
    }
    snprintf(msg, sizeof(msg), "%s must be an integer in %lld..%lld", key, lo, hi);
    api_reply_error(r, 400, "bad_field", msg);
    return false;
}

void r_rooms_members(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    long long after = 0, limit = PAGE_DEFAULT;
    char sa[24], sl[16];
    const char *p[3] = {room, sa, sl};
    struct acc a;
    PGresult *res;
    json_t *arr, *o;
    int n, shown;
    const char **ids;
    bool *online;

    if (!room || !query_int(r, "after", 0, 999999999999999999LL, &after) ||
        !query_int(r, "limit", 1, PAGE_MAX, &limit) || !access_of(r, db, room, &a))
        return;
    if (!visible(&a)) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
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
    answer_json(r, 200, o);
}

/* The target member's role (under the room's lock); false after answering. */
static bool target_role(struct api_req *r, struct api_db *db, const char *room, char *role)
{
    struct acc t;

    if (!access_user(r, db, room, param(r, "id"), &t))
        return false;
    if (!active(&t)) {
        fail_msg(r, db, CHAT_ERR_not_found, "that user is not a member of the room");
        return false;
    }
    snprintf(role, 8, "%s", t.role);
    return true;
}

void r_rooms_member_role(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r), *target = param(r, "id");
    const char *role = json_string_value(json_object_get(r->doc, "role"));
    char trole[8];
    struct acc a;
    PGresult *res;

    if (!room)
        return;
    if (!role || (strcmp(role, "owner") && strcmp(role, "admin") && strcmp(role, "member"))) {
        api_reply_error(r, 400, "bad_field", "role must be owner, admin or member");
        return;
    }
    if (!api_acct_begin(r, db) || !access_of(r, db, room, &a))
        return;
    if (!visible(&a)) {
        fail(r, db, CHAT_ERR_not_found);
        return;
    }
    if (!active(&a) || strcmp(a.role, "owner") != 0 || strcmp(a.kind, "direct") == 0) {
        fail_msg(r, db, CHAT_ERR_forbidden, "only the room's owner changes roles");
        return;
    }
    if (strcmp(target, r->uid) == 0) {
        fail_msg(r, db, CHAT_ERR_bad_field, "hand ownership to another member instead");
        return;
    }
    if (!target_role(r, db, room, trole))
        return;
    {
        const char *p[3] = {room, target, role};
        if (!(res = run(r, db, API_Q_member_set_role, 3, p, PGRES_TUPLES_OK)))
            return;
        PQclear(res);
    }
    if (strcmp(role, "owner") == 0) { /* one owner: the old one becomes an admin */
        const char *p[3] = {room, r->uid, "admin"};
        if (!(res = run(r, db, API_Q_member_set_role, 3, p, PGRES_TUPLES_OK)))
            return;
        PQclear(res);
    }
    if (api_acct_commit(r, db))
        api_reply(r, 204, NULL);
}

void r_rooms_member_remove(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r), *target = param(r, "id");
    char trole[8];
    struct acc a;
    PGresult *res;

    if (!room || !api_acct_begin(r, db) || !access_of(r, db, room, &a))
        return;
    if (!visible(&a)) {
        fail(r, db, CHAT_ERR_not_found);
        return;
    }
    if (!manager(&a) || strcmp(a.kind, "direct") == 0) {
        fail_msg(r, db, CHAT_ERR_forbidden, "only the room's owner and admins remove members");
        return;
    }
    if (strcmp(target, r->uid) == 0) {
        fail_msg(r, db, CHAT_ERR_bad_field, "leave the room instead");
        return;
    }
    if (!target_role(r, db, room, trole))
        return;
    if (strcmp(a.role, "owner") != 0 && strcmp(trole, "member") != 0) {
        fail_msg(r, db, CHAT_ERR_forbidden, "admins remove members only");
        return;
    }
    {
        const char *p[3] = {room, target, "removed"};
        if (!(res = run(r, db, API_Q_member_leave, 3, p, PGRES_TUPLES_OK)))
            return;
        PQclear(res);
    }
    if (!announce_removed(db, target, room, "removed") ||
        !api_system_event(r->api, db, room, "kicked", target, NULL, NULL)) {
        fail_503(r, db);
        return;
    }
    if (api_acct_commit(r, db))
        api_reply(r, 204, NULL);
}

/* ---- invites ---- */

/* A new invite code: 16 random bytes, base64url (22 characters of [A-Za-z0-9_-]). */
static bool invite_code(char out[32])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[INVITE_CODE_BYTE + 2] = {0};
    size_t o = 0;

    if (getrandom(raw, INVITE_CODE_BYTE, 0) != INVITE_CODE_BYTE)
        return false;
    for (size_t i = 0; i < INVITE_CODE_BYTE; i += 3) {
        unsigned v = (unsigned)raw[i] << 16 | (unsigned)raw[i + 1] << 8 | raw[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < INVITE_CODE_BYTE)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < INVITE_CODE_BYTE)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    return true;
}

/* The caller manages invites of room: owner or admin of a private or group room. */
static bool invite_manager(struct api_req *r, struct api_db *db, const char *room)
{
    struct acc a;

    if (!access_of(r, db, room, &a))
        return false;
    if (!visible(&a)) {
        api_reply_code(r, CHAT_ERR_not_found);
        return false;
    }
    if (strcmp(a.kind, "private") != 0 && strcmp(a.kind, "group") != 0) {
        api_reply_error(r, 400, "bad_field", "only private and group rooms have invites");
        return false;
    }
    if (!manager(&a)) {
        api_reply_error(r, 403, "forbidden", "only the room's owner and admins manage invites");
        return false;
    }
    return true;
}

void r_invites_create(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    long long ttl = INVITE_TTL_DEF, uses = 1;
    char code[32], sttl[16], suses[16];
    const char *p[5] = {code, room, r->uid, sttl, suses};
    PGresult *res;
    json_t *o;

    if (!room || !opt_int(r, "expires_in", INVITE_TTL_MIN, INVITE_TTL_MAX, &ttl) ||
        !opt_int(r, "max_uses", 0, INVITE_USES_MAX, &uses) || !invite_manager(r, db, room))
        return;
    if (!invite_code(code)) {
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    snprintf(sttl, sizeof(sttl), "%lld", ttl);
    snprintf(suses, sizeof(suses), "%lld", uses);
    res = api_db_qn(db, API_Q_invite_insert, 5, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "creating an invite")) {
        api_reply_unavailable(r);
        return;
    }
    o = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    answer_json(r, 201, o);
}

void r_invites_list(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    const char *p[1] = {room};
    PGresult *res;
    json_t *arr;

    if (!room || !invite_manager(r, db, room))
        return;
    res = api_db_qn(db, API_Q_invites_list, 1, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "listing invites")) {
        api_reply_unavailable(r);
        return;
    }
    arr = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    answer_json(r, 200, arr ? json_pack("{s:o}", "invites", arr) : NULL);
}

void r_invites_revoke(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    const char *p[2] = {room, param(r, "code")};
    PGresult *res;

    if (!room || !invite_manager(r, db, room))
        return;
    res = api_db_qn(db, API_Q_invite_revoke, 2, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "revoking an invite")) {
        api_reply_unavailable(r);
        return;
    }
    if (PQntuples(res) == 1)
        api_reply(r, 204, NULL);
    else
        api_reply_code(r, CHAT_ERR_invite_invalid);
    PQclear(res);
}

void r_invites_redeem(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *code = param(r, "code");
    const char *p[1] = {code};
    char room[CHAT_ROOM_MAX + 1];
    bool expired, used_up;
    struct acc a;
    PGresult *res;

    if (!api_acct_begin(r, db))
        return;
    if (!(res = run(r, db, API_Q_invite_take, 1, p, PGRES_TUPLES_OK)))
        return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        fail(r, db, CHAT_ERR_invite_invalid);
        return;
    }
    snprintf(room, sizeof(room), "%s", PQgetvalue(res, 0, 0));
    expired = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    used_up = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    PQclear(res);
    if (!access_of(r, db, room, &a))
        return;
    if (!active(&a)) { /* a member already: the code stays unused */
        if (expired || used_up) {
            fail(r, db, expired ? CHAT_ERR_invite_expired : CHAT_ERR_invite_used_up);
            return;
        }
        if (!add_member(r, db, room, &a))
            return;
        if (!(res = run(r, db, API_Q_invite_use, 1, p, PGRES_COMMAND_OK)))
            return;
        PQclear(res);
    }
    if (api_acct_commit(r, db))
        answer_room(r, db, room, 200);
}

/* ---- direct rooms ---- */

void r_rooms_direct(struct api_req *r)
{
    const struct api_cfg *cfg = r->api->cfg;
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *p1[1] = {param(r, "username")};
    char peer[24], key[48], room[CHAT_ROOM_MAX + 1], maxt[16];
    long long me, other;
    bool created = false;
    struct acc a;
    PGresult *res = api_db_qn(db, API_Q_user_by_username, 1, p1);

    if (!api_db_ok(res, PGRES_TUPLES_OK, "finding a user")) {
        api_reply_unavailable(r);
        return;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        api_reply_error(r, 404, "not_found", "no user of that name");
        return;
    }
    snprintf(peer, sizeof(peer), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (strcmp(peer, r->uid) == 0) {
        api_reply_error(r, 400, "bad_field", "a direct room needs another user");
        return;
    }
    if (chat_parse_ll(peer, 1, LLONG_MAX, &other) != CHAT_OK ||
        chat_parse_ll(r->uid, 1, LLONG_MAX, &me) != CHAT_OK) {
        api_reply_code(r, CHAT_ERR_internal);
        return;
    }
    snprintf(key, sizeof(key), "%lld-%lld", me < other ? me : other, me < other ? other : me);
    snprintf(room, sizeof(room), "_d%s", key);
    snprintf(maxt, sizeof(maxt), "%d", cfg->max_text);
    if (!api_acct_begin(r, db))
        return;
    {
        const char *p[10] = {room, "_d", "direct", "", "", r->uid, "2", maxt, "true", key};
        if (!(res = run(r, db, API_Q_room_insert, 10, p, PGRES_TUPLES_OK)))
            return;
        created = PQntuples(res) == 1;
        PQclear(res);
    }
    if (created) {
        const char *pa[3] = {room, r->uid, "member"}, *pb[3] = {room, peer, "member"};
        if (!(res = run(r, db, API_Q_member_upsert, 3, pa, PGRES_COMMAND_OK)))
            return;
        PQclear(res);
        if (!(res = run(r, db, API_Q_member_upsert, 3, pb, PGRES_COMMAND_OK)))
            return;
        PQclear(res);
        if (!announce_room(db, room, "direct", cfg->max_text, 0)) {
            fail_503(r, db);
            return;
        }
    } else { /* it exists: the caller comes back if it had left */
        if (!access_of(r, db, room, &a))
            return;
        if (!a.found) {
            fail(r, db, CHAT_ERR_internal);
            return;
        }
        if (!active(&a)) {
            const char *pa[3] = {room, r->uid, "member"};
            if (!(res = run(r, db, API_Q_member_upsert, 3, pa, PGRES_COMMAND_OK)))
                return;
            PQclear(res);
        }
    }
    if (api_acct_commit(r, db))
        answer_room(r, db, room, created ? 201 : 200);
}

/* ---- lists ---- */

void r_rooms_mine(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
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
        json_t *o = room_obj(r, PQgetvalue(res, i, 3));
        if (o)
            json_array_append_new(arr, o);
    }
    PQclear(res);
    answer_json(r, 200, json_pack("{s:o}", "rooms", arr));
}

void r_rooms_directory(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *q = api_query(r, "q"), *after = api_query(r, "after");
    long long limit = PAGE_DEFAULT;
    char sl[16];
    const char *p[4] = {q && q[0] ? q : NULL, after, sl, viewer(r)};
    PGresult *res;
    json_t *arr, *next = json_null();
    int n, shown;

    if (!query_int(r, "limit", 1, PAGE_MAX, &limit))
        return;
    if ((q && strlen(q) > CHAT_ROOM_MAX) || (q && !chat_utf8_valid(q, strlen(q), NULL))) {
        api_reply_error(r, 400, "bad_field", "q must be at most 64 bytes of UTF-8");
        return;
    }
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
        json_t *o = room_obj(r, PQgetvalue(res, i, 0));
        if (!o)
            continue;
        if (i == shown - 1 && n > limit)
            next = json_incref(json_object_get(o, "id"));
        json_array_append_new(arr, o);
    }
    PQclear(res);
    answer_json(r, 200, json_pack("{s:o, s:o}", "rooms", arr, "next", next));
}

/* ---- room moderation (issue 13): mute, ban, kick, lift ----
 * The room's owner and admins, and site admins, act on a user in the room (a member or anyone
 * chatting in a public room). A mute or ban is a `sanctions` row and a chat.sanctions record
 * (every gateway enforces it within a second); a kick removes the member and takes its sockets
 * out (member_removed, reason kicked); every action writes its audit row in its transaction. */

#define MOD_DURATION_MAX (366 * 86400) /* a timed sanction lasts at most a year */

/* The caller may moderate room: an active owner or admin, or a site admin (the database's
 * role). *site tells which. False after answering (and rolling back). */
static bool moderator(struct api_req *r, struct api_db *db, const struct acc *a, bool *site)
{
    const char *p[1] = {r->uid};
    PGresult *res;

    *site = false;
    if (manager(a))
        return true;
    if (!(res = run(r, db, API_Q_user_site_role, 1, p, PGRES_TUPLES_OK)))
        return false;
    *site = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "admin") == 0;
    PQclear(res);
    if (*site)
        return true;
    if (!visible(a))
        fail(r, db, CHAT_ERR_not_found);
    else
        fail_msg(r, db, CHAT_ERR_forbidden, "only the room's owner and admins moderate it");
    return false;
}

/* May the caller act on target (its standing in the room: t)? Not on itself; on the owner only
 * a site admin; on an admin the owner or a site admin. False after answering. */
static bool may_act_on(struct api_req *r,
                       struct api_db *db,
                       const struct acc *me,
                       bool site,
                       const char *target,
                       const struct acc *t)
{
    if (strcmp(target, r->uid) == 0) {
        fail_msg(r, db, CHAT_ERR_bad_field, "a moderator cannot act on itself");
        return false;
    }
    if (active(t) && !site &&
        (strcmp(t->role, "owner") == 0 ||
         (strcmp(t->role, "admin") == 0 && strcmp(me->role, "owner") != 0))) {
        fail_msg(r, db, CHAT_ERR_forbidden, "admins act on members only; the owner on admins");
        return false;
    }
    return true;
}

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
    return opt_int(r, "duration_s", 1, MOD_DURATION_MAX, duration) &&
           opt_text(r, "reason", DESC_MAX_CPS, false, reason);
}

void r_rooms_moderate(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r), *action = param(r, "action"), *user, *reason;
    long long duration;
    char dur[24];
    int64_t until = 0;
    struct acc me, t;
    bool site, kick;
    PGresult *res;

    if (!room)
        return;
    kick = strcmp(action, "kick") == 0;
    if (!kick && strcmp(action, "mute") != 0 && strcmp(action, "ban") != 0) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    if (!mod_body(r, &user, &duration, &reason) || !api_acct_begin(r, db) ||
        !access_of(r, db, room, &me))
        return;
    if (!me.found) {
        fail(r, db, CHAT_ERR_not_found);
        return;
    }
    if (!moderator(r, db, &me, &site) || !access_user(r, db, room, user, &t) ||
        !may_act_on(r, db, &me, site, user, &t))
        return;
    if (!kick) { /* a new sanction replaces the one in force */
        const char *pl[4] = {user, room, action, r->uid};
        const char *pa[6] = {action, user, room, reason, r->uid, NULL};
        if (!(res = run(r, db, API_Q_sanction_lift, 4, pl, PGRES_TUPLES_OK)))
            return;
        PQclear(res);
        if (duration > 0) {
            snprintf(dur, sizeof(dur), "%lld", duration);
            pa[5] = dur;
        }
        if (!(res = run(r, db, API_Q_sanction_add, 6, pa, PGRES_TUPLES_OK)))
            return;
        until = PQgetisnull(res, 0, 1) ? 0 : api_db_ll(res, 0, 1);
        PQclear(res);
        if (!announce_sanction(db, user, room, action, until, reason ? reason : "")) {
            fail_503(r, db);
            return;
        }
    }
    if ((kick || strcmp(action, "ban") == 0) && active(&t)) {
        const char *pm[3] = {room, user, "removed"};
        if (!(res = run(r, db, API_Q_member_leave, 3, pm, PGRES_TUPLES_OK)))
            return;
        PQclear(res);
    }
    /* a kick takes the user's sockets out now (it may come back to a public room); a ban does
     * so through its sanction */
    if (kick && !announce_removed(db, user, room, "kicked")) {
        fail_503(r, db);
        return;
    }
    /* the room sees a moderation action (a mute, a kick, a ban) as a system message */
    if (!api_system_event(r->api, db, room,
                          kick                         ? "kicked"
                          : strcmp(action, "ban") == 0 ? "banned"
                                                       : "muted",
                          user, NULL, reason)) {
        fail_503(r, db);
        return;
    }
    if (!api_audit_add(db, &(struct api_audit){.actor = r->uid,
                                               .action = action,
                                               .target = user,
                                               .room = room,
                                               .reason = reason,
                                               .expires_ms = until})) {
        fail_503(r, db);
        return;
    }
    if (!api_acct_commit(r, db))
        return;
    if (kick) {
        api_reply(r, 204, NULL);
        return;
    }
    answer_json(r, 201,
                json_pack("{s:s, s:s, s:s, s:o, s:s}", "kind", action, "user", user, "room", room,
                          "until", until > 0 ? json_integer(until) : json_null(), "reason",
                          reason ? reason : ""));
}

void r_rooms_unmoderate(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r), *action = param(r, "action"), *user = param(r, "user");
    const char *pl[4] = {user, room, action, r->uid};
    struct acc me;
    bool site;
    PGresult *res;
    int n;

    if (!room)
        return;
    if (strcmp(action, "mute") != 0 && strcmp(action, "ban") != 0) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    if (!api_acct_begin(r, db) || !access_of(r, db, room, &me))
        return;
    if (!me.found) {
        fail(r, db, CHAT_ERR_not_found);
        return;
    }
    if (!moderator(r, db, &me, &site))
        return;
    if (!(res = run(r, db, API_Q_sanction_lift, 4, pl, PGRES_TUPLES_OK)))
        return;
    n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        fail_msg(r, db, CHAT_ERR_not_found, "no such sanction in force");
        return;
    }
    if (!announce_sanction(db, user, room, action, -1, NULL) ||
        !api_audit_add(
            db, &(struct api_audit){.actor = r->uid,
                                    .action = strcmp(action, "mute") == 0 ? "unmute" : "unban",
                                    .target = user,
                                    .room = room})) {
        fail_503(r, db);
        return;
    }
    if (api_acct_commit(r, db))
        api_reply(r, 204, NULL);
}

void r_rooms_sanctions(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *room = room_param(r);
    const char *p[1] = {room};
    struct acc me;
    bool site;
    PGresult *res;
    json_t *arr;

    if (!room || !api_acct_begin(r, db) || !access_of(r, db, room, &me))
        return;
    if (!me.found) {
        fail(r, db, CHAT_ERR_not_found);
        return;
    }
    if (!moderator(r, db, &me, &site))
        return;
    if (!(res = run(r, db, API_Q_sanctions_of_room, 1, p, PGRES_TUPLES_OK)))
        return;
    arr = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    if (api_acct_commit(r, db))
        answer_json(r, 200, arr ? json_pack("{s:o}", "sanctions", arr) : NULL);
    else
        json_decref(arr);
}

/* ---- site-wide sanctions (site admins; the router checked the role: API_ADMIN) ----
 * POST /api/v1/admin/users/{id}/sanctions/{chat_ban|mute} {"duration_s","reason"}: the user may
 * not send anywhere; DELETE .../{chat_ban|mute}: lifted. (A site ban is POST .../ban: sessions
 * revoked, login refused; routes/r_admin.c.) */
void r_site_sanction(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *kind = param(r, "action"), *user = param(r, "id"), *reason = NULL;
    long long duration = -1;
    char dur[24];
    const char *pl[4] = {user, NULL, kind, r->uid};
    const char *pa[6] = {kind, user, NULL, NULL, r->uid, NULL};
    int64_t until;
    PGresult *res;

    if (strcmp(kind, "chat_ban") != 0 && strcmp(kind, "mute") != 0) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    if (strcmp(user, r->uid) == 0) {
        api_reply_error(r, 400, "bad_field", "an admin cannot act on itself");
        return;
    }
    if (!opt_int(r, "duration_s", 1, MOD_DURATION_MAX, &duration) ||
        !opt_text(r, "reason", DESC_MAX_CPS, false, &reason) || !api_acct_begin(r, db))
        return;
    pa[3] = reason;
    if (duration > 0) {
        snprintf(dur, sizeof(dur), "%lld", duration);
        pa[5] = dur;
    }
    if (!(res = run(r, db, API_Q_sanction_lift, 4, pl, PGRES_TUPLES_OK)))
        return;
    PQclear(res);
    if (!(res = run(r, db, API_Q_sanction_add, 6, pa, PGRES_TUPLES_OK)))
        return;
    until = PQgetisnull(res, 0, 1) ? 0 : api_db_ll(res, 0, 1);
    PQclear(res);
    if (!announce_sanction(db, user, "*", kind, until, reason ? reason : "") ||
        !api_audit_add(db, &(struct api_audit){.actor = r->uid,
                                               .action = kind,
                                               .target = user,
                                               .reason = reason,
                                               .expires_ms = until})) {
        fail_503(r, db);
        return;
    }
    if (api_acct_commit(r, db))
        answer_json(r, 201,
                    json_pack("{s:s, s:s, s:s, s:o, s:s}", "kind", kind, "user", user, "room", "*",
                              "until", until > 0 ? json_integer(until) : json_null(), "reason",
                              reason ? reason : ""));
}

void r_site_unsanction(struct api_req *r)
{
    struct api_db *db = &api_conns_get(r->api)->db;
    const char *kind = param(r, "action"), *user = param(r, "id");
    const char *pl[4] = {user, NULL, kind, r->uid};
    PGresult *res;
    int n;

    if (strcmp(kind, "chat_ban") != 0 && strcmp(kind, "mute") != 0) {
        api_reply_code(r, CHAT_ERR_not_found);
        return;
    }
    if (!api_acct_begin(r, db))
        return;
    if (!(res = run(r, db, API_Q_sanction_lift, 4, pl, PGRES_TUPLES_OK)))
        return;
    n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        fail_msg(r, db, CHAT_ERR_not_found, "no such sanction in force");
        return;
    }
    if (!announce_sanction(db, user, "*", kind, -1, NULL) ||
        !api_audit_add(db, &(struct api_audit){
                               .actor = r->uid,
                               .action = strcmp(kind, "mute") == 0 ? "unmute" : "lift_chat_ban",
                               .target = user})) {
        fail_503(r, db);
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
