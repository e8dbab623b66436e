/* it_admin.c - the admin API (issue 13, proto/README.md section 9 "Administration API") on the
 * shared cluster: every /api/v1/admin/ route of chat-api's route table (read from
 * api/src/api_routes.c) refuses anonymous callers (401) and non-admins (403); the listings and
 * their filters; role changes; a site ban (sessions revoked on both gateways, login refused with
 * site_banned and until, lifted: login works); reports with their context; the announcement on
 * a connection of each gateway; the audit rows of each action. The first admin is made with SQL,
 * as in it_sessions.c. Every wait is on a condition, bounded by it_timeout(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "it_acct.h"
#include "it_user.h"
#include "it_util.h"
#include "wsc.h"

static struct it_client cl;

/* GET path as admin a -> 200, the answer. */
static json_t *get(const struct it_user *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static json_t *get(const struct it_user *a, const char *fmt, ...)
{
    char path[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    return it_api_ok(200, LB, "GET", path, a->token, &cl, NULL);
}

/* The element of array arr (at path in j) whose string key equals val, or NULL. */
static json_t *find(const json_t *j, const char *arr, const char *key, const char *val)
{
    json_t *a = it_jget(j, arr), *e;
    size_t i;

    assert_true(json_is_array(a));
    json_array_foreach (a, i, e) {
        const char *s = json_string_value(json_object_get(e, key));
        if (s && strcmp(s, val) == 0)
            return e;
    }
    return NULL;
}

/* Element 0 of the array at key arr of j (fails when empty); borrowed. */
static json_t *first(const json_t *j, const char *arr)
{
    json_t *e = json_array_get(it_jget(j, arr), 0);

    assert_non_null(e);
    return e;
}

/* The newest audit row of action about target (filters: target and action). */
static json_t *audit_of(const struct it_user *a, const char *action, const char *target)
{
    json_t *out = get(a, "/api/v1/admin/audit?action=%s&target=%s&limit=1", action, target);
    json_t *rows = it_jget(out, "audit"), *row;

    assert_int_equal(json_array_size(rows), 1);
    row = json_incref(json_array_get(rows, 0));
    assert_string_equal(it_jstr(row, "action"), action);
    assert_string_equal(it_jstr(row, "target"), target);
    json_decref(out);
    return row;
}

/* ---- the route table ---- */

/* Every admin route of api/src/api_routes.c: 401 without a token, 403 with a non-admin's, whatever
 * the body (an empty object, not JSON, wrong field types). */
static void test_every_admin_route_guarded(void **state)
{
    char path[512], line[512];
    struct it_user u;
    FILE *f;
    int n = 0;

    (void)state;
    it_client_new(&cl, "198.51.100");
    it_user_new(&u, "Nadm");
    snprintf(path, sizeof(path), "%s/../../api/src/api_routes.c", IT_SRC_DIR);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        static const char *const methods[] = {"GET", "POST", "PATCH", "DELETE", "PUT"};
        char *p = strstr(line, "\"/api/v1/admin/"), *q, *m;
        char url[256] = "";
        const char *method = NULL;
        size_t k = 0;
        json_t *out;
        int st;

        if (!p || !(m = strstr(line, "{API_")))
            continue;
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
            if (strncmp(m + 5, methods[i], strlen(methods[i])) == 0)
                method = methods[i];
        assert_non_null(method);
        /* the pattern, with each {name:kind} parameter replaced by a value of its kind */
        for (q = p + 1; *q && *q != '"' && k + 16 < sizeof(url); q++) {
            if (*q == '{') {
                const char *v = strstr(q, ":int}") == strchr(q, ':') ? "1" : "lobby";
                k += (size_t)snprintf(url + k, sizeof(url) - k, "%s", v);
                q = strchr(q, '}');
                assert_non_null(q);
            } else
                url[k++] = *q;
        }
        url[k] = '\0';
        st = it_api_raw(LB, method, url, NULL, &cl, strcmp(method, "GET") ? "{}" : NULL, 0, &out,
                        NULL);
        if (st != 401)
            fail_msg("%s %s without a token: %d, not 401", method, url, st);
        json_decref(out);
        /* who asks is checked before what is asked: a non-admin's bad body is 403 too */
        for (int b = 0; b < (strcmp(method, "GET") ? 3 : 1); b++) {
            static const char *const bodies[] = {"{}", "x",
                                                 "{\"role\":5,\"all\":\"x\",\"duration_s\":\"y\"}"};
            st = it_api_raw(LB, method, url, u.token, &cl, strcmp(method, "GET") ? bodies[b] : NULL,
                            0, &out, NULL);
            it_check_error(st, out, 403, "forbidden", url);
            json_decref(out);
        }
        n++;
    }
    fclose(f);
    assert_true(n >= 12); /* the table was read: every endpoint of the issue */
    it_user_free(&u);
}

/* ---- users, roles, rooms ---- */

static void test_users_roles_rooms(void **state)
{
    struct it_user a, b;
    char room[80], path[160];
    json_t *out, *e, *row;
    struct wsc *w;
    long long deadline, online = -1;

    (void)state;
    it_client_new(&cl, "198.51.100");
    it_user_new(&a, "Adm");
    it_user_admin(&a);
    it_user_new(&b, "Usr");
    /* search by username: role user, no ban */
    out = get(&a, "/api/v1/admin/users?q=%s", b.name);
    e = find(out, "users", "id", b.id);
    assert_non_null(e);
    assert_string_equal(it_jstr(e, "username"), b.name);
    assert_string_equal(it_jstr(e, "role"), "user");
    assert_true(json_is_null(json_object_get(e, "banned")));
    json_decref(out);
    /* paging: limit 1 gives one row and a next key; the next page starts below it */
    out = get(&a, "/api/v1/admin/users?limit=1");
    assert_int_equal(json_array_size(it_jget(out, "users")), 1);
    assert_true(it_is_decimal(it_jstr(out, "next")));
    json_decref(out);
    it_api_err(400, "bad_field", LB, "GET", "/api/v1/admin/users?limit=0", a.token, &cl, NULL);
    it_api_err(400, "bad_field", LB, "GET", "/api/v1/admin/users?limit=201", a.token, &cl, NULL);
    /* role change, audited; not one's own; the new admin can use the API at once */
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/role", b.id);
    it_api_err(400, "bad_field", LB, "POST", path, a.token, &cl, json_pack("{s:s}", "role", "god"));
    out = it_api_ok(200, LB, "POST", path, a.token, &cl, json_pack("{s:s}", "role", "admin"));
    assert_string_equal(it_jstr(out, "role"), "admin");
    json_decref(out);
    json_decref(get(&b, "/api/v1/admin/users?limit=1"));
    row = audit_of(&a, "role_change", b.id);
    assert_string_equal(it_jstr(row, "actor"), a.id);
    assert_string_equal(it_jstr(row, "details.to"), "admin");
    json_decref(row);
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/role", a.id);
    it_api_err(400, "bad_field", LB, "POST", path, a.token, &cl,
               json_pack("{s:s}", "role", "user"));
    it_api_err(404, "not_found", LB, "POST", "/api/v1/admin/users/999999999/role", a.token, &cl,
               json_pack("{s:s}", "role", "user"));
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/role", b.id);
    json_decref(it_api_ok(200, LB, "POST", path, a.token, &cl, json_pack("{s:s}", "role", "user")));
    it_api_err(403, "forbidden", LB, "GET", "/api/v1/admin/users", b.token, &cl, NULL);
    /* rooms of every kind (here a public one), with its members and live online count */
    it_room_new(room, sizeof(room), "adm");
    it_user_room(&b, room);
    w = it_connect(GW1, b.token);
    it_join(w, room);
    deadline = it_mono_ms() + it_timeout(5000);
    while (online != 1 && it_mono_ms() < deadline) { /* presence is written every second */
        out = get(&a, "/api/v1/admin/rooms?q=%s", room);
        e = find(out, "rooms", "id", room);
        assert_non_null(e);
        assert_int_equal(it_jint(e, "members"), 1);
        online = json_is_integer(json_object_get(e, "online")) ? it_jint(e, "online") : -1;
        json_decref(out);
        if (online != 1)
            it_sleep_ms(100); /* polling a condition, bounded by the deadline */
    }
    assert_int_equal(online, 1);
    wsc_close(w);
    it_user_free(&a);
    it_user_free(&b);
}

/* The session revoke is audited (revoke_sessions, with the count) and ignores the body's fields;
 * site sanctions and room moderation of an id that is no account are 404 (nothing recorded). */
static void test_revoke_audited_and_unknown_users(void **state)
{
    struct it_user a, v;
    char path[200], room[80];
    json_t *out, *row;

    (void)state;
    it_client_new(&cl, "198.51.100");
    it_user_new(&a, "Adr");
    it_user_admin(&a);
    it_user_new(&v, "Rev");
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/revoke", v.id);
    out = it_api_ok(200, LB, "POST", path, a.token, &cl,
                    json_pack("{s:i, s:s}", "all", 1, "username", "ignored"));
    assert_int_equal(it_jint(out, "revoked_sessions"), 1);
    json_decref(out);
    row = audit_of(&a, "revoke_sessions", v.id);
    assert_string_equal(it_jstr(row, "actor"), a.id);
    assert_int_equal(it_jint(row, "details.revoked"), 1);
    json_decref(row);

    it_api_err(404, "not_found", LB, "POST", "/api/v1/admin/users/999999999999/sanctions/mute",
               a.token, &cl, json_pack("{s:s}", "reason", "x"));
    it_room_new(room, sizeof(room), "adm");
    it_user_room(&a, room);
    snprintf(path, sizeof(path), "/api/v1/rooms/%s/moderation/mute", room);
    it_api_err(404, "not_found", LB, "POST", path, a.token, &cl,
               json_pack("{s:s}", "user", "999999999999"));
    snprintf(path, sizeof(path), "/api/v1/rooms/%s/moderation/kick", room);
    it_api_err(404, "not_found", LB, "POST", path, a.token, &cl,
               json_pack("{s:s}", "user", "999999999999"));
    out = get(&a, "/api/v1/admin/audit?target=999999999999&limit=5");
    assert_int_equal(json_array_size(it_jget(out, "audit")), 0);
    json_decref(out);
    it_user_free(&a);
    it_user_free(&v);
}

/* ---- site ban ---- */

static void test_site_ban(void **state)
{
    struct it_user a, v;
    char path[160];
    json_t *s2, *out, *e, *row;
    struct wsc *s1, *w2;
    int st;
    long long t0;

    (void)state;
    it_client_new(&cl, "198.51.100");
    it_user_new(&a, "Adm");
    it_user_admin(&a);
    it_user_new(&v, "Ban");
    s2 = it_login(API2, &cl, v.name, PW);
    s1 = it_connect(GW1, v.token);
    w2 = it_connect(GW2, it_access(s2));
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/ban", v.id);
    it_api_err(400, "bad_field", LB, "POST", path, a.token, &cl,
               json_pack("{s:i}", "duration_s", 0));
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/ban", a.id);
    it_api_err(400, "bad_field", LB, "POST", path, a.token, &cl, json_pack("{s:s}", "reason", "x"));
    /* permanent: both sessions revoked, both sockets told, login refused */
    snprintf(path, sizeof(path), "/api/v1/admin/users/%s/ban", v.id);
    out = it_api_ok(200, LB, "POST", path, a.token, &cl,
                    json_pack("{s:n, s:s}", "duration_s", "reason", "abuse"));
    assert_int_equal(it_jint(out, "revoked_sessions"), 2);
    assert_true(json_is_null(json_object_get(out, "until")));
    json_decref(out);
    it_expect_revoked(s1, "admin", it_timeout(2000), "banned user on gw1");
    it_expect_revoked(w2, "admin", it_timeout(2000), "banned user on gw2");
    st = it_api(API1, "POST", "/api/v1/auth/login", NULL, &cl, it_creds(v.name, PW), &out, NULL);
    it_check_error(st, out, 403, "site_banned", "login while banned");
    assert_true(json_is_null(it_jget(out, "error.until")));
    assert_string_equal(it_jstr(out, "error.reason"), "abuse");
    json_decref(out);
    it_login_fails(API2, &cl, v.name, PW_WRONG); /* a wrong password stays 401 */
    out = get(&a, "/api/v1/admin/users?q=%s", v.name);
    e = find(out, "users", "id", v.id);
    assert_non_null(e);
    assert_string_equal(it_jstr(e, "banned.reason"), "abuse");
    json_decref(out);
    out = get(&a, "/api/v1/admin/users/%s/sessions", v.id);
    assert_int_equal(json_array_size(it_jget(out, "sessions")), 2);
    assert_true(json_is_integer(it_jget(out, "sessions.0.revoked_at")) ||
                json_is_integer(
                    json_object_get(json_array_get(it_jget(out, "sessions"), 0), "revoked_at")));
    json_decref(out);
    row = audit_of(&a, "site_ban", v.id);
    assert_string_equal(it_jstr(row, "reason"), "abuse");
    json_decref(row);
    /* lifted: login works; lifting again is 404 */
    json_decref(it_api_ok(200, LB, "DELETE", path, a.token, &cl, NULL));
    it_api_err(404, "not_found", LB, "DELETE", path, a.token, &cl, NULL);
    json_decref(it_login(API1, &cl, v.name, PW));
    json_decref(audit_of(&a, "site_unban", v.id));
    /* timed: until about an hour ahead, on both replicas */
    t0 = it_wall_ms();
    json_decref(it_api_ok(200, LB, "POST", path, a.token, &cl,
                          json_pack("{s:i, s:s}", "duration_s", 3600, "reason", "cool off")));
    st = it_api(API2, "POST", "/api/v1/auth/login", NULL, &cl, it_creds(v.name, PW), &out, NULL);
    it_check_error(st, out, 403, "site_banned", "login while banned for an hour");
    assert_true(it_jint(out, "error.until") >= t0 + 3599000LL &&
                it_jint(out, "error.until") <= it_wall_ms() + 3601000LL);
    json_decref(out);
    json_decref(it_api_ok(200, LB, "DELETE", path, a.token, &cl, NULL));
    json_decref(it_login(API2, &cl, v.name, PW));
    wsc_close(s1);
    wsc_close(w2);
    json_decref(s2);
    it_user_free(&a);
    it_user_free(&v);
}

/* ---- messages and reports ---- */

static void test_messages_and_reports(void **state)
{
    struct it_user a, u;
    char room[80], cmid[32], path[192], mid[32] = "";
    json_t *out, *rep, *ctx;
    struct wsc *w;
    long long deadline;
    size_t n = 0;

    (void)state;
    it_client_new(&cl, "198.51.100");
    it_user_new(&a, "Adm");
    it_user_admin(&a);
    it_user_new(&u, "Msg");
    it_room_new(room, sizeof(room), "admr");
    w = it_connect(GW2, u.token);
    it_join(w, room);
    for (int i = 0; i < 5; i++) {
        char text[16];
        snprintf(cmid, sizeof(cmid), "am-%d", i);
        snprintf(text, sizeof(text), "text %d", i);
        it_expect_sent(w, room, text, cmid, NULL);
    }
    /* stored by the persister: wait until all five are in PostgreSQL */
    deadline = it_mono_ms() + it_timeout(10000);
    while (n < 5 && it_mono_ms() < deadline) {
        out = get(&a, "/api/v1/admin/rooms/%s/messages?limit=10", room);
        n = json_array_size(it_jget(out, "messages"));
        if (n == 5) /* newest first: index 2 is "text 2", the middle one */
            snprintf(mid, sizeof(mid), "%s",
                     json_string_value(
                         json_object_get(json_array_get(it_jget(out, "messages"), 2), "id")));
        json_decref(out);
        if (n < 5)
            it_sleep_ms(100); /* polling a condition, bounded by the deadline */
    }
    assert_int_equal(n, 5);
    /* a deleted one is listed with deleted_at and deleted_by */
    it_sql("UPDATE messages SET deleted_at = now(), deleted_by = '%s' WHERE id = %s", a.id, mid);
    out = get(&a, "/api/v1/admin/rooms/%s/messages?limit=2", room);
    assert_int_equal(json_array_size(it_jget(out, "messages")), 2);
    assert_true(it_is_decimal(it_jstr(out, "next")));
    snprintf(path, sizeof(path), "/api/v1/admin/rooms/%s/messages?before=%s", room,
             it_jstr(out, "next"));
    json_decref(out);
    out = get(&a, "%s", path);
    assert_int_equal(json_array_size(it_jget(out, "messages")), 3);
    {
        json_t *m = find(out, "messages", "id", mid);
        assert_non_null(m);
        assert_string_equal(json_string_value(json_object_get(m, "text")), "text 2");
        assert_true(json_is_integer(json_object_get(m, "deleted_at")));
        assert_string_equal(json_string_value(json_object_get(m, "deleted_by")), a.id);
    }
    json_decref(out);
    /* a report of the middle message: the message and two before, two after */
    it_sql("INSERT INTO reports (reporter_id, room_id, message_id, reason) VALUES (%s, '%s', %s, "
           "'rude')",
           u.id, room, mid);
    out = get(&a, "/api/v1/admin/reports?status=open&limit=200");
    rep = NULL;
    {
        json_t *arr = it_jget(out, "reports"), *e;
        size_t i;
        json_array_foreach (arr, i, e) {
            if (strcmp(json_string_value(json_object_get(e, "room")), room) == 0)
                rep = e;
        }
    }
    assert_non_null(rep);
    assert_string_equal(it_jstr(rep, "message.text"), "text 2");
    assert_string_equal(it_jstr(rep, "reason"), "rude");
    ctx = it_jget(rep, "context");
    assert_int_equal(json_array_size(ctx), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ctx, 0), "text")),
                        "text 0");
    assert_string_equal(json_string_value(json_object_get(json_array_get(ctx, 3), "text")),
                        "text 4");
    snprintf(path, sizeof(path), "/api/v1/admin/reports/%s/resolve", it_jstr(rep, "id"));
    json_decref(out);
    it_api_err(400, "bad_field", LB, "POST", path, a.token, &cl,
               json_pack("{s:s}", "action", "explode"));
    out = it_api_ok(200, LB, "POST", path, a.token, &cl,
                    json_pack("{s:s, s:s}", "action", "dismiss", "reason", "fine"));
    assert_string_equal(it_jstr(out, "status"), "dismissed");
    json_decref(out);
    it_api_err(404, "not_found", LB, "POST", path, a.token, &cl,
               json_pack("{s:s}", "action", "resolve"));
    out = get(&a, "/api/v1/admin/reports?status=dismissed&limit=1");
    assert_string_equal(it_jstr(first(out, "reports"), "status"), "dismissed");
    json_decref(out);
    it_api_err(400, "bad_field", LB, "GET", "/api/v1/admin/reports?status=bogus", a.token, &cl,
               NULL);
    out = get(&a, "/api/v1/admin/audit?action=report_resolve&room=%s", room);
    assert_int_equal(json_array_size(it_jget(out, "audit")), 1);
    assert_string_equal(it_jstr(first(out, "audit"), "message"), mid);
    assert_string_equal(it_jstr(first(out, "audit"), "reason"), "fine");
    json_decref(out);
    out = get(&a, "/api/v1/admin/audit?actor=%s&limit=200", a.id);
    assert_true(json_array_size(it_jget(out, "audit")) >= 1);
    json_decref(out);
    wsc_close(w);
    it_user_free(&a);
    it_user_free(&u);
}

/* ---- resolving a report by deleting its message ---- */

/* A report resolved with the action "delete" deletes the message as DELETE
 * /api/v1/rooms/{room}/messages/{id} by a site admin does, in the transaction of the
 * resolution: the report resolved, the message_deleted event live in the room, the message
 * deleted in history and in PostgreSQL, the audit rows delete_message and report_resolve. "mute"
 * and "ban" are not actions of resolve (400 bad_field). */
static void test_report_resolve_delete(void **state)
{
    struct it_user a, u, rep;
    char room[80], path[192], hist[192], mid[32], rid[32];
    json_t *out, *ack, *f, *m = NULL, *row;
    struct wsc *w, *watch;
    long long deadline;

    (void)state;
    it_client_new(&cl, "198.51.100");
    it_user_new(&a, "Adm");
    it_user_admin(&a);
    it_user_new(&u, "Auth");
    it_user_new(&rep, "Rep");
    it_room_new(room, sizeof(room), "admd");
    it_user_room(&u, room);
    w = it_connect(GW2, u.token);
    watch = it_connect(GW1, rep.token);
    it_join(w, room);
    it_join(watch, room);
    it_send(w, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "bad words",
            "client_msg_id", "rd-1");
    ack = it_reply_to(w, "rd-1", NULL);
    assert_string_equal(it_jstr(ack, "type"), "ack");
    snprintf(mid, sizeof(mid), "%s", it_jstr(ack, "id"));
    json_decref(ack);
    /* stored by the persister first: the delete then changes the row in its transaction */
    deadline = it_mono_ms() + it_timeout(10000);
    while (it_sql_ll("SELECT count(*) FROM messages WHERE id = %s AND room = '%s'", mid, room) !=
           1) {
        if (it_mono_ms() > deadline)
            fail_msg("message %s never stored", mid);
        it_sleep_ms(100); /* polling a condition, bounded by the deadline */
    }
    snprintf(path, sizeof(path), "/api/v1/rooms/%s/messages/%s/report", room, mid);
    out = it_api_ok(201, LB, "POST", path, rep.token, &cl, json_pack("{s:s}", "reason", "rude"));
    snprintf(rid, sizeof(rid), "%s", it_jstr(out, "id"));
    json_decref(out);
    snprintf(path, sizeof(path), "/api/v1/admin/reports/%s/resolve", rid);
    it_api_err(400, "bad_field", LB, "POST", path, a.token, &cl,
               json_pack("{s:s}", "action", "mute"));
    it_api_err(400, "bad_field", LB, "POST", path, a.token, &cl,
               json_pack("{s:s}", "action", "ban"));
    out = it_api_ok(200, LB, "POST", path, a.token, &cl,
                    json_pack("{s:s, s:s}", "action", "delete", "reason", "removed"));
    assert_string_equal(it_jstr(out, "status"), "resolved");
    assert_string_equal(it_jstr(out, "resolution"), "delete");
    assert_true(json_is_true(json_object_get(out, "message_deleted")));
    json_decref(out);
    it_api_err(404, "not_found", LB, "POST", path, a.token, &cl,
               json_pack("{s:s}", "action", "delete"));
    /* the room's stream: one message_deleted by the admin */
    f = it_wait_frame(watch, "message_deleted", "id", mid, NULL, it_timeout(5000));
    if (!f)
        fail_msg("no message_deleted for %s", mid);
    assert_string_equal(it_jstr(f, "by"), a.id);
    json_decref(f);
    /* history shows it deleted (the cache once the persister applied the event, or
     * PostgreSQL) */
    snprintf(hist, sizeof(hist), "/api/v1/rooms/%s/messages?limit=10", room);
    deadline = it_mono_ms() + it_timeout(10000);
    for (;;) {
        out = it_api_ok(200, API2, "GET", hist, NULL, &cl, NULL);
        m = find(out, "messages", "id", mid);
        assert_non_null(m);
        if (json_is_true(json_object_get(m, "deleted")))
            break;
        json_decref(out);
        if (it_mono_ms() > deadline)
            fail_msg("message %s never shown deleted in history", mid);
        it_sleep_ms(100); /* polling a condition, bounded by the deadline */
    }
    assert_string_equal(it_jstr(m, "text"), "");
    json_decref(out);
    assert_int_equal(it_sql_ll("SELECT count(*) FROM messages WHERE id = %s AND deleted_at IS NOT "
                               "NULL AND deleted_by = '%s'",
                               mid, a.id),
                     1);
    /* the audit rows: the delete (as by DELETE) and the resolution */
    row = audit_of(&a, "delete_message", u.id);
    assert_string_equal(it_jstr(row, "actor"), a.id);
    assert_string_equal(it_jstr(row, "room"), room);
    assert_string_equal(it_jstr(row, "message"), mid);
    json_decref(row);
    out = get(&a, "/api/v1/admin/audit?action=report_resolve&room=%s", room);
    assert_int_equal(json_array_size(it_jget(out, "audit")), 1);
    assert_string_equal(it_jstr(first(out, "audit"), "message"), mid);
    assert_string_equal(it_jstr(first(out, "audit"), "reason"), "removed");
    assert_string_equal(it_jstr(first(out, "audit"), "details.action"), "delete");
    json_decref(out);
    out = get(&a, "/api/v1/admin/reports?status=resolved&limit=200");
    row = find(out, "reports", "id", rid);
    assert_non_null(row);
    assert_string_equal(it_jstr(row, "resolution"), "delete");
    json_decref(out);
    /* deleting it again (the room's route) is nothing new: still one delete_message row */
    snprintf(path, sizeof(path), "/api/v1/rooms/%s/messages/%s", room, mid);
    json_decref(it_api_ok(204, LB, "DELETE", path, a.token, &cl, NULL));
    assert_int_equal(it_sql_ll("SELECT count(*) FROM audit_log WHERE action = 'delete_message' AND "
                               "message_id = %s",
                               mid),
                     1);
    wsc_close(w);
    wsc_close(watch);
    it_user_free(&a);
    it_user_free(&u);
    it_user_free(&rep);
}

/* ---- announcements ---- */

static void test_announce(void **state)
{
    static const char text[] = "Maintenance at noon \xe2\x9c\x93";
    struct it_user a, u;
    char room[80], big[2100];
    json_t *out, *f;
    struct wsc *c1, *c2, *anon;
    const char *id;

    (void)state;
    it_client_new(&cl, "198.51.100");
    it_user_new(&a, "Adm");
    it_user_admin(&a);
    it_user_new(&u, "Ann");
    c1 = it_connect(GW1, u.token);
    c2 = it_connect(GW2, u.token);
    anon = it_connect(GW2, NULL);
    it_api_err(400, "bad_field", LB, "POST", "/api/v1/admin/announce", a.token, &cl,
               json_pack("{s:n, s:s}", "room", "text", ""));
    memset(big, 'x', 2001);
    big[2001] = '\0';
    it_api_err(400, "bad_field", LB, "POST", "/api/v1/admin/announce", a.token, &cl,
               json_pack("{s:n, s:s}", "room", "text", big));
    it_api_err(400, "bad_room", LB, "POST", "/api/v1/admin/announce", a.token, &cl,
               json_pack("{s:s, s:s}", "room", "bad room!", "text", "x"));
    /* everyone: every connection of each gateway, logged in or not */
    out = it_api_ok(202, LB, "POST", "/api/v1/admin/announce", a.token, &cl,
                    json_pack("{s:n, s:s}", "room", "text", text));
    id = it_jstr(out, "id");
    for (int i = 0; i < 3; i++) {
        struct wsc *c = i == 0 ? c1 : i == 1 ? c2 : anon;
        f = it_wait_frame(c, "announcement", "id", id, NULL, it_timeout(3000));
        if (!f)
            fail_msg("no announcement on connection %d", i);
        assert_string_equal(it_jstr(f, "text"), text);
        assert_true(json_is_integer(json_object_get(f, "ts")));
        json_decref(f);
    }
    json_decref(out);
    out = get(&a, "/api/v1/admin/audit?action=announce&actor=%s&limit=1", a.id);
    assert_int_equal(json_array_size(it_jget(out, "audit")), 1);
    json_decref(out);
    /* one room: a system message in the room's stream */
    it_room_new(room, sizeof(room), "ann");
    it_api_err(404, "not_found", LB, "POST", "/api/v1/admin/announce", a.token, &cl,
               json_pack("{s:s, s:s}", "room", room, "text", "x"));
    it_user_room(&u, room);
    it_join(c1, room);
    out = it_api_ok(202, LB, "POST", "/api/v1/admin/announce", a.token, &cl,
                    json_pack("{s:s, s:s}", "room", room, "text", "room news"));
    f = it_wait_frame(c1, "system", "id", it_jstr(out, "id"), NULL, it_timeout(3000));
    assert_non_null(f);
    assert_string_equal(it_jstr(f, "event"), "announcement");
    assert_string_equal(it_jstr(f, "text"), "room news");
    assert_string_equal(it_jstr(f, "room"), room);
    json_decref(f);
    json_decref(out);
    wsc_close(c1);
    wsc_close(c2);
    wsc_close(anon);
    it_user_free(&a);
    it_user_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_admin_route_guarded),
        cmocka_unit_test(test_users_roles_rooms),
        cmocka_unit_test(test_site_ban),
        cmocka_unit_test(test_revoke_audited_and_unknown_users),
        cmocka_unit_test(test_messages_and_reports),
        cmocka_unit_test(test_report_resolve_delete),
        cmocka_unit_test(test_announce),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
