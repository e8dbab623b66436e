-- 0004_outbox: events written in the same transaction as the change they announce (a session
-- revoked, a nickname changed) and produced to chat.events by chat-api's relay
-- (api/src/bus/api_outbox.c), which deletes a row once Kafka acknowledged it. An event is
-- therefore never lost while Kafka is down, and never announced for a change that rolled back.
-- Delivery is at least once: the gateways apply events idempotently.
CREATE TABLE IF NOT EXISTS outbox (
    id         bigserial PRIMARY KEY,
    key        text NOT NULL,            -- the Kafka key (a user id)
    type       text NOT NULL,            -- the "type" header: sessions_revoked, user_updated
    payload    text NOT NULL,            -- the record value (JSON, proto/README.md section 8)
    created_at timestamptz NOT NULL DEFAULT now()
);

-- a commit wakes the relay at once (LISTEN chat_outbox) instead of at its next poll
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chat_outbox', '');
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
