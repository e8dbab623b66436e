/* ps_partition.c - UTC day arithmetic, daily partition names and DDL, and the set of partitions
 * known to exist. Pure functions (no I/O); see ps.h. The calendar conversions are the classic
 * era-based algorithms for the proleptic Gregorian calendar (H. Hinnant, "chrono-Compatible
 * Low-Level Date Algorithms"). */
#include <stdio.h>
#include <string.h>

#include "chat/mem.h"

#include "ps.h"

#define MS_PER_DAY      86400000LL
#define PART_PREFIX     "messages_"
#define PART_PREFIX_LEN (sizeof(PART_PREFIX) - 1)

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

int ps_days_from_civil(int y, int m, int d, int32_t *days)
{
    int era, yoe, doy, doe;

    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return CHAT_EINVAL;
    y -= m <= 2;
    era = y / 400; /* y >= 0 here */
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *days = (int32_t)(era * 146097 + doe - 719468);
    return CHAT_OK;
}

void ps_civil_from_days(int32_t days, int *y, int *m, int *d)
{
    int64_t z = (int64_t)days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int ps_day_of_ms(int64_t ms, int32_t *day)
{
    int64_t q = ms / MS_PER_DAY;

    if (ms % MS_PER_DAY < 0)
        q--; /* floor, not truncation */
    if (q < PS_DAY_MIN || q > PS_DAY_MAX)
        return CHAT_EINVAL;
    *day = (int32_t)q;
    return CHAT_OK;
}

int ps_partition_name(int32_t day, char *out, size_t len)
{
    int y, m, d, n;

    if (day < PS_DAY_MIN || day > PS_DAY_MAX)
        return CHAT_EINVAL;
    ps_civil_from_days(day, &y, &m, &d);
    n = snprintf(out, len, PART_PREFIX "%04d%02d%02d", y, m, d);
    if (n < 0 || (size_t)n >= len)
        return CHAT_ETOOBIG;
    return CHAT_OK;
}

static int parse_digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int ps_partition_parse(const char *name, int32_t *day)
{
    int y, m, d;
    int32_t v;

    if (!name || strlen(name) != PART_PREFIX_LEN + 8 ||
        strncmp(name, PART_PREFIX, PART_PREFIX_LEN) != 0)
        return CHAT_EINVAL;
    name += PART_PREFIX_LEN;
    y = parse_digits(name, 4);
    m = parse_digits(name + 4, 2);
    d = parse_digits(name + 6, 2);
    if (y < 0 || m < 0 || d < 0 || ps_days_from_civil(y, m, d, &v) != CHAT_OK)
        return CHAT_EINVAL;
    if (v < PS_DAY_MIN || v > PS_DAY_MAX)
        return CHAT_EINVAL;
    *day = v;
    return CHAT_OK;
}

int ps_partition_ddl(struct chat_buf *out, int32_t day)
{
    char name[PS_PART_NAME_MAX];
    int y0, m0, d0, y1, m1, d1;
    int rc;

    rc = ps_partition_name(day, name, sizeof(name));
    if (rc != CHAT_OK)
        return rc;
    ps_civil_from_days(day, &y0, &m0, &d0);
    ps_civil_from_days(day + 1, &y1, &m1, &d1);
    return chat_buf_appendf(
        out,
        "CREATE TABLE IF NOT EXISTS %s PARTITION OF messages FOR VALUES "
        "FROM ('%04d-%02d-%02d 00:00:00+00') TO ('%04d-%02d-%02d 00:00:00+00');\n",
        name, y0, m0, d0, y1, m1, d1);
}

/* Index of the first element >= day (binary search). */
static size_t lower_bound(const struct ps_days *s, int32_t day)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->v[mid] < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool ps_days_has(const struct ps_days *s, int32_t day)
{
    size_t i = lower_bound(s, day);
    return i < s->n && s->v[i] == day;
}

void ps_days_add(struct ps_days *s, int32_t day)
{
    size_t i;

    if (ps_days_has(s, day))
        return;
    if (s->n >= PS_DAYS_CAP)
        s->n = 0; /* a cache: forgetting only costs an idempotent CREATE ... IF NOT EXISTS */
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = chat_xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    i = lower_bound(s, day);
    memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
    s->v[i] = day;
    s->n++;
}

void ps_days_clear(struct ps_days *s)
{
    s->n = 0;
}

void ps_days_fini(struct ps_days *s)
{
    CHAT_FREE(s->v);
    s->n = 0;
    s->cap = 0;
}
