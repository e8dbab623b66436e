/* tests/unit/test_pres_publish.c - presence publishing (presence/src/pres_publish.c): what one
 * tick produces and how delivery reports make the next tick resend. No broker: the test links
 * with -Wl,--wrap=rd_kafka_producev (records are captured, or refused on demand) and includes
 * pres_publish.c to hand made-up delivery reports to its static on_delivery(). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "chat/keys.h"

#include "../../presence/src/pres_publish.c"

#define REC_MAX 16

/* One record handed to the (wrapped) producer. */
struct rec {
    char key[64];
    char value[256];
    void *opaque; /* RD_KAFKA_V_OPAQUE: a 0/0 record's id, else NULL */
};

/* What the wrapped rd_kafka_producev saw; reset by each test's tick(). */
static struct rec recs[REC_MAX];
static size_t nrecs;
static const char *refuse_key; /* producev refuses the record with this key (NULL: none) */

rd_kafka_resp_err_t __wrap_rd_kafka_producev(rd_kafka_t *rk, ...);

/* Parses the RD_KAFKA_V_* pairs pres_publish() passes and captures the record. */
rd_kafka_resp_err_t __wrap_rd_kafka_producev(rd_kafka_t *rk, ...)
{
    struct rec r = {.opaque = NULL};
    va_list ap;
    bool end = false;

    (void)rk;
    va_start(ap, rk);
    while (!end) {
        int vt = va_arg(ap, int);
        const char *ptr;
        size_t len;

        switch (vt) {
        case RD_KAFKA_VTYPE_END:
            end = true;
            break;
        case RD_KAFKA_VTYPE_RKT:
            (void)va_arg(ap, rd_kafka_topic_t *);
            break;
        case RD_KAFKA_VTYPE_KEY:
        case RD_KAFKA_VTYPE_VALUE:
            ptr = va_arg(ap, void *);
            len = va_arg(ap, size_t);
            (void)snprintf(vt == RD_KAFKA_VTYPE_KEY ? r.key : r.value,
                           vt == RD_KAFKA_VTYPE_KEY ? sizeof(r.key) : sizeof(r.value), "%.*s",
                           (int)len, ptr);
            break;
        case RD_KAFKA_VTYPE_MSGFLAGS:
            (void)va_arg(ap, int);
            break;
        case RD_KAFKA_VTYPE_OPAQUE:
            r.opaque = va_arg(ap, void *);
            break;
        default:
            fail_msg("unexpected producev argument type %d", vt);
        }
    }
    va_end(ap);
    if (refuse_key && strcmp(r.key, refuse_key) == 0)
        return RD_KAFKA_RESP_ERR__QUEUE_FULL;
    assert_true(nrecs < REC_MAX);
    recs[nrecs++] = r;
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* The captured record with key, or NULL. */
static struct rec *rec_find(const char *key)
{
    for (size_t i = 0; i < nrecs; i++) {
        if (strcmp(recs[i].key, key) == 0)
            return &recs[i];
    }
    return NULL;
}

/* The captured record with key; fails the test when there is none. */
static struct rec *rec_get(const char *key)
{
    static struct rec none;
    struct rec *r = rec_find(key);

    if (!r) {
        fail_msg("no record with key %s", key);
        return &none; /* not reached */
    }
    return r;
}

/* One leader tick as main.c runs it (diff, then publish), with agg emptied afterwards. */
static void tick(struct pres *p, struct pres_tab *agg)
{
    struct pres_changes ch;
    bool full = p->force_full;

    nrecs = 0;
    p->force_full = false;
    pres_changes_init(&ch);
    (void)pres_diff(agg, &p->last, full, &ch);
    if (ch.len)
        (void)pres_publish(p, &ch);
    pres_changes_fini(&ch);
    pres_tab_fini(agg);
}

/* Hands the delivery report of the captured record with key to on_delivery(). */
static void report(struct pres *p, const char *key, rd_kafka_resp_err_t err)
{
    struct rec *r = rec_get(key);
    rd_kafka_message_t m = {.err = err};

    m.key = r->key;
    m.key_len = strlen(r->key);
    m._private = r->opaque;
    on_delivery(NULL, &m, p);
}

static void init(struct pres *p, struct pres_tab *agg)
{
    memset(p, 0, sizeof(*p));
    pres_tab_init(&p->last);
    pres_tab_init(agg);
    nrecs = 0;
    refuse_key = NULL;
}

/* The audit's case: a room vanishes, its 0/0 is lost in delivery; the forced full tick must
 * send 0/0 again, and once that is delivered the room is forgotten. */
static void test_pres_publish_zero_resent_after_failed_delivery(void **state)
{
    struct pres p;
    struct pres_tab agg;

    (void)state;
    init(&p, &agg);
    pres_agg_add_conns(&agg, "r1", 2);
    pres_agg_add_user(&agg, "r1", "u1");
    tick(&p, &agg);
    assert_int_equal(nrecs, 2); /* r1 and the total */
    assert_null(rec_get("r1")->opaque);
    report(&p, "r1", RD_KAFKA_RESP_ERR_NO_ERROR);
    report(&p, CHAT_KEY_PRES_ALL, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_false(p.force_full);
    /* r1 vanishes: 0/0, whose delivery fails */
    tick(&p, &agg);
    assert_int_equal(nrecs, 1);
    assert_non_null(strstr(rec_get("r1")->value, "\"conns\":0"));
    assert_non_null(rec_get("r1")->opaque);
    report(&p, "r1", RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    assert_true(p.force_full);
    assert_int_equal(chat_metric_get(&p.m.publish_errors), 1);
    /* the forced full tick sends it again; this time it is delivered */
    tick(&p, &agg);
    assert_int_equal(nrecs, 2);
    assert_non_null(strstr(rec_get("r1")->value, "\"conns\":0"));
    report(&p, "r1", RD_KAFKA_RESP_ERR_NO_ERROR);
    /* forgotten: neither a normal nor a full tick mentions it again */
    tick(&p, &agg);
    assert_int_equal(nrecs, 0);
    assert_null(pres_tab_get(&p.last, "r1"));
    p.force_full = true;
    tick(&p, &agg);
    assert_int_equal(nrecs, 1);
    assert_null(rec_find("r1"));
    pres_tab_fini(&p.last);
}

/* A 0/0 the producer refuses is sent again by the next (full) tick. */
static void test_pres_publish_zero_resent_after_refused_produce(void **state)
{
    struct pres p;
    struct pres_tab agg;

    (void)state;
    init(&p, &agg);
    pres_agg_add_conns(&agg, "r1", 1);
    tick(&p, &agg);
    report(&p, "r1", RD_KAFKA_RESP_ERR_NO_ERROR);
    refuse_key = "r1";
    tick(&p, &agg);
    assert_int_equal(nrecs, 0);
    assert_true(p.force_full);
    refuse_key = NULL;
    tick(&p, &agg);
    assert_non_null(strstr(rec_get("r1")->value, "\"conns\":0"));
    report(&p, "r1", RD_KAFKA_RESP_ERR_NO_ERROR);
    p.force_full = true;
    tick(&p, &agg);
    assert_null(rec_find("r1"));
    pres_tab_fini(&p.last);
}

/* Two 0/0 records of one room in flight: the older one's success does not confirm the room
 * while the newer one may still fail. */
static void test_pres_publish_zero_confirmed_by_latest_record(void **state)
{
    struct pres p;
    struct pres_tab agg;
    struct rec first;

    (void)state;
    init(&p, &agg);
    pres_agg_add_conns(&agg, "r1", 1);
    tick(&p, &agg);
    tick(&p, &agg); /* r1 vanishes: 0/0 record #1 in flight */
    first = *rec_get("r1");
    p.force_full = true; /* another record failed meanwhile */
    tick(&p, &agg);      /* 0/0 record #2 */
    assert_ptr_not_equal(rec_get("r1")->opaque, first.opaque);
    on_delivery(NULL,
                &(rd_kafka_message_t){
                    .key = first.key, .key_len = strlen(first.key), ._private = first.opaque},
                &p);
    tick(&p, &agg);
    assert_non_null(pres_tab_get(&p.last, "r1")); /* still pending */
    p.force_full = true;
    tick(&p, &agg);
    assert_non_null(rec_find("r1")); /* #3 */
    report(&p, "r1", RD_KAFKA_RESP_ERR_NO_ERROR);
    tick(&p, &agg);
    assert_null(pres_tab_get(&p.last, "r1"));
    pres_tab_fini(&p.last);
}

/* A room whose id cannot be encoded (not UTF-8) can never be sent: its 0/0 is not kept pending
 * (it would be retried and kept in memory for ever). */
static void test_pres_publish_unencodable_zero_forgotten(void **state)
{
    struct pres p;
    struct pres_tab agg;

    (void)state;
    init(&p, &agg);
    pres_agg_add_conns(&agg, "bad\xff", 1);
    tick(&p, &agg);
    assert_int_equal(nrecs, 1); /* the total only */
    tick(&p, &agg);             /* vanishes: its 0/0 cannot be encoded either */
    assert_int_equal(nrecs, 0);
    assert_int_equal(chat_metric_get(&p.m.publish_errors), 2);
    assert_false(p.force_full);
    p.force_full = true;
    tick(&p, &agg);
    assert_int_equal(nrecs, 1);
    assert_int_equal(chat_metric_get(&p.m.publish_errors), 2);
    assert_null(pres_tab_get(&p.last, "bad\xff"));
    pres_tab_fini(&p.last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pres_publish_zero_resent_after_failed_delivery),
        cmocka_unit_test(test_pres_publish_zero_resent_after_refused_produce),
        cmocka_unit_test(test_pres_publish_zero_confirmed_by_latest_record),
        cmocka_unit_test(test_pres_publish_unencodable_zero_forgotten),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
