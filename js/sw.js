// Askwell's service-worker shim for module workers. Import it from your own
// service worker:
//
//   import "askwell/sw";
//   self.askwellConfig = { server: "https://push.example.com" }; // optional; default: same origin
//
// The listeners are in ./sw-listen.js (shared with the classic shim).
import init, * as handlers from "./askwell_sw.js";
import { listen } from "./sw-listen.js";

listen(init({ module_or_path: new URL("./askwell_sw_bg.wasm", import.meta.url) }), handlers);
