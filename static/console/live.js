// Live updates for the board and the kiosk page. The socket only says which kiosks changed; the server renders
// them (htmx out-of-band swaps of the same partials the page was built from), so no markup is built here.
(function () {
  "use strict";
  // Destructive forms ask first (data-confirm carries the translated question).
  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  var root = document.querySelector("[data-live-url]");
  var indicator = document.getElementById("live-indicator");
  if (!root || !window.WebSocket || !window.htmx) return;
  var ownSerial = root.dataset.liveSerial || null;  // set on a kiosk page: only its own changes matter
  var pending = new Set(), resync = false, timer = null, delay = 1000, everOpen = false;

  function show(state) { if (indicator) indicator.dataset.state = state; }

  function refresh() {
    timer = null;
    var url = new URL(root.dataset.liveUrl, location.href);
    new URLSearchParams(location.search).forEach(function (v, k) { url.searchParams.set(k, v); });
    if (!ownSerial) {
      var serials = Array.from(pending);
      var unknown = serials.some(function (s) { return !document.getElementById("kiosk-" + s); });
      if (resync || unknown) url.searchParams.set("all", "1");
      else url.searchParams.set("serials", serials.join(","));
    }
    pending.clear();
    resync = false;
    htmx.ajax("GET", url.pathname + url.search, { target: root, swap: "none" });
  }

  // Bursts of messages (a sweep flips many kiosks) become one request.
  function schedule() { if (!timer) timer = setTimeout(refresh, 150); }

  function connect() {
    var socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/fleet/");
    socket.onopen = function () {
      show("live");
      delay = 1000;
      // Changes made while we were away were not pushed to us: fetch everything once.
      if (everOpen) { resync = true; schedule(); }
      everOpen = true;
    };
    socket.onmessage = function (event) {
      var serials = JSON.parse(event.data).serials || [];
      if (ownSerial && serials.indexOf(ownSerial) < 0) return;
      serials.forEach(function (s) { pending.add(s); });
      schedule();
    };
    socket.onclose = function () {
      show("reconnecting");
      setTimeout(connect, delay + Math.random() * 500);
      delay = Math.min(delay * 2, 30000);
    };
  }

  connect();
})();
