/* admin.js - the administration page (#/admin, site admins only; proto/README.md
 * "Administration API"): the reports queue (resolve: dismiss, or delete the message), the audit
 * log with filters, users (search, role change, site ban and unban, site-wide mute and chat ban
 * and their lift, sessions and their revocation), rooms (members and online counts, and a room's
 * stored messages, deleted ones included), and the announcement form. Drawn into #admin-dialog,
 * text nodes only. */
import { ANNOUNCE_MAX, fmtNum, int, str, tooLong, validTs } from './proto.js';
import { state } from './state.js';
import { apiErrorText, authedFetch } from './api.js';
import { el, ui } from './ui.js';
import { askDialog, siteAdmin } from './moderation.js';

export const ADMIN_PAGE = 50; /* rows per page (the server's default; at most 200) */
export const ADMIN_HASH = '#/admin';
const enc = encodeURIComponent;
const adm = { tab: 'reports', rows: [], next: null, filter: {}, gen: 0, msg: '', msgErr: false };
const dt = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
const when = (ms) => (Number.isSafeInteger(ms) ? dt.format(validTs(ms)) : '');
const obj = (v) => (v && typeof v === 'object' ? v : {});
/* ids are strings or numbers on the wire: shown and sent as text */
const idOf = (v) => (typeof v === 'string' ? v : Number.isSafeInteger(v) ? String(v) : '');

function btn(text, action, key) {
  const b = el('button', 'btn btn-small', text);
  b.type = 'button';
  b.dataset.action = action;
  if (key !== undefined) b.dataset.key = key;
  return b;
}
function input(name, label, value) {
  const i = el('input');
  Object.assign(i, { name, placeholder: label, value: value || '', autocomplete: 'off' });
  i.setAttribute('aria-label', label);
  return i;
}

/* ---- opening (the hash) ---- */
export function adminHash() { return location.hash === ADMIN_HASH; }
export function openAdmin() {
  if (!siteAdmin()) return false;
  if (!ui.adminDialog.open) ui.adminDialog.showModal();
  selectAdminTab(adm.tab);
  return true;
}
export function closeAdmin() {
  if (ui.adminDialog.open) ui.adminDialog.close();
  if (adminHash()) history.replaceState(null, '', location.pathname + location.search);
}
/* Views reached from a row (not in the tab bar): the tab they belong to. */
const VIEW_TAB = { messages: 'rooms', sessions: 'users' };
export function selectAdminTab(tab, filter) {
  if (tab !== adm.tab || filter) adm.filter = filter || {};
  adm.tab = tab;
  const shown = VIEW_TAB[tab] || tab;
  for (const b of ui.adminDialog.querySelectorAll('.admin-tabs .tab')) b.setAttribute('aria-selected', String(b.dataset.tab === shown));
  buildFilter();
  setMsg('', false);
  if (tab === 'announce') { adm.rows = []; adm.next = null; draw(); return; }
  load(false);
}
function setMsg(text, isError) {
  adm.msg = text;
  ui.adminMsg.textContent = text;
  ui.adminMsg.className = 'msg' + (text ? (isError ? ' error' : ' ok') : '');
}

/* ---- the filter form of each tab ---- */
const FILTERS = {
  reports: [['status', 'Status', ['open', 'resolved', 'dismissed']]],
  audit: [['action', 'Action'], ['actor', 'Actor id'], ['target', 'Target user id'], ['room', 'Room']],
  users: [['q', 'Username or nickname']],
  rooms: [['q', 'Name or id']],
  messages: [['room', 'Room id']],
  sessions: [['user', 'User id']],
};
function buildFilter() {
  const f = ui.adminFilter;
  f.replaceChildren();
  if (adm.tab === 'announce') {
    const text = el('textarea');
    /* maxLength counts UTF-16 units: twice the code point limit (announce() checks the code points) */
    Object.assign(text, { name: 'text', rows: 3, maxLength: 2 * ANNOUNCE_MAX,
      placeholder: `Announcement text (up to ${fmtNum(ANNOUNCE_MAX)} characters)` });
    text.setAttribute('aria-label', 'Announcement text');
    const sub = el('button', 'btn btn-primary', 'Announce');
    sub.type = 'submit';
    f.append(input('room', 'Room (empty: everyone)'), text, sub);
    return;
  }
  for (const [name, label, options] of FILTERS[adm.tab]) {
    if (options) {
      const s = el('select');
      s.name = name;
      s.setAttribute('aria-label', label);
      for (const o of options) s.append(new Option(o, o));
      s.value = adm.filter[name] || options[0];
      f.append(s);
    } else f.append(input(name, label, adm.filter[name]));
  }
  const sub = el('button', 'btn', adm.tab === 'messages' || adm.tab === 'sessions' ? 'Show' : 'Search');
  sub.type = 'submit';
  f.append(sub);
  if (adm.tab === 'sessions' && adm.filter.user) f.append(btn('Revoke all sessions', 'revoke', adm.filter.user));
}
export function submitAdminFilter() {
  if (adm.tab === 'announce') return announce();
  adm.filter = {};
  for (const node of ui.adminFilter.elements) if (node.name && node.value.trim()) adm.filter[node.name] = node.value.trim();
  load(false);
}

/* ---- lists ---- */
const SOURCES = {
  reports: { path: '/api/v1/admin/reports', key: 'reports', cursor: 'after' },
  audit: { path: '/api/v1/admin/audit', key: 'audit', cursor: 'before' },
  users: { path: '/api/v1/admin/users', key: 'users', cursor: 'after' },
  rooms: { path: '/api/v1/admin/rooms', key: 'rooms', cursor: 'after' },
  /* param: the filter field that is part of the path (required), not of the query */
  messages: { path: (f) => `/api/v1/admin/rooms/${enc(f.room)}/messages`, param: 'room', key: 'messages', cursor: 'before' },
  sessions: { path: (f) => `/api/v1/admin/users/${enc(f.user)}/sessions`, param: 'user', key: 'sessions', cursor: 'after' },
};
export async function load(more) {
  const src = SOURCES[adm.tab];
  if (!src || (more && adm.next === null)) return;
  const { [src.param || '']: inPath, ...filter } = adm.filter;
  if (src.param && !inPath) {
    adm.rows = [];
    adm.next = null;
    draw();
    setMsg(src.param === 'room' ? 'Enter a room id.' : 'Enter a user id.', true);
    return;
  }
  const gen = ++adm.gen, tab = adm.tab;
  const q = new URLSearchParams({ limit: String(ADMIN_PAGE), ...(src.param ? filter : adm.filter) });
  if (more) q.set(src.cursor, adm.next);
  ui.adminMore.hidden = true;
  const path = typeof src.path === 'function' ? src.path(adm.filter) : src.path;
  const r = await authedFetch('GET', `${path}?${q}`);
  if (gen !== adm.gen || tab !== adm.tab) return;
  const list = r.ok && Array.isArray(r.data[src.key]) ? r.data[src.key].filter((x) => x && typeof x === 'object') : null;
  if (!list) { setMsg(r.ok ? 'The server gave an unexpected answer.' : apiErrorText(r), true); return; }
  adm.rows = more ? adm.rows.concat(list) : list;
  adm.next = idOf(r.data.next) || null;
  draw();
}
function draw() {
  const draw1 = { reports: reportRow, audit: auditRow, users: userRow, rooms: roomRow, messages: messageRow, sessions: sessionRow }[adm.tab];
  ui.adminList.replaceChildren(...(draw1 ? adm.rows.map(draw1) : []));
  if (draw1 && !adm.rows.length) ui.adminList.append(el('li', 'help', 'Nothing here.'));
  ui.adminMore.hidden = adm.next === null || !draw1;
}
function quote(m, hit) {
  const q = el('p', 'quote' + (hit ? ' hit' : ''));
  q.append(el('strong', null, `${str(m.nick) || str(m.user)}: `), m.deleted_at ? '(deleted) ' : '', str(m.text));
  return q;
}
function reportRow(r) {
  const li = el('li', 'report');
  li.dataset.id = idOf(r.id);
  li.append(el('div', 'help', `#${idOf(r.id)} · ${str(r.room)} · reported by ${idOf(r.reporter)} · ${when(r.created_at)} · ${str(r.status)}`));
  li.append(el('div', 'reason', `Reason: ${str(r.reason)}`));
  const m = r.message && typeof r.message === 'object' ? r.message : null;
  const ctx = Array.isArray(r.context) ? r.context.filter((x) => x && typeof x === 'object') : [];
  const mseq = m ? int(m.seq) : null;
  for (const c of ctx.filter((c) => int(c.seq) !== null && mseq !== null && c.seq < mseq)) li.append(quote(c, false));
  if (m) li.append(quote(m, true));
  else li.append(el('p', 'help', 'The message is no longer stored.'));
  for (const c of ctx.filter((c) => int(c.seq) !== null && mseq !== null && c.seq > mseq)) li.append(quote(c, false));
  if (str(r.status) === 'open') {
    const a = el('div', 'row-actions');
    a.append(btn('Dismiss', 'dismiss', idOf(r.id)));
    if (m && !m.deleted_at) a.append(btn('Delete message', 'resolve-delete', idOf(r.id)));
    li.append(a);
  } else li.append(el('div', 'help', `Resolution: ${str(r.resolution)} ${when(r.resolved_at)}`));
  return li;
}
function auditRow(a) {
  const li = el('li', 'audit');
  const who = a.actor === null ? 'system' : idOf(a.actor);
  const parts = [when(a.at), who, str(a.action)];
  if (a.target) parts.push(`user ${idOf(a.target)}`);
  if (a.room) parts.push(`room ${str(a.room)}`);
  if (a.message) parts.push(`message ${idOf(a.message)}`);
  if (Number.isSafeInteger(a.expires_at)) parts.push(`until ${when(a.expires_at)}`);
  li.append(el('div', null, parts.join(' · ')));
  if (str(a.reason)) li.append(el('div', 'help', `Reason: ${str(a.reason)}`));
  return li;
}
function userRow(u) {
  const li = el('li', 'user');
  const id = idOf(u.id), ban = u.banned && typeof u.banned === 'object' ? u.banned : null;
  li.dataset.id = id;
  li.append(el('div', null, `${str(u.nickname)} (@${str(u.username)}) · id ${id} · ${str(u.role)}`));
  if (ban) li.append(el('div', 'error', `Banned ${ban.until === null ? 'until lifted' : `until ${when(ban.until)}`}: ${str(ban.reason)}`));
  const a = el('div', 'row-actions');
  a.append(btn('Sessions', 'sessions', id));
  if (id !== state.user) {
    a.append(btn(str(u.role) === 'admin' ? 'Make user' : 'Make admin', 'role', id));
    a.append(ban ? btn('Lift site ban', 'unban', id) : btn('Site ban (1 day)', 'ban', id));
    a.append(btn('Site ban (until lifted)', 'ban-perm', id));
    /* site-wide mute and chat ban: the user reads but sends nowhere; "Lift" for one in force */
    const sn = u.sanctions && typeof u.sanctions === 'object' ? u.sanctions : {};
    a.append(btn('Site mute…', 'site-mute', id));
    if (sn.mute) a.append(btn('Lift site mute', 'lift-mute', id));
    a.append(btn('Site chat ban…', 'site-chat_ban', id));
    if (sn.chat_ban) a.append(btn('Lift site chat ban', 'lift-chat_ban', id));
  }
  li.append(a);
  li.dataset.role = str(u.role);
  return li;
}
function roomRow(r) {
  const li = el('li', 'room-row');
  const online = Number.isSafeInteger(r.online) ? String(r.online) : 'unknown';
  li.append(el('div', null, `${str(r.name) || str(r.id)} · ${str(r.id)} · ${str(r.kind)}`));
  li.append(el('div', 'help', `${Number.isSafeInteger(r.members) ? r.members : '?'} members · ${online} online · slow mode ${int(r.slow_mode_s) ?? 0} s`));
  const a = el('div', 'row-actions');
  a.append(btn('Messages', 'messages', str(r.id)));
  li.append(a);
  return li;
}
/* A stored message of the room (GET .../admin/rooms/{room}/messages): deleted ones keep their
 * text here, marked with who deleted them and when; edited ones show their newest text, when it
 * was last edited and the text they were sent with. */
function messageRow(m) {
  const deleted = m.deleted_at !== null && m.deleted_at !== undefined;
  const edited = int(m.edited_at) !== null && m.edited_at > 0;
  const li = el('li', 'admin-msg' + (deleted ? ' deleted' : '') + (edited ? ' edited' : ''));
  li.dataset.id = idOf(m.id);
  li.append(el('div', 'help', `#${int(m.seq) ?? '?'} · ${when(m.ts)} · ${str(m.nick) || idOf(m.user)} (user ${idOf(m.user)})`));
  li.append(el('p', 'quote' + (deleted ? ' hit' : ''), str(m.text)));
  if (edited) {
    li.append(el('div', 'help edited-at', `Edited at ${when(m.edited_at)}` + (typeof m.original_text === 'string' ? '; sent as:' : '')));
    if (typeof m.original_text === 'string') li.append(el('p', 'quote original', m.original_text));
  }
  if (deleted) li.append(el('div', 'error deleted-by', `Deleted by ${idOf(m.deleted_by) ? `user ${idOf(m.deleted_by)}` : 'unknown'} at ${when(m.deleted_at)}`));
  return li;
}
/* A session of the user (GET .../admin/users/{id}/sessions). */
function sessionRow(x) {
  const revoked = Number.isSafeInteger(x.revoked_at);
  const expired = !revoked && Number.isSafeInteger(x.expires_at) && x.expires_at <= Date.now();
  const li = el('li', 'session' + (revoked ? ' revoked' : expired ? ' expired' : ' active'));
  li.dataset.id = idOf(x.id);
  li.append(el('div', null, `Session ${idOf(x.id)} · ${revoked ? `revoked ${when(x.revoked_at)} (${str(x.revoke_reason) || 'no reason'})`
    : expired ? 'expired' : 'active'}`));
  li.append(el('div', 'help', `created ${when(x.created_at)} · last used ${when(x.last_used_at) || 'never'} · expires ${when(x.expires_at)}`));
  li.append(el('div', 'help', `${str(x.ip) || 'no IP'} · ${str(x.user_agent) || 'no user agent'}`));
  return li;
}
/* Site-wide mute or chat ban of user id (kind mute | chat_ban): duration and reason asked first. */
function siteSanction(kind, id) {
  const row = adm.rows.find((x) => idOf(x.id) === id);
  const who = row ? `${str(row.nickname)} (@${str(row.username)})` : `user ${id}`;
  askDialog({
    title: kind === 'mute' ? 'Site-wide mute' : 'Site-wide chat ban',
    desc: `${who} may not send messages in any room (reading stays allowed).`,
    timed: true,
    run: async (durationS, reason) => {
      const r = await authedFetch('POST', `/api/v1/admin/users/${enc(id)}/sanctions/${kind}`, { duration_s: durationS, reason });
      if (!r.ok) return apiErrorText(r);
      const until = Number.isSafeInteger(r.data.until) ? `until ${when(r.data.until)}` : 'until lifted';
      setMsg(`${who} ${kind === 'mute' ? 'muted' : 'chat-banned'} site-wide, ${until}.`, false);
      load(false); /* the row offers the lift now */
      return true;
    },
  });
}

/* ---- actions on rows ---- */
export async function adminAction(action, key, li) {
  let r = null, done = '';
  if (action === 'dismiss' || action === 'resolve-delete') {
    if (!adm.rows.find((x) => idOf(x.id) === key)) return;
    /* "delete": the server deletes the message in the resolution's transaction */
    r = await authedFetch('POST', `/api/v1/admin/reports/${enc(key)}/resolve`, { action: action === 'dismiss' ? 'dismiss' : 'delete' });
    done = action === 'dismiss' ? 'Report dismissed.' : 'Message deleted, report resolved.';
  } else if (action === 'role') {
    r = await authedFetch('POST', `/api/v1/admin/users/${enc(key)}/role`, { role: li && li.dataset.role === 'admin' ? 'user' : 'admin' });
    done = 'Role changed.';
  } else if (action === 'ban' || action === 'ban-perm') {
    r = await authedFetch('POST', `/api/v1/admin/users/${enc(key)}/ban`, { duration_s: action === 'ban' ? 86400 : null, reason: 'admin' });
    done = 'User banned from the site.';
  } else if (action === 'unban') {
    r = await authedFetch('DELETE', `/api/v1/admin/users/${enc(key)}/ban`);
    done = 'Site ban lifted.';
  } else if (action === 'messages') { selectAdminTab('messages', { room: key }); return; }
  else if (action === 'sessions') { selectAdminTab('sessions', { user: key }); return; }
  else if (action === 'site-mute' || action === 'site-chat_ban') { siteSanction(action.slice(5), key); return; }
  else if (action === 'lift-mute' || action === 'lift-chat_ban') {
    const kind = action.slice(5);
    r = await authedFetch('DELETE', `/api/v1/admin/users/${enc(key)}/sanctions/${kind}`);
    if (r.status === 404) { setMsg(`No site-wide ${kind === 'mute' ? 'mute' : 'chat ban'} is in force for user ${key}.`, true); return; }
    done = kind === 'mute' ? 'Site mute lifted.' : 'Site chat ban lifted.';
  } else if (action === 'revoke') {
    r = await authedFetch('POST', `/api/v1/admin/users/${enc(key)}/revoke`, {});
    done = `Sessions revoked: ${int(r.ok && r.data.revoked_sessions) ?? 0}.`;
  } else return;
  if (!r.ok) { setMsg(apiErrorText(r), true); return; }
  setMsg(done, false);
  load(false);
}
async function announce() {
  const f = ui.adminFilter.elements, text = f.text.value, room = f.room.value.trim();
  if (!text.trim()) { setMsg('Write the announcement first.', true); return; }
  const long = tooLong(text, ANNOUNCE_MAX, 'announcement');
  if (long) { setMsg(long, true); f.text.focus(); return; }
  const r = await authedFetch('POST', '/api/v1/admin/announce', { room: room || null, text });
  if (!r.ok) { setMsg(apiErrorText(r), true); return; }
  f.text.value = '';
  setMsg('Announced.', false);
}
/* The link in the header: site admins only (the server checks every call anyway). */
export function renderAdminLink() {
  ui.adminLink.hidden = !siteAdmin();
  if (ui.adminDialog.open && !siteAdmin()) closeAdmin();
  if (adminHash() && siteAdmin() && !ui.adminDialog.open) openAdmin();
}
export const adminState = adm;
