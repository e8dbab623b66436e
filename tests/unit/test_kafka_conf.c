/* test_kafka_conf.c - the librdkafka configuration every service builds from the shared
 * CHAT_KAFKA_* settings (libchat/src/kafka.c, chat_kafka_conf_new): the values it sets for each
 * role, the options that set them, and CHAT_KAFKA_EXTRA applied last. No broker is contacted. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/config.h"
#include "chat/kafka.h"
#include "chat/log.h"

struct kcfg {
    struct chat_kafka_cfg kafka;
};

static const struct chat_cfg_opt opts[] = {CHAT_KAFKA_CFG_OPTS(struct kcfg, kafka)};

#define NOPTS CHAT_CFG_COUNT(opts)

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < NOPTS; i++)
        (void)unsetenv(opts[i].env);
    return 0;
}

/* Loads the table with the brokers and up to two more arguments; CHAT_OK or the loader's code. */
static int load(struct kcfg *c, const char *a1, const char *a2)
{
    char prog[] = "prog", brokers[] = "--kafka-brokers=127.0.0.1:1", b1[80] = "", b2[80] = "";
    char *argv[] = {prog, brokers, b1, b2, NULL};
    int argc = 2;

    if (a1) {
        snprintf(b1, sizeof(b1), "%s", a1);
        argc++;
    }
    if (a1 && a2) {
        snprintf(b2, sizeof(b2), "%s", a2);
        argc++;
    }
    memset(c, 0, sizeof(*c));
    return chat_cfg_load(opts, NOPTS, c, argc, argv, "test");
}

/* The value librdkafka holds for NAME in a configuration built for ROLE from C. */
static void expect(struct kcfg *c, enum chat_kafka_role role, const char *name, const char *want)
{
    char err[256], val[256];
    size_t len = sizeof(val);
    rd_kafka_conf_t *conf = chat_kafka_conf_new(&c->kafka, role, "g", err, sizeof(err));

    assert_non_null(conf);
    assert_int_equal(rd_kafka_conf_get(conf, name, val, &len), RD_KAFKA_CONF_OK);
    assert_string_equal(val, want);
    rd_kafka_conf_destroy(conf);
}

static void test_kafka_conf_consumer_defaults(void **state)
{
    struct kcfg c;

    (void)state;
    assert_int_equal(load(&c, NULL, NULL), CHAT_OK);
    /* latency first (librdkafka's default too: test_kafka_conf_fetch_min_bytes checks the wiring)
     */
    expect(&c, CHAT_KAFKA_CONSUMER, "fetch.min.bytes", "1");
    expect(&c, CHAT_KAFKA_CONSUMER, "fetch.wait.max.ms", "100");
    expect(&c, CHAT_KAFKA_CONSUMER, "enable.auto.commit", "false");
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_kafka_conf_fetch_min_bytes(void **state)
{
    struct kcfg c;

    (void)state;
    assert_int_equal(load(&c, "--kafka-fetch-min-bytes=65536", "--kafka-fetch-wait-ms=2"), CHAT_OK);
    expect(&c, CHAT_KAFKA_CONSUMER, "fetch.min.bytes", "65536");
    expect(&c, CHAT_KAFKA_CONSUMER, "fetch.wait.max.ms", "2");
    chat_cfg_free(opts, NOPTS, &c);

    assert_int_equal(setenv("CHAT_KAFKA_FETCH_MIN_BYTES", "4096", 1), 0);
    assert_int_equal(load(&c, NULL, NULL), CHAT_OK);
    expect(&c, CHAT_KAFKA_CONSUMER, "fetch.min.bytes", "4096");
    chat_cfg_free(opts, NOPTS, &c);
}

/* Out of range: refused by the loader, never handed to librdkafka. */
static void test_kafka_conf_fetch_min_bytes_range(void **state)
{
    struct kcfg c;

    (void)state;
    assert_int_equal(load(&c, "--kafka-fetch-min-bytes=0", NULL), CHAT_EINVAL);
    chat_cfg_free(opts, NOPTS, &c);
    assert_int_equal(load(&c, "--kafka-fetch-min-bytes=52428801", NULL), CHAT_EINVAL);
    chat_cfg_free(opts, NOPTS, &c);
}

static void test_kafka_conf_producer(void **state)
{
    struct kcfg c;

    (void)state;
    assert_int_equal(load(&c, NULL, NULL), CHAT_OK);
    expect(&c, CHAT_KAFKA_PRODUCER, "compression.type", "none");
    expect(&c, CHAT_KAFKA_PRODUCER, "enable.idempotence", "true");
    expect(&c, CHAT_KAFKA_PRODUCER, "linger.ms", "1");
    chat_cfg_free(opts, NOPTS, &c);
}

/* CHAT_KAFKA_EXTRA goes last: it overrides what the options set. */
static void test_kafka_conf_extra_last(void **state)
{
    struct kcfg c;

    (void)state;
    assert_int_equal(load(&c, "--kafka-extra=compression.type=lz4,fetch.min.bytes=777",
                          "--kafka-fetch-min-bytes=9"),
                     CHAT_OK);
    expect(&c, CHAT_KAFKA_PRODUCER, "compression.type", "lz4");
    expect(&c, CHAT_KAFKA_CONSUMER, "fetch.min.bytes", "777");
    chat_cfg_free(opts, NOPTS, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kafka_conf_consumer_defaults, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_kafka_conf_fetch_min_bytes, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_kafka_conf_fetch_min_bytes_range, clear_env,
                                        clear_env),
        cmocka_unit_test_setup_teardown(test_kafka_conf_producer, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_kafka_conf_extra_last, clear_env, clear_env),
    };

    chat_log_init("test", CHAT_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
