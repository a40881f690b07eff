//! `cargo xtask test`: every check and test layer, then the size report and a
//! plain `N passed, N failed` line. A failing step does not stop the others.
//!
//! The steps are one table, [`STEPS`], in the order the full command runs
//! them; `cargo xtask test NAME…` runs only the named ones (still in that
//! order, each with the setup it needs) and `--list` prints the names.

use std::path::PathBuf;

use crate::size::Report;
use crate::steps;
use crate::tally::Tally;
use crate::{disk, package, root, setup};

/// One step of the test command.
pub(crate) struct Step {
    /// What `cargo xtask test NAME` selects (lowercase, `-` between words).
    pub(crate) name: &'static str,
    /// One line for `--list`.
    pub(crate) about: &'static str,
    /// Runs the step, with its own setup, adding its results to the tally.
    pub(crate) run: fn(&mut Run),
}

/// Every step, in the order the full command runs them: the quick checks
/// first, so a formatting slip shows within seconds; pkg/ is built by the
/// first step that needs it.
#[rustfmt::skip] // one row per step, columns aligned
pub(crate) const STEPS: [Step; 17] = [
    step("rustfmt",        "cargo fmt --all --check",                                            steps::rustfmt),
    step("clippy-native",  "clippy on the workspace, all targets, -D warnings",                  steps::clippy_native),
    step("clippy-wasm",    "clippy on the askwell crate for wasm32 (page, sw), -D warnings",     steps::clippy_wasm),
    step("native",         "cargo test --workspace: core, server on SQLite, xtask, doc tests",   steps::native_tests),
    step("fuzz",           "each cargo-fuzz target briefly from its committed inputs (nightly)", steps::fuzz),
    step("postgres",       "the server suites again on a throwaway local PostgreSQL",            steps::postgres),
    step("api-contract",   "schemathesis: a fresh server against server/openapi.yaml",           steps::api_contract),
    step("chromium",       "browser suites (browser, service_worker) in headless Chromium",      steps::chromium),
    step("firefox",        "browser suites (browser, service_worker) in headless Firefox",       steps::firefox),
    step("types",          "tsc on tests/types/ against pkg/'s declarations (builds pkg/)",      steps::types),
    step("e2e",            "tests/e2e/ against a fresh demo server (builds pkg/)",               steps::end_to_end),
    step("vite-app",       "a fresh Vite app with the packed pkg/ (builds pkg/)",                steps::vite_app),
    step("delivery-bench", "delivery benchmark, release build (printed)",                        steps::delivery_bench),
    step("funnel-bench",   "funnel benchmark, release build (printed)",                          steps::funnel_bench),
    step("journey-bench",  "journey benchmark: 100,000 users entered and swept (printed)",       steps::journey_bench),
    step("load",           "load test, release build, one test at a time (printed)",             steps::load),
    step("size",           "the size report of pkg/ (builds pkg/)",                              steps::size),
];

const fn step(name: &'static str, about: &'static str, run: fn(&mut Run)) -> Step {
    Step { name, about, run }
}

/// `cargo xtask test [--list | NAME…]`; fails if any step failed.
pub fn run(args: &[String]) -> Result<(), String> {
    if args.iter().any(|arg| arg == "--list") {
        print!("{}", list());
        return Ok(());
    }
    let selected = select(args)?;
    setup::ensure(setup::Needs::TEST)?;
    let root = root();
    eprintln!("{}", disk::before(&root));
    build_without_incremental_state();
    let mut run = Run::new(root);
    for step in selected {
        (step.run)(&mut run);
    }
    eprintln!("{}", disk::after(&run.root));
    run.finish()
}

/// One run of the test command on a checkout gains nothing from the
/// incremental caches (2 GB of target/ for the native tests alone), so its
/// cargo children skip them unless the caller chose otherwise.
fn build_without_incremental_state() {
    if std::env::var_os("CARGO_INCREMENTAL").is_none() {
        // Set before any child process or thread exists.
        std::env::set_var("CARGO_INCREMENTAL", "0");
    }
}

/// The steps `names` select, in [`STEPS`] order and once each; none named
/// means all of them. An unknown name is an error that lists the names.
fn select(names: &[String]) -> Result<Vec<&'static Step>, String> {
    if let Some(unknown) = names.iter().find(|name| !STEPS.iter().any(|step| step.name == *name)) {
        let known: Vec<&str> = STEPS.iter().map(|step| step.name).collect();
        return Err(format!(
            "unknown test step `{unknown}`; the steps are: {} (`cargo xtask test --list` says what each runs)",
            known.join(", ")
        ));
    }
    let wanted = |step: &Step| names.is_empty() || names.iter().any(|name| name == step.name);
    Ok(STEPS.iter().filter(|step| wanted(step)).collect())
}

/// What `--list` prints: every name with what it runs.
fn list() -> String {
    let mut text = String::from("steps of `cargo xtask test`, in the order it runs them:\n");
    for step in &STEPS {
        text += &format!("  {:<16} {}\n", step.name, step.about);
    }
    text + "`cargo xtask test NAME…` runs only the named steps, each with the setup it needs.\n"
}

/// What the steps of one run share: the workspace, the tally, and pkg/,
/// built at most once.
pub(crate) struct Run {
    pub(crate) root: PathBuf,
    pub(crate) tally: Tally,
    package: Package,
    /// [`package::build`]; another function only in this file's tests.
    build: fn() -> Result<Report, String>,
}

enum Package {
    NotBuilt,
    Built(Report),
    Failed,
}

impl Run {
    fn new(root: PathBuf) -> Self {
        Self {
            root,
            tally: Tally::default(),
            package: Package::NotBuilt,
            build: package::build,
        }
    }

    /// Builds pkg/ the first time a step needs it; `false` if it cannot be
    /// built. A failed build counts as one failure, however many steps
    /// needed it; a build that works counts as nothing (its users count).
    pub(crate) fn package(&mut self) -> bool {
        if let Package::NotBuilt = self.package {
            self.package = match (self.build)() {
                Ok(report) => Package::Built(report),
                Err(err) => {
                    self.tally.fail("npm package build", &err);
                    Package::Failed
                }
            };
        }
        matches!(self.package, Package::Built(_))
    }

    /// The size report, if pkg/ was built, then the summary line.
    fn finish(self) -> Result<(), String> {
        if let Package::Built(report) = &self.package {
            report.print();
        }
        self.tally.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{list, select, Run, STEPS};
    use crate::size::Report;

    fn names(args: &[&str]) -> Result<Vec<&'static str>, String> {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        select(&args).map(|steps| steps.iter().map(|step| step.name).collect())
    }

    #[test]
    fn no_names_select_every_step_in_the_full_commands_order() {
        let all: Vec<&str> = STEPS.iter().map(|step| step.name).collect();
        assert_eq!(names(&[]), Ok(all));
    }

    #[test]
    fn named_steps_run_once_each_in_the_full_commands_order() {
        assert_eq!(names(&["rustfmt"]), Ok(vec!["rustfmt"]));
        assert_eq!(
            names(&["e2e", "rustfmt", "postgres", "rustfmt"]),
            Ok(vec!["rustfmt", "postgres", "e2e"])
        );
    }

    #[test]
    fn an_unknown_step_is_an_error_naming_it_and_listing_every_step() {
        let err = names(&["rustfmt", "clippy"]).unwrap_err();
        assert!(err.starts_with("unknown test step `clippy`;"), "{err}");
        for step in &STEPS {
            assert!(err.contains(step.name), "{err} lacks {}", step.name);
        }
        assert!(names(&["--lsit"]).unwrap_err().contains("`--lsit`"));
    }

    #[test]
    fn step_names_are_unique_lowercase_words_joined_by_dashes() {
        for (i, step) in STEPS.iter().enumerate() {
            let typeable = step
                .name
                .split('-')
                .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
            assert!(typeable, "{}", step.name);
            assert!(
                STEPS[..i].iter().all(|earlier| earlier.name != step.name),
                "{} twice",
                step.name
            );
        }
    }

    #[test]
    fn the_list_names_every_step_with_what_it_runs() {
        let text = list();
        for step in &STEPS {
            assert!(
                text.contains(&format!("  {:<16} {}\n", step.name, step.about)),
                "{text}"
            );
        }
    }

    #[test]
    fn pkg_is_built_once_however_many_steps_need_it() {
        static BUILDS: AtomicUsize = AtomicUsize::new(0);
        let mut run = Run::new(crate::root());
        run.build = || {
            BUILDS.fetch_add(1, Ordering::SeqCst);
            Ok(Report::default())
        };
        assert!(run.package() && run.package());
        assert_eq!(BUILDS.load(Ordering::SeqCst), 1);
        assert_eq!(run.tally.counts(), (0, 0), "a build is not a test");
    }

    #[test]
    fn a_failed_pkg_build_is_one_failure_and_skips_the_steps_that_need_it() {
        let mut run = Run::new(crate::root());
        run.build = || Err("wasm-bindgen is missing".into());
        // As in the full command: none of these runs anything without pkg/.
        for step in ["types", "e2e", "vite-app", "size"] {
            let step = STEPS.iter().find(|s| s.name == step).expect(step);
            (step.run)(&mut run);
        }
        assert!(!run.package());
        assert_eq!(run.tally.counts(), (0, 1));
    }
}
