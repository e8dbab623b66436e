/* api_conns.h - the connections of one request thread: one PostgreSQL, one Redis. Made on the
 * thread's first request and kept for its life (thread-local); every set is also on a list in
 * struct api so that api_conns_close_all() closes them once the server has stopped. */
#ifndef API_CONNS_H
#define API_CONNS_H

#include "api_db.h"
#include "api_redis.h"

struct api;

struct api_conns {
    struct api_db db;
    struct api_redis redis;
    struct api_conns *next; /* on api->conns */
};

/* This thread's connections (never NULL). */
struct api_conns *api_conns_get(struct api *a);
/* After the server stopped: closes and frees every thread's set. */
void api_conns_close_all(struct api *a);

#endif
