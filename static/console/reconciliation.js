// Live exception queue. The socket only says that a business day's items changed; the server renders the counts
// and the list again (htmx out-of-band swaps of the partials the page was built from), so no markup is built here.
(function () {
  "use strict";
  var root = document.querySelector("[data-recon-live-url]");
  var indicator = document.getElementById("live-indicator");
  if (!root || !window.WebSocket || !window.htmx) return;
  var timer = null, delay = 1000, everOpen = false;

  function show(state) { if (indicator) indicator.dataset.state = state; }

  function refresh() {
    timer = null;
    // The page's own filters and page number travel with the request: the list stays the one the user asked for.
    var url = new URL(root.dataset.reconLiveUrl, location.href);
    new URLSearchParams(location.search).forEach(function (v, k) { url.searchParams.set(k, v); });
    htmx.ajax("GET", url.pathname + url.search, { target: root, swap: "none" });
  }

  // A reconcile run changes many items at once but sends one message per day: still, coalesce bursts.
  function schedule() { if (!timer) timer = setTimeout(refresh, 200); }

  function connect() {
    var socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/reconciliation/");
    socket.onopen = function () {
      show("live");
      delay = 1000;
      // Changes made while we were away were not pushed to us: fetch once.
      if (everOpen) schedule();
      everOpen = true;
    };
    socket.onmessage = function () { schedule(); };
    socket.onclose = function () {
      show("reconnecting");
      setTimeout(connect, delay + Math.random() * 500);
      delay = Math.min(delay * 2, 30000);
    };
  }

  connect();
})();
