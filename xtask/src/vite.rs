//! The test command's fresh-Vite-app step: packs the built `pkg/` as npm
//! would publish it (`npm pack`), then `tests/e2e-vite/` installs it into new
//! apps under `target/`, runs Vite's dev server and a production build in
//! headless Chromium against an askwell-server on another origin, and checks
//! the linked-folder install (`npm install ../pkg`, which Vite's dev server
//! refuses without `server.fs.allow`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{output, status};
use crate::tally::Tally;

const STEP: &str = "fresh Vite app (npm pack, vite dev, vite build + preview, linked folder) in headless Chromium";

/// The whole step may take this long (it takes ~20 s): `timeout` then
/// stops node and everything it started (one process group), so a hung dev
/// server or browser cannot hold the test command.
const LIMIT_SECONDS: &str = "600";

/// Adds the step to `tally` (pkg/ must be built); skipped, with a message,
/// where node is missing.
pub(crate) fn step(root: &Path, tally: &mut Tally) {
    if output(Command::new("node").arg("--version")).is_none() {
        println!("\n==> {STEP}\nskipped: `node` is not on PATH (Node.js ≥ 20.19 runs this step)");
        return;
    }
    let tarball = match pack(root) {
        Ok(tarball) => tarball,
        Err(err) => return tally.fail(STEP, &err),
    };
    if let Err(err) = crate::server::build(root) {
        return tally.fail(STEP, &err);
    }
    tally.step(
        STEP,
        Command::new("timeout")
            .current_dir(root)
            .args([
                "--kill-after=10",
                LIMIT_SECONDS,
                "node",
                "--test",
                "--test-reporter=spec",
            ])
            .arg("tests/e2e-vite/")
            .env("ASKWELL_PKG_TARBALL", &tarball)
            .env("ASKWELL_PKG_DIR", root.join("pkg"))
            .env("ASKWELL_VITE_WORK", root.join("target"))
            .env("ASKWELL_SERVER_BIN", root.join("target/debug/askwell-server")),
    );
}

/// `npm pack ./pkg` into an empty `target/vite-pack/`; returns the tarball.
fn pack(root: &Path) -> Result<PathBuf, String> {
    let out = root.join("target/vite-pack");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).map_err(|err| format!("{}: {err}", out.display()))?;
    status(
        Command::new("npm")
            .current_dir(root)
            .args(["pack", "./pkg", "--loglevel=warn", "--pack-destination"])
            .arg(&out),
    )?;
    let entries = fs::read_dir(&out).map_err(|err| format!("{}: {err}", out.display()))?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "tgz"))
        .ok_or_else(|| format!("npm pack wrote no tarball into {}", out.display()))
}
