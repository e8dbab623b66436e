/* chat/httpd.h - a minimal HTTP/1.0 responder for /healthz, /readyz and /metrics of the services
 * that have no event loop of their own (persister, presence). One thread multiplexes up to
 * max_conns connections with poll() (non-blocking sockets), so a slow or stuck client never
 * delays another one's probe. Each connection has one deadline for the whole exchange (request
 * head read and response written), counted from its accept; past it the connection is closed.
 * When max_conns connections are open, a new one evicts the oldest (which gets a 503 when it can
 * take it without blocking): a prober is quick, so the oldest is the likely stuck one. Request
 * head capped at 4 KiB; GET only.
 * Thread-safety: the handler runs on the httpd thread; it must only read thread-safe state
 * (atomics). start/stop from one controlling thread. */
#ifndef CHAT_HTTPD_H
#define CHAT_HTTPD_H

#include <stddef.h>

#include "chat/buf.h"
#include "chat/config.h"
#include "chat/err.h"

#define CHAT_HTTPD_DEADLINE_MS_DEF 2000 /* whole request, accept to response written */
#define CHAT_HTTPD_MAX_CONNS_DEF   16   /* connections served at once */

/* Limits of one responder; zero fields take the defaults above. */
struct chat_httpd_limits {
    int deadline_ms; /* accept -> response written, at most; then the connection is closed */
    int max_conns;   /* open connections at most; one more evicts the oldest */
};

/* Config table rows for struct chat_httpd_limits member m of config type T (the same
 * CHAT_HEALTH_* variables in every service that embeds them). */
#define CHAT_HTTPD_CFG_OPTS(T, m)                                                                \
    {"health-deadline-ms",                                                                       \
     "CHAT_HEALTH_DEADLINE_MS",                                                                  \
     CHAT_CFG_INT,                                                                               \
     10,                                                                                         \
     60000,                                                                                      \
     "2000",                                                                                     \
     offsetof(T, m.deadline_ms),                                                                 \
     0,                                                                                          \
     "/healthz /readyz /metrics: time (ms) from accept to the whole request read and answered;"  \
     " a slower client is closed"},                                                              \
    {                                                                                            \
        "health-max-conns", "CHAT_HEALTH_MAX_CONNS", CHAT_CFG_INT, 1, 1024, "16",                \
            offsetof(T, m.max_conns), 0,                                                         \
            "/healthz /readyz /metrics: connections served at once (one more evicts the oldest)" \
    }

/* Fills body (and *ctype, default "text/plain; charset=utf-8") and returns the HTTP status. */
typedef int chat_httpd_fn(void *ud, const char *path, struct chat_buf *body, const char **ctype);

struct chat_httpd;

/* Binds addr:port (port 0: any; see chat_httpd_port) and starts the thread, with the default
 * limits. Returns CHAT_OK or CHAT_EIO (bind/listen failed, logged); *out is NULL on error. */
CHAT_NODISCARD int
chat_httpd_start(const char *addr, int port, chat_httpd_fn *fn, void *ud, struct chat_httpd **out);
/* chat_httpd_start() with limits lim (borrowed during the call; NULL: defaults).
 * Returns CHAT_OK, CHAT_EINVAL (a negative limit) or CHAT_EIO (logged). */
CHAT_NODISCARD int chat_httpd_start_ex(const char *addr,
                                       int port,
                                       const struct chat_httpd_limits *lim,
                                       chat_httpd_fn *fn,
                                       void *ud,
                                       struct chat_httpd **out);
int chat_httpd_port(const struct chat_httpd *h);
/* Connections closed at their deadline, and evicted for a newer one, so far (any thread). */
long long chat_httpd_timeouts(const struct chat_httpd *h);
long long chat_httpd_evictions(const struct chat_httpd *h);
/* Stops the thread, closes every connection and frees h (NULL-safe). */
void chat_httpd_stop(struct chat_httpd *h);

#endif
