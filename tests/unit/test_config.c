/* test_config.c - the table-driven configuration loader (libchat/src/config.c).
 * The environment variables used here all start with CHAT_TEST_ and are cleared around each test;
 * stderr / stdout are captured to count the reported errors and check --help. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "chat/config.h"
#include "chat/log.h"
#include "chat/mem.h"

#include "test_util.h"

struct tcfg {
    char *name;
    int port;
    bool verbose;
    char *secret;
    int count;
    int pin; /* secret integer */
};

static const struct chat_cfg_opt opts[] = {
    {"name", "CHAT_TEST_NAME", CHAT_CFG_STR, 0, 0, "dflt", offsetof(struct tcfg, name), 0,
     "a name"},
    {"port", "CHAT_TEST_PORT", CHAT_CFG_INT, 1, 65535, "8080", offsetof(struct tcfg, port), 0,
     "a port"},
    {"verbose", "CHAT_TEST_VERBOSE", CHAT_CFG_BOOL, 0, 0, "false", offsetof(struct tcfg, verbose),
     0, "a boolean"},
    {"secret", "CHAT_TEST_SECRET", CHAT_CFG_STR, 0, 0, "", offsetof(struct tcfg, secret),
     CHAT_CFG_SECRET | CHAT_CFG_REQUIRED, "a required secret"},
    {"count", "CHAT_TEST_COUNT", CHAT_CFG_INT, -5, 5, "0", offsetof(struct tcfg, count), 0,
     "a small signed integer"},
    {"pin", "CHAT_TEST_PIN", CHAT_CFG_INT, 0, 9999, "1234", offsetof(struct tcfg, pin),
     CHAT_CFG_SECRET, "a secret integer"},
};

#define NOPTS  CHAT_CFG_COUNT(opts)
#define SECRET "s3cr3t-value-that-must-not-leak"

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < NOPTS; i++)
        (void)unsetenv(opts[i].env);
    return 0;
}

/* Loads with argv (NULL-terminated list after the program name); returns the result and the
 * number of "config error:" lines written to stderr (the text in *errtext when not NULL). */
static int load_err(struct tcfg *c, int *nerr, const char *const *args, char **errtext)
{
    char *argv[16] = {NULL};
    struct capture cap;
    char *err;
    int argc = 1, rc;

    argv[0] = chat_xstrdup("prog"); /* argv is mutable: give it copies */
    for (; args && args[argc - 1]; argc++)
        argv[argc] = chat_xstrdup(args[argc - 1]);
    memset(c, 0, sizeof(*c));
    capture_begin(&cap, 2);
    rc = chat_cfg_load(opts, NOPTS, c, argc, argv, "test summary");
    err = capture_end(&cap);
    for (int i = 0; i < argc; i++)
        chat_free(argv[i]);
    *nerr = count_substr(err, "config error:");
    assert_null(strstr(err, SECRET));
    if (errtext)
        *errtext = err;
    else
        chat_free(err);
    return rc;
}

static int load(struct tcfg *c, int *nerr, const char *const *args)
{
    return load_err(c, nerr, args, NULL);
}

static void test_config_defaults(void **state)
{
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_SECRET", SECRET, 1), 0);
    assert_int_equal(load(&c, &nerr, NULL), CHAT_OK);
    assert_int_equal(nerr, 0);
    assert_string_equal(c.name, "dflt");
    assert_int_equal(c.port, 8080);
    assert_false(c.verbose);
    assert_string_equal(c.secret, SECRET);
    assert_int_equal(c.count, 0);
    assert_int_equal(c.pin, 1234);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_config_env_overrides_default(void **state)
{
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_SECRET", SECRET, 1), 0);
    assert_int_equal(setenv("CHAT_TEST_NAME", "from-env", 1), 0);
    assert_int_equal(setenv("CHAT_TEST_PORT", "9000", 1), 0);
    assert_int_equal(setenv("CHAT_TEST_VERBOSE", "yes", 1), 0);
    assert_int_equal(load(&c, &nerr, NULL), CHAT_OK);
    assert_string_equal(c.name, "from-env");
    assert_int_equal(c.port, 9000);
    assert_true(c.verbose);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_config_flags_override_env(void **state)
{
    static const char *const args[] = {"--port=9001", "--name", "from-flag", "--verbose=off",
                                       "--count",     "-5",     NULL};
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_SECRET", SECRET, 1), 0);
    assert_int_equal(setenv("CHAT_TEST_NAME", "from-env", 1), 0);
    assert_int_equal(setenv("CHAT_TEST_PORT", "9000", 1), 0);
    assert_int_equal(setenv("CHAT_TEST_VERBOSE", "true", 1), 0);
    assert_int_equal(load(&c, &nerr, args), CHAT_OK);
    assert_int_equal(nerr, 0);
    assert_int_equal(c.port, 9001);
    assert_string_equal(c.name, "from-flag");
    assert_false(c.verbose);
    assert_int_equal(c.count, -5);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_config_bare_bool_flag_is_true(void **state)
{
    static const char *const args[] = {"--secret=" SECRET, "--verbose", NULL};
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(load(&c, &nerr, args), CHAT_OK);
    assert_true(c.verbose);
    assert_string_equal(c.secret, SECRET);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_config_all_errors_reported(void **state)
{
    static const char *const args[] = {"--count=99",  "--nope=1",  "stray",
                                       "--verbose=2", "--port=0x", NULL};
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_PORT", "abc", 1), 0);      /* 1 */
    assert_int_equal(setenv("CHAT_TEST_VERBOSE", "maybe", 1), 0); /* 2 */
    /* flags: count out of range 3, unknown 4, stray 5, bool 6, port 7; secret missing 8 */
    assert_int_equal(load(&c, &nerr, args), CHAT_EINVAL);
    assert_int_equal(nerr, 8);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_config_error_names_key_and_source(void **state)
{
    struct tcfg c;
    struct capture cap;
    char prog[] = "prog", secret[] = "--secret=x";
    char *argv[] = {prog, secret};
    char *err;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_PORT", "70000", 1), 0);
    memset(&c, 0, sizeof(c));
    capture_begin(&cap, 2);
    assert_int_equal(chat_cfg_load(opts, NOPTS, &c, 2, argv, "s"), CHAT_EINVAL);
    err = capture_end(&cap);
    assert_non_null(strstr(err, "CHAT_TEST_PORT"));
    assert_non_null(strstr(err, "environment"));
    assert_non_null(strstr(err, "70000"));
    assert_non_null(strstr(err, "[1, 65535]"));
    chat_free(err);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_config_int_range(void **state)
{
    static const struct {
        const char *port, *count;
        int errors;
    } cases[] = {
        {"1", "-5", 0},    {"65535", "5", 0}, {"0", "0", 1},
        {"65536", "0", 1}, {"1", "-6", 1},    {"-1", "6", 2},
    };
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_SECRET", SECRET, 1), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(setenv("CHAT_TEST_PORT", cases[i].port, 1), 0);
        assert_int_equal(setenv("CHAT_TEST_COUNT", cases[i].count, 1), 0);
        assert_int_equal(load(&c, &nerr, NULL), cases[i].errors ? CHAT_EINVAL : CHAT_OK);
        assert_int_equal(nerr, cases[i].errors);
        if (!cases[i].errors) {
            assert_int_equal(c.port, strtol(cases[i].port, NULL, 10));
            assert_int_equal(c.count, strtol(cases[i].count, NULL, 10));
        }
        chat_cfg_free(opts, NOPTS, &c);
    }
}

static void test_config_int_strict(void **state)
{
    static const char *const bad[] = {"12x",
                                      " 1",
                                      "1 ",
                                      "",
                                      "+1",
                                      "0x10",
                                      "1e3",
                                      "1.0",
                                      "--1",
                                      "-",
                                      "٣",
                                      "9223372036854775808",
                                      "-9223372036854775809",
                                      "99999999999999999999999"};
    long long v = 42;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (chat_parse_ll(bad[i], LLONG_MIN, LLONG_MAX, &v) != CHAT_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(v, 42); /* untouched on error */
    }
    assert_int_equal(chat_parse_ll(NULL, 0, 1, &v), CHAT_EINVAL);
    assert_int_equal(chat_parse_ll("9223372036854775807", LLONG_MIN, LLONG_MAX, &v), CHAT_OK);
    assert_true(v == LLONG_MAX);
    assert_int_equal(chat_parse_ll("-9223372036854775808", LLONG_MIN, LLONG_MAX, &v), CHAT_OK);
    assert_true(v == LLONG_MIN);
    assert_int_equal(chat_parse_ll("007", 0, 10, &v), CHAT_OK);
    assert_int_equal(v, 7);
    assert_int_equal(chat_parse_ll("-0", 0, 10, &v), CHAT_OK);
    assert_int_equal(v, 0);
}

static void test_config_int_strict_from_env(void **state)
{
    static const char *const bad[] = {"12x", " 1", "", "99999999999999999999"};
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_SECRET", SECRET, 1), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(setenv("CHAT_TEST_PORT", bad[i], 1), 0);
        if (load(&c, &nerr, NULL) != CHAT_EINVAL || nerr != 1)
            fail_msg("CHAT_TEST_PORT='%s' accepted (errors %d)", bad[i], nerr);
        chat_cfg_free(opts, NOPTS, &c);
    }
}

static void test_config_booleans(void **state)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    static const char *const bad[] = {"", "maybe", "2", " true", "truee", "y"};
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_SECRET", SECRET, 1), 0);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(setenv("CHAT_TEST_VERBOSE", yes[i], 1), 0);
        assert_int_equal(load(&c, &nerr, NULL), CHAT_OK);
        assert_true(c.verbose);
        chat_cfg_free(opts, NOPTS, &c);
        assert_int_equal(setenv("CHAT_TEST_VERBOSE", no[i], 1), 0);
        assert_int_equal(load(&c, &nerr, NULL), CHAT_OK);
        assert_false(c.verbose);
        chat_cfg_free(opts, NOPTS, &c);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(setenv("CHAT_TEST_VERBOSE", bad[i], 1), 0);
        if (load(&c, &nerr, NULL) != CHAT_EINVAL || nerr != 1)
            fail_msg("boolean '%s' accepted", bad[i]);
        chat_cfg_free(opts, NOPTS, &c);
    }
}

static void test_config_required(void **state)
{
    static const char *const empty_flag[] = {"--secret=", NULL};
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(load(&c, &nerr, NULL), CHAT_EINVAL); /* unset */
    assert_int_equal(nerr, 1);
    chat_cfg_free(opts, NOPTS, &c);
    assert_int_equal(setenv("CHAT_TEST_SECRET", "", 1), 0); /* set but empty */
    assert_int_equal(load(&c, &nerr, NULL), CHAT_EINVAL);
    assert_int_equal(nerr, 1);
    chat_cfg_free(opts, NOPTS, &c);
    assert_int_equal(setenv("CHAT_TEST_SECRET", SECRET, 1), 0); /* emptied by a flag */
    assert_int_equal(load(&c, &nerr, empty_flag), CHAT_EINVAL);
    assert_int_equal(nerr, 1);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_config_flag_needs_value(void **state)
{
    static const char *const args[] = {"--secret=x", "--port", NULL};
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(load(&c, &nerr, args), CHAT_EINVAL);
    assert_int_equal(nerr, 1);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_config_help_returns_1(void **state)
{
    char prog[] = "prog", help[] = "--help", h[] = "-h";
    char *flags[] = {help, h};
    struct capture cap;
    struct tcfg c;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_PIN", "4321", 1), 0);
    for (size_t i = 0; i < 2; i++) {
        char *argv[] = {prog, flags[i]};
        char *out;

        memset(&c, 0, sizeof(c));
        capture_begin(&cap, 1);
        assert_int_equal(chat_cfg_load(opts, NOPTS, &c, 2, argv, "test summary"), 1);
        out = capture_end(&cap);
        assert_non_null(strstr(out, "test summary"));
        for (size_t k = 0; k < NOPTS; k++) {
            assert_non_null(strstr(out, opts[k].name));
            assert_non_null(strstr(out, opts[k].env));
        }
        assert_non_null(strstr(out, "integer 1..65535"));
        assert_non_null(strstr(out, "required"));
        assert_null(strstr(out, "1234")); /* a secret's default is redacted */
        chat_free(out);
        chat_cfg_free(opts, NOPTS, &c);
    }
}

static void test_config_secret_redacted(void **state)
{
    struct capture cap;
    struct tcfg c;
    int nerr;
    char *out;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_SECRET", SECRET, 1), 0);
    assert_int_equal(setenv("CHAT_TEST_PIN", "123456", 1), 0); /* out of range, secret */
    assert_int_equal(load_err(&c, &nerr, NULL, &out), CHAT_EINVAL);
    assert_int_equal(nerr, 1);
    assert_non_null(strstr(out, "CHAT_TEST_PIN"));
    assert_null(strstr(out, "123456"));
    chat_free(out);
    chat_cfg_free(opts, NOPTS, &c);
    assert_int_equal(setenv("CHAT_TEST_PIN", "4321", 1), 0);
    assert_int_equal(load(&c, &nerr, NULL), CHAT_OK);
    chat_log_init("test", CHAT_LOG_INFO);
    capture_begin(&cap, 2);
    chat_cfg_dump(opts, NOPTS, &c);
    out = capture_end(&cap);
    assert_non_null(strstr(out, "CHAT_TEST_SECRET=***"));
    assert_non_null(strstr(out, "CHAT_TEST_NAME=dflt"));
    assert_null(strstr(out, SECRET));
    chat_free(out);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_config_free_idempotent(void **state)
{
    struct tcfg c;
    int nerr;

    (void)state;
    assert_int_equal(setenv("CHAT_TEST_SECRET", SECRET, 1), 0);
    assert_int_equal(load(&c, &nerr, NULL), CHAT_OK);
    chat_cfg_free(opts, NOPTS, &c);
    assert_null(c.name);
    assert_null(c.secret);
    chat_cfg_free(opts, NOPTS, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_defaults, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_env_overrides_default, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_flags_override_env, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_bare_bool_flag_is_true, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_all_errors_reported, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_error_names_key_and_source, clear_env,
                                        clear_env),
        cmocka_unit_test_setup_teardown(test_config_int_range, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_int_strict, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_int_strict_from_env, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_booleans, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_required, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_flag_needs_value, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_help_returns_1, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_secret_redacted, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_config_free_idempotent, clear_env, clear_env),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
