/* gw_spam.h - the spam rule and slow mode on the gateway (chat/spam.h has the scheme): one Redis
 * script per send, after the claim of its client_msg_id and before the produce; a send that
 * trips the rule chat-bans its user on this node at once and on every other through a chat.events
 * `sanction` record. When Redis is out the send goes on unchecked (counted in
 * chat_gateway_spam_skipped_total). Thread-safety: event-loop thread only. */
#ifndef GW_SPAM_H
#define GW_SPAM_H

#include <stdint.h>

struct gw;
struct gw_pending;

/* Runs the script for p (p->room, p->text and p->text_len set; p must stay alive until the
 * answer: it is, as a pending send of its connection) sent by user. Returns CHAT_OK:
 * gw_send_checked() follows, later, exactly once; or CHAT_ESTATE: Redis is not connected
 * (counted as skipped), nothing follows and the caller produces unchecked. */
int gw_spam_check(struct gw *gw, struct gw_pending *p, const char *user);
/* user tripped the rule (offence: the n-th within the window): chat-banned until until_ms on
 * this node now (gw_acl_sanction_put) and on every gateway, and stored by the persister, through
 * a chat.events `sanction` record keyed by user. */
void gw_spam_ban(struct gw *gw, const char *user, int64_t until_ms, int offence);

#endif
