/* it_recovery.c - exact recovery after a reconnect (issue 11, proto/README.md "join" and
 * "message"): every delivered message carries seq and prev (the room's previous event as the
 * gateway saw it); join {room, since} on ANY gateway replays exactly the events after since
 * that the gateway holds, in order, then continues live, with no gap and no duplicate, and
 * answers recovered: true; a room the gateway does not know answers recovered: false. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "it_acct.h"
#include "it_util.h"
#include "wsc.h"

#define WAIT_MS 10000

/* The message cmid on c: its seq (and prev in *prev, -1 when absent). */
static long long message_seq(struct wsc *c, const char *cmid, long long *prev)
{
    json_t *m = it_wait_frame(c, "message", "client_msg_id", cmid, NULL, it_timeout(WAIT_MS));
    json_t *p;
    long long seq;

    if (!m)
        fail_msg("message %s did not arrive", cmid);
    seq = it_jint(m, "seq");
    p = json_object_get(m, "prev");
    *prev = json_is_integer(p) ? (long long)json_integer_value(p) : -1;
    json_decref(m);
    return seq;
}

/* Joins room with since on c; returns the joined frame. */
static json_t *join_since(struct wsc *c, const char *room, long long since)
{
    json_t *j;

    it_send(c, "{s:s, s:s, s:I}", "type", "join", "room", room, "since", (json_int_t)since);
    j = it_wait_frame(c, "joined", "room", room, NULL, it_timeout(WAIT_MS));
    if (!j)
        fail_msg("no joined for %s", room);
    return j;
}

/* The next n messages on c (presence frames skipped): their client_msg_ids must be want[], in
 * order, each prev the seq before it (the first: after). Returns the last seq. */
static long long expect_replay(struct wsc *c, const char *const *want, int n, long long after)
{
    long long seq = after;

    for (int i = 0; i < n; i++) {
        json_t *m = it_wait_frame(c, "message", NULL, NULL, NULL, it_timeout(WAIT_MS));
        long long s;

        if (!m)
            fail_msg("replayed message %d of %d missing", i + 1, n);
        if (strcmp(it_jstr(m, "client_msg_id"), want[i]) != 0)
            fail_msg("message %d: %s, expected %s", i + 1, it_jstr(m, "client_msg_id"), want[i]);
        s = it_jint(m, "seq");
        if (s <= seq || it_jint(m, "prev") != seq)
            fail_msg("message %s: seq %lld prev %lld after %lld", want[i], s, it_jint(m, "prev"),
                     seq);
        seq = s;
        json_decref(m);
    }
    return seq;
}

static void test_join_since_replays_exactly_the_missed(void **state)
{
    static const char *const missed[] = {"m3", "m4", "m5"};
    char room[64], unknown[64];
    char *tok = it_token("recovery_sender", 600);
    struct wsc *b, *a, *a2, *a3;
    long long s1, s2, s5, prev;
    json_t *j;

    (void)state;
    it_room_new(room, sizeof(room), "rec");
    it_room_new(unknown, sizeof(unknown), "recnone");
    b = it_connect(GW2, tok);  /* the sender */
    a = it_connect(GW1, NULL); /* a watcher whose gateway goes away (here: its socket) */
    it_join(b, room);
    it_join(a, room);
    it_expect_sent(b, room, "one", "m1", NULL);
    it_expect_sent(b, room, "two", "m2", NULL);
    s1 = message_seq(a, "m1", &prev);
    s2 = message_seq(a, "m2", &prev);
    assert_true(s2 > s1);
    assert_int_equal(prev, s1); /* the gap check a client makes: prev == the seq it holds */
    wsc_close(a);
    for (int i = 0; i < 3; i++)
        it_expect_sent(b, room, "missed", missed[i], NULL);

    /* back on the OTHER gateway: exactly m3, m4, m5 after m2, then live. An ack may come before
     * the gateway consumed the record: what it does not hold yet arrives live, after the
     * replayed ones (replayed <= 3), never twice and never missing */
    a2 = it_connect(GW2, NULL);
    j = join_since(a2, room, s2);
    assert_true(json_is_true(json_object_get(j, "recovered")));
    assert_true(it_jint(j, "replayed") <= 3);
    json_decref(j);
    s5 = expect_replay(a2, missed, 3, s2);
    it_expect_sent(b, room, "live", "m6", NULL);
    {
        static const char *const live[] = {"m6"};
        (void)expect_replay(a2, live, 1, s5); /* no duplicate of m3-m5 before it, no gap */
    }

    /* the same on the first gateway, from m1 on */
    a3 = it_connect(GW1, NULL);
    j = join_since(a3, room, s1);
    assert_true(json_is_true(json_object_get(j, "recovered")));
    assert_true(it_jint(j, "replayed") <= 5);
    json_decref(j);
    {
        static const char *const all[] = {"m2", "m3", "m4", "m5", "m6"}, *const next[] = {"m7"};
        long long s6 = expect_replay(a3, all, 5, s1);
        it_expect_sent(b, room, "after", "m7", NULL); /* the next one: no duplicate before it */
        (void)expect_replay(a3, next, 1, s6);
    }
    /* up to date: recovered with nothing to replay */
    j = join_since(a3, room, 1LL << 50);
    assert_true(json_is_true(json_object_get(j, "recovered")));
    assert_int_equal(it_jint(j, "replayed"), 0);
    json_decref(j);
    /* a room this gateway never saw: not recovered, nothing held */
    j = join_since(a3, unknown, 5);
    assert_true(json_is_false(json_object_get(j, "recovered")));
    assert_true(json_is_null(json_object_get(j, "oldest")));
    json_decref(j);
    /* a bad since is refused */
    it_send(a3, "{s:s, s:s, s:s}", "type", "join", "room", room, "since", "12");
    j = it_wait_frame(a3, "error", NULL, NULL, NULL, it_timeout(WAIT_MS));
    assert_non_null(j);
    assert_string_equal(it_jstr(j, "code"), "bad_field");
    json_decref(j);

    wsc_close(a2);
    wsc_close(a3);
    wsc_close(b);
    free(tok);
}

/* A client may come from a gateway that is ahead of this one: its since is past what this
 * gateway has consumed of the room. The events up to since then reach this gateway after the
 * join; the client holds them, so they must not come again: exactly the events after since
 * arrive, from the first on (a since in the future stands for a gateway that lags). */
static void test_join_since_ahead_of_this_gateway(void **state)
{
    static const char *const ids[] = {"k2", "k3", "k4", "k5"};
    const char *want[4];
    char room[64];
    char *tok = it_token("recovery_ahead", 600);
    struct wsc *b, *a, *w, *a2;
    long long s1, since, after, seq[4], prev;
    int n = 0;
    json_t *j;

    (void)state;
    it_room_new(room, sizeof(room), "recahead");
    b = it_connect(GW1, tok);
    a = it_connect(GW1, NULL); /* sees every event of the room, with its seq */
    w = it_connect(GW2, NULL); /* the second gateway holds the room from k1 on */
    it_join(b, room);
    it_join(a, room);
    it_join(w, room);
    it_expect_sent(b, room, "one", "k1", NULL);
    s1 = message_seq(a, "k1", &prev);
    assert_int_equal(message_seq(w, "k1", &prev), s1); /* consumed there: not a room it never saw */
    since = s1 + 2; /* two events the second gateway will only see after the join */

    a2 = it_connect(GW2, NULL);
    j = join_since(a2, room, since);
    assert_true(json_is_true(json_object_get(j, "recovered")));
    assert_int_equal(it_jint(j, "replayed"), 0);
    json_decref(j);
    after = s1;
    for (int i = 0; i < 4; i++) {
        it_expect_sent(b, room, ids[i], ids[i], NULL); /* texts differ: the spam rule */
        seq[i] = message_seq(a, ids[i], &prev);
        if (seq[i] <= since)
            after = seq[i]; /* held by the client: never sent to it */
        else
            want[n++] = ids[i];
    }
    assert_true(n >= 1); /* k5 at least: the room's events follow each other in its partition */
    (void)expect_replay(a2, want, n, after);
    wsc_close(a2);
    wsc_close(w);
    wsc_close(a);
    wsc_close(b);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_since_replays_exactly_the_missed),
        cmocka_unit_test(test_join_since_ahead_of_this_gateway),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
