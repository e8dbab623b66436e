// Unit tests of the moderation parts of the pure modules (issue 13): stream events in history and
// live (message_deleted, system), the seq chain through them, and the sanction countdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { leftText, parseEvent, parseHistory, parseRoom, parseSanction, parseSanctionFrame, siteBanText, systemText } from '../../../web/js/proto.js';
import { activeSanction, addServerMsg, canType, lastSeq, liftSanction, newRoom, noteLive, noteSanction, oldestSeq, putSanction,
  resetSanctions, sendBlock, state } from '../../../web/js/state.js';

test('parseHistory: deleted messages, message_deleted and system events keep their seq', () => {
  const h = parseHistory({ messages: [
    { type: 'message_deleted', seq: 12, prev: 10, room: 'r', id: '5', by: '7', ts: 1 },
    { type: 'message', seq: 10, room: 'r', id: '5', user: 'u', nick: 'U', text: '', deleted: true, ts: 1 },
    { type: 'system', seq: 13, prev: 12, room: 'r', id: '9', event: 'joined', user: 'u', nick: '<b>U</b>', ts: 1 },
    { type: 'system', seq: 14, prev: 13, room: 'r', id: '10', event: 'future_thing', ts: 1 },
    { type: 'bogus', seq: 15, id: '11' },
  ] });
  assert.deepEqual(h.msgs.map((m) => [m.kind, m.seq]), [['msg', 10], ['del', 12], ['sys', 13], ['skip', 14]]);
  assert.equal(h.msgs[0].deleted, true);
  assert.equal(h.msgs[1].target, '5');
  assert.equal(systemText(h.msgs[2]), '<b>U</b> joined'); /* text: drawn as a text node */
  assert.equal(parseEvent({ type: 'message', id: 'x', seq: -1 }), null);
});

test('a deletion blanks its message (before or after it arrives) and counts in the seq chain', () => {
  const room = newRoom('r');
  assert.equal(addServerMsg(room, { id: 'a', seq: 1, user: 'u', text: 'one' }), true);
  assert.equal(addServerMsg(room, { kind: 'del', id: 'a', target: 'a', seq: 3 }), true);
  assert.equal(addServerMsg(room, { kind: 'del', id: 'a', target: 'a', seq: 3 }), false, 'once');
  const a = room.byId.get('a');
  assert.equal(a.deleted, true);
  assert.equal(a.text, '');
  assert.equal(lastSeq(room), 3, 'join {since} resumes after the event');
  assert.equal(noteLive(room, 4, 3), false, 'no gap: the event was the previous one');
  addServerMsg(room, { kind: 'del', id: 'b', target: 'b', seq: 5 });
  addServerMsg(room, { id: 'b', seq: 0, user: 'u', text: 'older, from history' });
  assert.equal(room.byId.get('b').deleted, true);
  assert.equal(room.byId.get('b').text, '');
  assert.equal(oldestSeq(room), 0);
  addServerMsg(room, { kind: 'sys', id: 's', seq: 6, event: 'kicked', nick: 'N' });
  assert.equal(lastSeq(room), 6);
});

/* Rooms r and o joined by user u, no sanction known. */
function twoJoinedRooms() {
  const room = newRoom('r'), other = newRoom('o');
  Object.assign(room, { joined: true });
  Object.assign(other, { joined: true });
  state.user = 'u';
  state.sanctions = [];
  return { room, other, now: Date.now() };
}

test('sanctions: muted in one room, chat-banned everywhere, until lifted, expiry', () => {
  const { room, other, now } = twoJoinedRooms();
  assert.deepEqual(parseSanction('muted', { until: now + 47000, reason: 'x' }), { code: 'muted', until: now + 47000, reason: 'x' });
  assert.equal(parseSanction('muted', { until: null }).until, null);
  assert.equal(parseSanction('rate_limited', {}), null);
  noteSanction('r', 'muted', now + 47000, 'calm');
  assert.equal(sendBlock(room, 'hi', true), 'sanction');
  assert.equal(sendBlock(other, 'hi', true), '');
  assert.equal(leftText(now + 47000, now), '47 s left');
  assert.equal(leftText(now + 125000, now), '2 min 5 s left');
  assert.equal(leftText(null, now), 'until lifted');
  noteSanction('r', 'chat_banned', null, 'spam');
  assert.equal(activeSanction(other).code, 'chat_banned');
  state.sanctions = [{ code: 'muted', room: 'r', until: now - 1, reason: '' }];
  assert.equal(activeSanction(room, now), null, 'over: dropped');
  assert.equal(state.sanctions.length, 0);
  noteSanction('r', 'slow_mode', now + 3000, '');
  assert.equal(sendBlock(room, 'hi', true), 'slow');
  state.sanctions = [];
  state.user = null;
});

test('sanction frames: pushed before any send, lifted at once, site-wide ones, a new connection', () => {
  const { room, other, now } = twoJoinedRooms();
  assert.deepEqual(parseSanctionFrame({ type: 'sanction', kind: 'mute', room: 'r', until: now + 60000, reason: 'calm' }),
    { code: 'muted', room: 'r', until: now + 60000, reason: 'calm' });
  assert.deepEqual(parseSanctionFrame({ type: 'sanction_lifted', kind: 'chat_ban', room: '*' }),
    { code: 'chat_banned', room: '*', until: null, reason: '' });
  assert.equal(parseSanctionFrame({ type: 'sanction', kind: 'ban', room: 'r', until: null }).code, 'banned');
  for (const bad of [{ kind: 'toString', room: 'r' }, { kind: 'mute' }, { kind: 'mute', room: 7 }, { kind: '__proto__', room: 'r' }, null]) {
    assert.equal(parseSanctionFrame(bad), null, JSON.stringify(bad));
  }
  /* a room mute: that room only; lifted: sending again */
  putSanction('muted', 'r', now + 60000, 'calm');
  assert.equal(sendBlock(room, 'hi', true), 'sanction');
  assert.equal(sendBlock(other, 'hi', true), '');
  liftSanction('muted', 'r');
  assert.equal(sendBlock(room, 'hi', true), '');
  /* a site-wide mute (room '*'), permanent: every room; its lift also drops what a refusal said */
  putSanction('muted', '*', null, 'site');
  noteSanction('r', 'muted', null, 'site');
  assert.equal(sendBlock(other, 'hi', true), 'sanction');
  liftSanction('muted', '*');
  assert.equal(sendBlock(room, 'hi', true), '');
  assert.equal(sendBlock(other, 'hi', true), '');
  /* lifting a room mute leaves a site-wide chat ban in force */
  putSanction('chat_banned', '*', now + 60000, 'spam');
  putSanction('muted', 'r', null, '');
  liftSanction('muted', 'r');
  assert.equal(activeSanction(room).code, 'chat_banned');
  /* a new connection forgets them (the server pushes the ones in force again), not slow mode */
  noteSanction('r', 'slow_mode', now + 3000, '');
  resetSanctions();
  assert.deepEqual(state.sanctions.map((s) => s.code), ['slow_mode']);
  state.sanctions = [];
  state.user = null;
});

test('the canonical sanction frames of proto/examples decode', () => {
  const ex = (name) => JSON.parse(readFileSync(new URL(`../../../proto/examples/${name}.json`, import.meta.url), 'utf8'));
  assert.deepEqual(parseSanctionFrame(ex('sanction')), { code: 'muted', room: 'lobby', until: 1767226000000, reason: 'calm down' });
  assert.deepEqual(parseSanctionFrame(ex('sanction_lifted')), { code: 'muted', room: 'lobby', until: null, reason: '' });
});

test('parseRoom: slow_mode_s', () => {
  assert.equal(parseRoom({ id: 'x', slow_mode_s: 30 }).slowMode, 30);
  assert.equal(parseRoom({ id: 'x', slow_mode_s: '30' }).slowMode, 0);
  assert.equal(parseRoom({ id: 'x' }).slowMode, 0);
});

test('slow mode: typing stays allowed while Send waits; a mute or chat ban closes the message box', () => {
  const { room, other, now } = twoJoinedRooms();
  assert.equal(canType(room), true);
  noteSanction('r', 'slow_mode', now + 30000, '');
  assert.equal(sendBlock(room, 'the next one', true), 'slow', 'Send waits for the countdown');
  assert.equal(canType(room), true, 'the next message can be written meanwhile');
  assert.equal(canType(other), true);
  putSanction('muted', 'r', now + 60000, 'calm');
  assert.equal(canType(room), false, 'muted: no typing');
  assert.equal(canType(other), true);
  putSanction('chat_banned', '*', now + 60000, 'spam');
  assert.equal(canType(other), false, 'chat-banned: no typing anywhere');
  state.user = null;
  assert.equal(canType(room), false, 'a guest');
  state.sanctions = [];
});

test('siteBanText: a refused login says until when (formatted by the caller) and why, the reason kept as given', () => {
  const fmt = (ms) => `T${ms}`;
  const sn = parseSanction('site_banned', { code: 'site_banned', message: 'banned', until: 1767226000000, reason: '<b>spam</b>' });
  assert.deepEqual(sn, { code: 'site_banned', until: 1767226000000, reason: '<b>spam</b>' });
  assert.equal(siteBanText(sn, fmt), 'This account is banned from the site until T1767226000000. Reason: <b>spam</b>');
  assert.equal(siteBanText(parseSanction('site_banned', { until: null, reason: '' }), fmt),
    'This account is banned from the site until an administrator lifts the ban.');
  assert.equal(siteBanText(parseSanction('site_banned', { until: 'soon', reason: 7 }), fmt),
    'This account is banned from the site until an administrator lifts the ban.', 'malformed fields: ignored');
});
