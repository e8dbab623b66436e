/* test_metrics.c - log-linear histograms and the Prometheus text rendering (libchat/src/metrics.c).
 */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "chat/buf.h"
#include "chat/mem.h"
#include "chat/metrics.h"

static struct chat_hist *hist_new(void)
{
    return chat_xcalloc(1, sizeof(struct chat_hist)); /* zeroed atomics are valid */
}

static void test_metrics_bucket_small_values_exact(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 64; v++) {
        assert_int_equal(chat_hist_bucket(v), v);
        assert_int_equal(chat_hist_bucket_upper(chat_hist_bucket(v)), v);
    }
}

static void test_metrics_bucket_edges(void **state)
{
    (void)state;
    /* from 128 on, 64 buckets per power of two (64..127: one value each) */
    assert_int_equal(chat_hist_bucket(127), 127);
    assert_int_equal(chat_hist_bucket(128), 128);
    assert_int_equal(chat_hist_bucket(129), 128);
    assert_int_equal(chat_hist_bucket_upper(128), 129);
    assert_int_equal(chat_hist_bucket(130), 129);
    assert_int_equal(chat_hist_bucket(255), 191);
    assert_int_equal(chat_hist_bucket(256), 192);
    assert_int_equal(chat_hist_bucket_upper(191), 255);
    assert_int_equal(chat_hist_bucket(1000000), chat_hist_bucket(1000000 + 1));
    assert_true(chat_hist_bucket(UINT64_MAX) < CHAT_HIST_BUCKETS);
    assert_true(chat_hist_bucket_upper(chat_hist_bucket(UINT64_MAX)) == UINT64_MAX);
    assert_true(chat_hist_bucket_upper(CHAT_HIST_BUCKETS - 1) == UINT64_MAX);
    for (unsigned e = 5; e < 64; e++) { /* each power of two starts a bucket */
        uint64_t p = (uint64_t)1 << e;
        assert_int_equal(chat_hist_bucket(p), chat_hist_bucket(p - 1) + 1);
        assert_true(chat_hist_bucket_upper(chat_hist_bucket(p - 1)) == p - 1);
    }
}

/* Every value lands in a bucket whose range holds it, within 1/16 relative width. */
static void test_metrics_bucket_error_bound(void **state)
{
    uint64_t v = 1;

    (void)state;
    while (v < UINT64_MAX / 4) { /* v * 3 must not wrap */
        for (int d = -2; d <= 2; d++) {
            uint64_t x = v + (uint64_t)(int64_t)d, up;
            unsigned b = chat_hist_bucket(x);
            if (x == 0)
                continue;
            up = chat_hist_bucket_upper(b);
            assert_true(up >= x);
            assert_true(b == 0 || chat_hist_bucket_upper(b - 1) < x); /* buckets tile */
            assert_true((double)(up - x) <= (double)x / 64.0);
        }
        v = v * 3 / 2 + 1;
    }
}

static void test_metrics_quantile_empty(void **state)
{
    struct chat_hist *h = hist_new();

    (void)state;
    assert_int_equal(chat_hist_quantile(h, 0.5), 0);
    assert_int_equal(chat_hist_quantile(h, 1.0), 0);
    chat_free(h);
}

static void test_metrics_quantile_single_value(void **state)
{
    struct chat_hist *h = hist_new();

    (void)state;
    chat_hist_record(h, 12345);
    /* the bucket's upper edge is capped by the true maximum */
    assert_int_equal(chat_hist_quantile(h, 0.0), 12345);
    assert_int_equal(chat_hist_quantile(h, 0.5), 12345);
    assert_int_equal(chat_hist_quantile(h, 0.999), 12345);
    assert_int_equal(chat_hist_quantile(h, 1.0), 12345);
    chat_free(h);
}

static void test_metrics_quantile_uniform(void **state)
{
    static const double qs[] = {0.1, 0.5, 0.9, 0.99};
    struct chat_hist *h = hist_new();

    (void)state;
    for (uint64_t v = 1; v <= 10000; v++)
        chat_hist_record(h, v);
    assert_int_equal(atomic_load(&h->count), 10000);
    assert_int_equal(atomic_load(&h->sum), 10000ull * 10001 / 2);
    assert_int_equal(atomic_load(&h->max), 10000);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double want = qs[i] * 10000;
        uint64_t got = chat_hist_quantile(h, qs[i]);
        if ((double)got < want || (double)got > want * (1 + 1.0 / 16) + 1)
            fail_msg("q%.2f: got %llu want ~%.0f", qs[i], (unsigned long long)got, want);
    }
    assert_int_equal(chat_hist_quantile(h, 1.0), 10000);
    assert_int_equal(chat_hist_quantile(h, 2.0), 10000);
    assert_int_equal(chat_hist_quantile(h, -1.0), 1);
    chat_free(h);
}

static void test_metrics_quantile_bimodal(void **state)
{
    struct chat_hist *h = hist_new();

    (void)state;
    for (int i = 0; i < 990; i++)
        chat_hist_record(h, 100);
    for (int i = 0; i < 10; i++)
        chat_hist_record(h, 1000000);
    assert_true(chat_hist_quantile(h, 0.5) >= 100 && chat_hist_quantile(h, 0.5) <= 103);
    assert_true(chat_hist_quantile(h, 0.98) <= 103);
    assert_int_equal(chat_hist_quantile(h, 0.995), 1000000);
    chat_free(h);
}

static void test_metrics_merge(void **state)
{
    struct chat_hist *a = hist_new(), *b = hist_new();

    (void)state;
    chat_hist_record(a, 5);
    chat_hist_record(a, 50);
    chat_hist_record(b, 500);
    chat_hist_merge(a, b);
    assert_int_equal(atomic_load(&a->count), 3);
    assert_int_equal(atomic_load(&a->sum), 555);
    assert_int_equal(atomic_load(&a->max), 500);
    assert_int_equal(atomic_load(&a->buckets[chat_hist_bucket(500)]), 1);
    assert_int_equal(atomic_load(&b->count), 1); /* source untouched */
    chat_free(a);
    chat_free(b);
}

/* The single-writer record gives the same histogram as the atomic one. */
static void test_metrics_record_1w_same(void **state)
{
    struct chat_hist *a = hist_new(), *b = hist_new();
    uint64_t v = 1;

    (void)state;
    for (int i = 0; i < 5000; i++) {
        v = v * 6364136223846793005ULL + 1442695040888963407ULL;
        chat_hist_record(a, (v >> 40) % 2000000);
        chat_hist_record_1w(b, (v >> 40) % 2000000);
    }
    assert_int_equal(atomic_load(&a->count), atomic_load(&b->count));
    assert_int_equal(atomic_load(&a->sum), atomic_load(&b->sum));
    assert_int_equal(atomic_load(&a->max), atomic_load(&b->max));
    for (int i = 0; i < CHAT_HIST_BUCKETS; i++)
        assert_int_equal(atomic_load(&a->buckets[i]), atomic_load(&b->buckets[i]));
    assert_int_equal(chat_hist_quantile(a, 0.99), chat_hist_quantile(b, 0.99));
    chat_free(a);
    chat_free(b);
}

static void test_metrics_render_counter_gauge(void **state)
{
    atomic_llong sent = 0, conns = 0;
    const struct chat_metric_def defs[] = {
        {"chat_test_sent_total", "Frames sent.", CHAT_METRIC_COUNTER, &sent},
        {"chat_test_connections", "Open connections.", CHAT_METRIC_GAUGE, &conns},
    };
    struct chat_buf b;

    (void)state;
    chat_metric_add(&sent, 41);
    chat_metric_add(&sent, 1);
    chat_metric_set(&conns, -3);
    assert_int_equal(chat_metric_get(&sent), 42);
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_metrics_render(&b, defs, 2), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), "# HELP chat_test_sent_total Frames sent.\n"
                                           "# TYPE chat_test_sent_total counter\n"
                                           "chat_test_sent_total 42\n"
                                           "# HELP chat_test_connections Open connections.\n"
                                           "# TYPE chat_test_connections gauge\n"
                                           "chat_test_connections -3\n");
    chat_buf_fini(&b);
}

static void test_metrics_render_histogram(void **state)
{
    struct chat_hist *h = hist_new();
    const struct chat_metric_def def = {"chat_test_latency_seconds", "Latency.", CHAT_METRIC_HIST,
                                        h};
    struct chat_buf b;
    char *q;

    (void)state;
    chat_hist_record(h, 100);      /* 0.1 ms */
    chat_hist_record(h, 2000);     /* 2 ms */
    chat_hist_record(h, 3000000);  /* 3 s */
    chat_hist_record(h, 60000000); /* 60 s: only in +Inf */
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_metrics_render(&b, &def, 1), CHAT_OK);
    q = strstr(chat_buf_data(&b), "# HELP chat_test_latency_seconds_quantile ");
    assert_non_null(q);
    /* p50 is the third value (3 s) within its fine bucket; p99 and the max are the 60 s one */
    assert_non_null(strstr(q, "# TYPE chat_test_latency_seconds_quantile gauge\n"
                              "chat_test_latency_seconds_quantile{q=\"0.5\"} 3."));
    assert_non_null(strstr(q, "\nchat_test_latency_seconds_quantile{q=\"0.99\"} 60.000000\n"
                              "chat_test_latency_seconds_quantile{q=\"1\"} 60.000000\n"));
    *q = '\0'; /* the histogram itself: */
    assert_string_equal(chat_buf_data(&b), "# HELP chat_test_latency_seconds Latency.\n"
                                           "# TYPE chat_test_latency_seconds histogram\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.0005\"} 1\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.001\"} 1\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.0025\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.005\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.01\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.025\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.05\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.1\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.25\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"0.5\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"1\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"2.5\"} 2\n"
                                           "chat_test_latency_seconds_bucket{le=\"5\"} 3\n"
                                           "chat_test_latency_seconds_bucket{le=\"10\"} 3\n"
                                           "chat_test_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                                           "chat_test_latency_seconds_sum 63.002100\n"
                                           "chat_test_latency_seconds_count 4\n");
    chat_buf_fini(&b);
    chat_free(h);
}

/* A value well inside each exported bucket is counted at that le and not below it. */
static void test_metrics_render_le_edges(void **state)
{
    static const double le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    struct chat_hist *h = hist_new();
    const struct chat_metric_def def = {"x", "x", CHAT_METRIC_HIST, h};
    struct chat_buf b;

    (void)state;
    for (size_t i = 0; i < sizeof(le) / sizeof(le[0]); i++)
        chat_hist_record(h, (uint64_t)(le[i] * 1e6 * 0.9)); /* 10% below the edge */
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_metrics_render(&b, &def, 1), CHAT_OK);
    for (size_t i = 0; i < sizeof(le) / sizeof(le[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "x_bucket{le=\"%g\"} %zu\n", le[i], i + 1);
        if (!strstr(chat_buf_data(&b), line))
            fail_msg("missing '%s' in\n%s", line, chat_buf_data(&b));
    }
    chat_buf_fini(&b);
    chat_free(h);
}

static void test_metrics_render_too_big(void **state)
{
    atomic_llong c = 7;
    const struct chat_metric_def def = {"chat_test_total", "help", CHAT_METRIC_COUNTER, &c};
    struct chat_buf b;

    (void)state;
    chat_buf_init(&b, 0, 16);
    assert_int_equal(chat_metrics_render(&b, &def, 1), CHAT_ETOOBIG);
    chat_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_bucket_small_values_exact),
        cmocka_unit_test(test_metrics_bucket_edges),
        cmocka_unit_test(test_metrics_bucket_error_bound),
        cmocka_unit_test(test_metrics_quantile_empty),
        cmocka_unit_test(test_metrics_quantile_single_value),
        cmocka_unit_test(test_metrics_quantile_uniform),
        cmocka_unit_test(test_metrics_quantile_bimodal),
        cmocka_unit_test(test_metrics_merge),
        cmocka_unit_test(test_metrics_record_1w_same),
        cmocka_unit_test(test_metrics_render_counter_gauge),
        cmocka_unit_test(test_metrics_render_histogram),
        cmocka_unit_test(test_metrics_render_le_edges),
        cmocka_unit_test(test_metrics_render_too_big),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
