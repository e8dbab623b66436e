/* api_wait.h - a background thread's sleep that a stop request ends at once: the thread waits
 * on its condition variable for ms, or until *stop is true (set under mu, with a broadcast). */
#ifndef API_WAIT_H
#define API_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>

/* A condition variable on the monotonic clock, as api_wait_stop needs. */
void api_wait_cond_init(pthread_cond_t *cv);
/* Waits up to ms; returns *stop (read under mu). */
bool api_wait_stop(pthread_mutex_t *mu, pthread_cond_t *cv, const bool *stop, int64_t ms);

#endif
