/* test_ps_partition.c - UTC day arithmetic, partition names/DDL and the known-day set
 * (persister/src/ps_partition.c). */
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

#define MS_PER_DAY 86400000LL

static int32_t days_of(int y, int m, int d)
{
    int32_t v = INT32_MIN;
    assert_int_equal(ps_days_from_civil(y, m, d, &v), CHAT_OK);
    return v;
}

static void test_ps_partition_epoch_and_known_dates(void **state)
{
    (void)state;
    assert_int_equal(days_of(1970, 1, 1), 0);
    assert_int_equal(days_of(2000, 3, 1), 11017);
    assert_int_equal(days_of(2024, 2, 29), 19782);
    assert_int_equal(days_of(2023, 12, 31), 19722);
    assert_int_equal(days_of(1900, 3, 1), -25508);
    assert_int_equal(days_of(1, 1, 1), -719162);
    assert_int_equal(days_of(9999, 12, 31), 2932896);
    assert_int_equal(days_of(9999, 12, 30), PS_DAY_MAX);
}

static void test_ps_partition_leap_years(void **state)
{
    int32_t v;

    (void)state;
    assert_int_equal(ps_days_from_civil(2024, 2, 29, &v), CHAT_OK); /* divisible by 4 */
    assert_int_equal(ps_days_from_civil(2000, 2, 29, &v), CHAT_OK); /* divisible by 400 */
    assert_int_equal(ps_days_from_civil(2023, 2, 29, &v), CHAT_EINVAL);
    assert_int_equal(ps_days_from_civil(1900, 2, 29, &v), CHAT_EINVAL); /* by 100, not 400 */
    assert_int_equal(ps_days_from_civil(2100, 2, 29, &v), CHAT_EINVAL);
    assert_int_equal(days_of(2024, 3, 1) - days_of(2024, 2, 28), 2);
    assert_int_equal(days_of(2023, 3, 1) - days_of(2023, 2, 28), 1);
    assert_int_equal(days_of(2025, 1, 1) - days_of(2024, 1, 1), 366);
    assert_int_equal(days_of(2101, 1, 1) - days_of(2100, 1, 1), 365);
}

static void test_ps_partition_invalid_dates(void **state)
{
    int32_t v = 42;

    (void)state;
    assert_int_equal(ps_days_from_civil(2024, 0, 1, &v), CHAT_EINVAL);
    assert_int_equal(ps_days_from_civil(2024, 13, 1, &v), CHAT_EINVAL);
    assert_int_equal(ps_days_from_civil(2024, 1, 0, &v), CHAT_EINVAL);
    assert_int_equal(ps_days_from_civil(2024, 1, 32, &v), CHAT_EINVAL);
    assert_int_equal(ps_days_from_civil(2024, 4, 31, &v), CHAT_EINVAL);
    assert_int_equal(ps_days_from_civil(0, 1, 1, &v), CHAT_EINVAL);
    assert_int_equal(ps_days_from_civil(10000, 1, 1, &v), CHAT_EINVAL);
    assert_int_equal(ps_days_from_civil(-5, 1, 1, &v), CHAT_EINVAL);
    assert_int_equal(v, 42); /* untouched on error */
}

/* Every day of years 1..9999 round-trips and follows the previous one in the calendar. */
static void test_ps_partition_roundtrip_all_days(void **state)
{
    int py = 0, pm = 12, pd = 31;

    (void)state;
    for (int32_t day = days_of(1, 1, 1); day <= days_of(9999, 12, 31); day++) {
        int y, m, d;
        int32_t back;

        ps_civil_from_days(day, &y, &m, &d);
        assert_int_equal(ps_days_from_civil(y, m, d, &back), CHAT_OK);
        assert_int_equal(back, day);
        if (d == 1) { /* first of a month follows the last day of the previous month */
            assert_true(m == 1 ? (y == py + 1 && pm == 12 && pd == 31)
                               : (y == py && m == pm + 1 && pd >= 28));
        } else {
            assert_true(y == py && m == pm && d == pd + 1);
        }
        py = y;
        pm = m;
        pd = d;
    }
}

static void test_ps_partition_day_of_ms(void **state)
{
    int32_t day = -7;

    (void)state;
    assert_int_equal(ps_day_of_ms(0, &day), CHAT_OK);
    assert_int_equal(day, 0);
    assert_int_equal(ps_day_of_ms(MS_PER_DAY - 1, &day), CHAT_OK);
    assert_int_equal(day, 0);
    assert_int_equal(ps_day_of_ms(MS_PER_DAY, &day), CHAT_OK);
    assert_int_equal(day, 1);
    assert_int_equal(ps_day_of_ms(1709164800000LL, &day), CHAT_OK); /* 2024-02-29T00:00Z */
    assert_int_equal(day, 19782);
    assert_int_equal(ps_day_of_ms(1709164800000LL - 1, &day), CHAT_OK);
    assert_int_equal(day, 19781);
    assert_int_equal(ps_day_of_ms((int64_t)PS_DAY_MAX * MS_PER_DAY + MS_PER_DAY - 1, &day),
                     CHAT_OK);
    assert_int_equal(day, PS_DAY_MAX);
}

static void test_ps_partition_day_of_ms_out_of_range(void **state)
{
    int32_t day = -7;

    (void)state;
    assert_int_equal(ps_day_of_ms(-1, &day), CHAT_EINVAL); /* floor: day -1, before 1970 */
    assert_int_equal(ps_day_of_ms(-MS_PER_DAY, &day), CHAT_EINVAL);
    assert_int_equal(ps_day_of_ms(INT64_MIN, &day), CHAT_EINVAL);
    assert_int_equal(ps_day_of_ms(INT64_MAX, &day), CHAT_EINVAL);
    assert_int_equal(ps_day_of_ms((int64_t)(PS_DAY_MAX + 1) * MS_PER_DAY, &day), CHAT_EINVAL);
    assert_int_equal(day, -7);
}

static void test_ps_partition_name(void **state)
{
    char name[PS_PART_NAME_MAX];
    char small[17];

    (void)state;
    assert_int_equal(ps_partition_name(19782, name, sizeof(name)), CHAT_OK);
    assert_string_equal(name, "messages_20240229");
    assert_int_equal(ps_partition_name(0, name, sizeof(name)), CHAT_OK);
    assert_string_equal(name, "messages_19700101");
    assert_int_equal(ps_partition_name(PS_DAY_MAX, name, sizeof(name)), CHAT_OK);
    assert_string_equal(name, "messages_99991230");
    assert_int_equal(ps_partition_name(-1, name, sizeof(name)), CHAT_EINVAL);
    assert_int_equal(ps_partition_name(PS_DAY_MAX + 1, name, sizeof(name)), CHAT_EINVAL);
    assert_int_equal(ps_partition_name(19782, small, sizeof(small)), CHAT_ETOOBIG);
}

static void test_ps_partition_parse(void **state)
{
    int32_t day = -7;

    (void)state;
    assert_int_equal(ps_partition_parse("messages_20240229", &day), CHAT_OK);
    assert_int_equal(day, 19782);
    assert_int_equal(ps_partition_parse("messages_19700101", &day), CHAT_OK);
    assert_int_equal(day, 0);
    day = -7;
    assert_int_equal(ps_partition_parse("messages_20230229", &day), CHAT_EINVAL);
    assert_int_equal(ps_partition_parse("messages_19691231", &day), CHAT_EINVAL);
    assert_int_equal(ps_partition_parse("messages_99991231", &day), CHAT_EINVAL);
    assert_int_equal(ps_partition_parse("messages_2024022", &day), CHAT_EINVAL);
    assert_int_equal(ps_partition_parse("messages_202402290", &day), CHAT_EINVAL);
    assert_int_equal(ps_partition_parse("messages_2024-229", &day), CHAT_EINVAL);
    assert_int_equal(ps_partition_parse("message_x20240229", &day), CHAT_EINVAL);
    assert_int_equal(ps_partition_parse("messages_default", &day), CHAT_EINVAL);
    assert_int_equal(ps_partition_parse("", &day), CHAT_EINVAL);
    assert_int_equal(ps_partition_parse(NULL, &day), CHAT_EINVAL);
    assert_int_equal(day, -7);
}

static void test_ps_partition_name_parse_roundtrip(void **state)
{
    char name[PS_PART_NAME_MAX];

    (void)state;
    for (int32_t d = PS_DAY_MIN; d <= PS_DAY_MAX; d += 97) {
        int32_t back = -1;
        assert_int_equal(ps_partition_name(d, name, sizeof(name)), CHAT_OK);
        assert_int_equal(ps_partition_parse(name, &back), CHAT_OK);
        assert_int_equal(back, d);
    }
}

static void expect_ddl(int32_t day, const char *want)
{
    struct chat_buf b;

    chat_buf_init(&b, 0, 0);
    assert_int_equal(ps_partition_ddl(&b, day), CHAT_OK);
    assert_string_equal(chat_buf_data(&b), want);
    chat_buf_fini(&b);
}

static void test_ps_partition_ddl_boundaries(void **state)
{
    struct chat_buf b;

    (void)state;
    expect_ddl(days_of(2024, 2, 28),
               "CREATE TABLE IF NOT EXISTS messages_20240228 PARTITION OF messages FOR VALUES "
               "FROM ('2024-02-28 00:00:00+00') TO ('2024-02-29 00:00:00+00');\n");
    expect_ddl(days_of(2023, 2, 28),
               "CREATE TABLE IF NOT EXISTS messages_20230228 PARTITION OF messages FOR VALUES "
               "FROM ('2023-02-28 00:00:00+00') TO ('2023-03-01 00:00:00+00');\n");
    expect_ddl(days_of(2024, 12, 31),
               "CREATE TABLE IF NOT EXISTS messages_20241231 PARTITION OF messages FOR VALUES "
               "FROM ('2024-12-31 00:00:00+00') TO ('2025-01-01 00:00:00+00');\n");
    expect_ddl(days_of(2024, 4, 30),
               "CREATE TABLE IF NOT EXISTS messages_20240430 PARTITION OF messages FOR VALUES "
               "FROM ('2024-04-30 00:00:00+00') TO ('2024-05-01 00:00:00+00');\n");
    chat_buf_init(&b, 0, 0);
    assert_int_equal(ps_partition_ddl(&b, -1), CHAT_EINVAL);
    assert_int_equal(ps_partition_ddl(&b, PS_DAY_MAX + 1), CHAT_EINVAL);
    assert_int_equal(b.len, 0);
    chat_buf_fini(&b);
    chat_buf_init(&b, 0, 16);
    assert_int_equal(ps_partition_ddl(&b, 0), CHAT_ETOOBIG);
    chat_buf_fini(&b);
}

static void test_ps_partition_days_set(void **state)
{
    struct ps_days s = {0};

    (void)state;
    assert_false(ps_days_has(&s, 5));
    ps_days_add(&s, 30);
    ps_days_add(&s, 10);
    ps_days_add(&s, 20);
    ps_days_add(&s, 10);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.v[0], 10);
    assert_int_equal(s.v[1], 20);
    assert_int_equal(s.v[2], 30);
    assert_true(ps_days_has(&s, 20));
    assert_false(ps_days_has(&s, 21));
    assert_false(ps_days_has(&s, 0));
    assert_false(ps_days_has(&s, 31));
    ps_days_clear(&s);
    assert_false(ps_days_has(&s, 20));
    ps_days_fini(&s);
    ps_days_fini(&s); /* idempotent */
}

static void test_ps_partition_days_set_cap(void **state)
{
    struct ps_days s = {0};

    (void)state;
    for (int32_t d = PS_DAYS_CAP; d > 0; d--) /* descending: every insert at the front */
        ps_days_add(&s, d);
    assert_int_equal(s.n, PS_DAYS_CAP);
    for (size_t i = 1; i < s.n; i++)
        assert_true(s.v[i - 1] < s.v[i]);
    ps_days_add(&s, PS_DAYS_CAP + 1); /* full: cleared first */
    assert_int_equal(s.n, 1);
    assert_true(ps_days_has(&s, PS_DAYS_CAP + 1));
    assert_false(ps_days_has(&s, 1));
    ps_days_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ps_partition_epoch_and_known_dates),
        cmocka_unit_test(test_ps_partition_leap_years),
        cmocka_unit_test(test_ps_partition_invalid_dates),
        cmocka_unit_test(test_ps_partition_roundtrip_all_days),
        cmocka_unit_test(test_ps_partition_day_of_ms),
        cmocka_unit_test(test_ps_partition_day_of_ms_out_of_range),
        cmocka_unit_test(test_ps_partition_name),
        cmocka_unit_test(test_ps_partition_parse),
        cmocka_unit_test(test_ps_partition_name_parse_roundtrip),
        cmocka_unit_test(test_ps_partition_ddl_boundaries),
        cmocka_unit_test(test_ps_partition_days_set),
        cmocka_unit_test(test_ps_partition_days_set_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
