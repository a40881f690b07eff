//! Installs what a command needs and is missing; fast when all is present.
//!
//! Only package registries are used (rustup's target, crates.io, Debian, npm,
//! PyPI for schemathesis in `schemathesis.rs`):
//! nothing downloads browsers or binaries from anywhere else.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::root;
use crate::run::{output, status};

/// geckodriver from crates.io, pinned for repeatable Firefox runs.
const GECKODRIVER_VERSION: &str = "0.37.1";

/// What a command needs installed.
#[derive(Clone, Copy)]
pub struct Needs {
    browsers: bool,
}

impl Needs {
    /// Building the package and running the demo.
    pub const BUILD: Needs = Needs { browsers: false };
    /// Everything the test command runs, browsers included.
    pub const TEST: Needs = Needs { browsers: true };
}

/// Installs whatever `needs` lists that is missing.
pub fn ensure(needs: Needs) -> Result<(), String> {
    ensure_debian_packages(needs)?;
    ensure_rust_components()?;
    ensure_wasm_target()?;
    ensure_size_toolchain();
    ensure_wasm_bindgen()?;
    if needs.browsers {
        ensure_geckodriver()?;
    }
    ensure_npm_packages()
}

fn ensure_rust_components() -> Result<(), String> {
    let have = |tool: &str| output(Command::new("cargo").args([tool, "--version"])).is_some();
    if have("fmt") && have("clippy") {
        return Ok(());
    }
    status(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))
}

fn ensure_wasm_target() -> Result<(), String> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|t| t.trim() == "wasm32-unknown-unknown") {
        return Ok(());
    }
    status(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

/// The nightly toolchain with `rust-src` and the wasm32 target, for the
/// package's size-optimised build (see `package::compile`). Best effort: the
/// package falls back to a stable build without it.
fn ensure_size_toolchain() {
    let nightly = |args: &[&str]| output(Command::new("rustup").args(args).args(["--toolchain", "nightly"]));
    let components = nightly(&["component", "list", "--installed"]).unwrap_or_default();
    if components.contains("rust-src") && components.contains("rust-std-wasm32-unknown-unknown") {
        return;
    }
    let installed = output(Command::new("cargo").args(["+nightly", "--version"])).is_some()
        || status(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"])).is_ok();
    let added = installed
        && status(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"])).is_ok()
        && status(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown", "--toolchain", "nightly"]))
            .is_ok();
    if !added {
        eprintln!("note: no nightly rust-src/wasm32: the package is built on stable (larger)");
    }
}

/// The CLI must be exactly the version of the `wasm-bindgen` crate in Cargo.lock.
fn ensure_wasm_bindgen() -> Result<(), String> {
    let wanted = locked_version("wasm-bindgen")?;
    let have = output(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(wanted.as_str()) {
        return Ok(());
    }
    eprintln!("installing wasm-bindgen-cli {wanted} (matches Cargo.lock; takes several minutes once)");
    // No --locked: the registry lacks some versions the CLI's own lockfile pins.
    status(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", &wanted]))
}

fn ensure_geckodriver() -> Result<(), String> {
    let have = output(Command::new("geckodriver").arg("--version")).unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(GECKODRIVER_VERSION) {
        return Ok(());
    }
    status(Command::new("cargo").args(["install", "geckodriver", "--version", GECKODRIVER_VERSION]))
}

fn ensure_debian_packages(needs: Needs) -> Result<(), String> {
    let mut wanted = vec!["nodejs", "npm", "pkg-config", "libssl-dev"];
    if needs.browsers {
        // python3-venv: schemathesis (PyPI) for the API contract step.
        wanted.extend([
            "chromium",
            "chromium-driver",
            "firefox-esr",
            "postgresql",
            "python3",
            "python3-venv",
        ]);
    }
    let missing: Vec<&str> = wanted.into_iter().filter(|p| !debian_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        return Err(format!(
            "missing system packages {missing:?}: install them with your package manager"
        ));
    }
    eprintln!("installing Debian packages: {}", missing.join(" "));
    status(Command::new("apt-get").args(["update", "-q"]))?;
    status(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn debian_installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|s| s.contains("install ok installed"))
        // Node may come from elsewhere than Debian (nvm, NodeSource): accept it on PATH.
        || (matches!(package, "nodejs" | "npm") && output(Command::new(package_binary(package)).arg("--version")).is_some())
}

fn package_binary(package: &str) -> &str {
    if package == "nodejs" {
        "node"
    } else {
        package
    }
}

/// `npm ci` when node_modules is missing or older than package-lock.json.
fn ensure_npm_packages() -> Result<(), String> {
    let root = root();
    let lock = root.join("package-lock.json");
    let installed = root.join("node_modules/.package-lock.json");
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if matches!((modified(&installed), modified(&lock)), (Some(have), Some(want)) if have >= want) {
        return Ok(());
    }
    status(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&root),
    )
}

/// The version of `package` recorded in Cargo.lock.
pub fn locked_version(package: &str) -> Result<String, String> {
    let lock = fs::read_to_string(root().join("Cargo.lock")).map_err(|err| format!("Cargo.lock: {err}"))?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .ok_or_else(|| format!("{package} is not in Cargo.lock"))?
        + needle.len();
    let end = lock[start..].find('"').ok_or("Cargo.lock is malformed")?;
    Ok(lock[start..start + end].to_owned())
}
