/* gw_pss.h - per-session data of the gateway's single lws protocol: a WebSocket connection
 * (conn) or a plain HTTP request (http, allocated only for HTTP so idle sockets stay small).
 * Event-loop thread only. */
#ifndef GW_PSS_H
#define GW_PSS_H

#include "gw.h"

struct gw_httpreq {
    struct chat_buf body; /* request body, capped at cfg->max_body */
    struct chat_buf resp; /* response body */
    struct chat_claims claims;
    struct gw_pending *pending; /* borrowed: a send waiting for Kafka */
    char room[CHAT_ROOM_MAX + 2];
    enum chat_errcode auth; /* CHAT_ERR__COUNT when the bearer token verified */
    int status;
    int retry_after_s;
    const char *allow; /* static: the Allow header of a 405 */
    bool is_send, body_too_big, responded;
};

struct gw_pss {
    struct gw_conn conn;
    struct gw_httpreq *http; /* owns; HTTP transactions only */
};

/* gw_http.c: answers (headers now, body on the next WRITEABLE); -1 means close */
int gw_http_respond(struct lws *wsi, struct gw_httpreq *r, int status, const char *ctype);
int gw_http_respond_error(
    struct lws *wsi, struct gw_httpreq *r, int status, const char *code, const char *msg);
int gw_http_respond_code(struct lws *wsi, struct gw_httpreq *r, enum chat_errcode code);
/* Verifies the bearer token of the request (claims filled on success). */
enum chat_errcode gw_http_bearer(struct gw *gw, struct lws *wsi, struct chat_claims *cl);

#endif
