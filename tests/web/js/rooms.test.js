// Unit tests of the rooms part of web/js/proto.js and web/js/state.js (issue 11: room objects,
// the room list order, history merging, gap bookkeeping, per-room text limits). Run: node --test tests/web/js/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inviteCode, joinFrame, parseHistory, parseMember, parseRoom, readFrame, restricted, roomLabel } from '../../../web/js/proto.js';
import {
  addServerMsg, applyInfo, insertMsg, isMember, lastSeq, makeMsg, maxText, newRoom, noteLive, oldestSeq, sendBlock,
  sortedRooms, state,
} from '../../../web/js/state.js';

function reset() {
  state.rooms.clear();
  state.pending.clear();
  Object.assign(state, { user: null, authPending: false, refreshing: false, cooldownUntil: 0, active: '' });
}
const ROOM = { id: '_p7', kind: 'private', name: 'Secret', description: 'd', member_limit: 50, max_text: 30,
  history_after_leave: true, created_at: 1000, last_seq: 12, last_message_at: 5000, members: 2,
  me: { role: 'owner', favourite: true, last_read_seq: 9, unread: 3 }, grant: 'g.r.ant' };

test('parseRoom: typed fields only; me null for non-members; direct rooms by the peer', () => {
  const r = parseRoom(ROOM);
  assert.equal(r.id, '_p7');
  assert.equal(r.kind, 'private');
  assert.equal(r.maxText, 30);
  assert.equal(r.lastMessageAt, 5000);
  assert.deepEqual(r.me, { role: 'owner', favourite: true, lastRead: 9, unread: 3 });
  assert.equal(r.grant, 'g.r.ant');
  assert.equal(parseRoom({ id: 'x', me: null, kind: '<b>', max_text: 'many', last_seq: null }).me, null);
  assert.equal(parseRoom({ id: 'x', kind: '<b>' }).kind, 'public');
  assert.equal(parseRoom({ id: 'x', max_text: -4 }).maxText, 0);
  assert.equal(parseRoom({ id: 7 }), null);
  assert.equal(parseRoom(null), null);
  const d = parseRoom({ id: '_d1-2', kind: 'direct', name: '', peer: { id: '2', username: 'bob', nickname: 'Bob' } });
  assert.equal(roomLabel(d.id, d), '@Bob');
  assert.equal(roomLabel('lobby', parseRoom({ id: 'lobby', name: 'Lobby' })), 'Lobby');
  assert.equal(roomLabel('adhoc', null), '#adhoc');
});

test('restricted rooms start with "_"; invite links; join and read frames', () => {
  assert.equal(restricted('_g3'), true);
  assert.equal(restricted('lobby'), false);
  assert.equal(inviteCode('#/invite/AbC_-9'), 'AbC_-9');
  assert.equal(inviteCode('#/invite/a b'), '');
  assert.equal(inviteCode('#/invite/'), '');
  assert.deepEqual(joinFrame('_p1', 'r1', 5, 'G'), { type: 'join', room: '_p1', ref: 'r1', grant: 'G', since: 5 });
  assert.deepEqual(joinFrame('lobby', 'r2', -1), { type: 'join', room: 'lobby', ref: 'r2' });
  assert.deepEqual(readFrame('lobby', 42), { type: 'read', room: 'lobby', seq: 42, ref: 'read' });
});

test('parseHistory: message frames sorted by seq, malformed ones skipped', () => {
  const h = parseHistory({ more: true, messages: [
    { type: 'message', seq: 9, prev: 7, room: 'r', id: 'b', user: '1', nick: 'A', text: 't2', ts: 2 },
    { type: 'message', seq: 7, room: 'r', id: 'a', user: '1', text: 't1', ts: 1, client_msg_id: 'c1' },
    { type: 'message', seq: 'x', id: 'c' }, null, { seq: 11 },
  ] });
  assert.equal(h.more, true);
  assert.deepEqual(h.msgs.map((m) => m.seq), [7, 9]);
  assert.equal(h.msgs[0].nick, '1', 'no nick: the user id');
  assert.equal(h.msgs[0].cmid, 'c1');
  assert.equal(h.msgs[0].prev, null);
  assert.deepEqual(parseHistory({}), { msgs: [], more: false });
});

test('parseMember: user, role, online', () => {
  const m = parseMember({ user: { id: '4', username: 'eve', nickname: 'Eve' }, role: 'admin', joined_at: 3, online: true });
  assert.equal(m.user.nickname, 'Eve');
  assert.equal(m.role, 'admin');
  assert.equal(m.online, true);
  assert.equal(parseMember({ user: {} }), null);
});

test('addServerMsg: once per id and per seq, in seq order (history, replay and live mixed)', () => {
  reset();
  state.user = '1';
  const room = newRoom('r');
  const f = (seq) => ({ id: 'id' + seq, seq, user: seq % 2 ? '1' : '2', nick: 'N', text: 'm' + seq, ts: seq });
  for (const s of [5, 9, 7]) assert.equal(addServerMsg(room, f(s)), true);
  assert.equal(addServerMsg(room, f(7)), false, 'same id');
  assert.equal(addServerMsg(room, { ...f(9), id: 'other' }), false, 'same seq');
  for (const s of [1, 3]) addServerMsg(room, f(s)); // an older page
  assert.deepEqual(room.msgs.map((m) => m.seq), [1, 3, 5, 7, 9]);
  assert.equal(room.msgs[0].own, true);
  assert.equal(room.msgs[1].own, true);
  assert.equal(room.msgs.find((m) => m.seq === 9).own, true);
  assert.equal(oldestSeq(room), 1);
  assert.equal(lastSeq(room), 9);
  assert.equal(oldestSeq(newRoom('e')), -1);
});

test('noteLive: a prev that is not the newest seq held opens a gap, widened by later ones', () => {
  const room = newRoom('r');
  assert.equal(noteLive(room, 10, 4), false, 'nothing held: no gap');
  insertMsg(room, makeMsg({ id: 'a', seq: 10 }));
  assert.equal(noteLive(room, 12, 10), false, 'contiguous');
  assert.equal(noteLive(room, 12, undefined), false, 'no prev: the gateway cannot tell');
  assert.equal(noteLive(room, 8, 3), false, 'older than held');
  assert.equal(noteLive(room, 20, 15), true);
  assert.deepEqual(room.gap, { after: 10, until: 15 });
  insertMsg(room, makeMsg({ id: 'b', seq: 20 }));
  assert.equal(noteLive(room, 30, 25), true);
  assert.deepEqual(room.gap, { after: 10, until: 25 }, 'still filling from 10, now up to 25');
  room.gap = null;
  insertMsg(room, makeMsg({ id: 'c', seq: 30 }));
  assert.equal(noteLive(room, 31, 30), false);
});

test('maxText and sendBlock: the room limit (the lobby: 30 code points), never above the connection', () => {
  reset();
  state.user = '1';
  const room = newRoom('lobby');
  room.joined = true;
  assert.equal(maxText(room), state.limits.max_text);
  applyInfo(room, parseRoom({ id: 'lobby', kind: 'public', name: 'Lobby', max_text: 30 }));
  assert.equal(maxText(room), 30);
  assert.equal(sendBlock(room, '😀'.repeat(30), true), '', 'code points, not UTF-16 units');
  assert.equal(sendBlock(room, 'x'.repeat(31), true), 'long');
  applyInfo(room, parseRoom({ id: 'lobby', max_text: 1e6 }));
  assert.equal(maxText(room), state.limits.max_text);
});

test('sortedRooms: favourites first, then the latest message; unread from the room object once', () => {
  reset();
  const mk = (id, fav, at, unread) => {
    const room = newRoom(id);
    applyInfo(room, parseRoom({ id, kind: 'public', last_message_at: at,
      me: fav === null ? null : { role: 'member', favourite: fav, last_read_seq: 1, unread } }));
    state.rooms.set(id, room);
    return room;
  };
  mk('old', false, 100, 0);
  const fav = mk('fav', true, 50, 2);
  mk('new', false, 300, 0);
  const watch = mk('watch', null, 200, 0);
  const live = mk('live', false, null, 0);
  insertMsg(live, makeMsg({ id: 'l', seq: 1, ts: 250 }));
  assert.deepEqual(sortedRooms().map((r) => r.id), ['fav', 'new', 'live', 'watch', 'old']);
  assert.equal(fav.unread, 2);
  assert.equal(fav.readSeq, 1);
  assert.equal(isMember(fav), true);
  assert.equal(isMember(watch), false);
  fav.unread = 5; // live messages
  applyInfo(fav, parseRoom({ id: 'fav', me: { favourite: true, unread: 0 } }), false);
  assert.equal(fav.unread, 5, 'a refresh of the list does not reset live counts');
});
