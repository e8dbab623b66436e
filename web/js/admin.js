/* admin.js - the administration page (#/admin, site admins only; proto/README.md
 * "Administration API"): the reports queue (resolve: dismiss, or delete the message), the audit
 * log with filters, users (search, role change, site ban and unban), rooms (members and online
 * counts), and the announcement form. Drawn into #admin-dialog, text nodes only. */
import { int, str, validTs } from './proto.js';
import { state } from './state.js';
import { apiErrorText, authedFetch } from './api.js';
import { el, ui } from './ui.js';
import { siteAdmin } from './moderation.js';

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
export function selectAdminTab(tab) {
  if (tab !== adm.tab) adm.filter = {};
  adm.tab = tab;
  for (const b of ui.adminDialog.querySelectorAll('.admin-tabs .tab')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
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
};
function buildFilter() {
  const f = ui.adminFilter;
  f.replaceChildren();
  if (adm.tab === 'announce') {
    const text = el('textarea');
    Object.assign(text, { name: 'text', rows: 3, maxLength: 4000, placeholder: 'Announcement text' });
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
  const sub = el('button', 'btn', 'Search');
  sub.type = 'submit';
  f.append(sub);
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
};
export async function load(more) {
  const src = SOURCES[adm.tab];
  if (!src || (more && adm.next === null)) return;
  const gen = ++adm.gen, tab = adm.tab;
  const q = new URLSearchParams({ limit: String(ADMIN_PAGE), ...adm.filter });
  if (more) q.set(src.cursor, adm.next);
  ui.adminMore.hidden = true;
  const r = await authedFetch('GET', `${src.path}?${q}`);
  if (gen !== adm.gen || tab !== adm.tab) return;
  const list = r.ok && Array.isArray(r.data[src.key]) ? r.data[src.key].filter((x) => x && typeof x === 'object') : null;
  if (!list) { setMsg(r.ok ? 'The server gave an unexpected answer.' : apiErrorText(r), true); return; }
  adm.rows = more ? adm.rows.concat(list) : list;
  adm.next = idOf(r.data.next) || null;
  draw();
}
function draw() {
  const draw1 = { reports: reportRow, audit: auditRow, users: userRow, rooms: roomRow }[adm.tab];
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
  if (id !== state.user) {
    a.append(btn(str(u.role) === 'admin' ? 'Make user' : 'Make admin', 'role', id));
    a.append(ban ? btn('Lift site ban', 'unban', id) : btn('Site ban (1 day)', 'ban', id));
    a.append(btn('Site ban (until lifted)', 'ban-perm', id));
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
  return li;
}

/* ---- actions on rows ---- */
export async function adminAction(action, key, li) {
  let r = null, done = '';
  if (action === 'dismiss' || action === 'resolve-delete') {
    const row = adm.rows.find((x) => idOf(x.id) === key);
    if (!row) return;
    if (action === 'resolve-delete' && row.message) { /* the message goes with the room's delete; the report records it */
      const d = await authedFetch('DELETE', `/api/v1/rooms/${enc(str(row.room))}/messages/${enc(idOf(row.message.id))}`);
      if (!d.ok && d.status !== 404) { setMsg(`Could not delete the message: ${apiErrorText(d)}`, true); return; }
    }
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
  } else return;
  if (!r.ok) { setMsg(apiErrorText(r), true); return; }
  setMsg(done, false);
  load(false);
}
async function announce() {
  const f = ui.adminFilter.elements, text = f.text.value, room = f.room.value.trim();
  if (!text.trim()) { setMsg('Write the announcement first.', true); return; }
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
