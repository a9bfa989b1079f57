{% autoescape off %}/* KioskOps phone pages' service worker (served by workorders.phone.service_worker; scope {{ scope }}).
 * Pages and photos: network first, the last copy when there is no signal. Assets: from the versioned cache.
 * Changes never pass through here: the page queues them in IndexedDB and posts them itself (queue.js). */
"use strict";
const VERSION = "{{ version }}";
const ASSETS_PREFIX = "{{ assets_prefix|default:'kioskops-phone-assets-' }}";
const ASSETS_CACHE = ASSETS_PREFIX + VERSION;
const PAGES_CACHE = "{{ pages_cache }}";
const ASSETS = {{ assets_json }};
const HOME = "{{ home }}";
const SCOPE = "{{ scope }}";

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const assets = await caches.open(ASSETS_CACHE);
      await assets.addAll(ASSETS);
      try {
        const pages = await caches.open(PAGES_CACHE);
        await pages.add(HOME);
      } catch (error) {
        /* offline while installing: the list is cached on the next visit */
      }
      await self.skipWaiting();
    })()
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(ASSETS_PREFIX) && name !== ASSETS_CACHE) {
          await caches.delete(name);
        }
      }
      await self.clients.claim();
    })()
  );
});

function isPhonePage(url) {
  return url.pathname.startsWith(SCOPE) && !url.pathname.endsWith("/sw.js") && !url.pathname.endsWith("/state/");
}

async function networkFirst(request) {
  const pages = await caches.open(PAGES_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected && response.type === "basic") {
      await pages.put(request, response.clone());
    }
    return response;
  } catch (error) {
    const cached = await pages.match(request, { ignoreVary: true });
    if (cached) return cached;
    if (request.mode === "navigate") {
      const home = await pages.match(HOME, { ignoreVary: true });
      if (home) return home;
    }
    throw error;
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request, { ignoreVary: true, ignoreSearch: false });
  if (cached) return cached;
  return fetch(request);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (ASSETS.includes(url.pathname)) {
    event.respondWith(cacheFirst(request));
  } else if (isPhonePage(url)) {
    event.respondWith(networkFirst(request));
  }
});
{% endautoescape %}
