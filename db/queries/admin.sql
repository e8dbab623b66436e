-- admin.sql - the site administration API (api/src/routes/r_admin.c, proto/README.md section 9
-- "Administration API"). Pages are newest first: $after/$before is the last id of the previous
-- page (NULL: from the newest), $limit + 1 rows are read (the extra one says "more"). Answers are
-- built here as JSON text.

-- name: admin_rooms
-- rooms of every kind whose name or id holds $1 (NULL: all), older than room $2 (NULL: from the
-- newest); id, the room as JSON (no viewer)
SELECT r.id, room_json(r, NULL)::text
FROM rooms r
WHERE ($1::text IS NULL OR (lower(r.name) || ' ' || lower(r.id)) LIKE
       '%' || replace(replace(replace(lower($1), '\', '\\'), '%', '\%'), '_', '\_') || '%')
  AND ($2::text IS NULL OR r.serial < (SELECT serial FROM rooms WHERE id = $2))
ORDER BY r.serial DESC
LIMIT $3::int + 1;

-- name: admin_users
-- users whose username or nickname holds $1 (NULL: all), id below $2 (NULL: from the newest);
-- id, the user as JSON (banned: the active site ban or null; sanctions: every active site-wide
-- sanction by kind, {"ban"|"mute"|"chat_ban": {until, reason}})
SELECT u.id::text, json_build_object(
    'id', u.id::text, 'username', u.username, 'nickname', u.nickname, 'role', u.role,
    'created_at', (extract(epoch FROM u.created_at) * 1000)::bigint,
    'banned', a.j -> 'ban',
    'sanctions', COALESCE(a.j, '{}'::json))::text
FROM users u
LEFT JOIN LATERAL (
    SELECT json_object_agg(k.kind, json_build_object('until', k.until, 'reason', k.reason)) AS j
    FROM (SELECT DISTINCT ON (s.kind) s.kind,
                 (extract(epoch FROM s.expires_at) * 1000)::bigint AS until, s.reason
          FROM sanctions s
          WHERE s.user_id = u.id::text AND s.room_id IS NULL AND s.lifted_at IS NULL
            AND (s.expires_at IS NULL OR s.expires_at > now())
          ORDER BY s.kind, s.id DESC) k) a ON true
WHERE ($1::text IS NULL OR (lower(u.username) || ' ' || lower(u.nickname)) LIKE
       '%' || replace(replace(replace(lower($1), '\', '\\'), '%', '\%'), '_', '\_') || '%')
  AND ($2::bigint IS NULL OR u.id < $2::bigint)
ORDER BY u.id DESC
LIMIT $3::int + 1;

-- name: admin_user_role
-- sets user $1's role to $2; returns the role before (no row: no such user)
UPDATE users u SET role = $2
FROM (SELECT id, role FROM users WHERE id = $1::bigint FOR UPDATE) o
WHERE u.id = o.id
RETURNING o.role;

-- name: admin_site_ban_active
-- the active site ban of user $1: until (ms, NULL: until lifted), reason
SELECT (extract(epoch FROM expires_at) * 1000)::bigint, reason
FROM sanctions
WHERE user_id = $1 AND room_id IS NULL AND kind = 'ban' AND lifted_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY id DESC
LIMIT 1;

-- name: admin_sessions
-- the sessions of user $1 with id below $2 (NULL: from the newest); id, the session as JSON
SELECT s.id::text, json_build_object(
    'id', s.id::text, 'created_at', (extract(epoch FROM s.created_at) * 1000)::bigint,
    'last_used_at', (extract(epoch FROM s.last_used_at) * 1000)::bigint,
    'expires_at', (extract(epoch FROM s.expires_at) * 1000)::bigint,
    'revoked_at', (extract(epoch FROM s.revoked_at) * 1000)::bigint,
    'revoke_reason', s.revoke_reason, 'user_agent', s.user_agent, 'ip', s.ip)::text
FROM sessions s
WHERE s.user_id = $1::bigint AND ($2::bigint IS NULL OR s.id < $2::bigint)
ORDER BY s.id DESC
LIMIT $3::int + 1;

-- name: admin_room_messages
-- the stored messages of room $1 with seq below $2 (NULL: from the newest), deleted ones
-- included; seq, the message as JSON (an edited one: its newest text, edited_at and the text it
-- was sent with, migration 0008)
SELECT m.kafka_offset::text, json_build_object(
    'id', m.id::text, 'seq', m.kafka_offset, 'user', m.user_id, 'nick', m.nick, 'text', m.body,
    'ts', (extract(epoch FROM m.created_at) * 1000)::bigint,
    'deleted_at', (extract(epoch FROM m.deleted_at) * 1000)::bigint,
    'deleted_by', m.deleted_by,
    'edited_at', (extract(epoch FROM m.edited_at) * 1000)::bigint,
    'original_text', m.original_body)::text
FROM messages m
WHERE m.room = $1 AND m.kind = 'message' AND ($2::bigint IS NULL OR m.kafka_offset < $2::bigint)
ORDER BY m.kafka_offset DESC
LIMIT $3::int + 1;

-- name: admin_reports
-- reports of status $1 with id below $2 (NULL: from the newest); id, the report as JSON with
-- its message and context (the 2 stored messages before and the 2 after it in the room)
WITH p AS (
    SELECT r.*, m.kafka_offset AS seq, m.user_id AS m_user, m.nick AS m_nick, m.body AS m_text,
           m.created_at AS m_at, m.deleted_at AS m_deleted, m.edited_at AS m_edited,
           m.original_body AS m_original
    FROM reports r
    LEFT JOIN LATERAL (SELECT * FROM messages x WHERE x.id = r.message_id AND x.kind = 'message' LIMIT 1) m ON true
    WHERE r.status = $1 AND ($2::bigint IS NULL OR r.id < $2::bigint)
    ORDER BY r.id DESC
    LIMIT $3::int + 1)
SELECT p.id::text, json_build_object(
    'id', p.id::text, 'reporter', p.reporter_id::text, 'room', p.room_id,
    'reason', p.reason, 'status', p.status,
    'created_at', (extract(epoch FROM p.created_at) * 1000)::bigint,
    'resolved_by', p.resolved_by::text,
    'resolved_at', (extract(epoch FROM p.resolved_at) * 1000)::bigint,
    'resolution', p.resolution,
    'message', CASE WHEN p.seq IS NULL THEN NULL ELSE json_build_object(
        'id', p.message_id::text, 'seq', p.seq, 'user', p.m_user, 'nick', p.m_nick,
        'text', p.m_text, 'ts', (extract(epoch FROM p.m_at) * 1000)::bigint,
        'deleted_at', (extract(epoch FROM p.m_deleted) * 1000)::bigint,
        'edited_at', (extract(epoch FROM p.m_edited) * 1000)::bigint,
        'original_text', p.m_original,
        'edits', coalesce((SELECT json_agg(json_build_object(
            'text', e.body::json->>'text', 'ts', (e.body::json->>'ts')::bigint)
            ORDER BY e.kafka_offset)
            FROM messages e WHERE e.target_id = p.message_id AND e.kind = 'message_edited'),
            '[]'::json)) END,
    'context', coalesce((SELECT json_agg(json_build_object(
        'id', c.id::text, 'seq', c.kafka_offset, 'user', c.user_id, 'nick', c.nick,
        'text', c.body, 'ts', (extract(epoch FROM c.created_at) * 1000)::bigint,
        'deleted_at', (extract(epoch FROM c.deleted_at) * 1000)::bigint) ORDER BY c.kafka_offset)
        FROM ((SELECT * FROM messages b WHERE b.room = p.room_id AND b.kind = 'message'
                 AND b.kafka_offset < p.seq
               ORDER BY b.kafka_offset DESC LIMIT 2)
              UNION ALL
              (SELECT * FROM messages a WHERE a.room = p.room_id AND a.kind = 'message'
                 AND a.kafka_offset > p.seq
               ORDER BY a.kafka_offset LIMIT 2)) c), '[]'::json))::text
FROM p
ORDER BY p.id DESC;

-- name: admin_report_target
-- the room and message id of open report $1 (no row: no such open report)
SELECT room_id, message_id::text FROM reports WHERE id = $1::bigint AND status = 'open';

-- name: admin_report_resolve
-- report $1 (open) gets status $2, resolved by $3 with resolution $4; returns its room and
-- message id (no row: no such open report)
UPDATE reports SET status = $2, resolved_by = $3::bigint, resolved_at = now(), resolution = $4
WHERE id = $1::bigint AND status = 'open'
RETURNING room_id, message_id::text;

-- name: admin_audit
-- audit rows filtered by actor $1, target user $2, room $3, action $4 (NULL: any), id below $5
-- (NULL: from the newest); id, the row as JSON
SELECT a.id::text, json_build_object(
    'id', a.id::text, 'at', (extract(epoch FROM a.at) * 1000)::bigint,
    'actor', a.actor_id::text, 'action', a.action, 'target', a.target_user, 'room', a.room_id,
    'message', a.message_id::text, 'reason', a.reason,
    'expires_at', (extract(epoch FROM a.expires_at) * 1000)::bigint, 'details', a.details)::text
FROM audit_log a
WHERE ($1::bigint IS NULL OR a.actor_id = $1::bigint)
  AND ($2::text IS NULL OR a.target_user = $2)
  AND ($3::text IS NULL OR a.room_id = $3)
  AND ($4::text IS NULL OR a.action = $4)
  AND ($5::bigint IS NULL OR a.id < $5::bigint)
ORDER BY a.id DESC
LIMIT $6::int + 1;

-- name: admin_room_exists
SELECT 1 FROM rooms WHERE id = $1;
