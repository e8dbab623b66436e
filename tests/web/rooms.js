// Browser tests of the rooms product (issue 11): the lobby's limit and guests, private rooms and
// invite links, unread badges, history with infinite scroll, a gateway dying under a reader, a
// room left on another device, a group room kept through an access token expiring on the open
// socket, and the new room dialog's description limit.
// Headless Chromium against the integration cluster (see browser.js, lib.js); run by
// tests/web/run.sh browser. Every wait is on a condition, bounded by T; nothing sleeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DESKTOP, MULT, PASSWORD, T, apiRoom, apiSay, apiUser, dialogs, joined, newPage, nodeOf, online, rest, rnd, roomItem, say, sees, signIn,
  until, waitFocus, waitText, withExp,
} from './lib.js';

const CLUSTER = join(dirname(fileURLToPath(import.meta.url)), '../integration/fixtures/cluster.sh');
const CLUSTER_DIR = dirname(process.env.CHAT_TEST_ENV || '.');
const texts = (page) => page.$$eval('#messages li.msg .text', (ns) => ns.map((n) => n.textContent));
/* Every text of want shown exactly once, in this order (other messages may sit between them). */
async function onceInOrder(page, want) {
  const got = await texts(page);
  for (const t of want) assert.equal(got.filter((x) => x === t).length, 1, `"${t}" shown once`);
  const idx = want.map((t) => got.indexOf(t));
  assert.deepEqual(idx, [...idx].sort((a, b) => a - b), 'in send order');
}
async function openRoom(page, id) {
  await roomItem(page, id).locator('.room-open').click();
  await page.locator(`#room-list li.active[data-key="${id}"]`).waitFor();
}
const badge = (page, id) => roomItem(page, id).locator('.badge');

test('the lobby: a 30 code point counter; a guest watches but cannot send', async () => {
  const page = await newPage(DESKTOP), guest = await newPage(DESKTOP);
  const user = await apiUser('Lobbyist');
  await signIn(page, user);
  await waitText(page, '#room-title', 'Lobby');
  await waitText(page, '#counter', '0/30');
  await page.fill('#composer-input', '😀'.repeat(30)); /* code points, not UTF-16 units */
  await waitText(page, '#counter', '30/30');
  assert.equal(await page.locator('#counter.over').count(), 0);
  await page.fill('#composer-input', 'x'.repeat(31));
  await waitText(page, '#counter', '31/30');
  await page.locator('#counter.over').waitFor();
  await page.locator('#send-btn:disabled').waitFor();
  await page.press('#composer-input', 'Enter'); /* refused locally: nothing is sent */
  assert.equal(await page.locator('#messages li.msg.own').count(), 0);
  await guest.goto('/');
  await guest.locator('#login-dialog[open]').waitFor();
  await guest.click('#anon-btn');
  await waitText(guest, '#room-title', 'Lobby');
  await waitText(guest, '#composer-hint', 'You are watching as a guest. Sign in to send messages.');
  assert.equal(await guest.isDisabled('#composer-input'), true);
  assert.equal(await guest.isDisabled('#send-btn'), true);
  await page.fill('#composer-input', '');
  await waitText(page, '#counter', '0/30');
  const hi = `lobby ${rnd()}`;
  await say(page, hi);
  await sees(guest, hi);
  /* a guest cannot open a restricted room by id */
  await guest.fill('#join-input', '_p1');
  await guest.press('#join-input', 'Enter');
  await waitText(guest, '#join-error', /^Could not open _p1/);
  await page.context().close();
  await guest.context().close();
});

test('a private room is invisible to others until its invite link is redeemed', async () => {
  const owner = await apiUser('Owner'), other = await apiUser('Other');
  const page = await newPage(DESKTOP), otherPage = await newPage(DESKTOP);
  await signIn(page, owner);
  const name = `Secret ${rnd()}`;
  await page.click('#create-btn');
  await page.selectOption('#create-kind', 'private');
  await page.fill('#create-name', name);
  await page.click('#create-submit');
  await page.locator('#create-dialog').waitFor({ state: 'hidden' }).catch(async (e) => {
    throw new Error(`create: ${await page.textContent('#create-error')}: ${e.message}`);
  });
  await waitText(page, '#room-title', name);
  const id = await page.getAttribute('#room-list li.active', 'data-key');
  assert.match(id, /^_p/);
  /* invisible: not in the directory, 404 by id, for a signed-in non-member and for a guest */
  const dir = await rest('GET', `/api/v1/rooms?q=${encodeURIComponent(name)}`, other.token);
  assert.equal(dir.status, 200);
  assert.deepEqual(dir.data.rooms.map((r) => r.id), []);
  assert.equal((await rest('GET', `/api/v1/rooms/${id}`, other.token)).status, 404);
  assert.equal((await rest('GET', `/api/v1/rooms/${id}`)).status, 404);
  assert.equal((await rest('GET', `/api/v1/rooms/${id}/messages`, other.token)).status, 404);
  /* the owner's invite link */
  await page.click('#room-info');
  await page.locator('#invite-section:not([hidden])').waitFor();
  await page.click('#invite-btn');
  await page.waitForFunction(() => /#\/invite\/[A-Za-z0-9_-]+$/.test(document.querySelector('#invite-link').value));
  const link = await page.inputValue('#invite-link');
  await page.locator('#member-list li', { hasText: 'Owner' }).waitFor();
  await page.click('#room-close');
  await signIn(otherPage, other);
  await otherPage.goto(link);
  await waitText(otherPage, '#room-title', name);
  assert.equal(await otherPage.evaluate(() => location.hash), '', 'the code leaves the address bar');
  assert.equal((await rest('GET', `/api/v1/rooms/${id}`, other.token)).status, 200, 'visible to the new member');
  const hi = `members only ${rnd()}`, back = `got it ${rnd()}`;
  await say(otherPage, hi); /* a restricted room: the sockets joined with room grants */
  await sees(page, hi);
  await say(page, back);
  await sees(otherPage, back);
  /* opened while signed out: redeemed once signed in */
  const late = await apiUser('Late');
  const latePage = await newPage(DESKTOP);
  await latePage.goto(link);
  await latePage.locator('#login-dialog[open]').waitFor();
  await latePage.fill('#login-username', late.username);
  await latePage.fill('#login-password', PASSWORD);
  await latePage.click('#login-submit');
  await waitText(latePage, '#room-title', name);
  await sees(latePage, back); /* history */
  await latePage.context().close();
  assert.deepEqual(dialogs, []);
  await page.context().close();
  await otherPage.context().close();
});

test('unread badges grow for rooms not open, clear when opened, and survive a reload', async () => {
  const reader = await apiUser('Reader'), writer = await apiUser('Writer');
  const room = await apiRoom(writer, { kind: 'group', name: `Group ${rnd()}` });
  const inv = await rest('POST', `/api/v1/rooms/${room.id}/invites`, writer.token, { max_uses: 1 });
  assert.equal(inv.status, 201);
  assert.equal((await rest('POST', `/api/v1/invites/${inv.data.code}/redeem`, reader.token)).status, 200);
  const page = await newPage(DESKTOP);
  await signIn(page, reader);
  await joined(page, room.id);
  await openRoom(page, 'lobby');
  for (let i = 1; i <= 3; i++) await apiSay(writer, room.id, `unread ${i}`);
  await waitText(page, `#room-list li[data-key="${room.id}"] .badge`, /^3\s*unread$/);
  /* the server counts what the persister stored, a moment after the live stream: the page reads
   * it once, at load */
  await until('unread 3 on the server', async () => {
    const r = await rest('GET', '/api/v1/users/me/rooms', reader.token);
    const me = r.data.rooms.find((x) => x.id === room.id);
    return me && me.me.unread === 3;
  });
  await page.reload(); /* the server's count (read markers are per user) */
  await waitText(page, `#room-list li[data-key="${room.id}"] .badge`, /^3\s*unread$/);
  await openRoom(page, room.id);
  await sees(page, 'unread 3');
  await badge(page, room.id).waitFor({ state: 'hidden' });
  /* the read marker reaches the server (read frame -> chat.events -> persister) */
  await until('unread 0 on the server', async () => {
    const r = await rest('GET', '/api/v1/users/me/rooms', reader.token);
    const me = r.data.rooms.find((x) => x.id === room.id);
    return me && me.me.unread === 0;
  });
  await openRoom(page, 'lobby');
  await page.reload();
  await joined(page, room.id);
  assert.equal(await badge(page, room.id).isHidden(), true, 'read before the reload');
  await apiSay(writer, room.id, 'unread 4');
  await waitText(page, `#room-list li[data-key="${room.id}"] .badge`, /^1\s*unread$/);
  await page.context().close();
});

test('history: a reload shows it; scrolling up loads older pages, the view kept', async () => {
  const user = await apiUser('Historian');
  const room = await apiRoom(user, { kind: 'public', name: `History ${rnd()}` });
  const all = [];
  for (let i = 0; i < 120; i++) {
    const t = `h ${String(i).padStart(3, '0')}`;
    all.push(t);
    await apiSay(user, room.id, t);
  }
  const page = await newPage(DESKTOP);
  await signIn(page, user);
  await openRoom(page, room.id);
  await sees(page, 'h 119');
  await sees(page, 'h 070');
  assert.equal(await page.locator('#messages li.msg', { hasText: 'h 069' }).count(), 0, 'one page of 50');
  for (let older = 2; older <= 3; older++) { /* two older pages: 020-069, 000-019 */
    const first = await page.locator('#messages li.msg').first().textContent();
    /* a render is queued as the view reaches the top (here an input event's; on a live page a
     * presence count's): the older page must come all the same */
    await page.evaluate(() => {
      document.querySelector('#composer-input').dispatchEvent(new Event('input'));
      document.querySelector('#scroller').scrollTop = 0;
    });
    await sees(page, older === 2 ? 'h 020' : 'h 000');
    /* the message that was on top is still in view: the page did not jump to the new top */
    const kept = await page.evaluate((t) => {
      const sc = document.querySelector('#scroller').getBoundingClientRect();
      const li = [...document.querySelectorAll('#messages li.msg')].find((n) => n.textContent === t).getBoundingClientRect();
      return li.bottom > sc.top && li.top < sc.bottom;
    }, first);
    assert.ok(kept, `the view stays at "${first}"`);
  }
  await waitText(page, '#history-status', 'The beginning of the room.');
  assert.deepEqual(await texts(page), all, 'every message once, in order');
  await page.reload();
  await openRoom(page, room.id);
  await sees(page, 'h 119');
  await sees(page, 'h 070');
  await page.context().close();
});

test('a gateway dies: the reconnected page shows every message once, in order', async () => {
  const reader = await apiUser('Survivor'), writer = await apiUser('Talker');
  const room = await apiRoom(writer, { kind: 'public', name: `Crash ${rnd()}` });
  assert.equal((await rest('POST', `/api/v1/rooms/${room.id}/join`, reader.token)).status, 200);
  const page = await newPage(DESKTOP);
  await signIn(page, reader);
  await openRoom(page, room.id);
  await joined(page, room.id);
  const before = [`before 1 ${rnd()}`, `before 2 ${rnd()}`];
  for (const t of before) await apiSay(writer, room.id, t);
  for (const t of before) await sees(page, t);
  const gw = await nodeOf(page);
  assert.match(gw, /^gw[12]$/);
  execFileSync(CLUSTER, ['kill', gw, CLUSTER_DIR], { stdio: 'inherit', timeout: T });
  try {
    await page.locator('#conn:not([data-state="online"])').waitFor();
    const during = [];
    for (let i = 1; i <= 5; i++) {
      during.push(`while down ${i} ${rnd()}`);
      await apiSay(writer, room.id, during[during.length - 1]);
    }
    await online(page); /* on the other gateway */
    assert.notEqual(await nodeOf(page), gw);
    for (const t of during) await sees(page, t);
    const after = `after ${rnd()}`;
    await apiSay(writer, room.id, after);
    await sees(page, after);
    await onceInOrder(page, [...before, ...during, after]);
    assert.equal(await page.locator('#messages li.gap').count(), 0, 'no gap marker');
    /* own messages as well: sent, acknowledged once */
    const mine = `mine ${rnd()}`;
    await say(page, mine);
    await onceInOrder(page, [...before, ...during, after, mine]);
  } finally {
    execFileSync(CLUSTER, ['start', gw, CLUSTER_DIR], { stdio: 'inherit', timeout: 4 * T });
  }
  await page.context().close();
});

test('recovery refused by the gateway: the gap is filled from history, nothing doubled', async () => {
  const reader = await apiUser('Gapless'), writer = await apiUser('Sender');
  const room = await apiRoom(writer, { kind: 'public', name: `Gap ${rnd()}` });
  assert.equal((await rest('POST', `/api/v1/rooms/${room.id}/join`, reader.token)).status, 200);
  /* the page's socket goes through a route the test controls: it is cut, the reconnect held back
   * while messages are sent, and then the gateway's replay is hidden (recovered:false, replayed
   * messages dropped): only history can fill the gap */
  const page = await newPage(DESKTOP);
  const sockets = [];
  let hold = null, hide = false;
  await page.routeWebSocket(/\/ws$/, async (ws) => {
    if (hold) await hold;
    const server = ws.connectToServer();
    sockets.push(ws);
    let replay = 0;
    server.onMessage((m) => {
      let f = null;
      try { f = JSON.parse(m); } catch { f = null; }
      if (hide && f && f.type === 'joined' && f.room === room.id && f.recovered === true) {
        replay = f.replayed || 0;
        ws.send(JSON.stringify({ ...f, recovered: false, oldest: null, replayed: undefined }));
        return;
      }
      if (hide && f && f.type === 'message' && f.room === room.id && replay > 0) { replay--; return; }
      ws.send(m);
    });
    ws.onMessage((m) => server.send(m));
  });
  await signIn(page, reader);
  await openRoom(page, room.id);
  await joined(page, room.id);
  const first = `first ${rnd()}`;
  await apiSay(writer, room.id, first);
  await sees(page, first);
  let release;
  hold = new Promise((r) => { release = r; });
  hide = true;
  await sockets[sockets.length - 1].close();
  await page.locator('#conn:not([data-state="online"])').waitFor();
  const missed = [];
  for (let i = 1; i <= 4; i++) {
    missed.push(`missed ${i} ${rnd()}`);
    await apiSay(writer, room.id, missed[missed.length - 1]);
  }
  release();
  await online(page);
  for (const t of missed) await sees(page, t);
  const live = `live ${rnd()}`;
  await apiSay(writer, room.id, live);
  await sees(page, live);
  await onceInOrder(page, [first, ...missed, live]);
  assert.equal(await page.locator('#messages li.gap').count(), 0, 'filled: no gap marker');
  await page.context().close();
});

test('directory: search, watch, join, favourite on top, leave; a direct message by username', async () => {
  const owner = await apiUser('Founder'), user = await apiUser('Visitor'), peer = await apiUser('Peer');
  const name = `Dir ${rnd()}`;
  const room = await apiRoom(owner, { kind: 'public', name, description: 'found by search' });
  const page = await newPage(DESKTOP);
  await signIn(page, user);
  await page.click('#dir-btn');
  await page.fill('#dir-input', name.toUpperCase()); /* case-insensitive */
  await page.press('#dir-input', 'Enter');
  /* the search on opening (everything, the lobby too) is replaced by this one: one hit */
  await page.waitForFunction(() => document.querySelectorAll('#dir-list li').length === 1
    && document.querySelector('#dir-status').textContent === '');
  const hit = page.locator(`#dir-list li[data-key="${room.id}"]`);
  assert.equal(await hit.count(), 1);
  await hit.locator('button[data-action="watch"]').click();
  await waitText(page, '#room-title', name);
  await page.locator('#room-join:not([hidden])').waitFor(); /* watching, not a member */
  await joined(page, room.id);
  const seen = `while watching ${rnd()}`;
  await apiSay(owner, room.id, seen);
  await sees(page, seen);
  await page.click('#room-join');
  await page.locator('#room-fav:not([hidden])').waitFor();
  assert.ok((await rest('GET', '/api/v1/users/me/rooms', user.token)).data.rooms.some((r) => r.id === room.id), 'a member now');
  await joined(page, 'lobby');
  await apiSay(user, 'lobby', `lobby is newer ${rnd()}`); /* the lobby moves above the room... */
  await page.locator('#room-list li:first-child[data-key="lobby"]').waitFor();
  await page.click('#room-fav'); /* ...until the room is a favourite */
  await page.locator(`#room-list li:first-child[data-key="${room.id}"]`).waitFor();
  await page.locator('#room-fav[aria-pressed="true"]').waitFor();
  await roomItem(page, room.id).locator('button[data-action="leave"]').click();
  await roomItem(page, room.id).waitFor({ state: 'detached' });
  await until('left on the server', async () =>
    !(await rest('GET', '/api/v1/users/me/rooms', user.token)).data.rooms.some((r) => r.id === room.id));
  /* a direct room, shown by the peer's nickname */
  await page.fill('#dm-input', peer.username);
  await page.press('#dm-input', 'Enter');
  await waitText(page, '#room-title', '@Peer');
  const dm = await page.getAttribute('#room-list li.active', 'data-key');
  /* sent at once, maybe before the socket has joined: history, or the catch-up after the join */
  assert.match(dm, /^_d\d+-\d+$/);
  const hi = `psst ${rnd()}`;
  await apiSay(peer, dm, hi);
  await sees(page, hi);
  await page.fill('#dm-input', 'w_nobody_here');
  await page.press('#dm-input', 'Enter');
  await waitText(page, '#dm-error', /w_nobody_here/);
  await page.context().close();
});

test('an unacknowledged send is sent again after a reconnect, with the same client_msg_id: stored once', async () => {
  const user = await apiUser('Resender'), watcher = await apiUser('Watcher');
  const room = await apiRoom(watcher, { kind: 'public', name: `Resend ${rnd()}` });
  assert.equal((await rest('POST', `/api/v1/rooms/${room.id}/join`, user.token)).status, 200);
  const page = await newPage(DESKTOP);
  const text = `resend me ${rnd()}`;
  let conns = 0, cmid = '';
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const conn = ++conns;
    const server = ws.connectToServer();
    /* on every connection the page never sees the message event of the send: on the first
     * neither its ack (and the socket drops), so only an ack of the resend can confirm it */
    server.onMessage((m) => {
      let f = null;
      try { f = JSON.parse(m); } catch { f = null; }
      if (f && cmid && f.client_msg_id === cmid && (f.type === 'message' || conn === 1)) return;
      ws.send(m);
    });
    ws.onMessage((m) => {
      let f = null;
      try { f = JSON.parse(m); } catch { f = null; }
      server.send(m);
      if (f && f.type === 'send' && f.text === text && conn === 1) {
        cmid = f.client_msg_id;
        ws.close(); /* the ack is lost with the connection */
      }
    });
  });
  await signIn(page, user);
  await openRoom(page, room.id);
  await say(page, text); /* waits until it shows confirmed */
  assert.ok(conns >= 2, 'reconnected');
  assert.equal(await page.locator('#messages li.msg .text', { hasText: text }).count(), 1);
  const hist = await until('the message in history', async () => {
    const r = await rest('GET', `/api/v1/rooms/${room.id}/messages?limit=50`, watcher.token);
    return r.data.messages.some((m) => m.text === text) && r.data.messages;
  });
  assert.equal(hist.filter((m) => m.text === text).length, 1, 'stored once');
  await page.context().close();
});

test('a refused room grant is replaced once; a removed member loses the room', async () => {
  const owner = await apiUser('Boss'), member = await apiUser('Member');
  const room = await apiRoom(owner, { kind: 'group', name: `Grants ${rnd()}` });
  const inv = await rest('POST', `/api/v1/rooms/${room.id}/invites`, owner.token, {});
  assert.equal((await rest('POST', `/api/v1/invites/${inv.data.code}/redeem`, member.token)).status, 200);
  const page = await newPage(DESKTOP);
  const joins = [];
  let grants = 0;
  page.on('request', (r) => { if (r.url().endsWith(`/rooms/${room.id}/grant`)) grants++; });
  await page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      let f = null;
      try { f = JSON.parse(m); } catch { f = null; }
      if (f && f.type === 'join' && f.room === room.id) {
        joins.push(f.grant);
        /* the first join carries a grant the gateway refuses (as one signed before a removal) */
        if (joins.length === 1) { server.send(JSON.stringify({ ...f, grant: `${f.grant}x` })); return; }
      }
      server.send(m);
    });
  });
  await signIn(page, member);
  await joined(page, room.id);
  assert.equal(joins.length, 2, 'joined again after forbidden');
  assert.ok(joins[0] && joins[1], 'both with a grant');
  assert.equal(grants, 1, 'the second grant fresh from GET .../grant');
  /* the owner removes the member: the socket is told (left, reason removed) and the room goes */
  assert.equal((await rest('DELETE', `/api/v1/rooms/${room.id}/members/${member.id}`, owner.token)).status, 204);
  await roomItem(page, room.id).waitFor({ state: 'detached' });
  await waitText(page, '#banner-text', `You were removed from ${room.name}.`);
  await page.context().close();
});

test('a REST leave on another device takes the room out of this page, with a plain notice', async () => {
  const owner = await apiUser('Owner'), lea = await apiUser('Lea');
  const room = await apiRoom(owner, { kind: 'private', name: `Left ${rnd()}` });
  const inv = await rest('POST', `/api/v1/rooms/${room.id}/invites`, owner.token, {});
  assert.equal((await rest('POST', `/api/v1/invites/${inv.data.code}/redeem`, lea.token)).status, 200);
  const page = await newPage(DESKTOP);
  await signIn(page, lea);
  await joined(page, room.id);
  await openRoom(page, room.id);
  /* lea.token is a session of its own: another device */
  assert.equal((await rest('POST', `/api/v1/rooms/${room.id}/leave`, lea.token)).status, 204);
  await roomItem(page, room.id).waitFor({ state: 'detached' });
  await waitText(page, '#banner-text', `You left ${room.name} in another tab or on another device.`);
  assert.equal(await page.locator('#banner.warn').count(), 0, 'a plain line, not a warning');
  assert.notEqual(await page.getAttribute('#room-list li.active', 'data-key'), room.id);
  await page.context().close();
});

/* proto/README.md: a connection that loses its identity (session_expired here) is taken out of its
 * restricted rooms with a left, reason signed_out: not a removal. The page keeps the room, says
 * nothing of a removal, and joins it again (fresh grant, since) once the renewed token is authed. */
test('an access token expiring on the open socket: the group room stays, and is joined again after the re-auth', async () => {
  const owner = await apiUser('Keeper'), member = await apiUser('Sleeper');
  const room = await apiRoom(owner, { kind: 'group', name: `Expiry ${rnd()}` });
  const inv = await rest('POST', `/api/v1/rooms/${room.id}/invites`, owner.token, {});
  assert.equal((await rest('POST', `/api/v1/invites/${inv.data.code}/redeem`, member.token)).status, 200);
  const page = await newPage(DESKTOP);
  const got = [], sent = [];
  page.on('websocket', (ws) => {
    const keep = (list) => (e) => { try { list.push(JSON.parse(e.payload)); } catch { /* not JSON */ } };
    ws.on('framereceived', keep(got));
    ws.on('framesent', keep(sent));
  });
  /* the sign-in hands the page an access token that expires in a few seconds (the server warns
   * CHAT_SESSION_WARN_S = 5 s before); its renewal waits until the socket has lost the identity */
  const ttl = Math.round(8 * MULT);
  await page.route('**/api/v1/auth/login', async (route) => {
    const res = await route.fetch();
    const body = await res.json();
    body.access_token = withExp(body.access_token, Math.floor(Date.now() / 1000) + ttl);
    await route.fulfill({ response: res, json: body });
  });
  let release, refreshes = 0, grants = 0;
  const renewal = new Promise((resolve) => { release = resolve; });
  await page.route('**/api/v1/auth/refresh', async (route) => { refreshes++; await renewal; await route.continue(); });
  page.on('request', (r) => { if (r.url().endsWith(`/rooms/${room.id}/grant`)) grants++; });
  await signIn(page, member);
  await joined(page, room.id);
  await openRoom(page, room.id);
  const before = `before expiry ${rnd()}`;
  await apiSay(owner, room.id, before);
  await sees(page, before);
  /* the token runs out: session_expired, then the group room's left (signed_out) */
  const signedOut = await until('left signed_out', () => got.findIndex((f) => f.type === 'left' && f.room === room.id && f.reason === 'signed_out') + 1);
  assert.ok(got.findIndex((f) => f.type === 'session_expired') + 1 < signedOut, 'after session_expired');
  assert.ok(refreshes >= 1, 'the page renews its session');
  await page.locator(`#room-list li[data-key="${room.id}"][data-joined="false"]`).waitFor({ state: 'attached' });
  assert.equal(await roomItem(page, room.id).count(), 1, 'still listed');
  assert.equal(await page.getAttribute('#room-list li.active', 'data-key'), room.id, 'still open');
  await sees(page, before);
  const banner = async () => (await page.isVisible('#banner')) ? (await page.textContent('#banner-text')) : '';
  assert.doesNotMatch(await banner(), /removed|kicked|banned|deleted|left/i, 'no removal notice');
  const missed = `while signed out ${rnd()}`;
  await apiSay(owner, room.id, missed); /* the rejoin's since brings it */
  /* the renewed token is sent (auth), authed: joined again with a fresh grant, from its last seq */
  const grantsBefore = grants, joinsBefore = sent.length;
  release();
  await joined(page, room.id);
  assert.ok(grants > grantsBefore, 'a fresh grant (GET .../grant)');
  const join = sent.slice(joinsBefore).find((f) => f.type === 'join' && f.room === room.id);
  assert.ok(join && join.grant && Number.isInteger(join.since) && join.since >= 0, `join with a grant and since: ${JSON.stringify(join)}`);
  await sees(page, missed);
  const mine = `after re-auth ${rnd()}`, theirs = `welcome back ${rnd()}`;
  await say(page, mine);
  await apiSay(owner, room.id, theirs);
  await sees(page, theirs);
  const hist = await until('the message in history', async () => {
    const r = await rest('GET', `/api/v1/rooms/${room.id}/messages?limit=50`, owner.token);
    return r.data.messages.some((m) => m.text === mine) && r.data.messages;
  });
  assert.equal(hist.filter((m) => m.text === mine).length, 1, 'stored once');
  assert.doesNotMatch(await banner(), /removed|kicked|banned|deleted|left/i, 'no removal notice');
  assert.deepEqual(dialogs, []);
  await page.context().close();
});

test('the new room dialog: the description is counted in code points, at most 500', async () => {
  const user = await apiUser('Maker');
  const page = await newPage(DESKTOP);
  await signIn(page, user);
  await page.click('#create-btn');
  await page.locator('#create-dialog[open]').waitFor();
  const name = `Described ${rnd()}`;
  await page.fill('#create-name', name);
  await page.fill('#create-desc', 'x'.repeat(501));
  await page.click('#create-submit');
  await waitText(page, '#create-error', 'The description is too long: at most 500 characters (it has 501).');
  await waitFocus(page, 'create-desc');
  assert.equal(await page.isVisible('#create-dialog'), true, 'still open');
  assert.deepEqual((await rest('GET', '/api/v1/users/me/rooms', user.token)).data.rooms, [], 'nothing was created');
  /* 500 emoji: 1000 UTF-16 units, which the maxlength attribute lets in */
  const desc = '\u{1F600}'.repeat(500);
  await page.fill('#create-desc', desc);
  assert.equal(await page.inputValue('#create-desc'), desc);
  await page.click('#create-submit');
  await page.locator('#create-dialog').waitFor({ state: 'hidden' });
  await waitText(page, '#room-title', name);
  const id = await page.getAttribute('#room-list li.active', 'data-key');
  assert.equal((await rest('GET', `/api/v1/rooms/${id}`, user.token)).data.description, desc);
  await page.context().close();
});
