// Live exception queue. The socket only says that a business day's items changed; the server renders the counts
// and the list again (htmx out-of-band swaps of the partials the page was built from), so no markup is built here.
(function () {
  "use strict";
  var root = document.querySelector("[data-recon-live-url]");
  if (!root || !window.WebSocket || !window.htmx || !window.KioskOpsLive) return;
  var live = window.KioskOpsLive;

  // The page's own filters and page number travel with the request: the list stays the one the user asked for.
  // A reconcile run changes many items at once but sends one message per day: still, coalesce bursts.
  var schedule = live.coalesce(function () {
    var url = live.urlWithPageQuery(root.dataset.reconLiveUrl);
    htmx.ajax("GET", url.pathname + url.search, { target: root, swap: "none" });
  }, 200);

  live.connect("/ws/reconciliation/", schedule, schedule);
})();
