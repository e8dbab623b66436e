/* chat/config.h - table-driven configuration: one table per service drives parsing of the
 * environment (CHAT_*) and --flags, range validation, --help and the redacted startup dump.
 *
 * Sources, later wins: built-in default, environment, command line (--name=value or --name value).
 * Every error is reported (to stderr) before chat_cfg_load() returns.
 * Thread-safety: call once at startup; the filled struct is read-only afterwards. */
#ifndef CHAT_CONFIG_H
#define CHAT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "chat/err.h"

enum chat_cfg_type {
    CHAT_CFG_STR,  /* char * field, owned (freed by chat_cfg_free) */
    CHAT_CFG_INT,  /* int field, range [min, max] */
    CHAT_CFG_BOOL, /* bool field: 1/0/true/false/yes/no/on/off */
};

enum chat_cfg_flags {
    CHAT_CFG_SECRET = 1 << 0,   /* value redacted in dumps */
    CHAT_CFG_REQUIRED = 1 << 1, /* empty string is an error */
};

struct chat_cfg_opt {
    const char *name; /* flag name without dashes: "http-port" */
    const char *env;  /* environment variable: "CHAT_HTTP_PORT" */
    enum chat_cfg_type type;
    long long min, max; /* CHAT_CFG_INT only */
    const char *def;    /* default, as text */
    size_t off;         /* offsetof(field) in the service's config struct */
    unsigned flags;     /* enum chat_cfg_flags */
    const char *help;   /* one line for --help */
};

/* Fills cfg from defaults, environment and argv.
 * Returns CHAT_OK; 1 when --help was printed (caller exits 0); CHAT_EINVAL when any value was
 * invalid (every error already printed to stderr; caller exits 2). On CHAT_EINVAL the struct
 * may hold partial values: call chat_cfg_free() anyway. */
CHAT_NODISCARD int chat_cfg_load(const struct chat_cfg_opt *opts,
                                 size_t nopts,
                                 void *cfg,
                                 int argc,
                                 char **argv,
                                 const char *summary);

/* Logs one line per option at INFO with secrets redacted. */
void chat_cfg_dump(const struct chat_cfg_opt *opts, size_t nopts, const void *cfg);

/* Frees owned strings; NULL-safe and idempotent. */
void chat_cfg_free(const struct chat_cfg_opt *opts, size_t nopts, void *cfg);

/* Strict integer parse: whole string, base 10, within [min, max]. CHAT_OK or CHAT_EINVAL. */
CHAT_NODISCARD int chat_parse_ll(const char *s, long long min, long long max, long long *out);

#define CHAT_CFG_COUNT(t) (sizeof(t) / sizeof((t)[0]))

#endif
