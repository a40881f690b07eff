// End-to-end: the chat demo in both variants of its experiment moves the
// counts on GET /v1/stats and on the dashboard (real page code, real server).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { launchChromium, baseUrl, outputDir, open, sendMessage, audit } from "./browser.mjs";

const TOKEN = process.env.ASKWELL_ADMIN_TOKEN ?? "demo-admin-token";

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

async function stats(query = "") {
  const response = await fetch(`${baseUrl}/v1/stats${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(response.status, 200);
  return response.json();
}

function counts(report, variant) {
  const prompt = report.prompts.find((p) => p.prompt === "reply-alerts");
  return prompt?.variants.find((v) => v.variant === variant)?.counts ?? {};
}

const delta = (after, before, kind) => (after[kind] ?? 0) - (before[kind] ?? 0);

/** Opens the chat with a new device id until the prompt shows `wanted`'s copy. */
async function chatInVariant(context, wanted) {
  for (let attempt = 0; attempt < 16; attempt++) {
    const { page, errors } = await open(context, "/");
    // A new device: no history, a new anonymous id (so a new assignment).
    await page.evaluate(() => window.askwell.reset());
    await page.reload();
    await page.waitForSelector("html[data-askwell-ready=true]");
    const shown = page.evaluate(() => new Promise((resolve) =>
      document.addEventListener("askwell:shown", (e) => resolve(e.detail), { once: true })));
    await sendMessage(page, "Friday works!");
    const detail = await shown;
    if (detail.variant === wanted) return { page, errors, detail };
    await page.close();
  }
  throw new Error(`variant ${wanted} never came up in 16 devices`);
}

async function waitFor(check, what) {
  for (let i = 0; i < 60; i++) {
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("both variants of the chat prompt reach /v1/stats and the dashboard", async () => {
  const { context } = browser;
  await context.grantPermissions(["notifications"], { origin: baseUrl });
  const before = await stats();

  // Variant a: "Not now". The page is closed right away: the beacon carries it.
  const a = await chatInVariant(context, "a");
  await a.page.getByRole("button", { name: "Not now" }).click();
  await a.page.close({ runBeforeUnload: true });

  // Variant b: "Yes" → the browser's prompt (granted); then a conversion.
  const b = await chatInVariant(context, "b");
  const permission = b.page.evaluate(() => new Promise((resolve) =>
    document.addEventListener("askwell:permission", (e) => resolve(e.detail.state), { once: true })));
  await b.page.getByRole("button", { name: "Yes, notify me" }).click();
  assert.equal(await permission, "granted");
  await b.page.evaluate(() => window.askwell.convert("replied"));

  const after = await waitFor(async () => {
    const report = await stats();
    const [ca, cb] = [counts(report, "a"), counts(report, "b")];
    const moved = delta(ca, counts(before, "a"), "prompt_dismissed") >= 1
      && delta(cb, counts(before, "b"), "native_granted") >= 1
      && delta(cb, counts(before, "b"), "conversion") >= 1;
    return moved && report;
  }, "both variants' events on /v1/stats");
  const [ca, cb] = [counts(after, "a"), counts(after, "b")];
  assert.ok(delta(ca, counts(before, "a"), "prompt_shown") >= 1, "a shown");
  assert.ok(delta(cb, counts(before, "b"), "prompt_shown") >= 1, "b shown");
  assert.equal(delta(cb, counts(before, "b"), "prompt_accepted"), 1, "b accepted once");
  assert.deepEqual([...a.errors, ...b.errors], []);
  await b.page.close();

  // The dashboard shows the same numbers, drawn, with the token from the form.
  const { page } = await openDashboard(context);
  const prompt = page.getByRole("region", { name: "Prompt “reply-alerts”" });
  await prompt.waitFor();
  const marks = await prompt.locator("[role=img]").evaluateAll((nodes) => nodes.map((n) => n.getAttribute("aria-label")));
  assert.ok(marks.some((m) => /^a: [1-9]\d* shown \(100\.0% of shown\)$/.test(m)), marks.join("\n"));
  assert.ok(marks.some((m) => /^b: [1-9]\d* allowed/.test(m)), "the funnel counts b's allow");
  const verdicts = await prompt.getByRole("listitem").allTextContents();
  assert.ok(verdicts.some((v) => /^Opt-in, b vs a: (not enough data yet|b beats a|a beats b|no clear difference)/.test(v)), verdicts.join("\n"));
  await page.keyboard.press("Tab");
  await page.screenshot({ path: join(outputDir, "dashboard.png"), fullPage: true });
  assert.deepEqual(await audit(page), [], "axe: dashboard");

  // The same numbers as a spreadsheet: a row per variant, counts equal to /v1/stats.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
  assert.equal(download.suggestedFilename(), "askwell-funnel-real.csv");
  const rows = (await readFile(await download.path(), "utf8")).trim().split("\r\n").map((line) => line.split(","));
  const column = (name) => rows[0].indexOf(name);
  const rowB = rows.find((r) => r[column("prompt")] === "reply-alerts" && r[column("variant")] === "b");
  assert.ok(rowB, rows.join("\n"));
  const latest = counts(await stats(), "b");
  assert.equal(Number(rowB[column("prompt_accepted")]), latest.prompt_accepted, "CSV and JSON agree");
  assert.ok(Number(rowB[column("prompt_shown")]) >= 1);
  await page.close();
  await context.clearPermissions();
});

async function openDashboard(context) {
  const page = await context.newPage();
  await page.goto(`${baseUrl}/dashboard.html`);
  await page.getByLabel("Admin token").fill(TOKEN);
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForSelector("html[data-loaded=real]");
  return { page };
}

test("the dashboard refuses a wrong token with a clear message", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${baseUrl}/dashboard.html`);
  await page.evaluate(() => sessionStorage.clear());
  await page.getByLabel("Admin token").fill("wrong");
  await page.getByRole("button", { name: "Show" }).click();
  await page.getByText("Wrong admin token.").waitFor();
  await page.close();
});
