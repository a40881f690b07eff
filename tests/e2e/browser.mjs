// Shared end-to-end helpers: Debian's Chromium (no browser downloads), the
// demo's URL, an axe-core audit, and small page actions.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** A fresh Chromium profile; call `close()` when done. */
export async function launchChromium() {
  const profile = mkdtempSync(join(tmpdir(), "askwell-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Base URL of the askwell-server the test command started. */
export const baseUrl = process.env.ASKWELL_URL ?? "http://127.0.0.1:8080";

/** The demo server's admin token (the test command's, else the README's). */
export const adminToken = process.env.ASKWELL_ADMIN_TOKEN ?? "demo-admin-token";

/**
 * An admin API call that must succeed: its JSON reply (null when empty).
 * A failure names the call, its status and the server's error body.
 */
export async function admin(method, path, body) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: body && JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Where screenshots go. */
export const outputDir = process.env.ASKWELL_TEST_OUTPUT ?? "test-output";

/** Opens a demo page and waits until Askwell has started; collects page errors. */
export async function open(context, path, { clockAt } = {}) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  if (clockAt !== undefined) await page.clock.install({ time: clockAt });
  await page.goto(`${baseUrl}${path}`);
  await page.waitForSelector("html[data-askwell-ready=true]", { timeout: 15_000 });
  return { page, errors };
}

/** Types a chat message to Bill and sends it. */
export async function sendMessage(page, text) {
  await page.getByLabel("Message to Bill").fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

/** Lets the page run its event handlers. */
export const settle = (page) => page.evaluate(() => new Promise((r) => setTimeout(r, 100)));

const axeSource = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

/** Runs axe-core (WCAG 2.x A/AA) on the page, shadow DOM included; returns violations. */
export async function audit(page) {
  // Let the entrance animation finish: mid-fade colours are not the real contrast.
  await page.evaluate(() => Promise.all([...document.querySelectorAll("askwell-prompt")]
    .flatMap((host) => host.shadowRoot.getAnimations().map((a) => a.finished))));
  await page.addScriptTag({ path: axeSource });
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } });
    return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
}
