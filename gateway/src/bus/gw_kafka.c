/* gw_kafka.c - the gateway's Kafka side on the event loop.
 *
 * Producer: idempotent, acks=all; rd_kafka_producev never blocks; delivery reports are served on
 * the loop when the main queue's wake-up pipe turns readable.
 * Consumer: assign()-only (every gateway reads every partition of chat.messages, chat.events and
 * chat.presence). chat.messages starts at the high watermark taken at startup, so nothing
 * produced after the node became ready is missed; chat.presence at its start (the last counts);
 * chat.events CHAT_REVOKE_KEEP_S back (rd_kafka_offsets_for_times): every revocation a live token
 * could meet, and the node is not ready until it has read up to where the topic ended at
 * startup (session/gw_events.c). Its queue's wake-up pipe is polled by the loop; records are
 * drained in bounded batches so one busy topic cannot starve the sockets.
 * Partition count: a room's partition, and so its seq, follow from the partition count of
 * chat.messages, and assign() never sees new partitions. A watch thread (chat_kafka_watch: a
 * blocking metadata request every partition_check_ms, off the loop; librdkafka 2.0 has no
 * asynchronous DescribeTopics, and an assign()-only consumer gets no rebalance event) wakes the
 * loop through a uv_async when the count differs from the one at startup; the node then stops
 * being ready and refuses sends (`unavailable`) until it is restarted. */
#include "bus/gw_kafka.h"

#include <errno.h>
#include <string.h>

#include <fcntl.h>
#include <unistd.h>

#include "chat/hash.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "bus/gw_send.h"
#include "core/gw.h"
#include "room/gw_acl.h"
#include "room/gw_recent.h"
#include "room/gw_room.h"
#include "session/gw_events.h"
#include "ws/gw_conn.h"
#include "ws/gw_ws.h"

#define DRAIN_BUDGET         256 /* records per loop turn before yielding to sockets */
#define WATERMARK_TIMEOUT_MS 5000

static void caught_up(struct gw *gw, const char *topic, int32_t part, int64_t next);

/* Empties a wakeup pipe (non-blocking). A read shorter than the buffer took all there was: no
 * second read just to hear EAGAIN (one system call per wakeup, not two). */
static void drain_pipe(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf)) {
    }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct gw *gw = opaque;
    struct gw_pending *p = rkm->_private;

    (void)rk;
    if (!p) { /* a chat.events record */
        if (rkm->err)
            chat_log(CHAT_LOG_ERROR, "kafka: event delivery failed: %s",
                     rd_kafka_err2str(rkm->err));
        return;
    }
    p->err = rkm->err;
    p->seq = rkm->offset;
    if (rkm->err) {
        long skipped;

        /* sent, then timed out: the broker may have stored it (the client is told so) */
        p->maybe_stored = rd_kafka_message_status(rkm) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
        if (chat_log_every(&gw->delivery_log, 10000, &skipped))
            chat_log(CHAT_LOG_WARN, "delivery failed: %s (%ld more since the last such line)",
                     rd_kafka_err2str(rkm->err), skipped);
    }
    gw_send_delivered(gw, p);
}

/* Producer errors: transient ones are logged by the log callback already; a fatal one (the
 * idempotent producer cannot guarantee order or exactly-once any more) makes the node drain so
 * that the orchestrator replaces it. Runs on the loop, from rd_kafka_poll(). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct gw *gw = opaque;
    char why[512];

    if (err != RD_KAFKA_RESP_ERR__FATAL)
        return;
    rd_kafka_fatal_error(rk, why, sizeof(why));
    chat_log(CHAT_LOG_ERROR, "kafka producer fatal error: %s (%s); draining", why, reason);
    gw->kafka_fatal = true;
    gw_ws_drain(gw);
}

static void prod_poll_cb(uv_poll_t *h, int status, int events)
{
    struct gw *gw = h->data;

    (void)status;
    (void)events;
    drain_pipe(gw->prod_pipe[0]);
    rd_kafka_poll(gw->prod, 0);
}

/* Fan the room's event at seq to the local subscribers of the room (zero copies per recipient),
 * but for those that hold it already (gw_room_skipped). */
static void
fanout_room(struct gw *gw, const char *room, size_t room_len, int64_t seq, struct chat_msg *m)
{
    char name[CHAT_ROOM_MAX + 1];
    struct gw_room *r;

    if (room_len == 0 || room_len > CHAT_ROOM_MAX)
        return;
    memcpy(name, room, room_len);
    name[room_len] = '\0';
    r = gw_room_find(&gw->rooms, name);
    if (!r)
        return;
    for (size_t i = 0; i < r->nsubs; i++) {
        if (r->nskips && gw_room_skipped(r, r->subs[i].c, seq))
            continue;
        if (gw_conn_push(r->subs[i].c, m) == CHAT_OK)
            chat_metric_add(&gw->m.deliveries, 1);
    }
    if (r->nskips)
        gw_room_skips_done(r, seq);
}

static void fanout_all(struct gw *gw, struct chat_msg *m)
{
    for (struct gw_conn *c = gw->conns; c; c = c->next)
        if (gw_conn_push(c, m) == CHAT_OK)
            chat_metric_add(&gw->m.deliveries, 1);
}

/* Presence: forward, and remember the last frame per room (and the total) so that a client gets
 * the current counts when it joins or connects, not only at the next change. */
static void handle_presence(struct gw *gw, const rd_kafka_message_t *rkm)
{
    char room[CHAT_ROOM_MAX + 1];
    int64_t conns, users;
    struct gw_room *r;
    struct chat_msg *m;

    if (!rkm->payload || chat_presence_decode(rkm->payload, rkm->len, room, sizeof(room), &conns,
                                              &users) != CHAT_OK) {
        chat_metric_add(&gw->m.kafka_bad, 1);
        return;
    }
    m = chat_msg_new(rkm->payload, rkm->len);
    m->latest = chat_hash_str(room) | 1; /* one count per room (and one total) per queue */
    if (!room[0]) {
        chat_msg_unref(gw->presence_total);
        gw->presence_total = chat_msg_ref(m);
        fanout_all(gw, m);
    } else {
        r = conns > 0 ? gw_room_get(&gw->rooms, room) : gw_room_find(&gw->rooms, room);
        if (r) {
            chat_msg_unref(r->presence);
            r->presence = conns > 0 ? chat_msg_ref(m) : NULL;
            for (size_t i = 0; i < r->nsubs; i++)
                if (gw_conn_push(r->subs[i].c, m) == CHAT_OK)
                    chat_metric_add(&gw->m.deliveries, 1);
            gw_room_maybe_free(&gw->rooms, r);
        }
    }
    chat_msg_unref(m);
}

/* gw_recent_map_fn: the deleted form of the message ev->id and of its edits (ev: a
 * message_deleted), or the edited form of the message (ev: a message_edited) */
static struct chat_msg *changed_form(const struct chat_msg *m, void *arg)
{
    const struct chat_stream_ev *ev = arg;
    const char *p = (const char *)m->buf + LWS_PRE;
    struct chat_buf b;
    struct chat_msg *n = NULL;
    int rc;

    if (!chat_msg_has_id(p, ev->id) || strstr(p, "\"deleted\":true"))
        return NULL; /* another message's, or without its text already */
    chat_buf_init(&b, LWS_PRE, 0);
    rc = ev->type == CHAT_STREAM_DELETED ? chat_msg_to_deleted(&b, p, m->len)
                                         : chat_msg_to_edited(&b, p, m->len, ev->text, ev->ts);
    if (rc == CHAT_OK)
        n = chat_msg_from_buf(&b);
    chat_buf_fini(&b);
    return n;
}

/* A message_deleted or message_edited record: from now on the recovery ring holds the
 * message's deleted form and its edits' (a `join {since}` replays them without their text,
 * then the deletion), or its edited form (the newest text, then the edits). */
static void change_held(struct gw *gw, const rd_kafka_message_t *rkm)
{
    struct chat_stream_ev ev;
    void *doc = NULL;

    if (chat_stream_ev_decode(rkm->payload, rkm->len, &ev, &doc) == CHAT_OK)
        (void)gw_recent_replace(gw->recent, rkm->key, rkm->key_len, changed_form, &ev);
    chat_json_free(doc);
}

static void handle_message(struct gw *gw, const rd_kafka_message_t *rkm)
{
    const char *topic = rd_kafka_topic_name(rkm->rkt);
    enum chat_stream_type type;
    struct chat_msg *m;
    int rc;

    chat_metric_add(&gw->m.kafka_in, 1);
    if (strcmp(topic, gw->cfg->kafka.topic_messages) == 0) {
        int64_t ts = rd_kafka_message_timestamp(rkm, NULL);
        struct gw_recent_info info;
        int64_t prev = -1;

        /* prev: the room's previous event as this node saw it (absent when it did not) */
        if (rkm->key && gw_recent_peek(gw->recent, rkm->key, rkm->key_len, &info)) {
            if (rkm->offset <= info.last) { /* consumed again (a reassignment): sent already */
                chat_metric_add(&gw->m.kafka_replayed, 1);
                return;
            }
            prev = info.last;
        }
        chat_buf_reset(&gw->scratch);
        rc = chat_msg_splice_seq_prev(&gw->scratch, rkm->payload, rkm->len, rkm->offset, prev);
        if (rc != CHAT_OK) {
            chat_metric_add(&gw->m.kafka_bad, 1);
            chat_log(CHAT_LOG_WARN, "kafka: undecodable record %s[%d]@%lld skipped", topic,
                     (int)rkm->partition, (long long)rkm->offset);
            return;
        }
        if (ts > 0)
            chat_hist_record_1w(&gw->m.kafka_age_us, (uint64_t)(chat_now_ms() - ts) * 1000);
        m = chat_msg_from_buf(&gw->scratch);
        m->t_us = chat_mono_us(); /* consumed: chat_gateway_deliver_seconds runs from here */
        if (rkm->key)
            (void)gw_recent_add(gw->recent, rkm->key, rkm->key_len, rkm->offset, m);
        fanout_room(gw, rkm->key, rkm->key_len, rkm->offset, m);
        chat_msg_unref(m);
        if (rkm->key && chat_msg_stream_prefix(rkm->payload, rkm->len, &type) > 0 &&
            (type == CHAT_STREAM_DELETED || type == CHAT_STREAM_EDITED))
            change_held(gw, rkm);
    } else if (strcmp(topic, gw->cfg->kafka.topic_presence) == 0) {
        handle_presence(gw, rkm);
    } else if (strcmp(topic, gw->cfg->kafka.topic_events) == 0) {
        if (rkm->payload)
            gw_events_handle(gw, rkm->payload, rkm->len);
        caught_up(gw, topic, rkm->partition, rkm->offset + 1);
    } else if (strcmp(topic, gw->cfg->kafka.topic_rooms) == 0) {
        gw_acl_room_record(gw, rkm->key, rkm->key_len, rkm->payload, rkm->len);
        caught_up(gw, topic, rkm->partition, rkm->offset + 1);
    } else if (strcmp(topic, gw->cfg->kafka.topic_sanctions) == 0) {
        gw_acl_sanction_record(gw, rkm->key, rkm->key_len, rkm->payload, rkm->len);
        caught_up(gw, topic, rkm->partition, rkm->offset + 1);
    }
}

/* Drains up to DRAIN_BUDGET records; returns true when the queue may hold more. */
static bool drain_consumer(struct gw *gw)
{
    rd_kafka_message_t *batch[DRAIN_BUDGET];
    ssize_t n = rd_kafka_consume_batch_queue(gw->cons_q, 0, batch, DRAIN_BUDGET);

    if (n <= 0)
        return false;
    for (ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *rkm = batch[i];
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                chat_log(CHAT_LOG_WARN, "kafka consume: %s", rd_kafka_message_errstr(rkm));
            else if (rkm->rkt)
                caught_up(gw, rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset);
        } else {
            handle_message(gw, rkm);
        }
        rd_kafka_message_destroy(rkm);
    }
    return n == DRAIN_BUDGET; /* a full batch: there may be more */
}

static void cons_idle_cb(uv_idle_t *h)
{
    struct gw *gw = h->data;
    if (!drain_consumer(gw))
        uv_idle_stop(h);
}

static void cons_poll_cb(uv_poll_t *h, int status, int events)
{
    struct gw *gw = h->data;

    (void)status;
    (void)events;
    drain_pipe(gw->cons_pipe[0]);
    if (drain_consumer(gw))
        uv_idle_start(&gw->cons_idle, cons_idle_cb);
}

/* Watch thread, under the watch's lock: hand the count to the loop. */
static void parts_changed_cb(void *ud, int was, int now)
{
    struct gw *gw = ud;

    (void)was;
    atomic_store(&gw->parts_now, now);
    uv_async_send(&gw->parts_async); /* the handle is open: stop() runs before uv_close */
}

static void parts_async_cb(uv_async_t *h)
{
    struct gw *gw = h->data;
    int now = atomic_load(&gw->parts_now);

    if (now == 0 || gw->partitions_changed)
        return;
    gw->partitions_changed = true;
    chat_metric_add(&gw->m.partition_changes, 1);
    chat_log(CHAT_LOG_ERROR,
             "kafka: topic %s has %d partitions, this node started with %d: refusing to serve "
             "(not ready, sends answered unavailable) until restarted; the partition count of "
             "chat.messages is fixed; restore it or recreate the topic and restart",
             gw->cfg->kafka.topic_messages, now, gw->parts_start);
}

static int make_pipe(int p[2])
{
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        chat_log(CHAT_LOG_ERROR, "pipe2: %s", strerror(errno));
        return CHAT_EIO;
    }
    return CHAT_OK;
}

enum start_at {
    AT_END,   /* the high watermark */
    AT_START, /* the low watermark */
    AT_KEEP,  /* the first record of the last CHAT_REVOKE_KEEP_S (chat.events), caught up */
    AT_ALL,   /* the low watermark, caught up before ready (chat.rooms) */
};

/* The catch-up of topic (chat.events, chat.rooms), NULL for the others. */
static struct gw_catchup *catchup_of(struct gw *gw, const char *topic)
{
    if (strcmp(topic, gw->cfg->kafka.topic_events) == 0)
        return &gw->ev_cu;
    if (strcmp(topic, gw->cfg->kafka.topic_rooms) == 0)
        return &gw->rooms_cu;
    if (strcmp(topic, gw->cfg->kafka.topic_sanctions) == 0)
        return &gw->sanctions_cu;
    return NULL;
}

/* Partition part of a caught-up topic starts at at and ends (at start) at hi. */
static void catchup_set(struct gw_catchup *cu, int32_t part, int64_t at, int64_t hi)
{
    cu->target[part] = hi;
    if (at < hi)
        cu->behind++;
}

/* chat.events from CHAT_REVOKE_KEEP_S back: each partition's start replaced by the first offset
 * at or after that time (none: the high watermark), and its high watermark kept as the target
 * the node must read up to before it is ready. Blocking: startup only. */
static int events_from_keep(struct gw *gw,
                            const char *topic,
                            rd_kafka_topic_partition_list_t *list,
                            int first,
                            int nparts,
                            const int64_t *hi)
{
    rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(nparts);
    int64_t since = chat_now_ms() - (int64_t)CHAT_REVOKE_KEEP_S(gw->cfg) * 1000;
    rd_kafka_resp_err_t err;

    for (int i = 0; i < nparts; i++)
        rd_kafka_topic_partition_list_add(q, topic, list->elems[first + i].partition)->offset =
            since;
    err = rd_kafka_offsets_for_times(gw->cons, q, WATERMARK_TIMEOUT_MS);
    if (err) {
        chat_log(CHAT_LOG_ERROR, "kafka: offsets of %s by time: %s", topic, rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(q);
        return CHAT_EIO;
    }
    for (int i = 0; i < nparts; i++) {
        /* -1: no record since then (start at the end); an error (a leader election) must not
         * skip the window: the start fails and is retried by a restart */
        if (q->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            chat_log(CHAT_LOG_ERROR, "kafka: offset of %s[%d] by time: %s", topic,
                     (int)q->elems[i].partition, rd_kafka_err2str(q->elems[i].err));
            rd_kafka_topic_partition_list_destroy(q);
            return CHAT_EIO;
        }
        list->elems[first + i].offset = q->elems[i].offset >= 0 ? q->elems[i].offset : hi[i];
    }
    rd_kafka_topic_partition_list_destroy(q);
    chat_log(CHAT_LOG_INFO, "kafka: reading %s from %d s back", topic, CHAT_REVOKE_KEEP_S(gw->cfg));
    return CHAT_OK;
}

/* The catch-up targets of a topic whose partitions list[first..first+nparts) start where they
 * say: each partition's high watermark at start. */
static int catchup_start(struct gw *gw,
                         const char *topic,
                         rd_kafka_topic_partition_list_t *list,
                         int first,
                         int nparts,
                         const int64_t *hi)
{
    struct gw_catchup *cu = catchup_of(gw, topic);

    if (!cu)
        return CHAT_OK;
    cu->nparts = nparts;
    cu->target = chat_xcalloc((size_t)nparts, sizeof(*cu->target));
    cu->behind = 0;
    for (int i = 0; i < nparts; i++) {
        rd_kafka_topic_partition_t *e = &list->elems[first + i];
        if (e->partition < 0 || e->partition >= nparts)
            return CHAT_EIO; /* partitions are numbered 0..n-1 */
        catchup_set(cu, e->partition, e->offset, hi[i]);
    }
    cu->done = cu->behind == 0;
    chat_log(CHAT_LOG_INFO, "kafka: %s: %d of %d partitions to read before ready", topic,
             cu->behind, nparts);
    return CHAT_OK;
}

/* Partition part of topic has been read up to offset next (exclusive). */
static void caught_up(struct gw *gw, const char *topic, int32_t part, int64_t next)
{
    struct gw_catchup *cu = catchup_of(gw, topic);

    if (!cu || cu->done || part < 0 || part >= cu->nparts || cu->target[part] < 0 ||
        next < cu->target[part])
        return;
    cu->target[part] = -1; /* caught up */
    if (--cu->behind > 0)
        return;
    cu->done = true;
    chat_log(CHAT_LOG_INFO, "kafka: %s read up to its end at startup", topic);
}

static void catchup_poll(struct gw *gw, struct gw_catchup *cu, const char *topic)
{
    rd_kafka_topic_partition_list_t *l;

    if (cu->done || !gw->cons || cu->nparts == 0)
        return;
    /* the consumer's position (local, non-blocking): also past what is no record (a transaction
     * marker), past records deleted by retention (the offset reset), past a shrunk end */
    l = rd_kafka_topic_partition_list_new(cu->nparts);
    for (int i = 0; i < cu->nparts; i++)
        rd_kafka_topic_partition_list_add(l, topic, i);
    if (rd_kafka_position(gw->cons, l) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < l->cnt; i++) {
            int32_t part = l->elems[i].partition;
            int64_t pos = l->elems[i].offset, lo = -1, hi = -1;

            if (pos < 0)
                continue;
            caught_up(gw, topic, part, pos);
            /* the end moved below the target (an unclean leader election): at the end now
             * counts (the last fetch's watermarks, cached locally) */
            if (rd_kafka_get_watermark_offsets(gw->cons, topic, part, &lo, &hi) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR &&
                hi >= 0 && pos >= hi)
                caught_up(gw, topic, part, INT64_MAX);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

void gw_kafka_events_poll(struct gw *gw)
{
    catchup_poll(gw, &gw->ev_cu, gw->cfg->kafka.topic_events);
    catchup_poll(gw, &gw->rooms_cu, gw->cfg->kafka.topic_rooms);
    catchup_poll(gw, &gw->sanctions_cu, gw->cfg->kafka.topic_sanctions);
}

/* Adds every partition of topic to list, starting where at says; *nparts (may be NULL) gets the
 * partition count. Blocking: startup only. */
static int add_topic(struct gw *gw,
                     const char *topic,
                     enum start_at at,
                     rd_kafka_topic_partition_list_t *list,
                     int *nparts)
{
    int64_t *his = NULL;
    int first = list->cnt;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(gw->cons, topic, NULL);
    rd_kafka_resp_err_t err;
    int rc = CHAT_EIO;

    err = rd_kafka_metadata(gw->cons, 0, rkt, &md, WATERMARK_TIMEOUT_MS);
    if (err || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
        chat_log(CHAT_LOG_ERROR, "kafka: no metadata for topic %s: %s", topic,
                 rd_kafka_err2str(err ? err : md->topics[0].err));
        goto out;
    }
    his = chat_xcalloc((size_t)md->topics[0].partition_cnt, sizeof(*his));
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t part = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        err =
            rd_kafka_query_watermark_offsets(gw->cons, topic, part, &lo, &hi, WATERMARK_TIMEOUT_MS);
        if (err) {
            chat_log(CHAT_LOG_ERROR, "kafka: watermarks of %s[%d]: %s", topic, part,
                     rd_kafka_err2str(err));
            goto out;
        }
        rd_kafka_topic_partition_list_add(list, topic, part)->offset =
            at == AT_START || at == AT_ALL ? lo : hi;
        his[i] = hi;
    }
    if (nparts)
        *nparts = md->topics[0].partition_cnt;
    rc = at == AT_KEEP ? events_from_keep(gw, topic, list, first, md->topics[0].partition_cnt, his)
                       : CHAT_OK;
    if (rc == CHAT_OK && (at == AT_KEEP || at == AT_ALL))
        rc = catchup_start(gw, topic, list, first, md->topics[0].partition_cnt, his);
out:
    chat_free(his);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

static int assign_all(struct gw *gw)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(32);
    rd_kafka_resp_err_t err;
    int rc;

    rc = add_topic(gw, gw->cfg->kafka.topic_messages, AT_END, list, &gw->parts_start);
    if (rc == CHAT_OK)
        /* presence from its start (a compacted topic in production): the last counts per room */
        rc = add_topic(gw, gw->cfg->kafka.topic_presence, AT_START, list, NULL);
    if (rc == CHAT_OK)
        /* events of the last token lifetime: every revocation a live token could meet */
        rc = add_topic(gw, gw->cfg->kafka.topic_events, AT_KEEP, list, NULL);
    if (rc == CHAT_OK)
        /* every room's settings: a compacted topic, read whole */
        rc = add_topic(gw, gw->cfg->kafka.topic_rooms, AT_ALL, list, NULL);
    if (rc == CHAT_OK)
        /* every mute and ban in force: a compacted topic, read whole */
        rc = add_topic(gw, gw->cfg->kafka.topic_sanctions, AT_ALL, list, NULL);
    if (rc == CHAT_OK) {
        err = rd_kafka_assign(gw->cons, list);
        if (err) {
            chat_log(CHAT_LOG_ERROR, "kafka assign: %s", rd_kafka_err2str(err));
            rc = CHAT_EIO;
        } else {
            chat_log(CHAT_LOG_INFO, "kafka: assigned %d partitions", list->cnt);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

int gw_kafka_start(struct gw *gw)
{
    char err[512], num[32];
    rd_kafka_conf_t *conf;
    char *group;

    /* producer */
    conf = chat_kafka_conf_new(&gw->cfg->kafka, CHAT_KAFKA_PRODUCER, NULL, err, sizeof(err));
    if (!conf)
        goto conf_fail;
    snprintf(num, sizeof(num), "%d", gw->cfg->produce_timeout_ms);
    if (chat_kafka_conf_set(conf, "message.timeout.ms", num, err, sizeof(err)) != CHAT_OK ||
        chat_kafka_conf_set(conf, "client.id", gw->cfg->node_name, err, sizeof(err)) != CHAT_OK) {
        rd_kafka_conf_destroy(conf);
        goto conf_fail;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, gw);
    gw->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!gw->prod)
        goto conf_fail;

    /* consumer: assign-only, but librdkafka still wants a group id */
    group = chat_xasprintf("chat-gateway-%s", gw->cfg->node_name);
    conf = chat_kafka_conf_new(&gw->cfg->kafka, CHAT_KAFKA_CONSUMER, group, err, sizeof(err));
    chat_free(group);
    if (!conf)
        goto conf_fail;
    if (chat_kafka_conf_set(conf, "client.id", gw->cfg->node_name, err, sizeof(err)) != CHAT_OK) {
        rd_kafka_conf_destroy(conf);
        goto conf_fail;
    }
    gw->cons = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!gw->cons)
        goto conf_fail;
    rd_kafka_poll_set_consumer(gw->cons);

    if (make_pipe(gw->prod_pipe) != CHAT_OK || make_pipe(gw->cons_pipe) != CHAT_OK)
        return CHAT_EIO;
    gw->prod_q = rd_kafka_queue_get_main(gw->prod);
    rd_kafka_queue_io_event_enable(gw->prod_q, gw->prod_pipe[1], "1", 1);
    gw->cons_q = rd_kafka_queue_get_consumer(gw->cons);
    rd_kafka_queue_io_event_enable(gw->cons_q, gw->cons_pipe[1], "1", 1);

    if (assign_all(gw) != CHAT_OK)
        return CHAT_EIO;
    gw->kafka_assigned = true;

    uv_poll_init(&gw->loop, &gw->prod_poll, gw->prod_pipe[0]);
    gw->prod_poll.data = gw;
    uv_poll_start(&gw->prod_poll, UV_READABLE, prod_poll_cb);
    uv_poll_init(&gw->loop, &gw->cons_poll, gw->cons_pipe[0]);
    gw->cons_poll.data = gw;
    uv_poll_start(&gw->cons_poll, UV_READABLE, cons_poll_cb);
    uv_idle_init(&gw->loop, &gw->cons_idle);
    gw->cons_idle.data = gw;
    uv_async_init(&gw->loop, &gw->parts_async, parts_async_cb);
    gw->parts_async.data = gw;
    gw->kafka_polls = true;
    /* records may already be queued: the wake-up only fires on empty -> non-empty */
    uv_idle_start(&gw->cons_idle, cons_idle_cb);
    return chat_kafka_watch_start(gw->cons, gw->cfg->kafka.topic_messages, gw->parts_start,
                                  gw->cfg->partition_check_ms, parts_changed_cb, gw,
                                  &gw->parts_watch) == CHAT_OK
               ? CHAT_OK
               : CHAT_EIO;
conf_fail:
    chat_log(CHAT_LOG_ERROR, "kafka: %s", err);
    return CHAT_EINVAL;
}

static void close_noop(uv_handle_t *h)
{
    (void)h;
}

/* Stops the loop side (handles closed asynchronously by uv). */
void gw_kafka_stop(struct gw *gw)
{
    if (gw->kafka_polls) {
        gw->kafka_polls = false;
        uv_poll_stop(&gw->prod_poll);
        uv_close((uv_handle_t *)&gw->prod_poll, close_noop);
        uv_poll_stop(&gw->cons_poll);
        uv_close((uv_handle_t *)&gw->cons_poll, close_noop);
        uv_idle_stop(&gw->cons_idle);
        uv_close((uv_handle_t *)&gw->cons_idle, close_noop);
        chat_kafka_watch_stop(gw->parts_watch); /* no uv_async_send after this returns */
        uv_close((uv_handle_t *)&gw->parts_async, close_noop);
    }
}

/* Destroys the Kafka handles after the loop has stopped (may block briefly: not on the loop). */
void gw_kafka_destroy(struct gw *gw)
{
    chat_kafka_watch_free(gw->parts_watch); /* joins: at most one metadata request */
    gw->parts_watch = NULL;
    if (gw->cons_q) {
        rd_kafka_queue_io_event_enable(gw->cons_q, -1, NULL, 0);
        rd_kafka_queue_destroy(gw->cons_q);
    }
    if (gw->prod_q) {
        rd_kafka_queue_io_event_enable(gw->prod_q, -1, NULL, 0);
        rd_kafka_queue_destroy(gw->prod_q);
    }
    if (gw->cons) {
        rd_kafka_consumer_close(gw->cons);
        rd_kafka_destroy(gw->cons);
    }
    if (gw->prod) {
        rd_kafka_flush(gw->prod, 2000); /* after the loop: the drain normally emptied it */
        /* what is still queued fails now, so every pending send is reported and freed */
        rd_kafka_purge(gw->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(gw->prod, 0);
        rd_kafka_destroy(gw->prod);
    }
    for (int i = 0; i < 2; i++) {
        if (gw->prod_pipe[i] > 0)
            close(gw->prod_pipe[i]);
        if (gw->cons_pipe[i] > 0)
            close(gw->cons_pipe[i]);
    }
}
