/* state.js - the single source of truth the render layer draws, browser storage, and the pure
 * state changes of rooms and messages. No DOM (unit-tested with node --test,
 * tests/web/js/state.test.js); storage access is guarded (it may be disabled, or absent). */
import { DEFAULT_LIMITS, DEFAULT_ROOM_RULE, codePoints, defaultRules, restricted, sendFrameBytes, validRoom as validRoomRule,
  validTs } from './proto.js';

export const DEFAULT_ROOM = 'lobby';
export const MAX_MSGS = 3000; /* per room; the oldest settled messages are dropped first */
export const THEME_KEY = 'chat.theme'; /* localStorage; web/theme.js reads it before the first paint */

/* ---- storage (may be disabled: every access is guarded) ---- */
export const LS = 'localStorage';
export const SS = 'sessionStorage';
export const store = {
  get(area, key) { try { return globalThis[area].getItem(key); } catch { return null; } },
  set(area, key, value) { try { globalThis[area].setItem(key, value); } catch { /* storage off */ } },
  del(area, key) { try { globalThis[area].removeItem(key); } catch { /* storage off */ } },
};
/* Whether localStorage really works (it throws when disabled, and in some private modes). */
export const lsOk = (() => {
  try {
    globalThis.localStorage.setItem('chat.probe', '1');
    globalThis.localStorage.removeItem('chat.probe');
    return true;
  } catch { return false; }
})();
export function storedTheme() {
  const t = store.get(LS, THEME_KEY);
  return t === 'light' || t === 'dark' ? t : 'auto';
}

export const state = {
  limits: { ...DEFAULT_LIMITS },
  roomRule: new RegExp(DEFAULT_ROOM_RULE),
  /* status: connecting, online, offline (a reconnect at retryAt) or stopped (closed with 4010: no
   * reconnect until a reload) */
  conn: { status: 'connecting', node: '', retryAt: 0 },
  token: '', /* the access token: in memory only (see api.js) */
  anon: store.get(SS, 'chat.anon') === '1', /* chose to watch anonymously */
  user: null, /* the connection's identity: the token's sub (a user id), null = anonymous */
  nick: '', exp: 0, authPending: false,
  account: null, /* the signed-in user object from the REST API; null for guests and pasted tokens */
  refreshing: false, /* POST /auth/refresh in flight */
  rules: defaultRules(),
  authNotice: '', authOffer: false, /* "Signed out: <reason>" and whether to offer a new sign-in */
  signin: { tab: 'login', busy: false, status: '', tokenError: '',
    login: { error: '', field: '', until: 0 }, register: { error: '', field: '', until: 0 } },
  acct: { gen: 0, busy: '', load: '', loadErr: false, nickMsg: '', nickErr: false, pwMsg: '', pwErr: false,
    pwField: '', msg: '', msgErr: false, logins: [], next: null, loading: false, loaded: false, loginsErr: '' },
  totals: null, /* {users, conns} from presence scope total */
  rooms: new Map(), /* id -> room (listed in sortedRooms order) */
  active: '',
  pending: new Map(), /* client_msg_id -> own message waiting for its ack */
  dir: { q: '', rooms: [], next: null, loading: false, error: '', gen: 0 }, /* the public room directory */
  members: { room: '', list: [], next: null, loading: false, error: '', gen: 0 }, /* the open room's members */
  roomMsg: '', roomMsgErr: false, invite: '', /* room panel: last action's result, the last invite link */
  /* room panel, moderation (moderators only): the room's sanctions in force, the last action's result */
  roomMod: { room: '', list: [], loading: false, error: '', gen: 0, msg: '', msgErr: false },
  createMsg: '', dmMsg: '', inviteCode: '', /* an invite link waiting for a sign-in */
  sanctions: [], /* {code, room ('*': every room), until (ms, null: until lifted), reason}: what the server said (muted...) */
  announcements: [], /* site-wide announcements: {id, text, ts} */
  cooldownUntil: 0, notice: '', joinError: '', announce: [],
  navOpen: false, stickBottom: true, showJump: false, theme: storedTheme(),
  focusComposer: false, /* move the focus into the message box once it can take it (after sign-in) */
  /* the own message being edited inline (one at a time): {room, key, id, text (the draft), busy
   * (PATCH in flight), error, sanction (a refusal's {code, until, reason}), gen, focus}, or null */
  editing: null,
  pinsOpen: false, /* the open room's pinned messages panel is shown */
  flash: null, /* {room, key}: the message to scroll to and highlight at the next render (a pin's jump) */
};

let msgOrder = 0;
/* Display order of messages that have no seq yet (own, unacknowledged). */
export function nextOrder() { return ++msgOrder; }

export function validRoom(id) { return validRoomRule(id, state.roomRule); }
export function activeRoom() { return state.rooms.get(state.active) || null; }

/* ---- rooms & messages (pure state changes) ---- */
/* info: the REST room object (proto.js parseRoom) or null (not known to chat-api yet, or an ad hoc
 * room); hist: the history already read (GET .../messages); gap: {after, until} while messages
 * between two seqs are being filled in from history; readSeq/readAt: the last read marker sent;
 * pins: the room's pinned messages (newPins). */
export function newRoom(id) {
  return { id, joined: false, joining: false, presence: null, msgs: [], byId: new Map(), unread: 0, draft: '', info: null,
    hist: { loaded: false, loading: false, more: false, error: '' }, gap: null, filling: false, readSeq: -1, readAt: 0,
    readTimer: null, joinError: '', pins: newPins() };
}
/* A member of the room (per chat-api), not only watching it. */
export const isMember = (room) => !!(room && room.info && room.info.me);
/* The code point limit of a message in room: the room's own, never above the connection's. */
export function maxText(room) {
  const m = room && room.info && room.info.maxText;
  return m ? Math.min(m, state.limits.max_text) : state.limits.max_text;
}
/* When the room last saw a message (ms), for the room list order. */
export function lastActivity(room) {
  let t = room.info && room.info.lastMessageAt !== null ? room.info.lastMessageAt : 0;
  for (let i = room.msgs.length - 1; i >= 0; i--) {
    const m = room.msgs[i];
    if (m.kind === 'msg' && m.status === 'confirmed') { t = Math.max(t, m.ts); break; }
  }
  return t;
}
/* The room list: favourites first, then the most recent message first (rooms without any last). */
export function sortedRooms() {
  const list = [...state.rooms.values()];
  const fav = (r) => (r.info && r.info.me && r.info.me.favourite ? 1 : 0);
  const at = new Map(list.map((r) => [r, lastActivity(r)]));
  return list.sort((a, b) => fav(b) - fav(a) || at.get(b) - at.get(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
/* Takes a REST room object into room (its unread count only when fresh: first sight, or asked). */
export function applyInfo(room, info, takeUnread) {
  const first = !room.info;
  room.info = info;
  if (info.me && (first || takeUnread) && room.id !== state.active) room.unread = info.me.unread;
  if (info.me) room.readSeq = Math.max(room.readSeq, info.me.lastRead);
}
/* ---- a `left` the client did not ask for (proto/README.md, joined / left) ---- */
/* Reasons that end the user's hold on the room (removed, kicked, banned, deleted, or left on
 * another device): it leaves the list (actions.js roomGone). */
export const GONE_REASONS = new Set(['removed', 'deleted', 'kicked', 'banned', 'left']);
/* The server took this connection out of room without ending the membership: signed_out (the
 * connection lost its identity: session expired or revoked, token_expired on a frame) or a reason
 * this client does not know. The room stays listed, not joined on this connection; its own
 * unacknowledged messages stay pending and are sent again (same client_msg_id) after its next
 * join (ws.js resend). A restricted room is joined again with a fresh grant once the connection
 * is signed in again (authed: joinAll); after a revocation, when the user signs in again. */
export function takenOut(room) {
  Object.assign(room, { joined: false, presence: null });
  for (const m of state.pending.values()) if (m.room === room.id) m.conn = 0;
}
/* A restricted room that waits for a sign-in to be joined (the connection is anonymous). */
export function waitsForSignIn(room) { return !!room && !room.joined && restricted(room.id) && !state.user; }
/* The seq of the oldest stored message of room, -1 when none: what history pages back from. */
export function oldestSeq(room) {
  for (const m of room.msgs) if (STREAM.has(m.kind) && Number.isInteger(m.seq) && m.status === 'confirmed') return m.seq;
  return -1;
}
/* Events of a room's stream (each with its own seq): messages, system messages, message
 * deletions ('del', not drawn), message edits ('edit', not drawn) and system events of unknown
 * kinds ('skip', not drawn). */
export const STREAM = new Set(['msg', 'sys', 'del', 'edit', 'skip']);
/* The key an edit event is held under (each edit has its own seq). */
const editKey = (f) => (Number.isInteger(f.seq) ? `edit:${f.seq}` : `edit:${f.target}:${f.ts}`);
/* An event from the server (live, replayed or from history; proto.js parseEvent, kind 'msg' when
 * absent) into room, once: false when it is held already (same id, or same seq). A deletion
 * blanks the message it names (now, or when that message arrives later from history); an edit
 * gives it its new text (see applyEdit). A message held already takes a newer edited form
 * (history read again after an edit whose event this page missed). */
export function addServerMsg(room, f) {
  const kind = f.kind || 'msg';
  const id = kind === 'del' ? `del:${f.seq}` : kind === 'edit' ? editKey(f) : f.id;
  if (room.byId.has(id)) {
    const held = room.byId.get(id);
    if (kind === 'msg' && held.kind === 'msg') takeNewer(held, f);
    return false;
  }
  if (Number.isInteger(f.seq) && room.msgs.some((m) => STREAM.has(m.kind) && m.seq === f.seq && m.status === 'confirmed')) return false;
  if (kind === 'del' || (kind === 'edit' && f.deleted)) {
    room.deletedIds = room.deletedIds || new Set();
    room.deletedIds.add(f.target);
    const m = room.byId.get(f.target);
    if (m && m.kind === 'msg') markDeleted(m);
  }
  if (kind === 'edit') noteEdit(room, f);
  const own = kind === 'msg' && !!state.user && f.user === state.user;
  /* an edit event is held (not drawn) for its seq only: its text went to the message */
  const m = makeMsg({ kind, id, seq: f.seq, ts: validTs(f.ts), user: f.user || '', nick: f.nick || f.user || '',
    text: kind === 'edit' ? '' : f.text || '', own, room: room.id, event: f.event || '', message: f.message || '', deleted: !!f.deleted,
    editedAt: kind === 'msg' && !f.deleted && f.editedAt > 0 ? f.editedAt : 0, editSeq: -1 });
  if (kind === 'msg' && room.deletedIds && room.deletedIds.has(id)) markDeleted(m);
  if (kind === 'msg' && room.edits && room.edits.has(id)) applyEdit(m, room.edits.get(id));
  insertMsg(room, m);
  return true;
}
export function markDeleted(m) {
  if (m.deleted && !m.text) return;
  Object.assign(m, { deleted: true, text: '' });
  m.v++;
}
/* ---- edits (protocol version 4) ----
 * A message shows its newest text: the one of its edit event with the highest seq, or of a message
 * frame in its newest form (history, recovery: text and edited_at, the newest edit's ts). Events
 * come in any order (live, then older history pages; recovery), so an edit applies only when it is
 * newer than what the message shows: by seq against the last edit event applied (m.editSeq), else
 * by time against edited_at (an older page's edits come after the message in its newest form).
 * A deleted message never takes a text again. */
/* An edit event e ({target, seq, ts, text, deleted}) reached room: the newest one per message is
 * kept for a message not held yet (it comes later, from an older history page), and a held one
 * takes it now. */
function noteEdit(room, e) {
  room.edits = room.edits || new Map();
  const known = room.edits.get(e.target);
  if (!known || (Number.isInteger(e.seq) && !(known.seq >= e.seq))) room.edits.set(e.target, e);
  const m = room.byId.get(e.target);
  if (m && m.kind === 'msg') applyEdit(m, e);
}
/* Gives message m the text of edit event e when that is newer than what it shows; true when it did. */
export function applyEdit(m, e) {
  if (e.deleted) { markDeleted(m); return false; } /* its text is gone: it stays (or becomes) deleted */
  if (m.deleted) return false;
  if (m.editSeq >= 0 ? !(Number.isInteger(e.seq) && e.seq > m.editSeq) : e.ts < m.editedAt) return false;
  Object.assign(m, { text: e.text, editedAt: e.ts, editSeq: Number.isInteger(e.seq) ? e.seq : m.editSeq });
  m.v++;
  return true;
}
/* A message frame f (history, recovery) of a message held already: its newest form when it was
 * edited after what m shows. */
export function takeNewer(m, f) {
  if (m.deleted || f.deleted || !(f.editedAt > m.editedAt) || typeof f.text !== 'string') return;
  Object.assign(m, { text: f.text, editedAt: f.editedAt });
  m.v++;
}
/* The server accepted an edit of message id in room (the PATCH answer: text, editedAt), before
 * its message_edited event comes (which then changes nothing). False when the message is not
 * held, deleted, or shows a newer edit already. */
export function applyEditResult(room, id, text, editedAt) {
  const m = room && room.byId.get(id);
  if (!m || m.kind !== 'msg' || m.deleted || editedAt < m.editedAt) return false;
  if (m.text === text && m.editedAt === editedAt) return true;
  Object.assign(m, { text, editedAt });
  m.v++;
  return true;
}
/* Whether user may edit message m of room now: signed in, own, stored, not deleted, and no mute,
 * ban or chat ban known to be in force (the server checks again). */
export function canEdit(room, m) {
  return !!(state.user && room && m && m.kind === 'msg' && m.status === 'confirmed' && m.id && !m.deleted
    && m.user === state.user && canType(room));
}
/* Why the draft text (cleaned: proto.js cleanText) of an edit of m in room cannot be saved ('' =
 * it can): anon, sanction, gone (deleted, or no longer held), busy (the last save is on its way),
 * empty, long (more code points than a send may have in room), same (unchanged: nothing to save). */
export function editBlock(room, m, text) {
  if (!state.user) return 'anon';
  if (!room || !m || m.deleted || room.byId.get(m.id) !== m) return 'gone';
  if (!canType(room)) return 'sanction';
  if (state.editing && state.editing.busy) return 'busy';
  if (!text.trim()) return 'empty';
  if (codePoints(text) > maxText(room)) return 'long';
  if (text === m.text) return 'same';
  return '';
}
/* A live message with seq and prev reached room: when prev is not the newest seq held, messages
 * between them are missing. Opens (or widens) room.gap = {after, until}: fill from history
 * after `after` up to `until`. Returns true when there is a gap to fill. */
export function noteLive(room, seq, prev) {
  const last = lastSeq(room);
  if (!Number.isInteger(prev) || !Number.isInteger(seq) || last < 0 || seq <= last || prev === last) return !!room.gap;
  if (prev < last) return !!room.gap; /* older than what we hold: nothing new missing */
  if (room.gap) room.gap.until = Math.max(room.gap.until ?? -1, prev);
  else room.gap = { after: last, until: prev };
  return true;
}
export function loadRooms() {
  let ids = null;
  try { ids = JSON.parse(store.get(LS, 'chat.rooms') || 'null'); } catch { ids = null; }
  if (!Array.isArray(ids)) ids = [DEFAULT_ROOM];
  for (const id of ids) if (validRoom(id) && state.rooms.size < state.limits.max_rooms) state.rooms.set(id, newRoom(id));
  const active = store.get(LS, 'chat.active');
  state.active = state.rooms.has(active) ? active : (state.rooms.keys().next().value || '');
}
export function saveRooms() {
  store.set(LS, 'chat.rooms', JSON.stringify([...state.rooms.keys()]));
  store.set(LS, 'chat.active', state.active);
}
export function makeMsg(fields) {
  const n = nextOrder();
  return { kind: 'msg', key: 'm' + n, order: n, v: 0, id: '', seq: null, ts: Date.now(), user: '',
    nick: '', text: '', own: false, status: 'confirmed', code: '', detail: '', cmid: '', room: '', editedAt: 0, editSeq: -1, ...fields };
}
/* Per room: ordered by seq (the room's Kafka offset); messages without one (own, unacked) last. */
export function cmpMsg(a, b) {
  const sa = a.seq ?? Infinity, sb = b.seq ?? Infinity;
  return sa < sb ? -1 : sa > sb ? 1 : a.order - b.order;
}
export function insertMsg(room, m) {
  let i = room.msgs.length;
  while (i > 0 && cmpMsg(room.msgs[i - 1], m) > 0) i--;
  room.msgs.splice(i, 0, m);
  if (m.id) room.byId.set(m.id, m);
  while (room.msgs.length > MAX_MSGS) {
    const j = room.msgs.findIndex((x) => x.status !== 'pending');
    if (j < 0) break;
    const [old] = room.msgs.splice(j, 1);
    if (old.id) room.byId.delete(old.id);
  }
}
export function removeMsg(room, m) {
  const i = room.msgs.indexOf(m);
  if (i >= 0) room.msgs.splice(i, 1);
  if (m.id && room.byId.get(m.id) === m) room.byId.delete(m.id);
}
/* Just after the newest stored message: where a gap marker or a refused message belongs. */
export function anchorSeq(room) {
  let max = -1;
  for (const m of room.msgs) if (Number.isInteger(m.seq) && m.seq > max) max = m.seq;
  return max + 0.5;
}
/* The seq of the newest stored message of room, -1 when none: what join {since} resumes from. */
export function lastSeq(room) {
  let max = -1;
  for (const m of room.msgs) if (STREAM.has(m.kind) && Number.isInteger(m.seq) && m.seq > max) max = m.seq;
  return max;
}
/* Where messages may be missing (neither the gateway's replay nor history could fill them in). */
export function addGap(room) {
  const seq = anchorSeq(room);
  if (seq < 0 || room.msgs.some((m) => m.kind === 'gap' && m.seq === seq)) return;
  const n = nextOrder();
  insertMsg(room, { kind: 'gap', key: 'g' + n, order: n, v: 0, seq, status: 'gap' });
}
/* The server accepted own message m (ack, or its message event first). */
export function confirmMsg(m, id, seq, ts) {
  const room = state.rooms.get(m.room);
  state.pending.delete(m.cmid);
  if (!room) return;
  removeMsg(room, m);
  if (id && room.byId.has(id)) return; /* already shown */
  Object.assign(m, { id, seq, ts: validTs(ts), status: 'confirmed', code: '', detail: '' });
  m.v++;
  insertMsg(room, m);
}
/* Why text cannot be sent to room now ('' = it can): anon, signing, noroom, sanction (muted or
 * chat-banned: state.sanctions), offline, joining, slow (slow mode), cooldown, empty, long (too many code points) or big (the frame would be too large).
 * open: the connection is up and has said hello. */
export function sendBlock(room, text, open) {
  if (!state.user) return state.authPending || state.refreshing ? 'signing' : 'anon';
  if (!room) return 'noroom';
  const sn = activeSanction(room);
  if (sn && sn.code !== 'slow_mode') return 'sanction';
  if (!open) return 'offline';
  if (!room.joined) return 'joining';
  if (sn) return 'slow';
  if (Date.now() < state.cooldownUntil) return 'cooldown';
  if (!text.trim()) return 'empty';
  if (codePoints(text) > maxText(room)) return 'long';
  if (sendFrameBytes(room.id, text) > state.limits.max_frame) return 'big';
  return '';
}

/* Whether the message box takes typing in room: signed in, a room, and no mute, ban or chat ban
 * in force. Slow mode leaves it open (the next message can be written meanwhile): only sending
 * waits (sendBlock 'slow', with the countdown). */
export function canType(room) {
  const sn = state.user && room ? activeSanction(room) : null;
  return !!state.user && !!room && !(sn && sn.code !== 'slow_mode');
}

/* ---- sanctions (issue 13): what the server said is in force ----
 * Entries come from a refused send (noteSanction: src 'refusal') or from the server's `sanction`
 * frame (putSanction: src 'frame', pushed when one is put in force and after each `joined` while
 * one is); `sanction_lifted` removes them (liftSanction), expiry drops them (activeSanction). */
/* Remembers a refusal: muted (in room), chat_banned (everywhere), slow_mode (retry after). */
export function noteSanction(room, code, until, reason) {
  putSanction(code, code === 'chat_banned' ? '*' : room, until, reason, 'refusal');
}
/* A sanction in force: code muted, chat_banned or banned (or slow_mode), room ('*': every room). */
export function putSanction(code, room, until, reason, src = 'frame') {
  state.sanctions = state.sanctions.filter((s) => !(s.code === code && s.room === room));
  state.sanctions.push({ code, room, until, reason, src });
}
/* A sanction was lifted early. A site-wide lift also drops what refusals told of that code in
 * single rooms: a refused send does not say whether a mute was the room's or the site's (one
 * still in force refuses the next send again, and is pushed again on the next join). */
export function liftSanction(code, room) {
  state.sanctions = state.sanctions.filter((s) => !(s.code === code
    && (s.room === room || (room === '*' && s.src === 'refusal'))));
}
/* A new connection: the server pushes the sanctions in force after each `joined`, so what the
 * last connection knew is dropped (one lifted while offline must not stay; slow mode waits stay). */
export function resetSanctions() {
  state.sanctions = state.sanctions.filter((s) => s.code === 'slow_mode');
}
/* The sanction in force for room now (expired ones are dropped), or null. */
export function activeSanction(room, now = Date.now()) {
  state.sanctions = state.sanctions.filter((s) => s.until === null || s.until > now);
  if (!room) return null;
  return state.sanctions.find((s) => s.code !== 'slow_mode' && (s.room === '*' || s.room === room.id))
    || state.sanctions.find((s) => s.code === 'slow_mode' && s.room === room.id) || null;
}

/* ---- pinned messages (proto/README.md section 9, "Pins") ----
 * room.pins: list (proto.js parsePin entries, newest pin first) as GET .../pins gave it, kept live
 * by the room's live events: a pinned or unpinned system event (which also reads the list again:
 * pins.js), a message_deleted of a pinned message (deleting unpins it, without an unpinned event),
 * a message_edited of one (its new text). loaded/loading/error/gen: the last GET (gen: only the
 * newest answer counts); stale: to be read again when the room is shown. expect: id -> entry of
 * pins this page learnt of (a live pinned event of a message it holds, or its own pin) that a GET
 * has not shown yet: the server lists a pin once the persister stored its message, so an answer
 * without it is asked again a few times (tries) before it is believed. */
export function newPins() {
  return { list: [], loaded: false, loading: false, error: '', gen: 0, stale: false, expect: new Map(), tries: 0, timer: null };
}
export const isPinned = (room, id) => !!(room && id && room.pins.list.some((p) => p.id === id));
/* Who pinned entry x, as the page knows it: 'you', the nick of the newest pinned line of its
 * message that the page holds, or '' (the list gives a user id only). */
export function pinnerOf(room, x) {
  if (x.pinnedBy && x.pinnedBy === state.user) return 'you';
  for (let i = room.msgs.length - 1; i >= 0; i--) {
    const m = room.msgs[i];
    if (m.kind === 'sys' && m.event === 'pinned' && m.message === x.id) return m.user === x.pinnedBy || !x.pinnedBy ? m.nick : '';
  }
  return '';
}
/* A pin entry for message m of room (held by the page): what a live pinned event or one's own pin
 * adds before the list is read again. */
export function pinOfMsg(m, pinnedBy, pinnedAt) {
  return { id: m.id, seq: Number.isInteger(m.seq) ? m.seq : null, user: m.user, nick: m.nick || m.user, text: m.text, ts: m.ts,
    editedAt: m.editedAt || 0, pinnedBy: pinnedBy || '', pinnedAt: pinnedAt || Date.now() };
}
/* Entry p in its newest form known to the page: the text of a newer edit the page saw (live, or
 * of a message it holds) than the one the server's answer was made with. */
function freshen(room, p) {
  const m = room.byId.get(p.id), e = room.edits && room.edits.get(p.id);
  let q = p;
  if (m && m.kind === 'msg' && !m.deleted && m.editedAt > q.editedAt) q = { ...q, text: m.text, editedAt: m.editedAt };
  if (e && !e.deleted && e.ts > q.editedAt) q = { ...q, text: e.text, editedAt: e.ts };
  return q;
}
const byPinnedAt = (a, b) => b.pinnedAt - a.pinnedAt;
/* The answer of GET .../pins (parsePins) becomes room's list: without messages the page knows were
 * deleted since, with edits it saw since. Pins in expect that the answer lacks stay listed while
 * keep is true; the return value says whether there are such (ask again), else they are dropped. */
export function takePins(room, list, keep = true) {
  const p = room.pins, deleted = room.deletedIds || new Set();
  const next = list.filter((x) => !deleted.has(x.id)).map((x) => freshen(room, x));
  const have = new Set(next.map((x) => x.id));
  let missing = false;
  for (const [id, x] of [...p.expect]) {
    if (have.has(id) || deleted.has(id)) { p.expect.delete(id); continue; }
    if (!keep) { p.expect.delete(id); continue; }
    missing = true;
    next.push(freshen(room, x));
  }
  next.sort(byPinnedAt); /* stable: the server's order for equal times */
  Object.assign(p, { list: next, loaded: true, error: '' });
  if (!missing) p.tries = 0;
  return missing;
}
/* Adds entry x (newest first) unless its message is listed or known to be deleted; it is expected
 * in the next GET answers. */
export function addPin(room, x) {
  const p = room.pins;
  if (room.deletedIds && room.deletedIds.has(x.id)) return false;
  if (!p.list.some((y) => y.id === x.id)) p.list = [x, ...p.list].sort(byPinnedAt);
  p.expect.set(x.id, x);
  return true;
}
/* The message id is not pinned (any more): unpinned, or deleted. True when it was listed. */
export function dropPin(room, id) {
  const p = room.pins, n = p.list.length;
  p.expect.delete(id);
  p.list = p.list.filter((x) => x.id !== id);
  return p.list.length !== n;
}
/* A live system event e (proto.js parseEvent, kind 'sys') of room: pinned adds the message when the
 * page holds it (its text is known), unpinned removes it. True when e is a pin event. */
export function pinEvent(room, e) {
  if (e.kind !== 'sys' || (e.event !== 'pinned' && e.event !== 'unpinned') || !e.message) return false;
  if (e.event === 'unpinned') { dropPin(room, e.message); return true; }
  const m = room.byId.get(e.message);
  if (m && m.kind === 'msg' && !m.deleted && m.status === 'confirmed') addPin(room, pinOfMsg(m, e.user, e.ts));
  return true;
}
/* A live message_edited event e (kind 'edit': target, text, ts, deleted) of room: a pinned
 * message shows its new text (an older edit than the one shown changes nothing); a deleted one's
 * edit unpins it. True when a pin changed. */
export function pinEdited(room, e) {
  if (e.deleted) return dropPin(room, e.target);
  let changed = false;
  const upd = (x) => {
    if (x.id !== e.target || e.ts < x.editedAt || (x.text === e.text && x.editedAt === e.ts)) return x;
    changed = true;
    return { ...x, text: e.text, editedAt: e.ts };
  };
  room.pins.list = room.pins.list.map(upd);
  const x = room.pins.expect.get(e.target);
  if (x) room.pins.expect.set(e.target, upd(x));
  return changed;
}
