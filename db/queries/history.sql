-- history.sql - a room's history and read markers (proto/README.md section 9, "History";
-- api/src/routes/r_history.c). The messages table is the partitioned parent: a page by
-- kafka_offset (the room's seq) uses messages_room_offset_idx on every day partition.

-- name: room_read_access
-- Who may read a room (rooms rows only; a room without a row is an ad-hoc public one when its id
-- does not start with "_"). $1 room, $2 the caller's user id (NULL: anonymous or not an account).
-- kind, may_read (public: anyone; others: an active member, or a left one when
-- history_after_leave), last_seq (NULL: nothing stored yet), member_state (NULL: no row).
SELECT r.kind,
       (r.kind = 'public' OR m.state = 'active'
        OR (m.state = 'left' AND r.history_after_leave)) IS TRUE AS may_read,
       r.last_seq, m.state
FROM rooms r
LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2::bigint
WHERE r.id = $1;

-- name: room_last_stored
-- The newest stored seq of room $1 (no row: none): the freshness check of a cached newest page
-- when rooms.last_seq is unknown (ad-hoc rooms, rooms registered after their first messages).
SELECT kafka_offset FROM messages WHERE room = $1 ORDER BY kafka_offset DESC LIMIT 1;

-- name: history_before
-- The $3 newest events of room $1 with seq < $2 (newest first). Columns: seq, id, user, nick,
-- text, client_msg_id (NULL: none), ts (ms), kind (message, message_deleted, message_edited,
-- system: body is then the record itself, migrations 0007, 0008), deleted (a soft-deleted
-- message, or an edit of one), edited_at (ms; NULL: never edited).
SELECT kafka_offset, id::text, user_id, nick, body, client_msg_id,
       (extract(epoch FROM created_at) * 1000)::bigint, kind, deleted_at IS NOT NULL,
       (extract(epoch FROM edited_at) * 1000)::bigint
FROM messages
WHERE room = $1 AND kafka_offset < $2::bigint
ORDER BY kafka_offset DESC
LIMIT $3::int;

-- name: history_after
-- The message of room $1 at or right before seq $2 (at most one row: the prev of the first one
-- after), then the $3 oldest with seq > $2, ascending. Columns as history_before.
(SELECT kafka_offset, id::text, user_id, nick, body, client_msg_id,
        (extract(epoch FROM created_at) * 1000)::bigint, kind, deleted_at IS NOT NULL,
        (extract(epoch FROM edited_at) * 1000)::bigint
 FROM messages
 WHERE room = $1 AND kafka_offset <= $2::bigint
 ORDER BY kafka_offset DESC
 LIMIT 1)
UNION ALL
(SELECT kafka_offset, id::text, user_id, nick, body, client_msg_id,
        (extract(epoch FROM created_at) * 1000)::bigint, kind, deleted_at IS NOT NULL,
        (extract(epoch FROM edited_at) * 1000)::bigint
 FROM messages
 WHERE room = $1 AND kafka_offset > $2::bigint
 ORDER BY kafka_offset
 LIMIT $3::int);

-- name: read_marker_set
-- Moves user $2's read marker in room $1 forward to $3 (active members only; no row: not one),
-- returning the marker and the unread count after it (room_unread, migration 0005).
UPDATE room_members
SET last_read_seq = GREATEST(last_read_seq, $3::bigint)
WHERE room_id = $1 AND user_id = $2::bigint AND state = 'active'
RETURNING last_read_seq, room_unread($1, last_read_seq);
