//! The queries behind a report, run together.

use super::{report, Inputs, Report};
use crate::store::{StatsRange, Store};

/// What a report is asked for (`GET /v1/stats`'s query string).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Range and dataset.
    pub range: StatsRange,
    /// The variant others are compared with, if the caller chose one.
    pub baseline: Option<String>,
    /// Accept-rate floor to draw.
    pub floor: f64,
    /// The delivery policy's fatigue guard.
    pub fatigue: askwell::delivery::FatigueGuard,
}

/// Reads what the report is made from and builds it. The six queries are
/// independent (the seventh judges which categories the fatigue guard
/// pauses now): they run at the same time, each on its own pooled
/// connection, so the report takes as long as the slowest, not the sum.
///
/// # Errors
/// When the database fails.
pub async fn load(store: &Store, query: &Query, now_ms: i64) -> Result<Report, sqlx::Error> {
    let range = query.range;
    let (mut counts, delivered, days, subscribers, deliveries, reception, paused) = tokio::try_join!(
        store.stats_counts(range),
        store.stats_delivered(range),
        store.stats_days(range),
        store.stats_subscribers(range),
        store.stats_deliveries(range),
        store.stats_reception(range),
        crate::respect::paused_categories(store, &query.fatigue, now_ms),
    )?;
    counts.extend(delivered);
    Ok(report(&Inputs {
        range,
        counts: &counts,
        days: &days,
        subscribers: &subscribers,
        deliveries: &deliveries,
        now_ms,
        baseline: query.baseline.as_deref(),
        floor: query.floor,
        reception: &reception,
        fatigue: &query.fatigue,
        paused: &paused,
    }))
}
