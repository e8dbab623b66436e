// Unit tests of web/js/proto.js (pure: frames, validation rules, texts). Run: node --test tests/web/js/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ANNOUNCE_MAX, DEFAULT_LIMITS, ROOM_DESC_MAX, checkNickname, checkPassword, checkUsername, cleanText, codePoints, decodeFrame, defaultRules,
  encodeFrame, errorText, joinFrame, mergeLimits, mergeRules, newCmid, parseLogin, parseSession, passwordRule, plural,
  presenceText, sendFrame, sendFrameBytes, sentence, tooLong, trimNick, usernameRule, validRoom, wellFormed,
} from '../../../web/js/proto.js';

const R = defaultRules();

test('plural: one and many', () => {
  assert.equal(plural(1, 'connection', 'connections'), '1 connection');
  assert.equal(plural(2, 'connection', 'connections'), '2 connections');
  assert.equal(plural(0, 'user', 'users'), '0 users');
});

test('presenceText: singular and plural users and connections', () => {
  assert.equal(presenceText({ users: 1, conns: 1 }), '1 user · 1 connection');
  assert.equal(presenceText({ users: 2, conns: 3 }), '2 users · 3 connections');
  assert.equal(presenceText({ users: 1, conns: 2 }), '1 user · 2 connections');
});

test('checkPassword: too short and no digit are distinct errors', () => {
  const short = checkPassword('abc1', R), noDigit = checkPassword('abcdefghij', R);
  assert.match(short, /too short/);
  assert.match(short, /8 characters/);
  assert.match(noDigit, /digit/);
  assert.doesNotMatch(noDigit, /too short/);
  assert.notEqual(short, noDigit);
  assert.match(checkPassword('1234567890', R), /letter/);
  assert.match(checkPassword('a1'.repeat(65), R), /too long/);
  assert.equal(checkPassword('', R), 'Enter a password.');
  assert.match(checkPassword('abcdefg1\t', R), /control characters/);
  assert.match(checkPassword('abcdefg1\uD800', R), /invalid character/);
  assert.equal(checkPassword('correct horse 1', R), '');
  assert.equal(checkPassword('пароль123', R), '', 'non-ASCII letters count as letters');
});

test('checkUsername: length and alphabet', () => {
  assert.equal(checkUsername('', R), 'Enter a username.');
  assert.match(checkUsername('ab', R), /too short/);
  assert.match(checkUsername('a'.repeat(21), R), /too long/);
  assert.match(checkUsername('bad name', R), /letters A-Z, digits and _/);
  assert.equal(checkUsername('alice_01', R), '');
});

test('checkNickname and trimNick', () => {
  assert.equal(trimNick('\u00A0 Bob \u3000'), 'Bob');
  assert.equal(checkNickname('Bob', R), '');
  assert.match(checkNickname('B', R), /2-20 characters/);
  assert.match(checkNickname('Bo\u0007b', R), /control characters/);
  assert.match(checkNickname('Bo\u202Eb', R), /text-direction/);
  assert.equal(checkNickname('<img src=x onerror=alert(1)>'.slice(0, 20), R), '', 'markup is just text');
});

test('mergeRules: applies valid values, keeps defaults for bad ones', () => {
  const r = defaultRules();
  const room = mergeRules(r, { room: '^[a-z]{1,8}$', username: { pattern: '(', min: 3, max: -1 },
    password: { min: 10, digit: false, letter: 'yes' } });
  assert.ok(room instanceof RegExp);
  assert.ok(room.test('abc') && !room.test('ABC'));
  assert.equal(r.username.min, 3);
  assert.equal(r.username.max, 20);
  assert.equal(r.username.re.source, R.username.re.source, 'an invalid pattern keeps the old one');
  assert.deepEqual(r.password, { min: 10, max: 128, letter: true, digit: false });
  assert.equal(passwordRule(r), '10-128 characters, with at least one letter');
  assert.equal(usernameRule(r), '3-20 characters: letters A-Z, digits and _');
  assert.equal(mergeRules(r, null), null);
  assert.equal(mergeRules(r, { room: '[' }), null);
});

test('mergeLimits: only positive safe integers of known keys', () => {
  const l = { ...DEFAULT_LIMITS };
  mergeLimits(l, { max_text: 10, max_frame: -5, max_rooms: 1.5, rate_per_s: '9', other: 3 });
  assert.deepEqual(l, { ...DEFAULT_LIMITS, max_text: 10 });
  assert.equal(mergeLimits(l, 'x'), l);
});

test('decodeFrame: objects with a string type only', () => {
  assert.deepEqual(decodeFrame('{"type":"hello","node":"gw1"}'), { type: 'hello', node: 'gw1' });
  for (const bad of ['', 'not json', '[]', '[{"type":"x"}]', 'null', '42', '"hello"', '{"type":1}', '{}']) {
    assert.equal(decodeFrame(bad), null, bad);
  }
  assert.equal(decodeFrame(new ArrayBuffer(4)), null, 'binary frames are ignored');
});

test('frames encode as the contract says', () => {
  assert.deepEqual(JSON.parse(encodeFrame(joinFrame('lobby', 'r1'))), { type: 'join', room: 'lobby', ref: 'r1' });
  assert.deepEqual(joinFrame('lobby', 'r2', 1234), { type: 'join', room: 'lobby', ref: 'r2', since: 1234 }, 'a reconnect resumes');
  assert.deepEqual(joinFrame('lobby', 'r3', 0), { type: 'join', room: 'lobby', ref: 'r3', since: 0 });
  for (const bad of [undefined, null, -1, 1.5, '12'])
    assert.deepEqual(joinFrame('lobby', 'r4', bad), { type: 'join', room: 'lobby', ref: 'r4' }, `no since for ${bad}`);
  assert.deepEqual(sendFrame('lobby', 'hi', 'c1'), { type: 'send', room: 'lobby', text: 'hi', client_msg_id: 'c1' });
  const base = sendFrameBytes('lobby', '');
  assert.equal(sendFrameBytes('lobby', 'é'), base + 2, 'size is counted in UTF-8 bytes');
  assert.equal(sendFrameBytes('lobby', '"'), base + 2, 'JSON escaping is counted');
});

test('newCmid: 25 characters, unique', () => {
  const a = newCmid(), b = newCmid();
  assert.match(a, /^c[0-9a-f]{24}$/);
  assert.notEqual(a, b);
});

test('cleanText, codePoints, wellFormed', () => {
  assert.equal(cleanText('\r\n\r\nhello\r\nworld\u0000\u0007  \n'), 'hello\nworld');
  assert.equal(cleanText('a\uD800b'), 'a\uFFFDb');
  assert.equal(codePoints('a😀b'), 3);
  assert.ok(wellFormed('a😀b'));
  assert.ok(!wellFormed('a\uDC00'));
});

test('validRoom, sentence, errorText', () => {
  const rule = new RegExp('^[A-Za-z0-9_.-]{1,64}$');
  assert.ok(validRoom('lobby', rule));
  assert.ok(!validRoom('a b', rule));
  assert.ok(!validRoom(7, rule));
  assert.ok(!validRoom('a'.repeat(65), /^.*$/));
  assert.equal(sentence('wrong username or password'), 'Wrong username or password.');
  assert.equal(sentence('done!'), 'Done!');
  assert.equal(sentence(null), '');
  assert.equal(errorText('rate_limited', 'x'), 'You are sending too fast.');
  assert.equal(errorText('no_such_code', 'server says'), 'server says');
  assert.equal(errorText('__proto__'), 'Unexpected error.');
});

test('parseSession and parseLogin take typed fields only', () => {
  assert.equal(parseSession({ access_token: 't', user: { id: '' } }), null);
  assert.equal(parseSession({ user: { id: 'u1' } }), null);
  const s = parseSession({ access_token: 't', refresh_token: 5, expires_in: 900,
    user: { id: 'u1', username: 'alice', nickname: '', role: 'user', created_at: 'x' } });
  assert.deepEqual(s, { access: 't', refresh: '', expiresIn: 900,
    user: { id: 'u1', username: 'alice', nickname: 'alice', role: 'user', createdAt: null } });
  const l = parseLogin({ id: 'l1', at: 1000, ip: '127.0.0.1', user_agent: {}, success: 'true', reason: 'ok' });
  assert.deepEqual(l, { id: 'l1', at: 1000, ip: '127.0.0.1', ua: '', success: false, reason: 'ok' });
  assert.equal(parseLogin([]), null);
});

test('tooLong: the contract limits in code points, not UTF-16 units', () => {
  assert.equal(ROOM_DESC_MAX, 500, 'a room description: proto/README.md section 9');
  assert.equal(ANNOUNCE_MAX, 2000, 'an announcement: proto/README.md section 9');
  assert.equal(tooLong('😀'.repeat(500), ROOM_DESC_MAX, 'description'), '', '500 emoji are 1000 UTF-16 units, 500 code points');
  assert.equal(tooLong('', ROOM_DESC_MAX, 'description'), '');
  assert.equal(tooLong('x'.repeat(501), ROOM_DESC_MAX, 'description'),
    'The description is too long: at most 500 characters (it has 501).');
  assert.equal(tooLong('é'.repeat(2001), ANNOUNCE_MAX, 'announcement'),
    `The announcement is too long: at most ${(2000).toLocaleString()} characters (it has ${(2001).toLocaleString()}).`);
});
