/* presence/src/pres_publish.c - the Kafka side of the presence worker: an idempotent acks=all
 * producer to chat.presence (key = room id, "*" for the total; value = chat_enc_presence()),
 * delivery reports, the readiness check (topic metadata) and the bounded final flush.
 * Worker thread only: delivery reports run inside rd_kafka_poll() and rd_kafka_flush() on the
 * worker (see pres.h), so they may touch p->last and p->force_full. */
#include <stdio.h>
#include <string.h>

#include "chat/keys.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/proto.h"
#include "chat/time.h"

#include "pres.h"

#define WARN_EVERY_MS    10000
#define META_OK_EVERY_MS 5000
#define META_RETRY_MS    2000
#define VALUE_MAX        4096

/* Logs a produce or delivery failure at WARN at most every WARN_EVERY_MS, else at DEBUG. */
static void kafka_warn(struct pres *p, const char *what, const char *room, rd_kafka_resp_err_t err)
{
    int64_t now = chat_mono_ms();
    int lvl = now >= p->kwarn_at_ms ? CHAT_LOG_WARN : CHAT_LOG_DEBUG;

    if (lvl == CHAT_LOG_WARN)
        p->kwarn_at_ms = now + WARN_EVERY_MS;
    chat_log(lvl, "kafka: %s failed (room %s): %s", what, room, rd_kafka_err2str(err));
}

/* A room's 0/0 record (id = its message opaque) was delivered: the room may be forgotten. */
static void zero_delivered(struct pres *p, const rd_kafka_message_t *m)
{
    char *room = chat_xstrndup(m->key, m->key_len);

    pres_zero_done(&p->last, room, (uintptr_t)m->_private);
    chat_free(room);
}

/* Delivery report: a lost record means consumers may hold stale counts, so resend everything
 * (pending zeros included). A delivered 0/0 confirms its vanished room. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct pres *p = opaque;
    char room[128];
    size_t n;

    (void)rk;
    if (!m->err) {
        if (m->_private && m->key)
            zero_delivered(p, m);
        return;
    }
    n = m->key_len < sizeof(room) - 1 ? m->key_len : sizeof(room) - 1;
    memcpy(room, m->key ? m->key : "", m->key ? n : 0);
    room[m->key ? n : 0] = '\0';
    chat_metric_add(&p->m.publish_errors, 1);
    p->force_full = true;
    kafka_warn(p, "delivery", room, m->err);
}

int pres_publish_init(struct pres *p)
{
    char err[512];
    rd_kafka_conf_t *conf;

    conf = chat_kafka_conf_new(&p->cfg->kafka, CHAT_KAFKA_PRODUCER, NULL, err, sizeof(err));
    if (!conf)
        goto fail;
    if (chat_kafka_conf_set(conf, "client.id", "chat-presence", err, sizeof(err)) != CHAT_OK) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!p->rk) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new only takes conf on success */
        goto fail;
    }
    p->rkt = rd_kafka_topic_new(p->rk, p->cfg->kafka.topic_presence, NULL);
    if (!p->rkt) {
        (void)snprintf(err, sizeof(err), "topic %s: %s", p->cfg->kafka.topic_presence,
                       rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_destroy(p->rk);
        p->rk = NULL;
        goto fail;
    }
    return CHAT_OK;
fail:
    chat_log(CHAT_LOG_ERROR, "kafka: cannot create the producer: %s", err);
    return CHAT_EINVAL;
}

size_t pres_publish(struct pres *p, const struct pres_changes *c)
{
    struct chat_buf b;
    size_t sent = 0;

    chat_buf_init(&b, 0, VALUE_MAX);
    for (size_t i = 0; i < c->len; i++) {
        const struct pres_change *ch = &c->v[i];
        bool total = strcmp(ch->room, CHAT_KEY_PRES_ALL) == 0;
        bool zero = !total && ch->conns == 0 && ch->users == 0;
        uintptr_t id = 0;
        rd_kafka_resp_err_t err;

        chat_buf_reset(&b);
        if (chat_enc_presence(&b, total ? NULL : ch->room, ch->conns, ch->users) != CHAT_OK) {
            /* a room id jansson refuses (not UTF-8) or too long: it can never be sent */
            chat_metric_add(&p->m.publish_errors, 1);
            kafka_warn(p, "encode", "(invalid)", RD_KAFKA_RESP_ERR__BAD_MSG);
            if (zero)
                pres_zero_done(&p->last, ch->room, 0); /* do not keep it pending forever */
            continue;
        }
        if (zero) {
            id = ++p->zero_id;
            if (id == 0)
                id = ++p->zero_id; /* wrapped: 0 means "no id" */
        }
        err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_KEY(ch->room, strlen(ch->room)),
            RD_KAFKA_V_VALUE(chat_buf_data(&b), b.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE((void *)id), RD_KAFKA_V_END);
        if (err) {
            chat_metric_add(&p->m.publish_errors, 1);
            p->force_full = true;
            kafka_warn(p, "produce", ch->room, err);
            continue;
        }
        if (zero)
            pres_zero_sent(&p->last, ch->room, id); /* its delivery report confirms the room */
        sent++;
    }
    chat_buf_fini(&b);
    chat_metric_add(&p->m.published, (long long)sent);
    return sent;
}

/* Readiness: the producer can see the presence topic with partitions (one metadata request). */
static void check_metadata(struct pres *p, int64_t now)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int timeout = p->cfg->interval_ms / 2 < 500 ? p->cfg->interval_ms / 2 : 500;
    bool ok, was = atomic_load(&p->kafka_ok);

    err = rd_kafka_metadata(p->rk, 0, p->rkt, &md, timeout);
    if (!err)
        err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    ok = !err && md->topics[0].partition_cnt > 0;
    chat_log(CHAT_LOG_DEBUG, "kafka: metadata check: %s", rd_kafka_err2str(err));
    if (ok != was) {
        chat_log(ok ? CHAT_LOG_INFO : CHAT_LOG_WARN, "kafka: topic %s %s (%s)",
                 p->cfg->kafka.topic_presence, ok ? "available" : "unavailable",
                 rd_kafka_err2str(err));
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    atomic_store(&p->kafka_ok, ok);
    p->meta_at_ms = now + (ok ? META_OK_EVERY_MS : META_RETRY_MS);
}

void pres_publish_poll(struct pres *p, int timeout_ms)
{
    int64_t now;

    rd_kafka_poll(p->rk, timeout_ms);
    now = chat_mono_ms();
    if (now >= p->meta_at_ms)
        check_metadata(p, now);
}

void pres_publish_fini(struct pres *p, int timeout_ms)
{
    if (!p->rk)
        return;
    if (rd_kafka_flush(p->rk, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_log(CHAT_LOG_WARN, "kafka: %d presence record(s) not delivered at shutdown",
                 rd_kafka_outq_len(p->rk));
    }
    if (p->rkt)
        rd_kafka_topic_destroy(p->rkt);
    rd_kafka_destroy(p->rk);
    p->rkt = NULL;
    p->rk = NULL;
}
