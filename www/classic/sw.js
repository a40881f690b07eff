// A classic service worker, shaped like a Workbox-generated one: it loads
// libraries with importScripts and precaches the app shell. Askwell's classic
// shim lives beside the app's own code.
self.askwellConfig = { server: "", fallbackTitle: "New activity (classic worker)" };
importScripts("/pkg/sw-classic.js");

const PRECACHE = "demo-classic-v1";
self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(PRECACHE).then((cache) => cache.addAll(["/classic/", "/style.css"])));
});
