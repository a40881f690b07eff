// The listeners both service-worker shims register: `sw.js` (module workers)
// imports this file; the build inlines it into `sw-classic.js` (importScripts).
//
// Listeners must be registered synchronously during the worker's first
// evaluation, but wasm loads asynchronously, so they are registered at once
// and forward each event after `ready`. Nothing here calls skipWaiting() or
// clients.claim(): the app's worker keeps control of its own lifecycle.
// Pushes and notifications without Askwell's marker are left to the app.
//
// What to show, where a click goes and what the server is told are decided
// by the wasm (`decide`, src/web/sw.rs, on the core's wire contract); this
// file only awaits the browser between those decisions. Awaiting in wasm
// cost a polling state machine and a JS import per browser call: most of
// the worker's download.
export function listen(ready, decide) {
  const config = () => self.askwellConfig ?? {};
  const isAskwell = (event) => {
    try {
      return event.data?.json()?.askwell === 1;
    } catch {
      return false;
    }
  };
  const fromAskwell = (event) => event.notification?.data?.askwell === 1;
  // Each event handles a failure of `ready` (wasm that cannot load: a 404
  // after a deploy, a CSP without 'wasm-unsafe-eval'); this only keeps it
  // from being reported as unhandled before one arrives.
  ready.catch(() => {});
  // `work` once the wasm is ready, or `otherwise` if it cannot load.
  const when = (event, work, otherwise) => event.waitUntil(ready.then(work, otherwise));

  // With userVisibleOnly every push must show something (browsers penalise
  // silent ones), so a push whose handling failed shows the fallback. The
  // default title is FALLBACK_TITLE's in src/web/sw.rs: the wasm may be what
  // failed.
  // Its data keeps the delivery id, so a click is still Askwell's to handle.
  const showFallback = (event) => {
    const title = config().fallbackTitle;
    let delivery;
    try {
      delivery = event.data.json().delivery;
    } catch {}
    return self.registration.showNotification(typeof title === "string" ? title : "You have a new notification", {
      data: { askwell: 1, delivery: typeof delivery === "string" ? delivery : undefined },
    });
  };
  self.addEventListener("push", (event) => {
    const fallback = () => showFallback(event);
    // Whatever failed (the wasm, or showNotification with its options).
    if (isAskwell(event)) when(event, () => showPush(event).catch(fallback), fallback);
  });
  // Wasm that cannot load still lets a click open the app.
  const openScope = (event) => {
    event.notification.close();
    return self.clients.openWindow(self.registration.scope);
  };
  self.addEventListener("notificationclick", (event) => {
    if (fromAskwell(event)) when(event, () => handleClick(event), () => openScope(event));
  });
  self.addEventListener("notificationclose", (event) => {
    if (fromAskwell(event)) when(event, () => report(decide.closeReport(event.notification.data, config(), Date.now())));
  });
  // Wasm that cannot load still stores the new subscription, as new (the
  // path is api::SUBSCRIPTIONS; the page's next start restores its topics).
  const storeSubscription = async (event) => {
    const subscription = event.newSubscription ?? (await self.registration.pushManager.getSubscription());
    const server = String(config().server ?? "").replace(/\/+$/, "");
    return subscription ? (await post({ url: `${server}/v1/subscriptions`, body: { subscription } })).ok : false;
  };
  self.addEventListener("pushsubscriptionchange", (event) => {
    when(event, () => changeSubscription(event), () => storeSubscription(event));
  });

  // `POST url` with a JSON body and keepalive (so a request started as the
  // worker goes idle still arrives). Resolves to the Response.
  const post = ({ url, body }) =>
    fetch(url, {
      method: "POST",
      keepalive: true,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  // A report (or none): resolves either way, to whether it was sent. A
  // report never stops a notification from showing or a click from opening.
  const report = (request) => (request ? post(request).then(() => true, () => false) : Promise.resolve(false));

  async function showPush(event) {
    const push = decide.pushToShow(event.data?.text(), config(), self.Notification?.maxActions, Date.now());
    // isAskwell accepted it, so something must show.
    if (!push) return showFallback(event);
    await self.registration.showNotification(push.title, push.options);
    // Reported after showing, so a slow server never delays the notification.
    await report(push.shown);
    return true;
  }

  async function handleClick(event) {
    const notification = event.notification;
    notification.close();
    const click = decide.clickToHandle(notification.data, event.action, config(), Date.now());
    if (!click) return false;
    const sent = report(click.report);
    try {
      return await (click.tap ? confirmTap(click.tap) : showPage(click.url));
    } finally {
      await sent;
    }
  }

  // Focus, navigate or open, as the wasm routes it.
  async function showPage(target) {
    const scope = self.registration.scope;
    // A URL the parser refuses ("http://[") opens the scope instead.
    let url = scope;
    try {
      url = new URL(target, scope).href;
    } catch {}
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const route = decide.routeClick(url, windows.map((client) => client.url));
    const index = route.focus ?? route.navigate;
    if (index === undefined) {
      await self.clients.openWindow(url);
      return true;
    }
    const client = windows[index];
    // Focused first: the right to focus a window lasts only briefly after
    // the click, and after navigate() this client object is stale.
    await client.focus().catch(() => {});
    if (route.navigate !== undefined) {
      // navigate() only works on windows this worker controls; an
      // uncontrolled one (first visit) is asked to navigate itself by the
      // page module, rather than opening a second tab.
      const navigated = await Promise.resolve()
        .then(() => client.navigate(url))
        .then(() => true, () => false);
      if (!navigated) client.postMessage({ askwell: "navigate", url });
    }
    return true;
  }

  // Tells the server what the tap turned off, then shows a quiet
  // confirmation (replacing an earlier one) that says what happened — or
  // that it could not be done, so a tap is never silently lost.
  async function confirmTap(tap) {
    const told = await tellServer(tap);
    await self.registration.showNotification(told ? tap.confirmation : tap.failed, { tag: tap.tag, silent: true });
    return told;
  }

  async function tellServer(tap) {
    try {
      const subscription = await self.registration.pushManager.getSubscription();
      const body = decide.withPossession(tap.change, subscription);
      return body !== undefined && (await post({ url: tap.url, body })).ok;
    } catch {
      return false;
    }
  }

  // Resolves to whether the server now knows the device's subscription.
  async function changeSubscription(event) {
    const change = decide.subscriptionChange(event.oldSubscription, config());
    const manager = self.registration.pushManager;
    let subscription = event.newSubscription;
    if (change.old && !subscription) {
      // Subscribing again can fail (no key on the old one, permission gone,
      // a push service that never answers): then whatever the browser has.
      subscription = await within(manager.subscribe(change.subscribe), change.timeoutMs).catch(() => null);
    }
    subscription ??= await manager.getSubscription();
    if (!subscription) return false;
    if (change.old) {
      const swapped = await post({ url: change.url, body: { old: change.old, subscription } });
      if (swapped.ok) return true;
      // The server no longer knows the old endpoint (its push service's
      // first 410 often comes before this event, and prunes it): stored as
      // new rather than lost until the next visit, whose repair restores
      // its topics.
    }
    return (await post({ url: change.store, body: { subscription } })).ok;
  }

  // `promise`, or a rejection after `ms` (a push service that cannot be
  // reached may never settle a subscribe()).
  const within = (promise, ms) =>
    Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timed out")), ms))]);
}
