/* bench/scenario_fanout.h - the fanout scenario's plan and callbacks, shared with the
 * reconnect scenario (scenario_reconnect.c), which runs the same load and wraps the callbacks.
 * Thread-safety: as bench.h: struct fo is planned by the main thread (prepare), a client's
 * fields are then written by its worker only, and read by the main thread after the workers
 * stopped; counters are the workers' atomics. */
#ifndef BENCH_SCENARIO_FANOUT_H
#define BENCH_SCENARIO_FANOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench.h"
#include "bench_track.h"

#define RING 1024 /* send times of unanswered sends, by send number */

struct fo_room {
    char name[48];
    uint32_t first, size;    /* client ids first .. first + size - 1 */
    struct bench_seqs acked; /* filled after the run */
};

struct fo_sender {
    struct bench_tpl tpl;
    uint32_t n;         /* next send number */
    uint32_t inflight;  /* unanswered sends */
    int64_t ring[RING]; /* send time (ns) of send n at n % RING; 0 when answered */
    struct bench_seqs acked;
};

/* One logical client; its tracker outlives its connections (reconnect). */
struct fo_client {
    uint32_t room;
    bool joined; /* the first join was answered */
    int64_t t_join_ns;
    struct bench_conn *conn; /* borrowed while open */
    struct fo_sender *snd;   /* owns; NULL unless this client sends */
    struct bench_track track;
};

struct fo_worker {
    struct bench_opener opener;
    struct bench_pacer send;
    uint32_t *senders; /* owns: ids of this worker's senders */
    uint32_t nsenders, rr;
    int64_t win_start, win_end; /* cached from b each tick */
    char *text;                 /* owns: text of the message being sent */
};

struct fo {
    struct fo_room *rooms; /* owns */
    uint32_t nrooms;
    struct fo_client *clients; /* owns */
    uint32_t nclients, nsenders;
    struct fo_worker *workers; /* owns */
    atomic_ullong join_failed;
    unsigned long long lost;
    void *ext; /* the wrapping scenario's state (owned and freed by it); NULL in fanout */
};

/* The fanout callbacks (struct bench_scenario); the reconnect scenario calls them from its own. */
int bench_fo_prepare(struct bench *b);
/* Opens and joins every client, runs the load, drains, counts loss. Drained means: every send
 * answered, every expected delivery received, and every cut connection rejoined or failed.
 * Returns an enum bench_exit (INCORRECT on loss, dup, reorder, gaps, drops, send errors). */
int bench_fo_run(struct bench *b);
void bench_fo_worker_init(struct bench_worker *w);
int64_t bench_fo_tick(struct bench_worker *w, int64_t now_ns);
void bench_fo_on_hello(struct bench_conn *c, const struct bench_frame *f, int64_t now_ns);
void bench_fo_on_frame(struct bench_conn *c, const struct bench_frame *f, int64_t now_ns);
void bench_fo_on_closed(struct bench_conn *c, int64_t now_ns);
void bench_fo_report(struct bench *b, struct json_t *res);
void bench_fo_fini(struct bench *b);

#endif
