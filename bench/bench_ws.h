/* bench/bench_ws.h - minimal RFC 6455 framing shared by chat-bench (client side) and
 * chat-bench-baseline (server side): handshake key and accept values, frame headers, masking
 * and a frame parser that unmasks in place.
 * Thread-safety: pure functions on caller buffers. */
#ifndef BENCH_WS_H
#define BENCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_WS_GUID    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define BENCH_WS_HDR_MAX 14 /* 2 + 8 (length) + 4 (mask) */

enum bench_ws_op {
    BENCH_WS_CONT = 0x0,
    BENCH_WS_TEXT = 0x1,
    BENCH_WS_BINARY = 0x2,
    BENCH_WS_CLOSE = 0x8,
    BENCH_WS_PING = 0x9,
    BENCH_WS_PONG = 0xA,
};

struct bench_ws_frame {
    int opcode;
    bool fin;
    bool masked;            /* the frame carried a mask (client frames must) */
    unsigned char *payload; /* borrowed: points into the parsed buffer, already unmasked */
    size_t len;
};

/* Parses one frame at buf[0..n). max caps the payload length.
 * Returns the frame's total size (> 0) with *f filled and the payload unmasked in place, 0
 * when more bytes are needed, or -1 on a protocol error: reserved bits set, unknown opcode,
 * a control frame longer than 125 bytes or fragmented, a payload longer than max. */
long bench_ws_parse(unsigned char *buf, size_t n, size_t max, struct bench_ws_frame *f);

/* Writes the header of a frame with an n-byte payload into hdr (>= BENCH_WS_HDR_MAX bytes).
 * mask NULL: unmasked (server frames). Returns the header length. The payload must be masked
 * separately with bench_ws_mask(). */
size_t
bench_ws_header(unsigned char *hdr, int opcode, bool fin, size_t n, const unsigned char *mask);

/* XORs p[0..n) with the 4-byte mask (starting at mask byte 0). */
void bench_ws_mask(unsigned char *p, size_t n, const unsigned char mask[4]);

/* Sec-WebSocket-Key for 16 random bytes: 24 characters and a NUL into out. */
void bench_ws_key(const unsigned char nonce[16], char out[25]);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key GUID)), 28 characters and a NUL. */
void bench_ws_accept(const char *key, char out[29]);

#endif
