/* proto.c - the one codec for client and server frames (see chat/proto.h). */
#include "chat/proto.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat/account.h"
#include "chat/jflat.h"
#include "chat/mem.h"
#include "chat/utf8.h"

#define REF_MAX   CHAT_REF_MAX
#define TOKEN_MAX 4096

static const char *const frame_names[] = {
    "",
#define CHAT_FRAME(name, dir, flags) #name,
#include "../../proto/chat_proto.def"
#undef CHAT_FRAME
};

static const char *const frame_dirs[] = {
    "",
#define CHAT_FRAME(name, dir, flags) #dir,
#include "../../proto/chat_proto.def"
#undef CHAT_FRAME
};

static const unsigned frame_flags[] = {
    0,
#define CHAT_FRAME(name, dir, flags) flags,
#include "../../proto/chat_proto.def"
#undef CHAT_FRAME
};

static const char *const err_names[] = {
#define CHAT_ERROR(name, http, desc) #name,
#include "../../proto/chat_proto.def"
#undef CHAT_ERROR
};

static const short err_http[] = {
#define CHAT_ERROR(name, http, desc) http,
#include "../../proto/chat_proto.def"
#undef CHAT_ERROR
};

static const char *const err_descs[] = {
#define CHAT_ERROR(name, http, desc) desc,
#include "../../proto/chat_proto.def"
#undef CHAT_ERROR
};

unsigned chat_frame_flags(enum chat_frame_type t)
{
    return (t > CHAT_F_NONE && t < CHAT_F__COUNT) ? frame_flags[t] : 0;
}

const char *chat_frame_name(enum chat_frame_type t)
{
    return (t > CHAT_F_NONE && t < CHAT_F__COUNT) ? frame_names[t] : "";
}

enum chat_frame_type chat_frame_lookup(const char *name)
{
    for (int i = 1; i < CHAT_F__COUNT; i++)
        if (strcmp(frame_names[i], name) == 0)
            return (enum chat_frame_type)i;
    return CHAT_F_NONE;
}

const char *chat_errcode_name(enum chat_errcode e)
{
    return (e >= 0 && e < CHAT_ERR__COUNT) ? err_names[e] : "internal";
}

const char *chat_errcode_desc(enum chat_errcode e)
{
    return (e >= 0 && e < CHAT_ERR__COUNT) ? err_descs[e] : "unexpected server error";
}

bool chat_errcode_rest(enum chat_errcode e)
{
    return e >= 0 && e < CHAT_ERR__COUNT && err_http[e] != 0;
}

int chat_errcode_http(enum chat_errcode e)
{
    if (e < 0 || e >= CHAT_ERR__COUNT)
        return 500;
    return err_http[e] ? err_http[e] : 400; /* a WebSocket-only code would be a bad request */
}

const char *chat_close_reason(int code)
{
    switch (code) {
#define CHAT_CLOSE(name, c, reason) \
    case c:                         \
        return reason;
#include "../../proto/chat_proto.def"
#undef CHAT_CLOSE
    }
    return NULL;
}

bool chat_room_valid(const char *room)
{
    size_t n = 0;

    if (!room)
        return false;
    for (; room[n]; n++) {
        unsigned char c = (unsigned char)room[n];
        if (n >= CHAT_ROOM_MAX || !(isalnum(c) || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return n > 0;
}

static bool only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

void chat_cframe_fini(struct chat_cframe *f)
{
    if (!f)
        return;
    json_decref(f->_doc);
    if (f->_flat) {
        chat_jflat_fini(f->_flat);
        chat_free(f->_flat);
    }
    memset(f, 0, sizeof(*f));
}

/* A client frame's member as the checks below see it, from either parse: the flat scanner
 * (chat/jflat.h, the common case) or jansson (everything else). Frames are parsed with
 * JSON_ALLOW_NUL so that a NUL in send.text is reported as bad_text; every other string must be
 * free of NULs (it is used as a C string). */
enum fkind { FV_ABSENT, FV_STR, FV_INT, FV_NULL, FV_OTHER };

struct fval {
    enum fkind kind;
    const char *s; /* FV_STR: NUL-terminated */
    size_t len;    /* FV_STR: bytes */
    int64_t i;     /* FV_INT */
};

struct fsrc {
    const struct chat_jflat *flat; /* or: */
    json_t *root;
};

static struct fval fget(const struct fsrc *src, const char *key)
{
    struct fval v = {FV_ABSENT, NULL, 0, 0};

    if (src->flat) {
        const struct chat_jflat_member *m = chat_jflat_get(src->flat, key);
        if (!m)
            return v;
        switch (m->kind) {
        case CHAT_JFLAT_STR:
            v.kind = FV_STR;
            v.s = m->s;
            v.len = m->len;
            break;
        case CHAT_JFLAT_INT:
            v.kind = FV_INT;
            v.i = m->i;
            break;
        case CHAT_JFLAT_NULL:
            v.kind = FV_NULL;
            break;
        default:
            v.kind = FV_OTHER;
            break;
        }
        return v;
    }
    json_t *j = json_object_get(src->root, key);
    if (!j)
        return v;
    if (json_is_string(j)) {
        v.kind = FV_STR;
        v.s = json_string_value(j);
        v.len = json_string_length(j);
    } else if (json_is_integer(j)) {
        v.kind = FV_INT;
        v.i = (int64_t)json_integer_value(j);
    } else {
        v.kind = json_is_null(j) ? FV_NULL : FV_OTHER;
    }
    return v;
}

static bool has_nul(const struct fval *v)
{
    return memchr(v->s, '\0', v->len) != NULL;
}

/* Optional short string field: absent -> NULL; wrong type, too long or NUL inside -> error. */
static int opt_str(const struct fsrc *src, const char *key, size_t max, const char **out)
{
    struct fval v = fget(src, key);

    *out = NULL;
    if (v.kind == FV_ABSENT)
        return CHAT_OK;
    if (v.kind != FV_STR || v.len > max || has_nul(&v))
        return CHAT_EPROTO;
    *out = v.s;
    return CHAT_OK;
}

static int req_room(const struct fsrc *src, const char **out, enum chat_errcode *err)
{
    struct fval v = fget(src, "room");

    if (v.kind != FV_STR) {
        *err = CHAT_ERR_bad_field;
        return CHAT_EPROTO;
    }
    *out = v.s;
    if (has_nul(&v) || !chat_room_valid(*out)) {
        *err = CHAT_ERR_bad_room;
        return CHAT_EPROTO;
    }
    return CHAT_OK;
}

/* A non-negative integer field (required unless optional; null counts as absent then). */
static int nonneg_int(const struct fsrc *src, const char *key, bool optional, int64_t *out)
{
    struct fval v = fget(src, key);

    if (optional && (v.kind == FV_ABSENT || v.kind == FV_NULL))
        return CHAT_OK;
    if (v.kind != FV_INT || v.i < 0)
        return CHAT_EPROTO;
    *out = v.i;
    return CHAT_OK;
}

static int
decode_send(const struct fsrc *src, size_t max_text, struct chat_cframe *f, enum chat_errcode *err)
{
    struct fval t;

    if (req_room(src, &f->room, err) != CHAT_OK)
        return CHAT_EPROTO;
    if (opt_str(src, "client_msg_id", CHAT_CLIENT_MSG_ID_MAX, &f->client_msg_id) != CHAT_OK)
        goto bad_field;
    t = fget(src, "text");
    if (t.kind != FV_STR)
        goto bad_field;
    f->text = t.s;
    f->text_len = t.len;
    if (!chat_utf8_valid(f->text, f->text_len, &f->text_cps)) {
        *err = CHAT_ERR_bad_utf8;
        return CHAT_EPROTO;
    }
    if (f->text_len == 0 || only_space(f->text, f->text_len)) {
        *err = CHAT_ERR_empty_text;
        return CHAT_EPROTO;
    }
    if (f->text_cps > max_text) {
        *err = CHAT_ERR_text_too_long;
        return CHAT_EPROTO;
    }
    if (chat_utf8_has_control(f->text, f->text_len, "\n\t")) {
        *err = CHAT_ERR_bad_text;
        return CHAT_EPROTO;
    }
    return CHAT_OK;
bad_field:
    *err = CHAT_ERR_bad_field;
    return CHAT_EPROTO;
}

/* The same checks on a jansson object (REST bodies, Kafka records). */
static bool jhas_nul(json_t *v)
{
    return strlen(json_string_value(v)) != json_string_length(v);
}

static int jopt_str(json_t *root, const char *key, size_t max, const char **out)
{
    const struct fsrc src = {NULL, root};
    return opt_str(&src, key, max, out);
}

static int
jdecode_send(json_t *root, size_t max_text, struct chat_cframe *f, enum chat_errcode *err)
{
    const struct fsrc src = {NULL, root};
    return decode_send(&src, max_text, f, err);
}

/* The checks of a parsed frame, the same for both parses. */
static int decode_fields(const struct fsrc *src,
                         size_t max_text,
                         struct chat_cframe *f,
                         enum chat_errcode *err)
{
    struct fval type;
    int rc = CHAT_EPROTO;

    if (opt_str(src, "ref", REF_MAX, &f->ref) != CHAT_OK) {
        *err = CHAT_ERR_bad_field;
        return CHAT_EPROTO;
    }
    type = fget(src, "type");
    f->type = type.kind == FV_STR && !has_nul(&type) ? chat_frame_lookup(type.s) : CHAT_F_NONE;
    if (f->type == CHAT_F_NONE || frame_dirs[f->type][0] != 'C') {
        f->type = CHAT_F_NONE;
        *err = CHAT_ERR_unknown_type;
        return CHAT_EPROTO;
    }
    f->since = -1;
    f->seq = -1;
    switch (f->type) {
    case CHAT_F_join: /* since: the last seq the client holds of the room (optional) */
        rc = req_room(src, &f->room, err);
        if (rc == CHAT_OK && (nonneg_int(src, "since", true, &f->since) != CHAT_OK ||
                              opt_str(src, "grant", TOKEN_MAX, &f->grant) != CHAT_OK)) {
            *err = CHAT_ERR_bad_field;
            rc = CHAT_EPROTO;
        }
        break;
    case CHAT_F_read: /* seq: the last message read */
        rc = req_room(src, &f->room, err);
        if (rc == CHAT_OK && nonneg_int(src, "seq", false, &f->seq) != CHAT_OK) {
            *err = CHAT_ERR_bad_field;
            rc = CHAT_EPROTO;
        }
        break;
    case CHAT_F_leave:
        rc = req_room(src, &f->room, err);
        break;
    case CHAT_F_send:
        rc = decode_send(src, max_text, f, err);
        break;
    case CHAT_F_auth:
        rc = opt_str(src, "token", TOKEN_MAX, &f->token);
        if (rc == CHAT_OK && !f->token)
            rc = CHAT_EPROTO;
        if (rc != CHAT_OK)
            *err = CHAT_ERR_bad_field;
        break;
    case CHAT_F_ping:
        rc = CHAT_OK;
        break;
    default:
        *err = CHAT_ERR_unknown_type;
        rc = CHAT_EPROTO;
        break;
    }
    return rc;
}

int chat_cframe_decode_as(const char *text,
                          size_t len,
                          size_t max_text,
                          bool flat,
                          struct chat_cframe *f,
                          enum chat_errcode *err)
{
    struct fsrc src = {NULL, NULL};
    json_t *root;

    memset(f, 0, sizeof(*f));
    *err = CHAT_ERR_internal;
    if (!chat_utf8_valid(text, len, NULL)) {
        *err = CHAT_ERR_bad_utf8;
        return CHAT_EPROTO;
    }
    if (flat) { /* the common shape without a tree; anything else is jansson's to decide */
        struct chat_jflat *j = chat_xmalloc(sizeof(*j));
        if (chat_jflat_scan(text, len, j) == CHAT_OK) {
            f->_flat = j;
            src.flat = j;
            return decode_fields(&src, max_text, f, err);
        }
        chat_free(j);
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (!root || !json_is_object(root)) {
        json_decref(root); /* not an object: nothing to keep */
        *err = CHAT_ERR_bad_json;
        return CHAT_EPROTO;
    }
    f->_doc = root;
    src.root = root;
    return decode_fields(&src, max_text, f, err);
}

int chat_cframe_decode(
    const char *text, size_t len, size_t max_text, struct chat_cframe *f, enum chat_errcode *err)
{
    return chat_cframe_decode_as(text, len, max_text, true, f, err);
}

/* ---- encoders ---- */

static int dump(struct chat_buf *out, json_t *j)
{
    size_t n;
    int rc;

    if (!j)
        return CHAT_ENOMEM;
    n = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
    rc = chat_buf_reserve(out, n);
    if (rc == CHAT_OK) {
        json_dumpb(j, (char *)out->base + out->head + out->len, n,
                   JSON_COMPACT | JSON_PRESERVE_ORDER);
        out->len += n;
        out->base[out->head + out->len] = '\0';
    }
    json_decref(j);
    return rc;
}

/* ---- the frames of every message (message event, ack), written directly ----
 * The same bytes as jansson's compact dump in insertion order (held to it by test_proto), at a
 * fraction of the cost: no tree, no printf. A string that is not valid UTF-8 is an error
 * (CHAT_EINVAL) where jansson would have left its member out. On any error out is unchanged. */
struct jw {
    struct chat_buf *out;
    size_t len0; /* out->len before: restored on error */
    int rc;
};

static void jw_raw(struct jw *w, const char *s, size_t n)
{
    if (w->rc == CHAT_OK)
        w->rc = chat_buf_append(w->out, s, n);
}

static void jw_lit(struct jw *w, const char *s)
{
    jw_raw(w, s, strlen(s));
}

static void jw_int(struct jw *w, int64_t v)
{
    char b[CHAT_I64_DIGITS];

    jw_raw(w, b, chat_fmt_i64(b, v));
}

/* a 64-bit id: a decimal string (JavaScript numbers hold 53 bits) */
static void jw_id(struct jw *w, uint64_t id)
{
    char b[CHAT_I64_DIGITS];
    size_t n = chat_fmt_u64(b, id);

    jw_raw(w, "\"", 1);
    jw_raw(w, b, n);
    jw_raw(w, "\"", 1);
}

static void jw_str(struct jw *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *d;

    if (w->rc != CHAT_OK)
        return;
    if (!chat_utf8_valid(s, n, NULL)) {
        w->rc = CHAT_EINVAL;
        return;
    }
    if (n > SIZE_MAX / 8 || (w->rc = chat_buf_reserve(w->out, 6 * n + 2)) != CHAT_OK)
        return;
    d = (char *)w->out->base + w->out->head + w->out->len;
    *d++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *d++ = (char)c;
            continue;
        }
        *d++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *d++ = (char)c;
            break;
        case '\b':
            *d++ = 'b';
            break;
        case '\f':
            *d++ = 'f';
            break;
        case '\n':
            *d++ = 'n';
            break;
        case '\r':
            *d++ = 'r';
            break;
        case '\t':
            *d++ = 't';
            break;
        default:
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 15];
            break;
        }
    }
    *d++ = '"';
    w->out->len = (size_t)(d - (char *)w->out->base - w->out->head);
    w->out->base[w->out->head + w->out->len] = '\0';
}

/* key (with its leading comma and colon) and s, when s != NULL */
static void jw_opt_str(struct jw *w, const char *key, const char *s)
{
    if (!s)
        return;
    jw_lit(w, key);
    jw_str(w, s);
}

static int jw_end(struct jw *w)
{
    if (w->rc != CHAT_OK && w->out->base) {
        w->out->len = w->len0;
        w->out->base[w->out->head + w->out->len] = '\0';
    }
    return w->rc;
}

/* Adds key: string when s != NULL. */
static void set_opt_str(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, json_string(s));
}

int chat_enc_hello(struct chat_buf *out,
                   const char *node,
                   const char *user,
                   const struct chat_limits *lim)
{
    json_t *j =
        json_pack("{s:s, s:i, s:s, s:o, s:{s:i, s:i, s:i, s:i, s:i}}", "type", "hello", "v",
                  CHAT_PROTO_VERSION, "node", node, "user", user ? json_string(user) : json_null(),
                  "limits", "max_frame", lim->max_frame, "max_text", lim->max_text, "max_rooms",
                  lim->max_rooms, "rate_per_s", lim->rate_per_s, "rate_burst", lim->rate_burst);
    return dump(out, j);
}

int chat_enc_authed(struct chat_buf *out, const char *user, int64_t exp, const char *ref)
{
    json_t *j =
        json_pack("{s:s, s:s, s:I}", "type", "authed", "user", user, "exp", (json_int_t)exp);
    if (j)
        set_opt_str(j, "ref", ref);
    return dump(out, j);
}

static int enc_room_frame(struct chat_buf *out, const char *type, const char *room, const char *ref)
{
    json_t *j = json_pack("{s:s, s:s}", "type", type, "room", room);
    if (j)
        set_opt_str(j, "ref", ref);
    return dump(out, j);
}

int chat_enc_joined(struct chat_buf *out, const char *room, const char *ref)
{
    return enc_room_frame(out, "joined", room, ref);
}

int chat_enc_joined_since(struct chat_buf *out,
                          const char *room,
                          const char *ref,
                          bool recovered,
                          size_t replayed,
                          int64_t oldest)
{
    json_t *j =
        json_pack("{s:s, s:s, s:b}", "type", "joined", "room", room, "recovered", recovered);
    if (j && recovered)
        json_object_set_new(j, "replayed", json_integer((json_int_t)replayed));
    if (j && !recovered)
        json_object_set_new(j, "oldest", oldest >= 0 ? json_integer(oldest) : json_null());
    if (j)
        set_opt_str(j, "ref", ref);
    return dump(out, j);
}

int chat_enc_left(struct chat_buf *out, const char *room, const char *ref)
{
    return enc_room_frame(out, "left", room, ref);
}

int chat_enc_read(struct chat_buf *out, const char *room, int64_t seq)
{
    return dump(out,
                json_pack("{s:s, s:s, s:I}", "type", "read", "room", room, "seq", (json_int_t)seq));
}

int chat_enc_left_why(struct chat_buf *out, const char *room, const char *reason)
{
    return dump(out, json_pack("{s:s, s:s, s:s}", "type", "left", "room", room, "reason", reason));
}

int chat_enc_ack(struct chat_buf *out,
                 const char *client_msg_id,
                 uint64_t id,
                 int64_t seq,
                 int64_t ts,
                 const char *ref)
{
    struct jw w = {out, out->len, CHAT_OK};

    jw_lit(&w, "{\"type\":\"ack\",\"id\":");
    jw_id(&w, id);
    jw_lit(&w, ",\"seq\":");
    jw_int(&w, seq);
    jw_lit(&w, ",\"ts\":");
    jw_int(&w, ts);
    jw_opt_str(&w, ",\"client_msg_id\":", client_msg_id);
    jw_opt_str(&w, ",\"ref\":", ref);
    jw_lit(&w, "}");
    return jw_end(&w);
}

int chat_enc_error(struct chat_buf *out,
                   enum chat_errcode code,
                   const char *message,
                   const char *client_msg_id,
                   const char *ref,
                   int retry_ms)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", "error", "code", chat_errcode_name(code),
                          "message", message ? message : chat_errcode_desc(code));
    if (j) {
        set_opt_str(j, "client_msg_id", client_msg_id);
        set_opt_str(j, "ref", ref);
        if (retry_ms >= 0)
            json_object_set_new(j, "retry_ms", json_integer(retry_ms));
    }
    return dump(out, j);
}

int chat_enc_error_until(struct chat_buf *out,
                         enum chat_errcode code,
                         const char *message,
                         const char *client_msg_id,
                         const char *ref,
                         int64_t until_ms,
                         const char *reason)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", "error", "code", chat_errcode_name(code),
                          "message", message ? message : chat_errcode_desc(code));
    if (j) {
        set_opt_str(j, "client_msg_id", client_msg_id);
        set_opt_str(j, "ref", ref);
        json_object_set_new(j, "until", until_ms > 0 ? json_integer(until_ms) : json_null());
        set_opt_str(j, "reason", reason);
    }
    return dump(out, j);
}

int chat_enc_pong(struct chat_buf *out, const char *ref, int64_t ts)
{
    json_t *j = json_pack("{s:s, s:I}", "type", "pong", "ts", (json_int_t)ts);
    if (j)
        set_opt_str(j, "ref", ref);
    return dump(out, j);
}

int chat_enc_bye(struct chat_buf *out, int code, const char *reason)
{
    return dump(out, json_pack("{s:s, s:i, s:s}", "type", "bye", "code", code, "reason", reason));
}

int chat_enc_presence(struct chat_buf *out, const char *room, int64_t conns, int64_t users)
{
    json_t *j;
    if (room)
        j = json_pack("{s:s, s:s, s:s, s:I, s:I}", "type", "presence", "scope", "room", "room",
                      room, "conns", (json_int_t)conns, "users", (json_int_t)users);
    else
        j = json_pack("{s:s, s:s, s:I, s:I}", "type", "presence", "scope", "total", "conns",
                      (json_int_t)conns, "users", (json_int_t)users);
    return dump(out, j);
}

int chat_presence_decode(
    const char *v, size_t len, char *room, size_t cap, int64_t *conns, int64_t *users)
{
    json_t *root = json_loadb(v, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = NULL, *scope = NULL, *r = NULL;
    json_int_t c = 0, u = 0;
    int rc = CHAT_EPROTO;

    if (!root || json_unpack(root, "{s:s, s:s, s?s, s:I, s:I}", "type", &type, "scope", &scope,
                             "room", &r, "conns", &c, "users", &u) != 0)
        goto out;
    if (strcmp(type, "presence") != 0 || c < 0 || u < 0)
        goto out;
    if (strcmp(scope, "total") == 0)
        r = "";
    else if (strcmp(scope, "room") != 0 || !chat_room_valid(r))
        goto out;
    if (strlen(r) >= cap)
        goto out;
    memcpy(room, r, strlen(r) + 1);
    *conns = c;
    *users = u;
    rc = CHAT_OK;
out:
    json_decref(root);
    return rc;
}

int chat_enc_http_error(struct chat_buf *out, const char *code, const char *message)
{
    return dump(out, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message));
}

int chat_enc_config(struct chat_buf *out, const char *node, const struct chat_limits *lim)
{
    return dump(out,
                json_pack("{s:s, s:i, s:{s:i, s:i, s:i, s:i, s:i}, s:{s:s, s:i, s:{s:s, s:i, s:i}, "
                          "s:{s:i, s:i}, s:{s:i, s:i, s:b, s:b}}}",
                          "node", node, "v", CHAT_PROTO_VERSION, "limits", "max_frame",
                          lim->max_frame, "max_text", lim->max_text, "max_rooms", lim->max_rooms,
                          "rate_per_s", lim->rate_per_s, "rate_burst", lim->rate_burst, "rules",
                          "room", "^[A-Za-z0-9_.-]{1,64}$", "client_msg_id_max",
                          CHAT_CLIENT_MSG_ID_MAX, "username", "pattern", CHAT_USERNAME_RE, "min",
                          CHAT_USERNAME_MIN, "max", CHAT_USERNAME_MAX, "nickname", "min",
                          CHAT_NICK_MIN, "max", CHAT_NICK_MAX, "password", "min", CHAT_PASSWORD_MIN,
                          "max", CHAT_PASSWORD_MAX, "letter", 1, "digit", 1));
}

int chat_rest_send_decode(
    const char *body, size_t len, size_t max_text, struct chat_cframe *f, enum chat_errcode *err)
{
    json_t *root;
    int rc;

    memset(f, 0, sizeof(*f));
    if (!chat_utf8_valid(body, len, NULL)) {
        *err = CHAT_ERR_bad_utf8;
        return CHAT_EPROTO;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL); /* as frames */
    if (!root || !json_is_object(root)) {
        json_decref(root);
        *err = CHAT_ERR_bad_json;
        return CHAT_EPROTO;
    }
    f->_doc = root;
    f->type = CHAT_F_send;
    /* the room comes from the path: validate the body with a placeholder room */
    json_object_set_new(root, "room", json_string("_"));
    rc = jdecode_send(root, max_text, f, err);
    f->room = NULL;
    return rc;
}

int chat_enc_message(struct chat_buf *out, const struct chat_event_msg *m)
{
    struct jw w = {out, out->len, CHAT_OK};

    if (!m->room || !m->user || !m->nick || (!m->deleted && !m->text))
        return CHAT_EINVAL;
    jw_lit(&w, CHAT_MSG_PREFIX);
    if (m->seq >= 0) {
        jw_lit(&w, "\"seq\":");
        jw_int(&w, m->seq);
        jw_lit(&w, ",");
    }
    jw_lit(&w, "\"room\":");
    jw_str(&w, m->room);
    jw_lit(&w, ",\"id\":");
    jw_id(&w, m->id);
    jw_lit(&w, ",\"user\":");
    jw_str(&w, m->user);
    jw_lit(&w, ",\"nick\":");
    jw_str(&w, m->nick);
    if (m->deleted) { /* the text is never shown again (proto/README.md, message_deleted) */
        jw_lit(&w, ",\"ts\":");
        jw_int(&w, m->ts);
        jw_lit(&w, ",\"deleted\":true,\"text\":\"\"}");
        return jw_end(&w);
    }
    jw_lit(&w, ",\"text\":");
    jw_str(&w, m->text);
    jw_lit(&w, ",\"ts\":");
    jw_int(&w, m->ts);
    if (m->edited_at > 0) {
        jw_lit(&w, ",\"edited_at\":");
        jw_int(&w, m->edited_at);
    }
    jw_opt_str(&w, ",\"client_msg_id\":", m->client_msg_id);
    jw_lit(&w, "}");
    return jw_end(&w);
}

bool chat_msg_has_id(const char *frame, uint64_t id)
{
    static const char pre[] = ",\"id\":\"", post[] = "\",\"user\":";
    char needle[sizeof(pre) + CHAT_I64_DIGITS + sizeof(post)];
    size_t n = chat_fmt_u64(needle + sizeof(pre) - 1, id);

    memcpy(needle, pre, sizeof(pre) - 1);
    memcpy(needle + sizeof(pre) - 1 + n, post, sizeof(post)); /* with its NUL */
    return strstr(frame, needle) != NULL;
}

/* Appends frame tmp (encoded without seq) to out with seq and prev spliced in (seq < 0: as is). */
static int
append_spliced(struct chat_buf *out, const struct chat_buf *tmp, int64_t seq, int64_t prev)
{
    return seq >= 0 ? chat_msg_splice_seq_prev(out, chat_buf_data(tmp), tmp->len, seq, prev)
                    : chat_buf_append(out, chat_buf_data(tmp), tmp->len);
}

static int enc_edited(struct chat_buf *out, const struct chat_stream_ev *e);

/* The deleted form of a message_edited frame: its text dropped. */
static int edit_to_deleted(struct chat_buf *out, const char *frame, size_t len)
{
    struct chat_stream_ev e;
    struct chat_buf tmp;
    void *doc = NULL;
    int rc = chat_stream_ev_decode(frame, len, &e, &doc);

    if (rc != CHAT_OK || e.type != CHAT_STREAM_EDITED) {
        chat_json_free(doc);
        return CHAT_EPROTO;
    }
    e.text = "";
    e.deleted = true;
    chat_buf_init(&tmp, 0, 0);
    rc = enc_edited(&tmp, &e);
    chat_json_free(doc);
    if (rc == CHAT_OK)
        rc = append_spliced(out, &tmp, e.seq, e.prev);
    chat_buf_fini(&tmp);
    return rc;
}

int chat_msg_to_deleted(struct chat_buf *out, const char *frame, size_t len)
{
    enum chat_stream_type type;
    struct chat_event_msg m;
    struct chat_buf tmp;
    void *doc = NULL;
    int64_t seq, prev;
    int rc;

    if (chat_msg_stream_prefix(frame, len, &type) > 0 && type == CHAT_STREAM_EDITED)
        return edit_to_deleted(out, frame, len);
    rc = chat_msg_decode(frame, len, &m, &doc);
    if (rc != CHAT_OK)
        return rc;
    seq = m.seq;
    prev = m.prev;
    m.seq = -1;
    m.deleted = true;
    chat_buf_init(&tmp, 0, 0);
    rc = chat_enc_message(&tmp, &m);
    chat_json_free(doc);
    if (rc == CHAT_OK)
        rc = append_spliced(out, &tmp, seq, prev);
    chat_buf_fini(&tmp);
    return rc;
}

int chat_msg_to_edited(
    struct chat_buf *out, const char *frame, size_t len, const char *text, int64_t edited_at)
{
    struct chat_event_msg m;
    struct chat_buf tmp;
    void *doc = NULL;
    int64_t seq, prev;
    int rc;

    rc = chat_msg_decode(frame, len, &m, &doc);
    if (rc != CHAT_OK)
        return rc;
    if (m.deleted) {
        chat_json_free(doc);
        return CHAT_ENOENT;
    }
    seq = m.seq;
    prev = m.prev;
    m.seq = -1;
    m.text = text;
    m.edited_at = edited_at;
    chat_buf_init(&tmp, 0, 0);
    rc = chat_enc_message(&tmp, &m);
    chat_json_free(doc);
    if (rc == CHAT_OK)
        rc = append_spliced(out, &tmp, seq, prev);
    chat_buf_fini(&tmp);
    return rc;
}

int chat_msg_splice_seq(struct chat_buf *out, const char *v, size_t len, int64_t seq)
{
    return chat_msg_splice_seq_prev(out, v, len, seq, -1);
}

int chat_msg_splice_seq_prev(
    struct chat_buf *out, const char *v, size_t len, int64_t seq, int64_t prev)
{
    struct jw w = {out, out->len, CHAT_OK};
    size_t plen = chat_msg_stream_prefix(v, len, NULL);

    if (plen == 0 || len <= plen)
        return CHAT_EPROTO;
    jw_raw(&w, v, plen);
    jw_lit(&w, "\"seq\":");
    jw_int(&w, seq);
    if (prev >= 0) {
        jw_lit(&w, ",\"prev\":");
        jw_int(&w, prev);
    }
    jw_raw(&w, ",", 1);
    jw_raw(&w, v + plen, len - plen);
    return jw_end(&w); /* out unchanged on error */
}

/* The record types of a room's stream, in enum chat_stream_type order (index 0: unknown). */
static const char *const stream_types[] = {NULL, "message", "message_deleted", "system",
                                           "message_edited"};

size_t chat_msg_stream_prefix(const char *v, size_t len, enum chat_stream_type *type)
{
    static const char head[] = "{\"type\":\"";
    size_t i = sizeof(head) - 1;

    if (type)
        *type = CHAT_STREAM_UNKNOWN;
    if (len <= i || memcmp(v, head, i) != 0)
        return 0;
    for (; i < len && i < sizeof(head) - 1 + CHAT_STREAM_TYPE_MAX; i++) {
        char ch = v[i];
        if (ch == '"')
            break;
        if (!((ch >= 'a' && ch <= 'z') || ch == '_'))
            return 0;
    }
    if (i == sizeof(head) - 1 || i + 1 >= len || v[i] != '"' || v[i + 1] != ',')
        return 0;
    for (size_t t = 1; t < sizeof(stream_types) / sizeof(stream_types[0]); t++) {
        size_t n = strlen(stream_types[t]);
        if (n == i - (sizeof(head) - 1) && memcmp(v + sizeof(head) - 1, stream_types[t], n) == 0) {
            if (type)
                *type = (enum chat_stream_type)t;
            return i + 2;
        }
    }
    return 0; /* well-formed, but not a type of this version */
}

int chat_stream_ev_decode(const char *v, size_t len, struct chat_stream_ev *e, void **doc)
{
    const char *ids = NULL, *by = NULL;
    int deleted = 0;
    json_int_t ts, seq = -1, prev = -1;
    json_t *root;
    char *end = NULL;
    unsigned long long id;

    *doc = NULL;
    memset(e, 0, sizeof(*e));
    if (chat_msg_stream_prefix(v, len, &e->type) == 0 || e->type == CHAT_STREAM_MESSAGE)
        return CHAT_EPROTO;
    root = json_loadb(v, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        return CHAT_EPROTO;
    if (json_unpack(root, "{s?I, s?I, s:s, s:s, s:I, s?s, s?s, s?s, s?s, s?s, s?b}", "seq", &seq,
                    "prev", &prev, "room", &e->room, "id", &ids, "ts", &ts, "by", &by, "user",
                    &e->user, "nick", &e->nick, "event", &e->event, "text", &e->text, "deleted",
                    &deleted) != 0 ||
        !chat_room_valid(e->room) || ids[0] < '1' || ids[0] > '9')
        goto bad;
    id = strtoull(ids, &end, 10);
    if (*end || id > INT64_MAX || ts < 0)
        goto bad;
    if (e->type == CHAT_STREAM_DELETED) {
        if (!by || strlen(by) > CHAT_USER_MAX)
            goto bad;
        e->user = by; /* who deleted */
        e->event = NULL;
        e->text = NULL;
    } else if (e->type == CHAT_STREAM_EDITED) {
        if (!e->user || !e->user[0] || !e->text || (!deleted && !e->text[0]))
            goto bad;
        e->nick = NULL;
        e->event = NULL;
        e->deleted = deleted;
    } else if (!e->event || !e->event[0]) {
        goto bad;
    }
    if ((e->user && strlen(e->user) > CHAT_USER_MAX) || seq < -1 || prev < -1 ||
        (prev >= 0 && prev >= seq))
        goto bad;
    e->id = (uint64_t)id;
    e->ts = ts;
    e->seq = seq;
    e->prev = prev;
    *doc = root;
    return CHAT_OK;
bad:
    json_decref(root);
    memset(e, 0, sizeof(*e));
    return CHAT_EPROTO;
}

/* {"type":type,"room":room,"id":"ID"}: the start of a record about message id (a delete, an
 * edit); NULL when out of memory. */
static json_t *msg_rec_new(const char *type, const char *room, uint64_t id)
{
    char ids[24];
    json_t *j = json_pack("{s:s}", "type", type);

    if (!j)
        return NULL;
    snprintf(ids, sizeof(ids), "%" PRIu64, id);
    json_object_set_new(j, "room", json_string(room));
    json_object_set_new(j, "id", json_string(ids));
    return j;
}

int chat_enc_msg_deleted(
    struct chat_buf *out, const char *room, uint64_t id, const char *by, int64_t ts)
{
    json_t *j = msg_rec_new("message_deleted", room, id);

    if (!j)
        return CHAT_ENOMEM;
    json_object_set_new(j, "by", json_string(by));
    json_object_set_new(j, "ts", json_integer(ts));
    return dump(out, j);
}

/* A message_edited record from e (type, room, id, user, text, ts, deleted), without seq. */
static int enc_edited(struct chat_buf *out, const struct chat_stream_ev *e)
{
    json_t *j = msg_rec_new("message_edited", e->room, e->id);

    if (!j)
        return CHAT_ENOMEM;
    json_object_set_new(j, "user", json_string(e->user));
    json_object_set_new(j, "text", json_stringn(e->text, strlen(e->text)));
    json_object_set_new(j, "ts", json_integer(e->ts));
    if (e->deleted)
        json_object_set_new(j, "deleted", json_true());
    return dump(out, j);
}

int chat_enc_msg_edited(struct chat_buf *out,
                        const char *room,
                        uint64_t id,
                        const char *user,
                        const char *text,
                        int64_t ts)
{
    const struct chat_stream_ev e = {
        .type = CHAT_STREAM_EDITED, .room = room, .id = id, .user = user, .text = text, .ts = ts};

    return enc_edited(out, &e);
}

int chat_enc_system(struct chat_buf *out, const struct chat_system_ev *e)
{
    char ids[24];
    json_t *j;

    snprintf(ids, sizeof(ids), "%" PRIu64, e->id);
    j = json_pack("{s:s}", "type", "system");
    if (!j)
        return CHAT_ENOMEM;
    json_object_set_new(j, "room", json_string(e->room));
    json_object_set_new(j, "event", json_string(e->event));
    json_object_set_new(j, "id", json_string(ids));
    json_object_set_new(j, "ts", json_integer(e->ts));
    set_opt_str(j, "user", e->user);
    set_opt_str(j, "nick", e->nick);
    if (e->text)
        json_object_set_new(j, "text", json_stringn(e->text, strlen(e->text)));
    set_opt_str(j, "message", e->message);
    return dump(out, j);
}

/* A message event read by the flat scanner: chat_json_free() tells it from a jansson document
 * by its head, a json_t whose type no jansson value has (the head is a real json_t, so reading
 * its type through a json_t pointer is sound). */
#define FLAT_DOC_TYPE ((json_type)0x464c4154) /* "FLAT" */
struct flat_doc {
    json_t head; /* head.type == FLAT_DOC_TYPE */
    struct chat_jflat flat;
};

static bool jflat_has_null(const struct chat_jflat *j)
{
    for (int i = 0; i < j->n; i++)
        if (j->m[i].kind == CHAT_JFLAT_NULL)
            return true;
    return false;
}

/* The checks after the members were read: the id's digits, prev before seq. */
static int msg_finish(struct chat_event_msg *m, const char *ids, bool has_prev)
{
    char *end = NULL;

    if (!chat_room_valid(m->room))
        return CHAT_EPROTO;
    if (ids[0] < '0' || ids[0] > '9') /* strtoull would accept " 1", "+1" and "-1" */
        return CHAT_EPROTO;
    if (has_prev && (m->prev < 0 || m->prev >= m->seq)) /* seq -1: prev without seq */
        return CHAT_EPROTO;
    errno = 0;
    m->id = strtoull(ids, &end, 10);
    if (errno != 0 || !end || *end != '\0')
        return CHAT_EPROTO;
    return CHAT_OK;
}

/* The members of a message event from the flat scanner, typed as json_unpack's format
 * "{s:s, s?I, s?I, s:s, s:s, s:s, s:s, s:s, s:I, s?s, s?I}" of the jansson path reads them (the
 * caller leaves documents with a null member to jansson). */
static int msg_fields_flat(const struct fsrc *src, struct chat_event_msg *m)
{
    struct fval type = fget(src, "type"), seq = fget(src, "seq"), prev = fget(src, "prev");
    struct fval room = fget(src, "room"), id = fget(src, "id"), user = fget(src, "user");
    struct fval nick = fget(src, "nick"), text = fget(src, "text"), ts = fget(src, "ts");
    struct fval cmid = fget(src, "client_msg_id"), edited = fget(src, "edited_at");
    const struct chat_jflat_member *del = chat_jflat_get(src->flat, "deleted");

    if (type.kind != FV_STR || room.kind != FV_STR || id.kind != FV_STR || user.kind != FV_STR ||
        nick.kind != FV_STR || text.kind != FV_STR || ts.kind != FV_INT ||
        (seq.kind != FV_ABSENT && seq.kind != FV_INT) ||
        (prev.kind != FV_ABSENT && prev.kind != FV_INT) ||
        (edited.kind != FV_ABSENT && (edited.kind != FV_INT || edited.i < 0)) ||
        (cmid.kind != FV_ABSENT && cmid.kind != FV_STR) || strcmp(type.s, "message") != 0)
        return CHAT_EPROTO;
    m->room = room.s;
    m->user = user.s;
    m->nick = nick.s;
    m->text = text.s;
    m->client_msg_id = cmid.kind == FV_STR ? cmid.s : NULL;
    m->ts = ts.i;
    m->seq = seq.kind == FV_INT ? seq.i : -1;
    m->prev = prev.kind == FV_INT ? prev.i : -1;
    m->deleted = del && del->kind == CHAT_JFLAT_TRUE;
    m->edited_at = edited.kind == FV_INT ? edited.i : 0;
    return msg_finish(m, id.s, prev.kind != FV_ABSENT);
}

int chat_msg_decode_as(const char *v, size_t len, struct chat_event_msg *m, void **doc, bool flat)
{
    json_t *root;
    const char *type, *ids, *cmid = NULL;
    json_int_t ts, seq = -1, prev = -1, edited = 0;

    *doc = NULL;
    memset(m, 0, sizeof(*m));
    /* the shape this codec writes, without a tree (the scanner wants valid UTF-8, as jansson
     * does); anything else is jansson's */
    if (flat && chat_utf8_valid(v, len, NULL)) {
        struct flat_doc *d = chat_xcalloc(1, sizeof(*d));
        if (chat_jflat_scan(v, len, &d->flat) == CHAT_OK) {
            if (!jflat_has_null(&d->flat)) {
                const struct fsrc src = {&d->flat, NULL};
                d->head.type = FLAT_DOC_TYPE;
                if (msg_fields_flat(&src, m) == CHAT_OK) {
                    *doc = d;
                    return CHAT_OK;
                }
                chat_jflat_fini(&d->flat);
                chat_free(d);
                memset(m, 0, sizeof(*m));
                return CHAT_EPROTO;
            }
            chat_jflat_fini(&d->flat);
        }
        chat_free(d);
    }
    root = json_loadb(v, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root)
        return CHAT_EPROTO;
    if (json_unpack(root, "{s:s, s?I, s?I, s:s, s:s, s:s, s:s, s:s, s:I, s?s, s?I}", "type", &type,
                    "seq", &seq, "prev", &prev, "room", &m->room, "id", &ids, "user", &m->user,
                    "nick", &m->nick, "text", &m->text, "ts", &ts, "client_msg_id", &cmid,
                    "edited_at", &edited) != 0 ||
        strcmp(type, "message") != 0 || edited < 0)
        goto bad;
    m->ts = ts;
    m->edited_at = edited;
    m->seq = seq;
    m->prev = prev;
    m->client_msg_id = cmid;
    m->deleted = json_is_true(json_object_get(root, "deleted"));
    if (msg_finish(m, ids, json_object_get(root, "prev") != NULL) != CHAT_OK)
        goto bad;
    *doc = root;
    return CHAT_OK;
bad:
    json_decref(root);
    memset(m, 0, sizeof(*m));
    return CHAT_EPROTO;
}

int chat_msg_decode(const char *v, size_t len, struct chat_event_msg *m, void **doc)
{
    return chat_msg_decode_as(v, len, m, doc, true);
}

void chat_json_free(void *doc)
{
    if (doc && json_typeof((json_t *)doc) == FLAT_DOC_TYPE) {
        struct flat_doc *d = doc;
        chat_jflat_fini(&d->flat);
        chat_free(d);
        return;
    }
    json_decref(doc);
}

/* ---- sessions on an open WebSocket ---- */

int chat_enc_session_expiring(struct chat_buf *out, int64_t exp, int64_t in_ms)
{
    return dump(out, json_pack("{s:s, s:I, s:I}", "type", "session_expiring", "exp",
                               (json_int_t)exp, "in_ms", (json_int_t)in_ms));
}

int chat_enc_session_expired(struct chat_buf *out)
{
    return dump(out, json_pack("{s:s}", "type", "session_expired"));
}

int chat_enc_session_revoked(struct chat_buf *out, const char *reason)
{
    return dump(out, json_pack("{s:s, s:s}", "type", "session_revoked", "reason", reason));
}

/* ---- accounts ---- */

static json_t *user_obj(const struct chat_user *u)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", u->id, "username", u->username, "nickname",
                     u->nickname, "role", u->role, "created_at", (json_int_t)u->created_at);
}

int chat_enc_user(struct chat_buf *out, const struct chat_user *u)
{
    return dump(out, user_obj(u));
}

int chat_enc_session(struct chat_buf *out,
                     const struct chat_user *u,
                     const struct chat_session_out *s)
{
    json_t *user = user_obj(u);

    if (!user)
        return CHAT_ENOMEM;
    return dump(out, json_pack("{s:o, s:s, s:s, s:I, s:s, s:I, s:s}", "user", user, "access_token",
                               s->access_token, "token_type", "Bearer", "expires_in",
                               (json_int_t)s->expires_in, "refresh_token", s->refresh_token,
                               "refresh_expires_in", (json_int_t)s->refresh_expires_in,
                               "session_id", s->session_id));
}

int chat_enc_revoked(struct chat_buf *out, long n)
{
    return dump(out, json_pack("{s:I}", "revoked_sessions", (json_int_t)n));
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int chat_enc_logins(struct chat_buf *out,
                    const struct chat_login *v,
                    size_t n,
                    const char *next_before)
{
    json_t *arr = json_array();

    if (!arr)
        return CHAT_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *o =
            json_pack("{s:s, s:I, s:o, s:o, s:b, s:s}", "id", v[i].id, "at", (json_int_t)v[i].at,
                      "ip", str_or_null(v[i].ip), "user_agent", str_or_null(v[i].user_agent),
                      "success", v[i].success, "reason", v[i].reason);
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return CHAT_ENOMEM;
        }
    }
    return dump(out,
                json_pack("{s:o, s:o}", "logins", arr, "next_before", str_or_null(next_before)));
}

/* body strings: UTF-8 (checked by the caller), capped, NUL-free */
static int auth_str(json_t *root, const char *key, const char **out)
{
    return jopt_str(root, key, CHAT_AUTH_FIELD_MAX, out);
}

int chat_auth_body_decode(const char *body,
                          size_t len,
                          struct chat_auth_body *b,
                          enum chat_errcode *err)
{
    json_t *root, *all;

    memset(b, 0, sizeof(*b));
    if (len == 0) {
        b->_doc = json_object();
        return b->_doc ? CHAT_OK : CHAT_ENOMEM;
    }
    if (!chat_utf8_valid(body, len, NULL)) {
        *err = CHAT_ERR_bad_utf8;
        return CHAT_EPROTO;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        *err = CHAT_ERR_bad_json;
        return CHAT_EPROTO;
    }
    b->_doc = root;
    all = json_object_get(root, "all");
    if (auth_str(root, "username", &b->username) != CHAT_OK ||
        auth_str(root, "password", &b->password) != CHAT_OK ||
        auth_str(root, "nickname", &b->nickname) != CHAT_OK ||
        auth_str(root, "refresh_token", &b->refresh_token) != CHAT_OK ||
        auth_str(root, "current_password", &b->current_password) != CHAT_OK ||
        auth_str(root, "new_password", &b->new_password) != CHAT_OK ||
        (all && !json_is_boolean(all))) {
        *err = CHAT_ERR_bad_field;
        return CHAT_EPROTO;
    }
    b->all = all && json_is_true(all);
    return CHAT_OK;
}

void chat_auth_body_fini(struct chat_auth_body *b)
{
    if (!b)
        return;
    json_decref(b->_doc);
    memset(b, 0, sizeof(*b));
}

/* ---- chat.events ---- */

int chat_enc_ev_sessions_revoked(struct chat_buf *out,
                                 const char *user,
                                 const char *const *sids,
                                 size_t n,
                                 const char *reason,
                                 int64_t ts)
{
    json_t *arr = json_array();

    if (!arr)
        return CHAT_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, json_string(sids[i])) != 0) {
            json_decref(arr);
            return CHAT_ENOMEM;
        }
    return dump(out, json_pack("{s:s, s:s, s:o, s:s, s:I}", "type", "sessions_revoked", "user",
                               user, "sids", arr, "reason", reason, "ts", (json_int_t)ts));
}

int chat_enc_ev_user_updated(struct chat_buf *out, const char *user, const char *nick, int64_t ts)
{
    return dump(out, json_pack("{s:s, s:s, s:s, s:I}", "type", "user_updated", "user", user, "nick",
                               nick, "ts", (json_int_t)ts));
}

int chat_enc_ev_member_removed(
    struct chat_buf *out, const char *user, const char *room, const char *reason, int64_t ts)
{
    return dump(out, json_pack("{s:s, s:s, s:s, s:s, s:I}", "type", "member_removed", "user", user,
                               "room", room, "reason", reason, "ts", (json_int_t)ts));
}

int chat_enc_ev_room_deleted(struct chat_buf *out, const char *room, int64_t ts)
{
    return dump(out, json_pack("{s:s, s:s, s:s, s:I}", "type", "room_deleted", "user", "", "room",
                               room, "ts", (json_int_t)ts));
}

int chat_enc_ev_read(
    struct chat_buf *out, const char *user, const char *room, int64_t seq, int64_t ts)
{
    return dump(out, json_pack("{s:s, s:s, s:s, s:I, s:I}", "type", "read", "user", user, "room",
                               room, "seq", (json_int_t)seq, "ts", (json_int_t)ts));
}

static const char *const event_types[] = {
    [CHAT_EV_sessions_revoked] = "sessions_revoked",
    [CHAT_EV_user_updated] = "user_updated",
    [CHAT_EV_member_removed] = "member_removed",
    [CHAT_EV_room_deleted] = "room_deleted",
    [CHAT_EV_read] = "read",
    [CHAT_EV_sanction] = "sanction",
    [CHAT_EV_announcement] = "announcement",
};

static const char *const sanction_kinds[] = {"mute", "ban", "chat_ban"};

int chat_enc_sanction(struct chat_buf *out,
                      const char *user,
                      const char *room,
                      const char *kind,
                      int64_t until_ms,
                      const char *reason,
                      int64_t ts)
{
    return dump(out, json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:I}", "type", "sanction", "user",
                               user, "room", room, "kind", kind, "until",
                               until_ms > 0 ? json_integer(until_ms) : json_null(), "reason",
                               reason ? reason : "", "ts", (json_int_t)ts));
}

/* The frames that tell a user's connections of a sanction put in force or lifted early. */
int chat_enc_sanction_frame(
    struct chat_buf *out, const char *room, const char *kind, int64_t until_ms, const char *reason)
{
    return dump(out,
                json_pack("{s:s, s:s, s:s, s:o, s:s}", "type", "sanction", "room", room, "kind",
                          kind, "until", until_ms > 0 ? json_integer(until_ms) : json_null(),
                          "reason", reason ? reason : ""));
}

int chat_enc_sanction_lifted(struct chat_buf *out, const char *room, const char *kind)
{
    return dump(
        out, json_pack("{s:s, s:s, s:s}", "type", "sanction_lifted", "room", room, "kind", kind));
}

int chat_enc_spam_ban(
    struct chat_buf *out, const char *user, int64_t until_ms, int offence, int64_t ts)
{
    return dump(out,
                json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:i, s:I}", "type", "sanction", "user",
                          user, "room", "*", "kind", "chat_ban", "until", (json_int_t)until_ms,
                          "reason", "spam", "offence", offence, "ts", (json_int_t)ts));
}

int chat_sanction_key(char *out, size_t cap, const char *user, const char *room, const char *kind)
{
    int n = snprintf(out, cap, "%s %s %s", user, room, kind);
    return n >= 0 && (size_t)n < cap ? CHAT_OK : CHAT_ETOOBIG;
}

/* The fields of a sanction event (type checked by the caller). */
static int decode_sanction(json_t *root, struct chat_event *ev)
{
    json_t *until = json_object_get(root, "until"), *offence;
    bool known = false;

    if (jopt_str(root, "room", CHAT_ROOM_MAX, &ev->room) != CHAT_OK || !ev->room ||
        (strcmp(ev->room, "*") != 0 && !chat_room_valid(ev->room)) || !ev->user[0] ||
        jopt_str(root, "kind", 16, &ev->kind) != CHAT_OK || !ev->kind ||
        jopt_str(root, "reason", CHAT_AUTH_FIELD_MAX, &ev->reason) != CHAT_OK ||
        (until && !json_is_null(until) &&
         (!json_is_integer(until) || json_integer_value(until) <= 0)))
        return CHAT_EPROTO;
    for (size_t i = 0; i < sizeof(sanction_kinds) / sizeof(sanction_kinds[0]); i++)
        known = known || strcmp(ev->kind, sanction_kinds[i]) == 0;
    ev->until = json_is_integer(until) ? json_integer_value(until) : 0;
    offence = json_object_get(root, "offence"); /* the spam rule's only; ignored when odd */
    ev->offence = json_is_integer(offence) && json_integer_value(offence) > 0 &&
                          json_integer_value(offence) <= 1000000
                      ? json_integer_value(offence)
                      : 0;
    return known ? CHAT_OK : CHAT_EPROTO;
}

int chat_event_decode(const char *v, size_t len, struct chat_event *ev)
{
    json_t *root, *type, *ts, *sids;
    const char *t;

    memset(ev, 0, sizeof(*ev));
    root = json_loadb(v, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return CHAT_EPROTO;
    }
    ev->_doc = root;
    type = json_object_get(root, "type");
    if (!json_is_string(type))
        return CHAT_EPROTO;
    t = json_string_value(type);
    for (size_t i = 1; i < sizeof(event_types) / sizeof(event_types[0]); i++)
        if (strcmp(t, event_types[i]) == 0)
            ev->type = (enum chat_event_type)i;
    if (ev->type == CHAT_EV_NONE)
        return CHAT_ENOENT; /* another version's event: its fields are its own */
    ts = json_object_get(root, "ts");
    if (!json_is_integer(ts) || jopt_str(root, "user", CHAT_USER_MAX, &ev->user) != CHAT_OK ||
        !ev->user)
        return CHAT_EPROTO;
    ev->ts = json_integer_value(ts);
    if (ev->type == CHAT_EV_sanction)
        return decode_sanction(root, ev);
    if (ev->type == CHAT_EV_announcement) {
        if (jopt_str(root, "room", CHAT_ROOM_MAX, &ev->room) != CHAT_OK || !ev->room ||
            (strcmp(ev->room, "*") != 0 && !chat_room_valid(ev->room)) ||
            jopt_str(root, "text", 65536, &ev->text) != CHAT_OK || !ev->text ||
            jopt_str(root, "id", 24, &ev->id) != CHAT_OK || !ev->id)
            return CHAT_EPROTO;
        return CHAT_OK;
    }
    if (ev->type == CHAT_EV_member_removed || ev->type == CHAT_EV_room_deleted ||
        ev->type == CHAT_EV_read) {
        json_t *seq = json_object_get(root, "seq");
        if (jopt_str(root, "room", CHAT_ROOM_MAX, &ev->room) != CHAT_OK || !ev->room ||
            !chat_room_valid(ev->room) || (ev->type != CHAT_EV_room_deleted && !ev->user[0]))
            return CHAT_EPROTO;
        if (ev->type == CHAT_EV_member_removed &&
            jopt_str(root, "reason", 64, &ev->reason) != CHAT_OK)
            return CHAT_EPROTO;
        if (ev->type != CHAT_EV_read)
            return CHAT_OK;
        if (!json_is_integer(seq) || json_integer_value(seq) < 0)
            return CHAT_EPROTO;
        ev->seq = json_integer_value(seq);
        return CHAT_OK;
    }
    if (ev->type == CHAT_EV_user_updated) {
        ev->type = CHAT_EV_user_updated;
        return jopt_str(root, "nick", CHAT_AUTH_FIELD_MAX, &ev->nick) == CHAT_OK && ev->nick
                   ? CHAT_OK
                   : CHAT_EPROTO;
    }
    sids = json_object_get(root, "sids");
    if (!json_is_array(sids) || jopt_str(root, "reason", 64, &ev->reason) != CHAT_OK || !ev->reason)
        return CHAT_EPROTO;
    ev->sids = chat_xcalloc(json_array_size(sids) + 1, sizeof(*ev->sids));
    for (size_t i = 0; i < json_array_size(sids); i++) {
        json_t *s = json_array_get(sids, i);
        if (!json_is_string(s) || json_string_length(s) > CHAT_USER_MAX || jhas_nul(s))
            return CHAT_EPROTO;
        ev->sids[ev->nsids++] = json_string_value(s);
    }
    return CHAT_OK;
}

void chat_event_fini(struct chat_event *ev)
{
    if (!ev)
        return;
    chat_free(ev->sids);
    json_decref(ev->_doc);
    memset(ev, 0, sizeof(*ev));
}

/* ---- chat.rooms ---- */

static const char *const room_kinds[] = {"public", "private", "group", "direct"};

int chat_enc_room_rec(struct chat_buf *out,
                      const char *room,
                      const char *kind,
                      int max_text,
                      int slow_mode_s,
                      int64_t ts)
{
    return dump(out, json_pack("{s:s, s:s, s:s, s:i, s:i, s:I}", "type", "room", "room", room,
                               "kind", kind, "max_text", max_text, "slow_mode_s", slow_mode_s, "ts",
                               (json_int_t)ts));
}

int chat_room_rec_decode(const char *v, size_t len, struct chat_room_rec *r)
{
    json_t *root, *mt, *ts;
    bool known = false;

    memset(r, 0, sizeof(*r));
    root = json_loadb(v, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return CHAT_EPROTO;
    }
    r->_doc = root;
    mt = json_object_get(root, "max_text");
    ts = json_object_get(root, "ts");
    if (jopt_str(root, "room", CHAT_ROOM_MAX, &r->room) != CHAT_OK || !r->room ||
        !chat_room_valid(r->room) || jopt_str(root, "kind", 16, &r->kind) != CHAT_OK || !r->kind ||
        !json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > INT32_MAX ||
        !json_is_integer(ts))
        return CHAT_EPROTO;
    for (size_t i = 0; i < sizeof(room_kinds) / sizeof(room_kinds[0]); i++)
        known = known || strcmp(r->kind, room_kinds[i]) == 0;
    if (!known)
        return CHAT_EPROTO;
    r->max_text = (int)json_integer_value(mt);
    r->ts = json_integer_value(ts);
    {
        json_t *sm = json_object_get(root, "slow_mode_s");
        if (sm &&
            (!json_is_integer(sm) || json_integer_value(sm) < 0 || json_integer_value(sm) > 86400))
            return CHAT_EPROTO;
        r->slow_mode_s = sm ? (int)json_integer_value(sm) : 0;
    }
    return CHAT_OK;
}

void chat_room_rec_fini(struct chat_room_rec *r)
{
    if (!r)
        return;
    json_decref(r->_doc);
    memset(r, 0, sizeof(*r));
}

/* ---- history ---- */

int chat_enc_history(struct chat_buf *out,
                     const struct chat_buf *frames,
                     bool more,
                     const char *source)
{
    struct chat_buf tail;
    int rc;

    /* the frames are JSON already: only the tail goes through the encoder */
    chat_buf_init(&tail, 0, 0);
    rc = dump(&tail, json_pack("{s:b, s:s}", "more", more, "source", source));
    if (rc == CHAT_OK)
        rc = chat_buf_append(out, "{\"messages\":[", 13);
    if (rc == CHAT_OK && frames->len > 0)
        rc = chat_buf_append(out, chat_buf_data(frames), frames->len);
    if (rc == CHAT_OK)
        rc = chat_buf_append(out, "],", 2);
    if (rc == CHAT_OK) /* {"more":..,"source":..} without its "{" */
        rc = chat_buf_append(out, chat_buf_data(&tail) + 1, tail.len - 1);
    chat_buf_fini(&tail);
    return rc;
}

int chat_read_body_decode(const char *body, size_t len, int64_t *seq, enum chat_errcode *err)
{
    json_t *root, *v;
    int rc = CHAT_EPROTO;

    *seq = -1;
    if (!chat_utf8_valid(body, len, NULL)) {
        *err = CHAT_ERR_bad_utf8;
        return CHAT_EPROTO;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root || !json_is_object(root)) {
        *err = CHAT_ERR_bad_json;
        goto out;
    }
    v = json_object_get(root, "seq");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        *err = CHAT_ERR_bad_field;
        goto out;
    }
    *seq = json_integer_value(v);
    rc = CHAT_OK;
out:
    json_decref(root);
    return rc;
}

int chat_enc_read_state(struct chat_buf *out, int64_t last_read_seq, int64_t unread)
{
    return dump(out, json_pack("{s:I, s:I}", "last_read_seq", (json_int_t)last_read_seq, "unread",
                               (json_int_t)unread));
}

/* ---- idempotent sends (chat/idem.h) ---- */

int chat_enc_idem_ack(struct chat_buf *out, const char *room, uint64_t id, int64_t seq, int64_t ts)
{
    char ids[24];

    snprintf(ids, sizeof(ids), "%" PRIu64, id);
    return dump(out, json_pack("{s:s, s:s, s:I, s:I}", "room", room, "id", ids, "seq",
                               (json_int_t)seq, "ts", (json_int_t)ts));
}

int chat_idem_ack_decode(const char *v, size_t len, struct chat_idem_ack *a)
{
    json_t *root;
    const char *room, *ids;
    json_int_t seq, ts;
    char *end = NULL;
    int rc = CHAT_EPROTO;

    memset(a, 0, sizeof(*a));
    root = json_loadb(v, len, JSON_REJECT_DUPLICATES, NULL);
    if (!root || json_unpack(root, "{s:s, s:s, s:I, s:I}", "room", &room, "id", &ids, "seq", &seq,
                             "ts", &ts) != 0)
        goto out;
    if (!chat_room_valid(room) || seq < 0 || ids[0] < '0' || ids[0] > '9')
        goto out;
    errno = 0;
    a->id = strtoull(ids, &end, 10);
    if (errno != 0 || !end || *end != '\0')
        goto out;
    snprintf(a->room, sizeof(a->room), "%s", room);
    a->seq = seq;
    a->ts = ts;
    rc = CHAT_OK;
out:
    if (rc != CHAT_OK)
        memset(a, 0, sizeof(*a));
    json_decref(root);
    return rc;
}

/* ---- announcements (issue 13, the admin API) ---- */

int chat_enc_ev_announcement(
    struct chat_buf *out, const char *room, const char *id, const char *text, int64_t ts)
{
    return dump(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", "announcement", "user", "",
                               "room", room, "id", id, "text", text, "ts", (json_int_t)ts));
}

int chat_enc_announcement(struct chat_buf *out, const char *id, const char *text, int64_t ts)
{
    return dump(out, json_pack("{s:s, s:s, s:s, s:I}", "type", "announcement", "id", id, "text",
                               text, "ts", (json_int_t)ts));
}

int chat_enc_http_error_until(struct chat_buf *out,
                              const char *code,
                              const char *message,
                              int64_t until_ms,
                              const char *reason)
{
    return dump(out,
                json_pack("{s:{s:s, s:s, s:o, s:s}}", "error", "code", code, "message", message,
                          "until", until_ms > 0 ? json_integer(until_ms) : json_null(), "reason",
                          reason ? reason : ""));
}
