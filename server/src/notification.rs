//! A notification from its request to the payload the workers push: the
//! checks and the payload building behind both `POST /v1/notify` and the
//! CLI's `send`, so the two refuse the same input with the same words.
//!
//! The payload is the core's [`PushPayload`] (the type the service worker
//! reads back with `PushPayload::read`), serialised by its `serde` impl, plus
//! the app's `data`: a value passed through untouched. `data` stays out of
//! `PushPayload` because the worker already keeps the whole raw payload as
//! the notification's `data`; a field for it would only add a copy to the
//! worker's bundle.

use askwell::journey::{Deliver, LocalTime};
use askwell::model::{PushAction, PushPayload};
use askwell::one_tap;
use askwell::template::is_safe_url;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;
use crate::push::Urgency;
use crate::secret::ordered_id;
use crate::store::{Audience, NewNotification, Recipients, Schedule};
use crate::AppError;

/// Largest plaintext every browser accepts (Firefox for Android: 3052 bytes).
pub const MAX_PLAINTEXT: usize = 3052;
/// Room kept for the per-delivery id the workers add
/// (`,"delivery":"<32 hex>:<row id>"`).
const DELIVERY_ID_ROOM: usize = 64;
/// Default time a push service keeps an undelivered message: 4 weeks, the
/// longest it may ask for (RFC 8030 §5.2 leaves the cap to the service;
/// FCM's is 4 weeks).
pub const DEFAULT_TTL: u32 = 28 * 24 * 3600;
/// Longest idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 200;
/// Furthest ahead `deliver.at` may be: 365 days (a typo'd year is refused,
/// not kept in the outbox for a decade).
pub const MAX_SCHEDULE_AHEAD_MS: i64 = 365 * 24 * 3600 * 1000;

/// Body of `POST /v1/notify`; the CLI's `send` builds one too.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest {
    /// Who receives it (absent with `batch`).
    #[serde(default)]
    pub to: Target,
    /// Instead of `to`: one user per item, each with the data its copy
    /// reads as `{data.*}` (see [`crate::personal`]).
    pub batch: Option<Vec<BatchItem>>,
    /// Answer who would receive it and what they would see; send nothing.
    pub dry_run: Option<bool>,
    /// With `notification.variants` or `holdout`: what counts as a
    /// conversion, `{ event, within? }` (a user event of `POST /v1/track`
    /// or a forwarded page action, within `within` of the push; default a
    /// day). Read by hand so every fault names its field.
    pub conversion: Option<Value>,
    /// With `notification.variants`: test them on a share first and send
    /// the winner to the rest, `{ test_share, decide_after, metric? }` (see
    /// [`crate::rollout`]); read by hand so every fault names its field.
    pub rollout: Option<Value>,
    /// What the service worker shows.
    pub notification: NotificationRequest,
    /// Seconds the push service keeps it (default [`DEFAULT_TTL`]).
    pub ttl: Option<u32>,
    /// RFC 8030 urgency, as text: an unknown one is `invalid_urgency` naming
    /// the field, not serde's generic `invalid_request`.
    pub urgency: Option<String>,
    /// RFC 8030 topic (replaces an undelivered message with the same topic).
    pub topic: Option<String>,
    /// Repeating it returns the first notification instead of sending twice.
    pub idempotency_key: Option<String>,
    /// Its category for the delivery policy (`replies`, `marketing`): the
    /// category's caps and quiet hours apply, and people can opt out of it.
    pub category: Option<String>,
    /// When: `{ at?, local_time? | window? }` (see [`schedule`]); read by
    /// hand so that every fault names its field.
    pub deliver: Option<Value>,
}

/// `{ topic }`, `{ user }` or `{ all: true }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Subscribers of this topic.
    pub topic: Option<String>,
    /// This app user's subscriptions.
    pub user: Option<String>,
    /// Every subscription.
    pub all: Option<bool>,
    /// The devices in this segment: a condition over user traits and
    /// topics ([`askwell::segment`]), read by hand so every fault names
    /// its path.
    #[serde(rename = "where")]
    pub condition: Option<Value>,
    /// The devices in the named segment (`PUT /v1/segments/{id}`); the
    /// route replaces it with its condition before the checks.
    pub segment: Option<String>,
}

/// One item of `batch`: `{ to: { user }, data? }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// The user (only `{ user }`).
    pub to: Target,
    /// Flat names to strings, numbers or booleans, read as `{data.<name>}`.
    pub data: Option<Value>,
}

/// A checked `POST /v1/notify`: the notification, when it is due, and
/// (when its copy has placeholders or it is a batch) what each recipient's
/// payload is rendered from.
#[derive(Debug)]
pub struct Prepared {
    /// The notification (its `payload` the unrendered one, when personal).
    pub notification: NewNotification,
    /// When its deliveries are due.
    pub schedule: Schedule,
    /// Per-recipient copy.
    pub personal: Option<crate::personal::Personal>,
    /// Answer without sending.
    pub dry_run: bool,
}

/// `notification` of the request. Every optional field may be `null` (the
/// OpenAPI file allows it), which means absent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotificationRequest {
    /// Title (required, not blank).
    pub title: String,
    /// Body text.
    pub body: Option<String>,
    /// Icon URL.
    pub icon: Option<String>,
    /// Large image URL.
    pub image: Option<String>,
    /// Monochrome badge URL.
    pub badge: Option<String>,
    /// Page opened on click.
    pub url: Option<String>,
    /// Replaces an earlier notification with the same tag.
    pub tag: Option<String>,
    /// Alert again when replacing a tagged notification.
    pub renotify: Option<bool>,
    /// Stay until the user acts.
    pub require_interaction: Option<bool>,
    /// No sound or vibration.
    pub silent: Option<bool>,
    /// Buttons.
    #[serde(default)]
    pub actions: Vec<ActionRequest>,
    /// The app's own value, pushed as is.
    pub data: Option<Value>,
    /// What a digest of several held pushes of one topic says instead
    /// (`{count}` is how many): `{ title, body? }`.
    pub digest: Option<DigestRequest>,
    /// A push A/B test: each device gets one variant's copy (the first is
    /// the baseline), assigned by the core's hash of (device, notification).
    pub variants: Option<Vec<VariantRequest>>,
    /// With `variants`: the share of devices never sent to (0 to 0.5).
    pub holdout: Option<f64>,
}

/// One of `notification.variants`: its own copy over the notification's
/// (absent fields are the notification's), and its relative weight.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantRequest {
    /// `a`, `b`, `short-title` (1 to 32 of `A-Z a-z 0-9 _ -`, not `holdout`).
    pub id: String,
    /// Title.
    pub title: Option<String>,
    /// Body.
    pub body: Option<String>,
    /// Large image URL.
    pub image: Option<String>,
    /// Page opened on click.
    pub url: Option<String>,
    /// Buttons instead of the notification's (an empty list: none).
    pub actions: Option<Vec<ActionRequest>>,
    /// Relative weight (default 1).
    pub weight: Option<f64>,
}

/// `notification.digest` of the request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestRequest {
    /// Title of the digest (`"{count} new replies from Bill"`).
    pub title: String,
    /// Body of the digest.
    pub body: Option<String>,
}

/// A button of the request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Action id.
    pub action: String,
    /// Label.
    pub title: String,
    /// Icon URL.
    pub icon: Option<String>,
    /// Page opened when this button is clicked.
    pub url: Option<String>,
    /// `askwell:snooze`: how many hours everything pauses (default a day).
    pub hours: Option<u32>,
    /// Askwell's buttons: the confirmation's text (default English).
    pub confirm: Option<String>,
}

/// What is stored and pushed: the worker's payload and the app's `data`
/// beside it, in one JSON object.
#[derive(Serialize)]
struct PushBody<'a> {
    #[serde(flatten)]
    payload: &'a PushPayload,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    /// Kept for the workers, which use it for a digest and never push it
    /// (see [`crate::delivery::personalised`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<Value>,
}

impl NotifyRequest {
    /// Checks a request without `deliver` and builds the notification to
    /// enqueue, due now, under a new id (journeys).
    ///
    /// # Errors
    /// As [`NotifyRequest::prepare_scheduled`]; a `deliver` is
    /// `invalid_schedule` (refused, never dropped).
    pub fn prepare(self) -> Result<NewNotification, AppError> {
        let (notification, schedule) = self.prepare_scheduled(crate::store::now_ms())?;
        if schedule != Schedule::default() {
            return Err(bad_schedule("deliver: not accepted here (POST /v1/notify takes it)"));
        }
        Ok(notification)
    }

    /// Checks the request and builds the notification to enqueue, under a
    /// new unguessable id ordered by time ([`ordered_id`]), and when its deliveries are due (`now_ms` bounds
    /// `deliver.at`). The checks run in a fixed order (headers, title, size,
    /// recipients, schedule), so an input with several faults always names
    /// the same one.
    ///
    /// # Errors
    /// `invalid_*` naming the field, or `payload_too_large`.
    pub fn prepare_scheduled(self, now_ms: i64) -> Result<(NewNotification, Schedule), AppError> {
        if self.batch.is_some() || self.dry_run.is_some() {
            return Err(AppError::invalid(
                ErrorCode::InvalidTarget,
                "batch and dry_run: only POST /v1/notify takes them",
            ));
        }
        let prepared = self.prepare_with(now_ms, false)?;
        Ok((prepared.notification, prepared.schedule))
    }

    /// [`NotifyRequest::prepare_scheduled`] for `POST /v1/notify`: the copy
    /// may hold `{user.*}` placeholders (and `{data.*}` with `batch`), each
    /// recipient's payload then rendered from [`Prepared::personal`];
    /// `dry_run` is kept for the caller.
    ///
    /// # Errors
    /// As [`NotifyRequest::prepare_scheduled`]; a bad placeholder or batch
    /// item is `invalid_notification` / `invalid_target` naming it.
    pub fn prepare_send(self, now_ms: i64) -> Result<Prepared, AppError> {
        self.prepare_with(now_ms, true)
    }

    /// The checks of both, in a fixed order (headers, title, copy, size,
    /// recipients, schedule), so an input with several faults always names
    /// the same one. Without `templates`, braces are literal text (a journey
    /// send is already rendered, and a trait value may hold a `{`).
    fn prepare_with(mut self, now_ms: i64, templates: bool) -> Result<Prepared, AppError> {
        let ttl = ttl(self.ttl)?;
        let urgency = urgency(self.urgency.as_deref())?;
        check_topic(self.topic.as_deref())?;
        check_idempotency_key(self.idempotency_key.as_deref())?;
        check_category(self.category.as_deref())?;
        check_urls(&self.notification)?;
        let offers_mute = check_all_actions(&self.notification, self.to.topic.as_deref(), self.category.as_deref())?;
        let dry_run = self.dry_run.take().unwrap_or(false);
        let batch = self.batch.take();
        let variants = self.notification.variants.take().unwrap_or_default();
        let holdout = self.notification.holdout.take();
        if !templates && (!variants.is_empty() || holdout.is_some()) {
            return Err(AppError::invalid(
                ErrorCode::InvalidNotification,
                "notification.variants and notification.holdout: only POST /v1/notify takes them",
            ));
        }
        crate::variants::check_variants(&variants, holdout)?;
        let conversion =
            crate::variants::conversion(self.conversion.take(), !variants.is_empty() || holdout.is_some())?;
        let rollout = crate::rollout::parse(self.rollout.take(), variants.len(), conversion.is_some())?;
        let copies = if templates {
            crate::personal::copies(&self.notification, &variants, batch.is_some())?
        } else {
            vec![None]
        };
        // What a mute button turns off travels with the push: the worker
        // has nothing else to go on.
        let muted = offers_mute.then(|| (self.to.topic.clone(), self.category.clone()));
        let per_recipient =
            copies.iter().any(Option::is_some) || batch.is_some() || !variants.is_empty() || holdout.is_some();
        let body = payload_value(self.notification, muted)?;
        let payload = serde_json::to_string(&body)
            .map_err(|e| AppError::invalid(ErrorCode::InvalidNotification, e.to_string()))?;
        if !per_recipient {
            check_size(&payload, "notification")?;
        }
        let (to, data) = match batch {
            Some(items) => {
                let (users, data) = crate::personal::batch(items, &self.to)?;
                (Recipients::Users(users), data)
            }
            None => (recipients(self.to)?, Default::default()),
        };
        let id = ordered_id(now_ms);
        let schedule = schedule(self.deliver, now_ms)?;
        if rollout.is_some() && schedule.local.is_some() {
            return Err(AppError::invalid(
                ErrorCode::InvalidSchedule,
                "rollout: not with deliver.local_time or deliver.window (the test share goes out together, so that it can be decided)",
            ));
        }
        let decide_ms = schedule.at_ms.map_or(now_ms, |at| at.max(now_ms)) + rollout.map_or(0, |r| r.decide_after_ms);
        let personal = per_recipient.then(|| {
            let arms = crate::variants::arms(&body, &variants, copies);
            crate::personal::Personal::new(arms, holdout.unwrap_or(0.0), data, id.clone())
                .with_conversion(conversion)
                .with_rollout(rollout, decide_ms)
        });
        let notification = NewNotification {
            id,
            idempotency_key: self.idempotency_key,
            payload,
            ttl,
            urgency,
            topic: self.topic,
            category: self.category,
            to,
        };
        Ok(Prepared {
            notification,
            schedule,
            personal,
            dry_run,
        })
    }
}

/// `deliver`: absent or `null` is now; else an object with `at` (RFC 3339:
/// not before then, at most [`MAX_SCHEDULE_AHEAD_MS`] ahead; a past one is
/// now) and/or one of `local_time` (`"HH:MM"`: the next one on the
/// recipient's clock) and `window` (`["HH:MM", "HH:MM"]`: now if inside it
/// on the recipient's clock, else its next start). A `null` member is absent.
///
/// # Errors
/// `invalid_schedule` naming the member.
pub fn schedule(deliver: Option<Value>, now_ms: i64) -> Result<Schedule, AppError> {
    let Some(deliver) = deliver.filter(|d| !d.is_null()) else {
        return Ok(Schedule::default());
    };
    let Value::Object(members) = deliver else {
        return Err(bad_schedule(
            "deliver: expected an object { at?, local_time? | window? }",
        ));
    };
    let mut schedule = Schedule::default();
    let (mut local_time, mut window) = (None, None);
    for (name, value) in members {
        match (name.as_str(), value) {
            ("at" | "local_time" | "window", Value::Null) => {}
            ("at", Value::String(text)) => schedule.at_ms = Some(at(&text, now_ms)?),
            ("at", _) => return Err(bad_schedule(AT_EXPECTED)),
            ("local_time", value) => {
                local_time = Some(local(&value).ok_or_else(|| {
                    bad_schedule(r#"deliver.local_time: expected "HH:MM" (24-hour clock), such as "09:00""#)
                })?);
            }
            ("window", value) => window = Some(window_of(&value)?),
            (other, _) => {
                return Err(bad_schedule(format!(
                    "deliver.{}: unknown field (expected at, local_time, window)",
                    shown(other)
                )))
            }
        }
    }
    schedule.local = match (local_time, window) {
        (Some(_), Some(_)) => {
            return Err(bad_schedule(
                "deliver: local_time and window are mutually exclusive (give one)",
            ))
        }
        (Some(time), None) => Some(Deliver::At(time)),
        (None, Some((start, end))) => Some(Deliver::Within(start, end)),
        (None, None) => None,
    };
    if schedule == Schedule::default() {
        return Err(bad_schedule(
            "deliver: expected at least one of at, local_time, window (omit deliver to send now)",
        ));
    }
    Ok(schedule)
}

const AT_EXPECTED: &str = "deliver.at: expected RFC 3339, such as 2026-12-24T18:00:00Z";

fn at(text: &str, now_ms: i64) -> Result<i64, AppError> {
    let at = text
        .parse::<jiff::Timestamp>()
        .map_err(|_| bad_schedule(AT_EXPECTED))?
        .as_millisecond();
    if at > now_ms.saturating_add(MAX_SCHEDULE_AHEAD_MS) {
        return Err(bad_schedule("deliver.at: at most 365 days ahead"));
    }
    Ok(at)
}

/// `"HH:MM"` of ASCII digits: the core's `LocalTime::parse` reads each
/// half with `u8::from_str`, which also takes a sign (`"+9:00"`).
fn local(value: &Value) -> Option<LocalTime> {
    let text = value.as_str()?;
    let digits = text.len() == 5
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| (i == 2) == (b == b':') && (i == 2 || b.is_ascii_digit()));
    digits.then(|| LocalTime::parse(text)).flatten()
}

fn window_of(value: &Value) -> Result<(LocalTime, LocalTime), AppError> {
    let expected = || {
        bad_schedule(
            r#"deliver.window: expected ["HH:MM", "HH:MM"] (start, end; 24-hour clock), such as ["09:00", "21:00"]"#,
        )
    };
    let Some([start, end]) = value.as_array().map(Vec::as_slice) else {
        return Err(expected());
    };
    let (start, end) = local(start).zip(local(end)).ok_or_else(expected)?;
    // An empty window would never hold: its "next start" would only look
    // like a window.
    if start == end {
        return Err(bad_schedule(
            "deliver.window: start and end are the same time (an empty window); an end before the start spans midnight",
        ));
    }
    Ok((start, end))
}

fn bad_schedule(message: impl Into<std::borrow::Cow<'static, str>>) -> AppError {
    AppError::invalid(ErrorCode::InvalidSchedule, message)
}

/// A client's member name in a message: quoted, at most 64 bytes.
fn shown(name: &str) -> String {
    let mut cut = name.len().min(64);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let quoted = format!("{:?}", &name[..cut]);
    if cut < name.len() {
        format!("{quoted}…")
    } else {
        quoted
    }
}

impl NotificationRequest {
    /// The worker's payload (absent options and flags take the reader's
    /// defaults) and the app's `data`.
    fn into_payload(self, muted: Option<(Option<String>, Option<String>)>) -> (PushPayload, Option<Value>) {
        let (topic, category) = muted.unwrap_or_default();
        let actions = push_actions(&self.actions);
        let payload = PushPayload {
            title: self.title,
            body: self.body.unwrap_or_default(),
            icon: self.icon,
            image: self.image,
            badge: self.badge,
            url: self.url,
            tag: self.tag,
            renotify: self.renotify.unwrap_or(false),
            require_interaction: self.require_interaction.unwrap_or(false),
            silent: self.silent.unwrap_or(false),
            actions,
            delivery: None,
            topic,
            category,
        };
        (payload, self.data)
    }
}

fn recipients(to: Target) -> Result<Recipients, AppError> {
    if to.segment.is_some() {
        return Err(AppError::invalid(
            ErrorCode::InvalidTarget,
            "to.segment: named segments are sent with POST /v1/notify",
        ));
    }
    let segment = to.condition.filter(|s| !s.is_null());
    match (to.topic, to.user, to.all, segment) {
        (Some(topic), None, None, None) if !topic.is_empty() => Ok(Recipients::Topic(topic)),
        (None, Some(user), None, None) if !user.is_empty() => Ok(Recipients::User(user)),
        (None, None, Some(true), None) => Ok(Recipients::All),
        (None, None, None, Some(segment)) => Audience::read(&segment, "to.where")
            .map(Recipients::Where)
            .map_err(|problems| AppError::invalid(ErrorCode::InvalidTarget, problems.to_string())),
        _ => Err(AppError::invalid(
            ErrorCode::InvalidTarget,
            "to: expected exactly one of { topic }, { user }, { all: true } or { where }",
        )),
    }
}

fn ttl(ttl: Option<u32>) -> Result<u32, AppError> {
    match ttl {
        Some(ttl) if ttl > DEFAULT_TTL => Err(AppError::invalid(
            ErrorCode::InvalidTtl,
            format!("ttl: at most {DEFAULT_TTL} seconds (4 weeks)"),
        )),
        ttl => Ok(ttl.unwrap_or(DEFAULT_TTL)),
    }
}

fn urgency(text: Option<&str>) -> Result<Option<Urgency>, AppError> {
    let Some(text) = text else { return Ok(None) };
    Urgency::parse(text).map(Some).ok_or_else(|| {
        AppError::invalid(
            ErrorCode::InvalidUrgency,
            "urgency: expected very-low, low, normal or high",
        )
    })
}

/// RFC 8030 §5.4: at most 32 characters of the base64url alphabet.
fn check_topic(topic: Option<&str>) -> Result<(), AppError> {
    let valid = |t: &str| {
        !t.is_empty() && t.len() <= 32 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if topic.is_some_and(|t| !valid(t)) {
        return Err(AppError::invalid(
            ErrorCode::InvalidTopic,
            "topic: expected 1 to 32 characters of [A-Za-z0-9_-] (RFC 8030)",
        ));
    }
    Ok(())
}

fn check_idempotency_key(key: Option<&str>) -> Result<(), AppError> {
    if key.is_some_and(|k| k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY) {
        return Err(AppError::invalid(
            ErrorCode::InvalidIdempotencyKey,
            format!("idempotency_key: expected 1 to {MAX_IDEMPOTENCY_KEY} characters"),
        ));
    }
    Ok(())
}

/// `notification.digest` as stored: a blank title is refused (a digest must
/// say something), `null` or absent is none.
fn digest_value(digest: Option<&DigestRequest>) -> Result<Option<Value>, AppError> {
    let Some(digest) = digest else { return Ok(None) };
    if digest.title.trim().is_empty() {
        return Err(AppError::invalid(
            ErrorCode::InvalidNotification,
            "notification.digest.title: required (what a digest of several pushes says; {count} is how many)",
        ));
    }
    let mut value = serde_json::json!({ "title": digest.title });
    if let Some(body) = &digest.body {
        value["body"] = Value::String(body.clone());
    }
    Ok(Some(value))
}

/// `category`: a name like an event's (1 to 64 of `A-Z a-z 0-9 _ . : -`).
/// Whether the policy knows it is checked by `POST /v1/notify`, which has
/// the policy.
fn check_category(category: Option<&str>) -> Result<(), AppError> {
    match category {
        Some(name) if !askwell::delivery::is_category(name) => Err(AppError::invalid(
            ErrorCode::InvalidNotification,
            "category: expected 1 to 64 of A-Z a-z 0-9 _ . : -",
        )),
        _ => Ok(()),
    }
}

/// `notification.actions`: of the ids starting `askwell:`, only
/// [`one_tap::MUTE`] and [`one_tap::SNOOZE`] (the worker handles them
/// itself); `hours` only on a snooze, 1 to a year; a mute only with
/// something to mute (a topic target or a category). Whether it offers a mute.
fn check_actions(
    path: &str,
    actions: &[ActionRequest],
    topic: Option<&str>,
    category: Option<&str>,
) -> Result<bool, AppError> {
    let bad =
        |i: usize, message: String| AppError::invalid(ErrorCode::InvalidNotification, format!("{path}[{i}]{message}"));
    let mut offers_mute = false;
    for (i, action) in actions.iter().enumerate() {
        let id = action.action.as_str();
        if one_tap::is_reserved(id) && id != one_tap::MUTE && id != one_tap::SNOOZE {
            return Err(bad(
                i,
                format!(
                    ".action: {} is not one of Askwell's buttons (expected {} or {}; the app's own ids do not start with {:?})",
                    shown(id),
                    one_tap::MUTE,
                    one_tap::SNOOZE,
                    one_tap::RESERVED_PREFIX
                ),
            ));
        }
        match (id, action.hours) {
            (one_tap::SNOOZE, Some(hours)) if !(1..=one_tap::MAX_SNOOZE_HOURS).contains(&hours) => {
                return Err(bad(i, format!(".hours: 1 to {} (a year)", one_tap::MAX_SNOOZE_HOURS)));
            }
            (one_tap::SNOOZE, _) | (_, None) => {}
            (_, Some(_)) => return Err(bad(i, format!(".hours: only for {}", one_tap::SNOOZE))),
        }
        if id == one_tap::MUTE {
            if topic.is_none() && category.is_none() {
                return Err(bad(
                    i,
                    format!(
                        ": {} needs something to mute: send to a topic or give a category",
                        one_tap::MUTE
                    ),
                ));
            }
            offers_mute = true;
        }
        for (field, url) in [(".url", &action.url), (".icon", &action.icon)] {
            if url.as_deref().is_some_and(|url| !is_safe_url(url)) {
                return Err(bad(i, format!("{field}: {NOT_A_SAFE_URL}")));
            }
        }
        if action.confirm.is_some() && !one_tap::is_reserved(id) {
            return Err(bad(
                i,
                ".confirm: only for Askwell's buttons (askwell:mute-topic, askwell:snooze)".into(),
            ));
        }
    }
    Ok(offers_mute)
}

/// Why a URL is refused: a click must not run script in the app's origin
/// (`javascript:`), nor open or show a document a push made up (`data:`).
const NOT_A_SAFE_URL: &str = "expected an http(s) or relative URL";

/// The notification's own URLs, whatever their scheme is written like
/// (the buttons' are checked with them, [`check_actions`]; templated ones
/// again, stricter, by the copy's parse).
fn check_urls(notification: &NotificationRequest) -> Result<(), AppError> {
    for (field, url) in [
        ("url", &notification.url),
        ("icon", &notification.icon),
        ("image", &notification.image),
        ("badge", &notification.badge),
    ] {
        if url.as_deref().is_some_and(|url| !is_safe_url(url)) {
            return Err(AppError::invalid(
                ErrorCode::InvalidNotification,
                format!("notification.{field}: {NOT_A_SAFE_URL}"),
            ));
        }
    }
    Ok(())
}

/// The notification's buttons and each variant's, checked as
/// [`check_actions`] at their own paths. Whether any offers a mute: the
/// push then says what it mutes, whichever variant a device gets.
fn check_all_actions(
    notification: &NotificationRequest,
    topic: Option<&str>,
    category: Option<&str>,
) -> Result<bool, AppError> {
    let mut offers_mute = check_actions("notification.actions", &notification.actions, topic, category)?;
    for (i, variant) in notification.variants.iter().flatten().enumerate() {
        if let Some(actions) = &variant.actions {
            let path = format!("notification.variants[{i}].actions");
            offers_mute |= check_actions(&path, actions, topic, category)?;
        }
    }
    Ok(offers_mute)
}

/// The worker's buttons from the request's.
pub(crate) fn push_actions(actions: &[ActionRequest]) -> Vec<PushAction> {
    actions
        .iter()
        .map(|a| PushAction {
            action: a.action.clone(),
            title: a.title.clone(),
            icon: a.icon.clone(),
            url: a.url.clone(),
            hours: a.hours,
            confirm: a.confirm.clone(),
        })
        .collect()
}

/// The payload (Askwell's marker included) as a JSON object, checked for
/// a title.
fn payload_value(
    notification: NotificationRequest,
    muted: Option<(Option<String>, Option<String>)>,
) -> Result<serde_json::Map<String, Value>, AppError> {
    // The worker's reader refuses a blank title too (`PushPayload::read`);
    // refusing it here keeps a useless push from reaching every device.
    if notification.title.trim().is_empty() {
        return Err(AppError::invalid(
            ErrorCode::InvalidNotification,
            "notification.title: required",
        ));
    }
    let digest = digest_value(notification.digest.as_ref())?;
    let (payload, data) = notification.into_payload(muted);
    let body = PushBody {
        payload: &payload,
        data: data.as_ref(),
        digest,
    };
    match serde_json::to_value(&body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(AppError::invalid(
            ErrorCode::InvalidNotification,
            "unreachable: a payload is an object",
        )),
        Err(e) => Err(AppError::invalid(ErrorCode::InvalidNotification, e.to_string())),
    }
}

/// Whether a payload fits every browser's push limit with the delivery id
/// the workers add.
pub fn fits(payload: &str) -> bool {
    payload.len() + DELIVERY_ID_ROOM <= MAX_PLAINTEXT
}

/// `payload_too_large` naming `what` when the payload does not [`fits`].
fn check_size(payload: &str, what: &str) -> Result<(), AppError> {
    if fits(payload) {
        return Ok(());
    }
    let limit = MAX_PLAINTEXT - DELIVERY_ID_ROOM;
    Err(AppError::PayloadTooLarge(format!(
        "{what}: {} bytes of JSON; at most {limit} fit every browser's push limit ({MAX_PLAINTEXT} bytes)",
        payload.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-06-01T12:00:00Z.
    const NOW: i64 = 1_780_315_200_000;

    fn request(notification: serde_json::Value) -> NotifyRequest {
        serde_json::from_value(serde_json::json!({ "to": { "all": true }, "notification": notification }))
            .expect("a request")
    }

    #[test]
    fn absent_and_null_fields_are_left_out_of_the_payload() {
        let (prepared, schedule) =
            request(serde_json::json!({ "title": "Hi", "body": null, "icon": null, "actions": [] }))
                .prepare_scheduled(NOW)
                .expect("valid");
        assert_eq!(schedule, Schedule::default(), "no deliver: now");
        assert_eq!(prepared.payload, r#"{"askwell":1,"title":"Hi"}"#);
        assert_eq!((prepared.ttl, prepared.urgency), (DEFAULT_TTL, None));
    }

    #[test]
    fn the_app_data_is_passed_through_beside_the_fields() {
        let prepared = request(serde_json::json!({ "title": "Hi", "url": "/x", "data": { "thread": [1, "a"] } }))
            .prepare()
            .expect("valid");
        let value: Value = serde_json::from_str(&prepared.payload).expect("JSON");
        assert_eq!(
            value,
            serde_json::json!({ "askwell": 1, "title": "Hi", "url": "/x", "data": { "thread": [1, "a"] } })
        );
    }

    #[test]
    fn every_urgency_is_accepted_by_its_wire_name() {
        for urgency in Urgency::ALL {
            let req = NotifyRequest {
                urgency: Some(urgency.as_str().to_owned()),
                ..request(serde_json::json!({ "title": "Hi" }))
            };
            assert_eq!(req.prepare().expect("valid").urgency, Some(urgency));
        }
    }

    fn local_time(text: &str) -> LocalTime {
        LocalTime::parse(text).expect("HH:MM")
    }

    #[test]
    fn deliver_reads_at_local_time_and_window_and_their_combinations() {
        let read = |deliver: Value| schedule(Some(deliver), NOW).expect("valid");
        let christmas = 1_798_135_200_000; // 2026-12-24T18:00:00Z
        assert_eq!(
            read(serde_json::json!({ "at": "2026-12-24T18:00:00Z" })),
            Schedule {
                at_ms: Some(christmas),
                local: None
            }
        );
        assert_eq!(
            read(serde_json::json!({ "local_time": "09:00" })),
            Schedule {
                at_ms: None,
                local: Some(Deliver::At(local_time("09:00")))
            }
        );
        assert_eq!(
            read(
                serde_json::json!({ "window": ["21:00", "07:30"], "at": "2026-12-24T19:00:00+01:00", "local_time": null })
            ),
            Schedule {
                at_ms: Some(christmas),
                local: Some(Deliver::Within(local_time("21:00"), local_time("07:30")))
            },
            "a window may span midnight; a null member is absent"
        );
        assert_eq!(schedule(None, NOW).expect("absent"), Schedule::default());
        assert_eq!(schedule(Some(Value::Null), NOW).expect("null"), Schedule::default());
        assert_eq!(
            read(serde_json::json!({ "at": "2001-01-01T00:00:00Z" })).at_ms,
            Some(978_307_200_000),
            "a past at is kept (the store sends it now)"
        );
    }

    #[test]
    fn every_bad_deliver_is_refused_naming_its_member() {
        let a_year_and_a_day = jiff::Timestamp::from_millisecond(NOW + MAX_SCHEDULE_AHEAD_MS + 86_400_000)
            .expect("in range")
            .to_string();
        let cases = [
            (serde_json::json!("tomorrow"), "deliver: expected an object"),
            (serde_json::json!([]), "deliver: expected an object"),
            (serde_json::json!({}), "deliver: expected at least one of"),
            (serde_json::json!({ "at": null }), "deliver: expected at least one of"),
            (
                serde_json::json!({ "at": "2026-12-24 18:00" }),
                "deliver.at: expected RFC 3339",
            ),
            (
                serde_json::json!({ "at": "2026-13-01T00:00:00Z" }),
                "deliver.at: expected RFC 3339",
            ),
            (
                serde_json::json!({ "at": 1_798_135_200 }),
                "deliver.at: expected RFC 3339",
            ),
            (
                serde_json::json!({ "at": a_year_and_a_day }),
                "deliver.at: at most 365 days ahead",
            ),
            (
                serde_json::json!({ "local_time": "9:00" }),
                "deliver.local_time: expected \"HH:MM\"",
            ),
            (
                serde_json::json!({ "local_time": "24:00" }),
                "deliver.local_time: expected \"HH:MM\"",
            ),
            (
                serde_json::json!({ "local_time": "09:60" }),
                "deliver.local_time: expected \"HH:MM\"",
            ),
            (
                serde_json::json!({ "local_time": "+9:00" }),
                "deliver.local_time: expected \"HH:MM\"",
            ),
            (
                serde_json::json!({ "local_time": 900 }),
                "deliver.local_time: expected \"HH:MM\"",
            ),
            (
                serde_json::json!({ "local_time": ["09:00"] }),
                "deliver.local_time: expected \"HH:MM\"",
            ),
            (
                serde_json::json!({ "window": "09:00-21:00" }),
                "deliver.window: expected [\"HH:MM\", \"HH:MM\"]",
            ),
            (serde_json::json!({ "window": ["09:00"] }), "deliver.window: expected"),
            (
                serde_json::json!({ "window": ["09:00", "21:00", "22:00"] }),
                "deliver.window: expected",
            ),
            (
                serde_json::json!({ "window": ["09:00", 21] }),
                "deliver.window: expected",
            ),
            (
                serde_json::json!({ "window": { "start": "09:00" } }),
                "deliver.window: expected",
            ),
            (
                serde_json::json!({ "window": ["09:00", "09:00"] }),
                "deliver.window: start and end are the same",
            ),
            (
                serde_json::json!({ "local_time": "09:00", "window": ["09:00", "21:00"] }),
                "deliver: local_time and window are mutually exclusive",
            ),
            (serde_json::json!({ "in": "1h" }), "deliver.\"in\": unknown field"),
            (serde_json::json!({ "\u{0}x": 1 }), "deliver.\"\\0x\": unknown field"),
        ];
        for (deliver, expected) in cases {
            let err = schedule(Some(deliver.clone()), NOW).expect_err(&deliver.to_string());
            assert_eq!(err.code(), ErrorCode::InvalidSchedule, "{deliver}");
            assert!(err.to_string().starts_with(expected), "{deliver}: {err}");
        }
        let long = "x".repeat(10_000);
        let err = schedule(Some(serde_json::json!({ long: 1 })), NOW).expect_err("unknown");
        assert!(err.to_string().len() < 200, "{err}");
    }
}
