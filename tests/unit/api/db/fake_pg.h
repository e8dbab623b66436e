/* fake_pg.h - a PostgreSQL stand-in for unit tests (test_api_db): a thread on a loopback port
 * speaking just enough of protocol 3 for api_db.c. It serves one connection at a time: the
 * startup answered with AuthenticationOk and ReadyForQuery (after startup_delay_ms), each simple
 * query with CommandComplete (after query_delay_ms; never with hang_queries), each Parse with
 * ParseComplete, except the one numbered error_at (from 0, per connection) while parse_error is
 * set: an ErrorResponse with that SQLSTATE, the rest up to the Sync skipped as a server does
 * (FATAL with fatal: then the connection is closed, as by a server shutting down); hang_parses
 * leaves every Parse and Sync unanswered. The fields a test changes while a connection is up
 * are atomic. Test code only (cmocka asserts). */
#ifndef FAKE_PG_H
#define FAKE_PG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <pthread.h>

struct fake_pg {
    int lfd, port;
    pthread_t th;
    atomic_int startup_delay_ms;
    atomic_int query_delay_ms;
    atomic_bool hang_queries, hang_parses;
    _Atomic(const char *) parse_error; /* SQLSTATE, or NULL: every Parse succeeds */
    atomic_int error_at;               /* the Parse (from 0, per connection) that fails */
    atomic_bool fatal;                 /* the error is FATAL and the connection closed */
    atomic_int parses;                 /* Parse messages received, all connections */
    atomic_int unnamed;                /* of them: for the unnamed statement */
    atomic_int conns;                  /* connections accepted */
};

/* Listens on 127.0.0.1 (f->port), every behaviour off, and starts the thread. */
void fake_pg_start(struct fake_pg *f);
/* Closes the listener and joins the thread (after the client closed its connection). */
void fake_pg_stop(struct fake_pg *f);
/* "postgresql://..." for f: no TLS, no GSS (the fake speaks neither). */
void fake_pg_dsn(const struct fake_pg *f, char *out, size_t cap);

#endif
