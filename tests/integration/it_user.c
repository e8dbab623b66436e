/* it_user.c - see it_user.h. */
#include "it_user.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "it_acct.h"
#include "it_util.h"

void it_user_new(struct it_user *u, const char *prefix)
{
    struct it_client own; /* an address each: the registrations per address are limited */

    it_client_new(&own, "203.0.113");
    it_name_new(u->name, sizeof(u->name), prefix);
    u->session = it_register(API1, &own, u->name, PW, NULL);
    u->token = it_access(u->session);
    u->id = it_jstr(u->session, "user.id");
}

void it_user_admin(const struct it_user *u)
{
    it_sql("UPDATE users SET role = 'admin' WHERE id = %s", u->id);
}

void it_user_free(struct it_user *u)
{
    json_decref(u->session);
    u->session = NULL;
    u->token = u->id = NULL;
}

void it_user_room(const struct it_user *owner, const char *room)
{
    struct it_client own;

    it_client_new(&own, "203.0.113");
    json_decref(
        it_api_ok(201, API1, "POST", "/api/v1/rooms", owner->token, &own,
                  json_pack("{s:s, s:s, s:s}", "kind", "public", "name", "Test room", "id", room)));
}

void it_user_join(const struct it_user *u, const char *room)
{
    struct it_client own;
    char p[160];

    it_client_new(&own, "203.0.113");
    snprintf(p, sizeof(p), "/api/v1/rooms/%s/join", room);
    json_decref(it_api_ok(200, API2, "POST", p, u->token, &own, NULL));
}

void it_sql(const char *fmt, ...)
{
    char q[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    assert_int_equal(it_sh("psql -q -X '%s' -v ON_ERROR_STOP=1 -c \"%s\" >/dev/null",
                           it_env("CHAT_TEST_PG_DSN"), q),
                     0);
}

long long it_sql_ll(const char *fmt, ...)
{
    char q[1024], line[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    it_sh_line(line, sizeof(line), "psql -qXAt '%s' -c \"%s\"", it_env("CHAT_TEST_PG_DSN"), q);
    return strtoll(line, NULL, 10);
}

void it_wait_stored(const char *room, const char *id, int timeout_ms)
{
    long long t0 = it_mono_ms();

    while (it_sql_ll("SELECT count(*) FROM messages WHERE room = '%s' AND id = %s AND kind = "
                     "'message'",
                     room, id) != 1) {
        if (it_mono_ms() - t0 > timeout_ms)
            fail_msg("the persister did not store message %s of %s", id, room);
        it_sleep_ms(50);
    }
}

PGconn *it_pg_connect(void)
{
    PGconn *pg = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));

    if (PQstatus(pg) == CONNECTION_OK)
        return pg;
    fprintf(stderr, "postgres: %s\n", PQerrorMessage(pg));
    PQfinish(pg);
    return NULL;
}

long long it_pg_count(PGconn *pg, const char *sql, const char *arg)
{
    const char *params[1] = {arg};
    PGresult *r = PQexecParams(pg, sql, 1, NULL, params, NULL, NULL, 0);
    long long n = -1;

    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}
