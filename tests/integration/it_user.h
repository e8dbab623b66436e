/* it_user.h - the accounts of the integration tests on the shared cluster: a new user registered
 * through chat-api (a client address of its own, so the per-address registration limit of one
 * test never hits another), made a site admin, its public room, and SQL against the cluster's
 * PostgreSQL (psql with $CHAT_TEST_PG_DSN, or the test's own libpq connection). Every helper that
 * checks something aborts the test (cmocka fail) on a mismatch. */
#ifndef IT_USER_H
#define IT_USER_H

#include <jansson.h>
#include <libpq-fe.h>

/* A registered user: token and id are borrowed from session (valid until it_user_free). */
struct it_user {
    char name[32];
    json_t *session; /* the answer of POST /api/v1/auth/register */
    const char *token, *id;
};

/* Registers a user named prefix (<= 6 characters) + a unique suffix through API1. */
void it_user_new(struct it_user *u, const char *prefix);
/* Makes u a site admin (role admin in the database; its token keeps role user: the database
 * decides). */
void it_user_admin(const struct it_user *u);
void it_user_free(struct it_user *u);
/* Creates the public room room (an id of it_room_new()) with owner as its owner (through API1). */
void it_user_room(const struct it_user *owner, const char *room);
/* u joins room through REST (POST /api/v1/rooms/{room}/join through API2): 200. */
void it_user_join(const struct it_user *u, const char *room);

/* Runs a statement (printf format; at most 1023 bytes, no double quote) with psql: it must
 * succeed. */
void it_sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The first value of a query (printf format, as it_sql) as a number: 0 when empty. */
long long it_sql_ll(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Waits until the persister stored message id (decimal) of room (a message row), polling; fails
 * after timeout_ms. */
void it_wait_stored(const char *room, const char *id, int timeout_ms);

/* A libpq connection to $CHAT_TEST_PG_DSN (PQfinish it), or NULL after printing why. */
PGconn *it_pg_connect(void);
/* The one number a query with one parameter ($1 = arg) answers on pg (a count): -1 when it
 * failed or gave no single row. */
long long it_pg_count(PGconn *pg, const char *sql, const char *arg);

#endif
