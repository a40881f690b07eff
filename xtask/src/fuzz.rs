//! The test command's fuzz smoke: every cargo-fuzz target in `fuzz/` for a
//! few seconds from its committed inputs (the minimised corpus in
//! `fuzz/corpus/<target>` and the hand-written seeds in `fuzz/seeds/<target>`).
//!
//! Built without a sanitizer (the code is safe Rust; measured here: 4-5x the
//! executions of an AddressSanitizer build, and about half its build time)
//! but with cargo-fuzz's default debug assertions and overflow checks, into
//! `target/fuzz`, apart from the ASan builds in `fuzz/target` that longer
//! runs use. New inputs go to `target/fuzz/corpus`, so the committed corpus
//! changes only when someone minimises into it (CONTRIBUTING.md, Fuzzing).

use std::path::Path;
use std::process::Command;

use crate::run::{describe, output, status};
use crate::tally::Tally;

/// cargo-fuzz from crates.io, pinned.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// The targets in fuzz/fuzz_targets/.
const TARGETS: [&str; 5] = ["config", "value_json", "payload", "events", "subscription"];
/// Fuzzing time per target; with the build, the step stays within ~6 minutes
/// on two cores.
const SECONDS: u32 = 20;

/// Builds the targets, then runs each for [`SECONDS`]; each target is one
/// pass or one failure (a crash, a failed assertion, a timeout or no build).
pub(crate) fn smoke(root: &Path, tally: &mut Tally) {
    if let Err(err) = ensure_tools() {
        return tally.fail("fuzz targets: cargo-fuzz and the nightly toolchain", &err);
    }
    println!(
        "\n==> fuzz targets ({} × {SECONDS} s, cargo-fuzz {CARGO_FUZZ_VERSION})",
        TARGETS.len()
    );
    let built = status(&mut cargo_fuzz(root, &["build"]));
    for target in TARGETS {
        let name = format!("fuzz {target}");
        match built.clone().and_then(|()| run(root, target)) {
            Ok(summary) => tally.pass(&name, &summary),
            Err(err) => tally.fail(&name, &err),
        }
    }
}

fn cargo_fuzz(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root).args(["+nightly", "fuzz"]).args(args).args([
        "--sanitizer",
        "none",
        "--target-dir",
        "target/fuzz",
    ]);
    cmd
}

/// Runs one target; `Ok` is its executions line, `Err` the end of its output.
fn run(root: &Path, target: &str) -> Result<String, String> {
    // Starts from the committed inputs only: what earlier runs found is dropped.
    let scratch = root.join("target/fuzz/corpus").join(target);
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|err| format!("{}: {err}", scratch.display()))?;
    let mut cmd = cargo_fuzz(root, &["run", target]);
    let committed = ["fuzz/corpus", "fuzz/seeds"].map(|dir| Path::new(dir).join(target));
    cmd.arg(&scratch).args(committed).args([
        "--",
        &format!("-max_total_time={SECONDS}"),
        "-max_len=8192",
        "-timeout=10",
        "-print_final_stats=1",
    ]);
    let shown = describe(&cmd);
    eprintln!("$ {shown}");
    let out = cmd.output().map_err(|err| format!("cannot run `{shown}`: {err}"))?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        return Err(format!("`{shown}` failed ({}):\n{tail}", out.status));
    }
    let stat = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(format!(
        "{} executions in {SECONDS} s ({}/s), {} new inputs, no failure",
        stat("stat::number_of_executed_units:"),
        stat("stat::average_exec_per_sec:"),
        stat("stat::new_units_added:"),
    ))
}

/// The nightly toolchain (cargo-fuzz's `-Z` flags) and the pinned cargo-fuzz.
fn ensure_tools() -> Result<(), String> {
    if output(Command::new("cargo").args(["+nightly", "--version"])).is_none() {
        status(Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]))?;
    }
    let have = output(Command::new("cargo").args(["fuzz", "--version"])).unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(CARGO_FUZZ_VERSION) {
        return Ok(());
    }
    status(Command::new("cargo").args(["install", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION, "--locked"]))
}
