/* gw_bucket.c - a token bucket (rate limits of sends and frames). Pure: the caller passes the
 * time. Owned by one thread at a time. */
#include "room/gw_bucket.h"

int gw_bucket_take(struct gw_bucket *b, double rate, double burst, int64_t now_us)
{
    double t;

    if (b->at_us == 0) /* a new bucket starts full */
        b->tokens = burst;
    t = b->tokens + (double)(now_us - b->at_us) * rate / 1e6;
    if (b->at_us == 0 || t > burst)
        t = burst;
    b->at_us = now_us;
    if (t >= 1.0) {
        b->tokens = t - 1.0;
        return 0;
    }
    b->tokens = t;
    return (int)((1.0 - t) * 1000.0 / rate) + 1;
}
