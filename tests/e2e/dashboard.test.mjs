// End-to-end: the funnel dashboard is readable on a phone and on a desktop,
// and each rate is drawn against its own denominator. The data is a small
// synthetic population posted with the admin token (kept apart from real
// stats), under a prompt id of its own.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { launchChromium, baseUrl, outputDir, audit, admin, adminToken as TOKEN } from "./browser.mjs";

const PROMPT = `dashboard-check-${Date.now().toString(36)}`;
// Per variant: a real funnel (each step a subset of the one before), then
// pushes: every subscriber gets several, so clicks outnumber subscriptions.
const ARMS = {
  a: { shown: 1200, accepted: 130, granted: 110, subscribed: 100, delivered: 400, clicked: 150 },
  b: { shown: 1100, accepted: 70, granted: 60, subscribed: 55, delivered: 220, clicked: 66 },
};

function population() {
  const at = Date.now() - 3_600_000;
  const events = [];
  for (const [variant, n] of Object.entries(ARMS)) {
    const event = (type, device, extra = {}) => events.push({
      id: `${PROMPT}-${variant}-${events.length}`, type, prompt: PROMPT, variant,
      trigger: "test", anon: `${PROMPT}-${variant}-${device}`, at, ...extra,
    });
    for (let d = 0; d < n.shown; d++) {
      event("prompt_shown", d);
      if (d < n.accepted) event("prompt_accepted", d);
      if (d < n.granted) event("native_granted", d);
      if (d < n.subscribed) event("subscribed", d);
    }
    for (let p = 0; p < n.delivered; p++) {
      const delivery = `${PROMPT}-${variant}-push-${p}`;
      event("notification_delivered", p % n.subscribed, { delivery });
      if (p < n.clicked) event("notification_clicked", p % n.subscribed, { delivery });
    }
  }
  return events;
}

async function seed() {
  const events = population();
  for (let i = 0; i < events.length; i += 100) {
    const response = await fetch(`${baseUrl}/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ synthetic: true, events: events.slice(i, i + 100) }),
    });
    assert.equal(response.status, 202, await response.text());
  }
}

const JOURNEY = `dashboard-journey-${Date.now().toString(36)}`;


// A journey three users enter (the server's runner reads their events
// within a second or two); one converts.
async function seedJourney() {
  await admin("PUT", `/v1/journeys/${JOURNEY}`, {
    entry: { event: `${JOURNEY}-signed-up` },
    exitOn: [{ event: `${JOURNEY}-activated` }],
    steps: [{ send: { title: "Welcome" } }, { wait: { days: 1 } }, { send: { title: "Day 1" } }],
  });
  const users = ["a", "b", "c"].map((u) => `${JOURNEY}-${u}`);
  await admin("POST", "/v1/track", { events: users.map((user) => ({ user, name: `${JOURNEY}-signed-up` })) });
  await admin("POST", "/v1/track", { events: [{ user: users[0], name: `${JOURNEY}-activated` }] });
  for (let i = 0; i < 100; i++) {
    const { report } = await admin("GET", `/v1/journeys/${JOURNEY}`);
    if (report.entered === 3 && report.exited_by[`${JOURNEY}-activated`] === 1) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail("the server's journey runner did not take in the events within 10 s");
}

let browser;
before(async () => {
  browser = await launchChromium();
  await seed();
  await seedJourney();
});
after(async () => { await browser?.close(); });

async function openDashboard(viewport) {
  const page = await browser.context.newPage();
  await page.setViewportSize(viewport);
  await page.goto(`${baseUrl}/dashboard.html?dataset=synthetic`);
  await page.getByLabel("Admin token").fill(TOKEN);
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForSelector("html[data-loaded=synthetic]");
  await page.getByRole("region", { name: `Prompt “${PROMPT}”` }).waitFor();
  return page;
}

/** Every chart text as drawn: its size in CSS pixels and whether it leaves its card. */
function measureCharts(page) {
  return page.evaluate(() => [...document.querySelectorAll("svg.chart text")].map((node) => {
    const svg = node.ownerSVGElement;
    // A viewBox wider than the element scales its text down with it.
    const scale = svg.getBoundingClientRect().width / (svg.viewBox.baseVal?.width || svg.getBoundingClientRect().width);
    const px = parseFloat(getComputedStyle(node).fontSize) * scale;
    const box = node.getBoundingClientRect();
    const card = node.closest(".card").getBoundingClientRect();
    const inside = box.left >= card.left - 0.5 && box.right <= card.right + 0.5;
    return { text: node.textContent, px: Math.round(px * 10) / 10, inside };
  }));
}

for (const [name, viewport] of [["a 390 px phone", { width: 390, height: 844 }], ["a desktop", { width: 1280, height: 900 }]]) {
  test(`on ${name} every chart text is at least 11 px and stays inside its card`, async () => {
    const page = await openDashboard(viewport);
    const texts = await measureCharts(page);
    assert.ok(texts.length > 20, `charts drawn: ${texts.length} texts`);
    const small = texts.filter((t) => t.px < 11).map((t) => `${t.px} px: ${t.text}`);
    assert.deepEqual(small, [], `text smaller than 11 px at ${viewport.width} px`);
    const outside = texts.filter((t) => !t.inside).map((t) => t.text);
    assert.deepEqual(outside, [], `text outside its card at ${viewport.width} px`);
    const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= viewport.width, `no sideways scrolling (${scrollWidth} px)`);
    await page.screenshot({ path: join(outputDir, `dashboard-${viewport.width}.png`), fullPage: true });
    assert.deepEqual(await audit(page), [], `axe: dashboard at ${viewport.width} px`);
    await page.close();
  });
}

test("the funnel stops at subscribed, and clicks are a rate of delivered pushes", async () => {
  const page = await openDashboard({ width: 390, height: 844 });
  const section = page.getByRole("region", { name: `Prompt “${PROMPT}”` });
  const labelsIn = (caption) => section.locator("figure", { has: page.locator("figcaption", { hasText: caption }) })
    .locator("[role=img]").evaluateAll((nodes) => nodes.map((n) => n.getAttribute("aria-label")));

  const funnel = await labelsIn(/^Funnel/);
  assert.ok(funnel.length > 0, "a funnel is drawn");
  assert.deepEqual(funnel.filter((label) => /click/i.test(label)), [], "clicks are not a funnel step");
  // A funnel narrows: no step of a variant counts more than the step before it.
  for (const variant of Object.keys(ARMS)) {
    const steps = funnel.filter((l) => l.startsWith(`${variant}: `)).map((l) => Number(l.split(" ")[1]));
    assert.deepEqual(steps, [...steps].sort((x, y) => y - x), `${variant}'s funnel narrows: ${steps}`);
    assert.equal(steps[0], ARMS[variant].shown, `${variant} starts at shown`);
  }

  const clicks = await labelsIn(/^Click-through/);
  assert.ok(clicks.some((l) => /^a: click-through 37\.5%, .*\(150 of 400 delivered pushes\)$/.test(l)), clicks.join("\n"));
  assert.ok(clicks.some((l) => /^b: click-through 30\.0%, .*\(66 of 220 delivered pushes\)$/.test(l)), clicks.join("\n"));
  await page.close();
});

test("a journey shows who entered, what each step sent, and conversion against its holdout", async () => {
  const page = await openDashboard({ width: 390, height: 844 });
  const section = page.getByRole("region", { name: `Journey “${JOURNEY}” (version 1)` });
  await section.waitFor();
  const text = await section.textContent();
  assert.match(text, /3 entered \(0 in the holdout\)/);
  assert.match(text, /waiting: 2/);
  assert.match(text, new RegExp(`ended by ${JOURNEY}-activated: 1`));
  const rows = await section.locator("table tbody tr").evaluateAll((trs) => trs.map((tr) => tr.textContent));
  assert.deepEqual(rows, ["#0300"], "step 0 sent to all three, none withheld or refused");
  const marks = await section.locator("[role=img]").evaluateAll((nodes) => nodes.map((n) => n.getAttribute("aria-label")));
  assert.ok(marks.some((l) => /^sent to: conversion 33\.3%, .*\(1 of 3 entrants\)$/.test(l)), marks.join("\n"));
  await page.close();
});

// The columns of GET /v1/journeys.csv (server/src/routes/journeys.rs CSV_COLUMNS).
const JOURNEY_CSV_HEADER = "journey,version,entered,holdout,waiting,completed,exited_by_event,exited_at_step,retired,"
  + "sent,withheld,refused,delivered,clicked,converted_sent_to,conversion_sent_to,converted_holdout,conversion_holdout,verdict";

test("the Journeys panel downloads every journey's report as CSV", async () => {
  const page = await openDashboard({ width: 390, height: 844 });
  const panel = page.getByRole("region", { name: "Journeys", exact: true });
  const button = panel.getByRole("button", { name: "Download journeys CSV" });
  await button.waitFor();
  const [download, response] = await Promise.all([
    page.waitForEvent("download"),
    page.waitForResponse((r) => new URL(r.url()).pathname === "/v1/journeys.csv"),
    button.click(),
  ]);
  assert.equal(response.status(), 200);
  assert.match(response.headers()["content-type"], /^text\/csv/);
  assert.equal(download.suggestedFilename(), "askwell-journeys.csv");
  const lines = readFileSync(await download.path(), "utf8").trimEnd().split("\n");
  assert.equal(lines[0], JOURNEY_CSV_HEADER);
  const row = lines.find((line) => line.startsWith(`${JOURNEY},`));
  assert.ok(row, lines.join("\n"));
  // version 1, 3 entered, none in the holdout, 2 waiting, none completed, 1 left on its exit event.
  assert.match(row, new RegExp(`^${JOURNEY},1,3,0,2,0,1,`), row);
  assert.equal(await page.locator("#message").textContent(), "Saved askwell-journeys.csv.");
  await page.close();
});
