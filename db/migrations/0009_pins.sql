-- 0009_pins: pinned messages of a room (proto/README.md section 9, "Pins";
-- api/src/routes/r_pins.c). A pin names a message by id; the listing reads the message itself
-- (its newest text) and leaves out one not stored yet or deleted (a delete also drops its pin).
-- At most CHAT_PINS_MAX per room, counted under a per-room advisory lock.
CREATE TABLE IF NOT EXISTS room_pins (
    room_id    text        NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    message_id bigint      NOT NULL,
    pinned_by  bigint      NOT NULL,
    pinned_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, message_id)
);
