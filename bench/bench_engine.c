/* bench_engine.c - epoll worker threads: non-blocking sockets, WebSocket client handshake and
 * framing, connection life cycle, timeouts and shutdown (see bench.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strings.h>

#include "chat/log.h"
#include "chat/mem.h"

#include "bench.h"
#include "bench_ws.h"

#define SCRATCH_SIZE    65536
#define OUT_MAX         (8u << 20) /* bytes queued per connection at most */
#define MSG_MAX         (1u << 20) /* a (reassembled) server message at most */
#define HDR_MAX         8192       /* upgrade response headers at most */
#define NS              1000000000LL
#define CONNECT_TIMEOUT (10 * NS) /* connect + upgrade + hello */
#define CLOSE_TIMEOUT   (3 * NS)  /* close frame sent -> EOF */
#define DONE_TIMEOUT    (5 * NS)  /* closing everything at the end */
#define SWEEP_INTERVAL  (100 * 1000000LL)
#define MAX_LOGGED      10 /* failure lines per worker, then only counted */

static struct bench_conn *slot_at(struct bench_worker *w, uint32_t idx1)
{
    return idx1 ? &w->conns[idx1 - 1] : NULL;
}

static uint32_t slot_idx1(struct bench_worker *w, const struct bench_conn *c)
{
    return (uint32_t)(c - w->conns) + 1;
}

static const struct bench_target *target_of(const struct bench_conn *c)
{
    const struct bench *b = c->w->b;
    return &b->targets[c->target];
}

static void log_fail(struct bench_conn *c, const char *what, const char *why)
{
    struct bench_worker *w = c->w;

    if (w->logged > MAX_LOGGED)
        return;
    if (w->logged++ == MAX_LOGGED) {
        chat_log(CHAT_LOG_WARN, "worker %d: further connection failures are only counted", w->idx);
        return;
    }
    chat_log(CHAT_LOG_WARN, "conn %" PRIu64 ": %s: %s", c->id, what, why);
}

static int close_slot(int code)
{
    if (code >= 1000 && code < 1016)
        return code - 1000;
    if (code >= 4000 && code < 4016)
        return 16 + code - 4000;
    return 32;
}

static void set_state(struct bench_conn *c, enum bench_conn_state s, int64_t now)
{
    c->state = s;
    c->t_state_ns = now;
}

/* Ends the connection: closes the socket, counts, tells the scenario, releases the slot at the
 * end of the loop iteration. */
static void conn_end(struct bench_conn *c, int64_t now)
{
    struct bench_worker *w = c->w;

    if (c->state == BENCH_CS_DEAD || c->state == BENCH_CS_FREE)
        return;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (!c->opened) {
        w->opening--;
        if (!c->we_closed)
            bench_count(w, BENCH_C_conn_failed, 1);
    } else if (c->we_closed) {
        bench_count(w, BENCH_C_conn_closed, 1);
        if (c->cut)
            bench_count(w, BENCH_C_conn_cut, 1);
    } else {
        if (!c->close_code)
            c->close_code = 1006;
        bench_count(w, BENCH_C_conn_dropped, 1);
        atomic_fetch_add_explicit(&w->close_codes[close_slot(c->close_code)], 1,
                                  memory_order_relaxed);
    }
    set_state(c, BENCH_CS_DEAD, now);
    w->live--;
    if (w->b->sc_ops->on_closed)
        w->b->sc_ops->on_closed(c, now);
    c->next_free = w->dead_head;
    w->dead_head = slot_idx1(w, c);
}

static void fail(struct bench_conn *c, const char *what, const char *why, int64_t now)
{
    if (c->state == BENCH_CS_DEAD)
        return;
    log_fail(c, what, why);
    if (!c->close_code)
        c->close_code = 1006;
    conn_end(c, now);
}

static void want_out(struct bench_conn *c, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

    if (c->want_out == on)
        return;
    c->want_out = on;
    if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        chat_log(CHAT_LOG_ERROR, "epoll_ctl: %s", strerror(errno));
}

/* Reserves n more output bytes; false over OUT_MAX. */
static bool out_reserve(struct bench_conn *c, size_t n)
{
    size_t need;

    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    need = c->out_len + n;
    if (need > OUT_MAX)
        return false;
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 1024;
        while (cap < need)
            cap *= 2;
        c->out = chat_xrealloc(c->out, cap);
        c->out_cap = cap;
    }
    return true;
}

static void mark_dirty(struct bench_conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->next_dirty = c->w->dirty_head;
    c->w->dirty_head = slot_idx1(c->w, c);
}

static bool queue_frame(struct bench_conn *c, int op, const void *p, size_t n)
{
    unsigned char mask[4];
    uint64_t r = bench_rand(c->w);
    size_t h;

    if (!out_reserve(c, n + BENCH_WS_HDR_MAX))
        return false;
    memcpy(mask, &r, 4);
    h = bench_ws_header(c->out + c->out_len, op, true, n, mask);
    memcpy(c->out + c->out_len + h, p, n);
    bench_ws_mask(c->out + c->out_len + h, n, mask);
    c->out_len += h + n;
    mark_dirty(c);
    return true;
}

bool bench_send_text(struct bench_conn *c, const void *p, size_t n)
{
    if (c->state != BENCH_CS_OPEN && c->state != BENCH_CS_HELLO)
        return false;
    return queue_frame(c, BENCH_WS_TEXT, p, n);
}

/* Writes what is queued; false when the connection ended. */
static bool flush_conn(struct bench_conn *c, int64_t now)
{
    if (c->state == BENCH_CS_CONNECTING || c->state == BENCH_CS_DEAD)
        return c->state != BENCH_CS_DEAD;
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want_out(c, true);
            return true;
        }
        fail(c, "send", n < 0 ? strerror(errno) : "nothing written", now);
        return false;
    }
    c->out_off = c->out_len = 0;
    want_out(c, false);
    return true;
}

void bench_close(struct bench_conn *c, int64_t now)
{
    unsigned char code[2] = {0x03, 0xE8}; /* 1000 */

    c->we_closed = true;
    if (c->state == BENCH_CS_OPEN || c->state == BENCH_CS_HELLO) {
        if (!queue_frame(c, BENCH_WS_CLOSE, code, 2)) {
            conn_end(c, now);
            return;
        }
        c->close_sent = true;
        c->t_close_ns = now;
        set_state(c, BENCH_CS_CLOSING, now);
        return;
    }
    if (c->state != BENCH_CS_CLOSING)
        conn_end(c, now);
}

void bench_cut(struct bench_conn *c, int64_t now)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    if (c->state == BENCH_CS_DEAD || c->state == BENCH_CS_FREE)
        return;
    if (c->fd >= 0)
        (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    c->we_closed = true;
    c->cut = true;
    conn_end(c, now);
}

/* ---- opening ---- */

static bool build_upgrade(struct bench_conn *c, const struct bench_target *t)
{
    struct bench *b = c->w->b;
    struct chat_claims cl;
    unsigned char nonce[16];
    char *tok = NULL;
    int n;
    bool ok = false;
    time_t now = time(NULL);

    for (int i = 0; i < 16; i += 8) {
        uint64_t r = bench_rand(c->w);
        memcpy(nonce + i, &r, 8);
    }
    bench_ws_key(nonce, c->key);
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.sub, sizeof(cl.sub), "b%s-%" PRIu64, b->run_id, c->id);
    snprintf(cl.name, sizeof(cl.name), "%s", cl.sub);
    cl.iat = now;
    cl.exp = now + 86400;
    if (chat_jwt_sign(&b->kr, &cl, b->cfg.jwt_issuer, &tok) != CHAT_OK)
        return false;
    if (!out_reserve(c, strlen(tok) + 512))
        goto out;
    n = snprintf((char *)c->out + c->out_len, c->out_cap - c->out_len,
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                 "Authorization: Bearer %s\r\nUser-Agent: chat-bench\r\n\r\n",
                 t->path, t->host, c->key, tok);
    if (n <= 0 || (size_t)n >= c->out_cap - c->out_len)
        goto out;
    c->out_len += (size_t)n;
    ok = true;
out:
    chat_free(tok);
    return ok;
}

static void bind_source(struct bench_conn *c, const struct in_addr *src)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = *src};
    int one = 1;

    /* the port is chosen at connect() for the whole 4-tuple: ports are not used up per source */
    (void)setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        chat_log(CHAT_LOG_DEBUG, "bind source: %s", strerror(errno));
}

struct bench_conn *bench_open(struct bench_worker *w, uint64_t id, void *user, int64_t now)
{
    const struct bench *b = w->b;

    return bench_open_to(w, id, (int)((id / (uint64_t)b->nworkers) % (uint64_t)b->ntargets), user,
                         now);
}

struct bench_conn *
bench_open_to(struct bench_worker *w, uint64_t id, int target, void *user, int64_t now)
{
    struct bench *b = w->b;
    struct bench_conn *c = slot_at(w, w->free_head);
    const struct bench_target *t;
    struct epoll_event ev;
    uint64_t a = id / (uint64_t)b->nworkers;
    int one = 1;

    if (!c)
        return NULL;
    w->free_head = c->next_free;
    c->fd = -1;
    c->id = id;
    c->target = target;
    t = target_of(c);
    c->user = user;
    c->in_len = c->msg_len = c->out_len = c->out_off = 0;
    c->in_msg = c->close_sent = c->we_closed = c->want_out = c->dirty = c->opened = false;
    c->cut = false;
    c->close_code = 0;
    c->t_start_ns = now;
    set_state(c, BENCH_CS_CONNECTING, now);
    w->live++;
    w->opening++;
    bench_count(w, BENCH_C_conn_started, 1);
    if (!build_upgrade(c, t)) {
        fail(c, "token", "could not sign a token", now);
        return c;
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail(c, "socket", strerror(errno), now);
        return c;
    }
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (b->nsrcs)
        bind_source(c, &b->srcs[(a / (uint64_t)b->ntargets) % (uint64_t)b->nsrcs]);
    if (connect(c->fd, (const struct sockaddr *)&t->addr, sizeof(t->addr)) != 0 &&
        errno != EINPROGRESS) {
        fail(c, t->url, strerror(errno), now);
        return c;
    }
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        fail(c, "epoll_ctl", strerror(errno), now);
        return c;
    }
    c->want_out = true;
    return c;
}

/* ---- receiving ---- */

static bool check_upgrade(struct bench_conn *c, const char *h, size_t n)
{
    char expect[29];
    const char *line = h, *end = h + n;
    static const char name[] = "sec-websocket-accept:";

    if (n < 12 || memcmp(h, "HTTP/1.1 101", 12) != 0) {
        char first[64];
        size_t k = 0;
        while (k < n && k < sizeof(first) - 1 && h[k] != '\r')
            k++;
        memcpy(first, h, k);
        first[k] = '\0';
        fail(c, "upgrade refused", first, c->t_state_ns);
        return false;
    }
    bench_ws_accept(c->key, expect);
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        const char *v = line + sizeof(name) - 1;
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > sizeof(name) - 1 &&
            strncasecmp(line, name, sizeof(name) - 1) == 0) {
            while (v < eol && *v == ' ')
                v++;
            if ((size_t)(eol - v) >= 28 && memcmp(v, expect, 28) == 0)
                return true;
            break;
        }
        line = eol + 1;
    }
    fail(c, "upgrade", "wrong or missing Sec-WebSocket-Accept", c->t_state_ns);
    return false;
}

static void deliver(struct bench_conn *c, const unsigned char *p, size_t n, int64_t now)
{
    struct bench_worker *w = c->w;
    struct bench_frame f;

    bench_frame_scan((const char *)p, n, &f);
    if (c->state == BENCH_CS_HELLO) {
        if (f.type == CHAT_F_hello) {
            c->opened = true;
            w->opening--;
            set_state(c, BENCH_CS_OPEN, now);
            bench_count(w, BENCH_C_conn_open, 1);
            chat_hist_record(&w->hist[BENCH_H_connect], (uint64_t)(now - c->t_start_ns) / 1000);
            if (w->b->sc_ops->on_hello)
                w->b->sc_ops->on_hello(c, &f, now);
        } else if (f.type == CHAT_F_error) {
            bench_count_error(w, &f); /* a refused token: close 4001 follows */
        }
        return;
    }
    if (c->opened && w->b->sc_ops->on_frame)
        w->b->sc_ops->on_frame(c, &f, now);
}

static void on_close_frame(struct bench_conn *c, const struct bench_ws_frame *f, int64_t now)
{
    c->close_code = f->len >= 2 ? (f->payload[0] << 8) | f->payload[1] : 1005;
    if (!c->close_sent) {
        unsigned char code[2] = {(unsigned char)(c->close_code >> 8), (unsigned char)c->close_code};
        if (c->close_code == 1005)
            code[0] = 0x03, code[1] = 0xE8;
        (void)queue_frame(c, BENCH_WS_CLOSE, code, 2);
        c->close_sent = true;
    }
    set_state(c, BENCH_CS_CLOSING, now); /* the server closes the TCP connection */
}

static void on_ws_frame(struct bench_conn *c, struct bench_ws_frame *f, int64_t now)
{
    switch (f->opcode) {
    case BENCH_WS_TEXT:
    case BENCH_WS_BINARY:
        if (c->in_msg) {
            fail(c, "frame", "data frame inside a fragmented message", now);
            return;
        }
        if (f->fin) {
            deliver(c, f->payload, f->len, now);
            return;
        }
        c->in_msg = true;
        c->msg_len = 0; /* keep the first fragment: */
        /* fall through */
    case BENCH_WS_CONT:
        if (!c->in_msg || c->msg_len + f->len > MSG_MAX) {
            fail(c, "frame", "bad continuation", now);
            return;
        }
        if (c->msg_len + f->len > c->msg_cap) {
            c->msg_cap = (c->msg_len + f->len) * 2;
            c->msg = chat_xrealloc(c->msg, c->msg_cap);
        }
        memcpy(c->msg + c->msg_len, f->payload, f->len);
        c->msg_len += f->len;
        if (f->fin) {
            c->in_msg = false;
            deliver(c, c->msg, c->msg_len, now);
        }
        return;
    case BENCH_WS_PING:
        if (!c->close_sent)
            (void)queue_frame(c, BENCH_WS_PONG, f->payload, f->len);
        return;
    case BENCH_WS_CLOSE:
        on_close_frame(c, f, now);
        return;
    default:
        return; /* pong */
    }
}

/* Handles buf[0..n): the upgrade response, then frames. Returns the bytes consumed. */
static size_t process(struct bench_conn *c, unsigned char *buf, size_t n, int64_t now)
{
    size_t off = 0;

    if (c->state == BENCH_CS_HANDSHAKE) {
        const unsigned char *e = memmem(buf, n, "\r\n\r\n", 4);
        if (!e) {
            if (n > HDR_MAX)
                fail(c, "upgrade", "response headers too long", now);
            return 0;
        }
        if (!check_upgrade(c, (const char *)buf, (size_t)(e - buf)))
            return n;
        set_state(c, BENCH_CS_HELLO, now);
        off = (size_t)(e - buf) + 4;
    }
    while (off < n && c->state != BENCH_CS_DEAD) {
        struct bench_ws_frame f;
        long k = bench_ws_parse(buf + off, n - off, MSG_MAX, &f);
        if (k == 0)
            break;
        if (k < 0) {
            fail(c, "frame", "malformed server frame", now);
            break;
        }
        off += (size_t)k;
        on_ws_frame(c, &f, now);
    }
    return c->state == BENCH_CS_DEAD ? n : off;
}

static void on_eof(struct bench_conn *c, int64_t now)
{
    if (c->state == BENCH_CS_CLOSING && c->close_sent) {
        if (c->we_closed)
            chat_hist_record(&c->w->hist[BENCH_H_close], (uint64_t)(now - c->t_close_ns) / 1000);
        conn_end(c, now);
        return;
    }
    if (!c->close_code)
        c->close_code = 1006;
    if (!c->opened)
        log_fail(c, "connection closed", "before hello");
    conn_end(c, now);
}

static void read_conn(struct bench_conn *c, int64_t now)
{
    struct bench_worker *w = c->w;
    bool scratch = c->in_len == 0;
    unsigned char *buf;
    size_t cap, used;
    ssize_t n;

    if (scratch) {
        buf = w->scratch;
        cap = SCRATCH_SIZE;
    } else {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap * 2 + 16384;
            c->in = chat_xrealloc(c->in, c->in_cap);
        }
        buf = c->in + c->in_len;
        cap = c->in_cap - c->in_len;
    }
    n = recv(c->fd, buf, cap, 0);
    if (n == 0) {
        on_eof(c, now);
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            fail(c, "recv", strerror(errno), now);
        return;
    }
    bench_count(w, BENCH_C_bytes_in, (unsigned long long)n);
    if (scratch) {
        used = process(c, buf, (size_t)n, now);
        if (used < (size_t)n && c->state != BENCH_CS_DEAD) {
            size_t left = (size_t)n - used;
            if (c->in_cap < left) {
                c->in_cap = left < 16384 ? 16384 : left;
                c->in = chat_xrealloc(c->in, c->in_cap);
            }
            memcpy(c->in, buf + used, left);
            c->in_len = left;
        }
        return;
    }
    c->in_len += (size_t)n;
    used = process(c, c->in, c->in_len, now);
    if (c->state == BENCH_CS_DEAD)
        return;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
}

static void on_event(struct bench_conn *c, uint32_t ev, int64_t now)
{
    if (c->state == BENCH_CS_DEAD || c->state == BENCH_CS_FREE)
        return;
    if (c->state == BENCH_CS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err) {
            fail(c, target_of(c)->url, strerror(err), now);
            return;
        }
        set_state(c, BENCH_CS_HANDSHAKE, now);
        (void)flush_conn(c, now);
        return;
    }
    if ((ev & EPOLLOUT) && !flush_conn(c, now))
        return;
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
        read_conn(c, now);
}

/* ---- the loop ---- */

static void flush_dirty(struct bench_worker *w, int64_t now)
{
    while (w->dirty_head) {
        struct bench_conn *c = slot_at(w, w->dirty_head);
        w->dirty_head = c->next_dirty;
        c->dirty = false;
        (void)flush_conn(c, now);
    }
}

/* Returns dead slots to the free list; one still on the dirty list waits for a later pass. */
static void release_dead(struct bench_worker *w)
{
    uint32_t keep = 0;

    while (w->dead_head) {
        struct bench_conn *c = slot_at(w, w->dead_head);
        w->dead_head = c->next_free;
        if (c->dirty) {
            c->next_free = keep;
            keep = slot_idx1(w, c);
            continue;
        }
        c->state = BENCH_CS_FREE;
        c->user = NULL;
        c->next_free = w->free_head;
        w->free_head = slot_idx1(w, c);
    }
    w->dead_head = keep;
}

static void sweep(struct bench_worker *w, int64_t now)
{
    w->last_sweep_ns = now;
    for (uint32_t i = 0; i < w->cap; i++) {
        struct bench_conn *c = &w->conns[i];
        switch (c->state) {
        case BENCH_CS_CONNECTING:
        case BENCH_CS_HANDSHAKE:
        case BENCH_CS_HELLO:
            if (now - c->t_start_ns > CONNECT_TIMEOUT)
                fail(c, "open", "timed out", now);
            break;
        case BENCH_CS_CLOSING:
            if (now - c->t_state_ns > CLOSE_TIMEOUT)
                conn_end(c, now); /* the server did not close: give up waiting */
            break;
        default:
            break;
        }
    }
}

static void start_done(struct bench_worker *w, int64_t now)
{
    w->done_deadline_ns = now + DONE_TIMEOUT;
    for (uint32_t i = 0; i < w->cap; i++) {
        struct bench_conn *c = &w->conns[i];
        if (c->state != BENCH_CS_FREE && c->state != BENCH_CS_DEAD)
            bench_close(c, now);
    }
}

static void end_all(struct bench_worker *w, int64_t now)
{
    for (uint32_t i = 0; i < w->cap; i++) {
        struct bench_conn *c = &w->conns[i];
        if (c->state != BENCH_CS_FREE && c->state != BENCH_CS_DEAD) {
            c->we_closed = true;
            conn_end(c, now);
        }
    }
    while (w->dirty_head) { /* nothing more is written */
        struct bench_conn *c = slot_at(w, w->dirty_head);
        w->dirty_head = c->next_dirty;
        c->dirty = false;
    }
    release_dead(w);
}

static int64_t loop_step(struct bench_worker *w, int64_t now)
{
    struct bench *b = w->b;
    int phase = atomic_load_explicit(&b->phase, memory_order_acquire);

    if (phase == BENCH_PH_DONE && w->phase_seen != BENCH_PH_DONE)
        start_done(w, now);
    w->phase_seen = phase;
    if (phase == BENCH_PH_DONE)
        return now + 50 * 1000000LL;
    return b->sc_ops->tick ? b->sc_ops->tick(w, now) : now + SWEEP_INTERVAL;
}

static void *worker_main(void *arg)
{
    struct bench_worker *w = arg;
    struct epoll_event ev[256];

    if (w->b->sc_ops->worker_init)
        w->b->sc_ops->worker_init(w);
    for (;;) {
        int64_t now = bench_now_ns(), next;
        long long wait_ms;
        int n;

        next = loop_step(w, now);
        flush_dirty(w, now);
        release_dead(w);
        if (w->phase_seen == BENCH_PH_DONE && (w->live == 0 || now >= w->done_deadline_ns))
            break;
        wait_ms = next <= now ? 0 : (next - now + 999999) / 1000000;
        if (wait_ms > 100)
            wait_ms = 100;
        n = epoll_wait(w->epfd, ev, 256, (int)wait_ms);
        now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            if (!ev[i].data.ptr) {
                uint64_t v;
                (void)!read(w->wakefd, &v, sizeof(v));
                continue;
            }
            on_event(ev[i].data.ptr, ev[i].events, now);
        }
        flush_dirty(w, now);
        if (now - w->last_sweep_ns >= SWEEP_INTERVAL)
            sweep(w, now);
        release_dead(w);
    }
    end_all(w, bench_now_ns());
    return NULL;
}

/* ---- life cycle and totals ---- */

static int worker_init(struct bench *b, struct bench_worker *w, int idx)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};

    w->b = b;
    w->idx = idx;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->wakefd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev) != 0) {
        chat_log(CHAT_LOG_ERROR, "epoll/eventfd: %s", strerror(errno));
        return CHAT_EIO;
    }
    w->cap = b->conns_per_worker ? b->conns_per_worker : 1;
    w->conns = chat_xcalloc(w->cap, sizeof(*w->conns));
    for (uint32_t i = 0; i < w->cap; i++) {
        w->conns[i].fd = -1;
        w->conns[i].w = w;
        w->conns[i].next_free = i + 2 <= w->cap ? i + 2 : 0;
    }
    w->free_head = 1;
    w->scratch = chat_xmalloc(SCRATCH_SIZE);
    w->hist = chat_xcalloc(BENCH_H__COUNT, sizeof(*w->hist));
    if (getrandom(&w->rng, sizeof(w->rng), 0) != sizeof(w->rng) || !w->rng)
        w->rng = 0x9E3779B97F4A7C15ULL ^ (uint64_t)bench_now_ns() ^ (uint64_t)idx;
    return CHAT_OK;
}

int bench_engine_start(struct bench *b)
{
    b->workers = chat_xcalloc((size_t)b->nworkers, sizeof(*b->workers));
    for (int i = 0; i < b->nworkers; i++) {
        b->workers[i].epfd = b->workers[i].wakefd = -1;
        b->workers[i].thread = pthread_self();
    }
    for (int i = 0; i < b->nworkers; i++)
        if (worker_init(b, &b->workers[i], i) != CHAT_OK)
            return CHAT_EIO;
    for (int i = 0; i < b->nworkers; i++) {
        int rc = pthread_create(&b->workers[i].thread, NULL, worker_main, &b->workers[i]);
        if (rc != 0) {
            chat_log(CHAT_LOG_ERROR, "pthread_create: %s", strerror(rc));
            b->workers[i].thread = pthread_self();
            return CHAT_EIO;
        }
    }
    return CHAT_OK;
}

void bench_set_phase(struct bench *b, enum bench_phase ph)
{
    uint64_t one = 1;

    atomic_store_explicit(&b->phase, (int)ph, memory_order_release);
    for (int i = 0; i < b->nworkers && b->workers; i++)
        if (b->workers[i].wakefd >= 0)
            (void)!write(b->workers[i].wakefd, &one, sizeof(one));
}

void bench_engine_stop(struct bench *b)
{
    bench_set_phase(b, BENCH_PH_DONE);
    for (int i = 0; i < b->nworkers && b->workers; i++) {
        struct bench_worker *w = &b->workers[i];
        if (!pthread_equal(w->thread, pthread_self()))
            pthread_join(w->thread, NULL);
        w->thread = pthread_self();
    }
}

void bench_engine_free(struct bench *b)
{
    for (int i = 0; i < b->nworkers && b->workers; i++) {
        struct bench_worker *w = &b->workers[i];
        for (uint32_t k = 0; w->conns && k < w->cap; k++) {
            if (w->conns[k].fd >= 0)
                close(w->conns[k].fd);
            chat_free(w->conns[k].in);
            chat_free(w->conns[k].msg);
            chat_free(w->conns[k].out);
        }
        chat_free(w->conns);
        chat_free(w->scratch);
        chat_free(w->hist);
        if (w->epfd >= 0)
            close(w->epfd);
        if (w->wakefd >= 0)
            close(w->wakefd);
    }
    CHAT_FREE(b->workers);
}
