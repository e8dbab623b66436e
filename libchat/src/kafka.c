#include "chat/kafka.h"

#include <stdio.h>
#include <string.h>

#include "chat/log.h"
#include "chat/mem.h"

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int lvl = level <= 3   ? CHAT_LOG_ERROR
              : level <= 4 ? CHAT_LOG_WARN
              : level <= 6 ? CHAT_LOG_INFO
                           : CHAT_LOG_DEBUG;
    chat_log(lvl, "kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int chat_kafka_conf_set(
    rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr, size_t errlen)
{
    if (rd_kafka_conf_set(conf, k, v, errstr, errlen) != RD_KAFKA_CONF_OK)
        return CHAT_EINVAL;
    return CHAT_OK;
}

static int apply_extra(rd_kafka_conf_t *conf, const char *extra, char *errstr, size_t errlen)
{
    char *copy, *save = NULL, *tok;
    int rc = CHAT_OK;

    if (!extra || !*extra)
        return CHAT_OK;
    copy = chat_xstrdup(extra);
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(errstr, errlen, "CHAT_KAFKA_EXTRA: '%s' is not key=value", tok);
            rc = CHAT_EINVAL;
            break;
        }
        *eq = '\0';
        rc = chat_kafka_conf_set(conf, tok, eq + 1, errstr, errlen);
        if (rc != CHAT_OK)
            break;
    }
    chat_free(copy);
    return rc;
}

rd_kafka_conf_t *chat_kafka_conf_new(const struct chat_kafka_cfg *kc,
                                     enum chat_kafka_role role,
                                     const char *group_id,
                                     char *errstr,
                                     size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];
    int rc;

    rd_kafka_conf_set_log_cb(conf, log_cb);
    rc = chat_kafka_conf_set(conf, "bootstrap.servers", kc->brokers, errstr, errlen);
    /* After a broker outage, reconnect attempts back off from 100 ms up to 1 s instead of
     * librdkafka's 10 s, so a returning broker is in use again within about a second. */
    rc |= chat_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", errstr, errlen);
    if (role == CHAT_KAFKA_PRODUCER) {
        snprintf(num, sizeof(num), "%d", kc->linger_ms);
        rc |= chat_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "acks", "all", errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "linger.ms", num, errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "compression.type", "lz4", errstr, errlen);
    } else {
        snprintf(num, sizeof(num), "%d", kc->fetch_wait_ms);
        rc |= chat_kafka_conf_set(conf, "fetch.wait.max.ms", num, errstr, errlen);
        snprintf(num, sizeof(num), "%d", kc->session_timeout_ms);
        rc |= chat_kafka_conf_set(conf, "session.timeout.ms", num, errstr, errlen);
        snprintf(num, sizeof(num), "%d", kc->heartbeat_ms);
        rc |= chat_kafka_conf_set(conf, "heartbeat.interval.ms", num, errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, errlen);
        rc |= chat_kafka_conf_set(conf, "group.id", group_id ? group_id : "chat-unused", errstr,
                                  errlen);
    }
    if (rc == CHAT_OK)
        rc = apply_extra(conf, kc->extra, errstr, errlen);
    if (rc != CHAT_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}
