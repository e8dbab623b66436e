// Shared by the browser tests (browser.js, rooms.js, moderation.js, edits.js, pins.js): the cluster's addresses, the browser,
// pages and the waits. Every wait is on a condition in the page, bounded by T; nothing sleeps.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const env = Object.fromEntries(readFileSync(mustEnv('CHAT_TEST_ENV'), 'utf8').split('\n')
  .filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
export const LB = env.CHAT_TEST_LB_URL;
export const MULT = Number(process.env.CHAT_TEST_TIMEOUT_MULT || '1') || 1;
export const T = 15000 * MULT; /* the bound of every wait */
export const SHOTS = process.env.CHAT_WEB_SCREENSHOTS || '';
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };
export const PASSWORD = 'correct horse 42';
export const XSS = '<img src=x onerror=alert(1)>';
export const XSS_NICK = '<svg onload=alert()>'; /* nicknames are at most 20 code points */

function mustEnv(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through ctest, or point it at a cluster.env)`);
  return v;
}
export const rnd = () => randomBytes(4).toString('hex');
export const ROOM = `web-${rnd()}`; /* a room of its own: exact presence counts, no other test's traffic */

export let browser;
export const dialogs = []; /* every JavaScript dialog (alert...) any page opened: there must be none */

before(async () => {
  assert.ok(LB, 'CHAT_TEST_LB_URL missing in cluster.env');
  browser = await chromium.launch({ executablePath: process.env.CHAT_CHROMIUM || '/usr/bin/chromium' });
});
after(async () => { if (browser) await browser.close(); });

/* A page in a context of its own; colorScheme: the system theme it emulates (light or dark). */
export async function newPage(viewport = DESKTOP, colorScheme = 'light') {
  const ctx = await browser.newContext({ viewport, colorScheme, baseURL: LB });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => { console.error(`page error: ${e.message}`); });
  return page;
}
/* A guest page: the sign-in dialog answered with "Continue as guest". */
export async function guestPage(viewport = DESKTOP, colorScheme = 'light') {
  const page = await newPage(viewport, colorScheme);
  await page.goto('/');
  await page.locator('#login-dialog[open]').waitFor();
  await page.click('#anon-btn');
  await page.locator('#login-dialog').waitFor({ state: 'hidden' });
  return page;
}
/* Waits until the element's text is exactly (string) or matches (RegExp) want. */
export async function waitText(page, sel, want) {
  const src = want instanceof RegExp ? { re: want.source, flags: want.flags } : { s: want };
  try {
    await page.waitForFunction(([sel, w]) => {
      const n = document.querySelector(sel);
      const t = n ? n.textContent.trim() : null;
      return t !== null && (w.re !== undefined ? new RegExp(w.re, w.flags).test(t) : t === w.s);
    }, [sel, src], { timeout: T });
  } catch (e) {
    const got = await page.locator(sel).first().textContent().catch(() => null);
    throw new Error(`${sel}: want ${want}, have ${JSON.stringify(got)}: ${e.message}`);
  }
}
export async function waitFocus(page, id) {
  try { await page.waitForFunction((id) => document.activeElement && document.activeElement.id === id, id, { timeout: T }); } catch (e) {
    const got = await page.evaluate(() => document.activeElement && (document.activeElement.id || document.activeElement.tagName));
    throw new Error(`focus: want #${id}, have ${got}: ${e.message}`);
  }
}
export async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}
export async function online(page) { await page.locator('#conn[data-state="online"]').waitFor(); }
export async function nodeOf(page) {
  await online(page);
  return (await page.textContent('#conn-node')).replace('·', '').trim();
}
/* Registers a new account through the sign-in dialog; resolves once the connection is signed in. */
export async function signUp(page, nickname) {
  const username = `w_${rnd()}`;
  await page.goto('/');
  await page.locator('#login-dialog[open]').waitFor();
  await page.click('#tab-register');
  await page.fill('#reg-username', username);
  await page.fill('#reg-password', PASSWORD);
  await page.fill('#reg-nickname', nickname);
  await page.click('#register-submit');
  await waitText(page, '#account-name', nickname);
  return username;
}
/* The join form; the title is the room's name (rooms created by apiRoom are named like their id). */
export async function joinRoom(page, room) {
  if (!(await page.isVisible('#join-input'))) await page.click('#nav-toggle'); /* phone: the room drawer */
  await page.fill('#join-input', room);
  await page.press('#join-input', 'Enter');
  await waitText(page, '#room-title', new RegExp(`^#?${room.replace(/[.]/g, '\\.')}$`));
}

/* ---- REST (chat-api through nginx), for set-up and checks outside the pages ---- */
/* One call; resolves to {status, data} (data: the JSON body or null). */
export async function rest(method, path, token, body) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(LB + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  return { status: res.status, data };
}
/* A new account through the API: {username, token, id}. */
export async function apiUser(nickname) {
  const username = `w_${rnd()}`;
  const r = await rest('POST', '/api/v1/auth/register', null, { username, password: PASSWORD, nickname });
  assert.equal(r.status, 201, `register: ${JSON.stringify(r.data)}`);
  return { username, token: r.data.access_token, id: r.data.user.id, nickname };
}
/* A room created through the API by user (the owner); resolves to the room object. */
export async function apiRoom(user, body) {
  const r = await rest('POST', '/api/v1/rooms', user.token, body);
  assert.equal(r.status, 201, `create room: ${JSON.stringify(r.data)}`);
  return r.data;
}
/* A message through the API (POST .../messages); resolves to the ack. */
export async function apiSay(user, room, text) {
  const r = await rest('POST', `/api/v1/rooms/${encodeURIComponent(room)}/messages`, user.token, { text });
  assert.ok(r.status === 200 || r.status === 201, `send: ${r.status} ${JSON.stringify(r.data)}`);
  return r.data;
}
/* The access token `token` (a JWT of chat-api) signed again with the cluster's key (CHAT_JWT_KEYS:
 * `secret`, kid k1, or `kid:secret,...`) to expire at exp (seconds): the same user and session,
 * a token that runs out on an open socket within the test. */
export function withExp(token, exp) {
  const [h, p] = token.split('.');
  const kid = JSON.parse(Buffer.from(h, 'base64url').toString()).kid || 'k1';
  const spec = env.CHAT_JWT_KEYS || '';
  const keys = spec.includes(':') ? spec.split(',').map((k) => [k.slice(0, k.indexOf(':')), k.slice(k.indexOf(':') + 1)]) : [['k1', spec]];
  const key = keys.find(([id]) => id === kid);
  assert.ok(key, `no key ${kid} in CHAT_JWT_KEYS`);
  const body = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), exp })).toString('base64url');
  return `${h}.${body}.${createHmac('sha256', key[1]).update(`${h}.${body}`).digest('base64url')}`;
}
/* Waits until fn() resolves to a truthy value (polled), bounded by T. */
export async function until(what, fn) {
  const end = Date.now() + T;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => { setTimeout(r, 100); });
  }
}
/* Signs page in through the sign-in dialog as an existing (API) user. */
export async function signIn(page, user) {
  await page.goto('/');
  await page.locator('#login-dialog[open]').waitFor();
  await page.fill('#login-username', user.username);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  await waitText(page, '#account-name', user.nickname);
}
/* The room list entry of a room (by id). */
export const roomItem = (page, id) => page.locator(`#room-list li[data-key="${id}"]`);
/* Waits until the page's socket has joined room id (its live messages reach the page). */
/* The room's entry says the socket joined it. Attached, not visible: on a phone the room drawer
 * closes as the room opens, and whether the entry is still on screen when the join's answer
 * comes depends on the drawer's 0.2 s transition against the round trip (timing luck). */
export async function joined(page, id) {
  await page.locator(`#room-list li[data-key="${id}"][data-joined="true"]`).waitFor({ state: 'attached' });
}
export async function waitCanSend(page) {
  await page.waitForFunction(() => !document.querySelector('#composer-input').disabled
    && document.querySelector('#composer-hint').textContent === '', null, { timeout: T });
}
export async function say(page, text) {
  await waitCanSend(page);
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
  await page.locator('#messages li.msg.own.confirmed .text', { hasText: text }).waitFor();
}
export async function sees(page, text) { await page.locator('#messages li.msg .text', { hasText: text }).waitFor(); }
/* A new page (viewport: DESKTOP by default) signed in as user, in room (joined on the socket). */
export async function inRoom(user, room, viewport) {
  const page = await newPage(viewport);
  await signIn(page, user);
  await joinRoom(page, room);
  await joined(page, room);
  return page;
}
/* The message of the page whose text has text. */
export const msgLi = (page, text) => page.locator('#messages li.msg', { has: page.locator('.text', { hasText: text }) });
/* The labels of the actions the message with text offers on page (hovered). */
export async function actionsOf(page, text) {
  const li = msgLi(page, text);
  await li.hover();
  return li.locator('.msg-actions button').allTextContents();
}
/* Number of rows the visible header items take. */
export function headerRows(page) {
  return page.evaluate(() => {
    const items = [...document.querySelector('.topbar').children]
      .filter((e) => e.getClientRects().length && !e.classList.contains('sr-only'))
      .map((e) => e.getBoundingClientRect()).sort((a, b) => a.top - b.top);
    let rows = 0, bottom = -Infinity;
    for (const r of items) {
      if (r.top >= bottom - 2) { rows++; bottom = r.bottom; } else bottom = Math.max(bottom, r.bottom);
    }
    return rows;
  });
}

