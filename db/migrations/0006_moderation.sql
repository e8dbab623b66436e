-- 0006_moderation: sanctions, the audit log, reports, soft-deleted messages and slow mode
-- (issue 13; proto/README.md section 9, "Moderation" and "Administration").
--
-- A sanction holds for a user (every connection, every gateway): a mute (reads, cannot send), a
-- ban (out of the room, cannot rejoin; site-wide when room_id is NULL: sessions revoked, login
-- refused) or a chat ban (cannot send anywhere; the spam rule's, or an admin's). It is active
-- while not lifted and not expired. chat-api announces every change on chat.sanctions (the
-- outbox, in the same transaction), which every gateway reads whole. Every moderation and
-- administration action writes its audit_log row in the transaction of the action.

CREATE TABLE IF NOT EXISTS sanctions (
    id         bigserial   PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('mute', 'ban', 'chat_ban')),
    user_id    text        NOT NULL,           -- the token subject (an account id as text)
    room_id    text,                           -- NULL: site-wide
    reason     text        NOT NULL DEFAULT '',
    created_by bigint      REFERENCES users (id) ON DELETE SET NULL, -- NULL: the system
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,                    -- NULL: until lifted
    lifted_at  timestamptz,
    lifted_by  bigint      REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS sanctions_active_idx ON sanctions (user_id, room_id, kind)
    WHERE lifted_at IS NULL;

CREATE TABLE IF NOT EXISTS audit_log (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint,                        -- NULL: the system (the spam rule)
    action      text        NOT NULL,
    target_user text,
    room_id     text,
    message_id  bigint,
    reason      text        NOT NULL DEFAULT '',
    expires_at  timestamptz,
    details     jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (id DESC);
CREATE INDEX IF NOT EXISTS audit_log_target_idx ON audit_log (target_user, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_room_idx ON audit_log (room_id, id DESC);
CREATE INDEX IF NOT EXISTS audit_log_actor_idx ON audit_log (actor_id, id DESC);

CREATE TABLE IF NOT EXISTS reports (
    id          bigserial   PRIMARY KEY,
    reporter_id bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id     text        NOT NULL,
    message_id  bigint      NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'dismissed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_by bigint      REFERENCES users (id) ON DELETE SET NULL,
    resolved_at timestamptz,
    resolution  text
);
CREATE INDEX IF NOT EXISTS reports_open_idx ON reports (id) WHERE status = 'open';
-- one open report per reporter and message
CREATE UNIQUE INDEX IF NOT EXISTS reports_once_idx ON reports (reporter_id, message_id)
    WHERE status = 'open';

-- soft delete: the row stays for audit; history and recovery show it as deleted
ALTER TABLE messages ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS deleted_by text;
-- a message by id: its partition follows from the id's time (libchat id.h), the index finds it
CREATE INDEX IF NOT EXISTS messages_id_idx ON messages (id);

-- slow mode: seconds between one user's messages in the room (0: off)
ALTER TABLE rooms ADD COLUMN IF NOT EXISTS slow_mode_s int NOT NULL DEFAULT 0
    CHECK (slow_mode_s BETWEEN 0 AND 86400);

-- the room object gains slow_mode_s (same signature: replaced in place)
-- A room as the REST API shows it to viewer (NULL: anonymous): proto/README.md section 9.
CREATE OR REPLACE FUNCTION room_json(r rooms, viewer bigint) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', r.id, 'kind', r.kind, 'name', r.name, 'description', r.description,
        'member_limit', r.member_limit, 'max_text', r.max_text,
        'history_after_leave', r.history_after_leave, 'slow_mode_s', r.slow_mode_s,
        'created_at', (extract(epoch FROM r.created_at) * 1000)::bigint,
        'last_seq', r.last_seq,
        'last_message_at', (extract(epoch FROM r.last_message_at) * 1000)::bigint,
        'members', (SELECT count(*) FROM room_members m WHERE m.room_id = r.id AND m.state = 'active'),
        'peer', CASE WHEN r.kind = 'direct' THEN (
            SELECT json_build_object('id', u.id::text, 'username', u.username, 'nickname', u.nickname)
            FROM room_members m JOIN users u ON u.id = m.user_id
            WHERE m.room_id = r.id AND m.user_id IS DISTINCT FROM viewer
            ORDER BY m.user_id LIMIT 1) END,
        'me', (SELECT json_build_object('role', m.role, 'favourite', m.favourite,
                                        'last_read_seq', m.last_read_seq,
                                        'unread', room_unread(r.id, m.last_read_seq))
               FROM room_members m
               WHERE m.room_id = r.id AND m.user_id = viewer AND m.state = 'active'))
$$;

-- the outbox also carries chat.sanctions records (key "USER ROOM KIND"; NULL payload: lifted)
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_topic_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_topic_check
    CHECK (topic IN ('events', 'rooms', 'sanctions', 'messages'));
