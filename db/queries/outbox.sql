-- outbox.sql - the outbox (db/migrations/0004_outbox.sql): queued in the change's transaction
-- by the request threads, relayed to chat.events and deleted by the relay (db/README.md).

-- name: outbox_add
-- topic 'events' (chat.events) or 'rooms' (chat.rooms); a NULL payload is a tombstone
INSERT INTO outbox (topic, key, type, payload) VALUES ($1, $2, $3, $4);

-- name: outbox_read
-- id, key, type, payload (NULL: a tombstone), created_at in microseconds, topic
SELECT id::text, key, type, payload, (extract(epoch FROM created_at) * 1000000)::bigint, topic
FROM outbox ORDER BY id LIMIT $1::int;

-- name: outbox_delete
DELETE FROM outbox WHERE id = ANY($1::bigint[]);
