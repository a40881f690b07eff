// End-to-end: the demo served by askwell-server, driven in headless Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { launchChromium, baseUrl, outputDir } from "./browser.mjs";

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

async function openChat() {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector("html[data-askwell-ready=true]", { timeout: 15_000 });
  return { page, errors };
}

async function sendMessage(page, text) {
  await page.getByLabel("Message to Bill").fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

test("the server answers health checks and serves the VAPID key", async () => {
  const health = await fetch(`${baseUrl}/healthz`).then((r) => r.json());
  assert.equal(health.status, "ok");
  const { publicKey } = await fetch(`${baseUrl}/v1/vapid-public-key`).then((r) => r.json());
  assert.match(publicKey, /^[A-Za-z0-9_-]{87}$/);
});

test("sending Bill a message asks in context, and Not now cools off", async () => {
  const { page, errors } = await openChat();
  const prompt = page.locator("askwell-prompt");
  assert.equal(await prompt.count(), 0, "nothing is asked at page load");

  await sendMessage(page, "Friday works!");
  await prompt.waitFor();
  assert.equal(await prompt.locator("[part~=message]").textContent(), "Want to know when Bill replies?");
  const dialog = page.getByRole("dialog", { name: "Want to know when Bill replies?" });
  assert.equal(await dialog.count(), 1, "the prompt is a labelled dialog");
  await page.screenshot({ path: join(outputDir, "chat-prompt.png"), animations: "disabled" });

  await page.getByRole("button", { name: "Not now" }).click();
  await prompt.waitFor({ state: "detached" });
  await sendMessage(page, "See you then");
  await page.waitForTimeout(300);
  assert.equal(await prompt.count(), 0, "no prompt during the cool-off");

  await page.reload();
  await page.waitForSelector("html[data-askwell-ready=true]");
  await sendMessage(page, "One more thing");
  await page.waitForTimeout(300);
  assert.equal(await prompt.count(), 0, "the cool-off survives a reload (localStorage)");
  assert.deepEqual(errors, []);
  await page.close();
});
