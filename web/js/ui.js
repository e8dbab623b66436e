/* ui.js - the render layer: draws the state into the DOM, batched per animation frame.
 * Everything the server sends is untrusted: it reaches the DOM only as text nodes
 * (textContent / append(string)), never as HTML. */
import { LOGIN_REASONS, cleanText, codePoints, fmtNum, leftText, passwordRule, plural, presenceText, restricted, roomLabel,
  sanctionLabel, systemParts, usernameRule, validTs } from './proto.js';
import { activeRoom, activeSanction, canType, editBlock, isMember, isPinned, maxText, pinnerOf, sendBlock, sortedRooms, state,
  waitsForSignIn } from './state.js';
import { isOpen } from './ws.js';
import { canModerate, canPin, loadRoomSanctions, msgActions } from './moderation.js';
import { renderAdminLink } from './admin.js';

/* Every element with an id, as ui.camelCasedId (e.g. #composer-input -> ui.composerInput); null
 * until initUi(). */
export let ui = null;
export function initUi() {
  const map = {};
  for (const node of document.querySelectorAll('[id]')) map[node.id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = node;
  ui = map;
}

/* ---- theme (web/theme.js applied the stored one before the first paint) ---- */
export const darkQuery = window.matchMedia('(prefers-color-scheme: dark)');
export function effectiveTheme(t) { return t === 'auto' ? (darkQuery.matches ? 'dark' : 'light') : t; }
export function applyTheme(t) {
  if (t === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.setAttribute('data-theme', t);
}

/* ---- DOM helpers ---- */
export function el(tag, cls, text) {
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
function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
/* Text of parts: strings (ours) and {u: text} (untrusted), each of those in a <bdi> so that its
 * bidi controls (U+202E...) and right-to-left letters cannot reorder the text around it. */
const shownParts = new WeakMap(); /* node -> the parts it shows (as JSON) */
function setParts(node, parts) {
  const key = JSON.stringify(parts);
  if (shownParts.get(node) === key) return;
  shownParts.set(node, key);
  node.replaceChildren(...parts.map((p) => (typeof p === 'string' ? p : el('bdi', null, p.u))));
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
export function autosize() {
  const t = ui.composerInput; /* CSSOM writes are allowed under style-src 'self' (no style attribute markup) */
  t.style.height = 'auto';
  t.style.height = Math.min(t.scrollHeight + 2, 200) + 'px';
}
export function atBottom() { const sc = ui.scroller; return sc.scrollHeight - sc.scrollTop - sc.clientHeight < 48; }

/* ---- dialogs ---- */
export function openLogin(tab) {
  if (!ui) return;
  if (tab === 'login' || tab === 'register') state.signin.tab = tab;
  if (!ui.loginDialog.open) ui.loginDialog.showModal();
  renderLogin(); /* the chosen form must be visible before it can take the focus */
  if (state.signin.tab === 'register') ui.regUsername.focus();
  else (ui.loginUsername.value ? ui.loginPassword : ui.loginUsername).focus();
}
export function closeLogin() { if (ui && ui.loginDialog.open) ui.loginDialog.close(); }

/* ---- render ---- */
let renderQueued = false;
let afterRender = null;
/* A render is queued: the DOM does not show the state yet. */
export function renderPending() { return renderQueued; }
/* fn runs after every render, when the DOM shows the state. */
export function onRendered(fn) { afterRender = fn; }
export function update() {
  if (renderQueued || !ui) return;
  renderQueued = true;
  const run = () => { if (renderQueued) { renderQueued = false; render(); } };
  requestAnimationFrame(run);
  setTimeout(run, 250); /* animation frames pause in background tabs; the title should not */
}
function render() {
  for (const part of [renderHeader, renderRooms, renderRoomHead, renderPins, renderMessages, renderComposer, renderLogin, renderAccount,
    renderDirectory, renderCreate, renderRoomDialog, renderAnnouncements, renderSiteAnnounce, renderAdminLink]) part();
  const unread = [...state.rooms.values()].reduce((n, r) => n + r.unread, 0);
  const room = activeRoom();
  document.title = (unread ? `(${unread}) ` : '') + (room ? `${roomLabel(room.id, room.info)} - ` : '') + 'chatcluster';
  /* just signed in: the message box takes the focus as soon as it is enabled */
  if (state.focusComposer && state.user && !ui.composerInput.disabled && !ui.loginDialog.open) {
    state.focusComposer = false;
    ui.composerInput.focus();
  }
  if (afterRender) afterRender();
}
function renderHeader() {
  const c = state.conn;
  ui.conn.dataset.state = c.status;
  setText(ui.connText, c.status === 'online' ? 'Online' : c.status === 'connecting' ? 'Connecting…'
    : c.status === 'stopped' ? 'Disconnected' : 'Offline');
  setText(ui.connNode, c.status === 'online' && c.node ? `· ${c.node}` : '');
  ui.totals.hidden = !state.totals;
  if (state.totals) setText(ui.totals, `${presenceText(state.totals)} online`);
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
  const offline = c.status === 'offline', stopped = c.status === 'stopped';
  ui.banner.hidden = !offline && !stopped && c.status !== 'connecting' && !state.notice;
  setText(ui.bannerText, offline ? 'Offline: reconnecting…' : c.status === 'connecting' ? 'Connecting…' : stopped ? STOPPED : state.notice);
  const secs = Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000));
  setText(ui.bannerCount, offline && secs > 0 ? `(in ${secs} s)` : '');
  ui.reconnectBtn.hidden = !offline;
  ui.reloadBtn.hidden = !stopped;
  ui.banner.classList.toggle('warn', offline || stopped);
}
/* closed with 4010 (ws.js): the client itself is at fault, and only a new copy of it helps */
const STOPPED = 'Disconnected: the server closed the connection because this page sent invalid data (a bug in this '
  + 'version of the client). It will not reconnect by itself. Reload the page to load the client again.';
function createRoomItem() {
  const li = el('li', 'room');
  const open = button('room-open', undefined, 'open');
  open.append(el('span', 'room-fav'), el('span', 'room-name'), el('span', 'room-count'), el('span', 'badge'));
  li.append(open, button('icon-btn room-leave', '\u00D7', 'leave'));
  return li;
}
function patchRoomItem(li, room) {
  const [open, leave] = li.children;
  const [fav, name, count, badge] = open.children;
  const active = room.id === state.active, label = roomLabel(room.id, room.info);
  li.classList.toggle('active', active);
  li.dataset.joined = String(room.joined); /* for tests: the socket receives the room's messages */
  li.dataset.kind = room.info ? room.info.kind : 'public';
  if (active) open.setAttribute('aria-current', 'true'); else open.removeAttribute('aria-current');
  const favourite = !!(room.info && room.info.me && room.info.me.favourite);
  setText(fav, favourite ? '\u2605' : '');
  fav.title = favourite ? 'Favourite' : '';
  setText(name, label);
  if (name.title !== room.id) name.title = room.id;
  /* a restricted room is not joined while the connection is anonymous (signed out): no "joining…" */
  setText(count, room.presence ? `${fmtNum(room.presence.users)} online`
    : !room.joined && isOpen() && !waitsForSignIn(room) ? 'joining…' : '');
  count.title = room.presence ? presenceText(room.presence) : '';
  const n = room.unread > 99 ? '99+' : room.unread ? String(room.unread) : '';
  badge.hidden = !room.unread;
  if (badge.dataset.n !== n) {
    badge.dataset.n = n;
    badge.replaceChildren(n, n ? el('span', 'sr-only', ' unread') : '');
  }
  const what = isMember(room) ? 'Leave' : 'Close';
  if (leave.title !== `${what} ${label}`) { leave.setAttribute('aria-label', `${what} ${label}`); leave.title = `${what} ${label}`; }
}
function renderRooms() {
  reconcile(ui.roomList, sortedRooms(), (r) => r.id, createRoomItem, patchRoomItem);
  ui.noRooms.hidden = state.rooms.size > 0;
  setText(ui.joinError, state.joinError);
  ui.joinInput.setAttribute('aria-invalid', String(!!state.joinError));
  setText(ui.dmError, state.dmMsg);
  ui.dmForm.hidden = !state.account;
  ui.createBtn.hidden = !state.account;
}
function renderRoomHead() {
  const room = activeRoom(), p = room && room.presence, info = room && room.info;
  setText(ui.roomTitle, room ? roomLabel(room.id, info) : 'No room');
  const meta = p ? presenceText(p) : !room || room.joined || !isOpen() ? ''
    : waitsForSignIn(room) ? (state.authPending || state.refreshing ? 'Signing in…' : 'Not signed in')
      : room.joinError || 'Joining…';
  setText(ui.roomMeta, meta);
  ui.empty.hidden = !!(room && room.msgs.length) || !!(room && room.hist.loading);
  setText(ui.empty, room ? `No messages in ${roomLabel(room.id, info)} yet.` : 'Join a room to start chatting.');
  const member = isMember(room);
  ui.roomJoin.hidden = !(state.account && info && !member && info.kind === 'public');
  ui.roomFav.hidden = !member;
  const fav = member && info.me.favourite;
  ui.roomFav.setAttribute('aria-pressed', String(!!fav));
  ui.roomFav.title = fav ? 'Remove from favourites' : 'Add to favourites';
  setText(ui.roomFavIcon, fav ? '\u2605' : '\u2606');
  ui.roomInfo.hidden = !room;
  const h = room ? room.hist : null;
  setText(ui.historyStatus, !h ? '' : h.loading ? 'Loading messages…' : h.error ? `History: ${h.error}`
    : h.loaded && !h.more && room.msgs.length ? 'The beginning of the room.' : '');
}
/* ---- pinned messages: the room head's indicator and its panel (pins.js) ---- */
const SVG = 'http://www.w3.org/2000/svg';
/* The pin drawn in the room head (index.html) and on pinned messages. */
function pinIcon() {
  const svg = document.createElementNS(SVG, 'svg'), path = document.createElementNS(SVG, 'path');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('class', 'pin-icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  path.setAttribute('fill', 'currentColor');
  path.setAttribute('d', ui.roomPins.querySelector('path').getAttribute('d'));
  svg.append(path);
  return svg;
}
function pinMark() {
  const mark = el('span', 'pinned-mark');
  mark.title = 'Pinned';
  mark.append(pinIcon(), el('span', 'sr-only', 'pinned'));
  return mark;
}
function renderPins() {
  const room = activeRoom(), p = room ? room.pins : null, n = p ? p.list.length : 0;
  /* hidden when there are none (or the list could not be read: the panel says why) */
  ui.roomPins.hidden = !room || (!n && !p.error);
  setText(ui.roomPinsCount, n ? fmtNum(n) : '');
  const label = n ? plural(n, 'pinned message', 'pinned messages') : p && p.error ? 'Pinned messages: could not be read' : 'Pinned messages';
  setText(ui.roomPinsLabel, label);
  if (ui.roomPins.title !== label) ui.roomPins.title = label;
  ui.roomPins.setAttribute('aria-expanded', String(!!(room && state.pinsOpen)));
  ui.pinsPanel.hidden = !(room && state.pinsOpen);
  if (ui.pinsPanel.hidden) return;
  reconcile(ui.pinList, p.list, (x) => x.id, createPinItem, patchPinItem);
  setText(ui.pinsStatus, p.error ? `Could not read the pinned messages: ${p.error}`
    : !p.loaded ? (p.loading ? 'Loading…' : '') : !n ? 'No pinned messages in this room.' : '');
  ui.pinsStatus.classList.toggle('error', !!p.error);
}
function createPinItem() {
  const li = el('li', 'pin');
  const jump = button('pin-jump', undefined, 'pin-jump');
  jump.append(el('span', 'meta'), el('span', 'text pin-text'), el('span', 'pin-by help'));
  li.append(jump, button('btn btn-small pin-unpin', 'Unpin', 'unpin'));
  return li;
}
function patchPinItem(li, x) {
  const room = activeRoom(), may = canPin(room), held = room.byId.has(x.id), who = pinnerOf(room, x);
  const v = JSON.stringify([x.nick, x.user, x.ts, x.text, x.editedAt, x.pinnedAt, x.pinnedBy, may, held, who]);
  if (li.dataset.v === v) return;
  li.dataset.v = v;
  const [jump, unpin] = li.children, [meta, text, by] = jump.children;
  const nick = el('span', 'nick', x.nick || x.user || 'unknown');
  if (x.user && x.user !== x.nick) nick.title = 'user ' + x.user;
  const time = el('time', 'time', fmtTime(x.ts));
  time.dateTime = new Date(x.ts).toISOString();
  time.title = dateTimeFmt.format(x.ts);
  meta.replaceChildren(nick, time);
  if (x.editedAt > 0) {
    const edited = el('span', 'edited', '(edited)');
    edited.title = `Edited ${dateTimeFmt.format(x.editedAt)}`;
    meta.append(edited);
  }
  text.textContent = x.text; /* untrusted: text only (no links inside the button) */
  const when = x.pinnedAt ? ` \u00B7 ${fmtTime(x.pinnedAt)}` : '';
  setParts(by, who === 'you' ? [`Pinned by you${when}`] : who ? ['Pinned by ', { u: who }, when] : [`Pinned${when}`]);
  jump.title = held ? 'Show the message' : 'Show the message (reads older messages)';
  unpin.hidden = !may;
  unpin.setAttribute('aria-label', `Unpin the message by ${x.nick || x.user}`);
}
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
export const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
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
/* The inline editor of the edit in progress (state.editing): made once per edit and kept across
 * redraws of its message, so that the focus, the caret and the draft stay. */
let editor = null;
/* The editor when message m is the one being edited (in the open room), else null. */
function editorFor(m) {
  const ed = state.editing;
  if (!ed || ed.key !== m.key || ed.room !== state.active || m.kind !== 'msg' || m.deleted) return null;
  if (!editor || editor.gen !== ed.gen) editor = createEditor(ed);
  return editor;
}
function createEditor(ed) {
  const box = el('div', 'msg-edit'), id = `edit-${ed.gen}`;
  const input = el('textarea', 'edit-input');
  input.value = ed.text;
  input.rows = Math.min(8, ed.text.split('\n').length);
  input.setAttribute('aria-label', 'Edit message');
  input.setAttribute('aria-describedby', `${id}-error ${id}-help ${id}-counter`);
  const error = el('p', 'edit-error');
  error.id = `${id}-error`;
  error.setAttribute('aria-live', 'polite');
  const help = el('span', 'help', 'Enter to save, Shift+Enter for a new line, Escape to cancel');
  help.id = `${id}-help`;
  const counter = el('span', 'counter');
  counter.id = `${id}-counter`;
  const save = button('btn btn-small btn-primary', 'Save', 'edit-save');
  const foot = el('div', 'edit-foot');
  foot.append(help, counter, button('btn btn-small', 'Cancel', 'edit-cancel'), save);
  box.append(input, error, foot);
  return { gen: ed.gen, box, input, error, counter, save };
}
/* The editor's live parts: the counter against the room's limit, Save, and why it cannot be saved
 * (too long; a refusal's text; a mute, ban or chat ban with its reason and countdown). */
function patchEditor(e, m, room) {
  const ed = state.editing, text = cleanText(e.input.value), n = codePoints(text), max = maxText(room), now = Date.now();
  setText(e.counter, `${fmtNum(n)}/${fmtNum(max)}`);
  e.counter.classList.toggle('over', n > max);
  e.input.setAttribute('aria-invalid', String(n > max));
  e.input.readOnly = ed.busy;
  const block = editBlock(room, m, text);
  e.save.disabled = ed.busy || (!!block && block !== 'same');
  const sn = ed.sanction && (ed.sanction.until === null || ed.sanction.until > now) ? ed.sanction : null;
  if (ed.sanction && !sn) ed.sanction = null; /* run out */
  e.error.classList.toggle('sanction', !!sn);
  setParts(e.error, sn ? [sanctionLabel(sn.code), ...(sn.reason ? [': ', { u: sn.reason }] : []), ` \u2014 ${leftText(sn.until, now)}`]
    : block === 'long' ? [`The message is too long: at most ${plural(max, 'character', 'characters')} here.`]
      : ed.busy ? ['Saving…'] : [ed.error]);
  e.error.classList.toggle('error', !!sn || block === 'long' || (!ed.busy && !!ed.error));
}
function msgChildren(m, room, ed) {
  if (m.kind === 'gap') return [el('span', 'gap-label', 'Reconnected: some messages sent while you were offline could not be recovered')];
  if (m.kind === 'del' || m.kind === 'edit' || m.kind === 'skip') return [];
  if (m.kind === 'sys') {
    const time = el('time', 'time', fmtTime(m.ts));
    time.dateTime = new Date(m.ts).toISOString();
    const text = el('span', 'sys-text');
    setParts(text, systemParts(m)); /* the nick and the description in bdi: they cannot reorder the line */
    return [text, ' · ', time];
  }
  const meta = el('div', 'meta');
  const nick = el('span', 'nick', m.nick || m.user || 'unknown');
  if (m.user && m.user !== m.nick) nick.title = 'user ' + m.user;
  meta.append(nick);
  if (m.own) meta.append(el('span', 'you', 'you'));
  const time = el('time', 'time', fmtTime(m.ts));
  time.dateTime = new Date(m.ts).toISOString();
  time.title = dateTimeFmt.format(m.ts);
  meta.append(time);
  if (m.editedAt > 0 && !m.deleted) {
    const edited = el('span', 'edited', '(edited)');
    edited.title = `Edited ${dateTimeFmt.format(m.editedAt)}`;
    meta.append(edited);
  }
  if (room && isPinned(room, m.id)) meta.append(pinMark());
  if (m.status === 'pending') meta.append(el('span', 'state', 'sending…'));
  if (m.status === 'confirmed' && m.own) meta.append(el('span', 'state sent', 'sent'));
  if (ed) return [meta, ed.box];
  const body = el('p', 'text');
  if (m.deleted) body.textContent = 'message deleted';
  else appendRich(body, m.text);
  const acts = room ? msgActions(room, m) : [];
  if (acts.length) {
    const bar = el('div', 'msg-actions');
    for (const [action, label] of acts) bar.append(button('btn btn-small', label, action));
    return [meta, body, bar];
  }
  if (m.status !== 'failed') return [meta, body];
  const err = el('div', 'err');
  err.append(el('strong', null, `Not sent (${m.code})`), ' ', m.detail, ' ',
    button('btn btn-small', 'Retry', 'retry'), ' ', button('btn btn-small', 'Dismiss', 'dismiss'));
  return [meta, body, err];
}
let modKey = ''; /* who looks (user, moderator or not, may send or not): a change redraws the message actions */
function patchMsg(node, m) {
  const room = activeRoom(), ed = editorFor(m);
  const v = `${m.v}|${modKey}|${ed ? ed.gen : ''}|${m.kind === 'msg' && isPinned(room, m.id) ? 'p' : ''}`;
  if (node.dataset.v !== v) {
    node.dataset.v = v;
    node.hidden = m.kind === 'del' || m.kind === 'edit' || m.kind === 'skip';
    node.className = m.kind === 'gap' ? 'gap' : m.kind === 'sys' ? `sys${m.event === 'announcement' ? ' announce' : ''}`
      : m.kind !== 'msg' ? 'evt' : `msg ${m.status}${m.own ? ' own' : ''}${m.deleted ? ' deleted' : ''}`
        + `${m.editedAt > 0 && !m.deleted ? ' edited' : ''}${ed ? ' editing' : ''}`;
    if (m.id && m.kind === 'msg') node.dataset.id = m.id;
    /* the editor is moved, not made again: taking it out of the page drops its focus, given back */
    const focused = !!ed && document.activeElement === ed.input;
    const from = focused ? ed.input.selectionStart : 0, to = focused ? ed.input.selectionEnd : 0;
    node.replaceChildren(...msgChildren(m, room, ed));
    if (focused) { ed.input.focus({ preventScroll: true }); ed.input.setSelectionRange(from, to); }
  }
  if (ed) patchEditor(ed, m, room);
}
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
  /* older messages inserted above (history): the view stays on what it showed */
  const keep = state.keepScroll && !state.stickBottom && !bottom, height = sc.scrollHeight, top = sc.scrollTop;
  state.keepScroll = false;
  modKey = `${state.user || ''}|${room && canModerate(room) ? 1 : 0}|${canType(room) ? 1 : 0}|${canPin(room) ? 1 : 0}`;
  reconcile(ui.messages, msgs, (m) => m.key, () => el('li'), patchMsg);
  const ed = state.editing;
  if (ed && ed.focus && editor && editor.gen === ed.gen && editor.input.isConnected) { /* an edit begins: caret at the end */
    ed.focus = false;
    editor.input.focus();
    editor.input.setSelectionRange(editor.input.value.length, editor.input.value.length);
  }
  const lastKey = msgs.length ? msgs[msgs.length - 1].key : '';
  if (keep) sc.scrollTop = top + (sc.scrollHeight - height);
  else if (bottom || state.stickBottom) sc.scrollTop = sc.scrollHeight;
  /* new messages arrived while scrolled up: offer a jump instead of yanking the view */
  state.showJump = !(bottom || state.stickBottom) && (state.showJump || lastKey !== shownLast);
  state.stickBottom = false;
  shownLast = lastKey;
  ui.jump.hidden = !state.showJump;
  showFlash(room);
}
/* A pin's jump (pins.js jumpToPin): its message scrolled into view and highlighted for a moment. */
const FLASH_MS = 2500;
function showFlash(room) {
  const f = state.flash;
  if (!f) return;
  state.flash = null;
  const node = room && f.room === room.id ? ui.messages.querySelector(`li[data-key="${CSS.escape(f.key)}"]`) : null;
  if (!node) return;
  node.scrollIntoView({ block: 'center' });
  node.dataset.flash = '1';
  clearTimeout(node.flashTimer);
  node.flashTimer = setTimeout(() => { delete node.dataset.flash; }, FLASH_MS);
}
const HINTS = {
  anon: 'You are watching as a guest. Sign in to send messages.',
  signing: 'Signing in…',
  noroom: 'Join a room to send messages.',
  offline: 'Offline: messages can be sent once the connection is back.',
  stopped: 'Disconnected: reload the page to send messages.',
  long: 'The message is too long.',
  big: 'The message is too large to send.',
};
function renderComposer() {
  const room = activeRoom();
  const text = cleanText(ui.composerInput.value);
  const n = codePoints(text);
  const max = maxText(room);
  setText(ui.counter, `${fmtNum(n)}/${fmtNum(max)}`);
  ui.counter.classList.toggle('over', n > max);
  const block = sendBlock(room, text, isOpen());
  const sn = activeSanction(room), typing = canType(room); /* slow mode: typing stays allowed, Send waits */
  ui.composerInput.disabled = !typing;
  ui.composerInput.placeholder = typing ? `Message ${roomLabel(room.id, room.info)}` : state.user ? '' : 'Sign in to send messages';
  ui.sendBtn.disabled = !!block;
  let hint = HINTS[block === 'offline' && state.conn.status === 'stopped' ? 'stopped' : block] || '', reason = '';
  if (block === 'joining') hint = room.joinError ? `Cannot join: ${room.joinError}` : `Joining ${roomLabel(room.id, room.info)}…`;
  if (block === 'long') hint = `The message is too long: at most ${plural(max, 'character', 'characters')} here.`;
  if (block === 'cooldown') hint = `You are sending too fast. Wait ${Math.ceil((state.cooldownUntil - Date.now()) / 1000)} s.`;
  if (block === 'slow') hint = `Slow mode: wait ${Math.max(1, Math.ceil((sn.until - Date.now()) / 1000))} s`;
  if (block === 'sanction') {
    hint = sanctionLabel(sn.code);
    reason = sn.reason;
  }
  ui.composerHint.classList.toggle('sanction', block === 'sanction' || block === 'slow');
  /* the reason is a moderator's text: isolated from the countdown after it */
  setParts(ui.composerHint, block === 'sanction'
    ? [hint, ...(reason ? [': ', { u: reason }] : []), ` \u2014 ${leftText(sn.until, Date.now())}`] : [hint]);
  ui.composerHint.classList.toggle('warn', block === 'long' || block === 'big' || block === 'cooldown');
  ui.composerLogin.hidden = block !== 'anon';
}
const SIGNIN_FIELDS = ['loginUsername', 'loginPassword', 'regUsername', 'regPassword', 'regNickname'];
export function renderLogin() {
  const si = state.signin, reg = si.tab === 'register', now = Date.now(), R = state.rules;
  ui.tabLogin.setAttribute('aria-selected', String(!reg));
  ui.tabRegister.setAttribute('aria-selected', String(reg));
  ui.tabLogin.tabIndex = reg ? -1 : 0;
  ui.tabRegister.tabIndex = reg ? 0 : -1;
  ui.loginPanel.hidden = reg;
  ui.registerPanel.hidden = !reg;
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
  setText(ui.regUsernameHelp, `${usernameRule(R)}. Not case-sensitive when you sign in.`);
  setText(ui.regPasswordHelp, passwordRule(R) + '.');
  setText(ui.regNicknameHelp, `The name others see, ${R.nickname.min}-${R.nickname.max} characters. Defaults to the username; you can change it later.`);
}
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
  setText(ui.pwHelp, passwordRule(R) + '. Your other sessions will be signed out.');
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
/* ---- rooms: directory, new room, the room panel ---- */
function createDirItem() {
  const li = el('li', 'dir-room');
  const text = el('div', 'dir-text');
  text.append(el('span', 'dir-name'), el('span', 'dir-id muted'), el('p', 'dir-desc help'));
  li.append(text, button('btn btn-small', 'Open', 'watch'), button('btn btn-small btn-primary', 'Join', 'join'));
  return li;
}
function patchDirItem(li, info) {
  const [text, , join] = li.children;
  const [name, id, desc] = text.children;
  setText(name, info.name || info.id);
  setText(id, `#${info.id}` + (info.members !== null ? ` · ${plural(info.members, 'member', 'members')}` : ''));
  setText(desc, info.description);
  join.hidden = !state.account || !!info.me;
}
function renderDirectory() {
  if (!ui.dirDialog.open) return;
  const d = state.dir;
  reconcile(ui.dirList, d.rooms, (r) => r.id, createDirItem, patchDirItem);
  setText(ui.dirStatus, d.loading ? 'Searching…' : d.error || (!d.rooms.length ? 'No public room matches.' : ''));
  ui.dirStatus.classList.toggle('error', !d.loading && !!d.error);
  ui.dirMore.hidden = !d.next;
  ui.dirMore.disabled = d.loading;
}
function renderCreate() {
  if (!ui.createDialog.open) return;
  setText(ui.createError, state.createMsg);
  const pub = ui.createKind.value === 'public';
  ui.createId.disabled = !pub;
}
function createMemberItem() {
  const li = el('li', 'member');
  li.append(el('span', 'dot'), el('span', 'member-name'), el('span', 'member-user muted'), el('span', 'member-role'));
  return li;
}
function patchMemberItem(li, m) {
  const [dot, name, user, role] = li.children;
  li.classList.toggle('online', m.online);
  dot.title = m.online ? 'online' : 'offline';
  setText(name, m.user.nickname);
  setText(user, '@' + m.user.username);
  setText(role, m.role === 'member' ? '' : m.role);
}
function renderRoomDialog() {
  if (!ui.roomDialog.open) return;
  const room = activeRoom(), info = room && room.info, ms = state.members;
  setText(ui.roomDlgTitle, room ? roomLabel(room.id, info) : '');
  setText(ui.roomDesc, info ? info.description : '');
  const facts = room ? [info ? info.kind : 'ad hoc', `id ${room.id}`,
    info && info.members !== null ? plural(info.members, 'member', 'members') : '',
    `${fmtNum(maxText(room))} characters per message`, info && info.me ? `you: ${info.me.role}` : ''].filter(Boolean) : [];
  setText(ui.roomFacts, facts.join(' · '));
  const list = room && ms.room === room.id ? ms.list : [];
  reconcile(ui.memberList, list, (m) => m.user.id, createMemberItem, patchMemberItem);
  setText(ui.membersStatus, ms.loading ? 'Loading…' : ms.error || (!state.account ? 'Sign in to see the members.'
    : !list.length ? 'No members to show.' : ''));
  ui.membersMore.hidden = !ms.next;
  const role = info && info.me ? info.me.role : '';
  ui.inviteSection.hidden = !(room && restricted(room.id) && info && info.kind !== 'direct' && (role === 'owner' || role === 'admin'));
  if (ui.inviteLink.value !== state.invite) ui.inviteLink.value = state.invite;
  renderRoomModeration(room);
  setMsg(ui.roomMsg, state.roomMsg, state.roomMsgErr);
  ui.roomLeave.hidden = !room;
  setText(ui.roomLeave, isMember(room) ? 'Leave room' : 'Close room');
}
/* The room panel's moderation section (owners, admins and site admins; not direct rooms). */
function createSanctionItem(sn) {
  const li = el('li', 'sanction-item');
  li.append(el('span', 'sanction-text'), button('btn btn-small', 'Lift', 'lift'));
  li.lastChild.dataset.kind = sn.kind;
  li.lastChild.dataset.user = sn.user;
  return li;
}
function patchSanctionItem(li, sn) {
  const m = state.members.list.find((x) => x.user.id === sn.user);
  const who = m ? `${m.user.nickname} (@${m.user.username})` : `user ${sn.user}`;
  const until = sn.until === null ? 'until lifted' : `until ${dateTimeFmt.format(sn.until)}`;
  setParts(li.firstChild, [`${sn.kind === 'mute' ? 'Muted' : 'Banned'}: `, { u: who }, `, ${until}`,
    ...(sn.reason ? [' \u2014 ', { u: sn.reason }] : [])]);
  li.dataset.user = sn.user;
  li.dataset.kind = sn.kind;
}
export function showsModeration(room) {
  const info = room && room.info;
  return !!(info && state.account && info.kind !== 'direct' && canModerate(room));
}
function renderRoomModeration(room) {
  const mod = showsModeration(room);
  ui.modSection.hidden = !mod;
  if (!mod) return;
  const rm = state.roomMod;
  if (rm.room !== room.id) { /* first drawn for this opening (the room object may come after it) */
    ui.slowInput.value = String(room.info.slowMode);
    queueMicrotask(() => loadRoomSanctions(room)); /* sets rm.room at once: asked once */
    Object.assign(rm, { room: room.id, loading: true });
  }
  const list = rm.room === room.id ? rm.list : [];
  reconcile(ui.sanctionList, list, (sn) => sn.id, createSanctionItem, patchSanctionItem);
  setText(ui.sanctionsStatus, rm.loading ? 'Loading…' : rm.error || (!list.length ? 'No mutes or bans in force.' : ''));
  ui.sanctionsStatus.classList.toggle('error', !rm.loading && !!rm.error);
  setMsg(ui.modMsg, rm.msg, rm.msgErr);
}
function renderAnnouncements() {
  const list = state.announce.splice(0), first = list[0];
  if (first) setText(ui.announcer, list.length === 1 ? `${first.nick}: ${first.text.slice(0, 200)}` : `${list.length} new messages in #${first.room}`);
}

/* Site-wide announcements (the announcement frame): highlighted lines above every room. */
function renderSiteAnnounce() {
  const list = state.announcements;
  ui.siteAnnounce.hidden = !list.length;
  reconcile(ui.siteAnnounce, list, (a) => a.id, (a) => {
    const li = el('li', 'announcement');
    li.append(el('strong', null, 'Announcement:'), el('span', null, a.text), button('btn btn-small', 'Dismiss', 'dismiss-announce'));
    return li;
  }, () => {});
}
