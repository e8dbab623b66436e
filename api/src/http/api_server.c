/* api_server.c - chat-api's HTTP server on libmicrohttpd: a pool of CHAT_API_THREADS threads,
 * each serving its connections start to finish, so a handler may block. The router owns the
 * request's lifetime: match (404, 405 with Allow, OPTIONS), body cap (413), then the handler,
 * then the answer; every answer carries Cache-Control: no-store.
 *
 * libmicrohttpd calls the access handler several times per request: once with the headers,
 * once per piece of body, and once more with nothing left, where the handler runs. */
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>

#include "chat/log.h"
#include "chat/mem.h"
#include "chat/proto.h"
#include "chat/time.h"

#include "acct/api_acct.h"
#include "api.h"
#include "api_peer.h"
#include "auth/api_auth.h"
#include "auth/api_rate.h"
#include "db/api_conns.h"

void api_reply(struct api_req *r, int status, const char *ctype)
{
    r->status = status;
    r->ctype = ctype;
}

void api_reply_error(struct api_req *r, int status, const char *code, const char *msg)
{
    chat_buf_reset(&r->resp);
    if (chat_enc_http_error(&r->resp, code, msg) != CHAT_OK) {
        chat_buf_reset(&r->resp);
        status = 500;
    }
    api_reply(r, status, "application/json");
}

void api_reply_json(struct api_req *r, int status, int enc_rc)
{
    if (enc_rc != CHAT_OK) {
        api_reply_error(r, 500, "internal", chat_errcode_desc(CHAT_ERR_internal));
        return;
    }
    api_reply(r, status, "application/json");
}

void api_reply_code(struct api_req *r, enum chat_errcode code)
{
    int status = code < CHAT_ERR__COUNT ? chat_errcode_http(code) : 0;

    if (status <= 0) { /* not a REST code: a bug here, not the client's */
        api_reply_error(r, 500, "internal", chat_errcode_desc(CHAT_ERR_internal));
        return;
    }
    api_reply_error(r, status, chat_errcode_name(code), chat_errcode_desc(code));
}

void api_reply_unavailable(struct api_req *r)
{
    r->retry_after_s = 1;
    api_reply_error(r, chat_errcode_http(CHAT_ERR_unavailable),
                    chat_errcode_name(CHAT_ERR_unavailable),
                    "the database did not answer in time; retry after Retry-After seconds");
}

const char *api_header(const struct api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *api_query(const struct api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result send_answer(struct api_req *r)
{
    struct api *a = r->api;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->resp.len, (void *)chat_buf_data(&r->resp), MHD_RESPMEM_PERSISTENT); /* until on_done */
    enum MHD_Result ok;
    int cls = r->status / 100;

    if (!resp)
        return MHD_NO;
    if (r->ctype)
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    (void)MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->allow[0])
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->retry_after_s > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", r->retry_after_s);
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    chat_metric_add(&a->m.by_class[cls >= 1 && cls <= 5 ? cls : 0], 1);
    chat_hist_record(&a->m.latency_us, (uint64_t)(chat_mono_us() - r->t0_us));
    return ok;
}

/* The first call of a request: route it. Returns false when it was answered already. */
static bool route(struct api_req *r, const char *url, const char *method)
{
    struct api *a = r->api;
    enum api_match m;
    bool options = strcmp(method, "OPTIONS") == 0, head = strcmp(method, "HEAD") == 0;

    r->method = head ? API_GET : api_method_parse(method);
    if (strlen(url) >= sizeof(r->path)) {
        api_reply_error(r, 414, "bad_request", "URI too long");
        return false;
    }
    memcpy(r->path, url, strlen(url) + 1);
    if (!r->method && !options) {
        api_reply_error(r, 501, "bad_request", "method not implemented");
        return false;
    }
    m = api_route_match(a->routes, a->nroutes, options ? 0 : r->method, r->path, &r->route,
                        &r->params, r->allow, sizeof(r->allow));
    if (m == API_MATCH_NOT_FOUND) {
        api_reply_error(r, 404, "not_found", "no such endpoint");
        return false;
    }
    if (options) { /* what the path takes, nothing else */
        api_reply(r, 200, NULL);
        return false;
    }
    if (m == API_MATCH_BAD_METHOD) {
        api_reply_error(r, 405, "method_not_allowed", "method not allowed here");
        return false;
    }
    r->allow[0] = '\0';
    return true;
}

/* The route's rate limit (API_RATE_*): true when the request may go on. */
static bool rate_ok(struct api_req *r, unsigned which)
{
    const struct api_route *rt = r->route;
    const struct api_cfg *cfg = r->api->cfg;
    char ip[API_IP_MAX];
    const char *subject = r->uid;
    int limit, retry;

    if (!(rt->flags & which))
        return true;
    if (which == API_RATE_IP) {
        api_auth_client_ip(r, ip, sizeof(ip));
        subject = ip;
    }
    memcpy(&limit, (const char *)cfg + rt->rate_cfg, sizeof(limit));
    retry = api_rate_hit(&api_conns_get(r->api)->redis, rt->rate, subject, limit,
                         cfg->auth_window_s * 1000);
    if (retry <= 0)
        return true;
    chat_metric_add(&r->api->m.rate_limited, 1);
    r->retry_after_s = (retry + 999) / 1000;
    api_reply_error(r, 429, "rate_limited", "too many attempts; retry after Retry-After seconds");
    return false;
}

/* Does the request need PostgreSQL before its handler? Routes that say so, accounts, and a
 * session token of an account (its session is checked); a token of no account without a
 * session (a bot's `chatctl token`) does not. */
static bool needs_db(const struct api_req *r)
{
    const struct api_route *rt = r->route;
    size_t n = strlen(r->uid);

    if (rt->flags & (API_DB | API_ACCOUNT | API_ADMIN))
        return true;
    return (rt->flags & (API_BEARER | API_BEARER_OPT)) && r->sid[0] && n > 0 && n <= 18 &&
           strspn(r->uid, "0123456789") == n;
}

/* The route's body check (routes.h); true when it passed (or there is none). */
static bool checked(struct api_req *r)
{
    if (r->route->check)
        r->route->check(r);
    return r->status == 0;
}

/* The route's checks in order (api_router.h), then its handler. An admin route checks who asks
 * before what is asked: anyone but a site admin gets 403, whatever the body. */
static void run(struct api_req *r)
{
    const struct api_route *rt = r->route;
    bool admin = (rt->flags & API_ADMIN) != 0;
    bool bearer = (rt->flags & API_BEARER) || admin ||
                  ((rt->flags & API_BEARER_OPT) && api_header(r, MHD_HTTP_HEADER_AUTHORIZATION));
    struct api_conns *cx = NULL;

    if (bearer && !api_auth_bearer(r))
        goto out;
    if (!admin && !checked(r))
        goto out;
    if (!rate_ok(r, API_RATE_IP))
        goto out;
    if (needs_db(r)) {
        cx = api_conns_get(r->api);
        if (!api_db_ready(&cx->db)) {
            chat_metric_add(&r->api->m.db_unavailable, 1);
            api_reply_unavailable(r);
            goto out;
        }
        r->db_ready = true;
    }
    if ((!bearer || !r->db_ready || api_auth_session(r, &cx->db)) &&
        (!admin || (api_auth_admin(r, &cx->db) && checked(r))) && rate_ok(r, API_RATE_USER))
        rt->fn(r);
    if (r->db_ready)
        api_db_done(&cx->db);
out:
    if (r->status == 401 || r->status == 403)
        chat_metric_add(&r->api->m.auth_failures, 1);
}

static enum MHD_Result on_request(void *cls,
                                  struct MHD_Connection *conn,
                                  const char *url,
                                  const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size,
                                  void **con_cls)
{
    struct api *a = cls;
    struct api_req *r = *con_cls;

    if (!r) { /* headers are in */
        r = chat_xcalloc(1, sizeof(*r));
        r->api = a;
        r->conn = conn;
        r->t0_us = chat_mono_us();
        chat_buf_init(&r->body, 0, (size_t)a->cfg->max_body);
        chat_buf_init(&r->resp, 0, 0);
        *con_cls = r;
        chat_metric_add(&a->m.requests, 1);
        /* HTTP/1.0 and 1.1 only (proto/README.md section 9): libmicrohttpd serves a later 1.x as
         * 1.1 and answers a version before 1.0 or from 2 on itself (505) */
        if (strcmp(version, MHD_HTTP_VERSION_1_1) != 0 &&
            strcmp(version, MHD_HTTP_VERSION_1_0) != 0) {
            api_reply_error(r, 400, "bad_request", "HTTP/1.0 or HTTP/1.1 only");
            return send_answer(r);
        }
        if (!route(r, url, method))
            return send_answer(r); /* a body, if any, is not read */
        return MHD_YES;
    }
    if (r->status) /* answered already; swallow what is left */
        return MHD_YES;
    if (*upload_data_size) {
        if (!r->too_big && chat_buf_append(&r->body, upload_data, *upload_data_size) != CHAT_OK)
            r->too_big = true; /* keep reading; answer 413 at the end */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_big) {
        chat_metric_add(&a->m.too_big, 1);
        api_reply_error(r, 413, "too_big", "request body is over the limit");
    } else {
        run(r);
        if (!r->status)
            api_reply_error(r, 500, "internal", "no answer");
    }
    return send_answer(r);
}

static void
on_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode why)
{
    struct api_req *r = *con_cls;

    (void)cls;
    (void)conn;
    (void)why;
    if (!r)
        return;
    /* secrets leave memory with the request: passwords and refresh tokens in the body, the
     * tokens of a session answer (MHD sent it from this buffer, without a copy) */
    if (r->ab_set) {
        api_acct_wipe(r->ab.password);
        api_acct_wipe(r->ab.current_password);
        api_acct_wipe(r->ab.new_password);
        api_acct_wipe(r->ab.refresh_token);
        chat_auth_body_fini(&r->ab);
    }
    if (r->cf_set)
        chat_cframe_fini(&r->cf);
    if (r->doc)
        chat_json_free(r->doc);
    if (r->body.len)
        explicit_bzero((void *)chat_buf_data(&r->body), r->body.len);
    if (r->resp.len)
        explicit_bzero((void *)chat_buf_data(&r->resp), r->resp.len);
    chat_buf_fini(&r->body);
    chat_buf_fini(&r->resp);
    chat_free(r);
    *con_cls = NULL;
}

int api_server_start(struct api *a)
{
    const struct api_cfg *cfg = a->cfg;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    const char *why = api_routes_check(a->routes, a->nroutes);
    const union MHD_DaemonInfo *info;

    if (why) {
        chat_log(CHAT_LOG_ERROR, "route table: %s", why);
        return CHAT_EINVAL;
    }
    if (inet_pton(AF_INET, cfg->listen_addr, &sa.sin_addr) != 1) {
        chat_log(CHAT_LOG_ERROR, "CHAT_API_ADDR '%s' is not an IPv4 address", cfg->listen_addr);
        return CHAT_EINVAL;
    }
    a->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)cfg->port, NULL, NULL,
        on_request, a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)cfg->threads, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->request_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_conns, MHD_OPTION_NOTIFY_COMPLETED, on_done,
        a, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (!a->daemon) {
        chat_log(CHAT_LOG_ERROR, "cannot listen on %s:%d", cfg->listen_addr, cfg->port);
        return CHAT_EIO;
    }
    info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : cfg->port;
    chat_log(CHAT_LOG_INFO, "listening on %s:%d (%d threads, %zu routes)", cfg->listen_addr,
             a->port, cfg->threads, a->nroutes);
    return CHAT_OK;
}

void api_server_stop(struct api *a)
{
    if (a->daemon)
        MHD_stop_daemon(a->daemon); /* waits for the requests in progress */
    a->daemon = NULL;
}
