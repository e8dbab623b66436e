/* baseline_server.c - chat-bench-baseline: the "machine limit" that benchmark ratios are
 * computed against. One thread, epoll, plain sockets, no Kafka, no Redis, no token checks.
 *
 * It speaks just enough of the chat protocol for `chat-bench fanout` to run against it
 * unchanged: hello after the upgrade, join -> joined, leave -> left, ping -> pong, auth ->
 * authed (not verified), send -> ack with a seq from one counter, and the message frame (encoded
 * once with the real codec, seq included) written to every connection joined to the room.
 * Client frames are decoded with the real codec (chat_cframe_decode) as the gateway does. Each
 * connection's output is a buffer flushed once per loop iteration (several frames per write);
 * over --outq-max-bytes the connection is closed (slow consumer). GET /healthz answers 200.
 * SIGTERM/SIGINT: closes everything and exits 0.
 * Threading: single-threaded. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strings.h>

#include "chat/buf.h"
#include "chat/config.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/proto.h"
#include "chat/time.h"

#include "bench_ws.h"

#define BL_MAX_ROOMS 64
#define BL_BUCKETS   4096
#define BL_HDR_MAX   8192
#define BL_SCRATCH   65536

struct bl_cfg {
    char *listen_addr;
    int port;
    int max_frame;
    int max_text;
    int outq_max_bytes;
    char *log_level;
};

#define OPT_INT(flag, env, min, max, def, field, help)                                  \
    {                                                                                   \
        flag, env, CHAT_CFG_INT, min, max, def, offsetof(struct bl_cfg, field), 0, help \
    }
#define OPT_STR(flag, env, def, field, help)                                        \
    {                                                                               \
        flag, env, CHAT_CFG_STR, 0, 0, def, offsetof(struct bl_cfg, field), 0, help \
    }

static const struct chat_cfg_opt bl_opts[] = {
    OPT_STR("listen-addr", "CHAT_BASELINE_ADDR", "127.0.0.1", listen_addr, "IPv4 address"),
    OPT_INT("port", "CHAT_BASELINE_PORT", 1, 65535, "8090", port, "port"),
    OPT_INT("max-frame", "CHAT_MAX_FRAME", 256, 1048576, "8192", max_frame, "client frame bytes"),
    OPT_INT("max-text", "CHAT_MAX_TEXT", 1, 100000, "2000", max_text, "text code points"),
    OPT_INT("outq-max-bytes",
            "CHAT_OUTQ_MAX_BYTES",
            4096,
            1073741824,
            "16777216",
            outq_max_bytes,
            "output bytes per connection before it is closed as a slow consumer"),
    OPT_STR("log-level", "CHAT_LOG_LEVEL", "info", log_level, "debug, info, warn or error"),
};

struct bl_room;

struct bl_member {
    struct bl_room *room;
    uint32_t pos; /* index in room->members */
};

struct bl_conn {
    int fd;
    bool ws;      /* upgraded */
    bool closing; /* close after the output is flushed */
    bool dead, dirty, want_out;
    unsigned char *in; /* owns: unparsed bytes */
    size_t in_len, in_cap;
    unsigned char *msg; /* owns: fragmented message */
    size_t msg_len, msg_cap;
    bool in_msg;
    unsigned char *out; /* owns: output not yet written */
    size_t out_len, out_off, out_cap;
    struct bl_member rooms[BL_MAX_ROOMS];
    int nrooms;
    struct bl_conn *next_dirty, *next_dead;
    struct bl_conn *prev, *next; /* every live connection */
};

struct bl_room {
    char name[CHAT_ROOM_MAX + 1];
    struct bl_conn **members; /* owns the array */
    uint32_t n, cap;
    struct bl_room *next; /* hash chain */
};

struct bl {
    struct bl_cfg cfg;
    struct chat_limits lim;
    int lfd, epfd;
    uint64_t seq;
    struct bl_room *buckets[BL_BUCKETS];
    struct chat_buf enc; /* encoding scratch */
    unsigned char *scratch;
    struct bl_conn *dirty, *dead;
    struct bl_conn *all; /* live connections */
    unsigned long long nconns, open, frames, sends, deliveries, slow;
};

static volatile sig_atomic_t bl_stop;

static void on_signal(int sig)
{
    (void)sig;
    bl_stop = 1;
}

/* ---- rooms ---- */

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static struct bl_room *room_get(struct bl *s, const char *name, bool create)
{
    uint32_t b = hash(name) % BL_BUCKETS;
    struct bl_room *r;

    for (r = s->buckets[b]; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    if (!create)
        return NULL;
    r = chat_xcalloc(1, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->next = s->buckets[b];
    s->buckets[b] = r;
    return r;
}

static int member_idx(const struct bl_conn *c, const struct bl_room *r)
{
    for (int i = 0; i < c->nrooms; i++)
        if (c->rooms[i].room == r)
            return i;
    return -1;
}

static bool room_join(struct bl_conn *c, struct bl_room *r)
{
    if (member_idx(c, r) >= 0)
        return true;
    if (c->nrooms == BL_MAX_ROOMS)
        return false;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->members = chat_xrealloc(r->members, r->cap * sizeof(struct bl_conn *));
    }
    c->rooms[c->nrooms].room = r;
    c->rooms[c->nrooms++].pos = r->n;
    r->members[r->n++] = c;
    return true;
}

static void room_leave(struct bl_conn *c, int i)
{
    struct bl_room *r = c->rooms[i].room;
    uint32_t pos = c->rooms[i].pos;
    struct bl_conn *last = r->members[--r->n];

    if (last != c) {
        r->members[pos] = last;
        last->rooms[member_idx(last, r)].pos = pos;
    }
    c->rooms[i] = c->rooms[--c->nrooms];
}

/* ---- output ---- */

static void conn_kill(struct bl *s, struct bl_conn *c);

static void want_out(struct bl *s, struct bl_conn *c, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

    if (c->want_out == on)
        return;
    c->want_out = on;
    (void)epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Queues bytes; over the cap the connection is closed as a slow consumer. */
static void
out_put(struct bl *s, struct bl_conn *c, const void *hdr, size_t hn, const void *p, size_t n)
{
    size_t need;

    if (c->dead)
        return;
    if (c->out_off && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    need = c->out_len + hn + n;
    if (need - c->out_off > (size_t)s->cfg.outq_max_bytes) {
        s->slow++;
        conn_kill(s, c);
        return;
    }
    if (need > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 1024;
        while (cap < need)
            cap *= 2;
        c->out = chat_xrealloc(c->out, cap);
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, hdr, hn);
    memcpy(c->out + c->out_len + hn, p, n);
    c->out_len += hn + n;
    if (!c->dirty) {
        c->dirty = true;
        c->next_dirty = s->dirty;
        s->dirty = c;
    }
}

static void send_frame(struct bl *s, struct bl_conn *c, int op, const void *p, size_t n)
{
    unsigned char hdr[BENCH_WS_HDR_MAX];
    size_t h = bench_ws_header(hdr, op, true, n, NULL);
    out_put(s, c, hdr, h, p, n);
}

/* Sends the frame encoded in s->enc (reset afterwards). */
static void send_enc(struct bl *s, struct bl_conn *c, int rc)
{
    if (rc == CHAT_OK)
        send_frame(s, c, BENCH_WS_TEXT, chat_buf_data(&s->enc), s->enc.len);
    chat_buf_reset(&s->enc);
}

static void flush(struct bl *s, struct bl_conn *c)
{
    while (!c->dead && c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want_out(s, c, true);
            return;
        } else {
            conn_kill(s, c);
            return;
        }
    }
    if (c->dead)
        return;
    c->out_off = c->out_len = 0;
    want_out(s, c, false);
    if (c->closing)
        conn_kill(s, c);
}

static void conn_kill(struct bl *s, struct bl_conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    while (c->nrooms)
        room_leave(c, c->nrooms - 1);
    close(c->fd);
    c->fd = -1;
    s->open--;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next_dead = s->dead;
    s->dead = c;
}

/* ---- the protocol ---- */

static void on_send(struct bl *s, struct bl_conn *c, const struct chat_cframe *f)
{
    struct bl_room *r = room_get(s, f->room, false);
    struct chat_event_msg m;
    int64_t ts = chat_now_ms();
    uint64_t seq;
    int rc;

    if (!r || member_idx(c, r) < 0) {
        send_enc(s, c,
                 chat_enc_error(&s->enc, CHAT_ERR_not_joined, NULL, f->client_msg_id, f->ref, -1));
        return;
    }
    seq = ++s->seq;
    s->sends++;
    send_enc(s, c, chat_enc_ack(&s->enc, f->client_msg_id, seq, (int64_t)seq, ts, f->ref));
    memset(&m, 0, sizeof(m));
    m.room = f->room;
    m.user = "bench";
    m.nick = "bench";
    m.text = f->text;
    m.client_msg_id = f->client_msg_id;
    m.id = seq;
    m.ts = ts;
    m.seq = (int64_t)seq;
    rc = chat_enc_message(&s->enc, &m); /* once, then the same bytes to every member */
    if (rc == CHAT_OK) {
        unsigned char hdr[BENCH_WS_HDR_MAX];
        size_t h = bench_ws_header(hdr, BENCH_WS_TEXT, true, s->enc.len, NULL);
        for (uint32_t i = 0; i < r->n; i++)
            out_put(s, r->members[i], hdr, h, chat_buf_data(&s->enc), s->enc.len);
        s->deliveries += r->n;
    }
    chat_buf_reset(&s->enc);
}

static void on_text(struct bl *s, struct bl_conn *c, const unsigned char *p, size_t n)
{
    struct chat_cframe f;
    enum chat_errcode err;
    struct bl_room *r;
    int i;

    s->frames++;
    if (chat_cframe_decode((const char *)p, n, (size_t)s->cfg.max_text, &f, &err) != CHAT_OK) {
        send_enc(s, c, chat_enc_error(&s->enc, err, NULL, f.client_msg_id, f.ref, -1));
        goto out;
    }
    switch (f.type) {
    case CHAT_F_auth:
        send_enc(s, c, chat_enc_authed(&s->enc, "bench", chat_now_ms() / 1000 + 3600, f.ref));
        break;
    case CHAT_F_join:
        r = room_get(s, f.room, true);
        if (room_join(c, r))
            send_enc(s, c, chat_enc_joined(&s->enc, f.room, f.ref));
        else
            send_enc(s, c, chat_enc_error(&s->enc, CHAT_ERR_too_many_rooms, NULL, NULL, f.ref, -1));
        break;
    case CHAT_F_leave:
        r = room_get(s, f.room, false);
        i = r ? member_idx(c, r) : -1;
        if (i < 0) {
            send_enc(s, c, chat_enc_error(&s->enc, CHAT_ERR_not_joined, NULL, NULL, f.ref, -1));
            break;
        }
        room_leave(c, i);
        send_enc(s, c, chat_enc_left(&s->enc, f.room, f.ref));
        break;
    case CHAT_F_ping:
        send_enc(s, c, chat_enc_pong(&s->enc, f.ref, chat_now_ms()));
        break;
    case CHAT_F_send:
        on_send(s, c, &f);
        break;
    default:
        send_enc(s, c, chat_enc_error(&s->enc, CHAT_ERR_unknown_type, NULL, NULL, f.ref, -1));
        break;
    }
out:
    chat_cframe_fini(&f);
}

static void on_ws_frame(struct bl *s, struct bl_conn *c, const struct bench_ws_frame *f)
{
    switch (f->opcode) {
    case BENCH_WS_TEXT:
    case BENCH_WS_BINARY:
        if (c->in_msg)
            goto bad;
        if (f->fin) {
            if (f->opcode == BENCH_WS_TEXT)
                on_text(s, c, f->payload, f->len);
            else
                send_enc(s, c, chat_enc_error(&s->enc, CHAT_ERR_bad_frame, NULL, NULL, NULL, -1));
            return;
        }
        c->in_msg = true;
        c->msg_len = 0;
        /* fall through */
    case BENCH_WS_CONT:
        if (!c->in_msg || c->msg_len + f->len > (size_t)s->cfg.max_frame)
            goto bad;
        if (c->msg_len + f->len > c->msg_cap) {
            c->msg_cap = c->msg_len + f->len + 1024;
            c->msg = chat_xrealloc(c->msg, c->msg_cap);
        }
        memcpy(c->msg + c->msg_len, f->payload, f->len);
        c->msg_len += f->len;
        if (f->fin) {
            c->in_msg = false;
            on_text(s, c, c->msg, c->msg_len);
        }
        return;
    case BENCH_WS_PING:
        send_frame(s, c, BENCH_WS_PONG, f->payload, f->len);
        return;
    case BENCH_WS_CLOSE:
        send_frame(s, c, BENCH_WS_CLOSE, f->payload, f->len >= 2 ? 2 : 0);
        c->closing = true;
        return;
    default:
        return;
    }
bad:
    c->closing = true;
    send_frame(s, c, BENCH_WS_CLOSE, "\x03\xea", 2); /* 1002 protocol error */
}

/* The upgrade request (or a health check). Returns bytes consumed, 0 for more. */
static size_t on_http(struct bl *s, struct bl_conn *c, const unsigned char *p, size_t n)
{
    static const char name[] = "sec-websocket-key:";
    const unsigned char *e = memmem(p, n, "\r\n\r\n", 4);
    const char *line = (const char *)p, *end;
    char key[64] = "", accept[29], resp[256];
    int len;

    if (!e) {
        if (n > BL_HDR_MAX)
            conn_kill(s, c);
        return 0;
    }
    end = (const char *)e;
    if (n >= 12 && (memcmp(p, "GET /healthz", 12) == 0 || memcmp(p, "GET /readyz", 11) == 0)) {
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                 "Content-Length: 3\r\nConnection: close\r\n\r\nok\n";
        out_put(s, c, ok, sizeof(ok) - 1, "", 0);
        c->closing = true;
        return n;
    }
    while (line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > sizeof(name) - 1 &&
            strncasecmp(line, name, sizeof(name) - 1) == 0) {
            const char *v = line + sizeof(name) - 1;
            size_t k;
            while (v < eol && *v == ' ')
                v++;
            for (k = 0; v + k < eol && v[k] != '\r' && v[k] != ' ' && k < sizeof(key) - 1; k++)
                key[k] = v[k];
            key[k] = '\0';
        }
        line = eol + 1;
    }
    if (!key[0]) {
        static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                                 "Connection: close\r\n\r\n";
        out_put(s, c, nf, sizeof(nf) - 1, "", 0);
        c->closing = true;
        return n;
    }
    bench_ws_accept(key, accept);
    len = snprintf(resp, sizeof(resp),
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   accept);
    out_put(s, c, resp, (size_t)len, "", 0);
    c->ws = true;
    send_enc(s, c, chat_enc_hello(&s->enc, "baseline", "bench", &s->lim));
    return (size_t)(e + 4 - p);
}

static size_t process(struct bl *s, struct bl_conn *c, unsigned char *buf, size_t n)
{
    size_t off = 0;

    if (!c->ws) {
        off = on_http(s, c, buf, n);
        if (!c->ws || c->dead)
            return c->dead || c->closing ? n : off;
    }
    while (off < n && !c->dead && !c->closing) {
        struct bench_ws_frame f;
        long k = bench_ws_parse(buf + off, n - off, (size_t)s->cfg.max_frame, &f);
        if (k == 0)
            break;
        if (k < 0 || !f.masked) {
            conn_kill(s, c);
            return n;
        }
        off += (size_t)k;
        on_ws_frame(s, c, &f);
    }
    return c->dead || c->closing ? n : off;
}

static void on_readable(struct bl *s, struct bl_conn *c)
{
    unsigned char *buf;
    size_t cap, used;
    ssize_t r;
    bool scratch = c->in_len == 0;

    if (scratch) {
        buf = s->scratch;
        cap = BL_SCRATCH;
    } else {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap * 2 + 16384;
            c->in = chat_xrealloc(c->in, c->in_cap);
        }
        buf = c->in + c->in_len;
        cap = c->in_cap - c->in_len;
    }
    r = recv(c->fd, buf, cap, 0);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_kill(s, c);
        return;
    }
    if (r < 0)
        return;
    if (scratch) {
        used = process(s, c, buf, (size_t)r);
        if (!c->dead && used < (size_t)r) {
            if (c->in_cap < (size_t)r - used) {
                c->in_cap = (size_t)r - used + 16384;
                c->in = chat_xrealloc(c->in, c->in_cap);
            }
            memcpy(c->in, buf + used, (size_t)r - used);
            c->in_len = (size_t)r - used;
        }
        return;
    }
    c->in_len += (size_t)r;
    used = process(s, c, c->in, c->in_len);
    if (c->dead)
        return;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
}

static void on_accept(struct bl *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
        struct epoll_event ev = {.events = EPOLLIN};
        struct bl_conn *c;

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                chat_log(CHAT_LOG_WARN, "accept: %s", strerror(errno));
            return;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = chat_xcalloc(1, sizeof(*c));
        c->fd = fd;
        ev.data.ptr = c;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            chat_free(c);
            continue;
        }
        s->nconns++;
        s->open++;
        c->next = s->all;
        if (s->all)
            s->all->prev = c;
        s->all = c;
    }
}

static void conn_free(struct bl_conn *c)
{
    chat_free(c->in);
    chat_free(c->msg);
    chat_free(c->out);
    chat_free(c);
}

static void after_batch(struct bl *s)
{
    while (s->dirty) {
        struct bl_conn *c = s->dirty;
        s->dirty = c->next_dirty;
        c->dirty = false;
        flush(s, c);
    }
    while (s->dead) {
        struct bl_conn *c = s->dead;
        s->dead = c->next_dead;
        conn_free(c);
    }
}

static int listen_on(struct bl *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->cfg.port)};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int one = 1;

    if (inet_pton(AF_INET, s->cfg.listen_addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "chat-bench-baseline: --listen-addr: not an IPv4 address\n");
        return CHAT_EINVAL;
    }
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->lfd < 0 || s->epfd < 0 ||
        setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s->lfd, 4096) != 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev) != 0) {
        chat_log(CHAT_LOG_ERROR, "listen %s:%d: %s", s->cfg.listen_addr, s->cfg.port,
                 strerror(errno));
        return CHAT_EIO;
    }
    return CHAT_OK;
}

static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void serve(struct bl *s)
{
    struct epoll_event ev[256];

    while (!bl_stop) {
        int n = epoll_wait(s->epfd, ev, 256, 500);
        for (int i = 0; i < n; i++) {
            struct bl_conn *c = ev[i].data.ptr;
            if (!c) {
                on_accept(s);
                continue;
            }
            if (c->dead)
                continue;
            if (ev[i].events & EPOLLOUT)
                flush(s, c);
            if (!c->dead && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                on_readable(s, c);
        }
        after_batch(s);
    }
}

static void teardown(struct bl *s)
{
    while (s->all)
        conn_kill(s, s->all);
    for (uint32_t b = 0; b < BL_BUCKETS; b++) {
        while (s->buckets[b]) {
            struct bl_room *r = s->buckets[b];
            s->buckets[b] = r->next;
            chat_free(r->members);
            chat_free(r);
        }
    }
    after_batch(s);
}

int main(int argc, char **argv)
{
    struct bl s;
    struct sigaction sa;
    int rc, status = 2, lvl;

    memset(&s, 0, sizeof(s));
    s.lfd = s.epfd = -1;
    rc = chat_cfg_load(bl_opts, CHAT_CFG_COUNT(bl_opts), &s.cfg, argc, argv,
                       "chat-bench-baseline: a plain epoll WebSocket broadcast server speaking "
                       "enough of the chat protocol for chat-bench (no Kafka, no auth).");
    if (rc == 1) {
        status = 0;
        goto out;
    }
    if (rc != CHAT_OK)
        goto out;
    lvl = chat_log_level_parse(s.cfg.log_level);
    chat_log_init("chat-bench-baseline", lvl < 0 ? CHAT_LOG_INFO : lvl);
    s.lim = (struct chat_limits){.max_frame = s.cfg.max_frame,
                                 .max_text = s.cfg.max_text,
                                 .max_rooms = BL_MAX_ROOMS,
                                 .rate_per_s = 1000000,
                                 .rate_burst = 1000000};
    chat_buf_init(&s.enc, 0, 0);
    s.scratch = chat_xmalloc(BL_SCRATCH);
    raise_nofile();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    status = 1;
    if (listen_on(&s) != CHAT_OK)
        goto out;
    chat_log(CHAT_LOG_INFO, "listening on http://%s:%d", s.cfg.listen_addr, s.cfg.port);
    serve(&s);
    chat_log(CHAT_LOG_INFO,
             "stopping: connections=%llu frames=%llu sends=%llu deliveries=%llu slow_closed=%llu",
             s.nconns, s.frames, s.sends, s.deliveries, s.slow);
    status = 0;
out:
    teardown(&s);
    if (s.lfd >= 0)
        close(s.lfd);
    if (s.epfd >= 0)
        close(s.epfd);
    chat_buf_fini(&s.enc);
    chat_free(s.scratch);
    chat_cfg_free(bl_opts, CHAT_CFG_COUNT(bl_opts), &s.cfg);
    return status;
}
