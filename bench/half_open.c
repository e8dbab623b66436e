/* half_open.c - --half-open=N: N TCP connections to the first target that never send a byte,
 * held by one thread for the whole run next to the scenario's traffic. When the server closes
 * one (its header deadline), it is opened again at once, so the pressure stays at N for the
 * whole run, as an attacker would keep it. The report says how many were held on average and
 * how often the server closed them. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "chat/mem.h"

#include "bench.h"

struct half_open {
    pthread_t thread;
    int ep;
    atomic_bool stop;
    struct sockaddr_in addr;
    int n;
    atomic_llong opened, closed_by_server, failed, held_samples, held_sum;
    long held;
    int *fds; /* owns: n slots, -1 when free */
};

static void open_one(struct half_open *ho, int slot)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP};

    if (fd < 0) {
        atomic_fetch_add(&ho->failed, 1);
        return;
    }
    if (connect(fd, (struct sockaddr *)&ho->addr, sizeof(ho->addr)) != 0 && errno != EINPROGRESS) {
        atomic_fetch_add(&ho->failed, 1);
        close(fd);
        return;
    }
    ev.data.u32 = (uint32_t)slot;
    if (epoll_ctl(ho->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        atomic_fetch_add(&ho->failed, 1);
        close(fd);
        return;
    }
    ho->fds[slot] = fd;
    ho->held++;
    atomic_fetch_add(&ho->opened, 1);
}

static void *run(void *arg)
{
    struct half_open *ho = arg;
    struct epoll_event evs[256];

    for (int i = 0; i < ho->n; i++)
        open_one(ho, i);
    while (!atomic_load(&ho->stop)) {
        int k = epoll_wait(ho->ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            int slot = (int)evs[i].data.u32, fd = ho->fds[slot];
            char c;
            /* anything readable is the server closing (or refusing) it: reopen */
            if (recv(fd, &c, 1, MSG_DONTWAIT) > 0)
                continue;
            epoll_ctl(ho->ep, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
            ho->fds[slot] = -1;
            ho->held--;
            atomic_fetch_add(&ho->closed_by_server, 1);
            open_one(ho, slot);
        }
        /* connect failures: try again, at most 100 per 100 ms */
        for (int i = 0, tries = 0; i < ho->n && ho->held < ho->n && tries < 100; i++)
            if (ho->fds[i] < 0) {
                open_one(ho, i);
                tries++;
            }
        atomic_fetch_add(&ho->held_samples, 1);
        atomic_fetch_add(&ho->held_sum, ho->held);
    }
    return NULL;
}

int bench_half_open_start(struct bench *b)
{
    struct half_open *ho;

    if (b->cfg.half_open <= 0)
        return CHAT_OK;
    ho = chat_xcalloc(1, sizeof(*ho));
    ho->n = b->cfg.half_open;
    ho->fds = chat_xcalloc((size_t)ho->n, sizeof(int));
    for (int i = 0; i < ho->n; i++)
        ho->fds[i] = -1;
    ho->addr = b->targets[0].addr;
    ho->ep = epoll_create1(EPOLL_CLOEXEC);
    if (ho->ep < 0 || pthread_create(&ho->thread, NULL, run, ho) != 0) {
        if (ho->ep >= 0)
            close(ho->ep);
        chat_free(ho->fds);
        chat_free(ho);
        return CHAT_EIO;
    }
    b->half_open = ho;
    return CHAT_OK;
}

/* Waits until n connections are established (or timeout_ms passed): the run then starts with
 * the pressure already there. */
void bench_half_open_wait(struct bench *b, int timeout_ms)
{
    struct half_open *ho = b->half_open;
    int64_t until = bench_now_ns() + (int64_t)timeout_ms * 1000000;

    while (ho && atomic_load(&ho->opened) < (long long)ho->n && bench_now_ns() < until) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
}

void bench_half_open_stop(struct bench *b)
{
    struct half_open *ho = b->half_open;

    if (!ho)
        return;
    atomic_store(&ho->stop, true);
    pthread_join(ho->thread, NULL);
    for (int i = 0; i < ho->n; i++)
        if (ho->fds[i] >= 0)
            close(ho->fds[i]);
    close(ho->ep);
}

void bench_half_open_report(struct bench *b, struct json_t *res)
{
    struct half_open *ho = b->half_open;
    long long samples;

    if (!ho)
        return;
    samples = atomic_load(&ho->held_samples);
    json_object_set_new(
        res, "half_open",
        json_pack("{s:i, s:f, s:I, s:I, s:I}", "target", ho->n, "held_avg",
                  samples ? (double)atomic_load(&ho->held_sum) / (double)samples : 0.0, "opened",
                  (json_int_t)atomic_load(&ho->opened), "closed_by_server",
                  (json_int_t)atomic_load(&ho->closed_by_server), "connect_failed",
                  (json_int_t)atomic_load(&ho->failed)));
}

void bench_half_open_free(struct bench *b)
{
    if (b->half_open)
        chat_free(b->half_open->fds);
    chat_free(b->half_open);
    b->half_open = NULL;
}
