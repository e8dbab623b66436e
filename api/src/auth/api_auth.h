/* api_auth.h - the checks the router runs for a route's flags (api_router.h): the bearer token,
 * the session behind it, the admin role. Each answers the request itself when the check fails
 * and returns false. Request threads. */
#ifndef API_AUTH_H
#define API_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct api_req;
struct api_db;

/* "Authorization: Bearer X": a valid access token (signature, issuer, exp/nbf with the leeway,
 * not longer-lived than CHAT_TOKEN_MAX_TTL_S when it names a session); of an account (a
 * numeric user id) when the route has API_ACCOUNT. Fills r->claims, r->uid, r->sid. */
bool api_auth_bearer(struct api_req *r);
/* The token's session still exists and is not revoked (tokens without sid: always): the
 * database decides, so a revocation holds on every replica at once. */
bool api_auth_session(struct api_req *r, struct api_db *db);
/* The user has role admin in the database (the role claim may be stale). */
bool api_auth_admin(struct api_req *r, struct api_db *db);
/* The client's address (X-Forwarded-For behind CHAT_TRUSTED_PROXY_HOPS proxies). */
void api_auth_client_ip(const struct api_req *r, char *out, size_t cap);

#endif
