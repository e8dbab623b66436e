// Browser tests of pinned messages (proto/README.md section 9, "Pins"): a room's owner pins messages
// from the message menu; a member's page and a guest's phone (dark theme) show the count in the room
// head and the entries live, newest pin first, with "(edited)" after an edit; the "pinned" lines;
// a pin's entry shows its message; a reload reads the pins with GET; the owner unpins (panel and
// menu) and deletes a pinned message, and every page follows. Only the owner gets Pin and Unpin;
// markup in a pinned text stays text; a pin past the room's limit is refused with its reason. Headless Chromium against the integration cluster (see
// lib.js); run by tests/web/run.sh browser. Every wait is on a condition, bounded by T.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PHONE, XSS, actionsOf, apiRoom, apiSay, apiUser, dialogs, guestPage, inRoom, joined, joinRoom, msgLi, newPage, rest, rnd, say, sees, signIn, until, waitText } from './lib.js';

async function msgAction(page, text, action) {
  const li = msgLi(page, text);
  await li.hover();
  await li.locator(`.msg-actions button[data-action="${action}"]`).click();
}
/* The pin count in the room head: n (a number) or hidden (0). */
async function pinCount(page, n) {
  if (!n) { await page.locator('#room-pins').waitFor({ state: 'hidden' }); return; }
  await page.locator('#room-pins').waitFor();
  await waitText(page, '#room-pins-count', String(n));
}
/* The texts of the panel's entries, in order (the panel is opened when closed). */
async function openPanel(page) {
  if (await page.locator('#pins-panel').isHidden()) await page.click('#room-pins');
  await page.locator('#pins-panel').waitFor();
}
async function panelTexts(page, want) {
  await until(`pinned entries ${JSON.stringify(want)}`, async () =>
    JSON.stringify(await page.locator('#pin-list li.pin .pin-text').allTextContents()) === JSON.stringify(want));
}
/* The room's pins as GET .../pins gives them to user (null: not 200). */
async function pinsOf(user, room) {
  const r = await rest('GET', `/api/v1/rooms/${encodeURIComponent(room)}/pins`, user && user.token);
  return r.status === 200 && Array.isArray(r.data.pins) ? r.data.pins : null;
}

test('an owner pins from the message menu; other pages show the pins live and after a reload; unpins and a delete follow', async () => {
  const owner = await apiUser('Owner'), bob = await apiUser('Bob');
  const room = `pins-${rnd()}`;
  await apiRoom(owner, { kind: 'public', id: room, name: room });
  const po = await inRoom(owner, room), pb = await inRoom(bob, room);
  const first = `first ${XSS} ${rnd()}`, second = `second ${rnd()}`;
  await say(pb, first);
  await say(pb, second);
  await sees(po, second);
  await pinCount(po, 0);
  await pinCount(pb, 0);
  /* Pin is the owner's (next to Delete), not the author's in someone else's public room */
  assert.deepEqual(await actionsOf(pb, first), ['Edit', 'Delete']);
  assert.deepEqual(await actionsOf(po, first), ['Delete', 'Pin', 'Report', 'Mute 5 min', 'Kick', 'Ban']);

  /* a guest on a phone, dark theme, watching */
  const pg = await guestPage(PHONE, 'dark');
  await joinRoom(pg, room);
  await joined(pg, room);
  await sees(pg, second);

  await msgAction(po, first, 'pin');
  for (const page of [po, pb, pg]) {
    await pinCount(page, 1);
    await page.locator('#messages li.sys .sys-text', { hasText: 'Owner pinned a message' }).waitFor();
    await msgLi(page, first).locator('.meta .pinned-mark').waitFor();
  }
  assert.deepEqual(await actionsOf(po, first), ['Delete', 'Unpin', 'Report', 'Mute 5 min', 'Kick', 'Ban'], 'pinned: Unpin');
  assert.deepEqual(await actionsOf(pb, first), ['Edit', 'Delete']);
  await msgAction(po, second, 'pin');
  for (const page of [po, pb, pg]) await pinCount(page, 2);

  /* Bob's panel: newest pin first, the author, markup as text, no Unpin for him */
  await openPanel(pb);
  await panelTexts(pb, [second, first]);
  assert.equal(await pb.locator('#room-pins').getAttribute('aria-expanded'), 'true');
  assert.deepEqual(await pb.locator('#pin-list li.pin .meta .nick').allTextContents(), ['Bob', 'Bob']);
  assert.equal(await pb.locator('#pin-list .pin-unpin:visible').count(), 0, 'only moderators unpin');
  assert.equal(await pb.locator('#pin-list img, #messages img').count(), 0, 'no element from the text');
  /* an entry shows its message in the timeline */
  await pb.locator('#pin-list li.pin', { hasText: first }).locator('.pin-jump').click();
  await msgLi(pb, first).and(pb.locator('li[data-flash]')).waitFor();
  /* an edit of a pinned message: the entry's new text and "(edited)", live */
  const edited = `first, edited ${rnd()}`;
  const firstId = await msgLi(pb, first).getAttribute('data-id');
  await msgAction(pb, first, 'edit');
  const input = pb.locator(`#messages li.msg[data-id="${firstId}"] textarea.edit-input`); /* in place of the text */
  await input.fill(edited);
  await input.press('Enter');
  await input.waitFor({ state: 'detached' });
  await openPanel(po);
  for (const page of [po, pb]) {
    await panelTexts(page, [second, edited]);
    await page.locator('#pin-list li.pin', { hasText: edited }).locator('.meta .edited').waitFor();
  }
  assert.equal(await po.locator('#pin-list .pin-unpin:visible').count(), 2, 'the owner unpins');
  assert.match(await po.locator('#pin-list li.pin', { hasText: second }).locator('.pin-by').textContent(), /^Pinned by you/);

  /* the guest's phone in the dark theme: the panel fits the screen, in the dark colours */
  await openPanel(pg);
  await panelTexts(pg, [second, edited]);
  const look = await pg.evaluate(() => {
    const p = document.querySelector('#pins-panel'), r = p.getBoundingClientRect();
    return { bg: getComputedStyle(p).backgroundColor, fg: getComputedStyle(p).color, left: r.left, right: r.right,
      wide: document.documentElement.scrollWidth, title: document.querySelector('#room-title').getBoundingClientRect().width };
  });
  assert.equal(look.bg, 'rgb(23, 26, 32)', 'dark panel (style.css --surface)');
  assert.equal(look.fg, 'rgb(232, 234, 238)', 'dark text (--text)');
  assert.ok(look.left >= 0 && look.right <= PHONE.width && look.wide <= PHONE.width, `no sideways overflow: ${JSON.stringify(look)}`);
  assert.ok(look.title > 40, `the room's name keeps room in the head: ${look.title}px`);
  assert.equal(await pg.locator('#pin-list .pin-unpin:visible').count(), 0, 'guests do not unpin');
  /* a phone: the panel closes to show the message */
  await pg.locator('#pin-list li.pin', { hasText: second }).locator('.pin-jump').click();
  await msgLi(pg, second).and(pg.locator('li[data-flash]')).waitFor();
  await pg.locator('#pins-panel').waitFor({ state: 'hidden' });

  /* a reload: from GET .../pins (once the persister stored the edit) */
  await until('the pins listed with the edit', async () => {
    const pins = await pinsOf(bob, room);
    return pins && pins.length === 2 && pins[0].text === second && pins[1].text === edited && pins[1].edited_at > 0;
  });
  await pb.reload();
  await joinRoom(pb, room);
  await pinCount(pb, 2);
  await openPanel(pb);
  await panelTexts(pb, [second, edited]);
  await pb.locator('#pin-list li.pin', { hasText: edited }).locator('.meta .edited').waitFor();

  /* the owner unpins from the panel: every page follows */
  await po.locator('#pin-list li.pin', { hasText: edited }).locator('.pin-unpin').click();
  for (const page of [po, pb, pg]) {
    await pinCount(page, 1);
    await page.locator('#messages li.sys .sys-text', { hasText: 'Owner unpinned a message' }).waitFor();
  }
  await panelTexts(pb, [second]);
  assert.equal(await msgLi(pb, edited).locator('.meta .pinned-mark').count(), 0);
  /* deleting a pinned message unpins it (no unpinned event: its message_deleted says it) */
  await msgAction(po, second, 'delete');
  for (const page of [po, pb, pg]) await pinCount(page, 0);
  await panelTexts(pb, []);
  await waitText(pb, '#pins-status', 'No pinned messages in this room.');
  await until('no pins listed', async () => { const pins = await pinsOf(null, room); return pins && pins.length === 0; });
  await pb.reload();
  await joinRoom(pb, room);
  await sees(pb, edited);
  await pinCount(pb, 0);
  /* pinning again from the menu, then unpinning from the menu */
  await msgAction(po, edited, 'pin');
  for (const page of [po, pb]) await pinCount(page, 1);
  await msgAction(po, edited, 'unpin');
  for (const page of [po, pb]) await pinCount(page, 0);
  assert.deepEqual(dialogs, [], 'no dialog fired');
  for (const page of [po, pb, pg]) await page.context().close();
});

test('in a direct room both members pin and unpin', async () => {
  const ann = await apiUser('Ann'), ben = await apiUser('Ben');
  const r = await rest('POST', `/api/v1/direct/${ben.username}`, ann.token);
  assert.ok(r.status === 201 || r.status === 200, `direct: ${r.status} ${JSON.stringify(r.data)}`);
  const id = r.data.id;
  const pa = await newPage(), pb = await newPage();
  await signIn(pa, ann);
  await signIn(pb, ben);
  for (const page of [pa, pb]) {
    await page.locator(`#room-list li[data-key="${id}"] .room-open`).click();
    await joined(page, id);
  }
  const text = `between us ${rnd()}`;
  await say(pa, text);
  await sees(pb, text);
  assert.deepEqual(await actionsOf(pb, text), ['Pin', 'Report']);
  await msgAction(pb, text, 'pin');
  for (const page of [pa, pb]) await pinCount(page, 1);
  assert.deepEqual(await actionsOf(pa, text), ['Edit', 'Delete', 'Unpin']);
  await openPanel(pa);
  await panelTexts(pa, [text]);
  await pa.locator('#pin-list .pin-unpin').click();
  for (const page of [pa, pb]) await pinCount(page, 0);
  assert.deepEqual(dialogs, [], 'no dialog fired');
  await pa.context().close();
  await pb.context().close();
});

test('a pin past the room\'s limit (CHAT_PINS_MAX) is refused with the reason; the pins stay', async () => {
  const max = Number(process.env.CHAT_PINS_MAX) || 50; /* the test cluster's (tests/integration/CMakeLists.txt), else the default */
  const owner = await apiUser('Owner');
  const room = `pinmax-${rnd()}`;
  await apiRoom(owner, { kind: 'public', id: room, name: room });
  const acks = [];
  for (let i = 0; i < max; i++) acks.push(await apiSay(owner, room, `pinned ${i} ${rnd()}`));
  for (const ack of acks) {
    let r;
    await until(`pin ${ack.id}`, async () => { /* a message not stored yet may be looked up a moment later */
      r = await rest('POST', `/api/v1/rooms/${room}/pins`, owner.token, { id: ack.id });
      return r.status !== 404;
    });
    assert.equal(r.status, 201, `pin: ${r.status} ${JSON.stringify(r.data)}`);
  }
  const po = await inRoom(owner, room);
  await pinCount(po, max);
  const text = `one too many ${rnd()}`;
  await say(po, text);
  await msgAction(po, text, 'pin');
  await waitText(po, '#banner-text', 'Could not pin the message: This room has as many pinned messages as it can have. Unpin one first.');
  await pinCount(po, max);
  assert.equal(await msgLi(po, text).locator('.meta .pinned-mark').count(), 0);
  assert.deepEqual(await actionsOf(po, text), ['Edit', 'Delete', 'Pin'], 'still not pinned');
  assert.deepEqual(dialogs, [], 'no dialog fired');
  await po.context().close();
});
