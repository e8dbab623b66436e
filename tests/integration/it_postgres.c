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
 * - the persister's /readyz turns 503 while the database is down and 200 again after; chat-api's
 *   stays 200 (each request answers for itself);
 * and once PostgreSQL is back: a login succeeds within LOGIN_BACK_MS, and every acknowledged
 * message (the persister kept its batch and retried it) is stored exactly once within
 * STORED_BACK_MS. The figures (answer latencies, time to the persister's 503, time from
 * PostgreSQL's return to the first login, to the persister's /readyz 200 and to every row
 * stored) are printed for docs/ARCHITECTURE.md.
 *
 * Then PostgreSQL hung (cluster.sh pause: SIGSTOP; the kernel still accepts and acknowledges,
 * so only a client-side deadline ends a wait) for PAUSE_MS under the same kind of stream: chat
 * flows as before, every account request answers 503 `unavailable` within 2 x
 * CHAT_PG_TIMEOUT_MS + ANSWER_MARGIN_MS (the job ahead on its worker, then its own), a burst of
 * BURST parallel logins too (the workers do not wait one deadline per queued job), and after the
 * resume a login succeeds on each chat-api within LOGIN_BACK_MS (a replica answers 503 for as
 * long as its last failed try took, up to 1 s) and every acknowledged message is stored once. The
 * teardown resumes PostgreSQL whatever happened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "it_acct.h"
#include "it_stream.h"
#include "it_util.h"

#define NSTREAMS         3
#define OUTAGE_MS        15000
#define PACE_MS          200   /* one send per stream this often */
#define ACCT_EVERY_MS    1000  /* account requests this often during the outage */
#define ANSWER_MS        3000  /* an account request answers 503 within this while PG is down */
#define LOGIN_BACK_MS    5000  /* a login succeeds within this of PostgreSQL being back */
#define STORED_BACK_MS   15000 /* every row stored within this (persister retry backoff: 5 s max) */
#define PAUSE_MIN_MS     12000 /* PostgreSQL hung this long, and at least 6 deadlines */
#define ANSWER_MARGIN_MS 1500  /* over 2 x CHAT_PG_TIMEOUT_MS: curl, hashing, a job ahead */
#define BURST            8     /* parallel logins during the hang (4 per account worker) */

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

/* While PostgreSQL is still out (state: "down", "hung"): every send so far acknowledged and
 * delivered, the mid-outage stream's 3 too; returns the deliveries of the streams. */
static int all_acked_and_delivered(struct it_stream *st,
                                   struct it_stream *mid,
                                   bool mid_open,
                                   const char *state)
{
    int delivered = 0;

    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_answer_all(&st[i], it_timeout(10000));
        for (int k = 0; k < st[i].n; k++)
            if (st[i].out[k] != IT_ACKED)
                fail_msg("%s: send %d refused (%s) with PostgreSQL %s", st[i].room, k,
                         st[i].code[k], state);
        delivered += it_stream_deliver_all(&st[i], it_timeout(10000));
    }
    assert_true(mid_open);
    assert_int_equal(it_stream_deliver_all(mid, it_timeout(10000)), 3);
    return delivered;
}

/* After the outage: a few more sends per stream, then every acknowledged send is delivered and
 * stored exactly once (rows and distinct client_msg_ids both equal the acks); returns how many
 * the streams sent. */
static int all_acked_delivered_and_stored(struct it_stream *st, struct it_stream *mid)
{
    int total = 0;

    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_send_acked(&st[i], 3);
        assert_int_equal(it_stream_count(&st[i], IT_ACKED), st[i].n);
        assert_int_equal(it_stream_deliver_all(&st[i], it_timeout(10000)), st[i].n);
    }
    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_check_stored(&st[i], st[i].n, it_timeout(STORED_BACK_MS));
        total += st[i].n;
    }
    it_stream_check_stored(mid, mid->n, it_timeout(STORED_BACK_MS));
    return total;
}

static void test_postgres_stopped_15s(void **state)
{
    static const char *const tags[NSTREAMS] = {"pga", "pgb", "pgc"};
    const char *tx[NSTREAMS] = {GW1, GW2, GW1}, *rx[NSTREAMS] = {GW2, GW1, GW1};
    struct it_stream st[NSTREAMS], mid;
    struct it_client cl;
    char user[32], fresh[32];
    json_t *sess;
    const char *bases[2] = {API1, API2};
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
    json_decref(it_register(API1, &cl, user, PW, NULL));
    sess = it_login(API2, &cl, user, PW); /* its refresh and access tokens are used below */
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
        /* chat's readiness does not depend on the database, nor does chat-api's once it has
         * answered (api/README.md: an outage is answered 503 per request, the replica stays in
         * its Service) */
        assert_int_equal(http_status("CHAT_TEST_GW1_URL", "/readyz"), 200);
        assert_int_equal(http_status("CHAT_TEST_GW2_URL", "/readyz"), 200);
        assert_int_equal(http_status("CHAT_TEST_API1_URL", "/readyz"), 200);
        assert_int_equal(http_status("CHAT_TEST_API2_URL", "/readyz"), 200);
        if (ps_down_ms < 0 && http_status("CHAT_TEST_PERSISTER_URL", "/readyz") == 503)
            ps_down_ms = (long long)(it_now_ms() - t_stop);
        if (!mid_open && now - t_stop > OUTAGE_MS / 2) { /* new clients connect and chat */
            it_stream_open(&mid, "pgmid", GW2, GW1);
            it_stream_send_acked(&mid, 3);
            mid_open = true;
        }
    }
    /* still down: every send so far acknowledged and delivered */
    delivered_down = all_acked_and_delivered(st, &mid, mid_open, "down");
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
    total = all_acked_delivered_and_stored(st, &mid);
    stored_ms = (long long)(it_now_ms() - t_back);
    print_message("PostgreSQL back: first login after %lld ms, persister /readyz 200 after %lld "
                  "ms, all %d + %d acknowledged messages stored once after %lld ms\n",
                  login_ms, ps_ready_ms, total, mid.n, stored_ms);
    if (stored_ms > it_timeout(STORED_BACK_MS))
        fail_msg("rows stored only %lld ms after PostgreSQL was back", stored_ms);
    /* the refresh token refused as unavailable was not used up */
    json_decref(it_refresh_ok(API1, &cl, it_jstr(sess, "refresh_token")));
    json_decref(sess);
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_close(&st[i]);
    it_stream_close(&mid);
}

/* ---- PostgreSQL hung: the account requests run on a thread of their own, so the stream on
 * the main thread keeps its pace. No cmocka call off the main thread: answers are recorded and
 * checked after the join. */

#define HUNG_MAX 64 /* account requests recorded during the hang */

struct answer {
    const char *what;
    int status;
    char *resp; /* free() */
    long long ms;
};

static void ask(struct answer *a,
                const char *what,
                const char *method,
                const char *base,
                const char *path,
                const char *bearer,
                const char *body,
                const char *xff)
{
    struct it_req rq = {.method = method, .base = base, .path = path, .bearer = bearer};
    int64_t t0 = it_now_ms();

    rq.body = body ? body : (strcmp(method, "GET") == 0 ? NULL : "");
    rq.xff = xff;
    a->what = what;
    a->status = it_http_req(&rq, &a->resp, NULL);
    a->ms = (long long)(it_now_ms() - t0);
}

struct burst {
    struct answer a;
    const char *base;
    char body[96];
    char xff[32];
};

static void *burst_login(void *arg)
{
    struct burst *b = arg;

    ask(&b->a, "burst login", "POST", b->base, "/api/v1/auth/login", NULL, b->body, b->xff);
    return NULL;
}

struct hung {
    const char *base[2];
    const char *access; /* of the test user's session */
    char login[128];    /* the test user's credentials */
    char refresh[160];  /* its refresh token */
    atomic_bool stop;   /* set by the main thread */
    int n;              /* answers in a[] */
    struct answer a[HUNG_MAX];
    struct burst burst[BURST]; /* BURST parallel logins, unknown names, a network each */
    bool burst_done;
};

static void *hung_requests(void *arg)
{
    struct hung *h = arg;
    int pid = (int)(getpid() % 1000000);

    for (int round = 0; !atomic_load(&h->stop) && h->n + 2 <= HUNG_MAX; round++) {
        const char *other = h->base[(round + 1) % 2];
        char xff[32], body[96], name[32];

        if (round == 1) { /* the workers have met the hang by now: a burst */
            pthread_t th[BURST];
            int started = 0;

            for (int i = 0; i < BURST; i++) {
                snprintf(name, sizeof(name), "pghb%d_%d", pid, i);
                h->burst[i].base = h->base[i % 2];
                snprintf(h->burst[i].body, sizeof(h->burst[i].body),
                         "{\"username\":\"%s\",\"password\":\"%s\"}", name, PW);
                snprintf(h->burst[i].xff, sizeof(h->burst[i].xff), "203.0.%d.7", 100 + i);
            }
            for (; started < BURST; started++)
                if (pthread_create(&th[started], NULL, burst_login, &h->burst[started]) != 0)
                    break;
            for (int i = 0; i < started; i++)
                pthread_join(th[i], NULL);
            h->burst_done = started == BURST;
        }
        snprintf(xff, sizeof(xff), "198.51.102.%d", 1 + h->n);
        ask(&h->a[h->n++], "login", "POST", h->base[round % 2], "/api/v1/auth/login", NULL,
            h->login, xff);
        snprintf(xff, sizeof(xff), "198.51.102.%d", 1 + h->n);
        switch (round % 3) {
        case 0:
            snprintf(name, sizeof(name), "pghn%d_%d", pid, round);
            snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", name, PW);
            ask(&h->a[h->n++], "register", "POST", other, "/api/v1/auth/register", NULL, body, xff);
            break;
        case 1:
            ask(&h->a[h->n++], "refresh", "POST", other, "/api/v1/auth/refresh", NULL, h->refresh,
                xff);
            break;
        default:
            ask(&h->a[h->n++], "me", "GET", other, "/api/v1/users/me", h->access, NULL, xff);
            break;
        }
    }
    return NULL;
}

/* a must be a 503 `unavailable` within bound_ms; frees its body. */
static void check_hung_answer(struct answer *a, int bound_ms)
{
    json_t *out = a->resp ? json_loads(a->resp, 0, NULL) : NULL;

    free(a->resp);
    a->resp = NULL;
    it_check_error(a->status, out, 503, "unavailable", a->what);
    json_decref(out);
    if (a->ms > bound_ms)
        fail_msg("%s answered 503 only after %lld ms with PostgreSQL hung (bound %d ms)", a->what,
                 a->ms, bound_ms);
}

static void test_postgres_paused(void **state)
{
    static const char *const tags[NSTREAMS] = {"pha", "phb", "phc"};
    const char *tx[NSTREAMS] = {GW1, GW2, GW1}, *rx[NSTREAMS] = {GW2, GW1, GW1};
    const char *bases[2] = {API1, API2};
    struct it_stream st[NSTREAMS], mid;
    struct it_client cl;
    struct hung *h = calloc(1, sizeof(*h));
    pthread_t th;
    char user[32];
    json_t *sess;
    int pg_ms = it_env_int("CHAT_PG_TIMEOUT_MS", 5000);
    /* a request may wait for the job ahead of it on its worker (one deadline) and then its own
     * (one more): 2 deadlines, not the whole hang, which lasts 3 times that at least */
    int bound = 2 * pg_ms + it_timeout(ANSWER_MARGIN_MS);
    int pause_ms = 6 * pg_ms > PAUSE_MIN_MS ? 6 * pg_ms : PAUSE_MIN_MS;
    int64_t t_pause, t_back, now, next_check;
    long long lat_max = 0, lat_min = -1, lat_sum = 0, burst_max = 0, back_ms[2] = {-1, -1};
    long long stored_ms;
    int round = 0, sends_hung = 0, delivered = 0, total = 0;
    bool mid_open = false;

    (void)state;
    assert_non_null(h);
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_open(&st[i], tags[i], tx[i], rx[i]);
    it_client_new(&cl, "198.51.100");
    it_name_new(user, sizeof(user), "pghang");
    json_decref(it_register(API1, &cl, user, PW, NULL));
    sess = it_login(API2, &cl, user, PW); /* its tokens are used during the hang */
    h->base[0] = API1;
    h->base[1] = API2;
    h->access = it_access(sess);
    snprintf(h->login, sizeof(h->login), "{\"username\":\"%s\",\"password\":\"%s\"}", user, PW);
    snprintf(h->refresh, sizeof(h->refresh), "{\"refresh_token\":\"%s\"}",
             it_jstr(sess, "refresh_token"));
    atomic_init(&h->stop, false);
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_send_acked(&st[i], 5);

    assert_int_equal(it_fixture("pause", "postgres"), 0);
    t_pause = next_check = it_now_ms();
    assert_int_equal(pthread_create(&th, NULL, hung_requests, h), 0);
    while ((now = it_now_ms()) - t_pause < pause_ms) { /* the steady stream, by the clock */
        for (int i = 0; i < NSTREAMS; i++)
            it_stream_send(&st[i]);
        sends_hung += NSTREAMS;
        pump_all(st, NSTREAMS, PACE_MS);
        if (now < next_check)
            continue;
        next_check = now + ACCT_EVERY_MS;
        /* chat's readiness does not depend on the database */
        assert_int_equal(http_status("CHAT_TEST_GW1_URL", "/readyz"), 200);
        assert_int_equal(http_status("CHAT_TEST_GW2_URL", "/readyz"), 200);
        if (!mid_open && now - t_pause > pause_ms / 2) { /* new clients connect and chat */
            it_stream_open(&mid, "phmid", GW2, GW1);
            it_stream_send_acked(&mid, 3);
            mid_open = true;
        }
    }
    atomic_store(&h->stop, true);
    pthread_join(th, NULL); /* its last request ends within bound, PostgreSQL still hung */
    delivered = all_acked_and_delivered(st, &mid, mid_open, "hung");
    for (int i = 0; i < h->n; i++) {
        check_hung_answer(&h->a[i], bound);
        lat_max = h->a[i].ms > lat_max ? h->a[i].ms : lat_max;
        lat_min = lat_min < 0 || h->a[i].ms < lat_min ? h->a[i].ms : lat_min;
        lat_sum += h->a[i].ms;
    }
    if (!h->burst_done || h->n < 4)
        fail_msg("only %d account requests and %s burst in %d ms of hang", h->n,
                 h->burst_done ? "a" : "no", pause_ms);
    for (int i = 0; i < BURST; i++) {
        check_hung_answer(&h->burst[i].a, bound);
        burst_max = h->burst[i].a.ms > burst_max ? h->burst[i].a.ms : burst_max;
    }
    print_message("PostgreSQL hung %d ms (CHAT_PG_TIMEOUT_MS %d): %d sends meanwhile, all "
                  "acknowledged, and all %d acknowledged so far delivered; %d account requests "
                  "answered 503 unavailable in %lld-%lld ms (mean %lld ms, curl included); %d "
                  "parallel logins all 503 within %lld ms\n",
                  pause_ms, pg_ms, sends_hung, delivered, h->n, lat_min, lat_max, lat_sum / h->n,
                  BURST, burst_max);

    assert_int_equal(it_fixture("resume", "postgres"), 0);
    t_back = it_now_ms();
    /* both replicas are back, each on its own (a 503 meanwhile: the pause after its last try) */
    while (back_ms[0] < 0 || back_ms[1] < 0) { /* the stream goes on while they recover */
        int s, r = round++ % 2;

        if (it_now_ms() - t_back > it_timeout(LOGIN_BACK_MS))
            fail_msg("chat-api %d: no login succeeded within %d ms of PostgreSQL's resume",
                     1 + (back_ms[0] >= 0), it_timeout(LOGIN_BACK_MS));
        for (int i = 0; i < NSTREAMS; i++)
            it_stream_send(&st[i]);
        pump_all(st, NSTREAMS, 50);
        if (back_ms[r] >= 0)
            continue;
        s = try_login(bases[r], user);
        if (s == 200)
            back_ms[r] = (long long)(it_now_ms() - t_back);
        else if (s != 503)
            fail_msg("login after PostgreSQL's resume answered %d", s);
    }
    total = all_acked_delivered_and_stored(st, &mid);
    stored_ms = (long long)(it_now_ms() - t_back);
    print_message("PostgreSQL resumed: first login after %lld ms (chat-api 1) and %lld ms "
                  "(chat-api 2), all %d + %d acknowledged messages stored once after %lld ms\n",
                  back_ms[0], back_ms[1], total, mid.n, stored_ms);
    if (stored_ms > it_timeout(STORED_BACK_MS))
        fail_msg("rows stored only %lld ms after PostgreSQL's resume", stored_ms);
    /* the refresh token refused as unavailable was not used up */
    json_decref(it_refresh_ok(API1, &cl, it_jstr(sess, "refresh_token")));
    json_decref(sess);
    free(h);
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_close(&st[i]);
    it_stream_close(&mid);
}

/* A failed test leaves PostgreSQL running (and not paused) for the tests after it. */
static int teardown(void **state)
{
    (void)state;
    (void)it_fixture("resume", "postgres");
    return it_fixture("start", "postgres") == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_postgres_stopped_15s, teardown),
        cmocka_unit_test_teardown(test_postgres_paused, teardown),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
