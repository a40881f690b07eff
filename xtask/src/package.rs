//! Builds the npm package in `pkg/`: two wasm binaries from one crate (the page
//! module and the service-worker module), wasm-bindgen `--target web` glue,
//! TypeScript declarations, `wasm-opt -Oz`, package.json and README.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::root;
use crate::run::status;
use crate::size::{Entry, Report};

/// One wasm binary of the package.
struct Binary {
    /// Cargo feature selecting its exports.
    feature: &'static str,
    /// Base name of its files in pkg/.
    name: &'static str,
    /// Hand-written JS shipped with it (the worker's shim).
    extra_js: Option<&'static str>,
    /// Budget for wasm + JS, gzipped, in bytes.
    budget_gz: u64,
}

const BINARIES: [Binary; 2] = [
    Binary {
        feature: "page",
        name: "askwell",
        extra_js: None,
        budget_gz: 35_000,
    },
    Binary {
        feature: "sw",
        name: "askwell_sw",
        extra_js: Some("sw.js"),
        budget_gz: 10_000,
    },
];

/// wasm features rustc enables by default for wasm32-unknown-unknown; wasm-opt
/// must accept them (and may use no others, for browser compatibility).
const WASM_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Builds `pkg/` from scratch and returns its size report.
pub fn build() -> Result<Report, String> {
    let root = root();
    let pkg = root.join("pkg");
    if pkg.exists() {
        fs::remove_dir_all(&pkg).map_err(|err| format!("cannot clear pkg/: {err}"))?;
    }
    fs::create_dir_all(&pkg).map_err(|err| format!("cannot create pkg/: {err}"))?;
    let mut report = Report::default();
    for binary in &BINARIES {
        let wasm = compile(&root, binary)?;
        bindgen(&root, &pkg, &wasm, binary.name)?;
        optimize(&root, &pkg.join(format!("{}_bg.wasm", binary.name)))?;
        if let Some(extra) = binary.extra_js {
            copy(&root.join("js").join(extra), &pkg.join(extra))?;
            copy(
                &root.join("js").join(extra.replace(".js", ".d.ts")),
                &pkg.join(extra.replace(".js", ".d.ts")),
            )?;
        }
        if binary.feature == "sw" {
            copy(&root.join("js/sw-listen.js"), &pkg.join("sw-listen.js"))?;
        }
        report.entries.push(entry(&pkg, binary)?);
        if binary.feature == "sw" {
            report.entries.push(classic_worker(&root, &pkg, &wasm)?);
        }
    }
    // wasm-bindgen writes a `*` .gitignore; the root .gitignore already covers pkg/.
    let _ = fs::remove_file(pkg.join(".gitignore"));
    fs::write(pkg.join("package.json"), package_json()).map_err(|err| format!("pkg/package.json: {err}"))?;
    copy(&root.join("README.md"), &pkg.join("README.md"))?;
    Ok(report)
}

/// Compiles the crate for one feature and returns a copy of its `.wasm`
/// (the next build overwrites cargo's output file).
fn compile(root: &Path, binary: &Binary) -> Result<PathBuf, String> {
    status(Command::new("cargo").current_dir(root).args([
        "build",
        "--package",
        "askwell",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
        "--no-default-features",
        "--features",
        binary.feature,
    ]))?;
    let built = root.join("target/wasm32-unknown-unknown/wasm-release/askwell.wasm");
    let kept = root.join("target/askwell-wasm");
    fs::create_dir_all(&kept).map_err(|err| format!("{}: {err}", kept.display()))?;
    let copy_path = kept.join(format!("{}.wasm", binary.name));
    copy(&built, &copy_path)?;
    Ok(copy_path)
}

fn bindgen(root: &Path, pkg: &Path, wasm: &Path, name: &str) -> Result<(), String> {
    status(
        Command::new("wasm-bindgen")
            .current_dir(root)
            .args(["--target", "web", "--typescript", "--out-name", name, "--out-dir"])
            .arg(pkg)
            .arg(wasm),
    )
}

/// The worker for classic service workers (`importScripts`, e.g. Workbox's):
/// wasm-bindgen's `no-modules` glue and the classic shim in one script,
/// `sw-classic.js`, next to its own `askwell_sw_classic_bg.wasm`.
fn classic_worker(root: &Path, pkg: &Path, wasm: &Path) -> Result<Entry, String> {
    let out = root.join("target/askwell-classic");
    let _ = fs::remove_dir_all(&out);
    status(
        Command::new("wasm-bindgen")
            .current_dir(root)
            .args([
                "--target",
                "no-modules",
                "--no-typescript",
                "--out-name",
                "askwell_sw_classic",
                "--out-dir",
            ])
            .arg(&out)
            .arg(wasm),
    )?;
    let bg = pkg.join("askwell_sw_classic_bg.wasm");
    copy(&out.join("askwell_sw_classic_bg.wasm"), &bg)?;
    optimize(root, &bg)?;
    let glue = fs::read_to_string(out.join("askwell_sw_classic.js")).map_err(|e| format!("classic glue: {e}"))?;
    let read = |name: &str| fs::read_to_string(root.join("js").join(name)).map_err(|e| format!("js/{name}: {e}"));
    // A classic script cannot `export`: the shared listeners become a plain function.
    let listen = read("sw-listen.js")?.replace("export function listen", "function listen");
    let shim = read("sw-classic.js")?;
    let script = pkg.join("sw-classic.js");
    fs::write(&script, format!("{glue}\n{listen}\n{shim}")).map_err(|e| format!("{}: {e}", script.display()))?;
    Entry::measure("askwell_sw_classic", &[bg, script], 10_000)
}

fn optimize(root: &Path, wasm: &Path) -> Result<(), String> {
    let wasm_opt = root.join("node_modules/.bin/wasm-opt");
    status(
        Command::new(&wasm_opt)
            .args(["-Oz", "--strip-debug", "--strip-producers"])
            .args(WASM_FEATURES)
            .arg(wasm)
            .arg("-o")
            .arg(wasm),
    )
}

fn entry(pkg: &Path, binary: &Binary) -> Result<Entry, String> {
    let mut files = vec![
        pkg.join(format!("{}_bg.wasm", binary.name)),
        pkg.join(format!("{}.js", binary.name)),
    ];
    files.extend(binary.extra_js.map(|extra| pkg.join(extra)));
    if binary.feature == "sw" {
        files.push(pkg.join("sw-listen.js"));
    }
    Entry::measure(binary.name, &files, binary.budget_gz)
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|err| format!("cannot copy {} to {}: {err}", from.display(), to.display()))
}

/// package.json for the npm package; the version is the workspace's.
fn package_json() -> String {
    let version = env!("CARGO_PKG_VERSION");
    format!(
        r#"{{
  "name": "askwell",
  "version": "{version}",
  "description": "Ask for notification permission at the right moment, in the right way, then deliver Web Push people want.",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "./askwell.js",
  "types": "./askwell.d.ts",
  "exports": {{
    ".": {{ "types": "./askwell.d.ts", "default": "./askwell.js" }},
    "./sw": {{ "types": "./sw.d.ts", "default": "./sw.js" }},
    "./sw-classic": "./sw-classic.js",
    "./sw-classic.js": "./sw-classic.js",
    "./askwell_bg.wasm": "./askwell_bg.wasm",
    "./askwell_sw_bg.wasm": "./askwell_sw_bg.wasm",
    "./askwell_sw_classic_bg.wasm": "./askwell_sw_classic_bg.wasm"
  }},
  "files": [
    "askwell.js", "askwell.d.ts", "askwell_bg.wasm", "askwell_bg.wasm.d.ts",
    "askwell_sw.js", "askwell_sw.d.ts", "askwell_sw_bg.wasm", "askwell_sw_bg.wasm.d.ts",
    "sw.js", "sw.d.ts", "sw-listen.js", "sw-classic.js", "askwell_sw_classic_bg.wasm", "README.md"
  ],
  "sideEffects": ["./sw.js"]
}}
"#
    )
}
