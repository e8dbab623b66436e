/* api_auth.c - bearer, session and role checks (api_auth.h). */
#include "api_auth.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include <microhttpd.h>
#include <strings.h>

#include "chat/jwt.h"

#include "api.h"
#include "api_peer.h"
#include "db/api_db.h"

static bool all_digits(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool api_auth_bearer(struct api_req *r)
{
    const struct api_cfg *cfg = r->api->cfg;
    const char *h = api_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    int rc;

    if (!h) {
        api_reply_code(r, CHAT_ERR_auth_required);
        return false;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0 || strlen(h + 7) > CHAT_JWT_MAX_TOKEN) {
        api_reply_code(r, CHAT_ERR_bad_token);
        return false;
    }
    rc = chat_jwt_check(&r->api->keys, h + 7, cfg->jwt_issuer, cfg->token_max_ttl_s, &r->claims);
    if (rc != CHAT_OK) {
        api_reply_code(r, rc == CHAT_EEXPIRED ? CHAT_ERR_token_expired : CHAT_ERR_bad_token);
        return false;
    }
    if ((r->route->flags & API_ACCOUNT) && !all_digits(r->claims.sub, 18)) {
        api_reply_error(r, 404, "not_found", "no account behind this token");
        return false;
    }
    snprintf(r->uid, sizeof(r->uid), "%s", r->claims.sub);
    snprintf(r->sid, sizeof(r->sid), "%s", all_digits(r->claims.sid, 18) ? r->claims.sid : "");
    return true;
}

bool api_auth_session(struct api_req *r, struct api_db *db)
{
    const char *p[2] = {r->sid, r->uid};
    PGresult *res;
    bool alive;

    if (!r->sid[0] || !all_digits(r->uid, 18)) /* a token of no account (chatctl) */
        return true;
    res = api_db_qn(db, API_Q_session_alive, 2, p);
    if (!api_db_ok(res, PGRES_TUPLES_OK, "session check")) {
        api_reply_unavailable(r);
        return false;
    }
    alive = PQntuples(res) == 1;
    PQclear(res);
    if (!alive)
        api_reply_code(r, CHAT_ERR_session_revoked);
    return alive;
}

bool api_auth_admin(struct api_req *r, struct api_db *db)
{
    const char *p[1] = {r->uid};
    PGresult *res = api_db_qn(db, API_Q_user_is_admin, 1, p);
    bool admin;

    if (!api_db_ok(res, PGRES_TUPLES_OK, "reading a role")) {
        api_reply_unavailable(r);
        return false;
    }
    admin = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!admin)
        api_reply_code(r, CHAT_ERR_forbidden);
    return admin;
}

/* Every X-Forwarded-For line joined with ", ", as one header: a proxy may add a line of its
 * own instead of appending to the client's. Bounded by what libmicrohttpd keeps of a request's
 * headers (its connection memory). */
static enum MHD_Result
xff_line(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct chat_buf *x = cls;

    (void)kind;
    if (key && value && strcasecmp(key, "X-Forwarded-For") == 0 &&
        chat_buf_appendf(x, "%s%s", x->len ? ", " : "", value) != CHAT_OK)
        return MHD_NO; /* out of memory: what was joined so far */
    return MHD_YES;
}

void api_auth_client_ip(const struct api_req *r, char *out, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char peer[API_IP_MAX] = "unknown";
    struct chat_buf x;

    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, peer, sizeof(peer));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, peer, sizeof(peer));
    }
    chat_buf_init(&x, 0, 0);
    if (r->api->cfg->proxy_hops > 0)
        (void)MHD_get_connection_values(r->conn, MHD_HEADER_KIND, xff_line, &x);
    api_peer_client(peer, x.len ? chat_buf_data(&x) : NULL, r->api->cfg->proxy_hops, out, cap);
    chat_buf_fini(&x);
}
