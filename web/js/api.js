/* api.js - the REST accounts API (/api/v1/, proto/README.md) and the session: access and refresh
 * tokens, renewal, sign-out.
 *
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
import { SIGNOUT_REASONS, errorText, mergeLimits, mergeRules, newCmid, parseSanction, parseSession, plural, sentence, str } from './proto.js';
import { LS, SS, lsOk, state, store } from './state.js';
import { isOpen, net, reconnectNow, sendAuth } from './ws.js';
import { openLogin, ui, update } from './ui.js';
import { closeAccount, resetAccountPanel } from './account.js';

const REFRESH_KEY = 'chat.refresh'; /* localStorage: the refresh token */
const LOCK_KEY = 'chat.refresh.lock'; /* localStorage lease, only where the Web Locks API is missing */
const API_TIMEOUT_MS = 15000;
const LOCK_SETTLE_MS = 100; /* see refreshSession */
const RENEW_MARGIN_MS = 30000; /* an access token this close to its expiry is renewed before use */
const RENEW_RETRY_MS = 5000, RENEW_RETRY_MAX_MS = 60000; /* refresh failed for a transient reason */
export const UNEXPECTED = 'The server gave an unexpected answer.';

export const auth = { refresh: '', expAt: 0, refreshing: null, renewedAt: 0, retryMs: 0, loggingOut: false, switched: false };
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

export function refreshToken() { return lsOk ? (store.get(LS, REFRESH_KEY) || '') : auth.refresh; }
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
 * {ok: false, status (0 = no answer), code, message, retryAfter (seconds, for 429), sanction
 * (a sanction error such as site_banned: {code, until, reason} from the error object, else
 * null)}. */
export async function api(method, path, body, token) {
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
  const code = str(e.code) || `http_${res.status}`;
  return { ok: false, status: res.status, code, message: sentence(e.message) || `The server answered with status ${res.status}.`,
    retryAfter: res.status === 429 && ra >= 0 ? ra : null, sanction: parseSanction(code, e) };
}
/* The server's message; for 429 with the Retry-After wait. */
export function apiErrorText(r) {
  if (r.status !== 429) return r.message;
  return r.message + (r.retryAfter !== null ? ` Try again in ${plural(r.retryAfter, 'second', 'seconds')}.` : ' Try again later.');
}
/* GET /api/v1/config: the server's limits and validation rules (the defaults apply without it). */
export async function fetchConfig() {
  try {
    const res = await fetch('/api/v1/config', { cache: 'no-store', credentials: 'same-origin' });
    if (!res.ok) return;
    const cfg = await res.json();
    mergeLimits(state.limits, cfg && cfg.limits);
    const room = mergeRules(state.rules, cfg && cfg.rules);
    if (room) state.roomRule = room;
    update();
  } catch { /* offline or not a chat gateway: the defaults and hello limits apply */ }
}

/* ---- sessions ---- */
/* A session object (register, login or refresh): remember it, and sign the connection in with it.
 * A refresh has stored its new refresh token already, under the lock (stored = true): storing it
 * again here could overwrite a newer one from another tab. */
export function adoptSession(s, stored = false) {
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
export async function renew() {
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
export function authenticate() {
  if (auth.loggingOut) return;
  if (tokenStale() && refreshToken()) { renew(); return; }
  if (state.token && isOpen()) sendAuth();
}
/* A REST call with the access token (renewed first when stale, and once more on token_expired). */
export async function authedFetch(method, path, body) {
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
/* chat-api finds a message (edit, delete, report, pin) only once the persister has stored it, a
 * moment after its ack (usually < 1 s, seconds under load: proto/README.md section 9). So a
 * not_found about a message sent freshMs ago or less (by this clock; a future ts counts as fresh)
 * is asked again after pauseMs, up to tries requests in all, before it is believed. An object, so
 * that tests can shorten the pause. */
export const msgRetry = { freshMs: 10000, pauseMs: 300, tries: 8 };
const notStoredYet = (r, sentAt) => r.status === 404 && r.code === 'not_found' && Date.now() - sentAt < msgRetry.freshMs;
/* authedFetch about a message of the room stream whose server timestamp is sentAt (ms since the
 * epoch): the same answer, except that a fresh message's not_found is tried again (msgRetry). */
export async function messageFetch(method, path, body, sentAt) {
  let r = await authedFetch(method, path, body);
  for (let n = 1; n < msgRetry.tries && notStoredYet(r, sentAt); n++) {
    await sleep(msgRetry.pauseMs);
    r = await authedFetch(method, path, body);
  }
  return r;
}
/* Forget the session in this tab (the server is not told). */
export function clearSession() {
  clearTimeout(net.timers.renew);
  dropRefresh(auth.refresh);
  Object.assign(auth, { refresh: '', expAt: 0, retryMs: 0 });
  Object.assign(state, { token: '', account: null, user: null, nick: '', authPending: false });
  resetAccountPanel();
}
/* The session is over (revoked, expired beyond renewal, or refused): back to guest mode, say why,
 * offer a new sign-in. */
export function signedOut(reason) {
  if (ui && state.account && !ui.loginUsername.value) ui.loginUsername.value = state.account.username; /* for "sign in again" */
  clearSession();
  Object.assign(state, { authNotice: `Signed out: ${SIGNOUT_REASONS[reason] || reason}.`, authOffer: true });
  closeAccount();
  update();
}
/* The server refused our auth frame. */
export function authRefused(code, message) {
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
/* A token pasted by a developer (chatctl token): no account, no refresh. */
export function useToken(token) {
  clearSession();
  Object.assign(state, { token, anon: false, authNotice: '', authOffer: false });
  state.signin.tokenError = '';
  auth.renewedAt = Date.now();
  /* a connection cannot switch users: start a fresh one if it already has an identity */
  if (state.user) { state.user = null; reconnectNow(); } else if (isOpen()) sendAuth();
  update();
}
