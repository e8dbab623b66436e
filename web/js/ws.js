/* ws.js - the WebSocket connection (/ws on this origin): connect with backoff, heartbeat, and
 * the handlers of the server's frames (proto/README.md), which change the state and ask for a
 * render. */
import { READ_REF, authFrame, decodeFrame, editedAtOf, encodeFrame, errorText, int, joinFrame, leaveFrame, mergeLimits, parseEvent, parseSanction,
  parseSanctionFrame, pingFrame, restricted, sendFrame, str, validTs } from './proto.js';
import { GONE_REASONS, addServerMsg, anchorSeq, confirmMsg, insertMsg, lastSeq, liftSanction, noteLive, noteSanction, putSanction,
  removeMsg, resetSanctions, state, store, SS, takeNewer, takenOut } from './state.js';
import { auth, authenticate, authRefused, refreshToken, renew, signedOut } from './api.js';
import { closeLogin, update } from './ui.js';
import { joinFailed, roomGone } from './actions.js';
import { catchUp, dropRestricted, fetchGrant, fillGap, joinAll, loadMyRooms, markRead, redeemInvite } from './rooms.js';
import { pinsJoined, pinsOnEvent } from './pins.js';

const BACKOFF_BASE_MS = 500, BACKOFF_MAX_MS = 30000;
const STABLE_MS = 30000; /* a connection that lived this long resets the backoff */
const HELLO_TIMEOUT_MS = 10000;
export const PING_MS = 25000; /* app-level ping; no frame at all since the last ping = dead socket */
/* Own messages without an ack are sent again (same client_msg_id: the server stores them once)
 * after a reconnect, for this long after their first send; then they are shown as not sent. */
export const RESEND_MAX_MS = 120000;
const ANNOUNCE_KEEP = 3; /* site-wide announcements shown at once */
const JOIN_NOT_FOUND_TRIES = 8, JOIN_RETRY_MS = 250; /* times the try number */

/* connection bookkeeping that the UI never draws */
export const net = { ws: null, hello: false, helloCount: 0, fast: false, attempt: 0, openedAt: 0,
  lastRx: 0, pingAt: 0, refs: new Map(), refSeq: 0, timers: {}, connSeq: 0 };

export function isOpen() { return !!net.ws && net.ws.readyState === WebSocket.OPEN && net.hello; }

/* ---- outgoing ---- */
export function send(frame) {
  if (!net.ws || net.ws.readyState !== WebSocket.OPEN) return false;
  net.ws.send(encodeFrame(frame));
  return true;
}
export function newRef(kind, data) {
  const ref = 'r' + (++net.refSeq);
  net.refs.set(ref, { kind, data });
  return ref;
}
function takeRef(ref) {
  const r = typeof ref === 'string' && net.refs.get(ref);
  net.refs.delete(ref);
  return r || null;
}
/* Joins room on the socket: since = the last seq held (the server replays what came after, or
 * says it cannot); restricted rooms with a fresh room grant (retried: after a `forbidden`). */
export async function joinWs(room, retried = false) {
  const sock = net.ws;
  if (!isOpen() || room.joined || room.joining) return;
  const attempt = room.joinAttempt = (room.joinAttempt || 0) + 1;
  room.joining = true;
  room.joinError = '';
  let grant = null;
  if (restricted(room.id)) {
    grant = await fetchGrant(room, retried);
    if (room.joinAttempt !== attempt) return; /* a newer attempt (a new connection) took over */
    if (net.ws !== sock || !isOpen() || state.rooms.get(room.id) !== room) { room.joining = false; return; }
    if (!grant) { room.joining = false; update(); return; }
  }
  const since = lastSeq(room);
  send(joinFrame(room.id, newRef('join', { id: room.id, since, retried }), since, grant || undefined));
}
export function sendLeave(id) { send(leaveFrame(id, newRef('leave', id))); }
export function sendAuth() { state.authPending = send(authFrame(state.token, newRef('auth'))); }
/* Sends own message m (again: same client_msg_id). Offline: it waits for the reconnect. */
export function transmit(m) {
  m.firstTry = m.firstTry || Date.now();
  m.conn = net.connSeq;
  if (!send(sendFrame(m.room, m.text, m.cmid))) m.conn = 0;
}
/* After a (re)join of room: own messages not acknowledged on this connection are sent again. */
function resend(room) {
  for (const m of [...state.pending.values()]) {
    if (m.room !== room.id || m.conn === net.connSeq) continue;
    if (Date.now() - m.firstTry > RESEND_MAX_MS) failMsg(m, 'connection_lost');
    else transmit(m);
  }
}
/* The server refused own message m (or the connection dropped before its ack). */
export function failMsg(m, code, message, retryMs, f) {
  const room = state.rooms.get(m.room);
  state.pending.delete(m.cmid);
  Object.assign(m, { status: 'failed', code: code || 'error', detail: errorText(code, message) });
  m.v++;
  if (room) { /* stays where it was in the timeline instead of sinking below newer messages */
    removeMsg(room, m);
    m.seq = anchorSeq(room);
    insertMsg(room, m);
  }
  const sn = parseSanction(code, f);
  if (sn && sn.code !== 'banned') noteSanction(m.room, sn.code, sn.until, sn.reason);
  if (code === 'slow_mode') noteSanction(m.room, 'slow_mode', Date.now() + Math.min(Math.max(retryMs ?? 1000, 100), 3600000), '');
  if (code === 'rate_limited' || code === 'overloaded') {
    state.cooldownUntil = Math.max(state.cooldownUntil, Date.now() + (retryMs ?? 1000));
  }
  if (code === 'token_expired' || code === 'auth_required') lostIdentity();
}
/* The server treats this connection as anonymous (a token_expired or auth_required answer, or a
 * left with reason signed_out that came before this client noticed): present (or renew) the token
 * again; its authed joins the restricted rooms again (joinAll). */
function lostIdentity() {
  if (!state.user) return;
  state.user = null;
  authenticate();
}

/* ---- incoming ---- */
const handlers = Object.assign(Object.create(null), {
  hello(f) {
    Object.assign(net, { hello: true, helloCount: net.helloCount + 1, openedAt: Date.now() });
    clearTimeout(net.timers.hello);
    mergeLimits(state.limits, f.limits);
    Object.assign(state.conn, { status: 'online', node: str(f.node) });
    Object.assign(state, { notice: '', user: str(f.user) || null });
    resetSanctions(); /* the ones in force come again after each joined */
    if (!state.user) authenticate();
    if (!state.token && !refreshToken()) { /* a guest: no restricted rooms, member of none */
      dropRestricted();
      for (const room of state.rooms.values()) if (room.info) room.info = { ...room.info, me: null, grant: '' };
    }
    joinAll(); /* restricted rooms once signed in (authed) */
  },
  authed(f) {
    takeRef(f.ref);
    Object.assign(state, { authPending: false, user: str(f.user) || null, exp: int(f.exp) || 0, anon: false });
    auth.switched = false;
    store.del(SS, 'chat.anon');
    closeLogin();
    joinAll();
    loadMyRooms();
    if (state.inviteCode) redeemInvite(state.inviteCode).then((id) => { if (id) roomGone('', id); });
  },
  /* The token runs out soon: renew it (POST /auth/refresh); adoptSession sends the new one. */
  session_expiring() {
    if (state.user && refreshToken()) renew();
  },
  /* exp passed without a new token: the connection is anonymous now (still joined, watching). */
  session_expired() {
    state.user = null;
    state.authPending = false;
    if (refreshToken()) renew(); /* a fresh token signs this connection in again */
    else signedOut('expired');
  },
  /* The session was revoked (on any gateway): the connection is anonymous now. No refresh attempt:
   * the session's refresh token is dead as well. */
  session_revoked(f) {
    state.user = null;
    state.authPending = false;
    if (auth.loggingOut) return; /* our own sign-out */
    signedOut(str(f.reason) || 'revoked');
  },
  joined(f) {
    const ref = takeRef(f.ref);
    const room = state.rooms.get(str(f.room));
    if (!room) return;
    Object.assign(room, { joined: true, joining: false, joinError: '', joinTries: 0 });
    const since = ref && ref.kind === 'join' ? ref.data.since : -1;
    if (f.recovered === false && since >= 0) { /* the node could not replay what we missed: history can */
      room.gap = room.gap || { after: since, until: null };
      fillGap(room);
    } else if (since < 0) catchUp(room);
    resend(room);
    markRead(room);
    pinsJoined(room); /* the pinned messages, read again: pin events may have come while not joined */
  },
  /* A reply to our leave, or the server took the socket out of the room: removed, kicked,
   * banned, deleted, or left (the user left it through the REST API: another tab or device): the
   * room leaves the list. signed_out (the connection lost its identity: not a removal) and reasons
   * this client does not know: the room stays listed, not joined (state.js takenOut); restricted
   * rooms are joined again after the next authed. */
  left(f) {
    takeRef(f.ref);
    const reason = str(f.reason), id = str(f.room), room = state.rooms.get(id);
    if (!room || !reason) return;
    if (GONE_REASONS.has(reason)) {
      room.joined = false; /* the server has taken the socket out already */
      roomGone(reason, id);
      return;
    }
    takenOut(room);
    if (reason === 'signed_out') lostIdentity();
  },
  /* another connection of ours read room up to seq */
  read(f) {
    const room = state.rooms.get(str(f.room)), seq = int(f.seq);
    if (!room || seq === null) return;
    room.readSeq = Math.max(room.readSeq, seq);
    room.unread = room.msgs.filter((m) => m.kind === 'msg' && !m.own && Number.isInteger(m.seq) && m.seq > seq).length;
  },
  ack(f) {
    const m = state.pending.get(str(f.client_msg_id));
    if (m) confirmMsg(m, str(f.id), int(f.seq), f.ts);
  },
  message(f) {
    const room = state.rooms.get(str(f.room)), id = str(f.id);
    if (!room || !id) return; /* not ours to show */
    const user = str(f.user), nick = str(f.nick) || user;
    const own = !!state.user && user === state.user;
    if (own) state.nick = nick; /* the server's name for us (the token's, or a newer nickname) */
    /* a live message is never edited yet; a replayed one (join {since}) is in its newest form */
    const editedAt = editedAtOf(f);
    const seen = room.byId.get(id);
    if (seen) { /* own message already confirmed by its ack: take the server's nick from the event */
      if (seen.kind === 'msg' && seen.nick !== nick) { seen.nick = nick; seen.v++; }
      if (seen.kind === 'msg') takeNewer(seen, { text: str(f.text), editedAt, deleted: f.deleted === true });
      return;
    }
    /* prev: the room's message before this one; not the newest we hold: some went missing and
     * are read from history */
    const seq = int(f.seq), gap = noteLive(room, seq, int(f.prev));
    const mine = own ? state.pending.get(str(f.client_msg_id)) : undefined;
    if (mine) {
      mine.nick = nick;
      confirmMsg(mine, id, seq, f.ts);
      if (editedAt) takeNewer(mine, { text: str(f.text), editedAt }); /* edited on another device meanwhile */
    } else if (!addServerMsg(room, { id, seq, ts: validTs(f.ts), user, nick, text: str(f.text), editedAt })) return;
    if (gap) fillGap(room);
    if (own || mine) return;
    if (room.id !== state.active || document.hidden) room.unread++;
    if (room.id === state.active) state.announce.push({ nick, text: str(f.text), room: room.id });
  },
  /* message_deleted, message_edited and system: events of the room's stream (own seq/prev, like
   * messages); an edit replaces the text of the message it names, if this page holds it; each
   * keeps the room's pinned messages current (pins.js) */
  message_deleted(f) { streamEvent(f); },
  message_edited(f) { streamEvent(f); },
  system(f) { streamEvent(f); },
  /* a sanction on this user was put in force (or is, in a room just joined; room '*': site-wide):
   * the message box says so at once, before any send is refused */
  sanction(f) {
    const sn = parseSanctionFrame(f);
    if (sn) putSanction(sn.code, sn.room, sn.until, sn.reason);
  },
  /* lifted early by a moderator: the message box is enabled again at once (expiry sends nothing:
   * the countdown ends it) */
  sanction_lifted(f) {
    const sn = parseSanctionFrame(f);
    if (sn) liftSanction(sn.code, sn.room);
  },
  /* a site-wide announcement: a banner above every room (newest first, a few kept) */
  announcement(f) {
    const id = str(f.id), text = str(f.text);
    if (!id || !text || state.announcements.some((a) => a.id === id)) return;
    state.announcements = [{ id, text, ts: validTs(f.ts) }, ...state.announcements].slice(0, ANNOUNCE_KEEP);
    state.announce.push({ nick: 'Announcement', text, room: '' });
  },
  presence(f) {
    const p = { users: int(f.users) ?? 0, conns: int(f.conns) ?? 0 };
    if (f.scope === 'total') state.totals = p;
    else if (f.scope === 'room' && state.rooms.has(str(f.room))) state.rooms.get(str(f.room)).presence = p;
  },
  error(f) {
    const code = str(f.code), message = str(f.message);
    if (f.ref === READ_REF) { /* a read marker was not stored: the next one supersedes it */
      if (code === 'token_expired') lostIdentity(); /* the connection is anonymous now */
      return;
    }
    const ref = takeRef(f.ref);
    if (ref && ref.kind === 'join') {
      const room = state.rooms.get(ref.data.id);
      if (room) room.joining = false;
      /* a refused grant (expired, or older than a removal): one more try with a fresh one */
      if (room && code === 'forbidden' && restricted(room.id) && !ref.data.retried) return joinWs(room, true);
      /* a room chat-api has just created reaches the gateways a moment later (chat.rooms) */
      if (room && code === 'not_found' && room.info && (room.joinTries = (room.joinTries || 0) + 1) <= JOIN_NOT_FOUND_TRIES) {
        const conn = net.connSeq;
        setTimeout(() => { if (net.connSeq === conn && state.rooms.get(room.id) === room) joinWs(room); }, JOIN_RETRY_MS * room.joinTries);
        return;
      }
      return joinFailed(ref.data.id, code, message);
    }
    if (ref && ref.kind === 'auth') return authRefused(code, message);
    if (ref) return; /* a leave we no longer care about */
    const m = state.pending.get(str(f.client_msg_id));
    if (m && code === 'in_flight') { /* stored soon (or refused): ask again with the same client_msg_id */
      const conn = net.connSeq;
      setTimeout(() => { if (state.pending.get(m.cmid) === m && net.connSeq === conn) transmit(m); },
        Math.min(Math.max(int(f.retry_ms) ?? 500, 100), 10000));
      return;
    }
    if (m) return failMsg(m, code, message, int(f.retry_ms), f);
    if (code === 'bad_token' || code === 'token_expired' || code === 'session_revoked') return authRefused(code, message);
    state.notice = `Server error (${code || 'unknown'}): ${errorText(code, message)}`;
  },
  bye(f) {
    net.fast = true; /* this node is going away: reconnect at once (the balancer picks another) */
    state.notice = 'The server node is shutting down: ' + (str(f.reason) || 'reconnecting') + '.';
  },
  pong() { /* lastRx is enough */ },
});
function streamEvent(f) {
  const room = state.rooms.get(str(f.room)), e = parseEvent(f);
  if (!room || !e) return;
  const gap = noteLive(room, e.seq, e.prev);
  if (!addServerMsg(room, e)) return;
  pinsOnEvent(room, e);
  if (gap) fillGap(room);
}
function onFrame(sock, data) {
  if (sock !== net.ws) return;
  net.lastRx = Date.now();
  const f = decodeFrame(data);
  if (!f || !handlers[f.type]) return;
  handlers[f.type](f);
  markRead();
  update();
}

/* ---- connection lifecycle ---- */
/* Close 4010 (too_many_errors): this client sent malformed frames, a bug that a reconnect would
 * repeat. proto/README.md: fix the code before reconnecting. No reconnect (not even a manual
 * one) until the page is reloaded, which loads the client again. */
export const CLOSE_TOO_MANY_ERRORS = 4010;
export function connect() {
  clearTimeout(net.timers.retry);
  if (net.ws || state.conn.status === 'stopped') return;
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  let sock;
  try { sock = new WebSocket(url); } catch { scheduleReconnect(); update(); return; }
  Object.assign(net, { ws: sock, hello: false, fast: false, lastRx: Date.now(), pingAt: 0, connSeq: net.connSeq + 1 });
  state.conn.status = 'connecting';
  sock.onmessage = (ev) => onFrame(sock, ev.data);
  sock.onclose = (ev) => onClose(sock, ev);
  net.timers.hello = setTimeout(() => { if (net.ws === sock && !net.hello) drop(sock); }, HELLO_TIMEOUT_MS);
  update();
}
/* Forget a socket now (dead, timed out or replaced) without waiting for its close handshake. */
export function drop(sock) {
  sock.onclose = sock.onmessage = null;
  try { sock.close(1000); } catch { /* already closed */ }
  onClose(sock, { code: 1006 });
}
function onClose(sock, ev) {
  if (net.ws !== sock) return;
  net.ws = null;
  net.refs.clear();
  clearTimeout(net.timers.hello);
  if (ev.code === 1001) net.fast = true; /* going away, even if its bye frame was lost */
  if (net.fast || (net.hello && Date.now() - net.openedAt > STABLE_MS)) net.attempt = 0;
  for (const room of state.rooms.values()) Object.assign(room, { joined: false, joining: false, presence: null });
  /* own messages without an ack stay pending: sent again after the rejoin (resend) */
  Object.assign(state, { totals: null, authPending: false });
  if (ev.code === 4001) authRefused('bad_token', '');
  if (ev.code === CLOSE_TOO_MANY_ERRORS) {
    clearTimeout(net.timers.retry);
    Object.assign(state.conn, { status: 'stopped', node: '', retryAt: 0 });
  } else scheduleReconnect();
  update();
}
/* Exponential backoff with jitter (half fixed, half random); a bye or a user request: ~now. */
function scheduleReconnect() {
  const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** net.attempt);
  const delay = net.fast ? Math.random() * 250 : cap / 2 + Math.random() * (cap / 2);
  if (!net.fast) net.attempt = Math.min(net.attempt + 1, 16);
  net.fast = false;
  Object.assign(state.conn, { status: 'offline', node: '', retryAt: Date.now() + delay });
  clearTimeout(net.timers.retry);
  net.timers.retry = setTimeout(connect, delay);
}
export function reconnectNow() {
  if (state.conn.status === 'stopped') return; /* after 4010: only a reload */
  Object.assign(net, { fast: true, attempt: 0 });
  if (net.ws) drop(net.ws); else connect();
}
export function heartbeat() {
  const s = net.ws;
  if (!s || s.readyState !== WebSocket.OPEN) return;
  if (net.pingAt && net.lastRx < net.pingAt) { drop(s); return; } /* nothing since the last ping */
  net.pingAt = Date.now();
  send(pingFrame());
}
