-- sessions.sql - the statements of chat-api on sessions and refresh_tokens (db/README.md).
-- A revoking UPDATE returns the ids it revoked: api_acct_revoke queues their event.

-- name: session_alive
SELECT 1 FROM sessions WHERE id = $1::bigint AND user_id = $2::bigint AND revoked_at IS NULL;

-- name: session_create
INSERT INTO sessions (user_id, expires_at, ip, user_agent, tokens_expire_at)
VALUES ($1::bigint, now() + make_interval(secs => $2::int), $3, $4,
now() + make_interval(secs => $5::int)) RETURNING id::text;

-- name: session_extend
UPDATE sessions SET last_used_at = now(), expires_at = now() + make_interval(secs => $2::int),
tokens_expire_at = greatest(tokens_expire_at, now() + make_interval(secs => $3::int))
WHERE id = $1::bigint;

-- name: session_revoke_reused
UPDATE sessions SET revoked_at = now(), revoke_reason = 'refresh_reused'
WHERE id = $1::bigint AND revoked_at IS NULL RETURNING id::text;

-- name: session_revoke_logout
-- $2 true: every session of the user; else only $3
UPDATE sessions SET revoked_at = now(), revoke_reason = 'logout'
WHERE user_id = $1::bigint AND revoked_at IS NULL AND expires_at > now()
AND ($2::boolean OR id = $3::bigint) RETURNING id::text;

-- name: session_revoke_password
-- every session of the user but $2 (the one changing it; NULL: none)
UPDATE sessions SET revoked_at = now(), revoke_reason = 'password_changed'
WHERE user_id = $1::bigint AND revoked_at IS NULL AND expires_at > now()
AND ($2::bigint IS NULL OR id <> $2::bigint) RETURNING id::text;

-- name: session_revoke_admin
UPDATE sessions SET revoked_at = now(), revoke_reason = 'admin'
WHERE user_id = $1::bigint AND revoked_at IS NULL AND expires_at > now() RETURNING id::text;

-- name: refresh_token_add
INSERT INTO refresh_tokens (token_hash, session_id, expires_at)
VALUES (decode($1, 'hex'), $2::bigint, now() + make_interval(secs => $3::int));

-- name: refresh_lookup
-- session, spent, expired, session over, user, a retry within the grace window $2
SELECT rt.session_id::text, rt.used_at IS NOT NULL, rt.expires_at < now(),
s.revoked_at IS NOT NULL OR s.expires_at < now(), s.user_id::text,
rt.used_at > now() - make_interval(secs => $2::int) AND NOT EXISTS (
SELECT 1 FROM refresh_tokens o WHERE o.session_id = rt.session_id AND o.used_at > rt.used_at)
FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
WHERE rt.token_hash = decode($1, 'hex') FOR UPDATE OF rt, s;

-- name: refresh_spend
UPDATE refresh_tokens SET used_at = now() WHERE token_hash = decode($1, 'hex');

-- name: refresh_drop_unused
DELETE FROM refresh_tokens WHERE session_id = $1::bigint AND used_at IS NULL;
