/* chatcluster web client: vanilla JS, no build step, no dependencies.
 *
 * Layers: storage helpers, one `state` object, the WebSocket protocol (`net` + frame handlers),
 * actions that change the state, and a render layer that draws the state into the DOM (batched
 * per animation frame). Everything the server sends is untrusted: it reaches the DOM only as text
 * nodes (textContent / append(string)), never as HTML. */
'use strict';

/* ---- storage (may be disabled: every access is guarded) ---- */
const LS = 'localStorage';
const SS = 'sessionStorage';
const store = {
  get(area, key) { try { return window[area].getItem(key); } catch { return null; } },
  set(area, key, value) { try { window[area].setItem(key, value); } catch { /* storage off */ } },
  del(area, key) { try { window[area].removeItem(key); } catch { /* storage off */ } },
};

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
/* Friendlier texts for some error codes; for the others the server's own message is shown. */
const ERRORS = Object.assign(Object.create(null), {
  auth_required: 'Sign in to send messages.',
  bad_token: 'The token was not accepted (malformed, forged or signed with an unknown key).',
  token_expired: 'The token has expired. Paste a fresh one.',
  bad_room: 'Room names are 1-64 characters: letters, digits, _ . -',
  too_many_rooms: 'You have joined the maximum number of rooms.',
  rate_limited: 'You are sending too fast.',
  overloaded: 'The server is busy. Try again.',
  unavailable: 'The message could not be stored and was not delivered.',
  connection_lost: 'The connection dropped before the server confirmed this message; it may not have been delivered.',
});
function errorText(code, fallback) { return ERRORS[code] || fallback || 'Unexpected error.'; }

/* ---- state: the single source of truth the render layer draws ---- */
const state = {
  limits: { ...DEFAULT_LIMITS },
  roomRule: new RegExp(DEFAULT_ROOM_RULE),
  conn: { status: 'connecting', node: '', retryAt: 0 },
  token: store.get(SS, 'chat.token') || '', /* per tab only */
  anon: store.get(SS, 'chat.anon') === '1', /* chose to watch anonymously */
  user: null, nick: '', exp: 0, expired: false, authPending: false, loginError: '',
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
  if (code === 'token_expired' || code === 'auth_required') authFailed(code, message, false);
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
    if (state.token && !state.user) sendAuth();
    for (const room of state.rooms.values()) {
      if (net.helloCount > 1) addGap(room);
      sendJoin(room.id);
    }
  },
  authed(f) {
    takeRef(f.ref);
    Object.assign(state, { authPending: false, user: str(f.user) || null, exp: int(f.exp) || 0,
      expired: false, loginError: '', anon: false });
    store.del(SS, 'chat.anon');
    clearTimeout(net.timers.expiry);
    const left = state.exp * 1000 - Date.now();
    if (state.exp && left < 2 ** 31 - 1) net.timers.expiry = setTimeout(tokenExpired, Math.max(0, left));
    closeLogin();
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
    if (!room || !id || room.byId.has(id)) return; /* not ours to show, or a duplicate */
    const user = str(f.user), nick = str(f.nick) || user;
    const own = !!state.user && user === state.user;
    if (own) state.nick = nick;
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
    if (ref && ref.kind === 'auth') return authFailed(code, message);
    if (ref) return; /* a leave we no longer care about */
    const m = state.pending.get(str(f.client_msg_id));
    if (m) return failMsg(m, code, message, int(f.retry_ms));
    if (code === 'bad_token' || code === 'token_expired') return authFailed(code, message);
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
  if (ev.code === 4001) authFailed('bad_token', '');
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
  if (!state.user) return state.authPending ? 'signing' : 'anon';
  if (state.expired) return 'expired';
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
function login(token) {
  Object.assign(state, { token, loginError: '' });
  store.set(SS, 'chat.token', token);
  /* a connection cannot switch users: start a fresh one if it already has an identity */
  if (state.user) { state.user = null; reconnectNow(); } else if (isOpen()) sendAuth();
  update();
}
function logout() {
  Object.assign(state, { token: '', user: null, expired: false, anon: true });
  store.del(SS, 'chat.token');
  store.set(SS, 'chat.anon', '1');
  clearTimeout(net.timers.expiry);
  reconnectNow();
}
/* The token is gone (refused, or the server dropped the identity): back to anonymous. */
function authFailed(code, message, ask = true) {
  Object.assign(state, { authPending: false, user: null, expired: false, token: '', loginError: errorText(code, message) });
  store.del(SS, 'chat.token');
  if (ask) openLogin();
}
function tokenExpired() {
  Object.assign(state, { expired: true, loginError: ERRORS.token_expired });
  update();
}
function chooseAnon() {
  if (state.user) logout();
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
function openLogin() {
  if (ui && !ui.loginDialog.open) ui.loginDialog.showModal();
  if (ui) ui.tokenInput.focus();
}
function closeLogin() { if (ui && ui.loginDialog.open) ui.loginDialog.close(); }
async function fetchConfig() {
  try {
    const res = await fetch('/api/v1/config', { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) return;
    const cfg = await res.json();
    applyLimits(cfg && cfg.limits);
    const rule = cfg && cfg.rules && str(cfg.rules.room);
    if (rule) state.roomRule = new RegExp(rule);
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
  for (const part of [renderHeader, renderRooms, renderRoomHead, renderMessages, renderComposer, renderLogin, renderAnnouncements]) part();
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
  const name = state.user ? `Signed in as ${state.user}` : state.authPending ? 'Signing in…' : 'Anonymous';
  setText(ui.accountName, name + (state.expired ? ' (expired)' : ''));
  ui.loginBtn.hidden = !!state.user && !state.expired;
  ui.logoutBtn.hidden = !state.user && !state.token;
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
  if (m.user && m.user !== m.nick) nick.title = '@' + m.user;
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
  anon: 'You are watching anonymously. Sign in with an access token to send messages.',
  signing: 'Signing in…',
  expired: 'Your token has expired. Sign in again to send messages.',
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
  const canType = !!state.user && !state.expired && !!room;
  ui.composerInput.disabled = !canType;
  ui.composerInput.placeholder = canType ? `Message #${room.id}` : state.user ? '' : 'Sign in to send messages';
  ui.sendBtn.disabled = !!block;
  let hint = HINTS[block] || '';
  if (block === 'joining') hint = `Joining #${room.id}…`;
  if (block === 'cooldown') hint = `You are sending too fast. Wait ${Math.ceil((state.cooldownUntil - Date.now()) / 1000)} s.`;
  setText(ui.composerHint, hint);
  ui.composerHint.classList.toggle('warn', block === 'long' || block === 'big' || block === 'cooldown');
  ui.composerLogin.hidden = block !== 'anon' && block !== 'expired';
}
function renderLogin() {
  setText(ui.loginError, state.loginError);
  setText(ui.loginStatus, state.authPending ? 'Signing in…'
    : state.token && !state.user && !isOpen() ? 'Will sign in once connected…' : '');
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
  ui.loginBtn.addEventListener('click', openLogin);
  ui.composerLogin.addEventListener('click', openLogin);
  ui.logoutBtn.addEventListener('click', logout);
  ui.anonBtn.addEventListener('click', chooseAnon);
  ui.themeBtn.addEventListener('click', toggleTheme);
  ui.navToggle.addEventListener('click', () => { state.navOpen = !state.navOpen; update(); });
  ui.chat.addEventListener('pointerdown', () => { if (state.navOpen) { state.navOpen = false; update(); } });
  ui.loginForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = ui.tokenInput.value.trim();
    ui.tokenInput.value = '';
    if (!token) state.loginError = 'Paste an access token first.';
    else if (token.length > TOKEN_MAX || /\s/.test(token)) state.loginError = 'That does not look like an access token.';
    else login(token);
    update();
  });
  ui.loginDialog.addEventListener('cancel', () => { if (!state.user && !state.token) chooseAnon(); });
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
  setInterval(() => { if (state.conn.status === 'offline' || state.cooldownUntil > Date.now() - 1000) update(); }, 1000);
}
function init() {
  ui = collectUi();
  loadRooms();
  bindEvents();
  fetchConfig();
  connect();
  if (!state.token && !state.anon) openLogin();
  autosize();
  update();
}
document.addEventListener('DOMContentLoaded', init);
