/* test_ps_guard.c - the deadline of a database operation (persister/src/ps_guard.c): an armed
 * socket is shut down at its deadline, at once on a second signal, and PS_DRAIN_MS after a first
 * (here a short drain); a disarmed one never; each cut counted once. A socketpair stands in for
 * the connection: the peer reads end-of-file when its end is shut down. */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chat/time.h"

#include "ps.h"

#define WAIT_MS 10000 /* a generous bound for "it happens"; the test never sleeps on luck */

struct fixture {
    struct ps_guard g;
    atomic_int stop;
    atomic_llong stop_at; /* as the persister's signal handler: stored before stop counts */
    atomic_llong cuts;
    int sv[2];
};

static int setup(void **state)
{
    struct fixture *f = test_calloc(1, sizeof(*f));

    atomic_init(&f->stop, 0);
    atomic_init(&f->stop_at, 0);
    atomic_init(&f->cuts, 0);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv) != 0 ||
        ps_guard_start(&f->g, &f->stop, &f->stop_at, 200, &f->cuts) != CHAT_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    ps_guard_stop(&f->g);
    ps_guard_stop(&f->g); /* idempotent */
    close(f->sv[0]);
    close(f->sv[1]);
    test_free(f);
    return 0;
}

/* True when sv[1] reads end-of-file (sv[0] was shut down) within ms. */
static bool peer_sees_eof(struct fixture *f, int ms)
{
    struct pollfd p = {.fd = f->sv[1], .events = POLLIN};
    char c;

    return poll(&p, 1, ms) == 1 && read(f->sv[1], &c, 1) == 0;
}

static void test_ps_guard_cuts_at_deadline(void **state)
{
    struct fixture *f = *state;

    ps_guard_arm(&f->g, f->sv[0], chat_mono_ms() + 50);
    assert_true(peer_sees_eof(f, WAIT_MS));
    assert_true(ps_guard_disarm(&f->g));
    assert_int_equal(atomic_load(&f->cuts), 1);
    assert_false(ps_guard_disarm(&f->g)); /* reported once */
}

static void test_ps_guard_disarmed_never_cuts(void **state)
{
    struct fixture *f = *state;
    struct pollfd p = {.fd = f->sv[1], .events = POLLIN};

    ps_guard_arm(&f->g, f->sv[0], chat_mono_ms() + 3600000);
    assert_false(ps_guard_disarm(&f->g));  /* ended in time */
    atomic_store(&f->stop, 2);             /* nothing armed: nothing to cut */
    ps_guard_arm(&f->g, -1, 0);            /* not a socket: ignored */
    assert_int_equal(poll(&p, 1, 300), 0); /* past the drain: the socket is still open */
    assert_int_equal(atomic_load(&f->cuts), 0);
    assert_int_equal(write(f->sv[0], "x", 1), 1);
}

static void test_ps_guard_second_signal_cuts_at_once(void **state)
{
    struct fixture *f = *state;

    ps_guard_arm(&f->g, f->sv[0], chat_mono_ms() + 3600000);
    atomic_store(&f->stop_at, chat_mono_ms());
    atomic_store(&f->stop, 2);
    assert_true(peer_sees_eof(f, WAIT_MS));
    assert_true(ps_guard_disarm(&f->g));
    assert_true(ps_guard_stop_ms(&f->g) > 0);
}

static void test_ps_guard_first_signal_cuts_after_drain(void **state)
{
    struct fixture *f = *state;
    int64_t t0;

    ps_guard_arm(&f->g, f->sv[0], chat_mono_ms() + 3600000);
    t0 = chat_mono_ms();
    atomic_store(&f->stop_at, t0);
    atomic_store(&f->stop, 1);
    assert_true(peer_sees_eof(f, WAIT_MS));
    /* not before the drain's end (200 ms here), counted from the signal's time */
    assert_true(chat_mono_ms() - t0 >= 200);
    assert_true(ps_guard_stop_ms(&f->g) >= t0);
    assert_true(ps_guard_disarm(&f->g));
    assert_int_equal(atomic_load(&f->cuts), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ps_guard_cuts_at_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ps_guard_disarmed_never_cuts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ps_guard_second_signal_cuts_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ps_guard_first_signal_cuts_after_drain, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
