//! The funnel report as CSV (`GET /v1/stats.csv`): one row per prompt ×
//! variant, so a team can take the numbers into a spreadsheet or a notebook
//! without parsing the JSON report.
//!
//! Prompt and variant ids come from pages (`POST /v1/events` accepts any
//! short text), so every text cell is defused against spreadsheet formula
//! injection (OWASP: a leading `=`, `+`, `-`, `@`, tab or CR gets a `'`).

use crate::funnel::{Report, VariantReport};
use askwell::model::EventKind;

/// The rate columns after the event counts, each followed by its 95% interval.
const RATE_COLUMNS: [&str; 4] = ["opt_in", "native_accept", "click_through", "conversion_rate"];

/// The report's variants as CSV (RFC 4180, CRLF line ends, a header row).
pub fn funnel_csv(report: &Report) -> String {
    let mut out = String::new();
    let mut header: Vec<String> = ["dataset", "from_ms", "to_ms", "prompt", "variant", "holdout", "devices"]
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    header.extend(funnel_kinds().map(|k| k.as_str().to_owned()));
    header.push("converted_devices".into());
    for rate in RATE_COLUMNS {
        header.extend([rate.to_owned(), format!("{rate}_low"), format!("{rate}_high")]);
    }
    for days in ["7d", "30d"] {
        header.extend([format!("retention_{days}"), format!("retention_{days}_eligible")]);
    }
    push_row(&mut out, &header);
    for prompt in &report.prompts {
        for variant in &prompt.variants {
            let mut row = vec![
                report.dataset.to_owned(),
                report.from.to_string(),
                report.to.to_string(),
                prompt.prompt.clone(),
                variant.variant.clone(),
                variant.holdout.to_string(),
                variant.devices.to_string(),
            ];
            row.extend(counts(variant));
            row.push(variant.converted_devices.to_string());
            for rate in [
                variant.opt_in,
                variant.native_accept,
                variant.click_through,
                variant.conversion,
            ] {
                row.extend([rate.rate, rate.low, rate.high].map(share));
            }
            for retention in [variant.retention_7d, variant.retention_30d] {
                row.extend([share(retention.rate.rate), retention.eligible.to_string()]);
            }
            push_row(&mut out, &row);
        }
    }
    out
}

/// The event types counted in the funnel, in [`EventKind::ALL`] order
/// (forwarded actions are users' events, never in the funnel).
fn funnel_kinds() -> impl Iterator<Item = EventKind> {
    EventKind::ALL.into_iter().filter(|k| k.in_funnel())
}

/// The count of every funnel event type, in [`EventKind::ALL`] order (0 when absent).
fn counts(variant: &VariantReport) -> impl Iterator<Item = String> + '_ {
    funnel_kinds().map(|k| variant.counts.get(k.as_str()).copied().unwrap_or(0).to_string())
}

/// A share as a decimal with 4 places; empty when undefined (no trials).
fn share(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.4}")).unwrap_or_default()
}

fn push_row(out: &mut String, cells: &[String]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cell_text(cell));
    }
    out.push_str("\r\n");
}

/// One cell: formula triggers defused, quoted when it holds a comma, quote or line break.
fn cell_text(cell: &str) -> String {
    let defused = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_number(cell) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if defused.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// Our own negative numbers stay numbers (none today, but a rate difference could be).
fn is_number(cell: &str) -> bool {
    cell.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::funnel::PromptReport;
    use crate::stats::Proportion;

    fn report(prompt: &str, variant: &str) -> Report {
        let mut v = VariantReport {
            variant: variant.into(),
            devices: 400,
            opt_in: Proportion::new(40, 400).summary(),
            ..VariantReport::default()
        };
        v.counts.insert("prompt_shown".into(), 400);
        v.counts.insert("subscribed".into(), 40);
        Report {
            from: 0,
            to: 86_400_000,
            dataset: "real",
            prompts: vec![PromptReport {
                prompt: prompt.into(),
                baseline: None,
                variants: vec![v],
                comparisons: Vec::new(),
                daily: Vec::new(),
            }],
            native: crate::funnel::NativeReport {
                granted: 0,
                denied: 0,
                dismissed: 0,
                accept_rate: Proportion::new(0, 0).summary(),
                floor: 0.2,
            },
            deliveries: Vec::new(),
            fatigue: Vec::new(),
            paused_categories: Vec::new(),
        }
    }

    fn column<'a>(csv: &'a str, name: &str) -> Vec<&'a str> {
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let index = header.iter().position(|h| *h == name).expect(name);
        lines.map(|l| l.split(',').nth(index).unwrap_or_default()).collect()
    }

    #[test]
    fn one_row_per_variant_with_counts_and_rates() {
        let csv = funnel_csv(&report("reply", "b"));
        assert_eq!(csv.lines().count(), 2, "{csv}");
        assert!(csv.ends_with("\r\n"));
        assert_eq!(column(&csv, "prompt"), ["reply"]);
        assert_eq!(column(&csv, "prompt_shown"), ["400"]);
        assert_eq!(column(&csv, "subscribed"), ["40"]);
        assert_eq!(column(&csv, "notification_clicked"), ["0"]);
        assert_eq!(column(&csv, "opt_in"), ["0.1000"]);
        assert_eq!(column(&csv, "opt_in_low"), ["0.0743"]);
        assert_eq!(column(&csv, "click_through"), [""], "no deliveries: undefined, not 0");
        let header = csv.lines().next().unwrap_or_default();
        assert_eq!(
            header.split(',').count(),
            csv.lines().nth(1).unwrap_or_default().split(',').count()
        );
    }

    #[test]
    fn text_from_pages_is_quoted_and_cannot_become_a_formula() {
        assert_eq!(cell_text("plain"), "plain");
        assert_eq!(cell_text("a,b"), "\"a,b\"");
        assert_eq!(cell_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell_text("two\nlines"), "\"two\nlines\"");
        assert_eq!(
            cell_text("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(cell_text("+1+1"), "'+1+1");
        assert_eq!(cell_text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell_text("-0.0500"), "-0.0500", "numbers stay numbers");
        let csv = funnel_csv(&report("=cmd|' /C calc'!A0", "b"));
        assert_eq!(column(&csv, "prompt"), ["'=cmd|' /C calc'!A0"]);
    }
}
