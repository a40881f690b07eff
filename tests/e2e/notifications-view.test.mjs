// End to end: the dashboard's Notifications view on the real demo server.
// Six devices get a real A/B push from askwell-server (this test is their
// push service: it verifies each VAPID JWT and decrypts each body with the
// devices' own keys); their workers' reports (shown, clicked) are posted as
// Askwell's worker posts them. The view then shows the send's funnel, its
// variants with the verdict, a segment builder whose dry-run count follows
// the conditions, and the same numbers as CSV — with axe clean in light and
// dark.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { launchChromium, baseUrl, audit, admin, adminToken as TOKEN } from "./browser.mjs";
import { startPushDouble, newDevice } from "./push-double.mjs";

const TOPIC = `view-${Date.now().toString(36)}`;
const DEVICES = 6;

let service;
let browser;
let id;
// The send whose deliveries split across both variants (see `sendUntilBothArms`).
let TITLE;
const devices = [];

before(async () => {
  service = await startPushDouble(devices);
  browser = await launchChromium();
  for (let i = 0; i < DEVICES; i++) {
    const device = newDevice(`v${i}`, service);
    const response = await fetch(`${baseUrl}/v1/subscriptions`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ subscription: device.subscription, topics: [TOPIC] }),
    });
    assert.equal(response.status, 201, await response.text());
    devices.push(device);
  }
  const received = await sendUntilBothArms();
  // Every push shown by its worker; two of them clicked.
  const events = received.flatMap((r, i) => [
    { type: "notification_shown", delivery: r.payload.delivery },
    ...(i < 2 ? [{ type: "notification_clicked", delivery: r.payload.delivery }] : []),
  ]);
  const reported = await fetch(`${baseUrl}/v1/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ events }) });
  assert.equal(reported.status, 202, await reported.text());
});
/** Sends the A/B push until its six devices are split across both variants.
 * A device's variant is a hash of (device, notification), so one send puts
 * all six in one arm about once in 32 — and then the view rightly has no
 * b to show. Each try is a new notification with its own title; returns
 * the kept send's decrypted pushes. */
async function sendUntilBothArms() {
  for (let attempt = 1; attempt <= 8; attempt++) {
    TITLE = `Bill replied ${TOPIC} try${attempt}`;
    const sent = service.received.length;
    ({ id } = await admin("POST", "/v1/notify", {
      to: { topic: TOPIC },
      notification: { title: TITLE, variants: [{ id: "a" }, { id: "b", title: `${TITLE}: he is waiting` }] },
    }));
    for (let i = 0; i < 150 && service.received.length < sent + DEVICES; i++) await new Promise((r) => setTimeout(r, 100));
    const received = service.received.slice(sent);
    assert.equal(received.length, DEVICES, `every device decrypted its push (rejected: ${service.rejected})`);
    const b = received.filter((r) => r.payload.title === `${TITLE}: he is waiting`).length;
    if (b > 0 && b < DEVICES) return received;
  }
  throw new Error("eight sends in a row put all six devices in one variant");
}

after(async () => {
  await Promise.all(devices.map((d) => fetch(`${baseUrl}/v1/subscriptions`, {
    method: "DELETE", headers: { "content-type": "application/json" },
    body: JSON.stringify({ endpoint: d.endpoint, auth: d.auth }),
  })));
  await browser?.close();
  await service?.close();
});

async function openView(colorScheme) {
  const page = await browser.context.newPage();
  await page.emulateMedia({ colorScheme });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.addInitScript((token) => sessionStorage.setItem("askwell:dashboard:token", token), TOKEN);
  await page.goto(`${baseUrl}/dashboard.html`);
  const view = page.getByRole("region", { name: "Notifications", exact: true });
  await view.getByRole("button", { name: TITLE, exact: true }).click();
  await view.getByRole("heading", { name: new RegExp(`^“${TITLE}”, sent `) }).waitFor();
  return { page, view };
}

const labels = (locator) => locator.locator("[role=img]").evaluateAll((nodes) => nodes.map((n) => n.getAttribute("aria-label")));

test("a send's funnel, its variants and their verdict, in light and dark, axe clean", async () => {
  for (const scheme of ["light", "dark"]) {
    const { page, view } = await openView(scheme);
    const row = view.locator("#notification-list tbody tr", { hasText: TITLE });
    assert.equal(await row.getAttribute("aria-current"), "true");
    // Sent, to, recipients, delivered, shown, clicked, click-through.
    assert.deepEqual((await row.locator("td").allTextContents()).slice(1), [TOPIC, "6", "6", "6", "2", "33.3%"]);
    const marks = await labels(view.locator("#notification-detail"));
    for (const expected of ["6 recipients", "6 delivered (100.0% of recipients)", "6 shown (100.0% of delivered)", "2 clicked (33.3% of shown)"]) {
      assert.ok(marks.includes(expected), `${expected} in ${marks.join(" | ")}`);
    }
    assert.ok(marks.some((l) => /^a: click-through .*\(\d of \d delivered\)$/.test(l)), marks.join("\n"));
    assert.ok(marks.some((l) => /^b: click-through .*\(\d of \d delivered\)$/.test(l)), marks.join("\n"));
    const verdict = await view.locator(".verdicts li").first().textContent();
    assert.match(verdict, /^Click-through, b vs a: not enough data yet/, "six pushes decide nothing");
    assert.match(await view.locator("#notification-detail").textContent(), /Every recipient was sent it\./);
    assert.deepEqual(await audit(page), [], `axe: the Notifications view, ${scheme}`);
    await page.close();
  }
});

test("the segment builder's dry-run count follows its conditions, and names a bad one", async () => {
  const { page, view } = await openView("light");
  const count = view.locator("#segment-count");
  await count.filter({ hasText: /devices? match\.$/ }).waitFor();
  await view.getByRole("button", { name: "Add a condition" }).click();
  await view.getByLabel("Condition 1: kind").selectOption("topic");
  await view.getByLabel("topic (condition 1)").fill(TOPIC);
  await count.filter({ hasText: `${DEVICES} devices match.` }).waitFor();
  assert.equal(await view.locator("#segment-json").inputValue(), JSON.stringify({ topic: TOPIC }));
  await view.getByRole("button", { name: "Add a condition" }).click();
  await view.getByLabel("Condition 2: kind").selectOption("bucket");
  await view.getByLabel("from (condition 2)").fill("10");
  await view.getByLabel("to (condition 2)").fill("10");
  await count.filter({ hasText: /^Not a valid segment yet: to\.where\.all\[1\]\.bucket: expected \[from, to\]/ }).waitFor();
  await view.getByLabel("to (condition 2)").fill("100");
  const fromTen = await admin("POST", "/v1/notify", { to: { where: { all: [{ topic: TOPIC }, { bucket: [10, 100] }] } }, notification: { title: "x" }, dry_run: true });
  await count.filter({ hasText: new RegExp(`^${fromTen.recipients} devices? match\\.$`) }).waitFor();
  await view.getByRole("button", { name: "Remove condition 2" }).click();
  await count.filter({ hasText: `${DEVICES} devices match.` }).waitFor();
  assert.deepEqual(await audit(page), [], "axe: the segment builder");
  await page.close();
});

test("the view downloads the same numbers as CSV, a row per variant", async () => {
  const { page, view } = await openView("light");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    view.getByRole("button", { name: "Download notifications CSV" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "askwell-notifications.csv");
  const lines = readFileSync(await download.path(), "utf8").trimEnd().split("\n");
  assert.equal(lines[0], "notification,created_ms,title,variant,recipients,delivered,shown,clicked,dismissed,"
    + "click_through,click_through_low,click_through_high,held,capped,muted,withheld,verdict");
  const ours = lines.filter((line) => line.startsWith(`${id},`));
  assert.equal(ours.length, 3, ours.join("\n"));
  assert.match(ours[0], new RegExp(`^${id},\\d+,${TITLE},all,6,6,6,2,0,0\\.3333,`));
  assert.match(ours[1], new RegExp(`,${TITLE},a,\\d,\\d,,\\d,0,.*,baseline$`));
  assert.match(ours[2], new RegExp(`,${TITLE},b,\\d,\\d,,\\d,0,.*,not enough data yet`));
  await page.close();
});
