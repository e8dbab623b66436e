/* api/src/main.c - chat-api: configuration, signals, the HTTP server. The main thread only
 * waits for SIGTERM/SIGINT; libmicrohttpd's threads serve the requests (api.h). On a signal the
 * server stops taking connections and waits for the requests in progress, then the process
 * exits 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "chat/config.h"
#include "chat/log.h"

#include "api.h"

static volatile sig_atomic_t stop_flag; /* the only process-global mutable */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

#define O(f) offsetof(struct api_cfg, f)
static const struct chat_cfg_opt opts[] = {
    {"log-level", "CHAT_LOG_LEVEL", CHAT_CFG_STR, 0, 0, "info", O(log_level), CHAT_CFG_REQUIRED,
     "log level: debug|info|warn|error"},
    {"api-addr", "CHAT_API_ADDR", CHAT_CFG_STR, 0, 0, "127.0.0.1", O(listen_addr),
     CHAT_CFG_REQUIRED, "listen address (IPv4)"},
    {"api-port", "CHAT_API_PORT", CHAT_CFG_INT, 0, 65535, "8081", O(port), 0,
     "listen port (0: any free one, logged)"},
    {"api-threads", "CHAT_API_THREADS", CHAT_CFG_INT, 1, 256, "4", O(threads), 0,
     "request threads; each serves a request start to finish and may block"},
    {"api-max-body", "CHAT_API_MAX_BODY", CHAT_CFG_INT, 64, 16777216, "16384", O(max_body), 0,
     "largest request body in bytes (more: 413 too_big)"},
    {"api-request-timeout-s", "CHAT_API_REQUEST_TIMEOUT_S", CHAT_CFG_INT, 1, 3600, "10",
     O(request_timeout_s), 0, "a connection sending nothing for this long is closed"},
    {"api-max-conns", "CHAT_API_MAX_CONNS", CHAT_CFG_INT, 1, 1000000, "4096", O(max_conns), 0,
     "connections at once; more are refused"},
};
#undef O

int main(int argc, char **argv)
{
    struct api_cfg cfg;
    struct api a;
    struct sigaction sa = {.sa_handler = on_signal};
    int rc, level;

    memset(&cfg, 0, sizeof(cfg));
    rc = chat_cfg_load(opts, CHAT_CFG_COUNT(opts), &cfg, argc, argv,
                       "chat-api: the REST service of chatcluster (api/README.md)");
    if (rc != CHAT_OK) {
        chat_cfg_free(opts, CHAT_CFG_COUNT(opts), &cfg);
        return rc == 1 ? 0 : 2;
    }
    level = chat_log_level_parse(cfg.log_level);
    if (level < 0) {
        (void)fprintf(stderr, "config error: CHAT_LOG_LEVEL: '%s' is not debug|info|warn|error\n",
                      cfg.log_level);
        chat_cfg_free(opts, CHAT_CFG_COUNT(opts), &cfg);
        return 2;
    }
    chat_log_init("api", level);
    chat_cfg_dump(opts, CHAT_CFG_COUNT(opts), &cfg);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    memset(&a, 0, sizeof(a));
    a.cfg = &cfg;
    a.routes = api_routes;
    a.nroutes = api_nroutes;
    rc = api_server_start(&a);
    while (rc == CHAT_OK && !stop_flag)
        pause(); /* a signal ends it */
    api_server_stop(&a);
    chat_log(CHAT_LOG_INFO, "exit %s", rc == CHAT_OK ? "clean" : chat_strerror(rc));
    chat_cfg_free(opts, CHAT_CFG_COUNT(opts), &cfg);
    return rc == CHAT_OK ? 0 : 1;
}
