// The console's live socket, shared by the live pages (live.js: the board and the kiosk page; reconciliation.js:
// the exception queue). It keeps one WebSocket open, reconnecting with backoff, shows its state in the page's
// live indicator, and tells the page when it came back (changes made meanwhile were not pushed: fetch once).
(function () {
  "use strict";
  var indicator = null;

  function show(state) {
    indicator = indicator || document.getElementById("live-indicator");
    if (indicator) indicator.dataset.state = state;
  }

  window.KioskOpsLive = {
    // path: "/ws/…/"; onMessage(data) gets each message's parsed JSON; onReconnect() runs after a reconnection.
    connect: function (path, onMessage, onReconnect) {
      var delay = 1000, everOpen = false;
      function open() {
        var socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + path);
        socket.onopen = function () {
          show("live");
          delay = 1000;
          if (everOpen && onReconnect) onReconnect();
          everOpen = true;
        };
        socket.onmessage = function (event) { onMessage(JSON.parse(event.data)); };
        socket.onclose = function () {
          show("reconnecting");
          setTimeout(open, delay + Math.random() * 500);
          delay = Math.min(delay * 2, 30000);
        };
      }
      open();
    },
    // The URL of a partial with this page's own query (filters, page number), so the refresh shows what it shows.
    urlWithPageQuery: function (base) {
      var url = new URL(base, location.href);
      new URLSearchParams(location.search).forEach(function (v, k) { url.searchParams.set(k, v); });
      return url;
    },
    // fn once after `ms`, however many times it is asked for meanwhile: a burst of messages makes one request.
    coalesce: function (fn, ms) {
      var timer = null;
      return function () {
        if (!timer) timer = setTimeout(function () { timer = null; fn(); }, ms);
      };
    },
  };
})();
