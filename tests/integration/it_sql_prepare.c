/* it_sql_prepare.c - chat-api prepares its named queries (db/queries) at connect: a statement
 * the schema refuses fails readiness (/readyz 503 naming the query, logged once), not a user's
 * request, and fixing the schema heals the running process.
 *
 * Against the cluster's PostgreSQL: a scratch database with the migrations (chatctl migrate),
 * a column renamed away, and a chat-api process of this test's own (its own port and log; the
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
};

static int psql(const char *db, const char *sql)
{
    return it_sh("psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p %s -U postgres -d %s -c \"%s\" "
                 ">/dev/null",
                 it_env("CHAT_TEST_PG_PORT"), db, sql);
}

/* Starts chat-api on the scratch database (CHAT_API_PORT=0: any free port, read from its log). */
static void api_start(struct fixture *f)
{
    char cmd[2048], line[128];
    long long deadline;

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
                   "sed -n 's/.*listening on 127\\.0\\.0\\.1:\\([0-9]*\\) .*/\\1/p' '%s' | head -1",
                   f->log);
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
    for (size_t i = 0; i < sizeof(nick_queries) / sizeof(nick_queries[0]); i++) {
        snprintf(want, sizeof(want), "queries=bad failing=%s\n", nick_queries[i]);
        if (strstr(body, want))
            named = nick_queries[i];
    }
    if (!named)
        fail_msg("/readyz names no query reading users.nickname: %s", body);
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
    deadline = it_mono_ms() + it_timeout(10000);
    while ((st = readyz(f, &body)) != 200) {
        if (it_mono_ms() > deadline)
            fail_msg("/readyz %d 10 s after the schema was fixed: %s", st, body ? body : "");
        free(body);
        body = NULL;
        it_sleep_ms(50);
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sql_prepare_bad_schema_fails_readiness_then_heals),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, setup, teardown);
}
