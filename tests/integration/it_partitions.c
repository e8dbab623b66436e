/* it_partitions.c - the partition count of chat.messages is fixed (docs/ARCHITECTURE.md,
 * "Stream position"). The test grows chat.messages by one partition on the running broker
 * (Admin API CreatePartitions) and expects, within a bounded wait: both gateways, the
 * persister and chat-api answer /readyz 503 with partitions_changed=1, a WebSocket send and a REST
 * send are refused `unavailable`, each service logged the ERROR line once and counts the change in
 * its metrics.
 *
 * It leaves the cluster refusing to serve (partitions cannot be removed): it must run LAST.
 * tests/integration/CMakeLists.txt registers it after every other test and orders it behind
 * them (DEPENDS); it.cluster.down still stops everything (and it.cluster.up starts a new broker
 * from an empty log dir). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "chat/kafka.h"

#include "it_acct.h"
#include "it_stream.h"
#include "it_util.h"

#define TOPIC "chat.messages"

/* Grows TOPIC to want partitions with the Admin API; fails the test on any error. */
static void create_partitions(rd_kafka_t *rk, int want)
{
    char err[512];
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(TOPIC, (size_t)want, err, sizeof(err));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    const rd_kafka_topic_result_t **res;
    rd_kafka_event_t *ev;
    size_t n = 0;

    assert_non_null(np);
    rd_kafka_CreatePartitions(rk, &np, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, it_timeout(30000));
    assert_non_null(ev);
    if (rd_kafka_event_error(ev))
        fail_msg("CreatePartitions: %s", rd_kafka_event_error_string(ev));
    res = rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
    assert_int_equal(n, 1);
    if (rd_kafka_topic_result_error(res[0]))
        fail_msg("CreatePartitions %s: %s", TOPIC, rd_kafka_topic_result_error_string(res[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewPartitions_destroy(np);
}

/* True when the service's /readyz says 503 with the partitions_changed=1 diagnostic. */
static bool refuses(const char *url_key)
{
    char *body = NULL;
    int status = it_http_get(it_env(url_key), "/readyz", &body);
    bool yes = status == 503 && body && strstr(body, "partitions_changed=1");

    free(body);
    return yes;
}

/* The service's log holds the ERROR line exactly once. */
static void logged_once(const char *svc)
{
    if (it_sh("test \"$(grep -c 'ERROR.*partition count of chat.messages is fixed; restore it or "
              "recreate the topic and restart' '%s/logs/%s.log')\" = 1",
              it_env("CHAT_TEST_DIR"), svc) != 0)
        fail_msg("%s: the partition-change ERROR line is not in its log exactly once", svc);
}

static void metric_is_one(const char *url_key, const char *name)
{
    char *body = NULL, line[128];

    assert_int_equal(it_http_get(it_env(url_key), "/metrics", &body), 200);
    snprintf(line, sizeof(line), "\n%s 1\n", name);
    if (!strstr(body, line))
        fail_msg("%s: no '%s 1' in /metrics", url_key, name);
    free(body);
}

static void test_partition_count_change_refuses_to_serve(void **state)
{
    static const char *const services[] = {"CHAT_TEST_GW1_URL", "CHAT_TEST_GW2_URL",
                                           "CHAT_TEST_PERSISTER_URL", "CHAT_TEST_API1_URL"};
    struct it_stream st;
    char errstr[512], *token, *body = NULL;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    int before = 0, status, last;
    int64_t t0;
    bool all;

    (void)state;
    if (strcmp(it_env("CHAT_TEST_KAFKA_IMPL"), "broker") != 0) {
        print_message("skipped: the cluster runs the mock (CHAT_CLUSTER_KAFKA=mock)\n");
        skip();
    }
    /* serving before: a stream from gw1 to gw2 */
    it_stream_open(&st, "parts", it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW2_URL"));
    it_stream_send_acked(&st, 3);
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
        assert_false(refuses(services[i]));

    conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", it_env("CHAT_KAFKA_BROKERS"),
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    assert_int_equal(chat_kafka_partition_count(rk, TOPIC, it_timeout(10000), &before), CHAT_OK);
    create_partitions(rk, before + 1);
    print_message("grew %s from %d to %d partitions\n", TOPIC, before, before + 1);
    rd_kafka_destroy(rk);

    /* every node notices (CHAT_PARTITION_CHECK_MS is 1000 in the test cluster) */
    t0 = it_now_ms();
    do {
        all = true;
        for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
            all = all && refuses(services[i]);
        if (!all)
            (void)it_stream_pump(&st, 100); /* a bounded wait that also reads the sockets */
    } while (!all && it_now_ms() - t0 < it_timeout(30000));
    for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
        if (!refuses(services[i]))
            fail_msg("%s/readyz is not 503 with partitions_changed=1", it_env(services[i]));
    print_message("all nodes refuse %lld ms after the change\n", (long long)(it_now_ms() - t0));

    /* a WebSocket send is refused with the stable code */
    last = st.n;
    it_stream_send(&st);
    it_stream_answer_all(&st, it_timeout(10000));
    assert_int_equal(st.out[last], IT_REFUSED);
    assert_string_equal(st.code[last], "unavailable");
    it_stream_close(&st);

    /* and a REST send too (503), once chat-api's own watch saw it (CHAT_PARTITION_CHECK_MS) */
    token = it_token("parts_rest", 600);
    t0 = it_mono_ms();
    for (;;) {
        free(body);
        body = NULL;
        status = it_http("POST", it_env("CHAT_TEST_API1_URL"), "/api/v1/rooms/parts-rest/messages",
                         token, "{\"text\":\"after the change\",\"client_msg_id\":\"p1\"}", NULL,
                         &body, NULL);
        if (status == 503 || it_mono_ms() - t0 > it_timeout(10000))
            break;
        it_sleep_ms(100);
    }
    assert_int_equal(status, 503);
    assert_non_null(body);
    assert_non_null(strstr(body, "\"unavailable\""));
    free(body);
    free(token);

    logged_once("gw1");
    logged_once("gw2");
    logged_once("persister");
    logged_once("api1");
    metric_is_one("CHAT_TEST_GW1_URL", "chat_gateway_partition_changes_total");
    metric_is_one("CHAT_TEST_GW2_URL", "chat_gateway_partition_changes_total");
    metric_is_one("CHAT_TEST_PERSISTER_URL", "chat_persister_partition_changes_total");
    metric_is_one("CHAT_TEST_API1_URL", "chat_api_partition_changes_total");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_count_change_refuses_to_serve),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
