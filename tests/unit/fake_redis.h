/* fake_redis.h - a Redis stand-in for unit tests (test_ps_cache, test_api_redis): a thread on a
 * loopback port serving one connection, each command recorded (its arguments joined by spaces)
 * and answered ":1"; with reset_after, that connection is reset (as by a server that restarted)
 * after answering that many commands, and the next one served. The client closing its
 * connection ends the thread. Test code only (cmocka asserts). */
#ifndef FAKE_REDIS_H
#define FAKE_REDIS_H

#include <stdatomic.h>
#include <stddef.h>

#include <pthread.h>

#define FAKE_KEEP 64

struct fake {
    int lfd, port;
    pthread_t th;
    char **cmds; /* the first FAKE_KEEP commands */
    atomic_size_t n;
    atomic_size_t reset_after; /* 0: never */
    atomic_int conns;          /* connections accepted */
};

/* Listens on 127.0.0.1 (f->port) and starts the thread. */
void fake_start(struct fake *f);
/* After the client closed its connection: joins the thread, frees the record. */
void fake_stop(struct fake *f);

#endif
