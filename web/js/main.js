/* main.js - the entry module of the chatcluster web client (vanilla ES modules, no build step, no
 * dependencies): wires the DOM events to the actions and starts the connection.
 *
 * Modules: proto.js (wire contract, validation; pure), state.js (the state and its pure changes),
 * ws.js (WebSocket), api.js (REST accounts API, session tokens), account.js (account panel),
 * rooms.js (rooms, directory, invites, grants, history, read markers: chat-api's rooms API),
 * actions.js (user intent -> state), moderation.js (message actions: edit, delete, report, mute,
 * kick, ban), pins.js (pinned messages), admin.js (the #/admin page), ui.js (render layer).
 * web/theme.js, a classic script in <head>, applies the stored theme before the first paint. */
import { SS, activeRoom, loadRooms, state, store } from './state.js';
import { fetchConfig, refreshToken, renew } from './api.js';
import { changeNickname, changePassword, closeAccount, loadLogins, logout, openAccount, resetAccountPanel } from './account.js';
import { PING_MS, connect, drop, heartbeat, net, reconnectNow } from './ws.js';
import { chooseAnon, dirAction, dismissMessage, joinRoom, leaveRoom, openCreate, openDirectory, openInvite, openRoomPanel,
  retryMessage, roomAction, selectRoom, selectTab, signIn, signinCooling, submitCreate, submitDirect, submitMessage, submitSlowMode,
  submitToken, toggleTheme } from './actions.js';
import { hashInvite, loadNewest, loadOlder, markRead, searchRooms } from './rooms.js';
import { cancelEdit, closeModDialog, deleteMessage, openModDialog, saveEdit, startEdit, submitModDialog } from './moderation.js';
import { adminAction, adminHash, closeAdmin, load as loadAdmin, openAdmin, selectAdminTab, submitAdminFilter } from './admin.js';
import { jumpToPin, pinMessage, togglePins, unpinMessage } from './pins.js';
import { atBottom, autosize, darkQuery, initUi, onRendered, openLogin, renderPending, ui, update } from './ui.js';

/* Scrolled near the top: the page of older messages. Not while the view is about to be redrawn or
 * moved to the bottom (just after a room switch cleared it): then asked again once that render is
 * done, so a scroll to the top that fell on a pending render (a presence count, a message) is not
 * lost; no further scroll event comes while the view rests at the top. */
let olderWanted = false;
const narrow = window.matchMedia('(max-width: 720px)'); /* style.css: the phone layout */
function olderAtTop() {
  const room = activeRoom();
  olderWanted = false;
  if (!room || !room.hist.more || ui.scroller.scrollTop >= 120) return;
  if (renderPending() || state.stickBottom || room.hist.loading) olderWanted = true;
  else loadOlder(room);
}
/* An edit ended (saved, or cancelled): the message box takes the focus back. */
function editDone(done) { if (done && !ui.composerInput.disabled) ui.composerInput.focus(); }
function bindEvents() {
  ui.joinForm.addEventListener('submit', (e) => { e.preventDefault(); joinRoom(ui.joinInput.value); });
  ui.joinInput.addEventListener('input', () => { if (state.joinError) { state.joinError = ''; update(); } });
  ui.roomList.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    const li = btn && btn.closest('li');
    if (!li) return;
    if (btn.dataset.action === 'leave') { leaveRoom(li.dataset.key); return; }
    const overlay = state.navOpen; /* the drawer closes: do not leave focus inside it */
    selectRoom(li.dataset.key);
    if (overlay) ui.chat.focus();
  });
  ui.messages.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    const room = activeRoom();
    if (!btn) { /* touch screens (no hover): a tap on a message shows its actions */
      if (e.target.closest('.msg-edit')) return;
      const li = e.target.closest('li.msg');
      if (li && !e.target.closest('a') && !window.getSelection().toString()) li.classList.toggle('show-actions');
      return;
    }
    const m = room && room.msgs.find((x) => x.key === btn.closest('li').dataset.key);
    if (!m) return;
    const action = btn.dataset.action;
    if (action === 'retry') retryMessage(room, m);
    else if (action === 'dismiss') dismissMessage(room, m);
    else if (action === 'delete') deleteMessage(room, m);
    else if (action === 'edit') startEdit(room, m);
    else if (action === 'pin') pinMessage(room, m);
    else if (action === 'unpin') unpinMessage(room, m.id);
    else if (action === 'edit-save') saveEdit(btn.closest('li').querySelector('.edit-input').value).then(editDone);
    else if (action === 'edit-cancel') { cancelEdit(); editDone(true); }
    else if (action === 'report' || action === 'mute' || action === 'kick' || action === 'ban') openModDialog(action, room, m);
  });
  /* the inline editor of an own message: Enter saves, Shift+Enter is a new line, Escape cancels */
  ui.messages.addEventListener('keydown', (e) => {
    if (!e.target.classList.contains('edit-input')) return;
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); saveEdit(e.target.value).then(editDone); }
    else if (e.key === 'Escape' && !e.isComposing) { e.preventDefault(); cancelEdit(); editDone(true); }
  });
  ui.messages.addEventListener('input', (e) => {
    if (!e.target.classList.contains('edit-input') || !state.editing) return;
    Object.assign(state.editing, { text: e.target.value, error: '' });
    update();
  });
  /* pinned messages: the room head's indicator opens the panel; an entry shows its message */
  ui.roomPins.addEventListener('click', () => togglePins());
  ui.pinsClose.addEventListener('click', () => { togglePins(false); (ui.roomPins.hidden ? ui.chat : ui.roomPins).focus(); });
  ui.pinsPanel.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    e.preventDefault();
    togglePins(false);
    (ui.roomPins.hidden ? ui.chat : ui.roomPins).focus();
  });
  ui.pinList.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]'), li = btn && btn.closest('li'), room = activeRoom();
    if (!li || !room) return;
    if (btn.dataset.action === 'unpin') { unpinMessage(room, li.dataset.key); return; }
    /* a phone: the panel covers much of the timeline, it closes to show the message */
    jumpToPin(room, li.dataset.key).then((shown) => { if (shown && narrow.matches) togglePins(false); });
  });
  ui.modForm.addEventListener('submit', (e) => { e.preventDefault(); submitModDialog(); });
  ui.modCancel.addEventListener('click', closeModDialog);
  ui.siteAnnounce.addEventListener('click', (e) => {
    const li = e.target.closest('button[data-action]') && e.target.closest('li');
    if (!li) return;
    state.announcements = state.announcements.filter((a) => a.id !== li.dataset.key);
    update();
  });
  ui.adminClose.addEventListener('click', closeAdmin);
  ui.adminDialog.addEventListener('close', () => { if (adminHash()) history.replaceState(null, '', location.pathname + location.search); });
  ui.adminDialog.querySelector('.admin-tabs').addEventListener('click', (e) => {
    const tab = e.target.closest('[data-tab]');
    if (tab) selectAdminTab(tab.dataset.tab);
  });
  ui.adminFilter.addEventListener('submit', (e) => { e.preventDefault(); submitAdminFilter(); });
  ui.adminFilter.addEventListener('click', (e) => { /* the sessions view: revoke them all */
    const btn = e.target.closest('button[data-action]');
    if (btn) adminAction(btn.dataset.action, btn.dataset.key, null);
  });
  ui.adminMore.addEventListener('click', () => loadAdmin(true));
  ui.adminList.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    if (btn) adminAction(btn.dataset.action, btn.dataset.key, btn.closest('li'));
  });
  ui.composer.addEventListener('submit', (e) => { e.preventDefault(); submitMessage(); });
  ui.composerInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submitMessage(); }
  });
  ui.composerInput.addEventListener('input', () => { autosize(); update(); });
  ui.scroller.addEventListener('scroll', () => {
    if (state.showJump && atBottom()) { state.showJump = false; update(); }
    olderAtTop();
  }, { passive: true });
  onRendered(() => { if (olderWanted) olderAtTop(); });
  /* rooms: directory, new room, direct messages, the room panel */
  ui.dirBtn.addEventListener('click', openDirectory);
  ui.dirClose.addEventListener('click', () => ui.dirDialog.close());
  ui.dirForm.addEventListener('submit', (e) => { e.preventDefault(); searchRooms(ui.dirInput.value.trim(), false); });
  ui.dirMore.addEventListener('click', () => searchRooms(state.dir.q, true));
  ui.dirList.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    const li = btn && btn.closest('li');
    if (li) dirAction(btn.dataset.action, li.dataset.key);
  });
  ui.createBtn.addEventListener('click', openCreate);
  ui.createClose.addEventListener('click', () => ui.createDialog.close());
  ui.createForm.addEventListener('submit', (e) => { e.preventDefault(); submitCreate(); });
  ui.createKind.addEventListener('change', update);
  ui.dmForm.addEventListener('submit', (e) => { e.preventDefault(); submitDirect(); });
  ui.dmInput.addEventListener('input', () => { if (state.dmMsg) { state.dmMsg = ''; update(); } });
  ui.roomInfo.addEventListener('click', openRoomPanel);
  ui.roomClose.addEventListener('click', () => ui.roomDialog.close());
  for (const node of [ui.roomJoin, ui.roomFav, ui.roomDialog]) {
    node.addEventListener('click', (e) => {
      const btn = e.target.closest('button[data-action]');
      if (btn) roomAction(btn.dataset.action, btn);
    });
  }
  ui.slowForm.addEventListener('submit', (e) => { e.preventDefault(); submitSlowMode(); });
  ui.inviteLink.addEventListener('focus', () => ui.inviteLink.select());
  window.addEventListener('hashchange', () => { openInvite(hashInvite()); if (adminHash()) openAdmin(); });
  ui.jump.addEventListener('click', () => { state.stickBottom = true; update(); });
  ui.reconnectBtn.addEventListener('click', reconnectNow);
  ui.reloadBtn.addEventListener('click', () => location.reload()); /* after close 4010 (ws.js) */
  ui.loginBtn.addEventListener('click', () => openLogin('login'));
  ui.composerLogin.addEventListener('click', () => openLogin('login'));
  ui.authBannerLogin.addEventListener('click', () => openLogin('login'));
  ui.authBannerClose.addEventListener('click', () => { Object.assign(state, { authNotice: '', authOffer: false }); update(); });
  ui.logoutBtn.addEventListener('click', () => logout(false));
  ui.accountBtn.addEventListener('click', openAccount);
  ui.anonBtn.addEventListener('click', chooseAnon);
  ui.themeBtn.addEventListener('click', toggleTheme);
  ui.navToggle.addEventListener('click', () => { state.navOpen = !state.navOpen; update(); });
  ui.chat.addEventListener('pointerdown', () => { if (state.navOpen) { state.navOpen = false; update(); } });
  /* sign-in panel */
  ui.tabLogin.addEventListener('click', () => selectTab('login', false));
  ui.tabRegister.addEventListener('click', () => selectTab('register', false));
  ui.tabRegister.parentElement.addEventListener('keydown', (e) => { /* tabs: arrows switch, as in a tablist */
    if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) {
      e.preventDefault();
      const reg = e.key === 'End' || (e.key !== 'Home' && state.signin.tab === 'login');
      selectTab(reg ? 'register' : 'login', true);
    }
  });
  ui.loginForm.addEventListener('submit', (e) => { e.preventDefault(); signIn('login'); });
  ui.registerForm.addEventListener('submit', (e) => { e.preventDefault(); signIn('register'); });
  for (const kind of ['login', 'register']) {
    ui[kind + 'Form'].addEventListener('input', () => {
      const f = state.signin[kind];
      if (f.error && f.until <= Date.now()) { Object.assign(f, { error: '', field: '' }); update(); }
    });
  }
  ui.tokenForm.addEventListener('submit', (e) => { e.preventDefault(); submitToken(); });
  ui.loginDialog.addEventListener('cancel', () => { if (!state.user && !state.token) chooseAnon(); });
  /* account panel */
  ui.accountClose.addEventListener('click', closeAccount);
  ui.accountDialog.addEventListener('close', () => {
    for (const f of [ui.pwCurrent, ui.pwNew, ui.pwRepeat]) f.value = '';
    resetAccountPanel();
  });
  ui.nickForm.addEventListener('submit', (e) => { e.preventDefault(); changeNickname(); });
  ui.nickInput.addEventListener('input', () => { if (state.acct.nickErr) { state.acct.nickMsg = ''; state.acct.nickErr = false; update(); } });
  ui.pwForm.addEventListener('submit', (e) => { e.preventDefault(); changePassword(); });
  ui.pwForm.addEventListener('input', () => { if (state.acct.pwErr) { Object.assign(state.acct, { pwMsg: '', pwErr: false, pwField: '' }); update(); } });
  ui.loginsMore.addEventListener('click', () => loadLogins(false));
  ui.acctLogout.addEventListener('click', () => logout(false));
  ui.acctLogoutAll.addEventListener('click', () => logout(true));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && state.navOpen) { state.navOpen = false; ui.navToggle.focus(); update(); }
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) markRead();
    update();
  });
  darkQuery.addEventListener('change', update);
  window.addEventListener('online', () => { if (!net.ws) reconnectNow(); });
  window.addEventListener('pagehide', () => { if (net.ws) drop(net.ws); clearTimeout(net.timers.retry); });
  window.addEventListener('pageshow', (e) => { if (e.persisted && !net.ws) reconnectNow(); });
  setInterval(heartbeat, PING_MS);
  setInterval(() => {
    if (state.conn.status === 'offline' || state.cooldownUntil > Date.now() - 1000 || signinCooling() || state.sanctions.length
      || (state.editing && state.editing.sanction)) update();
  }, 1000);
}
async function init() {
  initUi();
  store.del(SS, 'chat.token'); /* earlier versions kept a pasted token there */
  loadRooms();
  bindEvents();
  fetchConfig();
  autosize();
  update();
  /* A stored refresh token: renew the session first, so the socket can authenticate right away
   * (a 401 ends it with a notice; a transient failure is retried, and hello tries again). */
  const invite = hashInvite();
  if (refreshToken()) await renew();
  else if (!state.anon || invite) openLogin('login');
  connect();
  if (activeRoom()) loadNewest(activeRoom());
  if (invite) openInvite(invite);
}
/* module scripts run after the document is parsed */
init();
