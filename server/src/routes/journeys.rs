//! Journeys (admin): `PUT /v1/journeys/{id}` stores a definition as a new
//! version, `GET /v1/journeys` and `GET /v1/journeys/{id}` show them with
//! their report, `DELETE /v1/journeys/{id}` retires one. The runner
//! (`crate::journeys`) does the work; the engine is the core's.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Map, Value};

use super::path_id;
use crate::error::ErrorCode;
use crate::extract::{Admin, ApiJson};
use crate::journeys::read_definition;
use crate::stats::{compare, verdict, Labels, Proportion};
use crate::store::{now_ms, JourneyCounts, StoredJourney};
use crate::{AppError, AppState};

fn journey_id(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    let id = path_id(path, "id", ErrorCode::InvalidJourney)?;
    if askwell::journey::is_name(&id) {
        Ok(id)
    } else {
        Err(AppError::invalid(
            ErrorCode::InvalidJourney,
            "id: expected 1 to 64 of A-Z a-z 0-9 _ . : -",
        ))
    }
}

/// `PUT /v1/journeys/{id}` with the definition (its `id` may be left out;
/// given, it must be the path's) → 200 `{ id, version, changed }`. An edit
/// is a new version for new entrants; running instances finish on theirs.
pub async fn journeys_put(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, AppError> {
    let id = journey_id(path)?;
    let Value::Object(mut definition) = body else {
        return Err(AppError::invalid(
            ErrorCode::InvalidJourney,
            "expected a journey definition object",
        ));
    };
    match definition.get("id") {
        None => {
            definition.insert("id".into(), Value::String(id.clone()));
        }
        Some(Value::String(given)) if *given == id => {}
        Some(_) => {
            return Err(AppError::invalid(
                ErrorCode::InvalidJourney,
                format!("id: expected {id:?}, the id in the path"),
            ))
        }
    }
    let definition = Value::Object(definition);
    let journey = read_definition(&definition)?;
    for (i, step) in journey.steps.iter().enumerate() {
        if let askwell::journey::Step::Send(message) = step {
            crate::respect::known_category(
                &state.settings.delivery_policy,
                message.category.as_deref(),
                &format!("steps[{i}].send.category"),
                ErrorCode::InvalidJourney,
            )?;
        }
    }
    let (version, changed) = state.store.journey_put(&id, &definition, now_ms()).await?;
    Ok(Json(json!({ "id": id, "version": version, "changed": changed })))
}

/// `GET /v1/journeys` → `{ journeys: [{ id, version, definition, report }] }`.
pub async fn journeys_list(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let mut journeys = Vec::new();
    for stored in state.store.journeys_current().await? {
        let counts = state.store.journey_counts(&stored.id).await?;
        journeys.push(described(stored, &counts));
    }
    Ok(Json(json!({ "journeys": journeys })))
}

/// `GET /v1/journeys/{id}` → `{ id, version, definition, report }`, or 404.
pub async fn journeys_read(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let id = journey_id(path)?;
    let stored = state
        .store
        .journeys_current()
        .await?
        .into_iter()
        .find(|j| j.id == id)
        .ok_or(AppError::NotFound)?;
    let counts = state.store.journey_counts(&id).await?;
    Ok(Json(described(stored, &counts)))
}

/// `DELETE /v1/journeys/{id}` → `{ id, ended }` (running instances ended),
/// or 404.
pub async fn journeys_delete(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let id = journey_id(path)?;
    let ended = state
        .store
        .journey_delete(&id, now_ms())
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(json!({ "id": id, "ended": ended })))
}

/// `GET /v1/journeys.csv` → one row per journey with its report's numbers,
/// for a spreadsheet (columns: see [`CSV_COLUMNS`]).
pub async fn journeys_csv(_: Admin, State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let mut csv = CSV_COLUMNS.join(",");
    csv.push('\n');
    for stored in state.store.journeys_current().await? {
        let counts = state.store.journey_counts(&stored.id).await?;
        let r = report(&counts);
        let n = |v: &Value| v.as_i64().unwrap_or(0).to_string();
        let rate = |v: &Value| v.as_f64().map_or(String::new(), |x| format!("{x:.4}"));
        let steps = r["steps"].as_array().cloned().unwrap_or_default();
        let total = |field: &str| {
            steps
                .iter()
                .map(|s| s[field].as_i64().unwrap_or(0))
                .sum::<i64>()
                .to_string()
        };
        let c = &r["conversion"];
        let row = [
            stored.id.clone(),
            stored.version.to_string(),
            n(&r["entered"]),
            n(&r["holdout"]),
            n(&r["states"]["waiting"]),
            n(&r["states"]["completed"]),
            n(&r["states"]["event"]),
            n(&r["states"]["exit-step"]),
            n(&r["states"]["deleted"]),
            total("sent"),
            total("withheld"),
            total("failed"),
            n(&r["deliveries"]["delivered"]),
            n(&r["clicked"]),
            n(&c["sent_to"]["converted"]),
            rate(&c["sent_to"]["rate"]["rate"]),
            n(&c["holdout"]["converted"]),
            rate(&c["holdout"]["rate"]["rate"]),
            c["verdict"]["outcome"].as_str().unwrap_or_default().to_owned(),
        ];
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv))
}

/// The columns of `GET /v1/journeys.csv` (ids are `A-Z a-z 0-9 _ . : -`,
/// so no field needs quoting).
pub const CSV_COLUMNS: [&str; 19] = [
    "journey",
    "version",
    "entered",
    "holdout",
    "waiting",
    "completed",
    "exited_by_event",
    "exited_at_step",
    "retired",
    "sent",
    "withheld",
    "refused",
    "delivered",
    "clicked",
    "converted_sent_to",
    "conversion_sent_to",
    "converted_holdout",
    "conversion_holdout",
    "verdict",
];

fn described(stored: StoredJourney, counts: &JourneyCounts) -> Value {
    json!({
        "id": stored.id,
        "version": stored.version,
        "definition": stored.definition,
        "report": report(counts),
    })
}

/// The report: instances by state, exits by event, sends per step,
/// deliveries, and conversion of those sent to against the holdout, with
/// the prompts' interval and verdict machinery (`crate::stats`): does the
/// journey lift conversion?
pub fn report(counts: &JourneyCounts) -> Value {
    let mut states = Map::new();
    let (mut entered, mut entered_holdout) = (0, 0);
    for (holdout, state, n) in &counts.instances {
        if *holdout {
            entered_holdout += n;
        } else {
            entered += n;
        }
        let total = states.get(state).and_then(Value::as_i64).unwrap_or(0);
        states.insert(state.clone(), json!(total + n));
    }
    let converted = |holdout: bool| {
        counts
            .converted
            .iter()
            .filter(|(h, _)| *h == holdout)
            .map(|(_, n)| *n)
            .sum::<i64>()
    };
    let exited_by: Map<String, Value> = counts
        .exited_by
        .iter()
        .map(|(event, n)| (event.clone(), json!(n)))
        .collect();
    let steps: Vec<Value> = counts
        .steps
        .iter()
        .map(|(step, sent, withheld, failed)| json!({ "step": step, "sent": sent, "withheld": withheld, "failed": failed }))
        .collect();
    let deliveries: Map<String, Value> = counts
        .deliveries
        .iter()
        .map(|(status, n)| (status.clone(), json!(n)))
        .collect();
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let sent_to = Proportion::new(count(converted(false)), count(entered));
    let held = Proportion::new(count(converted(true)), count(entered_holdout));
    let labels = Labels {
        baseline: "holdout",
        variant: "sent to",
        metric: "conversion",
        trials: "entrants",
    };
    json!({
        "entered": entered + entered_holdout,
        "holdout": entered_holdout,
        "states": states,
        "exited_by": exited_by,
        "steps": steps,
        "deliveries": deliveries,
        "clicked": counts.clicked,
        "conversion": {
            "sent_to": { "entered": entered, "converted": converted(false), "rate": sent_to.summary() },
            "holdout": { "entered": entered_holdout, "converted": converted(true), "rate": held.summary() },
            "difference": compare(held, sent_to),
            "verdict": verdict(held, sent_to, labels),
        },
    })
}
