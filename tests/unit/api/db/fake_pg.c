/* fake_pg.c - the PostgreSQL stand-in of test_api_db (fake_pg.h). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include "fake_pg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MSG_MAX (1 << 20) /* a frontend message larger than this ends the connection */

/* Reads exactly n bytes; false at the end of the connection or on an error. */
static bool read_full(int fd, void *p, size_t n)
{
    char *c = p;

    while (n > 0) {
        ssize_t r = recv(fd, c, n, 0);

        if (r <= 0)
            return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

/* Sends one backend message: its type, its length, body[0..n). */
static void reply(int fd, char type, const void *body, size_t n)
{
    unsigned char msg[256];
    uint32_t len = htonl((uint32_t)(n + 4));

    assert_true(n + 5 <= sizeof(msg));
    msg[0] = (unsigned char)type;
    memcpy(msg + 1, &len, 4);
    memcpy(msg + 5, body, n);
    (void)!send(fd, msg, n + 5, MSG_NOSIGNAL); /* the client gone: no SIGPIPE */
}

static void ready_for_query(int fd)
{
    reply(fd, 'Z', "I", 1);
}

/* An ErrorResponse with SQLSTATE code. */
static void error_response(int fd, const char *code, bool fatal)
{
    char body[128];
    const char *sev = fatal ? "FATAL" : "ERROR";
    int n = snprintf(body, sizeof(body), "S%s%cV%s%cC%s%cMfake error %s%c", sev, 0, sev, 0, code, 0,
                     code, 0);

    assert_true(n > 0 && (size_t)n < sizeof(body));
    reply(fd, 'E', body, (size_t)n + 1); /* and the terminating zero byte */
}

static void delay(int ms)
{
    if (ms > 0)
        (void)poll(NULL, 0, ms);
}

/* The startup packet (SSL or GSS requests refused first), then the server's welcome. */
static bool startup(struct fake_pg *f, int fd)
{
    static const unsigned char auth_ok[4] = {0, 0, 0, 0}, key[8] = {0, 0, 0, 1, 0, 0, 0, 2};
    static const char version[] = "server_version\0"
                                  "16.0";
    char body[4096];
    uint32_t len, code;

    for (;;) {
        if (!read_full(fd, &len, 4))
            return false;
        len = ntohl(len);
        if (len < 8 || len - 4 > sizeof(body) || !read_full(fd, body, len - 4))
            return false;
        memcpy(&code, body, 4);
        code = ntohl(code);
        if (code != 80877103 && code != 80877104) /* SSLRequest, GSSENCRequest */
            break;
        (void)!send(fd, "N", 1, MSG_NOSIGNAL);
    }
    delay(atomic_load(&f->startup_delay_ms));
    reply(fd, 'R', auth_ok, sizeof(auth_ok));
    reply(fd, 'S', version, sizeof(version));
    reply(fd, 'K', key, sizeof(key));
    ready_for_query(fd);
    return true;
}

/* One Parse: its answer, unless skipped; false when the connection is to be closed. */
static bool parse(struct fake_pg *f, int fd, const char *body, int i, bool *skip)
{
    const char *code = atomic_load(&f->parse_error);

    atomic_fetch_add(&f->parses, 1);
    if (body[0] == '\0')
        atomic_fetch_add(&f->unnamed, 1);
    if (atomic_load(&f->hang_parses) || *skip)
        return true;
    if (!code || i != atomic_load(&f->error_at)) {
        reply(fd, '1', "", 0); /* ParseComplete */
        return true;
    }
    error_response(fd, code, atomic_load(&f->fatal));
    *skip = true; /* the server skips to the Sync */
    return !atomic_load(&f->fatal);
}

static void serve(struct fake_pg *f, int fd)
{
    bool skip = false;
    int nparse = 0; /* since the last Sync */

    if (!startup(f, fd))
        return;
    for (;;) {
        unsigned char type;
        uint32_t len;
        char *body;
        bool go_on = true;

        if (!read_full(fd, &type, 1) || !read_full(fd, &len, 4))
            return;
        len = ntohl(len);
        if (len < 4 || len > MSG_MAX)
            return;
        body = calloc(1, len - 4 + 1);
        assert_non_null(body);
        if (!read_full(fd, body, len - 4)) {
            free(body);
            return;
        }
        switch (type) {
        case 'X': /* Terminate */
            go_on = false;
            break;
        case 'Q': /* a simple query: SET and the like */
            if (atomic_load(&f->hang_queries))
                break;
            delay(atomic_load(&f->query_delay_ms));
            reply(fd, 'C', "SET", 4);
            ready_for_query(fd);
            break;
        case 'P':
            go_on = parse(f, fd, body, nparse++, &skip);
            break;
        case 'S': /* Sync */
            if (atomic_load(&f->hang_parses))
                break;
            skip = false;
            nparse = 0;
            ready_for_query(fd);
            break;
        default: /* Flush, Bind, ...: not sent by api_db.c's connect */
            break;
        }
        free(body);
        if (!go_on)
            return;
    }
}

static void *fake_pg_run(void *arg)
{
    struct fake_pg *f = arg;

    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);

        if (fd < 0)
            return NULL; /* fake_pg_stop shut the listener down (or 10 s without a client) */
        atomic_fetch_add(&f->conns, 1);
        serve(f, fd);
        close(fd);
    }
}

void fake_pg_start(struct fake_pg *f)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 10}; /* accept and reads give up: a test never hangs */
    socklen_t alen = sizeof(a);

    memset(f, 0, sizeof(*f));
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(setsockopt(f->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &alen), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->th, NULL, fake_pg_run, f), 0);
}

void fake_pg_stop(struct fake_pg *f)
{
    (void)shutdown(f->lfd, SHUT_RDWR); /* wakes the accept */
    pthread_join(f->th, NULL);
    close(f->lfd);
}

void fake_pg_dsn(const struct fake_pg *f, char *out, size_t cap)
{
    snprintf(out, cap, "postgresql://fake@127.0.0.1:%d/fake?sslmode=disable&gssencmode=disable",
             f->port);
}
