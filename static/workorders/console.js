// The work-order list and the order page, live. The socket only says which orders changed (their uids); the server
// renders the fragments again (htmx out-of-band swaps of the partials the page was built from), so no markup is
// built here.
(function () {
  "use strict";
  if (!window.WebSocket || !window.htmx || !window.KioskOpsLive) return;
  var live = window.KioskOpsLive;
  var list = document.querySelector("[data-workorders-live-url]");
  var page = document.querySelector("[data-workorder-live-url]");

  function typing(root) {
    // A form someone is typing into is not swapped away under them: the refresh waits for them to finish.
    var active = document.activeElement;
    return active && active.form && active.value && root.contains(active);
  }

  if (list) {
    var refreshList = live.coalesce(function () {
      if (typing(list)) { setTimeout(refreshList, 2000); return; }
      var url = live.urlWithPageQuery(list.dataset.workordersLiveUrl);
      htmx.ajax("GET", url.pathname + url.search, { target: list, swap: "none" });
    }, 300);
    live.connect("/ws/workorders/", refreshList, refreshList);
  } else if (page) {
    var own = page.dataset.workorderUid;
    var refreshPage = live.coalesce(function () {
      if (typing(page)) { setTimeout(refreshPage, 2000); return; }
      htmx.ajax("GET", page.dataset.workorderLiveUrl, { target: page, swap: "none" });
    }, 200);
    live.connect(
      "/ws/workorders/",
      function (data) { if ((data.uids || []).indexOf(own) >= 0) refreshPage(); },
      refreshPage
    );
  }
})();
