/* ctl_admin.c - chatctl's site administration on the database (issue 13), for the operator who
 * has no admin account yet or no API at hand:
 *   chatctl admin --user USERNAME [--revoke]     make (or unmake) a site admin
 *   chatctl sanction --user USERNAME --kind mute|ban|chat_ban [--room ROOM] [--duration-s N]
 *                    [--reason TEXT]             a sanction (site-wide without --room)
 *   chatctl lift --user USERNAME --kind mute|ban|chat_ban [--room ROOM]
 * Each runs in one transaction with its audit row (actor NULL, details {"by":"chatctl"}, the
 * API's action names) and, for sanctions, the chat.sanctions record in the outbox: chat-api's
 * relay produces it and every gateway enforces it within a second, as if an admin had used the
 * API. A site ban also revokes the user's sessions (their sessions_revoked event in the outbox,
 * the API's statements: db/queries), so open sockets lose their identity within a second too.
 * A spam-rule ban also lives in Redis (chat:spam:ban:USER), which chatctl does not reach: lift
 * that one through the API (DELETE /api/v1/admin/users/{id}/sanctions/chat_ban clears both). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "chat/buf.h"
#include "chat/config.h"
#include "chat/mem.h"
#include "chat/proto.h"
#include "chat/time.h"

#include "ctl.h"
#include "ctl_queries_gen.h"

struct admin_cfg {
    char *pg_dsn; /* secret */
    char *user;   /* username */
    char *kind;
    char *room;
    char *reason;
    int duration_s;
    int revoke;
    int timeout_s;
};

#define OPT_DSN                                                                              \
    {                                                                                        \
        "pg-dsn", "CHAT_PG_DSN", CHAT_CFG_STR, 0, 0, "", offsetof(struct admin_cfg, pg_dsn), \
            CHAT_CFG_REQUIRED | CHAT_CFG_SECRET, "PostgreSQL connection string"              \
    }
#define OPT_USER                                                                          \
    {                                                                                     \
        "user", "CHATCTL_USER", CHAT_CFG_STR, 0, 0, "", offsetof(struct admin_cfg, user), \
            CHAT_CFG_REQUIRED, "the account's username"                                   \
    }
#define OPT_TIMEOUT                                                                \
    {                                                                              \
        "timeout-s", "CHATCTL_TIMEOUT_S", CHAT_CFG_INT, 1, 3600, "30",             \
            offsetof(struct admin_cfg, timeout_s), 0, "connect timeout in seconds" \
    }
#define OPT_KIND                                                                          \
    {                                                                                     \
        "kind", "CHATCTL_KIND", CHAT_CFG_STR, 0, 0, "", offsetof(struct admin_cfg, kind), \
            CHAT_CFG_REQUIRED, "mute, ban or chat_ban"                                    \
    }
#define OPT_ROOM                                                                             \
    {                                                                                        \
        "room", "CHATCTL_ROOM", CHAT_CFG_STR, 0, 0, "", offsetof(struct admin_cfg, room), 0, \
            "the room (empty: site-wide)"                                                    \
    }

static const struct chat_cfg_opt admin_opts[] = {
    OPT_DSN,
    OPT_USER,
    OPT_TIMEOUT,
    {"revoke", "CHATCTL_REVOKE", CHAT_CFG_INT, 0, 1, "0", offsetof(struct admin_cfg, revoke), 0,
     "1: make the account a plain user again"},
};

static const struct chat_cfg_opt sanction_opts[] = {
    OPT_DSN,
    OPT_USER,
    OPT_TIMEOUT,
    OPT_KIND,
    OPT_ROOM,
    {"duration-s", "CHATCTL_DURATION_S", CHAT_CFG_INT, 0, 31622400, "0",
     offsetof(struct admin_cfg, duration_s), 0, "seconds (0: until lifted)"},
    {"reason", "CHATCTL_REASON", CHAT_CFG_STR, 0, 0, "", offsetof(struct admin_cfg, reason), 0,
     "shown to the user"},
};

static const struct chat_cfg_opt lift_opts[] = {OPT_DSN, OPT_USER, OPT_TIMEOUT, OPT_KIND, OPT_ROOM};

static PGconn *connect_db(const struct admin_cfg *cfg, const char *prog)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    char timeout[16];
    const char *vals[4];
    PGconn *conn;

    snprintf(timeout, sizeof(timeout), "%d", cfg->timeout_s);
    vals[0] = cfg->pg_dsn;
    vals[1] = timeout;
    vals[2] = "chatctl";
    vals[3] = NULL;
    conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "%s: cannot connect: %s", prog, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Runs sql with n text parameters; true when its status is want (else printed). *out (may be
 * NULL) gets the result. */
static bool exec(PGconn *c,
                 const char *prog,
                 const char *sql,
                 int n,
                 const char *const *p,
                 ExecStatusType want,
                 PGresult **out)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);

    if (PQresultStatus(r) != want) {
        fprintf(stderr, "%s: %s", prog, PQresultErrorMessage(r));
        PQclear(r);
        return false;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return true;
}

/* The id of username (a string in *id), false when there is none (printed). */
static bool user_id(PGconn *c, const char *prog, const char *username, char *id, size_t cap)
{
    const char *p[1] = {username};
    PGresult *r;
    bool found;

    if (!exec(c, prog, "SELECT id::text FROM users WHERE lower(username) = lower($1)", 1, p,
              PGRES_TUPLES_OK, &r))
        return false;
    found = PQntuples(r) == 1;
    if (found)
        snprintf(id, cap, "%s", PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "%s: no account named '%s'\n", prog, username);
    PQclear(r);
    return found;
}

static const char *audit_sql =
    "INSERT INTO audit_log (actor_id, action, target_user, room_id, reason, expires_at, details) "
    "VALUES (NULL, $1, $2, $3, coalesce($4, ''), to_timestamp($5::bigint / 1000.0), "
    "'{\"by\":\"chatctl\"}'::jsonb)";

/* Runs body (the statements of one command) in a transaction; the exit status. */
static int
in_tx(PGconn *c, const char *prog, bool (*body)(PGconn *, const char *, void *), void *arg)
{
    if (!exec(c, prog, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL))
        return 1;
    if (!body(c, prog, arg)) {
        PQclear(PQexec(c, "ROLLBACK"));
        return 1;
    }
    return exec(c, prog, "COMMIT", 0, NULL, PGRES_COMMAND_OK, NULL) ? 0 : 1;
}

struct job {
    const struct admin_cfg *cfg;
    char id[24];
    bool lift;
};

static bool do_admin(PGconn *c, const char *prog, void *arg)
{
    struct job *j = arg;
    const char *role = j->cfg->revoke ? "user" : "admin";
    const char *p[2] = {role, j->id};
    const char *a[5] = {"role_change", j->id, NULL, role, NULL};

    return exec(c, prog, "UPDATE users SET role = $1 WHERE id = $2::bigint", 2, p, PGRES_COMMAND_OK,
                NULL) &&
           exec(c, prog, audit_sql, 5, a, PGRES_COMMAND_OK, NULL);
}

/* Queues a record for chat-api's relay (payload NULL: a tombstone), with chat-api's own
 * statement (db/queries/outbox.sql). */
static bool outbox(PGconn *c,
                   const char *prog,
                   const char *topic,
                   const char *key,
                   const char *type,
                   const char *payload)
{
    const struct chat_db_query *q = &ctl_queries[CTL_Q_outbox_add];
    const char *p[4] = {topic, key, type, payload};

    return exec(c, prog, q->sql, q->nparams, p, PGRES_COMMAND_OK, NULL);
}

/* The audit action of a lift, as the API names it. */
static const char *lift_action(const char *kind, const char *room)
{
    if (strcmp(kind, "mute") == 0)
        return "unmute";
    if (!room)
        return strcmp(kind, "ban") == 0 ? "site_unban" : "lift_chat_ban";
    return "unban";
}

/* A site ban's revocation, as chat-api's: every live session of user ends (reason "admin") and
 * one sessions_revoked event for them goes to the outbox (chat.events), so the gateways drop the
 * sockets' identity within a second. */
static bool revoke_sessions(PGconn *c, const char *prog, const char *user)
{
    const struct chat_db_query *rv = &ctl_queries[CTL_Q_session_revoke_admin];
    const char *p[1] = {user};
    const char **sids;
    struct chat_buf ev;
    PGresult *r = NULL;
    bool good;

    if (!exec(c, prog, rv->sql, rv->nparams, p, PGRES_TUPLES_OK, &r))
        return false;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return true;
    }
    sids = chat_xcalloc((size_t)PQntuples(r), sizeof(*sids));
    for (int i = 0; i < PQntuples(r); i++)
        sids[i] = PQgetvalue(r, i, 0);
    chat_buf_init(&ev, 0, 0);
    good = chat_enc_ev_sessions_revoked(&ev, user, sids, (size_t)PQntuples(r), "admin",
                                        chat_now_ms()) == CHAT_OK;
    if (good)
        good = outbox(c, prog, "events", user, "sessions_revoked", chat_buf_data(&ev));
    printf("%d session(s) revoked\n", good ? PQntuples(r) : 0);
    chat_buf_fini(&ev);
    chat_free(sids);
    PQclear(r);
    return good;
}

static bool do_sanction(PGconn *c, const char *prog, void *arg)
{
    struct job *j = arg;
    const struct admin_cfg *cfg = j->cfg;
    const char *room = cfg->room[0] ? cfg->room : NULL, *wire_room = room ? room : "*";
    bool site_ban = !room && strcmp(cfg->kind, "ban") == 0; /* revokes the sessions too */
    char dur[24], until[24], key[160];
    const char *pl[3] = {j->id, room, cfg->kind};
    struct chat_buf v;
    PGresult *r = NULL;
    long long until_ms = 0;
    bool good;

    if (!exec(c, prog,
              "UPDATE sanctions SET lifted_at = now() WHERE user_id = $1 AND room_id IS NOT "
              "DISTINCT FROM $2 AND kind = $3 AND lifted_at IS NULL AND (expires_at IS NULL OR "
              "expires_at > now()) RETURNING id",
              3, pl, PGRES_TUPLES_OK, &r))
        return false;
    if (j->lift && PQntuples(r) == 0) {
        fprintf(stderr, "%s: no such sanction in force\n", prog);
        PQclear(r);
        return false;
    }
    PQclear(r);
    if (chat_sanction_key(key, sizeof(key), j->id, wire_room, cfg->kind) != CHAT_OK)
        return false;
    if (j->lift) {
        const char *a[5] = {lift_action(cfg->kind, room), j->id, room, NULL, NULL};
        return outbox(c, prog, "sanctions", key, "sanction", NULL) &&
               exec(c, prog, audit_sql, 5, a, PGRES_COMMAND_OK, NULL);
    }
    snprintf(dur, sizeof(dur), "%d", cfg->duration_s);
    {
        const char *pa[5] = {cfg->kind, j->id, room, cfg->reason, cfg->duration_s > 0 ? dur : NULL};
        if (!exec(c, prog,
                  "INSERT INTO sanctions (kind, user_id, room_id, reason, expires_at) VALUES ($1, "
                  "$2, $3, coalesce($4, ''), CASE WHEN $5::int IS NULL THEN NULL ELSE now() + "
                  "make_interval(secs => $5::int) END) RETURNING (extract(epoch FROM expires_at) "
                  "* 1000)::bigint",
                  5, pa, PGRES_TUPLES_OK, &r))
            return false;
    }
    if (!PQgetisnull(r, 0, 0))
        until_ms = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    chat_buf_init(&v, 0, 0);
    good = chat_enc_sanction(&v, j->id, wire_room, cfg->kind, until_ms, cfg->reason,
                             (long long)time(NULL) * 1000) == CHAT_OK;
    snprintf(until, sizeof(until), "%lld", until_ms);
    if (good && site_ban)
        good = revoke_sessions(c, prog, j->id);
    if (good) {
        const char *a[5] = {site_ban ? "site_ban" : cfg->kind, j->id, room, cfg->reason,
                            until_ms > 0 ? until : NULL};
        good = outbox(c, prog, "sanctions", key, "sanction", chat_buf_data(&v)) &&
               exec(c, prog, audit_sql, 5, a, PGRES_COMMAND_OK, NULL);
    }
    chat_buf_fini(&v);
    return good;
}

static int run(int argc,
               char **argv,
               const struct chat_cfg_opt *opts,
               size_t nopts,
               const char *what,
               bool sanction,
               bool lift)
{
    struct admin_cfg cfg;
    struct job j = {.cfg = &cfg, .lift = lift};
    PGconn *c;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    rc = chat_cfg_load(opts, nopts, &cfg, argc, argv, what);
    if (rc != CHAT_OK) {
        chat_cfg_free(opts, nopts, &cfg);
        return rc == 1 ? 0 : 2;
    }
    if (sanction && strcmp(cfg.kind, "mute") != 0 && strcmp(cfg.kind, "ban") != 0 &&
        strcmp(cfg.kind, "chat_ban") != 0) {
        fprintf(stderr, "%s: --kind must be mute, ban or chat_ban\n", argv[0]);
        chat_cfg_free(opts, nopts, &cfg);
        return 2;
    }
    if (sanction && cfg.room && cfg.room[0] && !chat_room_valid(cfg.room)) {
        fprintf(stderr, "%s: --room is not a valid room id\n", argv[0]);
        chat_cfg_free(opts, nopts, &cfg);
        return 2;
    }
    if (!(c = connect_db(&cfg, argv[0]))) {
        chat_cfg_free(opts, nopts, &cfg);
        return 1;
    }
    rc = user_id(c, argv[0], cfg.user, j.id, sizeof(j.id))
             ? in_tx(c, argv[0], sanction ? do_sanction : do_admin, &j)
             : 1;
    if (rc == 0)
        printf("%s: done for %s (id %s)\n", argv[0], cfg.user, j.id);
    PQfinish(c);
    chat_cfg_free(opts, nopts, &cfg);
    return rc;
}

int ctl_admin_main(int argc, char **argv)
{
    return run(argc, argv, admin_opts, CHAT_CFG_COUNT(admin_opts),
               "make an account a site admin (--revoke 1: a plain user again)", false, false);
}

int ctl_sanction_main(int argc, char **argv)
{
    return run(argc, argv, sanction_opts, CHAT_CFG_COUNT(sanction_opts),
               "mute or ban a user in a room or site-wide, as a site admin would", true, false);
}

int ctl_lift_main(int argc, char **argv)
{
    return run(argc, argv, lift_opts, CHAT_CFG_COUNT(lift_opts),
               "lift a user's mute or ban in a room or site-wide", true, true);
}
