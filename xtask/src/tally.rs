//! The passed/failed counts behind the test command's last line,
//! `N passed, N failed`, which CI parses: keep its wording.

use std::process::Command;

use crate::run::tee;

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

    /// Prints `name: summary` for a check that passed without a command of
    /// its own to count (one fuzz target) and counts it once.
    pub(crate) fn pass(&mut self, name: &str, summary: &str) {
        println!("{name}: {summary}");
        self.passed += 1;
    }

    pub(crate) fn fail(&mut self, name: &str, err: &str) {
        println!("\n==> {name}\nerror: {err}");
        self.failed += 1;
        self.failed_steps.push(name.to_owned());
    }

    /// (passed, failed) so far.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.passed, self.failed)
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

#[cfg(test)]
mod tests {
    use super::count_results;

    #[test]
    fn counts_libtest_wasm_bindgen_test_and_node_results() {
        let output = "test result: ok. 12 passed; 0 failed; 0 ignored\n\
                      test result: FAILED. 3 passed; 2 failed; 0 ignored\n\
                      ℹ pass 4\nℹ fail 1\n";
        assert_eq!(count_results(output), (19, 3));
    }
}
