/* The phone's outbox: every change a technician makes is stored here first (IndexedDB, so it survives closing the
 * page and a reload with no signal), then sent in the order it was made — JSON actions to the sync API in batches,
 * photos one by one to the photo API — each with the id the phone gave it (crypto.randomUUID), so a retry after a
 * lost answer applies nothing twice. The server's answer to each action is kept until the technician has seen it.
 *
 * window.PhoneQueue: add(action), pending(order?), answers(order?), dismiss(id), flush(), count().
 * Fires "phonequeue:change" on window after anything changes, "phonequeue:answer" per answered action. */
(function () {
  "use strict";

  // Another app's phone pages keep their own queue (data-queue-db) and name what an action is on (data-queue-subject).
  const DB_NAME = document.body.dataset.queueDb || "kioskops-phone";
  const DB_VERSION = 1;
  const BATCH = 50; // actions per sync request (the server takes up to 200)
  const RETRY_MS = 15000;
  let dbPromise = null;
  let flushing = null;
  let retryTimer = null;
  let blocked = ""; // why sending stopped until the next page load ("login")

  function body() {
    return document.body.dataset;
  }

  function open() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const request = indexedDB.open(DB_NAME, DB_VERSION);
        request.onupgradeneeded = () => {
          const db = request.result;
          // seq: the order the technician made the changes in; id: the action's own UUID.
          const actions = db.createObjectStore("actions", { keyPath: "seq", autoIncrement: true });
          actions.createIndex("id", "id", { unique: true });
          db.createObjectStore("answers", { keyPath: "id" });
        };
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    }
    return dbPromise;
  }

  function tx(store, mode, work) {
    return open().then(
      (db) =>
        new Promise((resolve, reject) => {
          const transaction = db.transaction(store, mode);
          let result;
          Promise.resolve(work(transaction.objectStore(store))).then((value) => {
            result = value;
          });
          transaction.oncomplete = () => resolve(result);
          transaction.onerror = () => reject(transaction.error);
          transaction.onabort = () => reject(transaction.error);
        })
    );
  }

  function all(store) {
    return tx(store, "readonly", (objects) => {
      return new Promise((resolve) => {
        const request = objects.getAll();
        request.onsuccess = () => resolve(request.result);
      });
    });
  }

  function changed() {
    window.dispatchEvent(new CustomEvent("phonequeue:change"));
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // Pages over plain http on a LAN have no randomUUID: same format from getRandomValues.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /* Store a change: {order, ref (the order's reference, for people), kind, data, blob?}. Returns the stored action (with its id and recorded_at). */
  async function add(action) {
    const stored = {
      id: uuid(),
      order: action.order,
      kind: action.kind,
      ref: action.ref || "",
      data: action.data || {},
      recorded_at: new Date().toISOString(),
      user: body().user || "",
    };
    if (action.blob) stored.blob = action.blob;
    await tx("actions", "readwrite", (objects) => objects.add(stored));
    changed();
    schedule(0);
    return stored;
  }

  async function pending(order) {
    // Only this user's: a phone handed to a colleague must not send one person's changes as another's.
    const me = body().user || "";
    const actions = (await all("actions")).filter((a) => (a.user || "") === me).sort((a, b) => a.seq - b.seq);
    return order ? actions.filter((a) => a.order === order) : actions;
  }

  async function answers(order) {
    const rows = await all("answers");
    rows.sort((a, b) => (a.at < b.at ? -1 : 1));
    return order ? rows.filter((a) => a.order === order) : rows;
  }

  async function count() {
    return (await pending()).length;
  }

  function dismiss(id) {
    return tx("answers", "readwrite", (objects) => objects.delete(id)).then(changed);
  }

  async function settle(action, result) {
    await open().then(
      (db) =>
        new Promise((resolve, reject) => {
          const transaction = db.transaction(["actions", "answers"], "readwrite");
          transaction.objectStore("actions").delete(action.seq);
          if (result.outcome !== "applied") {
            transaction.objectStore("answers").put({
              id: action.id,
              order: action.order,
              kind: action.kind,
              ref: action.ref || "",
              outcome: result.outcome,
              message: result.message || "",
              at: new Date().toISOString(),
            });
          }
          transaction.oncomplete = resolve;
          transaction.onerror = () => reject(transaction.error);
        })
    );
    window.dispatchEvent(new CustomEvent("phonequeue:answer", { detail: { action, result } }));
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  class Stop extends Error {
    constructor(reason) {
      super(reason);
      this.reason = reason;
    }
  }

  /* The server's 4xx body in words: {"detail", "errors": {field: [..]}} flattened. */
  function describe(payload) {
    if (!payload || typeof payload !== "object") return "";
    const words = [];
    const walk = (value) => {
      if (typeof value === "string") words.push(value);
      else if (Array.isArray(value)) value.forEach(walk);
      else if (value && typeof value === "object") Object.values(value).forEach(walk);
    };
    walk(payload.errors || payload.detail || "");
    return words.join("；") || payload.detail || "";
  }

  async function post(url, init) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: Object.assign({ "X-CSRFToken": csrfToken(), Accept: "application/json" }, init.headers || {}),
        body: init.body,
      });
    } catch (error) {
      throw new Stop("network");
    }
    if (response.status === 401 || response.status === 403 || response.redirected) throw new Stop("login");
    if (response.status >= 500 || response.status === 429) throw new Stop("server");
    let payload = null;
    try {
      payload = await response.json();
    } catch (error) {
      payload = null;
    }
    return { status: response.status, payload };
  }

  async function sendBatch(batch) {
    const actions = batch.map((a) => ({
      id: a.id,
      [body().queueSubject || "order"]: a.order,
      kind: a.kind,
      recorded_at: a.recorded_at,
      data: a.data,
    }));
    const { status, payload } = await post(body().syncUrl, {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ actions }),
    });
    if (status === 200 && payload && Array.isArray(payload.results)) {
      for (const action of batch) {
        const result = payload.results.find((r) => r.id === action.id);
        if (result) await settle(action, result);
      }
      return;
    }
    if (batch.length > 1) {
      // One malformed action refuses the whole batch: send them one by one so only that one is refused.
      for (const action of batch) await sendBatch([action]);
      return;
    }
    await settle(batch[0], { outcome: "rejected", message: describe(payload) });
  }

  async function sendPhoto(action) {
    const url = action.data.url;
    const form = new FormData();
    form.append("file", action.blob, "photo.jpg");
    form.append("kind", action.data.kind || "other");
    form.append("caption", action.data.caption || "");
    form.append("action_id", action.id);
    form.append("recorded_at", action.recorded_at);
    const { status, payload } = await post(url, { body: form });
    if (status === 200 && payload && payload.outcome) {
      await settle(action, payload);
    } else {
      await settle(action, { outcome: "rejected", message: describe(payload) });
    }
  }

  async function drain() {
    for (;;) {
      const actions = await pending();
      if (!actions.length) return;
      const head = actions[0];
      if (head.kind === "photo") {
        await sendPhoto(head);
      } else {
        const batch = [];
        for (const action of actions) {
          if (action.kind === "photo" || batch.length >= BATCH) break;
          batch.push(action);
        }
        await sendBatch(batch);
      }
      changed();
    }
  }

  function schedule(delay) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, delay);
  }

  /* Send what is waiting, once at a time; on no signal or a server error, try again later. */
  function flush() {
    if (flushing) return flushing;
    if (blocked) return Promise.resolve();
    if (navigator.onLine === false) return Promise.resolve();
    window.dispatchEvent(new CustomEvent("phonequeue:sending"));
    flushing = drain()
      .catch((error) => {
        if (error instanceof Stop && error.reason === "login") blocked = "login";
        else schedule(RETRY_MS);
      })
      .finally(() => {
        flushing = null;
        changed();
        window.dispatchEvent(new CustomEvent("phonequeue:sent"));
      });
    return flushing;
  }

  window.addEventListener("online", () => schedule(0));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") schedule(0);
  });
  setInterval(() => {
    count().then((n) => {
      if (n && !flushing) flush();
    });
  }, RETRY_MS);

  window.PhoneQueue = {
    add,
    pending,
    answers,
    dismiss,
    flush,
    count,
    blocked: () => blocked,
    sending: () => Boolean(flushing),
  };
})();
