/* api_peer.h - who is asking: the client address behind trusted proxies and a printable user
 * agent. Pure functions (no allocation except api_peer_user_agent's result), any thread. */
#ifndef API_PEER_H
#define API_PEER_H

#include <stddef.h>

#define API_IP_MAX 64
#define API_UA_MAX 512 /* bytes of a user agent kept in the login history */

/* Behind hops proxies, each appending the address it saw to X-Forwarded-For, the client is the
 * hops-th entry from the right: the peer is the last proxy, and entries further left were
 * written by the client and prove nothing. With fewer entries than hops the request skipped
 * outer proxies: the left-most entry was still written by one of ours. No header (xff NULL),
 * hops 0, or an entry that is not an address: the peer (never a client-chosen string). An
 * IPv4-mapped IPv6 address is written as IPv4. */
void api_peer_client(const char *peer, const char *xff, int hops, char *out, size_t cap);

/* The user agent cut to API_UA_MAX bytes at a character boundary, invalid bytes and controls
 * as '?'; NULL for NULL. Free with chat_free. */
char *api_peer_user_agent(const char *ua);

#endif
