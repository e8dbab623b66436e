/* theme.js - applies the stored theme choice (localStorage chat.theme: "light" or "dark"; none =
 * follow the system) before the first paint. A classic script in <head>, so it runs before the
 * body is drawn; the app itself is the ES module js/main.js (see js/state.js THEME_KEY). */
(function () {
  'use strict';
  try {
    var t = window.localStorage.getItem('chat.theme');
    if (t === 'light' || t === 'dark') document.documentElement.setAttribute('data-theme', t);
  } catch (e) { /* storage disabled: follow the system */ }
})();
