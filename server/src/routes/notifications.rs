//! `POST /v1/notify` (admin), `GET` and `DELETE /v1/notifications/{id}`;
//! what a notification may hold and how it becomes a push is
//! [`crate::notification`], when it is due [`crate::store::Schedule`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ErrorCode;
use crate::extract::{Admin, ApiJson};
use crate::notification::NotifyRequest;
use crate::personal::Outcome;
use crate::stats::{compare, verdict, Labels, Proportion};
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
    let by = breakdown(query.as_deref())?;
    let counts = state.store.notification_counts(&id).await?.ok_or(AppError::NotFound)?;
    let mut answer = json!({ "id": id, "counts": counts });
    if let Some(experiment) = experiment(&state, &id, by.as_deref()).await? {
        answer["experiment"] = experiment;
    }
    Ok(Json(answer))
}

/// An A/B test's report: per variant (and the holdout) its deliveries,
/// clicks and dismissals, click-through (clicked of delivered) with its 95%
/// interval, and each variant against the baseline (the first) with the
/// verdicts prompts get ("b beats a on click-through, p = 0.003", or how many
/// more deliveries it needs). With a `conversion` event, also conversion
/// (converted of those who could: delivered to, or withheld from, a user's
/// device), each variant against the baseline and against the holdout.
/// `None` for a notification without a test.
async fn experiment(state: &AppState, id: &str, by: Option<&str>) -> Result<Option<Value>, AppError> {
    let Some((experiment, rows)) = state.store.notification_variants(id, by).await? else {
        return Ok(None);
    };
    let mut answer = report(&experiment, &sum_groups(&rows));
    if let (Some(name), Some(report_json)) = (by, answer.as_mut()) {
        let mut values: Vec<Option<String>> = rows.iter().map(|r| r.group.clone()).collect();
        values.sort();
        values.dedup();
        let groups: Vec<Value> = values
            .into_iter()
            .map(|value| {
                let rows: Vec<_> = rows.iter().filter(|r| r.group == value).cloned().collect();
                json!({ "value": value, "report": report(&experiment, &rows) })
            })
            .collect();
        report_json["by"] = json!({ "trait": name, "groups": groups });
    }
    Ok(answer)
}

/// `?by=trait:<name>`: the trait to split an A/B test's report by.
fn breakdown(query: Option<&str>) -> Result<Option<String>, AppError> {
    let bad = || {
        AppError::invalid(
            ErrorCode::InvalidQuery,
            "by: expected trait:<name> (1 to 64 of A-Z a-z 0-9 _ . : -), the only parameter",
        )
    };
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    let name = query
        .strip_prefix("by=trait:")
        .or_else(|| query.strip_prefix("by=trait%3A"))
        .ok_or_else(bad)?;
    if !askwell::segment::is_trait_name(name) {
        return Err(bad());
    }
    Ok(Some(name.to_owned()))
}

/// Each variant's counts over all groups.
fn sum_groups(rows: &[crate::store::VariantCounts]) -> Vec<crate::store::VariantCounts> {
    let mut summed: Vec<crate::store::VariantCounts> = Vec::new();
    for row in rows {
        match summed.iter_mut().find(|s| s.variant == row.variant) {
            Some(sum) => {
                sum.deliveries += row.deliveries;
                sum.delivered += row.delivered;
                sum.clicked += row.clicked;
                sum.dismissed += row.dismissed;
                sum.reachable += row.reachable;
                sum.converted += row.converted;
                sum.converted_after_click += row.converted_after_click;
            }
            None => summed.push(crate::store::VariantCounts {
                group: None,
                ..row.clone()
            }),
        }
    }
    summed
}

/// The report of one set of counts (all devices, or one group).
fn report(experiment: &crate::store::Experiment, rows: &[crate::store::VariantCounts]) -> Option<Value> {
    let order = &experiment.variants;
    let baseline = order.first()?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let of = |variant: &str| rows.iter().find(|r| r.variant == variant);
    let ctr = |variant: &str| {
        of(variant).map_or(Proportion::new(0, 0), |r| {
            Proportion::new(count(r.clicked), count(r.delivered))
        })
    };
    let cvr = |variant: &str| {
        of(variant).map_or(Proportion::new(0, 0), |r| {
            Proportion::new(count(r.converted), count(r.reachable))
        })
    };
    let converts = experiment.conversion.is_some();
    let variants: Vec<Value> = order
        .iter()
        .map(|variant| {
            let row = of(variant);
            let mut shown = json!({
                "id": variant,
                "deliveries": row.map_or(0, |r| r.deliveries),
                "delivered": row.map_or(0, |r| r.delivered),
                "clicked": row.map_or(0, |r| r.clicked),
                "dismissed": row.map_or(0, |r| r.dismissed),
                "click_through": ctr(variant).summary(),
            });
            if converts {
                shown["reachable"] = json!(row.map_or(0, |r| r.reachable));
                shown["converted"] = json!(row.map_or(0, |r| r.converted));
                shown["converted_after_click"] = json!(row.map_or(0, |r| r.converted_after_click));
                shown["conversion"] = json!(cvr(variant).summary());
            }
            shown
        })
        .collect();
    let judged = |baseline: &str, variant: &str, metric: &str, b: Proportion, v: Proportion| {
        let labels = Labels {
            baseline,
            variant,
            metric,
            trials: if metric == "conversion" {
                "recipients"
            } else {
                "deliveries"
            },
        };
        json!({ "difference": compare(b, v), "verdict": verdict(b, v, labels) })
    };
    let comparisons: Vec<Value> = order[1..]
        .iter()
        .map(|variant| {
            let mut shown = judged(baseline, variant, "click-through", ctr(baseline), ctr(variant));
            shown["variant"] = json!(variant);
            if converts {
                shown["conversion"] = judged(baseline, variant, "conversion", cvr(baseline), cvr(variant));
            }
            shown
        })
        .collect();
    let holdout_row = of(askwell::model::HOLDOUT);
    let mut answer = json!({
        "baseline": baseline,
        "variants": variants,
        "holdout": holdout_row.map_or(0, |r| r.deliveries),
        "comparisons": comparisons,
    });
    if let Some((event, within_ms)) = &experiment.conversion {
        let held = askwell::model::HOLDOUT;
        let lift: Vec<Value> = order
            .iter()
            .map(|variant| {
                let mut shown = judged(held, variant, "conversion", cvr(held), cvr(variant));
                shown["variant"] = json!(variant);
                shown
            })
            .collect();
        answer["conversion"] = json!({
            "event": event,
            "within_ms": within_ms,
            "holdout": {
                "reachable": holdout_row.map_or(0, |r| r.reachable),
                "converted": holdout_row.map_or(0, |r| r.converted),
                "conversion": cvr(held).summary(),
            },
            "lift": lift,
        });
    }
    Some(answer)
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

/// The id of `/v1/notifications/{id}`. No notification has one that is not
/// a valid path id (ours are 32 hex digits), so another is a 404 like any
/// unknown id, without asking the database (PostgreSQL text cannot hold NUL).
fn notification_id(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    match path {
        Ok(Path(id)) if crate::users::valid_user_id(&id) => Ok(id),
        _ => Err(AppError::NotFound),
    }
}
