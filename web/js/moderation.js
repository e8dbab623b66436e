/* moderation.js - message actions (issue 13, proto/README.md "Moderation API (rooms)" and the
 * Messages endpoints): edit (authors their own, inline: protocol version 4), delete (authors their
 * own; room owners/admins and site admins any), pin and unpin (who may: canPin; the requests are
 * pins.js's), report (everyone signed in), and the room moderators' mute, kick and ban, asked for
 * in #mod-dialog (duration, reason). The room panel's
 * moderation section: slow mode and the room's sanctions in force, with their lift. REST calls
 * never throw; results are shown as a notice (an edit's in its editor). */
import { cleanText, editErrorText, errorText, parseEditResult, parseRoom, plural } from './proto.js';
import { activeSanction, applyEditResult, applyInfo, canEdit, editBlock, isPinned, maxText, noteSanction, state } from './state.js';
import { apiErrorText, authedFetch, messageFetch } from './api.js';
import { ui, update } from './ui.js';

export const MUTE_DEFAULT_S = 300; /* "Mute 5 min" */
export const REASON_MAX = 500; /* CHAT_REPORT_REASON_MAX's default; the server checks */
const enc = encodeURIComponent;
const roomPath = (id) => `/api/v1/rooms/${enc(id)}`;

/* Site admin: role admin of the signed-in account (GET /api/v1/users/me). */
export const siteAdmin = () => !!(state.user && state.account && state.account.role === 'admin');
/* May moderate room: its owner or admins, or a site admin. */
export function canModerate(room) {
  const role = room && room.info && room.info.me ? room.info.me.role : '';
  return siteAdmin() || role === 'owner' || role === 'admin';
}
/* May pin and unpin messages of room (proto/README.md, "Pins"): in a direct room either member, in
 * the other rooms chat-api knows their owner and admins and site admins (an ad hoc room has none). */
export function canPin(room) {
  const info = room && room.info;
  if (!state.user || !info) return false;
  return info.kind === 'direct' ? !!info.me : canModerate(room);
}
/* The actions message m offers the signed-in user (none for guests, own pending/failed ones,
 * deleted messages and system lines; no edit while a mute, ban or chat ban is known). */
export function msgActions(room, m) {
  if (!state.user || m.kind !== 'msg' || m.status !== 'confirmed' || !m.id || m.deleted) return [];
  const mod = canModerate(room), own = m.user === state.user;
  const out = [];
  if (canEdit(room, m)) out.push(['edit', 'Edit']);
  if (own || mod) out.push(['delete', 'Delete']);
  if (canPin(room)) out.push(isPinned(room, m.id) ? ['unpin', 'Unpin'] : ['pin', 'Pin']);
  if (!own) out.push(['report', 'Report']);
  if (mod && !own) out.push(['mute', 'Mute 5 min'], ['kick', 'Kick'], ['ban', 'Ban']);
  return out;
}
function say(text, isError) { state.notice = text; state.noticeErr = !!isError; update(); }

/* The message requests (delete, edit, report) use messageFetch: a message just sent may not be
 * found for a moment (api.js msgRetry). */
export async function deleteMessage(room, m) {
  const r = await messageFetch('DELETE', `${roomPath(room.id)}/messages/${enc(m.id)}`, undefined, m.ts);
  if (r.ok) { say(''); return true; } /* the message_deleted event blanks it */
  say(`Could not delete the message: ${apiErrorText(r)}`, true);
  return false;
}

/* ---- editing one's own message inline (PATCH /api/v1/rooms/{room}/messages/{id} {"text"}) ----
 * state.editing is the edit in progress (ui.js draws its editor in place of the text); the
 * message_edited event that follows a save (and the answer itself) gives the message its text. */
let editGen = 0;
/* Starts editing own message m of room (an edit in progress elsewhere is left); false when m
 * cannot be edited. */
export function startEdit(room, m) {
  if (!canEdit(room, m)) return false;
  state.editing = { room: room.id, key: m.key, id: m.id, text: m.text, busy: false, error: '', sanction: null,
    gen: ++editGen, focus: true };
  update();
  return true;
}
export function cancelEdit() {
  if (!state.editing) return;
  state.editing = null;
  update();
}
/* Why a draft cannot be saved (state.js editBlock), as the editor says it. */
function blockText(block, room) {
  if (block === 'long') return `The message is too long: at most ${plural(maxText(room), 'character', 'characters')} here.`;
  return { anon: 'Sign in to edit messages.', empty: 'A message cannot be empty (delete it instead).',
    gone: 'The message was deleted.' }[block] || '';
}
/* Saves text (the editor's draft) as the new text of the message being edited. Resolves to true
 * when the edit is over (saved, or unchanged: nothing to save), false when the editor stays open
 * (the reason is in state.editing.error, or .sanction for a mute, ban or chat ban, told with its
 * reason and countdown like a refused send). */
export async function saveEdit(text) {
  const ed = state.editing;
  if (!ed || ed.busy) return false;
  const room = state.rooms.get(ed.room) || null, m = room ? room.byId.get(ed.id) : null, clean = cleanText(text);
  ed.text = text;
  const block = editBlock(room, m, clean);
  if (block === 'same') { cancelEdit(); return true; }
  if (block === 'gone') { state.editing = null; say(blockText(block, room), true); return false; }
  if (block === 'sanction') Object.assign(ed, { error: '', sanction: activeSanction(room) });
  else if (block) ed.error = blockText(block, room);
  if (block) { update(); return false; }
  Object.assign(ed, { busy: true, error: '', sanction: null });
  update();
  /* busy (Save disabled) until the answer, its retries included */
  const r = await messageFetch('PATCH', `${roomPath(room.id)}/messages/${enc(m.id)}`, { text: clean }, m.ts);
  ed.busy = false;
  const live = state.rooms.get(room.id) === room;
  if (r.ok) {
    const res = parseEditResult(r.data);
    if (live) applyEditResult(room, m.id, res ? res.text : clean, res ? res.editedAt : Date.now());
    if (state.editing === ed) state.editing = null;
    update();
    return true;
  }
  /* muted or chat-banned: the message box says so too (a ban's left frame follows by itself) */
  const sn = r.sanction && r.sanction.code !== 'site_banned' ? r.sanction : null;
  if (sn && sn.code !== 'banned') noteSanction(room.id, sn.code, sn.until, sn.reason);
  if (state.editing === ed) Object.assign(ed, { error: sn ? '' : editErrorText(r), sanction: sn });
  else say(`Could not edit the message: ${sn ? errorText(sn.code) : editErrorText(r)}`, true); /* the editor was left meanwhile */
  update();
  return false;
}

/* ---- the dialog: what is asked (report reason; mute/ban duration and reason; kick reason) ----
 * Also used by the admin page (site-wide sanctions): askDialog with its own run function. */
let pending = null; /* {run(durationS, reason) -> true | error text, reasonRequired, reasonMissing} */
const TITLES = { report: 'Report message', mute: 'Mute user', kick: 'Kick user', ban: 'Ban user' };
/* Opens #mod-dialog: title, desc, timed (ask a duration), reasonRequired (the text shown when it
 * is missing), run: resolves to true (done: the dialog closes) or the error text to show. */
export function askDialog({ title, desc, timed, reasonRequired = '', run }) {
  pending = { run, reasonRequired };
  ui.modTitle.textContent = title;
  ui.modDesc.textContent = desc;
  ui.modDuration.hidden = ui.modDurationLabel.hidden = !timed;
  ui.modDuration.value = String(MUTE_DEFAULT_S);
  ui.modReason.value = '';
  ui.modReason.required = !!reasonRequired;
  ui.modError.textContent = '';
  ui.modSubmit.disabled = false;
  if (!ui.modDialog.open) ui.modDialog.showModal();
  ui.modReason.focus();
}
export function openModDialog(action, room, m) {
  askDialog({
    title: TITLES[action] || '',
    desc: action === 'report' ? `Report this message by ${m.nick} to the site administrators.` : `${TITLES[action]} ${m.nick} in ${room.id}.`,
    timed: action === 'mute' || action === 'ban',
    reasonRequired: action === 'report' ? 'Say why you report this message.' : '',
    run: (durationS, reason) => (action === 'report' ? report(room, m, reason) : sanction(action, room, m.user, m.nick, durationS, reason)),
  });
}
export function closeModDialog() { pending = null; if (ui.modDialog.open) ui.modDialog.close(); }
export async function submitModDialog() {
  const p = pending;
  if (!p) return;
  const reason = ui.modReason.value.trim();
  if (p.reasonRequired && !reason) { ui.modError.textContent = p.reasonRequired; return; }
  ui.modSubmit.disabled = true;
  const durationS = !ui.modDuration.hidden && ui.modDuration.value ? Number(ui.modDuration.value) : null;
  const ok = await p.run(durationS, reason);
  ui.modSubmit.disabled = false;
  if (pending !== p) return;
  if (ok === true) closeModDialog();
  else ui.modError.textContent = ok;
}
/* Resolves to true, or the error text. */
async function report(room, m, reason) {
  const r = await messageFetch('POST', `${roomPath(room.id)}/messages/${enc(m.id)}/report`, { reason: reason.slice(0, REASON_MAX) }, m.ts);
  if (!r.ok) return r.code === 'already_reported' ? errorText('already_reported') : apiErrorText(r);
  say('Thank you: the message was reported.');
  return true;
}
/* POST .../moderation/{mute|kick|ban} {"user","duration_s","reason"} */
export async function sanction(action, room, user, nick, durationS, reason) {
  const body = action === 'kick' ? { user, reason } : { user, duration_s: durationS, reason };
  const r = await authedFetch('POST', `${roomPath(room.id)}/moderation/${action}`, body);
  if (!r.ok) return apiErrorText(r);
  const done = { mute: 'muted', kick: 'kicked', ban: 'banned' }[action];
  say(`${nick} was ${done}${durationS && action !== 'kick' ? ` for ${Math.round(durationS / 60)} min` : ''}.`);
  return true;
}

/* ---- the room moderation panel (room dialog; room owners/admins and site admins) ----
 * slow mode (PATCH /api/v1/rooms/{room} {"slow_mode_s"}) and the room's sanctions in force (GET
 * .../moderation) with their lift (DELETE .../moderation/{mute|ban}/{user}). */
export const SLOW_MODE_MAX_S = 3600; /* the server's range: 0..3600 (proto/README.md, slow mode) */
/* The sanctions list of the open room panel (state.roomMod), read again on each opening. */
export async function loadRoomSanctions(room) {
  const rm = state.roomMod;
  const gen = ++rm.gen;
  Object.assign(rm, { room: room.id, list: [], loading: true, error: '' });
  update();
  const r = await authedFetch('GET', `${roomPath(room.id)}/moderation`);
  if (gen !== rm.gen) return;
  rm.loading = false;
  if (r.ok && Array.isArray(r.data.sanctions)) rm.list = r.data.sanctions.map(parseRoomSanction).filter(Boolean);
  else rm.error = r.ok ? 'The server gave an unexpected answer.' : apiErrorText(r);
  update();
}
/* One entry of GET .../moderation: {id, kind (mute|ban), user, reason, until (null: until lifted)}. */
export function parseRoomSanction(x) {
  if (!x || typeof x !== 'object') return null;
  const id = typeof x.id === 'string' ? x.id : Number.isSafeInteger(x.id) ? String(x.id) : '';
  const user = typeof x.user === 'string' ? x.user : Number.isSafeInteger(x.user) ? String(x.user) : '';
  if (!id || !user || (x.kind !== 'mute' && x.kind !== 'ban')) return null;
  return { id, kind: x.kind, user, reason: typeof x.reason === 'string' ? x.reason : '',
    until: Number.isSafeInteger(x.until) && x.until > 0 ? x.until : null };
}
function modSay(text, isError) { Object.assign(state.roomMod, { msg: text, msgErr: !!isError }); update(); }
export async function liftRoomSanction(room, kind, user) {
  const r = await authedFetch('DELETE', `${roomPath(room.id)}/moderation/${enc(kind)}/${enc(user)}`);
  if (!r.ok && r.status !== 404) { modSay(`Could not lift it: ${apiErrorText(r)}`, true); return; }
  modSay(r.ok ? (kind === 'mute' ? 'Mute lifted.' : 'Ban lifted.') : 'It was no longer in force.', false);
  loadRoomSanctions(room);
}
/* Slow mode: one message per user every s seconds (0: off). */
export async function setSlowMode(room, value) {
  const s = /^\d{1,5}$/.test(value) ? Number(value) : -1;
  if (s < 0 || s > SLOW_MODE_MAX_S) {
    modSay(`Slow mode is a whole number of seconds, 0-${SLOW_MODE_MAX_S} (0: off).`, true);
    return false;
  }
  const r = await authedFetch('PATCH', roomPath(room.id), { slow_mode_s: s });
  const info = r.ok ? parseRoom(r.data) : null;
  if (!info) { modSay(`Could not change slow mode: ${r.ok ? 'unexpected answer' : apiErrorText(r)}`, true); return false; }
  if (state.rooms.get(room.id) === room) applyInfo(room, info, false);
  modSay(s ? `Slow mode on: one message every ${s} s per user.` : 'Slow mode off.', false);
  return true;
}
