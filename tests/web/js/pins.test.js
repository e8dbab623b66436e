// Unit tests of pinned messages (proto/README.md section 9, "Pins"): the GET answer, the system
// events pinned and unpinned (and unknown events still ignored), the room's pin list kept live by
// pinned/unpinned/message_deleted/message_edited events, who sees Pin and Unpin, and the GET, POST
// and DELETE requests with their errors against a stub fetch. pins.js is loaded with a stub of the
// one browser global its imports read on load (window.matchMedia); nothing is drawn (ui is null).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEvent, parseHistory, parsePin, parsePinResult, parsePins, pinErrorText, systemParts, systemText } from '../../../web/js/proto.js';
import { addServerMsg, dropPin, isPinned, newRoom, pinEdited, pinEvent, pinnerOf, takePins, state } from '../../../web/js/state.js';

globalThis.window = { matchMedia: () => ({ matches: false, addEventListener() {} }) };
const { canPin, msgActions } = await import('../../../web/js/moderation.js');
const { JUMP_PAGES, PIN_RELOAD_MS, PIN_TRIES, jumpToPin, loadPins, pinMessage, pinsJoined, pinsOnEvent, showPins, togglePins,
  unpinMessage } = await import('../../../web/js/pins.js');

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
function reset(user = 'u1') {
  for (const room of state.rooms.values()) clearTimeout(room.pins.timer);
  state.rooms.clear();
  state.pending.clear();
  Object.assign(state, { user, token: user ? 'tok' : '', account: null, sanctions: [], editing: null, active: '', notice: '',
    noticeErr: false, pinsOpen: false, flash: null });
  calls.length = 0;
}
/* Room id held by the page (state.rooms), joined, shown; info: its REST room object (parseRoom form). */
function heldRoom(id = 'r', info = { kind: 'public', me: { role: 'owner' } }) {
  const room = newRoom(id);
  Object.assign(room, { joined: true, info });
  state.rooms.set(id, room);
  state.active = id;
  return room;
}
const msg = (seq, id, user, text, extra = {}) => ({ id, seq, user, nick: user.toUpperCase(), text, ts: 1000 + seq, ...extra });
/* A pin as GET .../pins gives it. */
const wirePin = (id, pinnedAt, extra = {}) => ({ id, seq: Number(id.replace(/\D/g, '')) || 1, user: 'u2', nick: 'Bob',
  text: `text of ${id}`, ts: 1000, edited_at: null, pinned_by: 'u1', pinned_at: pinnedAt, ...extra });
const pinned = (seq, message, extra = {}) => parseEvent({ type: 'system', seq, room: 'r', id: `s${seq}`, event: 'pinned', user: 'u1',
  nick: 'Alice', message, ts: 5000 + seq, ...extra });
const unpinned = (seq, message) => parseEvent({ type: 'system', seq, room: 'r', id: `s${seq}`, event: 'unpinned', user: 'u1',
  nick: 'Alice', message, ts: 5000 + seq });
const ids = (room) => room.pins.list.map((p) => p.id);

/* ---- the stub fetch: answer(path, init) -> {status, body, headers} or 'network' ---- */
const calls = [];
let answer = () => ({ status: 500, body: {} });
globalThis.fetch = async (path, init) => {
  calls.push({ path, method: init.method, headers: init.headers, body: init.body === undefined ? undefined : JSON.parse(init.body) });
  const a = answer(path, init);
  if (a === 'network') throw new TypeError('fetch failed');
  return new Response(a.body === undefined ? null : JSON.stringify(a.body),
    { status: a.status, headers: { 'Content-Type': 'application/json', ...(a.headers || {}) } });
};
const fail = (status, code, message, extra = {}) => ({ status, body: { error: { code, message, ...extra } } });

test('parsePins: the GET answer, newest pin first, each id once; malformed entries and answers', () => {
  const list = parsePins({ pins: [
    wirePin('30', 3000, { edited_at: 2500, text: 'edited <b>text</b>' }),
    wirePin('10', 2000),
    { id: 7, seq: 7, user: 42, nick: '', text: 'numbers', ts: 5, edited_at: null, pinned_by: 43, pinned_at: 1000 },
    wirePin('30', 100), /* again: once */
    { seq: 1 }, null, 'x', { id: '' },
  ] });
  assert.deepEqual(list.map((p) => p.id), ['30', '10', '7']);
  assert.deepEqual(list[0], { id: '30', seq: 30, user: 'u2', nick: 'Bob', text: 'edited <b>text</b>', ts: 1000, editedAt: 2500,
    pinnedBy: 'u1', pinnedAt: 3000 });
  assert.equal(list[1].editedAt, 0, 'edited_at null: never edited');
  assert.deepEqual([list[2].id, list[2].user, list[2].nick, list[2].pinnedBy], ['7', '42', '42', '43'], 'ids as numbers, nick from user');
  assert.deepEqual(parsePins({ pins: [] }), []);
  for (const bad of [null, {}, { pins: {} }, { pins: 'x' }, []]) assert.equal(parsePins(bad), null, JSON.stringify(bad));
  assert.equal(parsePin({ id: '5', seq: 'x', ts: 'y', pinned_at: -5e20 }).seq, null);
  assert.equal(parsePin({ id: '5', pinned_at: -5e20 }).pinnedAt, 0);
  assert.deepEqual(parsePinResult({ room: 'r', id: '5', pinned_by: '1', pinned_at: 99 }), { id: '5', pinnedBy: '1', pinnedAt: 99 });
  assert.equal(parsePinResult({ room: 'r' }), null);
});

test('system events pinned and unpinned: parsed with their message, said with the nick as text; unknown ones still skipped', () => {
  const e = parseEvent({ type: 'system', seq: 9, prev: 8, room: 'r', id: '99', event: 'pinned', user: '42', nick: '<img src=x>',
    message: '264905530269511687', ts: 1 });
  assert.equal(e.kind, 'sys');
  assert.equal(e.message, '264905530269511687');
  assert.equal(systemText(e), '<img src=x> pinned a message', 'text only: drawn as a text node');
  assert.deepEqual(systemParts(e), [{ u: '<img src=x>' }, ' pinned a message'], 'the nick is untrusted: a bdi of its own');
  assert.equal(systemText({ ...e, event: 'unpinned', nick: 'Alice' }), 'Alice unpinned a message');
  assert.equal(systemText({ event: 'pinned', nick: '', user: '' }), 'someone pinned a message');
  assert.deepEqual(systemParts({ event: 'room_updated', text: 'name' }), ['The room settings changed', ': ', { u: 'name' }]);
  assert.equal(systemText({ event: 'joined', nick: 'N' }), 'N joined', 'the other events read as before');
  /* an event this client does not know keeps its seq only (no line), as before */
  const h = parseHistory({ messages: [
    { type: 'system', seq: 1, room: 'r', id: 'a', event: 'pinned', user: 'u', nick: 'U', message: 'm1', ts: 1 },
    { type: 'system', seq: 2, room: 'r', id: 'b', event: 'starred', user: 'u', nick: 'U', message: 'm1', ts: 1 },
  ] });
  assert.deepEqual(h.msgs.map((x) => [x.kind, x.event || '']), [['sys', 'pinned'], ['skip', '']]);
});

test('takePins: the GET answer becomes the list; deleted and edited messages the page saw since win over it', () => {
  reset();
  const room = heldRoom();
  addServerMsg(room, msg(10, '10', 'u2', 'text of 10'));
  assert.equal(takePins(room, parsePins({ pins: [wirePin('10', 2000), wirePin('30', 3000)] })), false);
  assert.deepEqual(ids(room), ['30', '10'], 'newest pin first');
  assert.equal(room.pins.loaded, true);
  assert.equal(isPinned(room, '10'), true);
  assert.equal(isPinned(room, '11'), false);
  /* an answer made before a delete and an edit the page saw live */
  addServerMsg(room, { kind: 'del', id: 'x', target: '30', seq: 40 });
  addServerMsg(room, { kind: 'edit', id: 'e', target: '10', seq: 41, text: 'new text', ts: 9000 });
  takePins(room, parsePins({ pins: [wirePin('10', 2000), wirePin('30', 3000)] }));
  assert.deepEqual(ids(room), ['10'], 'deleted: not pinned any more');
  assert.equal(room.pins.list[0].text, 'new text');
  assert.equal(room.pins.list[0].editedAt, 9000);
  /* the server's newer edit stays */
  takePins(room, parsePins({ pins: [wirePin('10', 2000, { text: 'newest', edited_at: 9500 })] }));
  assert.equal(room.pins.list[0].text, 'newest');
});

test('live: pinned adds a held message at once, unpinned removes it; message_deleted and message_edited of a pinned message', () => {
  reset();
  const room = heldRoom();
  addServerMsg(room, msg(1, 'a', 'u2', 'first'));
  addServerMsg(room, msg(2, 'b', 'u2', 'second'));
  takePins(room, []);
  assert.equal(pinEvent(room, pinned(3, 'a')), true);
  assert.deepEqual(room.pins.list, [{ id: 'a', seq: 1, user: 'u2', nick: 'U2', text: 'first', ts: 1001, editedAt: 0, pinnedBy: 'u1',
    pinnedAt: 5003 }]);
  assert.equal(pinnerOf(room, room.pins.list[0]), 'you');
  addServerMsg(room, pinned(3, 'a', { user: 'u7', nick: '<i>Mod</i>' }));
  assert.equal(pinnerOf(room, { ...room.pins.list[0], pinnedBy: 'u7' }), '<i>Mod</i>', 'the nick of its pinned line (drawn as text)');
  assert.equal(pinnerOf(room, { ...room.pins.list[0], pinnedBy: 'u8' }), '', 'pinned again by someone else: not known');
  assert.equal(pinEvent(room, pinned(4, 'not-held')), true, 'a message the page does not hold: the GET that follows lists it');
  assert.deepEqual(ids(room), ['a']);
  pinEvent(room, pinned(5, 'b'));
  assert.deepEqual(ids(room), ['b', 'a'], 'newest pin first');
  pinEvent(room, pinned(6, 'b'));
  assert.deepEqual(ids(room), ['b', 'a'], 'once');
  /* an edit of a pinned message: its new text; an older edit (a replay) changes nothing */
  assert.equal(pinEdited(room, { kind: 'edit', target: 'a', text: 'first!', ts: 7000, deleted: false }), true);
  assert.equal(room.pins.list[1].text, 'first!');
  assert.equal(room.pins.list[1].editedAt, 7000, '"(edited)" in the panel');
  assert.equal(pinEdited(room, { kind: 'edit', target: 'a', text: 'older', ts: 6000, deleted: false }), false);
  assert.equal(room.pins.list[1].text, 'first!');
  assert.equal(pinEdited(room, { kind: 'edit', target: 'zzz', text: 'x', ts: 8000, deleted: false }), false, 'not pinned');
  /* deleting a pinned message unpins it (no unpinned event comes) */
  pinsOnEvent(room, { kind: 'del', target: 'a', seq: 8 });
  assert.deepEqual(ids(room), ['b']);
  pinEvent(room, unpinned(9, 'b'));
  assert.deepEqual(ids(room), []);
  assert.equal(pinEvent(room, parseEvent({ type: 'system', seq: 10, room: 'r', id: 's', event: 'joined', user: 'u3', ts: 1 })), false);
  assert.equal(dropPin(room, 'b'), false);
  /* a deleted message's edit (recovery) unpins it too */
  pinEvent(room, pinned(11, 'b'));
  pinEdited(room, { kind: 'edit', target: 'b', text: '', ts: 1, deleted: true });
  assert.deepEqual(ids(room), []);
});

test('an expected pin the GET lacks (its message not stored yet) stays listed while it is asked again, then goes', () => {
  reset();
  const room = heldRoom();
  addServerMsg(room, msg(1, 'a', 'u2', 'just sent'));
  pinEvent(room, pinned(2, 'a'));
  assert.equal(takePins(room, parsePins({ pins: [wirePin('9', 100)] })), true, 'ask again');
  assert.deepEqual(ids(room), ['a', '9']);
  assert.equal(takePins(room, parsePins({ pins: [wirePin('9', 100), wirePin('a', 5002)] })), false, 'listed now');
  assert.deepEqual(ids(room), ['a', '9']);
  assert.equal(room.pins.expect.size, 0);
  pinEvent(room, pinned(3, 'a'));
  assert.equal(takePins(room, [], false), false, 'given up: the server is believed');
  assert.deepEqual(ids(room), []);
});

test('who sees Pin and Unpin: room owner and admins, site admins, both members of a direct room; not members, guests, ad hoc rooms', () => {
  reset('u1');
  const room = heldRoom('r', null);
  addServerMsg(room, msg(1, 'mine', 'u1', 'my text'));
  addServerMsg(room, msg(2, 'theirs', 'u2', 'their text'));
  const theirs = room.byId.get('theirs'), mine = room.byId.get('mine');
  const has = (m) => msgActions(room, m).map(([a]) => a).filter((a) => a === 'pin' || a === 'unpin');
  const cases = [
    [{ kind: 'public', me: { role: 'owner' } }, null, true],
    [{ kind: 'group', me: { role: 'admin' } }, null, true],
    [{ kind: 'public', me: { role: 'member' } }, null, false],
    [{ kind: 'public', me: null }, null, false], /* watching */
    [{ kind: 'public', me: null }, { role: 'admin' }, true], /* a site admin */
    [{ kind: 'private', me: { role: 'member' } }, { role: 'user' }, false],
    [{ kind: 'direct', me: { role: 'member' } }, null, true], /* either member of a direct room */
    [{ kind: 'direct', me: null }, null, false],
    [null, { role: 'admin' }, false], /* an ad hoc room (no room row): no pins */
  ];
  for (const [info, account, may] of cases) {
    room.info = info;
    state.account = account;
    assert.equal(canPin(room), may, JSON.stringify([info, account]));
    assert.deepEqual(has(theirs), may ? ['pin'] : [], JSON.stringify([info, account]));
    assert.deepEqual(has(mine), may ? ['pin'] : []);
  }
  room.info = { kind: 'public', me: { role: 'owner' } };
  state.account = null;
  assert.deepEqual(msgActions(room, theirs).map(([a]) => a), ['delete', 'pin', 'report', 'mute', 'kick', 'ban'], 'next to Delete');
  takePins(room, parsePins({ pins: [wirePin('theirs', 10)] }));
  assert.deepEqual(msgActions(room, theirs).find(([a]) => a === 'unpin'), ['unpin', 'Unpin'], 'pinned: Unpin instead');
  assert.deepEqual(has(mine), ['pin']);
  /* deleted messages, system lines and guests: none */
  addServerMsg(room, { kind: 'del', id: 'd', target: 'mine', seq: 3 });
  assert.deepEqual(has(mine), []);
  state.user = null;
  assert.equal(canPin(room), false);
  assert.deepEqual(has(theirs), []);
  reset();
});

test('GET .../pins: with the token when signed in, without for guests; 404 is no pins; errors are kept for the panel', async () => {
  reset('u1');
  const room = heldRoom('r.1');
  answer = () => ({ status: 200, body: { pins: [wirePin('5', 20), wirePin('4', 10)] } });
  await loadPins(room);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].method, 'GET');
  assert.equal(calls[0].path, '/api/v1/rooms/r.1/pins');
  assert.equal(calls[0].headers.Authorization, 'Bearer tok');
  assert.deepEqual(ids(room), ['5', '4']);
  assert.equal(room.pins.loading, false);
  /* a guest watching a public room */
  reset(null);
  const pub = heldRoom('lobby', { kind: 'public', me: null });
  await loadPins(pub);
  assert.equal(calls[0].headers.Authorization, undefined);
  assert.deepEqual(ids(pub), ['5', '4']);
  /* an ad hoc room: 404, no pins, no error */
  answer = () => fail(404, 'not_found', 'no such room');
  await loadPins(pub);
  assert.deepEqual([ids(pub), pub.pins.error, pub.pins.loaded], [[], '', true]);
  /* other failures: said in the panel, the list kept */
  pub.pins.list = parsePins({ pins: [wirePin('5', 20)] });
  for (const [a, want] of [[fail(503, 'unavailable', 'database unavailable'), 'Database unavailable.'],
    ['network', /could not be reached/], [{ status: 200, body: { nope: 1 } }, 'The server gave an unexpected answer.']]) {
    answer = () => a;
    await loadPins(pub);
    if (want instanceof RegExp) assert.match(pub.pins.error, want); else assert.equal(pub.pins.error, want);
    assert.deepEqual(ids(pub), ['5']);
  }
  /* only the newest request's answer counts */
  let release;
  answer = () => ({ status: 200, body: { pins: [wirePin('old', 1)] } });
  const gate = new Promise((resolve) => { release = resolve; });
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (...args) => { await gate; return realFetch(...args); };
  const first = loadPins(pub);
  globalThis.fetch = realFetch;
  answer = () => ({ status: 200, body: { pins: [wirePin('new', 2)] } });
  await loadPins(pub);
  release();
  await first;
  assert.deepEqual(ids(pub), ['new']);
  reset();
});

test('live pin events read the list again (once for a burst) in the open room; other rooms when next shown', async () => {
  reset('u1');
  const room = heldRoom('r');
  const other = newRoom('o');
  Object.assign(other, { joined: true, info: { kind: 'public', me: null } });
  state.rooms.set('o', other);
  addServerMsg(room, msg(1, 'a', 'u2', 'hello'));
  answer = () => ({ status: 200, body: { pins: [wirePin('a', 5002)] } });
  for (const e of [pinned(2, 'a'), pinned(3, 'zz'), unpinned(4, 'zz')]) { addServerMsg(room, e); pinsOnEvent(room, e); }
  assert.deepEqual(ids(room), ['a'], 'at once, before the answer');
  assert.equal(calls.length, 0);
  await sleep(PIN_RELOAD_MS + 50);
  assert.equal(calls.length, 1, 'one GET for the three events');
  assert.deepEqual(ids(room), ['a']);
  assert.equal(room.pins.list[0].text, 'text of a', 'the server\'s entry');
  /* a room not shown: marked, read when it is shown */
  calls.length = 0;
  const e = parseEvent({ type: 'system', seq: 5, room: 'o', id: 's5', event: 'pinned', user: 'u1', message: 'q', ts: 1 });
  addServerMsg(other, e);
  pinsOnEvent(other, e);
  await sleep(PIN_RELOAD_MS + 50);
  assert.equal(calls.length, 0);
  assert.equal(other.pins.stale, true);
  state.active = 'o';
  showPins(other);
  await sleep(0);
  assert.equal(calls.length, 1);
  assert.equal(calls[0].path, '/api/v1/rooms/o/pins');
  /* joined (again, after a reconnect): the open room reads its list at once, the others later */
  await sleep(10);
  calls.length = 0;
  pinsJoined(other);
  pinsJoined(room);
  await sleep(10);
  assert.deepEqual(calls.map((c) => c.path), ['/api/v1/rooms/o/pins']);
  assert.equal(room.pins.stale, true);
  /* the panel opened: current already, no request */
  calls.length = 0;
  togglePins(true);
  assert.equal(state.pinsOpen, true);
  await sleep(10);
  assert.equal(calls.length, 0);
  togglePins();
  assert.equal(state.pinsOpen, false);
  reset();
});

test('a pin expected but not listed yet is asked for again, a few times', async () => {
  reset('u1');
  const room = heldRoom('r');
  addServerMsg(room, msg(1, 'a', 'u2', 'hello'));
  answer = () => ({ status: 200, body: { pins: [] } });
  pinEvent(room, pinned(2, 'a'));
  await loadPins(room);
  assert.deepEqual(ids(room), ['a'], 'kept meanwhile');
  assert.equal(room.pins.tries, 1);
  answer = () => ({ status: 200, body: { pins: [wirePin('a', 5002)] } });
  await sleep(400);
  assert.equal(calls.length, 2);
  assert.deepEqual(ids(room), ['a']);
  assert.equal(room.pins.tries, 0);
  assert.equal(room.pins.expect.size, 0);
  /* never listed: believed after PIN_TRIES tries */
  pinEvent(room, pinned(3, 'a'));
  room.pins.tries = PIN_TRIES;
  answer = () => ({ status: 200, body: { pins: [] } });
  await loadPins(room);
  assert.deepEqual(ids(room), []);
  reset();
});

test('Pin: POST .../pins {"id"}; shown pinned at once; refusals (too_many_pins, forbidden, not_found, network) as notices', async () => {
  reset('u1');
  const room = heldRoom('r.1');
  addServerMsg(room, msg(1, '264905530269511687', 'u2', 'pin me'));
  const m = room.byId.get('264905530269511687');
  answer = () => ({ status: 201, body: { room: 'r.1', id: m.id, pinned_by: 'u1', pinned_at: 777 } });
  assert.equal(await pinMessage(room, m), true);
  assert.deepEqual(calls.map((c) => [c.method, c.path, c.body, c.headers.Authorization, c.headers['Content-Type']]),
    [['POST', '/api/v1/rooms/r.1/pins', { id: m.id }, 'Bearer tok', 'application/json']]);
  assert.deepEqual(room.pins.list, [{ id: m.id, seq: 1, user: 'u2', nick: 'U2', text: 'pin me', ts: 1001, editedAt: 0, pinnedBy: 'u1',
    pinnedAt: 777 }]);
  assert.deepEqual(msgActions(room, m).find(([a]) => a === 'unpin'), ['unpin', 'Unpin']);
  assert.equal(state.notice, '');
  /* pinned already: 200, nothing changes */
  answer = () => ({ status: 200, body: { room: 'r.1', id: m.id, pinned_by: 'u9', pinned_at: 5 } });
  assert.equal(await pinMessage(room, m), true);
  assert.deepEqual(ids(room), [m.id]);
  const cases = [
    [fail(409, 'too_many_pins', 'too many pins'), 'Could not pin the message: This room has as many pinned messages as it can have. Unpin one first.'],
    [fail(403, 'forbidden', 'forbidden'), 'Could not pin the message: Only the room\'s owner and admins can pin messages here.'],
    [fail(404, 'not_found', 'no such message'), 'Could not pin the message: The message was deleted, or you are no longer in the room.'],
    [{ ...fail(429, 'rate_limited', 'too many requests'), headers: { 'Retry-After': '3' } },
      'Could not pin the message: Too many requests. Try again in 3 seconds.'],
    ['network', /^Could not pin the message: The server could not be reached/],
  ];
  for (const [a, want] of cases) {
    reset('u1');
    const r = heldRoom('r');
    addServerMsg(r, msg(1, 'a', 'u2', 'x'));
    answer = () => a;
    assert.equal(await pinMessage(r, r.byId.get('a')), false);
    if (want instanceof RegExp) assert.match(state.notice, want); else assert.equal(state.notice, want);
    assert.equal(state.noticeErr, true);
    assert.deepEqual(ids(r), [], 'not pinned');
    assert.equal(calls.length, 1, 'an old message (ts 1001): not asked again (retry.test.js)');
  }
  /* no request from someone who may not pin */
  reset('u1');
  const plain = heldRoom('r', { kind: 'public', me: { role: 'member' } });
  addServerMsg(plain, msg(1, 'a', 'u2', 'x'));
  assert.equal(await pinMessage(plain, plain.byId.get('a')), false);
  assert.equal(calls.length, 0);
  reset();
});

test('Unpin: DELETE .../pins/{id}; 404 (not pinned any more) is no error; refusals keep the pin', async () => {
  reset('u1');
  const room = heldRoom('r');
  takePins(room, parsePins({ pins: [wirePin('m 1', 20), wirePin('2', 10)] }));
  answer = () => ({ status: 204 });
  assert.equal(await unpinMessage(room, 'm 1'), true);
  assert.deepEqual(calls.map((c) => [c.method, c.path, c.body, c.headers.Authorization]),
    [['DELETE', '/api/v1/rooms/r/pins/m%201', undefined, 'Bearer tok']]);
  assert.deepEqual(ids(room), ['2']);
  /* someone unpinned it meanwhile: gone here too, and the list is read again */
  calls.length = 0;
  answer = () => fail(404, 'not_found', 'not pinned');
  assert.equal(await unpinMessage(room, '2'), true);
  assert.deepEqual(ids(room), []);
  assert.equal(state.notice, '');
  answer = () => ({ status: 200, body: { pins: [] } });
  await sleep(PIN_RELOAD_MS + 50);
  assert.deepEqual(calls.map((c) => c.method), ['DELETE', 'GET']);
  /* refused: the pin stays, the notice says why */
  takePins(room, parsePins({ pins: [wirePin('3', 30)] }));
  for (const [a, want] of [[fail(403, 'forbidden', 'forbidden'), 'Could not unpin the message: Only the room\'s owner and admins can pin messages here.'],
    [fail(503, 'unavailable', 'database unavailable'), 'Could not unpin the message: Database unavailable.']]) {
    answer = () => a;
    assert.equal(await unpinMessage(room, '3'), false);
    assert.equal(state.notice, want);
    assert.deepEqual(ids(room), ['3']);
  }
  assert.equal(pinErrorText({ status: 429, code: 'rate_limited', message: 'Slow down.', retryAfter: null }), 'Slow down. Try again later.');
  reset();
});

test('a pin\'s jump: a held message is shown at once; an older one is read from history first; a deleted one is not', async () => {
  reset('u1');
  const room = heldRoom('r');
  addServerMsg(room, msg(50, 'held', 'u2', 'here'));
  room.hist = { loaded: true, loading: false, more: true, error: '' };
  takePins(room, parsePins({ pins: [wirePin('held', 2, { seq: 50 }), wirePin('old', 1, { seq: 20 })] }));
  assert.equal(await jumpToPin(room, 'held'), true);
  assert.deepEqual(state.flash, { room: 'r', key: room.byId.get('held').key });
  assert.equal(calls.length, 0);
  /* older than the page: history pages before the oldest held, until it is there */
  answer = (path) => {
    const before = Number(/before=(\d+)/.exec(path)[1]);
    const s = before - 15;
    return { status: 200, body: { more: true, messages: [{ type: 'message', seq: s, room: 'r', id: s === 20 ? 'old' : `h${s}`, user: 'u2',
      nick: 'Bob', text: 't', ts: 1 }] } };
  };
  state.flash = null;
  assert.equal(await jumpToPin(room, 'old'), true);
  assert.deepEqual(calls.map((c) => c.path), ['/api/v1/rooms/r/messages?before=50&limit=50', '/api/v1/rooms/r/messages?before=35&limit=50']);
  assert.equal(state.flash.key, room.byId.get('old').key);
  /* not to be found within JUMP_PAGES pages: said, nothing shown */
  calls.length = 0;
  state.flash = null;
  takePins(room, parsePins({ pins: [wirePin('gone', 3, { seq: 0 })] }));
  answer = (path) => {
    const before = Number(/before=(\d+)/.exec(path)[1]);
    return { status: 200, body: { more: true, messages: [{ type: 'message', seq: before - 1, room: 'r', id: `x${before}`, user: 'u2', text: 't', ts: 1 }] } };
  };
  assert.equal(await jumpToPin(room, 'gone'), false);
  assert.equal(calls.length, JUMP_PAGES);
  assert.equal(state.flash, null);
  assert.match(state.notice, /not in the part of the history/);
  /* deleted meanwhile (its pin goes with it; an entry still drawn does not show a blank line) */
  state.flash = null;
  addServerMsg(room, { kind: 'del', id: 'dh', target: 'held', seq: 60 });
  assert.equal(await jumpToPin(room, 'held'), false);
  assert.equal(state.flash, null);
  reset();
});
