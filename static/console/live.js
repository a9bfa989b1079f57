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
  if (!root || !window.WebSocket || !window.htmx || !window.KioskOpsLive) return;
  var live = window.KioskOpsLive;
  var ownSerial = root.dataset.liveSerial || null;  // set on a kiosk page: only its own changes matter
  var pending = new Set(), resync = false;

  function refresh() {
    var url = live.urlWithPageQuery(root.dataset.liveUrl);
    if (!ownSerial) {
      // The board says which changed kiosks it lists as problems, and where ("serial~sort key"): the server swaps
      // those rows in place while they keep their place, and re-sorts the list otherwise.
      var serials = Array.from(pending);
      var shown = serials.map(function (s) {
        var row = document.getElementById("problem-" + s);
        return row ? s + "~" + row.dataset.sortKey : null;
      }).filter(Boolean);
      if (resync || serials.length > 500) url.searchParams.set("all", "1");
      else {
        url.searchParams.set("serials", serials.join(","));
        if (shown.length) url.searchParams.set("shown", shown.join(","));
      }
    }
    pending.clear();
    resync = false;
    htmx.ajax("GET", url.pathname + url.search, { target: root, swap: "none" });
  }

  // Bursts of messages (a sweep flips many kiosks) become one request.
  var schedule = live.coalesce(refresh, 150);

  live.connect(
    "/ws/fleet/",
    function (data) {
      var serials = data.serials || [];
      if (ownSerial && serials.indexOf(ownSerial) < 0) return;
      serials.forEach(function (s) { pending.add(s); });
      schedule();
    },
    function () { resync = true; schedule(); }  // back after a break: fetch everything once
  );
})();
