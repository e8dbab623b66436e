/* gw_bucket.c - a token bucket (rate limits of sends and frames). Pure: the caller passes the
 * time. Owned by one thread at a time. */
#include "room/gw_bucket.h"

void gw_bucket_refill(struct gw_bucket *b, double rate, double burst, int64_t now_us)
{
    double t = b->tokens + (double)(now_us - b->at_us) * rate / 1e6;

    b->tokens = b->at_us == 0 || t > burst ? burst : t; /* a new bucket starts full */
    b->at_us = now_us;
}

int gw_bucket_take(struct gw_bucket *b, double rate, double burst, int64_t now_us)
{
    gw_bucket_refill(b, rate, burst, now_us);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    return (int)((1.0 - b->tokens) * 1000.0 / rate) + 1;
}
