/* api_routes.c - every endpoint of chat-api: one row each (method, pattern, flags, handler,
 * name, rate limit). The router (http/api_server.c) matches, answers 404/405/413 and checks the
 * flags before a handler runs; a new endpoint is a row here and a handler in
 * routes/r_<domain>.c. */
#include <stddef.h>

#include "api.h"
#include "routes/routes.h"

#define LIMIT(field) offsetof(struct api_cfg, field)

/* {method, pattern, flags, handler, name, rate kind, rate limit, body check} */
const struct api_route api_routes[] = {
    {API_GET, "/healthz", 0, r_ops_healthz, "healthz", NULL, 0, NULL},
    {API_GET, "/readyz", 0, r_ops_readyz, "readyz", NULL, 0, NULL},
    {API_GET, "/metrics", 0, r_ops_metrics, "metrics", NULL, 0, NULL},
    {API_GET, "/api/v1/config", 0, r_ops_config, "config", NULL, 0, NULL},
    /* accounts; login counts its own limits (per address, and failures per name) */
    {API_POST, "/api/v1/auth/register", API_BODY | API_DB | API_RATE_IP, r_auth_register,
     "auth_register", "register_ip", LIMIT(register_per_ip), r_auth_register_check},
    {API_POST, "/api/v1/auth/login", API_BODY, r_auth_login, "auth_login", NULL, 0,
     r_auth_login_check},
    {API_POST, "/api/v1/auth/refresh", API_BODY | API_DB, r_auth_refresh, "auth_refresh", NULL, 0,
     r_auth_refresh_check},
    {API_POST, "/api/v1/auth/logout", API_BEARER | API_ACCOUNT | API_BODY | API_RATE_USER,
     r_auth_logout, "auth_logout", "logout_user", LIMIT(logout_per_user), r_auth_logout_check},
    {API_GET, "/api/v1/users/me", API_BEARER | API_ACCOUNT, r_users_me, "users_me", NULL, 0, NULL},
    {API_POST, "/api/v1/users/me/nickname", API_BEARER | API_ACCOUNT | API_BODY | API_RATE_USER,
     r_users_nickname, "users_nickname", "nick_user", LIMIT(nick_per_user), r_users_nickname_check},
    {API_POST, "/api/v1/users/me/password", API_BEARER | API_ACCOUNT | API_BODY | API_RATE_USER,
     r_users_password, "users_password", "password_user", LIMIT(password_per_user),
     r_users_password_check},
    {API_GET, "/api/v1/users/me/logins", API_BEARER | API_ACCOUNT, r_users_logins, "users_logins",
     NULL, 0, NULL},
    /* rooms (routes/r_rooms.c): public ones are readable without a token */
    {API_GET, "/api/v1/rooms", API_BEARER_OPT | API_DB, r_rooms_directory, "rooms_directory", NULL,
     0, NULL},
    {API_POST, "/api/v1/rooms", API_BEARER | API_ACCOUNT | API_BODY | API_RATE_USER, r_rooms_create,
     "rooms_create", "room_create_user", LIMIT(room_create_per_user), r_rooms_body_check},
    {API_GET, "/api/v1/rooms/{room:seg}", API_BEARER_OPT | API_DB, r_rooms_get, "rooms_get", NULL,
     0, NULL},
    {API_PATCH, "/api/v1/rooms/{room:seg}", API_BEARER | API_ACCOUNT | API_BODY, r_rooms_update,
     "rooms_update", NULL, 0, r_rooms_body_check},
    {API_DELETE, "/api/v1/rooms/{room:seg}", API_BEARER | API_ACCOUNT, r_rooms_delete,
     "rooms_delete", NULL, 0, NULL},
    {API_POST, "/api/v1/rooms/{room:seg}/join", API_BEARER | API_ACCOUNT, r_rooms_join,
     "rooms_join", NULL, 0, NULL},
    {API_POST, "/api/v1/rooms/{room:seg}/leave", API_BEARER | API_ACCOUNT, r_rooms_leave,
     "rooms_leave", NULL, 0, NULL},
    {API_GET, "/api/v1/rooms/{room:seg}/grant", API_BEARER | API_ACCOUNT, r_rooms_grant,
     "rooms_grant", NULL, 0, NULL},
    {API_POST, "/api/v1/rooms/{room:seg}/favourite", API_BEARER | API_ACCOUNT | API_BODY,
     r_rooms_favourite, "rooms_favourite", NULL, 0, r_rooms_body_check},
    {API_GET, "/api/v1/rooms/{room:seg}/members", API_BEARER | API_ACCOUNT, r_rooms_members,
     "rooms_members", NULL, 0, NULL},
    {API_POST, "/api/v1/rooms/{room:seg}/members/{id:int}/role",
     API_BEARER | API_ACCOUNT | API_BODY, r_rooms_member_role, "rooms_member_role", NULL, 0,
     r_rooms_body_check},
    {API_DELETE, "/api/v1/rooms/{room:seg}/members/{id:int}", API_BEARER | API_ACCOUNT,
     r_rooms_member_remove, "rooms_member_remove", NULL, 0, NULL},
    {API_POST, "/api/v1/rooms/{room:seg}/invites", API_BEARER | API_ACCOUNT | API_BODY,
     r_invites_create, "invites_create", NULL, 0, r_rooms_body_check},
    {API_GET, "/api/v1/rooms/{room:seg}/invites", API_BEARER | API_ACCOUNT, r_invites_list,
     "invites_list", NULL, 0, NULL},
    {API_DELETE, "/api/v1/rooms/{room:seg}/invites/{code:name}", API_BEARER | API_ACCOUNT,
     r_invites_revoke, "invites_revoke", NULL, 0, NULL},
    {API_POST, "/api/v1/invites/{code:name}/redeem", API_BEARER | API_ACCOUNT | API_RATE_USER,
     r_invites_redeem, "invites_redeem", "redeem_user", LIMIT(redeem_per_user), NULL},
    {API_POST, "/api/v1/direct/{username:name}", API_BEARER | API_ACCOUNT, r_rooms_direct,
     "rooms_direct", NULL, 0, NULL},
    {API_GET, "/api/v1/users/me/rooms", API_BEARER | API_ACCOUNT, r_rooms_mine, "rooms_mine", NULL,
     0, NULL},
    /* history and read markers (routes/r_history.c) */
    {API_GET, "/api/v1/rooms/{room:seg}/messages", API_BEARER_OPT | API_DB, r_history_list,
     "history_list", NULL, 0, NULL},
    {API_POST, "/api/v1/rooms/{room:seg}/read", API_BEARER | API_ACCOUNT | API_BODY, r_history_read,
     "history_read", NULL, 0, r_history_read_check},
    /* messages: any valid token (bots and integrations hold `chatctl token` ones) that the
     * room's rules let in (the database says: a restricted room's members only) */
    {API_POST, "/api/v1/rooms/{room:seg}/messages", API_BEARER | API_BODY | API_DB, r_messages_send,
     "messages_send", NULL, 0, r_messages_send_check},
    /* administration */
    {API_POST, "/api/v1/admin/users/{id:int}/revoke", API_ADMIN | API_ACCOUNT | API_BODY,
     r_admin_revoke, "admin_revoke", NULL, 0, r_admin_revoke_check},
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
