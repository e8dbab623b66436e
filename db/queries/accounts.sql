-- accounts.sql - the statements of chat-api on users and login_events (db/README.md: one
-- "-- name:" block per statement, prepared by every connection at connect).
-- A user row's columns come in the order api_acct_user_from (api/src/acct/api_acct.c) reads:
-- id, username, nickname, role, created_at in ms.

-- name: user_by_id
SELECT id::text, username, nickname, role, (extract(epoch FROM created_at) * 1000)::bigint
FROM users WHERE id = $1::bigint;

-- name: user_exists
SELECT 1 FROM users WHERE id = $1::bigint;

-- name: user_is_admin
SELECT role = 'admin' FROM users WHERE id = $1::bigint;

-- name: user_register
-- a unique violation (23505) is username_taken
INSERT INTO users (username, nickname, password_hash) VALUES ($1, $2, $3)
RETURNING id::text, username, nickname, role, (extract(epoch FROM created_at) * 1000)::bigint;

-- name: login_lookup
-- the user row, then its password hash (column 5)
SELECT id::text, username, nickname, role, (extract(epoch FROM created_at) * 1000)::bigint,
password_hash FROM users WHERE lower(username) = lower($1);

-- name: password_rehash
UPDATE users SET password_hash = $2 WHERE id = $1::bigint;

-- name: password_hash_get
SELECT password_hash FROM users WHERE id = $1::bigint;

-- name: password_set
UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1::bigint;

-- name: nickname_set
-- the user row, then nick_changed_at in ms (column 5)
UPDATE users SET nickname = $2, nick_changed_at = now() WHERE id = $1::bigint
RETURNING id::text, username, nickname, role, (extract(epoch FROM created_at) * 1000)::bigint,
(extract(epoch FROM nick_changed_at) * 1000)::bigint;

-- name: login_event_add
INSERT INTO login_events (user_id, username, ip, user_agent, success, reason)
VALUES ($1::bigint, left($2, 64), $3, $4, $5::boolean, $6);

-- name: login_history
SELECT id::text, (extract(epoch FROM at) * 1000)::bigint, ip, user_agent, success, reason
FROM login_events WHERE user_id = $1::bigint AND ($2::bigint IS NULL OR id < $2::bigint)
ORDER BY id DESC LIMIT $3::int;
