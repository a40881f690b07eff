//! What the test command costs on disk: printed at its start and end, because
//! a full disk fails every later step with errors that do not say why.

use std::path::Path;
use std::process::Command;

use crate::run::output;

/// A full run's `target/` on a clean checkout was 4.8 GB (2026-12-02;
/// see CONTRIBUTING.md); this leaves room for temporary files and growth.
const NEEDED_GB: f64 = 6.0;

/// A line for the start of a run; it warns when the disk may be too small.
pub(crate) fn before(root: &Path) -> String {
    match free_gb(root) {
        Some(free) if free < NEEDED_GB => format!(
            "warning: {free:.1} GB free on the disk of {}; a full run needs about {NEEDED_GB:.0} GB \
             (its steps fail with \"No space left on device\" when it runs out)",
            root.display()
        ),
        Some(free) => format!("disk: {free:.1} GB free"),
        None => "disk: free space unknown (`df` failed)".to_string(),
    }
}

/// A line for the end of a run: what `target/` holds and what is left.
pub(crate) fn after(root: &Path) -> String {
    let target = kilobytes(Command::new("du").arg("-sk").arg(root.join("target")), 0);
    let free = free_gb(root);
    match (target, free) {
        (Some(kb), Some(free)) => format!("disk: target/ holds {:.1} GB; {free:.1} GB free", gb(kb)),
        (Some(kb), None) => format!("disk: target/ holds {:.1} GB", gb(kb)),
        _ => "disk: target/ size unknown (`du` failed)".to_string(),
    }
}

fn free_gb(root: &Path) -> Option<f64> {
    // `df -Pk`: a header, then "device 1K-blocks used available capacity mount".
    kilobytes(Command::new("df").arg("-Pk").arg(root), 3).map(gb)
}

/// The number in column `column` of the last line of `cmd`'s output.
fn kilobytes(cmd: &mut Command, column: usize) -> Option<u64> {
    let text = output(cmd)?;
    text.lines().last()?.split_whitespace().nth(column)?.parse().ok()
}

fn gb(kilobytes: u64) -> f64 {
    kilobytes as f64 / 1_000_000.0
}
