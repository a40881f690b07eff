// Askwell's service-worker shim. Import it from your own service worker:
//
//   self.askwellConfig = { server: "https://push.example.com" }; // optional; default: same origin
//   import "askwell/sw";                                          // module worker
//
// Listeners must be registered synchronously during the worker's first
// evaluation, but wasm loads asynchronously, so this shim registers them at
// once and forwards each event after `ready`. It never calls skipWaiting() or
// clients.claim(): your worker keeps control of its own lifecycle. Pushes
// without Askwell's marker are left to your own `push` listener.
import init, { onPush, onNotificationClick, onNotificationClose, onSubscriptionChange } from "./askwell_sw.js";

const ready = init({ module_or_path: new URL("./askwell_sw_bg.wasm", import.meta.url) });
const config = () => self.askwellConfig ?? {};
const isAskwell = (event) => {
  try {
    return event.data?.json()?.askwell === 1;
  } catch {
    return false;
  }
};
const fromAskwell = (event) => event.notification?.data?.askwell === 1;

self.addEventListener("push", (event) => {
  if (isAskwell(event)) event.waitUntil(ready.then(() => onPush(event, config())));
});
self.addEventListener("notificationclick", (event) => {
  if (fromAskwell(event)) event.waitUntil(ready.then(() => onNotificationClick(event, config())));
});
self.addEventListener("notificationclose", (event) => {
  if (fromAskwell(event)) event.waitUntil(ready.then(() => onNotificationClose(event, config())));
});
self.addEventListener("pushsubscriptionchange", (event) => {
  event.waitUntil(ready.then(() => onSubscriptionChange(event, config())));
});
