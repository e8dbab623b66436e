#include "chat/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sys/types.h>
#include <unistd.h>

#include <libwebsockets.h>

int chat__log_level = CHAT_LOG_INFO;
static const char *log_svc = "chat";

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void chat_log_init(const char *svc, int level)
{
    log_svc = svc;
    chat__log_level = level;
}

int chat_log_level_parse(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* the format attribute lets the compiler check fmt at the callers (clang's -Wformat-nonliteral) */
__attribute__((format(printf, 2, 0))) static void vlog(int level, const char *fmt, va_list ap)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;

    if (level < CHAT_LOG_DEBUG || level > CHAT_LOG_ERROR)
        level = CHAT_LOG_ERROR;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s svc=%s pid=%d ", ts.tv_nsec / 1000000,
                 level_names[level], log_svc, (int)getpid());
    if (k > 0)
        n += (size_t)k;
    if (n < sizeof(line)) {
        k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        if (k > 0)
            n += (size_t)k;
    }
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2; /* truncated: keep it one line */
    /* one line per event: fold embedded newlines */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nothing sensible to do when stderr is gone */
    }
}

void chat_log_raw(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

static void lws_bridge(int level, const char *line)
{
    int lvl = CHAT_LOG_DEBUG;
    size_t n = strlen(line);

    if (level & LLL_ERR)
        lvl = CHAT_LOG_ERROR;
    else if (level & LLL_WARN)
        lvl = CHAT_LOG_WARN;
    else if (level & (LLL_NOTICE | LLL_USER))
        lvl = CHAT_LOG_INFO;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    chat_log(lvl, "lws: %.*s", (int)n, line);
}

void chat_log_bridge_lws(void)
{
    int mask = LLL_ERR | LLL_WARN;
    if (chat__log_level <= CHAT_LOG_DEBUG)
        mask |= LLL_NOTICE | LLL_USER;
    lws_set_log_level(mask, lws_bridge);
}

int chat_log_every(struct chat_log_limit *l, int interval_ms, long *suppressed)
{
    struct timespec ts;
    long long now;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now < l->next_ms) {
        l->suppressed++;
        return 0;
    }
    *suppressed = l->suppressed;
    l->suppressed = 0;
    l->next_ms = now + interval_ms;
    return 1;
}
