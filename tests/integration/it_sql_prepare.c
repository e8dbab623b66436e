/* it_sql_prepare.c - chat-api prepares its named queries (db/queries) at connect: a statement
 * the schema refuses fails readiness (/readyz 503 naming the query, logged once), not a user's
 * request, and fixing the schema heals the running process:
 *
 * - broken at start-up: not ready, then ready once fixed;
 * - broken while it runs (a migration during a rolling deploy): a request thread's new
 *   connection finds it while the outbox relay's connection stays up; once fixed, /readyz turns
 *   200 again with no request at all (a pod out of the Service gets none), within a bound;
 * - a prepare that fails for another reason (here a lock timeout: 55P03) is an outage of that
 *   connect, not a schema mismatch: the request answers 503 and /readyz stays 200.
 *
 * Against the cluster's PostgreSQL: a scratch database with the migrations (chatctl migrate),
 * a column renamed away, and a chat-api process of each test's own (its own port, one log; the
 * cluster's Redis and Kafka). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "it_acct.h"
#include "it_util.h"

/* the queries reading users.nickname: one of them is named while it is renamed away */
static const char *const nick_queries[] = {"user_by_id", "user_register", "login_lookup",
                                           "nickname_set"};

struct fixture {
    char db[64];   /* the scratch database; "" once dropped */
    char dsn[256]; /* its DSN */
    char log[512]; /* chat-api's log */
    char base[64]; /* http://127.0.0.1:PORT */
    pid_t pid;     /* chat-api; 0: not running */
    PGconn *lock;  /* a transaction of the test holding a lock; NULL: none */
};

static int psql(const char *db, const char *sql)
{
    return it_sh("psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p %s -U postgres -d %s -c \"%s\" "
                 ">/dev/null",
                 it_env("CHAT_TEST_PG_PORT"), db, sql);
}

/* The first line psql prints for sql on db ("" when none). */
static void psql_value(const char *db, const char *sql, char *out, size_t cap)
{
    it_sh_line(out, cap, "psql -qtA -h 127.0.0.1 -p %s -U postgres -d %s -c \"%s\"",
               it_env("CHAT_TEST_PG_PORT"), db, sql);
}

/* Starts chat-api on the scratch database (CHAT_API_PORT=0: any free port, read from the lines
 * it adds to the log: each test's process appends to the same one). */
static void api_start(struct fixture *f)
{
    char cmd[2048], line[128], before[32];
    long long deadline;

    it_sh_line(before, sizeof(before), "cat '%s' 2>/dev/null | wc -l", f->log);
    snprintf(cmd, sizeof(cmd),
             "set -a; . '%s'; set +a; exec env CHAT_API_ADDR=127.0.0.1 CHAT_API_PORT=0 "
             "CHAT_NODE_NAME=sqlprep CHAT_REDIS_HOST=127.0.0.1 CHAT_REDIS_PORT='%s' "
             "CHAT_PG_DSN='%s' CHAT_OUTBOX_POLL_MS=200 '%s/chat-api' >>'%s' 2>&1",
             getenv("CHAT_TEST_ENV"), it_env("CHAT_TEST_REDIS_PORT"), f->dsn,
             it_env("CHAT_TEST_BIN"), f->log);
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    deadline = it_mono_ms() + it_timeout(15000);
    for (;;) { /* polling its log for the port it bound */
        it_sh_line(line, sizeof(line),
                   "tail -n +%ld '%s' | sed -n 's/.*listening on 127\\.0\\.0\\.1:\\([0-9]*\\) "
                   ".*/\\1/p' | head -1",
                   strtol(before, NULL, 10) + 1, f->log);
        if (line[0])
            break;
        if (waitpid(f->pid, NULL, WNOHANG) == f->pid) {
            f->pid = 0;
            fail_msg("chat-api exited at start-up (see %s)", f->log);
        }
        if (it_mono_ms() > deadline)
            fail_msg("chat-api did not listen within 15 s (see %s)", f->log);
        it_sleep_ms(50);
    }
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%s", line);
}

/* SIGTERM and wait for the exit (bounded; SIGKILL past it). */
static void api_stop(struct fixture *f)
{
    long long deadline = it_mono_ms() + it_timeout(15000);
    int status = 0;

    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    while (waitpid(f->pid, &status, WNOHANG) != f->pid) {
        if (it_mono_ms() > deadline) {
            kill(f->pid, SIGKILL);
            (void)waitpid(f->pid, &status, 0);
            f->pid = 0;
            fail_msg("chat-api did not exit within 15 s of SIGTERM");
        }
        it_sleep_ms(20);
    }
    f->pid = 0;
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int setup(void **state)
{
    static struct fixture f;
    char out[256], sql[128];

    memset(&f, 0, sizeof(f));
    snprintf(f.db, sizeof(f.db), "sqlprep_%d", (int)getpid());
    snprintf(f.dsn, sizeof(f.dsn), "postgresql://postgres@127.0.0.1:%s/%s",
             it_env("CHAT_TEST_PG_PORT"), f.db);
    snprintf(f.log, sizeof(f.log), "%s/logs/%s.log", it_env("CHAT_TEST_DIR"), f.db);
    (void)remove(f.log);
    *state = &f;
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f.db);
    if (psql("chat", sql) != 0)
        return -1;
    it_sh_line(out, sizeof(out), "'%s/chatctl' migrate --pg-dsn '%s' 2>&1", it_env("CHAT_TEST_BIN"),
               f.dsn);
    if (!strstr(out, " migration(s) applied") || strncmp(out, "0 ", 2) == 0) {
        fprintf(stderr, "chatctl migrate on %s: %s\n", f.db, out);
        snprintf(sql, sizeof(sql), "DROP DATABASE %s", f.db);
        (void)psql("chat", sql);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char sql[128];

    if (!f)
        return 0;
    if (f->pid > 0) { /* a failed test: stop it anyway */
        kill(f->pid, SIGKILL);
        (void)waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
    return psql("chat", sql) == 0 ? 0 : -1;
}

/* /readyz: status, and body in *body (free()). */
static int readyz(const struct fixture *f, char **body)
{
    return it_http_get(f->base, "/readyz", body);
}

static int count_lines(const char *pattern, const char *file)
{
    char out[32];
    it_sh_line(out, sizeof(out), "grep -c -- '%s' '%s'", pattern, file);
    return atoi(out);
}

/* After each test: what a failed one left (its chat-api, its lock, the database setting). */
static int test_teardown(void **state)
{
    struct fixture *f = *state;
    char sql[128];

    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        (void)waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
    PQfinish(f->lock); /* NULL: nothing */
    f->lock = NULL;
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s RESET lock_timeout", f->db);
    return psql(f->db, sql) == 0 ? 0 : -1;
}

/* Waits until /readyz is 200 (within ms), else fails naming what; returns its body (free()). */
static char *wait_ready(const struct fixture *f, int ms, const char *what)
{
    long long deadline = it_mono_ms() + it_timeout(ms);
    char *body = NULL;
    int st;

    while ((st = readyz(f, &body)) != 200) {
        if (it_mono_ms() > deadline)
            fail_msg("/readyz %d %d ms %s: %s", st, it_timeout(ms), what, body ? body : "");
        free(body);
        body = NULL;
        it_sleep_ms(50);
    }
    return body;
}

/* Ends the backends of chat-api's request threads (application_name chat-api; the outbox
 * relay's and the retention thread's stay) and waits until they are gone, so that each thread's
 * next request connects again. */
static void end_request_connections(const struct fixture *f)
{
    long long deadline = it_mono_ms() + it_timeout(10000);
    char out[32];

    psql_value(f->db,
               "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
               "current_database() AND application_name = 'chat-api'",
               out, sizeof(out));
    for (;;) {
        psql_value(f->db,
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                   "application_name = 'chat-api'",
                   out, sizeof(out));
        if (strcmp(out, "0") == 0)
            return;
        if (it_mono_ms() > deadline)
            fail_msg("chat-api's request connections still there 10 s after their end (%s)", out);
        it_sleep_ms(20);
    }
}

/* The backend pid of the outbox relay's connection ("" when it has none). */
static void relay_backend(const struct fixture *f, char *out, size_t cap)
{
    psql_value(f->db,
               "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
               "application_name = 'chat-api-outbox'",
               out, cap);
}

/* The nick query /readyz names (it fails unless it names one of them). */
static const char *named_nick_query(const char *body)
{
    char want[96];

    for (size_t i = 0; i < sizeof(nick_queries) / sizeof(nick_queries[0]); i++) {
        snprintf(want, sizeof(want), "queries=bad failing=%s\n", nick_queries[i]);
        if (strstr(body, want))
            return nick_queries[i];
    }
    fail_msg("/readyz names no query reading users.nickname: %s", body);
    return NULL;
}

static void test_sql_prepare_bad_schema_fails_readiness_then_heals(void **state)
{
    struct fixture *f = *state;
    struct it_client cl;
    char user[32], *body = NULL, want[96];
    const char *named = NULL;
    long long deadline, until;
    json_t *s;
    int st;

    assert_int_equal(psql(f->db, "ALTER TABLE users RENAME COLUMN nickname TO nick"), 0);
    api_start(f);

    /* not ready, and once the first connection tried its queries, it names one */
    deadline = it_mono_ms() + it_timeout(15000);
    for (;;) {
        st = readyz(f, &body);
        if (st != 503)
            fail_msg("/readyz %d with a broken schema: %s", st, body ? body : "");
        if (strstr(body, "queries=bad failing="))
            break;
        free(body);
        body = NULL;
        if (it_mono_ms() > deadline)
            fail_msg("/readyz never named a failing query within 15 s");
        it_sleep_ms(50);
    }
    named = named_nick_query(body);
    free(body);

    /* a user's request is answered 503 (not a 500 from a half-run handler) */
    it_client_new(&cl, "198.51.100");
    it_name_new(user, sizeof(user), "sqlp");
    (void)it_api_err(503, "unavailable", f->base, "POST", "/api/v1/auth/login", NULL, &cl,
                     it_creds(user, PW));

    /* still not ready after several retries of the relay (CHAT_OUTBOX_POLL_MS=200): 2 s */
    until = it_mono_ms() + 2000;
    while (it_mono_ms() < until) {
        st = readyz(f, &body);
        if (st != 503 || !strstr(body, "queries=bad"))
            fail_msg("/readyz %d while the schema is still broken: %s", st, body ? body : "");
        free(body);
        it_sleep_ms(100);
    }
    /* logged once, with SQLSTATE 42703 (undefined column), despite the retries */
    snprintf(want, sizeof(want), "query %s (db/queries/accounts.sql) does not match", named);
    assert_int_equal(count_lines(want, f->log), 1);
    assert_int_equal(count_lines("does not match the schema: 42703 ", f->log), 1);

    /* fixed: ready again within a bound, without a restart */
    assert_int_equal(psql(f->db, "ALTER TABLE users RENAME COLUMN nick TO nickname"), 0);
    body = wait_ready(f, 10000, "after the schema was fixed");
    assert_non_null(strstr(body, "queries=good\n"));
    free(body);

    /* and the accounts work: register, log in, read the user */
    s = it_register(f->base, &cl, user, PW, NULL);
    json_decref(s);
    s = it_login(f->base, &cl, user, PW);
    json_decref(it_me(f->base, &cl, it_access(s)));
    json_decref(s);
    api_stop(f);
}

/* Broken while chat-api runs and is ready: the outbox relay's connection stays up (it prepared
 * its queries long before), a request thread's new connection finds the column gone (/readyz 503
 * naming the query). Fixed: /readyz turns 200 again with no request at all (only /readyz, which
 * touches no database), within a few CHAT_OUTBOX_POLL_MS (200 here). */
static void test_sql_prepare_broken_at_runtime_heals_without_requests(void **state)
{
    struct fixture *f = *state;
    struct it_client cl;
    char user[32], relay[32], relay_after[32], *body = NULL;
    const char *named;
    long long t_fixed;
    int bad, healed, st;

    api_start(f);
    free(wait_ready(f, 15000, "after start-up"));
    /* the request threads have their connections, the relay its own */
    it_client_new(&cl, "198.51.100");
    it_name_new(user, sizeof(user), "sqlr");
    json_decref(it_register(f->base, &cl, user, PW, NULL));
    relay_backend(f, relay, sizeof(relay));
    if (!relay[0])
        fail_msg("the outbox relay has no connection to %s", f->db);
    bad = count_lines("does not match the schema: 42703 ", f->log);
    healed = count_lines("matches the schema again", f->log);

    /* a migration renames the column; the request threads' connections end (a restart of
     * pgbouncer, a failover: any reason), so the next request connects again */
    assert_int_equal(psql(f->db, "ALTER TABLE users RENAME COLUMN nickname TO nick"), 0);
    end_request_connections(f);
    (void)it_api_err(503, "unavailable", f->base, "POST", "/api/v1/auth/login", NULL, &cl,
                     it_creds(user, PW));
    st = readyz(f, &body);
    if (st != 503)
        fail_msg("/readyz %d after a connect found the schema broken: %s", st, body ? body : "");
    named = named_nick_query(body);
    free(body);
    assert_int_equal(count_lines("does not match the schema: 42703 ", f->log), bad + 1);
    /* the relay's connection is the one from before: its own connect will not heal it */
    relay_backend(f, relay_after, sizeof(relay_after));
    assert_string_equal(relay_after, relay);

    /* fixed: ready again by itself, no request sent (k8s sends none to an unready pod) */
    assert_int_equal(psql(f->db, "ALTER TABLE users RENAME COLUMN nick TO nickname"), 0);
    t_fixed = it_mono_ms();
    body = wait_ready(f, 5000, "after the schema was fixed at runtime (no requests)");
    assert_non_null(strstr(body, "queries=good\n"));
    free(body);
    assert_true(count_lines("matches the schema again", f->log) > healed);
    print_message("broken at runtime: /readyz named %s; 200 again %lld ms after the fix, with no "
                  "request\n",
                  named, it_mono_ms() - t_fixed);
    /* and the accounts work */
    json_decref(it_login(f->base, &cl, user, PW));
    api_stop(f);
}

/* A prepare that fails for a reason other than the schema (a lock timeout, 55P03: a long
 * migration holding its lock; as 57P01 or 57014 would) is an outage of that connect: the
 * request answers 503 `unavailable`, and the replica stays ready (queries=good). */
static void test_sql_prepare_lock_timeout_is_not_a_schema_error(void **state)
{
    struct fixture *f = *state;
    struct it_client cl;
    char user[32], sql[128], *body = NULL;
    long long deadline;
    PGresult *r;
    int bad, st;

    api_start(f);
    free(wait_ready(f, 15000, "after start-up"));
    it_client_new(&cl, "198.51.100");
    it_name_new(user, sizeof(user), "sqll");
    json_decref(it_register(f->base, &cl, user, PW, NULL));
    bad = count_lines("does not match the schema", f->log);

    /* new sessions wait 300 ms for a lock at most; the test holds users exclusively, so a new
     * connection's prepare of a query reading users fails with 55P03 */
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET lock_timeout = 300", f->db);
    assert_int_equal(psql(f->db, sql), 0);
    f->lock = PQconnectdb(f->dsn);
    assert_int_equal(PQstatus(f->lock), CONNECTION_OK);
    r = PQexec(f->lock, "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    end_request_connections(f);
    (void)it_api_err(503, "unavailable", f->base, "POST", "/api/v1/auth/login", NULL, &cl,
                     it_creds(user, PW));
    st = readyz(f, &body);
    if (st != 200 || !strstr(body, "queries=good\n"))
        fail_msg("/readyz %d after a prepare's lock timeout (the schema is fine): %s", st,
                 body ? body : "");
    free(body);
    assert_int_equal(count_lines("does not match the schema", f->log), bad);

    /* the lock gone: the next request connects and works */
    r = PQexec(f->lock, "ROLLBACK");
    PQclear(r);
    PQfinish(f->lock);
    f->lock = NULL;
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s RESET lock_timeout", f->db);
    assert_int_equal(psql(f->db, sql), 0);
    deadline = it_mono_ms() + it_timeout(10000);
    for (;;) {
        json_t *out = NULL;
        st = it_api(f->base, "POST", "/api/v1/auth/login", NULL, &cl, it_creds(user, PW), &out,
                    NULL);
        json_decref(out);
        if (st == 200)
            break;
        if (st != 503 || it_mono_ms() > deadline)
            fail_msg("login %d after the lock was released", st);
        it_sleep_ms(100);
    }
    free(wait_ready(f, 1000, "after the lock was released"));
    api_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sql_prepare_bad_schema_fails_readiness_then_heals,
                                  test_teardown),
        cmocka_unit_test_teardown(test_sql_prepare_broken_at_runtime_heals_without_requests,
                                  test_teardown),
        cmocka_unit_test_teardown(test_sql_prepare_lock_timeout_is_not_a_schema_error,
                                  test_teardown),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, setup, teardown);
}
