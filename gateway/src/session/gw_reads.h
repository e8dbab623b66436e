/* gw_reads.h - read markers: the `read {room, seq}` frame becomes a chat.events record (type
 * read, key = user id) that the persister stores as the user's last_read_seq of the room.
 * Thread-safety: event-loop thread only. */
#ifndef GW_READS_H
#define GW_READS_H

struct chat_cframe;
struct gw_conn;

/* The read frame's handler: identity, expiry and membership were checked by the dispatcher
 * (CHAT_FF_AUTH | CHAT_FF_JOINED), the frame rate by the connection's frame bucket. Fire and
 * forget: no reply on success; `unavailable` when Kafka refuses the record at once. */
void gw_reads_frame(struct gw_conn *c, const struct chat_cframe *f);

#endif
