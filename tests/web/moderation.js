// Browser tests of moderation and administration (issue 13): a moderator deletes a message (live
// and in history), the spam rule's chat ban with its countdown, a mute given through the UI, and
// the admin page resolving a report. Headless Chromium against the integration cluster (see
// lib.js); run by tests/web/run.sh browser. Every wait is on a condition, bounded by T.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { T, apiRoom, apiUser, dialogs, env, joinRoom, joined, newPage, rest, rnd, say, sees, signIn, until, waitCanSend,
  waitText } from './lib.js';

/* A public room owned by owner, named like its id (lib.js joinRoom waits for that title). */
async function publicRoom(owner, prefix) {
  const id = `${prefix}-${rnd()}`;
  const r = await apiRoom(owner, { kind: 'public', id, name: id });
  assert.equal(r.id, id);
  return id;
}
/* page signed in as user, in room (joined on the socket). */
async function inRoom(user, room) {
  const page = await newPage();
  await signIn(page, user);
  await joinRoom(page, room);
  await joined(page, room);
  return page;
}
const msgLi = (page, text) => page.locator('#messages li.msg', { has: page.locator('.text', { hasText: text }) });
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
  /* the mute is in force on every gateway within a second: her next send is refused, and says so */
  await until('the mute refuses a send', async () => {
    if (await pm.isDisabled('#composer-input')) return true;
    await pm.fill('#composer-input', `try ${rnd()}`);
    await pm.press('#composer-input', 'Enter');
    return pm.locator('#composer-hint', { hasText: 'You are muted' }).count();
  });
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
