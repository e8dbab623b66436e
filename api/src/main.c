/* api/src/main.c - chat-api: configuration, start-up, signals. The main thread only waits for
 * SIGTERM/SIGINT; libmicrohttpd's threads serve the requests and the outbox relay and retention
 * threads run beside them (api.h). On a signal /readyz turns 503, the server stops taking
 * connections and waits for the requests in progress, the relay finishes its batch, and the
 * process exits 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include "chat/account.h"
#include "chat/log.h"
#include "chat/mem.h"

#include "acct/api_purge.h"
#include "api.h"
#include "bus/api_ids.h"
#include "bus/api_kafka.h"
#include "bus/api_outbox.h"
#include "db/api_conns.h"

static volatile sig_atomic_t stop_flag; /* the only process-global mutable */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Keys, the dummy hash, the node name: what the handlers read and never change. */
static int prepare(struct api *a, struct api_cfg *cfg)
{
    char host[256];

    if (!cfg->node_name[0]) {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "chat-api");
        host[sizeof(host) - 1] = '\0';
        chat_free(cfg->node_name);
        cfg->node_name = chat_xstrdup(host);
    }
    if (chat_jwt_keyring_parse(cfg->jwt_keys, &a->keys) != CHAT_OK) {
        (void)fprintf(stderr,
                      "config error: CHAT_JWT_KEYS: need SECRET or kid:SECRET,... with secrets of "
                      "at least %d bytes\n",
                      CHAT_JWT_MIN_SECRET);
        return CHAT_EINVAL;
    }
    /* also OpenSSL's one-time set-up, before the first request rather than in it */
    if (chat_jwt_selftest(&a->keys) != CHAT_OK) {
        chat_log(CHAT_LOG_ERROR,
                 "access tokens: a token signed with the first key does not verify");
        return CHAT_EIO;
    }
    if (chat_passwd_dummy(cfg->password_cost, a->dummy_hash, sizeof(a->dummy_hash)) != CHAT_OK) {
        chat_log(CHAT_LOG_ERROR, "password hashing (yescrypt cost %d) does not work",
                 cfg->password_cost);
        return CHAT_EIO;
    }
    if (cfg->rest_max_pending >= cfg->threads) {
        /* REST sends waiting for Kafka hold request threads: at least one stays for the rest */
        int was = cfg->rest_max_pending;
        cfg->rest_max_pending = cfg->threads > 1 ? cfg->threads - 1 : 1;
        chat_log(CHAT_LOG_WARN, "CHAT_REST_MAX_PENDING %d >= CHAT_API_THREADS %d: using %d", was,
                 cfg->threads, cfg->rest_max_pending);
    }
    a->limits = (struct chat_limits){cfg->max_frame, cfg->max_text, cfg->max_rooms, cfg->rate_per_s,
                                     cfg->rate_burst};
    return CHAT_OK;
}

int main(int argc, char **argv)
{
    struct api_cfg cfg;
    struct api a;
    struct sigaction sa = {.sa_handler = on_signal};
    int rc, level;

    memset(&cfg, 0, sizeof(cfg));
    rc = api_config_load(&cfg, argc, argv);
    if (rc != CHAT_OK) {
        api_config_free(&cfg);
        return rc == 1 ? 0 : 2;
    }
    level = chat_log_level_parse(cfg.log_level);
    if (level < 0) {
        (void)fprintf(stderr, "config error: CHAT_LOG_LEVEL: '%s' is not debug|info|warn|error\n",
                      cfg.log_level);
        api_config_free(&cfg);
        return 2;
    }
    chat_log_init("api", level);
    api_config_dump(&cfg);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    memset(&a, 0, sizeof(a));
    a.cfg = &cfg;
    a.routes = api_routes;
    a.nroutes = api_nroutes;
    pthread_mutex_init(&a.conns_mu, NULL);
    rc = prepare(&a, &cfg);
    if (rc == CHAT_OK)
        rc = api_kafka_start(&a, &a.kafka);
    if (rc == CHAT_OK)
        rc = api_ids_start(&a);
    if (rc == CHAT_OK)
        rc = api_outbox_start(&a);
    if (rc == CHAT_OK)
        rc = api_purge_start(&a);
    if (rc == CHAT_OK)
        rc = api_server_start(&a);
    while (rc == CHAT_OK && !stop_flag)
        pause(); /* a signal ends it */
    atomic_store(&a.draining, true);
    api_server_stop(&a); /* waits for the requests in progress */
    api_purge_stop(&a);
    api_outbox_stop(&a);
    api_ids_stop(&a); /* after the server: no request makes an id any more */
    api_kafka_stop(a.kafka, cfg.produce_timeout_ms);
    api_conns_close_all(&a);
    chat_jwt_keyring_fini(&a.keys);
    pthread_mutex_destroy(&a.conns_mu);
    chat_log(CHAT_LOG_INFO, "exit %s", rc == CHAT_OK ? "clean" : chat_strerror(rc));
    api_config_free(&cfg);
    return rc == CHAT_OK ? 0 : rc == CHAT_EINVAL ? 2 : 1;
}
