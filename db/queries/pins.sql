-- pins.sql - a room's pinned messages (proto/README.md section 9, "Pins";
-- api/src/routes/r_pins.c; db/migrations/0009_pins.sql).

-- name: pins_lock
-- serializes the pins of room $1 (transaction-scoped): the count and the insert go together
SELECT pg_advisory_xact_lock(hashtextextended('chat.pins', 0) # hashtextextended($1, 0));

-- name: pins_list
-- the pinned messages of room $1 that are stored and not deleted, the newest pin first; one
-- JSON object each (the message in its newest form)
SELECT json_build_object(
    'id', m.id::text, 'seq', m.kafka_offset, 'user', m.user_id, 'nick', m.nick, 'text', m.body,
    'ts', (extract(epoch FROM m.created_at) * 1000)::bigint,
    'edited_at', (extract(epoch FROM m.edited_at) * 1000)::bigint,
    'pinned_by', p.pinned_by::text,
    'pinned_at', (extract(epoch FROM p.pinned_at) * 1000)::bigint)::text
FROM room_pins p
JOIN LATERAL (SELECT * FROM messages x
              WHERE x.id = p.message_id AND x.room = p.room_id AND x.kind = 'message'
                AND x.deleted_at IS NULL
              LIMIT 1) m ON true
WHERE p.room_id = $1
ORDER BY p.pinned_at DESC, p.message_id DESC;

-- name: pin_get
-- the pin of message $2 in room $1 (no row: not pinned): who, when (ms)
SELECT pinned_by::text, (extract(epoch FROM pinned_at) * 1000)::bigint
FROM room_pins WHERE room_id = $1 AND message_id = $2::bigint;

-- name: pins_count
SELECT count(*) FROM room_pins WHERE room_id = $1;

-- name: pins_room
-- room $1's row, kept until the transaction ends (a delete of the room waits; no row: gone)
SELECT 1 FROM rooms WHERE id = $1 FOR KEY SHARE;

-- name: pin_add
-- pins message $2 in room $1 by user $3 now (the clock, not the transaction's start: the pins'
-- order is the order of their events); when (ms)
INSERT INTO room_pins (room_id, message_id, pinned_by, pinned_at)
VALUES ($1, $2::bigint, $3::bigint, clock_timestamp())
RETURNING (extract(epoch FROM pinned_at) * 1000)::bigint;

-- name: pin_remove
-- unpins message $2 in room $1 (no row: it was not pinned)
DELETE FROM room_pins WHERE room_id = $1 AND message_id = $2::bigint RETURNING 1;
