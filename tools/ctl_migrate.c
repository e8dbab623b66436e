/* ctl_migrate.c - chatctl migrate: applies the schema migrations of db/migrations (embedded at
 * build time, the same table the persister applies at start-up) to the database of --pg-dsn,
 * in one transaction under the migrations' advisory lock, so it is safe next to running
 * services. Prints what it applied. */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

#include "chat/config.h"
#include "chat/db_migrate.h"
#include "chat/log.h"

#include "ctl.h"

struct migrate_cfg {
    char *pg_dsn; /* secret */
    int timeout_s;
};

static const struct chat_cfg_opt opts[] = {
    {"pg-dsn", "CHAT_PG_DSN", CHAT_CFG_STR, 0, 0, "", offsetof(struct migrate_cfg, pg_dsn),
     CHAT_CFG_REQUIRED | CHAT_CFG_SECRET, "PostgreSQL connection string"},
    {"timeout-s", "CHATCTL_TIMEOUT_S", CHAT_CFG_INT, 1, 3600, "30",
     offsetof(struct migrate_cfg, timeout_s), 0, "connect timeout in seconds"},
};

/* "relation ... already exists, skipping": the normal case of a re-run, not worth a line */
static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

int ctl_migrate_main(int argc, char **argv)
{
    struct migrate_cfg cfg;
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    char timeout[16];
    const char *vals[4];
    PGconn *conn;
    int rc, applied = 0;

    memset(&cfg, 0, sizeof(cfg));
    rc = chat_cfg_load(opts, CHAT_CFG_COUNT(opts), &cfg, argc, argv,
                       "apply the schema migrations of db/migrations that the database lacks");
    if (rc != CHAT_OK) {
        chat_cfg_free(opts, CHAT_CFG_COUNT(opts), &cfg);
        return rc == 1 ? 0 : 2;
    }
    snprintf(timeout, sizeof(timeout), "%d", cfg.timeout_s);
    vals[0] = cfg.pg_dsn; /* expanded: a DSN or URI; the keys after it override */
    vals[1] = timeout;
    vals[2] = "chatctl";
    vals[3] = NULL;
    conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password */
        fprintf(stderr, "chatctl migrate: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        chat_cfg_free(opts, CHAT_CFG_COUNT(opts), &cfg);
        return 1;
    }
    PQsetNoticeProcessor(conn, quiet, NULL);
    rc = chat_db_migrate(chat_db_run_conn, conn, chat_db_migrations, chat_db_migrations_count,
                         &applied);
    PQfinish(conn);
    chat_cfg_free(opts, CHAT_CFG_COUNT(opts), &cfg);
    if (rc != CHAT_OK) {
        fprintf(stderr, "chatctl migrate: failed (nothing applied)\n");
        return 1;
    }
    printf("%d migration(s) applied, %zu known\n", applied, chat_db_migrations_count);
    return 0;
}
