#include "chat/hash.h"

#include <string.h>
#include <time.h>

#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3) \
    do {                         \
        v0 += v1;                \
        v1 = ROTL(v1, 13);       \
        v1 ^= v0;                \
        v0 = ROTL(v0, 32);       \
        v2 += v3;                \
        v3 = ROTL(v3, 16);       \
        v3 ^= v2;                \
        v0 += v3;                \
        v3 = ROTL(v3, 21);       \
        v3 ^= v0;                \
        v2 += v1;                \
        v1 = ROTL(v1, 17);       \
        v1 ^= v2;                \
        v2 = ROTL(v2, 32);       \
    } while (0)

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint64_t chat_siphash(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *in = data, *end = in + (len & ~(size_t)7);
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56, m;

    for (; in != end; in += 8) {
        m = load_le64(in);
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint8_t proc_key[16];
static pthread_once_t proc_key_once = PTHREAD_ONCE_INIT;

static void proc_key_init(void)
{
    size_t got = 0;

    while (got < sizeof(proc_key)) {
        ssize_t n = getrandom(proc_key + got, sizeof(proc_key) - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < sizeof(proc_key)) { /* no entropy source: still differs per process and start */
        struct timespec ts;
        uint64_t mix[2];

        clock_gettime(CLOCK_REALTIME, &ts);
        mix[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
        mix[1] = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&got;
        memcpy(proc_key, mix, sizeof(proc_key));
    }
}

uint64_t chat_hash_str(const char *s)
{
    return chat_hash_mem(s, strlen(s));
}

uint64_t chat_hash_mem(const void *p, size_t len)
{
    pthread_once(&proc_key_once, proc_key_init);
    return chat_siphash(proc_key, p, len);
}
