/* chat/httpd.h - a minimal HTTP/1.0 responder for /healthz, /readyz and /metrics of the services
 * that have no event loop of their own (persister, presence). One thread, one request at a time,
 * request head capped at 4 KiB, 2 s I/O timeout per connection; GET only.
 * Thread-safety: the handler runs on the httpd thread; it must only read thread-safe state
 * (atomics). start/stop from one controlling thread. */
#ifndef CHAT_HTTPD_H
#define CHAT_HTTPD_H

#include "chat/buf.h"
#include "chat/err.h"

/* Fills body (and *ctype, default "text/plain; charset=utf-8") and returns the HTTP status. */
typedef int chat_httpd_fn(void *ud, const char *path, struct chat_buf *body, const char **ctype);

struct chat_httpd;

/* Binds addr:port (port 0: any; see chat_httpd_port) and starts the thread.
 * Returns CHAT_OK or CHAT_EIO (bind/listen failed, logged). */
CHAT_NODISCARD int
chat_httpd_start(const char *addr, int port, chat_httpd_fn *fn, void *ud, struct chat_httpd **out);
int chat_httpd_port(const struct chat_httpd *h);
/* Stops the thread and frees h (NULL-safe). */
void chat_httpd_stop(struct chat_httpd *h);

#endif
