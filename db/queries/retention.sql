-- retention.sql - the retention purge of chat-api (api/src/acct/api_purge.c): rows older than
-- $1 seconds, at most $2 per statement (db/README.md).

-- name: purge_login_events
DELETE FROM login_events WHERE id IN (SELECT id FROM login_events
WHERE at < now() - make_interval(secs => $1::int) LIMIT $2::int);

-- name: purge_refresh_tokens
DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM refresh_tokens
WHERE expires_at < now() - make_interval(secs => $1::int) LIMIT $2::int);

-- name: purge_sessions
-- a session ended for good: revoked or expired, and every access token signed for it expired;
-- the same expression as the index sessions_ended_idx (0003_account_retention.sql)
DELETE FROM sessions WHERE id IN (SELECT id FROM sessions
WHERE greatest(coalesce(revoked_at, expires_at), coalesce(tokens_expire_at, revoked_at,
expires_at)) < now() - make_interval(secs => $1::int) LIMIT $2::int);
