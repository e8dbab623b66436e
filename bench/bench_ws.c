/* bench_ws.c - see bench_ws.h. */
#include "bench_ws.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

long bench_ws_parse(unsigned char *buf, size_t n, size_t max, struct bench_ws_frame *f)
{
    size_t h = 2;
    uint64_t len;
    int op;

    if (n < 2)
        return 0;
    if (buf[0] & 0x70)
        return -1; /* RSV1-3: no extension was negotiated */
    op = buf[0] & 0x0F;
    f->fin = (buf[0] & 0x80) != 0;
    f->masked = (buf[1] & 0x80) != 0;
    len = buf[1] & 0x7F;
    switch (op) {
    case BENCH_WS_CONT:
    case BENCH_WS_TEXT:
    case BENCH_WS_BINARY:
        break;
    case BENCH_WS_CLOSE:
    case BENCH_WS_PING:
    case BENCH_WS_PONG:
        if (len > 125 || !f->fin)
            return -1;
        break;
    default:
        return -1;
    }
    if (len == 126) {
        if (n < 4)
            return 0;
        len = ((uint64_t)buf[2] << 8) | buf[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | buf[2 + i];
        h = 10;
    }
    if (len > max)
        return -1;
    if (f->masked)
        h += 4;
    if (n < h + len)
        return 0;
    f->opcode = op;
    f->payload = buf + h;
    f->len = (size_t)len;
    if (f->masked)
        bench_ws_mask(f->payload, f->len, buf + h - 4);
    return (long)(h + len);
}

size_t
bench_ws_header(unsigned char *hdr, int opcode, bool fin, size_t n, const unsigned char *mask)
{
    size_t h = 0;
    unsigned char m = mask ? 0x80 : 0;

    hdr[h++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (n < 126) {
        hdr[h++] = (unsigned char)(m | n);
    } else if (n <= 0xFFFF) {
        hdr[h++] = m | 126;
        hdr[h++] = (unsigned char)(n >> 8);
        hdr[h++] = (unsigned char)n;
    } else {
        hdr[h++] = m | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    if (mask) {
        memcpy(hdr + h, mask, 4);
        h += 4;
    }
    return h;
}

void bench_ws_mask(unsigned char *p, size_t n, const unsigned char mask[4])
{
    uint64_t m8;
    size_t i = 0;

    /* 8 bytes at a time: the mask repeats every 4 bytes, so an 8-byte word of it lines up */
    memcpy(&m8, mask, 4);
    memcpy((unsigned char *)&m8 + 4, mask, 4);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= m8;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] ^= mask[i & 3];
}

void bench_ws_key(const unsigned char nonce[16], char out[25])
{
    EVP_EncodeBlock((unsigned char *)out, nonce, 16);
}

void bench_ws_accept(const char *key, char out[29])
{
    char src[128];
    unsigned char sha[SHA_DIGEST_LENGTH];
    int n = snprintf(src, sizeof(src), "%s%s", key, BENCH_WS_GUID);

    if (n < 0 || (size_t)n >= sizeof(src)) {
        out[0] = '\0';
        return;
    }
    SHA1((const unsigned char *)src, (size_t)n, sha);
    EVP_EncodeBlock((unsigned char *)out, sha, SHA_DIGEST_LENGTH);
}
