/* ps_events.c - the persister's chat.events consumer: its own consumer group
 * (CHAT_PERSISTER_EVENTS_GROUP), manual commits. Spam-rule chat bans (`sanction` with reason
 * "spam", produced by a gateway or chat-api) are stored with the held reads, before them, in the
 * same write (ps_store_spam_ban; a replay stores nothing twice). `read` events
 * ({"type":"read","user":U, "room":R,"seq":N}, produced by the gateways for the WebSocket read
 * frame) are coalesced per (user, room) (the highest seq wins) and written as
 * room_members.last_read_seq in one statement once the oldest is batch_ms old or batch_max are
 * held; their offsets are committed after the write. Other event types, user ids that are not
 * accounts' (digits) and undecodable records are skipped (their offsets committed with the rest).
 * While the database is down or a write fails nothing more is read (the events wait in Kafka) and
 * the write is retried with backoff. Polled from the main loop without waiting (ps_events_service);
 * main thread only; see ps.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "chat/config.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "ps.h"

#define POLL_MAX_RECORDS 1000 /* records read per service call */
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
#define CLOSE_MS         5000

static const char *topic(const struct ps *ps)
{
    return ps->cfg->kafka.topic_events;
}

int ps_events_start(struct ps *ps)
{
    struct ps_events *e = &ps->events;
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_resp_err_t err;
    rd_kafka_conf_t *conf;
    char errstr[512];

    /* a new group reads what was produced before it first joined (markers only move forward) */
    conf = ps_consumer_conf_new(ps->cfg, ps->cfg->events_group, false, errstr, sizeof(errstr));
    if (!conf) {
        chat_log(CHAT_LOG_ERROR, "kafka config (events): %s", errstr);
        return CHAT_EINVAL;
    }
    e->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!e->rk) {
        rd_kafka_conf_destroy(conf);
        chat_log(CHAT_LOG_ERROR, "kafka consumer (events): %s", errstr);
        return CHAT_EINVAL;
    }
    (void)rd_kafka_poll_set_consumer(e->rk);
    e->backoff_ms = BACKOFF_MIN_MS;
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic(ps), RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(e->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        chat_log(CHAT_LOG_ERROR, "kafka subscribe %s: %s", topic(ps), rd_kafka_err2str(err));
        return CHAT_EINVAL;
    }
    chat_log(CHAT_LOG_INFO, "consuming %s as group %s (read markers)", topic(ps),
             ps->cfg->events_group);
    return CHAT_OK;
}

static void note_offset(struct ps_events *e, int32_t partition, int64_t offset)
{
    if (e->first_ms == 0)
        e->first_ms = chat_mono_ms();
    for (size_t i = 0; i < e->ncommits; i++) {
        if (e->commits[i].partition == partition) {
            if (offset + 1 > e->commits[i].next)
                e->commits[i].next = offset + 1;
            return;
        }
    }
    if (e->ncommits == e->commits_cap) {
        e->commits_cap = e->commits_cap ? e->commits_cap * 2 : 8;
        e->commits = chat_xrealloc(e->commits, e->commits_cap * sizeof(*e->commits));
    }
    e->commits[e->ncommits++] = (struct ps_commit){.partition = partition, .next = offset + 1};
}

/* Adds (user, room, seq), keeping the highest seq per (user, room). */
static void add_read(struct ps_events *e, int64_t user, const char *room, int64_t seq)
{
    for (size_t i = 0; i < e->n; i++) {
        if (e->reads[i].user == user && strcmp(e->reads[i].room, room) == 0) {
            if (seq > e->reads[i].seq)
                e->reads[i].seq = seq;
            return;
        }
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->reads = chat_xrealloc(e->reads, e->cap * sizeof(*e->reads));
    }
    e->reads[e->n].user = user;
    snprintf(e->reads[e->n].room, sizeof(e->reads[e->n].room), "%s", room);
    e->reads[e->n].seq = seq;
    e->n++;
}

/* Holds a spam-rule chat ban (reason "spam", site-wide chat_ban) to store with the reads. */
static void add_spam_ban(struct ps_events *e, const struct chat_event *ev)
{
    struct ps_spam_ban *b;

    if (e->nbans == e->bans_cap) {
        e->bans_cap = e->bans_cap ? e->bans_cap * 2 : 8;
        e->bans = chat_xrealloc(e->bans, e->bans_cap * sizeof(*e->bans));
    }
    b = &e->bans[e->nbans++];
    snprintf(b->user, sizeof(b->user), "%s", ev->user);
    b->until = ev->until;
    b->offence = ev->offence;
    b->ts = ev->ts;
}

static bool is_spam_ban(const struct chat_event *ev)
{
    return ev->type == CHAT_EV_sanction && ev->user && ev->user[0] &&
           strlen(ev->user) <= CHAT_AUTH_FIELD_MAX && ev->room && strcmp(ev->room, "*") == 0 &&
           ev->kind && strcmp(ev->kind, "chat_ban") == 0 && ev->reason &&
           strcmp(ev->reason, "spam") == 0 && ev->until > 0 && ev->ts > 0;
}

static void handle(struct ps *ps, const rd_kafka_message_t *km)
{
    struct chat_event ev;
    long long user = 0;
    bool decoded;

    if (km->err) {
        if (km->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            chat_metric_add(&ps->m.kafka_errors, 1);
            chat_log(CHAT_LOG_DEBUG, "events consumer: %s", rd_kafka_message_errstr(km));
        }
        return;
    }
    memset(&ev, 0, sizeof(ev));
    decoded = km->payload && km->len > 0 && chat_event_decode(km->payload, km->len, &ev) == CHAT_OK;
    if (decoded && ev.type == CHAT_EV_read && ev.user && ev.user[0] >= '0' && ev.user[0] <= '9' &&
        strlen(ev.user) <= 18 && strspn(ev.user, "0123456789") == strlen(ev.user) &&
        chat_parse_ll(ev.user, 0, INT64_MAX, &user) == CHAT_OK && ev.room &&
        chat_room_valid(ev.room) && ev.seq >= 0) {
        chat_metric_add(&ps->m.read_events, 1);
        add_read(&ps->events, user, ev.room, ev.seq);
    } else if (decoded && is_spam_ban(&ev)) {
        add_spam_ban(&ps->events, &ev);
    }
    chat_event_fini(&ev);
    note_offset(&ps->events, km->partition, km->offset);
}

static void commit_offsets(struct ps *ps)
{
    struct ps_events *e = &ps->events;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;

    if (e->ncommits == 0)
        return;
    l = rd_kafka_topic_partition_list_new((int)e->ncommits);
    for (size_t i = 0; i < e->ncommits; i++)
        rd_kafka_topic_partition_list_add(l, topic(ps), e->commits[i].partition)->offset =
            e->commits[i].next;
    err = rd_kafka_commit(e->rk, l, 0);
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++)
        err = l->elems[i].err;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) { /* stored: a replay only moves nothing */
        chat_metric_add(&ps->m.commit_errors, 1);
        chat_log(CHAT_LOG_WARN, "events offset commit failed: %s", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Writes the held reads and commits their offsets. CHAT_OK (nothing held any more),
 * CHAT_EAGAIN (not connected) or CHAT_EIO. */
static int write_reads(struct ps *ps)
{
    struct ps_events *e = &ps->events;
    struct chat_buf cols[3];
    long long updated = 0, stored = 0;
    int rc = CHAT_OK;

    for (size_t i = 0; i < e->nbans; i++) { /* a retry stores again: the statement skips those */
        rc = ps_store_spam_ban(&ps->store, e->bans[i].user, e->bans[i].until, e->bans[i].offence,
                               e->bans[i].ts, &stored);
        if (rc != CHAT_OK)
            return rc;
        chat_metric_add(&ps->m.spam_bans, stored);
    }
    if (e->n > 0) {
        for (int i = 0; i < 3; i++)
            chat_buf_init(&cols[i], 0, 0);
        for (size_t i = 0; i < e->n && rc == CHAT_OK; i++) {
            rc |= chat_buf_appendf(&cols[0], "%s%" PRId64, i ? "," : "{", e->reads[i].user);
            rc |= chat_buf_append(&cols[1], i ? "," : "{", 1);
            rc |= ps_pg_array_text(&cols[1], e->reads[i].room);
            rc |= chat_buf_appendf(&cols[2], "%s%" PRId64, i ? "," : "{", e->reads[i].seq);
        }
        for (int i = 0; i < 3; i++)
            rc |= chat_buf_append(&cols[i], "}", 1);
        if (rc == CHAT_OK)
            rc = ps_store_apply_reads(&ps->store, chat_buf_data(&cols[0]), chat_buf_data(&cols[1]),
                                      chat_buf_data(&cols[2]), &updated);
        else
            rc = CHAT_EIO;
        for (int i = 0; i < 3; i++)
            chat_buf_fini(&cols[i]);
        if (rc != CHAT_OK)
            return rc;
        chat_metric_add(&ps->m.reads_applied, updated);
    }
    commit_offsets(ps);
    e->n = 0;
    e->nbans = 0;
    e->ncommits = 0;
    e->first_ms = 0;
    return CHAT_OK;
}

void ps_events_service(struct ps *ps)
{
    struct ps_events *e = &ps->events;
    int64_t now = chat_mono_ms();
    bool due;

    if (!e->rk)
        return;
    if (e->retry_ms == 0) { /* not while a failed write waits: the events wait in Kafka */
        for (int i = 0; i < POLL_MAX_RECORDS && e->n < (size_t)ps->cfg->batch_max; i++) {
            rd_kafka_message_t *km = rd_kafka_consumer_poll(e->rk, 0);
            if (!km)
                break;
            handle(ps, km);
            rd_kafka_message_destroy(km);
        }
    }
    due = e->ncommits > 0 &&
          (e->n >= (size_t)ps->cfg->batch_max || now - e->first_ms >= ps->cfg->batch_ms);
    if (!due || (e->retry_ms != 0 && now < e->retry_ms))
        return;
    if (write_reads(ps) == CHAT_OK) {
        e->retry_ms = 0;
        e->backoff_ms = BACKOFF_MIN_MS;
        return;
    }
    e->retry_ms = now + e->backoff_ms;
    e->backoff_ms = e->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : e->backoff_ms * 2;
}

void ps_events_stop(struct ps *ps)
{
    struct ps_events *e = &ps->events;

    if (e->rk) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(e->rk);
        rd_kafka_error_t *error;
        int64_t deadline = chat_mono_ms() + CLOSE_MS;

        if (e->ncommits > 0 && write_reads(ps) != CHAT_OK)
            chat_log(CHAT_LOG_WARN, "stopping with %zu read markers unwritten (re-read later)",
                     e->n);
        /* bounded close, as the messages consumer's (ps_consume.c close_bounded) */
        error = rd_kafka_consumer_close_queue(e->rk, q);
        if (error) {
            rd_kafka_error_destroy(error);
        } else {
            while (!rd_kafka_consumer_closed(e->rk) && chat_mono_ms() < deadline) {
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
                if (ev) /* no rebalance callback: librdkafka unassigns by itself */
                    rd_kafka_event_destroy(ev);
            }
        }
        rd_kafka_queue_destroy(q);
        rd_kafka_destroy_flags(e->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        e->rk = NULL;
    }
    CHAT_FREE(e->reads);
    CHAT_FREE(e->bans);
    CHAT_FREE(e->commits);
    e->n = e->cap = e->ncommits = e->commits_cap = e->nbans = e->bans_cap = 0;
}
