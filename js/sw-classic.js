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
  const base = (self.askwellConfig ?? {}).packageUrl ?? own ?? new URL("./", self.location.href).href;
  listen(wasm_bindgen({ module_or_path: new URL("askwell_sw_classic_bg.wasm", base) }), wasm_bindgen);
})();
