/* report.c - the result object (JSON), the readable table printed from it, and the latency
 * plot drawn by gnuplot (see bench.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <jansson.h>
#include <math.h>

#include "chat/config.h"
#include "chat/log.h"
#include "chat/mem.h"

#include "bench.h"

static const char *const exit_names[] = {"ok", "incorrect", "usage", "no-connection/time-out"};

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

void bench_report_hist(json_t *obj, const char *key, const struct chat_hist *h)
{
    unsigned long long n = atomic_load(&h->count);

    if (!n) {
        json_object_set_new(obj, key, json_pack("{s:i}", "count", 0));
        return;
    }
    json_object_set_new(
        obj, key,
        json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "count", (json_int_t)n, "p50",
                  ms(chat_hist_quantile(h, 0.5)), "p90", ms(chat_hist_quantile(h, 0.9)), "p99",
                  ms(chat_hist_quantile(h, 0.99)), "p999", ms(chat_hist_quantile(h, 0.999)), "max",
                  ms(atomic_load(&h->max)), "mean", ms(atomic_load(&h->sum) / n)));
}

static json_t *params_json(const struct bench *b)
{
    json_t *p = json_object();

    for (size_t i = 0; i < bench_nopts; i++) {
        const struct chat_cfg_opt *o = &bench_opts[i];
        const char *field = (const char *)&b->cfg + o->off;
        if (o->flags & CHAT_CFG_SECRET)
            continue;
        switch (o->type) {
        case CHAT_CFG_STR:
            json_object_set_new(p, o->name, json_string(*(char *const *)(const void *)field));
            break;
        case CHAT_CFG_INT:
            json_object_set_new(p, o->name, json_integer(*(const int *)(const void *)field));
            break;
        case CHAT_CFG_BOOL:
            json_object_set_new(p, o->name, json_boolean(*(const bool *)(const void *)field));
            break;
        }
    }
    return p;
}

static json_t *errors_json(const struct bench *b)
{
    json_t *codes = json_object(), *closes = json_object();

    for (int e = 0; e <= CHAT_ERR__COUNT; e++) {
        unsigned long long n = 0;
        for (int i = 0; i < b->nworkers; i++)
            n += atomic_load(&b->workers[i].err_codes[e]);
        if (n)
            json_object_set_new(
                codes, e < CHAT_ERR__COUNT ? chat_errcode_name((enum chat_errcode)e) : "unknown",
                json_integer((json_int_t)n));
    }
    for (int s = 0; s < BENCH_CLOSE_SLOTS; s++) {
        unsigned long long n = 0;
        char name[16];
        for (int i = 0; i < b->nworkers; i++)
            n += atomic_load(&b->workers[i].close_codes[s]);
        if (!n)
            continue;
        if (s < 16)
            snprintf(name, sizeof(name), "%d", 1000 + s);
        else if (s < 32)
            snprintf(name, sizeof(name), "%d", 4000 + s - 16);
        else
            snprintf(name, sizeof(name), "other");
        json_object_set_new(closes, name, json_integer((json_int_t)n));
    }
    return json_pack("{s:o, s:o, s:I, s:b, s:b}", "codes", codes, "close_codes", closes,
                     "proto_errors", (json_int_t)bench_total(b, BENCH_C_proto_errors), "timed_out",
                     b->timed_out, "interrupted", b->interrupted);
}

static json_t *timeline_json(const struct bench *b)
{
    static const char *const phase_names[] = {"init", "open", "run", "drain", "done"};
    json_t *a = json_array();

    for (size_t i = 0; i < b->nsamples; i++) {
        const struct bench_sample *s = &b->samples[i];
        json_array_append_new(
            a, json_pack("{s:f, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "t", s->t, "phase",
                         phase_names[s->phase], "open", s->open, "deliv_per_s", s->rate[0],
                         "acked_per_s", s->rate[1], "sent_per_s", s->rate[2], "cycles_per_s",
                         s->rate[3], "p50_ms", s->p50, "p99_ms", s->p99, "max_ms", s->max));
    }
    return a;
}

static json_t *windows_json(const struct bench *b)
{
    json_t *a = json_array();

    for (size_t i = 0; i < b->nwindows; i++) {
        const struct bench_window *w = &b->windows[i];
        json_array_append_new(a, json_pack("{s:f, s:I, s:f, s:f, s:f, s:f, s:f}", "t_end", w->t_end,
                                           "count", (json_int_t)w->count, "p50_ms", w->p50,
                                           "p99_ms", w->p99, "p999_ms", w->p999, "max_ms", w->max,
                                           "acked_per_s", w->acked_per_s));
    }
    return a;
}

json_t *bench_report_build(struct bench *b, int status)
{
    json_t *res = json_object(), *targets = json_array(), *conns;
    struct chat_hist *h = chat_xcalloc(1, sizeof(*h));
    char started[32];
    double open_s = b->open_done_ns > b->t0_ns ? (double)(b->open_done_ns - b->t0_ns) / 1e9 : 0;
    unsigned long long opened = bench_total(b, BENCH_C_conn_open);
    struct tm tm;

    gmtime_r(&b->started_wall, &tm);
    strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
    for (int i = 0; i < b->ntargets; i++)
        json_array_append_new(targets, json_string(b->targets[i].url));
    json_object_set_new(res, "tool", json_string("chat-bench"));
    json_object_set_new(res, "scenario", json_string(b->sc_ops->name));
    json_object_set_new(res, "run_id", json_string(b->run_id));
    json_object_set_new(res, "started", json_string(started));
    json_object_set_new(res, "exit", json_integer(status));
    json_object_set_new(res, "result", json_string(exit_names[status & 3]));
    json_object_set_new(res, "params", params_json(b));
    json_object_set_new(res, "targets", targets);
    json_object_set_new(
        res, "timing",
        json_pack(
            "{s:f, s:f, s:f, s:f}", "open_s", open_s, "run_s",
            b->run_end_ns > b->run_start_ns ? (double)(b->run_end_ns - b->run_start_ns) / 1e9 : 0,
            "total_s", (double)(bench_now_ns() - b->t0_ns) / 1e9, "window_cpu_s", b->window_cpu_s));
    conns = json_pack("{s:I, s:I, s:I, s:I, s:I, s:f}", "started",
                      (json_int_t)bench_total(b, BENCH_C_conn_started), "open", (json_int_t)opened,
                      "failed", (json_int_t)bench_total(b, BENCH_C_conn_failed), "dropped",
                      (json_int_t)bench_total(b, BENCH_C_conn_dropped), "joined",
                      (json_int_t)bench_total(b, BENCH_C_joined), "connect_per_s",
                      open_s > 0 && b->open_label ? (double)opened / open_s : 0);
    bench_hist_total(b, BENCH_H_connect, h);
    bench_report_hist(conns, "connect_ms", h);
    bench_hist_total(b, BENCH_H_join, h);
    bench_report_hist(conns, "join_ms", h);
    json_object_set_new(res, "conns", conns);
    if (b->sc_ops->report)
        b->sc_ops->report(b, res);
    bench_half_open_report(b, res);
    json_object_set_new(res, "errors", errors_json(b));
    json_object_set_new(res, "timeline", timeline_json(b));
    if (b->cfg.window > 0)
        json_object_set_new(res, "windows", windows_json(b));
    chat_free(h);
    return res;
}

/* ---- the table ---- */

static json_t *jget(json_t *o, const char *path)
{
    char key[64];

    while (o && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        o = json_object_get(o, key);
        path += n + (path[n] == '.');
    }
    return o;
}

static double jnum(json_t *o, const char *path)
{
    return json_number_value(jget(o, path));
}

static void hist_line(FILE *out, const char *label, json_t *h)
{
    if (!h || json_integer_value(json_object_get(h, "count")) == 0)
        return;
    fprintf(out, "  %-13s p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms  (n=%.0f)\n", label,
            jnum(h, "p50"), jnum(h, "p90"), jnum(h, "p99"), jnum(h, "p999"), jnum(h, "max"),
            jnum(h, "count"));
}

static void print_params(FILE *out, json_t *res)
{
    static const struct {
        const char *scenario, *keys;
    } shown[] = {
        {"fanout", "conns rooms room-mix senders rate size duration warmup drain ramp threads"},
        {"churn", "conns rooms rate duration drain threads"},
        {"idle", "conns rooms duration warmup ramp threads pids"},
        {"reconnect", "conns rooms room-mix senders rate size duration warmup drain threads "
                      "reconnect-every-ms reconnect-share reconnect-all-at-ms"},
    };
    const char *sc = json_string_value(json_object_get(res, "scenario")), *keys = "";
    json_t *p = json_object_get(res, "params");

    for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
        if (sc && strcmp(sc, shown[i].scenario) == 0)
            keys = shown[i].keys;
    fprintf(out, "  %-13s", "parameters");
    while (*keys) {
        char key[32];
        size_t n = strcspn(keys, " ");
        json_t *v;
        if (n >= sizeof(key))
            break;
        memcpy(key, keys, n);
        key[n] = '\0';
        keys += n + (keys[n] == ' ');
        v = json_object_get(p, key);
        if (json_is_integer(v))
            fprintf(out, " %s=%lld", key, (long long)json_integer_value(v));
        else if (json_is_string(v) && json_string_length(v))
            fprintf(out, " %s=%s", key, json_string_value(v));
    }
    fputc('\n', out);
}

static void print_errors(FILE *out, json_t *res)
{
    json_t *codes = jget(res, "errors.codes"), *closes = jget(res, "errors.close_codes"), *v;
    const char *k;

    if (json_object_size(codes) == 0 && json_object_size(closes) == 0 &&
        jnum(res, "errors.proto_errors") == 0)
        return;
    fprintf(out, "  %-13s", "errors");
    json_object_foreach (codes, k, v) {
        fprintf(out, " %s=%lld", k, (long long)json_integer_value(v));
    }
    json_object_foreach (closes, k, v) {
        fprintf(out, " close-%s=%lld", k, (long long)json_integer_value(v));
    }
    fprintf(out, " unexpected-frames=%.0f\n", jnum(res, "errors.proto_errors"));
}

static void print_scenario(FILE *out, json_t *res)
{
    json_t *v;

    if (jget(res, "sends")) {
        fprintf(out,
                "  %-13s %.0f sent by %.0f senders, %.0f acked (%.1f/s measured), refused %.0f, "
                "errors %.0f, throttled %.0f\n",
                "sends", jnum(res, "sends.sent"), jnum(res, "sends.senders"),
                jnum(res, "sends.acked"), jnum(res, "sends.acked_per_s"),
                jnum(res, "sends.refused"), jnum(res, "sends.errors"),
                jnum(res, "sends.throttled"));
        hist_line(out, "send->ack", jget(res, "ack_latency_ms"));
        fprintf(out, "  %-13s %.0f received (%.1f/s measured), %.0f expected, %.0f foreign\n",
                "deliveries", jnum(res, "deliveries.total"), jnum(res, "deliveries.per_s"),
                jnum(res, "deliveries.expected"), jnum(res, "deliveries.foreign"));
        hist_line(out, "send->receipt", jget(res, "latency_ms"));
        fprintf(out, "  %-13s lost %.0f, duplicated %.0f, reordered %.0f, gaps %.0f: %s\n",
                "correctness", jnum(res, "correctness.lost"), jnum(res, "correctness.duplicated"),
                jnum(res, "correctness.reordered"), jnum(res, "correctness.gaps"),
                json_is_true(jget(res, "correctness.ok")) ? "OK" : "FAILED");
    }
    if ((v = jget(res, "reconnect"))) {
        fprintf(out,
                "  %-13s %.0f cut (%.0f at once), rejoined with since: %.0f recovered, %.0f not "
                "recovered, %.0f failed; %.0f replayed\n",
                "reconnects", jnum(v, "cut"), jnum(v, "cut_at_once"), jnum(v, "recovered"),
                jnum(v, "not_recovered"), jnum(v, "failed"), jnum(v, "replayed"));
        hist_line(out, "cut->joined", json_object_get(v, "recovery_ms"));
    }
    if (jget(res, "cycles")) {
        fprintf(out,
                "  %-13s %.0f completed of %.0f started (%.1f/s, target %.0f/s), failed %.0f, "
                "skipped %.0f\n",
                "cycles", jnum(res, "cycles.completed"), jnum(res, "cycles.started"),
                jnum(res, "cycles.per_s"), jnum(res, "cycles.target_per_s"),
                jnum(res, "cycles.failed"), jnum(res, "cycles.skipped"));
        hist_line(out, "leave", jget(res, "phases_ms.leave"));
        hist_line(out, "close", jget(res, "phases_ms.close"));
        hist_line(out, "whole cycle", jget(res, "phases_ms.cycle"));
    }
    if ((v = jget(res, "rss"))) {
        json_t *p;
        size_t i;
        json_array_foreach (json_object_get(v, "pids"), i, p) {
            fprintf(out, "  %-13s pid %.0f: %.0f -> %.0f KiB (%+.0f KiB)\n", i ? "" : "server RSS",
                    jnum(p, "pid"), jnum(p, "before_kb"), jnum(p, "after_kb"), jnum(p, "delta_kb"));
        }
        if (json_object_get(v, "bytes_per_conn"))
            fprintf(out, "  %-13s %.0f bytes per idle connection (%.0f connections, %.0f s)\n",
                    "server", jnum(v, "bytes_per_conn"), jnum(v, "conns"), jnum(v, "held_s"));
        fprintf(out, "  %-13s %.0f bytes per connection\n", "chat-bench",
                jnum(v, "client_bytes_per_conn"));
    }
}

void bench_report_table(FILE *out, json_t *res)
{
    json_t *t;
    size_t i;

    fprintf(out, "chat-bench %s (run %s, %s): exit %lld, %s\n",
            json_string_value(json_object_get(res, "scenario")),
            json_string_value(json_object_get(res, "run_id")),
            json_string_value(json_object_get(res, "started")),
            (long long)json_integer_value(json_object_get(res, "exit")),
            json_string_value(json_object_get(res, "result")));
    fprintf(out, "  %-13s", "targets");
    json_array_foreach (json_object_get(res, "targets"), i, t) {
        fprintf(out, "%s%s", i ? ", " : " ", json_string_value(t));
    }
    fputc('\n', out);
    print_params(out, res);
    fprintf(out, "  %-13s %.0f open of %.0f started, %.0f joined; failed %.0f, dropped %.0f",
            "connections", jnum(res, "conns.open"), jnum(res, "conns.started"),
            jnum(res, "conns.joined"), jnum(res, "conns.failed"), jnum(res, "conns.dropped"));
    if (jnum(res, "conns.connect_per_s") > 0)
        fprintf(out, "; opened in %.2f s (%.1f connects/s)", jnum(res, "timing.open_s"),
                jnum(res, "conns.connect_per_s"));
    fputc('\n', out);
    hist_line(out, "connect", jget(res, "conns.connect_ms"));
    hist_line(out, "join", jget(res, "conns.join_ms"));
    print_scenario(out, res);
    print_errors(out, res);
    fflush(out);
}

/* ---- the plot ---- */

static bool have_gnuplot(void)
{
    const char *path = getenv("PATH");
    char dir[512];

    while (path && *path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof(dir) - 10) {
            memcpy(dir, path, n);
            snprintf(dir + n, sizeof(dir) - n, "/gnuplot");
            if (access(dir, X_OK) == 0)
                return true;
        }
        path += n + (path[n] == ':');
    }
    return false;
}

/* Latency by percentile: x = 1 / (1 - q) on a log axis (HdrHistogram style). */
static void plot_percentiles(FILE *g, const struct chat_hist *h)
{
    unsigned long long n = atomic_load(&h->count);

    for (int k = 0; k <= 60; k++) {
        double x = pow(10.0, k / 10.0), q = 1.0 - 1.0 / x;
        if (x > (double)n)
            break;
        fprintf(g, "%g %.3f\n", x, ms(chat_hist_quantile(h, q)));
    }
    fprintf(g, "%g %.3f\ne\n", (double)n, ms(atomic_load(&h->max)));
}

enum plot_what { PLOT_P50, PLOT_P99, PLOT_DELIV, PLOT_CYCLES, PLOT_OPEN };

static void plot_series(FILE *g, const struct bench *b, enum plot_what what)
{
    for (size_t i = 0; i < b->nsamples; i++) {
        const struct bench_sample *s = &b->samples[i];
        double v = what == PLOT_P50      ? s->p50
                   : what == PLOT_P99    ? s->p99
                   : what == PLOT_DELIV  ? s->rate[0]
                   : what == PLOT_CYCLES ? s->rate[3]
                                         : s->open;
        if (what <= PLOT_P99 && v <= 0)
            continue; /* no measured deliveries in that second (opening, warmup, drain) */
        fprintf(g, "%.2f %.3f\n", s->t, v);
    }
    fprintf(g, "e\n");
}

/* Right panel: what happened over time, by scenario. */
static void plot_timeline(FILE *g, const struct bench *b)
{
    fprintf(g, "unset logscale x\nset xtics autofreq\nset xrange [*:*]\nset xlabel 'seconds'\n"
               "set title 'over time'\n");
    if (b->sc_ops == &bench_fanout || b->sc_ops == &bench_reconnect) {
        fprintf(g, "set ylabel 'ms'\nset ytics nomirror\nset y2tics\nset y2label 'deliveries/s'\n"
                   "set y2range [0:*]\n"
                   "plot '-' using 1:2 with lines title 'p50 ms', '-' using 1:2 with lines "
                   "title 'p99 ms', '-' using 1:2 axes x1y2 with lines title 'deliveries/s'\n");
        plot_series(g, b, PLOT_P50);
        plot_series(g, b, PLOT_P99);
        plot_series(g, b, PLOT_DELIV);
    } else if (b->sc_ops == &bench_churn) {
        fprintf(g, "set ylabel 'cycles/s'\nplot '-' using 1:2 with lines title 'completed "
                   "cycles/s'\n");
        plot_series(g, b, PLOT_CYCLES);
    } else {
        fprintf(g, "set ylabel 'connections'\nplot '-' using 1:2 with lines title 'open "
                   "connections'\n");
        plot_series(g, b, PLOT_OPEN);
    }
}

void bench_report_plot(struct bench *b, const char *png)
{
    struct chat_hist *h = chat_xcalloc(1, sizeof(*h));
    const char *what = "send -> receipt";
    FILE *g;
    int st;

    if (strchr(png, '\'') || strchr(png, '\n')) {
        chat_log(CHAT_LOG_WARN, "--plot: the path may not hold quotes or newlines; no plot");
        goto out;
    }
    if (!have_gnuplot()) {
        chat_log(CHAT_LOG_WARN, "gnuplot not found (apt-get install gnuplot-nox): no plot");
        goto out;
    }
    bench_hist_total(b, BENCH_H_latency, h);
    if (!atomic_load(&h->count)) {
        bench_hist_total(b, BENCH_H_cycle, h);
        what = "whole cycle";
    }
    if (!atomic_load(&h->count)) {
        bench_hist_total(b, BENCH_H_connect, h);
        what = "connect -> hello";
    }
    g = popen("gnuplot", "w");
    if (!g) {
        chat_log(CHAT_LOG_WARN, "cannot run gnuplot: no plot");
        goto out;
    }
    fprintf(g, "set terminal pngcairo size 1280,480 font 'sans,10'\nset output '%s'\n", png);
    fprintf(g, "set multiplot layout 1,2 title 'chat-bench %s, run %s'\n", b->sc_ops->name,
            b->run_id);
    fprintf(g, "set grid\nset key top left\nset logscale x 10\nset xrange [1:*]\n"
               /* tic labels are formats to gnuplot: %%%% prints %% which gnuplot shows as % */
               "set xtics ('0%%%%' 1, '90%%%%' 10, '99%%%%' 100, '99.9%%%%' 1000, "
               "'99.99%%%%' 10000, '99.999%%%%' 100000, '99.9999%%%%' 1000000)\n"
               "set xlabel 'percentile'\nset ylabel 'ms'\nset yrange [0:*]\n"
               "set title 'latency by percentile'\n");
    fprintf(g, "plot '-' using 1:2 with linespoints pt 7 ps 0.5 title '%s'\n", what);
    plot_percentiles(g, h);
    plot_timeline(g, b);
    fprintf(g, "unset multiplot\n");
    st = pclose(g);
    if (st != 0)
        chat_log(CHAT_LOG_WARN, "gnuplot exited with status %d: plot %s may be missing", st, png);
    else
        chat_log(CHAT_LOG_INFO, "plot written: %s", png);
out:
    chat_free(h);
}
