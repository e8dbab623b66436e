/* it_limits.c - limits with their own gateway and chat-api (tight settings) on the shared
 * cluster: one send bucket per user across a gateway's connections, one per user for REST sends
 * across chat-api replicas (429 + Retry-After), the frame rate, max rooms, the keep-alive's
 * pings and idle timeout, the drain's wait for acks due from a paused broker; and start-up
 * failures exit with a status instead of crashing. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "chat/proto.h"
#include "chat/time.h"

#include "it_acct.h"
#include "it_stream.h"
#include "it_user.h"
#include "it_util.h"

static pid_t gw_pid, api_pid;
static pid_t own_pid = -1; /* a test's own gateway: killed by teardown if a failure left it */
static bool kafka_paused;  /* resumed by teardown if a failure left the broker stopped */
static char gw_url[64], api_url[64];

/* Starts service bin (chat-gateway or chat-api) listening on port with extra environment
 * (NULL-terminated "K=V" list); returns its pid. */
static pid_t
spawn_service(const char *binname, int port, const char *const *extra, const char *logname)
{
    char log[512];
    pid_t pid;

    if (own_pid > 0) { /* a failed test's own service: not left running behind the next one */
        kill(own_pid, SIGKILL);
        waitpid(own_pid, NULL, 0);
        own_pid = -1;
    }
    snprintf(log, sizeof(log), "%s/logs/%s.log", it_env("CHAT_TEST_DIR"), logname);
    pid = fork();
    if (pid == 0) {
        char portv[16], bin[512];
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        snprintf(portv, sizeof(portv), "%d", port);
        snprintf(bin, sizeof(bin), "%s/%s", it_env("CHAT_TEST_BIN"), binname);
        setenv("CHAT_PORT", portv, 1);
        setenv("CHAT_LISTEN_ADDR", "127.0.0.1", 1);
        setenv("CHAT_API_PORT", portv, 1);
        setenv("CHAT_API_ADDR", "127.0.0.1", 1);
        setenv("CHAT_PG_DSN", it_env("CHAT_TEST_PG_DSN"), 1);
        setenv("CHAT_NODE_NAME", logname, 1);
        setenv("CHAT_KAFKA_BROKERS", it_env("CHAT_KAFKA_BROKERS"), 1);
        setenv("CHAT_JWT_KEYS", it_env("CHAT_JWT_KEYS"), 1);
        setenv("CHAT_JWT_ISSUER", it_env("CHAT_JWT_ISSUER"), 1);
        setenv("CHAT_REDIS_PORT", it_env("CHAT_TEST_REDIS_PORT"), 1);
        for (int i = 0; extra && extra[i]; i++)
            putenv((char *)(uintptr_t)extra[i]);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static pid_t spawn_gateway(int port, const char *const *extra, const char *logname)
{
    return spawn_service("chat-gateway", port, extra, logname);
}

/* A gateway of its own (spawn_gateway) on port, once ready: it has read chat.rooms and joined
 * its groups, 30 s at most (seconds when the machine is loaded). url gets its base URL. */
static pid_t spawn_ready_gateway(int port, const char *const *extra, const char *logname, char *url)
{
    pid_t pid;

    snprintf(url, 64, "http://127.0.0.1:%d", port);
    pid = spawn_gateway(port, extra, logname);
    for (int i = 0; i < it_timeout(600); i++) {
        if (it_http_get(url, "/readyz", NULL) == 200)
            return pid;
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    it_sh("tail -n 20 '%s/logs/%s.log' >&2", it_env("CHAT_TEST_DIR"), logname); /* why, in CI */
    fail_msg("%s did not become ready", logname);
    return -1;
}

/* Exit status of pid within timeout_ms, or -1. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(20 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int setup(void **state)
{
    static const char *const extra[] = {"CHAT_RATE_PER_S=1",
                                        "CHAT_RATE_BURST=3",
                                        "CHAT_FRAME_RATE_PER_S=5",
                                        "CHAT_FRAME_RATE_BURST=20",
                                        "CHAT_MAX_ROOMS=2",
                                        "CHAT_ROOMS_ADHOC=1",
                                        "CHAT_API_REQUEST_TIMEOUT_S=2",
                                        NULL};
    int port = it_free_ports(2); /* the gateway's and chat-api's */
    (void)state;
    snprintf(gw_url, sizeof(gw_url), "http://127.0.0.1:%d", port);
    gw_pid = spawn_gateway(port, extra, "gw-limits");
    snprintf(api_url, sizeof(api_url), "http://127.0.0.1:%d", port + 1);
    api_pid = spawn_service("chat-api", port + 1, extra, "api-limits");
    for (int i = 0; i < it_timeout(600); i++) { /* readiness (30 s at most), every 50 ms */
        if (it_http_get(gw_url, "/readyz", NULL) == 200 &&
            it_http_get(api_url, "/readyz", NULL) == 200)
            return 0;
        usleep(50 * 1000);
    }
    fprintf(stderr, "gw-limits or api-limits did not become ready\n");
    it_sh("tail -n 20 '%s/logs/gw-limits.log' '%s/logs/api-limits.log' >&2",
          it_env("CHAT_TEST_DIR"), it_env("CHAT_TEST_DIR"));
    return -1;
}

static int teardown(void **state)
{
    (void)state;
    if (kafka_paused)
        (void)it_fixture("resume", "kafka");
    if (own_pid > 0) {
        kill(own_pid, SIGKILL);
        waitpid(own_pid, NULL, 0);
    }
    kill(gw_pid, SIGTERM);
    kill(api_pid, SIGTERM);
    return wait_exit(gw_pid, it_timeout(15000)) == 0 && wait_exit(api_pid, it_timeout(15000)) == 0
               ? 0
               : -1;
}

/* Sends n frames and counts acks and rate_limited errors. */
static void send_burst(struct wsc *c, const char *room, int n, int *acks, int *limited)
{
    static int sent; /* distinct texts: the spam rule (4 of 5 the same) must not trip here */

    for (int i = 0; i < n; i++) {
        char text[16];
        snprintf(text, sizeof(text), "x%d", sent++);
        it_send(c, "{s:s, s:s, s:s}", "type", "send", "room", room, "text", text);
    }
    for (int got = 0; got < n; got++) {
        char *t;
        if (wsc_recv_text(c, &t, it_timeout(5000), NULL) <= 0)
            fail_msg("reply %d of %d missing", got, n);
        if (strstr(t, "\"type\":\"ack\""))
            (*acks)++;
        else if (strstr(t, "\"code\":\"rate_limited\""))
            (*limited)++;
        else
            got--; /* a message or presence frame: not a reply */
        wsc_free_text(t);
    }
}

/* A REST send of tok's user to room through chat-api: its status; *retry gets Retry-After. */
static int rest_send(const char *tok, const char *room, int *retry)
{
    char path[96];

    snprintf(path, sizeof(path), "/api/v1/rooms/%s/messages", room);
    return it_http("POST", api_url, path, tok, "{\"text\":\"r\"}", NULL, NULL, retry);
}

static void test_send_rate_is_per_user_across_connections_and_rest(void **state)
{
    (void)state;
    char *tok = it_token("ratey", 600), room[32];
    int retry = -1;
    struct wsc *a = it_connect(gw_url, tok), *b = it_connect(gw_url, tok);
    int acks = 0, limited = 0;

    snprintf(room, sizeof(room), "rate-%d", (int)getpid());
    it_join(a, room);
    it_join(b, room);
    send_burst(a, room, 3, &acks, &limited); /* the burst of 3 is used up here */
    send_burst(b, room, 2, &acks, &limited); /* a second connection of the same user: limited */
    /* with a bucket per connection b would have had 3 tokens of its own: nothing limited.
     * Shared per user, at least one of b's sends is refused (refill: 1 token per second) */
    assert_int_equal(acks + limited, 5);
    assert_true(limited >= 1);
    assert_true(acks >= 3);
    /* REST sends have a bucket per user of their own, in Redis for every chat-api replica: the
     * burst of 3 passes, then 429 with Retry-After */
    for (int i = 0, st = 0; st != 429; i++) { /* refill 1/s: a slow machine may get one more */
        st = rest_send(tok, room, &retry);
        if (st != 200 && st != 429)
            fail_msg("REST send %d answered %d", i, st);
        if (i == 20)
            fail_msg("20 REST sends at 1/s and a burst of 3, none refused");
        if (st == 429 && i < 3)
            fail_msg("REST send %d refused within the burst of 3", i);
    }
    assert_true(retry >= 1);
    /* and the bucket refills: 1 per second */
    usleep(1500 * 1000);
    acks = limited = 0;
    send_burst(b, room, 1, &acks, &limited);
    assert_int_equal(acks, 1);
    wsc_close(a);
    wsc_close(b);
    free(tok);
}

/* SIGTERM while a send awaits Kafka (the broker paused): the client gets bye at once, a new
 * upgrade 503 unavailable with Retry-After: 1, another send overloaded, /readyz 503 draining=1;
 * the connection stays open for its ack, which it gets once the broker answers, then close 1001,
 * and the process exits 0. CHAT_DRAIN_MS is long so that only the ack can end the drain. */
static void test_drain_waits_for_pending_acks(void **state)
{
    static const char *const slow[] = {"CHAT_DRAIN_MS=120000", "CHAT_ROOMS_ADHOC=1", NULL};
    int port = it_free_ports(1), close_code = 0;
    char url[64], err[2048], room[64], *tok = it_token("drain_user", 600), *body = NULL, *text;
    struct wsc *c, *d;
    json_t *f;
    pid_t pid;

    (void)state;
    own_pid = pid = spawn_ready_gateway(port, slow, "gw-drain", url);
    snprintf(room, sizeof(room), "drain-%lld", (long long)chat_now_ms());
    c = it_connect(url, tok);
    it_join(c, room);
    assert_int_equal(it_fixture("pause", "kafka"), 0);
    kafka_paused = true;
    it_send(c, "{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "text", "in flight",
            "client_msg_id", "d1");
    for (int i = 0; it_metric(url, "chat_gateway_sends_total") < 1; i++) { /* produced */
        if (i > it_timeout(200))
            fail_msg("the send was not produced");
        usleep(50 * 1000);
    }
    kill(pid, SIGTERM);
    f = it_wait_frame(c, "bye", NULL, NULL, "ack", it_timeout(10000));
    if (!f)
        fail_msg("no bye while draining");
    assert_int_equal(json_integer_value(json_object_get(f, "code")), 1001);
    json_decref(f);
    d = wsc_connect(url, "/ws", NULL, it_timeout(5000), err, sizeof(err));
    if (d)
        fail_msg("a draining node upgraded a connection");
    if (!strstr(err, "HTTP/1.1 503") || !strcasestr(err, "\r\nretry-after: 1\r\n") ||
        !strstr(err, "\"code\":\"unavailable\""))
        fail_msg("expected 503 unavailable with Retry-After: 1, got: %.400s", err);
    assert_int_equal(it_http_get(url, "/readyz", &body), 503);
    if (!strstr(body, "draining=1"))
        fail_msg("/readyz while draining: %s", body);
    free(body);
    it_expect_send_error(c, room, "d2", "overloaded"); /* no new sends, the old one still due */
    assert_int_equal(it_fixture("resume", "kafka"), 0);
    kafka_paused = false;
    f = it_reply_to(c, "d1", NULL);
    if (!f || strcmp(json_string_value(json_object_get(f, "type")), "ack") != 0)
        fail_msg("the send in flight got no ack before the close");
    json_decref(f);
    while (wsc_recv_text(c, &text, it_timeout(10000), &close_code) > 0)
        wsc_free_text(text);
    assert_int_equal(close_code, 1001);
    wsc_close(c);
    own_pid = -1;
    assert_int_equal(wait_exit(pid, it_timeout(15000)), 0);
    free(tok);
}

/* A gateway with the production default CHAT_ROOMS_ADHOC=0 knows the rooms chat-api made (from
 * chat.rooms, read whole before it is ready) and refuses every other room id. */
static void test_unknown_rooms_refused_by_default(void **state)
{
    int port = it_free_ports(1);
    char url[64];
    pid_t pid;
    struct wsc *c;
    json_t *j;
    static const char *const dflt[] = {"CHAT_ROOMS_ADHOC=0", NULL}; /* the default, spelled out */

    (void)state;
    pid = spawn_ready_gateway(port, dflt, "gw-rooms", url);
    c = it_connect(url, NULL);
    it_send(c, "{s:s, s:s}", "type", "join", "room", "no-such-room-anywhere");
    j = it_wait_type(c, "error", it_timeout(5000));
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "not_found");
    json_decref(j);
    it_join(c, "lobby"); /* seeded by migration 0005, known from chat.rooms */
    wsc_close(c);
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, it_timeout(15000)), 0);
}

/* The keep-alive (proto/README.md, "Keep-alive"), on a gateway with CHAT_IDLE_PING_S=P and
 * CHAT_IDLE_TIMEOUT_S=3P (P = 1 s, times CHAT_TEST_TIMEOUT_MULT): a client that answers pings
 * and sends nothing else stays connected past the timeout; one that answers none is pinged,
 * then closed with 4009 idle_timeout, not before 3P of silence. */
static void test_keepalive(void **state)
{
    int port = it_free_ports(1);
    char url[64], *t = NULL;
    static char ping_env[32], timeout_env[32];
    static const char *const idle[] = {ping_env, timeout_env, NULL};
    int ping_s = it_timeout(1000) / 1000, code = 0, gone_code = 0, r;
    struct wsc *live, *gone;
    long long t0, pings0, gone_ms = -1;
    pid_t pid;

    (void)state;
    snprintf(ping_env, sizeof(ping_env), "CHAT_IDLE_PING_S=%d", ping_s);
    snprintf(timeout_env, sizeof(timeout_env), "CHAT_IDLE_TIMEOUT_S=%d", 3 * ping_s);
    pid = spawn_ready_gateway(port, idle, "gw-idle", url);
    pings0 = it_metric(url, "chat_gateway_pings_total");
    t0 = it_mono_ms(); /* before gone's upgrade: its silence starts after this */
    gone = it_connect(url, NULL);
    wsc_set_pong(gone, false);
    live = it_connect(url, NULL); /* then read at once: it must answer its pings */
    /* both read in turn (live answers its pings) until gone is closed and live has answered 4
     * pings: a ping comes after P of silence, so the 4th is over 4P after the connect */
    while ((gone_ms < 0 || wsc_pings(live) < 4) && it_mono_ms() - t0 < it_timeout(30000)) {
        if (gone_ms < 0 && (r = wsc_recv_text(gone, &t, 50, &code)) != 0) {
            if (r < 0) {
                gone_ms = it_mono_ms() - t0;
                gone_code = code;
            }
            wsc_free_text(t);
        }
        r = wsc_recv_text(live, &t, 50, &code);
        if (r < 0)
            fail_msg("the live connection closed (%d) after %lld ms and %d pings", code,
                     it_mono_ms() - t0, wsc_pings(live));
        wsc_free_text(t);
    }
    assert_int_equal(gone_code, 4009);
    assert_true(gone_ms >= 3000LL * ping_s - 10); /* never before the timeout (the ms grain) */
    assert_true(wsc_pings(gone) >= 1);
    assert_true(wsc_pings(live) >= 4);
    assert_true(it_metric(url, "chat_gateway_pings_total") >= pings0 + 5);
    assert_true(it_metric(url, "chat_gateway_idle_timeouts_total") >= 1);
    it_join(live, "lobby"); /* still served (a room chat-api made: no ad-hoc rooms here) */
    wsc_close(live);
    wsc_close(gone);
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, it_timeout(15000)), 0);
}

/* A REST connection that sends nothing is closed after CHAT_API_REQUEST_TIMEOUT_S (2 s for
 * api-limits), not before; one that sends its request in time is answered. */
static void test_api_silent_connection_closed(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    long long t0, gone = -1;
    char buf[256];
    int fd;

    (void)state;
    sa.sin_port = htons((uint16_t)atoi(strrchr(api_url, ':') + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    t0 = it_mono_ms();
    while (gone < 0 && it_mono_ms() - t0 < it_timeout(30000)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) == 1 && read(fd, buf, sizeof(buf)) <= 0)
            gone = it_mono_ms() - t0;
    }
    close(fd);
    if (gone < 0)
        fail_msg("a silent REST connection was still open after 30 s");
    assert_true(gone >= 2000 - 10); /* not before the timeout (the ms grain) */
    assert_int_equal(it_http_get(api_url, "/healthz", NULL), 200);
}

/* Room creations per user (CHAT_ROOM_CREATE_PER_USER per CHAT_AUTH_WINDOW_S; here 2 an hour on a
 * chat-api of its own): POST /api/v1/rooms and POST /api/v1/direct share the bucket; past it,
 * 429 rate_limited with Retry-After. */
static void test_room_creation_limit(void **state)
{
    static const char *const two[] = {"CHAT_ROOM_CREATE_PER_USER=2", "CHAT_AUTH_WINDOW_S=3600",
                                      NULL};
    struct it_client cl;
    struct it_user u, v, w;
    char url[64], p[160];
    json_t *room = json_pack("{s:s, s:s}", "kind", "public", "name", "Limited");
    int port = it_free_ports(1), retry = 0, st;
    json_t *out = NULL;
    pid_t pid;

    (void)state;
    it_client_new(&cl, "198.51.100");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    own_pid = pid = spawn_service("chat-api", port, two, "api-create");
    for (int i = 0; it_http_get(url, "/readyz", NULL) != 200; i++) {
        if (i > it_timeout(600))
            fail_msg("api-create did not become ready");
        usleep(50 * 1000);
    }
    it_user_new(&u, "rcu");
    it_user_new(&v, "rcv");
    it_user_new(&w, "rcw");
    json_decref(it_api_ok(201, url, "POST", "/api/v1/rooms", u.token, &cl, json_incref(room)));
    json_decref(it_api_ok(201, url, "POST", "/api/v1/rooms", u.token, &cl, json_incref(room)));
    snprintf(p, sizeof(p), "/api/v1/direct/%s", v.name);
    st = it_api(url, "POST", p, u.token, &cl, NULL, &out, &retry);
    it_check_error(st, out, 429, "rate_limited", "a direct room past the limit");
    assert_true(retry >= 1);
    json_decref(out);
    json_decref(it_api_ok(201, url, "POST", p, w.token, &cl, NULL)); /* another user's bucket */
    json_decref(it_api_ok(200, url, "POST", p, w.token, &cl, NULL)); /* counted too */
    it_api_err(429, "rate_limited", url, "POST", "/api/v1/rooms", w.token, &cl, json_incref(room));
    json_decref(room);
    own_pid = -1;
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, it_timeout(15000)), 0);
    it_user_free(&u);
    it_user_free(&v);
    it_user_free(&w);
}

/* Connections held before their first byte are capped at CHAT_MAX_HANDSHAKES: over it the oldest
 * is dropped (chat_gateway_accept_dropped_total). Deterministic: the gateway is stopped
 * (SIGSTOP) while three silent clients connect (the kernel queues them), so on SIGCONT it
 * accepts all three in one go; the one dropped is closed at once, and the two held are closed at
 * CHAT_HEADER_TIMEOUT_S (1 s here: no TCP_DEFER_ACCEPT). */
static void test_max_handshakes_drops_oldest(void **state)
{
    static const char *const cap[] = {"CHAT_MAX_HANDSHAKES=2", "CHAT_HEADER_TIMEOUT_S=1", NULL};
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int port = it_free_ports(1), fds[3];
    char url[64];
    pid_t pid;

    (void)state;
    own_pid = pid = spawn_ready_gateway(port, cap, "gw-handshakes", url);
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    for (int i = 0; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
    }
    assert_int_equal(kill(pid, SIGCONT), 0);
    /* no other connection meanwhile (a /metrics request is one, and would be held too): the
     * three sockets are watched until each is closed, the counters read after */
    for (int i = 0; i < 3; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        char b;
        if (poll(&p, 1, it_timeout(10000)) != 1 || read(fds[i], &b, 1) > 0)
            fail_msg("silent connection %d was not closed", i);
        close(fds[i]);
    }
    assert_int_equal(it_metric(url, "chat_gateway_accept_dropped_total"), 1);
    assert_int_equal(it_metric(url, "chat_gateway_header_timeouts_total"), 2);
    own_pid = -1;
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, it_timeout(15000)), 0);
}

/* hello: protocol version 3, the node's name, user null when anonymous (the token's sub else),
 * and the limits this gateway runs with, the same as chat-api's GET /api/v1/config. */
static void test_hello_and_config_limits(void **state)
{
    static const char *const keys[] = {"max_frame", "max_text", "max_rooms", "rate_per_s",
                                       "rate_burst"};
    char *body = NULL, *tok = it_token("hello_user", 600);
    json_t *h, *cfg, *hl, *cl;
    struct wsc *c;

    (void)state;
    c = it_connect_ex(gw_url, NULL, false, &h);
    assert_int_equal(json_integer_value(json_object_get(h, "v")), CHAT_PROTO_VERSION);
    assert_true(json_is_string(json_object_get(h, "node")) &&
                json_string_length(json_object_get(h, "node")) > 0);
    assert_true(json_is_null(json_object_get(h, "user")));
    hl = json_object_get(h, "limits");
    assert_int_equal(json_integer_value(json_object_get(hl, "rate_per_s")), 1); /* setup() */
    assert_int_equal(json_integer_value(json_object_get(hl, "rate_burst")), 3);
    assert_int_equal(json_integer_value(json_object_get(hl, "max_rooms")), 2);
    assert_int_equal(it_http_get(api_url, "/api/v1/config", &body), 200);
    cfg = json_loads(body, 0, NULL);
    assert_non_null(cfg);
    cl = json_object_get(cfg, "limits");
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!json_is_integer(json_object_get(hl, keys[i])) ||
            !json_equal(json_object_get(hl, keys[i]), json_object_get(cl, keys[i])))
            fail_msg("limits.%s: hello and /api/v1/config differ", keys[i]);
    }
    json_decref(cfg);
    free(body);
    json_decref(h);
    wsc_close(c);
    c = it_connect_ex(gw_url, tok, true, &h);
    assert_string_equal(json_string_value(json_object_get(h, "user")), "hello_user");
    json_decref(h);
    wsc_close(c);
    free(tok);
}

/* At CHAT_MAX_CONNS an upgrade is refused before 101: 503 overloaded with Retry-After: 1 (and
 * counted); once a connection closes there is room again. */
static void test_max_conns(void **state)
{
    static const char *const two[] = {"CHAT_MAX_CONNS=2", NULL};
    int port = it_free_ports(1);
    char url[64], err[2048];
    struct wsc *a, *b, *c;
    pid_t pid;

    (void)state;
    own_pid = pid = spawn_ready_gateway(port, two, "gw-maxconns", url);
    a = it_connect(url, NULL);
    b = it_connect(url, NULL);
    c = wsc_connect(url, "/ws", NULL, it_timeout(5000), err, sizeof(err));
    if (c)
        fail_msg("a third connection was upgraded at CHAT_MAX_CONNS=2");
    if (!strstr(err, "HTTP/1.1 503") || !strcasestr(err, "\r\nretry-after: 1\r\n") ||
        !strstr(err, "\"code\":\"overloaded\""))
        fail_msg("expected 503 overloaded with Retry-After: 1, got: %.400s", err);
    wsc_close(b);
    for (int i = 0; !c && i < it_timeout(100); i++) { /* the close reaches the gateway */
        c = wsc_connect(url, "/ws", NULL, it_timeout(5000), err, sizeof(err));
        if (!c)
            usleep(50 * 1000);
    }
    if (!c)
        fail_msg("no room after a close: %.200s", err);
    assert_true(it_ping(c));
    wsc_close(a);
    wsc_close(c);
    own_pid = -1;
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, it_timeout(15000)), 0);
}

static void test_frame_rate_and_max_rooms(void **state)
{
    (void)state;
    struct wsc *c = it_connect(gw_url, NULL);
    int limited = 0, sends_limited = 0;
    json_t *j;

    it_join(c, "lim-a");
    it_join(c, "lim-b");
    it_send(c, "{s:s, s:s}", "type", "join", "room", "lim-c");
    j = it_wait_type(c, "error", it_timeout(5000));
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "code")), "too_many_rooms");
    json_decref(j);
    /* 40 pings, then sends (anonymous: auth_required when they pass), each with a ref and the
     * sends with a client_msg_id: every frame gets one answer carrying them, the refusals of
     * the frame rate too (read before the frame is decoded) */
    for (int i = 0; i < 44; i++) {
        char ref[16], cmid[16];
        snprintf(ref, sizeof(ref), "r%d", i);
        snprintf(cmid, sizeof(cmid), "c%d", i);
        if (i < 40)
            it_send(c, "{s:s, s:s}", "type", "ping", "ref", ref);
        else
            it_send(c, "{s:s, s:s, s:s, s:s, s:s}", "type", "send", "room", "lim-a", "text", "x",
                    "ref", ref, "client_msg_id", cmid);
    }
    for (int i = 0; i < 44; i++) {
        char ref[16], cmid[16], *t = NULL;
        const char *type, *code, *got;

        snprintf(ref, sizeof(ref), "r%d", i);
        snprintf(cmid, sizeof(cmid), "c%d", i);
        for (;;) { /* the rooms' presence frames come at any time */
            if (wsc_recv_text(c, &t, it_timeout(5000), NULL) <= 0)
                fail_msg("no answer to frame %d", i);
            j = json_loads(t, 0, NULL);
            wsc_free_text(t);
            type = json_string_value(json_object_get(j, "type"));
            if (strcmp(type, "presence") != 0)
                break;
            json_decref(j);
        }
        code = json_string_value(json_object_get(j, "code"));
        if (strcmp(type, "error") == 0 && strcmp(code, "rate_limited") == 0) {
            limited++;
            sends_limited += i >= 40;
            assert_true(json_integer_value(json_object_get(j, "retry_ms")) > 0);
        }
        got = json_string_value(json_object_get(j, "ref"));
        if (!got || strcmp(got, ref) != 0)
            fail_msg("the answer to frame %d (%s %s) has ref %s", i, type, code ? code : "",
                     got ? got : "(none)");
        got = json_string_value(json_object_get(j, "client_msg_id"));
        if (i >= 40 ? !got || strcmp(got, cmid) != 0 : got != NULL)
            fail_msg("the answer to frame %d (%s %s) has client_msg_id %s", i, type,
                     code ? code : "", got ? got : "(none)");
        json_decref(j);
    }
    assert_true(limited >= 15); /* burst 20 of 40 pings, a few refilled meanwhile */
    assert_true(sends_limited >= 1);
    wsc_close(c);
}

static void test_startup_failures_exit_cleanly(void **state)
{
    static const char *const bad_key[] = {"CHAT_JWT_KEYS=short", NULL};
    static const char *const no_kafka[] = {"CHAT_KAFKA_BROKERS=127.0.0.1:9", NULL};
    static const char *const bad_num[] = {"CHAT_MAX_TEXT=12x", "CHAT_PORT=0", NULL};
    (void)state;
    assert_int_equal(wait_exit(spawn_gateway(it_free_ports(1), bad_key, "gw-badkey"), 10000), 2);
    assert_int_equal(wait_exit(spawn_gateway(it_free_ports(1), bad_num, "gw-badnum"), 10000), 2);
    assert_int_equal(
        wait_exit(spawn_gateway(it_free_ports(1), no_kafka, "gw-nokafka"), it_timeout(60000)), 1);
}

/* The persister checks its Kafka settings before it connects anywhere: a bad CHAT_KAFKA_EXTRA
 * exits 2 at once, with PostgreSQL unreachable. A migration run (CHAT_MIGRATE_ONLY) stopped
 * before PostgreSQL answered did not migrate: it exits 1, not 0. */
static void test_persister_startup_failures(void **state)
{
    char metrics[48], log[512];
    const char *const bad_extra[] = {"CHAT_KAFKA_EXTRA=no.such.property=1",
                                     "CHAT_PG_DSN=postgresql://127.0.0.1:9/none", metrics, NULL};
    const char *const migrate[] = {"CHAT_MIGRATE_ONLY=1",
                                   "CHAT_PG_DSN=postgresql://127.0.0.1:9/none", metrics, NULL};
    pid_t pid;

    (void)state;
    snprintf(metrics, sizeof(metrics), "CHAT_METRICS_PORT=%d", it_free_ports(1));
    assert_int_equal(wait_exit(spawn_service("chat-persister", 0, bad_extra, "ps-badextra"), 10000),
                     2);
    snprintf(log, sizeof(log), "%s/logs/ps-migrate.log", it_env("CHAT_TEST_DIR"));
    pid = spawn_service("chat-persister", 0, migrate, "ps-migrate");
    for (int i = 0; it_sh("grep -qs 'postgres not ready' '%s'", log) != 0; i++) {
        if (i > it_timeout(200))
            fail_msg("the migration run did not try PostgreSQL");
        usleep(50 * 1000);
    }
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, it_timeout(15000)), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_rate_is_per_user_across_connections_and_rest),
        cmocka_unit_test(test_frame_rate_and_max_rooms),
        cmocka_unit_test(test_hello_and_config_limits),
        cmocka_unit_test(test_api_silent_connection_closed),
        cmocka_unit_test(test_room_creation_limit),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_max_handshakes_drops_oldest),
        cmocka_unit_test(test_drain_waits_for_pending_acks),
        cmocka_unit_test(test_unknown_rooms_refused_by_default),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_startup_failures_exit_cleanly),
        cmocka_unit_test(test_persister_startup_failures),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, setup, teardown);
}
