// Unit tests of message edits (protocol version 4): message_edited events live and in history, the
// seq chain through them, edited_at, edits of deleted messages, who may edit, and the PATCH request
// with its errors. moderation.js (the request) is loaded with a stub of the one browser global its
// imports read on load (window.matchMedia) and a stub fetch; nothing is drawn (no DOM: ui is null).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { editErrorText, parseEvent, parseEditResult, parseHistory } from '../../../web/js/proto.js';
import { addServerMsg, applyEditResult, canEdit, editBlock, insertMsg, lastSeq, makeMsg, newRoom, noteLive, oldestSeq,
  putSanction, sendBlock, state } from '../../../web/js/state.js';

globalThis.window = { matchMedia: () => ({ matches: false, addEventListener() {} }) };
const { cancelEdit, msgActions, saveEdit, startEdit } = await import('../../../web/js/moderation.js');

function reset(user = 'u1') {
  state.rooms.clear();
  state.pending.clear();
  Object.assign(state, { user, token: user ? 'tok' : '', account: null, sanctions: [], editing: null, cooldownUntil: 0,
    active: '', notice: '' });
}
/* A room held by the page (state.rooms), joined. */
function heldRoom(id = 'r') {
  const room = newRoom(id);
  room.joined = true;
  state.rooms.set(id, room);
  return room;
}
const msg = (seq, id, user, text, extra = {}) => ({ id, seq, user, nick: user.toUpperCase(), text, ts: 1000 + seq, ...extra });
const edit = (seq, id, text, ts, extra = {}) => ({ kind: 'edit', id, target: id, seq, user: 'u1', text, ts, deleted: false, ...extra });
const shown = (room) => room.msgs.filter((m) => m.kind === 'msg' || m.kind === 'sys'); /* what is drawn as lines */

test('parseEvent: message_edited (the proto example), deleted edits, edited_at of a message', () => {
  const ex = JSON.parse(readFileSync(new URL('../../../proto/examples/message_edited.json', import.meta.url), 'utf8'));
  const e = parseEvent(ex);
  assert.deepEqual(e, { id: '264905530269511687', seq: 1242, prev: 1241, room: 'lobby', ts: 1767225690000, kind: 'edit',
    target: '264905530269511687', user: 'alice', text: 'Hello, world! (fixed)', deleted: false });
  const gone = parseEvent({ type: 'message_edited', seq: 5, prev: 4, room: 'r', id: 'm', user: 'u', text: 'secret', deleted: true, ts: 9 });
  assert.equal(gone.deleted, true);
  assert.equal(gone.text, '', 'a deleted message\'s edit carries no text');
  assert.equal(parseEvent({ type: 'message', seq: 3, id: 'm', user: 'u', text: 't', edited_at: 77 }).editedAt, 77);
  assert.equal(parseEvent({ type: 'message', seq: 3, id: 'm', user: 'u', text: 't' }).editedAt, 0, 'never edited');
  for (const bad of ['77', -1, 1.5, 1e300]) assert.equal(parseEvent({ type: 'message', id: 'm', edited_at: bad }).editedAt, 0, String(bad));
  assert.equal(parseEvent({ type: 'message_edited', seq: 'x', id: 'm' }), null);
});

test('a live message_edited replaces the text, marks it edited, and counts in the seq chain like message_deleted', () => {
  reset();
  const room = heldRoom();
  addServerMsg(room, msg(10, 'a', 'u2', 'helo'));
  addServerMsg(room, msg(11, 'b', 'u1', 'mine'));
  /* live: prev is the newest seq held, no gap; the event is held for its seq, not drawn */
  assert.equal(noteLive(room, 12, 11), false);
  assert.equal(addServerMsg(room, parseEvent({ type: 'message_edited', seq: 12, prev: 11, room: 'r', id: 'a', user: 'u2', text: 'hello', ts: 5000 })), true);
  const a = room.byId.get('a');
  assert.equal(a.text, 'hello');
  assert.equal(a.editedAt, 5000, '"(edited)" with the time of the edit');
  assert.equal(a.deleted, false);
  assert.deepEqual(shown(room).map((m) => m.id), ['a', 'b'], 'never a line of its own');
  assert.equal(lastSeq(room), 12, 'join {since} resumes after the edit');
  assert.equal(noteLive(room, 13, 12), false, 'the next event follows the edit: no gap');
  assert.equal(noteLive(room, 15, 14), true, 'a missed event after it: a gap from the edit on');
  assert.deepEqual(room.gap, { after: 12, until: 14 });
  /* the same edit again (recovery, history): once */
  assert.equal(addServerMsg(room, edit(12, 'a', 'hello', 5000)), false);
  /* a second edit: the newest text */
  assert.equal(addServerMsg(room, edit(16, 'a', 'hello!', 6000)), true);
  assert.equal(a.text, 'hello!');
  assert.equal(a.editedAt, 6000);
  /* an edit of a message the page does not hold needs nothing (no line) */
  assert.equal(addServerMsg(room, edit(17, 'older', 'x', 7000)), true);
  assert.deepEqual(shown(room).map((m) => m.id), ['a', 'b']);
  assert.equal(lastSeq(room), 17);
});

test('edits out of order (recovery after live, several edits): the one with the highest seq wins', () => {
  reset();
  const room = heldRoom();
  addServerMsg(room, msg(1, 'a', 'u1', 'v0'));
  addServerMsg(room, edit(5, 'a', 'v2', 3000));
  addServerMsg(room, edit(3, 'a', 'v1', 2000)); /* an older edit after a newer one */
  assert.equal(room.byId.get('a').text, 'v2');
  /* by seq, not by time (the clocks of two chat-api replicas may differ) */
  addServerMsg(room, edit(7, 'a', 'v3', 2500));
  assert.equal(room.byId.get('a').text, 'v3');
  assert.equal(room.byId.get('a').editedAt, 2500);
});

test('history: edited messages in their newest form, then their message_edited events; never lines of their own', () => {
  reset();
  const room = heldRoom();
  const page = parseHistory({ more: false, messages: [
    { type: 'message_edited', seq: 22, prev: 21, room: 'r', id: 'a', user: 'u2', text: 'third', ts: 3000 },
    { type: 'message', seq: 20, prev: 19, room: 'r', id: 'a', user: 'u2', nick: 'U2', text: 'third', ts: 1000, edited_at: 3000 },
    { type: 'message_edited', seq: 21, prev: 20, room: 'r', id: 'a', user: 'u2', text: 'second', ts: 2000 },
    { type: 'message', seq: 23, prev: 22, room: 'r', id: 'b', user: 'u1', nick: 'U1', text: 'plain', ts: 3500 },
  ] });
  assert.deepEqual(page.msgs.map((e) => [e.kind, e.seq]), [['msg', 20], ['edit', 21], ['edit', 22], ['msg', 23]]);
  for (const e of page.msgs) addServerMsg(room, e); /* rooms.js takeHistory, in seq order */
  const a = room.byId.get('a');
  assert.equal(a.text, 'third', 'an older edit after the newest form changes nothing');
  assert.equal(a.editedAt, 3000);
  assert.equal(room.byId.get('b').editedAt, 0, 'not edited: no "(edited)"');
  assert.deepEqual(shown(room).map((m) => m.id), ['a', 'b']);
  assert.equal(lastSeq(room), 23);
  assert.equal(oldestSeq(room), 20);
});

test('history pages newest first: an edit read before its message (older page) still applies, an older one does not', () => {
  reset();
  const room = heldRoom();
  /* the newest page: the last edit of a message that is older than the page */
  for (const e of parseHistory({ messages: [
    { type: 'message_edited', seq: 60, prev: 59, room: 'r', id: 'a', user: 'u2', text: 'final', ts: 9000 },
    { type: 'message', seq: 61, prev: 60, room: 'r', id: 'c', user: 'u2', text: 'later', ts: 9100 },
  ] }).msgs) addServerMsg(room, e);
  assert.equal(room.byId.has('a'), false);
  assert.deepEqual(shown(room).map((m) => m.id), ['c']);
  /* scrolled up: the older page with the message (newest form) and its first edit */
  for (const e of parseHistory({ messages: [
    { type: 'message', seq: 10, room: 'r', id: 'a', user: 'u2', text: 'final', ts: 1000, edited_at: 9000 },
    { type: 'message_edited', seq: 11, prev: 10, room: 'r', id: 'a', user: 'u2', text: 'first fix', ts: 9500 }, /* a skewed clock */
  ] }).msgs) addServerMsg(room, e);
  const a = room.byId.get('a');
  assert.equal(a.text, 'final', 'the edit with the highest seq (60) wins');
  assert.equal(a.editedAt, 9000);
  assert.deepEqual(shown(room).map((m) => m.id), ['a', 'c']);
  /* a message held already, read again (gap fill) in a newer form: it takes that */
  const b = makeMsg({ id: 'b', seq: 30, user: 'u2', text: 'old', room: 'r' });
  insertMsg(room, b);
  assert.equal(addServerMsg(room, { id: 'b', seq: 30, user: 'u2', text: 'new', editedAt: 9900 }), false);
  assert.equal(b.text, 'new');
  assert.equal(b.editedAt, 9900);
  assert.equal(addServerMsg(room, { id: 'b', seq: 30, user: 'u2', text: 'older form', editedAt: 100 }), false);
  assert.equal(b.text, 'new', 'an older form changes nothing');
});

test('edits of a deleted message: no text ever comes back; deleted edits keep it deleted', () => {
  reset();
  const room = heldRoom();
  /* history: the deleted message, its edits without texts, its message_deleted */
  for (const e of parseHistory({ messages: [
    { type: 'message', seq: 1, room: 'r', id: 'a', user: 'u2', text: '', deleted: true, ts: 1, edited_at: 5 },
    { type: 'message_edited', seq: 2, prev: 1, room: 'r', id: 'a', user: 'u2', text: '', deleted: true, ts: 5 },
    { type: 'message_deleted', seq: 3, prev: 2, room: 'r', id: 'a', by: 'u2', ts: 6 },
  ] }).msgs) addServerMsg(room, e);
  const a = room.byId.get('a');
  assert.equal(a.deleted, true);
  assert.equal(a.text, '');
  assert.equal(a.editedAt, 0, 'no "(edited)" on a deleted message');
  assert.equal(lastSeq(room), 3);
  /* live: edited, then deleted; a late (replayed) edit with its text does not bring it back */
  addServerMsg(room, msg(4, 'b', 'u2', 'one'));
  addServerMsg(room, edit(5, 'b', 'two', 50));
  addServerMsg(room, { kind: 'del', id: 'b', target: 'b', seq: 6, ts: 60 });
  const b = room.byId.get('b');
  assert.equal(b.deleted, true);
  assert.equal(b.text, '');
  addServerMsg(room, edit(7, 'b', 'three', 70));
  assert.equal(b.text, '', 'deleted stays deleted');
  assert.equal(lastSeq(room), 7);
  /* a deleted edit of a message held without its deletion yet (recovery): deleted now */
  addServerMsg(room, msg(8, 'c', 'u2', 'here'));
  addServerMsg(room, edit(9, 'c', '', 90, { deleted: true }));
  assert.equal(room.byId.get('c').deleted, true);
  assert.equal(room.byId.get('c').text, '');
  /* the PATCH answer does not bring a deleted message back either */
  assert.equal(applyEditResult(room, 'b', 'late', 999), false);
  assert.equal(b.text, '');
});

test('the Edit action: own, stored, not deleted messages only, not while muted; moderators delete but never edit others\'', () => {
  reset('u1');
  const room = heldRoom();
  addServerMsg(room, msg(1, 'mine', 'u1', 'my text'));
  addServerMsg(room, msg(2, 'theirs', 'u2', 'their text'));
  const mine = room.byId.get('mine'), theirs = room.byId.get('theirs');
  const labels = (m) => msgActions(room, m).map(([action]) => action);
  assert.deepEqual(labels(mine), ['edit', 'delete'], 'edit next to delete');
  assert.deepEqual(labels(theirs), ['report']);
  assert.equal(canEdit(room, mine), true);
  assert.equal(canEdit(room, theirs), false);
  /* a room moderator: delete, mute... on other people's messages, but no edit (and pin: pins.test.js) */
  room.info = { me: { role: 'owner' } };
  assert.deepEqual(labels(theirs), ['delete', 'pin', 'report', 'mute', 'kick', 'ban']);
  assert.deepEqual(labels(mine), ['edit', 'delete', 'pin']);
  room.info = null;
  /* pending (no id yet) or failed own messages, deleted ones, system lines: none */
  const pending = makeMsg({ room: 'r', user: 'u1', text: 'p', own: true, status: 'pending', cmid: 'c1' });
  insertMsg(room, pending);
  assert.deepEqual(labels(pending), []);
  addServerMsg(room, msg(3, 'gone', 'u1', 'x'));
  addServerMsg(room, { kind: 'del', id: 'gone', target: 'gone', seq: 4 });
  assert.deepEqual(labels(room.byId.get('gone')), []);
  addServerMsg(room, { kind: 'sys', id: 's', seq: 5, event: 'joined', user: 'u1' });
  assert.deepEqual(labels(room.byId.get('s')), []);
  /* muted (as the message box knows it): no edit; slow mode does not stop edits */
  putSanction('slow_mode', 'r', Date.now() + 60000, '');
  assert.deepEqual(labels(mine), ['edit', 'delete']);
  putSanction('muted', 'r', Date.now() + 60000, 'calm');
  assert.deepEqual(labels(mine), ['delete']);
  state.sanctions = [];
  /* a guest, or someone else signed in on this page */
  state.user = null;
  assert.deepEqual(labels(mine), []);
  state.user = 'u2';
  assert.equal(canEdit(room, mine), false);
  reset();
});

test('editBlock: the same limit as a send in that room, in code points', () => {
  reset('u1');
  const room = heldRoom('lobby');
  room.info = { maxText: 30 };
  addServerMsg(room, msg(1, 'a', 'u1', 'old'));
  const a = room.byId.get('a');
  assert.equal(editBlock(room, a, 'new'), '');
  assert.equal(editBlock(room, a, '\u{1F600}'.repeat(30)), '', '30 emoji: 30 code points');
  assert.equal(editBlock(room, a, 'x'.repeat(31)), 'long');
  assert.equal(sendBlock(room, 'x'.repeat(31), true), 'long', 'as the message box');
  assert.equal(editBlock(room, a, '  '), 'empty');
  assert.equal(editBlock(room, a, 'old'), 'same');
  putSanction('chat_banned', '*', null, 'spam');
  assert.equal(editBlock(room, a, 'new'), 'sanction');
  state.sanctions = [];
  assert.equal(editBlock(room, makeMsg({ id: 'x' }), 'new'), 'gone', 'not held');
  state.user = null;
  assert.equal(editBlock(room, a, 'new'), 'anon');
  reset();
});

/* ---- the request: PATCH /api/v1/rooms/{room}/messages/{id} with a stub fetch ---- */
const calls = [];
let answer = null; /* {status, body, headers} or 'network' */
globalThis.fetch = async (path, init) => {
  calls.push({ path, method: init.method, headers: init.headers, body: init.body === undefined ? undefined : JSON.parse(init.body) });
  if (answer === 'network') throw new TypeError('fetch failed');
  return new Response(answer.body === undefined ? null : JSON.stringify(answer.body),
    { status: answer.status, headers: { 'Content-Type': 'application/json', ...(answer.headers || {}) } });
};
/* u1's message 'm 1' (an id with a space: it must be escaped in the path) in room 'r.1', being edited. */
function editing(text = 'first') {
  reset('u1');
  calls.length = 0;
  const room = heldRoom('r.1');
  addServerMsg(room, msg(1, 'm 1', 'u1', text));
  const m = room.byId.get('m 1');
  assert.equal(startEdit(room, m), true);
  return { room, m };
}
const fail = (status, code, message, extra = {}) => ({ status, body: { error: { code, message, ...extra } } });

test('saving an edit: PATCH with the cleaned text and the access token; the answer updates the message at once', async () => {
  const { room, m } = editing();
  assert.equal(state.editing.id, 'm 1');
  assert.equal(state.editing.text, 'first', 'the input starts with the current text');
  answer = { status: 200, body: { id: 'm 1', room: 'r.1', text: 'second', edited_at: 4242 } };
  const done = saveEdit('second  \r\n');
  assert.equal(state.editing.busy, true, 'a second Enter does not send it twice');
  assert.equal(await saveEdit('second'), false);
  assert.equal(await done, true);
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0].body, { text: 'second' });
  assert.equal(calls[0].method, 'PATCH');
  assert.equal(calls[0].path, '/api/v1/rooms/r.1/messages/m%201');
  assert.equal(calls[0].headers.Authorization, 'Bearer tok');
  assert.equal(calls[0].headers['Content-Type'], 'application/json');
  assert.equal(state.editing, null, 'the editor closes');
  assert.equal(m.text, 'second');
  assert.equal(m.editedAt, 4242);
  /* its message_edited event comes next: nothing changes (and the chain goes on) */
  addServerMsg(room, edit(2, 'm 1', 'second', 4242));
  assert.equal(m.text, 'second');
  assert.equal(lastSeq(room), 2);
  assert.deepEqual(parseEditResult({ id: 'm 1', text: 'second', edited_at: 4242 }), { id: 'm 1', room: '', text: 'second', editedAt: 4242 });
  assert.equal(parseEditResult({ id: 'm 1' }), null);
});

test('no request for an unchanged, empty or too long text; Escape (cancelEdit) sends nothing', async () => {
  const { room, m } = editing();
  answer = { status: 500, body: {} };
  assert.equal(await saveEdit('first'), true, 'unchanged: the edit just ends');
  assert.equal(state.editing, null);
  startEdit(room, m);
  assert.equal(await saveEdit(' \n '), false);
  assert.match(state.editing.error, /cannot be empty/);
  room.info = { maxText: 30 };
  assert.equal(await saveEdit('\u{1F600}'.repeat(31)), false);
  assert.equal(state.editing.error, 'The message is too long: at most 30 characters here.');
  cancelEdit();
  assert.equal(state.editing, null);
  assert.equal(calls.length, 0);
  assert.equal(m.text, 'first');
  assert.equal(startEdit(room, room.byId.get('nope') || makeMsg({ id: 'x', user: 'u2' })), false, 'not one\'s own');
});

test('an edit refused as muted: the reason and until, as for a send; the editor stays open and the message box says so', async () => {
  const { room, m } = editing();
  const until = Date.now() + 120000;
  answer = fail(403, 'muted', 'muted', { until, reason: 'calm down' });
  assert.equal(await saveEdit('second'), false);
  assert.equal(calls.length, 1);
  assert.deepEqual(state.editing.sanction, { code: 'muted', until, reason: 'calm down' });
  assert.equal(state.editing.text, 'second', 'the draft is kept');
  assert.equal(m.text, 'first');
  assert.equal(sendBlock(room, 'hi', true), 'sanction', 'the message box is closed with it');
  assert.deepEqual(msgActions(room, m).map(([a]) => a), ['delete'], 'no new edit while muted');
  /* chat-banned: every room */
  editing();
  answer = fail(403, 'chat_banned', 'chat banned', { until: null, reason: 'spam' });
  await saveEdit('again');
  assert.deepEqual(state.editing.sanction, { code: 'chat_banned', until: null, reason: 'spam' });
  assert.equal(state.sanctions.find((s) => s.code === 'chat_banned').room, '*');
  /* banned from the room: shown in the editor (the socket's left tells the rest) */
  editing();
  answer = fail(403, 'banned', 'banned', { until: Date.now() + 60000, reason: 'rude' });
  await saveEdit('again');
  assert.equal(state.editing.sanction.code, 'banned');
  assert.equal(state.editing.sanction.reason, 'rude');
  assert.equal(state.sanctions.length, 0);
  reset();
});

test('other refusals: their text in the editor; rate_limited with its wait; no answer at all', async () => {
  const cases = [
    [fail(403, 'forbidden', 'not the author'), 'Only its author can edit a message.'],
    [fail(404, 'not_found', 'no such message'), /deleted, or you are no longer in the room/],
    [fail(400, 'text_too_long', 'text too long'), 'Text too long.'],
    [fail(400, 'bad_text', 'text is not valid UTF-8'), 'Text is not valid UTF-8.'],
    [{ ...fail(429, 'rate_limited', 'too many edits'), headers: { 'Retry-After': '7' } }, 'You are editing too fast. Try again in 7 seconds.'],
    ['network', /could not be reached/],
  ];
  for (const [a, want] of cases) {
    const { m } = editing();
    answer = a;
    assert.equal(await saveEdit('second'), false);
    assert.equal(state.editing.sanction, null);
    if (want instanceof RegExp) assert.match(state.editing.error, want);
    else assert.equal(state.editing.error, want);
    assert.equal(state.editing.busy, false, 'Save is possible again');
    assert.equal(m.text, 'first', 'unchanged');
    assert.equal(calls.length, 1, 'an old message (ts 1001): not asked again (retry.test.js)');
  }
  assert.equal(editErrorText({ status: 429, code: 'rate_limited', message: 'x', retryAfter: null }), 'You are editing too fast. Try again later.');
  /* left meanwhile (Escape while the request was on its way): the refusal becomes the page's notice */
  editing();
  answer = fail(403, 'forbidden', 'no');
  const p = saveEdit('second');
  cancelEdit();
  await p;
  assert.equal(state.notice, 'Could not edit the message: Only its author can edit a message.');
  reset();
});
