/* it_stream.c - see it_stream.h. */
#include "it_stream.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "it_user.h"
#include "it_util.h"

int64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int it_fixture(const char *verb, const char *svc)
{
    return it_sh("%s/fixtures/cluster.sh %s %s %s", IT_SRC_DIR, verb, svc, it_env("CHAT_TEST_DIR"));
}

void it_stream_open(struct it_stream *st, const char *tag, const char *tx_url, const char *rx_url)
{
    char user[64], *tok;

    memset(st, 0, sizeof(*st));
    snprintf(st->room, sizeof(st->room), "%s-%d", tag, (int)getpid());
    snprintf(st->prefix, sizeof(st->prefix), "m-%s-%d-", tag, (int)getpid());
    snprintf(user, sizeof(user), "%s_tx", tag);
    tok = it_token(user, 3600);
    st->tx = it_connect(tx_url, tok);
    free(tok);
    snprintf(user, sizeof(user), "%s_rx", tag);
    tok = it_token(user, 3600);
    st->rx = it_connect(rx_url, tok);
    free(tok);
    it_join(st->tx, st->room);
    it_join(st->rx, st->room);
}

void it_stream_close(struct it_stream *st)
{
    wsc_close(st->tx);
    wsc_close(st->rx);
    st->tx = st->rx = NULL;
}

int it_stream_msg_no(const struct it_stream *st, const char *s)
{
    size_t plen = strlen(st->prefix);
    char *end;
    long v;

    if (!s || strncmp(s, st->prefix, plen) != 0)
        return -1;
    v = strtol(s + plen, &end, 10);
    return *end == '\0' && v >= 0 && v < IT_STREAM_MAX ? (int)v : -1;
}

void it_stream_send(struct it_stream *st)
{
    char id[80];

    assert_true(st->n < IT_STREAM_MAX);
    snprintf(id, sizeof(id), "%s%d", st->prefix, st->n);
    it_send(st->tx, "{s:s, s:s, s:s, s:s}", "type", "send", "room", st->room, "text", id,
            "client_msg_id", id);
    st->out[st->n++] = IT_PENDING;
}

bool it_stream_pump(struct it_stream *st, int timeout_ms)
{
    char *txt = NULL;
    const char *type, *code;
    json_t *j;
    int k;

    if (wsc_recv_text(st->tx, &txt, timeout_ms, NULL) != 1)
        return false;
    j = json_loads(txt, 0, NULL);
    wsc_free_text(txt);
    assert_non_null(j);
    type = json_string_value(json_object_get(j, "type"));
    k = it_stream_msg_no(st, json_string_value(json_object_get(j, "client_msg_id")));
    if (type && k >= 0 && strcmp(type, "ack") == 0) {
        if (st->out[k] != IT_PENDING)
            fail_msg("send %d answered twice", k);
        st->out[k] = IT_ACKED;
    } else if (type && k >= 0 && strcmp(type, "error") == 0) {
        if (st->out[k] != IT_PENDING)
            fail_msg("send %d answered twice", k);
        st->out[k] = IT_REFUSED;
        code = json_string_value(json_object_get(j, "code"));
        snprintf(st->code[k], sizeof(st->code[k]), "%s", code ? code : "(none)");
    }
    json_decref(j);
    return true;
}

int it_stream_count(const struct it_stream *st, enum it_outcome o)
{
    int c = 0;

    for (int i = 0; i < st->n; i++)
        c += st->out[i] == o;
    return c;
}

int it_stream_pending(const struct it_stream *st)
{
    return it_stream_count(st, IT_PENDING);
}

void it_stream_answer_all(struct it_stream *st, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;

    while (it_stream_pending(st) > 0) {
        if (it_now_ms() > deadline)
            fail_msg("%s: %d of %d sends unanswered after %d ms", st->room, it_stream_pending(st),
                     st->n, timeout_ms);
        it_stream_pump(st, 200);
    }
}

void it_stream_send_acked(struct it_stream *st, int count)
{
    for (int i = 0; i < count; i++)
        it_stream_send(st);
    it_stream_answer_all(st, it_timeout(15000));
    for (int i = st->n - count; i < st->n; i++)
        if (st->out[i] != IT_ACKED)
            fail_msg("%s: send %d refused (%s)", st->room, i, st->code[i]);
}

int it_stream_deliver_all(struct it_stream *st, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    int delivered = 0;

    for (;;) {
        char *txt = NULL;
        int missing = 0;

        for (int i = 0; i < st->n; i++)
            missing += st->out[i] == IT_ACKED && st->seen[i] == 0;
        if (missing == 0)
            break;
        if (it_now_ms() > deadline)
            fail_msg("%s: %d acknowledged messages not delivered after %d ms", st->room, missing,
                     timeout_ms);
        if (wsc_recv_text(st->rx, &txt, 200, NULL) == 1) {
            json_t *j = json_loads(txt, 0, NULL);
            const char *type = json_string_value(json_object_get(j, "type"));

            if (type && strcmp(type, "message") == 0) {
                int k = it_stream_msg_no(st, json_string_value(json_object_get(j, "text")));
                if (k >= 0)
                    st->seen[k]++;
            }
            json_decref(j);
            wsc_free_text(txt);
        }
    }
    for (int i = 0; i < st->n; i++) {
        if (st->seen[i] > 1)
            fail_msg("%s: message %d delivered %d times", st->room, i, st->seen[i]);
        delivered += st->seen[i] > 0;
    }
    return delivered;
}

void it_stream_check_stored(const struct it_stream *st, int want, int timeout_ms)
{
    PGconn *pg = PQconnectdb(it_env("CHAT_TEST_PG_DSN"));
    int64_t t0 = it_now_ms();
    long long rows;

    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    for (;;) {
        rows = it_pg_count(pg, "SELECT count(*) FROM messages WHERE room = $1", st->room);
        if (rows >= want || it_now_ms() - t0 > timeout_ms)
            break;
        usleep(100 * 1000); /* polling the database for a condition */
    }
    assert_int_equal(rows, want);
    assert_int_equal(
        it_pg_count(pg, "SELECT count(DISTINCT client_msg_id) FROM messages WHERE room = $1",
                    st->room),
        want);
    PQfinish(pg);
}
