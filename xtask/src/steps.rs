//! How each step of `cargo xtask test` runs (the table that orders and names
//! them is in `test.rs`). Each step brings its own setup — a PostgreSQL
//! cluster, a demo server, pkg/ — so it also works when run alone.

use std::path::Path;
use std::process::Command;

use crate::server::{self, Server};
use crate::test::Run;

/// The server suites that read `ASKWELL_TEST_POSTGRES_URL`
/// (`server/tests/support`'s `fresh_store`) and so run again on PostgreSQL;
/// `postgres` adds two processes sharing a fan-out.
const POSTGRES_SUITES: [&str; 17] = [
    "--test=api",
    "--test=delivery",
    "--test=forward",
    "--test=funnel",
    "--test=journeys",
    "--test=load",
    "--test=personal",
    "--test=rollout",
    "--test=policy",
    "--test=postgres",
    "--test=preferences",
    "--test=privacy",
    "--test=races",
    "--test=scheduling",
    "--test=segments",
    "--test=store_parity",
    "--test=users",
];

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

fn cargo(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root).args(args);
    cmd
}

fn wasm_cargo(root: &Path, command: &str, extra: &[&str]) -> Command {
    let mut cmd = cargo(root, &[command]);
    cmd.args(WASM_SUITES).args(extra);
    // The runner's limit is for a whole suite (default 20 s); the browser
    // suite waits for real timers (send delays, backoff) for about 30 s.
    cmd.env("WASM_BINDGEN_TEST_TIMEOUT", "180");
    cmd
}

pub(crate) fn rustfmt(run: &mut Run) {
    run.tally
        .step("rustfmt", &mut cargo(&run.root, &["fmt", "--all", "--check"]));
}

pub(crate) fn clippy_native(run: &mut Run) {
    let args = ["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"];
    run.tally.step("clippy (native)", &mut cargo(&run.root, &args));
}

pub(crate) fn clippy_wasm(run: &mut Run) {
    let mut cmd = wasm_cargo(&run.root, "clippy", &["--lib", "--", "-D", "warnings"]);
    run.tally.step("clippy (wasm32)", &mut cmd);
}

pub(crate) fn native_tests(run: &mut Run) {
    let mut cmd = cargo(&run.root, &["test", "--workspace"]);
    run.tally
        .step("native tests (core, server, xtask, doc tests)", &mut cmd);
}

pub(crate) fn fuzz(run: &mut Run) {
    crate::fuzz::smoke(&run.root, &mut run.tally);
}

/// The same server suites against a throwaway local cluster, which lives
/// (and is removed) with this step.
pub(crate) fn postgres(run: &mut Run) {
    let cluster = match crate::postgres::Cluster::start() {
        Ok(cluster) => cluster,
        Err(err) => return run.tally.fail("server tests on PostgreSQL", &err),
    };
    // `--workspace`, as the native step, so these suites reuse its build:
    // `--package askwell-server` resolves other features and rebuilt ~30
    // crates and every suite a second time.
    let mut cmd = cargo(&run.root, &["test", "--workspace"]);
    cmd.args(POSTGRES_SUITES).env("ASKWELL_TEST_POSTGRES_URL", &cluster.url);
    let name = "server tests on PostgreSQL (same suites, plus two processes sharing a fan-out)";
    run.tally.step(name, &mut cmd);
}

pub(crate) fn api_contract(run: &mut Run) {
    crate::schemathesis::step(&run.root, &mut run.tally);
}

pub(crate) fn chromium(run: &mut Run) {
    let mut cmd = wasm_cargo(&run.root, "test", &[]);
    cmd.env("CHROMEDRIVER", "/usr/bin/chromedriver");
    run.tally.step("browser tests in headless Chromium", &mut cmd);
}

pub(crate) fn firefox(run: &mut Run) {
    let mut cmd = wasm_cargo(&run.root, "test", &[]);
    cmd.env("GECKODRIVER", "geckodriver");
    run.tally.step("browser tests in headless Firefox", &mut cmd);
}

/// `tests/types/` compiled against pkg/'s declarations, page and worker.
pub(crate) fn types(run: &mut Run) {
    if !run.package() {
        return; // the failed build is counted once, by `Run::package`
    }
    for config in ["tests/types/tsconfig.json", "tests/types/tsconfig.worker.json"] {
        let mut cmd = Command::new("node");
        cmd.current_dir(&run.root)
            .args(["node_modules/typescript/bin/tsc", "-p", config]);
        run.tally
            .step(&format!("TypeScript declarations of pkg/ ({config})"), &mut cmd);
    }
}

/// Starts the demo server on a free port with a fresh data dir and drives it
/// with the end-to-end tests in `tests/e2e` (Playwright + Debian Chromium).
pub(crate) fn end_to_end(run: &mut Run) {
    if !run.package() {
        return;
    }
    let server = match demo_server(&run.root) {
        Ok(server) => server,
        Err(err) => return run.tally.fail("end-to-end", &err),
    };
    let output_dir = run.root.join("test-output");
    let _ = std::fs::create_dir_all(&output_dir);
    let mut cmd = Command::new("node");
    cmd.current_dir(&run.root)
        .args(["--test", "--test-reporter=spec", "tests/e2e/"])
        .env("ASKWELL_URL", &server.url)
        .env("ASKWELL_TEST_OUTPUT", &output_dir);
    run.tally
        .step("end-to-end (demo in headless Chromium and Firefox)", &mut cmd);
}

/// The demo (www/ and pkg/) on a fresh `target/e2e-data`, with its tokens.
fn demo_server(root: &Path) -> Result<Server, String> {
    server::build(root)?;
    let data = root.join("target/e2e-data");
    let _ = std::fs::remove_dir_all(&data);
    let envs = [
        ("ASKWELL_ADMIN_TOKEN", crate::demo::DEMO_ADMIN_TOKEN),
        ("ASKWELL_IDENTITY_SECRET", crate::demo::DEMO_IDENTITY_SECRET),
        // The Firefox end-to-end test subscribes through a local push service
        // on http://127.0.0.1 (logged loudly by the server; test runs only).
        ("ASKWELL_ALLOW_INSECURE_ENDPOINTS", "1"),
        // Categories with labels for the preference centre, and no caps or
        // quiet hours (the demo's www/policy.json would hold the tests' pushes).
        ("ASKWELL_DELIVERY_POLICY", "tests/e2e/policy.json"),
    ];
    Server::start(
        root,
        &data,
        &["--site", "www", "--pkg", "pkg", "--journeys", "www/journeys.json"],
        &envs,
    )
}

pub(crate) fn vite_app(run: &mut Run) {
    if run.package() {
        crate::vite::step(&run.root, &mut run.tally);
    }
}

/// The delivery benchmarks; the fan-out is timed on PostgreSQL too, on a
/// throwaway cluster that lives with this step (without one, the benchmark
/// says so and times SQLite alone).
pub(crate) fn delivery_bench(run: &mut Run) {
    let cluster = crate::postgres::Cluster::start();
    let url = match &cluster {
        Ok(cluster) => cluster.url.clone(),
        Err(err) => format!("unavailable: {err}"),
    };
    let env = [("ASKWELL_BENCH_POSTGRES_URL", url.as_str())];
    bench_with(run, "delivery benchmarks", "delivery_bench", &["100000"], &env);
}

pub(crate) fn journey_bench(run: &mut Run) {
    let what = "journey benchmark (100,000 users entering a journey, their due steps swept and enqueued)";
    bench(run, what, "journey_bench", &["100000"]);
}

pub(crate) fn funnel_bench(run: &mut Run) {
    let what = "funnel benchmarks (ingestion rate, stats over 1M events)";
    bench(run, what, "funnel_bench", &[]);
}

/// One of the server's benchmark examples; its timings are printed, never
/// asserted (they flake on a 2-core machine).
fn bench(run: &mut Run, what: &str, example: &str, args: &[&str]) {
    bench_with(run, what, example, args, &[]);
}

/// [`bench`] with environment variables.
fn bench_with(run: &mut Run, what: &str, example: &str, args: &[&str], env: &[(&str, &str)]) {
    let release = ["run", "--release", "--quiet", "--package", "askwell-server"];
    let mut cmd = cargo(&run.root, &release);
    cmd.args(["--example", example, "--"])
        .args(args)
        .envs(env.iter().copied());
    run.tally
        .step(&format!("{what} (release build; printed, not asserted)"), &mut cmd);
}

pub(crate) fn load(run: &mut Run) {
    let mut cmd = cargo(&run.root, &["test", "--release", "--package", "askwell-server"]);
    // One test at a time: the printed numbers are each test's own.
    cmd.args(["--test", "load", "--", "--nocapture", "--test-threads=1"]);
    let name = "load test (release build: 16 concurrent clients on SQLite; throughput and p99 printed)";
    run.tally.step(name, &mut cmd);
}

/// Only builds pkg/ (if no earlier step did); `Run::finish` prints the report.
pub(crate) fn size(run: &mut Run) {
    run.package();
}

#[cfg(test)]
mod tests {
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
}
