// The service worker in Chromium: pushes delivered through the DevTools
// protocol (ServiceWorker.deliverPushMessage), since Chromium cannot subscribe
// offline (it needs FCM). Rendering, malformed payloads, and the app's own
// pushes living beside Askwell's in one worker.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchChromium, baseUrl, open, sendMessage } from "./browser.mjs";

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

/** Opens a demo page, waits for the worker of `scope`, and returns a push sender. */
async function withWorker(path = "/", scope = "/") {
  await browser.context.grantPermissions(["notifications"], { origin: baseUrl });
  let page;
  let errors = [];
  if (path === "/") {
    ({ page, errors } = await open(browser.context, path));
  } else {
    page = await browser.context.newPage();
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${baseUrl}${path}`);
    await page.waitForSelector("html[data-worker-ready=true]", { timeout: 15_000 });
  }
  const cdp = await browser.context.newCDPSession(page);
  const registration = new Promise((resolve) => {
    cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations }) => {
      const found = registrations.find((r) => r.scopeURL === `${baseUrl}${scope}` && !r.isDeleted);
      if (found) resolve(found.registrationId);
    });
  });
  await cdp.send("ServiceWorker.enable");
  await page.evaluate(() => navigator.serviceWorker.ready);
  const registrationId = await registration;
  const push = async (data) => {
    await cdp.send("ServiceWorker.deliverPushMessage", { origin: new URL(baseUrl).origin, registrationId, data });
  };
  const notifications = () => page.evaluate(async () => {
    const registration = await navigator.serviceWorker.ready;
    return (await registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }));
  });
  // Closes every notification and waits until the registration lists none
  // (close() is asynchronous), so each check sees only the next push.
  const clear = async () => {
    await page.evaluate(async () => {
      const registration = await navigator.serviceWorker.ready;
      for (const n of await registration.getNotifications()) n.close();
    });
    await until(notifications, (list) => list.length === 0, "notifications to close");
  };
  return { page, errors, push, notifications, clear };
}

/**
 * Delivers `data` and waits for a notification; DevTools' deliverPushMessage
 * occasionally drops a message (seen with freshly started workers, module
 * and classic), so the same push is delivered again every 3 s — showing it is
 * what is tested, and a repeat with the same content changes nothing.
 */
async function pushUntilShown(w, data, what) {
  for (let attempt = 0; attempt < 5; attempt++) {
    await w.push(data);
    for (let i = 0; i < 30; i++) {
      const list = await w.notifications();
      if (list.length > 0) return list;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function until(read, accept, what) {
  // Generous: the first push compiles the worker's wasm, slow on a loaded 2-core machine.
  for (let i = 0; i < 150; i++) {
    const value = await read();
    if (accept(value)) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test("the worker shows Askwell pushes, falls back for malformed ones, and leaves the app's own alone", async () => {
  const w = await withWorker();
  await w.clear();
  const shown = await pushUntilShown(w, JSON.stringify({ askwell: 1, title: "Bill replied", body: "See you at 6", url: "/", tag: "thread-bill", delivery: "n:1" }), "Askwell's notification");
  assert.deepEqual([shown[0].title, shown[0].body, shown[0].tag], ["Bill replied", "See you at 6", "thread-bill"]);
  assert.equal(shown[0].data.delivery, "n:1", "the delivery id travels for click reports");

  await w.clear();
  const fallback = await pushUntilShown(w, JSON.stringify({ askwell: 1, title: 42 }), "the fallback");
  assert.equal(fallback[0].title, "New activity in the Askwell demo", "a malformed Askwell push still shows something");

  await w.clear();
  const own = await pushUntilShown(w, JSON.stringify({ title: "Weekly digest", body: "3 new posts" }), "the app's own notification");
  assert.equal(own[0].title, "[app] Weekly digest", "Askwell ignored it; the app's handler showed it");
  assert.deepEqual(w.errors, []);
  await w.page.close();
});

test("a classic (importScripts) worker shaped like Workbox's shows Askwell pushes too", async () => {
  const w = await withWorker("/classic/", "/classic/");
  await w.clear();
  const shown = await pushUntilShown(w, JSON.stringify({ askwell: 1, title: "Ann replied", body: "Classic works", delivery: "n:9" }), "the classic worker's notification");
  assert.deepEqual([shown[0].title, shown[0].body], ["Ann replied", "Classic works"]);
  await w.clear();
  const fallback = await pushUntilShown(w, "{\"askwell\":1}", "the classic fallback");
  assert.equal(fallback[0].title, "New activity (classic worker)");
  assert.deepEqual(w.errors, []);
  await w.page.close();
});

test("a worker generated by workbox-build (generateSW + importScripts) shows Askwell pushes beside Workbox's precache", async () => {
  // Generated now, the way an app's build would, into the folder the demo serves.
  const { generateSW } = await import("workbox-build");
  const { count } = await generateSW({
    globDirectory: "www",
    globPatterns: ["*.{html,css}"],
    swDest: "www/workbox/sw.js",
    modifyURLPrefix: { "": "/" }, // the worker lives in /workbox/, the shell at /
    importScripts: ["/pkg/sw-classic.js"],
    mode: "production",
    sourcemap: false,
  });
  assert.ok(count > 0, "Workbox precaches the app shell");
  const w = await withWorker("/workbox/", "/workbox/");
  await w.clear();
  const shown = await pushUntilShown(w, JSON.stringify({ askwell: 1, title: "Workbox and Askwell", body: "One worker", delivery: "n:7" }), "the Workbox worker's notification");
  assert.deepEqual([shown[0].title, shown[0].body], ["Workbox and Askwell", "One worker"]);
  await w.clear();
  const fallback = await pushUntilShown(w, "{\"askwell\":1,\"title\":7}", "the fallback");
  assert.equal(fallback[0].title, "You have a new notification", "the default fallback title");
  const caches = await w.page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith("workbox-precache")));
  assert.equal(caches.length, 1, "Workbox's precache is there too");
  assert.deepEqual(w.errors, []);
  await w.page.close();
});

/**
 * Registers a classic worker generated like the Workbox one (not checked
 * in) at /workbox/<name>/ with `config` as its askwellConfig, delivers one
 * Askwell push, and returns what shows: `title (data.askwell, data.delivery)`.
 */
async function pushThroughGeneratedWorker(name, config) {
  const { writeFile } = await import("node:fs/promises");
  await writeFile(`www/workbox/${name}-sw.js`, [
    `self.askwellConfig = ${JSON.stringify(config)};`,
    'importScripts("/pkg/sw-classic.js");',
  ].join("\n"));
  await browser.context.grantPermissions(["notifications"], { origin: baseUrl });
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${baseUrl}/workbox/`);
  const cdp = await browser.context.newCDPSession(page);
  const scope = `${baseUrl}/workbox/${name}/`;
  const registrationId = new Promise((resolve) => {
    cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations }) => {
      const found = registrations.find((r) => r.scopeURL === scope && !r.isDeleted);
      if (found) resolve(found.registrationId);
    });
  });
  await cdp.send("ServiceWorker.enable");
  await page.evaluate(async ({ script, scope }) => {
    const registration = await navigator.serviceWorker.register(script, { scope });
    const worker = registration.installing ?? registration.waiting ?? registration.active;
    if (worker.state !== "activated") {
      await new Promise((resolve) => worker.addEventListener("statechange", () => worker.state === "activated" && resolve()));
    }
  }, { script: `/workbox/${name}-sw.js`, scope });
  const id = await registrationId;
  const notifications = () => page.evaluate(async (scope) => {
    const registration = await navigator.serviceWorker.getRegistration(scope);
    return (await registration.getNotifications()).map((n) => `${n.title} (${n.data?.askwell}, ${n.data?.delivery})`);
  }, scope);
  const data = JSON.stringify({ askwell: 1, title: "Bill replied", delivery: "n:3" });
  let shown = [];
  for (let attempt = 0; attempt < 5 && shown.length === 0; attempt++) {
    await cdp.send("ServiceWorker.deliverPushMessage", { origin: new URL(baseUrl).origin, registrationId: id, data });
    for (let i = 0; i < 30 && shown.length === 0; i++) {
      shown = await notifications();
      if (shown.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.deepEqual(errors, []);
  await page.evaluate(async (scope) => (await navigator.serviceWorker.getRegistration(scope))?.unregister(), scope);
  await page.close();
  return shown;
}

test("a push still shows when the worker's wasm cannot load (a 404 after a deploy, a CSP without wasm-unsafe-eval)", async () => {
  // Chrome penalises a push that shows nothing, so the listeners show the
  // fallback title themselves. A relative packageUrl must not throw either.
  const shown = await pushThroughGeneratedWorker("unloadable", { packageUrl: "/no-such-folder/", fallbackTitle: "Askwell could not load" });
  assert.deepEqual(shown, ["Askwell could not load (1, n:3)"], "its data keeps the delivery, so a click is still Askwell's");
});

test("a packageUrl without its trailing slash is the folder", async () => {
  const shown = await pushThroughGeneratedWorker("folder", { packageUrl: "/pkg", fallbackTitle: "Askwell could not load" });
  assert.deepEqual(shown, ["Bill replied (1, n:3)"], "the wasm in /pkg/ loaded");
});

test("Yes in Chromium reports a named failure when push cannot subscribe offline", { timeout: 60_000 }, async () => {
  const w = await withWorker();
  await w.page.evaluate(() => window.askwell.reset());
  const outcome = w.page.evaluate(() => new Promise((resolve) => {
    document.addEventListener("askwell:error", (e) => resolve({ type: "error", code: e.detail.code }), { once: true });
    document.addEventListener("askwell:subscribed", () => resolve({ type: "subscribed" }), { once: true });
  }));
  await sendMessage(w.page, "Are you there?");
  await w.page.getByRole("button", { name: "Yes, notify me" }).click();
  const result = await outcome;
  assert.ok(result.type === "subscribed" || ["subscribe-failed", "server-unreachable"].includes(result.code), JSON.stringify(result));
  assert.deepEqual(w.errors, [], "nothing is thrown into the page");
  await w.page.close();
});
