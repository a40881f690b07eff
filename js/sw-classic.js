// Askwell's shim for classic service workers (importScripts), e.g. Workbox's:
//
//   self.askwellConfig = { server: "https://push.example.com" }; // optional
//   importScripts("/path/to/askwell/sw-classic.js");
//
// Same behaviour as the module shim ("askwell/sw"): listeners registered
// synchronously, events forwarded once wasm has loaded, no skipWaiting() or
// clients.claim(), pushes without Askwell's marker left to your own listener.
(() => {
  // A classic script cannot ask for its own URL; its stack trace knows it.
  const own = (() => {
    const match = /(https?:\/\/[^\s()@]+?)sw-classic\.js/.exec(new Error().stack ?? "");
    return match ? match[1] : null;
  })();
  const config = () => self.askwellConfig ?? {};
  const base = config().packageUrl ?? own ?? new URL("./", self.location.href).href;
  const ready = wasm_bindgen({ module_or_path: new URL("askwell_sw_classic_bg.wasm", base) });
  const isAskwell = (event) => {
    try {
      return event.data?.json()?.askwell === 1;
    } catch {
      return false;
    }
  };
  const fromAskwell = (event) => event.notification?.data?.askwell === 1;

  self.addEventListener("push", (event) => {
    if (isAskwell(event)) event.waitUntil(ready.then(() => wasm_bindgen.onPush(event, config())));
  });
  self.addEventListener("notificationclick", (event) => {
    if (fromAskwell(event)) event.waitUntil(ready.then(() => wasm_bindgen.onNotificationClick(event, config())));
  });
  self.addEventListener("notificationclose", (event) => {
    if (fromAskwell(event)) event.waitUntil(ready.then(() => wasm_bindgen.onNotificationClose(event, config())));
  });
  self.addEventListener("pushsubscriptionchange", (event) => {
    event.waitUntil(ready.then(() => wasm_bindgen.onSubscriptionChange(event, config())));
  });
})();
