#include "chat/utf8.h"

#include <string.h>

bool chat_utf8_valid(const char *str, size_t len, size_t *cps)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, n = 0;

    while (i < len) {
        unsigned c = s[i];
        unsigned cp, need;

        if (c < 0x80) {
            i++;
            n++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false; /* continuation byte, overlong lead 0xC0/0xC1, or > 0xF4 */
        }
        if (len - i <= need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += need + 1;
        n++;
    }
    if (cps)
        *cps = n;
    return true;
}

bool chat_utf8_has_control(const char *str, size_t len, const char *allow)
{
    const unsigned char *s = (const unsigned char *)str;

    for (size_t i = 0; i < len; i++) {
        unsigned c = s[i];
        if ((c < 0x20 || c == 0x7F) && !(c != 0 && allow && strchr(allow, (int)c)))
            return true;
        /* C1 controls U+0080..U+009F are encoded as C2 80..C2 9F */
        if (c == 0xC2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F)
            return true;
    }
    return false;
}
