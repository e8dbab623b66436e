/* tools/ctl_topics.c - `chatctl topics`: create chatcluster's Kafka topics and check them.
 *
 *   chatctl topics --kafka-brokers HOST:PORT --topics "SPEC [SPEC ...]" [--replicas N]
 *                  [--timeout-ms MS]
 *   SPEC = NAME:PARTITIONS[:KEY=VALUE[:KEY=VALUE ...]]   (a value may hold commas, not colons)
 *
 * Creates every topic that does not exist (Admin API CreateTopics, with its configs), waits
 * until every partition of every listed topic has a leader, then reads the configs back
 * (DescribeConfigs) and compares them and the partition count with the spec. Prints one line
 * per topic: NAME partitions=N created|exists KEY=VALUE ... (the values the broker reports).
 * A topic that exists with another partition count or config is an error, never altered: the
 * partition count of chat.messages is part of the stream contract (docs/ARCHITECTURE.md).
 * Used by scripts/lib/cluster.sh to set up the local broker and as its readiness check.
 * Exit codes: 0 ok, 1 Kafka unreachable or a topic differs or fails, 2 usage. */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "chat/config.h"
#include "chat/err.h"
#include "chat/mem.h"
#include "chat/time.h"

#include "ctl.h"

#define TOPICS_MAX  16
#define CONFIGS_MAX 16
#define POLL_MS     100 /* pause between metadata polls while leaders are elected */

struct topics_cfg {
    char *brokers;
    char *topics; /* whitespace-separated specs */
    int replicas;
    int timeout_ms;
};

struct topic_kv {
    char *key; /* points into the spec copy */
    char *val;
};

struct topic_spec {
    char *name; /* points into the spec copy */
    int parts;
    struct topic_kv kv[CONFIGS_MAX];
    int nkv;
    bool created;
};

/* clang-format off */
static const struct chat_cfg_opt topics_opts[] = {
    {"kafka-brokers", "CHAT_KAFKA_BROKERS", CHAT_CFG_STR, 0, 0, "",
     offsetof(struct topics_cfg, brokers), CHAT_CFG_REQUIRED, "Kafka bootstrap servers"},
    {"topics", "CHATCTL_TOPICS", CHAT_CFG_STR, 0, 0, "", offsetof(struct topics_cfg, topics),
     CHAT_CFG_REQUIRED, "topic specs NAME:PARTITIONS[:KEY=VALUE...], separated by blanks"},
    {"replicas", "CHATCTL_REPLICAS", CHAT_CFG_INT, 1, 32, "1",
     offsetof(struct topics_cfg, replicas), 0, "replication factor of topics it creates"},
    {"timeout-ms", "CHATCTL_TIMEOUT_MS", CHAT_CFG_INT, 100, 600000, "10000",
     offsetof(struct topics_cfg, timeout_ms), 0, "give up after this long"},
};
/* clang-format on */

/* Splits copy (modified in place) into specs. Prints every error; returns the count or -1. */
static int parse_specs(char *copy, struct topic_spec *specs)
{
    char *save = NULL, *tok;
    int n = 0, bad = 0;

    for (tok = strtok_r(copy, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        struct topic_spec *s;
        char *f, *fsave = NULL;
        long long parts;

        if (n == TOPICS_MAX) {
            fprintf(stderr, "config error: more than %d topics\n", TOPICS_MAX);
            return -1;
        }
        s = &specs[n];
        memset(s, 0, sizeof(*s));
        s->name = strtok_r(tok, ":", &fsave);
        f = strtok_r(NULL, ":", &fsave);
        if (!s->name || !f || chat_parse_ll(f, 1, 10000, &parts) != CHAT_OK) {
            fprintf(stderr, "config error: topic spec '%s': want NAME:PARTITIONS[:K=V...]\n",
                    s->name ? s->name : tok);
            bad = 1;
            continue;
        }
        s->parts = (int)parts;
        while ((f = strtok_r(NULL, ":", &fsave)) != NULL) {
            char *eq = strchr(f, '=');

            if (!eq || eq == f || s->nkv == CONFIGS_MAX) {
                fprintf(stderr, "config error: topic %s: '%s' is not KEY=VALUE (at most %d)\n",
                        s->name, f, CONFIGS_MAX);
                bad = 1;
                break;
            }
            *eq = '\0';
            s->kv[s->nkv].key = f;
            s->kv[s->nkv].val = eq + 1;
            s->nkv++;
        }
        n++;
    }
    if (n == 0 && !bad)
        fprintf(stderr, "config error: CHATCTL_TOPICS (--topics) lists no topic\n");
    return bad || n == 0 ? -1 : n;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - chat_mono_ms();

    return left > 0 ? (int)left : 0;
}

/* Options of an admin request of kind op that ends by the deadline (the operation timeout
 * applies to CreateTopics only; librdkafka refuses it for other kinds, which is fine). */
static rd_kafka_AdminOptions_t *admin_opts(rd_kafka_t *rk, rd_kafka_admin_op_t op, int64_t deadline)
{
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, op);
    char err[256];

    (void)rd_kafka_AdminOptions_set_operation_timeout(opt, remaining_ms(deadline), err,
                                                      sizeof(err));
    (void)rd_kafka_AdminOptions_set_request_timeout(opt, remaining_ms(deadline) + 1, err,
                                                    sizeof(err));
    return opt;
}

/* Waits for the result event of the admin request what on q. NULL (printed) on a timeout or a
 * request-level error. */
static rd_kafka_event_t *admin_result(rd_kafka_queue_t *q, int64_t deadline, const char *what)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, remaining_ms(deadline) + 1000);

    if (ev && !rd_kafka_event_error(ev))
        return ev;
    fprintf(stderr, "chatctl: %s: %s\n", what, ev ? rd_kafka_event_error_string(ev) : "timed out");
    if (ev)
        rd_kafka_event_destroy(ev);
    return NULL;
}

/* Creates the specs not in existing metadata. Returns CHAT_OK or CHAT_EIO (printed). */
static int create_missing(rd_kafka_t *rk,
                          struct topic_spec *specs,
                          int n,
                          int replicas,
                          const struct rd_kafka_metadata *md,
                          int64_t deadline)
{
    rd_kafka_NewTopic_t *nt[TOPICS_MAX];
    rd_kafka_AdminOptions_t *opt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    char err[256];
    int k = 0, rc = CHAT_OK;

    for (int i = 0; i < n; i++) {
        bool found = false;

        for (int t = 0; t < md->topic_cnt && !found; t++)
            found = strcmp(md->topics[t].topic, specs[i].name) == 0 &&
                    md->topics[t].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        if (found)
            continue;
        nt[k] = rd_kafka_NewTopic_new(specs[i].name, specs[i].parts, replicas, err, sizeof(err));
        if (!nt[k]) {
            fprintf(stderr, "chatctl: topic %s: %s\n", specs[i].name, err);
            rc = CHAT_EIO;
            goto out;
        }
        for (int j = 0; j < specs[i].nkv; j++)
            if (rd_kafka_NewTopic_set_config(nt[k], specs[i].kv[j].key, specs[i].kv[j].val)) {
                fprintf(stderr, "chatctl: topic %s: bad config %s\n", specs[i].name,
                        specs[i].kv[j].key);
                k++;
                rc = CHAT_EIO;
                goto out;
            }
        specs[i].created = true;
        k++;
    }
    if (k == 0)
        return CHAT_OK;
    opt = admin_opts(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, deadline);
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, (size_t)k, opt, q);
    ev = admin_result(q, deadline, "CreateTopics");
    if (!ev) {
        rc = CHAT_EIO;
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        const rd_kafka_topic_result_t **tr;
        size_t cnt = 0;

        tr = rd_kafka_CreateTopics_result_topics(res, &cnt);
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);

            if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) /* created meanwhile by another */
                for (int s = 0; s < n; s++)
                    if (strcmp(specs[s].name, rd_kafka_topic_result_name(tr[i])) == 0)
                        specs[s].created = false;
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                continue;
            fprintf(stderr, "chatctl: creating %s: %s\n", rd_kafka_topic_result_name(tr[i]),
                    rd_kafka_topic_result_error_string(tr[i]));
            rc = CHAT_EIO;
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opt);
out:
    for (int i = 0; i < k; i++)
        rd_kafka_NewTopic_destroy(nt[i]);
    return rc;
}

/* Checks one topic of md against its spec: 1 ready, 0 not yet (no leader), -1 wrong count. */
static int topic_ready(const struct rd_kafka_metadata *md, const struct topic_spec *s)
{
    for (int t = 0; t < md->topic_cnt; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];

        if (strcmp(mt->topic, s->name) != 0)
            continue;
        if (mt->err)
            return 0;
        if (mt->partition_cnt != s->parts)
            return mt->partition_cnt > 0 ? -1 : 0;
        for (int p = 0; p < mt->partition_cnt; p++)
            if (mt->partitions[p].err || mt->partitions[p].leader < 0)
                return 0;
        return 1;
    }
    return 0;
}

/* Polls metadata until every spec'd topic is ready. CHAT_OK, or CHAT_EIO (printed). */
static int wait_leaders(rd_kafka_t *rk, const struct topic_spec *specs, int n, int64_t deadline)
{
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int ready = 0, wrong = -1;

        if (rd_kafka_metadata(rk, 1, NULL, &md, remaining_ms(deadline) + 1) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int i = 0; i < n; i++) {
                int r = topic_ready(md, &specs[i]);

                ready += r == 1;
                if (r < 0)
                    wrong = i;
            }
            if (wrong >= 0) {
                for (int t = 0; t < md->topic_cnt; t++)
                    if (strcmp(md->topics[t].topic, specs[wrong].name) == 0)
                        fprintf(stderr,
                                "chatctl: topic %s has %d partitions, the spec says %d (never "
                                "change it on a live cluster: delete the topic or the cluster)\n",
                                specs[wrong].name, md->topics[t].partition_cnt, specs[wrong].parts);
                rd_kafka_metadata_destroy(md);
                return CHAT_EIO;
            }
            rd_kafka_metadata_destroy(md);
            if (ready == n)
                return CHAT_OK;
        }
        if (remaining_ms(deadline) == 0) {
            fprintf(stderr, "chatctl: topics not ready (no leader for every partition) in time\n");
            return CHAT_EIO;
        }
        nanosleep(&(struct timespec){.tv_nsec = POLL_MS * 1000000L}, NULL);
    }
}

/* Reads every topic's configs back, compares them with the specs and prints the lines. */
static int check_configs(rd_kafka_t *rk, const struct topic_spec *specs, int n, int64_t deadline)
{
    rd_kafka_ConfigResource_t *cr[TOPICS_MAX];
    rd_kafka_AdminOptions_t *opt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    const rd_kafka_ConfigResource_t **rr;
    size_t cnt = 0;
    int rc = CHAT_OK;

    for (int i = 0; i < n; i++)
        cr[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, specs[i].name);
    opt = admin_opts(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, deadline);
    q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, cr, (size_t)n, opt, q);
    ev = admin_result(q, deadline, "DescribeConfigs");
    if (!ev) {
        rc = CHAT_EIO;
        goto out;
    }
    rr = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
    for (int i = 0; i < n; i++) {
        const rd_kafka_ConfigEntry_t **ce = NULL;
        size_t nce = 0;

        for (size_t r = 0; r < cnt; r++)
            if (strcmp(rd_kafka_ConfigResource_name(rr[r]), specs[i].name) == 0 &&
                !rd_kafka_ConfigResource_error(rr[r]))
                ce = rd_kafka_ConfigResource_configs(rr[r], &nce);
        if (!ce) {
            fprintf(stderr, "chatctl: no configs for topic %s\n", specs[i].name);
            rc = CHAT_EIO;
            continue;
        }
        printf("%s partitions=%d %s", specs[i].name, specs[i].parts,
               specs[i].created ? "created" : "exists");
        for (int j = 0; j < specs[i].nkv; j++) {
            const char *have = NULL;

            for (size_t e = 0; e < nce; e++)
                if (strcmp(rd_kafka_ConfigEntry_name(ce[e]), specs[i].kv[j].key) == 0)
                    have = rd_kafka_ConfigEntry_value(ce[e]);
            printf(" %s=%s", specs[i].kv[j].key, have ? have : "(none)");
            if (!have || strcmp(have, specs[i].kv[j].val) != 0) {
                fprintf(stderr, "chatctl: topic %s: %s is %s, the spec says %s\n", specs[i].name,
                        specs[i].kv[j].key, have ? have : "(unset)", specs[i].kv[j].val);
                rc = CHAT_EIO;
            }
        }
        printf("\n");
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opt);
    for (int i = 0; i < n; i++)
        rd_kafka_ConfigResource_destroy(cr[i]);
    return rc;
}

int ctl_topics_main(int argc, char **argv)
{
    struct topics_cfg cfg = {0};
    struct topic_spec specs[TOPICS_MAX];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    rd_kafka_resp_err_t err;
    char *copy = NULL, errstr[512];
    int64_t deadline;
    int rc, n, status = 2;

    rc = chat_cfg_load(topics_opts, CHAT_CFG_COUNT(topics_opts), &cfg, argc, argv,
                       "Creates the listed Kafka topics when missing and checks them.");
    if (rc == 1) {
        status = 0;
        goto out;
    }
    if (rc != CHAT_OK)
        goto out;
    copy = chat_xstrdup(cfg.topics);
    n = parse_specs(copy, specs);
    if (n < 0)
        goto out;
    status = 1;
    deadline = chat_mono_ms() + cfg.timeout_ms;
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg.brokers, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "client.id", "chatctl", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr))) {
        fprintf(stderr, "chatctl: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        status = 2;
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "chatctl: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    err = rd_kafka_metadata(rk, 1, NULL, &md, remaining_ms(deadline) + 1);
    if (err) {
        fprintf(stderr, "chatctl: Kafka at %s: %s\n", cfg.brokers, rd_kafka_err2str(err));
        goto out;
    }
    rc = create_missing(rk, specs, n, cfg.replicas, md, deadline);
    rd_kafka_metadata_destroy(md);
    if (rc == CHAT_OK)
        rc = wait_leaders(rk, specs, n, deadline);
    if (rc == CHAT_OK)
        rc = check_configs(rk, specs, n, deadline);
    if (rc == CHAT_OK && fflush(stdout) == 0)
        status = 0;
out:
    if (rk)
        rd_kafka_destroy(rk);
    chat_free(copy);
    chat_cfg_free(topics_opts, CHAT_CFG_COUNT(topics_opts), &cfg);
    return status;
}
