/* test_db_migrations.c - the migrations embedded from db/migrations (db_migrations_gen.c,
 * chat/db_migrate.h). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdbool.h>
#include <string.h>

#include "chat/db_migrate.h"
#include "chat/mem.h"

/* Returns a new copy of sql without "--" comments (free with chat_free). */
static char *strip_comments(const char *sql)
{
    char *out = chat_xmalloc(strlen(sql) + 1), *o = out;

    while (*sql) {
        if (sql[0] == '-' && sql[1] == '-') {
            while (*sql && *sql != '\n')
                sql++;
            continue;
        }
        *o++ = *sql++;
    }
    *o = '\0';
    return out;
}

/* True when code holds a BEGIN statement: BEGIN followed by ';', TRANSACTION, WORK or ISOLATION
 * (START TRANSACTION too). */
static bool begins_transaction(const char *code)
{
    static const char *const after[] = {";", "TRANSACTION", "WORK", "ISOLATION", NULL};

    if (strstr(code, "START TRANSACTION"))
        return true;
    for (const char *p = strstr(code, "BEGIN"); p; p = strstr(p + 5, "BEGIN")) {
        const char *q = p + 5;
        while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            q++;
        for (int i = 0; after[i]; i++)
            if (strncmp(q, after[i], strlen(after[i])) == 0)
                return true;
    }
    return false;
}

static void test_db_migrations_table_well_formed(void **state)
{
    (void)state;
    assert_true(begins_transaction("BEGIN;"));
    assert_true(begins_transaction("x; BEGIN\n TRANSACTION ISOLATION LEVEL SERIALIZABLE;"));
    assert_false(begins_transaction("AS $$ BEGIN PERFORM pg_notify('c', ''); RETURN NULL; END $$"));
    assert_true(chat_db_migrations_count >= 1);
    for (size_t i = 0; i < chat_db_migrations_count; i++) {
        const struct chat_db_migration *m = &chat_db_migrations[i];
        assert_true(m->version > 0);
        if (i > 0)
            assert_true(m->version > chat_db_migrations[i - 1].version);
        assert_non_null(m->name);
        assert_true(strlen(m->name) > 0);
        assert_non_null(m->sql);
        assert_true(strlen(m->sql) > 0);
        /* applied inside the migration transaction: no transaction control of their own (a
         * plpgsql body's BEGIN ... END is no transaction statement) */
        char *code = strip_comments(m->sql);
        assert_false(begins_transaction(code));
        assert_null(strstr(code, "COMMIT"));
        assert_null(strstr(code, "CONCURRENTLY"));
        chat_free(code);
    }
    assert_int_equal(chat_db_migrations[chat_db_migrations_count].version, 0); /* sentinel row */
    assert_null(chat_db_migrations[chat_db_migrations_count].sql);
}

static void test_db_migrations_initial_schema(void **state)
{
    const struct chat_db_migration *m = &chat_db_migrations[0];

    (void)state;
    assert_int_equal(m->version, 1);
    assert_string_equal(m->name, "messages");
    assert_non_null(strstr(m->sql, "CREATE TABLE IF NOT EXISTS messages"));
    assert_non_null(strstr(m->sql, "PARTITION BY RANGE (created_at)"));
    assert_non_null(strstr(m->sql, "PRIMARY KEY (created_at, id)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_migrations_table_well_formed),
        cmocka_unit_test(test_db_migrations_initial_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
