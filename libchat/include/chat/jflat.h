/* jflat.h - a scanner of flat JSON objects: the shape of every client frame on the hot path.
 *
 * chat_cframe_decode() (proto.c) reads a frame through it first. It takes only a top-level
 * object of at most CHAT_JFLAT_MAX members whose keys are plain strings and whose values are
 * strings (the escapes \" \\ \/ \b \f \n \r \t; no \u), integers of at most 18 digits, true,
 * false or null, with no duplicate key. Anything else (nesting, \u escapes, real numbers, a
 * duplicate, a syntax error) is CHAT_EPROTO ("not taken"): the caller then parses the frame with
 * jansson, which decides, so the scanner changes no answer, only the time it takes (no tree, one
 * allocation). The input must be valid UTF-8 (the caller checks the whole frame first).
 *
 * Thread-safety: none needed (no shared state). */
#ifndef CHAT_JFLAT_H
#define CHAT_JFLAT_H

#include <stddef.h>
#include <stdint.h>

#define CHAT_JFLAT_MAX 16

enum chat_jflat_kind {
    CHAT_JFLAT_STR,
    CHAT_JFLAT_INT,
    CHAT_JFLAT_TRUE,
    CHAT_JFLAT_FALSE,
    CHAT_JFLAT_NULL,
};

struct chat_jflat_member {
    const char *key; /* NUL-terminated, in the scanner's copy */
    size_t key_len;
    enum chat_jflat_kind kind;
    const char *s; /* CHAT_JFLAT_STR: unescaped, NUL-terminated, in the scanner's copy (no NUL
                      inside: \u escapes are not taken, raw control bytes are not JSON) */
    size_t len;    /* bytes of s */
    int64_t i;     /* CHAT_JFLAT_INT */
};

struct chat_jflat {
    struct chat_jflat_member m[CHAT_JFLAT_MAX];
    int n;
    char *buf; /* owns: the copy the strings point into */
};

/* Scans text[0..len) into *out. Returns CHAT_OK, or CHAT_EPROTO: not taken (out holds nothing to
 * free). After CHAT_OK, chat_jflat_fini(out) frees the copy. */
int chat_jflat_scan(const char *text, size_t len, struct chat_jflat *out);
/* The member named key, or NULL. */
const struct chat_jflat_member *chat_jflat_get(const struct chat_jflat *j, const char *key);
void chat_jflat_fini(struct chat_jflat *j); /* NULL-safe, idempotent */

#endif
