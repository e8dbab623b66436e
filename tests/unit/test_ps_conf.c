/* test_ps_conf.c - the persister's consumer configuration (persister/src/ps_conf.c): the
 * chat.messages consumer's fetches wait for CHAT_PERSISTER_FETCH_MIN_BYTES, at most CHAT_BATCH_MS,
 * whatever the shared CHAT_KAFKA_FETCH_* say, the chat.events consumer's follow those; a new group
 * starts at the earliest offset; CHAT_KAFKA_EXTRA goes last. No broker is contacted. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <string.h>

#include "ps.h"

/* The settings the config table would give, the shared ones at their defaults. */
static void cfg_init(struct ps_cfg *cfg, char *extra)
{
    static char brokers[] = "127.0.0.1:1", group[] = "chat-persister";

    memset(cfg, 0, sizeof(*cfg));
    cfg->kafka.brokers = brokers;
    cfg->kafka.fetch_wait_ms = 100;
    cfg->kafka.fetch_min_bytes = 1;
    cfg->kafka.session_timeout_ms = 10000;
    cfg->kafka.heartbeat_ms = 1000;
    cfg->kafka.extra = extra;
    cfg->group = group;
    cfg->batch_ms = 50;
    cfg->fetch_min_bytes = 1048576;
}

/* The value the chat.messages (batch_fetch) or chat.events consumer configuration built from CFG
 * holds for NAME. */
static void
expect_of(const struct ps_cfg *cfg, bool batch_fetch, const char *name, const char *want)
{
    char err[256], val[256];
    size_t len = sizeof(val);
    rd_kafka_conf_t *conf = ps_consumer_conf_new(cfg, cfg->group, batch_fetch, err, sizeof(err));

    assert_non_null(conf);
    assert_int_equal(rd_kafka_conf_get(conf, name, val, &len), RD_KAFKA_CONF_OK);
    assert_string_equal(val, want);
    rd_kafka_conf_destroy(conf);
}

static void expect(const struct ps_cfg *cfg, const char *name, const char *want)
{
    expect_of(cfg, true, name, want);
}

static void test_ps_conf_fetch_waits(void **state)
{
    struct ps_cfg cfg;
    char extra[] = "";

    (void)state;
    cfg_init(&cfg, extra);
    expect(&cfg, "fetch.min.bytes", "1048576");
    expect(&cfg, "fetch.wait.max.ms", "50");
    expect(&cfg, "auto.offset.reset", "smallest"); /* librdkafka's name for earliest */
    expect(&cfg, "group.id", "chat-persister");
}

/* The shared fetch settings (the throughput setting of the gateways) do not reach it. */
static void test_ps_conf_shared_fetch_ignored(void **state)
{
    struct ps_cfg cfg;
    char extra[] = "";

    (void)state;
    cfg_init(&cfg, extra);
    cfg.kafka.fetch_min_bytes = 65536;
    cfg.kafka.fetch_wait_ms = 2;
    cfg.batch_ms = 200;
    cfg.fetch_min_bytes = 4096;
    expect(&cfg, "fetch.min.bytes", "4096");
    expect(&cfg, "fetch.wait.max.ms", "200");
}

/* The chat.events consumer: the shared fetch settings, the earliest offset too. */
static void test_ps_conf_events(void **state)
{
    struct ps_cfg cfg;
    char extra[] = "";

    (void)state;
    cfg_init(&cfg, extra);
    cfg.kafka.fetch_min_bytes = 65536;
    cfg.kafka.fetch_wait_ms = 2;
    expect_of(&cfg, false, "fetch.min.bytes", "65536");
    expect_of(&cfg, false, "fetch.wait.max.ms", "2");
    expect_of(&cfg, false, "auto.offset.reset", "smallest");
}

static void test_ps_conf_extra_last(void **state)
{
    struct ps_cfg cfg;
    char extra[] = "fetch.wait.max.ms=7,auto.offset.reset=latest";

    (void)state;
    cfg_init(&cfg, extra);
    expect(&cfg, "fetch.wait.max.ms", "7");
    expect(&cfg, "auto.offset.reset", "largest");
    expect(&cfg, "fetch.min.bytes", "1048576");
}

static void test_ps_conf_refused(void **state)
{
    struct ps_cfg cfg;
    char extra[] = "fetch.min.bytes", err[256] = "";

    (void)state;
    cfg_init(&cfg, extra);
    assert_null(ps_consumer_conf_new(&cfg, cfg.group, true, err, sizeof(err)));
    assert_non_null(strstr(err, "not key=value"));
}

/* A cooperative-sticky CHAT_KAFKA_EXTRA reaches the chat.messages consumer only: the chat.events
 * consumer stays eager (librdkafka#4312: a cooperative consumer closed before its first
 * assignment aborts in librdkafka 2.0). */
static void test_ps_conf_events_stay_eager(void **state)
{
    struct ps_cfg cfg;
    char extra[] = "partition.assignment.strategy=cooperative-sticky";

    (void)state;
    cfg_init(&cfg, extra);
    expect_of(&cfg, true, "partition.assignment.strategy", "cooperative-sticky");
    expect_of(&cfg, false, "partition.assignment.strategy", "range,roundrobin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ps_conf_fetch_waits),
        cmocka_unit_test(test_ps_conf_shared_fetch_ignored),
        cmocka_unit_test(test_ps_conf_events),
        cmocka_unit_test(test_ps_conf_extra_last),
        cmocka_unit_test(test_ps_conf_refused),
        cmocka_unit_test(test_ps_conf_events_stay_eager),
    };

    chat_log_init("test", CHAT_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
