// Launches Debian's Chromium for end-to-end tests (no browser downloads).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
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

/** Where screenshots go. */
export const outputDir = process.env.ASKWELL_TEST_OUTPUT ?? "test-output";
