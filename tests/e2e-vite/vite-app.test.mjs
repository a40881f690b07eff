// A new user's first hour: a fresh Vite app that installs the package and
// calls it as the README says, in Vite's dev server and in a production
// build (`vite build` + `vite preview`), in headless Chromium, talking to an
// askwell-server on another origin. Also the linked-folder install
// (`npm install ../path/to/pkg`), which Vite's dev server refuses (403 on the
// wasm) unless `server.fs.allow` names the folder.
//
// Run by `cargo xtask test` (xtask/src/vite.rs packs pkg/ and passes
// ASKWELL_PKG_TARBALL); alone, after `cargo xtask build`:
//   npm pack ./pkg --pack-destination target &&
//   ASKWELL_PKG_TARBALL=target/askwell-0.1.0.tgz node --test tests/e2e-vite/
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../e2e/browser.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const work = resolve(process.env.ASKWELL_VITE_WORK ?? join(root, "target"));
const tarball = resolve(process.env.ASKWELL_PKG_TARBALL ?? join(root, "target/askwell-0.1.0.tgz"));
const pkgDir = resolve(process.env.ASKWELL_PKG_DIR ?? join(root, "pkg"));
const serverBin = process.env.ASKWELL_SERVER_BIN ?? join(root, "target/debug/askwell-server");
// One pin for the whole repository: the root package.json's (its lockfile
// also puts this version in npm's cache, so the apps install it offline).
const viteVersion = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).devDependencies.vite;

const packedApp = join(work, "vite-app");
const linkedApp = join(work, "vite-app-linked");
const SECONDS = 1000;

// ---- processes: every child is stopped after its test, and on exit ----

const children = new Set();
process.on("exit", () => children.forEach((child) => child.kill("SIGKILL")));

/** Starts a long-running command; resolves with the first loopback URL it prints. */
function startServer(command, args, { cwd, env = {} }) {
  const merged = Object.entries({ ...process.env, NO_COLOR: "1", ...env }).filter(([, value]) => value !== undefined);
  const child = spawn(command, args, {
    cwd,
    env: Object.fromEntries(merged),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  const url = new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} printed no URL in 30 s:\n${output}`)), 30 * SECONDS);
    const read = (chunk) => {
      output += chunk;
      const found = output.match(/http:\/\/127\.0\.0\.1:\d+/);
      if (found) {
        clearTimeout(timer);
        resolveUrl(found[0]);
      }
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.on("exit", (code) => reject(new Error(`${command} exited (${code}) before printing a URL:\n${output}`)));
  });
  const stop = () => new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const kill = setTimeout(() => child.kill("SIGKILL"), 5 * SECONDS);
    child.once("exit", () => {
      clearTimeout(kill);
      children.delete(child);
      done();
    });
    child.kill("SIGTERM");
  });
  return url.then((found) => ({ url: found, stop, output: () => output }), async (err) => {
    await stop();
    throw err;
  });
}

/** Runs a command to completion within `seconds`; throws with its output if it fails. */
function run(command, args, cwd, seconds) {
  try {
    return execFileSync(command, args, { cwd, encoding: "utf8", timeout: seconds * SECONDS, stdio: "pipe" });
  } catch (err) {
    throw new Error(`${command} ${args.join(" ")} failed in ${cwd}:\n${err.stdout ?? ""}${err.stderr ?? err.message}`);
  }
}

// ---- the apps ----

/** The page's script, as the README shows it; the API server comes from `?server=`. */
const MAIN_JS = `import init, { Askwell } from "askwell";

await init();
const server = new URLSearchParams(location.search).get("server") ?? "";
const askwell = await Askwell.start({
  server,
  prompts: [{
    id: "reply-alerts",
    message: "Want to know when {entity.name} replies?",
    accept: "Yes", decline: "Not now",
    topic: "thread:{entity.id}",
  }],
  rules: [{ prompt: "reply-alerts", when: { action: "message_sent" } }],
});
askwell.track("message_sent", { entity: { id: "bill", name: "Bill" } });
`;

// The empty icon keeps Chromium's /favicon.ico 404 out of the console errors.
const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <link rel="icon" href="data:,">
    <title>A fresh Vite app</title>
  </head>
  <body>
    <h1>Chat with Bill</h1>
    <script type="module" src="/main.js"></script>
  </body>
</html>
`;

/** The README's config for a linked package folder. */
const LINKED_VITE_CONFIG = (pkg) => `import { searchForWorkspaceRoot } from "vite";

export default {
  server: {
    fs: {
      // Setting allow replaces Vite's default: keep the app's own root.
      allow: [searchForWorkspaceRoot(process.cwd()), ${JSON.stringify(pkg)}],
    },
  },
};
`;

/** Writes a fresh app whose package.json takes askwell from `askwellSpec`, and installs it. */
function createApp(dir, askwellSpec, extraFiles = {}) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const manifest = {
    name: "fresh-vite-app",
    private: true,
    type: "module",
    scripts: { dev: "vite", build: "vite build", preview: "vite preview" },
    dependencies: { askwell: askwellSpec },
    devDependencies: { vite: viteVersion },
  };
  const files = { "package.json": JSON.stringify(manifest, null, 2), "index.html": INDEX_HTML, "main.js": MAIN_JS, ...extraFiles };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], dir, 180);
}

const vite = (app, args) =>
  startServer(process.execPath, [join(app, "node_modules/vite/bin/vite.js"), ...args, "--host", "127.0.0.1", "--port", "0"], { cwd: app });

/** askwell-server on a fresh data dir; `origins` for ASKWELL_ALLOWED_ORIGINS (none: unset). */
async function askwellServer(origins) {
  const data = mkdtempSync(join(tmpdir(), "askwell-vite-"));
  // `undefined` unsets a value the environment may have.
  const env = { ASKWELL_VAPID_SUBJECT: "mailto:ops@example.com", RUST_LOG: "error", ASKWELL_ALLOWED_ORIGINS: origins ?? undefined };
  const server = await startServer(serverBin, ["serve", "--bind", "127.0.0.1:0", "--data-dir", data], { cwd: root, env });
  return {
    url: server.url,
    async stop() {
      await server.stop();
      rmSync(data, { recursive: true, force: true });
    },
  };
}

// ---- the browser ----

let browser;

before(async () => {
  createApp(packedApp, `file:${relative(packedApp, tarball)}`);
  // `npm install ../path/to/pkg` links the folder (a symlink), as npm does for directories.
  createApp(linkedApp, `file:${relative(linkedApp, pkgDir)}`, {
    "vite.config.js": LINKED_VITE_CONFIG(relative(linkedApp, pkgDir)),
    "no-allow.config.js": "export default {};\n",
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

/** Opens the app at `url` against `server`; collects console errors and the wasm's response. */
async function open(url, server) {
  const page = await browser.context.newPage();
  const problems = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  const wasm = page.waitForResponse((r) => /askwell_bg[^/]*\.wasm/.test(r.url()), { timeout: 20 * SECONDS });
  await page.goto(`${url}/?server=${encodeURIComponent(server)}`);
  return { page, problems, wasm: await wasm };
}

/**
 * The prompt's visible message with Bill's name. Not `getByText`: 100 ms after the prompt shows, its
 * screen-reader announcement (a visually hidden live region) holds the same words, and a text
 * locator would then match two elements.
 */
function promptMessage(page) {
  return page.locator('askwell-prompt [part="message"]', { hasText: "Want to know when Bill replies?" });
}

/** The prompt is on screen with Bill's name, and the funnel reached the server. */
async function assertWorks({ page, problems, wasm }, server) {
  assert.equal(wasm.status(), 200, wasm.url());
  assert.equal(wasm.headers()["content-type"], "application/wasm", wasm.url());
  const events = page.waitForResponse((r) => r.url() === `${server}/v1/events` && r.request().method() === "POST", {
    timeout: 20 * SECONDS,
  });
  events.catch(() => {}); // awaited below; only a failure before that leaves it unawaited
  await page.waitForSelector("askwell-prompt", { state: "attached", timeout: 15 * SECONDS });
  await promptMessage(page).waitFor({ timeout: 5 * SECONDS });
  assert.equal((await events).status(), 202, "the page's funnel events, cross-origin");
  assert.deepEqual(problems, []);
  await page.close();
}

/** Runs `body(server)` with askwell-server allowing `origin`, then stops both. */
async function withServer(origin, body) {
  const server = await askwellServer(origin);
  try {
    await body(server.url);
  } finally {
    await server.stop();
  }
}

const TIMEOUT = { timeout: 120 * SECONDS };

test("the packed package works in a fresh app's Vite dev server", TIMEOUT, async () => {
  const dev = await vite(packedApp, []);
  try {
    await withServer(dev.url, async (server) => assertWorks(await open(dev.url, server), server));
  } finally {
    await dev.stop();
  }
});

test("the packed package works after vite build, served by vite preview", TIMEOUT, async () => {
  run(process.execPath, [join(packedApp, "node_modules/vite/bin/vite.js"), "build"], packedApp, 120);
  const preview = await vite(packedApp, ["preview"]);
  try {
    await withServer(preview.url, async (server) => assertWorks(await open(preview.url, server), server));
  } finally {
    await preview.stop();
  }
});

test("a linked package folder is refused by Vite's dev server without server.fs.allow", TIMEOUT, async (t) => {
  const dev = await vite(linkedApp, ["--config", "no-allow.config.js"]);
  try {
    await withServer(dev.url, async (server) => {
      const { page, problems, wasm } = await open(dev.url, server);
      assert.equal(wasm.status(), 403, wasm.url());
      await page.waitForTimeout(500);
      t.diagnostic(`the browser shows: ${problems.join(" | ")}`);
      assert.ok(problems.some((p) => p.includes("403")), problems.join("\n"));
      assert.equal(await page.locator("askwell-prompt").count(), 0);
      await page.close();
    });
    t.diagnostic(`Vite prints: ${dev.output().match(/The request id .*/)?.[0] ?? "(nothing)"}`);
  } finally {
    await dev.stop();
  }
});

test("a linked package folder works in Vite's dev server with server.fs.allow", TIMEOUT, async () => {
  const dev = await vite(linkedApp, []);
  try {
    await withServer(dev.url, async (server) => assertWorks(await open(dev.url, server), server));
  } finally {
    await dev.stop();
  }
});

test("without ASKWELL_ALLOWED_ORIGINS the browser blocks the API on another origin; the page still runs", TIMEOUT, async (t) => {
  const dev = await vite(packedApp, []);
  try {
    await withServer(null, async (server) => {
      const { page, problems } = await open(dev.url, server);
      await promptMessage(page).waitFor({ timeout: 15 * SECONDS });
      // The funnel's first batch goes out 2 s after the prompt shows.
      const deadline = Date.now() + 15 * SECONDS;
      while (!problems.some((p) => p.includes("CORS")) && Date.now() < deadline) await page.waitForTimeout(250);
      t.diagnostic(`the browser shows: ${problems.join(" | ")}`);
      assert.ok(problems.some((p) => p.includes("blocked by CORS policy")), problems.join("\n"));
      await page.close();
    });
  } finally {
    await dev.stop();
  }
});
