-- rooms.sql - rooms, members, invites and direct rooms (db/migrations/0005_rooms.sql), for
-- api/src/routes/r_rooms.c. $viewer parameters are a user id or NULL (anonymous). Answers that
-- clients see are built here as JSON (room_json), so one definition serves every endpoint.

-- name: room_access
-- kind, member_limit, max_text, history_after_leave, the viewer's role and state (NULL: never a
-- member); locks the room row (membership changes of one room are serialized)
SELECT r.kind, r.member_limit, r.max_text, r.history_after_leave, m.role, m.state
FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2::bigint
WHERE r.id = $1
FOR UPDATE OF r;

-- name: room_view
SELECT room_json(r, $2::bigint)::text FROM rooms r WHERE r.id = $1;

-- name: room_insert
-- id (NULL: generated from the serial with prefix $2), kind, name, description, created_by,
-- member_limit, max_text, history_after_leave, direct_key; returns the id (no row: taken)
WITH s AS (SELECT nextval(pg_get_serial_sequence('rooms', 'serial')) AS n)
INSERT INTO rooms (id, serial, kind, name, description, created_by, member_limit, max_text,
                   history_after_leave, direct_key)
SELECT coalesce($1, $2 || s.n), s.n, $3, $4, $5, $6::bigint, $7::int, $8::int, $9::boolean, $10
FROM s
ON CONFLICT DO NOTHING
RETURNING id;

-- name: room_update
-- NULL parameters keep the current value; returns kind, max_text, slow_mode_s and the names of
-- the settings whose value changed, comma-separated ('' when none)
WITH old AS (SELECT name, description, member_limit, max_text, history_after_leave, slow_mode_s
             FROM rooms WHERE id = $1 FOR UPDATE)
UPDATE rooms r SET name = coalesce($2, r.name), description = coalesce($3, r.description),
                   member_limit = coalesce($4::int, r.member_limit),
                   max_text = coalesce($5::int, r.max_text),
                   history_after_leave = coalesce($6::boolean, r.history_after_leave),
                   slow_mode_s = coalesce($7::int, r.slow_mode_s),
                   updated_at = now()
FROM old
WHERE r.id = $1
RETURNING r.kind, r.max_text, r.slow_mode_s,
          concat_ws(', ',
                    CASE WHEN r.name IS DISTINCT FROM old.name THEN 'name' END,
                    CASE WHEN r.description IS DISTINCT FROM old.description THEN 'description' END,
                    CASE WHEN r.member_limit IS DISTINCT FROM old.member_limit
                         THEN 'member_limit' END,
                    CASE WHEN r.max_text IS DISTINCT FROM old.max_text THEN 'max_text' END,
                    CASE WHEN r.history_after_leave IS DISTINCT FROM old.history_after_leave
                         THEN 'history_after_leave' END,
                    CASE WHEN r.slow_mode_s IS DISTINCT FROM old.slow_mode_s
                         THEN 'slow_mode_s' END);

-- name: room_delete
DELETE FROM rooms WHERE id = $1 RETURNING id;

-- name: room_active_members
SELECT count(*) FROM room_members WHERE room_id = $1 AND state = 'active';

-- name: member_upsert
-- joins (or rejoins) user $2 to room $1 with role $3; a rejoin keeps nothing of the old role;
-- the read position starts at the room's newest message (nothing old counts as unread)
INSERT INTO room_members (room_id, user_id, role, last_read_seq)
VALUES ($1, $2::bigint, $3, coalesce((SELECT last_seq FROM rooms WHERE id = $1), -1))
ON CONFLICT (room_id, user_id) DO UPDATE
SET role = EXCLUDED.role, state = 'active', left_at = NULL, joined_at = now(),
    last_read_seq = GREATEST(room_members.last_read_seq, EXCLUDED.last_read_seq)
WHERE room_members.state <> 'active';

-- name: member_leave
-- state 'left' or 'removed'; returns the role the member had
UPDATE room_members SET state = $3, left_at = now(), favourite = false
WHERE room_id = $1 AND user_id = $2::bigint AND state = 'active'
RETURNING role;

-- name: room_hand_over
-- the room lost its owner: the oldest admin, else the oldest member, becomes owner
UPDATE room_members SET role = 'owner'
WHERE (room_id, user_id) = (
    SELECT room_id, user_id FROM room_members
    WHERE room_id = $1 AND state = 'active'
    ORDER BY role = 'admin' DESC, joined_at, user_id LIMIT 1)
RETURNING user_id;

-- name: member_set_role
UPDATE room_members SET role = $3
WHERE room_id = $1 AND user_id = $2::bigint AND state = 'active'
RETURNING user_id;

-- name: member_favourite
UPDATE room_members SET favourite = $3::boolean
WHERE room_id = $1 AND user_id = $2::bigint AND state = 'active'
RETURNING user_id;

-- name: members_page
-- active members after user id $2 (0: from the start), $3 + 1 rows: the extra says "more"
SELECT u.id::text, u.username, u.nickname, m.role,
       (extract(epoch FROM m.joined_at) * 1000)::bigint
FROM room_members m JOIN users u ON u.id = m.user_id
WHERE m.room_id = $1 AND m.state = 'active' AND m.user_id > $2::bigint
ORDER BY m.user_id
LIMIT $3::int + 1;

-- name: rooms_mine
-- the user's active rooms, newest message first: id, kind, role, the room as JSON
SELECT r.id, r.kind, m.role, room_json(r, $1::bigint)::text
FROM rooms r JOIN room_members m ON m.room_id = r.id
WHERE m.user_id = $1::bigint AND m.state = 'active'
ORDER BY r.last_message_at DESC NULLS LAST, r.created_at DESC, r.id
LIMIT $2::int;

-- name: rooms_directory
-- public rooms whose name or id holds $1 (NULL: all), after room $2 (NULL: from the start) in
-- (lower(name), id) order, $3 + 1 rows; $4 the viewer
SELECT room_json(r, $4::bigint)::text
FROM rooms r
WHERE r.kind = 'public'
  AND ($1::text IS NULL OR (lower(r.name) || ' ' || lower(r.id)) LIKE
       '%' || replace(replace(replace(lower($1), '\', '\\'), '%', '\%'), '_', '\_') || '%')
  AND ($2::text IS NULL OR (lower(r.name), r.id) > (SELECT lower(name), id FROM rooms WHERE id = $2))
ORDER BY lower(r.name), r.id
LIMIT $3::int + 1;

-- name: invite_insert
INSERT INTO room_invites (code, room_id, created_by, expires_at, max_uses)
VALUES ($1, $2, $3::bigint, now() + make_interval(secs => $4::int), $5::int)
RETURNING json_build_object('code', code, 'room', room_id,
    'expires_at', (extract(epoch FROM expires_at) * 1000)::bigint, 'max_uses', max_uses,
    'uses', uses, 'created_at', (extract(epoch FROM created_at) * 1000)::bigint)::text;

-- name: invites_list
SELECT coalesce(json_agg(json_build_object('code', code, 'room', room_id,
    'expires_at', (extract(epoch FROM expires_at) * 1000)::bigint, 'max_uses', max_uses,
    'uses', uses, 'created_at', (extract(epoch FROM created_at) * 1000)::bigint)
    ORDER BY created_at DESC), '[]')::text
FROM room_invites WHERE room_id = $1 AND revoked_at IS NULL AND expires_at > now();

-- name: invite_revoke
UPDATE room_invites SET revoked_at = now()
WHERE room_id = $1 AND code = $2 AND revoked_at IS NULL
RETURNING code;

-- name: invite_take
-- the invite, locked: room, expired, used up
SELECT room_id, expires_at <= now(), max_uses > 0 AND uses >= max_uses
FROM room_invites WHERE code = $1 AND revoked_at IS NULL
FOR UPDATE;

-- name: invite_use
UPDATE room_invites SET uses = uses + 1 WHERE code = $1;

-- name: user_by_username
SELECT id::text FROM users WHERE lower(username) = lower($1);

-- name: direct_find
SELECT id FROM rooms WHERE direct_key = $1;

-- name: room_send_rules
-- a REST send's room: kind, max_text, the sender's membership state (NULL: none), slow_mode_s;
-- no lock
SELECT r.kind, r.max_text, m.state, r.slow_mode_s
FROM rooms r LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $2::bigint
WHERE r.id = $1;
