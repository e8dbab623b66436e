-- moderation.sql - sanctions and the audit log (db/migrations/0006_moderation.sql), for
-- api/src/mod/api_audit.c and api/src/routes/r_moderation.c (and the admin API).

-- name: audit_add
-- actor (NULL: the system), action, target user, room, message id, reason, expiry (ms since
-- the epoch or NULL), details (JSON text or NULL)
INSERT INTO audit_log (actor_id, action, target_user, room_id, message_id, reason, expires_at,
                       details)
VALUES ($1::bigint, $2, $3, $4, $5::bigint, coalesce($6, ''),
        to_timestamp($7::bigint / 1000.0), coalesce($8::jsonb, '{}'::jsonb));

-- name: user_site_role
SELECT role FROM users WHERE id = $1::bigint;

-- name: sanction_lift
-- lifts the active sanction of kind $3 of user $1 in room $2 (NULL: site-wide) by $4
UPDATE sanctions SET lifted_at = now(), lifted_by = $4::bigint
WHERE user_id = $1 AND room_id IS NOT DISTINCT FROM $2 AND kind = $3 AND lifted_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
RETURNING id;

-- name: sanction_add
-- kind, user, room (NULL: site-wide), reason, by (NULL: the system), duration in seconds (NULL:
-- until lifted); returns id and expires_at in ms (NULL: until lifted)
INSERT INTO sanctions (kind, user_id, room_id, reason, created_by, expires_at)
VALUES ($1, $2, $3, coalesce($4, ''), $5::bigint,
        CASE WHEN $6::int IS NULL THEN NULL ELSE now() + make_interval(secs => $6::int) END)
RETURNING id, (extract(epoch FROM expires_at) * 1000)::bigint;

-- name: room_ban_of
-- the ban in force of user $1 in room $2, which refuses a REST join and an invite's redeem as
-- the gateways refuse a WebSocket join: reason, until (ms, NULL: until lifted)
SELECT reason, (extract(epoch FROM expires_at) * 1000)::bigint
FROM sanctions
WHERE user_id = $1 AND room_id = $2 AND kind = 'ban' AND lifted_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
ORDER BY expires_at IS NULL DESC, expires_at DESC
LIMIT 1;

-- name: sanctions_of_room
-- the active sanctions of a room, newest first
SELECT coalesce(json_agg(json_build_object(
           'id', s.id::text, 'kind', s.kind, 'user', s.user_id, 'reason', s.reason,
           'by', s.created_by::text,
           'created_at', (extract(epoch FROM s.created_at) * 1000)::bigint,
           'until', (extract(epoch FROM s.expires_at) * 1000)::bigint)
       ORDER BY s.id DESC), '[]')::text
FROM sanctions s
WHERE s.room_id = $1 AND s.lifted_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now());

-- name: send_sanction
-- the sanction in force that refuses a send of user $1 to room $2: a site chat ban or mute,
-- then the room's ban or mute; kind, reason, until (ms, NULL: until lifted)
SELECT kind, reason, (extract(epoch FROM expires_at) * 1000)::bigint
FROM sanctions
WHERE user_id = $1 AND (room_id = $2 OR room_id IS NULL) AND kind IN ('mute', 'ban', 'chat_ban')
  AND lifted_at IS NULL AND (expires_at IS NULL OR expires_at > now())
ORDER BY room_id IS NULL DESC, kind = 'chat_ban' DESC, kind = 'ban' DESC
LIMIT 1;
