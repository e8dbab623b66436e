/* wsc.c - see wsc.h. Test code: plain libc allocation is fine here. */
#include "wsc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

struct wsc {
    int fd;
    unsigned char *in; /* receive buffer */
    size_t in_len, in_cap;
    char *msg; /* message being reassembled */
    size_t msg_len;
    int close_code;
    bool closed;
    bool quickack; /* ACK at once on every read (see wsc_set_rcvbuf) */
    bool no_pong;  /* pings are counted, not answered (a client that is gone) */
    int pings;     /* pings received */
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads more bytes into c->in, waiting up to deadline; 1 read, 0 timeout, -1 eof/error. */
static int fill(struct wsc *c, long long deadline)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    long long left = deadline - now_ms();
    ssize_t r;

    if (left < 0)
        left = 0;
    if (poll(&p, 1, (int)left) <= 0)
        return 0;
    if (c->in_len == c->in_cap) {
        c->in_cap = c->in_cap ? c->in_cap * 2 : 65536;
        c->in = realloc(c->in, c->in_cap);
    }
    if (c->quickack) { /* Linux resets it after each ACK: set it before every read */
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
    }
    r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (r <= 0)
        return -1;
    c->in_len += (size_t)r;
    return 1;
}

static void consume(struct wsc *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

static void b64(const unsigned char *in, int n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, n);
}

struct wsc *wsc_connect(const char *base,
                        const char *path,
                        const char *bearer,
                        int timeout_ms,
                        char *errbuf,
                        size_t errlen)
{
    char authz[4200];

    if (bearer)
        snprintf(authz, sizeof(authz), "Bearer %s", bearer);
    return wsc_connect_authz(base, path, bearer ? authz : NULL, timeout_ms, errbuf, errlen);
}

struct wsc *wsc_connect_authz(const char *base,
                              const char *path,
                              const char *authz,
                              int timeout_ms,
                              char *errbuf,
                              size_t errlen)
{
    char host[128], req[8192], key[32], expect[64], accept_src[128];
    unsigned char nonce[16], sha[SHA_DIGEST_LENGTH];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    long long deadline = now_ms() + timeout_ms;
    struct wsc *c;
    int port, one = 1, n;
    char *hdr_end;

    if (sscanf(base, "http://%127[^:]:%d", host, &port) != 2) {
        snprintf(errbuf, errlen, "bad base url %s", base);
        return NULL;
    }
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(errbuf, errlen, "bad host %s", host);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(errbuf, errlen, "connect %s: %s", base, strerror(errno));
        goto fail;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    RAND_bytes(nonce, sizeof(nonce));
    b64(nonce, sizeof(nonce), key);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                 path, host, port, key, authz ? "Authorization: " : "", authz ? authz : "",
                 authz ? "\r\n" : "");
    if (n <= 0 || (size_t)n >= sizeof(req) || write_all(c->fd, req, (size_t)n) != 0) {
        snprintf(errbuf, errlen, "handshake write failed");
        goto fail;
    }
    for (;;) {
        int r;
        if (c->in_len && (hdr_end = memmem(c->in, c->in_len, "\r\n\r\n", 4)))
            break;
        r = fill(c, deadline);
        if (r <= 0) {
            snprintf(errbuf, errlen, "handshake: %s", r == 0 ? "timeout" : "connection closed");
            goto fail;
        }
    }
    *hdr_end = '\0';
    if (strncmp((char *)c->in, "HTTP/1.1 101", 12) != 0) {
        /* the whole refusal for the caller: its headers, and its body as far as its length */
        const char *cl = strcasestr((char *)c->in, "\r\ncontent-length:");
        size_t want = (size_t)(hdr_end + 4 - (char *)c->in) + (cl ? strtoul(cl + 17, NULL, 10) : 0);

        *hdr_end = '\r';
        while (c->in_len < want && fill(c, deadline) > 0) {
        }
        snprintf(errbuf, errlen, "handshake refused: %.*s", (int)c->in_len, (char *)c->in);
        goto fail;
    }
    snprintf(accept_src, sizeof(accept_src), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    SHA1((unsigned char *)accept_src, strlen(accept_src), sha);
    b64(sha, SHA_DIGEST_LENGTH, expect);
    if (!strcasestr((char *)c->in, expect)) {
        snprintf(errbuf, errlen, "handshake: wrong Sec-WebSocket-Accept");
        goto fail;
    }
    consume(c, (size_t)(hdr_end + 4 - (char *)c->in));
    return c;
fail:
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c);
    return NULL;
}

int wsc_send_frame(struct wsc *c, int opcode, bool fin, const void *p, size_t n)
{
    unsigned char hdr[14], mask[4];
    unsigned char *frame;
    size_t h = 0;
    int rc;

    hdr[h++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (n < 126) {
        hdr[h++] = (unsigned char)(0x80 | n);
    } else if (n <= 0xFFFF) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(n >> 8);
        hdr[h++] = (unsigned char)n;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    RAND_bytes(mask, 4);
    memcpy(hdr + h, mask, 4);
    h += 4;
    frame = malloc(h + n + 1);
    memcpy(frame, hdr, h);
    for (size_t i = 0; i < n; i++)
        frame[h + i] = ((const unsigned char *)p)[i] ^ mask[i & 3];
    rc = write_all(c->fd, frame, h + n);
    free(frame);
    return rc;
}

int wsc_send_text(struct wsc *c, const char *s)
{
    return wsc_send_frame(c, WSC_OP_TEXT, true, s, strlen(s));
}

/* Parses one frame from c->in if complete: returns 1 and fills op/fin/payload (pointer into
 * c->in, valid until consume), 0 when more bytes are needed. */
static int
parse_frame(struct wsc *c, int *op, bool *fin, unsigned char **pl, size_t *pl_len, size_t *total)
{
    size_t h = 2, n;

    if (c->in_len < 2)
        return 0;
    *fin = (c->in[0] & 0x80) != 0;
    *op = c->in[0] & 0x0F;
    n = c->in[1] & 0x7F;
    if (n == 126) {
        if (c->in_len < 4)
            return 0;
        n = ((size_t)c->in[2] << 8) | c->in[3];
        h = 4;
    } else if (n == 127) {
        if (c->in_len < 10)
            return 0;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = (n << 8) | c->in[2 + i];
        h = 10;
    }
    if (c->in[1] & 0x80)
        h += 4; /* servers must not mask; tolerate it anyway */
    if (c->in_len < h + n)
        return 0;
    if (c->in[1] & 0x80)
        for (size_t i = 0; i < n; i++)
            c->in[h + i] ^= c->in[h - 4 + (i & 3)];
    *pl = c->in + h;
    *pl_len = n;
    *total = h + n;
    return 1;
}

int wsc_recv_text(struct wsc *c, char **out, int timeout_ms, int *close_code)
{
    long long deadline = now_ms() + timeout_ms;

    *out = NULL;
    if (c->closed) {
        if (close_code)
            *close_code = c->close_code;
        return -1;
    }
    for (;;) {
        int op, r;
        bool fin;
        unsigned char *pl;
        size_t n, total;

        while (parse_frame(c, &op, &fin, &pl, &n, &total)) {
            if (op == WSC_OP_PING) {
                c->pings++;
                if (!c->no_pong)
                    wsc_send_frame(c, WSC_OP_PONG, true, pl, n);
            } else if (op == WSC_OP_CLOSE) {
                c->close_code = n >= 2 ? (pl[0] << 8) | pl[1] : 1005;
                c->closed = true;
                wsc_send_frame(c, WSC_OP_CLOSE, true, pl, n >= 2 ? 2 : 0);
                consume(c, total);
                if (close_code)
                    *close_code = c->close_code;
                return -1;
            } else if (op == WSC_OP_TEXT || op == WSC_OP_CONT || op == WSC_OP_BINARY) {
                c->msg = realloc(c->msg, c->msg_len + n + 1);
                memcpy(c->msg + c->msg_len, pl, n);
                c->msg_len += n;
                c->msg[c->msg_len] = '\0';
                if (fin) {
                    *out = c->msg;
                    c->msg = NULL;
                    c->msg_len = 0;
                    consume(c, total);
                    return 1;
                }
            }
            consume(c, total);
        }
        r = fill(c, deadline);
        if (r == 0)
            return 0;
        if (r < 0) {
            c->closed = true;
            c->close_code = 1006;
            if (close_code)
                *close_code = 1006;
            return -1;
        }
    }
}

void wsc_free_text(char *s)
{
    free(s);
}

void wsc_set_pong(struct wsc *c, bool answer)
{
    c->no_pong = !answer;
}

int wsc_pings(const struct wsc *c)
{
    return c->pings;
}

int wsc_last_close_code(const struct wsc *c)
{
    return c->close_code;
}

void wsc_set_rcvbuf(struct wsc *c, int bytes)
{
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
    /* a window this small plus delayed ACKs paces a later drain to a few KB per 40 ms */
    c->quickack = true;
}

void wsc_abort(struct wsc *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->in);
    free(c->msg);
    free(c);
}

void wsc_close(struct wsc *c)
{
    unsigned char code[2] = {0x03, 0xE8};
    if (!c)
        return;
    if (!c->closed)
        wsc_send_frame(c, WSC_OP_CLOSE, true, code, 2);
    wsc_abort(c);
}
