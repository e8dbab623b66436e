/* chat/db_queries.h - named SQL statements (db/queries/<domain>.sql, db/README.md).
 *
 * A query file is a header of "--" comments and blank lines, then blocks: a line
 * "-- name: <name>" (name: [a-z][a-z0-9_]*, at most CHAT_DB_QUERY_NAME_MAX bytes), optionally
 * "--" comment lines, then the statement up to the next "-- name:" line or the end of the file.
 * A single trailing ';' and surrounding blank space are not part of the statement.
 *
 * The parser runs at build time (db/tools/db_embed_queries.c writes the C table and the enum of
 * the names) and in the unit tests. The generated table's rows are struct chat_db_query.
 * Thread-safety: none needed (no state; the table is constant). */
#ifndef CHAT_DB_QUERIES_H
#define CHAT_DB_QUERIES_H

#include <stddef.h>

#include "chat/err.h"

#define CHAT_DB_QUERY_NAME_MAX 63  /* bytes of a query name (a PostgreSQL identifier is 63) */
#define CHAT_DB_QUERIES_MAX    512 /* statements in one generated table */

/* One row of a generated table (e.g. api_queries[] of api_queries_gen.c). */
struct chat_db_query {
    const char *name;   /* the block's name: also the prepared statement's name */
    const char *domain; /* the file it came from, without ".sql" */
    unsigned domain_bit;
    int nparams; /* the highest $n in the statement */
    const char *sql;
};

/* One parsed block: pointers into the parsed text (not NUL-terminated). */
struct chat_db_query_src {
    const char *name;
    size_t name_len;
    const char *sql;
    size_t sql_len;
    int line; /* of its "-- name:" line, from 1 */
};

/* Parses the query file text[0..len) and appends its blocks to out[*n..cap); *n is updated. A
 * name already in out[0..*n) (this file's or an earlier one's) is a duplicate. err (errcap
 * bytes, may be NULL when errcap is 0) receives "line N: why" on a failure.
 * Returns CHAT_OK; CHAT_EINVAL: malformed (a statement before the first name, a bad or
 * duplicate name, an empty statement); CHAT_ETOOBIG: more than cap blocks. On a failure the
 * blocks appended before the bad one stay in out and *n counts them. */
CHAT_NODISCARD int chat_db_queries_parse(const char *text,
                                         size_t len,
                                         struct chat_db_query_src *out,
                                         size_t cap,
                                         size_t *n,
                                         char *err,
                                         size_t errcap);

/* The highest parameter number $n in sql[0..len) outside quotes ('...', "...") and comments;
 * 0 when none. */
int chat_db_query_nparams(const char *sql, size_t len);

#endif
