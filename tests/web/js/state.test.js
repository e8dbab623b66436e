// Unit tests of web/js/state.js (no DOM; storage is absent under node). Run: node --test tests/web/js/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GONE_REASONS, MAX_MSGS, addGap, confirmMsg, insertMsg, lastSeq, loadRooms, lsOk, makeMsg, newRoom, sendBlock, state, store, storedTheme,
  takenOut, waitsForSignIn,
} from '../../../web/js/state.js';

function reset() {
  state.rooms.clear();
  state.pending.clear();
  Object.assign(state, { user: null, authPending: false, refreshing: false, cooldownUntil: 0, active: '' });
}

test('storage absent: guarded, defaults apply', () => {
  assert.equal(lsOk, false);
  assert.equal(store.get('localStorage', 'chat.theme'), null);
  store.set('localStorage', 'k', 'v'); // must not throw
  assert.equal(storedTheme(), 'auto');
  reset();
  loadRooms();
  assert.deepEqual([...state.rooms.keys()], ['lobby']);
  assert.equal(state.active, 'lobby');
});

test('insertMsg orders by seq; messages without seq last, in send order', () => {
  const room = newRoom('r');
  const own = makeMsg({ text: 'own', seq: null });
  insertMsg(room, own);
  insertMsg(room, makeMsg({ id: 'b', seq: 7 }));
  insertMsg(room, makeMsg({ id: 'a', seq: 3 }));
  const own2 = makeMsg({ text: 'own2', seq: null });
  insertMsg(room, own2);
  assert.deepEqual(room.msgs.map((m) => m.id || m.text), ['a', 'b', 'own', 'own2']);
  assert.equal(room.byId.get('b').seq, 7);
});

test('insertMsg keeps at most MAX_MSGS, dropping the oldest settled ones', () => {
  const room = newRoom('r');
  const pending = makeMsg({ status: 'pending', text: 'p' });
  insertMsg(room, pending);
  for (let i = 0; i < MAX_MSGS + 10; i++) insertMsg(room, makeMsg({ id: 'id' + i, seq: i }));
  assert.equal(room.msgs.length, MAX_MSGS);
  assert.ok(room.msgs.includes(pending), 'a pending message is never dropped');
  assert.equal(room.byId.has('id0'), false);
  assert.equal(room.msgs[0].id, 'id11');
});

test('confirmMsg moves an own message to its seq, once', () => {
  reset();
  const room = newRoom('r');
  state.rooms.set('r', room);
  insertMsg(room, makeMsg({ id: 'x', seq: 10 }));
  const m = makeMsg({ room: 'r', own: true, status: 'pending', cmid: 'c1' });
  state.pending.set('c1', m);
  insertMsg(room, m);
  confirmMsg(m, 'y', 5, 1234);
  assert.equal(state.pending.size, 0);
  assert.deepEqual(room.msgs.map((x) => x.id), ['y', 'x']);
  assert.equal(m.status, 'confirmed');
  assert.equal(m.ts, 1234);
  const dup = makeMsg({ room: 'r', own: true, cmid: 'c2' });
  insertMsg(room, dup);
  confirmMsg(dup, 'x', 10, 1); // already shown under that id: the duplicate goes
  assert.equal(room.msgs.length, 2);
});

test('addGap: one marker after the newest stored message', () => {
  const room = newRoom('r');
  addGap(room); // nothing stored yet: no marker
  assert.equal(room.msgs.length, 0);
  insertMsg(room, makeMsg({ id: 'a', seq: 4 }));
  addGap(room);
  addGap(room);
  assert.deepEqual(room.msgs.map((m) => m.kind), ['msg', 'gap']);
  assert.equal(room.msgs[1].seq, 4.5);
});

test('sendBlock: why a message cannot be sent', () => {
  reset();
  const room = newRoom('r');
  assert.equal(sendBlock(room, 'hi', true), 'anon');
  state.authPending = true;
  assert.equal(sendBlock(room, 'hi', true), 'signing');
  state.user = 'u1';
  assert.equal(sendBlock(null, 'hi', true), 'noroom');
  assert.equal(sendBlock(room, 'hi', false), 'offline');
  assert.equal(sendBlock(room, 'hi', true), 'joining');
  room.joined = true;
  assert.equal(sendBlock(room, '  ', true), 'empty');
  assert.equal(sendBlock(room, 'x'.repeat(state.limits.max_text + 1), true), 'long');
  const maxFrame = state.limits.max_frame;
  state.limits.max_frame = 100;
  assert.equal(sendBlock(room, '"'.repeat(40), true), 'big', 'JSON escaping counts towards the frame size');
  state.limits.max_frame = maxFrame;
  state.cooldownUntil = Date.now() + 60000;
  assert.equal(sendBlock(room, 'hi', true), 'cooldown');
  state.cooldownUntil = 0;
  assert.equal(sendBlock(room, 'hi', true), '');
});

test('lastSeq: the newest stored message, what a reconnect resumes from', () => {
  reset();
  const room = newRoom('r');
  assert.equal(lastSeq(room), -1, 'nothing held');
  insertMsg(room, makeMsg({ id: 'a', seq: 10, user: 'u', nick: 'U', text: 'x', room: 'r' }));
  insertMsg(room, makeMsg({ id: 'b', seq: 42, user: 'u', nick: 'U', text: 'y', room: 'r' }));
  insertMsg(room, makeMsg({ id: '', seq: null, user: 'me', nick: 'Me', text: 'pending', room: 'r' }));
  addGap(room); // a gap marker sits at 42.5: not a message
  assert.equal(lastSeq(room), 42);
});

test('left signed_out (or an unknown reason): the room stays, not joined, its unacked sends kept for the rejoin', () => {
  reset();
  state.user = 'u1';
  const room = newRoom('_g1'), other = newRoom('_g2');
  state.rooms.set(room.id, room);
  state.rooms.set(other.id, other);
  Object.assign(room, { joined: true, presence: { users: 2, conns: 2 } });
  other.joined = true;
  insertMsg(room, makeMsg({ id: 'a', seq: 10, user: 'u2', nick: 'U2', text: 'x', room: room.id }));
  const mine = makeMsg({ room: room.id, own: true, status: 'pending', cmid: 'c1', conn: 3 });
  const elsewhere = makeMsg({ room: other.id, own: true, status: 'pending', cmid: 'c2', conn: 3 });
  for (const m of [mine, elsewhere]) { state.pending.set(m.cmid, m); insertMsg(state.rooms.get(m.room), m); }
  for (const r of ['removed', 'deleted', 'kicked', 'banned', 'left']) assert.ok(GONE_REASONS.has(r), r);
  assert.equal(GONE_REASONS.has('signed_out'), false, 'signed_out is not a removal');
  assert.equal(GONE_REASONS.has('some_future_reason'), false, 'an unknown reason only means: no longer joined');

  takenOut(room);
  assert.equal(state.rooms.get(room.id), room, 'still listed');
  assert.equal(room.joined, false);
  assert.equal(room.presence, null);
  assert.equal(lastSeq(room), 10, 'the rejoin resumes (since) from what it held');
  assert.equal(state.pending.get('c1'), mine, 'the unacked send stays pending');
  assert.equal(mine.status, 'pending');
  assert.ok(room.msgs.includes(mine));
  assert.equal(mine.conn, 0, 'sent again after the rejoin, even on the same connection');
  assert.equal(elsewhere.conn, 3, 'other rooms untouched');
  assert.equal(other.joined, true);

  // while the connection is anonymous the restricted room waits for the sign-in (no "joining")
  state.user = null;
  assert.equal(waitsForSignIn(room), true);
  assert.equal(waitsForSignIn(newRoom('lobby')), false, 'public rooms are joined as a guest');
  state.user = 'u1';
  assert.equal(waitsForSignIn(room), false, 'signed in again: it is joined (joinAll)');
  room.joined = true;
  state.user = null;
  assert.equal(waitsForSignIn(room), false);
});
