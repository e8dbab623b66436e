/* tools/chat-kafka-dev.c - librdkafka's mock cluster as a process: the optional stand-in for
 * the local Kafka broker (scripts/lib/cluster.sh with CHAT_CLUSTER_KAFKA=mock).
 *
 * Local clusters and tests run a real Apache Kafka broker (scripts/lib/kafka.sh). This mock
 * stays for machines without Java and for a quick look: it starts in milliseconds, but its
 * fetches walk the whole retained log (it slows down within minutes), it holds empty fetches for
 * exactly fetch.wait.max.ms and it loses everything on restart: never measure with it.
 * It uses librdkafka's mock cluster (rdkafka_mock.h): this process owns a producer handle with no
 * bootstrap servers, starts a mock cluster of N brokers on random 127.0.0.1 ports, creates the
 * chatcluster topics (the mock has no CreateTopics API and auto-creates only 4 partitions), then
 * publishes the bootstrap list on stdout and, atomically (tmp + rename), in --bootstrap-file.
 * Any number of client processes then speak the real Kafka protocol to it.
 *
 * Signals (handled synchronously with sigwait on the main thread; no handler, no global):
 *   SIGTERM, SIGINT  destroy the cluster, remove the bootstrap file, exit 0
 *   SIGUSR1          take every broker down (fault injection: clients see a Kafka outage)
 *   SIGUSR2          bring every broker back up
 * Memory only: a restart loses every message and offset, and the ports change.
 * Exit codes: 0 clean shutdown or --help, 1 runtime failure, 2 configuration error. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "chat/config.h"
#include "chat/err.h"
#include "chat/log.h"
#include "chat/mem.h"

#define KDEV_MAX_BROKERS 16

struct kdev_cfg {
    char *log_level;       /* debug|info|warn|error */
    char *bootstrap_file;  /* "" = stdout only */
    int brokers;           /* mock brokers */
    int replication;       /* replication factor of every topic (<= brokers) */
    char *topic_messages;  /* owns; names shared with the services' CHAT_TOPIC_* */
    char *topic_events;    /* owns */
    char *topic_presence;  /* owns */
    char *topic_rooms;     /* owns */
    char *topic_sanctions; /* owns */
    int parts_messages;    /* partitions of each topic */
    int parts_events;
    int parts_presence;
    int parts_rooms;
    int parts_sanctions;
};

/* clang-format off */
static const struct chat_cfg_opt kdev_opts[] = {
    {"log-level", "CHAT_LOG_LEVEL", CHAT_CFG_STR, 0, 0, "info",
     offsetof(struct kdev_cfg, log_level), 0, "debug|info|warn|error"},
    {"bootstrap-file", "CHAT_KAFKA_DEV_BOOTSTRAP_FILE", CHAT_CFG_STR, 0, 0, "",
     offsetof(struct kdev_cfg, bootstrap_file), 0,
     "write the bootstrap list here (tmp + rename) once the topics exist; removed on exit"},
    {"brokers", "CHAT_KAFKA_DEV_BROKERS", CHAT_CFG_INT, 1, KDEV_MAX_BROKERS, "3",
     offsetof(struct kdev_cfg, brokers), 0, "number of mock brokers"},
    {"replication", "CHAT_KAFKA_DEV_REPLICATION", CHAT_CFG_INT, 1, KDEV_MAX_BROKERS, "3",
     offsetof(struct kdev_cfg, replication), 0, "replication factor of the topics (<= brokers)"},
    {"topic-messages", "CHAT_TOPIC_MESSAGES", CHAT_CFG_STR, 0, 0, "chat.messages",
     offsetof(struct kdev_cfg, topic_messages), CHAT_CFG_REQUIRED, "topic of chat messages"},
    {"messages-partitions", "CHAT_KAFKA_DEV_MESSAGES_PARTITIONS", CHAT_CFG_INT, 1, 1000, "12",
     offsetof(struct kdev_cfg, parts_messages), 0, "partitions of the messages topic"},
    {"topic-events", "CHAT_TOPIC_EVENTS", CHAT_CFG_STR, 0, 0, "chat.events",
     offsetof(struct kdev_cfg, topic_events), CHAT_CFG_REQUIRED, "topic of control events"},
    {"events-partitions", "CHAT_KAFKA_DEV_EVENTS_PARTITIONS", CHAT_CFG_INT, 1, 1000, "12",
     offsetof(struct kdev_cfg, parts_events), 0, "partitions of the events topic"},
    {"topic-presence", "CHAT_TOPIC_PRESENCE", CHAT_CFG_STR, 0, 0, "chat.presence",
     offsetof(struct kdev_cfg, topic_presence), CHAT_CFG_REQUIRED, "topic of presence counts"},
    {"presence-partitions", "CHAT_KAFKA_DEV_PRESENCE_PARTITIONS", CHAT_CFG_INT, 1, 1000, "3",
     offsetof(struct kdev_cfg, parts_presence), 0, "partitions of the presence topic"},
    {"topic-rooms", "CHAT_TOPIC_ROOMS", CHAT_CFG_STR, 0, 0, "chat.rooms",
     offsetof(struct kdev_cfg, topic_rooms), CHAT_CFG_REQUIRED, "topic of room settings"},
    {"rooms-partitions", "CHAT_KAFKA_DEV_ROOMS_PARTITIONS", CHAT_CFG_INT, 1, 1000, "3",
     offsetof(struct kdev_cfg, parts_rooms), 0, "partitions of the rooms topic"},
    {"topic-sanctions", "CHAT_TOPIC_SANCTIONS", CHAT_CFG_STR, 0, 0, "chat.sanctions",
     offsetof(struct kdev_cfg, topic_sanctions), CHAT_CFG_REQUIRED, "topic of mutes and bans"},
    {"sanctions-partitions", "CHAT_KAFKA_DEV_SANCTIONS_PARTITIONS", CHAT_CFG_INT, 1, 1000, "3",
     offsetof(struct kdev_cfg, parts_sanctions), 0, "partitions of the sanctions topic"},
};
/* clang-format on */

static void kdev_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int lvl = level <= 3 ? CHAT_LOG_ERROR : level <= 4 ? CHAT_LOG_WARN : CHAT_LOG_DEBUG;

    (void)rk;
    chat_log(lvl, "kafka %s: %s", fac, buf);
}

/* Writes text + "\n" to path through path.tmp and rename(2), so readers never see a partial
 * file. Returns CHAT_OK or CHAT_EIO (logged). */
static int write_atomic(const char *path, const char *text)
{
    char *tmp = chat_xasprintf("%s.tmp.%d", path, (int)getpid());
    char *line = chat_xasprintf("%s\n", text);
    size_t len = strlen(line), done = 0;
    int fd, rc = CHAT_EIO;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        chat_log(CHAT_LOG_ERROR, "open %s: %s", tmp, strerror(errno));
        goto out;
    }
    while (done < len) {
        ssize_t n = write(fd, line + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            chat_log(CHAT_LOG_ERROR, "write %s: %s", tmp, strerror(errno));
            goto out;
        }
        done += (size_t)n;
    }
    if (close(fd) != 0) {
        fd = -1;
        chat_log(CHAT_LOG_ERROR, "close %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        chat_log(CHAT_LOG_ERROR, "rename %s -> %s: %s", tmp, path, strerror(errno));
        goto out;
    }
    rc = CHAT_OK;
out:
    if (fd >= 0)
        (void)close(fd);
    if (rc != CHAT_OK)
        (void)unlink(tmp);
    chat_free(tmp);
    chat_free(line);
    return rc;
}

/* Creates one topic; returns CHAT_OK or CHAT_EIO (logged). */
static int create_topic(rd_kafka_mock_cluster_t *mc, const char *name, int parts, int rf)
{
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, parts, rf);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_log(CHAT_LOG_ERROR, "create topic %s: %s", name, rd_kafka_err2str(err));
        return CHAT_EIO;
    }
    chat_log(CHAT_LOG_INFO, "topic %s partitions=%d replication=%d", name, parts, rf);
    return CHAT_OK;
}

/* Marks every broker down (up == false) or up. */
static void set_brokers(rd_kafka_mock_cluster_t *mc, int n, bool up)
{
    for (int id = 1; id <= n; id++) {
        rd_kafka_resp_err_t err =
            up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            chat_log(CHAT_LOG_WARN, "broker %d set %s: %s", id, up ? "up" : "down",
                     rd_kafka_err2str(err));
    }
    chat_log(CHAT_LOG_WARN, "all %d brokers are now %s", n, up ? "UP" : "DOWN");
}

/* Blocks in sigwait until SIGTERM/SIGINT; serves SIGUSR1/SIGUSR2 meanwhile. */
static void serve(rd_kafka_mock_cluster_t *mc, int brokers, const sigset_t *set)
{
    for (;;) {
        int sig = 0;

        if (sigwait(set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            set_brokers(mc, brokers, false);
        } else if (sig == SIGUSR2) {
            set_brokers(mc, brokers, true);
        } else {
            chat_log(CHAT_LOG_INFO, "signal %d: shutting down", sig);
            return;
        }
    }
}

/* Starts the mock cluster with the topics; returns CHAT_OK or CHAT_EIO (logged). On success
 * *rkp and *mcp are new: destroy the cluster before the handle. */
static int
start_cluster(const struct kdev_cfg *cfg, rd_kafka_t **rkp, rd_kafka_mock_cluster_t **mcp)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;

    rd_kafka_conf_set_log_cb(conf, kdev_log_cb);
    rd_kafka_conf_set(conf, "client.id", "chat-kafka-dev", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)); /* consumes conf */
    if (!rk) {
        chat_log(CHAT_LOG_ERROR, "rd_kafka_new: %s", errstr);
        return CHAT_EIO;
    }
    mc = rd_kafka_mock_cluster_new(rk, cfg->brokers);
    if (!mc) {
        chat_log(CHAT_LOG_ERROR, "rd_kafka_mock_cluster_new(%d) failed", cfg->brokers);
        rd_kafka_destroy(rk);
        return CHAT_EIO;
    }
    if (create_topic(mc, cfg->topic_messages, cfg->parts_messages, cfg->replication) != CHAT_OK ||
        create_topic(mc, cfg->topic_events, cfg->parts_events, cfg->replication) != CHAT_OK ||
        create_topic(mc, cfg->topic_presence, cfg->parts_presence, cfg->replication) != CHAT_OK ||
        create_topic(mc, cfg->topic_rooms, cfg->parts_rooms, cfg->replication) != CHAT_OK ||
        create_topic(mc, cfg->topic_sanctions, cfg->parts_sanctions, cfg->replication) != CHAT_OK) {
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return CHAT_EIO;
    }
    *rkp = rk;
    *mcp = mc;
    return CHAT_OK;
}

/* Validates what the table cannot; prints every error. Returns CHAT_OK or CHAT_EINVAL. */
static int check_cfg(const struct kdev_cfg *cfg)
{
    int rc = CHAT_OK;

    if (chat_log_level_parse(cfg->log_level) < 0) {
        fprintf(stderr,
                "config error: CHAT_LOG_LEVEL (--log-level): '%s' is not "
                "debug|info|warn|error\n",
                cfg->log_level);
        rc = CHAT_EINVAL;
    }
    if (cfg->replication > cfg->brokers) {
        fprintf(stderr,
                "config error: CHAT_KAFKA_DEV_REPLICATION (--replication) %d is more "
                "than CHAT_KAFKA_DEV_BROKERS (--brokers) %d\n",
                cfg->replication, cfg->brokers);
        rc = CHAT_EINVAL;
    }
    const char *names[] = {cfg->topic_messages, cfg->topic_events, cfg->topic_presence,
                           cfg->topic_rooms, cfg->topic_sanctions};
    for (size_t i = 0; i < 5; i++)
        for (size_t k = i + 1; k < 5; k++)
            if (strcmp(names[i], names[k]) == 0) {
                fprintf(stderr, "config error: the five topic names must differ\n");
                rc = CHAT_EINVAL;
            }
    return rc;
}

int main(int argc, char **argv)
{
    struct kdev_cfg cfg = {0};
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    const char *boot;
    sigset_t set;
    int rc, status = 1;

    rc = chat_cfg_load(kdev_opts, CHAT_CFG_COUNT(kdev_opts), &cfg, argc, argv,
                       "Development Kafka host on librdkafka's mock cluster: creates the "
                       "chatcluster topics,\nprints the bootstrap list and serves until "
                       "SIGTERM/SIGINT (SIGUSR1: brokers down, SIGUSR2: up).");
    if (rc == 1) {
        status = 0;
        goto out;
    }
    if (rc != CHAT_OK || check_cfg(&cfg) != CHAT_OK) {
        status = 2;
        goto out;
    }
    chat_log_init("kafka-dev", chat_log_level_parse(cfg.log_level));
    chat_cfg_dump(kdev_opts, CHAT_CFG_COUNT(kdev_opts), &cfg);

    /* Block the signals before librdkafka starts threads: they inherit the mask, so only the
     * main thread's sigwait sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        chat_log(CHAT_LOG_ERROR, "pthread_sigmask failed");
        goto out;
    }
    if (start_cluster(&cfg, &rk, &mc) != CHAT_OK)
        goto out;
    boot = rd_kafka_mock_cluster_bootstraps(mc);
    if (cfg.bootstrap_file[0] && write_atomic(cfg.bootstrap_file, boot) != CHAT_OK)
        goto out;
    printf("%s\n", boot);
    (void)fflush(stdout);
    chat_log(CHAT_LOG_INFO, "ready brokers=%s", boot);

    serve(mc, cfg.brokers, &set);
    status = 0;
out:
    if (mc && cfg.bootstrap_file && cfg.bootstrap_file[0])
        (void)unlink(cfg.bootstrap_file);
    if (mc)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk)
        rd_kafka_destroy(rk);
    chat_cfg_free(kdev_opts, CHAT_CFG_COUNT(kdev_opts), &cfg);
    if (status == 0 && rc != 1)
        chat_log(CHAT_LOG_INFO, "stopped");
    return status;
}
