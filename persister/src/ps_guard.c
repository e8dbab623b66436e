/* ps_guard.c - the deadline of a database operation (see ps.h). libpq waits for the server
 * without a limit, and a hung server (SIGSTOP, a frozen VM) is still acknowledged by its kernel,
 * so neither TCP_USER_TIMEOUT nor keepalives end the wait. This thread does: shutdown() on the
 * socket makes the blocked call fail at once, and the store drops the connection. */
#include <time.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat/time.h"

#include "ps.h"

#define STOP_CHECK_MS 50 /* while armed, the stop counter is read this often */

/* Absolute CLOCK_MONOTONIC time ms from now (the condition variable's clock). */
static struct timespec after_ms(int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* The end of the armed operation: its deadline, brought forward by a stop. g->mu held. */
static int64_t cut_at(struct ps_guard *g, int64_t now)
{
    int64_t at = g->deadline_ms, t;
    int stops = g->stop ? atomic_load(g->stop) : 0;

    if (stops >= 2)
        return now;
    t = stops ? ps_guard_stop_ms(g) : 0;
    if (t && t + g->drain_ms < at)
        at = t + g->drain_ms;
    return at;
}

static void *guard_main(void *arg)
{
    struct ps_guard *g = arg;

    pthread_mutex_lock(&g->mu);
    while (!g->quit) {
        int64_t now = chat_mono_ms(), at;
        struct timespec ts;

        if (g->fd < 0) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        at = cut_at(g, now);
        if (now >= at) {
            /* the blocked call returns; the socket stays open (libpq's fd and our dup) */
            (void)shutdown(g->fd_dup >= 0 ? g->fd_dup : g->fd, SHUT_RDWR);
            g->fd = -1;
            g->fired = true;
            if (g->cuts)
                atomic_fetch_add(g->cuts, 1);
            continue;
        }
        ts = after_ms(at - now < STOP_CHECK_MS ? at - now : STOP_CHECK_MS);
        (void)pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int ps_guard_start(
    struct ps_guard *g, atomic_int *stop, atomic_llong *stop_at, int drain_ms, atomic_llong *cuts)
{
    pthread_condattr_t ca;
    int rc;

    g->fd = g->fd_dup = -1;
    g->stop = stop;
    g->stop_at = stop_at;
    g->drain_ms = drain_ms;
    g->cuts = cuts;
    g->quit = g->fired = false;
    if (pthread_mutex_init(&g->mu, NULL) != 0)
        return CHAT_ENOMEM;
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&g->cv, &ca) != 0) {
        pthread_mutex_destroy(&g->mu);
        return CHAT_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&g->thread, NULL, guard_main, g);
    if (rc != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        return CHAT_ENOMEM;
    }
    g->started = true;
    return CHAT_OK;
}

void ps_guard_stop(struct ps_guard *g)
{
    if (!g->started)
        return;
    pthread_mutex_lock(&g->mu);
    g->quit = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    g->started = false;
}

void ps_guard_arm(struct ps_guard *g, int fd, int64_t deadline_ms)
{
    if (!g->started)
        return;
    pthread_mutex_lock(&g->mu);
    if (g->fd_dup >= 0)
        (void)close(g->fd_dup);
    /* a socket of our own on the same connection: should libpq close its descriptor (an error,
     * end of file) before the disarm, its number is not given to another socket meanwhile, and
     * the shutdown below still reaches the right one */
    g->fd_dup = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    g->fd = fd;
    g->deadline_ms = deadline_ms;
    g->fired = false;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

bool ps_guard_disarm(struct ps_guard *g)
{
    bool fired;

    if (!g->started)
        return false;
    pthread_mutex_lock(&g->mu);
    g->fd = -1;
    if (g->fd_dup >= 0)
        (void)close(g->fd_dup);
    g->fd_dup = -1;
    fired = g->fired;
    g->fired = false;
    pthread_mutex_unlock(&g->mu);
    return fired;
}

int64_t ps_guard_stop_ms(const struct ps_guard *g)
{
    return g->stop_at ? atomic_load(g->stop_at) : 0;
}
