/* api_purge.c - the retention purge (api_purge.h). */
#include "api_purge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "chat/log.h"
#include "chat/mem.h"
#include "chat/shared_cfg.h"
#include "chat/time.h"

#include "acct/api_acct.h"
#include "api.h"
#include "api_wait.h"
#include "db/api_db.h"

#define PURGE_LOCK      0x6368617470757267LL /* "chatpurg": one purging replica at a time */
#define PURGE_STMTS_MAX 100                  /* statements per run: the rest waits for the next */
#define PURGE_RETRY_MS  5000

struct api_purge {
    struct api *a;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct api_db db;
};

/* Deletes in batches (one statement, one transaction each) until a batch comes back short or
 * the budget is used; returns the rows deleted, -1 on an error. */
static long purge_table(struct api_purge *p, enum api_q q, int retain_s, int *budget)
{
    char retain[16], batch[16];
    const char *params[2] = {retain, batch};
    long total = 0;

    snprintf(retain, sizeof(retain), "%d", retain_s);
    snprintf(batch, sizeof(batch), "%d", p->a->cfg->purge_batch);
    while (*budget > 0) {
        PGresult *r = api_db_qn(&p->db, q, 2, params);
        long n;

        (*budget)--;
        if (!api_db_ok(r, PGRES_COMMAND_OK, "retention purge"))
            return -1;
        n = strtol(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        total += n;
        if (n < p->a->cfg->purge_batch)
            break;
    }
    return total;
}

/* One run; false when the database failed (try again sooner). */
static bool purge_once(struct api_purge *p)
{
    /* db/queries/retention.sql */
    static const enum api_q sql[3] = {API_Q_purge_login_events, API_Q_purge_refresh_tokens,
                                      API_Q_purge_sessions};
    const struct api_cfg *cfg = p->a->cfg;
    char lock[80];
    long purged[3] = {0, 0, 0};
    int budget = PURGE_STMTS_MAX;
    bool got, good = true;
    PGresult *r;

    if (!api_db_ready(&p->db))
        return false;
    snprintf(lock, sizeof(lock), "SELECT pg_try_advisory_lock(%lld)", PURGE_LOCK);
    r = api_db_simple(&p->db, lock);
    if (!api_db_ok(r, PGRES_TUPLES_OK, "purge lock")) {
        api_db_done(&p->db);
        return false;
    }
    got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!got) { /* another replica is at it */
        api_db_done(&p->db);
        return true;
    }
    for (int i = 0; i < 3 && good; i++) {
        int retain = i == 0 ? cfg->retain_logins_s : cfg->retain_sessions_s;
        /* a revoked session stays until no token of it can be valid */
        if (i == 2 && retain < CHAT_REVOKE_KEEP_S(cfg))
            retain = CHAT_REVOKE_KEEP_S(cfg);
        purged[i] = purge_table(p, sql[i], retain, &budget);
        good = purged[i] >= 0;
    }
    snprintf(lock, sizeof(lock), "SELECT pg_advisory_unlock(%lld)", PURGE_LOCK);
    r = api_db_simple(&p->db, lock);
    if (api_db_ok(r, PGRES_TUPLES_OK, "purge unlock"))
        PQclear(r);
    api_db_done(&p->db);
    if (good && (purged[0] || purged[1] || purged[2]))
        chat_log(CHAT_LOG_INFO,
                 "accounts: retention purge: %ld login events, %ld refresh tokens, %ld sessions "
                 "deleted",
                 purged[0], purged[1], purged[2]);
    return good;
}

static void *purge_main(void *arg)
{
    struct api_purge *p = arg;
    /* replicas started together do not all try at once (the lock makes it one anyway) */
    int64_t next = 5000 + (int64_t)(chat_mono_us() % 5000);

    while (!api_wait_stop(&p->mu, &p->cv, &p->stop, next))
        next = purge_once(p) ? (int64_t)p->a->cfg->purge_interval_s * 1000 : PURGE_RETRY_MS;
    api_db_close(&p->db);
    return NULL;
}

int api_purge_start(struct api *a)
{
    struct api_purge *p;

    if (a->cfg->purge_interval_s <= 0)
        return CHAT_OK;
    p = chat_xcalloc(1, sizeof(*p));
    p->a = a;
    pthread_mutex_init(&p->mu, NULL);
    api_wait_cond_init(&p->cv);
    api_db_init(&p->db, a->cfg->pg_dsn, "chat-api-purge", a->cfg->pg_timeout_ms, NULL);
    api_db_prepare_on_connect(&p->db, API_QD_retention, &a->db_health, NULL, NULL);
    if (pthread_create(&p->thread, NULL, purge_main, p) != 0) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        chat_free(p);
        return CHAT_EIO;
    }
    a->purge = p;
    return CHAT_OK;
}

void api_purge_stop(struct api *a)
{
    struct api_purge *p = a->purge;

    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    chat_free(p);
    a->purge = NULL;
}
