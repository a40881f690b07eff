//! Raw and gzip sizes of each wasm binary with its JS, next to its budget.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Sizes of one binary's files.
pub struct Entry {
    name: String,
    files: Vec<(String, u64, u64)>,
    budget_gz: u64,
}

/// The whole report, printed by `build` and at the end of `test`.
#[derive(Default)]
pub struct Report {
    /// One entry per wasm binary.
    pub entries: Vec<Entry>,
}

impl Entry {
    /// Measures `files` (raw and gzip -9) for binary `name`.
    pub fn measure(name: &str, files: &[PathBuf], budget_gz: u64) -> Result<Self, String> {
        let mut measured = Vec::new();
        for path in files {
            let bytes = fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            measured.push((file, bytes.len() as u64, gzip_len(&bytes)));
        }
        Ok(Self {
            name: name.to_owned(),
            files: measured,
            budget_gz,
        })
    }

    fn total_gz(&self) -> u64 {
        self.files.iter().map(|(_, _, gz)| gz).sum()
    }
}

impl Report {
    /// Prints the table; budgets are targets, so over-budget is flagged, not failed.
    pub fn print(&self) {
        println!("\nsize report (gzip -9)");
        for entry in &self.entries {
            for (file, raw, gz) in &entry.files {
                println!("  {:<24} {:>9} B raw {:>9} B gz", file, raw, gz);
            }
            let total = entry.total_gz();
            let verdict = if total <= entry.budget_gz {
                "within budget"
            } else {
                "OVER BUDGET"
            };
            println!(
                "  {:<24} {:>9.1} kB gz of {:.0} kB budget: {verdict}",
                format!("= {} total", entry.name),
                total as f64 / 1000.0,
                entry.budget_gz as f64 / 1000.0
            );
        }
    }
}

fn gzip_len(bytes: &[u8]) -> u64 {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().map(|out| out.len() as u64).unwrap_or(0)
}
