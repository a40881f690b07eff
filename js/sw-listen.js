// The listeners both service-worker shims register: `sw.js` (module workers)
// imports this file; the build inlines it into `sw-classic.js` (importScripts).
//
// Listeners must be registered synchronously during the worker's first
// evaluation, but wasm loads asynchronously, so they are registered at once
// and forward each event after `ready`. Nothing here calls skipWaiting() or
// clients.claim(): the app's worker keeps control of its own lifecycle.
// Pushes and notifications without Askwell's marker are left to the app.
export function listen(ready, handlers) {
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
    if (isAskwell(event)) event.waitUntil(ready.then(() => handlers.onPush(event, config())));
  });
  self.addEventListener("notificationclick", (event) => {
    if (fromAskwell(event)) event.waitUntil(ready.then(() => handlers.onNotificationClick(event, config())));
  });
  self.addEventListener("notificationclose", (event) => {
    if (fromAskwell(event)) event.waitUntil(ready.then(() => handlers.onNotificationClose(event, config())));
  });
  self.addEventListener("pushsubscriptionchange", (event) => {
    event.waitUntil(ready.then(() => handlers.onSubscriptionChange(event, config())));
  });
}
