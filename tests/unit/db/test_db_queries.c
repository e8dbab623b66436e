/* test_db_queries.c - the query file parser (db/src/db_queries.c, chat/db_queries.h) and the
 * shipped query files (db/queries). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "chat/db_queries.h"

#define CAP 16

static int parse(const char *text, struct chat_db_query_src *q, size_t *n, char *err)
{
    return chat_db_queries_parse(text, strlen(text), q, CAP, n, err, 128);
}

static void expect_query(const struct chat_db_query_src *q, const char *name, const char *sql)
{
    if (q->name_len != strlen(name) || memcmp(q->name, name, q->name_len) != 0)
        fail_msg("name '%.*s', want '%s'", (int)q->name_len, q->name, name);
    if (q->sql_len != strlen(sql) || memcmp(q->sql, sql, q->sql_len) != 0)
        fail_msg("%s: sql '%.*s', want '%s'", name, (int)q->sql_len, q->sql, sql);
}

static void test_db_queries_names_and_statements(void **state)
{
    const char *text = "-- header comment\n"
                       "\n"
                       "-- name: login_lookup\n"
                       "-- a one-line comment\n"
                       "SELECT 1\n"
                       "FROM users WHERE lower(username) = lower($1);\n"
                       "\n"
                       "-- name:   user_by_id  \r\n"
                       "SELECT 'a;b', 2 -- kept: inside the statement\n"
                       "  WHERE id = $2::bigint\n"
                       "-- name: last\n"
                       "DELETE FROM x";
    struct chat_db_query_src q[CAP];
    size_t n = 0;
    char err[128];

    (void)state;
    assert_int_equal(parse(text, q, &n, err), CHAT_OK);
    assert_int_equal(n, 3);
    expect_query(&q[0], "login_lookup", "SELECT 1\nFROM users WHERE lower(username) = lower($1)");
    assert_int_equal(q[0].line, 3);
    expect_query(&q[1], "user_by_id",
                 "SELECT 'a;b', 2 -- kept: inside the statement\n  WHERE id = $2::bigint");
    assert_int_equal(q[1].line, 8);
    expect_query(&q[2], "last", "DELETE FROM x");
}

static void test_db_queries_duplicates_refused(void **state)
{
    struct chat_db_query_src q[CAP];
    size_t n = 0;
    char err[128];

    (void)state;
    assert_int_equal(
        parse("-- name: a\nSELECT 1\n-- name: b\nSELECT 2\n-- name: a\nSELECT 3\n", q, &n, err),
        CHAT_EINVAL);
    assert_non_null(strstr(err, "line 5"));
    assert_non_null(strstr(err, "duplicate"));
    /* across files: the second file's name meets the first's */
    n = 0;
    assert_int_equal(parse("-- name: a\nSELECT 1\n", q, &n, err), CHAT_OK);
    assert_int_equal(parse("-- name: b\nSELECT 2\n-- name: a\nSELECT 1\n", q, &n, err),
                     CHAT_EINVAL);
    assert_non_null(strstr(err, "duplicate"));
}

static void test_db_queries_malformed_refused(void **state)
{
    static const char *const bad[] = {
        "SELECT 1\n-- name: a\nSELECT 1\n",          /* SQL before the first name */
        "-- name: a\n\n-- only a comment\n\n",       /* empty statement */
        "-- name: a\n;\n",                           /* empty statement */
        "-- name:\nSELECT 1\n",                      /* no name */
        "-- name: Upper\nSELECT 1\n",                /* bad name */
        "-- name: two words\nSELECT 1\n",            /* bad name */
        "-- name: 1st\nSELECT 1\n",                  /* bad name */
        "-- name: a\nSELECT 1\n--name: b\nSELECT 2", /* a near miss would join two blocks */
        "-- name: a\nSELECT 1\n-- name : b\nSELECT 2",
    };
    struct chat_db_query_src q[CAP];
    char err[128], name[80];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = 0;
        if (parse(bad[i], q, &n, err) != CHAT_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_true(strncmp(err, "line ", 5) == 0);
    }
    /* a name of 64 bytes is one too many */
    memset(name, 'a', 64);
    snprintf(name + 64, sizeof(name) - 64, "\n");
    {
        char text[128];
        size_t n = 0;
        snprintf(text, sizeof(text), "-- name: %sSELECT 1", name);
        assert_int_equal(parse(text, q, &n, err), CHAT_EINVAL);
        snprintf(text, sizeof(text), "-- name: %sSELECT 1", name + 1);
        n = 0;
        assert_int_equal(parse(text, q, &n, err), CHAT_OK);
    }
    /* ordinary comments that mention a name are fine */
    {
        size_t n = 0;
        assert_int_equal(parse("-- the name of it\n-- name: a\n-- names: x\nSELECT 1", q, &n, err),
                         CHAT_OK);
        assert_int_equal(n, 1);
    }
}

static void test_db_queries_too_many(void **state)
{
    struct chat_db_query_src q[2];
    size_t n = 0;
    char err[128];
    const char *text = "-- name: a\nSELECT 1\n-- name: b\nSELECT 2\n-- name: c\nSELECT 3\n";

    (void)state;
    assert_int_equal(chat_db_queries_parse(text, strlen(text), q, 2, &n, err, sizeof(err)),
                     CHAT_ETOOBIG);
    assert_int_equal(n, 2);
}

static void test_db_queries_nparams(void **state)
{
    const char *s = "SELECT $1, '$9', \"$8\", $12::int -- $20\n, $3";

    (void)state;
    assert_int_equal(chat_db_query_nparams(s, strlen(s)), 12);
    assert_int_equal(chat_db_query_nparams("SELECT 1", 8), 0);
}

/* Every shipped query file parses, and no name is used twice across them. */
static void test_db_queries_shipped_files(void **state)
{
    static const char *const files[] = {"accounts", "sessions", "outbox", "retention"};
    static struct chat_db_query_src q[CHAT_DB_QUERIES_MAX];
    static char text[4][65536];
    size_t n = 0;
    char err[128], path[512];

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        FILE *f;
        size_t len;

        snprintf(path, sizeof(path), "%s/%s.sql", CHAT_DB_QUERIES_DIR, files[i]);
        f = fopen(path, "rb");
        assert_non_null(f);
        len = fread(text[i], 1, sizeof(text[i]) - 1, f);
        (void)fclose(f);
        if (chat_db_queries_parse(text[i], len, q, CHAT_DB_QUERIES_MAX, &n, err, sizeof(err)) !=
            CHAT_OK)
            fail_msg("%s: %s", path, err);
    }
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) /* parameterised statements keep their $n */
        assert_true(chat_db_query_nparams(q[i].sql, q[i].sql_len) <= 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_queries_names_and_statements),
        cmocka_unit_test(test_db_queries_duplicates_refused),
        cmocka_unit_test(test_db_queries_malformed_refused),
        cmocka_unit_test(test_db_queries_too_many),
        cmocka_unit_test(test_db_queries_nparams),
        cmocka_unit_test(test_db_queries_shipped_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
