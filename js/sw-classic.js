// Askwell's shim for classic service workers (importScripts), e.g. Workbox's:
//
//   self.askwellConfig = { server: "https://push.example.com" }; // optional
//   importScripts("/path/to/askwell/sw-classic.js");
//
// The build puts wasm-bindgen's no-modules glue (`wasm_bindgen`) and the
// shared `listen` from sw-listen.js before this code, in one script.
(() => {
  // A classic script cannot ask for its own URL; its stack trace knows it.
  const own = /(https?:\/\/[^\s()@]+?)sw-classic\.js/.exec(new Error().stack ?? "")?.[1] ?? null;
  // Nothing here may throw: an exception while the app's worker is first
  // evaluated fails its registration, the app's own features with it. A
  // relative packageUrl ("/pkg/") is resolved against the worker's URL; one
  // that is no URL, or wasm that cannot load, leaves the listeners showing
  // the fallback notification for Askwell's pushes.
  let ready;
  try {
    // A folder: "/pkg" means "/pkg/", not the file "pkg" next to the worker.
    const folder = String((self.askwellConfig ?? {}).packageUrl ?? own ?? "./").replace(/\/*$/, "/");
    const base = new URL(folder, self.location.href);
    ready = wasm_bindgen({ module_or_path: new URL("askwell_sw_classic_bg.wasm", base) });
  } catch (error) {
    ready = Promise.reject(error);
  }
  listen(ready, wasm_bindgen);
})();
