/* wsc.h - a small synchronous WebSocket client for integration tests (RFC 6455 subset:
 * masked client frames, server fragmentation, ping/pong, close). Also offers raw frame sends so
 * tests can inject binary, fragmented, oversize and invalid frames.
 * Thread-safety: a client belongs to one thread. */
#ifndef WSC_H
#define WSC_H

#include <stdbool.h>
#include <stddef.h>

struct wsc;

enum {
    WSC_OP_CONT = 0x0,
    WSC_OP_TEXT = 0x1,
    WSC_OP_BINARY = 0x2,
    WSC_OP_CLOSE = 0x8,
    WSC_OP_PING = 0x9,
    WSC_OP_PONG = 0xA,
};

/* Connects to base ("http://host:port") + path (e.g. "/ws?token=...") with an optional bearer
 * token header. Returns NULL on failure (reason in errbuf). */
struct wsc *wsc_connect(const char *base,
                        const char *path,
                        const char *bearer,
                        int timeout_ms,
                        char *errbuf,
                        size_t errlen);
/* The same with a whole Authorization header value (NULL: none), e.g. "Basic dTpw". */
struct wsc *wsc_connect_authz(const char *base,
                              const char *path,
                              const char *authz,
                              int timeout_ms,
                              char *errbuf,
                              size_t errlen);
/* Sends one frame; fin=false starts/continues a fragmented message. 0 or -1. */
int wsc_send_frame(struct wsc *c, int opcode, bool fin, const void *p, size_t n);
int wsc_send_text(struct wsc *c, const char *s);
/* Waits up to timeout_ms for the next complete text message (pings answered on the way).
 * Returns 1 and a new NUL-terminated string in *out (free with wsc_free_text), 0 on timeout,
 * -1 when the connection closed (close code in *close_code when given) or failed. */
int wsc_recv_text(struct wsc *c, char **out, int timeout_ms, int *close_code);
void wsc_free_text(char *s);
int wsc_last_close_code(const struct wsc *c);
/* Whether pings are answered (the default) or only counted; the pings received so far. */
void wsc_set_pong(struct wsc *c, bool answer);
int wsc_pings(const struct wsc *c);
/* Shrinks the socket's receive buffer (to make a slow reader). */
void wsc_set_rcvbuf(struct wsc *c, int bytes);
/* Sends a close frame (when still open) and frees the client. NULL-safe. */
void wsc_close(struct wsc *c);
/* Closes the socket abruptly (no close frame) and frees. */
void wsc_abort(struct wsc *c);

#endif
