/* The phone stock count without a signal: every counted quantity typed is kept on the phone (localStorage, per
   count) until the server has it. Saving with no signal keeps them and says so; when the signal returns they are
   sent one by one to the API (POST /api/v1/parts/counts/<id>/record/ — recording the same number twice is harmless)
   and the page reloads with the server's figures. Posting the count needs a signal. */
(function () {
  "use strict";
  const form = document.getElementById("count-form");
  if (!form || !form.dataset.countId) return;
  const key = "parts-count-" + form.dataset.countId;
  const banner = document.getElementById("count-offline");
  const strings = JSON.parse(document.getElementById("count-strings").textContent);
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const inputs = () => Array.from(form.querySelectorAll("input[name^='counted-']"));

  const load = () => { try { return JSON.parse(localStorage.getItem(key)) || {}; } catch (e) { return {}; } };
  const store = (kept) => {
    if (Object.keys(kept).length) localStorage.setItem(key, JSON.stringify(kept));
    else localStorage.removeItem(key);
  };
  const say = (text) => { banner.textContent = text; banner.hidden = !text; };
  const mark = (kept) => inputs().forEach((input) => {
    input.closest(".count-card").classList.toggle("count-card--pending", input.name in kept);
  });

  // What the server already has is no longer kept; what it has not is put back in the fields.
  const kept = load();
  inputs().forEach((input) => {
    if (!(input.name in kept)) return;
    if (kept[input.name] === input.value) delete kept[input.name];
    else input.value = kept[input.name];
  });
  store(kept);
  mark(kept);
  if (Object.keys(kept).length) say(strings.pending);

  form.addEventListener("input", (event) => {
    const input = event.target;
    if (!input.name || !input.name.startsWith("counted-")) return;
    const now = load();
    now[input.name] = input.value.trim();
    store(now);
  });

  form.addEventListener("submit", (event) => {
    if (navigator.onLine) return;
    event.preventDefault();
    const action = event.submitter ? event.submitter.value : "record";
    mark(load());
    say(action === "post" ? strings.post_needs_signal : strings.kept);
  });

  async function send() {
    const now = load();
    const names = Object.keys(now).filter((name) => now[name] !== "");
    if (!names.length || !navigator.onLine) return;
    say(strings.sending);
    for (const name of names) {
      const response = await fetch(form.dataset.recordUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept-Language": "zh-hans" },
        body: JSON.stringify({ lot: Number(name.slice(8)), counted: Number(now[name]) }),
      }).catch(() => null);
      if (!response) { say(strings.kept); return; }
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        const errors = body.errors ? Object.values(body.errors).flat().join("；") : body.detail || "";
        say(strings.refused + " " + errors);
        delete now[name];
        store(now);
        return;
      }
      delete now[name];
      store(now);
    }
    window.location.reload();
  }
  window.addEventListener("online", send);
  window.PartsCount = { send };
  send();
})();
