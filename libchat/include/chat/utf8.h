/* chat/utf8.h - strict UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 * Thread-safety: pure functions. */
#ifndef CHAT_UTF8_H
#define CHAT_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Returns true when s[0..len) is valid UTF-8; *cps (optional) receives the code point count. */
bool chat_utf8_valid(const char *s, size_t len, size_t *cps);

/* Returns true when the valid UTF-8 string holds a C0/C1 control character or DEL, other than
 * the ones listed in allow (e.g. "\n\t"). */
bool chat_utf8_has_control(const char *s, size_t len, const char *allow);

#endif
