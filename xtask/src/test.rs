//! `cargo xtask test`: every check and test layer, then the size report and a
//! plain `N passed, N failed` line. A failing step does not stop the others.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::run::tee;
use crate::{package, root, setup};

#[path = "fuzz.rs"]
mod fuzz;

/// Passed/failed counts over all steps.
#[derive(Default)]
pub(crate) struct Tally {
    passed: u64,
    failed: u64,
    failed_steps: Vec<String>,
}

impl Tally {
    /// Runs one step and adds its test counts (or 1 for a check without counts).
    pub(crate) fn step(&mut self, name: &str, cmd: &mut Command) {
        println!("\n==> {name}");
        let (ok, output) = tee(cmd).unwrap_or_else(|err| (false, err));
        let (passed, failed) = count_results(&output);
        let counted = passed + failed > 0;
        self.passed += if counted { passed } else { u64::from(ok) };
        self.failed += if counted { failed } else { u64::from(!ok) };
        if !ok && counted && failed == 0 {
            self.failed += 1; // exited non-zero beyond its counted tests (e.g. a build error)
        }
        if !ok {
            self.failed_steps.push(name.to_owned());
        }
    }

    pub(crate) fn fail(&mut self, name: &str, err: &str) {
        println!("\n==> {name}\nerror: {err}");
        self.failed += 1;
        self.failed_steps.push(name.to_owned());
    }

    /// Prints the failed steps and the `N passed, N failed` line; fails if any failed.
    pub(crate) fn finish(self) -> Result<(), String> {
        if !self.failed_steps.is_empty() {
            println!("\nfailed steps: {}", self.failed_steps.join(", "));
        }
        println!("\n{} passed, {} failed", self.passed, self.failed);
        if self.failed == 0 {
            Ok(())
        } else {
            Err("some checks or tests failed".into())
        }
    }
}

/// Sums libtest / wasm-bindgen-test (`test result: … N passed; M failed`) and
/// node's test runner (`ℹ pass N`, `ℹ fail M`) counts.
fn count_results(output: &str) -> (u64, u64) {
    let (mut passed, mut failed) = (0, 0);
    for line in output.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += number_before(rest, " passed");
            failed += number_before(rest, " failed");
        } else if let Some(n) = line.strip_prefix("ℹ pass ") {
            passed += n.trim().parse().unwrap_or(0);
        } else if let Some(n) = line.strip_prefix("ℹ fail ") {
            failed += n.trim().parse().unwrap_or(0);
        }
    }
    (passed, failed)
}

fn number_before(text: &str, label: &str) -> u64 {
    text.find(label)
        .and_then(|end| text[..end].rsplit([' ', '.', ';']).next()?.parse().ok())
        .unwrap_or(0)
}

fn cargo(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root).args(args);
    cmd
}

/// The askwell crate for wasm32 with both binaries' features, and its browser
/// suites (the core's unit tests run natively).
const WASM_SUITES: [&str; 8] = [
    "--package",
    "askwell",
    "--target",
    "wasm32-unknown-unknown",
    "--features",
    "page,sw",
    "--test=browser",
    "--test=service_worker",
];

fn wasm_cargo(root: &Path, command: &str, extra: &[&str]) -> Command {
    let mut cmd = cargo(root, &[command]);
    cmd.args(WASM_SUITES).args(extra);
    // The runner's limit is for a whole suite (default 20 s); the browser
    // suite waits for real timers (send delays, backoff) for about 30 s.
    cmd.env("WASM_BINDGEN_TEST_TIMEOUT", "180");
    cmd
}

/// Runs everything; fails if any step failed.
pub fn run() -> Result<(), String> {
    setup::ensure(setup::Needs::TEST)?;
    let root = root();
    let mut tally = Tally::default();
    tally.step("rustfmt", &mut cargo(&root, &["fmt", "--all", "--check"]));
    tally.step(
        "clippy (native)",
        &mut cargo(
            &root,
            &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
        ),
    );
    tally.step(
        "clippy (wasm32)",
        &mut wasm_cargo(&root, "clippy", &["--lib", "--", "-D", "warnings"]),
    );
    tally.step(
        "native tests (core, server, xtask, doc tests)",
        &mut cargo(&root, &["test", "--workspace"]),
    );
    fuzz::smoke(&root, &mut tally);
    match crate::postgres::Cluster::start() {
        Ok(cluster) => tally.step(
            "server tests on PostgreSQL (same suites, plus two processes sharing a fan-out)",
            cargo(
                &root,
                &[
                    "test",
                    "--package",
                    "askwell-server",
                    "--test=api",
                    "--test=delivery",
                    "--test=funnel",
                    "--test=load",
                    "--test=postgres",
                    "--test=privacy",
                ],
            )
            .env("ASKWELL_TEST_POSTGRES_URL", &cluster.url),
        ),
        Err(err) => tally.fail("server tests on PostgreSQL", &err),
    }
    crate::schemathesis::step(&root, &mut tally);
    tally.step(
        "browser tests in headless Chromium",
        wasm_cargo(&root, "test", &[]).env("CHROMEDRIVER", "/usr/bin/chromedriver"),
    );
    tally.step(
        "browser tests in headless Firefox",
        wasm_cargo(&root, "test", &[]).env("GECKODRIVER", "geckodriver"),
    );
    let report = match package::build() {
        Ok(report) => Some(report),
        Err(err) => {
            tally.fail("npm package build", &err);
            None
        }
    };
    if report.is_some() {
        for config in ["tests/types/tsconfig.json", "tests/types/tsconfig.worker.json"] {
            tally.step(
                &format!("TypeScript declarations of pkg/ ({config})"),
                Command::new("node")
                    .current_dir(&root)
                    .args(["node_modules/typescript/bin/tsc", "-p", config]),
            );
        }
        end_to_end(&root, &mut tally);
        crate::vite::step(&root, &mut tally);
    }
    for (what, example, args) in [
        ("delivery benchmarks", "delivery_bench", &["100000"][..]),
        (
            "funnel benchmarks (ingestion rate, stats over 1M events)",
            "funnel_bench",
            &[][..],
        ),
    ] {
        let mut command = cargo(
            &root,
            &[
                "run",
                "--release",
                "--quiet",
                "--package",
                "askwell-server",
                "--example",
                example,
                "--",
            ],
        );
        tally.step(
            &format!("{what} (release build; printed, not asserted)"),
            command.args(args),
        );
    }
    tally.step(
        "load test (release build: 16 concurrent clients on SQLite; throughput and p99 printed)",
        &mut cargo(
            &root,
            &[
                "test",
                "--release",
                "--package",
                "askwell-server",
                "--test",
                "load",
                "--",
                "--nocapture",
                // One test at a time: the printed numbers are each test's own.
                "--test-threads=1",
            ],
        ),
    );
    if let Some(report) = report {
        report.print();
    }
    tally.finish()
}

/// Starts the demo server on a free port with a fresh data dir and drives it
/// with the end-to-end tests in `tests/e2e` (Playwright + Debian Chromium).
fn end_to_end(root: &Path, tally: &mut Tally) {
    if let Err(err) = build_server(root) {
        return tally.fail("end-to-end", &err);
    }
    let data = root.join("target/e2e-data");
    let _ = std::fs::remove_dir_all(&data);
    let envs = [
        ("ASKWELL_ADMIN_TOKEN", crate::demo::DEMO_ADMIN_TOKEN),
        ("ASKWELL_IDENTITY_SECRET", crate::demo::DEMO_IDENTITY_SECRET),
        // The Firefox end-to-end test subscribes through a local push service
        // on http://127.0.0.1 (logged loudly by the server; test runs only).
        ("ASKWELL_ALLOW_INSECURE_ENDPOINTS", "1"),
    ];
    let site = ["--site", "www", "--pkg", "pkg"];
    let (mut server, url) = match start_server(root, &data, &site, &envs) {
        Ok(started) => started,
        Err(err) => return tally.fail("end-to-end", &err),
    };
    let output_dir = root.join("test-output");
    let _ = std::fs::create_dir_all(&output_dir);
    tally.step(
        "end-to-end (demo in headless Chromium and Firefox)",
        Command::new("node")
            .current_dir(root)
            .args(["--test", "--test-reporter=spec", "tests/e2e/"])
            .env("ASKWELL_URL", &url)
            .env("ASKWELL_TEST_OUTPUT", &output_dir),
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// Builds the debug askwell-server that [`start_server`] runs.
pub(crate) fn build_server(root: &Path) -> Result<(), String> {
    let built = Command::new("cargo")
        .current_dir(root)
        .args(["build", "--quiet", "--package", "askwell-server"])
        .status();
    if built.is_ok_and(|s| s.success()) {
        Ok(())
    } else {
        Err("cannot build askwell-server".into())
    }
}

/// Runs askwell-server on an ephemeral port over `data` with extra `args`
/// and `envs`, and waits for its "listening" line.
pub(crate) fn start_server(
    root: &Path,
    data: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> Result<(Child, String), String> {
    let mut child = Command::new(root.join("target/debug/askwell-server"))
        .current_dir(root)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("ASKWELL_VAPID_SUBJECT", crate::demo::DEMO_SUBJECT)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start askwell-server: {err}"))?;
    let stdout = child.stdout.take().ok_or("askwell-server has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = lines.by_ref().map_while(Result::ok).find_map(|line| {
        line.split_once("listening on ")
            .map(|(_, url)| url.trim_end_matches('/').to_owned())
    });
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    match url {
        Some(url) => Ok((child, url)),
        None => {
            let _ = child.kill();
            Err("askwell-server exited before listening".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::count_results;

    /// What an app's strict tsconfig may set; the package must compile under it.
    const STRICT_TSC: [&str; 5] = [
        r#""skipLibCheck": false"#,
        r#""lib": ["es2022", "dom", "dom.iterable"]"#,
        r#""exactOptionalPropertyTypes": true"#,
        r#""noUncheckedIndexedAccess": true"#,
        r#""strict": true"#,
    ];

    #[test]
    fn both_type_checks_of_the_package_use_a_strict_apps_settings() {
        let read = |name: &str| std::fs::read_to_string(crate::root().join("tests/types").join(name)).expect(name);
        let page = read("tsconfig.json");
        for setting in STRICT_TSC {
            assert!(page.contains(setting), "tests/types/tsconfig.json lacks {setting}");
        }
        // The worker's config inherits all of them and changes only the lib.
        let worker = read("tsconfig.worker.json");
        assert!(worker.contains(r#""extends": "./tsconfig.json""#));
        let options = worker.split(r#""compilerOptions":"#).nth(1).unwrap_or_default();
        let overridden = options.split('}').next().unwrap_or_default();
        assert_eq!(overridden.matches("\":").count(), 1, "only lib: {overridden}");
        assert!(overridden.contains(r#""lib""#), "{overridden}");
    }

    #[test]
    fn counts_libtest_wasm_bindgen_test_and_node_results() {
        let output = "test result: ok. 12 passed; 0 failed; 0 ignored\n\
                      test result: FAILED. 3 passed; 2 failed; 0 ignored\n\
                      ℹ pass 4\nℹ fail 1\n";
        assert_eq!(count_results(output), (19, 3));
    }
}
