/* gw_auth.c - the accounts REST API on the event loop: routing, validation, the client address
 * behind trusted proxies, login/register rate limits (Redis, cluster-wide), handing jobs to the
 * workers (gw_db.c) and answering them when they come back, with their events (revocations,
 * nickname changes) published to chat.events. Event-loop thread only. */
#include "gw_auth.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "chat/account.h"
#include "chat/config.h"
#include "chat/keys.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"
#include "chat/utf8.h"

#include "gw_pss.h"

#define UA_MAX         512 /* bytes of a user agent kept in the login history */
#define XFF_MAX        2048
#define LOGINS_DEFAULT 50
#define LOGINS_MAX     100
#define LOAD_RETRY_MS  5000
#define SYNC_MS        5000 /* revocations re-read from PostgreSQL: the backstop for chat.events */
#define ADMIN_PREFIX   "/api/v1/admin/users/"
#define ADMIN_SUFFIX   "/revoke"
#define RATE_USER_BAD  "~invalid" /* rate-limit subject for a malformed username */

struct route {
    const char *path;
    bool post;
    bool bearer;
    enum gw_job_kind kind;
};

static const struct route routes[] = {
    {"/api/v1/auth/register", true, false, GW_JOB_REGISTER},
    {"/api/v1/auth/login", true, false, GW_JOB_LOGIN},
    {"/api/v1/auth/refresh", true, false, GW_JOB_REFRESH},
    {"/api/v1/auth/logout", true, true, GW_JOB_LOGOUT},
    {"/api/v1/users/me", false, true, GW_JOB_ME},
    {"/api/v1/users/me/nickname", true, true, GW_JOB_NICKNAME},
    {"/api/v1/users/me/password", true, true, GW_JOB_PASSWORD},
    {"/api/v1/users/me/logins", false, true, GW_JOB_LOGINS},
};
static const struct route admin_route = {ADMIN_PREFIX, true, true, GW_JOB_ADMIN_REVOKE};

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

/* /api/v1/admin/users/{id}/revoke -> id */
static bool admin_target(const char *path, char *id, size_t cap)
{
    const char *p = path + sizeof(ADMIN_PREFIX) - 1, *slash;

    if (strncmp(path, ADMIN_PREFIX, sizeof(ADMIN_PREFIX) - 1) != 0)
        return false;
    slash = strchr(p, '/');
    if (!slash || strcmp(slash, ADMIN_SUFFIX) != 0 || (size_t)(slash - p) >= cap)
        return false;
    memcpy(id, p, (size_t)(slash - p));
    id[slash - p] = '\0';
    return all_digits(id, 18);
}

static const struct route *find_route(const char *path, char *target, size_t cap)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(path, routes[i].path) == 0)
            return &routes[i];
    return admin_target(path, target, cap) ? &admin_route : NULL;
}

const char *gw_auth_allow(const char *path)
{
    char target[GW_ID_MAX];
    const struct route *rt = find_route(path, target, sizeof(target));
    return rt ? (rt->post ? "POST" : "GET") : NULL;
}

bool gw_auth_route(const char *uri)
{
    return strncmp(uri, "/api/v1/auth/", 13) == 0 || strncmp(uri, "/api/v1/users/", 14) == 0 ||
           strncmp(uri, "/api/v1/admin/", 14) == 0;
}

/* ---- client address ---- */

static bool parse_ip(const char *s, int *family, unsigned char addr[16])
{
    if (inet_pton(AF_INET, s, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, s, addr) == 1) {
        *family = AF_INET6;
        return true;
    }
    return false;
}

static void trim(char **s)
{
    char *e;
    while (**s == ' ' || **s == '\t')
        (*s)++;
    e = *s + strlen(*s);
    while (e > *s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
}

/* Behind cfg->proxy_hops proxies, each appending the address it saw to X-Forwarded-For, the
 * client is the proxy_hops-th entry from the right: the peer is the last proxy, and entries
 * further left were written by the client and prove nothing. With fewer entries than hops the
 * request skipped outer proxies: the left-most entry was still written by one of ours (a client
 * writing entries would make the list longer, never shorter). No header, or an entry that is not
 * an address: the peer (never a client-chosen string). */
void gw_client_ip(struct gw *gw, struct lws *wsi, char *out, size_t cap)
{
    char peer[GW_IP_MAX], xff[XFF_MAX], *hop = NULL;
    unsigned char a[16];
    const char *ip;
    int n, fam;

    if (!lws_get_peer_simple(wsi, peer, sizeof(peer)))
        snprintf(peer, sizeof(peer), "unknown");
    ip = strncmp(peer, "::ffff:", 7) == 0 ? peer + 7 : peer; /* IPv4-mapped */
    snprintf(out, cap, "%s", ip);
    if (gw->cfg->proxy_hops <= 0)
        return;
    n = lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR);
    if (n <= 0)
        return;
    if (n >= (int)sizeof(xff)) {
        /* longer than we keep: only its right end matters (our proxies append there), so a
         * client cannot pad it to fall back to the peer, the last proxy's address */
        char *big = chat_xcalloc(1, (size_t)n + 1);
        if (lws_hdr_copy(wsi, big, n + 1, WSI_TOKEN_X_FORWARDED_FOR) <= 0) {
            chat_free(big);
            return;
        }
        snprintf(xff, sizeof(xff), "%s", big + n - ((int)sizeof(xff) - 1));
        chat_free(big);
    } else if (lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) <= 0) {
        return;
    }
    for (int i = 0; i < gw->cfg->proxy_hops; i++) {
        char *comma = strrchr(xff, ',');
        hop = comma ? comma + 1 : xff;
        if (!comma)
            break; /* the left-most entry */
        if (i + 1 < gw->cfg->proxy_hops)
            *comma = '\0';
    }
    trim(&hop);
    if (strncmp(hop, "::ffff:", 7) == 0 && strchr(hop + 7, '.'))
        hop += 7;
    if (parse_ip(hop, &fam, a))
        snprintf(out, cap, "%s", hop);
}

/* The user agent, cut to UA_MAX bytes at a character boundary, invalid bytes and controls as '?'.
 */
static char *user_agent(struct lws *wsi)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_USER_AGENT);
    char *raw, *out;
    size_t len, o = 0;

    if (n <= 0)
        return NULL;
    raw = chat_xmalloc((size_t)n + 1);
    if (lws_hdr_copy(wsi, raw, n + 1, WSI_TOKEN_HTTP_USER_AGENT) <= 0) {
        chat_free(raw);
        return NULL;
    }
    len = strlen(raw);
    out = chat_xmalloc(UA_MAX + 1);
    for (size_t i = 0; i < len;) {
        size_t k = 1;
        unsigned char c = (unsigned char)raw[i];
        if (c >= 0xC0)
            k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (i + k > len || !chat_utf8_valid(raw + i, k, NULL) ||
            chat_utf8_has_control(raw + i, k, NULL)) {
            k = 1;
            if (o + 1 > UA_MAX)
                break;
            out[o++] = '?';
        } else {
            if (o + k > UA_MAX)
                break;
            memcpy(out + o, raw + i, k);
            o += k;
        }
        i += k;
    }
    out[o] = '\0';
    chat_free(raw);
    return out;
}

/* ---- jobs ---- */

static void wipe_free(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s));
    chat_free(s);
}

void gw_job_free(struct gw_job *j)
{
    if (!j)
        return;
    wipe_free(j->password);
    wipe_free(j->new_password);
    wipe_free(j->refresh);
    chat_free(j->username);
    chat_free(j->nickname);
    chat_free(j->ip);
    chat_free(j->ua);
    chat_buf_fini(&j->body);
    for (size_t i = 0; i < j->nrevoked; i++) {
        chat_free(j->revoked[i]);
        if (j->load_reasons)
            chat_free(j->load_reasons[i]);
    }
    chat_free(j->revoked);
    chat_free(j->load_reasons);
    chat_free(j->nick_changed);
    for (size_t i = 0; i < j->nload_nicks; i++) {
        chat_free(j->load_users[i]);
        chat_free(j->load_nicks[i]);
    }
    chat_free(j->load_users);
    chat_free(j->load_nicks);
    chat_free(j->load_nick_ms);
    chat_free(j->load_revoked_ms);
    chat_free(j);
}

static struct gw_job *job_new(struct gw *gw, enum gw_job_kind kind, struct lws *wsi)
{
    struct gw_job *j = chat_xcalloc(1, sizeof(*j));
    char ip[GW_IP_MAX];

    j->kind = kind;
    j->gw = gw;
    j->wsi = wsi;
    j->start_us = chat_mono_us();
    j->err = CHAT_ERR__COUNT;
    chat_buf_init(&j->body, 0, 0);
    if (wsi) {
        gw_client_ip(gw, wsi, ip, sizeof(ip));
        j->ip = chat_xstrdup(ip);
        j->ua = user_agent(wsi);
    }
    return j;
}

void gw_auth_gone(struct gw_httpreq *r)
{
    if (!r->job)
        return;
    if (r->job->submitted)
        r->job->wsi = NULL; /* it runs on; its effects happen, its answer is dropped */
    else
        gw_job_free(r->job); /* answered before it went anywhere */
    r->job = NULL;
}

static struct gw_httpreq *req_of(struct gw_job *j)
{
    struct gw_pss *pss = j->wsi ? lws_wsi_user(j->wsi) : NULL;
    return pss ? pss->http : NULL;
}

/* Answers the job's request with an error (when the client is still there) and frees the job. */
static void finish_error(struct gw *gw,
                         struct gw_job *j,
                         int status,
                         enum chat_errcode code,
                         int retry_s,
                         const char *msg)
{
    struct gw_httpreq *r = req_of(j);

    (void)gw;
    if (r) {
        r->job = NULL;
        r->retry_after_s = retry_s;
        if (gw_http_respond_error(j->wsi, r, status, chat_errcode_name(code),
                                  msg ? msg : chat_errcode_desc(code)) != 0)
            lws_set_timeout(j->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    gw_job_free(j);
}

static void submit(struct gw *gw, struct gw_job *j)
{
    j->submitted = true;
    if (gw_pool_submit(gw, j) != CHAT_OK) {
        j->status = 503;
        gw_login_settle(gw, j); /* a login that was not tried is no failure */
        chat_metric_add(&gw->m.auth_overloaded, 1);
        finish_error(gw, j, 503, CHAT_ERR_overloaded, 1, NULL);
    }
}

void gw_auth_done(struct gw *gw, struct gw_job *j)
{
    struct gw_httpreq *r = req_of(j);

    chat_hist_record(&gw->m.auth_us, (uint64_t)(chat_mono_us() - j->start_us));
    if (j->kind == GW_JOB_LOAD) {
        gw->load_retry_ms = chat_mono_ms() + (j->status == 200 ? SYNC_MS : LOAD_RETRY_MS);
        if (j->status == 200) {
            for (size_t i = 0; i < j->nrevoked; i++)
                gw_sessions_revoke(gw, j->revoked[i], j->load_reasons[i], j->load_revoked_ms[i]);
            gw_sessions_apply(gw);
            for (size_t i = 0; i < j->nload_nicks; i++)
                gw_nick_changed(gw, j->load_users[i], j->load_nicks[i], j->load_nick_ms[i]);
            if (!gw->sessions_loaded)
                chat_log(CHAT_LOG_INFO,
                         "accounts: %zu recent revocations, %zu nickname changes loaded",
                         j->nrevoked, j->nload_nicks);
            gw->sessions_loaded = true;
            gw->sync_since_ms = j->db_now_ms;
        }
        gw_job_free(j);
        return;
    }
    if (j->kind == GW_JOB_PURGE) {
        gw->purge_next_ms = chat_mono_ms() + (int64_t)gw->cfg->purge_interval_s * 1000;
        if (j->purge_ran && (j->purged[0] || j->purged[1] || j->purged[2]))
            chat_log(CHAT_LOG_INFO,
                     "accounts: retention purge: %ld login events, %ld refresh tokens, %ld "
                     "sessions deleted",
                     j->purged[0], j->purged[1], j->purged[2]);
        gw_job_free(j);
        return;
    }
    if (j->kind == GW_JOB_LOGIN)
        gw_login_settle(gw, j);
    /* effects first: they hold whether or not the client is still there to hear the answer */
    if (j->nrevoked) {
        for (size_t i = 0; i < j->nrevoked; i++)
            gw_sessions_revoke(gw, j->revoked[i], j->revoke_reason, chat_now_ms());
        gw_sessions_apply_user(gw, j->ev_user);
        gw_events_revoked(gw, j->ev_user, j->revoked, j->nrevoked, j->revoke_reason);
        chat_log(CHAT_LOG_INFO, "accounts: user %s: %zu session(s) revoked (%s)", j->ev_user,
                 j->nrevoked, j->revoke_reason);
    }
    if (j->nick_changed) {
        gw_nick_changed(gw, j->ev_user, j->nick_changed, j->nick_changed_ms);
        gw_events_user_updated(gw, j->ev_user, j->nick_changed, j->nick_changed_ms);
    }
    if (j->err != CHAT_ERR__COUNT) {
        if (j->status == 401 || j->status == 403)
            chat_metric_add(&gw->m.auth_failures, 1);
        finish_error(gw, j, j->status, j->err, j->status == 503 ? 1 : 0, NULL);
        return;
    }
    if (r) {
        r->job = NULL;
        chat_buf_reset(&r->resp);
        if (chat_buf_append(&r->resp, chat_buf_data(&j->body), j->body.len) != CHAT_OK ||
            gw_http_respond(j->wsi, r, j->status, "application/json") != 0)
            lws_set_timeout(j->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    gw_job_free(j);
}

/* ---- rate limits ---- */

static void on_rate(struct gw *gw, void *ud, int retry_ms)
{
    struct gw_job *j = ud;

    if (!j->wsi) { /* the client left while Redis answered */
        j->status = 0;
        gw_login_settle(gw, j); /* nothing was tried: no failure */
        gw_job_free(j);
        return;
    }
    if (retry_ms > 0) {
        chat_metric_add(&gw->m.auth_rate_limited, 1);
        finish_error(gw, j, 429, CHAT_ERR_rate_limited, (retry_ms + 999) / 1000,
                     "too many attempts; retry after Retry-After seconds");
        return;
    }
    submit(gw, j);
}

/* An address as a rate-limit subject: IPv6 clients by their /64 (one host usually holds a whole
 * /64), IPv4 and anything else as is. */
const char *gw_rate_subject(const char *ip, char *buf, size_t cap)
{
    unsigned char a[16];

    if (!strchr(ip, ':') || inet_pton(AF_INET6, ip, a) != 1)
        return ip;
    memset(a + 8, 0, 8);
    if (!inet_ntop(AF_INET6, a, buf, (socklen_t)cap))
        return ip;
    snprintf(buf + strlen(buf), cap - strlen(buf), "/64");
    return buf;
}

/* Counts the attempt under up to two subjects; the job continues in on_rate. */
static void rate_then_submit(struct gw *gw,
                             struct gw_job *j,
                             const char *kind1,
                             const char *subj1,
                             int lim1,
                             const char *kind2,
                             const char *subj2,
                             int lim2)
{
    char k1[160], k2[160], net[GW_IP_MAX];
    const char *keys[2] = {k1, k2};
    int limits[2] = {lim1, lim2};

    j->submitted = true;
    snprintf(k1, sizeof(k1), CHAT_KEY_RATE_FMT, kind1, gw_rate_subject(subj1, net, sizeof(net)));
    if (kind2)
        snprintf(k2, sizeof(k2), CHAT_KEY_RATE_FMT, kind2, subj2);
    gw_redis_rate(gw, keys, limits, kind2 ? 2 : 1, gw->cfg->auth_window_s * 1000, on_rate, j);
}

/* ---- requests ---- */

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static long query_long(struct lws *wsi, const char *name, long def)
{
    char buf[64];
    const char *v = lws_get_urlarg_by_name(wsi, name, buf, sizeof(buf));
    long long n;

    if (!v)
        return def;
    if (chat_parse_ll(v, -1000000, 1000000, &n) != CHAT_OK)
        return -1; /* answered as out of range */
    return (long)n;
}

int gw_auth_request(struct gw *gw, struct lws *wsi, struct gw_httpreq *r, bool post)
{
    char target[GW_ID_MAX] = "";
    const struct route *rt = find_route(r->path, target, sizeof(target));
    struct gw_job *j;
    char before[64];
    const char *b;

    chat_metric_add(&gw->m.auth_requests, 1);
    if (!rt)
        return gw_http_respond_error(wsi, r, 404, "not_found", "no such endpoint");
    if (rt->post != post) {
        r->allow = rt->post ? "POST" : "GET";
        return gw_http_respond_error(wsi, r, 405, "method_not_allowed",
                                     rt->post ? "use POST" : "use GET");
    }
    if (!gw->pool)
        return gw_http_respond_error(wsi, r, 503, "unavailable",
                                     "accounts are not configured on this node");
    if (rt->bearer)
        r->auth = gw_http_bearer(gw, wsi, &r->claims);
    j = job_new(gw, rt->kind, wsi);
    j->bearer = rt->bearer;
    r->job = j;
    snprintf(j->target, sizeof(j->target), "%s", target);
    if (post) {
        r->is_auth = true;
        if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 &&
            lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) <= 0)
            return gw_auth_body(gw, wsi, r); /* no body is coming */
        return 0;
    }
    if (r->auth != CHAT_ERR__COUNT)
        return gw_http_respond_code(wsi, r, r->auth);
    if (!all_digits(r->claims.sub, 18))
        return gw_http_respond_error(wsi, r, 404, "not_found", "no account behind this token");
    snprintf(j->uid, sizeof(j->uid), "%s", r->claims.sub);
    snprintf(j->sid, sizeof(j->sid), "%s", all_digits(r->claims.sid, 18) ? r->claims.sid : "");
    if (rt->kind == GW_JOB_LOGINS) {
        j->limit = query_long(wsi, "limit=", LOGINS_DEFAULT);
        if (j->limit < 1 || j->limit > LOGINS_MAX)
            return gw_http_respond_error(wsi, r, 400, "bad_field", "limit must be 1-100");
        b = lws_get_urlarg_by_name(wsi, "before=", before, sizeof(before));
        if (b && !all_digits(b, 18))
            return gw_http_respond_error(wsi, r, 400, "bad_field", "before must be a login id");
        snprintf(j->before, sizeof(j->before), "%s", b ? b : "");
    }
    submit(gw, j);
    return 0;
}

/* Checks the body for the job's kind and fills the job; returns the error code or __COUNT. */
static enum chat_errcode fill_job(struct gw_job *j, const struct chat_auth_body *b)
{
    char nick[CHAT_NICK_BYTES];

    switch (j->kind) {
    case GW_JOB_REGISTER:
        if (!b->username || !b->password)
            return CHAT_ERR_bad_field;
        if (!chat_username_valid(b->username))
            return CHAT_ERR_invalid_username;
        if (!chat_password_valid(b->password))
            return CHAT_ERR_invalid_password;
        if (chat_nickname_normalize(b->nickname ? b->nickname : b->username, nick, sizeof(nick)) !=
            CHAT_OK)
            return CHAT_ERR_invalid_nickname;
        j->nickname = chat_xstrdup(nick);
        break;
    case GW_JOB_LOGIN:
        if (!b->username || !b->password)
            return CHAT_ERR_bad_field;
        break;
    case GW_JOB_REFRESH:
        if (!b->refresh_token)
            return CHAT_ERR_bad_field;
        if (strlen(b->refresh_token) >= CHAT_REFRESH_MAX)
            return CHAT_ERR_invalid_refresh;
        j->refresh = chat_xstrdup(b->refresh_token);
        break;
    case GW_JOB_NICKNAME:
        if (!b->nickname)
            return CHAT_ERR_bad_field;
        if (chat_nickname_normalize(b->nickname, nick, sizeof(nick)) != CHAT_OK)
            return CHAT_ERR_invalid_nickname;
        j->nickname = chat_xstrdup(nick);
        break;
    case GW_JOB_PASSWORD:
        if (!b->current_password || !b->new_password)
            return CHAT_ERR_bad_field;
        if (!chat_password_valid(b->new_password))
            return CHAT_ERR_invalid_password;
        j->password = chat_xstrdup(b->current_password);
        j->new_password = chat_xstrdup(b->new_password);
        break;
    default:
        break;
    }
    if (j->kind == GW_JOB_REGISTER || j->kind == GW_JOB_LOGIN) {
        j->username = chat_xstrdup(b->username);
        j->password = chat_xstrdup(b->password);
    }
    j->all = b->all;
    return CHAT_ERR__COUNT;
}

int gw_auth_body(struct gw *gw, struct lws *wsi, struct gw_httpreq *r)
{
    struct gw_job *j = r->job;
    struct chat_auth_body b;
    enum chat_errcode code = CHAT_ERR__COUNT;
    char subj[CHAT_USERNAME_MAX + 1];
    bool bearer = j && j->bearer;

    if (r->responded || !j || !r->is_auth)
        return 0;
    r->is_auth = false; /* once: a body-less POST may still see BODY_COMPLETION */
    if (r->body_too_big)
        return gw_http_respond_code(wsi, r, CHAT_ERR_too_big);
    if (bearer && r->auth != CHAT_ERR__COUNT)
        return gw_http_respond_code(wsi, r, r->auth);
    if (bearer && !all_digits(r->claims.sub, 18))
        return gw_http_respond_error(wsi, r, 404, "not_found", "no account behind this token");
    if (bearer) {
        snprintf(j->uid, sizeof(j->uid), "%s", r->claims.sub);
        snprintf(j->sid, sizeof(j->sid), "%s", all_digits(r->claims.sid, 18) ? r->claims.sid : "");
    }
    if (chat_auth_body_decode(chat_buf_data(&r->body), r->body.len, &b, &code) == CHAT_OK)
        code = fill_job(j, &b);
    chat_auth_body_fini(&b);
    if (code != CHAT_ERR__COUNT)
        return gw_http_respond_code(wsi, r, code);

    switch (j->kind) {
    case GW_JOB_REGISTER:
        rate_then_submit(gw, j, "register_ip", j->ip, gw->cfg->register_per_ip, NULL, NULL, 0);
        break;
    case GW_JOB_LOGIN:
        snprintf(subj, sizeof(subj), "%s",
                 chat_username_valid(j->username) ? j->username : RATE_USER_BAD);
        lower(subj);
        gw_login_limit(gw, j, subj, on_rate);
        break;
    case GW_JOB_PASSWORD: /* guessing the current password with a stolen token: limited too */
        rate_then_submit(gw, j, "password_user", j->uid, gw->cfg->password_per_user, NULL, NULL, 0);
        break;
    case GW_JOB_NICKNAME: /* every change is an event every gateway applies */
        rate_then_submit(gw, j, "nick_user", j->uid, gw->cfg->nick_per_user, NULL, NULL, 0);
        break;
    case GW_JOB_LOGOUT:
        rate_then_submit(gw, j, "logout_user", j->uid, gw->cfg->logout_per_user, NULL, NULL, 0);
        break;
    default:
        submit(gw, j);
        break;
    }
    return 0;
}

/* ---- lifecycle ---- */

int gw_auth_init(struct gw *gw)
{
    const struct gw_config *cfg = gw->cfg;

    if (getenv("CHAT_TRUSTED_PROXIES"))
        chat_log(CHAT_LOG_WARN,
                 "CHAT_TRUSTED_PROXIES is no longer read: set CHAT_TRUSTED_PROXY_HOPS to the "
                 "number of proxies in front of the gateway (now %d)",
                 cfg->proxy_hops);
    if (!cfg->pg_dsn[0]) {
        chat_log(CHAT_LOG_WARN, "accounts: CHAT_PG_DSN is empty: the accounts API is off");
        gw->sessions_loaded = true;
        return CHAT_OK;
    }
    if (chat_passwd_dummy(cfg->password_cost, gw->dummy_hash, sizeof(gw->dummy_hash)) != CHAT_OK) {
        chat_log(CHAT_LOG_ERROR, "accounts: password hashing (yescrypt cost %d) does not work",
                 cfg->password_cost);
        return CHAT_EIO;
    }
    if (gw_pool_start(gw) != CHAT_OK)
        return CHAT_EIO;
    /* the first purge a while after start (gateways started together do not all try at once;
     * the advisory lock makes it one at a time anyway) */
    gw->purge_next_ms = chat_mono_ms() + 5000 + (int64_t)(chat_mono_us() % 5000);
    gw_auth_tick(gw); /* the first load now: readiness waits for it */
    return CHAT_OK;
}

/* 1 s: the first load of recent revocations (readiness waits for it), then every SYNC_MS the
 * changes since the last one: the backstop for a chat.events record that never arrived. The
 * window overlaps by the longest transaction (now() is a transaction's start time). */
void gw_auth_tick(struct gw *gw)
{
    struct gw_job *j;

    if (gw->pool && gw->cfg->purge_interval_s > 0 && chat_mono_ms() >= gw->purge_next_ms) {
        gw->purge_next_ms = INT64_MAX; /* in flight: set again when it ends */
        j = job_new(gw, GW_JOB_PURGE, NULL);
        j->submitted = true;
        if (gw_pool_submit(gw, j) != CHAT_OK) {
            gw_job_free(j);
            gw->purge_next_ms = chat_mono_ms() + LOAD_RETRY_MS;
        }
    }
    if (!gw->pool || chat_mono_ms() < gw->load_retry_ms)
        return;
    gw->load_retry_ms = INT64_MAX; /* in flight: set again when it ends */
    j = job_new(gw, GW_JOB_LOAD, NULL);
    if (gw->sessions_loaded)
        j->since_ms = gw->sync_since_ms - gw->cfg->pg_timeout_ms - 1000;
    j->submitted = true;
    if (gw_pool_submit(gw, j) != CHAT_OK) {
        gw_job_free(j);
        gw->load_retry_ms = chat_mono_ms() + LOAD_RETRY_MS;
    }
}

void gw_auth_stop(struct gw *gw)
{
    gw_pool_stop(gw);
}

void gw_auth_fini(struct gw *gw)
{
    gw_pool_free(gw);
    gw_map_fini(&gw->revoked);
    gw_map_fini(&gw->nicks);
}
