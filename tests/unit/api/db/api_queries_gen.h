/* api_queries_gen.h - test_api_db's stand-in for the generated query table of chat-api
 * (api/src/db/api_db.h includes "api_queries_gen.h"; the build makes the real one from
 * db/queries, db/tools/db_embed_queries.c): two queries in two files, defined in
 * test_api_db.c, so that api_db.c is tested against a stand-in server without the real schema.
 * Same shape as the generated header. */
#ifndef API_QUERIES_GEN_H
#define API_QUERIES_GEN_H

#include "chat/db_queries.h"

#define API_QD_one (1u << 0)
#define API_QD_two (1u << 1)
#define API_QD_ALL ((1u << 2) - 1u)

enum api_q { API_Q_first, API_Q_second, API_Q__COUNT };

extern const struct chat_db_query api_queries[API_Q__COUNT];

#endif
