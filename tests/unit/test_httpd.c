/* test_httpd.c - the health/metrics responder thread (libchat/src/httpd.c) serving requests
 * while other threads update the metrics it renders: correct responses, and (under TSan) no data
 * races between the writers and the httpd thread. Loopback only, port chosen by the kernel. */
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
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat/httpd.h"
#include "chat/metrics.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_httpd_serves_while_metrics_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
