//! Builds the npm package in `pkg/`: two wasm binaries from one crate (the page
//! module and the service-worker module), wasm-bindgen `--target web` glue,
//! TypeScript declarations, `wasm-opt -Oz`, short import and export names
//! (see `names`), package.json and README.

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
pub(crate) const WASM_FEATURES: [&str; 6] = [
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
        reference_disposable_lib(&pkg.join(format!("{}.d.ts", binary.name)))?;
        optimize(&root, &pkg.join(format!("{}_bg.wasm", binary.name)))?;
        crate::names::minify(
            &root,
            &pkg.join(format!("{}_bg.wasm", binary.name)),
            &pkg.join(format!("{}.js", binary.name)),
            Some(&pkg.join(format!("{}_bg.wasm.d.ts", binary.name))),
        )?;
        minify(&root, &pkg.join(format!("{}.js", binary.name)), Script::Module)?;
        if let Some(extra) = binary.extra_js {
            copy(&root.join("js").join(extra), &pkg.join(extra))?;
            minify(&root, &pkg.join(extra), Script::Module)?;
            copy(
                &root.join("js").join(extra.replace(".js", ".d.ts")),
                &pkg.join(extra.replace(".js", ".d.ts")),
            )?;
        }
        if binary.feature == "sw" {
            copy(&root.join("js/sw-listen.js"), &pkg.join("sw-listen.js"))?;
            minify(&root, &pkg.join("sw-listen.js"), Script::Module)?;
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
///
/// Built with nightly's `-Z build-std` and `-C panic=immediate-abort` when the
/// nightly toolchain has `rust-src` and the wasm32 target (`cargo xtask setup`
/// adds them): the standard library is then compiled for size with the rest
/// and every panic is a bare trap, without its formatting and location
/// machinery — 9 kB gz less for the page module (95.4 → 86.4 kB for the wasm).
/// Askwell's code never panics by design (no `unwrap()` in library code), so
/// a panic message could never reach anyone anyway. Without that toolchain
/// the build falls back to stable, with the same code and a larger binary.
fn compile(root: &Path, binary: &Binary) -> Result<PathBuf, String> {
    let built = match compile_with_build_std(root, binary) {
        Ok(built) => built,
        Err(err) => {
            eprintln!("note: size-optimised nightly build unavailable ({err}); building on stable");
            compile_on_stable(root, binary)?
        }
    };
    let kept = root.join("target/askwell-wasm");
    fs::create_dir_all(&kept).map_err(|err| format!("{}: {err}", kept.display()))?;
    let copy_path = kept.join(format!("{}.wasm", binary.name));
    copy(&built, &copy_path)?;
    Ok(copy_path)
}

/// Cargo arguments shared by both builds. `rustc --crate-type cdylib`: the
/// crate's manifest lists only `rlib`, so askwell-server (which depends on
/// it) does not build a native cdylib it never uses; the wasm is made here.
fn build_args(binary: &Binary) -> [&'static str; 14] {
    [
        "rustc",
        "--package",
        "askwell",
        "--lib",
        "--crate-type",
        "cdylib",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "wasm-release",
        "--no-default-features",
        "--features",
        binary.feature,
        "--quiet",
    ]
}

fn compile_with_build_std(root: &Path, binary: &Binary) -> Result<PathBuf, String> {
    // Its own target dir: the flags change every crate's build.
    let target = root.join("target/wasm-build-std");
    status(
        Command::new("cargo")
            .current_dir(root)
            .arg("+nightly")
            .args(build_args(binary))
            .args(["-Z", "build-std=std,panic_abort"])
            .arg("--target-dir")
            .arg(&target)
            .env("RUSTFLAGS", "-Zunstable-options -Cpanic=immediate-abort"),
    )?;
    Ok(target.join("wasm32-unknown-unknown/wasm-release/askwell.wasm"))
}

fn compile_on_stable(root: &Path, binary: &Binary) -> Result<PathBuf, String> {
    status(Command::new("cargo").current_dir(root).args(build_args(binary)))?;
    Ok(root.join("target/wasm32-unknown-unknown/wasm-release/askwell.wasm"))
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

/// Pulls TypeScript's `esnext.disposable` lib into a wasm-bindgen `.d.ts`
/// that uses `Symbol.dispose`: wasm-bindgen declares `[Symbol.dispose]()` on
/// every exported class, and TypeScript (5.9) has that symbol only in
/// `esnext.disposable`, not in `es2022`–`es2024` or `dom`. Without the
/// reference, an app with `skipLibCheck: false` and a common `lib` (e.g.
/// `["es2022", "dom"]`) fails on the package (TS2550). @types/node does the
/// same; the lib adds only the disposable declarations to the app.
fn reference_disposable_lib(dts: &Path) -> Result<(), String> {
    let text = fs::read_to_string(dts).map_err(|err| format!("{}: {err}", dts.display()))?;
    match with_disposable_reference(&text) {
        Some(text) => fs::write(dts, text).map_err(|err| format!("{}: {err}", dts.display())),
        None => Ok(()),
    }
}

const DISPOSABLE_REFERENCE: &str = "/// <reference lib=\"esnext.disposable\" />\n";

/// `text` with the reference as its first line (a triple-slash directive
/// counts only before any statement), or `None` if it needs none or has it.
fn with_disposable_reference(text: &str) -> Option<String> {
    (text.contains("Symbol.dispose") && !text.starts_with(DISPOSABLE_REFERENCE))
        .then(|| format!("{DISPOSABLE_REFERENCE}{text}"))
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
    crate::names::minify(root, &bg, &out.join("askwell_sw_classic.js"), None)?;
    let glue = fs::read_to_string(out.join("askwell_sw_classic.js")).map_err(|e| format!("classic glue: {e}"))?;
    let read = |name: &str| fs::read_to_string(root.join("js").join(name)).map_err(|e| format!("js/{name}: {e}"));
    // A classic script cannot `export`: the shared listeners become a plain function.
    let listen = read("sw-listen.js")?.replace("export function listen", "function listen");
    let shim = read("sw-classic.js")?;
    let script = pkg.join("sw-classic.js");
    fs::write(&script, format!("{glue}\n{listen}\n{shim}")).map_err(|e| format!("{}: {e}", script.display()))?;
    minify(root, &script, Script::Classic)?;
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

/// How a shipped JS file is loaded: an ES module (its exports keep their
/// names) or a classic script (`importScripts`; its globals keep theirs).
#[derive(Clone, Copy)]
enum Script {
    Module,
    Classic,
}

/// Minifies a shipped JS file in place with terser (pinned in package.json):
/// the glue and shims are about a third smaller gzipped (page glue 9.3 ->
/// 6.0 kB). The sources stay readable in js/ and in wasm-bindgen's output.
fn minify(root: &Path, js: &Path, script: Script) -> Result<(), String> {
    let terser = root.join("node_modules/.bin/terser");
    let mut cmd = Command::new(&terser);
    cmd.arg(js).args(["--compress", "--mangle", "--ecma", "2020"]);
    if let Script::Module = script {
        cmd.arg("--module");
    }
    status(cmd.arg("-o").arg(js))
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

#[cfg(test)]
mod tests {
    use super::with_disposable_reference;

    #[test]
    fn declarations_using_symbol_dispose_reference_the_disposable_lib_once() {
        let generated = "/* tslint:disable */\nexport class Askwell {\n    [Symbol.dispose](): void;\n}\n";
        let fixed = with_disposable_reference(generated).expect("needs the lib");
        assert!(fixed.starts_with("/// <reference lib=\"esnext.disposable\" />\n/* tslint:disable */"));
        assert_eq!(with_disposable_reference(&fixed), None, "added once");
        assert_eq!(with_disposable_reference("export function on_push(): void;\n"), None);
    }
}
