/* httpd.c - see chat/httpd.h. One thread, one poll() over the listening socket and at most
 * max_conns non-blocking client sockets; each client has a deadline for its whole exchange. */
#include "chat/httpd.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat/log.h"
#include "chat/mem.h"

#define REQ_MAX      4096 /* request head, bytes */
#define POLL_MAX_MS  200  /* the stop flag is checked at least this often */
#define ACCEPT_BURST 64   /* accepts per poll round, so clients being served are not starved */
#define BUSY_REPLY                                                                    \
    "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" \
    "Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n"

/* One client connection. httpd thread only. */
struct conn {
    int fd;              /* -1: slot free */
    int64_t deadline_ms; /* monotonic: closed when not done by then */
    uint64_t seq;        /* accept order (the oldest is evicted first) */
    size_t got;          /* request bytes in req */
    char req[REQ_MAX];   /* request head, NUL-terminated */
    struct chat_buf out; /* response (head + body) once the request is complete */
    size_t sent;         /* bytes of out written */
    bool writing;        /* request handled; writing out */
};

struct chat_httpd {
    int fd; /* listening socket, non-blocking */
    int port;
    atomic_bool stop;
    pthread_t thread;
    chat_httpd_fn *fn;
    void *ud;
    struct chat_httpd_limits lim; /* immutable after start */
    struct conn *conns;           /* owns; lim.max_conns slots; httpd thread only */
    struct pollfd *pfd;           /* owns; 1 + lim.max_conns; httpd thread only */
    uint64_t next_seq;            /* httpd thread only */
    atomic_llong timeouts;        /* closed at their deadline */
    atomic_llong evictions;       /* closed for a newer connection */
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *status_text(int st)
{
    switch (st) {
    case 200:
        return "OK";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

static void conn_close(struct conn *c)
{
    if (c->fd < 0)
        return;
    close(c->fd);
    c->fd = -1;
    c->got = 0;
    c->sent = 0;
    c->writing = false;
    chat_buf_reset(&c->out);
}

/* Builds the response to the complete request head in c->req. */
static void respond(struct chat_httpd *h, struct conn *c)
{
    char path[256];
    struct chat_buf body;
    const char *ctype = "text/plain; charset=utf-8";
    int status;

    chat_buf_init(&body, 0, 1 << 20);
    if (sscanf(c->req, "GET %255s HTTP/", path) != 1) {
        status = 405;
        if (chat_buf_appends(&body, "only GET is supported\n") != CHAT_OK)
            status = 500;
    } else {
        char *q = strchr(path, '?');
        if (q)
            *q = '\0';
        status = h->fn(h->ud, path, &body, &ctype);
    }
    chat_buf_reset(&c->out);
    if (chat_buf_appendf(&c->out,
                         "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n",
                         status, status_text(status), ctype, body.len) != CHAT_OK ||
        chat_buf_append(&c->out, chat_buf_data(&body), body.len) != CHAT_OK)
        chat_buf_reset(&c->out); /* out of its cap: close without an answer */
    chat_buf_fini(&body);
    c->writing = true;
    c->sent = 0;
}

/* Reads what is there; returns false when the connection is to be closed. */
static bool conn_read(struct chat_httpd *h, struct conn *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->req + c->got, sizeof(c->req) - 1 - c->got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (r <= 0)
            return false; /* EOF before a whole head, or an error */
        c->got += (size_t)r;
        c->req[c->got] = '\0';
        if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n") || c->got == sizeof(c->req) - 1) {
            respond(h, c); /* a head over the cap is answered as it is (405 or the path) */
            return true;
        }
    }
}

/* Writes what the socket takes; returns false when done or failed (close it). */
static bool conn_write(struct conn *c)
{
    while (c->sent < c->out.len) {
        ssize_t w = send(c->fd, chat_buf_data(&c->out) + c->sent, c->out.len - c->sent,
                         MSG_NOSIGNAL); /* a vanished prober must not SIGPIPE us */
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (w <= 0)
            return false;
        c->sent += (size_t)w;
    }
    return false;
}

/* A free slot, or the oldest connection closed (with a 503 if its socket takes it) to make one. */
static struct conn *take_slot(struct chat_httpd *h)
{
    struct conn *oldest = NULL;

    for (int i = 0; i < h->lim.max_conns; i++) {
        struct conn *c = &h->conns[i];
        if (c->fd < 0)
            return c;
        if (!oldest || c->seq < oldest->seq)
            oldest = c;
    }
    if (!oldest->writing)
        (void)send(oldest->fd, BUSY_REPLY, sizeof(BUSY_REPLY) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    conn_close(oldest);
    atomic_fetch_add(&h->evictions, 1);
    return oldest;
}

static void accept_some(struct chat_httpd *h, int64_t now)
{
    for (int i = 0; i < ACCEPT_BURST; i++) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* the socket stays readable: back off instead of spinning (our own thread) */
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
            }
            return; /* EAGAIN (no more), or a transient error: poll tells us again */
        }
        c = take_slot(h);
        c->fd = fd;
        c->seq = h->next_seq++;
        c->deadline_ms = now + h->lim.deadline_ms;
        c->got = 0;
        c->sent = 0;
        c->writing = false;
    }
}

/* Fills h->pfd; returns the poll timeout (the nearest deadline, at most POLL_MAX_MS). */
static int prepare_poll(struct chat_httpd *h, int64_t now)
{
    int64_t timeout = POLL_MAX_MS;

    h->pfd[0] = (struct pollfd){.fd = h->fd, .events = POLLIN};
    for (int i = 0; i < h->lim.max_conns; i++) {
        struct conn *c = &h->conns[i];
        h->pfd[i + 1] = (struct pollfd){.fd = c->fd, .events = c->writing ? POLLOUT : POLLIN};
        if (c->fd >= 0 && c->deadline_ms - now < timeout)
            timeout = c->deadline_ms - now;
    }
    return timeout < 0 ? 0 : (int)timeout;
}

static void *httpd_main(void *arg)
{
    struct chat_httpd *h = arg;

    while (!atomic_load(&h->stop)) {
        int timeout = prepare_poll(h, mono_ms());
        int64_t now;

        if (poll(h->pfd, (nfds_t)h->lim.max_conns + 1, timeout) < 0 && errno != EINTR)
            chat_log(CHAT_LOG_WARN, "httpd: poll: %s", strerror(errno));
        now = mono_ms();
        for (int i = 0; i < h->lim.max_conns; i++) {
            struct conn *c = &h->conns[i];
            short re = h->pfd[i + 1].revents;
            bool keep = true;

            if (c->fd < 0 || h->pfd[i + 1].fd != c->fd)
                continue;
            if (re & (POLLIN | POLLERR | POLLHUP) && !c->writing)
                keep = conn_read(h, c);
            if (keep && c->writing) /* try at once: the answer usually fits the socket buffer */
                keep = conn_write(c);
            if (keep && now >= c->deadline_ms) {
                atomic_fetch_add(&h->timeouts, 1);
                keep = false;
            }
            if (!keep)
                conn_close(c);
        }
        if (h->pfd[0].revents & POLLIN)
            accept_some(h, now);
    }
    return NULL;
}

int chat_httpd_start(
    const char *addr, int port, chat_httpd_fn *fn, void *ud, struct chat_httpd **out)
{
    return chat_httpd_start_ex(addr, port, NULL, fn, ud, out);
}

int chat_httpd_start_ex(const char *addr,
                        int port,
                        const struct chat_httpd_limits *lim,
                        chat_httpd_fn *fn,
                        void *ud,
                        struct chat_httpd **out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t sl = sizeof(sa);
    struct chat_httpd *h;
    int one = 1;

    *out = NULL;
    if (lim && (lim->deadline_ms < 0 || lim->max_conns < 0))
        return CHAT_EINVAL;
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        chat_log(CHAT_LOG_ERROR, "httpd: bad address %s", addr);
        return CHAT_EIO;
    }
    h = chat_xcalloc(1, sizeof(*h));
    h->fn = fn;
    h->ud = ud;
    h->lim.deadline_ms = lim && lim->deadline_ms ? lim->deadline_ms : CHAT_HTTPD_DEADLINE_MS_DEF;
    h->lim.max_conns = lim && lim->max_conns ? lim->max_conns : CHAT_HTTPD_MAX_CONNS_DEF;
    h->conns = chat_xcalloc((size_t)h->lim.max_conns, sizeof(*h->conns));
    h->pfd = chat_xcalloc((size_t)h->lim.max_conns + 1, sizeof(*h->pfd));
    for (int i = 0; i < h->lim.max_conns; i++) {
        h->conns[i].fd = -1;
        chat_buf_init(&h->conns[i].out, 0, (1 << 20) + 1024);
    }
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (h->fd < 0)
        goto fail;
    (void)setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(h->fd, 64) != 0)
        goto fail;
    (void)getsockname(h->fd, (struct sockaddr *)&sa, &sl);
    h->port = ntohs(sa.sin_port);
    if (pthread_create(&h->thread, NULL, httpd_main, h) != 0)
        goto fail;
    *out = h;
    return CHAT_OK;
fail:
    chat_log(CHAT_LOG_ERROR, "httpd: cannot listen on %s:%d: %s", addr, port, strerror(errno));
    if (h->fd >= 0)
        close(h->fd);
    for (int i = 0; i < h->lim.max_conns; i++)
        chat_buf_fini(&h->conns[i].out);
    chat_free(h->conns);
    chat_free(h->pfd);
    chat_free(h);
    return CHAT_EIO;
}

int chat_httpd_port(const struct chat_httpd *h)
{
    return h->port;
}

long long chat_httpd_timeouts(const struct chat_httpd *h)
{
    return atomic_load(&h->timeouts);
}

long long chat_httpd_evictions(const struct chat_httpd *h)
{
    return atomic_load(&h->evictions);
}

void chat_httpd_stop(struct chat_httpd *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    close(h->fd);
    for (int i = 0; i < h->lim.max_conns; i++) {
        conn_close(&h->conns[i]);
        chat_buf_fini(&h->conns[i].out);
    }
    chat_free(h->conns);
    chat_free(h->pfd);
    chat_free(h);
}
