/* ps_consume.c - the persister's consumer loop: a consumer group on chat.messages with manual
 * commits. Records are decoded and batched; a batch is written when it holds batch_max rows or
 * its first record is batch_ms old; its offsets are committed only after the database commit
 * (asynchronously; synchronously on revoke and at shutdown). Pipelined: while the database
 * writes one batch (wbatch, non-blocking in the store) the loop decodes the next one (batch);
 * the written one (done) goes to the recent cache and its offsets are committed while the
 * database already writes the next. One write at a time, in order. While PostgreSQL fails the batch
 * is kept and retried with backoff, the assignment is paused (so no new records pile up) and the
 * consumer keeps being polled (so the group membership and rebalances are served). On revoke the
 * batch is written once more; if that fails, the revoked partitions' rows are dropped uncommitted
 * (the next owner re-reads them; the insert is idempotent). Works with the eager and the
 * cooperative protocol. The partition count of chat.messages is fixed (a room's seq follows from
 * it): a watch thread (chat_kafka_watch) re-reads it every partition_check_ms; on a change the
 * persister halts: the assignment is paused, the unwritten batch dropped uncommitted, nothing more
 * is written and /readyz says 503, until it is restarted. Main thread only (but the watch
 * callback); see ps.h. */
#include <string.h>

#include "chat/log.h"
#include "chat/time.h"

#include "ps.h"

#define CLOSE_MS 5000 /* leaving the consumer group at shutdown, at most */

#define POLL_MAX_MS               100  /* longest consumer poll, so signals are noticed quickly */
#define WRITE_CHECK_EVERY         256  /* records consumed between looks at a running write */
#define WRITE_WAIT_MS             5    /* no record: wait this long for the database, then poll */
#define TICK_MS                   1000 /* store upkeep and lag refresh */
#define BACKOFF_MIN_MS            100
#define BACKOFF_MAX_MS            5000
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

/* Commits the held offsets (ps->held), synchronously when sync (else the result is served
 * by a later poll: offset_commit_cb), and empties them. A failure is counted and logged, not
 * returned: the rows are stored, so a replay only costs skipped duplicates. */
static void commit_offsets(struct ps *ps, bool sync)
{
    struct ps_batch *h = &ps->held;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;

    ps->next_commit_ms = chat_mono_ms() + ps->cfg->commit_interval_ms;
    if (h->ncommits == 0)
        return;
    l = rd_kafka_topic_partition_list_new((int)h->ncommits);
    for (size_t i = 0; i < h->ncommits; i++)
        rd_kafka_topic_partition_list_add(l, topic(ps), h->commits[i].partition)->offset =
            h->commits[i].next;
    ps_batch_reset(h);
    err = rd_kafka_commit(ps->rk, l, !sync);
    for (int i = 0; sync && err == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++)
        err = l->elems[i].err;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_metric_add(&ps->m.commit_errors, 1);
        chat_log(CHAT_LOG_WARN, "offset commit failed: %s (rows are stored; a replay skips them)",
                 rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* The asynchronous commits' results (served by rd_kafka_consumer_poll, main thread). */
static void offset_commit_cb(rd_kafka_t *rk,
                             rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets,
                             void *opaque)
{
    struct ps *ps = opaque;

    (void)rk;
    for (int i = 0; offsets && err == RD_KAFKA_RESP_ERR_NO_ERROR && i < offsets->cnt; i++)
        err = offsets->elems[i].err;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    chat_metric_add(&ps->m.commit_errors, 1);
    chat_log(CHAT_LOG_WARN, "offset commit failed: %s (rows are stored; a replay skips them)",
             rd_kafka_err2str(err));
}

static void swap_batches(struct ps_batch *a, struct ps_batch *b)
{
    struct ps_batch t = *a;

    *a = *b;
    *b = t;
}

/* After b's database commit (inserted of its rows were new, conflicts of the others id
 * conflicts, the rest replays): the recent cache, the metrics, then
 * its offsets join the held ones, which are committed now unless commit_interval_ms holds them
 * back (force: never; sync: wait for the commit). Empties b. */
static void finish_batch(struct ps *ps,
                         struct ps_batch *b,
                         long long inserted,
                         long long conflicts,
                         bool force,
                         bool sync)
{
    int64_t now_ms;

    if (b->n > 0) {
        ps_cache_write(&ps->cache, b); /* after the database commit; never fails the batch */
        chat_metric_add(&ps->m.stored, inserted);
        chat_metric_add(&ps->m.duplicates, (long long)b->n - inserted - conflicts);
        chat_metric_add(&ps->m.id_conflicts, conflicts);
        chat_metric_add(&ps->m.batches, 1);
        now_ms = chat_now_ms();
        for (size_t i = 0; i < b->n; i++) {
            int64_t d = now_ms - b->rows[i].ts_ms;
            chat_hist_record_1w(&ps->m.delay_us, d > 0 ? (uint64_t)d * 1000 : 0);
        }
        if ((size_t)inserted < b->n)
            chat_log(CHAT_LOG_DEBUG, "batch: %zu rows, %lld new, %lld already stored", b->n,
                     inserted, (long long)b->n - inserted);
    }
    ps_batch_merge_commits(&ps->held, b);
    ps_batch_reset(b);
    if (force || ps->cfg->commit_interval_ms <= 0 || chat_mono_ms() >= ps->next_commit_ms)
        commit_offsets(ps, sync || force);
}

/* Finishes the written batch (ps->done), if any. */
static void finish_done(struct ps *ps, bool force)
{
    if (ps_batch_pending(&ps->done))
        finish_batch(ps, &ps->done, ps->done_inserted, ps->done_conflicts, force, force);
    ps->done_inserted = ps->done_conflicts = 0;
}

/* Advances the running write of wbatch, waiting up to wait_ms (< 0: to its end). When it ends
 * well wbatch becomes the done batch (finished by the caller: finish_done); when it fails
 * wbatch stays, to be retried (flush). */
static void service_write(struct ps *ps, int wait_ms)
{
    long long inserted = 0;
    int rc;

    ps->since_check = 0;
    if (!ps->writing)
        return;
    rc = ps_store_write_poll(&ps->store, wait_ms, &inserted);
    if (rc == CHAT_EAGAIN)
        return;
    ps->writing = false;
    if (rc != CHAT_OK)
        return; /* write_since_ms stays: failing counts as stuck */
    chat_hist_record_1w(&ps->m.batch_us, (uint64_t)(chat_mono_us() - ps->write_t0_us));
    chat_metric_set(&ps->m.write_since_ms, 0);
    finish_done(ps, false); /* an earlier one, if still there */
    swap_batches(&ps->wbatch, &ps->done);
    ps->done_inserted = inserted;
    ps->done_conflicts = ps->store.wconflicts;
}

/* Starts writing b's rows (b becomes wbatch; wbatch must be empty). A batch of skipped records
 * only is finished at once. Returns CHAT_OK (running or finished) or CHAT_EIO (wbatch kept, to
 * be retried by flush). */
static int start_write(struct ps *ps, struct ps_batch *b)
{
    if (b != &ps->wbatch)
        swap_batches(b, &ps->wbatch);
    chat_metric_set(&ps->m.batch_rows, (long long)ps->batch.n);
    ps->write_t0_us = chat_mono_us();
    if (ps->wbatch.n == 0) {
        finish_batch(ps, &ps->wbatch, 0, 0, false, false);
        return CHAT_OK;
    }
    if (chat_metric_get(&ps->m.write_since_ms) == 0)
        chat_metric_set(&ps->m.write_since_ms, chat_mono_ms());
    if (ps_store_write_start(&ps->store, &ps->wbatch) != CHAT_OK)
        return CHAT_EIO;
    ps->writing = true;
    return CHAT_OK;
}

/* Waits for the running write to end and finishes what is written (force: commit the offsets
 * now, held ones included). */
static void drain_writes(struct ps *ps, bool force)
{
    while (ps->writing)
        service_write(ps, POLL_MAX_MS);
    finish_done(ps, force);
}

/* Writes b (wbatch, or the batch being built) to the end and finishes it. Returns CHAT_OK or
 * CHAT_EIO (b kept, nothing committed). */
static int write_sync(struct ps *ps, struct ps_batch *b, bool force)
{
    int rc;

    drain_writes(ps, force);
    if (!ps_batch_pending(b))
        return CHAT_OK;
    rc = start_write(ps, b);
    if (rc == CHAT_OK)
        drain_writes(ps, force);
    if (ps->writing || ps_batch_pending(&ps->wbatch))
        return CHAT_EIO;
    return CHAT_OK;
}

/* The drain gives up PS_DRAIN_MS after the first signal (its time as the handler recorded it,
 * the end at which the guard cuts a stuck write too; now if unknown). */
static void set_drain_end(struct ps *ps)
{
    int64_t t = ps_guard_stop_ms(&ps->store.guard);

    ps->drain_until_ms = (t ? t : chat_mono_ms()) + PS_DRAIN_MS;
}

/* True once a stop gives up on the database: at a second signal, or PS_DRAIN_MS after the first. */
static bool giving_up(struct ps *ps)
{
    if (!*ps->stop)
        return false;
    if (ps->drain_until_ms == 0)
        set_drain_end(ps);
    return *ps->stop >= 2 || chat_mono_ms() >= ps->drain_until_ms;
}

static void on_revoke(struct ps *ps, rd_kafka_topic_partition_list_t *parts, bool lost)
{
    int32_t ids[64];
    size_t dropped = 0;

    if (ps->paused) /* our pause flag would otherwise survive into a later assignment */
        (void)rd_kafka_resume_partitions(ps->rk, parts);
    drain_writes(ps, !lost); /* the store borrows wbatch's rows until its write ends */
    if (!ps_batch_pending(&ps->wbatch) && !ps_batch_pending(&ps->batch) &&
        !ps_batch_pending(&ps->held))
        return;
    if (!lost && !giving_up(ps) && write_sync(ps, &ps->wbatch, true) == CHAT_OK &&
        write_sync(ps, &ps->batch, true) == CHAT_OK) {
        commit_offsets(ps, true);
        return;
    }
    for (int i = 0; i < parts->cnt;) {
        size_t n = 0;
        while (i < parts->cnt && n < sizeof(ids) / sizeof(ids[0]))
            ids[n++] = parts->elems[i++].partition;
        dropped += ps_batch_drop_partitions(&ps->wbatch, ids, n);
        dropped += ps_batch_drop_partitions(&ps->batch, ids, n);
        (void)ps_batch_drop_partitions(&ps->held, ids, n);
    }
    chat_metric_set(&ps->m.batch_rows, (long long)ps->batch.n);
    if (ps->wbatch.n == 0 && ps->batch.n == 0)
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
             topic(ps), now, atomic_load(&ps->parts_was), ps->batch.n + ps->wbatch.n);
    if (!ps->paused)
        pause_assignment(ps, true);
    while (ps->writing) /* the store borrows wbatch's rows until its write ends */
        service_write(ps, POLL_MAX_MS);
    ps_batch_reset(&ps->batch);
    ps_batch_reset(&ps->wbatch);
    ps_batch_reset(&ps->done);
    ps_batch_reset(&ps->held);
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

/* Writes wbatch (failed before) and, when all, the batch being built to the end, retrying
 * with backoff (the assignment paused) while the database fails. Once a stop was requested it
 * gives up PS_DRAIN_MS after it, or at once on a second signal (returns CHAT_EIO; the batches are
 * kept and their offsets are not committed). force: commit the offsets now, held ones included. */
static int flush(struct ps *ps, bool force, bool all)
{
    int backoff = BACKOFF_MIN_MS;
    int rc = CHAT_OK;

    drain_writes(ps, force);
    for (;;) {
        struct ps_batch *b = ps_batch_pending(&ps->wbatch)         ? &ps->wbatch
                             : all && ps_batch_pending(&ps->batch) ? &ps->batch
                                                                   : NULL;
        check_partitions(ps); /* drops the batches when halted */
        if (!b || ps->halted)
            break;
        if (giving_up(ps)) { /* not even one more try (a connect attempt can take seconds) */
            rc = CHAT_EIO;
            break;
        }
        rc = write_sync(ps, b, force);
        if (rc == CHAT_OK) {
            backoff = BACKOFF_MIN_MS;
            continue;
        }
        if (!ps->paused)
            pause_assignment(ps, true);
        if (giving_up(ps))
            break;
        chat_log(backoff == BACKOFF_MIN_MS ? CHAT_LOG_WARN : CHAT_LOG_DEBUG,
                 "batch of %zu rows not written; retrying in %d ms", b->n, backoff);
        poll_for(ps, backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    if (!ps_batch_pending(&ps->wbatch) && (!all || !ps_batch_pending(&ps->batch)))
        rc = CHAT_OK; /* written, or dropped by a revoke: nothing of ours is pending */
    if (rc == CHAT_OK && force)
        commit_offsets(ps, true);
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

static void pump_store(void *arg)
{
    ps_store_pump(&((struct ps *)arg)->store);
}

int ps_consumer_start(struct ps *ps)
{
    const struct ps_cfg *cfg = ps->cfg;
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_resp_err_t err;
    rd_kafka_conf_t *conf;
    char errstr[512];

    ps_cache_set_pump(&ps->cache, pump_store, ps);
    conf = ps_consumer_conf_new(cfg, cfg->group, true, errstr, sizeof(errstr));
    if (!conf) {
        chat_log(CHAT_LOG_ERROR, "kafka config: %s", errstr);
        return CHAT_EINVAL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
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

/* True when the batch being built is to be written: batch_max rows, or its first record
 * batch_ms old. */
static bool batch_due(const struct ps *ps, int64_t now)
{
    const struct ps_batch *b = &ps->batch;

    return ps_batch_pending(b) &&
           (b->n >= (size_t)ps->cfg->batch_max || now - b->first_ms >= ps->cfg->batch_ms);
}

/* Longest poll before the batch (or a held commit) is due, at most POLL_MAX_MS. */
static int poll_timeout(const struct ps *ps, int64_t now)
{
    int64_t left = POLL_MAX_MS;

    if (ps_batch_pending(&ps->batch))
        left = ps->batch.first_ms + ps->cfg->batch_ms - now;
    if (ps_batch_pending(&ps->held) && ps->next_commit_ms - now < left)
        left = ps->next_commit_ms - now;
    return left <= 0 ? 0 : left < POLL_MAX_MS ? (int)left : POLL_MAX_MS;
}

/* One turn while a batch is being written: the next record (never waiting for Kafka), and a look
 * at the write every WRITE_CHECK_EVERY records; with no record, or with the next batch due, the
 * turn waits for the database instead (at most WRITE_WAIT_MS, or POLL_MAX_MS when due). */
static void turn_writing(struct ps *ps, int64_t now)
{
    rd_kafka_message_t *km = NULL;
    bool due = batch_due(ps, now);

    if (!due)
        km = rd_kafka_consumer_poll(ps->rk, 0);
    if (km) {
        handle_record(ps, km);
        rd_kafka_message_destroy(km);
        if (++ps->since_check >= WRITE_CHECK_EVERY)
            service_write(ps, 0);
        return;
    }
    if (due) {
        (void)ps_store_encode(&ps->batch); /* ready to go when the database is free */
        service_write(ps, POLL_MAX_MS);
    } else {
        int t = poll_timeout(ps, now); /* > 0: the batch is not due; a held commit waits */
        service_write(ps, t < 1 ? 1 : t < WRITE_WAIT_MS ? t : WRITE_WAIT_MS);
    }
}

int ps_run(struct ps *ps)
{
    int64_t last_tick = 0, last_lag = 0;

    while (!*ps->stop && !atomic_load(&ps->fatal)) {
        int64_t now = chat_mono_ms();

        if (ps->writing) {
            turn_writing(ps, now);
        } else {
            rd_kafka_message_t *km = rd_kafka_consumer_poll(ps->rk, poll_timeout(ps, now));
            if (km) {
                handle_record(ps, km);
                rd_kafka_message_destroy(km);
            }
        }
        check_partitions(ps);
        now = chat_mono_ms();
        if (!ps->writing && ps_batch_pending(&ps->wbatch))
            (void)flush(ps, false, false); /* failed: retried, returns once written (or stop) */
        if (!ps->writing) { /* the store is free: its upkeep, the events, the next batch */
            if (now - last_tick >= TICK_MS) {
                last_tick = now;
                ps_store_tick(&ps->store, chat_now_ms());
            }
            ps_events_service(ps); /* never waits */
            if (batch_due(ps, now) && start_write(ps, &ps->batch) != CHAT_OK)
                (void)flush(ps, false, false);
        }
        /* the written batch: cache and offsets, while the database works on the next one */
        finish_done(ps, false);
        if (!ps->writing && !ps_batch_pending(&ps->wbatch) && ps_batch_pending(&ps->held) &&
            now >= ps->next_commit_ms)
            commit_offsets(ps, false);
        if (now - last_lag >= TICK_MS) {
            last_lag = now;
            update_lag(ps);
        }
    }
    chat_log(CHAT_LOG_INFO, "stopping: flushing %zu rows", ps->batch.n + ps->wbatch.n);
    (void)giving_up(ps); /* the drain's end, counted from the signal */
    if (flush(ps, true, true) != CHAT_OK)
        chat_log(CHAT_LOG_ERROR,
                 "stopping with %zu unwritten rows (offsets not committed: they"
                 " will be re-read)",
                 ps->batch.n + ps->wbatch.n);
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
