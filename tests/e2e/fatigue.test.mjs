// End to end: the fatigue guard on the real demo server. Five devices get
// real Web Push from askwell-server (this test is their push service: it
// verifies each request's VAPID JWT and decrypts the RFC 8291 body itself,
// with the devices' own keys, as a browser would). Four of five newsletters
// are dismissed without a click — reported as Askwell's worker reports a
// closed notification — so the e2e policy's guard (tests/e2e/policy.json:
// `fatigue.pause: ["newsletter"]`, floor 0.6 from 4 deliveries, judged
// again each second) pauses the
// newsletter: the next one ends `paused` and reaches no device, while a
// reply still arrives. The dashboard then says so, in words.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchChromium, baseUrl, audit, admin, adminToken as TOKEN } from "./browser.mjs";
import { startPushDouble, newDevice } from "./push-double.mjs";

const TOPIC = `fatigue-${Date.now().toString(36)}`;
const DEVICES = 5;

let service;
let browser;
const devices = [];

before(async () => {
  service = await startPushDouble(devices);
  browser = await launchChromium();
  for (let i = 0; i < DEVICES; i++) devices.push(await subscribe(`d${i}`));
});
after(async () => {
  await Promise.all(devices.map((d) => fetch(`${baseUrl}/v1/subscriptions`, {
    method: "DELETE", headers: { "content-type": "application/json" },
    body: JSON.stringify({ endpoint: d.endpoint, auth: d.auth }),
  })));
  await browser?.close();
  await service?.close();
});

async function subscribe(name) {
  const device = newDevice(name, service);
  const response = await fetch(`${baseUrl}/v1/subscriptions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ subscription: device.subscription, topics: [TOPIC] }),
  });
  assert.equal(response.status, 201, await response.text());
  return device;
}


const notify = (category, title) => admin("POST", "/v1/notify", { to: { topic: TOPIC }, category, notification: { title } }).then((r) => r.id);

/** Waits until notification `id`'s deliveries are all final, and returns its counts. */
async function settled(id) {
  for (let i = 0; i < 150; i++) {
    const answer = await admin("GET", `/v1/notifications/${id}`);
    const counts = answer.counts ?? answer;
    if (counts.queued + counts.retrying + counts.held + counts.scheduled === 0) return counts;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`notification ${id} did not settle`);
}

const titled = (title) => service.received.filter((r) => r.payload.title === title);

test("newsletters mostly dismissed pause the newsletter: the next one reaches no device, a reply still does, and the dashboard says why", async () => {
  const first = await notify("newsletter", "Issue 1");
  assert.equal((await settled(first)).delivered, DEVICES);
  assert.equal(titled("Issue 1").length, DEVICES, `every device decrypted it (rejected: ${service.rejected})`);
  // Four closed without a click, one opened: what Askwell's worker reports.
  const events = titled("Issue 1").map((r, i) => ({ type: i < 4 ? "notification_dismissed" : "notification_clicked", delivery: r.payload.delivery }));
  const reported = await fetch(`${baseUrl}/v1/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ events }) });
  assert.equal(reported.status, 202, await reported.text());
  // The guard's judgement is kept for `fatigue.recheck` (1 s in the e2e policy).
  await new Promise((resolve) => setTimeout(resolve, 1_200));

  const second = await notify("newsletter", "Issue 2");
  const reply = await notify("replies", "Bill replied");
  const paused = await settled(second);
  assert.deepEqual([paused.paused, paused.delivered], [DEVICES, 0], JSON.stringify(paused));
  assert.equal((await settled(reply)).delivered, DEVICES);
  assert.equal(titled("Issue 2").length, 0, "no device got the paused newsletter");
  assert.equal(titled("Bill replied").length, DEVICES);
  assert.deepEqual(service.rejected, []);

  const metrics = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.text());
  assert.match(metrics, /askwell_category_paused\{category="newsletter"\} 1/);

  const page = await browser.context.newPage();
  await page.addInitScript((token) => sessionStorage.setItem("askwell:dashboard:token", token), TOKEN);
  await page.goto(`${baseUrl}/dashboard.html`);
  await page.waitForSelector("html[data-loaded=real]");
  const row = page.locator("#fatigue tr", { has: page.locator("th", { hasText: "newsletter (category)" }) });
  const cells = await row.locator("td").allTextContents();
  assert.deepEqual(cells, ["5", "20.0%", "80.0%", "0.0%", "paused: tiring: mostly dismissed, so its pushes are not sent"]);
  assert.match(await page.locator("#fatigue .note").textContent(), /Paused now by the delivery policy's fatigue guard: newsletter\./);
  const replies = await page.locator("#fatigue tr", { has: page.locator("th", { hasText: "replies (category)" }) }).locator("td").last().textContent();
  assert.equal(replies, "fine");
  assert.deepEqual(await audit(page), [], "axe: the dashboard with the fatigue panel");
  await page.setViewportSize({ width: 390, height: 800 });
  const overflow = await page.locator("#fatigue").evaluate((fig) => fig.scrollWidth - fig.clientWidth);
  assert.ok(overflow <= 0, `on a 390 px phone the panel stays inside its card, its table scrolling (${overflow} px too wide)`);
  await page.close();
});
