/* it_postgres.c - PostgreSQL stopped for 15 s (tests/integration/fixtures/cluster.sh stop|start
 * postgres: a fast shutdown, every connection cut) under a steady stream of sends from three
 * users over both gateways (gw1 -> gw2, gw2 -> gw1, gw1 -> gw1):
 *
 * - chat never notices: Kafka is the path and PostgreSQL only the record, so every send is
 *   acknowledged and delivered while the database is down, new WebSocket clients connect and
 *   join, and both gateways stay ready;
 * - the account API answers at once: login, register, refresh and /users/me each get 503
 *   `unavailable` within ANSWER_MS (x CHAT_TEST_TIMEOUT_MULT; every answer's latency is measured
 *   and printed), on both gateways;
 * - the persister's /readyz turns 503 while the database is down and 200 again after;
 * and once PostgreSQL is back: a login succeeds within LOGIN_BACK_MS, and every acknowledged
 * message (the persister kept its batch and retried it) is stored exactly once within
 * STORED_BACK_MS. The figures (answer latencies, time to the persister's 503, time from
 * PostgreSQL's return to the first login, to the persister's /readyz 200 and to every row
 * stored) are printed for docs/ARCHITECTURE.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "it_acct.h"
#include "it_stream.h"
#include "it_util.h"

#define NSTREAMS       3
#define OUTAGE_MS      15000
#define PACE_MS        200   /* one send per stream this often */
#define ACCT_EVERY_MS  1000  /* account requests this often during the outage */
#define ANSWER_MS      3000  /* an account request answers 503 within this while PG is down */
#define LOGIN_BACK_MS  5000  /* a login succeeds within this of PostgreSQL being back */
#define STORED_BACK_MS 15000 /* every row stored within this (persister retry backoff: 5 s max) */

static int http_status(const char *url_key, const char *path)
{
    return it_http_get(it_env(url_key), path, NULL);
}

/* Pumps every sender for ms. */
static void pump_all(struct it_stream *st, int n, int ms)
{
    int64_t until = it_now_ms() + ms;

    while (it_now_ms() < until)
        for (int i = 0; i < n; i++)
            it_stream_pump(&st[i], 10);
}

/* An account request that must answer 503 `unavailable` while PostgreSQL is down, within
 * ANSWER_MS; returns its latency in ms (curl's start-up included). body is consumed. */
static long long acct_unavailable(
    const char *base, const char *method, const char *path, const char *bearer, json_t *body)
{
    struct it_client cl;
    json_t *out;
    int64_t t0 = it_now_ms();
    long long ms;
    int st;

    it_client_new(&cl, "198.51.100"); /* a fresh address: no per-IP limit is ever near */
    st = it_api(base, method, path, bearer, &cl, body, &out, NULL);
    ms = (long long)(it_now_ms() - t0);
    it_check_error(st, out, 503, "unavailable", path);
    json_decref(out);
    if (ms > it_timeout(ANSWER_MS))
        fail_msg("%s %s answered 503 only after %lld ms with PostgreSQL down", method, path, ms);
    return ms;
}

/* A login attempt: its status (200 once PostgreSQL is back). */
static int try_login(const char *base, const char *user)
{
    struct it_client cl;
    json_t *out;
    int st;

    it_client_new(&cl, "198.51.100");
    st = it_api(base, "POST", "/api/v1/auth/login", NULL, &cl, it_creds(user, PW), &out, NULL);
    json_decref(out);
    return st;
}

static void test_postgres_stopped_15s(void **state)
{
    static const char *const tags[NSTREAMS] = {"pga", "pgb", "pgc"};
    const char *tx[NSTREAMS] = {GW1, GW2, GW1}, *rx[NSTREAMS] = {GW2, GW1, GW1};
    struct it_stream st[NSTREAMS], mid;
    struct it_client cl;
    char user[32], fresh[32];
    json_t *sess;
    const char *bases[2] = {GW1, GW2};
    int64_t t_stop, t_back, next_acct, now;
    long long ps_down_ms = -1, login_ms = -1, ps_ready_ms = -1, stored_ms, ms;
    long long lat_max = 0, lat_sum = 0;
    int nreq = 0, round = 0, sends_down = 0, delivered_down = 0, total = 0;
    bool mid_open = false;

    (void)state;
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_open(&st[i], tags[i], tx[i], rx[i]);
    it_client_new(&cl, "198.51.100");
    it_name_new(user, sizeof(user), "pgout");
    json_decref(it_register(GW1, &cl, user, PW, NULL));
    sess = it_login(GW2, &cl, user, PW); /* its refresh and access tokens are used below */
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_send_acked(&st[i], 5);
    assert_int_equal(http_status("CHAT_TEST_PERSISTER_URL", "/readyz"), 200);

    assert_int_equal(it_fixture("stop", "postgres"), 0);
    t_stop = it_now_ms();
    next_acct = t_stop;
    while ((now = it_now_ms()) - t_stop < OUTAGE_MS) { /* the steady stream, by the clock */
        for (int i = 0; i < NSTREAMS; i++)
            it_stream_send(&st[i]);
        sends_down += NSTREAMS;
        pump_all(st, NSTREAMS, PACE_MS);
        if (now < next_acct)
            continue;
        next_acct = now + ACCT_EVERY_MS;
        /* a login on one gateway, and one other account request on the other */
        ms = acct_unavailable(bases[round % 2], "POST", "/api/v1/auth/login", NULL,
                              it_creds(user, PW));
        lat_max = ms > lat_max ? ms : lat_max;
        lat_sum += ms;
        nreq++;
        switch (round % 3) {
        case 0:
            it_name_new(fresh, sizeof(fresh), "pgnew");
            ms = acct_unavailable(bases[(round + 1) % 2], "POST", "/api/v1/auth/register", NULL,
                                  it_creds(fresh, PW));
            break;
        case 1:
            ms = acct_unavailable(
                bases[(round + 1) % 2], "POST", "/api/v1/auth/refresh", NULL,
                json_pack("{s:s}", "refresh_token", it_jstr(sess, "refresh_token")));
            break;
        default:
            ms = acct_unavailable(bases[(round + 1) % 2], "GET", "/api/v1/users/me",
                                  it_access(sess), NULL);
            break;
        }
        lat_max = ms > lat_max ? ms : lat_max;
        lat_sum += ms;
        nreq++;
        round++;
        /* chat's readiness does not depend on the database */
        assert_int_equal(http_status("CHAT_TEST_GW1_URL", "/readyz"), 200);
        assert_int_equal(http_status("CHAT_TEST_GW2_URL", "/readyz"), 200);
        if (ps_down_ms < 0 && http_status("CHAT_TEST_PERSISTER_URL", "/readyz") == 503)
            ps_down_ms = (long long)(it_now_ms() - t_stop);
        if (!mid_open && now - t_stop > OUTAGE_MS / 2) { /* new clients connect and chat */
            it_stream_open(&mid, "pgmid", GW2, GW1);
            it_stream_send_acked(&mid, 3);
            mid_open = true;
        }
    }
    /* still down: every send so far acknowledged and delivered */
    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_answer_all(&st[i], it_timeout(10000));
        for (int k = 0; k < st[i].n; k++)
            if (st[i].out[k] != IT_ACKED)
                fail_msg("%s: send %d refused (%s) with PostgreSQL down", st[i].room, k,
                         st[i].code[k]);
        delivered_down += it_stream_deliver_all(&st[i], it_timeout(10000));
    }
    assert_true(mid_open);
    assert_int_equal(it_stream_deliver_all(&mid, it_timeout(10000)), 3);
    if (ps_down_ms < 0)
        fail_msg("the persister's /readyz stayed 200 for %d s with PostgreSQL down",
                 OUTAGE_MS / 1000);
    assert_int_equal(http_status("CHAT_TEST_PERSISTER_URL", "/readyz"), 503);
    print_message("PostgreSQL down %d s: %d sends meanwhile, all acknowledged, and all %d "
                  "acknowledged so far delivered; %d account requests answered 503 unavailable in "
                  "%lld ms at most (mean %lld ms, "
                  "curl included); persister /readyz 503 after %lld ms\n",
                  OUTAGE_MS / 1000, sends_down, delivered_down, nreq, lat_max,
                  nreq ? lat_sum / nreq : 0, ps_down_ms);

    assert_int_equal(it_fixture("start", "postgres"), 0);
    t_back = it_now_ms();                     /* pg_isready answers and the database exists */
    while (login_ms < 0 || ps_ready_ms < 0) { /* the stream goes on while it recovers */
        now = it_now_ms();
        if (now - t_back > it_timeout(STORED_BACK_MS))
            fail_msg("%s within %d ms of PostgreSQL being back",
                     login_ms < 0 ? "no login succeeded" : "persister not ready",
                     it_timeout(STORED_BACK_MS));
        for (int i = 0; i < NSTREAMS; i++)
            it_stream_send(&st[i]);
        pump_all(st, NSTREAMS, 50);
        if (login_ms < 0) {
            int s = try_login(bases[round++ % 2], user);

            if (s == 200)
                login_ms = (long long)(it_now_ms() - t_back);
            else if (s != 503)
                fail_msg("login after PostgreSQL's return answered %d", s);
        }
        if (ps_ready_ms < 0 && http_status("CHAT_TEST_PERSISTER_URL", "/readyz") == 200)
            ps_ready_ms = (long long)(it_now_ms() - t_back);
    }
    if (login_ms > it_timeout(LOGIN_BACK_MS))
        fail_msg("first login %lld ms after PostgreSQL was back", login_ms);
    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_send_acked(&st[i], 3);
        assert_int_equal(it_stream_count(&st[i], IT_ACKED), st[i].n);
        assert_int_equal(it_stream_deliver_all(&st[i], it_timeout(10000)), st[i].n);
    }
    /* exactly once: rows and distinct client_msg_ids both equal the acknowledged sends */
    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_check_stored(&st[i], st[i].n, it_timeout(STORED_BACK_MS));
        total += st[i].n;
    }
    it_stream_check_stored(&mid, mid.n, it_timeout(STORED_BACK_MS));
    stored_ms = (long long)(it_now_ms() - t_back);
    print_message("PostgreSQL back: first login after %lld ms, persister /readyz 200 after %lld "
                  "ms, all %d + %d acknowledged messages stored once after %lld ms\n",
                  login_ms, ps_ready_ms, total, mid.n, stored_ms);
    if (stored_ms > it_timeout(STORED_BACK_MS))
        fail_msg("rows stored only %lld ms after PostgreSQL was back", stored_ms);
    /* the refresh token refused as unavailable was not used up */
    json_decref(it_refresh_ok(GW1, &cl, it_jstr(sess, "refresh_token")));
    json_decref(sess);
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_close(&st[i]);
    it_stream_close(&mid);
}

/* A failed test leaves PostgreSQL running for the tests after it. */
static int teardown(void **state)
{
    (void)state;
    return it_fixture("start", "postgres") == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postgres_stopped_15s),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, teardown);
}
