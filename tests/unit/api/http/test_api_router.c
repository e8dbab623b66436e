/* test_api_router.c - the REST route table (api/src/http/api_router.c): typed parameters,
 * 404 against 405 with Allow, first match wins, the start-up table check. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "api_router.h"

static void h_any(struct api_req *r)
{
    (void)r;
}

static const struct api_route routes[] = {
    {API_POST, "/api/v1/auth/login", API_BODY, h_any, "auth_login", NULL, 0, NULL},
    {API_GET, "/api/v1/users/me", API_BEARER, h_any, "users_me", NULL, 0, NULL},
    {API_POST, "/api/v1/users/me/nickname", API_BEARER | API_BODY, h_any, "users_nickname", NULL, 0,
     NULL},
    {API_POST, "/api/v1/rooms/{room:room}/messages", API_BEARER | API_BODY, h_any, "send", NULL, 0,
     NULL},
    {API_GET, "/api/v1/rooms/{room:room}/messages", API_BEARER, h_any, "history", NULL, 0, NULL},
    {API_POST, "/api/v1/admin/users/{id:int}/revoke", API_ADMIN, h_any, "admin_revoke", NULL, 0,
     NULL},
    {API_DELETE, "/api/v1/rooms/{room:room}/members/{user:name}", API_BEARER, h_any, "kick", NULL,
     0, NULL},
    {API_GET, "/healthz", 0, h_any, "healthz", NULL, 0, NULL},
    {API_PUT, "/api/v1/things/{x:seg}", 0, h_any, "thing", NULL, 0, NULL},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static enum api_match
match(unsigned m, const char *path, const struct api_route **rt, struct api_params *p, char *allow)
{
    return api_route_match(routes, NROUTES, m, path, rt, p, allow, 64);
}

static void test_table_is_valid(void **state)
{
    (void)state;
    assert_null(api_routes_check(routes, NROUTES));
}

static void test_literal_and_typed(void **state)
{
    const struct api_route *rt;
    struct api_params p;
    char allow[64];

    (void)state;
    assert_int_equal(match(API_POST, "/api/v1/auth/login", &rt, &p, allow), API_MATCH_OK);
    assert_string_equal(rt->name, "auth_login");
    assert_int_equal(p.n, 0);
    assert_int_equal(match(API_POST, "/api/v1/rooms/lobby.en-1/messages", &rt, &p, allow),
                     API_MATCH_OK);
    assert_string_equal(rt->name, "send");
    assert_string_equal(api_param_get(&p, "room")->str, "lobby.en-1");
    assert_int_equal(match(API_POST, "/api/v1/admin/users/42/revoke", &rt, &p, allow),
                     API_MATCH_OK);
    assert_int_equal(api_param_get(&p, "id")->num, 42);
    assert_null(api_param_get(&p, "room"));
    assert_int_equal(match(API_DELETE, "/api/v1/rooms/r1/members/alice_1", &rt, &p, allow),
                     API_MATCH_OK);
    assert_int_equal(p.n, 2);
    assert_string_equal(api_param_get(&p, "user")->str, "alice_1");
}

static void test_bad_parameters_are_not_found(void **state)
{
    static const char *const paths[] = {
        "/api/v1/admin/users/-1/revoke",                  /* sign */
        "/api/v1/admin/users/007/revoke",                 /* leading zero */
        "/api/v1/admin/users/1234567890123456789/revoke", /* 19 digits */
        "/api/v1/admin/users/4x/revoke",
        "/api/v1/admin/users//revoke",    /* empty */
        "/api/v1/rooms/a%2Fb/messages",   /* no decoding, '%' is not a room character */
        "/api/v1/rooms/a/b/messages",     /* never across '/' */
        "/api/v1/rooms/r1/members/al!ce", /* not a name */
        "/api/v1/auth/login/",            /* trailing slash */
        "/api/v1//auth/login",            /* empty segment */
        "api/v1/auth/login",              /* not absolute */
        "/api/v1/auth",                   /* prefix */
        "/api/v1/auth/login2",            /* longer literal */
        "",
    };
    const struct api_route *rt;
    struct api_params p;
    char allow[64];

    (void)state;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (match(API_POST, paths[i], &rt, &p, allow) != API_MATCH_NOT_FOUND ||
            match(API_GET, paths[i], &rt, &p, allow) != API_MATCH_NOT_FOUND ||
            match(API_DELETE, paths[i], &rt, &p, allow) != API_MATCH_NOT_FOUND)
            fail_msg("%s matched", paths[i]);
    /* the longest int and room that fit */
    assert_int_equal(
        match(API_POST, "/api/v1/admin/users/999999999999999999/revoke", &rt, &p, allow),
        API_MATCH_OK);
    assert_true(api_param_get(&p, "id")->num == 999999999999999999LL);
    assert_int_equal(match(API_POST, "/api/v1/admin/users/0/revoke", &rt, &p, allow), API_MATCH_OK);
}

/* seg: anything the handler checks itself, but never '%', a control or across '/' */
static void test_seg_parameters(void **state)
{
    const struct api_route *rt;
    struct api_params p;
    char allow[64];

    (void)state;
    assert_int_equal(match(API_PUT, "/api/v1/things/bad room!", &rt, &p, allow), API_MATCH_OK);
    assert_string_equal(api_param_get(&p, "x")->str, "bad room!");
    assert_int_equal(match(API_PUT, "/api/v1/things/a%2Fb", &rt, &p, allow), API_MATCH_NOT_FOUND);
    assert_int_equal(match(API_PUT, "/api/v1/things/a\tb", &rt, &p, allow), API_MATCH_NOT_FOUND);
    assert_int_equal(match(API_PUT, "/api/v1/things/a/b", &rt, &p, allow), API_MATCH_NOT_FOUND);
    assert_int_equal(match(API_PUT, "/api/v1/things/", &rt, &p, allow), API_MATCH_NOT_FOUND);
}

static void test_wrong_method_gets_allow(void **state)
{
    const struct api_route *rt;
    struct api_params p;
    char allow[64];

    (void)state;
    assert_int_equal(match(API_GET, "/api/v1/auth/login", &rt, &p, allow), API_MATCH_BAD_METHOD);
    assert_null(rt);
    assert_string_equal(allow, "POST");
    assert_int_equal(match(API_PUT, "/api/v1/rooms/r1/messages", &rt, &p, allow),
                     API_MATCH_BAD_METHOD);
    assert_string_equal(allow, "GET, POST"); /* every method the path takes, in a fixed order */
    assert_int_equal(match(API_POST, "/healthz", &rt, &p, allow), API_MATCH_BAD_METHOD);
    assert_string_equal(allow, "GET");
    /* a bad parameter is a missing resource, not a wrong method */
    assert_int_equal(match(API_PUT, "/api/v1/rooms/a%20b/messages", &rt, &p, allow),
                     API_MATCH_NOT_FOUND);
}

static void test_methods(void **state)
{
    (void)state;
    assert_int_equal(api_method_parse("GET"), API_GET);
    assert_int_equal(api_method_parse("DELETE"), API_DELETE);
    assert_int_equal(api_method_parse("get"), 0);
    assert_int_equal(api_method_parse("HEAD"), 0);
    assert_string_equal(api_method_name(API_PATCH), "PATCH");
}

static void test_table_check_finds_mistakes(void **state)
{
    static const struct api_route dup_name[] = {
        {API_GET, "/a", 0, h_any, "x", NULL, 0, NULL},
        {API_GET, "/b", 0, h_any, "x", NULL, 0, NULL},
    };
    static const struct api_route dup_shape[] = {
        {API_GET, "/r/{room:room}", 0, h_any, "a", NULL, 0, NULL},
        {API_GET, "/r/{id:int}", 0, h_any, "b", NULL, 0, NULL},
    };
    static const struct api_route bad_type[] = {
        {API_GET, "/r/{id:float}", 0, h_any, "a", NULL, 0, NULL}};
    static const struct api_route no_fn[] = {{API_GET, "/r", 0, NULL, "a", NULL, 0, NULL}};
    static const struct api_route two_methods[] = {
        {API_GET | API_POST, "/r", 0, h_any, "a", NULL, 0, NULL}};
    static const struct api_route empty_seg[] = {{API_GET, "/r//x", 0, h_any, "a", NULL, 0, NULL}};
    static const struct api_route rate_no_kind[] = {
        {API_POST, "/r", API_RATE_IP, h_any, "a", NULL, 0, NULL}};
    static const struct api_route rate_user_anon[] = {
        {API_POST, "/r", API_RATE_USER, h_any, "a", "kind", 0, NULL}};
    static const struct api_route account_anon[] = {
        {API_GET, "/r", API_ACCOUNT, h_any, "a", NULL, 0, NULL}};
    static const struct api_route rate_ok[] = {
        {API_POST, "/r", API_BEARER | API_RATE_USER, h_any, "a", "kind", 0, NULL}};

    (void)state;
    assert_non_null(api_routes_check(dup_name, 2));
    assert_non_null(api_routes_check(dup_shape, 2));
    assert_non_null(api_routes_check(bad_type, 1));
    assert_non_null(api_routes_check(no_fn, 1));
    assert_non_null(api_routes_check(two_methods, 1));
    assert_non_null(api_routes_check(empty_seg, 1));
    assert_non_null(api_routes_check(rate_no_kind, 1));
    assert_non_null(api_routes_check(rate_user_anon, 1));
    assert_non_null(api_routes_check(account_anon, 1));
    assert_null(api_routes_check(rate_ok, 1));
    assert_null(api_routes_check(dup_shape, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_valid),
        cmocka_unit_test(test_literal_and_typed),
        cmocka_unit_test(test_bad_parameters_are_not_found),
        cmocka_unit_test(test_seg_parameters),
        cmocka_unit_test(test_wrong_method_gets_allow),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_table_check_finds_mistakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
