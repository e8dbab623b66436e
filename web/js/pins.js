/* pins.js - pinned messages (proto/README.md section 9, "Pins"): the open room's list (GET
 * /api/v1/rooms/{room}/pins, read when the room is shown or joined, again after a reconnect and
 * after each live pinned or unpinned event), the pin and unpin requests (POST .../pins {"id"},
 * DELETE .../pins/{id}: the room's owner and admins, site admins, either member of a direct room;
 * moderation.js canPin) and the jump from a pin to its message. The list's pure changes are in
 * state.js (takePins, pinEvent, pinEdited, dropPin). REST calls never throw; a refusal is the
 * page's notice, like the other message actions. */
import { parsePinResult, parsePins, pinErrorText } from './proto.js';
import { activeRoom, addPin, dropPin, isPinned, oldestSeq, pinEdited, pinEvent, pinOfMsg, state, takePins } from './state.js';
import { UNEXPECTED, api, apiErrorText, authedFetch, messageFetch } from './api.js';
import { canPin } from './moderation.js';
import { loadOlder } from './rooms.js';
import { update } from './ui.js';

export const PIN_RELOAD_MS = 100; /* pin events that come together (a replay) read the list once */
export const PIN_TRIES = 5; /* an expected pin the answer lacks (its message not stored yet): asked again */
export const PIN_RETRY_MS = 300; /* times the try number */
export const JUMP_PAGES = 20; /* older history pages read at most to reach a pinned message */
const enc = encodeURIComponent;
const pinsPath = (id) => `/api/v1/rooms/${enc(id)}/pins`;
/* With the access token when signed in (the list of a public room is open to guests too). */
function call(method, path, body) { return state.token ? authedFetch(method, path, body) : api(method, path, body); }
const alive = (room) => state.rooms.get(room.id) === room;
function say(text, isError) { state.notice = text; state.noticeErr = !!isError; update(); }

/* GET .../pins into room.pins (only the newest request's answer counts). A room chat-api does not
 * list for the caller (404: an ad hoc room, which has no pins) has none. */
export async function loadPins(room) {
  const p = room.pins, gen = ++p.gen;
  clearTimeout(p.timer);
  Object.assign(p, { loading: true, stale: false, timer: null });
  update();
  const r = await call('GET', pinsPath(room.id));
  if (gen !== p.gen || !alive(room)) return;
  p.loading = false;
  const list = r.ok ? parsePins(r.data) : null;
  if (list) {
    const keep = p.tries < PIN_TRIES;
    if (takePins(room, list, keep) && keep) {
      p.tries++;
      p.timer = setTimeout(() => { p.timer = null; if (alive(room)) loadPins(room); }, PIN_RETRY_MS * p.tries);
    }
  } else if (r.status === 404) {
    takePins(room, [], false);
  } else p.error = r.ok ? UNEXPECTED : apiErrorText(r);
  update();
}
/* The list is to be read again: soon for the open room, when it is next shown for the others. */
export function reloadPins(room) {
  const p = room.pins;
  if (room.id !== state.active) { p.stale = true; return; }
  if (p.timer) return;
  p.timer = setTimeout(() => { p.timer = null; if (alive(room)) loadPins(room); }, PIN_RELOAD_MS);
}
/* Room is shown (selected, or its panel opened): its list, unless it is current or on its way (a
 * room being joined reads it when the join is answered: pinsJoined). */
export function showPins(room) {
  const p = room.pins;
  if (p.loading || p.timer || room.joining || (p.loaded && !p.stale && !p.error)) return;
  loadPins(room);
}
/* The socket joined room (first time, or again after a reconnect: events may have been missed). */
export function pinsJoined(room) {
  if (room.id === state.active) loadPins(room);
  else room.pins.stale = true;
}
/* A live event of room's stream (ws.js, after addServerMsg took it; proto.js parseEvent form). */
export function pinsOnEvent(room, e) {
  if (e.kind === 'sys') { if (pinEvent(room, e)) reloadPins(room); } else if (e.kind === 'del') dropPin(room, e.target);
  else if (e.kind === 'edit') pinEdited(room, e);
}
/* Events read from history to fill a gap (rooms.js fillGap): the list is read again when they
 * touch a pin (they are newer than what the page held, but were not seen live). */
export function pinsOnHistory(room, events) {
  const touches = (e) => (e.kind === 'sys' && (e.event === 'pinned' || e.event === 'unpinned'))
    || ((e.kind === 'del' || e.kind === 'edit') && isPinned(room, e.target));
  if (events.some(touches)) reloadPins(room);
}

/* ---- pin, unpin (message menu, the panel) ---- */
/* POST .../pins {"id"}: pinned (201) or pinned already (200); the live pinned event reads the list
 * again. A message just sent may not be found for a moment: messageFetch asks again. Resolves to
 * true when it is pinned. */
export async function pinMessage(room, m) {
  if (!canPin(room) || !m.id) return false;
  const r = await messageFetch('POST', pinsPath(room.id), { id: m.id }, m.ts);
  if (!r.ok) { say(`Could not pin the message: ${pinErrorText(r)}`, true); return false; }
  const res = parsePinResult(r.data);
  if (alive(room)) addPin(room, pinOfMsg(m, res ? res.pinnedBy : state.user, res ? res.pinnedAt : Date.now()));
  say('');
  return true;
}
/* DELETE .../pins/{id}: unpinned (204), or it was not pinned (404: someone unpinned it meanwhile,
 * or its message was deleted; not asked again as a pin is: a pinned message was stored). Resolves
 * to true when it is not pinned any more. */
export async function unpinMessage(room, id) {
  if (!canPin(room) || !id) return false;
  const r = await authedFetch('DELETE', `${pinsPath(room.id)}/${enc(id)}`);
  if (!r.ok && r.status !== 404) { say(`Could not unpin the message: ${pinErrorText(r)}`, true); return false; }
  if (alive(room)) {
    dropPin(room, id);
    if (!r.ok) reloadPins(room);
  }
  say('');
  return true;
}

/* ---- the panel: a pin's message in the timeline ---- */
/* Shows pinned message id of the open room in the timeline (scrolled to, highlighted: ui.js), after
 * reading older history pages when the page does not hold it yet (at most JUMP_PAGES). Resolves
 * to true when it is shown. */
export async function jumpToPin(room, id) {
  const pin = room.pins.list.find((x) => x.id === id);
  let m = room.byId.get(id);
  for (let i = 0; !m && pin && pin.seq !== null && i < JUMP_PAGES && room.hist.loaded && room.hist.more; i++) {
    const before = oldestSeq(room);
    if (before >= 0 && before <= pin.seq) break; /* older than it: it is not in the history any more */
    await loadOlder(room);
    if (!alive(room) || oldestSeq(room) === before) break;
    m = room.byId.get(id);
  }
  if (!alive(room) || room.id !== state.active) return false;
  if (!m || m.kind !== 'msg' || m.deleted) {
    say('The pinned message is not in the part of the history this page has read.', true);
    return false;
  }
  state.flash = { room: room.id, key: m.key };
  update();
  return true;
}
/* The pins panel of the open room: shown or hidden (read when shown). */
export function togglePins(open = !state.pinsOpen) {
  const room = activeRoom();
  state.pinsOpen = !!open && !!room;
  if (state.pinsOpen) showPins(room);
  update();
}
