/* rooms.js - rooms as chat-api serves them (proto/README.md, rooms and history): my rooms, the
 * public directory, creating, joining and leaving rooms, invites, direct rooms, members, room
 * grants for the socket, history (the newest page, older pages, and filling gaps after a
 * reconnect) and read markers. REST calls never throw; every answer is untrusted and parsed by
 * proto.js first. */
import { errorText, inviteCode, parseHistory, parseMember, parseRoom, readFrame, restricted, str } from './proto.js';
import { STREAM, activeRoom, addGap, addServerMsg, applyInfo, confirmMsg, lastSeq, newRoom, oldestSeq, saveRooms, state } from './state.js';
import { api, apiErrorText, authedFetch } from './api.js';
import { isOpen, joinWs, send, sendLeave } from './ws.js';
import { update } from './ui.js';
import { pinsOnHistory } from './pins.js';

export const HISTORY_PAGE = 50; /* messages per history page (the server's default, at most CHAT_HISTORY_MAX) */
const GAP_PAGE = 200; /* messages per page while filling a gap (CHAT_HISTORY_MAX by default) */
const GAP_TRIES = 8; /* history behind the live stream (persister lag): retries before a gap marker */
const GAP_RETRY_MS = 250; /* times the try number */
const READ_MIN_MS = 1000; /* at most one read marker per room per second */
const GRANT_FRESH_MS = 30000; /* a grant from a room object younger than this is used for a join */
const DIR_PAGE = 30;

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const enc = encodeURIComponent;
const roomPath = (id) => `/api/v1/rooms/${enc(id)}`;
/* With the access token when signed in (some reads are public: bearer optional). */
function call(method, path, body) { return state.token ? authedFetch(method, path, body) : api(method, path, body); }
const signedIn = () => !!(state.token && state.account);
const alive = (room) => state.rooms.get(room.id) === room;
let addSeq = 0; /* rooms are numbered as they join the list (room.added) */

/* ---- the room list ---- */
/* Adds room id to the list (or returns it), with the room object when one is given. */
export function addRoom(id, info) {
  let room = state.rooms.get(id);
  if (!room) {
    room = newRoom(id);
    room.added = ++addSeq;
    state.rooms.set(id, room);
  }
  if (info) {
    applyInfo(room, info, false);
    if (info.grant) room.grantAt = Date.now();
  }
  saveRooms();
  return room;
}
/* Forgets room locally (the socket leaves it); the server is not told. */
export function dropRoom(id) {
  const room = state.rooms.get(id);
  if (!room) return;
  if (isOpen() && room.joined) sendLeave(id);
  for (const m of room.msgs) if (m.cmid) state.pending.delete(m.cmid);
  clearTimeout(room.readTimer);
  state.rooms.delete(id);
  if (state.active === id) state.active = state.rooms.keys().next().value || '';
  saveRooms();
}
/* GET /api/v1/users/me/rooms: the rooms of the signed-in user join the list (with their unread
 * counts and grants); restricted rooms no longer in it are dropped (left or removed elsewhere). */
export async function loadMyRooms() {
  if (!signedIn()) return;
  const asked = addSeq; /* rooms added while the answer is on its way are newer than it */
  const r = await authedFetch('GET', '/api/v1/users/me/rooms');
  if (!r.ok || !Array.isArray(r.data.rooms) || !signedIn()) return;
  const mine = new Set();
  for (const info of r.data.rooms.map(parseRoom)) {
    if (!info) continue;
    mine.add(info.id);
    addRoom(info.id, info);
  }
  for (const room of [...state.rooms.values()]) {
    if (mine.has(room.id) || (room.added || 0) > asked) continue;
    if (restricted(room.id)) dropRoom(room.id);
    else if (room.info && room.info.me) room.info = { ...room.info, me: null };
  }
  joinAll();
  update();
}
/* Guests (and signed-out users) cannot watch restricted rooms: they leave the list. */
export function dropRestricted() {
  for (const id of [...state.rooms.keys()]) if (restricted(id)) dropRoom(id);
}
/* The room object of rooms the list holds without one (the lobby, watched public rooms). */
export async function loadInfo(room) {
  if (room.infoLoading) return;
  room.infoLoading = true;
  const r = await call('GET', roomPath(room.id));
  room.infoLoading = false;
  if (!alive(room)) return;
  const info = r.ok ? parseRoom(r.data) : null;
  if (info) applyInfo(room, info, true);
  else if (r.status === 404 && restricted(room.id)) dropRoom(room.id); /* invisible to us */
  else if (r.status === 404) room.adhoc = true; /* not a chat-api room: ad hoc (if the gateways allow it) */
  update();
}
/* Joins every listed room on the socket that is not joined yet (restricted ones once signed in). */
export function joinAll() {
  if (!isOpen()) return;
  for (const room of state.rooms.values()) {
    if (!room.info && !room.infoLoading && !room.adhoc) loadInfo(room);
    if (room.joined || room.joining || (restricted(room.id) && !state.user)) continue;
    joinWs(room);
  }
}
/* A fresh room grant for a socket join (null when refused): from the room object when it is
 * young, else GET .../grant. */
export async function fetchGrant(room, fresh) {
  if (!fresh && room.info && room.info.grant && Date.now() - (room.grantAt || 0) < GRANT_FRESH_MS) {
    const g = room.info.grant;
    room.info = { ...room.info, grant: '' }; /* used once */
    return g;
  }
  if (!signedIn() && !state.token) return null;
  const r = await authedFetch('GET', `${roomPath(room.id)}/grant`);
  const g = r.ok ? str(r.data.grant) : '';
  if (!g) room.joinError = r.ok ? 'No room grant.' : apiErrorText(r);
  return g || null;
}

/* ---- opening, joining, leaving ---- */
/* The join form: a room id. Public rooms known to chat-api are joined (signed in) or watched
 * (guests); unknown public ids are ad hoc rooms; restricted ids must be ours already. */
export async function openById(id) {
  if (state.rooms.has(id)) return id;
  if (restricted(id)) {
    state.joinError = `Could not open ${id}: ${errorText('not_found')}`;
    return '';
  }
  if (signedIn()) { /* a chat-api room: become a member (kept in my rooms); unknown: ad hoc */
    const r = await authedFetch('POST', `${roomPath(id)}/join`);
    const info = r.ok ? parseRoom(r.data) : null;
    if (info) { addRoom(info.id, info); joinAll(); return info.id; }
    if (r.status !== 404) { state.joinError = `Could not join ${id}: ${r.ok ? 'unexpected answer' : apiErrorText(r)}`; return ''; }
  }
  addRoom(id);
  joinAll();
  return id;
}
/* POST .../join: membership of a public room (signed in), kept in the list. */
export async function joinPublic(id) {
  const r = await authedFetch('POST', `${roomPath(id)}/join`);
  const info = r.ok ? parseRoom(r.data) : null;
  if (!info) {
    state.roomMsg = `Could not join: ${r.ok ? 'unexpected answer' : apiErrorText(r)}`;
    state.roomMsgErr = true;
    update();
    return null;
  }
  const room = addRoom(info.id, info);
  applyInfo(room, info, false);
  joinAll();
  update();
  return room;
}
/* POST .../leave, then out of the list. */
export async function leaveMember(id) {
  const room = state.rooms.get(id);
  if (room && room.info && room.info.me) {
    room.leaving = true; /* the socket's left (reason left) may come before this answer */
    const r = await authedFetch('POST', `${roomPath(id)}/leave`);
    room.leaving = false;
    if (!r.ok && r.status !== 404) {
      Object.assign(state, { roomMsg: `Could not leave: ${apiErrorText(r)}`, roomMsgErr: true });
      update();
      return false;
    }
  }
  dropRoom(id);
  update();
  return true;
}
export async function setFavourite(room, favourite) {
  const r = await authedFetch('POST', `${roomPath(room.id)}/favourite`, { favourite });
  const info = r.ok ? parseRoom(r.data) : null;
  if (info && alive(room)) applyInfo(room, { ...info, me: info.me ? { ...info.me, unread: room.unread } : null }, false);
  else if (!r.ok) Object.assign(state, { roomMsg: `Could not change the favourite: ${apiErrorText(r)}`, roomMsgErr: true });
  update();
}
/* POST /api/v1/rooms: {kind, name, description?, id? (public)} -> the new room, opened. */
export async function createRoom(body) {
  const r = await authedFetch('POST', '/api/v1/rooms', body);
  const info = r.ok ? parseRoom(r.data) : null;
  if (!info) { state.createMsg = r.ok ? 'The server gave an unexpected answer.' : apiErrorText(r); update(); return null; }
  state.createMsg = '';
  addRoom(info.id, info);
  joinAll();
  return info.id;
}
/* POST /api/v1/direct/{username} -> the direct room with that user. */
export async function openDirect(username) {
  const r = await authedFetch('POST', `/api/v1/direct/${enc(username)}`);
  const info = r.ok ? parseRoom(r.data) : null;
  if (!info) {
    state.dmMsg = r.status === 404 ? `There is no user “${username}”.` : r.ok ? 'The server gave an unexpected answer.' : apiErrorText(r);
    update();
    return null;
  }
  state.dmMsg = '';
  addRoom(info.id, info);
  joinAll();
  return info.id;
}
/* POST .../invites -> the invite link (#/invite/CODE on this origin). */
export async function createInvite(room) {
  const r = await authedFetch('POST', `${roomPath(room.id)}/invites`, { expires_in: 86400, max_uses: 0 });
  const code = r.ok ? str(r.data.code) : '';
  if (code && /^[A-Za-z0-9_-]{1,128}$/.test(code)) {
    Object.assign(state, { invite: `${location.origin}${location.pathname}#/invite/${code}`, roomMsg: '', roomMsgErr: false });
  } else Object.assign(state, { invite: '', roomMsg: `Could not create an invite: ${r.ok ? 'unexpected answer' : apiErrorText(r)}`, roomMsgErr: true });
  update();
}
/* An invite link was opened: redeem it once signed in (else remember it for after the sign-in).
 * Resolves to the room id, or ''. */
export async function redeemInvite(code) {
  if (!code) return '';
  if (!signedIn()) { state.inviteCode = code; return ''; }
  state.inviteCode = '';
  const r = await authedFetch('POST', `/api/v1/invites/${enc(code)}/redeem`);
  const info = r.ok ? parseRoom(r.data) : null;
  if (!info) { state.notice = `Invite: ${r.ok ? 'unexpected answer' : errorText(r.code, apiErrorText(r))}`; update(); return ''; }
  addRoom(info.id, info);
  joinAll();
  return info.id;
}
export function hashInvite() { return inviteCode(location.hash); }

/* ---- the directory (GET /api/v1/rooms?q=&after=) ---- */
export async function searchRooms(q, more) {
  const d = state.dir;
  if (more && (!d.next || d.loading)) return;
  const gen = more ? d.gen : ++d.gen;
  if (!more) Object.assign(d, { q, rooms: [], next: null });
  Object.assign(d, { loading: true, error: '' });
  update();
  const qs = `?limit=${DIR_PAGE}&q=${enc(d.q)}` + (more ? `&after=${enc(d.next)}` : '');
  const r = await call('GET', '/api/v1/rooms' + qs);
  if (gen !== d.gen) return;
  d.loading = false;
  if (r.ok && Array.isArray(r.data.rooms)) {
    const seen = new Set(d.rooms.map((x) => x.id));
    for (const info of r.data.rooms.map(parseRoom)) if (info && !seen.has(info.id)) { seen.add(info.id); d.rooms.push(info); }
    d.next = str(r.data.next) || null;
  } else d.error = r.ok ? 'The server gave an unexpected answer.' : apiErrorText(r);
  update();
}
/* Opens a directory room to watch it (not a member: it is not kept by the server). */
export function watchRoom(info) {
  addRoom(info.id, info);
  joinAll();
  return info.id;
}

/* ---- members of the open room ---- */
export async function loadMembers(room, more) {
  const m = state.members;
  if (more && (!m.next || m.loading)) return;
  const gen = more ? m.gen : ++m.gen;
  if (!more) Object.assign(m, { room: room.id, list: [], next: null });
  Object.assign(m, { loading: true, error: '' });
  update();
  const r = await authedFetch('GET', `${roomPath(room.id)}/members?limit=100` + (more ? `&after=${enc(m.next)}` : ''));
  if (gen !== m.gen) return;
  m.loading = false;
  if (r.ok && Array.isArray(r.data.members)) {
    for (const x of r.data.members.map(parseMember)) if (x) m.list.push(x);
    m.next = str(r.data.next) || null;
  } else m.error = r.ok ? 'The server gave an unexpected answer.' : apiErrorText(r);
  update();
}

/* ---- history ---- */
/* Own messages waiting for their ack that history shows stored: confirmed (no double). */
function takeHistory(room, msgs) {
  let added = 0;
  for (const f of msgs) {
    const mine = f.cmid && f.user === state.user ? state.pending.get(f.cmid) : undefined;
    if (mine && mine.room === room.id) { confirmMsg(mine, f.id, f.seq, f.ts); continue; }
    if (addServerMsg(room, f)) added++;
  }
  return added;
}
function historyUrl(room, q) { return `${roomPath(room.id)}/messages?${q}`; }
/* Opening a room: its newest page (once; live messages and gap fills keep it current). */
export async function loadNewest(room) {
  const h = room.hist;
  if (h.loaded || h.loading) return;
  Object.assign(h, { loading: true, error: '' });
  update();
  const r = await call('GET', historyUrl(room, `limit=${HISTORY_PAGE}`));
  if (!alive(room)) return;
  h.loading = false;
  if (r.ok) {
    const page = parseHistory(r.data);
    takeHistory(room, page.msgs);
    Object.assign(h, { loaded: true, more: page.more });
    if (room.id === state.active) state.stickBottom = true;
  } else if (r.status === 404 && !restricted(room.id)) Object.assign(h, { loaded: true, more: false }); /* ad hoc room: none */
  else h.error = apiErrorText(r);
  update();
  markRead(room);
  if (h.recheck) { h.recheck = false; catchUp(room); }
}
/* The socket joined room without `since` after (or while) its history was read: a message
 * stored between the two reached neither. Read what came after the newest held. */
export function catchUp(room) {
  const h = room.hist;
  if (h.loading) { h.recheck = true; return; }
  if (!h.loaded) return; /* read when the room is opened, after this join */
  const last = lastSeq(room);
  if (last >= 0) {
    room.gap = room.gap || { after: last, until: null };
    fillGap(room);
  } else {
    h.loaded = false;
    loadNewest(room);
  }
}
/* Scrolled to the top: the page before the oldest message held. */
export async function loadOlder(room) {
  const h = room.hist, before = oldestSeq(room);
  if (!h.loaded || !h.more || h.loading || before < 0) return;
  Object.assign(h, { loading: true, error: '' });
  update();
  const r = await call('GET', historyUrl(room, `before=${before}&limit=${HISTORY_PAGE}`));
  if (!alive(room)) return;
  h.loading = false;
  if (r.ok) {
    const page = parseHistory(r.data);
    if (room.id === state.active) state.keepScroll = true; /* the render keeps the view where it was */
    takeHistory(room, page.msgs);
    h.more = page.more && page.msgs.length > 0;
  } else h.error = apiErrorText(r);
  update();
}
/* Fills room.gap = {after, until (null: up to the newest)} from history, page by page; history
 * that lags the live stream is asked again a few times before a gap marker says what is missing. */
export async function fillGap(room) {
  if (room.filling) return;
  room.filling = true;
  let tries = 0;
  while (room.gap && alive(room)) {
    const g = room.gap;
    const r = await call('GET', historyUrl(room, `after=${g.after}&limit=${GAP_PAGE}`));
    if (!alive(room)) break;
    if (r.ok) {
      const page = parseHistory(r.data);
      takeHistory(room, page.msgs);
      pinsOnHistory(room, page.msgs); /* missed live: pin events, or changes of pinned messages */
      if (page.msgs.length) g.after = Math.max(g.after, page.msgs[page.msgs.length - 1].seq);
      update();
      if (page.more && page.msgs.length) continue;
      const reached = g.until === null || g.after >= g.until || room.msgs.some((m) => STREAM.has(m.kind) && m.seq === g.until);
      if (reached) { room.gap = null; break; }
    }
    if (++tries > GAP_TRIES) { /* still missing: say so where it is */
      room.gap = null;
      addGap(room);
      break;
    }
    await sleep(GAP_RETRY_MS * tries);
  }
  room.filling = false;
  update();
  markRead(room);
}

/* ---- read markers ---- */
/* The open, visible room: its unread badge clears and the server learns the newest seq shown
 * (a `read` frame, at most once per READ_MIN_MS per room). */
export function markRead(room = activeRoom()) {
  if (!room || room.id !== state.active || (typeof document !== 'undefined' && document.hidden)) return;
  room.unread = 0;
  const seq = lastSeq(room);
  if (!state.user || !room.joined || seq <= room.readSeq || room.readTimer) return;
  const wait = room.readAt + READ_MIN_MS - Date.now();
  if (wait > 0) {
    room.readTimer = setTimeout(() => { room.readTimer = null; markRead(room); }, wait);
    return;
  }
  if (send(readFrame(room.id, seq))) Object.assign(room, { readSeq: seq, readAt: Date.now() });
}
