/* test_bench.c - unit tests of chat-bench's pieces without a network: WebSocket framing
 * (masking, lengths, fragmentation flags, protocol errors, the accept value of RFC 6455),
 * scanning of server frames as the codec writes them (prev of a message, recovered/replayed of a
 * joined), send templates, join with since, message texts, the seq tracker and the prev chain
 * (gaps, duplicates, the continuation after a reconnect). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "chat/buf.h"
#include "chat/mem.h"
#include "chat/proto.h"

#include "bench_proto.h"
#include "bench_track.h"
#include "bench_ws.h"

static void test_ws_accept_rfc_example(void **state)
{
    char acc[29];

    (void)state;
    bench_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", acc); /* RFC 6455 section 1.3 */
    assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void roundtrip(size_t n, bool masked)
{
    unsigned char mask[4] = {0x11, 0x22, 0x33, 0x44};
    unsigned char *buf = chat_xmalloc(n + BENCH_WS_HDR_MAX), *src = chat_xmalloc(n + 1);
    struct bench_ws_frame f;
    size_t h;

    for (size_t i = 0; i < n; i++)
        src[i] = (unsigned char)(i * 7);
    h = bench_ws_header(buf, BENCH_WS_TEXT, true, n, masked ? mask : NULL);
    memcpy(buf + h, src, n);
    if (masked)
        bench_ws_mask(buf + h, n, mask);
    assert_int_equal(bench_ws_parse(buf, h + n - 1, 1 << 20, &f), 0); /* incomplete */
    assert_int_equal(bench_ws_parse(buf, h + n, 1 << 20, &f), (long)(h + n));
    assert_int_equal(f.opcode, BENCH_WS_TEXT);
    assert_true(f.fin);
    assert_int_equal(f.masked, masked);
    assert_int_equal(f.len, n);
    assert_memory_equal(f.payload, src, n);
    chat_free(buf);
    chat_free(src);
}

static void test_ws_lengths(void **state)
{
    (void)state;
    roundtrip(1, true);
    roundtrip(125, false);
    roundtrip(126, true);
    roundtrip(65535, false);
    roundtrip(65536, true);
    roundtrip(70001, true);
}

static void test_ws_errors(void **state)
{
    struct bench_ws_frame f;
    unsigned char rsv[] = {0xC1, 0x00};            /* RSV1 */
    unsigned char bigping[] = {0x89, 126, 0, 200}; /* control frame > 125 */
    unsigned char fragping[] = {0x09, 0x00};       /* fragmented control frame */
    unsigned char op3[] = {0x83, 0x00};            /* reserved opcode */
    unsigned char big[] = {0x81, 126, 0x10, 0x00};

    (void)state;
    assert_int_equal(bench_ws_parse(rsv, sizeof(rsv), 100, &f), -1);
    assert_int_equal(bench_ws_parse(bigping, sizeof(bigping), 1000, &f), -1);
    assert_int_equal(bench_ws_parse(fragping, sizeof(fragping), 100, &f), -1);
    assert_int_equal(bench_ws_parse(op3, sizeof(op3), 100, &f), -1);
    assert_int_equal(bench_ws_parse(big, sizeof(big), 100, &f), -1); /* over max */
    assert_int_equal(bench_ws_parse(rsv, 1, 100, &f), 0);
}

static void test_scan_message_from_codec(void **state)
{
    struct chat_buf b;
    struct chat_event_msg m = {.room = "br-1",
                               .user = "u\"seq\":1",
                               .nick = "\"text\":\"x",
                               .text = "b:7:42:123456789:xxxx",
                               .client_msg_id = "c",
                               .id = 99,
                               .ts = 1,
                               .seq = 1234};
    struct bench_frame f;
    uint32_t sender, num;
    int64_t ns;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_message(&b, &m), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.type, CHAT_F_message);
    assert_int_equal(f.seq, 1234);
    assert_int_equal(f.room_len, 4);
    assert_memory_equal(f.room, "br-1", 4);
    assert_true(bench_text_parse(f.text, f.text_len, &sender, &num, &ns));
    assert_int_equal(sender, 7);
    assert_int_equal(num, 42);
    assert_int_equal(ns, 123456789);
    chat_buf_fini(&b);
}

/* A message as a gateway splices it: with "prev" right after "seq", and without. */
static void test_scan_message_prev(void **state)
{
    struct chat_buf v, b;
    struct chat_event_msg m = {.room = "br-1",
                               .user = "u",
                               .nick = "\"prev\":7",
                               .text = "b:7:42:123456789:xxxx",
                               .id = 99,
                               .ts = 1,
                               .seq = -1};
    struct bench_frame f;

    (void)state;
    chat_buf_init(&v, 0, 0);
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_message(&v, &m), CHAT_OK);
    assert_int_equal(chat_msg_splice_seq_prev(&b, chat_buf_data(&v), v.len, 1234, 1201), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.type, CHAT_F_message);
    assert_int_equal(f.seq, 1234);
    assert_int_equal(f.prev, 1201);
    assert_int_equal(f.room_len, 4);
    assert_memory_equal(f.room, "br-1", 4);
    assert_int_equal(f.text_len, strlen(m.text));
    chat_buf_reset(&b);
    assert_int_equal(chat_msg_splice_seq_prev(&b, chat_buf_data(&v), v.len, 1234, -1), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.seq, 1234);
    assert_int_equal(f.prev, -1); /* absent: not the "prev" inside nick */
    assert_memory_equal(f.room, "br-1", 4);
    chat_buf_fini(&b);
    chat_buf_fini(&v);
}

static void test_scan_joined_since(void **state)
{
    struct chat_buf b;
    struct bench_frame f;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_joined_since(&b, "lobby", "r", true, 17, -1), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.type, CHAT_F_joined);
    assert_int_equal(f.recovered, 1);
    assert_int_equal(f.replayed, 17);
    assert_int_equal(f.room_len, 5);
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_joined_since(&b, "lobby", "r", false, 0, 40), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.recovered, 0);
    assert_int_equal(f.replayed, -1);
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_joined_since(&b, "lobby", NULL, false, 0, -1), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.recovered, 0);
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_joined(&b, "lobby", "j"), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.recovered, -1); /* a join without since */
    assert_int_equal(f.replayed, -1);
    chat_buf_fini(&b);
}

static void test_enc_join_since(void **state)
{
    struct chat_cframe f;
    enum chat_errcode err;
    char buf[128];
    size_t n;

    (void)state;
    n = bench_enc_join_since(buf, sizeof(buf), "b1-0", 4321, "r");
    assert_true(n > 0);
    assert_int_equal(chat_cframe_decode(buf, n, 2000, &f, &err), CHAT_OK);
    assert_int_equal(f.type, CHAT_F_join);
    assert_string_equal(f.room, "b1-0");
    assert_int_equal(f.since, 4321);
    chat_cframe_fini(&f);
    assert_int_equal(bench_enc_join_since(buf, 10, "b1-0", 4321, "r"), 0); /* does not fit */
}

static void test_scan_other_frames(void **state)
{
    struct chat_buf b;
    struct bench_frame f;
    uint64_t ref;

    (void)state;
    chat_buf_init(&b, 0, 0);
    assert_int_equal(chat_enc_ack(&b, "c-1", 5, 77, 1, "0000000042"), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.type, CHAT_F_ack);
    assert_int_equal(f.seq, 77);
    assert_true(bench_ref_parse(f.ref, f.ref_len, &ref));
    assert_int_equal(ref, 42);
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_error(&b, CHAT_ERR_rate_limited, NULL, NULL, "12", 250), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.type, CHAT_F_error);
    assert_int_equal(bench_frame_errcode(&f), CHAT_ERR_rate_limited);
    assert_int_equal(f.ref_len, 2);
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_joined(&b, "lobby", "j"), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.type, CHAT_F_joined);
    assert_int_equal(f.room_len, 5);
    chat_buf_reset(&b);
    assert_int_equal(chat_enc_presence(&b, "lobby", 1, 1), CHAT_OK);
    bench_frame_scan(chat_buf_data(&b), b.len, &f);
    assert_int_equal(f.type, CHAT_F_presence);
    bench_frame_scan("[1]", 3, &f);
    assert_int_equal(f.type, CHAT_F_NONE);
    chat_buf_fini(&b);
}

static void test_template_decodes(void **state)
{
    struct bench_tpl t;
    struct chat_cframe f;
    enum chat_errcode err;
    char text[65];

    (void)state;
    assert_int_equal(bench_tpl_init(&t, "b1-0", 64), CHAT_OK);
    bench_text_fill(text, 64, 3, 9, 1234567890123LL);
    bench_tpl_fill(&t, 9, text);
    assert_int_equal(chat_cframe_decode(t.buf, t.len, 2000, &f, &err), CHAT_OK);
    assert_int_equal(f.type, CHAT_F_send);
    assert_string_equal(f.room, "b1-0");
    assert_string_equal(f.ref, "0000000009");
    assert_int_equal(f.text_len, 64);
    assert_memory_equal(f.text, "b:3:9:1234567890123:xx", 22);
    chat_cframe_fini(&f);
    bench_tpl_fini(&t);
    assert_int_equal(bench_tpl_init(&t, "bad room", 64), CHAT_EINVAL);
}

static void test_track(void **state)
{
    struct bench_track t;
    int64_t acked[] = {10, 20, 30, 40, 50};

    (void)state;
    bench_track_init(&t);
    assert_int_equal(bench_track_seen(&t, 10), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 30), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_seen(&t, 30), BENCH_SEEN_DUP);
    assert_int_equal(bench_track_seen(&t, 20), BENCH_SEEN_REORDER);
    assert_int_equal(bench_track_seen(&t, 20), BENCH_SEEN_DUP);
    assert_int_equal(bench_track_seen(&t, 5000), BENCH_SEEN_NEW); /* grows */
    assert_int_equal(bench_track_missing(&t, acked, 5), 2);       /* 40 and 50 */
    bench_track_fini(&t);
}

/* The prev chain: a break is seen as it arrives; an absent prev or a first message checks
 * nothing; a duplicate is a duplicate, not a break. */
static void test_track_chain_break(void **state)
{
    struct bench_track t;

    (void)state;
    bench_track_init(&t);
    assert_int_equal(bench_track_msg(&t, 10, 7), BENCH_SEEN_NEW); /* nothing held yet */
    assert_int_equal(bench_track_msg(&t, 12, 10), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_msg(&t, 20, 15), BENCH_SEEN_GAP); /* 15 was missed */
    assert_true(bench_track_has(&t, 20));                          /* still recorded */
    assert_int_equal(bench_track_msg(&t, 25, 20), BENCH_SEEN_NEW); /* the chain goes on */
    assert_int_equal(bench_track_msg(&t, 30, -1), BENCH_SEEN_NEW); /* no prev: no check */
    assert_int_equal(bench_track_msg(&t, 25, 20), BENCH_SEEN_DUP);
    assert_int_equal(bench_track_msg(&t, 12, 10), BENCH_SEEN_DUP);
    assert_int_equal(bench_track_msg(&t, 28, 25), BENCH_SEEN_REORDER); /* below the last */
    assert_int_equal(t.last, 30);
    bench_track_fini(&t);
}

/* A reconnect: the tracker outlives the connection, the new one joins with since = last; the
 * replay must continue the chain from it, and a replayed message already held is a duplicate. */
static void test_track_recovery(void **state)
{
    struct bench_track t;
    int64_t acked[] = {100, 110, 120, 130, 140};

    (void)state;
    bench_track_init(&t);
    assert_int_equal(bench_track_msg(&t, 100, -1), BENCH_SEEN_NEW);
    assert_int_equal(bench_track_msg(&t, 110, 100), BENCH_SEEN_NEW);
    /* cut here; join {since: t.last} */
    assert_int_equal(t.last, 110);
    assert_int_equal(bench_track_msg(&t, 120, 110), BENCH_SEEN_NEW); /* replayed */
    assert_int_equal(bench_track_msg(&t, 130, 120), BENCH_SEEN_NEW); /* replayed */
    assert_int_equal(bench_track_msg(&t, 130, 120), BENCH_SEEN_DUP); /* sent twice */
    assert_int_equal(bench_track_msg(&t, 140, 130), BENCH_SEEN_NEW); /* live */
    assert_int_equal(bench_track_missing(&t, acked, 5), 0);
    /* a second cut: the gateway could not replay (recovered false), live goes on after 150 */
    assert_int_equal(bench_track_msg(&t, 160, 150), BENCH_SEEN_GAP);
    bench_track_fini(&t);
}

static void test_seqs_sort(void **state)
{
    struct bench_seqs s = {0};

    (void)state;
    bench_seqs_push(&s, 5);
    bench_seqs_push(&s, 1);
    bench_seqs_push(&s, 5);
    bench_seqs_push(&s, 3);
    bench_seqs_sort(&s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.v[0], 1);
    assert_int_equal(s.v[2], 5);
    bench_seqs_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_accept_rfc_example),
        cmocka_unit_test(test_ws_lengths),
        cmocka_unit_test(test_ws_errors),
        cmocka_unit_test(test_scan_message_from_codec),
        cmocka_unit_test(test_scan_message_prev),
        cmocka_unit_test(test_scan_joined_since),
        cmocka_unit_test(test_enc_join_since),
        cmocka_unit_test(test_scan_other_frames),
        cmocka_unit_test(test_template_decodes),
        cmocka_unit_test(test_track),
        cmocka_unit_test(test_track_chain_break),
        cmocka_unit_test(test_track_recovery),
        cmocka_unit_test(test_seqs_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
