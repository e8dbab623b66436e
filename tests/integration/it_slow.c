/* it_slow.c - a client that stops reading is disconnected with close code 4008 once its send
 * queue passes the limit, while everyone else in the room keeps receiving everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "it_util.h"

#define N 10000 /* 10 MB: more than the kernel buffers (a few MB) plus the 1 MB queue cap */

struct reader {
    struct wsc *c;
    int got;
};

/* Reads messages as fast as they come, on its own thread. */
static void *read_all(void *arg)
{
    struct reader *r = arg;
    while (r->got < N) {
        char *t;
        if (wsc_recv_text(r->c, &t, it_timeout(20000), NULL) <= 0)
            break;
        if (strstr(t, "\"type\":\"message\""))
            r->got++;
        wsc_free_text(t);
    }
    return NULL;
}

static void test_slow_reader_disconnected_others_unaffected(void **state)
{
    (void)state;
    char room[64], text[1001], *tok = it_token("flooder", 600);
    struct wsc *sender = it_connect(it_env("CHAT_TEST_GW1_URL"), tok);
    struct wsc *slow = it_connect(it_env("CHAT_TEST_GW1_URL"), NULL);
    struct wsc *fast = it_connect(it_env("CHAT_TEST_GW2_URL"), NULL);
    int close_code = 0, acked = 0, sent = 0;
    struct reader fr = {fast, 0};
    pthread_t th;
    char *t;

    snprintf(room, sizeof(room), "slow-%d", (int)getpid());
    memset(text, 'x', 1000);
    text[1000] = '\0';
    it_join(slow, room);
    it_join(sender, room); /* the sender reads its echoes while it waits for acks */
    it_join(fast, room);
    assert_int_equal(pthread_create(&th, NULL, read_all, &fr), 0);
    /* ~10 MB to the room; the slow client reads nothing meanwhile */
    while (acked < N) {
        while (sent < N && sent - acked < 50) {
            char no[16];
            /* each text differs (the spam rule refuses a text repeated 4 times in 5) */
            int n = snprintf(no, sizeof(no), "%d ", sent);
            memcpy(text, no, (size_t)n);
            it_send(sender, "{s:s, s:s, s:s}", "type", "send", "room", room, "text", text);
            sent++;
        }
        json_t *a = it_wait_type(sender, "ack", it_timeout(15000));
        if (!a)
            fail_msg("ack %d missing (close code %d)", acked, wsc_last_close_code(sender));
        json_decref(a);
        acked++;
    }
    /* the fast reader gets all of it */
    pthread_join(th, NULL);
    if (fr.got != N)
        fail_msg("fast reader got only %d of %d", fr.got, N);
    /* the slow reader (it simply never read: normal socket buffers) finds, after what was
     * already in flight, a 4008 close */
    while (wsc_recv_text(slow, &t, it_timeout(15000), &close_code) > 0)
        wsc_free_text(t);
    assert_int_equal(close_code, 4008);
    char *body = NULL;
    assert_int_equal(it_http_get(it_env("CHAT_TEST_GW1_URL"), "/metrics", &body), 200);
    assert_null(strstr(body, "chat_gateway_slow_consumer_closes_total 0\n"));
    free(body);
    wsc_close(slow);
    wsc_close(fast);
    wsc_close(sender);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_reader_disconnected_others_unaffected),
    };
    it_env_load();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
