/* api_peer.c - the client behind the proxies (api_peer.h). */
#include "api_peer.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "chat/mem.h"
#include "chat/utf8.h"

#define XFF_MAX 2048 /* bytes of X-Forwarded-For looked at: its right end */

static bool is_ip(const char *s)
{
    unsigned char a[16];
    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* Where an IPv4-mapped IPv6 address's IPv4 part starts (0: not one). */
static size_t unmapped(const char *s)
{
    return strncmp(s, "::ffff:", 7) == 0 && strchr(s + 7, '.') ? 7 : 0;
}

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

void api_peer_client(const char *peer, const char *xff, int hops, char *out, size_t cap)
{
    char buf[XFF_MAX], *hop = NULL;
    size_t n;

    if (!peer || !peer[0])
        peer = "unknown";
    snprintf(out, cap, "%s", peer + unmapped(peer));
    if (hops <= 0 || !xff || !xff[0])
        return;
    /* longer than we keep: only its right end matters (our proxies append there), so a client
     * cannot pad it to fall back to the peer, the last proxy's address */
    n = strlen(xff);
    snprintf(buf, sizeof(buf), "%s", n >= sizeof(buf) ? xff + n - (sizeof(buf) - 1) : xff);
    for (int i = 0; i < hops; i++) {
        char *comma = strrchr(buf, ',');
        hop = comma ? comma + 1 : buf;
        if (!comma)
            break; /* the left-most entry */
        if (i + 1 < hops)
            *comma = '\0';
    }
    hop = trim(hop);
    hop += unmapped(hop);
    if (is_ip(hop))
        snprintf(out, cap, "%s", hop);
}

char *api_peer_user_agent(const char *raw)
{
    size_t len, o = 0;
    char *out;

    if (!raw)
        return NULL;
    len = strlen(raw);
    out = chat_xmalloc(API_UA_MAX + 1);
    for (size_t i = 0; i < len;) {
        size_t k = 1;
        unsigned char c = (unsigned char)raw[i];
        if (c >= 0xC0)
            k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (i + k > len || !chat_utf8_valid(raw + i, k, NULL) ||
            chat_utf8_has_control(raw + i, k, NULL)) {
            k = 1;
            if (o + 1 > API_UA_MAX)
                break;
            out[o++] = '?';
        } else {
            if (o + k > API_UA_MAX)
                break;
            memcpy(out + o, raw + i, k);
            o += k;
        }
        i += k;
    }
    out[o] = '\0';
    return out;
}
