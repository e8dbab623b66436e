// Browser tests of message edits (protocol version 4): the author edits a message inline (Enter
// saves, Escape cancels), another user's page shows the new text with "(edited)" live and, after a
// reload, from history; the edit offered on one's own messages only; markup in an edit stays text;
// the editor in the dark theme. Headless Chromium against the integration cluster (see lib.js); run
// by tests/web/run.sh browser. Every wait is on a condition, bounded by T.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { XSS, actionsOf, apiRoom, apiUser, dialogs, inRoom, joined, joinRoom, msgLi, newPage, rest, rnd, say, sees, signIn, until, waitFocus, waitText } from './lib.js';

/* The message's text on page, by its id (the text changes under the test). */
const byId = (page, id) => page.locator(`#messages li.msg[data-id="${id}"]`);

test('an edit made inline by its author reaches another page live, with "(edited)", and stays after a reload', async () => {
  const owner = await apiUser('Owner'), ann = await apiUser('Ann'), ben = await apiUser('Ben');
  const room = `edit-${rnd()}`;
  await apiRoom(owner, { kind: 'public', id: room, name: room });
  const pa = await inRoom(ann, room), pb = await inRoom(ben, room);
  const first = `typo heer ${rnd()}`;
  await say(pa, first);
  await sees(pb, first);
  const id = await msgLi(pa, first).getAttribute('data-id');
  assert.ok(id, 'the stored message has its id');
  /* Ben's page offers no edit of Ann's message; Ann's offers it next to delete */
  assert.deepEqual(await actionsOf(pb, first), ['Report']);
  assert.deepEqual(await actionsOf(pa, first), ['Edit', 'Delete']);

  /* Escape cancels: nothing is sent, the text stays */
  await msgLi(pa, first).locator('.msg-actions button', { hasText: 'Edit' }).click();
  const input = byId(pa, id).locator('textarea.edit-input');
  await input.waitFor();
  assert.equal(await input.inputValue(), first, 'the input holds the current text');
  await pa.waitForFunction(() => document.activeElement && document.activeElement.classList.contains('edit-input'));
  await input.fill('not this');
  await input.press('Escape');
  await input.waitFor({ state: 'detached' });
  await waitText(pa, `#messages li.msg[data-id="${id}"] .text`, first);
  await waitFocus(pa, 'composer-input');
  assert.equal(await byId(pa, id).locator('.edited').count(), 0, 'not edited');

  /* Enter saves; markup in the new text stays text */
  const second = `fixed here ${XSS} ${rnd()}`;
  await msgLi(pa, first).hover();
  await msgLi(pa, first).locator('.msg-actions button', { hasText: 'Edit' }).click();
  await input.waitFor();
  await waitText(pa, `#messages li.msg[data-id="${id}"] .msg-edit .counter`, new RegExp(`^${[...first].length}/2,?000$`));
  /* the editor in the dark theme: the page's dark colours, not the light ones */
  await pa.click('#theme-btn');
  await pa.locator('html[data-theme="dark"]').waitFor();
  const dark = await input.evaluate((n) => [getComputedStyle(n).backgroundColor, getComputedStyle(n).color]);
  assert.deepEqual(dark, ['rgb(15, 17, 21)', 'rgb(232, 234, 238)'], 'dark input (style.css --bg, --text)');
  await pa.click('#theme-btn');
  await pa.locator('html[data-theme="light"]').waitFor();
  await input.fill(second);
  await input.press('Enter');
  await input.waitFor({ state: 'detached' });
  for (const page of [pa, pb]) { /* Ben's page: live, by the message_edited event */
    await waitText(page, `#messages li.msg[data-id="${id}"] .text`, second);
    const edited = byId(page, id).locator('.meta .edited');
    await edited.waitFor();
    assert.equal(await edited.textContent(), '(edited)');
    assert.match(await edited.getAttribute('title'), /^Edited \S/);
    assert.equal(await msgLi(page, first).count(), 0, 'the old text is gone');
    assert.equal(await page.locator('#messages li.msg', { hasText: second }).count(), 1, 'one line, no line for the edit');
    assert.equal(await page.locator('#messages img').count(), 0, 'no element from the text');
  }
  /* a later message still arrives on both pages (the seq/prev chain went on through the edit) */
  const after = `after the edit ${rnd()}`;
  await say(pb, after);
  await sees(pa, after);
  assert.equal(await pb.locator('#messages li.gap').count(), 0, 'no gap marker');

  /* a reload: from history (once the persister has stored the edit) */
  await until('the edit stored', async () => {
    const r = await rest('GET', `/api/v1/rooms/${room}/messages?limit=50`, ben.token);
    return r.status === 200 && Array.isArray(r.data.messages)
      && r.data.messages.some((m) => (m.type === undefined || m.type === 'message') && m.id === id && m.text === second && m.edited_at > 0);
  });
  await pb.reload();
  await joinRoom(pb, room);
  await sees(pb, after);
  await waitText(pb, `#messages li.msg[data-id="${id}"] .text`, second);
  await byId(pb, id).locator('.meta .edited').waitFor();
  assert.equal(await msgLi(pb, first).count(), 0, 'history: the old text is gone');
  assert.equal(await pb.locator('#messages li.msg', { hasText: second }).count(), 1, 'history: the edit is no line of its own');
  assert.equal(await pb.locator('#messages li.gap').count(), 0, 'no gap marker');
  assert.deepEqual(dialogs, [], 'no dialog fired');
  await pa.context().close();
  await pb.context().close();
});
