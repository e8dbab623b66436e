/* main.c - chat-gateway: configuration, start-up, the event loop, drain and teardown. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "chat/config.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/shared_cfg.h"
#include "chat/spam.h"
#include "chat/time.h"

#include "bus/gw_kafka.h"
#include "cache/gw_redis.h"
#include "core/gw.h"
#include "room/gw_map.h"
#include "room/gw_recent.h"
#include "room/gw_room.h"
#include "session/gw_events.h"
#include "ws/gw_accept.h"
#include "ws/gw_conn.h"
#include "ws/gw_ws.h"

#define OPT_INT(flag, env, min, max, def, field, help)                                     \
    {                                                                                      \
        flag, env, CHAT_CFG_INT, min, max, def, offsetof(struct gw_config, field), 0, help \
    }
#define OPT_STR(flag, env, def, field, flags, help)                                        \
    {                                                                                      \
        flag, env, CHAT_CFG_STR, 0, 0, def, offsetof(struct gw_config, field), flags, help \
    }

static const struct chat_cfg_opt gw_opts[] = {
    OPT_STR("listen-addr",
            "CHAT_LISTEN_ADDR",
            "127.0.0.1",
            listen_addr,
            CHAT_CFG_REQUIRED,
            "address to listen on (0.0.0.0 in containers)"),
    OPT_INT("port", "CHAT_PORT", 1, 65535, "8080", port, "HTTP/WebSocket port"),
    OPT_STR(
        "node-name", "CHAT_NODE_NAME", "", node_name, 0, "unique node name (default: host name)"),
    OPT_STR(
        "redis-host", "CHAT_REDIS_HOST", "127.0.0.1", redis_host, CHAT_CFG_REQUIRED, "Redis host"),
    OPT_INT("redis-port", "CHAT_REDIS_PORT", 1, 65535, "6379", redis_port, "Redis port"),
    OPT_STR("web-root",
            "CHAT_WEB_ROOT",
            "",
            web_root,
            0,
            "directory served at / (the web client); empty: none"),
    OPT_STR("log-level", "CHAT_LOG_LEVEL", "info", log_level, 0, "debug, info, warn or error"),
    OPT_INT(
        "max-conns", "CHAT_MAX_CONNS", 1, 10000000, "100000", max_conns, "connections per process"),
    OPT_INT("outq-max-msgs",
            "CHAT_OUTQ_MAX_MSGS",
            4,
            1000000,
            "4096",
            outq_max_msgs,
            "frames queued per connection before it is closed as a slow consumer"),
    OPT_INT("outq-max-bytes",
            "CHAT_OUTQ_MAX_BYTES",
            1024,
            1 << 30,
            "4194304",
            outq_max_bytes,
            "bytes queued per connection before it is closed as a slow consumer"),
    OPT_INT("recovery-bytes",
            "CHAT_RECOVERY_BYTES",
            0,
            1 << 30,
            "67108864",
            recovery_bytes,
            "recent room events kept for join {since} over all rooms (bytes; least recently used "
            "rooms go first); 0: no recovery"),
    OPT_INT("recovery-per-room",
            "CHAT_RECOVERY_PER_ROOM",
            1,
            100000,
            "1000",
            recovery_per_room,
            "recent events kept per room for join {since}"),
    OPT_INT("frame-rate-per-s",
            "CHAT_FRAME_RATE_PER_S",
            1,
            1000000,
            "100",
            frame_rate_per_s,
            "client frames of any type per second per connection, sustained"),
    OPT_INT("frame-rate-burst",
            "CHAT_FRAME_RATE_BURST",
            1,
            1000000,
            "200",
            frame_rate_burst,
            "burst of client frames per connection"),
    OPT_INT("max-pending",
            "CHAT_MAX_PENDING",
            1,
            1000000,
            "1000",
            max_pending,
            "sends per connection waiting for Kafka"),
    OPT_INT("produce-timeout-ms",
            "CHAT_PRODUCE_TIMEOUT_MS",
            100,
            300000,
            "5000",
            produce_timeout_ms,
            "after this a send not stored by Kafka is refused"),
    OPT_INT("partition-check-ms",
            "CHAT_PARTITION_CHECK_MS",
            100,
            3600000,
            "10000",
            partition_check_ms,
            "how often the partition count of the messages topic is re-read; a change makes "
            "the node refuse to serve until restarted"),
    OPT_INT("idle-ping-s",
            "CHAT_IDLE_PING_S",
            1,
            3600,
            "30",
            idle_ping_s,
            "ping a connection silent for this long"),
    OPT_INT("idle-timeout-s",
            "CHAT_IDLE_TIMEOUT_S",
            2,
            7200,
            "75",
            idle_timeout_s,
            "close a connection silent for this long"),
    OPT_INT("header-timeout-s",
            "CHAT_HEADER_TIMEOUT_S",
            1,
            60,
            "5",
            header_timeout_s,
            "drop a new connection that has not sent its request within this long"),
    OPT_INT("max-handshakes",
            "CHAT_MAX_HANDSHAKES",
            1,
            10000000,
            "10000",
            max_handshakes,
            "connections held before their first byte; over it the oldest is dropped"),
    OPT_INT("listen-backlog",
            "CHAT_LISTEN_BACKLOG",
            1,
            65535,
            "4096",
            listen_backlog,
            "kernel accept queue of the listening socket (capped by net.core.somaxconn)"),
    OPT_INT("drain-ms",
            "CHAT_DRAIN_MS",
            0,
            600000,
            "5000",
            drain_ms,
            "on SIGTERM, time to flush sends and say bye"),
    OPT_INT("max-errors",
            "CHAT_MAX_ERRORS",
            1,
            100000,
            "50",
            max_errors,
            "malformed frames in a row before the connection is closed"),
    OPT_INT("session-warn-s",
            "CHAT_SESSION_WARN_S",
            1,
            3600,
            "60",
            session_warn_s,
            "send session_expiring this long before a socket's token expires"),
    CHAT_TOKEN_CFG_OPTS(struct gw_config),
    CHAT_LIMIT_CFG_OPTS(struct gw_config),
    CHAT_ROOM_CFG_OPTS(struct gw_config),
    CHAT_SPAM_CFG_OPTS(struct gw_config, spam),
    OPT_INT("rooms-adhoc",
            "CHAT_ROOMS_ADHOC",
            0,
            1,
            "0",
            rooms_adhoc,
            "1: a room id no room of chat.rooms has (and not starting with _) may be joined as a "
            "public room with the node's limits; 0: join answers not_found"),
    CHAT_KAFKA_CFG_OPTS(struct gw_config, kafka),
};

static void on_signal(uv_signal_t *h, int signum)
{
    struct gw *gw = h->data;
    chat_log(CHAT_LOG_INFO, "signal %d: draining", signum);
    gw_ws_drain(gw);
}

/* A send bucket that has refilled completely carries no state: forget it. */
static bool bucket_idle(const struct gw_map_ent *e, void *ud)
{
    const struct gw *gw = ud;
    double refill = (double)(chat_mono_us() - e->bucket.at_us) * gw->cfg->rate_per_s / 1e6;
    return e->bucket.tokens + refill >= gw->cfg->rate_burst;
}

static void on_tick(uv_timer_t *t)
{
    struct gw *gw = t->data;

    gw_redis_tick(gw);
    gw_map_sweep(&gw->send_rates, bucket_idle, gw);
    gw_events_tick(gw);
    gw_kafka_events_poll(gw);
}

static void close_noop(uv_handle_t *h)
{
    (void)h;
}

static int create_lws(struct gw *gw)
{
    const struct gw_config *cfg = gw->cfg;
    /* /api: the REST API is chat-api's; here every /api path gets our JSON 404 (or 405), not
     * the file mount's page */
    static const char *const callback_paths[] = {"/api", "/healthz", "/readyz", "/metrics"};
    static struct lws_http_mount mounts[5];
    static lws_retry_bo_t retry;
    struct lws_context_creation_info info;
    void *loops[1] = {&gw->loop};
    struct lws_http_mount *prev = NULL;

    memset(mounts, 0, sizeof(mounts));
    for (int i = 0; i < 4; i++) {
        mounts[i].mountpoint = callback_paths[i];
        mounts[i].mountpoint_len = (unsigned char)strlen(callback_paths[i]);
        mounts[i].origin = "chat";
        mounts[i].origin_protocol = LWSMPRO_CALLBACK;
        if (prev)
            prev->mount_next = &mounts[i];
        prev = &mounts[i];
    }
    if (cfg->web_root[0]) {
        mounts[4].mountpoint = "/";
        mounts[4].mountpoint_len = 1;
        mounts[4].origin = cfg->web_root;
        mounts[4].def = "index.html";
        mounts[4].origin_protocol = LWSMPRO_FILE;
        prev->mount_next = &mounts[4];
    }
    /* no lws validity timers (0 s): the keep-alive is ours (gw_conn_keepalive), from the 1 s
     * sweep; lws 4.1 inserts each of those timers into one sorted list by a linear walk */
    memset(&retry, 0, sizeof(retry));

    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* ws/gw_accept.c listens and adopts */
    info.iface = cfg->listen_addr;
    info.protocols = gw_ws_protocols;
    info.mounts = mounts;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DISABLE_IPV6 |
                   LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    info.foreign_loops = loops;
    info.user = gw;
    info.retry_and_idle_policy = &retry;
    info.vhost_name = "chat";
    info.server_string = "chatcluster";
    info.count_threads = 1;
    info.timeout_secs_ah_idle = (unsigned)cfg->header_timeout_s; /* the whole request */
    gw->ctx = lws_create_context(&info);
    if (!gw->ctx) {
        chat_log(CHAT_LOG_ERROR, "cannot create the lws context");
        return CHAT_EIO;
    }
    if (gw_accept_start(gw) != CHAT_OK)
        return CHAT_EIO;
    chat_log(CHAT_LOG_INFO, "listening on %s:%d as node %s", cfg->listen_addr, cfg->port,
             cfg->node_name);
    return CHAT_OK;
}

static int gw_init(struct gw *gw, const struct gw_config *cfg)
{
    memset(gw, 0, sizeof(*gw));
    gw->cfg = cfg;
    gw->lease.node_num = -1;
    gw->prod_pipe[0] = gw->prod_pipe[1] = gw->cons_pipe[0] = gw->cons_pipe[1] = -1;
    gw->limits = (struct chat_limits){cfg->max_frame, cfg->max_text, cfg->max_rooms,
                                      cfg->rate_per_s, cfg->rate_burst};
    gw_room_index_init(&gw->rooms);
    gw->recent = gw_recent_new((size_t)cfg->recovery_bytes, (size_t)cfg->recovery_per_room);
    gw_map_init(&gw->users);
    gw_map_init(&gw->send_rates);
    chat_buf_init(&gw->scratch, LWS_PRE, 0);
    if (chat_jwt_keyring_parse(cfg->jwt_keys, &gw->keys) != CHAT_OK) {
        fprintf(stderr,
                "config error: CHAT_JWT_KEYS: need SECRET or kid:SECRET,... with "
                "secrets of at least %d bytes\n",
                CHAT_JWT_MIN_SECRET);
        return CHAT_EINVAL;
    }
    if (chat_jwt_selftest(&gw->keys) != CHAT_OK) { /* before the first client, not in its check */
        chat_log(CHAT_LOG_ERROR,
                 "access tokens: a token signed with the first key does not verify");
        return CHAT_EIO;
    }
    if (uv_loop_init(&gw->loop) != 0)
        return CHAT_EIO;
    gw->loop_ok = true;
    gw_map_init(&gw->revoked);
    gw_map_init(&gw->nicks);
    gw_map_init(&gw->room_cfg);
    gw_map_init(&gw->denied);
    gw_map_init(&gw->sanctions);
    uv_timer_init(&gw->loop, &gw->tick);
    gw->tick.data = gw;
    uv_prepare_init(&gw->loop, &gw->flush_prep);
    gw->flush_prep.data = gw;
    uv_unref((uv_handle_t *)&gw->flush_prep); /* runs while the loop does; keeps it alive not */
    uv_timer_init(&gw->loop, &gw->drain_timer);
    gw->drain_timer.data = gw;
    uv_signal_init(&gw->loop, &gw->sigterm);
    gw->sigterm.data = gw;
    uv_signal_init(&gw->loop, &gw->sigint);
    gw->sigint.data = gw;
    return CHAT_OK;
}

void gw_main_shutdown(struct gw *gw)
{
    if (gw->shut || !gw->loop_ok)
        return;
    gw->shut = true;
    uv_timer_stop(&gw->tick);
    uv_close((uv_handle_t *)&gw->tick, close_noop);
    gw_conn_flush(gw); /* what this turn queued; from now on writes wait for POLLOUT */
    gw_redis_flush(gw);
    uv_prepare_stop(&gw->flush_prep);
    uv_close((uv_handle_t *)&gw->flush_prep, close_noop);
    uv_timer_stop(&gw->drain_timer);
    uv_close((uv_handle_t *)&gw->drain_timer, close_noop);
    uv_signal_stop(&gw->sigterm);
    uv_close((uv_handle_t *)&gw->sigterm, close_noop);
    uv_signal_stop(&gw->sigint);
    uv_close((uv_handle_t *)&gw->sigint, close_noop);
    gw_redis_stop(gw);
    gw_redis_arm_kill(gw);
    gw_kafka_stop(gw);
    gw_accept_stop(gw);
    if (gw->ctx) /* on a running foreign loop: lws closes its handles asynchronously */
        lws_context_destroy(gw->ctx);
}

static void gw_fini(struct gw *gw)
{
    gw_main_shutdown(gw);
    if (gw->loop_ok)
        uv_run(&gw->loop, UV_RUN_DEFAULT); /* completes every close (no-op after a clean drain) */
    if (gw->shut && !uv_is_closing((uv_handle_t *)&gw->redis_kill)) {
        uv_close((uv_handle_t *)&gw->redis_kill, close_noop);
        uv_run(&gw->loop, UV_RUN_DEFAULT);
    }
    /* lws 4.1 on a foreign loop frees the context in a second destroy call, once the loop has
     * closed lws's handles */
    if (gw->ctx)
        lws_context_destroy(gw->ctx);
    gw->ctx = NULL;
    if (gw->loop_ok && uv_loop_close(&gw->loop) != 0)
        chat_log(CHAT_LOG_WARN, "event loop closed with handles still open");
    gw_kafka_destroy(gw);
    gw_map_fini(&gw->revoked);
    gw_map_fini(&gw->nicks);
    gw_map_fini(&gw->room_cfg);
    gw_map_fini(&gw->denied);
    gw_map_fini(&gw->sanctions);
    chat_free(gw->ev_cu.target);
    chat_free(gw->rooms_cu.target);
    chat_free(gw->sanctions_cu.target);
    gw_room_index_fini(&gw->rooms);
    gw_recent_free(gw->recent);
    gw->recent = NULL;
    chat_msg_unref(gw->presence_total);
    gw->presence_total = NULL;
    gw_map_fini(&gw->users);
    gw_map_fini(&gw->send_rates);
    chat_buf_fini(&gw->scratch);
    chat_jwt_keyring_fini(&gw->keys);
}

/* Before the loop waits: frames and Redis commands queued this turn go out (ws/gw_conn.c,
 * "writing at once"; cache/gw_redis.c). */
static void on_flush(uv_prepare_t *h)
{
    gw_conn_flush(h->data);
    gw_redis_flush(h->data);
}

int main(int argc, char **argv)
{
    struct gw_config cfg;
    struct gw gw;
    char host[256];
    int rc, level;

    memset(&cfg, 0, sizeof(cfg));
    rc = chat_cfg_load(gw_opts, CHAT_CFG_COUNT(gw_opts), &cfg, argc, argv,
                       "chat-gateway: the WebSocket node of chatcluster");
    level = cfg.log_level ? chat_log_level_parse(cfg.log_level) : CHAT_LOG_INFO;
    if (rc == CHAT_OK && level < 0) {
        fprintf(stderr, "config error: CHAT_LOG_LEVEL: '%s' is not debug|info|warn|error\n",
                cfg.log_level);
        rc = CHAT_EINVAL;
    }
    if (rc != CHAT_OK) {
        chat_cfg_free(gw_opts, CHAT_CFG_COUNT(gw_opts), &cfg);
        return rc == 1 ? 0 : 2;
    }
    if (!cfg.node_name[0]) {
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "gateway");
        host[sizeof(host) - 1] = '\0';
        chat_free(cfg.node_name);
        cfg.node_name = chat_xstrdup(host);
    }
    chat_log_init("gateway", level);
    chat_log_bridge_lws();
    signal(SIGPIPE, SIG_IGN);
    chat_cfg_dump(gw_opts, CHAT_CFG_COUNT(gw_opts), &cfg);

    rc = gw_init(&gw, &cfg);
    if (rc == CHAT_OK)
        rc = create_lws(&gw);
    if (rc == CHAT_OK)
        rc = gw_kafka_start(&gw);
    if (rc == CHAT_OK) {
        gw_redis_start(&gw);
        uv_timer_start(&gw.tick, on_tick, 1000, 1000);
        uv_prepare_start(&gw.flush_prep, on_flush);
        uv_signal_start(&gw.sigterm, on_signal, SIGTERM);
        uv_signal_start(&gw.sigint, on_signal, SIGINT);
        uv_run(&gw.loop, UV_RUN_DEFAULT);
    }
    gw_fini(&gw);
    chat_log(CHAT_LOG_INFO, "exit %s", rc == CHAT_OK ? "clean" : chat_strerror(rc));
    chat_cfg_free(gw_opts, CHAT_CFG_COUNT(gw_opts), &cfg);
    return rc == CHAT_OK ? 0 : rc == CHAT_EINVAL ? 2 : 1;
}
