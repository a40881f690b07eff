//! `POST /v1/notify` (admin), `GET` and `DELETE /v1/notifications/{id}`,
//! and the dashboard's list, `GET /v1/notifications` and its CSV;
//! what a notification may hold and how it becomes a push is
//! [`crate::notification`], when it is due [`crate::store::Schedule`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ErrorCode;
use crate::extract::{Admin, ApiJson};
use crate::notification::NotifyRequest;
use crate::personal::Outcome;
use crate::store::now_ms;
use crate::{AppError, AppState};

/// `POST /v1/notify` → 202 `{ id, recipients, scheduled, defaulted_time_zone,
/// too_large }` once the job and all its deliveries are in the database,
/// each due when `deliver` says on its recipient's clock, each with its own
/// payload when the copy is personal (see [`crate::personal`]); with
/// `dry_run`, 200 and what would happen, nothing written.
pub async fn notifications_create(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(mut req): ApiJson<NotifyRequest>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    super::segments::resolve(&state, &mut req.to).await?;
    let prepared = req.prepare_send(now_ms())?;
    crate::respect::known_category(
        &state.settings.delivery_policy,
        prepared.notification.category.as_deref(),
        "category",
        ErrorCode::InvalidNotification,
    )?;
    let created = if crate::personal::needs_rendering(&prepared) {
        let id = prepared.notification.id.clone();
        match crate::personal::send(&state, prepared).await? {
            Outcome::DryRun(answer) => return Ok((StatusCode::OK, Json(answer))),
            Outcome::Created(created) => (id, created),
        }
    } else {
        let created = state
            .store
            .notification_create_scheduled(
                &prepared.notification,
                &prepared.schedule,
                &state.settings.default_zone(),
            )
            .await?;
        (prepared.notification.id, created)
    };
    let (prepared_id, created) = created;
    // A repeated idempotency key answers the first notification (its id,
    // not the one just prepared) and enqueues nothing: counted once.
    if created.id == prepared_id {
        state
            .metrics
            .count_scheduled(u64::try_from(created.scheduled).unwrap_or(0));
    }
    if created.scheduled < created.recipients - created.too_large - created.holdout {
        state.wake.notify_waiters();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": created.id,
            "recipients": created.recipients,
            "scheduled": created.scheduled,
            "defaulted_time_zone": created.defaulted_time_zone,
            "too_large": created.too_large,
            "holdout": created.holdout,
        })),
    ))
}

/// `GET /v1/notifications/{id}` → per-status counts.
pub async fn notifications_read(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, AppError> {
    let id = notification_id(path)?;
    let by = crate::variants::breakdown(query.as_deref())?;
    let counts = state.store.notification_counts(&id).await?.ok_or(AppError::NotFound)?;
    let mut answer = json!({ "id": id, "counts": counts });
    if let Some(experiment) = crate::variants::experiment(&state, &id, by.as_deref()).await? {
        answer["experiment"] = experiment;
    }
    Ok(Json(answer))
}

/// `DELETE /v1/notifications/{id}` → 200 `{ id, counts }` after cancelling
/// every delivery not sent yet (see [`crate::Store::notification_cancel`]
/// for one a worker holds at that moment). Repeating it changes nothing.
pub async fn notifications_cancel(
    _: Admin,
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, AppError> {
    let id = notification_id(path)?;
    let cancelled = state.store.notification_cancel(&id).await?.ok_or(AppError::NotFound)?;
    state.metrics.count_cancelled(cancelled);
    let counts = state.store.notification_counts(&id).await?.ok_or(AppError::NotFound)?;
    Ok(Json(json!({ "id": id, "counts": counts })))
}

/// Default and most notifications `GET /v1/notifications` lists.
const LIST_DEFAULT: i64 = 50;
const LIST_MAX: i64 = 200;

/// `?limit=N` (1 to [`LIST_MAX`]), the only parameter.
fn list_limit(query: Option<&str>) -> Result<i64, AppError> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(LIST_DEFAULT);
    };
    query
        .strip_prefix("limit=")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| (1..=LIST_MAX).contains(n))
        .ok_or_else(|| {
            AppError::invalid(
                ErrorCode::InvalidQuery,
                format!("limit: a whole number from 1 to {LIST_MAX}, the only parameter"),
            )
        })
}

/// `GET /v1/notifications?limit=50` → `{ notifications: [{ id, created_ms,
/// title, topic, category, recipients, experiment, cancelled, counts }] }`:
/// the newest sent through `POST /v1/notify`, for the dashboard.
pub async fn notifications_list(
    _: Admin,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, AppError> {
    let limit = list_limit(query.as_deref())?;
    let notifications = state.store.notifications_recent(limit).await?;
    Ok(Json(json!({ "notifications": notifications })))
}

/// The columns of `GET /v1/notifications.csv`.
pub const CSV_COLUMNS: [&str; 17] = [
    "notification",
    "created_ms",
    "title",
    "variant",
    "recipients",
    "delivered",
    "shown",
    "clicked",
    "dismissed",
    "click_through",
    "click_through_low",
    "click_through_high",
    "held",
    "capped",
    "muted",
    "withheld",
    "verdict",
];

/// `GET /v1/notifications.csv?limit=50` → the list's numbers for a
/// spreadsheet: a row per notification (`variant` all), and for an A/B
/// test a row per variant with its click-through interval and its verdict
/// against the baseline.
pub async fn notifications_csv(
    _: Admin,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse, AppError> {
    let limit = list_limit(query.as_deref())?;
    let mut csv = CSV_COLUMNS.join(",");
    csv.push('\n');
    for n in state.store.notifications_recent(limit).await? {
        let c = &n.counts;
        let rate = |clicked: i64, delivered: i64| {
            crate::stats::Proportion::new(
                u64::try_from(clicked).unwrap_or(0),
                u64::try_from(delivered).unwrap_or(0),
            )
            .summary()
        };
        let interval = |summary: &Value| {
            ["rate", "low", "high"].map(|k| summary[k].as_f64().map_or(String::new(), |x| format!("{x:.4}")))
        };
        let [ctr, low, high] = interval(&json!(rate(c.clicked, c.delivered)));
        let recipients = n.recipients.to_string();
        let title = csv_field(&n.title);
        let number = |x: i64| x.to_string();
        let row = [
            n.id.as_str(),
            &n.created_ms.to_string(),
            &title,
            "all",
            &recipients,
            &number(c.delivered),
            &number(c.shown),
            &number(c.clicked),
            &number(c.dismissed),
            &ctr,
            &low,
            &high,
            &number(c.held),
            &number(c.capped),
            &number(c.muted),
            &number(c.withheld),
            "",
        ]
        .join(",");
        csv.push_str(&row);
        csv.push('\n');
        if !n.experiment {
            continue;
        }
        let Some(report) = crate::variants::experiment(&state, &n.id, None).await? else {
            continue;
        };
        let verdicts: Vec<(String, String)> = report["comparisons"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|c| {
                        (
                            c["variant"].as_str().unwrap_or_default().to_owned(),
                            c["verdict"]["text"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for variant in report["variants"].as_array().cloned().unwrap_or_default() {
            let id = variant["id"].as_str().unwrap_or_default().to_owned();
            let [ctr, low, high] = interval(&variant["click_through"]);
            let verdict = verdicts
                .iter()
                .find(|(v, _)| *v == id)
                .map_or_else(|| "baseline".to_owned(), |(_, text)| text.clone());
            let count = |k: &str| variant[k].as_i64().unwrap_or(0).to_string();
            let row = [
                n.id.clone(),
                n.created_ms.to_string(),
                title.clone(),
                csv_field(&id),
                count("deliveries"),
                count("delivered"),
                String::new(),
                count("clicked"),
                count("dismissed"),
                ctr,
                low,
                high,
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                csv_field(&verdict),
            ]
            .join(",");
            csv.push_str(&row);
            csv.push('\n');
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv))
}

/// A CSV field: quoted when it holds a comma, quote or line break (RFC
/// 4180), and with a leading `=`, `+`, `-`, `@`, tab or carriage return
/// defused (OWASP's list), so a title cannot run as a formula in a
/// spreadsheet.
fn csv_field(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// The id of `/v1/notifications/{id}`. No notification has one that is not
/// a valid path id (ours are 32 hex digits), so another is a 404 like any
/// unknown id, without asking the database (PostgreSQL text cannot hold NUL).
fn notification_id(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    match path {
        Ok(Path(id)) if crate::users::valid_user_id(&id) => Ok(id),
        _ => Err(AppError::NotFound),
    }
}
