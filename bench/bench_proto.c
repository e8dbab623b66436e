/* bench_proto.c - see bench_proto.h. */
#include "bench_proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "chat/mem.h"

/* Keys as they appear in compact server frames. */
static const char K_TYPE[] = "{\"type\":\"";
static const char K_MSG[] = CHAT_MSG_PREFIX "\"seq\":";
static const char K_SEQ[] = "\"seq\":";
static const char K_ROOM[] = "\"room\":";
static const char K_TEXT[] = "\"text\":";
static const char K_REF[] = "\"ref\":";
static const char K_CODE[] = "\"code\":";
static const char K_PREV[] = ",\"prev\":";
static const char K_RECOVERED[] = "\"recovered\":";
static const char K_REPLAYED[] = "\"replayed\":";

#define KLEN(k) (sizeof(k) - 1)

/* Position right after key in p[0..n), or NULL. */
static const char *after_key(const char *p, size_t n, const char *key, size_t klen)
{
    const char *q = memmem(p, n, key, klen);
    return q ? q + klen : NULL;
}

static bool scan_int(const char *p, const char *end, int64_t *out)
{
    int64_t v = 0;
    const char *s = p;

    while (p < end && *p >= '0' && *p <= '9' && p - s < 18)
        v = v * 10 + (*p++ - '0');
    if (p == s)
        return false;
    *out = v;
    return true;
}

/* p at the opening quote of a JSON string: its raw contents (escapes kept) up to the closing
 * quote. */
static bool scan_str(const char *p, const char *end, const char **s, size_t *len)
{
    const char *start;

    if (!p || p >= end || *p != '"')
        return false;
    start = ++p;
    while (p < end) {
        if (*p == '\\') {
            p += 2;
            continue;
        }
        if (*p == '"') {
            *s = start;
            *len = (size_t)(p - start);
            return true;
        }
        p++;
    }
    return false;
}

static void
str_field(const char *p, size_t n, const char *key, size_t klen, const char **s, size_t *len)
{
    const char *v = after_key(p, n, key, klen);
    if (!v || !scan_str(v, p + n, s, len)) {
        *s = NULL;
        *len = 0;
    }
}

static void scan_message(const char *p, size_t n, struct bench_frame *f)
{
    const char *end = p + n, *q = p + KLEN(K_MSG), *v;

    f->type = CHAT_F_message;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    if (!scan_int(p + KLEN(K_MSG), q, &f->seq))
        f->seq = -1;
    /* "prev" comes right after the seq, or not at all: one compare, no search */
    if ((size_t)(end - q) > KLEN(K_PREV) && memcmp(q, K_PREV, KLEN(K_PREV)) == 0 &&
        !scan_int(q + KLEN(K_PREV), end, &f->prev))
        f->prev = -1;
    v = after_key(q, (size_t)(end - q), K_ROOM, KLEN(K_ROOM));
    if (v && scan_str(v, end, &f->room, &f->room_len))
        q = f->room + f->room_len;
    v = after_key(q, (size_t)(end - q), K_TEXT, KLEN(K_TEXT));
    if (!v || !scan_str(v, end, &f->text, &f->text_len)) {
        f->text = NULL;
        f->text_len = 0;
    }
}

/* joined after join {since}: "recovered":true,"replayed":N or "recovered":false,"oldest":... */
static void scan_joined(const char *p, size_t n, struct bench_frame *f)
{
    const char *end = p + n, *v = after_key(p, n, K_RECOVERED, KLEN(K_RECOVERED));

    if (!v)
        return;
    if ((size_t)(end - v) >= 4 && memcmp(v, "true", 4) == 0)
        f->recovered = 1;
    else if ((size_t)(end - v) >= 5 && memcmp(v, "false", 5) == 0)
        f->recovered = 0;
    v = after_key(p, n, K_REPLAYED, KLEN(K_REPLAYED));
    if (v && !scan_int(v, end, &f->replayed))
        f->replayed = -1;
}

void bench_frame_scan(const char *p, size_t n, struct bench_frame *f)
{
    char name[16];
    const char *q, *e, *v;

    memset(f, 0, sizeof(*f));
    f->seq = -1;
    f->prev = -1;
    f->recovered = -1;
    f->replayed = -1;
    if (n > KLEN(K_MSG) && memcmp(p, K_MSG, KLEN(K_MSG)) == 0) {
        scan_message(p, n, f);
        return;
    }
    if (n <= KLEN(K_TYPE) || memcmp(p, K_TYPE, KLEN(K_TYPE)) != 0)
        return;
    q = p + KLEN(K_TYPE);
    e = memchr(q, '"', n - KLEN(K_TYPE));
    if (!e || (size_t)(e - q) >= sizeof(name))
        return;
    memcpy(name, q, (size_t)(e - q));
    name[e - q] = '\0';
    f->type = chat_frame_lookup(name);
    switch (f->type) {
    case CHAT_F_ack:
        v = after_key(p, n, K_SEQ, KLEN(K_SEQ));
        if (!v || !scan_int(v, p + n, &f->seq))
            f->seq = -1;
        break;
    case CHAT_F_joined:
        str_field(p, n, K_ROOM, KLEN(K_ROOM), &f->room, &f->room_len);
        scan_joined(p, n, f);
        break;
    case CHAT_F_left:
        str_field(p, n, K_ROOM, KLEN(K_ROOM), &f->room, &f->room_len);
        break;
    case CHAT_F_error:
        str_field(p, n, K_CODE, KLEN(K_CODE), &f->code, &f->code_len);
        break;
    default:
        break;
    }
    if (f->type == CHAT_F_ack || f->type == CHAT_F_joined || f->type == CHAT_F_left ||
        f->type == CHAT_F_error || f->type == CHAT_F_pong)
        str_field(p, n, K_REF, KLEN(K_REF), &f->ref, &f->ref_len);
}

bool bench_ref_parse(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (!p || n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

enum chat_errcode bench_frame_errcode(const struct bench_frame *f)
{
    if (!f->code)
        return CHAT_ERR__COUNT;
    for (int i = 0; i < CHAT_ERR__COUNT; i++) {
        const char *name = chat_errcode_name((enum chat_errcode)i);
        if (strlen(name) == f->code_len && memcmp(name, f->code, f->code_len) == 0)
            return (enum chat_errcode)i;
    }
    return CHAT_ERR__COUNT;
}

int bench_tpl_init(struct bench_tpl *t, const char *room, size_t text_len)
{
    char refph[BENCH_REF_DIGITS + 1];
    char *text = NULL, *dump = NULL;
    json_t *j = NULL;
    const char *v;
    int rc = CHAT_EINVAL;

    memset(t, 0, sizeof(*t));
    if (!chat_room_valid(room) || text_len < BENCH_TEXT_MIN || text_len > 65536)
        return CHAT_EINVAL;
    memset(refph, '0', BENCH_REF_DIGITS);
    refph[BENCH_REF_DIGITS] = '\0';
    text = chat_xmalloc(text_len + 1);
    memset(text, 'x', text_len);
    text[text_len] = '\0';
    j = json_pack("{s:s, s:s, s:s, s:s}", "type", "send", "room", room, "ref", refph, "text", text);
    if (!j)
        goto out;
    dump = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!dump)
        goto out;
    t->len = strlen(dump);
    v = after_key(dump, t->len, K_REF, KLEN(K_REF));
    if (!v)
        goto out;
    t->ref_off = (size_t)(v + 1 - dump);
    v = after_key(dump, t->len, K_TEXT, KLEN(K_TEXT));
    if (!v)
        goto out;
    t->text_off = (size_t)(v + 1 - dump);
    t->text_len = text_len;
    t->buf = dump;
    dump = NULL;
    rc = CHAT_OK;
out:
    chat_free(dump);
    json_decref(j);
    chat_free(text);
    return rc;
}

void bench_tpl_fill(struct bench_tpl *t, uint64_t ref, const char *text)
{
    char *r = t->buf + t->ref_off;

    for (int i = BENCH_REF_DIGITS - 1; i >= 0; i--) {
        r[i] = (char)('0' + ref % 10);
        ref /= 10;
    }
    memcpy(t->buf + t->text_off, text, t->text_len);
}

void bench_tpl_fini(struct bench_tpl *t)
{
    CHAT_FREE(t->buf);
    t->len = 0;
}

size_t bench_enc_room(char *out, size_t cap, const char *type, const char *room, const char *ref)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", type, "room", room, "ref", ref);
    size_t n;

    if (!j)
        return 0;
    n = json_dumpb(j, out, cap, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return n <= cap ? n : 0;
}

size_t bench_enc_join_since(char *out, size_t cap, const char *room, int64_t since, const char *ref)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:s}", "type", "join", "room", room, "since",
                          (json_int_t)since, "ref", ref);
    size_t n;

    if (!j)
        return 0;
    n = json_dumpb(j, out, cap, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return n <= cap ? n : 0;
}

size_t bench_text_fill(char *out, size_t len, uint32_t sender, uint32_t n, int64_t ns)
{
    int k = snprintf(out, len + 1, "b:%" PRIu32 ":%" PRIu32 ":%" PRId64 ":", sender, n, ns);

    if (k < 0)
        k = 0;
    if ((size_t)k < len)
        memset(out + k, 'x', len - (size_t)k);
    out[len] = '\0';
    return len;
}

/* Reads digits up to ':' at *p; advances past the ':'. */
static bool text_num(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    while (*p < end && **p >= '0' && **p <= '9' && *p - s < 19)
        v = v * 10 + (uint64_t)(*(*p)++ - '0');
    if (*p == s || *p >= end || **p != ':')
        return false;
    (*p)++;
    *out = v;
    return true;
}

bool bench_text_parse(const char *t, size_t n, uint32_t *sender, uint32_t *num, int64_t *ns)
{
    const char *p, *end;
    uint64_t a, b, c;

    if (!t || n < 8 || t[0] != 'b' || t[1] != ':')
        return false;
    p = t + 2;
    end = t + n;
    if (!text_num(&p, end, &a) || !text_num(&p, end, &b) || !text_num(&p, end, &c))
        return false;
    if (a > UINT32_MAX || b > UINT32_MAX || c > INT64_MAX)
        return false;
    *sender = (uint32_t)a;
    *num = (uint32_t)b;
    *ns = (int64_t)c;
    return true;
}
