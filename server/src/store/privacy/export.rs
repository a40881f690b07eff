//! `GET /v1/users/{id}/export`: what is stored about a user, read from one
//! snapshot. Narrower than an erasure (see the parent module): the user's
//! own subscriptions, their deliveries and their devices' events, never
//! another account's subscription on a shared browser; and what the app's
//! backend told about the user (traits, time zone, tracked events).

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{bind_texts, ints, placeholders, CHUNK};
use crate::store::users::{stored_event, traits_of};
use crate::store::{Backend, Store, Traits};

/// Everything stored about one user.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UserExport {
    /// The user id asked for.
    pub user: String,
    /// Their traits (`PUT /v1/users/{id}`), sorted by name; empty if none.
    pub traits: Traits,
    /// The time zone their backend set.
    pub time_zone: Option<String>,
    /// Their push subscriptions.
    pub subscriptions: Vec<ExportedSubscription>,
    /// Notifications sent (or waiting to be sent) to those subscriptions.
    pub deliveries: Vec<ExportedDelivery>,
    /// Funnel and notification events of their devices.
    pub events: Vec<ExportedEvent>,
    /// Events the app's backend tracked for them (`POST /v1/track`), in seq order.
    pub tracked_events: Vec<ExportedTrackedEvent>,
    /// The journeys they entered, oldest first.
    pub journeys: Vec<ExportedJourney>,
    /// What they turned off, as the user and on each device.
    pub preferences: Vec<ExportedPreferences>,
}

/// One subject's preferences (see `POST /v1/preferences`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportedPreferences {
    /// `user:{id}` or `device:{subscription id}`.
    pub subject: String,
    /// Categories turned off.
    pub muted: Vec<String>,
    /// Topics turned off.
    pub muted_topics: Vec<String>,
    /// Paused until (epoch ms; 9223372036854775807: until turned back on).
    pub paused_until: Option<i64>,
}

/// One journey instance of the user.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportedJourney {
    /// Journey id.
    pub journey: String,
    /// The version it ran.
    pub version: i64,
    /// Its key (a cart id), `""` when the journey is not keyed.
    pub key: String,
    /// When the entry event happened (epoch ms).
    pub entered: i64,
    /// The entry event's properties the journey kept (for its templates).
    pub event: serde_json::Value,
    /// In the journey's holdout (never sent to).
    pub holdout: bool,
    /// `waiting`, or why it ended (`completed`, `exit-step`, `event`, `deleted`).
    pub state: String,
    /// The event that ended it.
    pub ended_by: Option<String>,
    /// When its goal event happened, if it did.
    pub converted: Option<i64>,
}

/// One event from `POST /v1/track`, named as that route names its fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportedTrackedEvent {
    /// Store-wide position.
    pub seq: i64,
    /// Event name.
    pub name: String,
    /// What it is about.
    pub key: Option<String>,
    /// When it happened (epoch ms).
    pub at: i64,
    /// Flat scalars.
    pub properties: Traits,
    /// The backend's dedup id.
    pub id: Option<String>,
    /// When the server stored it (epoch ms).
    pub received: i64,
}

/// A subscription without its `p256dh` key and `auth` secret: those are
/// credentials the browser holds (they encrypt pushes and prove possession),
/// not information about the person, and an export travels further than the
/// database should let them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportedSubscription {
    /// Row id.
    pub id: i64,
    /// The push service URL.
    pub endpoint: String,
    /// Stored at (epoch ms).
    pub created: i64,
    /// Last posted at (epoch ms).
    pub updated: i64,
    /// When the browser said it expires (epoch ms).
    pub expires: Option<i64>,
    /// Subscribed topics, sorted.
    pub topics: Vec<String>,
    /// The labels the page sent for them (topic → label).
    pub topic_labels: std::collections::BTreeMap<String, String>,
    /// The device and prompt that won it.
    pub attribution: ExportedAttribution,
    /// The device's time zone, as its page sent it.
    pub time_zone: Option<String>,
}

/// Device id, prompt and variant a row is attributed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportedAttribution {
    /// Anonymous device id.
    pub anon: Option<String>,
    /// Prompt id.
    pub prompt: Option<String>,
    /// Variant id.
    pub variant: Option<String>,
}

/// One notification to one subscription.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportedDelivery {
    /// Delivery row id.
    pub id: i64,
    /// The subscription it went to.
    pub subscription: Option<i64>,
    /// `queued`, `retrying`, `delivered`, `failed`, `pruned` or `cancelled`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// The push service's last HTTP status.
    pub last_code: Option<i64>,
    /// Last status change (epoch ms).
    pub updated: i64,
    /// Clicked at (epoch ms).
    pub clicked: Option<i64>,
    /// Dismissed at (epoch ms).
    pub dismissed: Option<i64>,
    /// Copied from the subscription when enqueued.
    pub attribution: ExportedAttribution,
    /// What was sent.
    pub notification: ExportedNotification,
}

/// A notification as sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportedNotification {
    /// Notification id.
    pub id: String,
    /// Enqueued at (epoch ms).
    pub created: i64,
    /// The push payload (title, body, url, …): the one rendered for this
    /// device when the copy was personal.
    pub payload: Value,
}

/// One stored event, named as `POST /v1/events` names its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportedEvent {
    /// Event id.
    pub id: String,
    /// Event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Prompt id.
    pub prompt: Option<String>,
    /// Variant id.
    pub variant: Option<String>,
    /// What triggered the prompt.
    pub trigger: Option<String>,
    /// Anonymous device id.
    pub anon: Option<String>,
    /// `notification:delivery`.
    pub delivery: Option<String>,
    /// Notification action.
    pub action: Option<String>,
    /// Conversion name.
    pub name: Option<String>,
    /// Simulated data.
    pub synthetic: bool,
    /// When it happened (client clock, epoch ms).
    pub at: i64,
    /// When the server stored it (epoch ms).
    pub received: i64,
}

const EVENT_COLUMNS: &str =
    "id, type, prompt, variant, trigger_name, anon_id, delivery, action, name, synthetic, at_ms, received_ms";

impl Store {
    /// Everything stored about app user `user`, from one snapshot (an
    /// unknown user: empty lists).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn user_export(&self, user: &str) -> Result<UserExport, sqlx::Error> {
        // A read-only transaction: SQLite reads one WAL snapshot (and takes
        // no write lock), PostgreSQL one snapshot for every statement.
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        };
        let subscriptions = subscriptions(&mut tx, user).await?;
        let ids: Vec<i64> = subscriptions.iter().map(|s| s.id).collect();
        let mut anons: Vec<String> = subscriptions
            .iter()
            .filter_map(|s| s.attribution.anon.clone())
            .collect();
        anons.sort();
        anons.dedup();
        let deliveries = deliveries(&mut tx, &ids).await?;
        let refs: Vec<String> = deliveries
            .iter()
            .map(|d| format!("{}:{}", d.notification.id, d.id))
            .collect();
        let events = events(&mut tx, &anons, &refs).await?;
        let (traits, time_zone) = match sqlx::query("SELECT traits, time_zone FROM users WHERE id = $1")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => (traits_of(&row, "traits")?, row.try_get("time_zone")?),
            None => (Traits::new(), None),
        };
        let tracked_events = tracked_events(&mut tx, user).await?;
        let journeys = journeys(&mut tx, user).await?;
        let mut subjects: Vec<String> = ids.iter().map(|id| crate::store::device_subject(*id)).collect();
        subjects.push(crate::store::user_subject(user));
        let preferences = preferences(&mut tx, &subjects).await?;
        tx.commit().await?;
        Ok(UserExport {
            user: user.to_owned(),
            traits,
            time_zone,
            subscriptions,
            deliveries,
            events,
            tracked_events,
            journeys,
            preferences,
        })
    }
}

async fn preferences(conn: &mut AnyConnection, subjects: &[String]) -> Result<Vec<ExportedPreferences>, sqlx::Error> {
    let mut out = Vec::new();
    for subject in subjects {
        let row = sqlx::query("SELECT muted, muted_topics, paused_until_ms FROM preferences WHERE subject = $1")
            .bind(subject)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            let stored = crate::store::preferences::preferences_of_row(&row)?;
            out.push(ExportedPreferences {
                subject: subject.clone(),
                muted: stored.muted,
                muted_topics: stored.muted_topics,
                paused_until: stored.paused_until_ms,
            });
        }
    }
    Ok(out)
}

async fn journeys(conn: &mut AnyConnection, user: &str) -> Result<Vec<ExportedJourney>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT journey_id, version, instance_key, entered_ms, event, holdout, COALESCE(ending, 'waiting') AS state, ended_by, converted_ms \
         FROM journey_instances WHERE user_id = $1 ORDER BY created_ms, id",
    )
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ExportedJourney {
                journey: row.try_get("journey_id")?,
                version: row.try_get("version")?,
                key: row.try_get("instance_key")?,
                entered: row.try_get("entered_ms")?,
                event: serde_json::Value::Object(traits_of(row, "event")?),
                holdout: row.try_get::<i64, _>("holdout")? != 0,
                state: row.try_get("state")?,
                ended_by: row.try_get("ended_by")?,
                converted: row.try_get("converted_ms")?,
            })
        })
        .collect()
}

async fn subscriptions(conn: &mut AnyConnection, user: &str) -> Result<Vec<ExportedSubscription>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, endpoint, created_ms, updated_ms, expiration_ms, anon_id, prompt, variant, time_zone FROM subscriptions WHERE user_id = $1 ORDER BY id")
        .bind(user)
        .fetch_all(&mut *conn)
        .await?;
    let mut subscriptions = rows.iter().map(subscription).collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<i64> = subscriptions.iter().map(|s| s.id).collect();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT subscription_id, topic, label FROM subscription_topics WHERE subscription_id IN ({})",
            ints(chunk)
        );
        for row in sqlx::query(&sql).fetch_all(&mut *conn).await? {
            let id: i64 = row.try_get("subscription_id")?;
            if let Some(sub) = subscriptions.iter_mut().find(|s| s.id == id) {
                let topic: String = row.try_get("topic")?;
                if let Some(label) = row.try_get::<Option<String>, _>("label")? {
                    sub.topic_labels.insert(topic.clone(), label);
                }
                sub.topics.push(topic);
            }
        }
    }
    // By bytes on both backends, as `Store::subscription_find` sorts them
    // (PostgreSQL's ORDER BY would follow the database's collation).
    for sub in &mut subscriptions {
        sub.topics.sort_unstable();
    }
    Ok(subscriptions)
}

fn subscription(row: &AnyRow) -> Result<ExportedSubscription, sqlx::Error> {
    Ok(ExportedSubscription {
        id: row.try_get("id")?,
        endpoint: row.try_get("endpoint")?,
        created: row.try_get("created_ms")?,
        updated: row.try_get("updated_ms")?,
        expires: row.try_get("expiration_ms")?,
        topics: Vec::new(),
        topic_labels: Default::default(),
        attribution: attribution(row)?,
        time_zone: row.try_get("time_zone")?,
    })
}

async fn tracked_events(conn: &mut AnyConnection, user: &str) -> Result<Vec<ExportedTrackedEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, user_id, name, event_key, at_ms, properties, dedup_id, received_ms FROM user_events WHERE user_id = $1 ORDER BY seq",
    )
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let event = stored_event(row)?;
            Ok(ExportedTrackedEvent {
                seq: event.seq,
                name: event.name,
                key: event.key,
                at: event.at_ms,
                properties: event.properties,
                id: event.dedup_id,
                received: event.received_ms,
            })
        })
        .collect()
}

fn attribution(row: &AnyRow) -> Result<ExportedAttribution, sqlx::Error> {
    Ok(ExportedAttribution {
        anon: row.try_get("anon_id")?,
        prompt: row.try_get("prompt")?,
        variant: row.try_get("variant")?,
    })
}

async fn deliveries(conn: &mut AnyConnection, ids: &[i64]) -> Result<Vec<ExportedDelivery>, sqlx::Error> {
    let mut deliveries = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT d.id, d.subscription_id, d.status, d.attempts, d.last_code, d.updated_ms, d.clicked_ms, d.dismissed_ms, \
             d.anon_id, d.prompt, d.variant, d.notification_id, n.created_ms, COALESCE(d.payload, n.payload) AS payload \
             FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.subscription_id IN ({}) ORDER BY d.id",
            ints(chunk)
        );
        for row in sqlx::query(&sql).fetch_all(&mut *conn).await? {
            deliveries.push(delivery(&row)?);
        }
    }
    deliveries.sort_by_key(|d| d.id);
    Ok(deliveries)
}

fn delivery(row: &AnyRow) -> Result<ExportedDelivery, sqlx::Error> {
    let payload: String = row.try_get("payload")?;
    Ok(ExportedDelivery {
        id: row.try_get("id")?,
        subscription: row.try_get("subscription_id")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        last_code: row.try_get("last_code")?,
        updated: row.try_get("updated_ms")?,
        clicked: row.try_get("clicked_ms")?,
        dismissed: row.try_get("dismissed_ms")?,
        attribution: attribution(row)?,
        notification: ExportedNotification {
            id: row.try_get("notification_id")?,
            created: row.try_get("created_ms")?,
            // Written by `notify` as JSON; kept as text if it ever is not.
            payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
        },
    })
}

/// The devices' events, and device-less ones naming one of `refs` (a
/// worker's events for a subscription no prompt won).
async fn events(
    conn: &mut AnyConnection,
    anons: &[String],
    refs: &[String],
) -> Result<Vec<ExportedEvent>, sqlx::Error> {
    let mut events = Vec::new();
    for (filter, values) in [("anon_id IN", anons), ("anon_id IS NULL AND delivery IN", refs)] {
        for chunk in values.chunks(CHUNK) {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE {filter} ({})",
                placeholders(chunk.len())
            );
            for row in bind_texts(sqlx::query(&sql), chunk).fetch_all(&mut *conn).await? {
                events.push(event(&row)?);
            }
        }
    }
    events.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(events)
}

fn event(row: &AnyRow) -> Result<ExportedEvent, sqlx::Error> {
    Ok(ExportedEvent {
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        prompt: row.try_get("prompt")?,
        variant: row.try_get("variant")?,
        trigger: row.try_get("trigger_name")?,
        anon: row.try_get("anon_id")?,
        delivery: row.try_get("delivery")?,
        action: row.try_get("action")?,
        name: row.try_get("name")?,
        synthetic: row.try_get::<i64, _>("synthetic")? != 0,
        at: row.try_get("at_ms")?,
        received: row.try_get("received_ms")?,
    })
}
