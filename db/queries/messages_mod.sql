-- messages_mod.sql - deleting and reporting messages, system events of rooms (issue 13;
-- api/src/routes/r_messages_mod.c, api/src/routes/r_system.c; db/migrations/0006_moderation.sql).

-- name: msg_lock
-- serializes the deletes and reports of one message id (transaction-scoped)
SELECT pg_advisory_xact_lock(hashtextextended('chat.msg', 0) # $1::bigint);

-- name: msg_room_access
-- room $1 as user $2 sees it: kind, the user's role and state (NULL: never a member), whether
-- a member who left may still read it (history_after_leave)
SELECT r.kind, m.role, m.state, r.history_after_leave
FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2::bigint
WHERE r.id = $1;

-- name: msg_lookup
-- a message of room $2 by id $1 (stored by the persister): author, deleted already
SELECT user_id, deleted_at IS NOT NULL FROM messages
WHERE id = $1::bigint AND room = $2 AND kind = 'message' LIMIT 1;

-- name: msg_deleted_before
-- a delete of message $1 recorded already (the row may not have been stored at that time)
SELECT 1 FROM audit_log WHERE action = 'delete_message' AND message_id = $1::bigint LIMIT 1;

-- name: msg_soft_delete
-- message $1 of room $2 deleted at $3 (ms since the epoch) by user $4, and its stored edits
-- (history gives them without their text; migration 0008)
UPDATE messages SET deleted_at = to_timestamp($3::bigint / 1000.0), deleted_by = $4
WHERE room = $2 AND deleted_at IS NULL
  AND (id = $1::bigint OR (target_id = $1::bigint AND kind = 'message_edited'));

-- name: report_add
-- one open report per reporter and message (reports_once_idx): no row when one is open already
INSERT INTO reports (reporter_id, room_id, message_id, reason)
VALUES ($1::bigint, $2, $3::bigint, $4)
ON CONFLICT DO NOTHING
RETURNING id::text;
