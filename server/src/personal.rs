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
use serde_json::{json, Value};

use crate::error::ErrorCode;
use crate::notification::{fits, BatchItem, NotificationRequest, Prepared, Target, VariantRequest};
use crate::store::{Created, Experiment, NewNotification, Recipient, Recipients, Rendered, RenderedRow, RolloutPlan};
use crate::users::{valid_user_id, MAX_TRAITS};
use crate::variants::Arm;
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
    /// The copies: one, or one per variant of an A/B test.
    arms: Vec<Arm>,
    /// The share of devices never sent to.
    holdout: f64,
    /// A batch's data by user.
    data: HashMap<String, Fields>,
    /// The notification's id: with the device, what assigns a variant.
    notification: String,
    /// What counts as a conversion: `(event name, within ms)`.
    conversion: Option<(String, i64)>,
    /// A rollout, and when it is decided (epoch ms).
    rollout: Option<(crate::rollout::Rollout, i64)>,
}

/// The templates of each copy (`None` for one without placeholders): the
/// notification's alone, or each variant's over it. The notification's
/// own copy is checked first, so a fault in it is named there and not once
/// per variant.
///
/// # Errors
/// `invalid_notification` naming every bad field.
pub fn copies(
    notification: &NotificationRequest,
    variants: &[VariantRequest],
    data_allowed: bool,
) -> Result<Vec<Option<Copy>>, AppError> {
    let base = source(notification, None, "notification");
    let own = parse(&base, data_allowed)?;
    if variants.is_empty() {
        return Ok(vec![own]);
    }
    variants
        .iter()
        .enumerate()
        .map(|(i, variant)| {
            let prefix = format!("notification.variants[{i}]");
            parse(&source(notification, Some(variant), &prefix), data_allowed)
        })
        .collect()
}

fn source<'a>(
    notification: &'a NotificationRequest,
    variant: Option<&'a VariantRequest>,
    prefix: &'a str,
) -> CopySource<'a> {
    let pick = |own: Option<&'a str>, theirs: Option<&'a Option<String>>| match theirs {
        Some(Some(text)) => Some(text.as_str()),
        _ => own,
    };
    CopySource {
        prefix,
        title: pick(Some(notification.title.as_str()), variant.map(|v| &v.title)).unwrap_or_default(),
        body: pick(notification.body.as_deref(), variant.map(|v| &v.body)),
        url: pick(notification.url.as_deref(), variant.map(|v| &v.url)),
        image: pick(notification.image.as_deref(), variant.map(|v| &v.image)),
        action_titles: (variant.and_then(|v| v.actions.as_deref()))
            .unwrap_or(&notification.actions)
            .iter()
            .map(|a| a.title.as_str())
            .collect(),
    }
}

fn parse(source: &CopySource<'_>, data_allowed: bool) -> Result<Option<Copy>, AppError> {
    let copy = Copy::parse(source, data_allowed)
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

/// One recipient's rendering.
struct Row {
    recipient: Recipient,
    /// The arm it was assigned (`None`: the holdout).
    arm: Option<usize>,
    /// Its payload (empty for the holdout).
    payload: String,
    /// The fields it lacked.
    missed: Vec<String>,
    /// Outside a rollout's test share: it waits for the decision.
    rest: bool,
}

impl Personal {
    /// From the arms, the holdout share, a batch's data and the
    /// notification's id.
    pub fn new(arms: Vec<Arm>, holdout: f64, data: HashMap<String, Fields>, notification: String) -> Self {
        Self {
            arms,
            holdout,
            data,
            notification,
            conversion: None,
            rollout: None,
        }
    }

    /// With a rollout, decided at `decide_ms`.
    pub fn with_rollout(mut self, rollout: Option<crate::rollout::Rollout>, decide_ms: i64) -> Self {
        self.rollout = rollout.map(|r| (r, decide_ms));
        self
    }

    /// Whether `recipient` (in arm `arm`) waits for a rollout's decision:
    /// outside its test share, drawn independently of the arms.
    fn waits(&self, recipient: &Recipient, arm: Option<usize>) -> bool {
        match (&self.rollout, arm) {
            (Some((rollout, _)), Some(_)) => !askwell::experiment::in_share(
                &recipient.subscription_id.to_string(),
                &self.notification,
                rollout.test_share,
            ),
            _ => false,
        }
    }

    /// With what counts as a conversion (see [`conversion`]).
    pub fn with_conversion(mut self, conversion: Option<(String, i64)>) -> Self {
        self.conversion = conversion;
        self
    }

    /// Whether it is an experiment (variants or a holdout).
    fn is_experiment(&self) -> bool {
        self.arms.len() > 1 || self.holdout > 0.0
    }

    /// `recipient`'s arm: the core's assignment of (device, notification),
    /// so a retried or repeated send keeps its variant.
    fn arm_of(&self, recipient: &Recipient) -> Option<usize> {
        if !self.is_experiment() {
            return Some(0);
        }
        let labels: Vec<String> = (0..self.arms.len()).map(|i| i.to_string()).collect();
        let choices: Vec<askwell::experiment::Arm<'_>> = (self.arms.iter().zip(&labels))
            .map(|(arm, label)| askwell::experiment::Arm {
                id: label,
                weight: arm.weight,
            })
            .collect();
        let subject = recipient.subscription_id.to_string();
        match askwell::experiment::assign(&subject, &self.notification, self.holdout, &choices) {
            askwell::experiment::Assignment::Variant(label) => label.parse().ok(),
            askwell::experiment::Assignment::Holdout => None,
        }
    }

    /// `recipient`'s payload JSON from `arm`; the fields they lack go into
    /// `missed`.
    fn render<'c>(&'c self, arm: &'c Arm, recipient: &Recipient, missed: &mut Vec<&'c str>) -> String {
        let Some(copy) = &arm.copy else {
            return Value::Object(arm.base.clone()).to_string();
        };
        let empty = Fields::new();
        let traits = crate::journeys::fields(&recipient.traits);
        let data = recipient
            .user_id
            .as_deref()
            .and_then(|u| self.data.get(u))
            .unwrap_or(&empty);
        let rendered = copy.render(&traits, data, missed);
        let mut object = arm.base.clone();
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

    /// Every recipient rendered, and a census per arm.
    fn rows(&self, recipients: Vec<Recipient>) -> (Vec<Row>, Vec<Census>) {
        let mut censuses = vec![Census::default(); self.arms.len()];
        let rows = recipients
            .into_iter()
            .map(|recipient| {
                let arm = self.arm_of(&recipient);
                let rest = self.waits(&recipient, arm);
                let mut missed = Vec::new();
                let payload = match arm {
                    Some(i) => {
                        let payload = self.render(&self.arms[i], &recipient, &mut missed);
                        censuses[i].record(&missed);
                        payload
                    }
                    None => String::new(),
                };
                let missed = missed.iter().map(|m| (*m).to_owned()).collect();
                Row {
                    recipient,
                    arm,
                    payload,
                    missed,
                    rest,
                }
            })
            .collect();
        (rows, censuses)
    }

    /// An arm's variant id (`sent` for the one copy of a holdout test),
    /// or `holdout`.
    fn label(&self, arm: Option<usize>) -> Option<String> {
        match arm {
            Some(i) => self.arms[i]
                .id
                .clone()
                .or_else(|| self.is_experiment().then(|| crate::variants::SENT.to_owned())),
            None => Some(askwell::model::HOLDOUT.to_owned()),
        }
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
    let personal = match prepared.personal {
        Some(personal) => personal,
        None => Personal::plain(&prepared.notification)?,
    };
    // Rendering 100,000 payloads takes a fraction of a second: off the
    // async workers, so other requests are not held up meanwhile.
    let (personal, rows, censuses) = tokio::task::spawn_blocking(move || {
        let (rows, censuses) = personal.rows(recipients);
        (personal, rows, censuses)
    })
    .await
    .map_err(|err| AppError::Database(sqlx::Error::Protocol(format!("rendering failed: {err}"))))?;
    for (arm, census) in personal.arms.iter().zip(&censuses) {
        if let Some(copy) = &arm.copy {
            refuse_unknown(census, copy)?;
        }
    }
    if prepared.dry_run {
        return Ok(Outcome::DryRun(dry_run(&personal, &rows, &censuses)));
    }
    let rollout = personal.rollout_plan(&rows)?;
    let rendered: Vec<RenderedRow> = rows
        .into_iter()
        .map(|row| RenderedRow {
            subscription_id: row.recipient.subscription_id,
            variant: if row.rest { None } else { personal.label(row.arm) },
            payload: match row.arm {
                Some(_) if row.rest => Rendered::AwaitingWinner,
                Some(_) if fits(&row.payload) => Rendered::Payload(row.payload),
                Some(_) => Rendered::TooLarge,
                None => Rendered::Withheld,
            },
        })
        .collect();
    let experiment = Experiment {
        variants: if personal.is_experiment() {
            (0..personal.arms.len())
                .filter_map(|i| personal.label(Some(i)))
                .collect()
        } else {
            Vec::new()
        },
        conversion: personal.conversion.clone(),
        rollout,
    };
    let created = state
        .store
        .notification_create_rendered(
            &prepared.notification,
            &rendered,
            &experiment,
            &prepared.schedule,
            &zone,
        )
        .await?;
    Ok(Outcome::Created(created))
}

impl Personal {
    /// One arm holding the notification's own payload (a plain send that
    /// still reads its recipients: a dry run).
    fn plain(notification: &NewNotification) -> Result<Self, AppError> {
        let base = match serde_json::from_str(&notification.payload) {
            Ok(Value::Object(base)) => base,
            _ => {
                return Err(AppError::Database(sqlx::Error::Protocol(
                    "unreachable: a prepared payload is a JSON object".into(),
                )))
            }
        };
        let arm = Arm {
            id: None,
            weight: 1.0,
            base,
            copy: None,
        };
        Ok(Self::new(vec![arm], 0.0, HashMap::new(), notification.id.clone()))
    }
}

impl Personal {
    /// A rollout's plan as stored: the share and metric, each arm's copy,
    /// and the batch data of the users who wait (what the decision renders
    /// the rest from).
    fn rollout_plan(&self, rows: &[Row]) -> Result<Option<RolloutPlan>, AppError> {
        let Some((rollout, decide_ms)) = &self.rollout else {
            return Ok(None);
        };
        let waiting: HashSet<&str> = rows
            .iter()
            .filter(|row| row.rest)
            .filter_map(|row| row.recipient.user_id.as_deref())
            .collect();
        let plan = crate::rollout::Plan {
            test_share: rollout.test_share,
            metric: rollout.metric,
            arms: self
                .arms
                .iter()
                .map(|arm| crate::rollout::StoredArm {
                    id: arm.id.clone(),
                    weight: arm.weight,
                    base: arm.base.clone(),
                })
                .collect(),
            data: self
                .data
                .iter()
                .filter(|(user, _)| waiting.contains(user.as_str()))
                .map(|(user, fields)| (user.clone(), fields.clone()))
                .collect(),
        };
        let plan = serde_json::to_string(&plan)
            .map_err(|err| AppError::Database(sqlx::Error::Protocol(format!("a rollout's plan: {err}"))))?;
        Ok(Some(RolloutPlan {
            plan,
            decide_ms: *decide_ms,
            decision: None,
        }))
    }

    /// A rollout's rest rendered with this (one) arm: what each device
    /// gets, in order (the rest is not part of the test: no variant).
    pub fn render_rest(&self, recipients: Vec<Recipient>) -> Vec<Rendered> {
        let (rows, _) = self.rows(recipients);
        rows.into_iter()
            .map(|row| {
                if fits(&row.payload) {
                    Rendered::Payload(row.payload)
                } else {
                    Rendered::TooLarge
                }
            })
            .collect()
    }
}

/// What [`send`] did.
#[derive(Debug)]
pub enum Outcome {
    /// Enqueued.
    Created(Created),
    /// The dry run's answer.
    DryRun(Value),
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
/// three of them are, and what those three would see (and, in an A/B test,
/// how many each variant and the holdout would get).
fn dry_run(personal: &Personal, rows: &[Row], censuses: &[Census]) -> Value {
    let mut by_service: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_variant: BTreeMap<String, u64> = BTreeMap::new();
    let (mut defaulted, mut too_large) = (0_u64, 0_u64);
    for row in rows {
        *by_service.entry(push_service(&row.recipient.endpoint)).or_default() += 1;
        if row
            .recipient
            .time_zone
            .as_deref()
            .and_then(askwell::journey::zone)
            .is_none()
        {
            defaulted += 1;
        }
        if row.arm.is_some() && !fits(&row.payload) {
            too_large += 1;
        }
        if let Some(label) = personal.is_experiment().then(|| personal.label(row.arm)).flatten() {
            *by_variant.entry(label).or_default() += 1;
        }
    }
    let mut fallbacks: BTreeMap<String, u64> = BTreeMap::new();
    for census in censuses {
        for (field, n) in &census.missing {
            *fallbacks.entry(field.clone()).or_default() += n;
        }
    }
    let samples: Vec<Value> = rows
        .iter()
        .filter(|row| row.arm.is_some())
        .take(SAMPLES)
        .map(|row| {
            json!({
                "subscription": row.recipient.subscription_id,
                "user": row.recipient.user_id,
                "variant": personal.label(row.arm),
                "payload": serde_json::from_str::<Value>(&row.payload).unwrap_or(Value::Null),
                "bytes": row.payload.len(),
                "fallbacks": row.missed,
            })
        })
        .collect();
    let mut answer = json!({
        "dry_run": true,
        "recipients": rows.len(),
        "by_push_service": by_service,
        "defaulted_time_zone": defaulted,
        "too_large": too_large,
        "fallbacks": fallbacks,
        "samples": samples,
    });
    if personal.is_experiment() {
        answer["by_variant"] = json!(by_variant);
    }
    if personal.rollout.is_some() {
        let rest = rows.iter().filter(|row| row.rest).count();
        let tested = rows.iter().filter(|row| row.arm.is_some() && !row.rest).count();
        answer["rollout"] = json!({ "test": tested, "rest": rest });
    }
    if !personal.data.is_empty() {
        let reached: HashSet<&str> = rows.iter().filter_map(|r| r.recipient.user_id.as_deref()).collect();
        answer["batch_users_without_devices"] = json!(personal.data.len() - reached.len());
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
