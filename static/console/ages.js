// Ages that stay current on an open page: every <time data-age datetime="…"> reads "3 分钟前" and is worded again
// here every few seconds, from the clock, without asking the server. The words come from the page (#age-words, in
// the reader's language, with the server's clock so a wrong clock on this computer does not age everything); the
// exact moment stays in the element's title.
(function () {
  "use strict";
  var source = document.getElementById("age-words");
  if (!source) return;
  var words = JSON.parse(source.textContent);
  var skew = words.server_now ? words.server_now - Date.now() : 0;

  function phrase(seconds) {
    if (seconds < 10) return words.now;
    var steps = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
    for (var i = 0; i < steps.length; i++) {
      if (seconds >= steps[i][0]) return words[steps[i][1]].replace("{n}", Math.floor(seconds / steps[i][0]));
    }
    return words.now;
  }

  function update(root) {
    var now = Date.now() + skew;
    (root && root.querySelectorAll ? root : document).querySelectorAll("time[data-age]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var text = phrase(Math.max(0, (now - at) / 1000));
      if (el.textContent !== text) el.textContent = text;
    });
  }

  update();
  setInterval(update, 5000);
  // Rows and tiles swapped in by the live board are worded at once, not at the next tick.
  document.addEventListener("htmx:load", function (event) { update(event.target); });
})();
