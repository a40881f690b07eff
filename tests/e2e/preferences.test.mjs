// The preference centre (<askwell-preferences>) in Chromium, against the real
// demo server. Chromium cannot subscribe offline (it needs FCM), so the
// subscription is stored on the server through its API and the browser's
// pushManager answers with it (a PushSubscription object with that endpoint
// and auth secret): what the element does with it — lookups, changes,
// failures — is real. Firefox's real subscription is in push-firefox.test.mjs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchChromium, baseUrl, open, audit } from "./browser.mjs";

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => {
  await browser?.close();
  // Their fake endpoints must not linger in other tests' fan-outs.
  await Promise.all(created.map(forget));
});
const created = [];

// RFC 8291 Appendix A's user agent public key: a real P-256 point.
const P256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

const post = (path, body) => fetch(`${baseUrl}${path}`, {
  method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
});

/** Stores a subscription with `topics` on the server; returns its possession. */
async function serverSubscription(topics) {
  const id = Math.random().toString(36).slice(2);
  const auth = Buffer.from(id.padEnd(16, "x").slice(0, 16)).toString("base64url");
  const endpoint = `https://push.example.net/prefs-${id}`;
  const stored = await post("/v1/subscriptions", { subscription: { endpoint, keys: { p256dh: P256DH, auth } }, topics });
  assert.equal(stored.status, 201, await stored.text());
  created.push({ endpoint, auth });
  return { endpoint, auth };
}

/** Makes pushManager.getSubscription() answer with `possession` (or none),
 *  made with the server's VAPID key as far as the page remembers (so the
 *  start-up repair keeps it rather than subscribing afresh). */
const holdSubscription = async (page, possession) => {
  const { publicKey } = await fetch(`${baseUrl}/v1/vapid-public-key`).then((r) => r.json());
  await page.addInitScript(({ possession, publicKey, p256dh }) => {
  localStorage.setItem("askwell:v1:vapid", publicKey);
  PushManager.prototype.getSubscription = async () => {
    if (!possession) return null;
    const subscription = Object.create(PushSubscription.prototype);
    const json = { endpoint: possession.endpoint, expirationTime: null, keys: { p256dh, auth: possession.auth } };
    Object.defineProperty(subscription, "toJSON", { value: () => json });
    Object.defineProperty(subscription, "unsubscribe", { value: async () => { possession = null; return true; } });
    return subscription;
  };
  }, { possession, publicKey, p256dh: P256DH });
};

async function chatWith(possession, { beforeGoto } = {}) {
  await browser.context.grantPermissions(["notifications"], { origin: baseUrl });
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await holdSubscription(page, possession);
  if (beforeGoto) await beforeGoto(page);
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector("html[data-askwell-ready=true]", { timeout: 15_000 });
  return { page, errors };
}

/** Deletes a test subscription. */
const forget = (possession) => fetch(`${baseUrl}/v1/subscriptions`, {
  method: "DELETE", headers: { "content-type": "application/json" }, body: JSON.stringify(possession),
});

const status = (page) => page.locator("askwell-preferences [part=status]");
const lookup = (possession) => post("/v1/preferences/lookup", possession).then((r) => r.json());

test("the preference centre lists the server's categories and the device's topics, and each switch changes them on the server", async () => {
  const possession = await serverSubscription(["thread:prefs-1", "restock:prefs-2"]);
  const { page, errors } = await chatWith(possession);
  const centre = page.locator("askwell-preferences");
  await centre.getByRole("checkbox", { name: "Replies to your messages" }).waitFor();
  const labels = await centre.locator("[part=switch]").allTextContents();
  assert.deepEqual(labels, [
    "News and offers", "The newsletter", "Replies to your messages", "Back in stock", "Sign-ins and security(always sent)",
    "restock:prefs-2", "thread:prefs-1",
  ]);
  assert.equal(await centre.getByRole("checkbox", { name: /Sign-ins and security/ }).isDisabled(), true, "exempt: not a switch");
  assert.deepEqual(await audit(page), [], "axe-core: no violations with the centre filled");

  await centre.getByRole("checkbox", { name: "News and offers" }).uncheck();
  await status(page).filter({ hasText: "Saved." }).waitFor();
  let view = await lookup(possession);
  assert.equal(view.categories.find((c) => c.name === "marketing").on, false, JSON.stringify(view));

  // Keyboard: the focus stays on the switch through the save, Space turns it back.
  const thread = centre.getByRole("checkbox", { name: "thread:prefs-1" });
  await thread.focus();
  await page.keyboard.press("Space");
  await status(page).filter({ hasText: "Saved." }).waitFor();
  assert.equal(await thread.evaluate((el) => el.matches(":focus")), true, "focus kept after the re-render");
  assert.equal(await thread.isChecked(), false);
  view = await lookup(possession);
  assert.deepEqual(view.topics.find((t) => t.name === "thread:prefs-1"), { name: "thread:prefs-1", on: false });
  await page.keyboard.press("Space");
  await status(page).filter({ hasText: "Saved." }).waitFor();
  assert.deepEqual((await lookup(possession)).topics.find((t) => t.name === "thread:prefs-1"), { name: "thread:prefs-1", on: true });

  await centre.getByLabel("Pause").selectOption("week");
  await centre.locator("[part=paused-until]").waitFor();
  view = await lookup(possession);
  const week = 7 * 24 * 3600 * 1000;
  assert.ok(Math.abs(view.pause.until_ms - (Date.now() + week)) < 60_000, JSON.stringify(view.pause));
  await centre.getByLabel("Pause").selectOption("off");
  await status(page).filter({ hasText: "Saved." }).waitFor();
  assert.equal(await centre.locator("[part=paused-until]").count(), 0);
  assert.equal((await lookup(possession)).pause, null);
  assert.deepEqual(errors, []);
  await page.close();
});

test("turning notifications off in the centre ends the subscription on the server and says so", async () => {
  const possession = await serverSubscription(["thread:prefs-1"]);
  const { page, errors } = await chatWith(possession);
  const centre = page.locator("askwell-preferences");
  await centre.getByRole("button", { name: "Turn off notifications on this device" }).click();
  await status(page).filter({ hasText: "Notifications are off on this device." }).waitFor();
  assert.equal(await centre.getByRole("checkbox").count(), 0, "nothing left to switch");
  assert.equal((await post("/v1/preferences/lookup", possession)).status, 404, "the server forgot the subscription");
  assert.deepEqual(errors, []);
  await page.close();
});

test("the centre says in words when there is no subscription, when the server cannot be reached, and when a change is refused", async () => {
  const none = await chatWith(null);
  await status(none.page).filter({ hasText: "Notifications are off on this device." }).waitFor();
  assert.deepEqual(none.errors, []);
  await none.page.close();

  const possession = await serverSubscription(["thread:prefs-1"]);
  const down = await chatWith(possession, {
    beforeGoto: (page) => page.route("**/v1/preferences/lookup", (route) => route.abort("connectionrefused")),
  });
  await status(down.page).filter({ hasText: "Your notification settings could not be loaded. Try again later." }).waitFor();
  assert.deepEqual(down.errors, []);
  await down.page.close();

  const refusing = await chatWith(possession, {
    beforeGoto: (page) => page.route("**/v1/preferences", (route) => route.fulfill({ status: 503, contentType: "application/json", body: '{"error":{"code":"unavailable","message":"down"}}' })),
  });
  const centre = refusing.page.locator("askwell-preferences");
  const replies = centre.getByRole("checkbox", { name: "Replies to your messages" });
  await replies.uncheck();
  await status(refusing.page).filter({ hasText: "That change could not be saved. Try again later." }).waitFor();
  assert.equal(await replies.isChecked(), true, "the switch went back to what the server holds");
  assert.equal((await lookup(possession)).categories.find((c) => c.name === "replies").on, true);

  // Storage that throws (a hostile or broken host) does not reach the page either.
  await refusing.page.evaluate(() => { Object.defineProperty(window, "localStorage", { get() { throw new Error("denied"); } }); });
  await refusing.page.evaluate(() => window.askwell.showPreferences(document.getElementById("settings")));
  await centre.getByRole("checkbox", { name: "Replies to your messages" }).waitFor();
  assert.deepEqual(refusing.errors, []);
  await refusing.page.close();
});
