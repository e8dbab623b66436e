/* gw_bucket.h - a token bucket: the sustained rate and burst of sends (per user) and of client
 * frames (per connection). Pure: the caller passes the time, so it is unit-tested without a
 * clock. Thread-safety: none; a bucket is owned by one thread at a time (the event loop). */
#ifndef GW_BUCKET_H
#define GW_BUCKET_H

#include <stdint.h>

struct gw_bucket {
    double tokens;
    int64_t at_us; /* last update (mono us); 0 = new (starts full) */
};

/* Takes one token at now_us (a bucket refills at rate tokens per second up to burst); returns
 * 0, or the ms until one is available (nothing taken). */
int gw_bucket_take(struct gw_bucket *b, double rate, double burst, int64_t now_us);
/* Brings b up to now_us without taking a token (a new bucket: full), so at_us says when the
 * owner was last heard from; the tokens are what gw_bucket_take would have seen. */
void gw_bucket_refill(struct gw_bucket *b, double rate, double burst, int64_t now_us);

#endif
