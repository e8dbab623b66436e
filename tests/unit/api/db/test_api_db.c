/* test_api_db.c - chat-api's PostgreSQL connection (api/src/db/api_db.c) against a stand-in
 * server (fake_pg.h) and a stand-in query table (api_queries_gen.h here: two queries):
 *
 * - which SQLSTATEs mean "the query does not match the schema" (api_db_schema_error);
 * - a prepare the schema refuses fails the connect and names the query (readiness), while any
 *   other error of a prepare (57P01 with the connection closed, 57014, 55P03) fails the connect
 *   as an outage and leaves readiness alone;
 * - a connect costs one CHAT_PG_TIMEOUT_MS in all, not one per step, whichever step the server
 *   is slow in (the stand-in delays one step, then stops answering the next);
 * - after a failed try nobody tries again for as long as it took (at most
 *   API_DB_RETRY_MAX_MS): the next request answers at once instead of waiting a deadline of its
 *   own, and a fast failure is tried again soon;
 * - api_db_queries_recheck on a live connection: the unnamed statement, no round trip while
 *   nothing is refused, the flag cleared once the queries prepare, kept on any error. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdint.h>
#include <string.h>

#include <poll.h>

#include "chat/time.h"

#include "db/api_db.h"
#include "fake_pg.h"

#define T_MS     1000 /* CHAT_PG_TIMEOUT_MS of these tests */
#define SLACK_MS 550  /* scheduling, sanitizers: below the 600 ms a second deadline adds */

const struct chat_db_query api_queries[API_Q__COUNT] = {
    [API_Q_first] = {"first", "one", API_QD_one, 0, "SELECT 1"},
    [API_Q_second] = {"second", "two", API_QD_two, 0, "SELECT 2"},
};

struct conn {
    struct fake_pg fake;
    char dsn[128];
    struct api_db_health h;
    struct api_db db;
};

static void conn_start(struct conn *c, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    fake_pg_start(&c->fake);
    fake_pg_dsn(&c->fake, c->dsn, sizeof(c->dsn));
    api_db_init(&c->db, c->dsn, "test", timeout_ms, &c->h);
    api_db_prepare_on_connect(&c->db, API_QD_ALL, &c->h, NULL, NULL);
}

/* Waits until the pause after the last failure has passed (a condition, not a sleep). */
static void past_pause(struct conn *c)
{
    while (chat_mono_ms() < atomic_load(&c->h.retry_at))
        (void)poll(NULL, 0, 1);
}

static void conn_stop(struct conn *c)
{
    api_db_close(&c->db);
    fake_pg_stop(&c->fake);
}

static void test_api_db_schema_error_classes(void **state)
{
    static const char *const schema[] = {"42601", "42P01", "42703", "42883",
                                         "42704", "42P18", "42804", "3F000"};
    static const char *const other[] = {"57P01", "57014", "55P03", "08006", "08000", "40001",
                                        "53300", "XX000", "23505", "42",    "",      "4270"};

    (void)state;
    for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
        assert_true(api_db_schema_error(schema[i]));
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_false(api_db_schema_error(other[i]));
    assert_false(api_db_schema_error(NULL)); /* no SQLSTATE: a connection lost, libpq's own */
}

/* 42703 on the second query: the connect fails and readiness names it. */
static void test_api_db_schema_error_names_the_query(void **state)
{
    static struct conn c;

    (void)state;
    conn_start(&c, T_MS);
    atomic_store(&c.fake.parse_error, "42703");
    atomic_store(&c.fake.error_at, 1);
    assert_false(api_db_ready(&c.db));
    assert_null(c.db.pg);
    assert_int_equal(atomic_load(&c.h.failing), 1 + API_Q_second);
    assert_false(api_db_queries_good(&c.h));
    conn_stop(&c);
}

/* Each transient error of a prepare fails the connect (an outage: down) and leaves readiness
 * alone; the next connect, with the server answering again, succeeds. */
static void test_api_db_transient_prepare_error_keeps_ready(void **state)
{
    static const struct {
        const char *code;
        bool fatal;
    } cases[] = {{"57P01", true}, {"57014", false}, {"55P03", false}, {"08006", true}};
    static struct conn c;

    (void)state;
    conn_start(&c, T_MS);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        atomic_store(&c.fake.parse_error, cases[i].code);
        atomic_store(&c.fake.fatal, cases[i].fatal);
        atomic_store(&c.fake.error_at, 0);
        past_pause(&c);
        assert_false(api_db_ready(&c.db));
        /* a fast failure: a short pause, not API_DB_RETRY_MAX_MS */
        assert_true(atomic_load(&c.h.retry_at) - chat_mono_ms() < API_DB_RETRY_MAX_MS / 2);
        assert_null(c.db.pg);
        assert_true(atomic_load(&c.h.down));
        assert_int_equal(atomic_load(&c.h.failing), 0);
        assert_true(api_db_queries_good(&c.h));
    }
    atomic_store(&c.fake.parse_error, NULL);
    past_pause(&c);
    assert_true(api_db_ready(&c.db));
    api_db_done(&c.db);
    assert_false(atomic_load(&c.h.down));
    assert_int_equal(atomic_load(&c.fake.conns), 5);
    conn_stop(&c);
}

/* How long a connect to a server slow in one step and silent in the next takes (ms). */
static int64_t failed_connect_ms(struct conn *c)
{
    int64_t t0 = chat_mono_ms();

    assert_false(api_db_ready(&c->db));
    return chat_mono_ms() - t0;
}

/* The startup answered after 0.6 T, then the SET never: T in all (one deadline per step would be
 * 1.6 T). The SET answered after 0.6 T, then the prepares never: T too. */
static void test_api_db_connect_is_one_deadline(void **state)
{
    static struct conn c;
    int64_t ms;

    (void)state;
    conn_start(&c, T_MS);
    atomic_store(&c.fake.startup_delay_ms, T_MS * 6 / 10);
    atomic_store(&c.fake.hang_queries, true);
    ms = failed_connect_ms(&c);
    print_message("slow startup, silent SET: %lld ms (deadline %d)\n", (long long)ms, T_MS);
    assert_true(ms >= T_MS - 50 && ms < T_MS + SLACK_MS);

    atomic_store(&c.fake.startup_delay_ms, 0);
    atomic_store(&c.fake.hang_queries, false);
    atomic_store(&c.fake.query_delay_ms, T_MS * 6 / 10);
    atomic_store(&c.fake.hang_parses, true);
    past_pause(&c);
    ms = failed_connect_ms(&c);
    print_message("slow SET, silent prepares: %lld ms (deadline %d)\n", (long long)ms, T_MS);
    assert_true(ms >= T_MS - 50 && ms < T_MS + SLACK_MS);
    assert_int_equal(atomic_load(&c.h.failing), 0); /* a timeout is no schema error */
    conn_stop(&c);
}

/* A try that met a silent server (one deadline) pauses the next ones: the same thread's next
 * request answers false at once without connecting, as does every one until the pause (the
 * try's duration, capped) has passed; then the next one tries, and the server answering again
 * ends the outage. Without the pause each request queued behind a try on its thread costs a
 * deadline of its own (it.postgres saw 3 in a row). */
static void test_api_db_failed_try_pauses_the_next(void **state)
{
    static struct conn c;
    int64_t t0, pause;

    (void)state;
    conn_start(&c, T_MS);
    atomic_store(&c.fake.hang_queries, true);
    assert_true(failed_connect_ms(&c) >= T_MS - 50);
    assert_true(atomic_load(&c.h.down));
    assert_false(atomic_load(&c.h.probing));
    pause = atomic_load(&c.h.retry_at) - chat_mono_ms();
    print_message("pause after a %d ms deadline: %lld ms left\n", T_MS, (long long)pause);
    assert_true(pause > API_DB_RETRY_MAX_MS / 2 && pause <= API_DB_RETRY_MAX_MS);
    t0 = chat_mono_ms();
    for (int i = 0; i < 3; i++)
        assert_false(api_db_ready(&c.db));
    assert_true(chat_mono_ms() - t0 < API_DB_RETRY_MAX_MS / 2);
    assert_int_equal(atomic_load(&c.fake.conns), 1);

    atomic_store(&c.fake.hang_queries, false);
    past_pause(&c);
    assert_true(api_db_ready(&c.db));
    api_db_done(&c.db);
    assert_false(atomic_load(&c.h.down));
    assert_int_equal(atomic_load(&c.fake.conns), 2);
    conn_stop(&c);
}

/* On a live connection: nothing refused, nothing sent; refused (another thread's connect found
 * it), each check prepares the unnamed statement: still refused or a transient error keeps the
 * flag and the connection, all good clears it. */
static void test_api_db_recheck_clears_when_the_schema_is_fixed(void **state)
{
    static struct conn c;
    int parses;

    (void)state;
    conn_start(&c, T_MS);
    assert_true(api_db_ready(&c.db));
    api_db_done(&c.db);
    parses = atomic_load(&c.fake.parses);
    assert_int_equal(parses, 2);
    assert_int_equal(atomic_load(&c.fake.unnamed), 0);
    assert_true(api_db_queries_recheck(&c.db)); /* nothing refused: no round trip */
    assert_int_equal(atomic_load(&c.fake.parses), parses);

    atomic_store(&c.h.failing, 1 + API_Q_first); /* as a request thread's connect would */
    atomic_store(&c.fake.parse_error, "42703");
    atomic_store(&c.fake.error_at, 0);
    assert_false(api_db_queries_recheck(&c.db));
    assert_non_null(c.db.pg);
    assert_int_equal(atomic_load(&c.h.failing), 1 + API_Q_first);
    atomic_store(&c.fake.parse_error, "57014");
    assert_false(api_db_queries_recheck(&c.db));
    assert_non_null(c.db.pg);
    assert_int_equal(atomic_load(&c.h.failing), 1 + API_Q_first);

    atomic_store(&c.fake.parse_error, NULL);
    assert_true(api_db_queries_recheck(&c.db));
    assert_int_equal(atomic_load(&c.h.failing), 0);
    assert_non_null(c.db.pg);
    assert_int_equal(atomic_load(&c.fake.conns), 1); /* all on the one connection */
    /* every check prepared the unnamed statement: the named ones stay */
    assert_int_equal(atomic_load(&c.fake.unnamed), atomic_load(&c.fake.parses) - parses);
    conn_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_db_schema_error_classes),
        cmocka_unit_test(test_api_db_schema_error_names_the_query),
        cmocka_unit_test(test_api_db_transient_prepare_error_keeps_ready),
        cmocka_unit_test(test_api_db_connect_is_one_deadline),
        cmocka_unit_test(test_api_db_failed_try_pauses_the_next),
        cmocka_unit_test(test_api_db_recheck_clears_when_the_schema_is_fixed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
