/* chat/log.h - one-line logs to stderr: `ts level svc=NAME pid=N message key=value...`.
 *
 * The chat_log() macro checks the level before evaluating its arguments. Never log message
 * bodies, tokens or passwords. Thread-safety: chat_log_init() once at startup before threads;
 * logging itself is thread-safe (each line is one write(2)). */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

enum chat_log_level {
    CHAT_LOG_DEBUG = 0,
    CHAT_LOG_INFO = 1,
    CHAT_LOG_WARN = 2,
    CHAT_LOG_ERROR = 3,
};

extern int chat__log_level; /* written once by chat_log_init() */

/* Sets the service name (borrowed: must outlive logging) and minimum level. */
void chat_log_init(const char *svc, int level);

/* Parses "debug|info|warn|error"; returns the level or -1. */
int chat_log_level_parse(const char *s);

void chat_log_raw(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define chat_log(level, ...)                    \
    do {                                        \
        if ((level) >= chat__log_level)         \
            chat_log_raw((level), __VA_ARGS__); \
    } while (0)

/* A rate limit for a log line that can repeat many times a second (a failed send during an
 * outage): chat_log_every() says whether to log now (at most once per interval_ms) and how
 * many lines were suppressed since the last one, so the line can say "N more suppressed".
 * A limiter belongs to one thread (zero-initialise it). */
struct chat_log_limit {
    long long next_ms; /* monotonic ms before which lines are suppressed */
    long suppressed;   /* since the last line logged */
};

/* True when a line may be logged now; *suppressed gets the count skipped since the last one. */
int chat_log_every(struct chat_log_limit *l, int interval_ms, long *suppressed);

/* Routes libwebsockets' log lines into our sink (call after chat_log_init). */
void chat_log_bridge_lws(void);

#endif
