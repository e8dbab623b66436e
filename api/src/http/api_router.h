/* api_router.h - REST dispatch as data: one table of routes (method, path pattern with typed
 * parameters, flags, handler); the router matches a request against it and says which route,
 * with its parameters, or why none (404, or 405 with the Allow header the path takes).
 *
 * Patterns are literal segments and typed parameters between slashes:
 *   "/api/v1/rooms/{room:room}/messages", "/api/v1/admin/users/{id:int}/revoke"
 * Types: int (1-18 decimal digits, no sign, no leading zero unless "0"), room (a valid room
 * name, chat_room_valid), name (1-64 of [A-Za-z0-9_.-]), seg (1-64 bytes but '%' and
 * controls: the handler checks it and answers its own error, e.g. 400 bad_room). A segment never
 * matches across '/', empty segments and a trailing slash do not match, '%' never matches a
 * parameter (no decoding of path parameters: none of our types needs it).
 *
 * Pure functions: no allocation, any thread. */
#ifndef API_ROUTER_H
#define API_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

enum api_method {
    API_GET = 1 << 0,
    API_POST = 1 << 1,
    API_PUT = 1 << 2,
    API_PATCH = 1 << 3,
    API_DELETE = 1 << 4,
};

/* What the router checks before a handler runs (the handler may rely on it), in this order:
 * the bearer token, the route's body check, the address's rate limit, the database connection,
 * the session, the admin role, the user's rate limit. So a malformed request or a revoked
 * session never uses up a limit. An admin route's body is checked after the admin role
 * instead: anyone else gets 403 whatever the body. */
enum api_route_flags {
    API_BEARER = 1 << 0,     /* a valid access token of a live session (claims in the request) */
    API_ADMIN = 1 << 1,      /* ... whose user has role admin in the database (implies BEARER) */
    API_BODY = 1 << 2,       /* a JSON body is read, up to the body cap */
    API_DB = 1 << 3,         /* uses PostgreSQL: 503 at once while it is out (BEARER implies it) */
    API_RATE_IP = 1 << 4,    /* counts against the client address's limit (route's rate) */
    API_RATE_USER = 1 << 5,  /* counts against the bearer's limit (route's rate) */
    API_ACCOUNT = 1 << 6,    /* the bearer is an account (a numeric user id; else 404) */
    API_BEARER_OPT = 1 << 7, /* a token is optional: checked like API_BEARER when one is sent,
                              * anonymous (uid "") when none is */
};

#define API_MAX_PARAMS 4
#define API_PARAM_MAX  64 /* bytes of one parameter value, NUL excluded */

struct api_param {
    char name[16];
    char str[API_PARAM_MAX + 1];
    long long num; /* int parameters */
};

struct api_params {
    int n;
    struct api_param v[API_MAX_PARAMS];
};

struct api_req; /* the server's request (api.h) */
typedef void (*api_handler)(struct api_req *r);

struct api_route {
    unsigned method; /* one enum api_method */
    const char *pattern;
    unsigned flags; /* enum api_route_flags */
    api_handler fn;
    const char *name; /* for metrics and logs: "auth_login" */
    /* API_RATE_*: the limit's kind (Redis key chat:rl:KIND:SUBJECT) and the offset of its
     * per-window count in the service's configuration struct */
    const char *rate;
    size_t rate_cfg;
    /* NULL, or the body check: decodes and checks the body before the limits count the request
     * (answers 400 itself); the handler relies on what it decoded */
    api_handler check;
};

enum api_match {
    API_MATCH_OK,
    API_MATCH_NOT_FOUND,  /* no route has this path: 404 */
    API_MATCH_BAD_METHOD, /* the path exists with other methods: 405, allow filled */
};

/* Parses an HTTP method name; 0 when it is none of ours. */
unsigned api_method_parse(const char *s);
/* "GET", "POST", ... for one method bit. */
const char *api_method_name(unsigned m);

/* Matches method + path (no query string) against the n routes of table, first match wins.
 * OK: *out and *params filled. BAD_METHOD: allow gets "GET, POST" (the methods of every route
 * whose pattern matches the path, in enum order). */
enum api_match api_route_match(const struct api_route *table,
                               size_t n,
                               unsigned method,
                               const char *path,
                               const struct api_route **out,
                               struct api_params *params,
                               char *allow,
                               size_t allow_cap);

/* Checks a table once at start-up: every pattern parses, names are unique, no two routes with
 * the same method and the same pattern shape. Returns NULL, or a static message naming the
 * first problem. */
const char *api_routes_check(const struct api_route *table, size_t n);

/* The value of parameter name, or NULL. */
const struct api_param *api_param_get(const struct api_params *p, const char *name);

#endif
