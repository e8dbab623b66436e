/* api_wait.c - a stoppable sleep (api_wait.h). */
#include "api_wait.h"

#include <time.h>

bool api_wait_stop(pthread_mutex_t *mu, pthread_cond_t *cv, const bool *stop, int64_t ms)
{
    struct timespec ts;
    bool stopped;

    clock_gettime(CLOCK_MONOTONIC, &ts); /* cv made by api_wait_cond_init: a clock step is no nap */
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(mu);
    while (!*stop && pthread_cond_timedwait(cv, mu, &ts) == 0)
        ;
    stopped = *stop;
    pthread_mutex_unlock(mu);
    return stopped;
}

void api_wait_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t at;

    pthread_condattr_init(&at);
    pthread_condattr_setclock(&at, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &at);
    pthread_condattr_destroy(&at);
}
