/* r_invites.c - invites of private and group rooms (create, list, revoke, redeem) and direct
 * rooms, one per pair of users (proto/README.md section 9, "Rooms"; the shared internals:
 * r_rooms_int.h). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <sys/random.h>

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

#define INVITE_TTL_DEF   86400
#define INVITE_TTL_MIN   60
#define INVITE_TTL_MAX   2592000
#define INVITE_USES_MAX  10000
#define INVITE_CODE_BYTE 16

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
    struct r_acc a;

    if (!r_room_read(r, db, room, &a))
        return false;
    if (strcmp(a.kind, "private") != 0 && strcmp(a.kind, "group") != 0) {
        api_reply_error(r, 400, "bad_field", "only private and group rooms have invites");
        return false;
    }
    if (!r_acc_manager(&a)) {
        api_reply_error(r, 403, "forbidden", "only the room's owner and admins manage invites");
        return false;
    }
    return true;
}

void r_invites_create(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    long long ttl = INVITE_TTL_DEF, uses = 1;
    char code[32], sttl[16], suses[16];
    const char *p[5] = {code, room, r->uid, sttl, suses};
    PGresult *res;
    json_t *o;

    if (!room || !r_opt_int(r, "expires_in", INVITE_TTL_MIN, INVITE_TTL_MAX, &ttl) ||
        !r_opt_int(r, "max_uses", 0, INVITE_USES_MAX, &uses) || !invite_manager(r, db, room))
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
    r_answer_json(r, 201, o);
}

void r_invites_list(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
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
    r_answer_json(r, 200, arr ? json_pack("{s:o}", "invites", arr) : NULL);
}

void r_invites_revoke(struct api_req *r)
{
    struct api_db *db = r_db(r);
    const char *room = r_room_param(r);
    const char *p[2] = {room, r_param(r, "code")};
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
    struct api_db *db = r_db(r);
    const char *code = r_param(r, "code");
    const char *p[1] = {code};
    char room[CHAT_ROOM_MAX + 1];
    bool expired, used_up;
    struct r_acc a;
    PGresult *res;

    if (!api_acct_begin(r, db))
        return;
    if (!(res = r_run(r, db, API_Q_invite_take, 1, p, PGRES_TUPLES_OK)))
        return;
    if (PQntuples(res) != 1) {
        PQclear(res);
        r_fail(r, db, CHAT_ERR_invite_invalid, NULL);
        return;
    }
    snprintf(room, sizeof(room), "%s", PQgetvalue(res, 0, 0));
    expired = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    used_up = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    PQclear(res);
    if (!r_room_access(r, db, room, &a))
        return;
    if (!r_acc_active(&a)) { /* a member already: the code stays unused */
        if (expired || used_up) {
            r_fail(r, db, expired ? CHAT_ERR_invite_expired : CHAT_ERR_invite_used_up, NULL);
            return;
        }
        if (!r_room_add_member(r, db, room, &a))
            return;
        if (!r_exec(r, db, API_Q_invite_use, 1, p, PGRES_COMMAND_OK))
            return;
        if (!api_system_event(r->api, db, room, "joined", r->uid, NULL, NULL)) {
            r_fail_503(r, db); /* as a public room's join: the room sees the new member */
            return;
        }
    }
    r_room_commit_answer(r, db, room, 200);
}

/* ---- direct rooms ---- */

void r_rooms_direct(struct api_req *r)
{
    const struct api_cfg *cfg = r->api->cfg;
    struct api_db *db = r_db(r);
    const char *p1[1] = {r_param(r, "username")};
    char peer[24], key[48], room[CHAT_ROOM_MAX + 1], maxt[16];
    long long me, other;
    bool created = false;
    struct r_acc a;
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
        if (!(res = r_run(r, db, API_Q_room_insert, 10, p, PGRES_TUPLES_OK)))
            return;
        created = PQntuples(res) == 1;
        PQclear(res);
    }
    if (created) {
        const char *pa[3] = {room, r->uid, "member"}, *pb[3] = {room, peer, "member"};
        if (!r_exec(r, db, API_Q_member_upsert, 3, pa, PGRES_COMMAND_OK))
            return;
        if (!r_exec(r, db, API_Q_member_upsert, 3, pb, PGRES_COMMAND_OK))
            return;
        if (!r_room_announce(db, room, "direct", cfg->max_text, 0)) {
            r_fail_503(r, db);
            return;
        }
    } else { /* it exists: the caller comes back if it had left */
        if (!r_room_access(r, db, room, &a))
            return;
        if (!a.found) {
            r_fail(r, db, CHAT_ERR_internal, NULL);
            return;
        }
        if (!r_acc_active(&a)) { /* the room saw it leave: it sees it come back */
            const char *pa[3] = {room, r->uid, "member"};
            if (!r_exec(r, db, API_Q_member_upsert, 3, pa, PGRES_COMMAND_OK))
                return;
            if (!api_system_event(r->api, db, room, "joined", r->uid, NULL, NULL)) {
                r_fail_503(r, db);
                return;
            }
        }
    }
    r_room_commit_answer(r, db, room, created ? 201 : 200);
}
