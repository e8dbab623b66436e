/* it_pins.c - pinned messages (proto/README.md section 9 "Pins", section 5 `system`): the room's
 * owner pins a message (201 with who and when; again: 200 as it is, no second event), every
 * socket in the room gets the `system` event `pinned` with the message's id, and
 * GET .../pins lists it for anyone who reads the room, in its newest form (after an edit) and the
 * newest pin first; unpinning answers 204 with `unpinned`, and 404 when not pinned; a deleted
 * message is unpinned and cannot be pinned; who may pin (owners and admins, site admins, both
 * members of a direct room; not other members, not anonymous) and who may list (not outsiders
 * of a restricted room); CHAT_PINS_MAX pins per room, then 409 too_many_pins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "it_acct.h"
#include "it_user.h"
#include "it_util.h"
#include "wsc.h"

#define WAIT_MS 15000
#define POLL_MS 50

static struct it_client cl;

/* Sends text to room over REST as u (through API1): the message's id into id. */
static void
send_rest(const struct it_user *u, const char *room, const char *text, char *id, size_t cap)
{
    char p[200];
    json_t *ack;

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages", room);
    ack = it_api_ok(200, API1, "POST", p, u->token, &cl, json_pack("{s:s}", "text", text));
    snprintf(id, cap, "%s", it_jstr(ack, "id"));
    json_decref(ack);
}

/* POST .../pins {"id"} as u (NULL: anonymous): the status, *out the answer (out may be NULL). */
static int pin(const struct it_user *u, const char *room, const char *id, json_t **out)
{
    char p[200];
    json_t *tmp = NULL;
    int st;

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/pins", room);
    st = it_api(API2, "POST", p, u ? u->token : NULL, &cl, json_pack("{s:s}", "id", id),
                out ? out : &tmp, NULL);
    json_decref(tmp);
    return st;
}

static int unpin(const struct it_user *u, const char *room, const char *id)
{
    char p[200];
    json_t *out = NULL;
    int st;

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/pins/%s", room, id);
    st = it_api(API1, "DELETE", p, u->token, &cl, NULL, &out, NULL);
    json_decref(out);
    return st;
}

/* GET .../pins as u (NULL: anonymous): must answer 200; the pins array (json_decref the page). */
static json_t *pins(const struct it_user *u, const char *room)
{
    char p[200];

    snprintf(p, sizeof(p), "/api/v1/rooms/%s/pins", room);
    return it_api_ok(200, API1, "GET", p, u ? u->token : NULL, &cl, NULL);
}

/* The listed pin of message id in page, or NULL. */
static const json_t *listed(const json_t *page, const char *id)
{
    const json_t *a = json_object_get(page, "pins");

    for (size_t i = 0; i < json_array_size(a); i++)
        if (strcmp(it_jstr(json_array_get(a, i), "id"), id) == 0)
            return json_array_get(a, i);
    return NULL;
}

/* Polls GET .../pins as u (NULL: anonymous) until message id is listed with text (NULL: until it
 * is not listed). */
static void wait_listed(const struct it_user *u, const char *room, const char *id, const char *text)
{
    long long t0 = it_mono_ms();

    for (;;) {
        json_t *page = pins(u, room);
        const json_t *e = listed(page, id);
        bool done = text ? e && strcmp(it_jstr(e, "text"), text) == 0 : !e;

        if (done) {
            json_decref(page);
            return;
        }
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("pins of %s never showed %s as %s: %s", room, id, text ? text : "gone",
                     json_dumps(page, JSON_COMPACT));
        json_decref(page);
        it_sleep_ms(POLL_MS);
    }
}

/* The next system event ev on c for message id, from user by (nick its name). */
static void expect_event(struct wsc *c, const char *ev, const char *id, const struct it_user *by)
{
    json_t *f = it_wait_frame(c, "system", "event", ev, NULL, it_timeout(WAIT_MS));

    if (!f)
        fail_msg("no system %s", ev);
    assert_string_equal(it_jstr(f, "message"), id);
    assert_string_equal(it_jstr(f, "user"), by->id);
    assert_string_equal(it_jstr(f, "nick"), by->name);
    assert_true(it_jint(f, "seq") >= 0);
    json_decref(f);
}

/* The room's stored system events named ev (for pins: one per pin or unpin). */
static long long stored_events(const char *room, const char *ev)
{
    return it_sql_ll("SELECT count(*) FROM messages WHERE room = '%s' AND kind = 'system' AND "
                     "body LIKE '%%\\\"event\\\":\\\"%s\\\"%%'",
                     room, ev);
}

/* A public room of owner: pinned live and listed, pinned again without an event, the edited
 * text listed, unpinned live, unpinned again 404. */
static void test_pin_live_and_listed(void **state)
{
    struct it_user owner, author;
    char room[80], id[32], id2[32], p[256];
    struct wsc *w;
    json_t *out = NULL, *page;
    long long at;
    int n;

    (void)state;
    it_user_new(&owner, "pno");
    it_user_new(&author, "pna");
    it_room_new(room, sizeof(room), "pins");
    it_user_room(&owner, room);
    w = it_connect(GW2, NULL); /* an anonymous watcher on the other gateway */
    it_join(w, room);
    send_rest(&author, room, "worth pinning", id, sizeof(id));
    send_rest(&author, room, "later", id2, sizeof(id2));
    it_wait_stored(room, id2, it_timeout(WAIT_MS));

    assert_int_equal(pin(&owner, room, id, &out), 201);
    assert_string_equal(it_jstr(out, "room"), room);
    assert_string_equal(it_jstr(out, "id"), id);
    assert_string_equal(it_jstr(out, "pinned_by"), owner.id);
    at = it_jint(out, "pinned_at");
    assert_true(at > 0);
    json_decref(out);
    expect_event(w, "pinned", id, &owner);
    assert_int_equal(pin(&owner, room, id2, NULL), 201);
    expect_event(w, "pinned", id2, &owner);

    /* anyone reading the room lists them, the newest pin first */
    page = pins(NULL, room);
    assert_int_equal(json_array_size(json_object_get(page, "pins")), 2);
    assert_string_equal(it_jstr(json_array_get(json_object_get(page, "pins"), 0), "id"), id2);
    assert_string_equal(it_jstr(listed(page, id), "text"), "worth pinning");
    assert_string_equal(it_jstr(listed(page, id), "user"), author.id);
    assert_int_equal(it_jint(listed(page, id), "pinned_at"), at);
    assert_true(json_is_null(json_object_get(listed(page, id), "edited_at")));
    json_decref(page);

    /* pinned again: 200 as it is, and no second event (one pinned per message in history) */
    assert_int_equal(pin(&owner, room, id, &out), 200);
    assert_int_equal(it_jint(out, "pinned_at"), at);
    json_decref(out);

    /* the author edits it: the listing shows the newest text */
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages/%s", room, id);
    json_decref(it_api_ok(200, API1, "PATCH", p, author.token, &cl,
                          json_pack("{s:s}", "text", "worth pinning, fixed")));
    wait_listed(NULL, room, id, "worth pinning, fixed");

    assert_int_equal(unpin(&owner, room, id), 204);
    expect_event(w, "unpinned", id, &owner);
    assert_int_equal(unpin(&owner, room, id), 404);
    page = pins(&author, room);
    assert_null(listed(page, id));
    assert_non_null(listed(page, id2));
    json_decref(page);
    /* every event above stored (the unpinned is the last): one pinned each, one unpinned */
    for (long long t0 = it_mono_ms(); stored_events(room, "unpinned") < 1; it_sleep_ms(POLL_MS))
        if (it_mono_ms() - t0 > it_timeout(WAIT_MS))
            fail_msg("the pin events were not stored");
    n = (int)stored_events(room, "pinned");
    assert_int_equal(n, 2);
    assert_int_equal(stored_events(room, "unpinned"), 1);
    wsc_close(w);
    it_user_free(&owner);
    it_user_free(&author);
}

/* Who may pin and list: not a plain member or another user (403), not anonymous (401); a site
 * admin may; both members of a direct room may; an outsider of a restricted room gets 404 for
 * pinning and listing; a bad id 400, an unknown one or another room's 404. */
static void test_who_may_pin(void **state)
{
    struct it_user owner, other, adm, peer;
    char room[80], id[32], dm[80], did[32], p[256], g[80];
    json_t *out = NULL, *r;
    int st;

    (void)state;
    it_user_new(&owner, "pwo");
    it_user_new(&other, "pwx");
    it_user_new(&adm, "pwa");
    it_user_admin(&adm);
    it_user_new(&peer, "pwp");
    it_room_new(room, sizeof(room), "pinw");
    it_user_room(&owner, room);
    send_rest(&other, room, "a public message", id, sizeof(id));
    it_wait_stored(room, id, it_timeout(WAIT_MS));

    st = pin(&other, room, id, &out);
    it_check_error(st, out, 403, "forbidden", "a member's pin");
    json_decref(out);
    st = pin(NULL, room, id, &out);
    it_check_error(st, out, 401, "auth_required", "an anonymous pin");
    json_decref(out);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/pins", room);
    st = it_api(API1, "POST", p, owner.token, &cl, json_pack("{s:i}", "id", 5), &out, NULL);
    it_check_error(st, out, 400, "bad_field", "a numeric id");
    json_decref(out);
    st = pin(&owner, room, "12345", &out);
    it_check_error(st, out, 404, "not_found", "an unknown message");
    json_decref(out);
    assert_int_equal(pin(&adm, room, id, NULL), 201); /* a site admin */
    assert_int_equal(unpin(&adm, room, id), 204);

    /* a direct room: both members pin; an outsider neither pins nor lists */
    snprintf(p, sizeof(p), "/api/v1/direct/%s", peer.name);
    r = it_api_ok(201, API1, "POST", p, owner.token, &cl, NULL);
    snprintf(dm, sizeof(dm), "%s", it_jstr(r, "id"));
    json_decref(r);
    send_rest(&owner, dm, "between us", did, sizeof(did));
    it_wait_stored(dm, did, it_timeout(WAIT_MS));
    st = pin(&owner, room, did, &out); /* the direct room's message, under another room */
    it_check_error(st, out, 404, "not_found", "another room's message");
    json_decref(out);
    assert_int_equal(pin(&peer, dm, did, NULL), 201);
    assert_int_equal(unpin(&owner, dm, did), 204);
    st = pin(&other, dm, did, &out);
    it_check_error(st, out, 404, "not_found", "an outsider's pin");
    json_decref(out);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/pins", dm);
    it_api_err(404, "not_found", API1, "GET", p, other.token, &cl, NULL);
    r = pins(&peer, dm);
    assert_int_equal(json_array_size(json_object_get(r, "pins")), 0);
    json_decref(r);

    /* a group room: a plain member may not */
    r = it_api_ok(201, API1, "POST", "/api/v1/rooms", owner.token, &cl,
                  json_pack("{s:s, s:s}", "kind", "group", "name", "Pinners"));
    snprintf(g, sizeof(g), "%s", it_jstr(r, "id"));
    json_decref(r);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/invites", g);
    r = it_api_ok(201, API1, "POST", p, owner.token, &cl, json_pack("{s:i}", "max_uses", 0));
    snprintf(p, sizeof(p), "/api/v1/invites/%s/redeem", it_jstr(r, "code"));
    json_decref(r);
    json_decref(it_api_ok(200, API2, "POST", p, other.token, &cl, NULL));
    send_rest(&other, g, "group talk", id, sizeof(id));
    it_wait_stored(g, id, it_timeout(WAIT_MS));
    st = pin(&other, g, id, &out);
    it_check_error(st, out, 403, "forbidden", "a group member's pin");
    json_decref(out);
    assert_int_equal(pin(&owner, g, id, NULL), 201);
    r = pins(&other, g);
    assert_non_null(listed(r, id));
    json_decref(r);
    it_user_free(&owner);
    it_user_free(&other);
    it_user_free(&adm);
    it_user_free(&peer);
}

/* Deleting a pinned message unpins it; a deleted message cannot be pinned. */
static void test_delete_unpins(void **state)
{
    struct it_user owner;
    char room[80], id[32], p[256];
    json_t *out = NULL;
    int st;

    (void)state;
    it_user_new(&owner, "pdo");
    it_room_new(room, sizeof(room), "pind");
    it_user_room(&owner, room);
    send_rest(&owner, room, "soon deleted", id, sizeof(id));
    it_wait_stored(room, id, it_timeout(WAIT_MS));
    assert_int_equal(pin(&owner, room, id, NULL), 201);
    wait_listed(NULL, room, id, "soon deleted");
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/messages/%s", room, id);
    json_decref(it_api_ok(204, API2, "DELETE", p, owner.token, &cl, NULL));
    wait_listed(NULL, room, id, NULL);
    assert_int_equal(it_sql_ll("SELECT count(*) FROM room_pins WHERE message_id = %s", id), 0);
    st = pin(&owner, room, id, &out);
    it_check_error(st, out, 404, "not_found", "a deleted message's pin");
    json_decref(out);
    assert_int_equal(unpin(&owner, room, id), 404);
    it_user_free(&owner);
}

/* CHAT_PINS_MAX (IT_ENVIRONMENT: 3) pins per room: the next is 409 too_many_pins until one is
 * unpinned. */
static void test_pin_limit(void **state)
{
    struct it_user owner;
    char room[80], ids[5][32], text[32];
    const char *max = getenv("CHAT_PINS_MAX");
    int n = max ? atoi(max) : 50;
    json_t *out = NULL;
    int st;

    (void)state;
    if (n < 1 || n > 4)
        fail_msg("CHAT_PINS_MAX %d: the test needs 1..4 (IT_ENVIRONMENT)", n);
    it_user_new(&owner, "plo");
    it_room_new(room, sizeof(room), "pinl");
    it_user_room(&owner, room);
    for (int i = 0; i <= n; i++) {
        snprintf(text, sizeof(text), "pin %d", i);
        send_rest(&owner, room, text, ids[i], sizeof(ids[i]));
    }
    it_wait_stored(room, ids[n], it_timeout(WAIT_MS));
    for (int i = 0; i < n; i++)
        assert_int_equal(pin(&owner, room, ids[i], NULL), 201);
    st = pin(&owner, room, ids[n], &out);
    it_check_error(st, out, 409, "too_many_pins", "a pin past CHAT_PINS_MAX");
    json_decref(out);
    assert_int_equal(pin(&owner, room, ids[0], NULL), 200); /* pinned already: still fine */
    assert_int_equal(unpin(&owner, room, ids[0]), 204);
    assert_int_equal(pin(&owner, room, ids[n], NULL), 201);
    it_user_free(&owner);
}

/* The edges: a private room's pin listed for its owner; ids that are no message ids; an ad-hoc
 * room has no pins (POST 404, GET empty); unpinning takes the same right as pinning; a
 * chat-banned owner may not pin; deleting the room drops its pins. */
static void test_pin_edges(void **state)
{
    static const char *const bad[] = {"0", "-1", "01", "9223372036854775808", "1x", ""};
    struct it_user owner, member, adm;
    char room[80], id[32], rid[32], p[256], adhoc[80];
    json_t *out = NULL, *r;
    int st;

    (void)state;
    it_user_new(&owner, "peo");
    it_user_new(&member, "pem");
    it_user_new(&adm, "pea");
    it_user_admin(&adm);
    r = it_api_ok(201, API1, "POST", "/api/v1/rooms", owner.token, &cl,
                  json_pack("{s:s, s:s}", "kind", "private", "name", "Pinned edges"));
    snprintf(room, sizeof(room), "%s", it_jstr(r, "id"));
    json_decref(r);
    send_rest(&owner, room, "pinned at once", rid, sizeof(rid));
    it_wait_stored(room, rid, it_timeout(WAIT_MS)); /* before: 404, not found yet */
    assert_int_equal(pin(&owner, room, rid, NULL), 201);
    wait_listed(&owner, room, rid, "pinned at once");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        st = pin(&owner, room, bad[i], &out);
        it_check_error(st, out, 400, "bad_field", bad[i]);
        json_decref(out);
    }
    /* unpinning: an outsider cannot see the room (404), a bad id is not pinned (404) */
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/pins/%s", room, rid);
    it_api_err(404, "not_found", API1, "DELETE", p, member.token, &cl, NULL);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/pins/0%s", room, rid);
    it_api_err(404, "not_found", API1, "DELETE", p, owner.token, &cl, NULL);
    /* an ad-hoc public room (no row): nothing to pin, nothing listed */
    it_room_new(adhoc, sizeof(adhoc), "pinah");
    send_rest(&owner, adhoc, "ad hoc", id, sizeof(id));
    st = pin(&owner, adhoc, id, &out);
    it_check_error(st, out, 404, "not_found", "an ad-hoc room's pin");
    json_decref(out);
    r = pins(NULL, adhoc);
    assert_int_equal(json_array_size(json_object_get(r, "pins")), 0);
    json_decref(r);
    /* a chat-banned owner may neither pin nor unpin */
    snprintf(p, sizeof(p), "/api/v1/admin/users/%s/sanctions/chat_ban", owner.id);
    json_decref(it_api_ok(201, API1, "POST", p, adm.token, &cl,
                          json_pack("{s:i, s:s}", "duration_s", 600, "reason", "pin spam")));
    st = pin(&owner, room, rid, &out);
    it_check_error(st, out, 403, "chat_banned", "a chat-banned owner's pin");
    json_decref(out);
    json_decref(it_api_ok(204, API1, "DELETE", p, adm.token, &cl, NULL));
    /* deleting the room drops its pins */
    assert_true(it_sql_ll("SELECT count(*) FROM room_pins WHERE room_id = '%s'", room) >= 1);
    snprintf(p, sizeof(p), "/api/v1/rooms/%s", room);
    json_decref(it_api_ok(204, API1, "DELETE", p, owner.token, &cl, NULL));
    assert_int_equal(it_sql_ll("SELECT count(*) FROM room_pins WHERE room_id = '%s'", room), 0);
    it_user_free(&owner);
    it_user_free(&member);
    it_user_free(&adm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pin_live_and_listed), cmocka_unit_test(test_who_may_pin),
        cmocka_unit_test(test_delete_unpins),       cmocka_unit_test(test_pin_limit),
        cmocka_unit_test(test_pin_edges),
    };

    it_env_load();
    it_client_new(&cl, "198.51.110");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
