// Browser tests of the web client: headless Chromium (system package, no download) driven by
// playwright-core, against the integration cluster through nginx (CHAT_TEST_LB_URL of the
// cluster.env named by CHAT_TEST_ENV). Run by tests/web/run.sh browser (ctest it.web); the rooms
// tests are in rooms.js, the shared helpers in lib.js.
// Every wait is on a condition in the page, bounded by T; nothing sleeps.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LB, DESKTOP, PHONE, PASSWORD, XSS, XSS_NICK, rnd, ROOM, dialogs, newPage, guestPage, waitText, waitFocus, shot, online,
  nodeOf, signUp, joinRoom, joined, say, sees, headerRows, apiUser, apiRoom,
} from './lib.js';

/* ROOM: a public room of its own (chat-api rooms only: the gateways refuse unknown ids unless
 * CHAT_ROOMS_ADHOC=1), named like its id */
before(async () => { await apiRoom(await apiUser('Owner'), { kind: 'public', id: ROOM, name: ROOM }); });

const alice = {}, bob = {};

test('two users on different gateways chat both ways', async () => {
  alice.page = await newPage(DESKTOP);
  bob.page = await newPage(PHONE);
  alice.user = await signUp(alice.page, 'Alice');
  await waitFocus(alice.page, 'composer-input'); /* the message box takes the focus after sign-in */
  await joinRoom(alice.page, ROOM);
  await waitText(alice.page, '#room-meta', '1 user · 1 connection');
  bob.user = await signUp(bob.page, 'Bob');
  await joinRoom(bob.page, ROOM);
  /* nginx balances each WebSocket to gw1 or gw2 (round robin per worker): reload Bob's page (a
   * new connection, same session) until the two are on different gateways. The client has no
   * WebSocket URL override on purpose: a link could otherwise send a token to any server. */
  const aNode = await nodeOf(alice.page);
  let bNode = await nodeOf(bob.page);
  for (let i = 0; i < 30 && bNode === aNode; i++) {
    await bob.page.reload();
    bNode = await nodeOf(bob.page);
  }
  assert.match(aNode, /^gw[12]$/);
  assert.match(bNode, /^gw[12]$/);
  assert.notEqual(bNode, aNode, 'could not get the two users onto different gateways');
  await waitText(bob.page, '#account-name', 'Bob');
  await waitText(alice.page, '#room-meta', '2 users · 2 connections');
  const hi = `hi Bob from ${aNode} ${rnd()}`, back = `hello Alice from ${bNode} ${rnd()}`;
  await say(alice.page, hi);
  await sees(bob.page, hi);
  await say(bob.page, back);
  await sees(alice.page, back);
  const nick = await alice.page.locator('#messages li.msg:not(.own)', { hasText: back }).locator('.nick').textContent();
  assert.equal(nick, 'Bob');
  /* the phone header: one or two rows at 390 px */
  assert.ok(await headerRows(bob.page) <= 2, `phone header takes ${await headerRows(bob.page)} rows`);
  assert.ok(await headerRows(alice.page) <= 1, 'desktop header takes one row');
  for (const [who, name] of [[alice, 'desktop'], [bob, 'phone']]) {
    await shot(who.page, `${name}-light`);
    await who.page.click('#theme-btn');
    await who.page.locator('html[data-theme="dark"]').waitFor();
    await shot(who.page, `${name}-dark`);
    await who.page.click('#theme-btn');
    await who.page.locator('html[data-theme="light"]').waitFor();
  }
});

test('a reconnect resumes the room with since: nothing missed, nothing doubled', async () => {
  assert.ok(alice.page && bob.page, 'needs the chat test');
  /* Carol's WebSocket goes through a route the test controls: it is cut, and her reconnect is
   * held back while Bob sends, so those messages can only come back through join {since} */
  const page = await newPage(DESKTOP);
  const sockets = [];
  let hold = null;
  await page.routeWebSocket(/\/ws$/, async (ws) => {
    if (hold) await hold;
    sockets.push(ws);
    ws.connectToServer();
  });
  await page.goto('/');
  await page.locator('#login-dialog[open]').waitFor();
  await page.click('#anon-btn');
  await page.locator('#login-dialog').waitFor({ state: 'hidden' });
  await joinRoom(page, ROOM);
  const before = `before the cut ${rnd()}`;
  await say(bob.page, before);
  await sees(page, before);
  let release;
  hold = new Promise((r) => { release = r; });
  await sockets[sockets.length - 1].close(); /* the connection drops */
  await page.locator('#conn:not([data-state="online"])').waitFor();
  const missed = [`missed one ${rnd()}`, `missed two ${rnd()}`];
  for (const t of missed) await say(bob.page, t); /* stored while Carol is away */
  release();
  await online(page);
  for (const t of missed) await sees(page, t);
  const after = `after the cut ${rnd()}`;
  await say(bob.page, after);
  await sees(page, after);
  for (const t of [before, ...missed, after])
    assert.equal(await page.locator('#messages li.msg .text', { hasText: t }).count(), 1, `"${t}" once`);
  assert.equal(await page.locator('#messages li.gap').count(), 0, 'recovered: no gap marker');
  await page.context().close();
});

test('an anonymous visitor sees messages, cannot send, and is told why', async () => {
  assert.ok(alice.page, 'needs the chat test');
  const page = await newPage(DESKTOP);
  await page.goto('/');
  await page.locator('#login-dialog[open]').waitFor();
  await page.click('#anon-btn');
  await page.locator('#login-dialog').waitFor({ state: 'hidden' });
  await joinRoom(page, ROOM);
  await waitText(page, '#room-meta', /^2 users · 3 connections$/); /* guests count as connections only */
  await waitText(page, '#composer-hint', 'You are watching as a guest. Sign in to send messages.');
  await waitText(page, '#account-name', 'Guest');
  assert.equal(await page.isDisabled('#composer-input'), true);
  assert.equal(await page.isDisabled('#send-btn'), true);
  assert.equal(await page.isVisible('#composer-login'), true, 'offers to sign in');
  const text = `for the guest ${rnd()}`;
  await say(alice.page, text);
  await sees(page, text);
  await page.context().close();
});

test('markup in a message and in a nickname renders as text', async () => {
  assert.ok(alice.page, 'needs the chat test');
  const page = await newPage(DESKTOP);
  await signUp(page, XSS_NICK);
  await joinRoom(page, ROOM);
  const text = `${XSS} ${rnd()}`;
  await say(page, text);
  await sees(alice.page, text);
  const mine = alice.page.locator('#messages li.msg', { hasText: text });
  assert.equal(await mine.locator('.text').textContent(), text, 'the literal text is shown');
  assert.equal(await mine.locator('.nick').textContent(), XSS_NICK, 'the literal nickname is shown');
  assert.equal(await page.textContent('#account-name'), XSS_NICK);
  for (const p of [page, alice.page]) {
    assert.equal(await p.locator('#messages img, #messages svg, .topbar img, .topbar svg').count(), 0, 'no element was created');
  }
  assert.deepEqual(dialogs, [], 'no dialog fired');
  await page.context().close();
});

test('register and sign-in validation messages', async () => {
  assert.ok(alice.user, 'needs the chat test');
  const page = await newPage(DESKTOP);
  await page.goto('/');
  await page.locator('#login-dialog[open]').waitFor();
  await page.click('#tab-register');
  await page.locator('#register-panel:not([hidden])').waitFor();
  assert.equal(await page.isHidden('#login-panel'), true);
  await page.fill('#reg-username', 'ab');
  await page.fill('#reg-password', PASSWORD);
  await page.click('#register-submit');
  await waitText(page, '#register-error', /^The username is too short/);
  await waitFocus(page, 'reg-username');
  assert.equal(await page.getAttribute('#reg-username', 'aria-invalid'), 'true');
  await page.fill('#reg-username', `w_${rnd()}`);
  await page.fill('#reg-password', 'abc1');
  await page.click('#register-submit');
  await waitText(page, '#register-error', 'The password is too short: use at least 8 characters.');
  await waitFocus(page, 'reg-password');
  await page.fill('#reg-password', 'abcdefghij');
  await page.click('#register-submit');
  await waitText(page, '#register-error', 'The password needs at least one digit.');
  await page.fill('#reg-password', PASSWORD);
  await page.fill('#reg-username', alice.user); /* the server's answer: taken */
  await page.click('#register-submit');
  await waitText(page, '#register-error', /taken/i);
  await page.click('#tab-login');
  await page.locator('#login-panel:not([hidden])').waitFor();
  await page.fill('#login-username', alice.user);
  await page.fill('#login-password', 'wrong password 1');
  await page.click('#login-submit');
  await waitText(page, '#login-error', /^Wrong username or password/i);
  await waitFocus(page, 'login-password');
  assert.equal(await page.inputValue('#login-password'), '', 'the wrong password is cleared');
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  await waitText(page, '#account-name', 'Alice');
  await waitFocus(page, 'composer-input');
  await page.context().close();
});

test('the theme survives a reload, applied before the app code runs', async () => {
  const page = await newPage(DESKTOP);
  await page.goto('/');
  await page.locator('#login-dialog[open]').waitFor();
  await page.click('#anon-btn');
  assert.equal(await page.getAttribute('html', 'data-theme'), null, 'follows the system (light) at first');
  await page.click('#theme-btn');
  await page.locator('html[data-theme="dark"]').waitFor();
  await page.reload();
  await page.locator('#theme-btn[aria-pressed="true"]').waitFor();
  assert.equal(await page.getAttribute('html', 'data-theme'), 'dark');
  /* without the app modules, web/theme.js alone still applies it */
  await page.route('**/js/*.js', (r) => r.abort());
  await page.reload();
  assert.equal(await page.getAttribute('html', 'data-theme'), 'dark');
  await page.unroute('**/js/*.js');
  await page.reload();
  await page.click('#theme-btn');
  /* light, the system's theme: a choice all the same, kept */
  await page.locator('html[data-theme="light"]').waitFor();
  await page.reload();
  await page.locator('#theme-btn[aria-pressed="false"]').waitFor();
  assert.equal(await page.getAttribute('html', 'data-theme'), 'light');
  await page.context().close();
});

/* The page's background colour: the theme actually drawn (style.css --bg). */
const LIGHT_BG = 'rgb(244, 245, 247)', DARK_BG = 'rgb(15, 17, 21)';
const bg = (page) => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
async function waitBg(page, want) {
  await page.waitForFunction((w) => getComputedStyle(document.body).backgroundColor === w, want)
    .catch(async (e) => { throw new Error(`background: want ${want}, have ${await bg(page)}: ${e.message}`); });
}

test('a dark system: light and then dark can be chosen, and dark stays chosen after a reload', async () => {
  const page = await guestPage(DESKTOP, 'dark');
  await page.locator('#theme-btn[aria-pressed="true"]').waitFor();
  assert.equal(await page.getAttribute('html', 'data-theme'), null, 'no choice yet: the system\'s (dark)');
  await waitBg(page, DARK_BG);
  await page.click('#theme-btn');
  await page.locator('html[data-theme="light"]').waitFor();
  await waitBg(page, LIGHT_BG);
  /* dark again: the same as the system's, and still a choice */
  await page.click('#theme-btn');
  await page.locator('html[data-theme="dark"]').waitFor();
  await page.reload();
  await page.locator('#theme-btn[aria-pressed="true"]').waitFor();
  assert.equal(await page.getAttribute('html', 'data-theme'), 'dark');
  await waitBg(page, DARK_BG);
  await page.context().close();
});

test('a theme choice holds when the system theme changes afterwards; without one the page follows it', async () => {
  const page = await guestPage(DESKTOP, 'light');
  await waitBg(page, LIGHT_BG);
  await page.emulateMedia({ colorScheme: 'dark' }); /* no choice yet: the page follows the system */
  await waitBg(page, DARK_BG);
  await page.locator('#theme-btn[aria-pressed="true"]').waitFor();
  await page.emulateMedia({ colorScheme: 'light' });
  await waitBg(page, LIGHT_BG);
  await page.click('#theme-btn');
  await page.locator('html[data-theme="dark"]').waitFor();
  await page.click('#theme-btn'); /* light on a light system: pinned as well */
  await page.locator('html[data-theme="light"]').waitFor();
  await page.emulateMedia({ colorScheme: 'dark' }); /* the system turns dark later */
  await page.waitForFunction(() => matchMedia('(prefers-color-scheme: dark)').matches);
  assert.equal(await bg(page), LIGHT_BG, 'the chosen light theme stays');
  await page.locator('#theme-btn[aria-pressed="false"]').waitFor();
  await page.reload();
  await page.locator('#theme-btn[aria-pressed="false"]').waitFor();
  assert.equal(await page.getAttribute('html', 'data-theme'), 'light');
  assert.equal(await bg(page), LIGHT_BG, 'and after a reload');
  await page.context().close();
});

test('close 4010 (too many malformed frames): no reconnect, a clear message and a reload button', async () => {
  const page = await newPage(DESKTOP);
  const servers = [];
  await page.routeWebSocket(/\/ws$/, (ws) => { servers.push(ws.connectToServer()); });
  await page.addInitScript(() => { /* counts the WebSockets the client opens */
    const Native = window.WebSocket;
    let opened = 0;
    window.wsOpened = () => opened;
    window.WebSocket = class extends Native { constructor(...args) { super(...args); opened++; } };
  });
  await page.clock.install(); /* time runs, and can be run forward: a reconnect timer would fire */
  await page.goto('/');
  await page.locator('#login-dialog[open]').waitFor();
  await page.click('#anon-btn');
  await joined(page, 'lobby'); /* the client sends nothing more now: the malformed frames come in a row */
  /* the gateway closes after CHAT_MAX_ERRORS (50 by default) malformed frames in a row; the route
   * sends them as if from the page */
  for (let i = 0; i < 50; i++) servers[0].send(`{not json ${i}`);
  await waitText(page, '#banner-text', /^Disconnected: the server closed the connection because this page sent invalid data.*Reload the page/);
  await page.locator('#conn[data-state="stopped"]').waitFor();
  assert.equal(await page.isVisible('#reload-btn'), true, 'offers a reload');
  assert.equal(await page.isVisible('#reconnect-btn'), false, 'no "Reconnect now"');
  await page.evaluate(() => window.dispatchEvent(new Event('online'))); /* the network coming back does not reconnect either */
  await page.clock.runFor(10 * 60 * 1000); /* ten minutes of timers: any backoff would have fired */
  assert.equal(await page.evaluate(() => window.wsOpened()), 1, 'no reconnect');
  assert.equal(servers.length, 1);
  await page.locator('#conn[data-state="stopped"]').waitFor();
  await page.click('#reload-btn');
  await online(page);
  assert.equal(servers.length, 2, 'a reload connects again');
  await page.context().close();
});

test('static files: revalidated (no-cache) with validators, API not cached', async () => {
  const res = await fetch(`${LB}/js/main.js`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /javascript/);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  const etag = res.headers.get('etag');
  assert.ok(etag && res.headers.get('last-modified'));
  assert.match(res.headers.get('content-security-policy') || '', /script-src 'self'/);
  const again = await fetch(`${LB}/js/main.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  const cfg = await fetch(`${LB}/api/v1/config`);
  assert.equal(cfg.status, 200);
  assert.equal(cfg.headers.get('cache-control'), 'no-store');
});
