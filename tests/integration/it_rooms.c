/* it_rooms.c - rooms and who may do what in them (issue 11, proto/README.md section 9 "Rooms"
 * and section 4 `join`), against the real cluster:
 *   - the permission matrix (anonymous, non-member, member, admin, owner, removed member) for
 *     every room kind, on REST (GET room, its grant, PATCH, DELETE, member removal) and on the
 *     gateways' `join` (no grant, another user's grant, a grant from before a removal);
 *   - a removed member's sockets leave the room on both gateways within a second;
 *   - invites: expiry, use limit, revocation, the member limit;
 *   - joins (public, by invite) and leaves seen by the room as system messages;
 *   - one direct room per pair, whoever asks first;
 *   - the lobby's 30 code points, enforced by the gateways from chat.rooms;
 *   - a deleted room takes every socket out; a site admin (the database's role, not the
 *     token's) deletes any room;
 *   - my rooms, the directory's search and paging (q in code points);
 *   - a room ban holds on a REST join and on invites; a removed owner's room is handed over;
 *     room_updated names what changed;
 *   - a socket that stops being the user its grant named (session revoked or expired) is out of
 *     its restricted rooms at once, and a new login on it (the same user or another) does not
 *     put it back: a removal cannot miss it, nobody posts through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "it_acct.h"
#include "it_user.h"
#include "it_util.h"
#include "wsc.h"

#define WAIT_MS   10000
#define REMOVE_MS 1000 /* a removal reaches every gateway within this (issue 11) */
#define KINDS     4

static struct it_client cl;

static void path_of(char *out, size_t cap, const char *room, const char *tail)
{
    snprintf(out, cap, "/api/v1/rooms/%s%s", room, tail ? tail : "");
}

/* GET the room as token (NULL: anonymous): want 200 or 404. */
static void expect_visible(const char *room, const char *token, bool visible, const char *who)
{
    char p[160];
    json_t *out = NULL;
    int st;

    path_of(p, sizeof(p), room, NULL);
    st = it_api(API2, "GET", p, token, &cl, NULL, &out, NULL);
    if (st != (visible ? 200 : 404))
        fail_msg("GET %s as %s: %d, want %d", room, who, st, visible ? 200 : 404);
    if (visible)
        assert_string_equal(it_jstr(out, "id"), room);
    else
        it_check_error(st, out, 404, "not_found", who);
    json_decref(out);
}

/* The grant of room for token (a copy: free()), or NULL when refused with 404. */
static char *grant_of(const char *room, const char *token)
{
    char p[160];
    json_t *out = NULL;
    char *g = NULL;
    int st;

    path_of(p, sizeof(p), room, "/grant");
    st = it_api(API1, "GET", p, token, &cl, NULL, &out, NULL);
    if (st == 200)
        g = strdup(it_jstr(out, "grant"));
    else
        it_check_error(st, out, 404, "not_found", "grant");
    json_decref(out);
    return g;
}

/* join {room[, grant]}: answered joined (code NULL) or error code. */
static void expect_join(struct wsc *c, const char *room, const char *grant, const char *code)
{
    json_t *f;

    if (grant)
        it_send(c, "{s:s, s:s, s:s}", "type", "join", "room", room, "grant", grant);
    else
        it_send(c, "{s:s, s:s}", "type", "join", "room", room);
    if (!code) {
        f = it_wait_frame(c, "joined", "room", room, "error", it_timeout(WAIT_MS));
        if (!f)
            fail_msg("join %s: no joined", room);
    } else {
        f = it_wait_frame(c, "error", "code", code, "joined", it_timeout(WAIT_MS));
        if (!f)
            fail_msg("join %s: no error %s", room, code);
    }
    json_decref(f);
}

static json_t *create_room(const struct it_user *owner, const char *kind, json_t *extra)
{
    json_t *body = json_pack("{s:s, s:s}", "kind", kind, "name", "Room of a test");

    if (extra) {
        json_object_update(body, extra);
        json_decref(extra);
    }
    return it_api_ok(201, API1, "POST", "/api/v1/rooms", owner->token, &cl, body);
}

static json_t *invite(const struct it_user *by, const char *room, json_t *body)
{
    char p[160];

    path_of(p, sizeof(p), room, "/invites");
    return it_api_ok(201, API1, "POST", p, by->token, &cl, body);
}

static void redeem(const struct it_user *u, const char *code, int want, const char *err)
{
    char p[160];

    snprintf(p, sizeof(p), "/api/v1/invites/%s/redeem", code);
    if (want == 200)
        json_decref(it_api_ok(200, API2, "POST", p, u->token, &cl, NULL));
    else
        it_api_err(want, err, API2, "POST", p, u->token, &cl, NULL);
}

static void set_role(const struct it_user *by,
                     const char *room,
                     const struct it_user *who,
                     const char *role,
                     int want)
{
    char p[200];
    json_t *out = NULL;
    int st;

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/members/%s/role", room, who->id);
    st = it_api(API1, "POST", p, by->token, &cl, json_pack("{s:s}", "role", role), &out, NULL);
    if (st != want)
        fail_msg("role %s of %s in %s: %d, want %d", role, who->name, room, st, want);
    json_decref(out);
}

static int remove_member(const struct it_user *by, const char *room, const struct it_user *who)
{
    char p[200];
    json_t *out = NULL;
    int st;

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/members/%s", room, who->id);
    st = it_api(API2, "DELETE", p, by->token, &cl, NULL, &out, NULL);
    json_decref(out);
    return st;
}

/* A REST send of token to room: the status (answer checked for an error code when code). */
static void
rest_send(const char *room, const char *token, const char *text, int want, const char *code)
{
    char p[160];
    json_t *out = NULL;
    int st;

    path_of(p, sizeof(p), room, "/messages");
    st = it_api(API1, "POST", p, token, &cl, json_pack("{s:s}", "text", text), &out, NULL);
    if (st != want)
        fail_msg("REST send to %s: %d, want %d", room, st, want);
    if (code)
        it_check_error(st, out, want, code, "REST send");
    json_decref(out);
}

/* c gets {"type":"left","room":room,"reason":reason} within ms. */
static void
expect_left(struct wsc *c, const char *room, const char *reason, int ms, const char *who)
{
    json_t *f = it_wait_frame(c, "left", "room", room, NULL, ms);

    if (!f)
        fail_msg("%s: no left for %s within %d ms", who, room, ms);
    assert_string_equal(it_jstr(f, "reason"), reason);
    json_decref(f);
}

/* Polls owner's view of room's members until who shows online (presence reports every second). */
static void expect_online(const struct it_user *owner, const char *room, const struct it_user *who)
{
    long long end = it_mono_ms() + it_timeout(WAIT_MS);
    char p[200];

    path_of(p, sizeof(p), room, "/members?limit=200");
    for (;;) {
        json_t *l = it_api_ok(200, API1, "GET", p, owner->token, &cl, NULL);
        json_t *ms = json_object_get(l, "members");
        bool online = false;

        for (size_t i = 0; i < json_array_size(ms); i++) {
            json_t *m = json_array_get(ms, i);
            if (strcmp(it_jstr(m, "user.id"), who->id) == 0)
                online = json_is_true(json_object_get(m, "online"));
            if (strcmp(it_jstr(m, "user.id"), owner->id) == 0)
                assert_string_equal(it_jstr(m, "role"),
                                    strncmp(room, "_d", 2) ? "owner" : "member");
        }
        json_decref(l);
        if (online)
            return;
        if (it_mono_ms() > end)
            fail_msg("%s never shows online in %s", who->name, room);
        it_sleep_ms(100);
    }
}

/* Every kind: who sees the room, who joins it, who changes it; a removal on both gateways. */
static void test_permission_matrix(void **state)
{
    static const char *const kinds[KINDS] = {"public", "private", "group", "direct"};
    (void)state;

    for (int k = 0; k < KINDS; k++) {
        const char *kind = kinds[k];
        bool pub = strcmp(kind, "public") == 0, direct = strcmp(kind, "direct") == 0;
        struct it_user owner, member, admin, outsider, removed;
        char room[80], p[160], *g_member, *g_removed, *g;
        struct wsc *anon, *cm, *co, *cr1, *cr2;
        json_t *r;
        long long t0;

        print_message("kind %s\n", kind);
        it_user_new(&owner, "own");
        it_user_new(&member, "mem");
        it_user_new(&admin, "adm");
        it_user_new(&outsider, "out");
        it_user_new(&removed, "rem");
        if (direct) { /* a direct room has its two users: owner and member */
            snprintf(p, sizeof(p), "/api/v1/direct/%s", member.name);
            r = it_api_ok(201, API1, "POST", p, owner.token, &cl, NULL);
        } else {
            r = create_room(&owner, kind, NULL);
        }
        snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
        assert_true((room[0] == '_') == !pub);
        json_decref(r);
        if (pub) {
            path_of(p, sizeof(p), room, "/join");
            json_decref(it_api_ok(200, API1, "POST", p, member.token, &cl, NULL));
            json_decref(it_api_ok(200, API2, "POST", p, admin.token, &cl, NULL));
            json_decref(it_api_ok(200, API2, "POST", p, removed.token, &cl, NULL));
        } else if (!direct) {
            /* private and group rooms are joined with an invite, not by asking */
            path_of(p, sizeof(p), room, "/join");
            it_api_err(404, "not_found", API1, "POST", p, outsider.token, &cl, NULL);
            r = invite(&owner, room, json_pack("{s:i}", "max_uses", 3));
            redeem(&member, it_jstr(r, "code"), 200, NULL);
            redeem(&admin, it_jstr(r, "code"), 200, NULL);
            redeem(&removed, it_jstr(r, "code"), 200, NULL);
            json_decref(r);
        }
        if (!direct)
            set_role(&owner, room, &admin, "admin", 204);

        /* REST visibility */
        expect_visible(room, NULL, pub, "anonymous");
        expect_visible(room, outsider.token, pub, "non-member");
        expect_visible(room, member.token, true, "member");
        expect_visible(room, owner.token, true, "owner");
        if (!direct)
            expect_visible(room, admin.token, true, "admin");

        /* the gateways: no grant, another user's grant, the member's own */
        g_member = grant_of(room, member.token);
        assert_non_null(g_member);
        g = grant_of(room, outsider.token);
        assert_true((g != NULL) == pub);
        free(g);
        anon = it_connect(GW1, NULL);
        expect_join(anon, room, g_member, "forbidden"); /* a grant needs its user */
        expect_join(anon, room, NULL, pub ? NULL : "forbidden");
        co = it_connect(GW2, outsider.token);
        expect_join(co, room, g_member, "forbidden"); /* not the outsider's */
        expect_join(co, room, NULL, pub ? NULL : "forbidden");
        cm = it_connect(GW1, member.token);
        expect_join(cm, room, pub ? NULL : g_member, NULL);

        /* the member list: roles, and the member connected now is online (presence, ~1 s) */
        expect_online(&owner, room, &member);

        /* REST sends follow the same rules */
        rest_send(room, outsider.token, "from outside", pub ? 200 : 404, pub ? NULL : "not_found");
        rest_send(room, member.token, "from a member", 200, NULL);

        /* who changes the room */
        path_of(p, sizeof(p), room, NULL);
        it_api_err(403, "forbidden", API1, "PATCH", p, member.token, &cl,
                   json_pack("{s:s}", "description", "by a member"));
        if (!direct) {
            r = it_api_ok(200, API1, "PATCH", p, admin.token, &cl,
                          json_pack("{s:s}", "description", "by an admin"));
            assert_string_equal(it_jstr(r, "description"), "by an admin");
            json_decref(r);
            it_api_err(403, "forbidden", API2, "DELETE", p, admin.token, &cl, NULL);
        }

        /* a removal: the removed member's sockets on both gateways leave within a second, its
         * earlier grant is refused, the room disappears for it (unless public) */
        if (!direct) {
            g_removed = grant_of(room, removed.token);
            cr1 = it_connect(GW1, removed.token);
            cr2 = it_connect(GW2, removed.token);
            expect_join(cr1, room, pub ? NULL : g_removed, NULL);
            expect_join(cr2, room, pub ? NULL : g_removed, NULL);
            assert_int_equal(remove_member(&member, room, &removed), 403); /* a member cannot */
            assert_int_equal(remove_member(&admin, room, &owner), 403); /* nor an admin the owner */
            t0 = it_mono_ms();
            assert_int_equal(remove_member(&admin, room, &removed), 204);
            expect_left(cr1, room, "removed", it_timeout(REMOVE_MS), "gw1");
            expect_left(cr2, room, "removed", it_timeout(REMOVE_MS), "gw2");
            print_message("  removal reached both gateways in %lld ms\n", it_mono_ms() - t0);
            expect_join(cr1, room, g_removed, "forbidden");         /* issued before the removal */
            expect_join(cr1, room, NULL, pub ? NULL : "forbidden"); /* public: still watches */
            expect_visible(room, removed.token, pub, "removed member");
            g = grant_of(room, removed.token);
            assert_true((g != NULL) == pub);
            free(g);
            free(g_removed);
            wsc_close(cr1);
            wsc_close(cr2);
            /* the owner deletes the room: every socket leaves it */
            path_of(p, sizeof(p), room, NULL);
            json_decref(it_api_ok(204, API1, "DELETE", p, owner.token, &cl, NULL));
            expect_left(cm, room, "deleted", it_timeout(WAIT_MS), "member");
            expect_visible(room, owner.token, false, "owner after delete");
        }
        free(g_member);
        wsc_close(anon);
        wsc_close(co);
        wsc_close(cm);
        it_user_free(&owner);
        it_user_free(&member);
        it_user_free(&admin);
        it_user_free(&outsider);
        it_user_free(&removed);
    }
}

/* A site admin (role admin in the users table, read per request: the token's role claim does
 * not count) deletes any room, a private one it is not in too; promoted after its token was
 * issued it may, demoted after it may not (its token still says admin). */
static void test_site_admin_deletes_any_room(void **state)
{
    struct it_user owner, sa;
    char room[80], p[160];
    json_t *r, *demoted;

    (void)state;
    it_user_new(&owner, "own");
    it_user_new(&sa, "sad"); /* its token says role user */
    r = create_room(&owner, "private", NULL);
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);
    path_of(p, sizeof(p), room, NULL);
    it_api_err(404, "not_found", API1, "DELETE", p, sa.token, &cl, NULL); /* cannot see it */
    it_user_admin(&sa); /* promoted: the same token now deletes it */
    json_decref(it_api_ok(204, API2, "DELETE", p, sa.token, &cl, NULL));
    expect_visible(room, owner.token, false, "owner after a site admin's delete");
    it_api_err(404, "not_found", API1, "DELETE", p, sa.token, &cl, NULL); /* gone */

    /* a token that says admin, of an account demoted since */
    demoted = it_login(API1, &cl, sa.name, PW);
    r = create_room(&owner, "public", NULL);
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);
    path_of(p, sizeof(p), room, NULL);
    it_sql("UPDATE users SET role = 'user' WHERE id = %s", sa.id);
    it_api_err(403, "forbidden", API1, "DELETE", p, it_access(demoted), &cl, NULL);
    expect_visible(room, owner.token, true, "owner after a refused delete");
    json_decref(demoted);
    it_user_free(&owner);
    it_user_free(&sa);
}

static void test_invites(void **state)
{
    struct it_user owner, a, b, c, d;
    char room[80], p[200], code[64];
    json_t *r;

    (void)state;
    it_user_new(&owner, "iown");
    it_user_new(&a, "ia");
    it_user_new(&b, "ib");
    it_user_new(&c, "ic");
    it_user_new(&d, "id");
    r = create_room(&owner, "group", json_pack("{s:i}", "member_limit", 3));
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);

    /* use limit: one use, then used up */
    r = invite(&owner, room, json_pack("{s:i}", "max_uses", 1));
    snprintf(code, sizeof(code), "%s", it_jstr(r, "code"));
    assert_int_equal(it_jint(r, "max_uses"), 1);
    json_decref(r);
    redeem(&a, code, 200, NULL);
    redeem(&a, code, 200, NULL); /* a member already: no use spent, no error */
    redeem(&b, code, 410, "invite_used_up");

    /* expiry: an invite whose time has passed */
    r = invite(&owner, room, json_pack("{s:i, s:i}", "max_uses", 0, "expires_in", 60));
    snprintf(code, sizeof(code), "%s", it_jstr(r, "code"));
    json_decref(r);
    assert_int_equal(it_sh("psql -q -X '%s' -c \"UPDATE room_invites SET expires_at = now() - "
                           "interval '1 second' WHERE code = '%s'\" >/dev/null",
                           it_env("CHAT_TEST_PG_DSN"), code),
                     0);
    redeem(&b, code, 410, "invite_expired");

    /* revocation: listed, revoked, refused */
    r = invite(&owner, room, json_pack("{s:i}", "max_uses", 0));
    snprintf(code, sizeof(code), "%s", it_jstr(r, "code"));
    json_decref(r);
    path_of(p, sizeof(p), room, "/invites");
    it_api_err(403, "forbidden", API1, "GET", p, a.token, &cl, NULL);
    r = it_api_ok(200, API1, "GET", p, owner.token, &cl, NULL);
    assert_true(json_array_size(json_object_get(r, "invites")) >= 1);
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/invites/%s", room, code);
    it_api_err(403, "forbidden", API1, "DELETE", p, a.token, &cl, NULL);
    json_decref(it_api_ok(204, API1, "DELETE", p, owner.token, &cl, NULL));
    redeem(&b, code, 404, "invite_invalid");
    redeem(&b, "no-such-code", 404, "invite_invalid");

    /* the member limit (3: owner, a, then b fills it) */
    r = invite(&owner, room, json_pack("{s:i}", "max_uses", 0));
    snprintf(code, sizeof(code), "%s", it_jstr(r, "code"));
    json_decref(r);
    redeem(&b, code, 200, NULL);
    redeem(&c, code, 409, "room_full");
    /* a member leaving makes room */
    path_of(p, sizeof(p), room, "/leave");
    json_decref(it_api_ok(204, API1, "POST", p, b.token, &cl, NULL));
    redeem(&c, code, 200, NULL);
    redeem(&d, code, 409, "room_full");
    it_user_free(&owner);
    it_user_free(&a);
    it_user_free(&b);
    it_user_free(&c);
    it_user_free(&d);
}

/* The next system event of room on c is event (joined, left) for user. */
static void
expect_system(struct wsc *c, const char *room, const char *event, const struct it_user *user)
{
    json_t *f = it_wait_frame(c, "system", "event", event, NULL, it_timeout(WAIT_MS));

    if (!f)
        fail_msg("no system event %s for %s", event, user->name);
    assert_string_equal(it_jstr(f, "room"), room);
    assert_string_equal(it_jstr(f, "user"), user->id);
    json_decref(f);
}

/* A connection of user to gw joined to the restricted room with user's grant. */
static struct wsc *connect_with_grant(const struct it_user *user, const char *gw, const char *room)
{
    char *g = grant_of(room, user->token);
    struct wsc *c;

    assert_non_null(g);
    c = it_connect(gw, user->token);
    expect_join(c, room, g, NULL);
    free(g);
    return c;
}

/* The room sees who comes and goes as system messages (proto/README.md section 5, `system`):
 * a public room's join, an invite redeemed (the only way into a group room), a leave (the
 * leaver's own socket in the restricted room gets `left` with reason `left`), a direct room's
 * member coming back. */
static void test_system_joins(void **state)
{
    struct it_user owner, a, b;
    char pub[80], room[80], code[64], p[200], dm[80];
    struct wsc *w_pub, *w_grp, *w_dm, *w_a;
    json_t *r;

    (void)state;
    it_user_new(&owner, "sjo");
    it_user_new(&a, "sja");
    it_user_new(&b, "sjb");
    it_room_new(pub, sizeof(pub), "sj");
    it_user_room(&owner, pub);
    w_pub = it_connect(GW1, owner.token);
    expect_join(w_pub, pub, NULL, NULL);
    it_user_join(&b, pub);
    expect_system(w_pub, pub, "joined", &b);

    r = create_room(&owner, "group", NULL);
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);
    w_grp = connect_with_grant(&owner, GW2, room);
    r = invite(&owner, room, json_pack("{s:i}", "max_uses", 0));
    snprintf(code, sizeof(code), "%s", it_jstr(r, "code"));
    json_decref(r);
    redeem(&a, code, 200, NULL);
    expect_system(w_grp, room, "joined", &a);
    w_a = connect_with_grant(&a, GW2, room); /* a's own socket in the room */
    path_of(p, sizeof(p), room, "/leave");
    json_decref(it_api_ok(204, API1, "POST", p, a.token, &cl, NULL));
    expect_system(w_grp, room, "left", &a);
    /* a restricted room: the user's sockets leave it too, told why */
    expect_left(w_a, room, "left", it_timeout(WAIT_MS), "the leaver's socket");
    wsc_close(w_a);

    snprintf(p, sizeof(p), "/api/v1/direct/%s", b.name);
    r = it_api_ok(201, API1, "POST", p, owner.token, &cl, NULL);
    snprintf(dm, sizeof(dm), "%s", it_jstr(r, "id"));
    json_decref(r);
    w_dm = connect_with_grant(&owner, GW1, dm);
    path_of(p, sizeof(p), dm, "/leave");
    json_decref(it_api_ok(204, API2, "POST", p, b.token, &cl, NULL));
    expect_system(w_dm, dm, "left", &b);
    snprintf(p, sizeof(p), "/api/v1/direct/%s", owner.name);
    json_decref(it_api_ok(200, API2, "POST", p, b.token, &cl, NULL));
    expect_system(w_dm, dm, "joined", &b);

    wsc_close(w_pub);
    wsc_close(w_grp);
    wsc_close(w_dm);
    it_user_free(&owner);
    it_user_free(&a);
    it_user_free(&b);
}

/* A new room of owner of kind (its id in room) and an invite of it without a use limit (its code
 * in code). */
static void room_with_invite(const struct it_user *owner,
                             const char *kind,
                             char *room,
                             size_t room_cap,
                             char *code,
                             size_t code_cap)
{
    json_t *r = create_room(owner, kind, NULL);

    snprintf(room, room_cap, "%s", it_jstr(r, "id"));
    json_decref(r);
    r = invite(owner, room, json_pack("{s:i}", "max_uses", 0));
    snprintf(code, code_cap, "%s", it_jstr(r, "code"));
    json_decref(r);
}

/* POST /api/v1/rooms/{room}/moderation/{action} {"user", "reason"} by `by`: the status. */
static int moderate(const struct it_user *by,
                    const char *room,
                    const char *action,
                    const struct it_user *who,
                    const char *reason)
{
    char p[200];
    json_t *out = NULL;
    int st;

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/%s", room, action);
    st = it_api(API1, "POST", p, by->token, &cl,
                json_pack("{s:s, s:s}", "user", who->id, "reason", reason), &out, NULL);
    json_decref(out);
    return st;
}

/* The refusal of a banned user: 403 banned with the moderator's reason and no end. */
static void expect_banned(int st, json_t *out, const char *reason, const char *what)
{
    it_check_error(st, out, 403, "banned", what);
    assert_string_equal(it_jstr(out, "error.reason"), reason);
    assert_true(json_is_null(it_jget(out, "error.until")));
    json_decref(out);
}

/* A room ban holds on every way back in: a REST join of a public room and an invite to a private
 * one (of any age) are refused 403 banned, the invite keeps its use; lifted, the same invite
 * works. */
static void test_ban_holds_on_every_way_in(void **state)
{
    struct it_user owner, u;
    char pub[80], priv[80], code[64], p[200];
    json_t *r, *out = NULL;
    int st;

    (void)state;
    it_user_new(&owner, "bno");
    it_user_new(&u, "bnu");
    it_room_new(pub, sizeof(pub), "bn");
    it_user_room(&owner, pub);
    it_user_join(&u, pub);
    room_with_invite(&owner, "private", priv, sizeof(priv), code, sizeof(code));
    redeem(&u, code, 200, NULL);
    assert_int_equal(moderate(&owner, pub, "ban", &u, "links"), 201);
    assert_int_equal(moderate(&owner, priv, "ban", &u, ""), 201);

    path_of(p, sizeof(p), pub, "/join");
    st = it_api(API1, "POST", p, u.token, &cl, NULL, &out, NULL);
    expect_banned(st, out, "links", "a REST join of a public room while banned");
    snprintf(p, sizeof(p), "/api/v1/invites/%s/redeem", code);
    st = it_api(API2, "POST", p, u.token, &cl, NULL, &out, NULL);
    expect_banned(st, out, "", "an old invite while banned");
    r = invite(&owner, priv, json_pack("{s:i}", "max_uses", 1));
    snprintf(code, sizeof(code), "%s", it_jstr(r, "code"));
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/invites/%s/redeem", code);
    st = it_api(API2, "POST", p, u.token, &cl, NULL, &out, NULL);
    expect_banned(st, out, "", "a new invite while banned");
    expect_visible(priv, u.token, false, "a banned ex-member");

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/ban/%s", priv, u.id);
    json_decref(it_api_ok(204, API1, "DELETE", p, owner.token, &cl, NULL));
    redeem(&u, code, 200, NULL); /* its one use was not spent by the refusal */
    expect_visible(priv, u.token, true, "the member after the lift");
    it_user_free(&owner);
    it_user_free(&u);
}

/* A site admin who kicks (or bans) a room's owner: the room goes to its oldest admin, as when the
 * owner leaves; never ownerless. */
static void test_removed_owner_hands_over(void **state)
{
    struct it_user owner, adm, m, sa;
    char room[80], code[64], p[200];
    json_t *r, *members;
    const char *role = NULL;

    (void)state;
    it_user_new(&owner, "hoo");
    it_user_new(&m, "hom");
    it_user_new(&adm, "hoa");
    it_user_new(&sa, "hos");
    it_user_admin(&sa);
    room_with_invite(&owner, "group", room, sizeof(room), code, sizeof(code));
    redeem(&m, code, 200, NULL);
    redeem(&adm, code, 200, NULL); /* joined after m, but an admin: first in line */
    set_role(&owner, room, &adm, "admin", 204);
    assert_int_equal(moderate(&sa, room, "kick", &owner, "gone"), 204);
    path_of(p, sizeof(p), room, "/members");
    members = it_api_ok(200, API1, "GET", p, m.token, &cl, NULL);
    for (size_t i = 0; i < json_array_size(it_jget(members, "members")); i++) {
        json_t *e = json_array_get(it_jget(members, "members"), i);
        if (strcmp(it_jstr(e, "user.id"), adm.id) == 0)
            role = it_jstr(e, "role");
        if (strcmp(it_jstr(e, "user.id"), owner.id) == 0)
            fail_msg("the kicked owner is still a member");
    }
    if (!role || strcmp(role, "owner") != 0)
        fail_msg("the room's admin is %s after the owner was kicked, not owner",
                 role ? role : "absent");
    json_decref(members);
    it_user_free(&owner);
    it_user_free(&m);
    it_user_free(&adm);
    it_user_free(&sa);
}

/* PATCH: the room's system event room_updated names the settings that changed; a PATCH that
 * changes nothing writes no event (the next one seen is the next change's). */
static void test_room_updated_says_what(void **state)
{
    struct it_user owner;
    char room[80], p[160];
    struct wsc *w;
    json_t *f;

    (void)state;
    it_user_new(&owner, "rup");
    it_room_new(room, sizeof(room), "ru");
    it_user_room(&owner, room);
    w = it_connect(GW1, owner.token);
    expect_join(w, room, NULL, NULL);
    path_of(p, sizeof(p), room, NULL);
    json_decref(it_api_ok(200, API1, "PATCH", p, owner.token, &cl,
                          json_pack("{s:s, s:i}", "name", "Renamed", "slow_mode_s", 0)));
    f = it_wait_frame(w, "system", "event", "room_updated", NULL, it_timeout(WAIT_MS));
    assert_non_null(f);
    assert_string_equal(it_jstr(f, "text"), "name"); /* slow mode was 0 already */
    json_decref(f);
    json_decref(it_api_ok(200, API2, "PATCH", p, owner.token, &cl, json_pack("{}")));
    json_decref(it_api_ok(200, API2, "PATCH", p, owner.token, &cl,
                          json_pack("{s:s}", "name", "Renamed"))); /* the same value */
    json_decref(it_api_ok(200, API1, "PATCH", p, owner.token, &cl,
                          json_pack("{s:s, s:i}", "description", "About", "slow_mode_s", 5)));
    f = it_wait_frame(w, "system", "event", "room_updated", NULL, it_timeout(WAIT_MS));
    assert_non_null(f);
    assert_string_equal(it_jstr(f, "text"), "description, slow_mode_s");
    json_decref(f);
    it_api_err(400, "bad_field", API1, "PATCH", p, owner.token, &cl,
               json_pack("{s:s}", "history_after_leave", "yes"));
    wsc_close(w);
    it_user_free(&owner);
}

/* The directory's q is counted in code points (a room name's 64), in any script. */
static void test_directory_query_in_code_points(void **state)
{
    char q[512] = "", p[600];
    json_t *r;

    (void)state;
    for (int i = 0; i < 30; i++)
        strcat(q, "%ED%95%9C"); /* 한: 3 bytes each, 90 in all */
    snprintf(p, sizeof(p), "/api/v1/rooms?q=%s", q);
    r = it_api_ok(200, API1, "GET", p, NULL, &cl, NULL);
    json_decref(r);
    q[0] = '\0';
    for (int i = 0; i < 65; i++)
        strcat(q, "a");
    snprintf(p, sizeof(p), "/api/v1/rooms?q=%s", q);
    it_api_err(400, "bad_field", API1, "GET", p, NULL, &cl, NULL);
}

/* The documented bounds of room settings, member pages and moderation bodies: each value just
 * past its bound is 400 bad_field, naming the field; the bound itself is taken. */
static void test_bounds(void **state)
{
    struct it_user owner, m;
    char room[80], code[64], p[200];
    json_t *out = NULL;
    int st;

    (void)state;
    it_user_new(&owner, "bdo");
    it_user_new(&m, "bdm");
    room_with_invite(&owner, "group", room, sizeof(room), code, sizeof(code));
    redeem(&m, code, 200, NULL);
    path_of(p, sizeof(p), room, NULL);
    {
        static const char *const keys[] = {"slow_mode_s", "member_limit", "max_text"};
        const long long past[] = {3601, it_env_int("CHAT_ROOM_MEMBER_LIMIT_MAX", 10000) + 1,
                                  it_env_int("CHAT_MAX_TEXT", 2000) + 1};
        for (int i = 0; i < 3; i++) {
            st = it_api(API1, "PATCH", p, owner.token, &cl,
                        json_pack("{s:I}", keys[i], (json_int_t)past[i]), &out, NULL);
            it_check_error(st, out, 400, "bad_field", keys[i]);
            if (!strstr(it_jstr(out, "error.message"), keys[i]))
                fail_msg("the message does not name %s: %s", keys[i],
                         it_jstr(out, "error.message"));
            json_decref(out);
        }
    }
    json_decref(it_api_ok(200, API1, "PATCH", p, owner.token, &cl,
                          json_pack("{s:i}", "slow_mode_s", 3600)));
    it_api_err(400, "bad_field", API1, "PATCH", p, owner.token, &cl,
               json_pack("{s:i}", "member_limit", 1));
    path_of(p, sizeof(p), room, "/members?limit=0");
    it_api_err(400, "bad_field", API1, "GET", p, owner.token, &cl, NULL);
    path_of(p, sizeof(p), room, "/members?limit=201");
    it_api_err(400, "bad_field", API1, "GET", p, owner.token, &cl, NULL);
    path_of(p, sizeof(p), room, "/members?limit=1");
    out = it_api_ok(200, API1, "GET", p, owner.token, &cl, NULL);
    assert_int_equal(json_array_size(it_jget(out, "members")), 1);
    assert_true(json_is_string(it_jget(out, "next"))); /* two members: a next page */
    json_decref(out);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation/mute", room);
    it_api_err(400, "bad_field", API1, "POST", p, owner.token, &cl,
               json_pack("{s:s, s:i}", "user", m.id, "duration_s", 0));
    it_api_err(400, "bad_field", API1, "POST", p, owner.token, &cl,
               json_pack("{s:s, s:i}", "user", m.id, "duration_s", 31622401));
    json_decref(it_api_ok(201, API1, "POST", p, owner.token, &cl,
                          json_pack("{s:s, s:i}", "user", m.id, "duration_s", 31622400)));
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/moderation", room);
    it_api_err(403, "forbidden", API1, "GET", p, m.token, &cl, NULL); /* not a moderator */
    it_user_free(&owner);
    it_user_free(&m);
}

static void test_direct_one_per_pair(void **state)
{
    struct it_user a, b;
    char p[160], id1[80];
    json_t *r;

    (void)state;
    it_user_new(&a, "da");
    it_user_new(&b, "db");
    snprintf(p, sizeof(p), "/api/v1/direct/%s", b.name);
    r = it_api_ok(201, API1, "POST", p, a.token, &cl, NULL);
    snprintf(id1, sizeof(id1), "%s", it_jstr(r, "id"));
    assert_string_equal(it_jstr(r, "kind"), "direct");
    assert_string_equal(it_jstr(r, "peer.username"), b.name);
    json_decref(r);
    r = it_api_ok(200, API2, "POST", p, a.token, &cl, NULL); /* again: the same room */
    assert_string_equal(it_jstr(r, "id"), id1);
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/direct/%s", a.name); /* the other way round: the same */
    r = it_api_ok(200, API1, "POST", p, b.token, &cl, NULL);
    assert_string_equal(it_jstr(r, "id"), id1);
    assert_string_equal(it_jstr(r, "peer.username"), a.name);
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/direct/%s", a.name); /* with oneself: no */
    it_api_err(400, "bad_field", API1, "POST", p, a.token, &cl, NULL);
    it_api_err(404, "not_found", API1, "POST", "/api/v1/direct/nosuchuser_x", a.token, &cl, NULL);
    it_user_free(&a);
    it_user_free(&b);
}

/* Waits until the gateway at base knows at least one room from chat.rooms (the lobby). */
static void wait_rooms_known(const char *base)
{
    long long end = it_mono_ms() + it_timeout(WAIT_MS);

    for (;;) {
        char *body = NULL;
        const char *m;
        bool known = false;

        if (it_http_get(base, "/metrics", &body) == 200 &&
            (m = strstr(body, "\nchat_gateway_rooms_known ")) != NULL)
            known = atoll(m + strlen("\nchat_gateway_rooms_known ")) >= 1;
        free(body);
        if (known)
            return;
        if (it_mono_ms() > end)
            fail_msg("%s knows no room from chat.rooms", base);
        it_sleep_ms(50);
    }
}

/* The lobby: seeded, public, 30 code points, watched anonymously. */
static void test_lobby(void **state)
{
    struct it_user u;
    struct wsc *w, *s;
    json_t *r, *m;
    /* 30 and 31 code points, with Hangul and an emoji (not bytes) */
    const char *ok30 = "채팅방에서 만나요 👋 abcdefghijklmnopqr";
    const char *long31 = "채팅방에서 만나요 👋 abcdefghijklmnopqrs";

    (void)state;
    /* on a cluster just made, the gateways learn the lobby's settings (migration 0005, through
     * chat-api's outbox and chat.rooms) a moment after they are ready */
    wait_rooms_known(GW1);
    wait_rooms_known(GW2);
    assert_int_equal(it_utf8_len(ok30), 30);
    assert_int_equal(it_utf8_len(long31), 31);
    r = it_api_ok(200, API1, "GET", "/api/v1/rooms/lobby", NULL, &cl, NULL);
    assert_string_equal(it_jstr(r, "kind"), "public");
    assert_int_equal(it_jint(r, "max_text"), 30);
    json_decref(r);
    it_user_new(&u, "lob");
    w = it_connect(GW2, NULL);
    expect_join(w, "lobby", NULL, NULL);
    s = it_connect(GW1, u.token);
    expect_join(s, "lobby", NULL, NULL);
    it_send(s, "{s:s, s:s, s:s, s:s}", "type", "send", "room", "lobby", "text", long31,
            "client_msg_id", "lobby-long");
    m = it_reply_to(s, "lobby-long", NULL);
    assert_string_equal(it_jstr(m, "type"), "error");
    assert_string_equal(it_jstr(m, "code"), "text_too_long");
    json_decref(m);
    it_expect_sent(s, "lobby", ok30, "lobby-ok", NULL);
    m = it_wait_frame(w, "message", "client_msg_id", "lobby-ok", NULL, it_timeout(WAIT_MS));
    assert_non_null(m);
    assert_string_equal(it_jstr(m, "text"), ok30);
    json_decref(m);
    rest_send("lobby", u.token, long31, 400, "text_too_long");
    rest_send("lobby", u.token, ok30, 200, NULL);
    /* the anonymous watcher cannot send */
    it_expect_send_error(w, "lobby", "lobby-anon", "auth_required");
    wsc_close(w);
    wsc_close(s);
    it_user_free(&u);
}

/* My rooms; the directory finds public rooms by name or id, pages, never shows others. */
static void test_lists(void **state)
{
    struct it_user u;
    char id[80], tag[32], p[200], seen[3][80];
    json_t *r, *rooms;
    int n = 0;

    (void)state;
    it_user_new(&u, "lst");
    it_room_new(tag, sizeof(tag), "dir");
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "%s-%d", tag, i);
        json_decref(create_room(&u, "public", json_pack("{s:s}", "id", id)));
    }
    json_decref(create_room(&u, "private", json_pack("{s:s}", "name", tag))); /* never listed */
    it_api_err(409, "room_exists", API1, "POST", "/api/v1/rooms", u.token, &cl,
               json_pack("{s:s, s:s, s:s}", "kind", "public", "name", "x", "id", id));
    it_api_err(400, "bad_room", API1, "POST", "/api/v1/rooms", u.token, &cl,
               json_pack("{s:s, s:s, s:s}", "kind", "public", "name", "x", "id", "_mine"));
    /* two per page, by name then id: pages of 2 and 1 */
    snprintf(p, sizeof(p), "/api/v1/rooms?q=%s&limit=2", tag);
    for (;;) {
        json_t *next;
        r = it_api_ok(200, API2, "GET", p, NULL, &cl, NULL);
        rooms = json_object_get(r, "rooms");
        for (size_t i = 0; i < json_array_size(rooms); i++) {
            assert_true(n < 3);
            snprintf(seen[n++], sizeof(seen[0]), "%s",
                     json_string_value(json_object_get(json_array_get(rooms, i), "id")));
        }
        next = json_object_get(r, "next");
        if (!json_is_string(next)) {
            json_decref(r);
            break;
        }
        snprintf(p, sizeof(p), "/api/v1/rooms?q=%s&limit=2&after=%s", tag, json_string_value(next));
        json_decref(r);
    }
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof(id), "%s-%d", tag, i);
        assert_string_equal(seen[i], id);
    }
    /* mine: the four rooms, each with the caller's role and a grant */
    r = it_api_ok(200, API1, "GET", "/api/v1/users/me/rooms", u.token, &cl, NULL);
    rooms = json_object_get(r, "rooms");
    assert_int_equal(json_array_size(rooms), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *o = json_array_get(rooms, i);
        assert_string_equal(it_jstr(o, "me.role"), "owner");
        assert_true(json_is_string(json_object_get(o, "grant")));
    }
    json_decref(r);
    it_user_free(&u);
}

/* The room object of room in the caller's room list (borrowed from list), or NULL. */
static json_t *mine_find(json_t *list, const char *room)
{
    json_t *rooms = json_object_get(list, "rooms");

    for (size_t i = 0; i < json_array_size(rooms); i++)
        if (strcmp(it_jstr(json_array_get(rooms, i), "id"), room) == 0)
            return json_array_get(rooms, i);
    return NULL;
}

/* Polls token's room list until room shows unread == want (the persister and the read markers
 * are asynchronous); returns the list (json_decref). */
static json_t *wait_unread(const char *token, const char *room, long long want)
{
    long long end = it_mono_ms() + it_timeout(WAIT_MS), have = -1;

    for (;;) {
        json_t *l = it_api_ok(200, API2, "GET", "/api/v1/users/me/rooms", token, &cl, NULL);
        json_t *r = mine_find(l, room);
        if (r && (have = it_jint(r, "me.unread")) == want)
            return l;
        json_decref(l);
        if (it_mono_ms() > end)
            fail_msg("%s: unread %lld, want %lld", room, have, want);
        it_sleep_ms(50);
    }
}

/* Unread counts: from the persister's last_seq and the member's read marker, set over REST or
 * with the read frame; the list is sorted by the newest message; another device sees the same. */
static void test_unread(void **state)
{
    struct it_user a, b;
    char room[80], quiet[80], p[200], cmid[32];
    long long seq[3];
    struct wsc *ca, *cb, *cb2;
    json_t *r, *l, *inv;
    char *g_tmp;

    (void)state;
    it_user_new(&a, "ua");
    it_user_new(&b, "ub");
    r = create_room(&a, "group", NULL);
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);
    inv = invite(&a, room, NULL);
    redeem(&b, it_jstr(inv, "code"), 200, NULL);
    json_decref(inv);
    r = create_room(&b, "public", NULL); /* b's own room: created later, no messages */
    snprintf(quiet, sizeof(quiet), "%s", it_jstr(r, "id"));
    json_decref(r);

    ca = it_connect(GW1, a.token);
    g_tmp = grant_of(room, a.token);
    expect_join(ca, room, g_tmp, NULL);
    free(g_tmp);
    for (int i = 0; i < 3; i++) {
        snprintf(cmid, sizeof(cmid), "unread-%d", i);
        it_send(ca, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "hello",
                "client_msg_id", cmid);
        r = it_reply_to(ca, cmid, NULL);
        seq[i] = it_jint(r, "seq");
        json_decref(r);
    }
    /* b sees 3 unread; the room with the newest message comes first */
    l = wait_unread(b.token, room, 3);
    assert_string_equal(it_jstr(json_array_get(json_object_get(l, "rooms"), 0), "id"), room);
    assert_int_equal(it_jint(mine_find(l, room), "last_seq"), seq[2]);
    assert_non_null(mine_find(l, quiet));
    json_decref(l);
    /* read up to the second over REST: 1 left */
    path_of(p, sizeof(p), room, "/read");
    r = it_api_ok(200, API1, "POST", p, b.token, &cl, json_pack("{s:I}", "seq", seq[1]));
    assert_int_equal(it_jint(r, "last_read_seq"), seq[1]);
    assert_int_equal(it_jint(r, "unread"), 1);
    json_decref(r);
    json_decref(wait_unread(b.token, room, 1));
    /* the rest with the read frame on a WebSocket (the persister stores it) */
    cb = it_connect(GW2, b.token);
    g_tmp = grant_of(room, b.token);
    expect_join(cb, room, g_tmp, NULL);
    free(g_tmp);
    cb2 = it_connect(GW1, b.token); /* b's other device, on the other gateway */
    g_tmp = grant_of(room, b.token);
    expect_join(cb2, room, g_tmp, NULL);
    free(g_tmp);
    it_send(cb, "{s:s, s:s, s:I}", "type", "read", "room", room, "seq", (json_int_t)seq[2]);
    /* every connection of b in the room hears of it (the badge clears on every device) */
    r = it_wait_frame(cb2, "read", "room", room, NULL, it_timeout(WAIT_MS));
    assert_non_null(r);
    assert_int_equal(it_jint(r, "seq"), seq[2]);
    json_decref(r);
    /* another device (a new login) sees it too */
    {
        json_t *s2 = it_login(API2, &cl, b.name, PW);
        json_decref(wait_unread(it_access(s2), room, 0));
        json_decref(s2);
    }
    /* a marker never goes back */
    r = it_api_ok(200, API1, "POST", p, b.token, &cl, json_pack("{s:I}", "seq", seq[0]));
    assert_int_equal(it_jint(r, "last_read_seq"), seq[2]);
    assert_int_equal(it_jint(r, "unread"), 0);
    json_decref(r);
    wsc_close(ca);
    wsc_close(cb);
    wsc_close(cb2);
    it_user_free(&a);
    it_user_free(&b);
}

/* ---- a grant opens a restricted room to its user only (identity lost on an open socket) ---- */

/* A group room of owner with member as a member: its id in room. */
static void
group_with(const struct it_user *owner, const struct it_user *member, char *room, size_t cap)
{
    char code[64];

    room_with_invite(owner, "group", room, cap, code, sizeof(code));
    redeem(member, code, 200, NULL);
}

/* w (joined to room) says cmid there and reads until it has both its ack and the message: from
 * then on every subscriber of room on w's gateway has the message queued (the fan-out queues a
 * consumed message on all of them in one turn of the loop). */
static void say(struct wsc *w, const char *room, const char *cmid)
{
    bool acked = false, seen = false;

    it_send(w, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", cmid, "client_msg_id",
            cmid);
    while (!acked || !seen) {
        char *t = NULL;
        const char *type, *id;
        json_t *j;

        if (wsc_recv_text(w, &t, it_timeout(WAIT_MS), NULL) <= 0)
            fail_msg("%s: acked %d, seen %d", cmid, acked, seen);
        j = json_loads(t, 0, NULL);
        wsc_free_text(t);
        type = json_string_value(json_object_get(j, "type"));
        id = json_string_value(json_object_get(j, "client_msg_id"));
        if (type && id && strcmp(id, cmid) == 0) {
            if (strcmp(type, "error") == 0)
                fail_msg("%s refused: %s", cmid, it_jstr(j, "code"));
            acked |= strcmp(type, "ack") == 0;
            seen |= strcmp(type, "message") == 0;
        }
        json_decref(j);
    }
}

/* c, on the gateway of a socket that just saw the latest message of room (say()), is no longer
 * subscribed to room: the pong of a ping comes with no message of room before it (one that
 * reached c's queue would come first). */
static void expect_not_subscribed(struct wsc *c, const char *room, const char *who)
{
    static int n;
    char ref[32];

    snprintf(ref, sizeof(ref), "barrier-%d", n++);
    it_send(c, "{s:s, s:s}", "type", "ping", "ref", ref);
    for (;;) {
        char *t = NULL;
        const char *type, *r;
        json_t *j;

        if (wsc_recv_text(c, &t, it_timeout(WAIT_MS), NULL) <= 0)
            fail_msg("%s: no pong", who);
        j = json_loads(t, 0, NULL);
        wsc_free_text(t);
        type = json_string_value(json_object_get(j, "type"));
        r = json_string_value(json_object_get(j, "room"));
        if (type && strcmp(type, "message") == 0 && r && strcmp(r, room) == 0)
            fail_msg("%s still gets the messages of %s", who, room);
        if (type && strcmp(type, "left") == 0 && r && strcmp(r, room) == 0)
            fail_msg("%s was taken out of %s a second time", who, room);
        r = json_string_value(json_object_get(j, "ref"));
        if (type && strcmp(type, "pong") == 0 && r && strcmp(r, ref) == 0) {
            json_decref(j);
            return;
        }
        json_decref(j);
    }
}

/* auth with token on c: authed as user. */
static void expect_authed(struct wsc *c, const char *token, const char *user)
{
    json_t *a;

    it_send(c, "{s:s, s:s, s:s}", "type", "auth", "token", token, "ref", "re-auth");
    a = it_wait_frame(c, "authed", "ref", "re-auth", "error", it_timeout(WAIT_MS));
    if (!a)
        fail_msg("no authed for %s", user);
    assert_string_equal(it_jstr(a, "user"), user);
    json_decref(a);
}

/* A socket of member u in room (with u's grant), logged in with a token of u that expires in a
 * few seconds; it has got session_expired when this returns. */
static struct wsc *expired_member(const struct it_user *u, const char *room)
{
    char *g = grant_of(room, u->token), *t = it_token(u->id, 4);
    struct wsc *c = it_connect(GW1, t);
    json_t *e;

    assert_non_null(g);
    expect_join(c, room, g, NULL);
    e = it_wait_frame(c, "session_expired", NULL, NULL, NULL, it_timeout(WAIT_MS));
    if (!e)
        fail_msg("no session_expired");
    json_decref(e);
    free(g);
    free(t);
    return c;
}

/* A socket whose session is revoked while it is in a group room leaves it at once (left, reason
 * signed_out, right after session_revoked: not a removal) and keeps watching its public room; a
 * removal of the user after that has nothing left to take out of it (no second left), and none
 * of the room's messages reach it any more. */
static void test_revoked_socket_leaves_restricted_rooms(void **state)
{
    struct it_user owner, u;
    char room[80], pub[80], *g;
    struct wsc *w, *c;
    json_t *s2, *m;

    (void)state;
    it_user_new(&owner, "rvo");
    it_user_new(&u, "rvu");
    group_with(&owner, &u, room, sizeof(room));
    it_room_new(pub, sizeof(pub), "rvp");
    it_user_room(&owner, pub);
    w = connect_with_grant(&owner, GW1, room); /* the owner, on the socket's gateway */
    expect_join(w, pub, NULL, NULL);
    s2 = it_login(API1, &cl, u.name, PW); /* the socket's own session */
    c = it_connect(GW1, it_access(s2));
    g = grant_of(room, u.token);
    expect_join(c, room, g, NULL);
    free(g);
    expect_join(c, pub, NULL, NULL);

    json_decref(
        it_api_ok(200, API2, "POST", "/api/v1/auth/logout", it_access(s2), &cl, json_object()));
    it_expect_revoked(c, "logout", it_timeout(WAIT_MS), "the member's socket");
    expect_left(c, room, "signed_out", it_timeout(WAIT_MS), "the revoked socket");
    assert_int_equal(remove_member(&owner, room, &u), 204);
    say(w, room, "rv-1");
    expect_not_subscribed(c, room, "the revoked socket");
    say(w, pub, "rv-2"); /* still watching the public room */
    m = it_wait_frame(c, "message", "client_msg_id", "rv-2", NULL, it_timeout(WAIT_MS));
    assert_non_null(m);
    json_decref(m);
    wsc_close(c);
    wsc_close(w);
    json_decref(s2);
    it_user_free(&owner);
    it_user_free(&u);
}

/* A socket whose token expired in a group room, logged in again as the same member, cannot
 * post there: it left the room with its identity, and comes back with a grant only. */
static void test_expired_socket_reauthed_cannot_post(void **state)
{
    struct it_user owner, u;
    char room[80], *g;
    struct wsc *w, *c;

    (void)state;
    it_user_new(&owner, "exo");
    it_user_new(&u, "exu");
    group_with(&owner, &u, room, sizeof(room));
    w = connect_with_grant(&owner, GW1, room);
    c = expired_member(&u, room);
    expect_authed(c, u.token, u.id);
    it_expect_send_error(c, room, "ex-1", "not_joined");
    say(w, room, "ex-2");
    expect_not_subscribed(c, room, "the expired socket");
    g = grant_of(room, u.token); /* the way in is a grant, as for any join */
    expect_join(c, room, g, NULL);
    free(g);
    it_expect_sent(c, room, "back with a grant", "ex-3", NULL);
    wsc_close(c);
    wsc_close(w);
    it_user_free(&owner);
    it_user_free(&u);
}

/* A socket whose token expired in a group room and that logs in as another user, no member of
 * the room, cannot post there as that user. */
static void test_expired_socket_other_user_cannot_post(void **state)
{
    struct it_user owner, u, v;
    char room[80];
    struct wsc *c;

    (void)state;
    it_user_new(&owner, "xoo");
    it_user_new(&u, "xou");
    it_user_new(&v, "xov");
    group_with(&owner, &u, room, sizeof(room));
    c = expired_member(&u, room);
    expect_authed(c, v.token, v.id);
    it_expect_send_error(c, room, "xo-1", "not_joined");
    wsc_close(c);
    it_user_free(&owner);
    it_user_free(&u);
    it_user_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lobby),
        cmocka_unit_test(test_direct_one_per_pair),
        cmocka_unit_test(test_invites),
        cmocka_unit_test(test_site_admin_deletes_any_room), /* the database's role */
        cmocka_unit_test(test_system_joins),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_unread),
        cmocka_unit_test(test_permission_matrix),
        cmocka_unit_test(test_ban_holds_on_every_way_in),
        cmocka_unit_test(test_removed_owner_hands_over),
        cmocka_unit_test(test_room_updated_says_what),
        cmocka_unit_test(test_directory_query_in_code_points),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_revoked_socket_leaves_restricted_rooms),
        cmocka_unit_test(test_expired_socket_reauthed_cannot_post),
        cmocka_unit_test(test_expired_socket_other_user_cannot_post),
    };

    it_env_load();
    it_client_new(&cl, "198.51.100");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
