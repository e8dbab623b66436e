/* proto.js - the wire contract as the client sees it (proto/README.md): frame encoding and
 * decoding, the server's validation rules, error texts, and small text helpers. Pure: no DOM, no
 * storage, no network (unit-tested with node --test, tests/web/js/proto.test.js). Everything the
 * server sends is untrusted: decoders return plain values of the expected types only. */

export const DEFAULT_LIMITS = Object.freeze({ max_frame: 8192, max_text: 2000, max_rooms: 64, rate_per_s: 20, rate_burst: 40 });
export const DEFAULT_ROOM_RULE = '^[A-Za-z0-9_.-]{1,64}$';
export const TOKEN_MAX = 4096;
/* Text limits of chat-api's bodies, in code points (proto/README.md section 9). A maxlength
 * attribute counts UTF-16 units: the forms allow twice as many units (every code point fits) and
 * tooLong() checks the code points before sending. */
export const ROOM_DESC_MAX = 500; /* a room's description */
export const ANNOUNCE_MAX = 2000; /* a site admin's announcement */
/* Same rules as the server; replaced by GET /api/v1/config "rules" when it answers. */
export const DEFAULT_RULES = Object.freeze({
  username: Object.freeze({ re: /^[A-Za-z0-9_]{4,20}$/, min: 4, max: 20 }),
  nickname: Object.freeze({ min: 2, max: 20 }),
  password: Object.freeze({ min: 8, max: 128, letter: true, digit: true }),
});
/* The server's White_Space set for trimming nicknames (not quite String.prototype.trim's). */
const NICK_TRIM_RE = /^[\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+|[\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$/g;
const CONTROL_RE = /[\u0000-\u001F\u007F-\u009F]/; /* C0, DEL, C1 */
const BIDI_RE = /[\u202A-\u202E\u2066-\u2069]/;
/* "letter" as the server counts it: A-Za-z, or any non-space code point from U+0080 up */
const PW_LETTER_RE = /[A-Za-z]|[^\u0000-\u007F\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]/;

/* Why a session ended: session_revoked reasons, and the client's own causes. */
export const SIGNOUT_REASONS = Object.assign(Object.create(null), {
  logout: 'the session was signed out (here or on another device)',
  password_changed: 'the account password was changed',
  admin: 'an administrator ended the session',
  refresh_reused: 'an old sign-in token was presented again, so the session was ended for safety',
  expired: 'the session has expired',
  invalid_refresh: 'the session has expired or was ended elsewhere',
  revoked: 'the session was ended',
  bad_token: 'the access token was not accepted',
});
export const LOGIN_REASONS = Object.assign(Object.create(null), {
  ok: 'signed in', registered: 'account created', wrong_password: 'wrong password', unknown_user: 'unknown user',
});
/* Friendlier texts for some error codes; for the others the server's own message is shown. */
export const ERRORS = Object.assign(Object.create(null), {
  auth_required: 'Sign in to send messages.',
  bad_token: 'The token was not accepted (malformed, forged or signed with an unknown key).',
  token_expired: 'The access token has expired. Sign in again.',
  bad_room: 'Room names are 1-64 characters: letters, digits, _ . -',
  too_many_rooms: 'You have joined the maximum number of rooms.',
  rate_limited: 'You are sending too fast.',
  overloaded: 'The server is busy. Try again.',
  unavailable: 'The message could not be stored and was not delivered.',
  unconfirmed: 'The server could not confirm this message in time; it may have been delivered.',
  connection_lost: 'The connection dropped before the server confirmed this message; it may not have been delivered.',
  session_revoked: 'The session was ended. Sign in again.',
  forbidden: 'You are not allowed to do that here.',
  not_found: 'No such room (or it is private).',
  in_flight: 'The server is still storing this message.',
  invite_invalid: 'This invite link is not valid (unknown or revoked).',
  invite_expired: 'This invite link has expired.',
  invite_used_up: 'This invite link has been used up.',
  room_full: 'The room is full.',
  room_exists: 'A room with this id exists already.',
  muted: 'You are muted.',
  chat_banned: 'You may not send messages for now.',
  banned: 'You are banned from this room.',
  site_banned: 'The account is banned from the site.',
  slow_mode: 'The room is in slow mode.',
  already_reported: 'You have reported this message already.',
  too_many_pins: 'This room has as many pinned messages as it can have. Unpin one first.',
});
export function errorText(code, fallback) { return ERRORS[code] || fallback || 'Unexpected error.'; }

/* ---- small helpers ---- */
export const int = (v) => (Number.isSafeInteger(v) ? v : null);
export const str = (v) => (typeof v === 'string' ? v : '');
export const fmtNum = (n) => Number(n).toLocaleString();
export const validTs = (v) => (Number.isSafeInteger(v) && Math.abs(v) < 8.64e15 ? v : Date.now());
export function codePoints(s) { return [...s].length; }
/* No lone surrogate halves (they cannot be sent as UTF-8). */
export function wellFormed(s) { return !/[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')); }
/* Server messages are lower-case phrases ("wrong username or password"): make them sentences. */
export function sentence(t) {
  const s = str(t).trim();
  if (!s) return '';
  return s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
}
/* "1 connection", "2 connections", "0 users". */
export const plural = (n, one, many) => `${fmtNum(n)} ${n === 1 ? one : many}`;
/* '' when text (its code points) fits in max, else why not as a sentence; what names the field. */
export function tooLong(text, max, what) {
  const n = codePoints(text);
  return n > max ? `The ${what} is too long: at most ${plural(max, 'character', 'characters')} (it has ${fmtNum(n)}).` : '';
}
/* A presence count {users, conns} as text: "1 user · 2 connections". */
export function presenceText(p) { return `${plural(p.users, 'user', 'users')} · ${plural(p.conns, 'connection', 'connections')}`; }
export function newCmid() {
  const b = new Uint8Array(12);
  globalThis.crypto.getRandomValues(b);
  return 'c' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
/* What will be sent: CR/LF normalised, control characters (other than \n, \t) and lone
 * surrogates removed, surrounding blank space trimmed. */
export function cleanText(s) {
  return s.replace(/\r\n?/g, '\n')
    .replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g, '')
    .replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDFFF]/g, (m) => (m.length === 2 ? m : '\uFFFD'))
    .replace(/^\s*\n/, '').trimEnd();
}
export function validRoom(id, roomRule) { return typeof id === 'string' && id.length <= 64 && roomRule.test(id); }

/* ---- frames ---- */
/* A received text frame: the decoded object when it is one with a string "type", else null. */
export function decodeFrame(data) {
  if (typeof data !== 'string') return null;
  let f;
  try { f = JSON.parse(data); } catch { return null; }
  return f && typeof f === 'object' && !Array.isArray(f) && typeof f.type === 'string' ? f : null;
}
/* since: the seq of the room's last message held (a reconnect): the server replays what came after. */
export function joinFrame(room, ref, since, grant) {
  const f = { type: 'join', room, ref };
  if (grant) f.grant = grant;
  if (Number.isInteger(since) && since >= 0) f.since = since;
  return f;
}
/* The newest seq shown in an open room: the server's read marker (no reply on success; the
 * fixed ref READ_REF marks an error about one, which the client ignores: markers are advisory). */
export const READ_REF = 'read';
export const readFrame = (room, seq) => ({ type: 'read', room, seq, ref: READ_REF });
export const leaveFrame = (room, ref) => ({ type: 'leave', room, ref });
/* The token goes in an auth frame, not in the URL, so it never lands in proxy access logs. */
export const authFrame = (token, ref) => ({ type: 'auth', token, ref });
export const sendFrame = (room, text, cmid) => ({ type: 'send', room, text, client_msg_id: cmid });
export const pingFrame = () => ({ type: 'ping' });
export function encodeFrame(f) { return JSON.stringify(f); }
/* UTF-8 size of the send frame for text (with a client_msg_id as long as ours). */
export function sendFrameBytes(room, text) {
  return new TextEncoder().encode(encodeFrame(sendFrame(room, text, 'c'.repeat(25)))).length;
}
/* Copies the positive integer limits of a hello/config "limits" object into target. */
export function mergeLimits(target, l) {
  if (!l || typeof l !== 'object') return target;
  for (const k of Object.keys(DEFAULT_LIMITS)) if (Number.isSafeInteger(l[k]) && l[k] > 0) target[k] = l[k];
  return target;
}

/* ---- REST answers ---- */
export function parseUser(u) {
  if (!u || typeof u !== 'object' || !str(u.id)) return null;
  return { id: str(u.id), username: str(u.username), nickname: str(u.nickname) || str(u.username),
    role: str(u.role), createdAt: int(u.created_at) };
}
export function parseSession(d) {
  const user = parseUser(d && d.user);
  if (!user || !str(d.access_token)) return null;
  return { access: str(d.access_token), refresh: str(d.refresh_token), expiresIn: int(d.expires_in) || 0, user };
}
export function parseLogin(l) {
  if (!l || typeof l !== 'object' || !str(l.id)) return null;
  return { id: str(l.id), at: validTs(l.at), ip: str(l.ip), ua: str(l.user_agent), success: l.success === true,
    reason: str(l.reason) };
}

/* ---- rooms (issue 11) ---- */
export const ROOM_KINDS = Object.freeze(['public', 'private', 'group', 'direct']);
/* A room id starting with "_" (private, group, direct) needs a room grant to join on the socket. */
export const restricted = (id) => typeof id === 'string' && id.startsWith('_');
const tsOrNull = (v) => (Number.isSafeInteger(v) && Math.abs(v) < 8.64e15 ? v : null);
const seqOrNull = (v) => (Number.isSafeInteger(v) && v >= 0 ? v : null);
/* A REST room object (GET /api/v1/rooms/{room} ...), or null when it is not one. Only the
 * expected fields, of the expected types. */
export function parseRoom(r) {
  if (!r || typeof r !== 'object' || !str(r.id)) return null;
  const me = r.me && typeof r.me === 'object' ? {
    role: str(r.me.role) || 'member', favourite: r.me.favourite === true,
    lastRead: Number.isSafeInteger(r.me.last_read_seq) ? r.me.last_read_seq : -1,
    unread: Number.isSafeInteger(r.me.unread) && r.me.unread > 0 ? r.me.unread : 0,
  } : null;
  const p = r.peer && typeof r.peer === 'object' ? r.peer : null;
  return { id: str(r.id), kind: ROOM_KINDS.includes(r.kind) ? r.kind : (restricted(r.id) ? 'private' : 'public'),
    name: str(r.name), description: str(r.description), memberLimit: int(r.member_limit) ?? 0,
    maxText: Number.isSafeInteger(r.max_text) && r.max_text > 0 ? r.max_text : 0,
    slowMode: Number.isSafeInteger(r.slow_mode_s) && r.slow_mode_s > 0 ? r.slow_mode_s : 0,
    members: int(r.members), createdAt: tsOrNull(r.created_at), lastSeq: seqOrNull(r.last_seq),
    lastMessageAt: tsOrNull(r.last_message_at),
    peer: p && str(p.id) ? { id: str(p.id), username: str(p.username), nickname: str(p.nickname) || str(p.username) } : null,
    me, grant: str(r.grant) && str(r.grant).length <= TOKEN_MAX ? str(r.grant) : '' };
}
/* The name a room is shown by: a direct room by the other user's nickname. */
export function roomLabel(id, info) {
  if (info && info.kind === 'direct' && info.peer) return '@' + info.peer.nickname;
  if (info && info.name) return info.name;
  return '#' + id;
}
export function parseMember(m) {
  const u = m && typeof m === 'object' ? parseUser(m.user) : null;
  if (!u) return null;
  return { user: u, role: str(m.role) || 'member', joinedAt: tsOrNull(m.joined_at), online: m.online === true };
}
/* A history page (GET .../messages): the events it holds (ascending seq), and more. Each one is
 * a message ({kind:'msg'}, deleted ones with deleted true and no text, edited ones with editedAt),
 * a message_deleted event ({kind:'del', target}), a message_edited event ({kind:'edit', target,
 * text}) or a system message ({kind:'sys', event, text}); see parseEvent. */
export function parseHistory(d) {
  const list = d && Array.isArray(d.messages) ? d.messages : [];
  const msgs = [];
  for (const f of list) {
    const e = parseEvent(f);
    if (e && e.seq !== null) msgs.push(e);
  }
  msgs.sort((a, b) => a.seq - b.seq);
  return { msgs, more: d && d.more === true };
}
export const SYSTEM_EVENTS = Object.freeze(['joined', 'left', 'kicked', 'banned', 'muted', 'room_updated', 'announcement', 'pinned',
  'unpinned']);
/* One event of a room's stream (a message, message_deleted, message_edited or system frame, live
 * or from history), or null when it is none of them or malformed. seq is null when absent. */
export function parseEvent(f) {
  if (!f || typeof f !== 'object' || !str(f.id)) return null;
  if (f.seq !== undefined && (!Number.isSafeInteger(f.seq) || f.seq < 0)) return null;
  const base = { id: str(f.id), seq: seqOrNull(f.seq), prev: seqOrNull(f.prev), room: str(f.room), ts: validTs(f.ts) };
  if (f.type === 'message_deleted') return { ...base, kind: 'del', target: str(f.id), by: str(f.by) };
  /* an edit (version 4): id names the edited message, text is its new text in full; once the
   * message is deleted, history and recovery give its edits with deleted true and no text */
  if (f.type === 'message_edited') {
    const deleted = f.deleted === true;
    return { ...base, kind: 'edit', target: str(f.id), user: str(f.user), text: deleted ? '' : str(f.text), deleted };
  }
  if (f.type === 'system') {
    const event = str(f.event);
    if (!SYSTEM_EVENTS.includes(event)) return { ...base, kind: 'skip' }; /* unknown: keeps its seq only */
    /* message: the message a pinned or unpinned event names */
    return { ...base, kind: 'sys', event, user: str(f.user), nick: str(f.nick) || str(f.user), text: str(f.text),
      message: str(f.message) };
  }
  if (f.type !== undefined && f.type !== 'message') return null;
  const deleted = f.deleted === true;
  return { ...base, kind: 'msg', user: str(f.user), nick: str(f.nick) || str(f.user), text: deleted ? '' : str(f.text),
    deleted, cmid: str(f.client_msg_id), editedAt: editedAtOf(f) };
}
/* When a message frame (history, recovery) says it was last edited (ms), 0 when never. */
export function editedAtOf(f) { return f && Number.isSafeInteger(f.edited_at) && f.edited_at > 0 && f.edited_at < 8.64e15 ? f.edited_at : 0; }
/* The answer to PATCH .../messages/{id} ({"id","room","text","edited_at"}): {id, text, editedAt},
 * or null when it is not one. */
export function parseEditResult(d) {
  if (!d || typeof d !== 'object' || !str(d.id) || typeof d.text !== 'string') return null;
  return { id: str(d.id), room: str(d.room), text: d.text, editedAt: editedAtOf(d) || Date.now() };
}
/* ---- pins (proto/README.md section 9, "Pins") ---- */
/* An id the server may give as a decimal string or a number: the string, '' when neither. */
const idStr = (v) => (typeof v === 'string' ? v : Number.isSafeInteger(v) && v >= 0 ? String(v) : '');
/* One entry of GET .../pins: {id, seq (null: unknown), user, nick, text, ts, editedAt (0: never),
 * pinnedBy (a user id), pinnedAt (ms, 0: unknown)}, or null when it is not one. */
export function parsePin(x) {
  if (!x || typeof x !== 'object' || !idStr(x.id)) return null;
  return { id: idStr(x.id), seq: seqOrNull(x.seq), user: idStr(x.user), nick: str(x.nick) || idStr(x.user), text: str(x.text),
    ts: validTs(x.ts), editedAt: editedAtOf(x), pinnedBy: idStr(x.pinned_by), pinnedAt: tsOrNull(x.pinned_at) ?? 0 };
}
/* GET .../pins: the pins, newest pin first (as the server orders them; each id once), or null when
 * the answer is not a pins list. */
export function parsePins(d) {
  if (!d || typeof d !== 'object' || !Array.isArray(d.pins)) return null;
  const seen = new Set(), out = [];
  for (const x of d.pins) {
    const p = parsePin(x);
    if (p && !seen.has(p.id)) { seen.add(p.id); out.push(p); }
  }
  return out;
}
/* POST .../pins answer ({"room","id","pinned_by","pinned_at"}): {id, pinnedBy, pinnedAt (0: unknown)}, or null. */
export function parsePinResult(d) {
  if (!d || typeof d !== 'object' || !idStr(d.id)) return null;
  return { id: idStr(d.id), pinnedBy: idStr(d.pinned_by), pinnedAt: tsOrNull(d.pinned_at) ?? 0 };
}
/* Why a pin or an unpin was refused, as a sentence (r: api.js's failed answer). */
export function pinErrorText(r) {
  if (r.status === 429) return (r.message || 'Too many requests.') + (r.retryAfter !== null && r.retryAfter !== undefined
    ? ` Try again in ${plural(r.retryAfter, 'second', 'seconds')}.` : ' Try again later.');
  if (r.code === 'too_many_pins') return ERRORS.too_many_pins;
  if (r.code === 'forbidden') return 'Only the room\'s owner and admins can pin messages here.';
  if (r.code === 'not_found') return 'The message was deleted, or you are no longer in the room.';
  return r.message || errorText(r.code);
}
/* What a system message says, as parts: strings (ours) and {u: text} (untrusted: the nick and the
 * description, each drawn as text in a bidi isolate; ui.js setParts). */
export function systemParts(e) {
  const who = { u: e.nick || e.user || 'someone' };
  const say = { joined: [who, ' joined'], left: [who, ' left'], kicked: [who, ' was removed'], banned: [who, ' was banned'],
    muted: [who, ' was muted'], room_updated: ['The room settings changed'], announcement: ['Announcement'],
    pinned: [who, ' pinned a message'], unpinned: [who, ' unpinned a message'] }[e.event] || [];
  return e.text ? [...say, ': ', { u: e.text }] : say;
}
/* The same as one string (its untrusted parts are shown as text only). */
export function systemText(e) { return systemParts(e).map((p) => (typeof p === 'string' ? p : p.u)).join(''); }
/* What the message box (and an edit refused for it) says of a sanction in force (sanction codes). */
export function sanctionLabel(code) {
  return code === 'chat_banned' ? 'You may not send messages' : code === 'muted' ? 'You are muted' : 'You are banned';
}
/* Why an edit (PATCH .../messages/{id}) was refused, as a sentence: r is api.js's failed answer
 * ({status, code, message, retryAfter}). A sanction (muted, banned, chat_banned) is told with its
 * reason and countdown by the caller (r.sanction), like a refused send. */
export function editErrorText(r) {
  if (r.status === 429) return 'You are editing too fast.' + (r.retryAfter !== null && r.retryAfter !== undefined
    ? ` Try again in ${plural(r.retryAfter, 'second', 'seconds')}.` : ' Try again later.');
  if (r.code === 'forbidden') return 'Only its author can edit a message.';
  if (r.code === 'not_found') return 'The message cannot be edited: it was deleted, or you are no longer in the room.';
  return r.message || errorText(r.code);
}
/* The sanction an error frame (or REST error) tells of: {code, until (ms, null: until lifted),
 * reason}, or null when the code is not a sanction. */
export function parseSanction(code, f) {
  if (code !== 'muted' && code !== 'chat_banned' && code !== 'banned' && code !== 'site_banned') return null;
  const until = Number.isSafeInteger(f && f.until) && f.until > 0 ? f.until : null;
  return { code, until, reason: str(f && f.reason) };
}
/* A login refused with site_banned (parseSanction of its error object): until when (fmt: ms ->
 * local date and time) and why. The reason is untrusted: the caller shows it as text only. */
export function siteBanText(sn, fmt) {
  const until = sn && sn.until !== null ? `until ${fmt(sn.until)}` : 'until an administrator lifts the ban';
  return `This account is banned from the site ${until}.` + (sn && sn.reason ? ` Reason: ${sn.reason}` : '');
}
/* The server's sanction frames (issue 13): `sanction` (put in force, or in force when a room is
 * joined) and `sanction_lifted` (lifted early; expiry sends nothing). */
export const SANCTION_FRAMES = Object.freeze(['sanction', 'sanction_lifted']);
/* A sanction kind on the wire -> the error code a refused send carries. */
export const SANCTION_CODE = Object.freeze({ mute: 'muted', chat_ban: 'chat_banned', ban: 'banned' });
/* A sanction or sanction_lifted frame: {code, room ('*': site-wide), until (ms, null: until
 * lifted), reason}, or null when it is malformed (unknown kind, no room). */
export function parseSanctionFrame(f) {
  if (!f || typeof f !== 'object' || !Object.hasOwn(SANCTION_CODE, str(f.kind))) return null;
  const room = str(f.room);
  if (!room || room.length > 64) return null;
  const until = Number.isSafeInteger(f.until) && f.until > 0 ? f.until : null;
  return { code: SANCTION_CODE[f.kind], room, until, reason: str(f.reason) };
}
/* "47 s left", "3 min 5 s left", "until lifted" */
export function leftText(until, now) {
  if (until === null) return 'until lifted';
  const s = Math.max(0, Math.ceil((until - now) / 1000));
  if (s < 60) return `${s} s left`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s left`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min left`;
}
/* An invite link's code from a location hash (#/invite/CODE), '' when there is none. */
export function inviteCode(hash) {
  const m = /^#\/invite\/([A-Za-z0-9_-]{1,128})$/.exec(str(hash));
  return m ? m[1] : '';
}

/* ---- validation: the server's rules (GET /api/v1/config "rules") ---- */
function posInt(v, fallback) { return Number.isSafeInteger(v) && v > 0 ? v : fallback; }
export function defaultRules() {
  return { username: { ...DEFAULT_RULES.username }, nickname: { ...DEFAULT_RULES.nickname },
    password: { ...DEFAULT_RULES.password } };
}
/* Applies a config "rules" object to rules (in place); returns the room RegExp it names, or null
 * when it names none (or an invalid one). */
export function mergeRules(R, r) {
  if (!r || typeof r !== 'object') return null;
  let room = null;
  if (str(r.room)) { try { room = new RegExp(r.room); } catch { room = null; } }
  const u = r.username, n = r.nickname, p = r.password;
  if (u && typeof u === 'object') {
    let re = R.username.re;
    if (str(u.pattern)) { try { re = new RegExp(u.pattern); } catch { /* keep the default */ } }
    R.username = { re, min: posInt(u.min, R.username.min), max: posInt(u.max, R.username.max) };
  }
  if (n && typeof n === 'object') R.nickname = { min: posInt(n.min, R.nickname.min), max: posInt(n.max, R.nickname.max) };
  if (p && typeof p === 'object') {
    R.password = { min: posInt(p.min, R.password.min), max: posInt(p.max, R.password.max),
      letter: typeof p.letter === 'boolean' ? p.letter : R.password.letter,
      digit: typeof p.digit === 'boolean' ? p.digit : R.password.digit };
  }
  return room;
}
export function usernameRule(R) {
  const r = R.username;
  return `${r.min}-${r.max} characters: letters A-Z, digits and _`;
}
export function passwordRule(R) {
  const r = R.password;
  const need = [r.letter ? 'one letter' : '', r.digit ? 'one digit' : ''].filter(Boolean);
  return `${r.min}-${r.max} characters` + (need.length ? `, with at least ${need.join(' and ')}` : '');
}
/* Each check returns '' when v is acceptable, else the reason as a sentence. */
export function checkUsername(v, R) {
  const r = R.username, n = codePoints(v);
  if (!v) return 'Enter a username.';
  if (n < r.min) return `The username is too short: use at least ${plural(r.min, 'character', 'characters')}.`;
  if (n > r.max) return `The username is too long: use at most ${plural(r.max, 'character', 'characters')}.`;
  if (!r.re.test(v)) return `Usernames are ${usernameRule(R)}.`;
  return '';
}
export function trimNick(v) { return v.replace(NICK_TRIM_RE, ''); }
export function checkNickname(v, R) { /* v is trimmed */
  const r = R.nickname, n = codePoints(v);
  if (!wellFormed(v)) return 'The nickname contains an invalid character.';
  if (n < r.min || n > r.max) return `Nicknames are ${r.min}-${r.max} characters (not counting spaces around them).`;
  if (CONTROL_RE.test(v)) return 'Nicknames cannot contain control characters.';
  if (BIDI_RE.test(v)) return 'Nicknames cannot contain text-direction control characters.';
  return '';
}
export function checkPassword(v, R) {
  const r = R.password, n = codePoints(v);
  if (!v) return 'Enter a password.';
  if (!wellFormed(v)) return 'The password contains an invalid character.';
  if (n < r.min) return `The password is too short: use at least ${plural(r.min, 'character', 'characters')}.`;
  if (n > r.max) return `The password is too long: use at most ${plural(r.max, 'character', 'characters')}.`;
  if (r.letter && !PW_LETTER_RE.test(v)) return 'The password needs at least one letter.';
  if (r.digit && !/[0-9]/.test(v)) return 'The password needs at least one digit.';
  if (CONTROL_RE.test(v)) return 'Passwords cannot contain control characters (such as tabs or line breaks).';
  return '';
}
