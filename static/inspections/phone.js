/* The technician's inspection pages on the phone: every pass / fail and the final "done" is queued on the phone
 * (workorders/queue.js, the inspections' own IndexedDB store) and sent to the sync API, offline or not. Queued
 * changes are shown on the page until the server has answered; then the page is fetched again. Words come from
 * the page (#phone-strings), in the reader's language. */
(function () {
  "use strict";

  const S = JSON.parse(document.getElementById("phone-strings").textContent);
  const D = document.body.dataset;

  /* --- Offline copy: the service worker keeps the pages opened; the list's inspections are fetched ahead ------ */

  if ("serviceWorker" in navigator && D.swUrl) {
    navigator.serviceWorker
      .register(D.swUrl, { scope: D.swScope })
      .then(() => navigator.serviceWorker.ready)
      .then(() => caches.open(D.pagesCache))
      .then((cache) => {
        const pages = Array.from(document.querySelectorAll("a.order-card__link"), (a) => a.href);
        [location.href, ...pages].forEach((url) => cache.add(url).catch(() => {}));
      })
      .catch(() => {});
  }
  const Q = window.PhoneQueue;
  const root = document.getElementById("inspection");
  const fmt = (text, vars) => text.replace(/%\((\w+)\)s/g, (_, key) => vars[key]);
  let justSynced = false;

  /* --- Banners ----------------------------------------------------------------------------------------- */

  const banner = document.getElementById("sync-banner");
  const netBanner = document.getElementById("net-banner");

  async function showBanner() {
    const n = await Q.count();
    banner.classList.remove("sync-banner--done", "sync-banner--blocked");
    if (n) {
      banner.textContent = fmt(Q.sending() ? S.syncing : S.pending, { n });
      if (Q.blocked() === "login") {
        banner.textContent += " — " + S.login;
        banner.classList.add("sync-banner--blocked");
      }
      banner.hidden = false;
    } else if (justSynced) {
      banner.textContent = S.synced;
      banner.classList.add("sync-banner--done");
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  function showNet() {
    netBanner.hidden = navigator.onLine !== false;
    document.body.classList.toggle("is-offline", navigator.onLine === false);
  }

  async function showAnswers() {
    const list = document.getElementById("answers");
    if (!list) return;
    const rows = await Q.answers(root ? root.dataset.uid : undefined);
    list.replaceChildren(
      ...rows.map((answer) => {
        const li = document.createElement("li");
        li.className = `answer answer--${answer.outcome}`;
        const head = document.createElement("strong");
        head.textContent = `${answer.ref ? answer.ref + " " : ""}${answer.outcome === "conflict" ? S.not_applied : S.refused}`;
        const text = document.createElement("p");
        text.textContent = answer.message;
        const dismiss = document.createElement("button");
        dismiss.type = "button";
        dismiss.className = "btn btn--small btn--quiet";
        dismiss.textContent = S.dismiss;
        dismiss.addEventListener("click", () => Q.dismiss(answer.id));
        li.append(head, text, dismiss);
        return li;
      })
    );
  }

  /* --- Queued changes shown on the page -------------------------------------------------------------- */

  async function render() {
    if (!root) return;
    const actions = await Q.pending(root.dataset.uid);
    root.querySelectorAll(".insp-check").forEach((item) => item.classList.remove("is-pending"));
    for (const action of actions) {
      if (action.kind !== "check") continue;
      const item = root.querySelector(`.insp-check[data-key="${CSS.escape(action.data.key)}"]`);
      if (!item) continue;
      item.classList.add("is-pending");
      item.querySelectorAll("button[data-result]").forEach((button) => {
        button.setAttribute("aria-pressed", String(button.dataset.result === action.data.result));
      });
      item.querySelector(".insp-state").textContent = S.waiting;
    }
    await showAnswers();
  }

  /* The server's page again once what this page queued is answered (with the results as the server has them). */
  let answered = false;
  async function refresh() {
    if (!root || !answered || navigator.onLine === false || (await Q.count())) return;
    answered = false;
    location.reload();
  }

  /* --- Pass / fail and done become queued actions ---------------------------------------------------- */

  async function queueCheck(form, result) {
    const data = {
      key: form.elements.key.value,
      result,
      note: form.elements.note.value.trim(),
      measure: form.elements.measure.value.trim(),
    };
    if (result === "fail" && !data.note) {
      form.querySelector(".insp-state").textContent = S.note_needed;
      form.elements.note.focus();
      return;
    }
    await Q.add({ order: root.dataset.uid, ref: root.dataset.ref, kind: "check", data });
  }

  if (root) {
    root.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-result]");
      if (!button || button.disabled) return;
      event.preventDefault();
      queueCheck(button.closest("form"), button.dataset.result);
    });
    root.addEventListener("submit", async (event) => {
      const form = event.target.closest("form.insp-form");
      if (!form) return;
      event.preventDefault();
      if (form.dataset.kind === "done") {
        await Q.add({ order: root.dataset.uid, ref: root.dataset.ref, kind: "done", data: { note: form.elements.note.value.trim() } });
      }
    });
  }

  window.addEventListener("online", showNet);
  window.addEventListener("offline", showNet);
  window.addEventListener("phonequeue:change", () => {
    showBanner();
    render();
  });
  window.addEventListener("phonequeue:answer", () => {
    answered = true;
  });
  window.addEventListener("phonequeue:sent", async () => {
    if (!(await Q.count())) {
      justSynced = true;
      showBanner();
      refresh();
    }
  });
  showNet();
  showBanner();
  render();
  Q.flush();
})();
