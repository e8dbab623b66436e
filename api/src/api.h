/* api.h - chat-api, the REST service: its configuration, the process context and the request
 * every handler gets.
 *
 * Threads: libmicrohttpd runs CHAT_API_THREADS threads, each serving its connections start to
 * finish; a handler runs on one of them and may block (password hashing, PostgreSQL), so nothing
 * here is shared between requests except struct api (read-only after start-up) and its atomic
 * counters. Module map: api/README.md. */
#ifndef API_H
#define API_H

#include <stdatomic.h>
#include <stdbool.h>

#include "chat/buf.h"
#include "chat/metrics.h"

#include "api_router.h"

struct api_cfg {
    char *listen_addr;
    int port;
    int threads;           /* request threads (each handles a request start to finish) */
    int max_body;          /* bytes of a request body */
    int request_timeout_s; /* a connection idle this long (no request, no byte) is closed */
    int max_conns;         /* connections at once; more are refused */
    char *log_level;
};

struct api_metrics {
    atomic_llong requests, by_class[6]; /* by_class[k]: kxx answers (1..5) */
    atomic_llong too_big;
    struct chat_hist latency_us; /* request in -> answer queued (atomic buckets) */
};

struct api {
    const struct api_cfg *cfg;
    const struct api_route *routes; /* the route table (api_routes.c) */
    size_t nroutes;
    struct MHD_Daemon *daemon;
    int port; /* bound (cfg->port may be 0) */
    struct api_metrics m;
};

/* One request, from its headers to its answer. The router fills route and params; the handler
 * reads body and fills status/resp (api_reply_*). */
struct api_req {
    struct api *api;
    struct MHD_Connection *conn;
    unsigned method;
    char path[256];
    const struct api_route *route;
    struct api_params params;
    struct chat_buf body; /* request body, capped at cfg->max_body */
    bool too_big;         /* the body went over the cap: answered 413 */
    int status;           /* 0 until answered */
    struct chat_buf resp;
    const char *ctype;
    char allow[64]; /* 405: the methods the path takes */
    long long t0_us;
};

/* Answers: the JSON error of proto/README.md section 6 with the HTTP status given. */
void api_reply_error(struct api_req *r, int status, const char *code, const char *msg);
/* Answers status with body (text or JSON per ctype): resp is filled by the caller. */
void api_reply(struct api_req *r, int status, const char *ctype);

/* api_server.c: the libmicrohttpd daemon. start: CHAT_OK, or an error already logged. */
int api_server_start(struct api *a);
void api_server_stop(struct api *a);

/* api_routes.c: the route table of chat-api. */
extern const struct api_route api_routes[];
extern const size_t api_nroutes;

#endif
