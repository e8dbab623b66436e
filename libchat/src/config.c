#include "chat/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/log.h"
#include "chat/mem.h"

int chat_parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v;

    /* strtoll would skip leading white space and accept a '+': only [-]digits are integers */
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return CHAT_EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || !end || *end != '\0' || v < min || v > max)
        return CHAT_EINVAL;
    *out = v;
    return CHAT_OK;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return CHAT_OK;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return CHAT_OK;
        }
    }
    return CHAT_EINVAL;
}

/* Sets one option from text; prints an error naming the key and source on failure. */
static int set_opt(const struct chat_cfg_opt *o, void *cfg, const char *val, const char *src)
{
    char *field = (char *)cfg + o->off;
    long long v;
    bool b;

    switch (o->type) {
    case CHAT_CFG_STR: {
        char **sp = (char **)(void *)field;
        chat_free(*sp);
        *sp = chat_xstrdup(val);
        return CHAT_OK;
    }
    case CHAT_CFG_INT:
        if (chat_parse_ll(val, o->min, o->max, &v) != CHAT_OK) {
            fprintf(
                stderr, "config error: %s (%s, from %s): '%s' is not an integer in [%lld, %lld]\n",
                o->env, o->name, src, (o->flags & CHAT_CFG_SECRET) ? "***" : val, o->min, o->max);
            return CHAT_EINVAL;
        }
        *(int *)(void *)field = (int)v;
        return CHAT_OK;
    case CHAT_CFG_BOOL:
        if (parse_bool(val, &b) != CHAT_OK) {
            fprintf(stderr, "config error: %s (%s, from %s): '%s' is not a boolean\n", o->env,
                    o->name, src, val);
            return CHAT_EINVAL;
        }
        *(bool *)(void *)field = b;
        return CHAT_OK;
    }
    return CHAT_EINVAL;
}

static void
print_help(const struct chat_cfg_opt *opts, size_t n, const char *prog, const char *summary)
{
    printf("Usage: %s [--option=value ...]\n%s\n\nOptions (flag / environment, default):\n", prog,
           summary);
    for (size_t i = 0; i < n; i++) {
        const struct chat_cfg_opt *o = &opts[i];
        printf("  --%-24s %s\n      env %s", o->name, o->help, o->env);
        if (o->type == CHAT_CFG_INT)
            printf(", integer %lld..%lld", o->min, o->max);
        else if (o->type == CHAT_CFG_BOOL)
            printf(", boolean");
        if (o->flags & CHAT_CFG_SECRET)
            printf(", secret");
        if (o->flags & CHAT_CFG_REQUIRED)
            printf(", required");
        printf(", default '%s'\n", (o->flags & CHAT_CFG_SECRET) && o->def[0] ? "***" : o->def);
    }
    printf("  --help                   this text\n");
}

static const struct chat_cfg_opt *
find_flag(const struct chat_cfg_opt *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

int chat_cfg_load(const struct chat_cfg_opt *opts,
                  size_t nopts,
                  void *cfg,
                  int argc,
                  char **argv,
                  const char *summary)
{
    int errors = 0;

    for (size_t i = 0; i < nopts; i++)
        if (set_opt(&opts[i], cfg, opts[i].def, "default") != CHAT_OK)
            errors++; /* a bad built-in default is a programmer error, but report it */
    for (size_t i = 0; i < nopts; i++) {
        const char *v = getenv(opts[i].env);
        if (v && set_opt(&opts[i], cfg, v, "environment") != CHAT_OK)
            errors++;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val, *eq;
        const struct chat_cfg_opt *o;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(opts, nopts, argv[0], summary);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "config error: unexpected argument '%s'\n", a);
            errors++;
            continue;
        }
        a += 2;
        eq = strchr(a, '=');
        o = find_flag(opts, nopts, a, eq ? (size_t)(eq - a) : strlen(a));
        if (!o) {
            fprintf(stderr, "config error: unknown option '--%.*s' (see --help)\n",
                    (int)(eq ? eq - a : (long)strlen(a)), a);
            errors++;
            continue;
        }
        if (eq) {
            val = eq + 1;
        } else if (o->type == CHAT_CFG_BOOL) {
            val = "true";
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "config error: --%s needs a value\n", o->name);
            errors++;
            continue;
        }
        if (set_opt(o, cfg, val, "command line") != CHAT_OK)
            errors++;
    }
    for (size_t i = 0; i < nopts; i++) {
        const struct chat_cfg_opt *o = &opts[i];
        if (o->type == CHAT_CFG_STR && (o->flags & CHAT_CFG_REQUIRED)) {
            char *s = *(char **)(void *)((char *)cfg + o->off);
            if (!s || !*s) {
                fprintf(stderr, "config error: %s (--%s) is required\n", o->env, o->name);
                errors++;
            }
        }
    }
    return errors ? CHAT_EINVAL : CHAT_OK;
}

void chat_cfg_dump(const struct chat_cfg_opt *opts, size_t nopts, const void *cfg)
{
    for (size_t i = 0; i < nopts; i++) {
        const struct chat_cfg_opt *o = &opts[i];
        const char *field = (const char *)cfg + o->off;
        switch (o->type) {
        case CHAT_CFG_STR: {
            const char *s = *(char *const *)(const void *)field;
            chat_log(CHAT_LOG_INFO, "config %s=%s", o->env,
                     (o->flags & CHAT_CFG_SECRET) ? (s && *s ? "***" : "") : (s ? s : ""));
            break;
        }
        case CHAT_CFG_INT:
            chat_log(CHAT_LOG_INFO, "config %s=%d", o->env, *(const int *)(const void *)field);
            break;
        case CHAT_CFG_BOOL:
            chat_log(CHAT_LOG_INFO, "config %s=%s", o->env,
                     *(const bool *)(const void *)field ? "true" : "false");
            break;
        }
    }
}

void chat_cfg_free(const struct chat_cfg_opt *opts, size_t nopts, void *cfg)
{
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].type == CHAT_CFG_STR) {
            char **sp = (char **)(void *)((char *)cfg + opts[i].off);
            CHAT_FREE(*sp);
        }
}
