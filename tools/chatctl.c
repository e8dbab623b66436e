/* tools/chatctl.c - operator command line for chatcluster.
 *
 *   chatctl token  --user NAME [--ttl S] [--name NICK] [--role ROLE] [--sid SID]
 *                  [--jwt-keys KEYS] [--jwt-issuer ISS]
 *       mints an HS256 access token with libchat's chat_jwt_sign (the first key of
 *       CHAT_JWT_KEYS signs, its kid goes in the header) and prints it on stdout.
 *   chatctl verify --token TOKEN [--jwt-keys KEYS] [--jwt-issuer ISS] [--token-max-ttl-s N]
 *       checks a token exactly as the gateway does (chat_jwt_check: clock leeway, no room grant,
 *       a session's token at most CHAT_TOKEN_MAX_TTL_S) and prints its claims as key=value lines.
 *   chatctl topics --kafka-brokers B --topics "NAME:PARTS[:K=V...] ..." [--replicas N]
 *       creates the Kafka topics that are missing and checks partitions and configs
 *       (ctl_topics.c).
 *
 * Each subcommand has its own libchat config table: flags, then the environment (CHAT_JWT_KEYS,
 * CHAT_JWT_ISSUER, CHATCTL_*), then defaults. Secrets and tokens are never logged.
 * Exit codes: 0 ok (or --help), 1 the operation failed (signing error, token rejected),
 * 2 usage or configuration error. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <sys/random.h>

#include "chat/config.h"
#include "chat/err.h"
#include "chat/jwt.h"
#include "chat/log.h"
#include "chat/mem.h"
#include "chat/time.h"
#include "chat/utf8.h"

#include "ctl.h"

#define CTL_MAX_TTL (366LL * 24 * 3600) /* seconds: a year is plenty for a dev token */

struct token_cfg {
    char *user;       /* sub */
    char *name;       /* display name, "" = none */
    char *role;       /* role claim */
    char *sid;        /* session id, "" = random */
    char *jwt_keys;   /* secret keyring spec */
    char *jwt_issuer; /* iss */
    int ttl;          /* seconds until exp */
};

struct verify_cfg {
    char *token; /* secret: never echoed */
    char *jwt_keys;
    char *jwt_issuer;
    int token_max_ttl_s; /* as the services' CHAT_TOKEN_MAX_TTL_S */
};

/* clang-format off */
#define JWT_KEYS_OPT(T)                                                                            \
    {"jwt-keys", "CHAT_JWT_KEYS", CHAT_CFG_STR, 0, 0, "", offsetof(T, jwt_keys),                   \
     CHAT_CFG_SECRET | CHAT_CFG_REQUIRED, "HS256 keys: SECRET (>= 32 chars) or kid:SECRET,..."}
#define JWT_ISSUER_OPT(T)                                                                          \
    {"jwt-issuer", "CHAT_JWT_ISSUER", CHAT_CFG_STR, 0, 0, "chatcluster", offsetof(T, jwt_issuer), \
     CHAT_CFG_REQUIRED, "token issuer (iss)"}

static const struct chat_cfg_opt token_opts[] = {
    {"user", "CHATCTL_USER", CHAT_CFG_STR, 0, 0, "", offsetof(struct token_cfg, user),
     CHAT_CFG_REQUIRED, "user the token is for (sub claim)"},
    {"ttl", "CHATCTL_TTL", CHAT_CFG_INT, 1, CTL_MAX_TTL, "3600", offsetof(struct token_cfg, ttl),
     0, "lifetime in seconds (the services refuse one over their CHAT_TOKEN_MAX_TTL_S, 86400 by "
        "default: it names a session)"},
    {"name", "CHATCTL_NAME", CHAT_CFG_STR, 0, 0, "", offsetof(struct token_cfg, name), 0,
     "display name (name claim), empty = none"},
    {"role", "CHATCTL_ROLE", CHAT_CFG_STR, 0, 0, "user", offsetof(struct token_cfg, role), 0,
     "role claim (lower-case letters, e.g. user or admin)"},
    {"sid", "CHATCTL_SID", CHAT_CFG_STR, 0, 0, "", offsetof(struct token_cfg, sid), 0,
     "session id (sid claim), empty = random"},
    JWT_KEYS_OPT(struct token_cfg),
    JWT_ISSUER_OPT(struct token_cfg),
};

static const struct chat_cfg_opt verify_opts[] = {
    {"token", "CHATCTL_TOKEN", CHAT_CFG_STR, 0, 0, "", offsetof(struct verify_cfg, token),
     CHAT_CFG_SECRET | CHAT_CFG_REQUIRED, "the token to check"},
    {"token-max-ttl-s", "CHAT_TOKEN_MAX_TTL_S", CHAT_CFG_INT, 30, 2592000, "86400",
     offsetof(struct verify_cfg, token_max_ttl_s), 0,
     "as the services': a token naming a session (sid) that lives longer is refused"},
    JWT_KEYS_OPT(struct verify_cfg),
    JWT_ISSUER_OPT(struct verify_cfg),
};
/* clang-format on */

static void usage(FILE *f)
{
    fprintf(f, "Usage: chatctl COMMAND [--option=value ...]\n"
               "\n"
               "Commands:\n"
               "  token   mint an HS256 access token for a user and print it on stdout\n"
               "          chatctl token --user NAME [--ttl SECONDS] [--name NICK] [--role ROLE]\n"
               "  verify  check a token as the gateway does and print its claims\n"
               "          chatctl verify --token TOKEN\n"
               "  topics  create missing Kafka topics, check partitions and configs\n"
               "          chatctl topics --kafka-brokers HOST:PORT --topics 'SPEC ...'\n"
               "  migrate apply the schema migrations of db/migrations (what is missing)\n"
               "          chatctl migrate --pg-dsn DSN   (or CHAT_PG_DSN)\n"
               "  admin   make an account a site admin (the first one, say)\n"
               "          chatctl admin --user USERNAME [--revoke 1]\n"
               "  sanction mute or ban a user in a room or site-wide (kind chat_ban: no sends)\n"
               "          chatctl sanction --user USERNAME --kind mute|ban|chat_ban [--room ROOM]\n"
               "                           [--duration-s N] [--reason TEXT]\n"
               "  lift    lift a user's mute or ban\n"
               "          chatctl lift --user USERNAME --kind mute|ban|chat_ban [--room ROOM]\n"
               "\n"
               "Keys come from CHAT_JWT_KEYS or --jwt-keys, the issuer from CHAT_JWT_ISSUER or\n"
               "--jwt-issuer (default chatcluster). 'chatctl COMMAND --help' lists every option.\n"
               "Exit codes: 0 ok, 1 operation failed, 2 usage or configuration error.\n");
}

/* Returns true when s is 1..cap-1 bytes of valid UTF-8 without control characters. */
static bool text_ok(const char *s, size_t cap)
{
    size_t len = strlen(s);

    return len > 0 && len < cap && chat_utf8_valid(s, len, NULL) &&
           !chat_utf8_has_control(s, len, "");
}

static bool role_ok(const char *s, size_t cap)
{
    size_t len = strlen(s);

    if (len == 0 || len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 'a' || s[i] > 'z')
            return false;
    return true;
}

/* Fills out (cap >= 33) with 32 random hex digits. Returns CHAT_OK or CHAT_EIO. */
static int random_sid(char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[16];

    if (cap < 2 * sizeof(raw) + 1 || getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return CHAT_EIO;
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * sizeof(raw)] = '\0';
    return CHAT_OK;
}

/* Validates the options the table cannot and copies them into claims. Prints every error.
 * Returns CHAT_OK or CHAT_EINVAL. */
static int token_claims(const struct token_cfg *cfg, struct chat_claims *c)
{
    int rc = CHAT_OK;

    if (!text_ok(cfg->user, sizeof(c->sub))) {
        fprintf(stderr,
                "config error: CHATCTL_USER (--user) must be 1-%zu bytes of UTF-8 "
                "without control characters\n",
                sizeof(c->sub) - 1);
        rc = CHAT_EINVAL;
    }
    if (cfg->name[0] && !text_ok(cfg->name, sizeof(c->name))) {
        fprintf(stderr,
                "config error: CHATCTL_NAME (--name) must be 1-%zu bytes of UTF-8 "
                "without control characters\n",
                sizeof(c->name) - 1);
        rc = CHAT_EINVAL;
    }
    if (!role_ok(cfg->role, sizeof(c->role))) {
        fprintf(stderr, "config error: CHATCTL_ROLE (--role) must be 1-%zu lower-case letters\n",
                sizeof(c->role) - 1);
        rc = CHAT_EINVAL;
    }
    if (cfg->sid[0] && !text_ok(cfg->sid, sizeof(c->sid))) {
        fprintf(stderr,
                "config error: CHATCTL_SID (--sid) must be 1-%zu bytes of UTF-8 "
                "without control characters\n",
                sizeof(c->sid) - 1);
        rc = CHAT_EINVAL;
    }
    if (rc != CHAT_OK)
        return rc;
    memset(c, 0, sizeof(*c));
    /* lengths checked above */
    memcpy(c->sub, cfg->user, strlen(cfg->user) + 1);
    memcpy(c->name, cfg->name, strlen(cfg->name) + 1);
    memcpy(c->role, cfg->role, strlen(cfg->role) + 1);
    if (cfg->sid[0])
        memcpy(c->sid, cfg->sid, strlen(cfg->sid) + 1);
    else if (random_sid(c->sid, sizeof(c->sid)) != CHAT_OK)
        return CHAT_EIO;
    c->iat = chat_now_ms() / 1000;
    c->exp = c->iat + cfg->ttl;
    return CHAT_OK;
}

static int keyring_load(const char *spec, struct chat_jwt_keyring *kr)
{
    if (chat_jwt_keyring_parse(spec, kr) != CHAT_OK) {
        fprintf(stderr,
                "config error: CHAT_JWT_KEYS (--jwt-keys) must be a secret of at least "
                "%d characters or kid:SECRET,kid2:SECRET2 (at most %d keys, unique "
                "kids)\n",
                CHAT_JWT_MIN_SECRET, CHAT_JWT_MAX_KEYS);
        return CHAT_EINVAL;
    }
    return CHAT_OK;
}

static int cmd_token(int argc, char **argv)
{
    struct token_cfg cfg = {0};
    struct chat_jwt_keyring kr = {0};
    struct chat_claims claims;
    char *tok = NULL;
    int rc, status = 2;

    rc = chat_cfg_load(token_opts, CHAT_CFG_COUNT(token_opts), &cfg, argc, argv,
                       "Mints an HS256 access token and prints it on stdout.");
    if (rc == 1) {
        status = 0;
        goto out;
    }
    if (rc != CHAT_OK)
        goto out;
    rc = token_claims(&cfg, &claims);
    if (keyring_load(cfg.jwt_keys, &kr) != CHAT_OK || rc == CHAT_EINVAL)
        goto out; /* every problem already printed; status 2 */
    if (rc != CHAT_OK) {
        fprintf(stderr, "chatctl: no random bytes for the session id\n");
        status = 1;
        goto out;
    }
    if (chat_jwt_sign(&kr, &claims, cfg.jwt_issuer, &tok) != CHAT_OK) {
        fprintf(stderr, "chatctl: signing the token failed\n");
        status = 1;
        goto out;
    }
    printf("%s\n", tok);
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    chat_free(tok);
    chat_jwt_keyring_fini(&kr);
    chat_cfg_free(token_opts, CHAT_CFG_COUNT(token_opts), &cfg);
    return status;
}

static int cmd_verify(int argc, char **argv)
{
    struct verify_cfg cfg = {0};
    struct chat_jwt_keyring kr = {0};
    struct chat_claims c;
    int rc, status = 2;

    rc = chat_cfg_load(verify_opts, CHAT_CFG_COUNT(verify_opts), &cfg, argc, argv,
                       "Checks a token as the gateway does and prints its claims.");
    if (rc == 1) {
        status = 0;
        goto out;
    }
    if (rc != CHAT_OK || keyring_load(cfg.jwt_keys, &kr) != CHAT_OK)
        goto out;
    /* the services' own check: clock leeway, a room grant is no access token, a session's
     * token lives at most token_max_ttl_s */
    rc = chat_jwt_check(&kr, cfg.token, cfg.jwt_issuer, cfg.token_max_ttl_s, &c);
    if (rc != CHAT_OK) {
        fprintf(stderr, "chatctl: token rejected: %s\n",
                rc == CHAT_EEXPIRED ? "expired"
                                    : "invalid (format, signature, key, issuer, a room grant, or "
                                      "a session token living longer than --token-max-ttl-s)");
        status = 1;
        goto out;
    }
    printf("sub=%s\nname=%s\nrole=%s\nsid=%s\niat=%lld\nnbf=%lld\nexp=%lld\n", c.sub, c.name,
           c.role, c.sid, (long long)c.iat, (long long)c.nbf, (long long)c.exp);
    status = fflush(stdout) == 0 ? 0 : 1;
out:
    chat_jwt_keyring_fini(&kr);
    chat_cfg_free(verify_opts, CHAT_CFG_COUNT(verify_opts), &cfg);
    return status;
}

int main(int argc, char **argv)
{
    static char token_prog[] = "chatctl token", verify_prog[] = "chatctl verify",
                topics_prog[] = "chatctl topics", migrate_prog[] = "chatctl migrate",
                admin_prog[] = "chatctl admin", sanction_prog[] = "chatctl sanction",
                lift_prog[] = "chatctl lift";
    char **sub;
    int status;

    chat_log_init("chatctl", CHAT_LOG_WARN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    /* The subcommand's parser sees "chatctl CMD" as its program name (for --help). */
    sub = chat_xcalloc((size_t)argc, sizeof(*sub));
    for (int i = 2; i < argc; i++)
        sub[i - 1] = argv[i];
    if (strcmp(argv[1], "token") == 0) {
        sub[0] = token_prog;
        status = cmd_token(argc - 1, sub);
    } else if (strcmp(argv[1], "verify") == 0) {
        sub[0] = verify_prog;
        status = cmd_verify(argc - 1, sub);
    } else if (strcmp(argv[1], "topics") == 0) {
        sub[0] = topics_prog;
        status = ctl_topics_main(argc - 1, sub);
    } else if (strcmp(argv[1], "migrate") == 0) {
        sub[0] = migrate_prog;
        status = ctl_migrate_main(argc - 1, sub);
    } else if (strcmp(argv[1], "admin") == 0) {
        sub[0] = admin_prog;
        status = ctl_admin_main(argc - 1, sub);
    } else if (strcmp(argv[1], "sanction") == 0) {
        sub[0] = sanction_prog;
        status = ctl_sanction_main(argc - 1, sub);
    } else if (strcmp(argv[1], "lift") == 0) {
        sub[0] = lift_prog;
        status = ctl_lift_main(argc - 1, sub);
    } else {
        fprintf(stderr, "chatctl: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        status = 2;
    }
    chat_free(sub);
    return status;
}
