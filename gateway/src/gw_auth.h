/* gw_auth.h - account requests: a job is created on the event loop from a REST request, runs on
 * a worker thread (password hashing and PostgreSQL, both blocking, gw_db.c), and comes back to
 * the loop (gw_auth.c) to be answered and to publish its events.
 *
 * Ownership: the loop owns a job until gw_pool_submit(); the pool owns it until it hands it back
 * through gw_auth_done() on the loop. A worker touches only the job, its own PGconn and the
 * immutable parts of struct gw (cfg, keys, dummy_hash). */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <libpq-fe.h>

#include "chat/buf.h"
#include "chat/proto.h"

#include "gw.h"

enum gw_job_kind {
    GW_JOB_REGISTER,
    GW_JOB_LOGIN,
    GW_JOB_REFRESH,
    GW_JOB_LOGOUT,
    GW_JOB_ME,
    GW_JOB_NICKNAME,
    GW_JOB_PASSWORD,
    GW_JOB_LOGINS,
    GW_JOB_ADMIN_REVOKE,
    GW_JOB_LOAD,  /* startup: revocations and nickname changes of the last access_ttl */
    GW_JOB_PURGE, /* retention: old login events, sessions, refresh tokens (one gateway) */
};

#define GW_ID_MAX 64 /* a decimal bigint, or a claim copied before it is checked */

struct gw_job {
    struct gw_job *next;
    enum gw_job_kind kind;
    struct gw *gw;
    struct lws *wsi;  /* loop only: the HTTP client to answer, NULL once it went away */
    bool submitted;   /* loop only: handed to Redis or the pool (they free it, not the request) */
    bool bearer;      /* the endpoint needs a bearer token */
    int64_t start_us; /* queued at (mono) */
    /* inputs: owned copies */
    char *username, *password, *nickname, *new_password, *refresh, *ip, *ua;
    char uid[GW_ID_MAX], sid[GW_ID_MAX], target[GW_ID_MAX], before[GW_ID_MAX];
    bool all;
    long limit;
    /* outputs */
    int status;            /* HTTP status of the answer */
    enum chat_errcode err; /* CHAT_ERR__COUNT on success */
    struct chat_buf body;  /* JSON answer on success */
    /* events for the loop to publish and apply */
    char ev_user[GW_ID_MAX];
    char **revoked; /* owns: session ids revoked by this job */
    size_t nrevoked;
    const char *revoke_reason;
    char *nick_changed;      /* owns: the user's new nickname */
    int64_t nick_changed_ms; /* when, by the database's clock */
    /* GW_JOB_LOAD: parallel arrays (owned) */
    char **load_users, **load_nicks;
    int64_t *load_nick_ms, *load_revoked_ms;
    char **load_reasons;
    int64_t since_ms;  /* GW_JOB_LOAD: changes after this (database clock); 0: one access_ttl */
    int64_t db_now_ms; /* GW_JOB_LOAD: the database's clock when it ran */
    size_t nload_nicks;
    /* GW_JOB_LOGIN: the failure reserved in Redis (gw_authrate.c) */
    bool fail_reserved;
    char fail_net_key[192], fail_user_key[160];
    /* GW_JOB_PURGE: rows deleted, false when another gateway held the purge lock */
    long purged[3]; /* login events, refresh tokens, sessions */
    bool purge_ran;
};

/* gw_db.c: the worker pool */
int gw_pool_start(struct gw *gw);
/* Queues j; CHAT_EAGAIN when cfg->auth_queue_max jobs wait already or the pool stopped. */
int gw_pool_submit(struct gw *gw, struct gw_job *j);
/* Stops the workers (waits for the jobs they are running) and hands back what finished. */
void gw_pool_stop(struct gw *gw);
void gw_pool_free(struct gw *gw);

/* gw_authrate.c: failed-login limits (loop thread). gw_login_limit counts j's attempt from
 * j->ip for user (lower-cased or "~invalid") and, when it is let through, reserves a failure;
 * cb gets 0 or the ms until the attempt may be retried. gw_login_settle, when j is done, gives
 * the reserved failure back unless j failed with invalid credentials. */
void gw_login_limit(struct gw *gw, struct gw_job *j, const char *user, gw_rate_cb cb);
void gw_login_settle(struct gw *gw, struct gw_job *j);
/* An address as a per-address rate-limit subject: IPv6 by its /64, anything else as is.
 * Returns ip or buf. */
const char *gw_rate_subject(const char *ip, char *buf, size_t cap);

/* gw_auth.c: on the loop, for every finished job */
void gw_auth_done(struct gw *gw, struct gw_job *j);
void gw_job_free(struct gw_job *j);

#endif
