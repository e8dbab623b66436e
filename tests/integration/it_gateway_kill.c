/* it_gateway_kill.c - a gateway SIGKILLed under a steady stream of sends
 * (tests/integration/fixtures/cluster.sh kill gw1, then start gw1), three users:
 *
 *   gka: sends on gw1 (the one killed), read on gw2;
 *   gkb: sends on gw2, read on gw1 (its reader loses its gateway);
 *   gkc: sends and reads on gw2 (untouched);
 *
 * - the clients on gw1 see their connection end; a send gw1 had not answered may be lost (its
 *   client got no ack; UNREAD sends made while gw1 is stopped just before the kill are surely
 *   lost, never delivered), but a send acknowledged by gw1 just before the kill was in Kafka: it
 *   is delivered and stored;
 * - every acknowledged message reaches each reader that stayed connected (on gw2) exactly once
 *   and is stored once; every message of gka that reached its reader is stored, nothing more;
 * - the clients reconnect (gka's sender to gw2 at once, gkb's reader to the restarted gw1) and
 *   chat resumes; a new user sends through the restarted gw1;
 * - gw1 is ready (/readyz 200) within READY_MS of its restart. Its old node-number lease in Redis
 *   (chat:node:N, PX 30 s) outlives the process: the restarted gw1 (a new lease token) does not
 *   wait for it but leases the next free number; the figures and the numbers are printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "chat/keys.h"

#include "it_acct.h"
#include "it_stream.h"
#include "it_util.h"

#define NSTREAMS 3
#define PACE_MS  100   /* one send per stream this often */
#define DROP_MS  5000  /* a client of the killed gateway sees its connection end within this */
#define READY_MS 10000 /* restart of gw1 to its /readyz 200 */
#define UNREAD   5     /* sends gw1 never reads: sent while it is stopped, just before the kill */

/* The node number in base's /readyz ("node_number=N"), -1 when none. */
static int node_number(const char *base)
{
    char *body = NULL, *p;
    int n = -1;

    if (it_http_get(base, "/readyz", &body) == 200 && body && (p = strstr(body, "node_number=")))
        n = (int)strtol(p + strlen("node_number="), NULL, 10);
    free(body);
    return n;
}

/* redis-cli CMD chat:node:num: its one-line answer in out. */
static void redis_lease(const char *cmd, int num, char *out, size_t cap)
{
    char key[64];

    snprintf(key, sizeof(key), CHAT_KEY_NODE_LEASE_FMT, (unsigned)num);
    it_sh_line(out, cap, "redis-cli -h 127.0.0.1 -p %s %s %s 2>/dev/null",
               it_env("CHAT_TEST_REDIS_PORT"), cmd, key);
}

static void send_all(struct it_stream *st)
{
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_send(&st[i]);
}

/* Pumps every sender for ms. */
static void pump_all(struct it_stream *st, int ms)
{
    int64_t until = it_now_ms() + ms;

    while (it_now_ms() < until)
        for (int i = 0; i < NSTREAMS; i++)
            it_stream_pump(&st[i], 10);
}

/* Reads c (frames dropped) until the connection ends; fails after timeout_ms. */
static void wait_closed(struct wsc *c, const char *who, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    char *txt;

    for (;;) {
        int r = wsc_recv_text(c, &txt, 50, NULL);

        if (r == 1)
            wsc_free_text(txt);
        else if (r < 0)
            return;
        if (it_now_ms() > deadline)
            fail_msg("%s: connection to the killed gateway still open after %d ms", who,
                     timeout_ms);
    }
}

/* Reads st's sender (its answers counted) until the connection ends. */
static void wait_tx_closed(struct it_stream *st, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;

    while (wsc_last_close_code(st->tx) == 0) {
        if (it_now_ms() > deadline)
            fail_msg("%s: sender's connection to the killed gateway still open after %d ms",
                     st->room, timeout_ms);
        it_stream_pump(st, 50);
    }
}

/* A new connection for user "<tag>_<role>" to url, joined to st's room. */
static struct wsc *
rejoin(const struct it_stream *st, const char *tag, const char *role, const char *url)
{
    char user[64], *tok;
    struct wsc *c;

    snprintf(user, sizeof(user), "%s_%s", tag, role);
    tok = it_token(user, 3600);
    c = it_connect(url, tok);
    free(tok);
    it_join(c, st->room);
    return c;
}

/* Reads st's reader until every acknowledged send numbered first or later arrived; fails on a
 * duplicate. (A reader that joined late cannot account for the sends before first.) */
static void deliver_from(const struct it_stream *st, int first, int timeout_ms)
{
    static int seen[IT_STREAM_MAX];
    int64_t deadline = it_now_ms() + timeout_ms;

    memset(seen, 0, sizeof(seen));
    for (;;) {
        char *txt = NULL;
        int missing = 0;

        for (int i = first; i < st->n; i++)
            missing += st->out[i] == IT_ACKED && seen[i] == 0;
        if (missing == 0)
            return;
        if (it_now_ms() > deadline)
            fail_msg("%s: %d acknowledged messages not delivered to the reconnected reader after "
                     "%d ms",
                     st->room, missing, timeout_ms);
        if (wsc_recv_text(st->rx, &txt, 200, NULL) == 1) {
            json_t *j = json_loads(txt, 0, NULL);
            const char *type = json_string_value(json_object_get(j, "type"));

            if (type && strcmp(type, "message") == 0) {
                int k = it_stream_msg_no(st, json_string_value(json_object_get(j, "text")));
                if (k >= first && ++seen[k] > 1)
                    fail_msg("%s: message %d delivered %d times", st->room, k, seen[k]);
            }
            json_decref(j);
            wsc_free_text(txt);
        }
    }
}

static void test_gateway_sigkill(void **state)
{
    static const char *const tags[NSTREAMS] = {"gka", "gkb", "gkc"};
    const char *tx[NSTREAMS] = {GW1, GW2, GW2}, *rx[NSTREAMS] = {GW2, GW1, GW2};
    struct it_stream st[NSTREAMS], fresh, *a = &st[0], *b = &st[1], *c = &st[2];
    char cmd[1024], line[256], old_val[128], old_pttl[32], new_val[128];
    int64_t t0, t_kill, t_start;
    long long drop_ms, reconnect_ms, ready_ms = -1;
    int last_acked, unread, lost = 0, b_first, old_num, new_num, gw2_num, da;
    FILE *p;

    (void)state;
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_open(&st[i], tags[i], tx[i], rx[i]);
    old_num = node_number(GW1);
    gw2_num = node_number(GW2);
    assert_true(old_num >= 0 && gw2_num >= 0);

    /* the steady stream for a while */
    t0 = it_now_ms();
    while (it_now_ms() - t0 < 2000) {
        send_all(st);
        pump_all(st, PACE_MS);
    }
    /* a send acknowledged by gw1 just before the kill, then sends it has not answered yet */
    it_stream_send(a);
    last_acked = a->n - 1;
    while (a->out[last_acked] == IT_PENDING) {
        if (it_now_ms() - t0 > it_timeout(15000))
            fail_msg("send %d of %s unanswered", last_acked, a->room);
        it_stream_pump(a, 50);
    }
    assert_int_equal(a->out[last_acked], IT_ACKED);
    send_all(st); /* in flight at the kill, most likely answered just before it */
    /* and sends gw1 surely never read: it is stopped first, so they stay in its socket */
    assert_int_equal(it_fixture("pause", "gw1"), 0);
    unread = a->n;
    for (int k = 0; k < UNREAD; k++)
        it_stream_send(a);
    send_all(st);
    t_kill = it_now_ms(); /* cluster.sh kill: SIGKILL, then waits until the process is gone */
    assert_int_equal(it_fixture("kill", "gw1"), 0);

    /* gw1's clients see their connection end; gw2's carry on */
    wait_tx_closed(a, it_timeout(DROP_MS));
    wait_closed(b->rx, "gkb reader", it_timeout(DROP_MS));
    drop_ms = (long long)(it_now_ms() - t_kill);
    for (int k = 0; k < a->n; k++)
        if (a->out[k] == IT_PENDING) { /* no answer: its fate is unknown to the client */
            a->out[k] = IT_REFUSED;
            snprintf(a->code[k], sizeof(a->code[k]), "lost");
            lost++;
        }
    wsc_close(a->tx);
    a->tx = rejoin(a, "gka", "tx", GW2); /* the client fails over to the other gateway */
    reconnect_ms = (long long)(it_now_ms() - t_kill);
    redis_lease("GET", old_num, old_val, sizeof(old_val));
    redis_lease("PTTL", old_num, old_pttl, sizeof(old_pttl));

    /* restart gw1 in the background while the stream goes on; its /readyz is polled here */
    snprintf(cmd, sizeof(cmd), "%s/fixtures/cluster.sh start gw1 %s 2>&1", IT_SRC_DIR,
             it_env("CHAT_TEST_DIR"));
    t_start = it_now_ms();
    p = popen(cmd, "r");
    assert_non_null(p);
    while (ready_ms < 0) {
        if (it_now_ms() - t_start > it_timeout(READY_MS + 20000))
            fail_msg("gw1 not ready %d ms after its restart", it_timeout(READY_MS + 20000));
        send_all(st); /* gkb's reader is gone meanwhile: nobody gets those */
        pump_all(st, PACE_MS);
        if (it_http_get(GW1, "/readyz", NULL) == 200)
            ready_ms = (long long)(it_now_ms() - t_start);
    }
    while (fgets(line, sizeof(line), p)) /* cluster.sh's own account: "gw1 ready (... ms)" */
        if (strstr(line, "ready"))
            print_message("%s", line);
    assert_int_equal(pclose(p), 0);
    new_num = node_number(GW1);
    redis_lease("GET", new_num, new_val, sizeof(new_val));
    print_message("gw1 SIGKILLed: its clients saw the drop within %lld ms, a sender reconnected "
                  "to gw2 %lld ms after the kill; %d unanswered sends lost to the client; restart "
                  "to /readyz 200: %lld ms\n",
                  drop_ms, reconnect_ms, lost, ready_ms);
    print_message("node numbers: gw1 held %d (lease after the kill: '%s', PTTL %s ms), gw2 %d, the "
                  "restarted gw1 leased %d ('%s')\n",
                  old_num, old_val, old_pttl, gw2_num, new_num, new_val);
    if (ready_ms > it_timeout(READY_MS))
        fail_msg("gw1 ready only %lld ms after its restart", ready_ms);
    assert_true(new_num >= 0);
    assert_int_not_equal(new_num, gw2_num);
    /* the dead process's lease still stood when the new one asked: another number */
    if (old_val[0] && strncmp(old_val, "gw1:", 4) == 0 && ready_ms < atoll(old_pttl))
        assert_int_not_equal(new_num, old_num);

    /* gkb's reader comes back on the restarted gw1 and gets everything sent from then on */
    wsc_close(b->rx);
    b->rx = rejoin(b, "gkb", "rx", GW1);
    b_first = b->n;
    t0 = it_now_ms();
    while (it_now_ms() - t0 < 1000) {
        send_all(st);
        pump_all(st, PACE_MS);
    }
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_send_acked(&st[i], 5); /* also waits for every earlier answer */

    /* gka: every ack delivered once to its reader on gw2 (the one just before the kill too),
     * and what its reader got is exactly what is stored (its last sends, after every lost one
     * in the room's partition, were delivered: so was anything of gw1's that reached Kafka) */
    for (int k = 0; k < a->n; k++)
        if (a->out[k] == IT_REFUSED && strcmp(a->code[k], "lost") != 0)
            fail_msg("gka: send %d refused (%s)", k, a->code[k]);
    da = it_stream_deliver_all(a, it_timeout(15000));
    assert_int_equal(a->seen[last_acked], 1);
    for (int k = unread; k < unread + UNREAD; k++)
        if (a->out[k] != IT_REFUSED || a->seen[k])
            fail_msg("gka: send %d, never read by gw1, was %s", k,
                     a->seen[k] ? "delivered" : "answered");
    it_stream_check_stored(a, da, it_timeout(15000));
    /* gkb: sent through gw2, all acknowledged, all stored; delivered once since its reader
     * came back */
    assert_int_equal(it_stream_count(b, IT_ACKED), b->n);
    deliver_from(b, b_first, it_timeout(15000));
    it_stream_check_stored(b, b->n, it_timeout(15000));
    /* gkc: gw2 alone, untouched by the kill */
    assert_int_equal(it_stream_count(c, IT_ACKED), c->n);
    assert_int_equal(it_stream_deliver_all(c, it_timeout(15000)), c->n);
    it_stream_check_stored(c, c->n, it_timeout(15000));
    print_message("gka %d sends: %d acknowledged, %d lost, %d delivered and stored once "
                  "(send %d acked by gw1 just before the kill among them); gkb %d and gkc %d sends "
                  "all acknowledged and stored once\n",
                  a->n, it_stream_count(a, IT_ACKED), lost, da, last_acked, b->n, c->n);

    /* a new user chats through the restarted gw1 */
    it_stream_open(&fresh, "gkd", GW1, GW2);
    it_stream_send_acked(&fresh, 5);
    assert_int_equal(it_stream_deliver_all(&fresh, it_timeout(15000)), 5);
    it_stream_check_stored(&fresh, 5, it_timeout(15000));
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_close(&st[i]);
    it_stream_close(&fresh);
}

/* A failed test leaves gw1 running for the tests after it. */
static int teardown(void **state)
{
    (void)state;
    return it_fixture("start", "gw1") == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gateway_sigkill),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, teardown);
}
