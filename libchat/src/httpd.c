#include "chat/httpd.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "chat/log.h"
#include "chat/mem.h"

struct chat_httpd {
    int fd; /* listening socket */
    int port;
    atomic_bool stop;
    pthread_t thread;
    chat_httpd_fn *fn;
    void *ud;
};

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

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL); /* a vanished prober must not SIGPIPE us */
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void serve_one(struct chat_httpd *h, int cfd)
{
    char req[4096], path[256];
    struct chat_buf body;
    const char *ctype = "text/plain; charset=utf-8";
    size_t got = 0;
    int status;
    struct timeval tv = {.tv_sec = 2};

    setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (got < sizeof(req) - 1) {
        ssize_t r = read(cfd, req + got, sizeof(req) - 1 - got);
        if (r <= 0)
            return;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    chat_buf_init(&body, 0, 1 << 20);
    if (sscanf(req, "GET %255s HTTP/", path) != 1) {
        status = 405;
        if (chat_buf_appends(&body, "only GET is supported\n") != CHAT_OK)
            status = 500;
    } else {
        char *q = strchr(path, '?');
        if (q)
            *q = '\0';
        status = h->fn(h->ud, path, &body, &ctype);
    }
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, status_text(status), ctype, body.len);
    write_all(cfd, head, (size_t)n);
    write_all(cfd, chat_buf_data(&body), body.len);
    chat_buf_fini(&body);
}

static void *httpd_main(void *arg)
{
    struct chat_httpd *h = arg;

    while (!atomic_load(&h->stop)) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        int cfd = accept(h->fd, NULL, NULL);
        if (cfd < 0)
            continue;
        serve_one(h, cfd);
        close(cfd);
    }
    return NULL;
}

int chat_httpd_start(
    const char *addr, int port, chat_httpd_fn *fn, void *ud, struct chat_httpd **out)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t sl = sizeof(sa);
    struct chat_httpd *h;
    int one = 1;

    *out = NULL;
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        chat_log(CHAT_LOG_ERROR, "httpd: bad address %s", addr);
        return CHAT_EIO;
    }
    h = chat_xcalloc(1, sizeof(*h));
    h->fn = fn;
    h->ud = ud;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->fd < 0)
        goto fail;
    setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(h->fd, 64) != 0)
        goto fail;
    getsockname(h->fd, (struct sockaddr *)&sa, &sl);
    h->port = ntohs(sa.sin_port);
    if (pthread_create(&h->thread, NULL, httpd_main, h) != 0)
        goto fail;
    *out = h;
    return CHAT_OK;
fail:
    chat_log(CHAT_LOG_ERROR, "httpd: cannot listen on %s:%d: %s", addr, port, strerror(errno));
    if (h->fd >= 0)
        close(h->fd);
    chat_free(h);
    return CHAT_EIO;
}

int chat_httpd_port(const struct chat_httpd *h)
{
    return h->port;
}

void chat_httpd_stop(struct chat_httpd *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    close(h->fd);
    chat_free(h);
}
