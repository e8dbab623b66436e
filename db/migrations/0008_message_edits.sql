-- 0008_message_edits: edits of messages (protocol version 4; proto/README.md sections 5, 9, 11).
-- A message_edited record of a room's stream is stored as a row like the other events
-- (kind = its type, body = the record, id = -(partition << 40 | offset), as a message_deleted
-- row), with target_id = the edited message's id; storing it sets the message's text (body) and
-- edited_at, unless an edit later in the stream (edit_offset) is stored already, and keeps the
-- text the message was sent with in original_body (the administration API). A delete of the
-- message also sets deleted_at on its edit rows, so history gives them without their text.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS target_id bigint;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS edited_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS edit_offset bigint;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS original_body text;

ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_kind_check;
ALTER TABLE messages ADD CONSTRAINT messages_kind_check
    CHECK (kind IN ('message', 'message_deleted', 'system', 'message_edited'));

-- the edit rows of a message (a delete marks them): edit rows only
CREATE INDEX IF NOT EXISTS messages_target_idx ON messages (target_id) WHERE target_id IS NOT NULL;
