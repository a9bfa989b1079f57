/* The technician's phone pages: registers the service worker, shows what waits to sync, and on an order's page
 * turns every form into a queued action (queue.js), shows the queued actions on top of what the server last said
 * (so a reload with no signal still shows them), and fetches the server's page again once they are answered.
 * Words come from the page (#phone-strings), in the reader's language. */
(function () {
  "use strict";

  const S = JSON.parse(document.getElementById("phone-strings").textContent);
  const Q = window.PhoneQueue;
  const D = document.body.dataset;
  const fmt = (text, vars) => text.replace(/%\((\w+)\)s/g, (_, key) => vars[key]);
  // What each queued step does to the order's status, as the server will make it (services.py).
  const MOVES = { accept: "accepted", refuse: "dispatch", depart: "en_route", check_in: "on_site", done: "work_done", sign_off: "signed_off" };
  let justSynced = false;

  /* --- Service worker and the pages kept for no signal --------------------------------------------------- */

  function keepPages(urls) {
    if (!("caches" in window) || navigator.onLine === false) return;
    caches.open(D.pagesCache).then((cache) => {
      urls.forEach((url) => cache.add(url).catch(() => {}));
    });
  }

  if ("serviceWorker" in navigator && D.swUrl) {
    navigator.serviceWorker
      .register(D.swUrl, { scope: D.swScope })
      .then(() => navigator.serviceWorker.ready)
      .then(() => {
        const orders = Array.from(document.querySelectorAll("a[data-order-url]"), (a) => a.href);
        keepPages([location.href, ...orders]);
      })
      .catch(() => {});
  }

  /* --- My orders: distances from where the technician stands, when they allow it --------------------------- */

  function kmBetween(lat1, lon1, lat2, lon2) {
    const rad = (deg) => (deg * Math.PI) / 180;
    const a =
      Math.sin(rad(lat2 - lat1) / 2) ** 2 +
      Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(rad(lon2 - lon1) / 2) ** 2;
    return Math.round(6371 * 2 * Math.asin(Math.sqrt(a)) * 10) / 10;
  }

  function locate() {
    navigator.geolocation.getCurrentPosition(
      (position) => {
        const { latitude, longitude } = position.coords;
        document.querySelectorAll(".order-card[data-lat]").forEach((card) => {
          const km = kmBetween(latitude, longitude, Number(card.dataset.lat), Number(card.dataset.lon));
          card.querySelector(".distance").textContent = fmt(S.km_here, { km: km.toFixed(1) });
        });
      },
      () => {},
      { maximumAge: 120000, timeout: 10000 }
    );
  }

  const locateButton = document.getElementById("locate");
  if (locateButton && "geolocation" in navigator) {
    // Asked for only when the technician taps, unless they have already allowed it.
    locateButton.hidden = false;
    locateButton.addEventListener("click", locate);
    if (navigator.permissions) {
      navigator.permissions
        .query({ name: "geolocation" })
        .then((state) => {
          if (state.state === "granted") {
            locateButton.hidden = true;
            locate();
          }
        })
        .catch(() => {});
    }
  }

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
      setTimeout(() => {
        justSynced = false;
        showBanner();
      }, 3000);
    } else {
      banner.hidden = true;
    }
  }

  function showNet() {
    netBanner.hidden = navigator.onLine !== false;
    document.body.classList.toggle("is-offline", navigator.onLine === false);
    if (root) applyStatus();
  }

  window.addEventListener("online", showNet);
  window.addEventListener("offline", showNet);
  window.addEventListener("phonequeue:change", showBanner);

  /* --- One order ---------------------------------------------------------------------------------------- */

  let root = document.getElementById("order");
  let needsRefresh = false;
  let pollTimer = null;

  function badge() {
    const span = document.createElement("span");
    span.className = "badge-pending";
    span.textContent = S.waiting;
    return span;
  }

  function row(text, listId, action) {
    const list = document.getElementById(listId);
    if (!list || list.querySelector(`[data-pending-id="${action.id}"]`)) return null;
    const li = document.createElement("li");
    li.dataset.pendingId = action.id;
    li.className = "is-pending";
    li.append(text, " ", badge());
    list.append(li);
    return li;
  }

  function press(item, value, action) {
    if (!item) return;
    item.querySelectorAll("button[value]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.value === value));
    });
    item.classList.add("is-pending");
    item.querySelectorAll(".badge-pending").forEach((b) => b.remove());
    item.firstElementChild.append(badge());
    item.dataset.pendingId = action.id;
  }

  const photoUrls = new Map();

  function apply(action) {
    const data = action.data || {};
    switch (action.kind) {
      case "checklist":
        press(root.querySelector(`.check-item[data-key="${CSS.escape(data.key || "")}"]`), data.outcome, action);
        break;
      case "test":
        press(root.querySelector(`.test-item[data-check="${CSS.escape(data.check || "")}"]`), data.result, action);
        break;
      case "note":
        row(data.text, "notes", action);
        break;
      case "part":
        row(`${data.part_number} ${data.name} × ${data.quantity}`, "parts", action);
        break;
      case "photo": {
        const list = document.getElementById("photos");
        if (!list || list.querySelector(`[data-pending-id="${action.id}"]`) || !action.blob) break;
        if (!photoUrls.has(action.id)) photoUrls.set(action.id, URL.createObjectURL(action.blob));
        const li = document.createElement("li");
        li.dataset.pendingId = action.id;
        li.className = "is-pending";
        const img = document.createElement("img");
        img.src = photoUrls.get(action.id);
        img.alt = data.caption || "";
        img.width = 96;
        img.height = 96;
        li.append(img, badge());
        list.append(li);
        break;
      }
      case "done": {
        const summary = document.getElementById("summary-text");
        if (summary) {
          summary.textContent = data.summary;
          summary.append(" ", badge());
        }
        break;
      }
      case "sign_off": {
        const signed = document.getElementById("signed-name");
        if (signed) {
          signed.textContent = data.name;
          signed.append(" ", badge());
        }
        break;
      }
      case "self_test": {
        const result = document.getElementById("self-test-result");
        if (result) {
          result.textContent = S.self_test_requested;
          result.append(" ", badge());
        }
        break;
      }
      default:
        break;
    }
  }

  let effective = { status: "", checkedOut: false };

  function applyStatus() {
    const status = effective.status;
    root.querySelectorAll("[data-show]").forEach((section) => {
      section.hidden = !section.dataset.show.split(" ").includes(status);
    });
    const checkOut = document.getElementById("check-out");
    if (checkOut && effective.checkedOut) checkOut.hidden = true;
    root.querySelectorAll("form[data-enable]").forEach((form) => {
      const off =
        !form.dataset.enable.split(" ").includes(status) ||
        (form.hasAttribute("data-online-only") && navigator.onLine === false);
      form.querySelectorAll("button, input, select, textarea").forEach((control) => {
        control.disabled = off;
      });
      form.classList.toggle("is-disabled", off);
    });
    const pill = document.getElementById("order-status");
    if (pill) {
      pill.className = `pill pill--${status}`;
      pill.textContent = S.statuses[status] || status;
      if (status !== root.dataset.status) pill.append(" ", badge());
    }
  }

  /* The server's refusals, until the technician has read them: an order's on its page, every order's on the list
   * (an order reassigned meanwhile is no longer theirs to open). */
  async function showAnswers() {
    const list = document.getElementById("answers");
    if (!list) return;
    const rows = await Q.answers(root ? root.dataset.uid : undefined);
    list.replaceChildren(
      ...rows.map((answer) => {
        const li = document.createElement("li");
        li.className = `answer answer--${answer.outcome}`;
        const head = document.createElement("strong");
        const what = `${S.kinds[answer.kind] || answer.kind}：${answer.outcome === "conflict" ? S.not_applied : S.refused}`;
        head.textContent = root || !answer.ref ? what : `${answer.ref} ${what}`;
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

  async function render() {
    if (!root) return;
    const actions = await Q.pending(root.dataset.uid);
    effective = { status: root.dataset.status, checkedOut: Boolean(root.dataset.checkedOut) };
    for (const action of actions) {
      if (MOVES[action.kind]) effective.status = MOVES[action.kind];
      if (action.kind === "check_out") effective.checkedOut = true;
      apply(action);
    }
    applyStatus();
    await showAnswers();
  }

  /* The server's page again, once the queue is answered: what it says now, with what is still queued on top. */
  async function refresh() {
    if (!root || navigator.onLine === false) return;
    let response;
    try {
      response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
    } catch (error) {
      return;
    }
    if (!response.ok || response.redirected) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.getElementById("order");
    if (!fresh) return;
    // Keep what the technician is typing, and a signature being drawn.
    root.querySelectorAll("input[id]:not([type=hidden]):not([type=file]), textarea[id]").forEach((field) => {
      const twin = fresh.querySelector(`#${CSS.escape(field.id)}`);
      if (twin && field.value !== field.defaultValue) twin.value = field.value;
    });
    root.querySelectorAll("details[open]").forEach((details, index) => {
      const twin = fresh.querySelectorAll("details")[index];
      if (twin) twin.open = true;
    });
    const pad = document.getElementById("signature");
    const padTwin = fresh.querySelector("#signature");
    if (pad && padTwin && pad.dataset.dirty) padTwin.replaceWith(pad);
    root.replaceWith(fresh);
    root = fresh;
    setupOrder();
    await render();
  }

  function poll() {
    clearInterval(pollTimer);
    if (!root || root.dataset.selfTestPending !== "1") return;
    pollTimer = setInterval(async () => {
      if (navigator.onLine === false || !root) return;
      try {
        const response = await fetch(root.dataset.stateUrl, { credentials: "same-origin", cache: "no-store" });
        if (!response.ok) return;
        const state = await response.json();
        if (String(state.version) !== root.dataset.version) refresh();
      } catch (error) {
        /* no signal: try at the next tick */
      }
    }, 4000);
  }

  /* Logging out takes the kept pages and photos off the phone: the next person to use it must not read them. */
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form.logout");
    if (!form || !("caches" in window) || form.dataset.cleared) return;
    event.preventDefault();
    form.dataset.cleared = "1";
    caches.delete(D.pagesCache).finally(() => form.submit());
  });

  /* --- Forms become queued actions -------------------------------------------------------------------- */

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form.act");
    if (!form || !root || !root.contains(form)) return;
    event.preventDefault();
    const kind = form.dataset.kind;
    if (kind === "photo") return;
    if (form.hasAttribute("data-online-only") && navigator.onLine === false) {
      alert(S.online_only);
      return;
    }
    const data = {};
    new FormData(form).forEach((value, key) => {
      if (typeof value === "string") data[key] = value.trim();
    });
    if (event.submitter && event.submitter.name) data[event.submitter.name] = event.submitter.value;
    if (kind === "part") data.quantity = parseInt(data.quantity, 10) || 1;
    if (kind === "sign_off") {
      const pad = document.getElementById("signature");
      if (!pad.dataset.dirty) {
        alert(S.sign_first);
        return;
      }
      data.signature = pad.toDataURL("image/png");
    }
    await Q.add({ order: root.dataset.uid, ref: root.dataset.reference, kind, data });
    if (form.hasAttribute("data-reset")) form.reset();
    await render();
  });

  /* A photo: made at most 1600 px on its long side and JPEG on the phone, then queued as a Blob. */
  async function shrink(file) {
    let source;
    try {
      source = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (error) {
      source = await new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = reject;
        img.src = URL.createObjectURL(file);
      });
    }
    const width = source.width || source.naturalWidth;
    const height = source.height || source.naturalHeight;
    const scale = Math.min(1, 1600 / Math.max(width, height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.82));
  }

  document.addEventListener("change", async (event) => {
    const input = event.target;
    if (!root || !root.contains(input)) return;
    if (input.id === "photo-file" && input.files.length) {
      const form = input.form;
      let blob;
      try {
        blob = await shrink(input.files[0]);
      } catch (error) {
        blob = null;
      }
      if (!blob) {
        alert(S.photo_bad);
        return;
      }
      const data = {
        kind: form.elements.kind.value,
        caption: form.elements.caption.value.trim(),
        url: root.dataset.photoUrl,
      };
      await Q.add({ order: root.dataset.uid, ref: root.dataset.reference, kind: "photo", data, blob });
      form.reset();
      await render();
    } else if (input.id === "scan-photo" && input.files.length) {
      const out = document.getElementById("scan-result");
      if (!("BarcodeDetector" in window)) {
        out.textContent = S.no_barcode;
        return;
      }
      try {
        const detector = new BarcodeDetector({ formats: ["qr_code"] });
        const codes = await detector.detect(await createImageBitmap(input.files[0]));
        if (codes.length) {
          document.getElementById("scanned").value = codes[0].rawValue;
          out.textContent = fmt(S.scan_found, { value: codes[0].rawValue });
        } else {
          out.textContent = S.scan_none;
        }
      } catch (error) {
        out.textContent = S.scan_none;
      }
      input.value = "";
    }
  });

  /* --- The hall staff's signature, drawn with a finger (pointer events) --------------------------------- */

  function setupSignature() {
    const pad = document.getElementById("signature");
    if (!pad || pad.dataset.ready) return;
    pad.dataset.ready = "1";
    const ctx = pad.getContext("2d");
    const blank = () => {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, pad.width, pad.height);
      delete pad.dataset.dirty;
    };
    blank();
    pad.blank = blank;
    ctx.lineWidth = 3;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111";
    let last = null;
    const at = (event) => {
      const box = pad.getBoundingClientRect();
      return [((event.clientX - box.left) * pad.width) / box.width, ((event.clientY - box.top) * pad.height) / box.height];
    };
    pad.addEventListener("pointerdown", (event) => {
      pad.setPointerCapture(event.pointerId);
      last = at(event);
      ctx.beginPath();
      ctx.arc(last[0], last[1], 1.5, 0, Math.PI * 2);
      ctx.fillStyle = "#111";
      ctx.fill();
      pad.dataset.dirty = "1";
      event.preventDefault();
    });
    pad.addEventListener("pointermove", (event) => {
      if (!last) return;
      const point = at(event);
      ctx.beginPath();
      ctx.moveTo(last[0], last[1]);
      ctx.lineTo(point[0], point[1]);
      ctx.stroke();
      last = point;
      event.preventDefault();
    });
    const end = () => {
      last = null;
    };
    pad.addEventListener("pointerup", end);
    pad.addEventListener("pointercancel", end);
  }

  document.addEventListener("click", (event) => {
    if (event.target.id !== "signature-clear") return;
    const pad = document.getElementById("signature");
    if (pad && pad.blank) pad.blank();
  });

  function setupOrder() {
    setupSignature();
    if ("BarcodeDetector" in window) {
      root.querySelectorAll(".scan-only").forEach((element) => {
        element.hidden = false;
      });
    }
    poll();
  }

  if (root) {
    window.addEventListener("phonequeue:change", render);
    window.addEventListener("phonequeue:answer", () => {
      needsRefresh = true;
    });
    window.addEventListener("phonequeue:sent", async () => {
      if ((await Q.count()) === 0) justSynced = needsRefresh || justSynced;
      if (needsRefresh) {
        needsRefresh = false;
        await refresh();
      }
      showBanner();
    });
    setupOrder();
    render();
  }

  if (!root) {
    window.addEventListener("phonequeue:change", showAnswers);
    showAnswers();
  }
  showNet();
  showBanner();
  Q.flush();
})();
