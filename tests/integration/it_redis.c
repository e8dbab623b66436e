/* it_redis.c - Redis stopped and started again under a steady stream of sends over both
 * gateways (two users each way, tests/integration/fixtures/cluster.sh stop|start redis):
 *
 * - 10 s: shorter than the node-number lease, so chat never stops: every send is acknowledged;
 * - 40 s: the lease runs out meanwhile and a gateway stops taking sends (`overloaded`: no
 *   message id without a live node number), but every send is answered;
 * and after both: both gateways are back in Redis (their presence node entries) and chat
 * flows again within 2 s of Redis being back (x CHAT_TEST_TIMEOUT_MULT), every acknowledged
 * message reached the other user exactly once and is stored once, and nothing refused was
 * delivered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chat/keys.h"

#include "it_stream.h"
#include "it_util.h"

#define PACE_MS 200 /* one send per stream this often during the outage */
#define BACK_MS 2000

/* True when both gateways have written their presence node entry to the (empty, restarted)
 * Redis: they reconnected and run their once-a-second report again. */
static bool nodes_back(void)
{
    char cmd[256], line[64];
    int found = 0;
    FILE *f;

    snprintf(cmd, sizeof(cmd), "redis-cli -h 127.0.0.1 -p %s ZRANGE %s 0 -1 2>/dev/null",
             it_env("CHAT_TEST_REDIS_PORT"), CHAT_KEY_PRES_NODES);
    f = popen(cmd, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f))
        found += strcmp(line, "gw1\n") == 0 || strcmp(line, "gw2\n") == 0;
    pclose(f);
    return found == 2;
}

/* Pumps both senders for up to ms. */
static void pump_both(struct it_stream *a, struct it_stream *b, int ms)
{
    int64_t until = it_now_ms() + ms;

    while (it_now_ms() < until) {
        it_stream_pump(a, 10);
        it_stream_pump(b, 10);
    }
}

static void outage(int seconds, bool all_acked)
{
    struct it_stream a, b;
    char tag[32];
    int64_t t0, back, reconnect_ms = -1, flow_ms = -1;
    int first_after, da, db;

    snprintf(tag, sizeof(tag), "redis%da", seconds);
    it_stream_open(&a, tag, it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW2_URL"));
    snprintf(tag, sizeof(tag), "redis%db", seconds);
    it_stream_open(&b, tag, it_env("CHAT_TEST_GW2_URL"), it_env("CHAT_TEST_GW1_URL"));
    it_stream_send_acked(&a, 5);
    it_stream_send_acked(&b, 5);

    assert_int_equal(it_fixture("stop", "redis"), 0);
    t0 = it_now_ms();
    while (it_now_ms() - t0 < seconds * 1000) { /* the steady stream, paced by the clock */
        it_stream_send(&a);
        it_stream_send(&b);
        pump_both(&a, &b, PACE_MS);
    }
    assert_int_equal(it_fixture("start", "redis"), 0);
    back = it_now_ms();
    first_after = a.n;
    while (reconnect_ms < 0 || flow_ms < 0) {
        int64_t now = it_now_ms();

        if (now - back > it_timeout(BACK_MS))
            fail_msg("%d s outage: %s within %d ms of Redis being back", seconds,
                     reconnect_ms < 0 ? "gateways not back in Redis" : "no send acked",
                     it_timeout(BACK_MS));
        if (reconnect_ms < 0 && nodes_back())
            reconnect_ms = now - back;
        for (int i = first_after; i < a.n && flow_ms < 0; i++)
            if (a.out[i] == IT_ACKED)
                flow_ms = now - back;
        it_stream_send(&a);
        it_stream_send(&b);
        pump_both(&a, &b, 50);
    }
    print_message("%d s outage: gateways back in Redis after %lld ms, sends acked again after "
                  "%lld ms\n",
                  seconds, (long long)reconnect_ms, (long long)flow_ms);
    it_stream_answer_all(&a, it_timeout(15000));
    it_stream_answer_all(&b, it_timeout(15000));
    it_stream_send_acked(&a, 5);
    it_stream_send_acked(&b, 5);

    for (struct it_stream *s = &a; s; s = s == &a ? &b : NULL)
        for (int i = 0; i < s->n; i++)
            if (s->out[i] == IT_REFUSED) {
                if (all_acked)
                    fail_msg("%s: send %d refused (%s) during a short Redis outage", s->room, i,
                             s->code[i]);
                assert_string_equal(s->code[i], "overloaded");
            }
    da = it_stream_deliver_all(&a, it_timeout(20000));
    db = it_stream_deliver_all(&b, it_timeout(20000));
    for (struct it_stream *s = &a; s; s = s == &a ? &b : NULL)
        for (int i = 0; i < s->n; i++)
            if (s->out[i] == IT_REFUSED && s->seen[i])
                fail_msg("%s: send %d refused, yet delivered", s->room, i);
    assert_int_equal(da, it_stream_count(&a, IT_ACKED));
    assert_int_equal(db, it_stream_count(&b, IT_ACKED));
    print_message("%d s outage: %d + %d sends, %d + %d acknowledged and delivered once\n", seconds,
                  a.n, b.n, da, db);
    it_stream_check_stored(&a, da, it_timeout(30000));
    it_stream_check_stored(&b, db, it_timeout(30000));
    it_stream_close(&a);
    it_stream_close(&b);
}

static void test_redis_stopped_10s(void **state)
{
    (void)state;
    outage(10, true);
}

static void test_redis_stopped_40s(void **state)
{
    (void)state;
    outage(40, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_stopped_10s),
        cmocka_unit_test(test_redis_stopped_40s),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
