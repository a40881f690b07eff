//! Personalised `POST /v1/notify`: copy with `{user.*}` / `{data.*}`
//! placeholders, `batch` (per-user data), and `dry_run`, rendered per
//! recipient with the core's [`askwell::personalise`].
//!
//! Rendering happens when the notification is enqueued, not when it is
//! sent: the stored payload of each delivery is exactly what its device
//! gets (the ledger stays true), a field no recipient has is refused before
//! anything is written, and a payload that would not fit a push is counted
//! as `too_large` then and there — never truncated, never silently dropped.
//! A user whose traits change after the send keeps the copy they were sent.

use std::collections::{BTreeMap, HashMap, HashSet};

use askwell::journey::Fields;
use askwell::personalise::{Census, Copy, CopySource};
use serde_json::{json, Map, Value};

use crate::error::ErrorCode;
use crate::notification::{fits, BatchItem, NotificationRequest, Prepared, Target};
use crate::store::{Created, Recipient, Recipients};
use crate::users::{valid_user_id, MAX_TRAITS};
use crate::{AppError, AppState};

/// Most items in one `batch`.
pub const MAX_BATCH: usize = 1000;
/// Largest `POST /v1/notify` body (a full batch with data).
pub const MAX_NOTIFY_BODY_BYTES: usize = 1024 * 1024;
/// Sample recipients a dry run shows.
const SAMPLES: usize = 3;

/// What each recipient's payload is rendered from.
#[derive(Debug)]
pub struct Personal {
    /// The templates (`None`: a batch whose copy reads nothing).
    copy: Option<Copy>,
    /// The payload with the templates' sources in place.
    base: Map<String, Value>,
    /// A batch's data by user.
    data: HashMap<String, Fields>,
}

/// The copy's templates when any of them has a placeholder; a bad one is
/// `invalid_notification` naming every bad field.
///
/// # Errors
/// As said.
pub fn copy_of(notification: &NotificationRequest, data_allowed: bool) -> Result<Option<Copy>, AppError> {
    let source = CopySource {
        title: &notification.title,
        body: notification.body.as_deref(),
        url: notification.url.as_deref(),
        image: notification.image.as_deref(),
        action_titles: notification.actions.iter().map(|a| a.title.as_str()).collect(),
    };
    let copy = Copy::parse(&source, data_allowed)
        .map_err(|problems| AppError::invalid(ErrorCode::InvalidNotification, problems.to_string()))?;
    Ok(copy.is_personal().then_some(copy))
}

/// `batch`: 1 to [`MAX_BATCH`] items of `{ to: { user }, data? }`, each user
/// once, instead of `to`. Returns the users in order and their data.
///
/// # Errors
/// `invalid_target` or `invalid_notification` naming the item.
pub fn batch(items: Vec<BatchItem>, to: &Target) -> Result<(Vec<String>, HashMap<String, Fields>), AppError> {
    let target = |message: String| AppError::invalid(ErrorCode::InvalidTarget, message);
    if to.topic.is_some() || to.user.is_some() || to.all.is_some() || to.condition.is_some() || to.segment.is_some() {
        return Err(target("to: not with batch (each batch item names its user)".into()));
    }
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(target(format!("batch: 1 to {MAX_BATCH} items")));
    }
    let mut users = Vec::with_capacity(items.len());
    let mut data = HashMap::with_capacity(items.len());
    let mut first: HashMap<String, usize> = HashMap::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let user = match item.to {
            Target {
                user: Some(user),
                topic: None,
                all: None,
                condition: None,
                segment: None,
            } if valid_user_id(&user) => user,
            _ => return Err(target(format!("batch[{i}].to: expected {{ user }} with a user id"))),
        };
        if let Some(earlier) = first.get(&user) {
            return Err(target(format!(
                "batch[{i}].to.user: already in batch[{earlier}] (one item per user)"
            )));
        }
        first.insert(user.clone(), i);
        let fields = match item.data {
            None | Some(Value::Null) => Fields::new(),
            Some(value) => {
                let map = crate::users::scalars(
                    &format!("batch[{i}].data"),
                    value,
                    MAX_TRAITS,
                    ErrorCode::InvalidNotification,
                )?;
                crate::journeys::fields(&map)
            }
        };
        data.insert(user.clone(), fields);
        users.push(user);
    }
    Ok((users, data))
}

/// One recipient's rendering: their payload, and what it lacked.
struct Row<'c> {
    recipient: Recipient,
    payload: String,
    missed: Vec<&'c str>,
}

impl Personal {
    /// From the checked templates, the unrendered payload and a batch's data.
    pub fn new(copy: Option<Copy>, base: Map<String, Value>, data: HashMap<String, Fields>) -> Self {
        Self { copy, base, data }
    }

    /// Whether `{data.*}` has a batch behind it.
    fn data_of(&self, recipient: &Recipient) -> Option<&Fields> {
        self.data.get(recipient.user_id.as_deref()?)
    }

    /// `recipient`'s payload JSON; the fields they lack go into `missed`.
    fn render<'c>(&'c self, recipient: &Recipient, missed: &mut Vec<&'c str>) -> String {
        let Some(copy) = &self.copy else {
            return Value::Object(self.base.clone()).to_string();
        };
        let empty = Fields::new();
        let traits = crate::journeys::fields(&recipient.traits);
        let rendered = copy.render(&traits, self.data_of(recipient).unwrap_or(&empty), missed);
        let mut object = self.base.clone();
        object.insert("title".into(), Value::String(rendered.title));
        for (key, text) in [
            ("body", rendered.body),
            ("url", rendered.url),
            ("image", rendered.image),
        ] {
            match text.filter(|t| !t.is_empty()) {
                Some(text) => object.insert(key.into(), Value::String(text)),
                None => object.remove(key),
            };
        }
        if let Some(Value::Array(actions)) = object.get_mut("actions") {
            for (action, title) in actions.iter_mut().zip(rendered.action_titles) {
                action["title"] = Value::String(title);
            }
        }
        Value::Object(object).to_string()
    }

    fn rows(&self, recipients: Vec<Recipient>) -> (Vec<Row<'_>>, Census) {
        let mut census = Census::default();
        let rows = recipients
            .into_iter()
            .map(|recipient| {
                let mut missed = Vec::new();
                let payload = self.render(&recipient, &mut missed);
                census.record(&missed);
                Row {
                    recipient,
                    payload,
                    missed,
                }
            })
            .collect();
        (rows, census)
    }
}

/// `POST /v1/notify` with personal copy or `dry_run`: reads the recipients,
/// renders each one's payload, refuses a field none of them has, and then
/// answers the dry run or enqueues the rendered deliveries.
///
/// # Errors
/// `invalid_notification` for a field no recipient has; the database's.
pub async fn send(state: &AppState, prepared: Prepared) -> Result<Outcome, AppError> {
    let recipients = state.store.recipients(&prepared.notification.to).await?;
    let zone = state.settings.default_zone();
    let personal = prepared.personal.map(std::sync::Arc::new);
    let task_personal = personal.clone();
    let plain = prepared.notification.payload.clone();
    // Rendering 100,000 payloads takes a fraction of a second: off the
    // async workers, so other requests are not held up meanwhile.
    let (rows, census) = tokio::task::spawn_blocking(move || match &task_personal {
        Some(personal) => {
            let (rows, census) = personal.rows(recipients);
            let rows: Vec<(Recipient, String, Vec<String>)> = rows
                .into_iter()
                .map(|row| {
                    (
                        row.recipient,
                        row.payload,
                        row.missed.iter().map(|m| (*m).to_owned()).collect(),
                    )
                })
                .collect();
            (rows, census)
        }
        None => {
            let mut census = Census::default();
            let rows = recipients
                .into_iter()
                .map(|recipient| {
                    census.record(&[]);
                    (recipient, plain.clone(), Vec::new())
                })
                .collect();
            (rows, census)
        }
    })
    .await
    .map_err(|err| AppError::Database(sqlx::Error::Protocol(format!("rendering failed: {err}"))))?;
    if let Some(copy) = personal.as_ref().and_then(|p| p.copy.as_ref()) {
        refuse_unknown(&census, copy)?;
    }
    if prepared.dry_run {
        return Ok(Outcome::DryRun(dry_run(&rows, &census, batch_size(&personal))));
    }
    let sendable: Vec<(i64, Option<String>)> = rows
        .iter()
        .map(|(recipient, payload, _)| (recipient.subscription_id, fits(payload).then(|| payload.clone())))
        .collect();
    drop(rows);
    let created = state
        .store
        .notification_create_rendered(&prepared.notification, &sendable, &prepared.schedule, &zone)
        .await?;
    Ok(Outcome::Created(created))
}

/// What [`send`] did.
#[derive(Debug)]
pub enum Outcome {
    /// Enqueued.
    Created(Created),
    /// The dry run's answer.
    DryRun(Value),
}

fn batch_size(personal: &Option<std::sync::Arc<Personal>>) -> Option<usize> {
    personal.as_ref().map(|p| p.data.len()).filter(|n| *n > 0)
}

/// `invalid_notification` naming each field no recipient had.
fn refuse_unknown(census: &Census, copy: &Copy) -> Result<(), AppError> {
    let unknown = census.unknown(copy);
    if unknown.is_empty() {
        return Ok(());
    }
    let message = unknown
        .iter()
        .map(|(path, field)| {
            format!(
                "{path}: none of the {} recipients has {{{field}}} (misspelt? a fallback would show to all of them)",
                census.recipients
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(AppError::invalid(ErrorCode::InvalidNotification, message))
}

/// The answer of a dry run: how many, where and how they would get it, who
/// three of them are, and what those three would see.
fn dry_run(rows: &[(Recipient, String, Vec<String>)], census: &Census, batch: Option<usize>) -> Value {
    let mut by_service: BTreeMap<String, u64> = BTreeMap::new();
    let (mut defaulted, mut too_large) = (0_u64, 0_u64);
    for (recipient, payload, _) in rows {
        *by_service.entry(push_service(&recipient.endpoint)).or_default() += 1;
        if recipient
            .time_zone
            .as_deref()
            .and_then(askwell::journey::zone)
            .is_none()
        {
            defaulted += 1;
        }
        if !fits(payload) {
            too_large += 1;
        }
    }
    let samples: Vec<Value> = rows
        .iter()
        .take(SAMPLES)
        .map(|(recipient, payload, missed)| {
            json!({
                "subscription": recipient.subscription_id,
                "user": recipient.user_id,
                "payload": serde_json::from_str::<Value>(payload).unwrap_or(Value::Null),
                "bytes": payload.len(),
                "fallbacks": missed,
            })
        })
        .collect();
    let mut answer = json!({
        "dry_run": true,
        "recipients": census.recipients,
        "by_push_service": by_service,
        "defaulted_time_zone": defaulted,
        "too_large": too_large,
        "fallbacks": census.missing,
        "samples": samples,
    });
    if let Some(items) = batch {
        let reached: HashSet<&str> = rows.iter().filter_map(|(r, _, _)| r.user_id.as_deref()).collect();
        answer["batch_users_without_devices"] = json!(items - reached.len());
    }
    answer
}

/// The push service of an endpoint, by host (`fcm.googleapis.com`,
/// `updates.push.services.mozilla.com`, `web.push.apple.com`); Windows'
/// many `*.notify.windows.com` hosts as one.
fn push_service(endpoint: &str) -> String {
    let host = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .map(|authority| authority.rsplit('@').next().unwrap_or(authority))
        .unwrap_or("unknown");
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    if host.ends_with(".notify.windows.com") {
        return "notify.windows.com".into();
    }
    host
}

/// Whether a request needs [`send`] rather than one `INSERT … SELECT`.
pub fn needs_rendering(prepared: &Prepared) -> bool {
    prepared.personal.is_some() || prepared.dry_run || matches!(prepared.notification.to, Recipients::Users(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_services_are_named_by_host() {
        for (endpoint, service) in [
            ("https://fcm.googleapis.com/fcm/send/abc", "fcm.googleapis.com"),
            (
                "https://updates.push.services.mozilla.com/wpush/v2/x",
                "updates.push.services.mozilla.com",
            ),
            (
                "https://wns2-par02p.notify.windows.com/w/?token=1",
                "notify.windows.com",
            ),
            ("https://web.push.apple.com:443/QGx", "web.push.apple.com"),
            ("not a url", "unknown"),
        ] {
            assert_eq!(push_service(endpoint), service, "{endpoint}");
        }
    }
}
