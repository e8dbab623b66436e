/* actions.js - what the user asks for (join, leave, send, sign in, theme...): state changes, then
 * a render. */
import { ERRORS, ROOM_DESC_MAX, TOKEN_MAX, checkNickname, checkPassword, checkUsername, cleanText, errorText, newCmid,
  parseSession, roomLabel, siteBanText, tooLong, trimNick } from './proto.js';
import { LS, SS, THEME_KEY, activeRoom, insertMsg, makeMsg, nextOrder, removeMsg, saveRooms, sendBlock, state,
  store, validRoom } from './state.js';
import { UNEXPECTED, adoptSession, api, useToken } from './api.js';
import { logout } from './account.js';
import { isOpen, transmit } from './ws.js';
import { createInvite, createRoom, dropRoom, joinPublic, leaveMember, loadMembers, loadNewest, markRead, openById,
  openDirect, redeemInvite, searchRooms, setFavourite, watchRoom } from './rooms.js';
import { applyTheme, autosize, closeLogin, dateTimeFmt, effectiveTheme, openLogin, renderLogin, showsModeration, ui, update } from './ui.js';
import { liftRoomSanction, setSlowMode } from './moderation.js';
import { showPins } from './pins.js';

/* ---- rooms ---- */
export function selectRoom(id) {
  if (activeRoom()) activeRoom().draft = ui.composerInput.value;
  const before = state.active;
  state.active = state.rooms.has(id) ? id : (state.rooms.keys().next().value || '');
  if (state.active !== before) state.pinsOpen = false; /* the pins panel is the room's */
  const room = activeRoom();
  if (room) room.unread = 0;
  ui.composerInput.value = room ? room.draft : '';
  Object.assign(state, { navOpen: false, showJump: false, roomMsg: '', roomMsgErr: false, invite: '' });
  if (ui.roomDialog.open) ui.roomDialog.close();
  saveRooms();
  autosize();
  update();
  if (room) { loadNewest(room); markRead(room); showPins(room); }
}
function roomsFull(id) {
  return !state.rooms.has(id) && state.rooms.size >= state.limits.max_rooms
    ? `You can be in at most ${state.limits.max_rooms} rooms. Leave one first.` : '';
}
/* The join form: a room id (public: joined when signed in and known to chat-api, else watched). */
export async function joinRoom(name) {
  const id = name.trim();
  state.joinError = !validRoom(id) ? ERRORS.bad_room : roomsFull(id);
  if (state.joinError) { update(); return; }
  ui.joinInput.value = '';
  const opened = await openById(id);
  if (opened) selectRoom(opened); else update();
}
/* The socket refused a join: rooms chat-api knows stay listed (with the reason), others go. */
export function joinFailed(id, code, message) {
  const room = state.rooms.get(id);
  if (room && !room.joined && !room.info) {
    dropRoom(id);
    if (state.active === id || !state.rooms.has(state.active)) selectRoom(state.active);
  } else if (room) room.joinError = errorText(code, message);
  state.joinError = `Could not join ${id}: ${errorText(code, message)}`;
}
/* The server ended our membership (removed, kicked, banned), the room (deleted) or we left it
 * elsewhere (left: REST leave in another tab or on another device); or an invite opened one. */
export function roomGone(reason, id) {
  if (!reason) { selectRoom(id); return; }
  const room = state.rooms.get(id);
  if (!room) return;
  const label = roomLabel(id, room.info), ownLeave = room.leaving; /* this page's own leave, still on its way */
  dropRoom(id);
  /* one's own leave needs no alarm: a plain line (none for this page's own) */
  if (reason === 'left') state.notice = ownLeave ? state.notice : `You left ${label} in another tab or on another device.`;
  else state.notice = reason === 'deleted' ? `The room ${label} was deleted.` : reason === 'kicked' ? `You were kicked from ${label}.`
    : reason === 'banned' ? `You were banned from ${label}.` : `You were removed from ${label}.`;
  selectRoom(state.active);
}
export async function leaveRoom(id) {
  if (!state.rooms.has(id)) return;
  if (!(await leaveMember(id))) return;
  selectRoom(state.active);
  ui.joinInput.focus();
}
/* ---- directory, create, direct rooms, room panel ---- */
export function openDirectory() {
  if (!ui.dirDialog.open) ui.dirDialog.showModal();
  ui.dirInput.focus();
  searchRooms(ui.dirInput.value.trim(), false);
}
export function dirAction(action, id) {
  const info = state.dir.rooms.find((r) => r.id === id);
  if (!info) return;
  if (action === 'watch') { state.joinError = roomsFull(id); if (state.joinError) { update(); return; } selectRoom(watchRoom(info)); }
  else joinPublic(id).then((room) => { if (room) selectRoom(room.id); });
  ui.dirDialog.close();
}
export function openCreate() {
  if (!state.account) { openLogin('login'); return; }
  state.createMsg = '';
  if (!ui.createDialog.open) ui.createDialog.showModal();
  ui.createName.focus();
  update();
}
export async function submitCreate() {
  const kind = ui.createKind.value, name = ui.createName.value.trim(), description = ui.createDesc.value.trim();
  const id = ui.createId.value.trim();
  if (!name) { state.createMsg = 'Give the room a name.'; update(); ui.createName.focus(); return; }
  if (kind === 'public' && id && !validRoom(id)) { state.createMsg = ERRORS.bad_room; update(); return; }
  const longDesc = tooLong(description, ROOM_DESC_MAX, 'description');
  if (longDesc) { state.createMsg = longDesc; update(); ui.createDesc.focus(); return; }
  const body = { kind, name };
  if (description) body.description = description;
  if (kind === 'public' && id) body.id = id;
  const created = await createRoom(body);
  if (!created) return;
  for (const f of [ui.createName, ui.createDesc, ui.createId]) f.value = '';
  ui.createDialog.close();
  selectRoom(created);
}
export async function submitDirect() {
  const username = ui.dmInput.value.trim();
  if (!state.account) { openLogin('login'); return; }
  if (!username) { state.dmMsg = 'Enter a username.'; update(); return; }
  const id = await openDirect(username);
  if (id) { ui.dmInput.value = ''; selectRoom(id); }
}
export function openRoomPanel() {
  const room = activeRoom();
  if (!room) return;
  Object.assign(state, { roomMsg: '', roomMsgErr: false, invite: '' });
  if (!ui.roomDialog.open) ui.roomDialog.showModal();
  if (state.account && room.info && (room.info.me || room.info.kind === 'public')) loadMembers(room, false);
  else Object.assign(state.members, { room: room.id, list: [], next: null, error: '', gen: state.members.gen + 1 });
  /* the moderation section (moderators): read when first drawn (ui.js renderRoomModeration) */
  Object.assign(state.roomMod, { room: '', list: [], error: '', msg: '', msgErr: false, gen: state.roomMod.gen + 1 });
  update();
}
/* The slow mode form of the room panel. */
export async function submitSlowMode() {
  const room = activeRoom();
  if (!room || !showsModeration(room)) return;
  ui.slowSubmit.disabled = true;
  const ok = await setSlowMode(room, ui.slowInput.value.trim());
  ui.slowSubmit.disabled = false;
  if (ok && room.info) ui.slowInput.value = String(room.info.slowMode);
}
/* btn: the button clicked (its data-kind/data-user for a lift). */
export function roomAction(action, btn) {
  const room = activeRoom();
  if (!room) return;
  if (action === 'lift' && btn) { liftRoomSanction(room, btn.dataset.kind, btn.dataset.user); return; }
  if (action === 'favourite' && room.info && room.info.me) setFavourite(room, !room.info.me.favourite);
  else if (action === 'invite') createInvite(room);
  else if (action === 'join') joinPublic(room.id);
  else if (action === 'leave') { ui.roomDialog.close(); leaveRoom(room.id); }
  else if (action === 'members-more') loadMembers(room, true);
}
/* #/invite/CODE: redeemed now (signed in) or after the sign-in. */
export async function openInvite(code) {
  if (!code) return;
  history.replaceState(null, '', location.pathname + location.search);
  if (!state.account) {
    state.inviteCode = code;
    state.notice = 'Sign in to accept the invite.';
    if (!state.token) openLogin('login');
    update();
    return;
  }
  const id = await redeemInvite(code);
  if (id) selectRoom(id);
}

/* ---- messages ---- */
/* Shows a new own message as pending (or reuses a refused one) and sends it. */
const MAYBE_STORED = ['connection_lost', 'unconfirmed', 'in_flight'];
function sendMessage(room, m) {
  /* a message that may have been stored keeps its client_msg_id: the server stores it once */
  const cmid = m.cmid && MAYBE_STORED.includes(m.code) ? m.cmid : newCmid();
  Object.assign(m, { status: 'pending', code: '', detail: '', cmid, order: nextOrder(), seq: null, ts: Date.now(), firstTry: 0 });
  m.v++;
  insertMsg(room, m);
  state.pending.set(m.cmid, m);
  transmit(m);
  state.stickBottom = true;
  update();
}
export function submitMessage() {
  const room = activeRoom(), text = cleanText(ui.composerInput.value);
  if (sendBlock(room, text, isOpen())) { update(); return; }
  sendMessage(room, makeMsg({ room: room.id, user: state.user, nick: state.nick || state.user, text, own: true }));
  ui.composerInput.value = room.draft = '';
  autosize();
}
export function retryMessage(room, m) {
  if (sendBlock(room, m.text, isOpen())) { ui.composerInput.focus(); update(); return; }
  removeMsg(room, m);
  sendMessage(room, m);
}
export function dismissMessage(room, m) {
  removeMsg(room, m);
  ui.composerInput.focus();
  update();
}

/* ---- guest mode, theme ---- */
export function chooseAnon() {
  if (state.token) logout();
  state.anon = true;
  store.set(SS, 'chat.anon', '1');
  closeLogin();
  update();
}
/* The system's theme applies until the first click; a choice is kept (stored, applied by
 * web/theme.js on the next load), also when it equals the system's and when that changes later. */
export function toggleTheme() {
  state.theme = effectiveTheme(state.theme) === 'dark' ? 'light' : 'dark';
  store.set(LS, THEME_KEY, state.theme);
  applyTheme(state.theme);
  update();
}

/* ---- sign-in panel ---- */
const FIELD_OF_CODE = Object.assign(Object.create(null), {
  invalid_username: 'regUsername', username_taken: 'regUsername', invalid_password: 'regPassword',
  invalid_nickname: 'regNickname', invalid_credentials: 'loginPassword',
});
function readSignin(kind) {
  const R = state.rules;
  if (kind === 'login') {
    const username = ui.loginUsername.value.trim(), password = ui.loginPassword.value;
    const error = !username ? 'Enter your username.' : checkUsername(username, R);
    if (error) return { error, field: 'loginUsername' };
    if (!password) return { error: 'Enter your password.', field: 'loginPassword' };
    return { body: { username, password } };
  }
  const username = ui.regUsername.value.trim(), password = ui.regPassword.value, nickname = trimNick(ui.regNickname.value);
  let error = checkUsername(username, R);
  if (error) return { error, field: 'regUsername' };
  if ((error = checkPassword(password, R))) return { error, field: 'regPassword' };
  if (nickname && (error = checkNickname(nickname, R))) return { error, field: 'regNickname' };
  return { body: nickname ? { username, password, nickname } : { username, password } };
}
export async function signIn(kind) {
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
    state.focusComposer = true; /* once the connection is signed in, the message box takes the focus */
    adoptSession(s);
    return;
  }
  /* a site ban: until when (local time) and why (the reason is untrusted: drawn as text) */
  const error = r.ok ? UNEXPECTED : r.code === 'site_banned' ? siteBanText(r.sanction, (ms) => dateTimeFmt.format(ms)) : r.message;
  Object.assign(form, { error, field: r.ok ? '' : FIELD_OF_CODE[r.code] || '',
    until: r.status === 429 ? Date.now() + Math.max(1, r.retryAfter ?? 1) * 1000 : 0 });
  if (r.code === 'invalid_credentials') ui.loginPassword.value = '';
  update();
  if (form.field) ui[form.field].focus();
}
export function signinCooling() {
  return state.signin.login.until > Date.now() - 1000 || state.signin.register.until > Date.now() - 1000;
}
export function selectTab(tab, focus) {
  state.signin.tab = tab;
  renderLogin();
  if (focus) (tab === 'register' ? ui.tabRegister : ui.tabLogin).focus();
}
/* The developer token form: a pasted access token (chatctl token). */
export function submitToken() {
  const token = ui.tokenInput.value.trim();
  ui.tokenInput.value = '';
  if (!token) state.signin.tokenError = 'Paste an access token first.';
  else if (token.length > TOKEN_MAX || /\s/.test(token)) state.signin.tokenError = 'That does not look like an access token.';
  else { useToken(token); closeLogin(); }
  update();
}
