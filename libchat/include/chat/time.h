/* chat/time.h - clocks. Thread-safety: all functions are thread-safe. */
#ifndef CHAT_TIME_H
#define CHAT_TIME_H

#include <stdint.h>

int64_t chat_now_ms(void);  /* wall clock, ms since the Unix epoch */
int64_t chat_mono_us(void); /* monotonic clock, microseconds */
int64_t chat_mono_ms(void); /* monotonic clock, milliseconds */

#endif
