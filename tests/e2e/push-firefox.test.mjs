// Real end-to-end Web Push in Firefox ESR: demo page → prompt → Yes →
// subscribe (through the local push service) → askwell-server stores it →
// POST /v1/notify → askwell-server encrypts and signs → the push service
// verifies the VAPID JWT and relays → Firefox decrypts → Askwell's worker
// shows the notification.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { baseUrl } from "./browser.mjs";
import { startPushService } from "./firefox-push-service.mjs";

const ADMIN_TOKEN = process.env.ASKWELL_ADMIN_TOKEN ?? "demo-admin-token";
// What the app's backend does (see README "Proof of identity").
const userProof = (user) => createHmac("sha256", process.env.ASKWELL_IDENTITY_SECRET ?? "demo-identity-secret").update(user).digest("hex");
let service;
let browser;
let profile;

before(async () => {
  service = await startPushService();
  profile = mkdtempSync(join(tmpdir(), "askwell-firefox-"));
  browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: process.env.FIREFOX ?? "/usr/bin/firefox-esr",
    headless: true,
    userDataDir: profile,
    // Lets the test click the real notification from the browser's chrome
    // context: a trusted notificationclick (clients.openWindow needs one).
    args: ["--remote-allow-system-access"],
    extraPrefsFirefox: {
      "dom.push.serverURL": service.serverURL,
      "dom.push.testing.allowInsecureServerURL": true,
      "dom.push.connection.enabled": true,
      "dom.push.enabled": true,
      "permissions.default.desktop-notification": 1,
      "alerts.useSystemBackend": false,
      "dom.serviceWorkers.enabled": true,
      "dom.serviceWorkers.testing.enabled": true,
      // Reconnect quickly after the test push service drops the connection.
      "dom.push.retryBaseInterval": 500,
      // Keep notification buttons (Notification.maxActions > 0).
      "dom.webnotifications.actions.enabled": true,
    },
  });
});

after(async () => {
  await browser?.close();
  await service?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function waitFor(read, accept, what, tries = 100) {
  for (let i = 0; i < tries; i++) {
    const value = await read();
    if (accept(value)) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Clicks Firefox's own notification window from the chrome context. */
async function clickNotification() {
  const tree = await browser.connection.send("browsingContext.getTree", { "moz:scope": "chrome" });
  const chrome = tree.result.contexts.find((c) => c.url.startsWith("chrome://browser/")) ?? tree.result.contexts[0];
  const expression = "(() => { const alert = [...Services.wm.getEnumerator('alert:alert')][0]; if (!alert) return false; alert.onAlertClick(); return true; })()";
  const clicked = await waitFor(
    async () => (await browser.connection.send("script.evaluate", { expression, target: { context: chrome.context }, awaitPromise: false })).result.result.value,
    (value) => value === true,
    "Firefox's notification window",
  );
  assert.equal(clicked, true);
}

/** Presses button `action` of Firefox's own window for the notification
 *  titled `title`, as a system notification backend does: Firefox's alert
 *  listener is told of a click with that action, and Firefox dispatches a
 *  trusted `notificationclick` whose `action` is it. (The fallback alert
 *  window draws no buttons of its own.) */
async function pressNotificationButton(title, action) {
  const tree = await browser.connection.send("browsingContext.getTree", { "moz:scope": "chrome" });
  const chrome = tree.result.contexts.find((c) => c.url.startsWith("chrome://browser/")) ?? tree.result.contexts[0];
  const expression = `(() => {
    const alert = [...Services.wm.getEnumerator('alert:alert')].find((w) => w.document.getElementById('alertTitleLabel')?.getAttribute('value') === ${JSON.stringify(title)});
    if (!alert || !alert.gAlertListener) return false;
    const pressed = { action: ${JSON.stringify(action)}, title: '', iconURL: '', windowsSystemActivationType: false, opaqueRelaunchData: '', QueryInterface: ChromeUtils.generateQI(['nsIAlertAction']) };
    alert.gAlertListener.observe(pressed, 'alertclickcallback', alert.gAlertCookie);
    alert.close();
    return true;
  })()`;
  const pressed = await waitFor(
    async () => (await browser.connection.send("script.evaluate", { expression, target: { context: chrome.context }, awaitPromise: false })).result.result?.value,
    (value) => value === true,
    `Firefox's notification window titled ${title}`,
  );
  assert.equal(pressed, true);
}

const notifyDemo = (body) =>
  fetch(`${baseUrl}/v1/notify`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify(body),
  }).then((r) => r.json());

const countsOf = (id) => fetch(`${baseUrl}/v1/notifications/${id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json());

/** Opens the chat, says Yes to the prompt, and returns once Askwell reports
 *  `subscribed` or an error, with the outcomes it reported. */
async function subscribeInChat() {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector("html[data-askwell-ready=true]");
  await page.evaluate(() => navigator.serviceWorker.ready);
  // A clean slate: a subscription left by an earlier test (one that failed
  // before its own unsubscribe) would hold the topic, and a device already
  // subscribed to it is rightly never asked again, so every later test
  // would wait for a prompt that does not come.
  await page.evaluate(() => window.askwell.unsubscribe());
  await page.evaluate(() => {
    window.askwell.reset();
    window.__outcomes = [];
    for (const name of ["permission", "subscribed", "error"]) {
      document.addEventListener(`askwell:${name}`, (e) => window.__outcomes.push({ name, ...e.detail }));
    }
  });
  await page.type("#message", "Friday works!");
  await page.click("#composer button[type=submit]");
  await page.waitForSelector("askwell-prompt >>> [part~=accept]");
  await page.click("askwell-prompt >>> [part~=accept]");
  const outcomes = await waitFor(() => page.evaluate(() => window.__outcomes), (o) => o.some((e) => e.name === "subscribed" || e.name === "error"), "the subscription");
  return { page, errors, outcomes };
}

const subscriptionOf = (page) => page.evaluate(async () => (await (await navigator.serviceWorker.ready).pushManager.getSubscription())?.toJSON() ?? null);

test("Firefox: Yes → real subscription → notify → the worker shows the push → a click opens its page and is reported", { timeout: 120_000 }, async () => {
  const { page, errors, outcomes } = await subscribeInChat();
  assert.deepEqual(outcomes.map((o) => o.name === "permission" ? `permission:${o.state}` : o.name), ["permission:granted", "subscribed"], JSON.stringify(outcomes));

  // Signing in binds the device to the user, but only with the backend's proof.
  const user = `alice-${Date.now()}`;
  const identify = (proof) => page.evaluate((u, p) => window.askwell.identify(u, { proof: p }).then(String, String), user, proof);
  assert.equal(await identify("00".repeat(32)), "identity-unproven", "a forged proof is refused");
  assert.equal(await identify(userProof(user)), "true");
  const sub = await subscriptionOf(page);
  const known = await fetch(`${baseUrl}/v1/subscriptions/lookup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ endpoint: sub.endpoint, auth: sub.keys.auth }) }).then((r) => r.json());
  assert.equal(known.user, user, "the server bound the subscription to the user");

  const notify = await fetch(`${baseUrl}/v1/notify`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ to: { topic: "thread:bill" }, notification: { title: "Bill replied", body: "Friday it is!", url: "/watch.html", tag: "thread-bill" } }),
  }).then((r) => r.json());
  // ≥ 1: a reused demo server may still hold subscriptions from earlier runs.
  assert.ok(notify.recipients >= 1, JSON.stringify(notify));

  const shown = await waitFor(
    () => page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body, data: n.data }))),
    (list) => list.length > 0,
    "the notification",
  );
  assert.equal(shown[0].title, "Bill replied");
  assert.equal(shown[0].body, "Friday it is!");
  assert.ok(shown[0].data.delivery?.startsWith(notify.id), "the delivery id reached the worker");
  assert.deepEqual(service.log.rejected, [], "every push carried a valid VAPID JWT");
  assert.ok(service.log.received.length >= 1);
  await waitFor(() => service.log.acks, (acks) => acks.length > 0, "Firefox's ack");
  assert.equal(service.log.acks[0].code, 100, "Firefox decrypted and delivered it");

  await clickNotification();
  await waitFor(() => page.url(), (url) => url.endsWith("/watch.html"), "the open demo tab navigated to the notification's URL");
  const counts = await waitFor(
    () => fetch(`${baseUrl}/v1/notifications/${notify.id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json()),
    (c) => c.counts?.delivered >= 1 && c.counts?.clicked === 1,
    "the delivered and clicked counts",
  );
  assert.equal(counts.counts.clicked, 1, "the worker reported the click with its delivery id");
  assert.equal((await browser.pages()).length, 2, "no extra tab was opened (the blank start page and the demo)");
  await page.waitForSelector("html[data-askwell-ready=true]");
  assert.equal(await page.evaluate(() => window.askwell.unsubscribe()), true, "unsubscribed in the browser and on the server");
  const after = await fetch(`${baseUrl}/v1/notify`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ to: { topic: "thread:bill" }, notification: { title: "Anyone?" } }),
  }).then((r) => r.json());
  assert.equal(after.recipients, notify.recipients - 1, "the server no longer sends to it");
  assert.deepEqual(errors, []);
  await page.close();
});

test("Firefox: the push service forgets the browser → pushsubscriptionchange → the worker subscribes again → pushes resume", { timeout: 120_000 }, async () => {
  const { page, errors, outcomes } = await subscribeInChat();
  assert.ok(outcomes.some((o) => o.name === "subscribed"), JSON.stringify(outcomes));
  const before = await subscriptionOf(page);
  const registered = service.log.registers.length;

  service.forgetBrowsers();
  const after = await waitFor(() => subscriptionOf(page), (sub) => sub && sub.endpoint !== before.endpoint, "a new subscription made by the worker");
  assert.ok(service.log.registers.length > registered, "Firefox registered again with the push service");

  // The worker swapped the endpoints on the server (Firefox names the old
  // subscription in the event): same row, same topics, no page visit needed.
  const lookup = (sub) => fetch(`${baseUrl}/v1/subscriptions/lookup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ endpoint: sub.endpoint, auth: sub.keys.auth }) });
  const known = await waitFor(
    () => lookup(after).then((r) => r.json()),
    (body) => body.topics?.includes("thread:bill"),
    "the server to know the new endpoint with its topic",
  );
  assert.ok(known.id);
  assert.equal((await lookup(before)).status, 404, "the old endpoint is gone from the server");

  const notify = await fetch(`${baseUrl}/v1/notify`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ to: { topic: "thread:bill" }, notification: { title: "Still here", body: "After the reset" } }),
  }).then((r) => r.json());
  const shown = await waitFor(
    () => page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => n.title)),
    (titles) => titles.includes("Still here"),
    "the push to the new subscription",
  );
  assert.ok(shown.includes("Still here"));
  const counts = await waitFor(
    () => fetch(`${baseUrl}/v1/notifications/${notify.id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json()),
    (c) => c.counts && c.counts.queued + c.counts.retrying === 0,
    "every delivery to finish",
  );
  assert.equal(counts.counts.failed, 0, JSON.stringify(counts));
  assert.deepEqual(errors, []);
  await page.evaluate(() => window.askwell.unsubscribe());
  await page.close();
});

test("Firefox: pushsubscriptionchange after the server already pruned the old endpoint → the new one is stored anyway", { timeout: 120_000 }, async () => {
  const { page, errors, outcomes } = await subscribeInChat();
  assert.ok(outcomes.some((o) => o.name === "subscribed"), JSON.stringify(outcomes));
  const before = await subscriptionOf(page);
  // The push service's first 410 for the old endpoint often comes before
  // the browser's event: the server has pruned it, and the swap finds
  // nothing to swap (404). Deleting it with its possession stands in.
  const deleted = await fetch(`${baseUrl}/v1/subscriptions`, { method: "DELETE", headers: { "content-type": "application/json" }, body: JSON.stringify({ endpoint: before.endpoint, auth: before.keys.auth }) });
  assert.equal(deleted.status, 204);

  service.forgetBrowsers();
  const after = await waitFor(() => subscriptionOf(page), (sub) => sub && sub.endpoint !== before.endpoint, "a new subscription made by the worker");
  const lookup = (sub) => fetch(`${baseUrl}/v1/subscriptions/lookup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ endpoint: sub.endpoint, auth: sub.keys.auth }) });
  await waitFor(() => lookup(after).then((r) => r.status), (status) => status === 200, "the server to know the new endpoint (not lost until the next visit)");
  assert.deepEqual(errors, []);
  await page.evaluate(() => window.askwell.unsubscribe());
  await page.close();
});

test("Firefox: the push service refuses the subscription → the prompt says so → a later visit finishes the Yes", { timeout: 120_000 }, async () => {
  service.refuseRegistrations(true);
  let page;
  try {
    const subscribed = await subscribeInChat();
    page = subscribed.page;
    assert.ok(subscribed.outcomes.some((o) => o.name === "error" && o.code === "subscribe-failed"), JSON.stringify(subscribed.outcomes));
    const prompt = (selector) => page.$eval("askwell-prompt", (host, s) => host.shadowRoot.querySelector(s)?.textContent ?? null, selector).catch(() => null);
    assert.equal(await prompt("[part~=message]"), "Notifications could not be turned on. We will try again on your next visit.", "the prompt says it could not, instead of vanishing");
    await page.click("askwell-prompt >>> [part~=close]");
    assert.equal(await page.$("askwell-prompt"), null, "and closes when asked");
    const pending = await page.evaluate(() => JSON.parse(localStorage.getItem("askwell:v1:state")).pending);
    assert.deepEqual(pending, ["thread:bill"], "the Yes waits to be finished");
    assert.equal(await subscriptionOf(page), null);
  } finally {
    service.refuseRegistrations(false);
  }
  // The next visit after the first backoff step (a minute): moving the stored
  // retry time back stands in for the wait (after destroy(), which writes
  // the page's state one last time).
  await page.evaluate(() => {
    window.askwell.destroy();
    const state = JSON.parse(localStorage.getItem("askwell:v1:state"));
    state.retry = [state.retry[0], 0];
    localStorage.setItem("askwell:v1:state", JSON.stringify(state));
  });
  await page.reload();
  await page.waitForSelector("html[data-askwell-ready=true]");
  const sub = await waitFor(() => subscriptionOf(page), (s) => s !== null, "the subscription made silently on the later visit");
  const known = await waitFor(
    () => fetch(`${baseUrl}/v1/subscriptions/lookup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ endpoint: sub.endpoint, auth: sub.keys.auth }) }).then((r) => r.json()),
    (body) => body.topics?.includes("thread:bill"),
    "the server to hold the subscription with the topic",
  );
  assert.ok(known.id);
  await waitFor(() => page.evaluate(() => JSON.parse(localStorage.getItem("askwell:v1:state")).pending), (p) => p.length === 0, "the Yes to be finished");
  assert.equal(await page.$("askwell-prompt"), null, "no new question was asked");
  await page.evaluate(() => window.askwell.unsubscribe());
  await page.close();
});

test("Firefox: add to cart in the shop and do not buy → the journey's reminder arrives by real push; buy → it does not", { timeout: 120_000 }, async () => {
  const { page, errors, outcomes } = await subscribeInChat();
  assert.ok(outcomes.some((o) => o.name === "subscribed"), JSON.stringify(outcomes));
  // A journey of the test's own, with a short wait (the demo's waits an hour).
  const journey = `e2e-cart-${Date.now().toString(36)}`;
  const admin = (method, path, body) => fetch(`${baseUrl}${path}`, {
    method, headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` }, body: body && JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const put = await admin("PUT", `/v1/journeys/${journey}`, {
    entry: { event: "added_to_cart", keyed: true },
    exitOn: [{ event: "purchased", sameKey: true }],
    steps: [{ wait: { seconds: 3 } }, { send: { title: "Your cart {event.key} is waiting", url: "/shop.html#cart" } }],
  });
  assert.equal(put.status, 200, JSON.stringify(put.body));

  const user = `shopper-${Date.now()}`;
  const shop = async () => {
    await page.goto(`${baseUrl}/shop.html`);
    await page.waitForSelector("html[data-askwell-ready=true]");
    // What the app's backend does when the shopper signs in: the proof.
    assert.equal(await page.evaluate((u, p) => window.askwell.identify(u, { proof: p }).then(String, String), user, userProof(user)), "true");
  };
  const cart = (key) => page.evaluate((k) => {
    for (const id of ["add-to-cart", "buy"]) document.getElementById(id).dataset.askwellEntityId = k;
  }, key);
  const titles = () => page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => n.title));

  // Not bought: reminded.
  await shop();
  const unbought = `cart-${Date.now().toString(36)}`;
  await cart(unbought);
  await page.click("#add-to-cart");
  // Leaving the page sends the outbox at once (it would go within seconds anyway).
  await shop();
  const shown = await waitFor(titles, (list) => list.includes(`Your cart ${unbought} is waiting`), "the abandoned-cart reminder", 200);
  assert.ok(shown.includes(`Your cart ${unbought} is waiting`));

  // Bought: the purchase ends the journey mid-wait, nothing arrives.
  const bought = `cart-${Date.now().toString(36)}-b`;
  await cart(bought);
  await page.click("#add-to-cart");
  await page.click("#buy");
  await shop();
  const report = await waitFor(
    async () => (await admin("GET", `/v1/journeys/${journey}`)).body.report,
    (r) => r?.exited_by?.purchased === 1,
    "the purchase to end the second cart's journey",
  );
  assert.deepEqual(report.steps, [{ step: 1, sent: 1, withheld: 0, failed: 0 }], JSON.stringify(report));
  await new Promise((r) => setTimeout(r, 5_000));
  assert.ok(!(await titles()).includes(`Your cart ${bought} is waiting`), "no reminder for the bought cart");
  assert.deepEqual(errors, []);
  await page.evaluate(() => window.askwell.unsubscribe());
  await page.close();
  await admin("DELETE", `/v1/journeys/${journey}`);
});

test("Firefox: a real push's mute button mutes its topic (a quiet confirmation, no page opened); the next push to it is not sent, another topic still arrives", { timeout: 120_000 }, async () => {
  const { page, errors, outcomes } = await subscribeInChat();
  assert.ok(outcomes.some((o) => o.name === "subscribed"), JSON.stringify(outcomes));
  const sub = await subscriptionOf(page);
  const possession = { endpoint: sub.endpoint, auth: sub.keys.auth };
  const post = (path, body) => fetch(`${baseUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal((await post("/v1/subscriptions/topics", { ...possession, add: ["thread:ann"] })).status, 200);
  const tabs = (await browser.pages()).length;
  const notificationsNow = () => page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, tag: n.tag, actions: n.actions?.map((a) => a.action) ?? [] })));

  const first = await notifyDemo({
    to: { topic: "thread:bill" },
    notification: {
      title: "Bill replied (mute test)",
      body: "Friday it is!",
      url: "/watch.html",
      actions: [
        { action: "askwell:mute-topic", title: "Mute this thread", confirm: "Muted: replies from Bill" },
        { action: "askwell:snooze", title: "Pause for a day", hours: 24 },
      ],
    },
  });
  const shown = await waitFor(notificationsNow, (list) => list.some((n) => n.title === "Bill replied (mute test)"), "the push with buttons");
  const maxActions = await page.evaluate(() => Notification.maxActions);
  const offered = shown.find((n) => n.title === "Bill replied (mute test)").actions;
  assert.deepEqual(offered, ["askwell:mute-topic", "askwell:snooze"].slice(0, maxActions), `the payload's buttons, up to Notification.maxActions (${maxActions})`);

  await pressNotificationButton("Bill replied (mute test)", "askwell:mute-topic");
  const confirmed = await waitFor(notificationsNow, (list) => list.some((n) => n.tag === "askwell:confirmation"), "the confirmation notification");
  assert.equal(confirmed.find((n) => n.tag === "askwell:confirmation").title, "Muted: replies from Bill");
  const view = await post("/v1/preferences/lookup", possession).then((r) => r.json());
  assert.deepEqual(view.topics.find((t) => t.name === "thread:bill"), { name: "thread:bill", label: "Replies from \u2068Bill\u2069", on: false }, JSON.stringify(view));
  assert.deepEqual(view.topics.find((t) => t.name === "thread:ann"), { name: "thread:ann", on: true });
  const clicked = await waitFor(() => countsOf(first.id), (c) => c.counts?.clicked === 1, "the tap reported as a click");
  assert.equal(clicked.counts.clicked, 1);
  assert.equal((await browser.pages()).length, tabs, "the tap opened no page");
  assert.ok(!page.url().endsWith("/watch.html"), "nor navigated the open one");

  const muted = await notifyDemo({ to: { topic: "thread:bill" }, notification: { title: "Bill again (muted)" } });
  const other = await notifyDemo({ to: { topic: "thread:ann" }, notification: { title: "Ann wrote" } });
  await waitFor(notificationsNow, (list) => list.some((n) => n.title === "Ann wrote"), "the other topic's push");
  const mutedCounts = await waitFor(() => countsOf(muted.id), (c) => c.counts && c.counts.queued + c.counts.retrying === 0, "the muted push to finish");
  assert.ok(mutedCounts.counts.muted >= 1, JSON.stringify(mutedCounts));
  assert.ok(!(await notificationsNow()).some((n) => n.title === "Bill again (muted)"), "the muted topic's push never reached Firefox");
  assert.ok((await countsOf(other.id)).counts.delivered >= 1);
  assert.deepEqual(errors, []);
  await page.evaluate(() => window.askwell.unsubscribe());
  await page.close();
});

test("Firefox: after a real Yes the preference centre lists the thread; turning it off there mutes its pushes, and turning notifications off ends the subscription", { timeout: 120_000 }, async () => {
  const { page, errors, outcomes } = await subscribeInChat();
  assert.ok(outcomes.some((o) => o.name === "subscribed"), JSON.stringify(outcomes));
  const sub = await subscriptionOf(page);
  const possession = { endpoint: sub.endpoint, auth: sub.keys.auth };
  // The centre reloads itself after the subscription: the thread is listed.
  const switches = () => page.evaluate(() => [...document.querySelector("askwell-preferences").shadowRoot.querySelectorAll("[part=switch]")]
    .map((row) => ({ label: row.textContent, on: row.querySelector("input").checked })));
  // By the label the chat prompt's topicLabel gave it (the name isolated, as in the prompt's copy).
  const listed = await waitFor(switches, (rows) => rows.some((r) => r.label === "Replies from \u2068Bill\u2069"), "the thread, by its label, in the preference centre");
  assert.ok(listed.some((r) => r.label === "Replies to your messages" && r.on), JSON.stringify(listed));
  const statusText = () => page.evaluate(() => document.querySelector("askwell-preferences").shadowRoot.querySelector("[part=status]").textContent);

  await page.click('askwell-preferences >>> input[data-key="topic:thread:bill"]');
  await waitFor(statusText, (t) => t === "Saved.", "the change saved");
  const muted = await notifyDemo({ to: { topic: "thread:bill" }, notification: { title: "Bill (muted in the centre)" } });
  const counts = await waitFor(() => countsOf(muted.id), (c) => c.counts && c.counts.queued + c.counts.retrying === 0, "the muted push to finish");
  assert.ok(counts.counts.muted >= 1, JSON.stringify(counts));

  await page.click("askwell-preferences >>> [part=turn-off]");
  await waitFor(statusText, (t) => t === "Notifications are off on this device.", "the centre saying notifications are off");
  assert.equal(await subscriptionOf(page), null, "the browser's subscription ended");
  const lookup = await fetch(`${baseUrl}/v1/preferences/lookup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(possession) });
  assert.equal(lookup.status, 404, "and the server's");
  assert.deepEqual(errors, []);
  await page.close();
});
