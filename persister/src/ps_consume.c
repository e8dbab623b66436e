/* ps_consume.c - the persister's consumer loop: a consumer group on chat.messages with manual
 * commits. Records are decoded and batched; a batch is written when it holds batch_max rows or
 * its first record is batch_ms old; its offsets are committed (synchronously) only after the
 * database commit. While PostgreSQL fails the batch is kept and retried with backoff, the
 * assignment is paused (so no new records pile up) and the consumer keeps being polled (so the
 * group membership and rebalances are served). On revoke the batch is written once more; if
 * that fails, the revoked partitions' rows are dropped uncommitted (the next owner re-reads
 * them; the insert is idempotent). Works with the eager and the cooperative protocol.
 * The partition count of chat.messages is fixed (a room's seq follows from it): a watch thread
 * (chat_kafka_watch) re-reads it every partition_check_ms; on a change the persister halts: the
 * assignment is paused, the unwritten batch dropped uncommitted, nothing more is written and
 * /readyz says 503, until it is restarted.
 * Main thread only (but the watch callback); see ps.h. */
#include <string.h>

#include "chat/log.h"
#include "chat/time.h"

#include "ps.h"

#define CLOSE_MS 5000 /* leaving the consumer group at shutdown, at most */

#define POLL_MAX_MS               100  /* longest consumer poll, so signals are noticed quickly */
#define TICK_MS                   1000 /* store upkeep and lag refresh */
#define BACKOFF_MIN_MS            100
#define BACKOFF_MAX_MS            5000
#define DRAIN_MS                  10000 /* on SIGTERM, keep retrying the last batch this long */
#define UNDECODABLE_LOG_WINDOW_MS 10000
#define UNDECODABLE_LOG_MAX       10 /* log lines per window; the rest are counted */

static const char *topic(const struct ps *ps)
{
    return ps->cfg->kafka.topic_messages;
}

static void update_assigned(struct ps *ps)
{
    rd_kafka_topic_partition_list_t *a = NULL;

    if (rd_kafka_assignment(ps->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_metric_set(&ps->m.assigned, a->cnt);
        rd_kafka_topic_partition_list_destroy(a);
    }
}

/* Pauses (or resumes) the whole current assignment. */
static void pause_assignment(struct ps *ps, bool pause)
{
    rd_kafka_topic_partition_list_t *a = NULL;

    if (rd_kafka_assignment(ps->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (pause)
        (void)rd_kafka_pause_partitions(ps->rk, a);
    else
        (void)rd_kafka_resume_partitions(ps->rk, a);
    rd_kafka_topic_partition_list_destroy(a);
    ps->paused = pause;
    chat_log(CHAT_LOG_INFO, "%s consumption", pause ? "paused" : "resumed");
}

/* Commits the batch's offsets synchronously. A failure is counted and logged, not returned: the
 * rows are stored, so a replay only costs skipped duplicates. */
static void commit_offsets(struct ps *ps)
{
    const struct ps_batch *b = &ps->batch;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;

    if (b->ncommits == 0)
        return;
    l = rd_kafka_topic_partition_list_new((int)b->ncommits);
    for (size_t i = 0; i < b->ncommits; i++)
        rd_kafka_topic_partition_list_add(l, topic(ps), b->commits[i].partition)->offset =
            b->commits[i].next;
    err = rd_kafka_commit(ps->rk, l, 0);
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++)
        err = l->elems[i].err;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_metric_add(&ps->m.commit_errors, 1);
        chat_log(CHAT_LOG_WARN, "offset commit failed: %s (rows are stored; a replay skips them)",
                 rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Writes the batch's rows, then commits its offsets (unless commit_interval_ms holds them back
 * and force is false: the rows are then forgotten, the offsets kept for a later commit), then
 * empties it. Returns CHAT_OK or CHAT_EIO (the database write failed: the batch is kept, nothing
 * committed). write_since_ms tells /readyz how long a write has been running or failing. */
static int write_and_commit(struct ps *ps, bool force)
{
    struct ps_batch *b = &ps->batch;
    int64_t t0 = chat_mono_us(), now_ms;
    long long inserted = 0;

    if (b->n > 0) {
        if (chat_metric_get(&ps->m.write_since_ms) == 0)
            chat_metric_set(&ps->m.write_since_ms, chat_mono_ms());
        if (ps_store_write(&ps->store, b, &inserted) != CHAT_OK)
            return CHAT_EIO;           /* write_since_ms stays: failing counts as stuck */
        ps_cache_write(&ps->cache, b); /* after the database commit; never fails the batch */
        chat_metric_set(&ps->m.write_since_ms, 0);
        chat_metric_add(&ps->m.stored, inserted);
        chat_metric_add(&ps->m.duplicates, (long long)b->n - inserted);
        chat_metric_add(&ps->m.batches, 1);
        now_ms = chat_now_ms();
        for (size_t i = 0; i < b->n; i++) {
            int64_t d = now_ms - b->rows[i].ts_ms;
            chat_hist_record(&ps->m.delay_us, d > 0 ? (uint64_t)d * 1000 : 0);
        }
        if ((size_t)inserted < b->n)
            chat_log(CHAT_LOG_DEBUG, "batch: %zu rows, %lld new, %lld already stored", b->n,
                     inserted, (long long)b->n - inserted);
    }
    if (!force && ps->cfg->commit_interval_ms > 0 && chat_mono_ms() < ps->next_commit_ms) {
        ps_batch_clear_rows(b); /* stored; their offsets wait for the next commit */
        chat_metric_set(&ps->m.batch_rows, 0);
        chat_hist_record(&ps->m.batch_us, (uint64_t)(chat_mono_us() - t0));
        return CHAT_OK;
    }
    commit_offsets(ps);
    ps->next_commit_ms = chat_mono_ms() + ps->cfg->commit_interval_ms;
    chat_hist_record(&ps->m.batch_us, (uint64_t)(chat_mono_us() - t0));
    ps_batch_reset(b);
    chat_metric_set(&ps->m.batch_rows, 0);
    return CHAT_OK;
}

static void on_revoke(struct ps *ps, rd_kafka_topic_partition_list_t *parts, bool lost)
{
    int32_t ids[64];
    size_t dropped = 0;

    if (ps->paused) /* our pause flag would otherwise survive into a later assignment */
        (void)rd_kafka_resume_partitions(ps->rk, parts);
    if (!ps_batch_pending(&ps->batch))
        return;
    if (!lost && write_and_commit(ps, true) == CHAT_OK)
        return;
    for (int i = 0; i < parts->cnt;) {
        size_t n = 0;
        while (i < parts->cnt && n < sizeof(ids) / sizeof(ids[0]))
            ids[n++] = parts->elems[i++].partition;
        dropped += ps_batch_drop_partitions(&ps->batch, ids, n);
    }
    chat_metric_set(&ps->m.batch_rows, (long long)ps->batch.n);
    if (ps->batch.n == 0)
        chat_metric_set(&ps->m.write_since_ms, 0); /* nothing of ours is being written */
    chat_log(CHAT_LOG_WARN,
             "revoke%s: dropped %zu unwritten rows of %d partitions (uncommitted:"
             " the next owner re-reads them)",
             lost ? " (assignment lost)" : "", dropped, parts->cnt);
}

static void log_kafka_error(const char *what, rd_kafka_resp_err_t err, rd_kafka_error_t *error)
{
    chat_log(CHAT_LOG_ERROR, "%s failed: %s", what,
             error ? rd_kafka_error_string(error) : rd_kafka_err2str(err));
    if (error)
        rd_kafka_error_destroy(error);
}

/* Gives partitions back: incrementally under cooperative rebalancing, all at once otherwise. */
static void unassign(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, bool coop)
{
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_error_t *error = NULL;

    if (coop)
        error = rd_kafka_incremental_unassign(rk, parts);
    else
        e = rd_kafka_assign(rk, NULL);
    if (error || e)
        log_kafka_error("unassign", e, error);
}

static void rebalance_cb(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct ps *ps = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_error_t *error = NULL;

    ps_cache_forget(&ps->cache); /* a room's next message may not follow the last one we saw */
    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        if (coop)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            e = rd_kafka_assign(rk, parts);
        if (error || e)
            log_kafka_error("assign", e, error);
        else if (ps->paused)
            (void)rd_kafka_pause_partitions(rk, parts);
        chat_log(CHAT_LOG_INFO, "rebalance: assigned %d partitions", parts->cnt);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        on_revoke(ps, parts, rd_kafka_assignment_lost(rk));
        unassign(rk, parts, coop);
        chat_log(CHAT_LOG_INFO, "rebalance: revoked %d partitions", parts->cnt);
        break;
    default:
        chat_log(CHAT_LOG_ERROR, "rebalance error: %s", rd_kafka_err2str(err));
        unassign(rk, parts, coop);
        break;
    }
    update_assigned(ps);
}

/* Leaves the group, but not forever: rd_kafka_consumer_close() can wait without end for a
 * coordinator that does not answer (seen with the dev broker after a member was SIGKILLed).
 * The revoke is handled like the rebalance callback would (the batch was flushed before). */
static void close_bounded(struct ps *ps)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(ps->rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(ps->rk, q);
    int64_t deadline = chat_mono_ms() + CLOSE_MS;

    if (error) {
        log_kafka_error("consumer close", RD_KAFKA_RESP_ERR_NO_ERROR, error);
        rd_kafka_queue_destroy(q);
        return;
    }
    while (!rd_kafka_consumer_closed(ps->rk) && chat_mono_ms() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            rebalance_cb(ps->rk, rd_kafka_event_error(ev),
                         (rd_kafka_topic_partition_list_t *)(uintptr_t)
                             rd_kafka_event_topic_partition_list(ev),
                         ps);
        rd_kafka_event_destroy(ev);
    }
    if (!rd_kafka_consumer_closed(ps->rk))
        chat_log(CHAT_LOG_WARN,
                 "consumer close did not finish in %d ms; leaving anyway (the "
                 "group notices at its session timeout)",
                 CLOSE_MS);
    rd_kafka_queue_destroy(q);
}

/* Logs an undecodable record once (partition/offset, never its bytes), rate-limited. */
static void log_undecodable(struct ps *ps, int32_t partition, int64_t offset)
{
    int64_t now = chat_mono_ms();

    if (now - ps->undecodable_log_ms >= UNDECODABLE_LOG_WINDOW_MS) {
        if (ps->undecodable_logged > UNDECODABLE_LOG_MAX)
            chat_log(CHAT_LOG_WARN, "%d more undecodable records were not logged",
                     ps->undecodable_logged - UNDECODABLE_LOG_MAX);
        ps->undecodable_log_ms = now;
        ps->undecodable_logged = 0;
    }
    if (ps->undecodable_logged++ < UNDECODABLE_LOG_MAX)
        chat_log(CHAT_LOG_WARN, "skipping undecodable record partition=%d offset=%lld",
                 (int)partition, (long long)offset);
}

/* Watch thread: hand the change to the main thread (checked after every poll). */
static void parts_changed_cb(void *ud, int was, int now)
{
    struct ps *ps = ud;

    atomic_store(&ps->parts_was, was);
    atomic_store(&ps->parts_now, now);
}

/* Halts on a partition count change: rows consumed from now on may carry a broken seq. */
static void check_partitions(struct ps *ps)
{
    int now = atomic_load(&ps->parts_now);

    if (now == 0 || ps->halted)
        return;
    ps->halted = true;
    chat_metric_add(&ps->m.partition_changes, 1);
    chat_log(CHAT_LOG_ERROR,
             "kafka: topic %s has %d partitions, this persister started with %d: writing "
             "stopped (consumption paused, %zu unwritten rows dropped uncommitted, not ready) "
             "until restarted; the partition count of chat.messages is fixed; restore it or "
             "recreate the topic and restart",
             topic(ps), now, atomic_load(&ps->parts_was), ps->batch.n);
    if (!ps->paused)
        pause_assignment(ps, true);
    ps_batch_reset(&ps->batch);
    chat_metric_set(&ps->m.batch_rows, 0);
    chat_metric_set(&ps->m.write_since_ms, 0);
}

static void handle_record(struct ps *ps, const rd_kafka_message_t *km)
{
    enum chat_stream_type type = CHAT_STREAM_UNKNOWN;
    struct chat_stream_ev ev;
    struct chat_event_msg m;
    void *doc = NULL;
    int rc = CHAT_EPROTO;

    if (ps->halted) /* a record fetched before the pause: not stored, not committed */
        return;
    if (km->err) {
        if (km->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return;
        chat_metric_add(&ps->m.kafka_errors, 1);
        chat_log(CHAT_LOG_WARN, "consumer error: %s", rd_kafka_message_errstr(km));
        return;
    }
    if (km->payload && km->len > 0)
        (void)chat_msg_stream_prefix(km->payload, km->len, &type);
    if (type == CHAT_STREAM_MESSAGE) {
        rc = chat_msg_decode(km->payload, km->len, &m, &doc);
        if (rc == CHAT_OK)
            rc = ps_batch_add(&ps->batch, km->partition, km->offset, &m, km->payload, km->len,
                              chat_mono_ms());
    } else if (type != CHAT_STREAM_UNKNOWN) { /* message_deleted, system: rows of their kind */
        rc = chat_stream_ev_decode(km->payload, km->len, &ev, &doc);
        if (rc == CHAT_OK)
            rc = ps_batch_add_event(&ps->batch, km->partition, km->offset, &ev, km->payload,
                                    km->len, chat_mono_ms());
    }
    chat_json_free(doc);
    if (rc != CHAT_OK) {
        chat_metric_add(&ps->m.undecodable, 1);
        log_undecodable(ps, km->partition, km->offset);
        ps_batch_skip(&ps->batch, km->partition, km->offset, chat_mono_ms());
    }
    chat_metric_set(&ps->m.batch_rows, (long long)ps->batch.n);
}

/* Polls for up to ms, serving rebalances; records that still arrive join the batch. */
static void poll_for(struct ps *ps, int ms)
{
    int64_t end = chat_mono_ms() + ms;

    for (;;) {
        int64_t left = end - chat_mono_ms();
        rd_kafka_message_t *km;

        if (left <= 0 || *ps->stop >= 2)
            return;
        km = rd_kafka_consumer_poll(ps->rk, left > POLL_MAX_MS ? POLL_MAX_MS : (int)left);
        if (km) {
            handle_record(ps, km);
            rd_kafka_message_destroy(km);
        }
    }
}

/* Writes and commits the batch, retrying with backoff while the database fails. Once a stop
 * was requested it gives up DRAIN_MS later, or at once on a second signal (returns CHAT_EIO;
 * the batch is kept and its offsets are not committed). */
static int flush(struct ps *ps, bool force)
{
    int backoff = BACKOFF_MIN_MS;
    int rc = CHAT_OK;

    while (ps_batch_pending(&ps->batch)) {
        check_partitions(ps); /* drops the batch when halted */
        if (ps->halted)
            break;
        rc = write_and_commit(ps, force);
        if (rc == CHAT_OK)
            break;
        if (!ps->paused)
            pause_assignment(ps, true);
        if (*ps->stop && ps->drain_until_ms == 0)
            ps->drain_until_ms = chat_mono_ms() + DRAIN_MS;
        if (*ps->stop >= 2 || (ps->drain_until_ms && chat_mono_ms() >= ps->drain_until_ms))
            break;
        chat_log(backoff == BACKOFF_MIN_MS ? CHAT_LOG_WARN : CHAT_LOG_DEBUG,
                 "batch of %zu rows not written; retrying in %d ms", ps->batch.n, backoff);
        poll_for(ps, backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    if (!ps_batch_pending(&ps->batch))
        rc = CHAT_OK; /* written, or dropped by a revoke: nothing of ours is pending */
    if (rc == CHAT_OK && ps->paused && !ps->halted)
        pause_assignment(ps, false);
    return rc;
}

static void update_lag(struct ps *ps)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    long long lag = 0;

    if (rd_kafka_assignment(ps->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    chat_metric_set(&ps->m.assigned, a->cnt);
    if (rd_kafka_position(ps->rk, a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < a->cnt; i++) {
            int64_t lo, hi;
            if (a->elems[i].offset < 0 ||
                rd_kafka_get_watermark_offsets(ps->rk, a->elems[i].topic, a->elems[i].partition,
                                               &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR)
                continue;
            if (hi > a->elems[i].offset)
                lag += hi - a->elems[i].offset;
        }
    }
    chat_metric_set(&ps->m.lag, lag);
    rd_kafka_topic_partition_list_destroy(a);
}

/* Served by rd_kafka_consumer_poll (main thread). Errors are usually transient (the client
 * retries): count them; a fatal one stops the process with a failure status. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct ps *ps = opaque;
    char fatal[256];

    chat_metric_add(&ps->m.kafka_errors, 1);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        chat_log(CHAT_LOG_ERROR, "kafka fatal error: %s; stopping", fatal);
        atomic_store(&ps->fatal, true);
        return;
    }
    chat_log(CHAT_LOG_DEBUG, "kafka error: %s: %s", rd_kafka_err2name(err), reason);
}

int ps_consumer_start(struct ps *ps)
{
    const struct ps_cfg *cfg = ps->cfg;
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_resp_err_t err;
    rd_kafka_conf_t *conf;
    char errstr[512];

    conf =
        chat_kafka_conf_new(&cfg->kafka, CHAT_KAFKA_CONSUMER, cfg->group, errstr, sizeof(errstr));
    /* A new group starts at the beginning: the persister must not miss what was produced
     * before it first joined. CHAT_KAFKA_EXTRA may still say otherwise. */
    if (conf && !strstr(cfg->kafka.extra, "auto.offset.reset") &&
        chat_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof(errstr)) !=
            CHAT_OK) {
        rd_kafka_conf_destroy(conf);
        conf = NULL;
    }
    if (!conf) {
        chat_log(CHAT_LOG_ERROR, "kafka config: %s", errstr);
        return CHAT_EINVAL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, ps);
    ps->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!ps->rk) {
        rd_kafka_conf_destroy(conf);
        chat_log(CHAT_LOG_ERROR, "kafka consumer: %s", errstr);
        return CHAT_EINVAL;
    }
    (void)rd_kafka_poll_set_consumer(ps->rk);
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic(ps), RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(ps->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        chat_log(CHAT_LOG_ERROR, "kafka subscribe %s: %s", topic(ps), rd_kafka_err2str(err));
        return CHAT_EINVAL;
    }
    ps->next_commit_ms = chat_mono_ms() + cfg->commit_interval_ms; /* the first held one too */
    if (chat_kafka_watch_start(ps->rk, topic(ps), 0, cfg->partition_check_ms, parts_changed_cb, ps,
                               &ps->watch) != CHAT_OK)
        return CHAT_EIO;
    chat_log(CHAT_LOG_INFO, "consuming %s as group %s", topic(ps), cfg->group);
    return CHAT_OK;
}

static bool batch_due(const struct ps *ps, int64_t now)
{
    const struct ps_batch *b = &ps->batch;

    if (!ps_batch_pending(b))
        return false;
    if (b->first_ms != 0) /* records not yet written */
        return b->n >= (size_t)ps->cfg->batch_max || now - b->first_ms >= ps->cfg->batch_ms;
    return now >= ps->next_commit_ms; /* only held offsets */
}

/* Longest poll before the batch (or a held commit) is due, at most POLL_MAX_MS. */
static int poll_timeout(const struct ps *ps, int64_t now)
{
    int64_t left;

    if (!ps_batch_pending(&ps->batch))
        return POLL_MAX_MS;
    left = ps->batch.first_ms != 0 ? ps->batch.first_ms + ps->cfg->batch_ms - now
                                   : ps->next_commit_ms - now;
    return left <= 0 ? 0 : left < POLL_MAX_MS ? (int)left : POLL_MAX_MS;
}

int ps_run(struct ps *ps)
{
    int64_t last_tick = 0;

    while (!*ps->stop && !atomic_load(&ps->fatal)) {
        int64_t now = chat_mono_ms();
        rd_kafka_message_t *km;

        km = rd_kafka_consumer_poll(ps->rk, poll_timeout(ps, now));
        if (km) {
            handle_record(ps, km);
            rd_kafka_message_destroy(km);
        }
        check_partitions(ps);
        now = chat_mono_ms();
        if (batch_due(ps, now))
            (void)flush(ps, false); /* returns once written, or on stop after DRAIN_MS */
        ps_events_service(ps);      /* never waits */
        if (now - last_tick >= TICK_MS) {
            last_tick = now;
            ps_store_tick(&ps->store, chat_now_ms());
            update_lag(ps);
        }
    }
    chat_log(CHAT_LOG_INFO, "stopping: flushing %zu rows", ps->batch.n);
    if (flush(ps, true) != CHAT_OK)
        chat_log(CHAT_LOG_ERROR,
                 "stopping with %zu unwritten rows (offsets not committed: they"
                 " will be re-read)",
                 ps->batch.n);
    ps_events_stop(ps);
    close_bounded(ps);
    chat_metric_set(&ps->m.assigned, 0);
    return atomic_load(&ps->fatal) ? CHAT_EIO : CHAT_OK;
}

void ps_consumer_free(struct ps *ps)
{
    chat_kafka_watch_free(ps->watch); /* before the handle it reads */
    ps->watch = NULL;
    if (ps->rk) {
        /* closed (or given up on) by close_bounded(): do not wait for the group again */
        rd_kafka_destroy_flags(ps->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        ps->rk = NULL;
    }
}
