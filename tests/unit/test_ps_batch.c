/* test_ps_batch.c - the persister's batch: owned rows, offsets to commit, dropping revoked
 * partitions and the PostgreSQL array-literal parameters (persister/src/ps_batch.c). */
/* cmocka.h needs these three headers first */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
/* clang-format on */

#include <stdint.h>
#include <string.h>

#include "ps.h"

#define TS_2024_02_29 1709164800000LL

static struct chat_event_msg msg(uint64_t id, const char *room, const char *text, const char *cmid)
{
    struct chat_event_msg m = {
        .room = room,
        .user = "u1",
        .nick = "Nick",
        .text = text,
        .client_msg_id = cmid,
        .id = id,
        .ts = TS_2024_02_29 + 1234,
        .seq = -1,
    };
    return m;
}

static int64_t next_of(const struct ps_batch *b, int32_t partition)
{
    for (size_t i = 0; i < b->ncommits; i++)
        if (b->commits[i].partition == partition)
            return b->commits[i].next;
    return -1;
}

static void test_ps_batch_add_copies_and_tracks_offsets(void **state)
{
    struct ps_batch b;
    char text[] = "hello";
    struct chat_event_msg m = msg(7, "lobby", text, NULL);

    (void)state;
    ps_batch_init(&b);
    assert_false(ps_batch_pending(&b));
    assert_int_equal(ps_batch_add(&b, 3, 100, &m, NULL, 0, 5000), CHAT_OK);
    text[0] = 'J'; /* the batch owns a copy */
    assert_string_equal(b.rows[0].body, "hello");
    assert_string_equal(b.rows[0].room, "lobby");
    assert_null(b.rows[0].cmid);
    assert_int_equal(b.rows[0].day, 19782);
    assert_int_equal(b.rows[0].id, 7);
    assert_true(ps_batch_pending(&b));
    assert_int_equal(b.first_ms, 5000);
    assert_int_equal(ps_batch_add(&b, 3, 101, &m, NULL, 0, 6000), CHAT_OK);
    assert_int_equal(ps_batch_add(&b, 5, 9, &m, NULL, 0, 7000), CHAT_OK);
    assert_int_equal(b.first_ms, 5000); /* age counts from the first record */
    assert_int_equal(b.n, 3);
    assert_int_equal(b.ncommits, 2);
    assert_int_equal(next_of(&b, 3), 102);
    assert_int_equal(next_of(&b, 5), 10);
    ps_batch_fini(&b);
}

static void test_ps_batch_skip_commits_without_row(void **state)
{
    struct ps_batch b;
    struct chat_event_msg m = msg(1, "r", "t", "c1");

    (void)state;
    ps_batch_init(&b);
    ps_batch_skip(&b, 2, 40, 100);
    assert_true(ps_batch_pending(&b));
    assert_int_equal(b.n, 0);
    assert_int_equal(b.first_ms, 100);
    assert_int_equal(next_of(&b, 2), 41);
    assert_int_equal(ps_batch_add(&b, 2, 39, &m, NULL, 0, 200),
                     CHAT_OK); /* older offset: no rewind */
    assert_int_equal(next_of(&b, 2), 41);
    ps_batch_reset(&b);
    assert_false(ps_batch_pending(&b));
    assert_int_equal(b.n, 0);
    ps_batch_fini(&b);
    ps_batch_fini(&b); /* idempotent */
}

/* The offsets of a written batch join the held ones: the greater per partition, never back, and
 * the destination's rows and first_ms stay as they were. */
static void test_ps_batch_merge_commits(void **state)
{
    struct ps_batch held, b;

    (void)state;
    ps_batch_init(&held);
    ps_batch_init(&b);
    ps_batch_merge_commits(&held, &b); /* nothing to merge */
    assert_false(ps_batch_pending(&held));
    ps_batch_skip(&b, 1, 10, 100);
    ps_batch_skip(&b, 2, 20, 100);
    ps_batch_merge_commits(&held, &b);
    assert_true(ps_batch_pending(&held));
    assert_int_equal(held.first_ms, 0); /* offsets only: nothing waits for a write */
    assert_int_equal(held.n, 0);
    assert_int_equal(next_of(&held, 1), 11);
    assert_int_equal(next_of(&held, 2), 21);
    ps_batch_reset(&b);
    ps_batch_skip(&b, 2, 15, 200); /* older than held: no rewind */
    ps_batch_skip(&b, 3, 30, 200);
    ps_batch_skip(&b, 1, 12, 200);
    ps_batch_merge_commits(&held, &b);
    assert_int_equal(held.ncommits, 3);
    assert_int_equal(next_of(&held, 1), 13);
    assert_int_equal(next_of(&held, 2), 21);
    assert_int_equal(next_of(&held, 3), 31);
    assert_int_equal(held.first_ms, 0);
    ps_batch_fini(&held);
    ps_batch_fini(&b);
}

static void test_ps_batch_add_rejects_unstorable(void **state)
{
    struct ps_batch b;
    struct chat_event_msg m = msg((uint64_t)INT64_MAX + 1, "r", "t", NULL);

    (void)state;
    ps_batch_init(&b);
    assert_int_equal(ps_batch_add(&b, 0, 1, &m, NULL, 0, 1), CHAT_EINVAL);
    m = msg(1, "r", "t", NULL);
    m.ts = -1; /* before 1970 */
    assert_int_equal(ps_batch_add(&b, 0, 1, &m, NULL, 0, 1), CHAT_EINVAL);
    m.ts = INT64_MAX;
    assert_int_equal(ps_batch_add(&b, 0, 1, &m, NULL, 0, 1), CHAT_EINVAL);
    assert_int_equal(b.n, 0);
    assert_false(ps_batch_pending(&b));
    m = msg((uint64_t)INT64_MAX, "r", "t", NULL);
    assert_int_equal(ps_batch_add(&b, 0, 1, &m, NULL, 0, 1), CHAT_OK);
    ps_batch_fini(&b);
}

static void test_ps_batch_drop_partitions(void **state)
{
    struct ps_batch b;
    struct chat_event_msg m1 = msg(1, "a", "x", NULL), m2 = msg(2, "b", "y", NULL),
                          m3 = msg(3, "c", "z", NULL);
    const int32_t revoked[] = {1, 7};

    (void)state;
    ps_batch_init(&b);
    assert_int_equal(ps_batch_add(&b, 0, 10, &m1, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_batch_add(&b, 1, 20, &m2, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_batch_add(&b, 2, 30, &m3, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_batch_add(&b, 1, 21, &m2, NULL, 0, 1), CHAT_OK);
    ps_batch_skip(&b, 7, 5, 1);
    assert_int_equal(ps_batch_drop_partitions(&b, revoked, 2), 2);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.rows[0].id, 1); /* order kept */
    assert_int_equal(b.rows[1].id, 3);
    assert_int_equal(b.ncommits, 2);
    assert_int_equal(next_of(&b, 1), -1);
    assert_int_equal(next_of(&b, 7), -1);
    assert_int_equal(next_of(&b, 0), 11);
    assert_int_equal(next_of(&b, 2), 31);
    assert_int_equal(ps_batch_drop_partitions(&b, revoked, 0), 0);
    ps_batch_fini(&b);
}

static void expect_text(const char *in, const char *want)
{
    struct chat_buf out;

    chat_buf_init(&out, 0, 0);
    assert_int_equal(ps_pg_array_text(&out, in), CHAT_OK);
    assert_string_equal(chat_buf_data(&out), want);
    chat_buf_fini(&out);
}

static void test_ps_batch_array_text_escaping(void **state)
{
    (void)state;
    expect_text(NULL, "NULL");
    expect_text("", "\"\"");
    expect_text("NULL", "\"NULL\""); /* quoted: the text, not a null */
    expect_text("plain", "\"plain\"");
    expect_text("a\"b\\c", "\"a\\\"b\\\\c\"");
    expect_text("\"", "\"\\\"\"");
    expect_text("{x, y}", "\"{x, y}\"");
    expect_text(" lead", "\" lead\"");
    expect_text("h\xc3\xa9llo \xf0\x9f\x98\x80", "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"");
}

static void test_ps_batch_encode_columns(void **state)
{
    struct ps_batch b;
    struct chat_buf cols[PS_NCOLS];
    struct chat_event_msg m1 = msg(11, "lobby", "hi, \"you\"", "c-1");
    struct chat_event_msg m2 = msg(12, "dev", "back\\slash {}", NULL);

    (void)state;
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_init(&cols[i], 0, 0);
    ps_batch_init(&b);
    assert_int_equal(ps_batch_encode(&b, cols), CHAT_OK);
    assert_string_equal(chat_buf_data(&cols[PS_COL_ID]), "{}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_BODY]), "{}");
    assert_int_equal(ps_batch_add(&b, 4, 100, &m1, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_batch_add(&b, 9, 7, &m2, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_batch_encode(&b, cols), CHAT_OK);
    assert_string_equal(chat_buf_data(&cols[PS_COL_ID]), "{11,12}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_ROOM]), "{\"lobby\",\"dev\"}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_PARTITION]), "{4,9}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_OFFSET]), "{100,7}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_USER]), "{\"u1\",\"u1\"}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_NICK]), "{\"Nick\",\"Nick\"}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_BODY]),
                        "{\"hi, \\\"you\\\"\",\"back\\\\slash {}\"}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_CMID]), "{\"c-1\",NULL}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_TS]), "{1709164801234,1709164801234}");
    ps_batch_fini(&b);
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_fini(&cols[i]);
}

/* ---- The COPY data (ps_store_encode): PostgreSQL's binary COPY format, read back here. ---- */
static const unsigned char *copy_p, *copy_end;

static uint64_t be(size_t n)
{
    uint64_t v = 0;

    assert_true(copy_p + n <= copy_end);
    for (size_t i = 0; i < n; i++)
        v = v << 8 | copy_p[i];
    copy_p += n;
    return v;
}

static int64_t field_int(size_t n)
{
    assert_int_equal(be(4), n);
    return n == 8 ? (int64_t)be(8) : (int32_t)be(4);
}

/* A text field ("" marks NULL, the test has no empty text). */
static void field_text(const char *want)
{
    uint32_t len = (uint32_t)be(4);

    if (!*want) {
        assert_int_equal(len, UINT32_MAX); /* -1: NULL */
        return;
    }
    assert_int_equal(len, strlen(want));
    assert_true(copy_p + len <= copy_end);
    assert_memory_equal(copy_p, want, len);
    copy_p += len;
}

static void copy_begin(const struct ps_batch *b)
{
    static const unsigned char head[19] = "PGCOPY\n\377\r\n"; /* then 0s: flags, extension */

    copy_p = (const unsigned char *)chat_buf_data(&b->copy);
    copy_end = copy_p + b->copy.len;
    assert_true(b->copy.len >= sizeof(head));
    assert_memory_equal(copy_p, head, sizeof(head));
    copy_p += sizeof(head);
}

/* message_deleted and system records: rows of their kind, the record as the body; a delete row
 * has a negative id of its position and names the message it deletes. */
static void test_ps_batch_add_event(void **state)
{
    static const char del[] = "{\"type\":\"message_deleted\",\"room\":\"lobby\",\"id\":\"11\","
                              "\"by\":\"7\",\"ts\":1709164801300}";
    static const char sys[] = "{\"type\":\"system\",\"room\":\"lobby\",\"event\":\"joined\","
                              "\"id\":\"13\",\"ts\":1709164801400,\"user\":\"8\",\"nick\":\"Bo\"}";
    static const char ed[] = "{\"type\":\"message_edited\",\"room\":\"lobby\",\"id\":\"11\","
                             "\"user\":\"u\",\"text\":\"new \\\"t\\\"\",\"ts\":1709164801500}";
    struct chat_event_msg m1 = msg(11, "lobby", "hi", NULL);
    struct chat_buf cols[PS_NCOLS];
    struct chat_stream_ev ev;
    struct ps_batch b;
    void *doc = NULL;

    (void)state;
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_init(&cols[i], 0, 0);
    ps_batch_init(&b);
    assert_int_equal(ps_batch_add(&b, 4, 100, &m1, NULL, 0, 1), CHAT_OK);
    assert_int_equal(chat_stream_ev_decode(del, sizeof(del) - 1, &ev, &doc), CHAT_OK);
    assert_int_equal(ps_batch_add_event(&b, 4, 101, &ev, del, sizeof(del) - 1, 1), CHAT_OK);
    chat_json_free(doc);
    assert_int_equal(chat_stream_ev_decode(sys, sizeof(sys) - 1, &ev, &doc), CHAT_OK);
    assert_int_equal(ps_batch_add_event(&b, 4, 102, &ev, sys, sizeof(sys) - 1, 1), CHAT_OK);
    chat_json_free(doc);
    assert_int_equal(chat_stream_ev_decode(ed, sizeof(ed) - 1, &ev, &doc), CHAT_OK);
    assert_int_equal(ps_batch_add_event(&b, 4, 103, &ev, ed, sizeof(ed) - 1, 1), CHAT_OK);
    chat_json_free(doc);
    assert_int_equal(b.n, 4);
    /* an edit: a row of its own position, the message it edits and its new text */
    assert_int_equal(b.rows[3].id, PS_DELETED_ROW_ID(4, 103));
    assert_int_equal(b.rows[3].edits, 11);
    assert_int_equal(b.rows[3].deletes, 0);
    assert_string_equal(b.rows[3].edit_text, "new \"t\"");
    assert_string_equal(b.rows[3].user, "u");
    assert_string_equal(b.rows[3].body, ed);
    assert_int_equal(b.rows[0].edits, 0);
    assert_null(b.rows[0].edit_text);
    assert_int_equal(b.rows[0].deletes, 0);
    assert_int_equal(b.rows[1].deletes, 11);
    assert_int_equal(b.rows[1].id, PS_DELETED_ROW_ID(4, 101));
    assert_true(b.rows[1].id < 0);
    assert_string_equal(b.rows[1].user, "7");
    assert_string_equal(b.rows[1].body, del);
    assert_int_equal(b.rows[2].deletes, 0);
    assert_int_equal(b.rows[2].id, 13);
    assert_string_equal(b.rows[2].nick, "Bo");
    assert_int_equal(b.rows[2].raw_len, sizeof(sys) - 1);
    assert_int_equal(next_of(&b, 4), 104);
    assert_int_equal(ps_batch_encode(&b, cols), CHAT_OK);
    assert_string_equal(chat_buf_data(&cols[PS_COL_KIND]),
                        "{\"message\",\"message_deleted\",\"system\",\"message_edited\"}");
    assert_string_equal(chat_buf_data(&cols[PS_COL_TARGET]), "{NULL,NULL,NULL,11}");
    /* in the COPY data: the edit's target_id as the last field */
    assert_int_equal(ps_store_encode(&b), CHAT_OK);
    copy_begin(&b);
    for (int i = 0; i < 3; i++) { /* skip the first three rows, field by field */
        assert_int_equal(be(2), PS_NCOLS);
        for (int f = 0; f < PS_NCOLS; f++) {
            uint32_t len = (uint32_t)be(4);
            copy_p += len == UINT32_MAX ? 0 : len;
        }
    }
    assert_int_equal(be(2), PS_NCOLS);
    assert_int_equal(field_int(8), PS_DELETED_ROW_ID(4, 103));
    for (int f = 1; f < PS_NCOLS - 1; f++) {
        uint32_t len = (uint32_t)be(4);
        copy_p += len == UINT32_MAX ? 0 : len;
    }
    assert_int_equal(field_int(8), 11);
    assert_ptr_equal(copy_p, copy_end);
    ps_batch_fini(&b);
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_fini(&cols[i]);
}

static void test_ps_batch_encode_cap(void **state)
{
    struct ps_batch b;
    struct chat_buf cols[PS_NCOLS];
    struct chat_event_msg m = msg(1, "r", "a long enough body to overflow", NULL);

    (void)state;
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_init(&cols[i], 0, 16);
    ps_batch_init(&b);
    assert_int_equal(ps_batch_add(&b, 0, 1, &m, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_batch_encode(&b, cols), CHAT_ETOOBIG);
    ps_batch_fini(&b);
    for (int i = 0; i < PS_NCOLS; i++)
        chat_buf_fini(&cols[i]);
}

static void copy_row(const struct chat_event_msg *m, int32_t part, int64_t off, const char *kind)
{
    assert_int_equal(be(2), PS_NCOLS);
    assert_int_equal(field_int(8), (int64_t)m->id);
    field_text(m->room);
    assert_int_equal(field_int(4), part);
    assert_int_equal(field_int(8), off);
    field_text(m->user);
    field_text(m->nick);
    field_text(m->text);
    field_text(m->client_msg_id ? m->client_msg_id : "");
    assert_int_equal(field_int(8), (m->ts - 946684800000LL) * 1000); /* µs since 2000-01-01 */
    field_text(kind);
    field_text(""); /* target_id: NULL but for edits */
}

static void test_ps_batch_copy_binary(void **state)
{
    struct chat_event_msg m1 = msg(41, "lobby", "tab\there\nnew \\N", "c1");
    struct chat_event_msg m2 = msg(42, "other", "\xed\x95\x9c", NULL);
    struct chat_event_msg m3 = msg(43, "lobby", "third", "c3");
    struct ps_batch b;

    (void)state;
    m2.ts = 86400000; /* 1970-01-02: before PostgreSQL's epoch, a negative count */
    ps_batch_init(&b);
    assert_int_equal(ps_batch_add(&b, 2, 500, &m1, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_store_encode(&b), CHAT_OK); /* the rows so far: due early */
    assert_int_equal(b.ncopied, 1);
    assert_int_equal(ps_batch_add(&b, 7, 9, &m2, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_batch_add(&b, 2, 501, &m3, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_store_encode(&b), CHAT_OK); /* only the new ones appended */
    assert_int_equal(ps_store_encode(&b), CHAT_OK); /* nothing new: unchanged */
    copy_begin(&b);
    copy_row(&m1, 2, 500, "message");
    copy_row(&m2, 7, 9, "message");
    copy_row(&m3, 2, 501, "message");
    assert_ptr_equal(copy_p, copy_end); /* the trailer is sent by the store, not kept */

    /* rows dropped (a revoke): encoded again from the header */
    assert_int_equal(ps_batch_drop_partitions(&b, (const int32_t[]){7}, 1), 1);
    assert_int_equal(b.ncopied, 0);
    assert_int_equal(ps_store_encode(&b), CHAT_OK);
    copy_begin(&b);
    copy_row(&m1, 2, 500, "message");
    copy_row(&m3, 2, 501, "message");
    assert_ptr_equal(copy_p, copy_end);

    /* written: the next batch starts with a header of its own */
    ps_batch_clear_rows(&b);
    assert_int_equal(b.copy.len, 0);
    assert_int_equal(ps_batch_add(&b, 7, 10, &m2, NULL, 0, 1), CHAT_OK);
    assert_int_equal(ps_store_encode(&b), CHAT_OK);
    copy_begin(&b);
    copy_row(&m2, 7, 10, "message");
    assert_ptr_equal(copy_p, copy_end);
    ps_batch_fini(&b);
}

static void test_ps_batch_many_rows(void **state)
{
    struct ps_batch b;
    struct chat_event_msg m = msg(1, "r", "t", NULL);

    (void)state;
    ps_batch_init(&b);
    for (int i = 0; i < 5000; i++) {
        m.id = (uint64_t)i + 1;
        assert_int_equal(ps_batch_add(&b, i % 12, i, &m, NULL, 0, 1), CHAT_OK);
    }
    assert_int_equal(b.n, 5000);
    assert_int_equal(b.ncommits, 12);
    assert_int_equal(next_of(&b, 11), 4992); /* last offset of partition 11 is 4991 */
    ps_batch_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ps_batch_add_copies_and_tracks_offsets),
        cmocka_unit_test(test_ps_batch_skip_commits_without_row),
        cmocka_unit_test(test_ps_batch_merge_commits),
        cmocka_unit_test(test_ps_batch_add_rejects_unstorable),
        cmocka_unit_test(test_ps_batch_drop_partitions),
        cmocka_unit_test(test_ps_batch_array_text_escaping),
        cmocka_unit_test(test_ps_batch_encode_columns),
        cmocka_unit_test(test_ps_batch_add_event),
        cmocka_unit_test(test_ps_batch_encode_cap),
        cmocka_unit_test(test_ps_batch_copy_binary),
        cmocka_unit_test(test_ps_batch_many_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
