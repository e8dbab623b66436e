/* account.js - the account panel (nickname, password, sign-in history) and signing out. */
import { checkNickname, checkPassword, fmtNum, int, parseLogin, parseUser, plural, str, trimNick } from './proto.js';
import { SS, state, store } from './state.js';
import { UNEXPECTED, apiErrorText, auth, authedFetch, clearSession } from './api.js';
import { reconnectNow } from './ws.js';
import { ui, update } from './ui.js';

const LOGINS_PAGE = 20;

export function resetAccountPanel() {
  const a = state.acct;
  Object.assign(a, { gen: a.gen + 1, busy: '', load: '', loadErr: false, nickMsg: '', nickErr: false, pwMsg: '',
    pwErr: false, pwField: '', msg: '', msgErr: false, logins: [], next: null, loading: false, loaded: false, loginsErr: '' });
}
export function openAccount() {
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
export function closeAccount() { if (ui && ui.accountDialog.open) ui.accountDialog.close(); }
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
export async function loadLogins(first) {
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
export async function changeNickname() {
  const a = state.acct;
  if (a.busy) return;
  const nickname = trimNick(ui.nickInput.value);
  const error = checkNickname(nickname, state.rules);
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
export async function changePassword() {
  const a = state.acct;
  if (a.busy) return;
  const current = ui.pwCurrent.value, next = ui.pwNew.value;
  let error = '', field = '';
  if (!current) [error, field] = ['Enter your current password.', 'pwCurrent'];
  else if ((error = checkPassword(next, state.rules))) field = 'pwNew';
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
export async function logout(all = false) {
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
