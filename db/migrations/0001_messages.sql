-- 0001_messages: chat messages, range-partitioned by UTC day on created_at.
--
-- Applied by whichever of chat-persister, chat-api and chatctl migrate comes first, inside one
-- transaction under an advisory lock (see db/src/db_migrate.c). Migrations must not contain
-- BEGIN/COMMIT or statements that cannot run in a transaction block (CREATE INDEX CONCURRENTLY,
-- VACUUM).
--
-- Partitions are created by the persister, one per UTC day, named messages_YYYYMMDD and bound
-- FROM ('YYYY-MM-DD 00:00:00+00') TO ('next day 00:00:00+00'). Indexes declared here on the
-- parent are created on every partition automatically.

CREATE TABLE IF NOT EXISTS messages (
    id              bigint      NOT NULL,          -- time-ordered message id (libchat id.h)
    room            text        NOT NULL,
    kafka_partition int         NOT NULL,          -- chat.messages partition of the room
    kafka_offset    bigint      NOT NULL,          -- stream position: the message's seq
    user_id         text        NOT NULL,
    nick            text        NOT NULL,
    body            text        NOT NULL,
    client_msg_id   text,
    created_at      timestamptz NOT NULL,          -- server timestamp ("ts") of the message
    inserted_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (created_at, id)
) PARTITION BY RANGE (created_at);

-- History of a room, newest first: WHERE room = $1 AND created_at < $2 ORDER BY created_at DESC, id DESC.
CREATE INDEX IF NOT EXISTS messages_room_time_idx ON messages (room, created_at DESC, id DESC);

-- Recovery by stream position: WHERE room = $1 AND kafka_offset > $2 ORDER BY kafka_offset.
CREATE INDEX IF NOT EXISTS messages_room_offset_idx ON messages (room, kafka_offset);
