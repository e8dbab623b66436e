/* fuzz.h - helpers shared by the libFuzzer targets of tests/fuzz (built only with -DCHAT_FUZZ=ON,
 * run by scripts/fuzz.sh).
 *
 * Every target is one LLVMFuzzerTestOneInput() that feeds the raw input to a decoder, checks
 * cheap invariants of what came out with FUZZ_CHECK and frees everything, so that ASan,
 * LeakSanitizer and UBSan see each run. A broken invariant aborts: libFuzzer saves the input as
 * a crash reproducer. */
#ifndef CHAT_FUZZ_H
#define CHAT_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/mem.h"

/* the entry point libFuzzer calls; declared here for -Wmissing-prototypes */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* A NUL-terminated copy of data[0..size) (for the APIs that take C strings); chat_free() it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = chat_xmalloc(size + 1);

    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* True when the C string s is at most max bytes long. */
static inline int fuzz_len_le(const char *s, size_t max)
{
    return s == NULL || strnlen(s, max + 1) <= max;
}

#endif
