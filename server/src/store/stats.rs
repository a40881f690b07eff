//! The queries behind `GET /v1/stats`: grouped counts only, so the work
//! stays in the database (indexes `events_by_prompt`, `events_by_anon`) and
//! the rows returned are few (per prompt × variant × type, per day, per
//! subscriber).

use std::sync::LazyLock;

use askwell::model::EventKind;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, DAY_MS};
use crate::push::DeliveryStatus;

/// A time range and dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsRange {
    /// Inclusive start (epoch ms).
    pub from_ms: i64,
    /// Exclusive end (epoch ms).
    pub to_ms: i64,
    /// Simulated data instead of real data (never mixed).
    pub synthetic: bool,
}

/// Events of one type for one prompt × variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    /// Prompt id.
    pub prompt: String,
    /// Variant id (`holdout` for the holdout).
    pub variant: String,
    /// Event type.
    pub kind: EventKind,
    /// Number of events.
    pub events: i64,
    /// Number of distinct devices.
    pub devices: i64,
}

/// Events of one type per day (UTC) for one prompt × variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// Prompt id.
    pub prompt: String,
    /// Variant id.
    pub variant: String,
    /// Event type.
    pub kind: EventKind,
    /// Days since the Unix epoch.
    pub day: i64,
    /// Number of events.
    pub events: i64,
}

/// One subscribed device and what happened after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberRow {
    /// Prompt id.
    pub prompt: String,
    /// Variant id.
    pub variant: String,
    /// First `subscribed` in the range.
    pub subscribed_ms: i64,
    /// First `unsubscribed` after it, if any.
    pub unsubscribed_ms: Option<i64>,
    /// Last activity (a click, a conversion, a prompt answer) after it.
    pub active_ms: Option<i64>,
}

/// Deliveries of one status per day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// Days since the Unix epoch (of the notification).
    pub day: i64,
    /// Their status.
    pub status: DeliveryStatus,
    /// Number of deliveries.
    pub count: i64,
    /// Of those, the ones due later than now (queued ones are `scheduled`).
    pub later: i64,
}

/// Events of prompts without variants carry none: they are the `default` arm.
fn variant(row: &AnyRow) -> Result<String, sqlx::Error> {
    Ok(row
        .try_get::<Option<String>, _>("variant")?
        .unwrap_or_else(|| "default".to_owned()))
}

/// Event kinds that show a subscriber is still around (not the server's own
/// delivery record, not the automatic `notification_shown`).
fn shows_activity(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::PromptShown
            | EventKind::PromptAccepted
            | EventKind::PromptDismissed
            | EventKind::Subscribed
            | EventKind::NotificationClicked
            | EventKind::NotificationDismissed
            | EventKind::Conversion
    )
}

/// Kinds drawn per day: shown, subscribed and the native answers.
fn drawn_daily(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::PromptShown | EventKind::Subscribed | EventKind::NativeGranted | EventKind::NativeDenied
    )
}

/// `'a', 'b', …`: the wire names of the kinds `keep` selects, for an SQL
/// `IN (…)` (the names are fixed identifiers, never input).
fn kind_list(keep: fn(EventKind) -> bool) -> String {
    let names: Vec<String> = EventKind::ALL
        .into_iter()
        .filter(|k| keep(*k))
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    names.join(", ")
}

/// [`Store::stats_delivered`]'s query; `$1`–`$3` as in [`Store::fetch_in_range`].
static DELIVERED_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT prompt, variant, COUNT(*) AS events, COUNT(DISTINCT anon_id) AS devices \
         FROM deliveries WHERE $1 = 0 AND status = '{delivered}' AND updated_ms >= $2 AND updated_ms < $3 AND prompt IS NOT NULL \
         GROUP BY prompt, variant",
        delivered = DeliveryStatus::Delivered.as_str()
    )
});

/// [`Store::stats_days`]'s query.
static DAYS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT prompt, variant, type, at_ms / {DAY_MS} AS day, COUNT(*) AS events \
         FROM events WHERE synthetic = $1 AND at_ms >= $2 AND at_ms < $3 AND prompt IS NOT NULL \
         AND type IN ({drawn}) \
         GROUP BY type, prompt, variant, at_ms / {DAY_MS}",
        drawn = kind_list(drawn_daily)
    )
});

/// [`Store::stats_subscribers`]'s query.
static SUBSCRIBERS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT sub.prompt, sub.variant, sub.first_ms, \
           MIN(CASE WHEN e.type = '{unsubscribed}' AND e.at_ms > sub.first_ms THEN e.at_ms END) AS gone_ms, \
           MAX(CASE WHEN e.type IN ({active}) AND e.at_ms > sub.first_ms THEN e.at_ms END) AS active_ms \
         FROM (SELECT prompt, variant, anon_id, MIN(at_ms) AS first_ms FROM events \
               WHERE synthetic = $1 AND type = '{subscribed}' AND at_ms >= $2 AND at_ms < $3 AND prompt IS NOT NULL AND anon_id IS NOT NULL \
               GROUP BY prompt, variant, anon_id) sub \
         LEFT JOIN events e ON e.anon_id = sub.anon_id AND e.synthetic = $1 \
         GROUP BY sub.prompt, sub.variant, sub.anon_id, sub.first_ms",
        unsubscribed = EventKind::Unsubscribed.as_str(),
        subscribed = EventKind::Subscribed.as_str(),
        active = kind_list(shows_activity)
    )
});

impl Store {
    /// Runs a stats query whose `$1`, `$2`, `$3` are the dataset (synthetic
    /// or not), the start and the end of the range.
    async fn fetch_in_range(&self, sql: &str, range: StatsRange) -> Result<Vec<AnyRow>, sqlx::Error> {
        sqlx::query(sql)
            .bind(i64::from(range.synthetic))
            .bind(range.from_ms)
            .bind(range.to_ms)
            .fetch_all(&self.pool)
            .await
    }

    /// Events and devices per prompt × variant × type in `range`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn stats_counts(&self, range: StatsRange) -> Result<Vec<CountRow>, sqlx::Error> {
        let sql = "SELECT prompt, variant, type, COUNT(*) AS events, COUNT(DISTINCT anon_id) AS devices \
             FROM events WHERE synthetic = $1 AND at_ms >= $2 AND at_ms < $3 AND prompt IS NOT NULL \
             GROUP BY type, prompt, variant";
        let rows = self.fetch_in_range(sql, range).await?;
        rows.iter().map(|row| count_row(row, kind(row)?)).collect()
    }

    /// `notification_delivered` per prompt × variant, read from the outbox
    /// (deliveries accepted by a push service in `range`). The simulation
    /// sends no pushes: for synthetic data (`$1 = 1`) there are none.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn stats_delivered(&self, range: StatsRange) -> Result<Vec<CountRow>, sqlx::Error> {
        let rows = self.fetch_in_range(&DELIVERED_SQL, range).await?;
        rows.iter()
            .map(|row| count_row(row, EventKind::NotificationDelivered))
            .collect()
    }

    /// Shown, subscribed, native answers per day, for the time series.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn stats_days(&self, range: StatsRange) -> Result<Vec<DayRow>, sqlx::Error> {
        let rows = self.fetch_in_range(&DAYS_SQL, range).await?;
        rows.iter()
            .map(|row| {
                Ok(DayRow {
                    prompt: row.try_get("prompt")?,
                    variant: variant(row)?,
                    kind: kind(row)?,
                    day: row.try_get("day")?,
                    events: row.try_get("events")?,
                })
            })
            .collect()
    }

    /// Every device that subscribed in `range`, with its later unsubscribe
    /// and last activity (any time after, for retention).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn stats_subscribers(&self, range: StatsRange) -> Result<Vec<SubscriberRow>, sqlx::Error> {
        let rows = self.fetch_in_range(&SUBSCRIBERS_SQL, range).await?;
        rows.iter()
            .map(|row| {
                Ok(SubscriberRow {
                    prompt: row.try_get("prompt")?,
                    variant: variant(row)?,
                    subscribed_ms: row.try_get("first_ms")?,
                    unsubscribed_ms: row.try_get("gone_ms")?,
                    active_ms: row.try_get("active_ms")?,
                })
            })
            .collect()
    }

    /// Deliveries per day and status for notifications created in `range`
    /// (real data only, like [`Store::stats_delivered`]).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn stats_deliveries(&self, range: StatsRange) -> Result<Vec<DeliveryRow>, sqlx::Error> {
        let sql = format!(
            "SELECT n.created_ms / {DAY_MS} AS day, d.status, COUNT(*) AS count, \
             SUM(CASE WHEN d.next_attempt_ms > {now} THEN 1 ELSE 0 END) AS later FROM deliveries d \
             JOIN notifications n ON n.id = d.notification_id WHERE $1 = 0 AND n.created_ms >= $2 AND n.created_ms < $3 \
             GROUP BY n.created_ms / {DAY_MS}, d.status",
            // An integer, inlined: the range's binds are shared with the
            // other stats queries.
            now = super::now_ms()
        );
        let rows = self.fetch_in_range(&sql, range).await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryRow {
                    day: row.try_get("day")?,
                    status: super::deliveries::decode_status(&row.try_get::<String, _>("status")?)?,
                    count: row.try_get("count")?,
                    later: row.try_get("later")?,
                })
            })
            .collect()
    }
}

/// How the delivered pushes of one category or topic were received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceptionRow {
    /// `"category"` or `"topic"` (the RFC 8030 topic).
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// The counts.
    pub reception: askwell::delivery::Reception,
}

impl Store {
    /// Per category and per topic, how the pushes delivered in `range` (of
    /// notifications created in it; real data only) were received: clicked,
    /// dismissed without a click, or to a device unsubscribed since (its
    /// subscription gone).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn stats_reception(&self, range: StatsRange) -> Result<Vec<ReceptionRow>, sqlx::Error> {
        let mut out = Vec::new();
        for (kind, column) in [("category", "n.category"), ("topic", "n.topic")] {
            let sql = format!(
                "SELECT {column} AS name, COUNT(*) AS delivered, COUNT(d.clicked_ms) AS clicked, \
                 SUM(CASE WHEN d.dismissed_ms IS NOT NULL AND d.clicked_ms IS NULL THEN 1 ELSE 0 END) AS dismissed, \
                 SUM(CASE WHEN d.subscription_id IS NULL THEN 1 ELSE 0 END) AS unsubscribed \
                 FROM deliveries d JOIN notifications n ON n.id = d.notification_id \
                 WHERE $1 = 0 AND n.created_ms >= $2 AND n.created_ms < $3 AND d.status = '{delivered}' AND {column} IS NOT NULL \
                 GROUP BY {column} ORDER BY {column}",
                delivered = crate::push::DeliveryStatus::Delivered.as_str()
            );
            for row in self.fetch_in_range(&sql, range).await? {
                let count = |name: &str| -> Result<u64, sqlx::Error> {
                    Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
                };
                out.push(ReceptionRow {
                    kind,
                    name: row.try_get("name")?,
                    reception: askwell::delivery::Reception {
                        delivered: count("delivered")?,
                        clicked: count("clicked")?,
                        dismissed: count("dismissed")?,
                        unsubscribed: count("unsubscribed")?,
                    },
                });
            }
        }
        Ok(out)
    }
}

/// The row's `type`: the events table only holds kinds this server
/// validated or recorded, so another is an error, not a silent new count.
fn kind(row: &AnyRow) -> Result<EventKind, sqlx::Error> {
    let text: String = row.try_get("type")?;
    EventKind::parse(&text)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown event type {text:?} in events.type").into()))
}

fn count_row(row: &AnyRow, kind: EventKind) -> Result<CountRow, sqlx::Error> {
    Ok(CountRow {
        prompt: row.try_get("prompt")?,
        variant: variant(row)?,
        kind,
        events: row.try_get("events")?,
        devices: row.try_get("devices")?,
    })
}
