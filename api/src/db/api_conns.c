/* api_conns.c - per-thread connections (api_conns.h). */
#include "api_conns.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "chat/mem.h"

#include "api.h"

static _Thread_local struct api_conns *mine;

struct api_conns *api_conns_get(struct api *a)
{
    const struct api_cfg *cfg = a->cfg;

    if (mine)
        return mine;
    /* a request thread's first request: below the gateways on a shared host (best effort) */
    if (cfg->nice > 0)
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), cfg->nice);
    mine = chat_xcalloc(1, sizeof(*mine));
    api_db_init(&mine->db, cfg->pg_dsn, "chat-api", cfg->pg_timeout_ms, &a->db_health);
    /* everything but the retention thread's */
    api_db_prepare_on_connect(&mine->db, API_QD_ALL & ~API_QD_retention, &a->db_health, NULL, NULL);
    api_redis_init(&mine->redis, cfg->redis_host, cfg->redis_port, cfg->redis_timeout_ms,
                   &a->redis_ok);
    pthread_mutex_lock(&a->conns_mu);
    mine->next = a->conns;
    a->conns = mine;
    pthread_mutex_unlock(&a->conns_mu);
    return mine;
}

void api_conns_close_all(struct api *a)
{
    pthread_mutex_lock(&a->conns_mu);
    while (a->conns) {
        struct api_conns *c = a->conns;
        a->conns = c->next;
        api_db_close(&c->db);
        api_redis_close(&c->redis);
        chat_free(c);
    }
    pthread_mutex_unlock(&a->conns_mu);
}
