/* moderation.js - message actions (issue 13, proto/README.md "Moderation API (rooms)" and the
 * Messages endpoints): delete (authors their own; room owners/admins and site admins any), report
 * (everyone signed in), and the room moderators' mute, kick and ban, asked for in #mod-dialog
 * (duration, reason). REST calls never throw; results are shown as a notice. */
import { errorText } from './proto.js';
import { state } from './state.js';
import { apiErrorText, authedFetch } from './api.js';
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
/* The actions message m offers the signed-in user (none for guests, own pending/failed ones,
 * deleted messages and system lines). */
export function msgActions(room, m) {
  if (!state.user || m.kind !== 'msg' || m.status !== 'confirmed' || !m.id || m.deleted) return [];
  const mod = canModerate(room), own = m.user === state.user;
  const out = [];
  if (own || mod) out.push(['delete', 'Delete']);
  if (!own) out.push(['report', 'Report']);
  if (mod && !own) out.push(['mute', 'Mute 5 min'], ['kick', 'Kick'], ['ban', 'Ban']);
  return out;
}
function say(text, isError) { state.notice = text; state.noticeErr = !!isError; update(); }

export async function deleteMessage(room, m) {
  const r = await authedFetch('DELETE', `${roomPath(room.id)}/messages/${enc(m.id)}`);
  if (r.ok) { say(''); return true; } /* the message_deleted event blanks it */
  say(`Could not delete the message: ${apiErrorText(r)}`, true);
  return false;
}

/* ---- the dialog: what is asked (report reason; mute/ban duration and reason; kick reason) ---- */
let pending = null; /* {action, room, m} */
const TITLES = { report: 'Report message', mute: 'Mute user', kick: 'Kick user', ban: 'Ban user' };
export function openModDialog(action, room, m) {
  pending = { action, room, m };
  ui.modTitle.textContent = TITLES[action] || '';
  ui.modDesc.textContent = action === 'report' ? `Report this message by ${m.nick} to the site administrators.`
    : `${TITLES[action]} ${m.nick} in ${room.id}.`;
  const timed = action === 'mute' || action === 'ban';
  ui.modDuration.hidden = ui.modDurationLabel.hidden = !timed;
  ui.modDuration.value = String(MUTE_DEFAULT_S);
  ui.modReason.value = '';
  ui.modReason.required = action === 'report';
  ui.modError.textContent = '';
  ui.modSubmit.disabled = false;
  if (!ui.modDialog.open) ui.modDialog.showModal();
  ui.modReason.focus();
}
export function closeModDialog() { pending = null; if (ui.modDialog.open) ui.modDialog.close(); }
export async function submitModDialog() {
  const p = pending;
  if (!p) return;
  const reason = ui.modReason.value.trim();
  if (p.action === 'report' && !reason) { ui.modError.textContent = 'Say why you report this message.'; return; }
  ui.modSubmit.disabled = true;
  const ok = await (p.action === 'report' ? report(p.room, p.m, reason)
    : sanction(p.action, p.room, p.m.user, p.m.nick, ui.modDuration.value ? Number(ui.modDuration.value) : null, reason));
  ui.modSubmit.disabled = false;
  if (pending !== p) return;
  if (ok === true) closeModDialog();
  else ui.modError.textContent = ok;
}
/* Resolves to true, or the error text. */
async function report(room, m, reason) {
  const r = await authedFetch('POST', `${roomPath(room.id)}/messages/${enc(m.id)}/report`, { reason: reason.slice(0, REASON_MAX) });
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
