// Browser tests of moderation and administration (issue 13): a moderator deletes a message (live
// and in history), the spam rule's chat ban with its countdown, a mute given through the UI, a
// mute pushed to the muted user's page (sanction frame) and lifted from the room panel
// (sanction_lifted), a fresh page load of a muted user, slow mode set in the room panel (typing
// stays allowed while Send waits), and the admin page (a report resolved; a room's messages with a deleted one; a user's sessions; a site
// chat ban, its lift offered at once; the announcement form's limit), bidi controls that cannot
// reverse the text around them, and a login refused for a site ban. Headless Chromium against
// the integration cluster (see lib.js); run by tests/web/run.sh browser. Every wait is on a
// condition, bounded by T.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { PASSWORD, PHONE, T, apiRoom, apiUser, dialogs, env, inRoom, joined, joinRoom, msgLi, newPage, rest, rnd, say, sees, signIn, until, waitCanSend, waitText } from './lib.js';

/* A public room owned by owner, named like its id (lib.js joinRoom waits for that title). */
async function publicRoom(owner, prefix) {
  const id = `${prefix}-${rnd()}`;
  const r = await apiRoom(owner, { kind: 'public', id, name: id });
  assert.equal(r.id, id);
  return id;
}
async function msgAction(page, text, label) {
  const li = msgLi(page, text);
  await li.hover();
  await li.locator('.msg-actions button', { hasText: label }).click();
}
/* Makes user a site admin in PostgreSQL (the first admin is made like this, or with chatctl). */
function makeAdmin(user) {
  execFileSync('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', '-v', `u=${user.username}`, env.CHAT_TEST_PG_DSN],
    { input: "UPDATE users SET role = 'admin' WHERE username = :'u';\n", timeout: T });
}

test('a moderator deletes a message: shown deleted live and after a reload', async () => {
  const owner = await apiUser('Owner'), bob = await apiUser('Bob');
  const room = await publicRoom(owner, 'del');
  const pb = await inRoom(bob, room);
  const po = await inRoom(owner, room);
  const text = `delete me ${rnd()}`;
  await say(pb, text);
  await sees(po, text);
  await msgAction(po, text, 'Delete');
  for (const page of [pb, po]) {
    await page.locator('#messages li.msg.deleted .text', { hasText: 'message deleted' }).waitFor();
    assert.equal(await msgLi(page, text).count(), 0, 'the text is gone');
  }
  /* a later message still arrives (the seq/prev chain went on through the delete event) */
  await say(po, 'after the delete');
  await sees(pb, 'after the delete');
  await pb.reload();
  await joinRoom(pb, room);
  await sees(pb, 'after the delete');
  await pb.locator('#messages li.msg.deleted .text', { hasText: 'message deleted' }).waitFor();
  assert.equal(await msgLi(pb, text).count(), 0, 'history: the text is gone');
  assert.equal(await pb.locator('#messages li.gap').count(), 0, 'no gap marker');
  await pb.context().close();
  await po.context().close();
});

test('the spam rule: chat-banned with the reason and a countdown, sending again after it', async () => {
  const owner = await apiUser('Owner'), sam = await apiUser('Spammer');
  const room = await publicRoom(owner, 'spam');
  const page = await inRoom(sam, room);
  const text = `buy now ${rnd()}`;
  const mine = page.locator('#messages li.msg.own.confirmed .text', { hasText: text });
  for (let i = 1; i <= 3; i++) { /* say() would find the same text more than once */
    await waitCanSend(page);
    await page.fill('#composer-input', text);
    await page.press('#composer-input', 'Enter');
    await until(`message ${i} confirmed`, async () => (await mine.count()) === i);
  }
  await waitCanSend(page);
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
  /* the 4th of the same: refused, the input says why and for how long (CHAT_SPAM_BAN_S=3 in the test cluster) */
  await waitText(page, '#composer-hint', /^You may not send messages: spam \u2014 [1-3] s left$/);
  assert.equal(await page.isDisabled('#composer-input'), true, 'the input is disabled');
  await page.locator('#messages li.msg.failed .err', { hasText: 'chat_banned' }).waitFor();
  /* the countdown runs down, then the input is enabled again by itself */
  await page.waitForFunction(() => !document.querySelector('#composer-input').disabled, null, { timeout: T });
  await say(page, 'allowed again');
  await page.context().close();
});

test('a mute given through the UI: the muted user sees it in the input', async () => {
  const owner = await apiUser('Owner'), mia = await apiUser('Mia');
  const room = await publicRoom(owner, 'mute');
  const pm = await inRoom(mia, room);
  const po = await inRoom(owner, room);
  const text = `loud ${rnd()}`;
  await say(pm, text);
  await sees(po, text);
  await msgAction(po, text, 'Mute 5 min');
  await po.locator('#mod-dialog[open]').waitFor();
  await po.fill('#mod-reason', 'calm down');
  await po.click('#mod-submit');
  await po.locator('#mod-dialog[open]').waitFor({ state: 'detached' });
  await waitText(po, '#banner-text', /was muted for 5 min/);
  /* the mute is in force on every gateway within a second, and pushed to her page (the sanction
   * frame): the input says so without a send (a refused send says the same: the spam rule test) */
  await waitText(pm, '#composer-hint', /^You are muted: calm down \u2014 [45] min \d+ s left$/);
  assert.equal(await pm.isDisabled('#composer-input'), true);
  await pm.context().close();
  await po.context().close();
});

test('the admin page lists a report made by another user and resolves it', async () => {
  const owner = await apiUser('Owner'), rita = await apiUser('Rita'), admin = await apiUser('Admin');
  const room = await publicRoom(owner, 'rep');
  const pr = await inRoom(rita, room);
  const text = `rude words ${rnd()}`;
  await say(pr, text);
  const po = await inRoom(owner, room);
  await sees(po, text);
  const reason = `offensive ${rnd()}`;
  await msgAction(po, text, 'Report');
  await po.locator('#mod-dialog[open]').waitFor();
  await po.fill('#mod-reason', reason);
  await po.click('#mod-submit');
  await waitText(po, '#banner-text', 'Thank you: the message was reported.');

  makeAdmin(admin);
  const pa = await newPage();
  await signIn(pa, admin);
  await pa.locator('#admin-link:not([hidden])').waitFor();
  await pa.click('#admin-link');
  await pa.locator('#admin-dialog[open]').waitFor();
  const row = pa.locator('#admin-list li.report', { hasText: reason });
  await row.waitFor();
  await row.locator('.quote.hit', { hasText: text }).waitFor();
  await row.locator('button', { hasText: 'Delete message' }).click();
  await waitText(pa, '#admin-msg', 'Message deleted, report resolved.');
  await row.waitFor({ state: 'detached' });
  /* the author's page shows the message deleted, live */
  await pr.locator('#messages li.msg.deleted .text', { hasText: 'message deleted' }).waitFor();
  /* the role is read from the database on every request: the token from before the change works */
  const r = await rest('GET', '/api/v1/admin/reports?status=resolved&limit=200', admin.token);
  assert.equal(r.status, 200);
  assert.ok(r.data.reports.some((x) => x.reason === reason && x.status === 'resolved'), 'resolved');
  /* a user who is not an admin gets no admin link, and #/admin does not open */
  await po.goto('/#/admin');
  await po.locator('#account-name').waitFor();
  assert.equal(await po.isVisible('#admin-dialog'), false);
  assert.equal(dialogs.length, 0, `no JavaScript dialogs: ${dialogs.join(' | ')}`);
  for (const p of [pr, po, pa]) await p.context().close();
});

/* A room mute through the API (as the moderator would give it in the UI). */
async function apiMute(mod, room, user, reason) {
  const r = await rest('POST', `/api/v1/rooms/${encodeURIComponent(room)}/moderation/mute`, mod.token,
    { user: user.id, duration_s: 300, reason });
  assert.equal(r.status, 201, `mute: ${JSON.stringify(r.data)}`);
}
const MUTED = (reason) => new RegExp(`^You are muted: ${reason} \u2014 [45] min \\d+ s left$`);
/* Opens the room panel of the page's open room; resolves once its moderation section shows. */
async function roomPanel(page) {
  await page.click('#room-info');
  await page.locator('#room-dialog[open]').waitFor();
  await page.locator('#mod-section:not([hidden])').waitFor();
}

test('a mute is pushed to the open page before any send, and lifted from the room panel without a reload', async () => {
  const owner = await apiUser('Owner'), mia = await apiUser('Mia');
  const room = await publicRoom(owner, 'push');
  const pm = await inRoom(mia, room);
  const po = await inRoom(owner, room);
  await waitCanSend(pm);
  await apiMute(owner, room, mia, 'calm down');
  /* no send attempted: the sanction frame reaches every connection of hers */
  await waitText(pm, '#composer-hint', MUTED('calm down'));
  assert.equal(await pm.isDisabled('#composer-input'), true, 'the input is disabled');
  assert.equal(await pm.locator('#messages li.msg.failed').count(), 0, 'nothing was sent');
  /* the owner lifts it in the room panel's list of sanctions in force */
  await roomPanel(po);
  const row = po.locator(`#sanction-list li[data-kind="mute"][data-user="${mia.id}"]`);
  await row.locator('.sanction-text', { hasText: /^Muted: Mia .*calm down$/ }).waitFor();
  await row.locator('button', { hasText: 'Lift' }).click();
  await waitText(po, '#mod-msg', 'Mute lifted.');
  await row.waitFor({ state: 'detached' });
  /* sanction_lifted: her input is enabled again at once, no reload, no send needed */
  await waitCanSend(pm);
  await say(pm, `free again ${rnd()}`);
  await pm.context().close();
  await po.context().close();
});

test('a fresh page load of a muted user shows the mute in the input before any send', async () => {
  const owner = await apiUser('Owner'), max = await apiUser('Max');
  const room = await publicRoom(owner, 'fresh');
  const j = await rest('POST', `/api/v1/rooms/${room}/join`, max.token);
  assert.equal(j.status, 200, `join: ${JSON.stringify(j.data)}`);
  await apiMute(owner, room, max, 'cool off');
  const page = await inRoom(max, room);
  await waitText(page, '#composer-hint', MUTED('cool off'));
  assert.equal(await page.isDisabled('#composer-input'), true);
  /* and after a reload (a new connection: the server tells it again after the join) */
  await page.reload();
  await waitText(page, '#room-title', room);
  await waitText(page, '#composer-hint', MUTED('cool off'));
  assert.equal(await page.isDisabled('#composer-input'), true);
  assert.equal(await page.locator('#messages li.msg.failed').count(), 0, 'nothing was sent');
  await page.context().close();
});

test('slow mode set in the room panel (phone layout): the next send within it is refused with the slow-mode text', async () => {
  const owner = await apiUser('Owner'), sue = await apiUser('Sue');
  const room = await publicRoom(owner, 'slow');
  const ps = await inRoom(sue, room);
  const po = await inRoom(owner, room, PHONE);
  await roomPanel(po);
  assert.equal(await po.inputValue('#slow-input'), '0');
  await po.fill('#slow-input', '60');
  await po.click('#slow-submit');
  await waitText(po, '#mod-msg', 'Slow mode on: one message every 60 s per user.');
  const r = await rest('GET', `/api/v1/rooms/${room}`, owner.token);
  assert.equal(r.data.slow_mode_s, 60, 'stored');
  /* the gateways learn it within a second (chat.rooms): the first send once they have is
   * accepted, the next one is refused. Each send waits for its answer. */
  let accepted = 0, refused = null;
  for (let i = 0; i < 20 && !refused; i++) {
    await waitCanSend(ps);
    const text = `slow ${i} ${rnd()}`; /* all different: the spam rule stays out of it */
    await ps.fill('#composer-input', text);
    await ps.press('#composer-input', 'Enter');
    const li = msgLi(ps, text);
    await li.and(ps.locator('.confirmed, .failed')).waitFor();
    if (await li.evaluate((n) => n.classList.contains('failed'))) refused = li;
    else accepted++;
  }
  assert.ok(refused, 'a send was refused');
  assert.ok(accepted >= 1, 'the one before it was accepted');
  await refused.locator('.err', { hasText: 'Not sent (slow_mode) The room is in slow mode.' }).waitFor();
  /* the countdown runs from the accepted send's check: a loaded machine may take seconds to get
   * here, so any value of the last 15 s of the 60 */
  await waitText(ps, '#composer-hint', /^Slow mode: wait (4[5-9]|5[0-9]|60) s$/);
  assert.equal(await ps.isDisabled('#send-btn'), true, 'send waits for the slow mode');
  /* the message box stays open: the next message can be written while the countdown runs */
  assert.equal(await ps.isDisabled('#composer-input'), false, 'typing stays allowed');
  const draft = `prepared ${rnd()}`;
  await ps.fill('#composer-input', draft);
  await ps.press('#composer-input', 'Enter'); /* refused locally: nothing is sent, the draft stays */
  assert.equal(await ps.inputValue('#composer-input'), draft);
  assert.equal(await msgLi(ps, draft).count(), 0, 'not sent');
  assert.equal(await ps.isDisabled('#send-btn'), true);
  /* the countdown is live */
  const secs = Number((await ps.textContent('#composer-hint')).match(/wait (\d+) s/)[1]);
  await ps.waitForFunction((n) => {
    const m = /^Slow mode: wait (\d+) s$/.exec(document.querySelector('#composer-hint').textContent);
    return m && Number(m[1]) < n;
  }, secs, { timeout: T });
  await ps.context().close();
  await po.context().close();
});

test('the admin page: a room\'s messages with a deleted one, a user\'s sessions, a site chat ban shown in the input', async () => {
  const owner = await apiUser('Owner'), ted = await apiUser('Ted'), admin = await apiUser('Admin');
  const room = await publicRoom(owner, 'adm');
  const pt = await inRoom(ted, room);
  const gone = `regret ${rnd()}`, kept = `fine ${rnd()}`;
  await say(pt, gone);
  await say(pt, kept);
  await msgAction(pt, gone, 'Delete');
  await pt.locator('#messages li.msg.deleted').waitFor();
  makeAdmin(admin);
  /* the admin list reads PostgreSQL, which the persister fills a moment after the live stream */
  await until('the message and its delete stored', async () => {
    const r = await rest('GET', `/api/v1/admin/rooms/${room}/messages?limit=50`, admin.token);
    const ms = r.status === 200 && Array.isArray(r.data.messages) ? r.data.messages : [];
    return ms.some((m) => m.text === gone && m.deleted_at) && ms.some((m) => m.text === kept);
  });
  const pa = await newPage();
  await signIn(pa, admin);
  await pa.locator('#admin-link:not([hidden])').waitFor();
  await pa.click('#admin-link');
  await pa.locator('#admin-dialog[open]').waitFor();
  /* rooms -> Messages: the deleted one marked, with who deleted it */
  await pa.click('#admin-dialog .admin-tabs [data-tab="rooms"]');
  await pa.fill('#admin-filter input[name="q"]', room);
  await pa.press('#admin-filter input[name="q"]', 'Enter');
  await pa.locator('#admin-list li.room-row', { hasText: room }).locator('button', { hasText: 'Messages' }).click();
  const del = pa.locator('#admin-list li.admin-msg.deleted', { hasText: gone });
  await del.locator('.deleted-by', { hasText: `Deleted by user ${ted.id} at ` }).waitFor();
  await pa.locator('#admin-list li.admin-msg:not(.deleted)', { hasText: kept }).waitFor();
  assert.equal(await pa.inputValue('#admin-filter input[name="room"]'), room);
  /* users -> Sessions: at least the one of Ted's page */
  const userRow = async () => {
    await pa.click('#admin-dialog .admin-tabs [data-tab="users"]');
    await pa.fill('#admin-filter input[name="q"]', ted.username);
    await pa.press('#admin-filter input[name="q"]', 'Enter');
    const row = pa.locator(`#admin-list li.user[data-id="${ted.id}"]`);
    await row.waitFor();
    return row;
  };
  await (await userRow()).locator('button', { hasText: 'Sessions' }).click();
  await pa.locator('#admin-list li.session.active').first().waitFor();
  /* users -> Site chat ban: Ted's input says so, without a send */
  await waitCanSend(pt);
  const before = await userRow();
  assert.equal(await before.locator('button', { hasText: 'Lift site chat ban' }).count(), 0, 'no lift of a chat ban not in force');
  await before.locator('button', { hasText: 'Site chat ban…' }).click();
  await pa.locator('#mod-dialog[open]').waitFor();
  await pa.selectOption('#mod-duration', '3600');
  await pa.fill('#mod-reason', 'flooding');
  await pa.click('#mod-submit');
  await pa.locator('#mod-dialog[open]').waitFor({ state: 'detached' });
  await waitText(pa, '#admin-msg', /chat-banned site-wide, until /);
  await waitText(pt, '#composer-hint', /^You may not send messages: flooding \u2014 (59 min \d+ s|1 h 0 min) left$/);
  assert.equal(await pt.isDisabled('#composer-input'), true);
  /* the row is read again after the chat ban: "Lift" is offered without a new search; lifted
   * from there, sending again */
  await before.locator('button', { hasText: 'Lift site chat ban' }).click();
  await waitText(pa, '#admin-msg', 'Site chat ban lifted.');
  await waitCanSend(pt);
  assert.equal(dialogs.length, 0, `no JavaScript dialogs: ${dialogs.join(' | ')}`);
  for (const p of [pt, pa]) await p.context().close();
});

test('bidi controls in a mute reason or a message cannot reverse the text around them', async () => {
  const owner = await apiUser('Owner'), mia = await apiUser('Mia');
  const room = await publicRoom(owner, 'bidi');
  const pm = await inRoom(mia, room);
  const po = await inRoom(owner, room);
  const text = `abc \u202Edef ${rnd()}`; /* U+202E RIGHT-TO-LEFT OVERRIDE, never closed */
  await say(po, text);
  await sees(pm, text);
  const li = msgLi(pm, text);
  for (const sel of ['.nick', '.text']) {
    assert.equal(await li.locator(sel).evaluate((n) => getComputedStyle(n).unicodeBidi), 'isolate', `${sel} is isolated`);
  }
  await apiMute(owner, room, mia, 'calm \u202Edown');
  await waitText(pm, '#composer-hint', /^You are muted: calm \u202Edown \u2014 [45] min \d+ s left$/);
  /* the countdown after the reason still reads left to right: its dash is drawn before (left of)
   * its last letter */
  const [dash, last] = await pm.evaluate(() => {
    const hint = document.querySelector('#composer-hint');
    const chars = []; /* [text node, offset] of each UTF-16 unit of the hint's text */
    const walk = document.createTreeWalker(hint, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) for (let i = 0; i < n.data.length; i++) chars.push([n, i]);
    const x = (index) => {
      const r = document.createRange();
      r.setStart(chars[index][0], chars[index][1]);
      r.setEnd(chars[index][0], chars[index][1] + 1);
      return r.getBoundingClientRect().left;
    };
    return [x(hint.textContent.lastIndexOf('\u2014')), x(chars.length - 1)];
  });
  assert.ok(dash < last, `the dash (x ${dash}) comes before the last letter (x ${last})`);
  await pm.context().close();
  await po.context().close();
});

test('the admin announcement form: the text is counted in code points, at most 2000', async () => {
  const admin = await apiUser('Admin');
  const room = await publicRoom(admin, 'ann');
  makeAdmin(admin);
  const pa = await newPage();
  await signIn(pa, admin);
  await pa.locator('#admin-link:not([hidden])').waitFor();
  await pa.click('#admin-link');
  await pa.locator('#admin-dialog[open]').waitFor();
  await pa.click('#admin-dialog .admin-tabs [data-tab="announce"]');
  await pa.fill('#admin-filter input[name="room"]', room); /* a room of its own: no other page sees it */
  await pa.fill('#admin-filter textarea[name="text"]', 'x'.repeat(2001));
  await pa.click('#admin-filter button[type="submit"]');
  await waitText(pa, '#admin-msg', /^The announcement is too long: at most 2,?000 characters \(it has 2,?001\)\.$/);
  /* 2000 emoji: 4000 UTF-16 units, which the maxlength attribute lets in */
  const text = '\u{1F600}'.repeat(2000);
  await pa.fill('#admin-filter textarea[name="text"]', text);
  assert.equal(await pa.inputValue('#admin-filter textarea[name="text"]'), text);
  await pa.click('#admin-filter button[type="submit"]');
  await waitText(pa, '#admin-msg', 'Announced.');
  await pa.context().close();
});

test('a login refused for a site ban says until when (local time) and why, the reason as text', async () => {
  const admin = await apiUser('Admin'), bo = await apiUser('Bo');
  makeAdmin(admin);
  const reason = `<img src=x onerror=alert(1)> flooding ${rnd()}`;
  const ban = await rest('POST', `/api/v1/admin/users/${bo.id}/ban`, admin.token, { duration_s: 7200, reason });
  assert.equal(ban.status, 200, `ban: ${JSON.stringify(ban.data)}`);
  const refused = await rest('POST', '/api/v1/auth/login', null, { username: bo.username, password: PASSWORD });
  assert.equal(refused.status, 403);
  const until = refused.data.error.until;
  assert.ok(Number.isSafeInteger(until) && until > Date.now(), `until: ${until}`);
  const page = await newPage();
  await page.goto('/');
  await page.locator('#login-dialog[open]').waitFor();
  await page.fill('#login-username', bo.username);
  await page.fill('#login-password', PASSWORD);
  await page.click('#login-submit');
  const when = await page.evaluate((ms) => new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' }).format(ms), until);
  await waitText(page, '#login-error', `This account is banned from the site until ${when}. Reason: ${reason}`);
  assert.equal(await page.locator('#login-error *').count(), 0, 'the reason is text, no element');
  assert.equal(dialogs.length, 0, `no JavaScript dialogs: ${dialogs.join(' | ')}`);
  await page.context().close();
});
