/* test_gw_ring.c - a connection's send queue (gateway/src/ws/gw_ring.c, linked from gw_core):
 * FIFO order across wrap-around and growth, the byte count, the references it holds, growth
 * capped at the maximum, the inline slots, a big ring given back when it empties, a small one
 * when trimmed, and conflation of latest-value frames. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <string.h>

#include "chat/mem.h"
#include "chat/msg.h"

#include "ws/gw_ring.h"

/* A frame whose payload is "n" (decimal): its length varies with n, its text names it. */
static struct chat_msg *frame(int n)
{
    char s[16];
    int len = snprintf(s, sizeof(s), "%d", n);
    return chat_msg_new(s, (size_t)len);
}

static int frame_no(const struct chat_msg *m)
{
    char s[16];
    int n = -1;

    assert_true(m->len < sizeof(s));
    memcpy(s, m->buf + LWS_PRE, m->len);
    s[m->len] = '\0';
    assert_int_equal(sscanf(s, "%d", &n), 1);
    return n;
}

static size_t frame_len(int n)
{
    char s[16];
    return (size_t)snprintf(s, sizeof(s), "%d", n);
}

static void test_fifo_wrap_grow(void **state)
{
    struct gw_ring r = {0};
    int next_in = 0, next_out = 0;
    size_t bytes = 0;

    (void)state;
    /* pushes and pops interleaved so the ring wraps before each growth */
    for (int round = 0; round < 200; round++) {
        int k = round % 7 + 1;
        for (int i = 0; i < k; i++) {
            struct chat_msg *m = frame(next_in);
            bytes += m->len;
            gw_ring_push(&r, m, 1000);
            assert_int_equal(m->refs, 2); /* ours and the ring's */
            chat_msg_unref(m);
            next_in++;
        }
        assert_int_equal(r.len, next_in - next_out);
        assert_true(r.cap >= r.len && r.cap <= 1000);
        assert_int_equal(r.bytes, bytes);
        for (int i = 0; i < r.len; i++)
            assert_int_equal(frame_no(gw_ring_at(&r, i)), next_out + i);
        int drop = (round % 5) < r.len ? round % 5 : r.len;
        for (int i = 0; i < drop; i++)
            bytes -= frame_len(next_out + i);
        gw_ring_pop(&r, drop);
        next_out += drop;
        assert_int_equal(r.bytes, bytes);
    }
    gw_ring_fini(&r);
    assert_null(r.v);
    assert_int_equal(r.len, 0);
    assert_int_equal(r.bytes, 0);
}

static void test_growth_capped_and_refs(void **state)
{
    enum { MAX = 10 };
    struct gw_ring r = {0};
    struct chat_msg *m = frame(7);

    (void)state;
    for (int i = 0; i < MAX; i++) {
        gw_ring_push(&r, m, MAX);
        assert_true(r.cap == GW_RING_INLINE || r.cap == GW_RING_MIN_CAP ||
                    r.cap == 2 * GW_RING_MIN_CAP || r.cap == MAX);
    }
    assert_int_equal(r.cap, MAX); /* 2 inline, 4, 8, then MAX rather than 16 */
    assert_int_equal(m->refs, 1 + MAX);
    gw_ring_pop(&r, 3);
    assert_int_equal(m->refs, 1 + MAX - 3);
    gw_ring_fini(&r); /* drops the rest */
    assert_int_equal(m->refs, 1);
    chat_msg_unref(m);
}

static void test_shrink_when_empty(void **state)
{
    struct gw_ring r = {0};
    struct chat_msg *m = frame(1);

    (void)state;
    /* a small ring is kept when it empties: no malloc churn */
    for (int i = 0; i < 3; i++)
        gw_ring_push(&r, m, 100000);
    gw_ring_pop(&r, 3);
    assert_int_equal(r.len, 0);
    assert_int_equal(r.cap, GW_RING_MIN_CAP);
    assert_non_null(r.v);
    assert_ptr_not_equal(r.v, r.inl);
    /* ... until the idle sweep trims it */
    gw_ring_trim(&r);
    assert_null(r.v);
    assert_int_equal(r.cap, 0);
    /* a ring that grew to GW_RING_SHRINK_CAP slots or more is given back */
    for (int i = 0; i < GW_RING_SHRINK_CAP; i++)
        gw_ring_push(&r, m, 100000);
    assert_true(r.cap >= GW_RING_SHRINK_CAP);
    gw_ring_pop(&r, GW_RING_SHRINK_CAP - 1);
    assert_non_null(r.v); /* not yet empty */
    gw_ring_pop(&r, 1);
    assert_null(r.v);
    assert_int_equal(r.cap, 0);
    assert_int_equal(r.bytes, 0);
    /* and it works again from nothing */
    gw_ring_push(&r, m, 100000);
    assert_int_equal(r.cap, GW_RING_INLINE);
    assert_ptr_equal(r.v, r.inl);
    assert_ptr_equal(gw_ring_at(&r, 0), m);
    gw_ring_fini(&r);
    gw_ring_fini(&r); /* safe on a finished ring */
    assert_int_equal(m->refs, 1);
    chat_msg_unref(m);
}

/* Up to GW_RING_INLINE frames need no heap; the next one moves them, in order, to the heap. A
 * ring with frames queued is not trimmed. */
static void test_inline_slots(void **state)
{
    struct gw_ring r = {0};
    struct chat_msg *m[GW_RING_INLINE + 1];

    (void)state;
    for (int i = 0; i <= GW_RING_INLINE; i++)
        m[i] = frame(i);
    for (int round = 0; round < 3; round++) { /* wraps inside the inline slots */
        for (int i = 0; i < GW_RING_INLINE; i++)
            gw_ring_push(&r, m[i], 100);
        assert_ptr_equal(r.v, r.inl);
        assert_int_equal(r.cap, GW_RING_INLINE);
        gw_ring_pop(&r, 1);
        gw_ring_push(&r, m[0], 100);
        assert_ptr_equal(r.v, r.inl);
        assert_ptr_equal(gw_ring_at(&r, 0), m[1]);
        gw_ring_pop(&r, GW_RING_INLINE);
        gw_ring_trim(&r);
        assert_null(r.v);
    }
    for (int i = 0; i <= GW_RING_INLINE; i++)
        gw_ring_push(&r, m[i], 100);
    assert_ptr_not_equal(r.v, r.inl);
    assert_int_equal(r.cap, GW_RING_MIN_CAP);
    for (int i = 0; i <= GW_RING_INLINE; i++)
        assert_ptr_equal(gw_ring_at(&r, i), m[i]);
    gw_ring_trim(&r); /* not empty: kept */
    assert_int_equal(r.len, GW_RING_INLINE + 1);
    assert_ptr_equal(gw_ring_at(&r, GW_RING_INLINE), m[GW_RING_INLINE]);
    gw_ring_fini(&r);
    assert_null(r.v);
    for (int i = 0; i <= GW_RING_INLINE; i++) {
        assert_int_equal(m[i]->refs, 1);
        chat_msg_unref(m[i]);
    }
}

/* Conflation: a latest-value frame replaces the queued one of its key in place (across a wrap),
 * the byte count follows, references move, and other keys and ordinary frames are left alone. */
static void test_replace_latest(void **state)
{
    struct gw_ring r = {0};
    struct chat_msg *a1 = frame(100), *a2 = frame(2000), *b1 = frame(3), *plain = frame(4);
    struct chat_msg *none = frame(5);

    (void)state;
    a1->latest = a2->latest = 11;
    b1->latest = 22;
    none->latest = 33;
    /* wrap the ring first: the replaced slot is not at index head + i without the modulo */
    for (int i = 0; i < 3; i++)
        gw_ring_push(&r, plain, 100);
    gw_ring_pop(&r, 3);
    gw_ring_push(&r, plain, 100);
    gw_ring_push(&r, a1, 100);
    gw_ring_push(&r, b1, 100);
    gw_ring_push(&r, plain, 100);
    assert_int_equal(r.bytes, 1 + 3 + 1 + 1);
    assert_false(gw_ring_replace_latest(&r, none)); /* no frame of its key */
    assert_int_equal(none->refs, 1);
    assert_true(gw_ring_replace_latest(&r, a2));
    assert_int_equal(r.len, 4);
    assert_ptr_equal(gw_ring_at(&r, 1), a2); /* a1's place */
    assert_ptr_equal(gw_ring_at(&r, 2), b1);
    assert_int_equal(r.bytes, 1 + 4 + 1 + 1);
    assert_int_equal(a1->refs, 1); /* the ring let go of it */
    assert_int_equal(a2->refs, 2);
    gw_ring_fini(&r);
    assert_int_equal(a2->refs, 1);
    assert_int_equal(plain->refs, 1);
    chat_msg_unref(a1);
    chat_msg_unref(a2);
    chat_msg_unref(b1);
    chat_msg_unref(plain);
    chat_msg_unref(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_wrap_grow),    cmocka_unit_test(test_growth_capped_and_refs),
        cmocka_unit_test(test_shrink_when_empty), cmocka_unit_test(test_inline_slots),
        cmocka_unit_test(test_replace_latest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
