-- 0002_accounts: users, login sessions with rotated refresh tokens, and the login history.
--
-- Written by the gateways (REST /api/v1/auth and /api/v1/users, on worker threads); the schema
-- is applied by chat-persister like every migration. Ids are bigint identities, sent to clients
-- as decimal strings (the JWT "sub" is users.id, "sid" is sessions.id).

CREATE TABLE IF NOT EXISTS users (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username        text        NOT NULL CHECK (username ~ '^[A-Za-z0-9_]{4,20}$'),
    nickname        text        NOT NULL CHECK (char_length(nickname) BETWEEN 2 AND 20),
    password_hash   text        NOT NULL,          -- crypt(3) string: $y$ (yescrypt) or $2b$
    role            text        NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    nick_changed_at timestamptz,                   -- gateways re-learn recent changes at startup
    password_changed_at timestamptz
);
-- usernames are unique case-insensitively; lookups use the same expression
CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower_idx ON users (lower(username));

-- One row per login (a device): the refresh-token family. Revoking it ends every token of it.
CREATE TABLE IF NOT EXISTS sessions (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,            -- slides forward on every refresh
    revoked_at    timestamptz,
    revoke_reason text,                            -- logout | password_changed | admin | refresh_reused
    ip            text,
    user_agent    text
);
CREATE INDEX IF NOT EXISTS sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;
-- gateways load the sessions revoked within one access-token lifetime at startup
CREATE INDEX IF NOT EXISTS sessions_revoked_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens are stored as SHA-256 only. A token is spent by its first use (used_at); a
-- spent token presented again revokes its whole session (reuse detection).
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash bytea       PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    session_id bigint      NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Every login attempt that reached the database (rate-limited attempts are counted in metrics
-- only). user_id is NULL for an unknown username.
CREATE TABLE IF NOT EXISTS login_events (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint      REFERENCES users (id) ON DELETE CASCADE,
    username   text        NOT NULL,               -- as typed (capped by the gateway)
    at         timestamptz NOT NULL DEFAULT now(),
    ip         text,
    user_agent text,
    success    boolean     NOT NULL,
    reason     text        NOT NULL                -- ok | registered | wrong_password | unknown_user
);
CREATE INDEX IF NOT EXISTS login_events_user_idx ON login_events (user_id, id DESC);
