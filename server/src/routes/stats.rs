//! `GET /v1/stats` (admin): the opt-in funnel per prompt × variant with
//! intervals, comparisons and verdicts; see [`crate::funnel`]. `GET
//! /v1/stats.csv`: the same per-variant numbers as CSV ([`crate::export`]).

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use crate::error::ErrorCode;
use crate::export;
use crate::extract::Admin;
use crate::funnel::{self, Query, Report};
use crate::store::DAY_MS;
use crate::store::{now_ms, StatsRange};
use crate::{AppError, AppState};

/// The default range: the last 30 days.
const DEFAULT_DAYS: i64 = 30;
/// The longest range one request may ask for.
const MAX_DAYS: i64 = 400;
/// The page's default accept-rate floor (`policy.acceptRateFloor`), from the core.
const DEFAULT_FLOOR: f64 = askwell::policy::DEFAULT_ACCEPT_RATE_FLOOR;

/// The latest accepted instant: JavaScript's largest `Date` (year 275760),
/// so every accepted bound has a `Date` on the page and no sum overflows.
const MAX_EPOCH_MS: i64 = 8_640_000_000_000_000;

fn bad(message: String) -> AppError {
    AppError::invalid(ErrorCode::InvalidQuery, message)
}

fn parse(query: Option<&str>, now: i64) -> Result<Query, AppError> {
    let (mut from, mut to, mut synthetic, mut baseline, mut floor) = (None, None, false, None, DEFAULT_FLOOR);
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let number = || {
            value
                .parse::<i64>()
                .ok()
                .filter(|ms| (0..=MAX_EPOCH_MS).contains(ms))
                .ok_or_else(|| {
                    bad(format!(
                        "{key}: expected epoch milliseconds from 0 to {MAX_EPOCH_MS}, got {value:?}"
                    ))
                })
        };
        match key.as_ref() {
            "from" => from = Some(number()?),
            "to" => to = Some(number()?),
            "dataset" => {
                synthetic = match value.as_ref() {
                    "real" => false,
                    "synthetic" => true,
                    _ => {
                        return Err(bad(format!(
                            "dataset: expected \"real\" or \"synthetic\", got {value:?}"
                        )))
                    }
                }
            }
            "baseline" => baseline = Some(value.into_owned()),
            "floor" => {
                floor = value
                    .parse::<f64>()
                    .ok()
                    .filter(|f| (0.0..=1.0).contains(f))
                    .ok_or_else(|| bad(format!("floor: expected a share from 0 to 1, got {value:?}")))?
            }
            other => {
                return Err(bad(format!(
                    "{other}: unknown parameter (from, to, dataset, baseline, floor)"
                )))
            }
        }
    }
    let (from, to) = range(from, to, now)?;
    Ok(Query {
        range: StatsRange {
            from_ms: from,
            to_ms: to,
            synthetic,
        },
        baseline,
        floor,
        fatigue: askwell::delivery::FatigueGuard::default(),
    })
}

/// `[from, to)` with defaults (to: now; from: 30 days before to), checked in
/// checked arithmetic: the bounds come from the query string.
fn range(from: Option<i64>, to: Option<i64>, now: i64) -> Result<(i64, i64), AppError> {
    let to = match to {
        Some(to) => to,
        None => now
            .checked_add(1)
            .ok_or_else(|| bad("to: the clock is out of range".into()))?,
    };
    let from = match from {
        Some(from) => from,
        None => to.checked_sub(DEFAULT_DAYS * DAY_MS).filter(|f| *f >= 0).unwrap_or(0),
    };
    if from >= to {
        return Err(bad("from: must be before to".into()));
    }
    let span = to.checked_sub(from);
    if span.is_none_or(|span| span > MAX_DAYS * DAY_MS) {
        return Err(bad(format!("from: a range spans at most {MAX_DAYS} days")));
    }
    Ok((from, to))
}

/// `GET /v1/stats?from=&to=&dataset=real|synthetic&baseline=&floor=` → the report.
pub async fn stats_read(
    _: Admin,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Report>, AppError> {
    Ok(Json(report(&state, query.as_deref()).await?))
}

/// `GET /v1/stats.csv` (same parameters) → one CSV row per prompt × variant,
/// as a download named after the dataset.
pub async fn stats_csv_read(
    _: Admin,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse, AppError> {
    let report = report(&state, query.as_deref()).await?;
    let filename = format!("attachment; filename=\"askwell-funnel-{}.csv\"", report.dataset);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        export::funnel_csv(&report),
    ))
}

async fn report(state: &AppState, query: Option<&str>) -> Result<Report, AppError> {
    let now = now_ms();
    let mut query = parse(query, now)?;
    query.fatigue = state.settings.delivery_policy.fatigue.clone();
    Ok(funnel::load(&state.store, &query, now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_last_30_days_of_real_data() {
        let p = parse(None, 100 * DAY_MS).expect("valid");
        assert_eq!(p.range.to_ms - p.range.from_ms, 30 * DAY_MS);
        assert!(!p.range.synthetic);
        assert_eq!(p.floor, DEFAULT_FLOOR);
    }

    #[test]
    fn rejects_bad_parameters_naming_them() {
        for (query, field) in [
            ("from=yesterday", "from:"),
            ("from=10&to=5", "from: must be before"),
            ("dataset=fake", "dataset:"),
            ("floor=2", "floor:"),
            ("limit=3", "limit: unknown"),
            ("from=0&to=99999999999", "at most 400 days"),
            ("from=-9223372036854775808&to=9223372036854775807", "from: expected"),
            ("to=-9223372036854775808", "to: expected"),
            ("from=8640000000000000", "from: must be before"),
        ] {
            let err = parse(Some(query), 100 * DAY_MS).expect_err(query);
            assert!(err.to_string().contains(field), "{query}: {err}");
        }
    }
}
