/* test_httpd.c - the health/metrics responder thread (libchat/src/httpd.c) serving requests
 * while other threads update the metrics it renders: correct responses, and (under TSan) no data
 * races between the writers and the httpd thread; a slow client (slow loris) does not delay
 * another one's probe, a client past the whole-request deadline is closed, max_conns clients are
 * served at once and one more evicts the oldest. Loopback only, port chosen by the kernel; every
 * wait is a bounded poll() on a socket, never a sleep. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat/httpd.h"
#include "chat/metrics.h"
#include "chat/time.h"

#define WRITES 200000

struct state {
    atomic_llong counter;
    struct chat_hist hist;
    atomic_bool stop;
};

static int handler(void *ud, const char *path, struct chat_buf *body, const char **ctype)
{
    struct state *s = ud;
    const struct chat_metric_def defs[] = {
        {"t_counter_total", "a counter", CHAT_METRIC_COUNTER, &s->counter},
        {"t_latency_seconds", "a histogram", CHAT_METRIC_HIST, &s->hist},
    };
    *ctype = "text/plain; version=0.0.4";
    if (strcmp(path, "/metrics") != 0)
        return 404;
    return chat_metrics_render(body, defs, 2) == CHAT_OK ? 200 : 500;
}

static void *writer(void *arg)
{
    struct state *s = arg;
    for (int i = 0; i < WRITES; i++) {
        chat_metric_add(&s->counter, 1);
        chat_hist_record(&s->hist, (uint64_t)i % 5000);
    }
    return NULL;
}

/* GET path from 127.0.0.1:port; returns the whole response in buf. */
static int get(int port, const char *path, char *buf, size_t cap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[128];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    close(fd);
    return (int)got;
}

static void test_httpd_serves_while_metrics_change(void **state)
{
    static struct state s;
    struct chat_httpd *h = NULL;
    pthread_t w[2];
    char buf[65536];
    (void)state;

    assert_int_equal(chat_httpd_start("127.0.0.1", 0, handler, &s, &h), CHAT_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&w[i], NULL, writer, &s), 0);
    for (int i = 0; i < 50; i++) {
        assert_true(get(chat_httpd_port(h), "/metrics", buf, sizeof(buf)) > 0);
        assert_non_null(strstr(buf, "HTTP/1.0 200"));
        assert_non_null(strstr(buf, "# TYPE t_counter_total counter"));
        assert_non_null(strstr(buf, "t_latency_seconds_bucket{le=\"+Inf\"}"));
    }
    for (int i = 0; i < 2; i++)
        pthread_join(w[i], NULL);
    assert_true(get(chat_httpd_port(h), "/metrics", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "t_counter_total 400000\n"));
    assert_true(get(chat_httpd_port(h), "/nope", buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "HTTP/1.0 404"));
    chat_httpd_stop(h);
}

static int health(void *ud, const char *path, struct chat_buf *body, const char **ctype)
{
    (void)ud;
    (void)ctype;
    if (strcmp(path, "/healthz") != 0)
        return 404;
    return chat_buf_appends(body, "ok\n") == CHAT_OK ? 200 : 500;
}

/* A connected socket to 127.0.0.1:port that has sent nothing yet. */
static int dial(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_str(int fd, const char *s)
{
    assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Reads until EOF, at most timeout_ms in all; returns the bytes read (-1: timed out first). */
static int read_all(int fd, char *buf, size_t cap, int timeout_ms)
{
    int64_t end = chat_mono_ms() + timeout_ms;
    size_t got = 0;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = end - chat_mono_ms();
        ssize_t r;

        if (left <= 0 || poll(&p, 1, (int)left) != 1)
            return -1;
        r = read(fd, buf + got, cap - 1 - got);
        if (r <= 0)
            break; /* EOF (or a reset: the server closed) */
        got += (size_t)r;
    }
    buf[got] = '\0';
    return (int)got;
}

/* True when the server has not closed fd (nothing readable, no hang-up) right now. */
static bool still_open(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

static void test_httpd_slow_loris_does_not_block_probe(void **state)
{
    const struct chat_httpd_limits lim = {.deadline_ms = 5000, .max_conns = 4};
    struct chat_httpd *h = NULL;
    const char *head = "GET /healthz HTTP/1.0\r\n\r\n";
    char buf[4096];
    int64_t t0;
    int slow;
    (void)state;

    assert_int_equal(chat_httpd_start_ex("127.0.0.1", 0, &lim, health, NULL, &h), CHAT_OK);
    slow = dial(chat_httpd_port(h));
    t0 = chat_mono_ms();
    /* the slow client trickles its request one byte at a time; between its bytes a second
     * client asks for /healthz and must get the whole answer at once */
    for (int i = 0; i < 3; i++) {
        int fast;
        assert_int_equal(write(slow, head + i, 1), 1);
        fast = dial(chat_httpd_port(h));
        send_str(fast, head);
        assert_true(read_all(fast, buf, sizeof(buf), 4000) > 0);
        close(fast);
        assert_non_null(strstr(buf, "HTTP/1.0 200"));
        assert_non_null(strstr(buf, "\r\n\r\nok\n"));
        assert_true(still_open(slow)); /* the slow one is still being waited for */
        assert_true(chat_mono_ms() - t0 < lim.deadline_ms);
    }
    assert_int_equal(chat_httpd_timeouts(h), 0);
    close(slow);
    chat_httpd_stop(h);
}

static void test_httpd_deadline_closes_slow_client(void **state)
{
    const struct chat_httpd_limits lim = {.deadline_ms = 300, .max_conns = 4};
    struct chat_httpd *h = NULL;
    char buf[4096];
    int64_t t0, took;
    int slow;
    (void)state;

    assert_int_equal(chat_httpd_start_ex("127.0.0.1", 0, &lim, health, NULL, &h), CHAT_OK);
    slow = dial(chat_httpd_port(h));
    t0 = chat_mono_ms();
    send_str(slow, "GET /heal");
    /* no more bytes: the server closes it at its deadline, without an answer */
    assert_int_equal(read_all(slow, buf, sizeof(buf), 5000), 0);
    took = chat_mono_ms() - t0;
    assert_true(took >= lim.deadline_ms - 50); /* not before its deadline (accept came first) */
    assert_int_equal(chat_httpd_timeouts(h), 1);
    close(slow);
    chat_httpd_stop(h);
}

static void test_httpd_serves_concurrent_clients(void **state)
{
    enum { N = 8 };
    const struct chat_httpd_limits lim = {.deadline_ms = 5000, .max_conns = N};
    struct chat_httpd *h = NULL;
    char buf[4096];
    int fd[N], extra;
    (void)state;

    assert_int_equal(chat_httpd_start_ex("127.0.0.1", 0, &lim, health, NULL, &h), CHAT_OK);
    /* N clients open at once, each with half a request; then each completes it, in reverse */
    for (int i = 0; i < N; i++) {
        fd[i] = dial(chat_httpd_port(h));
        send_str(fd[i], "GET /healthz HTTP/1.0\r\n");
    }
    for (int i = N - 1; i >= 0; i--) {
        send_str(fd[i], "\r\n");
        assert_true(read_all(fd[i], buf, sizeof(buf), 4000) > 0);
        assert_non_null(strstr(buf, "HTTP/1.0 200"));
        close(fd[i]);
    }
    /* N stuck clients: one more evicts the oldest (503) and is served itself */
    for (int i = 0; i < N; i++) {
        fd[i] = dial(chat_httpd_port(h));
        send_str(fd[i], "GET /");
    }
    /* the kernel queues accepts in order, so these N are taken before the next one */
    for (int i = 0; i < N; i++)
        assert_true(still_open(fd[i]));
    extra = dial(chat_httpd_port(h));
    send_str(extra, "GET /healthz HTTP/1.0\r\n\r\n");
    assert_true(read_all(extra, buf, sizeof(buf), 4000) > 0);
    assert_non_null(strstr(buf, "HTTP/1.0 200"));
    close(extra);
    assert_true(read_all(fd[0], buf, sizeof(buf), 4000) >= 0);
    assert_non_null(strstr(buf, "HTTP/1.0 503"));
    assert_int_equal(chat_httpd_evictions(h), 1);
    for (int i = 0; i < N; i++)
        close(fd[i]);
    chat_httpd_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_httpd_serves_while_metrics_change),
        cmocka_unit_test(test_httpd_slow_loris_does_not_block_probe),
        cmocka_unit_test(test_httpd_deadline_closes_slow_client),
        cmocka_unit_test(test_httpd_serves_concurrent_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
