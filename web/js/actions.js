/* actions.js - what the user asks for (join, leave, send, sign in, theme...): state changes, then
 * a render. */
import { ERRORS, TOKEN_MAX, checkNickname, checkPassword, checkUsername, cleanText, errorText, newCmid, parseSession,
  trimNick } from './proto.js';
import { LS, SS, THEME_KEY, activeRoom, insertMsg, makeMsg, newRoom, nextOrder, removeMsg, saveRooms, sendBlock, state,
  store, validRoom } from './state.js';
import { UNEXPECTED, adoptSession, api, useToken } from './api.js';
import { logout } from './account.js';
import { isOpen, sendJoin, sendLeave, transmit } from './ws.js';
import { applyTheme, autosize, closeLogin, effectiveTheme, renderLogin, ui, update } from './ui.js';

/* ---- rooms ---- */
export function selectRoom(id) {
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
export function joinRoom(name) {
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
export function joinFailed(id, code, message) {
  const room = state.rooms.get(id);
  if (room && !room.joined) {
    state.rooms.delete(id);
    if (state.active === id) selectRoom('');
    saveRooms();
  }
  state.joinError = `Could not join #${id}: ${errorText(code, message)}`;
}
export function leaveRoom(id) {
  const room = state.rooms.get(id);
  if (!room) return;
  if (isOpen() && room.joined) sendLeave(id);
  for (const m of room.msgs) if (m.cmid) state.pending.delete(m.cmid);
  state.rooms.delete(id);
  if (state.active === id) selectRoom('');
  saveRooms();
  ui.joinInput.focus();
  update();
}

/* ---- messages ---- */
/* Shows a new own message as pending (or reuses a refused one) and sends it. */
function sendMessage(room, m) {
  Object.assign(m, { status: 'pending', code: '', detail: '', cmid: newCmid(), order: nextOrder(), seq: null, ts: Date.now() });
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
export function toggleTheme() {
  const next = effectiveTheme(state.theme) === 'dark' ? 'light' : 'dark';
  /* back to following the system when the choice matches it */
  state.theme = next === effectiveTheme('auto') ? 'auto' : next;
  if (state.theme === 'auto') store.del(LS, THEME_KEY); else store.set(LS, THEME_KEY, state.theme);
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
  Object.assign(form, { error: r.ok ? UNEXPECTED : r.message, field: r.ok ? '' : FIELD_OF_CODE[r.code] || '',
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
