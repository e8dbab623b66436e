/* gw_accept.c - the gateway's own listening socket. A new connection is held here, costing one
 * poll registration and a place in a FIFO, until its first bytes arrive; only then is it handed
 * to lws (lws_adopt_socket_vhost), which parses the request. A client that connects and sends
 * nothing within CHAT_HEADER_TIMEOUT_S is closed from the FIFO's head without lws ever seeing
 * it. Why: lws 4.1 keeps every connection's timeout in one sorted list, inserted by a linear
 * walk, so thousands of idle half-open sockets made each accept and each timeout walk thousands
 * of nodes, bursts of them stalling the loop for hundreds of ms (2,000 of them: chat p99 19 ms
 * -> 119 ms, see docs/BENCHMARKS.md). TCP_DEFER_ACCEPT keeps most of them in the kernel anyway,
 * for part of the timeout (defer_s): the FIFO holds a silent one for the rest, so it is closed
 * CHAT_HEADER_TIMEOUT_S after the client connected, not after the kernel's deferral plus that.
 *
 * Every held connection has the same timeout, so the FIFO (appended at accept) is ordered by
 * deadline: expiry is O(1) per connection. Event-loop thread only. */
#include "ws/gw_accept.h"

#include <errno.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "core/gw.h"

#define ACCEPT_BATCH 64  /* accepts per readable event, so a flood cannot starve the loop */
#define EXPIRE_MS    250 /* the FIFO's expiry tick: a silent connection is closed up to this late */

/* The TCP_DEFER_ACCEPT seconds for a header timeout of timeout_s, which is also how long the
 * kernel holds a silent connection. Under the option Linux completes the client's handshake
 * but drops its bare ACK and retransmits the SYN-ACK 1, 3, 7, 15, 31 ... s after the SYN (an
 * initial timeout of 1 s, doubling); the connection is accepted at the ACK of the retransmission
 * that reaches the option's seconds (net/ipv4/tcp.c, secs_to_retrans): a silent client is held
 * 2^n - 1 s, the option rounded up. With the option at the timeout itself the default 5 s became
 * 7 s in the kernel, then 5 s in the FIFO: closed 12 s after connecting. So the option is the
 * longest of those times below the timeout (5 s: 3 s, 2 s: 1 s, 60 s: 31 s; 1 s: none) and the
 * FIFO holds the connection for the rest, at least a second: a connection accepted with its
 * bytes waiting must not be expired by the timer (libuv runs timers before polls) before it is
 * read. (A connection the kernel accepts early, with a SYN cookie under a SYN flood, is closed
 * sooner: the FIFO cannot tell.) */
static int defer_s(int timeout_s)
{
    int k = 0;

    while (2 * k + 1 < timeout_s)
        k = 2 * k + 1;
    return k;
}

struct gw_held {
    uv_poll_t poll;
    struct gw *gw;
    int fd;
    bool adopt;                  /* bytes arrived: hand to lws once the poll handle is closed */
    int64_t deadline;            /* mono ms */
    struct gw_held *prev, *next; /* gw->held FIFO */
};

static void unlink_held(struct gw *gw, struct gw_held *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        gw->held_head = h->next;
    if (h->next)
        h->next->prev = h->prev;
    else
        gw->held_tail = h->prev;
    h->prev = h->next = NULL;
    gw->nheld--;
}

static void held_closed(uv_handle_t *hd)
{
    struct gw_held *h = hd->data;
    struct gw *gw = h->gw;

    /* our poll handle is gone: lws may now register its own for the same descriptor */
    if (h->adopt && !gw->shut && gw->ctx) {
        if (!lws_adopt_socket_vhost(gw->vh, h->fd)) /* closes fd on failure */
            chat_metric_add(&gw->m.accept_dropped, 1);
    } else {
        close(h->fd);
    }
    chat_free(h);
}

/* Stops watching h; adopt: give its socket to lws, else close it. */
static void release(struct gw *gw, struct gw_held *h, bool adopt)
{
    unlink_held(gw, h);
    h->adopt = adopt;
    uv_poll_stop(&h->poll);
    uv_close((uv_handle_t *)&h->poll, held_closed);
}

static void on_held(uv_poll_t *p, int status, int events)
{
    struct gw_held *h = p->data;
    char c;
    ssize_t n;

    (void)events;
    if (status < 0) {
        release(h->gw, h, false);
        return;
    }
    n = recv(h->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        release(h->gw, h, true);
    else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        release(h->gw, h, false); /* closed before saying anything */
}

static void hold(struct gw *gw, int fd)
{
    struct gw_held *h;
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (gw->nheld >= gw->cfg->max_handshakes) { /* the oldest has waited longest: drop it */
        chat_metric_add(&gw->m.accept_dropped, 1);
        release(gw, gw->held_head, false);
    }
    h = chat_xcalloc(1, sizeof(*h));
    h->gw = gw;
    h->fd = fd;
    /* a connection with bytes already waiting leaves at the first poll event; a silent one was
     * held by the kernel until now, and is closed when the header timeout is up */
    h->deadline = chat_mono_ms() + gw->held_ms;
    if (uv_poll_init(&gw->loop, &h->poll, fd) != 0) {
        close(fd);
        chat_free(h);
        return;
    }
    h->poll.data = h;
    h->prev = gw->held_tail;
    if (gw->held_tail)
        gw->held_tail->next = h;
    else
        gw->held_head = h;
    gw->held_tail = h;
    gw->nheld++;
    uv_poll_start(&h->poll, UV_READABLE | UV_DISCONNECT, on_held);
}

static void on_listen(uv_poll_t *p, int status, int events)
{
    struct gw *gw = p->data;

    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(gw->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                static struct chat_log_limit lim; /* event-loop thread only */
                long skipped;
                if (chat_log_every(&lim, 10000, &skipped))
                    chat_log(CHAT_LOG_WARN, "accept: %s (%ld more in the last 10 s)",
                             strerror(errno), skipped);
                /* the socket stays readable: stop watching it for a moment instead of
                 * spinning the loop until a descriptor is free */
                uv_poll_stop(&gw->listen_poll);
                gw->accept_paused = true;
            }
            return;
        }
        chat_metric_add(&gw->m.accepted, 1);
        hold(gw, fd);
    }
}

/* EXPIRE_MS: closes held connections past their deadline, from the FIFO's head. */
static void on_expire(uv_timer_t *t)
{
    struct gw *gw = t->data;
    int64_t now = chat_mono_ms();

    if (gw->accept_paused) { /* out of descriptors 250 ms ago: try again */
        gw->accept_paused = false;
        uv_poll_start(&gw->listen_poll, UV_READABLE, on_listen);
    }
    while (gw->held_head && gw->held_head->deadline <= now) {
        chat_metric_add(&gw->m.header_timeouts, 1);
        release(gw, gw->held_head, false);
    }
}

int gw_accept_start(struct gw *gw)
{
    const struct gw_config *cfg = gw->cfg;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    int one = 1, defer = defer_s(cfg->header_timeout_s);

    gw->vh = lws_get_vhost_by_name(gw->ctx, "chat");
    if (!gw->vh || inet_pton(AF_INET, cfg->listen_addr, &sa.sin_addr) != 1) {
        chat_log(CHAT_LOG_ERROR, "cannot listen on %s:%d: not an IPv4 address", cfg->listen_addr,
                 cfg->port);
        return CHAT_EINVAL;
    }
    gw->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (gw->listen_fd < 0 ||
        setsockopt(gw->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(gw->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(gw->listen_fd, cfg->listen_backlog) != 0) {
        chat_log(CHAT_LOG_ERROR, "cannot listen on %s:%d: %s", cfg->listen_addr, cfg->port,
                 strerror(errno));
        if (gw->listen_fd >= 0)
            close(gw->listen_fd);
        gw->listen_fd = -1;
        return CHAT_EIO;
    }
    /* the kernel holds a silent connection itself for defer seconds before we see it, the FIFO
     * for the rest of the header timeout (all of it when the option is refused) */
    if (defer > 0 &&
        setsockopt(gw->listen_fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer)) != 0)
        defer = 0;
    gw->held_ms = (cfg->header_timeout_s - defer) * 1000;
    if (uv_poll_init(&gw->loop, &gw->listen_poll, gw->listen_fd) != 0 ||
        uv_timer_init(&gw->loop, &gw->expire_timer) != 0) {
        close(gw->listen_fd);
        gw->listen_fd = -1;
        return CHAT_EIO;
    }
    gw->listen_poll.data = gw;
    gw->expire_timer.data = gw;
    gw->accept_ok = true;
    uv_poll_start(&gw->listen_poll, UV_READABLE, on_listen);
    uv_timer_start(&gw->expire_timer, on_expire, EXPIRE_MS, EXPIRE_MS);
    return CHAT_OK;
}

static void listen_closed(uv_handle_t *hd)
{
    struct gw *gw = hd->data;
    close(gw->listen_fd);
    gw->listen_fd = -1;
}

void gw_accept_stop(struct gw *gw)
{
    if (!gw->accept_ok)
        return;
    gw->accept_ok = false;
    uv_poll_stop(&gw->listen_poll);
    uv_close((uv_handle_t *)&gw->listen_poll, listen_closed);
    uv_timer_stop(&gw->expire_timer);
    uv_close((uv_handle_t *)&gw->expire_timer, NULL);
    while (gw->held_head)
        release(gw, gw->held_head, false);
}
