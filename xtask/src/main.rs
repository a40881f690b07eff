//! `cargo xtask <command>`: Askwell's build, demo and test tooling.
//!
//! Every command first installs what it needs and is missing (the rustup
//! target, the wasm-bindgen CLI matching Cargo.lock, Debian browsers, pinned
//! npm tools), so the two README commands work on a fresh machine.

mod demo;
mod disk;
mod fuzz;
mod names;
mod package;
mod postgres;
mod run;
mod schemathesis;
mod server;
mod setup;
mod size;
mod steps;
mod tally;
mod test;
mod vite;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo [--bind ADDR]   build everything and serve the demo (default 127.0.0.1:8080)
  test                 run every check and test; ends with a size report and a summary
  test STEP…           only those steps of test, in its order, with the setup they need
  test --list          the step names and what each runs
  api-contract         the same as `test api-contract` (schemathesis against server/openapi.yaml)
  vite-app             the same as `test vite-app` (a fresh Vite app with the package; builds pkg/)
  simulate [--server URL]
                       post a synthetic population to a running demo, so its
                       dashboard (/dashboard.html) has data (labelled synthetic)
  build                build the npm package into pkg/ and print its size report
  setup [--browsers]   install missing tools only";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        // Single steps under their own names, as the README calls them.
        Some(step @ ("api-contract" | "vite-app")) => test::run(&[step.to_owned()]),
        Some("simulate") => demo::simulate(&args[1..]),
        Some("build") => setup::ensure(setup::Needs::BUILD)
            .and_then(|()| package::build())
            .map(|report| report.print()),
        Some("setup") => setup::ensure(if args.iter().any(|a| a == "--browsers") {
            setup::Needs::TEST
        } else {
            setup::Needs::BUILD
        }),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of `xtask/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
