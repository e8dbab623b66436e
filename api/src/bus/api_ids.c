/* api_ids.c - the node-number lease and the id generator of chat-api (api_ids.h). */
#include "api_ids.h"

#include <time.h>

#include <pthread.h>
#include <unistd.h>

#include "chat/id.h"
#include "chat/lease.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "api.h"
#include "api_wait.h"
#include "db/api_redis.h"

#define STEP_MS 1000 /* the lease is looked at every second (renewed every CHAT_LEASE_RENEW_MS) */

struct api_ids {
    struct api *a;
    pthread_t thread;
    pthread_mutex_t mu; /* lease and idgen: the thread writes, request threads read */
    pthread_cond_t cv;  /* stop */
    bool stop;
    struct chat_lease lease;
    struct chat_idgen idgen;
    struct api_redis redis; /* the thread's own */
};

/* One step: renews or takes a number when due. */
static void step(struct api_ids *s)
{
    struct chat_lease_req rq;
    redisReply *rep;
    enum chat_lease_ev ev;
    int64_t floor_ms, used;
    bool due;

    pthread_mutex_lock(&s->mu);
    used = s->lease.node_num >= 0 ? chat_idgen_last_ms(&s->idgen) : 0;
    due = chat_lease_due(&s->lease, chat_mono_ms(), chat_now_ms(), used, &rq);
    pthread_mutex_unlock(&s->mu);
    if (!due)
        return;
    rep = api_redis_cmd(&s->redis, "EVAL %s 2 %s %s %s %s %s %s", chat_lease_lua, rq.key,
                        rq.last_key, rq.token, rq.ms, rq.reached, rq.fresh);
    pthread_mutex_lock(&s->mu);
    ev = chat_lease_reply(&s->lease, &rq, rep && rep->type == REDIS_REPLY_INTEGER,
                          rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0, &floor_ms);
    if (ev == CHAT_LEASE_TAKEN)
        chat_idgen_init(&s->idgen, rq.num);
    if (ev == CHAT_LEASE_TAKEN || ev == CHAT_LEASE_RENEWED)
        chat_idgen_floor(&s->idgen, floor_ms); /* after the last id ever made under it */
    pthread_mutex_unlock(&s->mu);
    if (rep)
        freeReplyObject(rep);
    if (ev == CHAT_LEASE_TAKEN)
        chat_log(CHAT_LOG_INFO, "node number %u leased for REST send (ids after %lld)", rq.num,
                 (long long)floor_ms);
    else if (ev == CHAT_LEASE_LOST)
        chat_log(CHAT_LOG_ERROR, "node number %u lease lost to another process", rq.num);
}

static void *lease_main(void *arg)
{
    struct api_ids *s = arg;

    do
        step(s);
    while (!api_wait_stop(&s->mu, &s->cv, &s->stop, STEP_MS));
    return NULL;
}

int api_ids_start(struct api *a)
{
    struct api_ids *s = chat_xcalloc(1, sizeof(*s));
    const struct api_cfg *cfg = a->cfg;

    s->a = a;
    pthread_mutex_init(&s->mu, NULL);
    api_wait_cond_init(&s->cv);
    chat_lease_init(&s->lease, cfg->node_name, (int)getpid(), chat_now_ms());
    api_redis_init(&s->redis, cfg->redis_host, cfg->redis_port, cfg->redis_timeout_ms, NULL);
    if (pthread_create(&s->thread, NULL, lease_main, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        chat_free(s);
        return CHAT_EIO;
    }
    a->ids = s;
    return CHAT_OK;
}

void api_ids_stop(struct api *a)
{
    struct api_ids *s = a->ids;
    struct chat_lease_req rq;
    redisReply *rep;

    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    if (chat_lease_release(&s->lease, chat_idgen_last_ms(&s->idgen), &rq)) {
        rep = api_redis_cmd(&s->redis, "EVAL %s 2 %s %s %s %s", chat_lease_release_lua, rq.key,
                            rq.last_key, rq.token, rq.reached);
        if (rep)
            freeReplyObject(rep);
    }
    api_redis_close(&s->redis);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    chat_free(s);
    a->ids = NULL;
}

bool api_ids_next(struct api *a, uint64_t *id, int64_t *ts)
{
    struct api_ids *s = a->ids;
    bool ok;

    pthread_mutex_lock(&s->mu);
    ok = !s->stop && chat_lease_valid(&s->lease, chat_mono_ms());
    if (ok) {
        *id = chat_idgen_next(&s->idgen, chat_now_ms());
        *ts = chat_id_time_ms(*id);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

int api_ids_node(struct api *a)
{
    struct api_ids *s = a->ids;
    int n;

    pthread_mutex_lock(&s->mu);
    n = chat_lease_valid(&s->lease, chat_mono_ms()) ? s->lease.node_num : -1;
    pthread_mutex_unlock(&s->mu);
    return n;
}
