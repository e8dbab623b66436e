/* chatcluster web client: vanilla JS, no build step, no dependencies.
 *
 * Layers: storage helpers, one `state` object, the WebSocket protocol (`net` + frame handlers),
 * accounts and sessions (REST, `auth`), actions that change the state, and a render layer that
 * draws the state into the DOM (batched per animation frame). Everything the server sends is
 * untrusted: it reaches the DOM only as text nodes (textContent / append(string)), never as HTML. */
'use strict';

/* ---- storage (may be disabled: every access is guarded) ---- */
const LS = 'localStorage';
const SS = 'sessionStorage';
const store = {
  get(area, key) { try { return window[area].getItem(key); } catch { return null; } },
  set(area, key, value) { try { window[area].setItem(key, value); } catch { /* storage off */ } },
  del(area, key) { try { window[area].removeItem(key); } catch { /* storage off */ } },
};
/* Whether localStorage really works (it throws when disabled, and in some private modes). */
const lsOk = (() => {
  try {
    window.localStorage.setItem('chat.probe', '1');
    window.localStorage.removeItem('chat.probe');
    return true;
  } catch { return false; }
})();

/* ---- theme: applied right away (this file is loaded in <head>) to avoid a flash ---- */
const THEME_KEY = 'chat.theme';
const darkQuery = window.matchMedia('(prefers-color-scheme: dark)');
function storedTheme() {
  const t = store.get(LS, THEME_KEY);
  return t === 'light' || t === 'dark' ? t : 'auto';
}
function effectiveTheme(t) { return t === 'auto' ? (darkQuery.matches ? 'dark' : 'light') : t; }
function applyTheme(t) {
  if (t === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.setAttribute('data-theme', t);
}
applyTheme(storedTheme());

/* ---- constants ---- */
const DEFAULT_LIMITS = Object.freeze({ max_frame: 8192, max_text: 2000, max_rooms: 64, rate_per_s: 20, rate_burst: 40 });
const DEFAULT_ROOM_RULE = '^[A-Za-z0-9_.-]{1,64}$';
const DEFAULT_ROOM = 'lobby';
const MAX_MSGS = 500; /* per room; the oldest settled messages are dropped first */
const BACKOFF_BASE_MS = 500, BACKOFF_MAX_MS = 30000;
const STABLE_MS = 30000; /* a connection that lived this long resets the backoff */
const HELLO_TIMEOUT_MS = 10000;
const PING_MS = 25000; /* app-level ping; no frame at all since the last ping = dead socket */
const TOKEN_MAX = 4096;
const REFRESH_KEY = 'chat.refresh'; /* localStorage: the refresh token (see "accounts & sessions") */
const LOCK_KEY = 'chat.refresh.lock'; /* localStorage lease, only where the Web Locks API is missing */
const API_TIMEOUT_MS = 15000;
const LOCK_SETTLE_MS = 100; /* see refreshSession */
const RENEW_MARGIN_MS = 30000; /* an access token this close to its expiry is renewed before use */
const RENEW_RETRY_MS = 5000, RENEW_RETRY_MAX_MS = 60000; /* refresh failed for a transient reason */
const LOGINS_PAGE = 20;
/* Same rules as the server; replaced by GET /api/v1/config "rules" when it answers. */
const DEFAULT_RULES = Object.freeze({
  username: { re: /^[A-Za-z0-9_]{4,20}$/, min: 4, max: 20 },
  nickname: { min: 2, max: 20 },
  password: { min: 8, max: 128, letter: true, digit: true },
});
/* The server's White_Space set for trimming nicknames (not quite String.prototype.trim's). */
const NICK_TRIM_RE = /^[\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+|[\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+$/g;
const CONTROL_RE = /[\u0000-\u001F\u007F-\u009F]/; /* C0, DEL, C1 */
const BIDI_RE = /[\u202A-\u202E\u2066-\u2069]/;
/* "letter" as the server counts it: A-Za-z, or any non-space code point from U+0080 up */
const PW_LETTER_RE = /[A-Za-z]|[^\u0000-\u007F\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]/;
/* Why a session ended: session_revoked reasons, and the client's own causes. */
const SIGNOUT_REASONS = Object.assign(Object.create(null), {
  logout: 'the session was signed out (here or on another device)',
  password_changed: 'the account password was changed',
  admin: 'an administrator ended the session',
  refresh_reused: 'an old sign-in token was presented again, so the session was ended for safety',
  expired: 'the session has expired',
  invalid_refresh: 'the session has expired or was ended elsewhere',
  revoked: 'the session was ended',
  bad_token: 'the access token was not accepted',
});
const LOGIN_REASONS = Object.assign(Object.create(null), {
  ok: 'signed in', registered: 'account created', wrong_password: 'wrong password', unknown_user: 'unknown user',
});
/* Friendlier texts for some error codes; for the others the server's own message is shown. */
const ERRORS = Object.assign(Object.create(null), {
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
});
function errorText(code, fallback) { return ERRORS[code] || fallback || 'Unexpected error.'; }

/* ---- state: the single source of truth the render layer draws ---- */
const state = {
  limits: { ...DEFAULT_LIMITS },
  roomRule: new RegExp(DEFAULT_ROOM_RULE),
  conn: { status: 'connecting', node: '', retryAt: 0 },
  token: '', /* the access token: in memory only (see "accounts & sessions") */
  anon: store.get(SS, 'chat.anon') === '1', /* chose to watch anonymously */
  user: null, /* the connection's identity: the token's sub (a user id), null = anonymous */
  nick: '', exp: 0, authPending: false,
  account: null, /* the signed-in user object from the REST API; null for guests and pasted tokens */
  refreshing: false, /* POST /auth/refresh in flight */
  rules: { username: { ...DEFAULT_RULES.username }, nickname: { ...DEFAULT_RULES.nickname },
    password: { ...DEFAULT_RULES.password } },
  authNotice: '', authOffer: false, /* "Signed out: <reason>" and whether to offer a new sign-in */
  signin: { tab: 'login', busy: false, status: '', tokenError: '',
    login: { error: '', field: '', until: 0 }, register: { error: '', field: '', until: 0 } },
  acct: { gen: 0, busy: '', load: '', loadErr: false, nickMsg: '', nickErr: false, pwMsg: '', pwErr: false,
    pwField: '', msg: '', msgErr: false, logins: [], next: null, loading: false, loaded: false, loginsErr: '' },
  totals: null, /* {users, conns} from presence scope total */
  rooms: new Map(), /* id -> room (insertion order = list order) */
  active: '',
  pending: new Map(), /* client_msg_id -> own message waiting for its ack */
  cooldownUntil: 0, notice: '', joinError: '', announce: [],
  navOpen: false, stickBottom: true, showJump: false, theme: storedTheme(),
};

/* connection bookkeeping that the UI never draws */
const net = { ws: null, hello: false, helloCount: 0, fast: false, attempt: 0, openedAt: 0,
  lastRx: 0, pingAt: 0, refs: new Map(), refSeq: 0, timers: {} };
let msgOrder = 0;
let ui = null;

/* ---- small helpers ---- */
const int = (v) => (Number.isSafeInteger(v) ? v : null);
const str = (v) => (typeof v === 'string' ? v : '');
const fmtNum = (n) => Number(n).toLocaleString();
const validTs = (v) => (Number.isSafeInteger(v) && Math.abs(v) < 8.64e15 ? v : Date.now());
function validRoom(id) { return typeof id === 'string' && id.length <= 64 && state.roomRule.test(id); }
function activeRoom() { return state.rooms.get(state.active) || null; }
function isOpen() { return !!net.ws && net.ws.readyState === WebSocket.OPEN && net.hello; }
function codePoints(s) { return [...s].length; }
/* No lone surrogate halves (they cannot be sent as UTF-8). */
function wellFormed(s) { return !/[\uD800-\uDFFF]/.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')); }
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
/* Server messages are lower-case phrases ("wrong username or password"): make them sentences. */
function sentence(t) {
  const s = str(t).trim();
  if (!s) return '';
  return s[0].toUpperCase() + s.slice(1) + (/[.!?]$/.test(s) ? '' : '.');
}
const plural = (n, one, many) => `${fmtNum(n)} ${n === 1 ? one : many}`;
function newCmid() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return 'c' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
/* What will be sent: CR/LF normalised, control characters (other than \n, \t) and lone
 * surrogates removed, surrounding blank space trimmed. */
function cleanText(s) {
  return s.replace(/\r\n?/g, '\n')
    .replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g, '')
    .replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]|[\uD800-\uDFFF]/g, (m) => (m.length === 2 ? m : '\uFFFD'))
    .replace(/^\s*\n/, '').trimEnd();
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function button(cls, text, action) {
  const b = el('button', cls, text);
  b.type = 'button';
  b.dataset.action = action;
  return b;
}

/* ---- rooms & messages (pure state changes) ---- */
function newRoom(id) { return { id, joined: false, presence: null, msgs: [], byId: new Map(), unread: 0, draft: '' }; }
function loadRooms() {
  let ids = null;
  try { ids = JSON.parse(store.get(LS, 'chat.rooms') || 'null'); } catch { ids = null; }
  if (!Array.isArray(ids)) ids = [DEFAULT_ROOM];
  for (const id of ids) if (validRoom(id) && state.rooms.size < state.limits.max_rooms) state.rooms.set(id, newRoom(id));
  const active = store.get(LS, 'chat.active');
  state.active = state.rooms.has(active) ? active : (state.rooms.keys().next().value || '');
}
function saveRooms() {
  store.set(LS, 'chat.rooms', JSON.stringify([...state.rooms.keys()]));
  store.set(LS, 'chat.active', state.active);
}
function makeMsg(fields) {
  const n = ++msgOrder;
  return { kind: 'msg', key: 'm' + n, order: n, v: 0, id: '', seq: null, ts: Date.now(), user: '',
    nick: '', text: '', own: false, status: 'confirmed', code: '', detail: '', cmid: '', room: '', ...fields };
}
/* Per room: ordered by seq (the room's Kafka offset); messages without one (own, unacked) last. */
function cmpMsg(a, b) {
  const sa = a.seq ?? Infinity, sb = b.seq ?? Infinity;
  return sa < sb ? -1 : sa > sb ? 1 : a.order - b.order;
}
function insertMsg(room, m) {
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
function removeMsg(room, m) {
  const i = room.msgs.indexOf(m);
  if (i >= 0) room.msgs.splice(i, 1);
  if (m.id && room.byId.get(m.id) === m) room.byId.delete(m.id);
}
/* Just after the newest stored message: where a gap marker or a refused message belongs. */
function anchorSeq(room) {
  let max = -1;
  for (const m of room.msgs) if (Number.isInteger(m.seq) && m.seq > max) max = m.seq;
  return max + 0.5;
}
/* After a reconnect: mark where messages may be missing (there is no history API yet). */
function addGap(room) {
  const seq = anchorSeq(room);
  if (seq < 0 || room.msgs.some((m) => m.kind === 'gap' && m.seq === seq)) return;
  insertMsg(room, { kind: 'gap', key: 'g' + (++msgOrder), order: msgOrder, v: 0, seq, status: 'gap' });
}
function confirmMsg(m, id, seq, ts) {
  const room = state.rooms.get(m.room);
  state.pending.delete(m.cmid);
  if (!room) return;
  removeMsg(room, m);
  if (id && room.byId.has(id)) return; /* already shown */
  Object.assign(m, { id, seq, ts: validTs(ts), status: 'confirmed', code: '', detail: '' });
  m.v++;
  insertMsg(room, m);
}
function failMsg(m, code, message, retryMs) {
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

/* ---- protocol: outgoing ---- */
function send(frame) {
  if (!net.ws || net.ws.readyState !== WebSocket.OPEN) return false;
  net.ws.send(JSON.stringify(frame));
  return true;
}
function newRef(kind, data) {
  const ref = 'r' + (++net.refSeq);
  net.refs.set(ref, { kind, data });
  return ref;
}
function takeRef(ref) {
  const r = typeof ref === 'string' && net.refs.get(ref);
  net.refs.delete(ref);
  return r || null;
}
function sendJoin(id) { send({ type: 'join', room: id, ref: newRef('join', id) }); }
/* The token goes in an auth frame, not in the URL, so it never lands in proxy access logs. */
function sendAuth() {
  state.authPending = send({ type: 'auth', token: state.token, ref: newRef('auth') });
}
function transmit(m) {
  if (!send({ type: 'send', room: m.room, text: m.text, client_msg_id: m.cmid })) failMsg(m, 'connection_lost');
}

/* ---- protocol: incoming ---- */
const handlers = Object.assign(Object.create(null), {
  hello(f) {
    Object.assign(net, { hello: true, helloCount: net.helloCount + 1, openedAt: Date.now() });
    clearTimeout(net.timers.hello);
    applyLimits(f.limits);
    Object.assign(state.conn, { status: 'online', node: str(f.node) });
    Object.assign(state, { notice: '', user: str(f.user) || null });
    if (!state.user) authenticate();
    for (const room of state.rooms.values()) {
      if (net.helloCount > 1) addGap(room);
      sendJoin(room.id);
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
    if (room) room.joined = true;
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
    const mine = own ? state.pending.get(str(f.client_msg_id)) : undefined;
    if (mine) { mine.nick = nick; return confirmMsg(mine, id, int(f.seq), f.ts); }
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
function applyLimits(l) {
  if (!l || typeof l !== 'object') return;
  for (const k of Object.keys(DEFAULT_LIMITS)) if (Number.isSafeInteger(l[k]) && l[k] > 0) state.limits[k] = l[k];
}
function onFrame(sock, data) {
  if (sock !== net.ws) return;
  net.lastRx = Date.now();
  let f;
  try { f = JSON.parse(data); } catch { return; }
  if (!f || typeof f !== 'object' || typeof f.type !== 'string' || !handlers[f.type]) return;
  handlers[f.type](f);
  update();
}

/* ---- connection lifecycle ---- */
function connect() {
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
function drop(sock) {
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
function reconnectNow() {
  Object.assign(net, { fast: true, attempt: 0 });
  if (net.ws) drop(net.ws); else connect();
}
function heartbeat() {
  const s = net.ws;
  if (!s || s.readyState !== WebSocket.OPEN) return;
  if (net.pingAt && net.lastRx < net.pingAt) { drop(s); return; } /* nothing since the last ping */
  net.pingAt = Date.now();
  send({ type: 'ping' });
}

/* ---- accounts & sessions (REST) ----
 * Where the tokens live, and the XSS trade-off:
 *  - the access token (a JWT that lives for minutes) is kept in memory only (state.token): it is
 *    never written to storage, and a reload simply gets a new one;
 *  - the refresh token (valid for weeks) is kept in localStorage, so that a reload or a new tab
 *    stays signed in. The price: any script that manages to run in this origin can read
 *    localStorage, so an XSS bug would leak a long-lived credential. (An HttpOnly cookie would not
 *    leak, but needs CSRF defences and server support that this token-based API does not have.)
 *    What limits the risk: the CSP (script-src 'self': no inline script, no eval), untrusted text
 *    reaching the DOM only as text nodes, refresh tokens that rotate on every use (presenting a
 *    spent one again ends the whole session: refresh_reused), "sign out everywhere", and the
 *    sign-in history in the account panel.
 * All tabs share the refresh token, and each refresh spends it. So refreshes are serialised across
 * tabs (Web Locks, or a localStorage lease where that API is missing) and always read the newest
 * stored token: two tabs presenting the same token would look like a stolen token. */
const auth = { refresh: '', expAt: 0, refreshing: null, renewedAt: 0, retryMs: 0, loggingOut: false, switched: false };

function refreshToken() { return lsOk ? (store.get(LS, REFRESH_KEY) || '') : auth.refresh; }
function keepRefresh(rt) {
  auth.refresh = rt;
  store.set(LS, REFRESH_KEY, rt);
}
/* Forgets rt, but not a newer token that another tab may have stored meanwhile. */
function dropRefresh(rt) {
  if (!rt) return;
  if (auth.refresh === rt) auth.refresh = '';
  if (store.get(LS, REFRESH_KEY) === rt) store.del(LS, REFRESH_KEY);
}

/* One REST call; never throws. Resolves to {ok: true, status, data} or
 * {ok: false, status (0 = no answer), code, message, retryAfter (seconds, for 429)}. */
async function api(method, path, body, token) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (token) headers.Authorization = 'Bearer ' + token;
  if (typeof AbortSignal !== 'undefined' && typeof AbortSignal.timeout === 'function') init.signal = AbortSignal.timeout(API_TIMEOUT_MS);
  let res;
  try { res = await fetch(path, init); } catch {
    return { ok: false, status: 0, code: 'network', retryAfter: null,
      message: 'The server could not be reached. Check the connection and try again.' };
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.ok) return { ok: true, status: res.status, data: data && typeof data === 'object' ? data : {} };
  const e = data && data.error && typeof data.error === 'object' ? data.error : {};
  const ra = Number.parseInt(res.headers.get('Retry-After') || '', 10);
  return { ok: false, status: res.status, code: str(e.code) || `http_${res.status}`,
    message: sentence(e.message) || `The server answered with status ${res.status}.`,
    retryAfter: res.status === 429 && ra >= 0 ? ra : null };
}
/* The server's message; for 429 with the Retry-After wait. */
function apiErrorText(r) {
  if (r.status !== 429) return r.message;
  return r.message + (r.retryAfter !== null ? ` Try again in ${plural(r.retryAfter, 'second', 'seconds')}.` : ' Try again later.');
}
const UNEXPECTED = 'The server gave an unexpected answer.';
function parseUser(u) {
  if (!u || typeof u !== 'object' || !str(u.id)) return null;
  return { id: str(u.id), username: str(u.username), nickname: str(u.nickname) || str(u.username),
    role: str(u.role), createdAt: int(u.created_at) };
}
function parseSession(d) {
  const user = parseUser(d && d.user);
  if (!user || !str(d.access_token)) return null;
  return { access: str(d.access_token), refresh: str(d.refresh_token), expiresIn: int(d.expires_in) || 0, user };
}
function parseLogin(l) {
  if (!l || typeof l !== 'object' || !str(l.id)) return null;
  return { id: str(l.id), at: validTs(l.at), ip: str(l.ip), ua: str(l.user_agent), success: l.success === true,
    reason: str(l.reason) };
}

/* ---- validation: the server's rules (GET /api/v1/config "rules") ---- */
function posInt(v, fallback) { return Number.isSafeInteger(v) && v > 0 ? v : fallback; }
function applyRules(r) {
  if (!r || typeof r !== 'object') return;
  if (str(r.room)) { try { state.roomRule = new RegExp(r.room); } catch { /* keep the default */ } }
  const R = state.rules, u = r.username, n = r.nickname, p = r.password;
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
}
function usernameRule() {
  const r = state.rules.username;
  return `${r.min}-${r.max} characters: letters A-Z, digits and _`;
}
function passwordRule() {
  const r = state.rules.password;
  const need = [r.letter ? 'one letter' : '', r.digit ? 'one digit' : ''].filter(Boolean);
  return `${r.min}-${r.max} characters` + (need.length ? `, with at least ${need.join(' and ')}` : '');
}
function checkUsername(v) {
  const r = state.rules.username, n = codePoints(v);
  if (!v) return 'Enter a username.';
  if (n < r.min || n > r.max || !r.re.test(v)) return `Usernames are ${usernameRule()}.`;
  return '';
}
function trimNick(v) { return v.replace(NICK_TRIM_RE, ''); }
function checkNickname(v) { /* v is trimmed */
  const r = state.rules.nickname, n = codePoints(v);
  if (!wellFormed(v)) return 'The nickname contains an invalid character.';
  if (n < r.min || n > r.max) return `Nicknames are ${r.min}-${r.max} characters (not counting spaces around them).`;
  if (CONTROL_RE.test(v)) return 'Nicknames cannot contain control characters.';
  if (BIDI_RE.test(v)) return 'Nicknames cannot contain text-direction control characters.';
  return '';
}
function checkPassword(v) {
  const r = state.rules.password, n = codePoints(v);
  if (!v) return 'Enter a password.';
  if (!wellFormed(v)) return 'The password contains an invalid character.';
  if (n < r.min || n > r.max || (r.letter && !PW_LETTER_RE.test(v)) || (r.digit && !/[0-9]/.test(v))) {
    return `Passwords are ${passwordRule()}.`;
  }
  if (CONTROL_RE.test(v)) return 'Passwords cannot contain control characters (such as tabs or line breaks).';
  return '';
}

/* ---- sessions ---- */
/* A session object (register, login or refresh): remember it, and sign the connection in with it.
 * A refresh has stored its new refresh token already, under the lock (stored = true): storing it
 * again here could overwrite a newer one from another tab. */
function adoptSession(s, stored = false) {
  const before = state.user;
  Object.assign(state, { token: s.access, account: s.user, nick: s.user.nickname, anon: false,
    authNotice: '', authOffer: false });
  Object.assign(auth, { expAt: s.expiresIn > 0 ? Date.now() + s.expiresIn * 1000 : 0, renewedAt: Date.now(), retryMs: 0 });
  clearTimeout(net.timers.renew);
  if (s.refresh && !stored) keepRefresh(s.refresh);
  store.del(SS, 'chat.anon');
  /* a connection cannot switch users: start a fresh one if it speaks for someone else */
  if (before && before !== s.user.id) { state.user = null; reconnectNow(); } else if (isOpen()) sendAuth();
  update();
}
/* Runs fn while holding the cross-tab refresh lock. */
function withRefreshLock(fn) {
  if (navigator.locks && typeof navigator.locks.request === 'function') return navigator.locks.request('chat.refresh', () => fn());
  return withLease(fn);
}
/* Best effort without Web Locks (e.g. an insecure context): a lease in localStorage. */
async function withLease(fn) {
  const me = newCmid(), deadline = Date.now() + 2 * API_TIMEOUT_MS;
  const lease = () => { try { return JSON.parse(store.get(LS, LOCK_KEY) || 'null'); } catch { return null; } };
  while (lsOk && Date.now() < deadline) {
    const cur = lease();
    if (!cur || typeof cur.until !== 'number' || cur.until < Date.now()) {
      store.set(LS, LOCK_KEY, JSON.stringify({ id: me, until: Date.now() + API_TIMEOUT_MS + 1000 }));
      await sleep(30); /* another tab may have written at the same moment: the last write wins */
      const mine = lease();
      if (mine && mine.id === me) break;
    }
    await sleep(50 + Math.random() * 100);
  }
  try { return await fn(); } finally {
    const cur = lease();
    if (cur && cur.id === me) store.del(LS, LOCK_KEY);
  }
}
/* POST /auth/refresh: at most one at a time (per tab, and across tabs). Resolves to the api()
 * result; on success the new session has been adopted. */
function refreshSession() {
  if (auth.refreshing) return auth.refreshing;
  state.refreshing = true;
  update();
  auth.refreshing = withRefreshLock(async () => {
    /* The lock orders the refreshes, but not the localStorage write of the tab that held it
     * before us: that reaches this tab asynchronously (~1-2 ms in Chromium), so reading at once
     * can return the token that tab has just spent, and presenting that ends the session
     * (refresh_reused). Give the write time to arrive. */
    if (lsOk) await sleep(LOCK_SETTLE_MS);
    const rt = refreshToken(); /* the newest: another tab may have rotated it */
    if (!rt) return { ok: false, status: 401, code: 'invalid_refresh', message: 'Not signed in.', retryAfter: null };
    const r = await api('POST', '/api/v1/auth/refresh', { refresh_token: rt });
    if (!r.ok) {
      if (r.status === 401) dropRefresh(rt); /* unknown, expired, revoked or reused: useless now */
      return r;
    }
    const s = parseSession(r.data);
    if (!s) return { ok: false, status: 0, code: 'bad_answer', message: UNEXPECTED, retryAfter: null };
    if (s.refresh) keepRefresh(s.refresh); /* before the lock is released: the next tab needs it */
    else dropRefresh(rt); /* spent */
    return { ...r, session: s };
  }).catch(() => ({ ok: false, status: 0, code: 'error', message: 'The session could not be renewed.', retryAfter: null }))
    .then((r) => {
      auth.refreshing = null;
      state.refreshing = false;
      if (r.ok) adoptSession(r.session, true);
      update();
      return r;
    });
  return auth.refreshing;
}
/* A new access token from the refresh token; adoptSession then re-authenticates the socket.
 * A 401 ends the session; other failures (offline, 5xx, 429) are retried with a growing delay. */
async function renew() {
  clearTimeout(net.timers.renew);
  const r = await refreshSession();
  if (r.ok || auth.loggingOut) return r;
  if (r.status === 401 || r.status === 400) {
    signedOut(r.code === 'refresh_reused' ? 'refresh_reused' : 'invalid_refresh');
  } else if (refreshToken()) {
    auth.retryMs = Math.min(RENEW_RETRY_MAX_MS, Math.max(RENEW_RETRY_MS, auth.retryMs * 2));
    const wait = Math.max(auth.retryMs, (r.retryAfter ?? 0) * 1000);
    state.authNotice = `Could not renew the session: ${apiErrorText(r)} Retrying in ${plural(Math.round(wait / 1000), 'second', 'seconds')}.`;
    state.authOffer = false;
    clearTimeout(net.timers.renew);
    net.timers.renew = setTimeout(() => { if (refreshToken()) renew(); }, wait);
    update();
  }
  return r;
}
function tokenStale() { return !state.token || (auth.expAt > 0 && auth.expAt - Date.now() < RENEW_MARGIN_MS); }
/* Signs the connection in: with the access token in hand, or first a renewed one when that is
 * missing or (nearly) expired. */
function authenticate() {
  if (auth.loggingOut) return;
  if (tokenStale() && refreshToken()) { renew(); return; }
  if (state.token && isOpen()) sendAuth();
}
/* A REST call with the access token (renewed first when stale, and once more on token_expired). */
async function authedFetch(method, path, body) {
  if (tokenStale() && refreshToken()) {
    const rr = await renew();
    if (!rr.ok) return rr;
  }
  if (!state.token) return { ok: false, status: 401, code: 'auth_required', message: 'Sign in first.', retryAfter: null };
  let r = await api(method, path, body, state.token);
  if (r.status === 401 && r.code === 'token_expired' && refreshToken()) {
    const rr = await renew();
    if (!rr.ok) return rr;
    r = await api(method, path, body, state.token);
  }
  if (r.status === 401 && !auth.loggingOut && state.account) {
    if (r.code === 'session_revoked') signedOut('revoked');
    else if (r.code === 'token_expired' || r.code === 'bad_token') signedOut(r.code === 'bad_token' ? 'bad_token' : 'expired');
  }
  return r;
}
/* Forget the session in this tab (the server is not told). */
function clearSession() {
  clearTimeout(net.timers.renew);
  dropRefresh(auth.refresh);
  Object.assign(auth, { refresh: '', expAt: 0, retryMs: 0 });
  Object.assign(state, { token: '', account: null, user: null, nick: '', authPending: false });
  resetAccountPanel();
}
/* The session is over (revoked, expired beyond renewal, or refused): back to guest mode, say why,
 * offer a new sign-in. */
function signedOut(reason) {
  if (ui && state.account && !ui.loginUsername.value) ui.loginUsername.value = state.account.username; /* for "sign in again" */
  clearSession();
  Object.assign(state, { authNotice: `Signed out: ${SIGNOUT_REASONS[reason] || reason}.`, authOffer: true });
  closeAccount();
  update();
}
/* The server refused our auth frame. */
function authRefused(code, message) {
  state.authPending = false;
  const justRenewed = Date.now() - auth.renewedAt < 10000;
  if ((code === 'token_expired' || code === 'bad_token') && refreshToken() && !justRenewed) { renew(); return; }
  if (code === 'bad_field' && state.token && !auth.switched) {
    /* "a connection cannot switch to another user": start a fresh (anonymous) one */
    auth.switched = true;
    state.user = null;
    reconnectNow();
    return;
  }
  if (code === 'session_revoked') { signedOut('revoked'); return; }
  if (state.account) { signedOut(code === 'token_expired' ? 'expired' : 'bad_token'); return; }
  /* a pasted token: say why in the sign-in dialog */
  clearSession();
  state.signin.tokenError = errorText(code, message);
  openLogin('login');
}

/* ---- sign-in panel ---- */
const SIGNIN_FIELDS = ['loginUsername', 'loginPassword', 'regUsername', 'regPassword', 'regNickname'];
const FIELD_OF_CODE = Object.assign(Object.create(null), {
  invalid_username: 'regUsername', username_taken: 'regUsername', invalid_password: 'regPassword',
  invalid_nickname: 'regNickname', invalid_credentials: 'loginPassword',
});
function readSignin(kind) {
  if (kind === 'login') {
    const username = ui.loginUsername.value.trim(), password = ui.loginPassword.value;
    const error = !username ? 'Enter your username.' : checkUsername(username);
    if (error) return { error, field: 'loginUsername' };
    if (!password) return { error: 'Enter your password.', field: 'loginPassword' };
    return { body: { username, password } };
  }
  const username = ui.regUsername.value.trim(), password = ui.regPassword.value, nickname = trimNick(ui.regNickname.value);
  let error = checkUsername(username);
  if (error) return { error, field: 'regUsername' };
  if ((error = checkPassword(password))) return { error, field: 'regPassword' };
  if (nickname && (error = checkNickname(nickname))) return { error, field: 'regNickname' };
  return { body: nickname ? { username, password, nickname } : { username, password } };
}
async function signIn(kind) {
  const si = state.signin, form = si[kind];
  if (si.busy || form.until > Date.now()) return;
  const input = readSignin(kind);
  Object.assign(form, { error: input.error || '', field: input.field || '' });
  if (input.error) { update(); ui[input.field].focus(); return; }
  Object.assign(si, { busy: true, status: kind === 'login' ? 'Signing in…' : 'Creating your account…' });
  update();
  const r = await api('POST', `/api/v1/auth/${kind}`, input.body);
  const s = r.ok ? parseSession(r.data) : null;
  Object.assign(si, { busy: false, status: '' });
  if (s) {
    for (const f of [ui.loginPassword, ui.regUsername, ui.regPassword, ui.regNickname]) f.value = '';
    closeLogin();
    adoptSession(s);
    return;
  }
  Object.assign(form, { error: r.ok ? UNEXPECTED : r.message, field: r.ok ? '' : FIELD_OF_CODE[r.code] || '',
    until: r.status === 429 ? Date.now() + Math.max(1, r.retryAfter ?? 1) * 1000 : 0 });
  if (r.code === 'invalid_credentials') ui.loginPassword.value = '';
  update();
  if (form.field) ui[form.field].focus();
}
function signinCooling() { return state.signin.login.until > Date.now() - 1000 || state.signin.register.until > Date.now() - 1000; }
function selectTab(tab, focus) {
  state.signin.tab = tab;
  renderLogin();
  if (focus) (tab === 'register' ? ui.tabRegister : ui.tabLogin).focus();
}
/* A token pasted by a developer (chatctl token): no account, no refresh. */
function useToken(token) {
  clearSession();
  Object.assign(state, { token, anon: false, authNotice: '', authOffer: false });
  state.signin.tokenError = '';
  auth.renewedAt = Date.now();
  /* a connection cannot switch users: start a fresh one if it already has an identity */
  if (state.user) { state.user = null; reconnectNow(); } else if (isOpen()) sendAuth();
  update();
}

/* ---- account panel ---- */
function resetAccountPanel() {
  const a = state.acct;
  Object.assign(a, { gen: a.gen + 1, busy: '', load: '', loadErr: false, nickMsg: '', nickErr: false, pwMsg: '',
    pwErr: false, pwField: '', msg: '', msgErr: false, logins: [], next: null, loading: false, loaded: false, loginsErr: '' });
}
function openAccount() {
  if (!ui || !state.account) return;
  resetAccountPanel();
  ui.nickInput.value = state.account.nickname;
  ui.pwUsername.value = state.account.username; /* for password managers */
  for (const f of [ui.pwCurrent, ui.pwNew, ui.pwRepeat]) f.value = '';
  if (!ui.accountDialog.open) ui.accountDialog.showModal();
  update();
  loadMe();
  loadLogins(true);
}
function closeAccount() { if (ui && ui.accountDialog.open) ui.accountDialog.close(); }
async function loadMe() {
  const a = state.acct, gen = a.gen;
  const r = await authedFetch('GET', '/api/v1/users/me');
  if (gen !== a.gen) return;
  const u = r.ok ? parseUser(r.data) : null;
  if (u) {
    if (state.account && ui.nickInput.value === state.account.nickname) ui.nickInput.value = u.nickname;
    Object.assign(state, { account: u, nick: u.nickname });
  } else Object.assign(a, { load: r.ok ? UNEXPECTED : apiErrorText(r), loadErr: true });
  update();
}
async function loadLogins(first) {
  const a = state.acct, gen = a.gen;
  if (a.loading) return;
  const before = first ? null : a.next;
  Object.assign(a, { loading: true, loginsErr: '' });
  update();
  const r = await authedFetch('GET', `/api/v1/users/me/logins?limit=${LOGINS_PAGE}` + (before ? `&before=${encodeURIComponent(before)}` : ''));
  if (gen !== a.gen) return;
  a.loading = false;
  const list = r.ok && Array.isArray(r.data.logins) ? r.data.logins : null;
  if (list) {
    const seen = new Set(a.logins.map((l) => l.id));
    for (const l of list.map(parseLogin)) if (l && !seen.has(l.id)) { seen.add(l.id); a.logins.push(l); }
    Object.assign(a, { next: str(r.data.next_before) || null, loaded: true });
  } else a.loginsErr = r.ok ? UNEXPECTED : apiErrorText(r);
  update();
}
async function changeNickname() {
  const a = state.acct;
  if (a.busy) return;
  const nickname = trimNick(ui.nickInput.value);
  const error = checkNickname(nickname);
  if (error) { Object.assign(a, { nickMsg: error, nickErr: true }); update(); ui.nickInput.focus(); return; }
  Object.assign(a, { busy: 'nick', nickMsg: 'Saving…', nickErr: false });
  update();
  const r = await authedFetch('POST', '/api/v1/users/me/nickname', { nickname });
  a.busy = '';
  const u = r.ok ? parseUser(r.data) : null;
  if (u) {
    Object.assign(state, { account: u, nick: u.nickname });
    ui.nickInput.value = u.nickname;
    Object.assign(a, { nickMsg: `Saved: your messages now show “${u.nickname}”.`, nickErr: false });
  } else Object.assign(a, { nickMsg: r.ok ? UNEXPECTED : apiErrorText(r), nickErr: true });
  update();
}
async function changePassword() {
  const a = state.acct;
  if (a.busy) return;
  const current = ui.pwCurrent.value, next = ui.pwNew.value;
  let error = '', field = '';
  if (!current) [error, field] = ['Enter your current password.', 'pwCurrent'];
  else if ((error = checkPassword(next))) field = 'pwNew';
  else if (next !== ui.pwRepeat.value) [error, field] = ['The two new passwords differ.', 'pwRepeat'];
  if (error) { Object.assign(a, { pwMsg: error, pwErr: true, pwField: field }); update(); ui[field].focus(); return; }
  Object.assign(a, { busy: 'pw', pwMsg: 'Changing the password…', pwErr: false, pwField: '' });
  update();
  const r = await authedFetch('POST', '/api/v1/users/me/password', { current_password: current, new_password: next });
  a.busy = '';
  if (r.ok) {
    for (const f of [ui.pwCurrent, ui.pwNew, ui.pwRepeat]) f.value = '';
    const n = int(r.data.revoked_sessions) ?? 0;
    a.pwMsg = 'Password changed. ' + (n === 0 ? 'No other session was signed in.'
      : n === 1 ? '1 other session was signed out.' : `${fmtNum(n)} other sessions were signed out.`);
    a.pwErr = false;
  } else {
    Object.assign(a, { pwMsg: apiErrorText(r), pwErr: true,
      pwField: r.code === 'wrong_password' ? 'pwCurrent' : r.code === 'invalid_password' ? 'pwNew' : '' });
  }
  update();
  if (a.pwField) ui[a.pwField].focus();
}
/* Signs out on the server (this session, or every session of the account), then locally. */
async function logout(all = false) {
  if (auth.loggingOut) return;
  const a = state.acct;
  auth.loggingOut = true;
  Object.assign(a, { busy: all ? 'all' : 'one', msg: 'Signing out…', msgErr: false });
  update();
  let r = null;
  if (state.account) r = await authedFetch('POST', '/api/v1/auth/logout', all ? { all: true } : {});
  if (r && !r.ok && r.status !== 401) { /* not signed out on the server: keep the session, say so */
    auth.loggingOut = false;
    Object.assign(a, { busy: '', msg: `Could not sign out: ${apiErrorText(r)}`, msgErr: true });
    if (!ui.accountDialog.open) Object.assign(state, { authNotice: a.msg, authOffer: false });
    update();
    return;
  }
  const n = r && r.ok ? int(r.data.revoked_sessions) : null;
  clearSession();
  Object.assign(state, { anon: true, authOffer: false,
    authNotice: all && n !== null ? `Signed out everywhere: ${plural(n, 'session', 'sessions')} ended.` : '' });
  store.set(SS, 'chat.anon', '1');
  closeAccount();
  reconnectNow(); /* a fresh, anonymous connection (frames of the old one are ignored from now on) */
  auth.loggingOut = false;
  update();
}

/* ---- actions (user intent -> state, then render) ---- */
function selectRoom(id) {
  if (activeRoom()) activeRoom().draft = ui.composerInput.value;
  state.active = state.rooms.has(id) ? id : (state.rooms.keys().next().value || '');
  const room = activeRoom();
  if (room) room.unread = 0;
  ui.composerInput.value = room ? room.draft : '';
  Object.assign(state, { navOpen: false, showJump: false });
  saveRooms();
  autosize();
  update();
}
function joinRoom(name) {
  const id = name.trim(), known = state.rooms.has(id);
  state.joinError = !validRoom(id) ? ERRORS.bad_room : !known && state.rooms.size >= state.limits.max_rooms
    ? `You can be in at most ${state.limits.max_rooms} rooms. Leave one first.` : '';
  if (state.joinError) { update(); return; }
  if (!known) {
    state.rooms.set(id, newRoom(id));
    if (isOpen()) sendJoin(id);
  }
  ui.joinInput.value = '';
  selectRoom(id);
}
function joinFailed(id, code, message) {
  const room = state.rooms.get(id);
  if (room && !room.joined) {
    state.rooms.delete(id);
    if (state.active === id) selectRoom('');
    saveRooms();
  }
  state.joinError = `Could not join #${id}: ${errorText(code, message)}`;
}
function leaveRoom(id) {
  const room = state.rooms.get(id);
  if (!room) return;
  if (isOpen() && room.joined) send({ type: 'leave', room: id, ref: newRef('leave', id) });
  for (const m of room.msgs) if (m.cmid) state.pending.delete(m.cmid);
  state.rooms.delete(id);
  if (state.active === id) selectRoom('');
  saveRooms();
  ui.joinInput.focus();
  update();
}
function sendBlock(room, text) {
  if (!state.user) return state.authPending || state.refreshing ? 'signing' : 'anon';
  if (!room) return 'noroom';
  if (!isOpen()) return 'offline';
  if (!room.joined) return 'joining';
  if (Date.now() < state.cooldownUntil) return 'cooldown';
  if (!text.trim()) return 'empty';
  if (codePoints(text) > state.limits.max_text) return 'long';
  const frame = JSON.stringify({ type: 'send', room: room.id, text, client_msg_id: 'c'.repeat(25) });
  if (new TextEncoder().encode(frame).length > state.limits.max_frame) return 'big';
  return '';
}
/* Shows a new own message as pending (or reuses a refused one) and sends it. */
function sendMessage(room, m) {
  Object.assign(m, { status: 'pending', code: '', detail: '', cmid: newCmid(), order: ++msgOrder, seq: null, ts: Date.now() });
  m.v++;
  insertMsg(room, m);
  state.pending.set(m.cmid, m);
  transmit(m);
  state.stickBottom = true;
  update();
}
function submitMessage() {
  const room = activeRoom(), text = cleanText(ui.composerInput.value);
  if (sendBlock(room, text)) { update(); return; }
  sendMessage(room, makeMsg({ room: room.id, user: state.user, nick: state.nick || state.user, text, own: true }));
  ui.composerInput.value = room.draft = '';
  autosize();
}
function retryMessage(room, m) {
  if (sendBlock(room, m.text)) { ui.composerInput.focus(); update(); return; }
  removeMsg(room, m);
  sendMessage(room, m);
}
function chooseAnon() {
  if (state.token) logout();
  state.anon = true;
  store.set(SS, 'chat.anon', '1');
  closeLogin();
  update();
}
function toggleTheme() {
  const next = effectiveTheme(state.theme) === 'dark' ? 'light' : 'dark';
  /* back to following the system when the choice matches it */
  state.theme = next === effectiveTheme('auto') ? 'auto' : next;
  if (state.theme === 'auto') store.del(LS, THEME_KEY); else store.set(LS, THEME_KEY, state.theme);
  applyTheme(state.theme);
  update();
}
function openLogin(tab) {
  if (!ui) return;
  if (tab === 'login' || tab === 'register') state.signin.tab = tab;
  if (!ui.loginDialog.open) ui.loginDialog.showModal();
  renderLogin(); /* the chosen form must be visible before it can take the focus */
  if (state.signin.tab === 'register') ui.regUsername.focus();
  else (ui.loginUsername.value ? ui.loginPassword : ui.loginUsername).focus();
}
function closeLogin() { if (ui && ui.loginDialog.open) ui.loginDialog.close(); }
async function fetchConfig() {
  try {
    const res = await fetch('/api/v1/config', { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) return;
    const cfg = await res.json();
    applyLimits(cfg && cfg.limits);
    applyRules(cfg && cfg.rules);
    update();
  } catch { /* offline or not a chat gateway: the defaults and hello limits apply */ }
}

/* ---- render layer ---- */
let renderQueued = false;
function update() {
  if (renderQueued || !ui) return;
  renderQueued = true;
  const run = () => { if (renderQueued) { renderQueued = false; render(); } };
  requestAnimationFrame(run);
  setTimeout(run, 250); /* animation frames pause in background tabs; the title should not */
}
function render() {
  for (const part of [renderHeader, renderRooms, renderRoomHead, renderMessages, renderComposer, renderLogin, renderAccount,
    renderAnnouncements]) part();
  const unread = [...state.rooms.values()].reduce((n, r) => n + r.unread, 0);
  document.title = (unread ? `(${unread}) ` : '') + (state.active ? `#${state.active} - ` : '') + 'chatcluster';
}
function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
function renderHeader() {
  const c = state.conn;
  ui.conn.dataset.state = c.status;
  setText(ui.connText, c.status === 'online' ? 'Online' : c.status === 'connecting' ? 'Connecting…' : 'Offline');
  setText(ui.connNode, c.status === 'online' && c.node ? `· ${c.node}` : '');
  ui.totals.hidden = !state.totals;
  if (state.totals) setText(ui.totals, `${fmtNum(state.totals.users)} users · ${fmtNum(state.totals.conns)} connections online`);
  const acct = state.user ? state.account : null;
  setText(ui.accountName, acct ? acct.nickname : state.user ? `Signed in as ${state.user}`
    : state.authPending || state.refreshing ? 'Signing in…' : 'Guest');
  const who = acct ? `Signed in as ${acct.nickname} (@${acct.username})` : '';
  if (ui.accountName.title !== who) ui.accountName.title = who;
  ui.accountBtn.hidden = !state.token || !state.account;
  ui.loginBtn.hidden = !!state.token || state.refreshing;
  ui.logoutBtn.hidden = !state.token;
  ui.authBanner.hidden = !state.authNotice;
  setText(ui.authBannerText, state.authNotice);
  ui.authBannerLogin.hidden = !state.authOffer || !!state.token;
  const dark = effectiveTheme(state.theme) === 'dark';
  ui.themeBtn.setAttribute('aria-pressed', String(dark));
  setText(ui.themeIcon, dark ? '\u263E' : '\u2600');
  ui.navToggle.setAttribute('aria-expanded', String(state.navOpen));
  document.body.classList.toggle('nav-open', state.navOpen);
  const offline = c.status === 'offline';
  ui.banner.hidden = !offline && c.status !== 'connecting' && !state.notice;
  setText(ui.bannerText, offline ? 'Offline: reconnecting…' : c.status === 'connecting' ? 'Connecting…' : state.notice);
  const secs = Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000));
  setText(ui.bannerCount, offline && secs > 0 ? `(in ${secs} s)` : '');
  ui.reconnectBtn.hidden = !offline;
  ui.banner.classList.toggle('warn', offline);
}
/* Keyed reconcile: reuses nodes (keeps focus and scroll), moves them into order, drops the rest. */
function reconcile(list, items, keyOf, create, patch) {
  const old = new Map();
  for (const node of list.children) old.set(node.dataset.key, node);
  let cursor = list.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    let node = old.get(key);
    if (node) old.delete(key);
    else { node = create(item); node.dataset.key = key; }
    patch(node, item);
    if (node === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(node, cursor);
  }
  for (const node of old.values()) node.remove();
}
function createRoomItem() {
  const li = el('li', 'room');
  const open = button('room-open', undefined, 'open');
  open.append(el('span', 'room-name'), el('span', 'room-count'), el('span', 'badge'));
  li.append(open, button('icon-btn room-leave', '\u00D7', 'leave'));
  return li;
}
function patchRoomItem(li, room) {
  const [open, leave] = li.children;
  const [name, count, badge] = open.children;
  const active = room.id === state.active;
  li.classList.toggle('active', active);
  if (active) open.setAttribute('aria-current', 'true'); else open.removeAttribute('aria-current');
  setText(name, '#' + room.id);
  setText(count, room.presence ? `${fmtNum(room.presence.users)} online` : !room.joined && isOpen() ? 'joining…' : '');
  count.title = room.presence ? `${room.presence.users} users, ${room.presence.conns} connections` : '';
  const n = room.unread > 99 ? '99+' : room.unread ? String(room.unread) : '';
  badge.hidden = !room.unread;
  if (badge.dataset.n !== n) {
    badge.dataset.n = n;
    badge.replaceChildren(n, n ? el('span', 'sr-only', ' unread') : '');
  }
  leave.setAttribute('aria-label', `Leave #${room.id}`);
  leave.title = `Leave #${room.id}`;
}
function renderRooms() {
  reconcile(ui.roomList, [...state.rooms.values()], (r) => r.id, createRoomItem, patchRoomItem);
  ui.noRooms.hidden = state.rooms.size > 0;
  setText(ui.joinError, state.joinError);
  ui.joinInput.setAttribute('aria-invalid', String(!!state.joinError));
}
function renderRoomHead() {
  const room = activeRoom(), p = room && room.presence;
  setText(ui.roomTitle, room ? '#' + room.id : 'No room');
  setText(ui.roomMeta, p ? `${fmtNum(p.users)} users · ${fmtNum(p.conns)} connections` : room && !room.joined && isOpen() ? 'Joining…' : '');
  ui.empty.hidden = !!(room && room.msgs.length);
  setText(ui.empty, room
    ? `No messages in #${room.id} yet. New messages appear here as they are sent (history is not available yet).`
    : 'Join a room to start chatting.');
}
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
function fmtTime(ts) {
  const d = new Date(ts);
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : `${d.toLocaleDateString()} ${timeFmt.format(d)}`;
}
/* Text with http(s) links turned into anchors, built node by node (never via HTML). */
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
function appendRich(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    const raw = match[0].replace(/[.,;:!?)\]}'"]+$/, '');
    let url = null;
    try { url = new URL(raw); } catch { url = null; }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) continue;
    parent.append(text.slice(last, match.index));
    const a = el('a', null, raw);
    a.href = url.href;
    a.rel = 'noopener noreferrer nofollow ugc';
    a.target = '_blank';
    parent.append(a);
    last = match.index + raw.length;
  }
  parent.append(text.slice(last));
}
function msgChildren(m) {
  if (m.kind === 'gap') return [el('span', 'gap-label', 'Reconnected: messages sent while you were offline are not shown')];
  const meta = el('div', 'meta');
  const nick = el('span', 'nick', m.nick || m.user || 'unknown');
  if (m.user && m.user !== m.nick) nick.title = 'user ' + m.user;
  meta.append(nick);
  if (m.own) meta.append(el('span', 'you', 'you'));
  const time = el('time', 'time', fmtTime(m.ts));
  time.dateTime = new Date(m.ts).toISOString();
  time.title = dateTimeFmt.format(m.ts);
  meta.append(time);
  if (m.status === 'pending') meta.append(el('span', 'state', 'sending…'));
  if (m.status === 'confirmed' && m.own) meta.append(el('span', 'state sent', 'sent'));
  const body = el('p', 'text');
  appendRich(body, m.text);
  if (m.status !== 'failed') return [meta, body];
  const err = el('div', 'err');
  err.append(el('strong', null, `Not sent (${m.code})`), ' ', m.detail, ' ',
    button('btn btn-small', 'Retry', 'retry'), ' ', button('btn btn-small', 'Dismiss', 'dismiss'));
  return [meta, body, err];
}
function patchMsg(node, m) {
  const v = String(m.v);
  if (node.dataset.v === v) return;
  node.dataset.v = v;
  node.className = m.kind === 'gap' ? 'gap' : `msg ${m.status}${m.own ? ' own' : ''}`;
  node.replaceChildren(...msgChildren(m));
}
function atBottom() { const sc = ui.scroller; return sc.scrollHeight - sc.scrollTop - sc.clientHeight < 48; }
let shownRoom = null;
let shownLast = '';
function renderMessages() {
  const room = activeRoom();
  const sc = ui.scroller, bottom = atBottom();
  if (shownRoom !== state.active) {
    ui.messages.replaceChildren();
    shownRoom = state.active;
    state.stickBottom = true;
  }
  const msgs = room ? room.msgs : [];
  reconcile(ui.messages, msgs, (m) => m.key, () => el('li'), patchMsg);
  const lastKey = msgs.length ? msgs[msgs.length - 1].key : '';
  if (bottom || state.stickBottom) sc.scrollTop = sc.scrollHeight;
  /* new messages arrived while scrolled up: offer a jump instead of yanking the view */
  state.showJump = !(bottom || state.stickBottom) && (state.showJump || lastKey !== shownLast);
  state.stickBottom = false;
  shownLast = lastKey;
  ui.jump.hidden = !state.showJump;
}
const HINTS = {
  anon: 'You are watching as a guest. Sign in to send messages.',
  signing: 'Signing in…',
  noroom: 'Join a room to send messages.',
  offline: 'Offline: messages can be sent once the connection is back.',
  long: 'The message is too long.',
  big: 'The message is too large to send.',
};
function renderComposer() {
  const room = activeRoom();
  const text = cleanText(ui.composerInput.value);
  const n = codePoints(text);
  const max = state.limits.max_text;
  setText(ui.counter, `${fmtNum(n)} / ${fmtNum(max)}`);
  ui.counter.classList.toggle('over', n > max);
  const block = sendBlock(room, text);
  const canType = !!state.user && !!room;
  ui.composerInput.disabled = !canType;
  ui.composerInput.placeholder = canType ? `Message #${room.id}` : state.user ? '' : 'Sign in to send messages';
  ui.sendBtn.disabled = !!block;
  let hint = HINTS[block] || '';
  if (block === 'joining') hint = `Joining #${room.id}…`;
  if (block === 'cooldown') hint = `You are sending too fast. Wait ${Math.ceil((state.cooldownUntil - Date.now()) / 1000)} s.`;
  setText(ui.composerHint, hint);
  ui.composerHint.classList.toggle('warn', block === 'long' || block === 'big' || block === 'cooldown');
  ui.composerLogin.hidden = block !== 'anon';
}
function renderLogin() {
  const si = state.signin, reg = si.tab === 'register', now = Date.now(), R = state.rules;
  ui.tabLogin.setAttribute('aria-selected', String(!reg));
  ui.tabRegister.setAttribute('aria-selected', String(reg));
  ui.tabLogin.tabIndex = reg ? -1 : 0;
  ui.tabRegister.tabIndex = reg ? 0 : -1;
  ui.loginForm.hidden = reg;
  ui.registerForm.hidden = !reg;
  for (const [kind, error, submit] of [['login', ui.loginError, ui.loginSubmit], ['register', ui.registerError, ui.registerSubmit]]) {
    const f = si[kind], secs = Math.ceil((f.until - now) / 1000);
    setText(error, f.error + (secs > 0 ? ` Try again in ${plural(secs, 'second', 'seconds')}.` : ''));
    submit.disabled = si.busy || secs > 0;
  }
  const bad = si[si.tab].field;
  for (const key of SIGNIN_FIELDS) ui[key].setAttribute('aria-invalid', String(key === bad));
  setText(ui.tokenError, si.tokenError);
  setText(ui.loginStatus, si.status || (state.refreshing ? 'Signing in…'
    : state.token && !state.user && !isOpen() ? 'Will sign in once connected…' : ''));
  setText(ui.regUsernameHelp, `${usernameRule()}. Not case-sensitive when you sign in.`);
  setText(ui.regPasswordHelp, passwordRule() + '.');
  setText(ui.regNicknameHelp, `The name others see, ${R.nickname.min}-${R.nickname.max} characters. Defaults to the username; you can change it later.`);
}
const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
function setMsg(node, text, isError) {
  setText(node, text);
  node.classList.toggle('error', !!text && isError);
  node.classList.toggle('ok', !!text && !isError);
}
function createLoginRow(l) {
  const tr = el('tr', l.success ? 'ok' : 'fail');
  const time = el('time', null, dateTimeFmt.format(l.at));
  time.dateTime = new Date(l.at).toISOString();
  const when = el('td', 'when');
  when.append(time);
  const ua = el('td', 'ua', l.ua || '—');
  if (l.ua) ua.title = l.ua;
  tr.append(when, el('td', 'ip', l.ip || '—'), ua, el('td', 'result', l.success ? 'Yes' : 'No'),
    el('td', 'reason', LOGIN_REASONS[l.reason] || l.reason || '—'));
  return tr;
}
function renderAccount() {
  if (!ui.accountDialog.open) return;
  const u = state.account, a = state.acct, R = state.rules;
  setText(ui.acctNickname, u ? u.nickname : '');
  setText(ui.acctUsername, u ? '@' + u.username : '');
  setText(ui.acctMeta, u ? [u.role === 'admin' ? 'Administrator' : '',
    u.createdAt !== null ? `Member since ${dateFmt.format(validTs(u.createdAt))}` : '', `User id ${u.id}`].filter(Boolean).join(' · ') : '');
  setMsg(ui.acctLoad, a.load, a.loadErr);
  setText(ui.nickHelp, `${R.nickname.min}-${R.nickname.max} characters. Messages you send from now on carry the new nickname.`);
  setMsg(ui.nickMsg, a.nickMsg, a.nickErr);
  ui.nickInput.setAttribute('aria-invalid', String(a.nickErr));
  ui.nickSubmit.disabled = a.busy === 'nick';
  setText(ui.pwHelp, passwordRule() + '. Your other sessions will be signed out.');
  setMsg(ui.pwMsg, a.pwMsg, a.pwErr);
  for (const key of ['pwCurrent', 'pwNew', 'pwRepeat']) ui[key].setAttribute('aria-invalid', String(a.pwField === key));
  ui.pwSubmit.disabled = a.busy === 'pw';
  reconcile(ui.loginsBody, a.logins, (l) => l.id, createLoginRow, () => {});
  ui.loginsMore.hidden = !a.next;
  ui.loginsMore.disabled = a.loading;
  setText(ui.loginsStatus, a.loading ? 'Loading…' : a.loginsErr || (a.loaded && !a.logins.length ? 'No sign-ins recorded yet.' : ''));
  ui.loginsStatus.classList.toggle('error', !a.loading && !!a.loginsErr);
  setMsg(ui.acctMsg, a.msg, a.msgErr);
  ui.acctLogout.disabled = ui.acctLogoutAll.disabled = a.busy === 'one' || a.busy === 'all';
}
function renderAnnouncements() {
  const list = state.announce.splice(0), first = list[0];
  if (first) setText(ui.announcer, list.length === 1 ? `${first.nick}: ${first.text.slice(0, 200)}` : `${list.length} new messages in #${first.room}`);
}
function autosize() {
  const t = ui.composerInput; /* CSSOM writes are allowed under style-src 'self' (no style attribute markup) */
  t.style.height = 'auto';
  t.style.height = Math.min(t.scrollHeight + 2, 200) + 'px';
}

/* ---- wiring ---- */
/* Every element with an id, as ui.camelCasedId (e.g. #composer-input -> ui.composerInput). */
function collectUi() {
  const map = {};
  for (const node of document.querySelectorAll('[id]')) map[node.id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = node;
  return map;
}
function bindEvents() {
  ui.joinForm.addEventListener('submit', (e) => { e.preventDefault(); joinRoom(ui.joinInput.value); });
  ui.joinInput.addEventListener('input', () => { if (state.joinError) { state.joinError = ''; update(); } });
  ui.roomList.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    const li = btn && btn.closest('li');
    if (!li) return;
    if (btn.dataset.action === 'leave') { leaveRoom(li.dataset.key); return; }
    const overlay = state.navOpen; /* the drawer closes: do not leave focus inside it */
    selectRoom(li.dataset.key);
    if (overlay) ui.chat.focus();
  });
  ui.messages.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    const room = activeRoom();
    const m = btn && room && room.msgs.find((x) => x.key === btn.closest('li').dataset.key);
    if (!m) return;
    if (btn.dataset.action === 'retry') retryMessage(room, m);
    else { removeMsg(room, m); ui.composerInput.focus(); update(); }
  });
  ui.composer.addEventListener('submit', (e) => { e.preventDefault(); submitMessage(); });
  ui.composerInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitMessage(); }
  });
  ui.composerInput.addEventListener('input', () => { autosize(); update(); });
  ui.scroller.addEventListener('scroll', () => { if (state.showJump && atBottom()) { state.showJump = false; update(); } }, { passive: true });
  ui.jump.addEventListener('click', () => { state.stickBottom = true; update(); });
  ui.reconnectBtn.addEventListener('click', reconnectNow);
  ui.loginBtn.addEventListener('click', () => openLogin('login'));
  ui.composerLogin.addEventListener('click', () => openLogin('login'));
  ui.authBannerLogin.addEventListener('click', () => openLogin('login'));
  ui.authBannerClose.addEventListener('click', () => { Object.assign(state, { authNotice: '', authOffer: false }); update(); });
  ui.logoutBtn.addEventListener('click', () => logout(false));
  ui.accountBtn.addEventListener('click', openAccount);
  ui.anonBtn.addEventListener('click', chooseAnon);
  ui.themeBtn.addEventListener('click', toggleTheme);
  ui.navToggle.addEventListener('click', () => { state.navOpen = !state.navOpen; update(); });
  ui.chat.addEventListener('pointerdown', () => { if (state.navOpen) { state.navOpen = false; update(); } });
  /* sign-in panel */
  ui.tabLogin.addEventListener('click', () => selectTab('login', false));
  ui.tabRegister.addEventListener('click', () => selectTab('register', false));
  ui.tabRegister.parentElement.addEventListener('keydown', (e) => { /* tabs: arrows switch, as in a tablist */
    if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) {
      e.preventDefault();
      const reg = e.key === 'End' || (e.key !== 'Home' && state.signin.tab === 'login');
      selectTab(reg ? 'register' : 'login', true);
    }
  });
  ui.loginForm.addEventListener('submit', (e) => { e.preventDefault(); signIn('login'); });
  ui.registerForm.addEventListener('submit', (e) => { e.preventDefault(); signIn('register'); });
  for (const kind of ['login', 'register']) {
    ui[kind + 'Form'].addEventListener('input', () => {
      const f = state.signin[kind];
      if (f.error && f.until <= Date.now()) { Object.assign(f, { error: '', field: '' }); update(); }
    });
  }
  ui.tokenForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = ui.tokenInput.value.trim();
    ui.tokenInput.value = '';
    if (!token) state.signin.tokenError = 'Paste an access token first.';
    else if (token.length > TOKEN_MAX || /\s/.test(token)) state.signin.tokenError = 'That does not look like an access token.';
    else { useToken(token); closeLogin(); }
    update();
  });
  ui.loginDialog.addEventListener('cancel', () => { if (!state.user && !state.token) chooseAnon(); });
  /* account panel */
  ui.accountClose.addEventListener('click', closeAccount);
  ui.accountDialog.addEventListener('close', () => {
    for (const f of [ui.pwCurrent, ui.pwNew, ui.pwRepeat]) f.value = '';
    resetAccountPanel();
  });
  ui.nickForm.addEventListener('submit', (e) => { e.preventDefault(); changeNickname(); });
  ui.nickInput.addEventListener('input', () => { if (state.acct.nickErr) { state.acct.nickMsg = ''; state.acct.nickErr = false; update(); } });
  ui.pwForm.addEventListener('submit', (e) => { e.preventDefault(); changePassword(); });
  ui.pwForm.addEventListener('input', () => { if (state.acct.pwErr) { Object.assign(state.acct, { pwMsg: '', pwErr: false, pwField: '' }); update(); } });
  ui.loginsMore.addEventListener('click', () => loadLogins(false));
  ui.acctLogout.addEventListener('click', () => logout(false));
  ui.acctLogoutAll.addEventListener('click', () => logout(true));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.navOpen) { state.navOpen = false; ui.navToggle.focus(); update(); }
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && activeRoom()) activeRoom().unread = 0;
    update();
  });
  darkQuery.addEventListener('change', update);
  window.addEventListener('online', () => { if (!net.ws) reconnectNow(); });
  window.addEventListener('pagehide', () => { if (net.ws) drop(net.ws); clearTimeout(net.timers.retry); });
  window.addEventListener('pageshow', (e) => { if (e.persisted && !net.ws) reconnectNow(); });
  setInterval(heartbeat, PING_MS);
  setInterval(() => {
    if (state.conn.status === 'offline' || state.cooldownUntil > Date.now() - 1000 || signinCooling()) update();
  }, 1000);
}
async function init() {
  ui = collectUi();
  store.del(SS, 'chat.token'); /* earlier versions kept a pasted token there */
  loadRooms();
  bindEvents();
  fetchConfig();
  autosize();
  update();
  /* A stored refresh token: renew the session first, so the socket can authenticate right away
   * (a 401 ends it with a notice; a transient failure is retried, and hello tries again). */
  if (refreshToken()) await renew();
  else if (!state.anon) openLogin('login');
  connect();
}
document.addEventListener('DOMContentLoaded', init);
