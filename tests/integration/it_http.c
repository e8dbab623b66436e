/* it_http.c - the gateway's HTTP edge, spoken byte for byte over a raw socket: malformed
 * WebSocket upgrades get an HTTP error instead of 101 (RFC 6455 4.2.1), methods a path does not
 * take get 405 with Allow, and the gateway keeps serving afterwards. */
#include <setjmp.h>
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
#include <unistd.h>

#include <cmocka.h>
#include <strings.h>

#include "it_util.h"

static int gw_port, api_port;

static int raw_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* The response so far holds its headers and the Content-Length bytes after them (a 101 has no
 * body: the headers are enough). */
static bool response_complete(const char *r)
{
    const char *end = strstr(r, "\r\n\r\n"), *cl;

    if (!end)
        return false;
    if (strncmp(r, "HTTP/1.1 101", 12) == 0)
        return true;
    cl = strcasestr(r, "\r\ncontent-length:");
    if (!cl || cl > end)
        return true;
    return strlen(end + 4) >= (size_t)strtol(cl + 17, NULL, 10);
}

/* Sends req as is on a new connection to port and returns the response (headers and body). */
static char *raw_request_to(int port, const char *req)
{
    static char buf[16384];
    size_t n = 0;
    int fd = raw_connect(port);

    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    buf[0] = '\0';
    while (!response_complete(buf) && n < sizeof(buf) - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t r;
        if (poll(&p, 1, it_timeout(5000)) != 1)
            break;
        r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
    }
    close(fd);
    return strdup(buf);
}

/* The same on the gateway's port. */
static char *raw_request(const char *req)
{
    return raw_request_to(gw_port, req);
}

static int status_of(const char *resp)
{
    return strncmp(resp, "HTTP/1.", 7) == 0 ? (int)strtol(resp + 9, NULL, 10) : -1;
}

/* The value of header name (case-insensitive) in resp's headers, copied into out ("" if none). */
static const char *header(const char *resp, const char *name, char *out, size_t cap)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nl = strlen(name);

    out[0] = '\0';
    for (const char *l = strstr(resp, "\r\n"); l && (!end || l < end); l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, nl) == 0 && l[2 + nl] == ':') {
            const char *v = l + 3 + nl, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            break;
        }
    }
    return out;
}

/* An upgrade request for path over version with the given key and WebSocket version lines. */
static char *upgrade(const char *path, const char *version, const char *key, const char *wsv)
{
    char req[1024];

    snprintf(req, sizeof(req),
             "GET %s %s\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "%s%s%s%s%s%s\r\n",
             path, version, key ? "Sec-WebSocket-Key: " : "", key ? key : "", key ? "\r\n" : "",
             wsv ? "Sec-WebSocket-Version: " : "", wsv ? wsv : "", wsv ? "\r\n" : "");
    return raw_request(req);
}

static const char good_key[] = "dGhlIHNhbXBsZSBub25jZQ==";

static void expect_error(char *resp, int status, const char *code)
{
    if (status_of(resp) != status)
        fail_msg("expected %d %s, got: %.300s", status, code, resp);
    const char *body = strstr(resp, "\r\n\r\n");
    json_t *j = json_loads(body + 4, 0, NULL);
    if (!j)
        fail_msg("error body is not JSON: %.300s", resp);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        code);
    json_decref(j);
    free(resp);
}

static void test_valid_upgrade_switches(void **state)
{
    char *r = upgrade("/ws", "HTTP/1.1", good_key, "13"), v[64];
    (void)state;

    assert_int_equal(status_of(r), 101);
    /* RFC 6455 4.2.2: base64(SHA-1(key + GUID)), the RFC's own example */
    assert_string_equal(header(r, "Sec-WebSocket-Accept", v, sizeof(v)),
                        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    free(r);
}

static void test_other_websocket_version_gets_426(void **state)
{
    static const char *const versions[] = {"8", "12", "14", "013", NULL};
    char v[16];
    (void)state;

    for (int i = 0; versions[i]; i++) {
        char *r = upgrade("/ws", "HTTP/1.1", good_key, versions[i]);
        assert_string_equal(header(r, "Sec-WebSocket-Version", v, sizeof(v)), "13");
        expect_error(r, 426, "bad_request");
    }
    char *r = upgrade("/ws", "HTTP/1.1", good_key, NULL); /* no version at all */
    assert_string_equal(header(r, "Sec-WebSocket-Version", v, sizeof(v)), "13");
    expect_error(r, 426, "bad_request");
}

static void test_bad_key_gets_400(void **state)
{
    static const char *const keys[] = {
        "notbase64!!",              /* not base64 */
        "AAAAAAAAAAAAAAAAAAAAAA",   /* 22 characters, no padding */
        "AAAAAAAAAAAAAAAAAAAA",     /* base64 of 15 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAA", /* base64 of 18 bytes */
        "dGhlIHNhbXBsZSBub25jZR==", /* 16 bytes, but bits past the 128th are set */
        "dGhlIHNhbXBsZSBub25j*Q==", /* a character outside the alphabet */
        NULL,
    };
    (void)state;

    for (int i = 0; keys[i]; i++)
        expect_error(upgrade("/ws", "HTTP/1.1", keys[i], "13"), 400, "bad_request");
    expect_error(upgrade("/ws", "HTTP/1.1", NULL, "13"), 400, "bad_request");
}

static void test_bad_http_version_gets_400(void **state)
{
    (void)state;
    expect_error(upgrade("/ws", "HTTP/9.9", good_key, "13"), 400, "bad_request");
    expect_error(upgrade("/ws", "HTTP/1.0", good_key, "13"), 400, "bad_request");
    expect_error(raw_request("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"), 400, "bad_request");
    expect_error(raw_request("GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n"), 400, "bad_request");
    /* chat-api too, for a 1.x; libmicrohttpd answers a version from 2 on (or before 1.0)
     * itself: 505, not our JSON body (proto/README.md section 9) */
    expect_error(raw_request_to(api_port, "GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n"), 400,
                 "bad_request");
    expect_error(raw_request_to(api_port, "GET /api/v1/config HTTP/1.9\r\nHost: x\r\n\r\n"), 400,
                 "bad_request");
    for (int i = 0; i < 2; i++) {
        char *r = raw_request_to(api_port, i ? "GET /healthz HTTP/0.9\r\nHost: x\r\n\r\n"
                                             : "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n");
        if (status_of(r) != 505)
            fail_msg("chat-api: expected 505, got: %.200s", r);
        free(r);
    }
}

/* Methods and sizes at the edge (proto/README.md section 9): chat-api 501 for a method it does
 * not know and 414 over libmicrohttpd's memory; the gateway 403 (libwebsockets), 414 for a path
 * over 512 bytes, and a close without an answer over 4096 bytes of request line and headers. */
static void test_unknown_methods_and_long_requests(void **state)
{
    static char req[48000];
    char *r;

    (void)state;
    expect_error(raw_request_to(api_port, "BREW /api/v1/config HTTP/1.1\r\nHost: x\r\n\r\n"), 501,
                 "bad_request");
    r = raw_request("BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    if (status_of(r) != 403)
        fail_msg("gateway, unknown method: %.200s", r);
    free(r);
    snprintf(req, sizeof(req), "GET /healthz/%0600d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    expect_error(raw_request(req), 414, "bad_request");
    snprintf(req, sizeof(req), "GET /healthz?%05000d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    r = raw_request(req);
    if (r[0])
        fail_msg("gateway, 5 kB request: %.200s", r);
    free(r);
    snprintf(req, sizeof(req), "GET /api/v1/config?%040000d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    r = raw_request_to(api_port, req);
    if (status_of(r) != 414)
        fail_msg("chat-api, 40 kB request: %.200s", r);
    free(r);
}

/* REST: the Bearer scheme in any case carries the token (an account route with a token of no
 * account answers 404, past the token check); another scheme is bad_token. */
static void test_rest_authorization_schemes(void **state)
{
    char *tok = it_token("123456789", 600), req[4600];

    (void)state;
    snprintf(req, sizeof(req),
             "GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: bearer %s\r\n\r\n", tok);
    expect_error(raw_request_to(api_port, req), 404, "not_found");
    expect_error(raw_request_to(api_port, "GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\n"
                                          "Authorization: Basic dXNlcjpwYXNz\r\n\r\n"),
                 401, "bad_token");
    free(tok);
}

static void test_upgrade_elsewhere_gets_404(void **state)
{
    (void)state;
    expect_error(upgrade("/api/v1/config", "HTTP/1.1", good_key, "13"), 404, "not_found");
}

static void expect_405(const char *method, const char *path, const char *allow);

/* /ws is the gateway's path: a GET without the upgrade is told to upgrade (426, naming the
 * protocol and its version), another method gets 405 with Allow: GET */
static void test_ws_without_upgrade(void **state)
{
    char v[64], *r;

    (void)state;
    r = raw_request("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_string_equal(header(r, "Upgrade", v, sizeof(v)), "websocket");
    assert_string_equal(header(r, "Sec-WebSocket-Version", v, sizeof(v)), "13");
    expect_error(r, 426, "bad_request");
    expect_405("POST", "/ws", "GET");
    expect_405("DELETE", "/ws", "GET");
}

static void expect_405_at(int port, const char *method, const char *path, const char *allow)
{
    char req[512], v[64];

    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", method,
             path);
    char *r = raw_request_to(port, req);
    if (strcmp(header(r, "Allow", v, sizeof(v)), allow) != 0)
        fail_msg("%s %s: expected Allow: %s in %.300s", method, path, allow, r);
    expect_error(r, 405, "method_not_allowed");
}

static void expect_405(const char *method, const char *path, const char *allow)
{
    expect_405_at(gw_port, method, path, allow);
}

/* chat-api, the REST endpoints' own server, answers the same way */
static void expect_api_405(const char *method, const char *path, const char *allow)
{
    expect_405_at(api_port, method, path, allow);
}

static void test_wrong_method_gets_405_with_allow(void **state)
{
    static const char *const methods[] = {"DELETE", "PUT", "PATCH", NULL};
    (void)state;

    for (int i = 0; methods[i]; i++) {
        expect_api_405(methods[i], "/api/v1/rooms/lobby/messages", "GET, POST");
        expect_405(methods[i], "/healthz", "GET");
        expect_405(methods[i], "/readyz", "GET");
        expect_api_405(methods[i], "/healthz", "GET");
        expect_api_405(methods[i], "/api/v1/config", "GET");
        expect_api_405(methods[i], "/api/v1/auth/login", "POST");
        expect_api_405(methods[i], "/api/v1/users/me", "GET");
        expect_api_405(methods[i], "/api/v1/users/me/nickname", "POST");
    }
    expect_api_405("DELETE", "/api/v1/rooms/lobby/join", "POST");
    expect_405("POST", "/healthz", "GET");
    expect_api_405("POST", "/api/v1/config", "GET");
    expect_api_405("GET", "/api/v1/auth/login", "POST");
    /* no such path: 404 whatever the method; the gateway has no account endpoints */
    expect_error(raw_request("DELETE /api/v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n"), 404,
                 "not_found");
    expect_error(raw_request("POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: "
                             "2\r\n\r\n{}"),
                 404, "not_found");
    expect_error(raw_request_to(api_port, "DELETE /api/v1/nothing HTTP/1.1\r\nHost: x\r\n\r\n"),
                 404, "not_found");
    /* OPTIONS says what the path takes */
    char v[64],
        *r = raw_request_to(api_port, "OPTIONS /api/v1/users/me HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(r), 200);
    assert_string_equal(header(r, "Allow", v, sizeof(v)), "GET");
    free(r);
}

/* The gateway's counter name from /metrics, or -1. */
static long long metric(const char *name)
{
    return it_metric(it_env("CHAT_TEST_GW1_URL"), name);
}

/* Waits until the server closes fd (EOF or reset); false after timeout_ms. */
static bool closed_by_server(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;

    if (poll(&p, 1, timeout_ms) != 1)
        return false;
    return read(fd, &c, 1) <= 0;
}

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CHAT_HEADER_TIMEOUT_S is 2 in the test cluster: a connection that never sends a byte is
 * closed that long after it connected (proto/README.md section 1, "Request deadline": within a
 * quarter of a second more; the kernel holds it part of the time, TCP_DEFER_ACCEPT, the gateway
 * the rest), many of them do not keep anyone else out, and each is counted. */
static void test_silent_connections_are_dropped(void **state)
{
    enum { N = 300 };
    static int fds[N];
    static long long t0[N];
    long long before = metric("chat_gateway_header_timeouts_total");
    long long timeout_ms = atoi(it_env("CHAT_HEADER_TIMEOUT_S")) * 1000LL, late, at;
    (void)state;

    assert_true(before >= 0);
    assert_true(timeout_ms > 0);
    for (int i = 0; i < N; i++) {
        fds[i] = raw_connect(gw_port);
        t0[i] = mono_ms();
    }
    /* meanwhile a real client connects and chats */
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW1_URL"), NULL);
    assert_true(it_ping(c));
    char *r = raw_request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(r), 200);
    free(r);
    /* every silent one is closed by the server within the timeout (+ the quarter-second sweep,
     * and scheduling slack for a loaded machine) of its connect: not after the kernel's deferral
     * plus the timeout (it was 3 s + 2 s here); none sooner than the timeout (the first one is
     * watched from before its time: the others are checked in order, each before its own
     * deadline, which follows the one before) */
    late = timeout_ms + it_timeout(1500); /* the deferral alone held them 3 s before (it was 2x) */
    for (int i = 0; i < N; i++) {
        long long left = t0[i] + late - mono_ms();
        if (!closed_by_server(fds[i], left > 0 ? (int)left : 0))
            fail_msg("silent connection %d still open %lld ms after its connect", i,
                     mono_ms() - t0[i]);
        at = mono_ms() - t0[i];
        if (i == 0) {
            print_message("the first silent connection was closed after %lld ms\n", at);
            if (at < timeout_ms - 250)
                fail_msg("silent connection closed after %lld ms, before the timeout", at);
        }
        close(fds[i]);
    }
    assert_true(metric("chat_gateway_header_timeouts_total") >= before + N);
    /* the real client was not affected */
    assert_true(it_ping(c));
    wsc_close(c);
}

static void test_gateway_still_serves(void **state)
{
    (void)state;
    char *r = raw_request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(status_of(r), 200);
    free(r);
    struct wsc *c = it_connect(it_env("CHAT_TEST_GW1_URL"), NULL);
    assert_true(it_ping(c));
    wsc_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_upgrade_switches),
        cmocka_unit_test(test_other_websocket_version_gets_426),
        cmocka_unit_test(test_bad_key_gets_400),
        cmocka_unit_test(test_bad_http_version_gets_400),
        cmocka_unit_test(test_upgrade_elsewhere_gets_404),
        cmocka_unit_test(test_rest_authorization_schemes),
        cmocka_unit_test(test_unknown_methods_and_long_requests),
        cmocka_unit_test(test_ws_without_upgrade),
        cmocka_unit_test(test_wrong_method_gets_405_with_allow),
        cmocka_unit_test(test_silent_connections_are_dropped),
        cmocka_unit_test(test_gateway_still_serves),
    };
    it_env_load();
    gw_port = atoi(it_env("CHAT_TEST_GW1_PORT"));
    api_port = atoi(it_env("CHAT_TEST_API1_PORT"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
