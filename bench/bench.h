/* bench/bench.h - chat-bench: the types shared by the engine, the scenarios and the report.
 *
 * Layout:
 *   main.c            options table, scenario table, RLIMIT_NOFILE, exit status
 *   bench_engine.c    epoll worker threads: sockets, source addresses, WebSocket handshake and
 *                     framing, connection life cycle, timeouts, shutdown
 *   bench_ws.c        RFC 6455 framing (shared with chat-bench-baseline)
 *   bench_proto.c     client frames (jansson templates patched in place) and cheap scanning of
 *                     server frames
 *   bench_track.c     correctness by seq (per receiver: lost, duplicated, reordered) and by
 *                     the prev chain (gaps)
 *   bench_run.c       helpers: waiting with a deadline, progress, timeline, pacing, opening,
 *                     clocks and totals
 *   report.c          result JSON, the readable table, the gnuplot PNG
 *   scenario_*.c      one file per scenario, listed in scenarios[] (main.c); reconnect reuses
 *                     fanout's plan and callbacks (scenario_fanout.h)
 *
 * Threading: the main thread runs the scenario's run() (phases, progress, the report). Each
 * worker thread owns one epoll loop and the connections it opened; scenario callbacks on a
 * connection run on that connection's worker. Workers and the main thread share only atomics:
 * the phase, the measurement window, the per-worker counters and histograms. Scenario state
 * that is per logical client is written by one worker only and read by the main thread after
 * the workers have stopped (bench_engine_stop() joins them). */
#ifndef BENCH_H
#define BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <netinet/in.h>
#include <pthread.h>

#include "chat/config.h"
#include "chat/jwt.h"
#include "chat/metrics.h"

#include "bench_proto.h"

struct json_t;

/* Exit statuses of chat-bench. */
enum bench_exit {
    BENCH_EXIT_OK = 0,        /* completed, every correctness counter zero */
    BENCH_EXIT_INCORRECT = 1, /* lost / duplicated / reordered messages, failed cycles, drops */
    BENCH_EXIT_USAGE = 2,     /* bad options */
    BENCH_EXIT_NOCONN = 3,    /* could not connect, or ran out of time */
};

/* ---- options (one table in main.c; --help lists them) ---- */
struct bench_cfg {
    char *url;        /* comma-separated http://host:port[/path] targets */
    int conns;        /* fanout/idle: connections; churn: cycles in flight at most */
    int rooms;        /* rooms when room_mix is "uniform" */
    char *room_mix;   /* "uniform" or "SIZE:COUNT[,SIZE:COUNT...]" */
    int senders;      /* fanout: sending connections */
    int rate;         /* fanout: messages/s in total; churn: cycles/s */
    int size;         /* message text bytes */
    int duration;     /* seconds of measured load (idle: hold time) */
    int warmup;       /* seconds of load before measuring (idle: settle time) */
    int drain;        /* seconds to wait for outstanding acks and deliveries */
    int ramp;         /* connects per second while opening (0: as fast as allowed) */
    int opening;      /* handshakes in flight per worker at most */
    int max_inflight; /* unanswered sends per sender at most */
    char *jwt_keys;   /* secret */
    char *jwt_issuer;
    bool json;       /* JSON on stdout (the table goes to stderr) */
    char *plot;      /* PNG path or "" */
    char *pids;      /* idle: comma-separated gateway pids */
    char *src_addrs; /* "auto", "" or ranges/lists of IPv4 source addresses */
    int timeout;     /* overall bound in seconds (0: computed) */
    int threads;     /* worker threads */
    char *log_level;
    bool quiet;              /* no progress lines */
    int window;              /* seconds per latency window (0: none) */
    int start_at;            /* fanout: wall-clock second the load starts (0: once joined) */
    int half_open;           /* silent TCP connections held to the first target during the run */
    int reconnect_every_ms;  /* reconnect: period of the cuts (0: none) */
    char *reconnect_share;   /* reconnect: share of the receivers cut each period, "0.1" */
    int reconnect_all_at_ms; /* reconnect: cut every receiver once at this time of the run */
};

/* ---- counters: per worker, atomics (written by the worker, read by main) ---- */
#define BENCH_COUNTERS(X)                                                   \
    X(conn_started, "connections started")                                  \
    X(conn_open, "connections that got hello")                              \
    X(conn_failed, "connections that failed before hello")                  \
    X(conn_dropped, "open connections closed by the server or lost")        \
    X(conn_closed, "open connections closed by chat-bench")                 \
    X(conn_cut, "of those: cut abruptly (reconnect)")                       \
    X(rejoin_ok, "joins with since answered recovered: true")               \
    X(rejoin_miss, "joins with since answered recovered: false")            \
    X(rejoin_failed, "reconnects that ended before joined")                 \
    X(replayed, "messages replayed (the joined frames' replayed)")          \
    X(joined, "joins answered with joined")                                 \
    X(sent, "sends written")                                                \
    X(acked, "sends acked")                                                 \
    X(refused, "sends refused with rate_limited or overloaded")             \
    X(send_errors, "sends answered with another error")                     \
    X(throttled, "sends skipped: too many unanswered")                      \
    X(expected, "deliveries expected (acked x room members)")               \
    X(delivered, "message frames received")                                 \
    X(delivered_new, "message frames received for the first time")          \
    X(deliv_window, "deliveries of messages sent in the measured window")   \
    X(acked_window, "acks of messages sent in the measured window")         \
    X(dup, "duplicated deliveries")                                         \
    X(reorder, "deliveries below the last seq")                             \
    X(gaps, "deliveries whose prev is not the last seq held (chain break)") \
    X(foreign, "message frames not sent by this run")                       \
    X(cycles, "churn cycles completed")                                     \
    X(cycles_failed, "churn cycles failed")                                 \
    X(cycles_skipped, "churn cycles not started: too many in flight")       \
    X(proto_errors, "unexpected frames or error replies")                   \
    X(bytes_in, "bytes received")

enum bench_counter {
#define X(name, help) BENCH_C_##name,
    BENCH_COUNTERS(X)
#undef X
        BENCH_C__COUNT
};

/* Latency histograms (microseconds), per worker. */
#define BENCH_HISTS(X)                                                  \
    X(latency, "send to receipt, messages sent in the measured window") \
    X(ack, "send to ack, measured window")                              \
    X(connect, "connect to hello")                                      \
    X(join, "join round trip")                                          \
    X(leave, "leave round trip")                                        \
    X(close, "close handshake")                                         \
    X(cycle, "whole churn cycle")                                       \
    X(recovery, "reconnect: cut to joined (recovered or not)")

enum bench_hist_id {
#define X(name, help) BENCH_H_##name,
    BENCH_HISTS(X)
#undef X
        BENCH_H__COUNT
};

/* Close codes of dropped connections: 1000..1015 and 4000..4015, and "other". */
#define BENCH_CLOSE_SLOTS 33

enum bench_phase {
    BENCH_PH_INIT = 0,
    BENCH_PH_OPEN,  /* opening connections */
    BENCH_PH_RUN,   /* load (warmup + measured window) */
    BENCH_PH_DRAIN, /* load stopped; waiting for answers and deliveries */
    BENCH_PH_DONE,  /* closing every connection; workers exit */
};

struct bench_target {
    char url[160];
    char host[80]; /* Host header: host:port */
    char path[64]; /* request path, default /ws */
    struct sockaddr_in addr;
    bool loopback;
};

enum bench_conn_state {
    BENCH_CS_FREE = 0,
    BENCH_CS_CONNECTING, /* non-blocking connect in progress */
    BENCH_CS_HANDSHAKE,  /* upgrade request written, waiting for 101 */
    BENCH_CS_HELLO,      /* upgraded, waiting for hello */
    BENCH_CS_OPEN,       /* hello received: scenario frames flow */
    BENCH_CS_CLOSING,    /* close frame sent or received: waiting for EOF */
    BENCH_CS_DEAD,       /* fd closed; slot released at the end of the loop iteration */
};

/* One WebSocket client connection. Owned by its worker (slot in w->conns). */
struct bench_conn {
    int fd;
    enum bench_conn_state state;
    uint64_t id; /* logical client number: user name, room, target */
    struct bench_worker *w;
    void *user;        /* scenario state (borrowed) */
    unsigned char *in; /* owns: unparsed received bytes */
    size_t in_len, in_cap;
    unsigned char *msg; /* owns: fragmented message being reassembled */
    size_t msg_len, msg_cap;
    bool in_msg;        /* a fragmented text message is in progress */
    unsigned char *out; /* owns: bytes waiting for the socket */
    size_t out_len, out_off, out_cap;
    char key[25];        /* Sec-WebSocket-Key */
    int64_t t_start_ns;  /* bench_open() */
    int64_t t_state_ns;  /* entered the current state (timeouts) */
    int64_t t_close_ns;  /* close frame sent */
    int close_code;      /* received close code, 1006 without one, 0 while open */
    bool close_sent;     /* we sent a close frame */
    bool we_closed;      /* the close was ours (not a drop) */
    bool want_out;       /* EPOLLOUT registered */
    bool dirty;          /* on the worker's flush list */
    bool opened;         /* hello was received */
    bool cut;            /* ended by bench_cut() */
    int target;          /* index in b->targets */
    uint32_t next_free;  /* free or dead list link (slot index + 1, 0 = end) */
    uint32_t next_dirty; /* flush list link (slot index + 1, 0 = end) */
};

/* Paces events at rate per second from t0: bench_pacer_due() says how many are due. */
struct bench_pacer {
    int64_t t0_ns;
    double rate; /* events per second; <= 0: unlimited */
    uint64_t done;
};

struct bench_worker {
    struct bench *b; /* borrowed */
    int idx;
    pthread_t thread;
    int epfd, wakefd;
    struct bench_conn *conns; /* owns: cap slots */
    uint32_t cap, live;
    uint32_t free_head, dirty_head, dead_head; /* slot index + 1 */
    uint32_t opening;                          /* connections before hello */
    unsigned char *scratch;                    /* owns: receive buffer */
    uint64_t rng;
    int phase_seen;
    int64_t last_sweep_ns, done_deadline_ns;
    int logged; /* failure lines logged (rate limit) */
    void *sc;   /* scenario per-worker state (owns via scenario) */
    atomic_ullong ctr[BENCH_C__COUNT];
    atomic_ullong close_codes[BENCH_CLOSE_SLOTS];
    atomic_ullong err_codes[CHAT_ERR__COUNT + 1];
    struct chat_hist *hist; /* owns: BENCH_H__COUNT histograms */
};

/* One sample of the timeline (one per second while running). */
struct bench_sample {
    double t;             /* seconds since start */
    int phase;            /* enum bench_phase */
    double open;          /* connections open */
    double rate[4];       /* per second: delivered, acked, sent, cycles */
    double p50, p99, max; /* ms, deliveries of this second */
};

/* One --window: the deliveries measured in it (a soak's p99 per minute, say). */
struct bench_window {
    double t_end;               /* seconds since start at its end */
    unsigned long long count;   /* deliveries measured */
    double p50, p99, p999, max; /* ms */
    double acked_per_s;         /* send acks per second */
};

/* Scenario interface: one file per scenario, listed in scenarios[] (main.c).
 * Callbacks marked "worker" run on the connection's worker thread. */
struct bench_scenario {
    const char *name;
    const char *summary;
    /* main: checks options and plans the run (b->sc); CHAT_OK or CHAT_EINVAL (printed). */
    int (*prepare)(struct bench *b);
    /* main: the whole run after the workers started; returns an enum bench_exit. */
    int (*run)(struct bench *b);
    /* worker: once before the loop (e.g. opening plan); may be NULL. */
    void (*worker_init)(struct bench_worker *w);
    /* worker: every loop iteration; returns the absolute time (ns) it wants to run again. */
    int64_t (*tick)(struct bench_worker *w, int64_t now_ns);
    /* worker: hello received (c->state == OPEN). */
    void (*on_hello)(struct bench_conn *c, const struct bench_frame *f, int64_t now_ns);
    /* worker: any later text frame. */
    void (*on_frame)(struct bench_conn *c, const struct bench_frame *f, int64_t now_ns);
    /* worker: the connection ended (c->opened, c->we_closed, c->close_code tell how). Called
     * exactly once for every connection bench_open() started. */
    void (*on_closed)(struct bench_conn *c, int64_t now_ns);
    /* main, after the workers stopped: scenario results into the result object. */
    void (*report)(struct bench *b, struct json_t *res);
    /* main: frees b->sc and the worker states; NULL-safe on a partial prepare. */
    void (*fini)(struct bench *b);
};

struct bench {
    struct bench_cfg cfg;
    const struct bench_scenario *sc_ops;
    void *sc; /* scenario state (owned by the scenario; freed in fini) */
    struct chat_jwt_keyring kr;
    char run_id[8];               /* random, in user and room names: runs never mix */
    struct bench_target *targets; /* owns */
    int ntargets;
    struct in_addr *srcs; /* owns: source addresses to bind, none when nsrcs == 0 */
    int nsrcs;
    struct bench_worker *workers; /* owns */
    int nworkers;
    uint32_t conns_per_worker; /* slots per worker */
    atomic_int phase;
    atomic_llong win_start_ns, win_end_ns; /* measured window: sends in it count */
    int64_t t0_ns;                         /* start of the run */
    int64_t deadline_ns;                   /* overall time bound */
    int64_t open_done_ns;                  /* every connection ready (fanout, idle) */
    int64_t run_start_ns, run_end_ns;
    double window_cpu_s; /* this process's CPU (user + system) in the measured window (fanout) */
    bool timed_out, interrupted;
    /* progress and timeline (main thread) */
    struct bench_sample *samples; /* owns */
    size_t nsamples, samples_cap;
    int64_t last_progress_ns;
    unsigned long long last_ctr[BENCH_C__COUNT];
    struct chat_hist *hist_prev;  /* owns: merged latency at the previous sample */
    struct chat_hist *hist_win;   /* owns: merged latency at the start of this --window */
    int64_t win_next_ns;          /* end of this --window */
    int64_t win_t0_ns;            /* the sample that opened it */
    unsigned long long win_acked; /* acks at that sample */
    struct bench_window *windows; /* owns: closed windows */
    size_t nwindows, windows_cap;
    const char *open_label;        /* what "ready" means in progress lines */
    enum bench_counter ready_ctr;  /* counter shown as ready in progress lines */
    unsigned long long ready_goal; /* its goal (0: not shown) */
    time_t started_wall;
    struct half_open *half_open; /* owns; NULL without --half-open */
};

extern const struct bench_scenario bench_fanout, bench_churn, bench_idle, bench_reconnect;

/* The option table (main.c): the report lists the parameters from it. */
extern const struct chat_cfg_opt bench_opts[];
extern const size_t bench_nopts;

/* ---- --half-open (half_open.c): silent connections held next to the scenario ---- */
int bench_half_open_start(struct bench *b);
void bench_half_open_wait(struct bench *b, int timeout_ms);
void bench_half_open_stop(struct bench *b);
void bench_half_open_report(struct bench *b, struct json_t *res);
void bench_half_open_free(struct bench *b);

/* ---- engine (bench_engine.c) ---- */
/* Creates the workers and starts their threads. CHAT_OK or CHAT_EIO (logged). */
int bench_engine_start(struct bench *b);
/* Sets the phase and wakes every worker. Any thread. */
void bench_set_phase(struct bench *b, enum bench_phase ph);
/* Phase DONE, then waits for every worker to close its connections (bounded) and exit. */
void bench_engine_stop(struct bench *b);
/* Frees the workers (after bench_engine_stop, or when they never started). */
void bench_engine_free(struct bench *b);
/* worker: starts a connection for logical client id. Returns NULL when every slot is busy
 * (nothing started). Otherwise the connection's on_closed will be called exactly once; when the
 * socket could not even be created that already happened before the return (state DEAD). */
struct bench_conn *bench_open(struct bench_worker *w, uint64_t id, void *user, int64_t now_ns);
/* worker: as bench_open, to b->targets[target] (0 <= target < b->ntargets) instead of the
 * client's own target ((id / threads) % targets). */
struct bench_conn *
bench_open_to(struct bench_worker *w, uint64_t id, int target, void *user, int64_t now_ns);
/* worker: queues one text frame (masked). false when the output buffer is over its cap. */
bool bench_send_text(struct bench_conn *c, const void *p, size_t n);
/* worker: starts the close handshake (code 1000): the connection ends at the server's EOF. */
void bench_close(struct bench_conn *c, int64_t now_ns);
/* worker: ends the connection at once without a close frame, with a TCP reset (SO_LINGER 0):
 * a client that vanishes. Counted as closed and cut; on_closed runs before the return. Not for
 * use inside that connection's own frame callbacks (the slot is released after the tick). */
void bench_cut(struct bench_conn *c, int64_t now_ns);
/* worker: bytes queued and not yet written. */
static inline size_t bench_conn_pending(const struct bench_conn *c)
{
    return c->out_len - c->out_off;
}
/* Counter and histogram helpers (worker). */
static inline void bench_count(struct bench_worker *w, enum bench_counter k, unsigned long long n)
{
    atomic_fetch_add_explicit(&w->ctr[k], n, memory_order_relaxed);
}
/* Counts an error frame by its code. */
void bench_count_error(struct bench_worker *w, const struct bench_frame *f);
/* Sum of counter k over all workers. Any thread. */
unsigned long long bench_total(const struct bench *b, enum bench_counter k);
/* Merges histogram h of every worker into out (zeroed first). */
void bench_hist_total(const struct bench *b, enum bench_hist_id h, struct chat_hist *out);
/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC: system-wide). */
int64_t bench_now_ns(void);
/* Per-worker random numbers (xorshift64*). */
uint64_t bench_rand(struct bench_worker *w);

/* ---- main-thread helpers (bench_run.c) ---- */
/* Waits until done(b) is true (returns true), until the deadline or the overall time bound
 * (returns false; b->timed_out set for the latter) or a signal (b->interrupted). Prints a
 * progress line and records a timeline sample every second. done may be NULL (just wait). */
bool bench_wait(struct bench *b, int64_t until_ns, bool (*done)(struct bench *b));
/* Records the final sample; call once after the run. */
void bench_progress_final(struct bench *b);
/* Events due at now (UINT64_MAX when the rate is unlimited); the caller adds what it did to
 * p->done. t0_ns 0 starts the pacer at the first call. */
uint64_t bench_pacer_due(struct bench_pacer *p, int64_t now_ns);
/* Absolute time the next event is due (INT64_MAX when unlimited or no rate). */
int64_t bench_pacer_next(const struct bench_pacer *p);
/* Reads VmRSS of pid in KiB (pid 0: this process); -1 when it cannot be read. */
long bench_rss_kb(long pid);

/* Opens the connections of one worker: ids idx, idx + nworkers, ... below end, paced at
 * --ramp (shared by the workers) with at most --opening handshakes in flight. Worker only. */
struct bench_opener {
    uint64_t next, end, step;
    struct bench_pacer pacer;
};
void bench_opener_init(struct bench_opener *o, struct bench_worker *w, uint64_t end);
/* Opens what is due; user(w, id) is the scenario pointer for client id. Returns the time it
 * wants to run again (INT64_MAX when everything was opened). */
int64_t bench_opener_tick(struct bench_opener *o,
                          struct bench_worker *w,
                          int64_t now_ns,
                          void *(*user)(struct bench_worker *w, uint64_t id));
/* Number of connections currently open over all workers. */
unsigned long long bench_open_now(const struct bench *b);

extern volatile int bench_stop_signal; /* set by SIGINT/SIGTERM */

/* ---- report (report.c) ---- */
/* Builds the generic result object; the scenario adds its part through its report hook.
 * Returns a new object (json_decref). */
struct json_t *bench_report_build(struct bench *b, int exit_status);
/* Human-readable table. */
void bench_report_table(FILE *out, struct json_t *res);
/* gnuplot PNG of the latency distribution and timeline; never fails the run (logs why not). */
void bench_report_plot(struct bench *b, const char *png);
/* Adds {count,p50,p90,p99,p999,max,mean} in ms of h to obj under key. */
void bench_report_hist(struct json_t *obj, const char *key, const struct chat_hist *h);

#endif
