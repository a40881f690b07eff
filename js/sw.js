// Askwell's service-worker shim. Import it from your own service worker:
//
//   import "askwell/sw";            // module worker
//
// Listeners must be registered synchronously during the worker's first
// evaluation, but wasm loads asynchronously, so this shim registers them at
// once and forwards each event after `ready`. It never calls skipWaiting() or
// clients.claim(): your worker keeps control of its own lifecycle.
import init, { onPush } from "./askwell_sw.js";

const ready = init({ module_or_path: new URL("./askwell_sw_bg.wasm", import.meta.url) });

self.addEventListener("push", (event) => {
  event.waitUntil(ready.then(() => onPush(event)));
});
