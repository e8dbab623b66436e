// Unit tests of the requests about a message just sent (api.js messageFetch): chat-api finds a
// message only once the persister has stored it, a moment after its ack (proto/README.md section
// 9), so a fresh message's 404 not_found is asked again, a bounded number of times, before it is
// shown; an old message's at once. Edit, delete and pin against a stub fetch (report goes through
// the same helper, from the dialog); an unpin's 404 (not pinned) is never asked again. The modules
// are loaded with a stub of the one browser global their imports read on load
// (window.matchMedia); nothing is drawn (ui is null).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addServerMsg, newRoom, state } from '../../../web/js/state.js';

globalThis.window = { matchMedia: () => ({ matches: false, addEventListener() {} }) };
const { messageFetch, msgRetry } = await import('../../../web/js/api.js');
const { deleteMessage, saveEdit, startEdit } = await import('../../../web/js/moderation.js');
const { pinMessage, unpinMessage } = await import('../../../web/js/pins.js');

const DEFAULTS = { ...msgRetry };
const PAUSE_MS = 5; /* the tests' pause (msgRetry.pauseMs), but where the real one is measured */

/* ---- the stub fetch: answers taken in turn (the last one repeats); {status, body} or 'network' ---- */
const calls = [];
let answers = [];
globalThis.fetch = async (path, init) => {
  calls.push({ path, method: init.method, body: init.body === undefined ? undefined : JSON.parse(init.body),
    busy: state.editing ? state.editing.busy : null });
  const a = answers.length > 1 ? answers.shift() : answers[0];
  if (a === 'network') throw new TypeError('fetch failed');
  return new Response(a.body === undefined ? null : JSON.stringify(a.body), { status: a.status, headers: { 'Content-Type': 'application/json' } });
};
const fail = (status, code, message) => ({ status, body: { error: { code, message } } });
const NOT_FOUND = fail(404, 'not_found', 'no such message');
const REFUSED = 'The message was deleted, or you are no longer in the room.';

function reset(...a) {
  state.rooms.clear();
  state.pending.clear();
  Object.assign(state, { user: 'u1', token: 'tok', account: null, sanctions: [], editing: null, active: '', notice: '',
    noticeErr: false, pinsOpen: false });
  Object.assign(msgRetry, DEFAULTS, { pauseMs: PAUSE_MS });
  calls.length = 0;
  answers = a;
}
/* Room r, owned by u1 (who may pin), holding message 'm1' of user (u1: own) sent at ts. */
function roomWith(ts, user = 'u1') {
  const room = newRoom('r');
  Object.assign(room, { joined: true, info: { kind: 'public', me: { role: 'owner' } } });
  state.rooms.set('r', room);
  state.active = 'r';
  addServerMsg(room, { id: 'm1', seq: 1, user, nick: user.toUpperCase(), text: 'first', ts });
  return { room, m: room.byId.get('m1') };
}
const fresh = () => Date.now() - 200; /* acked a moment ago */
const old = () => Date.now() - 60000;

test('the bounds: fresh for 10 s, a pause of 300 ms, 8 requests in all', () => {
  assert.deepEqual(DEFAULTS, { freshMs: 10000, pauseMs: 300, tries: 8 });
});

test('an edit of a fresh message: 404, then 200 after a pause; the editor stays busy meanwhile', async () => {
  reset(NOT_FOUND, { status: 200, body: { id: 'm1', room: 'r', text: 'second', edited_at: 4242 } });
  const { room, m } = roomWith(fresh());
  assert.equal(startEdit(room, m), true);
  assert.equal(await saveEdit('second'), true);
  assert.deepEqual(calls.map((c) => [c.method, c.path, c.body, c.busy]),
    [['PATCH', '/api/v1/rooms/r/messages/m1', { text: 'second' }, true], ['PATCH', '/api/v1/rooms/r/messages/m1', { text: 'second' }, true]]);
  assert.equal(state.editing, null, 'saved: the editor closes');
  assert.equal(m.text, 'second');
});

test('an edit of a fresh message that stays not found: given up after the bounded tries, the refusal in the editor', async () => {
  reset(NOT_FOUND);
  const { room, m } = roomWith(fresh());
  startEdit(room, m);
  const done = saveEdit('second');
  assert.equal(state.editing.busy, true);
  assert.equal(await saveEdit('again'), false, 'Save is disabled while it is asked again');
  assert.equal(await done, false);
  assert.equal(calls.length, msgRetry.tries);
  assert.ok(calls.every((c) => c.busy === true && c.body.text === 'second'));
  assert.match(state.editing.error, /deleted, or you are no longer in the room/);
  assert.equal(state.editing.busy, false, 'Save is possible again');
  assert.equal(m.text, 'first');
});

test('a delete: a fresh message\'s 404 asked again until found; repeated, the refusal after the bounded tries; an old one\'s at once', async () => {
  reset(NOT_FOUND, NOT_FOUND, { status: 204 });
  let { room, m } = roomWith(fresh());
  assert.equal(await deleteMessage(room, m), true);
  assert.deepEqual(calls.map((c) => [c.method, c.path]), Array(3).fill(['DELETE', '/api/v1/rooms/r/messages/m1']));
  assert.equal(state.notice, '');
  reset(NOT_FOUND);
  ({ room, m } = roomWith(fresh(), 'u2'));
  assert.equal(await deleteMessage(room, m), false);
  assert.equal(calls.length, msgRetry.tries);
  assert.equal(state.notice, 'Could not delete the message: No such message.');
  assert.equal(state.noticeErr, true);
  reset(NOT_FOUND, { status: 204 });
  ({ room, m } = roomWith(old()));
  assert.equal(await deleteMessage(room, m), false);
  assert.equal(calls.length, 1, 'an old message: asked once');
  assert.equal(state.notice, 'Could not delete the message: No such message.');
});

test('a pin of a fresh message: 404, then 201; an old message\'s 404 at once', async () => {
  reset(NOT_FOUND, { status: 201, body: { room: 'r', id: 'm1', pinned_by: 'u1', pinned_at: 777 } });
  let { room, m } = roomWith(fresh(), 'u2');
  assert.equal(await pinMessage(room, m), true);
  assert.deepEqual(calls.map((c) => [c.method, c.path, c.body]), Array(2).fill(['POST', '/api/v1/rooms/r/pins', { id: 'm1' }]));
  assert.deepEqual(room.pins.list.map((p) => p.id), ['m1']);
  assert.equal(state.notice, '');
  reset(NOT_FOUND);
  ({ room, m } = roomWith(old(), 'u2'));
  assert.equal(await pinMessage(room, m), false);
  assert.equal(calls.length, 1);
  assert.equal(state.notice, `Could not pin the message: ${REFUSED}`);
});

test('an unpin\'s 404 (not pinned any more) is never asked again, even for a fresh message', async () => {
  reset(NOT_FOUND);
  const { room } = roomWith(fresh(), 'u2');
  room.pins.list = [{ id: 'm1', seq: 1, user: 'u2', nick: 'U2', text: 'first', ts: Date.now(), editedAt: 0, pinnedBy: 'u1', pinnedAt: 1 }];
  assert.equal(await unpinMessage(room, 'm1'), true);
  assert.deepEqual(calls.map((c) => c.method), ['DELETE']);
  assert.deepEqual(room.pins.list, []);
  clearTimeout(room.pins.timer); /* the list's reload: not wanted here */
});

test('messageFetch: only 404 not_found of a fresh (or future) message is asked again, after the real pause', async () => {
  const path = '/api/v1/rooms/r/messages/m1';
  reset(NOT_FOUND, { status: 204 });
  Object.assign(msgRetry, DEFAULTS);
  const t0 = Date.now();
  assert.equal((await messageFetch('DELETE', path, undefined, Date.now())).status, 204);
  assert.ok(Date.now() - t0 >= DEFAULTS.pauseMs - 10, 'paused between the requests');
  assert.equal(calls.length, 2);
  reset(NOT_FOUND, { status: 204 });
  assert.equal((await messageFetch('DELETE', path, undefined, Date.now() + 3600000)).ok, true, 'a clock behind the server\'s: fresh');
  assert.equal(calls.length, 2);
  /* not retried: another 404 code, another status, an old, missing or malformed ts */
  for (const [a, sentAt] of [[fail(404, 'no_such_room', 'x'), fresh()], [{ status: 404, body: {} }, fresh()],
    [fail(403, 'forbidden', 'x'), fresh()], ['network', fresh()], [NOT_FOUND, Date.now() - DEFAULTS.freshMs - 1],
    [NOT_FOUND, undefined], [NOT_FOUND, 'soon']]) {
    reset(a, { status: 204 });
    assert.equal((await messageFetch('DELETE', path, undefined, sentAt)).ok, false, JSON.stringify([a, sentAt]));
    assert.equal(calls.length, 1, JSON.stringify([a, sentAt]));
  }
  /* fresh when asked, old after a pause: not asked again */
  reset(NOT_FOUND);
  msgRetry.freshMs = 1000;
  msgRetry.pauseMs = 50;
  assert.equal((await messageFetch('DELETE', path, undefined, Date.now() - 980)).ok, false);
  assert.equal(calls.length, 2);
  reset();
});
