/* it_persister_fault.c - the persister under faults (tests/integration/fixtures/cluster.sh):
 *
 * 1. SIGKILL with a proven replay: three users stream over both gateways while the persister
 *    runs with its offset commits held back (CHAT_COMMIT_INTERVAL_MS of an hour, so what it stores
 *    stays uncommitted: deterministic, not a race with the commit after each batch); it is
 *    SIGKILLed in the middle of the stream and started again. Every send is answered (the
 *    persister is not on the send path), every acknowledged message reaches its reader once and
 *    is stored exactly once, and the restarted persister re-read rows that were already stored:
 *    its chat_persister_duplicates_total is at least the rows stored before the kill (none of them
 *    was committed), with no id conflict counted (same Kafka positions: a replay). The time from
 *    the restart to /readyz 200 is measured and bounded.
 * 2. Partition roll-ahead behind a long reader: the furthest partition of the window is dropped
 *    while the persister is stopped, a transaction holding ACCESS SHARE on messages stays open,
 *    and the persister is started with a short partition lock_timeout: it becomes ready, stores
 *    new messages (today's partition exists) while its DDL fails and is retried (counted in
 *    chat_persister_partition_ddl_failures_total, partition still missing), and once the reader
 *    ends the partition is created.
 * 3. A stuck write: a transaction holds SHARE on messages (inserts wait for it); /readyz turns 503
 *    naming the stuck write once CHAT_READY_STUCK_WRITE_MS passed, and 200 again once the lock is
 *    gone and the batch is stored.
 * 4. An id conflict: a stored message's record is produced again (kcat), so a second record at
 *    another offset carries the same id: not stored twice, counted in
 *    chat_persister_id_conflicts_total and not in chat_persister_duplicates_total (a replay of
 *    the same record is the other way round, see 1).
 * 5. PostgreSQL hung under a write: the write cut off, stops bounded (test_hung_postgres).
 * 6. Two replicas share the partitions and hand them over, eager and cooperative-sticky. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "it_stream.h"
#include "it_util.h"

#define NSTREAMS 3

static bool pg_paused; /* resumed by the teardown if a failure left PostgreSQL hung */

/* Value of a persister metric (a plain "name value" line); -1 when absent or unreachable. */
static long long ps_metric(const char *name)
{
    return it_metric(it_env("CHAT_TEST_PERSISTER_URL"), name);
}

/* Restarts the persister (SIGTERM, then start: waits for /readyz) with env NAME=VALUE pairs set
 * for it (and unset again afterwards); names[i] NULL ends the list. */
static void restart_persister(const char *const *names, const char *const *values)
{
    assert_int_equal(it_fixture("stop", "persister"), 0);
    for (int i = 0; names && names[i]; i++)
        setenv(names[i], values[i], 1);
    assert_int_equal(it_fixture("start", "persister"), 0);
    for (int i = 0; names && names[i]; i++)
        unsetenv(names[i]);
}

static void send_round(struct it_stream *st, int per_stream)
{
    for (int k = 0; k < per_stream; k++)
        for (int i = 0; i < NSTREAMS; i++)
            it_stream_send(&st[i]);
}

static int acked(const struct it_stream *st)
{
    return it_stream_count(st, IT_ACKED);
}

static void test_persister_sigkill_replay(void **state)
{
    static const char *const names[] = {"CHAT_COMMIT_INTERVAL_MS", NULL};
    static const char *const values[] = {"3600000"};
    struct it_stream st[NSTREAMS];
    long long stored_before = 0, dups, conflicts;
    int64_t t0, ready_ms;
    int session_ms;

    (void)state;
    restart_persister(names, values); /* commits held back: everything stored stays uncommitted */
    it_stream_open(&st[0], "psk1", it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW2_URL"));
    it_stream_open(&st[1], "psk2", it_env("CHAT_TEST_GW2_URL"), it_env("CHAT_TEST_GW1_URL"));
    it_stream_open(&st[2], "psk3", it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW1_URL"));

    /* a first part of the stream, stored (and, by the held commits, not committed) */
    send_round(st, 15);
    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_answer_all(&st[i], it_timeout(15000));
        assert_int_equal(acked(&st[i]), st[i].n);
        it_stream_check_stored(&st[i], acked(&st[i]), it_timeout(15000));
        stored_before += acked(&st[i]);
    }
    assert_int_equal(ps_metric("chat_persister_duplicates_total"), 0);

    /* SIGKILL in the middle of the stream: sends in flight, a batch being built or written */
    send_round(st, 5);
    assert_int_equal(it_fixture("kill", "persister"), 0);
    send_round(st, 5); /* the stream goes on while no persister runs */
    t0 = it_now_ms();
    assert_int_equal(it_fixture("start", "persister"), 0); /* default settings again */
    ready_ms = it_now_ms() - t0;
    send_round(st, 5);

    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_answer_all(&st[i], it_timeout(15000));
        assert_int_equal(acked(&st[i]), st[i].n); /* every send answered, and acknowledged */
        assert_int_equal(it_stream_deliver_all(&st[i], it_timeout(15000)), st[i].n);
        it_stream_check_stored(&st[i], st[i].n, it_timeout(20000)); /* exactly once */
    }
    /* the replay: the restarted member re-read rows stored before the kill (their offsets were
     * never committed) and skipped them as already stored, from the same Kafka positions */
    dups = ps_metric("chat_persister_duplicates_total");
    conflicts = ps_metric("chat_persister_id_conflicts_total");
    print_message("persister ready %lld ms after restart following SIGKILL; %lld rows re-read "
                  "and skipped (%lld stored before the kill)\n",
                  (long long)ready_ms, dups, stored_before);
    if (dups < stored_before)
        fail_msg("restarted persister skipped %lld rows, expected >= %lld re-read", dups,
                 stored_before);
    assert_int_equal(conflicts, 0);
    /* documented: ready within the Kafka session timeout (the dead member's assignment is
     * given back then) plus a few seconds */
    session_ms = (int)strtol(it_env("CHAT_KAFKA_SESSION_TIMEOUT_MS"), NULL, 10);
    if (ready_ms > it_timeout(session_ms + 10000))
        fail_msg("persister ready only %lld ms after its restart", (long long)ready_ms);
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_close(&st[i]);
}

static bool pg_bool(PGconn *pg, const char *sql, const char *arg)
{
    const char *params[1] = {arg};
    PGresult *r = PQexecParams(pg, sql, arg ? 1 : 0, NULL, arg ? params : NULL, NULL, NULL, 0);
    bool v;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("query failed: %s", PQerrorMessage(pg));
    v = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return v;
}

static void pg_ok(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType s = PQresultStatus(r);

    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
}

static void test_partition_roll_ahead_behind_reader(void **state)
{
    static const char *const names[] = {"CHAT_PARTITION_LOCK_TIMEOUT_MS", "CHAT_PARTITION_RETRY_MS",
                                        NULL};
    static const char *const values[] = {"300", "500"};
    const char *exists = "SELECT to_regclass($1) IS NOT NULL";
    PGconn *pg = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));
    PGconn *reader = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));
    char name[64], drop[128], *quoted;
    struct it_stream st;
    PGresult *r;
    int64_t t0;

    (void)state;
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    assert_int_equal(PQstatus(reader), CONNECTION_OK);
    /* the last day of the persister's window (default CHAT_PARTITION_AHEAD_DAYS=7) */
    r = PQexec(pg, "SELECT 'messages_' || to_char((now() AT TIME ZONE 'UTC')::date + 7, "
                   "'YYYYMMDD')");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    snprintf(name, sizeof(name), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    assert_true(pg_bool(pg, exists, name)); /* rolled ahead at the cluster's start */

    assert_int_equal(it_fixture("stop", "persister"), 0);
    quoted = PQescapeIdentifier(pg, name, strlen(name));
    snprintf(drop, sizeof(drop), "DROP TABLE %s", quoted);
    PQfreemem(quoted);
    pg_ok(pg, drop);
    /* a long reader: ACCESS SHARE on messages (and its partitions) until COMMIT */
    pg_ok(reader, "BEGIN");
    pg_ok(reader, "SELECT count(*) FROM (SELECT 1 FROM messages LIMIT 1) AS x");

    /* starts and gets ready although its roll-ahead DDL cannot get its lock */
    restart_persister(names, values);
    it_stream_open(&st, "psroll", it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW2_URL"));
    t0 = it_now_ms();
    it_stream_send_acked(&st, 20);
    it_stream_check_stored(&st, 20, it_timeout(10000)); /* stored behind the failing DDL */
    print_message("20 messages stored in %lld ms while the partition DDL was failing\n",
                  (long long)(it_now_ms() - t0));
    assert_false(pg_bool(pg, exists, name)); /* the reader still blocks the DDL */
    t0 = it_now_ms();
    while (ps_metric("chat_persister_partition_ddl_failures_total") < 1) {
        if (it_now_ms() - t0 > it_timeout(10000))
            fail_msg("no failed partition DDL counted while the reader held its lock");
        usleep(100 * 1000); /* polling a metric for a condition */
    }

    /* the reader ends: the next retry creates the partition */
    pg_ok(reader, "COMMIT");
    t0 = it_now_ms();
    while (!pg_bool(pg, exists, name)) {
        if (it_now_ms() - t0 > it_timeout(10000))
            fail_msg("%s not created within 10 s of the reader's end", name);
        usleep(100 * 1000); /* polling the catalog for a condition */
    }
    print_message("%s created %lld ms after the reader ended\n", name,
                  (long long)(it_now_ms() - t0));
    it_stream_send_acked(&st, 5);
    it_stream_check_stored(&st, 25, it_timeout(10000));
    it_stream_close(&st);
    PQfinish(reader);
    PQfinish(pg);
    restart_persister(NULL, NULL); /* default settings for the tests after this one */
}

/* Waits until /readyz answers want (and, when given, its body holds text). */
static void wait_readyz(int want, const char *text)
{
    int64_t t0 = it_now_ms();

    for (;;) {
        char *body = NULL;
        int st = it_http_get(it_env("CHAT_TEST_PERSISTER_URL"), "/readyz", &body);
        bool ok = st == want && (!text || (body && strstr(body, text)));

        if (ok)
            print_message("/readyz %d: %s", st, body ? body : "");
        free(body);
        if (ok)
            return;
        if (it_now_ms() - t0 > it_timeout(15000))
            fail_msg("/readyz did not answer %d (%s) within 15 s", want, text ? text : "");
        usleep(100 * 1000); /* polling an endpoint for a condition */
    }
}

static void test_readyz_reports_stuck_write(void **state)
{
    static const char *const names[] = {"CHAT_READY_STUCK_WRITE_MS", NULL};
    static const char *const values[] = {"500"};
    PGconn *locker = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));
    struct it_stream st;

    (void)state;
    assert_int_equal(PQstatus(locker), CONNECTION_OK);
    restart_persister(names, values);
    it_stream_open(&st, "psstuck", it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW2_URL"));
    it_stream_send_acked(&st, 2);
    it_stream_check_stored(&st, 2, it_timeout(10000));
    wait_readyz(200, NULL);
    pg_ok(locker, "BEGIN");
    pg_ok(locker, "LOCK TABLE messages IN SHARE MODE"); /* inserts wait for this */
    it_stream_send_acked(&st, 3);
    wait_readyz(503, "write_stuck_ms=");
    pg_ok(locker, "COMMIT");
    wait_readyz(200, NULL);
    it_stream_check_stored(&st, 5, it_timeout(10000));
    it_stream_close(&st);
    PQfinish(locker);
    restart_persister(NULL, NULL);
}

static void test_id_conflict_counted(void **state)
{
    PGconn *pg = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));
    const char *params[1];
    long long before, dups;
    struct it_stream st;
    PGresult *r;
    int64_t t0;
    int part, off;

    (void)state;
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    it_stream_open(&st, "psconf", it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW2_URL"));
    it_stream_send_acked(&st, 1);
    it_stream_check_stored(&st, 1, it_timeout(10000));
    before = ps_metric("chat_persister_id_conflicts_total");
    dups = ps_metric("chat_persister_duplicates_total");
    assert_true(before >= 0 && dups >= 0);
    params[0] = st.room;
    r = PQexecParams(pg, "SELECT kafka_partition, kafka_offset FROM messages WHERE room = $1", 1,
                     NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    part = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    off = (int)strtol(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    /* the same record (key and value) once more, at the next offset of its partition */
    assert_int_equal(it_sh("kcat -C -b '%s' -t chat.messages -p %d -o %d -c 1 -e -q "
                           "-f '%%k|%%s\\n' | kcat -P -b '%s' -t chat.messages -p %d -K '|'",
                           it_env("CHAT_KAFKA_BROKERS"), part, off, it_env("CHAT_KAFKA_BROKERS"),
                           part),
                     0);
    t0 = it_now_ms();
    while (ps_metric("chat_persister_id_conflicts_total") < before + 1) {
        if (it_now_ms() - t0 > it_timeout(10000))
            fail_msg("no id conflict counted for the re-produced record");
        usleep(100 * 1000); /* polling a metric for a condition */
    }
    it_stream_check_stored(&st, 1, it_timeout(10000)); /* still stored once */
    /* a conflict is not a replay: counted once, in its own counter only */
    assert_int_equal(ps_metric("chat_persister_id_conflicts_total"), before + 1);
    assert_int_equal(ps_metric("chat_persister_duplicates_total"), dups);
    it_stream_close(&st);
    PQfinish(pg);
}

/* A second persister of the group (as k8s runs two), with CHAT_KAFKA_EXTRA extra (NULL: none),
 * its /metrics on port; its pid once it is ready (it holds partitions). */
static pid_t spawn_replica(int port, const char *extra)
{
    char cmd[2048], log[512];
    pid_t pid;

    /* the cluster's environment (cluster.env, as cluster.sh starts its services), then ours */
    snprintf(log, sizeof(log), "%s/logs/persister-2.log", it_env("CHAT_TEST_DIR"));
    snprintf(cmd, sizeof(cmd),
             "set -a; . '%s/cluster.env'; set +a; exec env CHAT_PG_DSN='%s' "
             "CHAT_REDIS_HOST=127.0.0.1 CHAT_REDIS_PORT=%s CHAT_METRICS_ADDR=127.0.0.1 "
             "CHAT_METRICS_PORT=%d CHAT_KAFKA_EXTRA='%s' '%s/chat-persister'",
             it_env("CHAT_TEST_DIR"), it_env("CHAT_TEST_PG_DSN"), it_env("CHAT_TEST_REDIS_PORT"),
             port, extra ? extra : "", it_env("CHAT_TEST_BIN"));
    pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Partitions assigned to the persister whose metrics are at url (-1: unreachable). */
static long long assigned_at(const char *url)
{
    return it_metric(url, "chat_persister_assigned_partitions");
}

/* Waits until the persisters at urls[0..n) hold want partitions in all, each at least one
 * (min_each 1) or any number (0). */
static void wait_assigned(const char *const *urls, int n, long long want, int min_each)
{
    int64_t t0 = it_now_ms();

    for (;;) {
        long long sum = 0, least = 1 << 30;
        for (int i = 0; i < n; i++) {
            long long a = assigned_at(urls[i]);
            sum += a;
            least = a < least ? a : least;
        }
        if (sum == want && least >= min_each)
            return;
        if (it_now_ms() - t0 > it_timeout(30000))
            fail_msg("partitions not shared as expected: %lld assigned in all, the least %lld", sum,
                     least);
        usleep(100 * 1000); /* polling metrics for a condition */
    }
}

/* Two replicas under a stream: a second joins (the twelve partitions are shared, each holds
 * some), then stops with SIGTERM (the first holds all twelve again). Every acknowledged message
 * is stored exactly once. extra: both replicas' CHAT_KAFKA_EXTRA (the assignment protocol). */
static void two_replicas(const char *tag, const char *extra)
{
    static const char *const names[] = {"CHAT_KAFKA_EXTRA", NULL};
    const char *values[] = {extra};
    struct it_stream st[NSTREAMS];
    char url2[64], tags[NSTREAMS][16];
    const char *urls[2] = {it_env("CHAT_TEST_PERSISTER_URL"), url2};
    int port = it_free_ports(1);
    pid_t pid;
    int status;

    if (extra)
        restart_persister(names, values);
    for (int i = 0; i < NSTREAMS; i++) {
        snprintf(tags[i], sizeof(tags[i]), "%s%d", tag, i);
        it_stream_open(&st[i], tags[i], it_env(i % 2 ? "CHAT_TEST_GW2_URL" : "CHAT_TEST_GW1_URL"),
                       it_env("CHAT_TEST_GW1_URL"));
        it_stream_send_acked(&st[i], 5);
    }
    snprintf(url2, sizeof(url2), "http://127.0.0.1:%d", port);
    pid = spawn_replica(port, extra);
    for (int round = 0; assigned_at(url2) <= 0; round++) { /* joins while the stream goes on */
        if (round > it_timeout(300))
            fail_msg("the second persister got no partition");
        for (int i = 0; i < NSTREAMS; i++)
            it_stream_send_acked(&st[i], 1);
    }
    wait_assigned(urls, 2, 12, 1);
    for (int i = 0; i < NSTREAMS; i++)
        it_stream_send_acked(&st[i], 10);
    kill(pid, SIGTERM);
    for (int i = 0; i < NSTREAMS; i++) /* and goes on while it leaves */
        it_stream_send_acked(&st[i], 5);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    wait_assigned(urls, 1, 12, 0);
    for (int i = 0; i < NSTREAMS; i++) {
        it_stream_send_acked(&st[i], 5);
        it_stream_check_stored(&st[i], st[i].n, it_timeout(20000)); /* each once */
        it_stream_close(&st[i]);
    }
    if (extra)
        restart_persister(NULL, NULL);
}

/* 6. Two replicas, as k8s runs them: with the eager protocol (the default) and with
 *    cooperative-sticky. */
static void test_two_replicas_share_and_hand_over(void **state)
{
    (void)state;
    two_replicas("psr", NULL);
    two_replicas("psc", "partition.assignment.strategy=cooperative-sticky");
}

/* Lines of the persister's log holding text. */
static int log_count(const char *text)
{
    char line[32];

    it_sh_line(line, sizeof(line), "grep -c -- '%s' '%s/logs/persister.log' || true", text,
               it_env("CHAT_TEST_DIR"));
    return atoi(line);
}

/* Stops the persister (cluster.sh stop: SIGTERM, and SIGKILL after CHAT_CLUSTER_STOP_TIMEOUT);
 * fails unless it exited by itself, with status 0, within max_ms, and logged its unwritten rows
 * (PostgreSQL hung: nothing could be written). Returns the time it took. */
static long long stop_hung(int max_ms)
{
    int exits = log_count("exiting with status 0"), unwritten = log_count("unwritten rows");
    int64_t t0 = it_now_ms();
    long long took;

    assert_int_equal(it_fixture("stop", "persister"), 0);
    took = it_now_ms() - t0;
    if (log_count("exiting with status 0") != exits + 1 || took > max_ms)
        fail_msg("the persister did not exit by itself within %d ms (took %lld ms)", max_ms, took);
    assert_true(log_count("unwritten rows") > unwritten);
    return took;
}

/* 5. PostgreSQL hung (SIGSTOP: its kernel still acknowledges, so no TCP timeout ends a wait)
 *    with a batch write in flight. With CHAT_PG_HANG_TIMEOUT_MS short, the write is cut off and
 *    counted while the server stays hung, and a stop with two signals (a SIGTERM, then
 *    cluster.sh stop's) exits without waiting for the drain. With the defaults, one SIGTERM
 *    gives up on the hung write PS_DRAIN_MS (10 s) after it. Both leave their rows uncommitted:
 *    once the server is back, every acknowledged message is stored exactly once. */
static void test_hung_postgres(void **state)
{
    static const char *const names[] = {"CHAT_PG_HANG_TIMEOUT_MS", "CHAT_READY_STUCK_WRITE_MS",
                                        NULL};
    static const char *const values[] = {"2000", "300"};
    static const char *const stuck[] = {"CHAT_READY_STUCK_WRITE_MS", NULL};
    static const char *const stuck_v[] = {"300"};
    char pid[32];
    struct it_stream st;
    long long cut0, took;
    int64_t t0;

    (void)state;
    restart_persister(names, values);
    it_stream_open(&st, "pshung", it_env("CHAT_TEST_GW1_URL"), it_env("CHAT_TEST_GW2_URL"));
    it_stream_send_acked(&st, 2);
    it_stream_check_stored(&st, 2, it_timeout(10000));
    cut0 = ps_metric("chat_persister_pg_cut_total");
    assert_true(cut0 >= 0);

    assert_int_equal(it_fixture("pause", "postgres"), 0);
    pg_paused = true;
    it_stream_send_acked(&st, 3); /* Kafka is the path: acknowledged while the database hangs */
    wait_readyz(503, "write_stuck_ms=");
    t0 = it_now_ms();
    while (ps_metric("chat_persister_pg_cut_total") < cut0 + 1) {
        if (it_now_ms() - t0 > it_timeout(30000))
            fail_msg("the hung write was not cut off (CHAT_PG_HANG_TIMEOUT_MS=2000)");
        usleep(100 * 1000); /* polling a metric for a condition */
    }
    it_sh_line(pid, sizeof(pid), "cat '%s/pids/persister.pid'", it_env("CHAT_TEST_DIR"));
    assert_int_equal(it_sh("kill -TERM %s", pid), 0);
    took = stop_hung(it_timeout(9000)); /* its second signal: no 10 s drain (a connect: 5 s) */
    print_message("two signals, PostgreSQL hung: exited after %lld ms\n", took);

    assert_int_equal(it_fixture("resume", "postgres"), 0);
    pg_paused = false;
    for (int i = 0; stuck[i]; i++)
        setenv(stuck[i], stuck_v[i], 1);
    assert_int_equal(it_fixture("start", "persister"), 0); /* default CHAT_PG_HANG_TIMEOUT_MS */
    unsetenv(stuck[0]);
    it_stream_check_stored(&st, 5, it_timeout(15000));
    assert_int_equal(it_fixture("pause", "postgres"), 0);
    pg_paused = true;
    it_stream_send_acked(&st, 3);
    wait_readyz(503, "write_stuck_ms=");
    took = stop_hung(10000 + it_timeout(5000)); /* the drain's 10 s, then out */
    print_message("one signal, PostgreSQL hung: exited after %lld ms\n", took);

    assert_int_equal(it_fixture("resume", "postgres"), 0);
    pg_paused = false;
    assert_int_equal(it_fixture("start", "persister"), 0);
    it_stream_check_stored(&st, 8, it_timeout(15000)); /* each once */
    it_stream_close(&st);
}

/* A failed test leaves PostgreSQL running again for the tests after it. */
static int teardown(void **state)
{
    (void)state;
    if (pg_paused) {
        (void)it_fixture("resume", "postgres");
        pg_paused = false;
    }
    (void)it_fixture("start", "persister"); /* a no-op when it runs */
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_persister_sigkill_replay),
        cmocka_unit_test(test_partition_roll_ahead_behind_reader),
        cmocka_unit_test(test_readyz_reports_stuck_write),
        cmocka_unit_test(test_id_conflict_counted),
        cmocka_unit_test_teardown(test_hung_postgres, teardown),
        cmocka_unit_test(test_two_replicas_share_and_hand_over),
    };

    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
