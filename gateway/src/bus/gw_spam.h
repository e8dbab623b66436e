/* gw_spam.h - the spam rule and slow mode on the gateway (chat/spam.h has the scheme): one Redis
 * script per send, after the claim of its client_msg_id; a send that trips the rule chat-bans
 * its user on this node at once and on every other through a chat.events `sanction` record.
 * When Redis is out the send goes on unchecked (counted in chat_gateway_spam_skipped_total).
 *
 * The script's round trip would delay every message (its p99 is milliseconds on a loaded node),
 * yet almost every send cannot trip the rule. So the script runs before the produce only when
 * its answer can refuse the send: in a room with slow mode, or when this connection sent the
 * same text (after normalisation) among its last CHAT_SPAM_LAST sends. Every other send is
 * produced at once and its script runs beside it: should it trip the rule anyway (the same text
 * from several connections, each sending it for the first time), that send is delivered and the
 * ban holds from the next one. Thread-safety: event-loop thread only. */
#ifndef GW_SPAM_H
#define GW_SPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw;
struct gw_conn;
struct gw_pending;

/* Runs the script for p (p->room, p->text and p->text_len set; p must stay alive until the
 * answer: it is, as a pending send of its connection) sent by user. Returns CHAT_OK:
 * gw_send_checked() follows, later, exactly once; or CHAT_ESTATE: Redis is not connected
 * (counted as skipped), nothing follows and the caller produces unchecked. */
int gw_spam_check(struct gw *gw, struct gw_pending *p, const char *user);
/* Whether c sent text (after normalisation) among its last CHAT_SPAM_LAST sends; remembers it
 * (the memory is allocated on c's first send and freed with c). False with the rule off. */
bool gw_spam_repeat(struct gw *gw, struct gw_conn *c, const char *text, size_t len);
/* Runs the script for a send produced without waiting (no slow mode in room): a trip bans user
 * from the next send on (gw_spam_ban), a ban made elsewhere is put in force here sooner. */
void gw_spam_beside(
    struct gw *gw, const char *user, const char *room, const char *text, size_t len);
/* user tripped the rule (offence: the n-th within the window): chat-banned until until_ms on
 * this node now (gw_acl_sanction_put) and on every gateway, and stored by the persister, through
 * a chat.events `sanction` record keyed by user. */
void gw_spam_ban(struct gw *gw, const char *user, int64_t until_ms, int offence);

#endif
