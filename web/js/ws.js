/* ws.js - the WebSocket connection (/ws on this origin): connect with backoff, heartbeat, and
 * the handlers of the server's frames (proto/README.md), which change the state and ask for a
 * render. */
import { authFrame, decodeFrame, encodeFrame, errorText, int, joinFrame, leaveFrame, mergeLimits, pingFrame, sendFrame,
  str, validTs } from './proto.js';
import { addGap, anchorSeq, confirmMsg, insertMsg, lastSeq, makeMsg, removeMsg, state, store, SS } from './state.js';
import { auth, authenticate, authRefused, refreshToken, renew, signedOut } from './api.js';
import { closeLogin, update } from './ui.js';
import { joinFailed } from './actions.js';

const BACKOFF_BASE_MS = 500, BACKOFF_MAX_MS = 30000;
const STABLE_MS = 30000; /* a connection that lived this long resets the backoff */
const HELLO_TIMEOUT_MS = 10000;
export const PING_MS = 25000; /* app-level ping; no frame at all since the last ping = dead socket */

/* connection bookkeeping that the UI never draws */
export const net = { ws: null, hello: false, helloCount: 0, fast: false, attempt: 0, openedAt: 0,
  lastRx: 0, pingAt: 0, refs: new Map(), refSeq: 0, timers: {} };

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
/* since (a reconnect): the last seq held; the server replays what came after, or says it cannot. */
export function sendJoin(id, since) { send(joinFrame(id, newRef('join', id), since)); }
export function sendLeave(id) { send(leaveFrame(id, newRef('leave', id))); }
export function sendAuth() { state.authPending = send(authFrame(state.token, newRef('auth'))); }
export function transmit(m) {
  if (!send(sendFrame(m.room, m.text, m.cmid))) failMsg(m, 'connection_lost');
}
/* The server refused own message m (or the connection dropped before its ack). */
export function failMsg(m, code, message, retryMs) {
  const room = state.rooms.get(m.room);
  state.pending.delete(m.cmid);
  Object.assign(m, { status: 'failed', code: code || 'error', detail: errorText(code, message) });
  m.v++;
  if (room) { /* stays where it was in the timeline instead of sinking below newer messages */
    removeMsg(room, m);
    m.seq = anchorSeq(room);
    insertMsg(room, m);
  }
  if (code === 'rate_limited' || code === 'overloaded') {
    state.cooldownUntil = Math.max(state.cooldownUntil, Date.now() + (retryMs ?? 1000));
  }
  /* the server treats this connection as anonymous: present (or renew) the token again */
  if ((code === 'token_expired' || code === 'auth_required') && state.user) {
    state.user = null;
    authenticate();
  }
}

/* ---- incoming ---- */
const handlers = Object.assign(Object.create(null), {
  hello(f) {
    Object.assign(net, { hello: true, helloCount: net.helloCount + 1, openedAt: Date.now() });
    clearTimeout(net.timers.hello);
    mergeLimits(state.limits, f.limits);
    Object.assign(state.conn, { status: 'online', node: str(f.node) });
    Object.assign(state, { notice: '', user: str(f.user) || null });
    if (!state.user) authenticate();
    for (const room of state.rooms.values()) {
      const since = net.helloCount > 1 ? lastSeq(room) : -1;
      sendJoin(room.id, since >= 0 ? since : undefined);
    }
  },
  authed(f) {
    takeRef(f.ref);
    Object.assign(state, { authPending: false, user: str(f.user) || null, exp: int(f.exp) || 0, anon: false });
    auth.switched = false;
    store.del(SS, 'chat.anon');
    closeLogin();
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
    takeRef(f.ref);
    const room = state.rooms.get(str(f.room));
    if (!room) return;
    room.joined = true;
    if (f.recovered === false) addGap(room); /* the node could not replay what we missed */
  },
  left(f) { takeRef(f.ref); },
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
    const seen = room.byId.get(id);
    if (seen) { /* own message already confirmed by its ack: take the server's nick from the event */
      if (seen.kind === 'msg' && seen.nick !== nick) { seen.nick = nick; seen.v++; }
      return;
    }
    /* prev: the room's message before this one; not the newest we hold: some went missing */
    const last = lastSeq(room), seq = int(f.seq), prev = int(f.prev);
    if (Number.isInteger(prev) && last >= 0 && prev !== last && Number.isInteger(seq) && seq > last) addGap(room);
    const mine = own ? state.pending.get(str(f.client_msg_id)) : undefined;
    if (mine) { mine.nick = nick; return confirmMsg(mine, id, seq, f.ts); }
    insertMsg(room, makeMsg({ id, seq: int(f.seq), ts: validTs(f.ts), user, nick, text: str(f.text), own, room: room.id }));
    if (own) return;
    if (room.id !== state.active || document.hidden) room.unread++;
    if (room.id === state.active) state.announce.push({ nick, text: str(f.text), room: room.id });
  },
  presence(f) {
    const p = { users: int(f.users) ?? 0, conns: int(f.conns) ?? 0 };
    if (f.scope === 'total') state.totals = p;
    else if (f.scope === 'room' && state.rooms.has(str(f.room))) state.rooms.get(str(f.room)).presence = p;
  },
  error(f) {
    const code = str(f.code), message = str(f.message), ref = takeRef(f.ref);
    if (ref && ref.kind === 'join') return joinFailed(ref.data, code, message);
    if (ref && ref.kind === 'auth') return authRefused(code, message);
    if (ref) return; /* a leave we no longer care about */
    const m = state.pending.get(str(f.client_msg_id));
    if (m) return failMsg(m, code, message, int(f.retry_ms));
    if (code === 'bad_token' || code === 'token_expired' || code === 'session_revoked') return authRefused(code, message);
    state.notice = `Server error (${code || 'unknown'}): ${errorText(code, message)}`;
  },
  bye(f) {
    net.fast = true; /* this node is going away: reconnect at once (the balancer picks another) */
    state.notice = 'The server node is shutting down: ' + (str(f.reason) || 'reconnecting') + '.';
  },
  pong() { /* lastRx is enough */ },
});
function onFrame(sock, data) {
  if (sock !== net.ws) return;
  net.lastRx = Date.now();
  const f = decodeFrame(data);
  if (!f || !handlers[f.type]) return;
  handlers[f.type](f);
  update();
}

/* ---- connection lifecycle ---- */
export function connect() {
  clearTimeout(net.timers.retry);
  if (net.ws) return;
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  let sock;
  try { sock = new WebSocket(url); } catch { scheduleReconnect(); update(); return; }
  Object.assign(net, { ws: sock, hello: false, fast: false, lastRx: Date.now(), pingAt: 0 });
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
  for (const room of state.rooms.values()) Object.assign(room, { joined: false, presence: null });
  for (const m of state.pending.values()) failMsg(m, 'connection_lost');
  Object.assign(state, { totals: null, authPending: false });
  if (ev.code === 4001) authRefused('bad_token', '');
  scheduleReconnect();
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
