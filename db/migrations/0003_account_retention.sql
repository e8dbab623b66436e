-- 0003_account_retention: what the gateways' retention purge (CHAT_RETAIN_LOGINS_S,
-- CHAT_RETAIN_SESSIONS_S, CHAT_PURGE_INTERVAL_S) and the revocation memory need.
--
-- sessions.tokens_expire_at: the latest exp (plus leeway) of the access tokens signed for the
-- session. A revocation must be remembered by the gateways until then, and a session is not
-- purged before it either. NULL for sessions from before this migration (their tokens expired
-- long ago or carry the current lifetime).
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS tokens_expire_at timestamptz;

-- the purge: oldest first, in bounded batches
CREATE INDEX IF NOT EXISTS login_events_at_idx ON login_events (at);
CREATE INDEX IF NOT EXISTS refresh_tokens_expires_idx ON refresh_tokens (expires_at);
-- the same expression as GW_SESSION_ENDED in gateway/src/gw_db.c
CREATE INDEX IF NOT EXISTS sessions_ended_idx ON sessions
    ((greatest(coalesce(revoked_at, expires_at), coalesce(tokens_expire_at, revoked_at, expires_at))));
-- revoked sessions whose tokens may still be valid: re-read by every gateway on each sync
CREATE INDEX IF NOT EXISTS sessions_tokens_valid_idx ON sessions (tokens_expire_at)
    WHERE revoked_at IS NOT NULL;

-- login_events.username: failed logins for unknown usernames no longer store the typed text
-- (it is sometimes a password); earlier rows of that kind are cleared.
UPDATE login_events SET username = '' WHERE user_id IS NULL;
COMMENT ON COLUMN login_events.username IS 'the username; unknown users: hmac:HEX or empty';
