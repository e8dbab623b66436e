/* it_stream.h - a steady stream of chat messages between two users for fault tests: one user
 * sends on one gateway, another reads on a gateway (usually the other one), both in a room of
 * their own. Every send is tracked by its client_msg_id: acknowledged, refused (with the error
 * code) or still pending, and every delivery to the reader is counted, so a test can prove that
 * every send was answered and every acknowledged message arrived exactly once and was stored
 * once. Every wait is bounded and fails the test (cmocka) when it runs out. */
#ifndef IT_STREAM_H
#define IT_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "wsc.h"

#define IT_STREAM_MAX 1024 /* sends per stream */

enum it_outcome { IT_PENDING, IT_ACKED, IT_REFUSED };

struct it_stream {
    struct wsc *tx, *rx;
    char room[64];
    char prefix[48];                    /* of every client_msg_id and text: "m-<tag>-<pid>-" */
    int n;                              /* sends so far */
    enum it_outcome out[IT_STREAM_MAX]; /* by send number */
    int seen[IT_STREAM_MAX];            /* deliveries to rx by send number */
    char code[IT_STREAM_MAX][32];       /* error code of a refused send */
};

int64_t it_now_ms(void); /* monotonic */
/* tests/integration/fixtures/cluster.sh VERB SVC on the test cluster; its exit status. */
int it_fixture(const char *verb, const char *svc);

/* Connects a sender to tx_url and a reader to rx_url (users "<tag>_tx", "<tag>_rx") and joins
 * both to room "<tag>-<pid>". */
void it_stream_open(struct it_stream *st, const char *tag, const char *tx_url, const char *rx_url);
void it_stream_close(struct it_stream *st);
/* The send number in "<prefix><n>" (a client_msg_id or a text of st); -1 when not st's. */
int it_stream_msg_no(const struct it_stream *st, const char *s);
/* Sends the next message (not waiting for its answer). */
void it_stream_send(struct it_stream *st);
/* Reads one frame of the sender within timeout_ms (acks, errors); false when none came. */
bool it_stream_pump(struct it_stream *st, int timeout_ms);
int it_stream_pending(const struct it_stream *st);
int it_stream_count(const struct it_stream *st, enum it_outcome o);
/* Waits until every send is answered. */
void it_stream_answer_all(struct it_stream *st, int timeout_ms);
/* Sends count messages and expects every one acknowledged. */
void it_stream_send_acked(struct it_stream *st, int count);
/* Reads the reader until every acknowledged message arrived; fails on a duplicate. Returns the
 * number of distinct messages delivered (acknowledged ones, plus any refused one that was
 * stored after all). */
int it_stream_deliver_all(struct it_stream *st, int timeout_ms);
/* Waits until PostgreSQL holds want rows for the room, then checks rows and distinct
 * client_msg_ids both equal want. */
void it_stream_check_stored(const struct it_stream *st, int want, int timeout_ms);

#endif
