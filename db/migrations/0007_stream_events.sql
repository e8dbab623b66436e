-- 0007_stream_events: a room's stream in PostgreSQL holds every event of chat.messages, not
-- only messages (issue 13; proto/README.md sections 5 and 11): the persister stores a
-- message_deleted or system record as a row with kind = its type and body = the record's value
-- (the JSON as produced), so history by seq has no holes in the prev chain. A message_deleted
-- row's id is -(partition << 40 | offset) (no message id is negative); a system row's id is the
-- event's id. History and the REST delete read kind.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'message_deleted', 'system'));

-- unread counts messages only (not system events, deletions)
CREATE OR REPLACE FUNCTION room_unread(room text, after bigint) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT count(*) FROM (
        SELECT 1 FROM messages m
        WHERE m.room = room_unread.room AND m.kafka_offset > room_unread.after
          AND m.kind = 'message'
        LIMIT 1000
    ) AS capped
$fn$;
