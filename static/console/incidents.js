// The incident queue and the incident page, live. The socket only says which incidents changed; the server
// renders the fragments again (htmx out-of-band swaps of the partials the page was built from), so no markup is
// built here. Deadlines count down and ages grow from each <time datetime>, worded with the page's own words.
(function () {
  "use strict";
  var words = null;
  var source = document.getElementById("incident-words");
  if (source) words = JSON.parse(source.textContent);
  var skew = words && words.server_now ? words.server_now - Date.now() : 0;

  function span(seconds) {
    var steps = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
    for (var i = 0; i < steps.length; i++) {
      if (seconds >= steps[i][0]) {
        var text = words[steps[i][1]].replace("{n}", Math.floor(seconds / steps[i][0]));
        // Hours and minutes read better together: "2 小时 5 分钟".
        if (steps[i][1] === "h" || steps[i][1] === "d") {
          var rest = Math.floor((seconds % steps[i][0]) / steps[i + 1][0]);
          if (rest) text += " " + words[steps[i + 1][1]].replace("{n}", rest);
        }
        return text;
      }
    }
    return words.s.replace("{n}", 0);
  }

  function tick(root) {
    if (!words) return;
    var now = Date.now() + skew;
    var scope = root && root.querySelectorAll ? root : document;
    scope.querySelectorAll("time[data-due]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var left = (at - now) / 1000;
      var text = left >= 0 ? words.left.replace("{t}", span(left)) : words.over.replace("{t}", span(-left));
      if (el.textContent !== text) el.textContent = text;
      el.classList.toggle("due--over", left < 0);
      el.classList.toggle("due--soon", left >= 0 && left < 900);
    });
    scope.querySelectorAll("time[data-age]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var seconds = Math.max(0, (now - at) / 1000);
      var text = seconds < 10 ? words.now : words.ago.replace("{t}", span(seconds));
      if (el.textContent !== text) el.textContent = text;
    });
  }

  tick();
  setInterval(tick, 1000);
  document.addEventListener("htmx:load", function (event) { tick(event.target); });

  // Bulk acknowledge: the button counts the ticked rows; ticks survive the list being swapped in live.
  var bulkButton = document.getElementById("bulk-acknowledge");
  function ticked() {
    return Array.from(document.querySelectorAll("input[name=incidents][form=bulk-form]:checked")).map(function (box) {
      return box.value;
    });
  }
  function countTicked() {
    if (!bulkButton) return;
    var n = ticked().length;
    bulkButton.disabled = n === 0;
    bulkButton.querySelector("[data-ticked]").textContent = n;
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("input[name=incidents]")) countTicked();
  });

  // The remote-fix form shows each kind's parameters only while that kind is chosen (also once swapped in live).
  function showParams() {
    var form = document.getElementById("command-form");
    var kind = form && form.querySelector("select[name=kind]");
    if (kind) form.dataset.kind = kind.value;
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("#command-form select[name=kind]")) showParams();
  });
  document.addEventListener("htmx:load", showParams);
  showParams();

  if (!window.WebSocket || !window.htmx || !window.KioskOpsLive) return;
  var live = window.KioskOpsLive;
  var queue = document.querySelector("[data-incidents-live-url]");
  var page = document.querySelector("[data-incident-live-url]");

  if (queue) {
    var refreshQueue = live.coalesce(function () {
      var keep = ticked();
      var url = live.urlWithPageQuery(queue.dataset.incidentsLiveUrl);
      htmx.ajax("GET", url.pathname + url.search, { target: queue, swap: "none" }).then(function () {
        keep.forEach(function (id) {
          var box = document.querySelector("input[name=incidents][value='" + id + "']");
          if (box) box.checked = true;
        });
        countTicked();
        tick();
      });
    }, 300);
    live.connect("/ws/incidents/", refreshQueue, refreshQueue);
  } else if (page) {
    var own = Number(page.dataset.incidentId);
    var refreshPage = live.coalesce(function () {
      // A form someone is typing into is not swapped away under them: the refresh waits for them to finish.
      var active = document.activeElement;
      if (active && active.form && active.value && page.contains(active)) {
        setTimeout(refreshPage, 2000);
        return;
      }
      htmx.ajax("GET", page.dataset.incidentLiveUrl, { target: page, swap: "none" }).then(function () { tick(); });
    }, 200);
    live.connect(
      "/ws/incidents/",
      function (data) { if ((data.ids || []).indexOf(own) >= 0) refreshPage(); },
      refreshPage
    );
    // The kiosk's own heartbeats (its state, its commands) come through the fleet's socket.
    var serial = page.dataset.kioskSerial;
    if (serial) {
      live.connect(
        "/ws/fleet/",
        function (data) { if ((data.serials || []).indexOf(serial) >= 0) refreshPage(); },
        refreshPage
      );
    }
  }
})();
