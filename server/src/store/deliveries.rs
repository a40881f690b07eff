//! The outbox: notifications, their per-subscription deliveries, and claims.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use askwell::journey::{zone, Deliver};
use jiff::tz::TimeZone;
use sqlx::{AnyConnection, Row};

use super::{now_ms, Backend, Store};
use crate::push::{DeliveryStatus, Urgency};

/// Reads `deliveries.status`: a status this version does not know (a newer
/// server's, or a hand edit) is an error, never counted as another.
pub(super) fn decode_status(text: &str) -> Result<DeliveryStatus, sqlx::Error> {
    DeliveryStatus::parse(text)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown delivery status {text:?} in deliveries.status").into()))
}

/// `status IN ('queued', 'retrying')`: the deliveries a worker may claim,
/// spelt from [`DeliveryStatus`] once.
pub(super) static WAITING: LazyLock<String> = LazyLock::new(|| {
    let list: Vec<String> = DeliveryStatus::ALL
        .into_iter()
        .filter(|s| s.is_waiting())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("status IN ({})", list.join(", "))
});

/// Who a notification goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipients {
    /// Subscribers of a topic.
    Topic(String),
    /// All subscriptions of an app user.
    User(String),
    /// Every subscription.
    All,
    /// The subscriptions of these users (a `batch`).
    Users(Vec<String>),
    /// The devices in this segment (`to: { where }`).
    Where(Audience),
}

/// A segment and the condition it was read from. The condition is kept
/// with the notification, so each push is judged again when it goes out:
/// a device that left a topic the segment names, or whose user no longer
/// matches, is not sent it (as a device that left a `to: { topic }`).
#[derive(Debug, Clone, PartialEq)]
pub struct Audience {
    /// The segment, as the core reads it.
    pub segment: askwell::segment::Segment,
    /// Its JSON, as sent (`to.where`, or a named segment's definition).
    pub condition: String,
}

impl Audience {
    /// Reads a condition, naming every bad field under `path`.
    ///
    /// # Errors
    /// The problems found, as the core reports them.
    pub fn read(condition: &serde_json::Value, path: &str) -> Result<Self, askwell::error::FieldProblems> {
        let segment = askwell::segment::Segment::read(&crate::journeys::core_value(condition), path)?;
        Ok(Self {
            segment,
            condition: condition.to_string(),
        })
    }
}

/// A notification to enqueue.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// Random id.
    pub id: String,
    /// Repeating it returns the first notification instead of sending twice.
    pub idempotency_key: Option<String>,
    /// The JSON payload (without the per-delivery id).
    pub payload: String,
    /// Seconds the push service keeps it for an offline browser.
    pub ttl: u32,
    /// RFC 8030 urgency.
    pub urgency: Option<Urgency>,
    /// RFC 8030 topic (replaces an undelivered message with the same topic).
    pub topic: Option<String>,
    /// Its category, for the delivery policy (`replies`, `marketing`).
    pub category: Option<String>,
    /// Who receives it.
    pub to: Recipients,
}

/// When a notification's deliveries are due (`POST /v1/notify`'s
/// `deliver`). The default is now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Not before this instant (epoch ms); a past one is now.
    pub at_ms: Option<i64>,
    /// Then the next time this rule holds on each recipient's clock.
    pub local: Option<Deliver>,
}

/// What [`Store::notification_create_scheduled`] enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The notification's id (the first one's, for a repeated idempotency key).
    pub id: String,
    /// Deliveries enqueued, one per recipient.
    pub recipients: i64,
    /// Of those, the ones due later than when they were enqueued.
    pub scheduled: i64,
    /// Of those, the ones timed in the default zone: neither the recipient's
    /// user nor its subscription had a zone the tz database knows.
    pub defaulted_time_zone: i64,
    /// Of the recipients, those whose rendered payload did not fit a push
    /// (their deliveries are `too_large`: never sent).
    pub too_large: i64,
    /// Of the recipients, those in the holdout (`withheld`: never sent).
    pub holdout: i64,
}

/// Most ids in one `UPDATE … WHERE id IN (…)` (inlined integers: a few kB).
const IDS_PER_UPDATE: usize = 1000;

/// What one attempt came to, for [`Store::deliveries_record`].
#[derive(Debug, Clone)]
pub enum Recorded {
    /// A final status (`Delivered`, `Failed`, …) and the push service's code.
    Finish {
        /// Delivery row id.
        id: i64,
        /// Its final status.
        status: DeliveryStatus,
        /// The push service's HTTP status, if it answered.
        code: Option<u16>,
    },
    /// Another attempt at `next_ms`.
    Retry {
        /// Delivery row id.
        id: i64,
        /// When to try again (ms since the epoch).
        next_ms: i64,
        /// The push service's HTTP status, if it answered.
        code: Option<u16>,
    },
    /// The subscription is gone (404/410): deleted, its delivery pruned.
    Prune {
        /// The delivery, for the funnel's `unsubscribed` event.
        delivery: Box<Claimed>,
        /// The push service's HTTP status.
        code: u16,
    },
}

/// A delivery claimed by a worker, with everything needed to send it.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    /// Delivery row id.
    pub id: i64,
    /// Notification id.
    pub notification_id: String,
    /// Subscription row id.
    pub subscription_id: i64,
    /// Attempt number (1 for the first try).
    pub attempt: u32,
    /// Push service URL.
    pub endpoint: String,
    /// Subscriber key.
    pub p256dh: String,
    /// Auth secret.
    pub auth: String,
    /// Payload JSON.
    pub payload: String,
    /// TTL seconds.
    pub ttl: u32,
    /// Urgency header.
    pub urgency: Option<Urgency>,
    /// Topic header.
    pub topic: Option<String>,
    /// The notification's category (delivery policy).
    pub category: Option<String>,
    /// The topic it was sent to (`to: { topic }`), which people can mute.
    pub audience_topic: Option<String>,
    /// Whether its device left the audience it was sent to since it was
    /// queued — that topic, or that segment (see [`Audience`]): it is then
    /// no longer meant for it.
    pub left_audience: bool,
    /// Whether the delivery policy held it before (a digest may merge it).
    pub held: bool,
    /// Who receives it, for the caps: `user:{id}`, or `device:{subscription}`
    /// for a device bound to no user.
    pub person: String,
    /// The recipient's IANA zone: the user's, else the device's.
    pub time_zone: Option<String>,
    /// How many pushes it stands for (a digest of held ones: more than 1).
    pub count: usize,
}

/// A person's sends in the last week, for the delivery policy's caps:
/// `(sent_ms, category, notification id)` by [`Claimed::person`].
pub type SendHistory = HashMap<String, Vec<(i64, Option<String>, String)>>;

/// What the delivery policy made of one claimed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it now (recorded in the ledger at once, so other workers count it).
    Send(i64),
    /// Hold it until `until_ms` (status `held`; its attempt is not counted).
    Hold(i64, i64),
    /// Drop it (status `capped`).
    Cap(i64),
    /// Merged into another push (status `collapsed`).
    Collapse(i64),
    /// Turned off by the person (status `muted`).
    Mute(i64),
    /// Its category paused by the fatigue guard (status `paused`).
    Pause(i64),
}

/// Per-status counts of one notification's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    /// Waiting for the first attempt, due now.
    pub queued: i64,
    /// Waiting for the first attempt, due later (`deliver`).
    pub scheduled: i64,
    /// Accepted by the push service.
    pub delivered: i64,
    /// Waiting for another attempt.
    pub retrying: i64,
    /// Given up.
    pub failed: i64,
    /// The subscription was gone (404/410) and has been deleted.
    pub pruned: i64,
    /// Never sent: the notification was cancelled first.
    pub cancelled: i64,
    /// Held by the delivery policy until allowed (over a cap, quiet hours).
    pub held: i64,
    /// Dropped by the delivery policy.
    pub capped: i64,
    /// Merged into a later push of the same topic (a digest).
    pub collapsed: i64,
    /// Turned off by the person (a muted category, a pause).
    pub muted: i64,
    /// Never sent: its category is paused by the fatigue guard.
    pub paused: i64,
    /// Never sent: its personalised payload did not fit a push.
    pub too_large: i64,
    /// Never sent: in the notification's holdout.
    pub withheld: i64,
    /// Outside an A/B test's share: waiting for its rollout's decision.
    pub awaiting_winner: i64,
    /// Shown by the service worker (its report).
    pub shown: i64,
    /// Clicked by the user.
    pub clicked: i64,
    /// Dismissed by the user.
    pub dismissed: i64,
}

impl StatusCounts {
    /// Adds one `(status, n, later, shown, clicked, dismissed)` row of
    /// [`COUNTS_SELECT`].
    fn add(&mut self, row: &sqlx::any::AnyRow) -> Result<(), sqlx::Error> {
        let n: i64 = row.try_get("n")?;
        self.shown += row.try_get::<i64, _>("shown")?;
        self.clicked += row.try_get::<i64, _>("clicked")?;
        self.dismissed += row.try_get::<i64, _>("dismissed")?;
        // Due later: only a first attempt is "scheduled" (a later retry
        // is still `retrying`).
        let later: i64 = row.try_get("later")?;
        let count = match decode_status(&row.try_get::<String, _>("status")?)? {
            DeliveryStatus::Queued => {
                self.scheduled += later;
                self.queued += n - later;
                return Ok(());
            }
            DeliveryStatus::Retrying => &mut self.retrying,
            DeliveryStatus::Delivered => &mut self.delivered,
            DeliveryStatus::Failed => &mut self.failed,
            DeliveryStatus::Pruned => &mut self.pruned,
            DeliveryStatus::Cancelled => &mut self.cancelled,
            DeliveryStatus::Held => &mut self.held,
            DeliveryStatus::Capped => &mut self.capped,
            DeliveryStatus::Collapsed => &mut self.collapsed,
            DeliveryStatus::Muted => &mut self.muted,
            DeliveryStatus::Paused => &mut self.paused,
            DeliveryStatus::TooLarge => &mut self.too_large,
            DeliveryStatus::Withheld => &mut self.withheld,
            DeliveryStatus::AwaitingWinner => &mut self.awaiting_winner,
        };
        *count += n;
        Ok(())
    }
}

/// Per-status counts of deliveries (`$1`: now, for "due later"), grouped
/// by notification and status; the caller adds its `WHERE` and `GROUP BY`.
const COUNTS_SELECT: &str = "SELECT notification_id, status, COUNT(*) AS n, \
     SUM(CASE WHEN next_attempt_ms > $1 THEN 1 ELSE 0 END) AS later, COUNT(shown_ms) AS shown, \
     COUNT(clicked_ms) AS clicked, COUNT(dismissed_ms) AS dismissed FROM deliveries";

/// A notification as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NotificationSummary {
    /// Its id.
    pub id: String,
    /// When it was created (epoch ms).
    pub created_ms: i64,
    /// Its title (as sent, or its template).
    pub title: String,
    /// The topic it was sent to, if it was.
    pub topic: Option<String>,
    /// Its delivery-policy category.
    pub category: Option<String>,
    /// Deliveries enqueued.
    pub recipients: i64,
    /// Whether it is an A/B test (variants or a holdout).
    pub experiment: bool,
    /// Whether it was cancelled.
    pub cancelled: bool,
    /// Its deliveries by status.
    pub counts: StatusCounts,
}

impl Store {
    /// Writes the notification and one delivery per recipient in one
    /// transaction, all due now; returns `(id, recipients)`. A repeated
    /// idempotency key returns the first notification's id and count and
    /// enqueues nothing.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn notification_create(&self, n: &NewNotification) -> Result<(String, i64), sqlx::Error> {
        let created = self
            .notification_create_scheduled(n, &Schedule::default(), &TimeZone::UTC)
            .await?;
        Ok((created.id, created.recipients))
    }

    /// [`Store::notification_create`] with each delivery due when `schedule`
    /// says, evaluated per recipient in its zone: its user's, else its
    /// subscription's, else `default_zone`. The due time is the delivery's
    /// `next_attempt_ms`, so claims and leases work as for any delivery.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn notification_create_scheduled(
        &self,
        n: &NewNotification,
        schedule: &Schedule,
        default_zone: &TimeZone,
    ) -> Result<Created, sqlx::Error> {
        let mut tx = self.write().await?;
        let created = create_in(&mut tx, self.backend, n, schedule, default_zone).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// [`Store::notification_create`] for many notifications to single users
    /// in one transaction (a journey sweep's sends, marked as such), in a few statements per
    /// 500 rather than four per notification: `(id, recipients)` each, in
    /// order; a repeated idempotency key (in the database or earlier in the
    /// batch) answers its first notification. Other recipients go one by one.
    ///
    /// # Errors
    /// When the database fails; nothing is enqueued then.
    pub async fn notifications_create_many(
        &self,
        batch: &[NewNotification],
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        let mut tx = self.write().await?;
        let created = create_many_in(&mut tx, self.backend, batch).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Cancels every delivery of notification `id` not sent yet: those
    /// waiting and not held by a worker become `cancelled`. One a worker
    /// holds right now is not touched here: it ends as its push ends (sent,
    /// failed, pruned), or, if it would be tried again, is cancelled when it
    /// is next claimed (the notification is marked cancelled) — so every
    /// delivery ends once, as sent or as cancelled, never both. Returns how
    /// many were cancelled now, or `None` for an unknown id.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn notification_cancel(&self, id: &str) -> Result<Option<u64>, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.write().await?;
        // First, and so on PostgreSQL under the notification's row lock: a
        // claim that commits after this sees the mark (see deliveries_claim).
        let known = sqlx::query("UPDATE notifications SET cancelled_ms = COALESCE(cancelled_ms, $1) WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if known == 0 {
            return Ok(None);
        }
        // `lease_until_ms <= now`: not held by a live worker. PostgreSQL
        // re-checks this on a row a claim locked meanwhile (it then holds a
        // lease and is skipped); SQLite runs one writer at a time.
        // PostgreSQL: the rows are locked in id order, as admissions lock
        // theirs; a bare UPDATE would lock them in its index's order (by
        // status), and two transactions could wait on each other.
        let in_id_order = if self.backend == Backend::Postgres {
            "ORDER BY id FOR UPDATE"
        } else {
            ""
        };
        let cancelled = sqlx::query(&format!(
            "UPDATE deliveries SET status = '{cancelled}', lease_until_ms = 0, updated_ms = $1 \
             WHERE id IN (SELECT id FROM deliveries WHERE notification_id = $2 AND ({waiting} OR status = '{awaiting}') \
             AND lease_until_ms <= $1 {in_id_order}) AND ({waiting} OR status = '{awaiting}') AND lease_until_ms <= $1",
            cancelled = DeliveryStatus::Cancelled.as_str(),
            awaiting = DeliveryStatus::AwaitingWinner.as_str(),
            waiting = *WAITING
        ))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Some(cancelled))
    }

    /// When each waiting delivery of notification `id` is due:
    /// `(subscription id, epoch ms)`, by subscription id (for operators and
    /// tests; the workers read `next_attempt_ms` through their claims).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn notification_due_times(&self, id: &str) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT subscription_id, next_attempt_ms FROM deliveries \
             WHERE notification_id = $1 AND subscription_id IS NOT NULL AND {} ORDER BY subscription_id",
            *WAITING
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("subscription_id")?, row.try_get("next_attempt_ms")?)))
            .collect()
    }

    /// Claims up to `limit` due deliveries for `lease_ms`. One UPDATE …
    /// RETURNING: SQLite runs it under its write lock, Postgres skips rows
    /// other workers have locked (`FOR UPDATE SKIP LOCKED`), so no two workers
    /// or processes claim the same row; an expired lease (a crashed worker)
    /// makes the row claimable again.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn deliveries_claim(&self, limit: i64, lease_ms: i64) -> Result<Vec<Claimed>, sqlx::Error> {
        let now = now_ms();
        let lock = if self.backend == Backend::Postgres {
            "FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let claim = format!(
            "UPDATE deliveries SET lease_until_ms = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM deliveries WHERE {waiting} AND next_attempt_ms <= $2 AND lease_until_ms <= $2 ORDER BY next_attempt_ms, id LIMIT $3 {lock}) \
             RETURNING id",
            waiting = *WAITING
        );
        let mut tx = self.write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(&claim)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let rows = sqlx::query(&format!(
            "SELECT d.id, d.notification_id, d.subscription_id, d.attempts, d.status, s.endpoint, s.p256dh, s.auth, s.user_id, \
             COALESCE(u.time_zone, s.time_zone) AS time_zone, COALESCE(d.payload, n.payload) AS payload, n.ttl, n.urgency, n.topic, n.category, n.audience_topic, n.audience_where, n.cancelled_ms, \
             CAST(CASE WHEN n.audience_topic IS NOT NULL AND NOT EXISTS (SELECT 1 FROM subscription_topics t \
             WHERE t.subscription_id = d.subscription_id AND t.topic = n.audience_topic) THEN 1 ELSE 0 END AS BIGINT) AS left_audience \
             FROM deliveries d JOIN notifications n ON n.id = d.notification_id LEFT JOIN subscriptions s ON s.id = d.subscription_id \
             LEFT JOIN users u ON u.id = s.user_id WHERE d.id IN ({list}) ORDER BY d.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        let mut segments: BTreeMap<String, String> = BTreeMap::new();
        for row in rows {
            // Cancelled while a worker held it (a lease that ran out, a claim
            // released at start-up, a retry): this claim is the last hand it
            // passes through, and the mark was committed before the claim
            // read it, or the cancel found the row free and took it itself.
            if row.try_get::<Option<i64>, _>("cancelled_ms")?.is_some() {
                self.delivery_finish(row.try_get("id")?, DeliveryStatus::Cancelled, None)
                    .await?;
                continue;
            }
            let Some(endpoint) = row.try_get::<Option<String>, _>("endpoint")? else {
                // The subscription was deleted after enqueueing.
                self.delivery_finish(row.try_get("id")?, DeliveryStatus::Pruned, None)
                    .await?;
                continue;
            };
            let subscription_id: i64 = row.try_get("subscription_id")?;
            if let Some(condition) = row.try_get::<Option<String>, _>("audience_where")? {
                segments.insert(row.try_get("notification_id")?, condition);
            }
            let person = match row.try_get::<Option<String>, _>("user_id")? {
                Some(user) => format!("user:{user}"),
                None => format!("device:{subscription_id}"),
            };
            claimed.push(Claimed {
                id: row.try_get("id")?,
                notification_id: row.try_get("notification_id")?,
                subscription_id,
                attempt: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                endpoint,
                p256dh: row.try_get("p256dh")?,
                auth: row.try_get("auth")?,
                payload: row.try_get("payload")?,
                ttl: u32::try_from(row.try_get::<i64, _>("ttl")?).unwrap_or(0),
                urgency: stored_urgency(row.try_get("urgency")?),
                topic: row.try_get("topic")?,
                category: row.try_get("category")?,
                audience_topic: row.try_get("audience_topic")?,
                left_audience: row.try_get::<i64, _>("left_audience")? == 1,
                held: row.try_get::<String, _>("status")? == DeliveryStatus::Held.as_str(),
                person,
                time_zone: row.try_get("time_zone")?,
                count: 1,
            });
        }
        for (notification, condition) in &segments {
            self.judge_segment_again(&mut claimed, notification, condition).await?;
        }
        Ok(claimed)
    }

    /// Marks the claimed deliveries of `notification` (sent to the segment
    /// `condition`) whose device no longer matches it as having left their
    /// audience, judged now (activity windows from now, today's traits and
    /// topics). A condition this version cannot read (a newer server's
    /// vocabulary) keeps the audience it was queued for.
    async fn judge_segment_again(
        &self,
        claimed: &mut [Claimed],
        notification: &str,
        condition: &str,
    ) -> Result<(), sqlx::Error> {
        let Some(audience) = serde_json::from_str(condition)
            .ok()
            .and_then(|json| Audience::read(&json, "where").ok())
        else {
            tracing::warn!(
                notification,
                "a stored segment this version cannot read: sent as queued"
            );
            return Ok(());
        };
        let devices: Vec<i64> = (claimed.iter())
            .filter(|d| d.notification_id == notification)
            .map(|d| d.subscription_id)
            .collect();
        let list = devices.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let mut compiler = super::segment_sql::Compiler::new(self.backend, 1, now_ms());
        let matching = compiler.condition(&audience.segment);
        let query = format!(
            "SELECT s.id FROM subscriptions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id IN ({list}) AND ({matching})"
        );
        let still: std::collections::HashSet<i64> = super::segment_sql::bind_all(sqlx::query(&query), &compiler.params)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| row.try_get("id"))
            .collect::<Result<_, _>>()?;
        for delivery in claimed.iter_mut().filter(|d| d.notification_id == notification) {
            delivery.left_audience |= !still.contains(&delivery.subscription_id);
        }
        Ok(())
    }

    /// Runs the delivery policy over a claimed batch in one transaction:
    /// reads the recipients' sends of the last `window_ms` (the ledger:
    /// deliveries let through, the batch's own left out), asks `decide`
    /// (with the time read once this transaction has its turn), and
    /// records its answers — a send enters the ledger at once, so a worker
    /// deciding next (here or in another process: on PostgreSQL the
    /// decisions take turns under an advisory lock, on SQLite under the write
    /// lock) counts it. Answers for deliveries no longer waiting (cancelled
    /// meanwhile) change nothing.
    ///
    /// # Errors
    /// When the database fails; nothing is recorded then, and the claims
    /// run out and are taken again.
    pub async fn deliveries_admit<F>(
        &self,
        batch: &[Claimed],
        window_ms: i64,
        decide: F,
    ) -> Result<Vec<Admission>, sqlx::Error>
    where
        F: FnOnce(&SendHistory, i64) -> Vec<Admission> + Send,
    {
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(7411032)")
                .execute(&mut *tx)
                .await?;
        }
        // Read once the turn is ours: a decision is never older than the
        // sends it is counted against.
        let now = now_ms();
        let history = send_history(&mut tx, self.backend, batch, now - window_ms).await?;
        let admissions = decide(&history, now);
        if self.backend == Backend::Postgres {
            // The answers are recorded one statement per kind, each taking
            // its rows in its own order; a recorder or a cancel taking some
            // of the same rows (a lease that ran out, say) must not deadlock
            // with it, losing the batch's decisions.
            let ids: Vec<i64> = batch.iter().map(|claimed| claimed.id).collect();
            lock_rows_in_id_order(&mut tx, &ids, &[]).await?;
        }
        record_admissions(&mut tx, self.backend, &admissions, now).await?;
        tx.commit().await?;
        Ok(admissions)
    }

    /// Releases every claim still held (for the sole instance at start-up:
    /// they belong to a process that died). Returns how many.
    ///
    /// # Errors
    /// When the database fails.
    pub(super) async fn deliveries_release_claims(&self) -> Result<u64, sqlx::Error> {
        let mut tx = self.write().await?;
        let released = sqlx::query(&format!(
            "UPDATE deliveries SET lease_until_ms = 0 WHERE lease_until_ms > 0 AND {}",
            *WAITING
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(released)
    }

    /// Extends the lease of claimed deliveries that are still being worked on,
    /// so a live worker never loses its claims to another; only a crashed
    /// worker's leases run out.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn deliveries_renew(&self, ids: &[i64], lease_ms: i64) -> Result<(), sqlx::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        // PostgreSQL: rows a recorder holds are being finished, so they need
        // no renewal; skipping them (and taking the rest in id order) keeps
        // a renewal from deadlocking with it.
        let rows = match self.backend {
            Backend::Postgres => {
                format!("SELECT id FROM deliveries WHERE id IN ({list}) ORDER BY id FOR UPDATE SKIP LOCKED")
            }
            Backend::Sqlite => list,
        };
        let mut tx = self.write().await?;
        sqlx::query(&format!(
            "UPDATE deliveries SET lease_until_ms = $1 WHERE lease_until_ms > 0 AND {} AND id IN ({rows})",
            *WAITING
        ))
        .bind(now_ms() + lease_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Records a final status (`Delivered`, `Failed`, `Pruned`, `Cancelled`)
    /// of a delivery still waiting; a final one (a cancelled delivery whose
    /// lease ran out, say) keeps its status.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn delivery_finish(&self, id: i64, status: DeliveryStatus, code: Option<u16>) -> Result<(), sqlx::Error> {
        self.deliveries_record(&[Recorded::Finish { id, status, code }]).await
    }

    /// Schedules another attempt at `next_ms` of a delivery still waiting;
    /// one whose notification was cancelled meanwhile is cancelled instead
    /// (else the claim that picks it up next cancels it).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn delivery_retry(&self, id: i64, next_ms: i64, code: Option<u16>) -> Result<(), sqlx::Error> {
        self.deliveries_record(&[Recorded::Retry { id, next_ms, code }]).await
    }

    /// Deletes a subscription the push service says is gone, pruning the
    /// delivery; the funnel records it as `unsubscribed` (action `pruned`).
    /// One transaction: a crash leaves all three or none.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn delivery_prune(&self, delivery: &Claimed, code: u16) -> Result<(), sqlx::Error> {
        self.deliveries_record(&[Recorded::Prune {
            delivery: Box::new(delivery.clone()),
            code,
        }])
        .await
    }

    /// Records many attempts' outcomes in one transaction: what the
    /// delivery workers do with the answers that came in while the last
    /// write ran (group commit; a row per transaction made every send wait
    /// for the single SQLite writer). Final statuses go in one statement
    /// per status and code, retries and prunes one by one.
    ///
    /// # Errors
    /// When the database fails; then none is recorded (the deliveries stay
    /// claimed, and are sent again when their lease runs out).
    pub async fn deliveries_record(&self, outcomes: &[Recorded]) -> Result<(), sqlx::Error> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut finished: BTreeMap<(DeliveryStatus, Option<u16>), Vec<i64>> = BTreeMap::new();
        for outcome in outcomes {
            if let Recorded::Finish { id, status, code } = outcome {
                finished.entry((*status, *code)).or_default().push(*id);
            }
        }
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres {
            lock_in_id_order(&mut tx, outcomes).await?;
        }
        for ((status, code), ids) in &finished {
            for chunk in ids.chunks(IDS_PER_UPDATE) {
                finish(&mut tx, self.backend, chunk, *status, *code).await?;
            }
        }
        for outcome in outcomes {
            match outcome {
                Recorded::Finish { .. } => {}
                Recorded::Retry { id, next_ms, code } => retry(&mut tx, *id, *next_ms, *code).await?,
                Recorded::Prune { delivery, code } => {
                    super::events::record_pruned(&mut tx, delivery).await?;
                    finish(
                        &mut tx,
                        self.backend,
                        &[delivery.id],
                        DeliveryStatus::Pruned,
                        Some(*code),
                    )
                    .await?;
                    super::subscriptions::delete(&mut tx, delivery.subscription_id).await?;
                }
            }
        }
        tx.commit().await
    }

    /// Per-status counts for one notification, or `None` if it does not exist.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn notification_counts(&self, id: &str) -> Result<Option<StatusCounts>, sqlx::Error> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT recipients FROM notifications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(&format!(
            "{COUNTS_SELECT} WHERE notification_id = $2 GROUP BY notification_id, status"
        ))
        .bind(now_ms())
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = StatusCounts::default();
        for row in &rows {
            counts.add(row)?;
        }
        Ok(Some(counts))
    }

    /// The `limit` newest notifications sent through `POST /v1/notify`
    /// (not journeys' sends: they have their own report), newest first,
    /// each with its deliveries by status.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn notifications_recent(&self, limit: i64) -> Result<Vec<NotificationSummary>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, created_ms, payload, audience_topic, category, recipients, variants, cancelled_ms \
             FROM notifications WHERE journey_send = 0 ORDER BY created_ms DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let payload: String = row.try_get("payload")?;
            let title = serde_json::from_str::<serde_json::Value>(&payload)
                .ok()
                .and_then(|p| p["title"].as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push(NotificationSummary {
                id: row.try_get("id")?,
                created_ms: row.try_get("created_ms")?,
                title,
                topic: row.try_get("audience_topic")?,
                category: row.try_get("category")?,
                recipients: row.try_get("recipients")?,
                experiment: row.try_get::<Option<String>, _>("variants")?.is_some(),
                cancelled: row.try_get::<Option<i64>, _>("cancelled_ms")?.is_some(),
                counts: StatusCounts::default(),
            });
        }
        if out.is_empty() {
            return Ok(out);
        }
        let sql = format!(
            "{COUNTS_SELECT} WHERE notification_id IN ({}) GROUP BY notification_id, status",
            super::json_texts(self.backend, 2)
        );
        let ids: Vec<&str> = out.iter().map(|n| n.id.as_str()).collect();
        let counted = sqlx::query(&sql)
            .bind(now_ms())
            .bind(serde_json::Value::from(ids).to_string())
            .fetch_all(&self.pool)
            .await?;
        for row in &counted {
            let id: String = row.try_get("notification_id")?;
            if let Some(summary) = out.iter_mut().find(|n| n.id == id) {
                summary.counts.add(row)?;
            }
        }
        Ok(out)
    }

    /// Deliveries waiting to be sent (queued or retrying).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn queue_depth(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM deliveries WHERE {}", *WAITING))
            .fetch_one(&self.pool)
            .await
    }

    /// When the next delivery becomes due, if any is waiting: the earliest
    /// of each waiting row's later of its next attempt and its lease's end.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn next_due_ms(&self) -> Result<Option<i64>, sqlx::Error> {
        // The later of the two by CASE: SQLite's scalar `MAX(a, b)` is an
        // unknown function on PostgreSQL, whose `GREATEST` SQLite lacks.
        sqlx::query_scalar(&format!(
            "SELECT MIN(CASE WHEN lease_until_ms > next_attempt_ms THEN lease_until_ms ELSE next_attempt_ms END) \
             FROM deliveries WHERE {}",
            *WAITING
        ))
        .fetch_one(&self.pool)
        .await
    }

    /// [`Store::next_due_ms`] among the deliveries whose next attempt is
    /// before `until_ms`, for the workers' idle poll: the index on
    /// `(status, next_attempt_ms)` bounds it to those, so a million
    /// deliveries scheduled for tomorrow cost it nothing (the unbounded
    /// MIN reads every waiting row).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn next_due_before(&self, until_ms: i64) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(&format!(
            "SELECT MIN(CASE WHEN lease_until_ms > next_attempt_ms THEN lease_until_ms ELSE next_attempt_ms END) \
             FROM deliveries WHERE {} AND next_attempt_ms < $1",
            *WAITING
        ))
        .bind(until_ms)
        .fetch_one(&self.pool)
        .await
    }
}

/// The body of [`Store::notifications_create_many`], inside the caller's
/// transaction (a journey batch enqueues and records its sends in one).
pub(super) async fn create_many_in(
    conn: &mut AnyConnection,
    backend: Backend,
    batch: &[NewNotification],
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let now = now_ms();
    let mut answers: Vec<Option<(String, i64)>> = vec![None; batch.len()];
    let mut first_by_key: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut fresh: Vec<usize> = Vec::new();
    for chunk in (0..batch.len()).collect::<Vec<_>>().chunks(MANY_CHUNK) {
        let keys: Vec<&str> = chunk
            .iter()
            .filter_map(|&i| batch[i].idempotency_key.as_deref())
            .collect();
        let mut stored = std::collections::HashMap::new();
        if !keys.is_empty() {
            let sql = format!(
                "SELECT idempotency_key, id, recipients FROM notifications WHERE idempotency_key IN ({})",
                params(1, keys.len())
            );
            let mut query = sqlx::query(&sql);
            for key in &keys {
                query = query.bind(*key);
            }
            for row in query.fetch_all(&mut *conn).await? {
                let key: String = row.try_get("idempotency_key")?;
                stored.insert(
                    key,
                    (row.try_get::<String, _>("id")?, row.try_get::<i64, _>("recipients")?),
                );
            }
        }
        for &i in chunk {
            let n = &batch[i];
            let key = n.idempotency_key.as_deref();
            if let Some(existing) = key.and_then(|k| stored.get(k)) {
                answers[i] = Some(existing.clone());
            } else if key.is_some_and(|k| first_by_key.contains_key(k)) {
                // Answered below, once the first is stored.
            } else {
                if let Some(k) = key {
                    first_by_key.insert(k, i);
                }
                fresh.push(i);
            }
        }
    }
    let (to_users, others): (Vec<usize>, Vec<usize>) = fresh
        .into_iter()
        .partition(|&i| matches!(batch[i].to, Recipients::User(_)));
    for chunk in to_users.chunks(MANY_CHUNK) {
        let inserted = insert_to_users(&mut *conn, backend, batch, chunk, now).await?;
        // A key another transaction stored meanwhile (two servers sweeping
        // the same step): answered by the notification that holds it.
        let (chunk, taken): (Vec<usize>, Vec<usize>) =
            chunk.iter().partition(|&&i| inserted.contains(batch[i].id.as_str()));
        for i in taken {
            let first = existing(&mut *conn, batch[i].idempotency_key.as_deref())
                .await?
                .ok_or_else(|| {
                    sqlx::Error::Protocol(format!(
                        "notification {} was not written and no notification holds its key",
                        batch[i].id
                    ))
                })?;
            answers[i] = Some((first.id, first.recipients));
        }
        if chunk.is_empty() {
            continue;
        }
        let chunk = chunk.as_slice();
        // One statement for the chunk's recipient counts (a statement
        // per notification was most of a 100,000-user journey sweep).
        let sql = format!(
            "UPDATE notifications SET recipients = (SELECT COUNT(*) FROM deliveries d WHERE d.notification_id = notifications.id) \
             WHERE id IN ({}) RETURNING id, recipients",
            params(1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for &i in chunk {
            query = query.bind(&batch[i].id);
        }
        let counts: std::collections::HashMap<String, i64> = query
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("recipients")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        for &i in chunk {
            let recipients = counts.get(&batch[i].id).copied().unwrap_or(0);
            answers[i] = Some((batch[i].id.clone(), recipients));
        }
    }
    for i in others {
        let created = create_in(&mut *conn, backend, &batch[i], &Schedule::default(), &TimeZone::UTC).await?;
        answers[i] = Some((created.id, created.recipients));
    }
    // Repeats within the batch answer their first.
    let mut out = Vec::with_capacity(batch.len());
    for (i, answer) in answers.iter().enumerate() {
        let first = batch[i]
            .idempotency_key
            .as_deref()
            .and_then(|k| first_by_key.get(k))
            .and_then(|&f| answers[f].clone());
        match answer.clone().or(first) {
            Some(answer) => out.push(answer),
            None => {
                return Err(sqlx::Error::Protocol(
                    "unreachable: every notification was answered".into(),
                ))
            }
        }
    }
    Ok(out)
}

/// Notifications per multi-row statement in
/// [`Store::notifications_create_many`] (their rows are one JSON parameter,
/// see [`super::json_rows`]; the idempotency keys and ids of the `IN`
/// lists are one parameter each).
const MANY_CHUNK: usize = 500;

/// `$first, …, $(first + n - 1)`.
fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The notifications `chunk` of `batch` (each to one user, due now) and a
/// delivery per device of their users, in two statements; returns the ids
/// written (one whose key is taken is skipped, see [`insert_notification`]).
async fn insert_to_users(
    conn: &mut AnyConnection,
    backend: Backend,
    batch: &[NewNotification],
    chunk: &[usize],
    now: i64,
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let rows: Vec<serde_json::Value> = chunk
        .iter()
        .map(|&i| {
            let n = &batch[i];
            serde_json::json!([
                n.id,
                n.idempotency_key,
                n.payload,
                n.ttl,
                n.urgency.map(Urgency::as_str),
                n.topic,
                n.category
            ])
        })
        .collect();
    let sql = format!(
        "INSERT INTO notifications (id, idempotency_key, payload, ttl, urgency, topic, category, recipients, created_ms, journey_send) \
         SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, CAST(r.value ->> 3 AS BIGINT), r.value ->> 4, r.value ->> 5, r.value ->> 6, 0, $1, 1 \
         FROM {} WHERE true ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        super::json_rows(backend, 2)
    );
    // `WHERE true`: SQLite would read `ON` after a bare `FROM` as a join's.
    let inserted: std::collections::HashSet<String> = sqlx::query_scalar(&sql)
        .bind(now)
        .bind(serde_json::Value::Array(rows).to_string())
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let mut pairs = Vec::with_capacity(chunk.len());
    for &i in chunk.iter().filter(|&&i| inserted.contains(batch[i].id.as_str())) {
        let Recipients::User(user) = &batch[i].to else {
            return Err(sqlx::Error::Protocol(
                "unreachable: only notifications to a user come here".into(),
            ));
        };
        pairs.push(serde_json::json!([batch[i].id, user]));
    }
    let lock = if backend == Backend::Postgres {
        " ORDER BY s.id FOR KEY SHARE OF s"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO deliveries (notification_id, subscription_id, next_attempt_ms, updated_ms, anon_id, prompt, variant) \
         SELECT r.value ->> 0, s.id, $1, $2, s.anon_id, s.prompt, s.variant FROM {} \
         JOIN subscriptions s ON s.user_id = r.value ->> 1{lock}",
        super::json_rows(backend, 3)
    );
    sqlx::query(&sql)
        .bind(now)
        .bind(now)
        .bind(serde_json::Value::Array(pairs).to_string())
        .execute(&mut *conn)
        .await?;
    Ok(inserted)
}

/// The notification an idempotency key was first used for, if any.
pub(super) async fn existing(conn: &mut AnyConnection, key: Option<&str>) -> Result<Option<Created>, sqlx::Error> {
    let Some(key) = key else { return Ok(None) };
    let row = sqlx::query(
        "SELECT id, recipients, scheduled, defaulted_time_zone, too_large, holdout FROM notifications WHERE idempotency_key = $1",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(Created {
            id: row.try_get("id")?,
            recipients: row.try_get("recipients")?,
            scheduled: row.try_get("scheduled")?,
            defaulted_time_zone: row.try_get("defaulted_time_zone")?,
            too_large: row.try_get("too_large")?,
            holdout: row.try_get("holdout")?,
        })
    })
    .transpose()
}

/// The notification's own row (no recipients yet), unless its idempotency
/// key is taken: then nothing is written and the notification that holds
/// the key is returned. Checking with [`existing`] first is not enough on
/// PostgreSQL: two transactions sending with one new key both find no row,
/// and the second insert would fail the UNIQUE constraint. `ON CONFLICT DO
/// NOTHING` makes the second wait for the first to commit, and the
/// statement after it (read committed) sees the first's row.
pub(super) async fn insert_notification(
    conn: &mut AnyConnection,
    n: &NewNotification,
    now: i64,
) -> Result<Option<Created>, sqlx::Error> {
    let (audience_topic, audience_where) = match &n.to {
        Recipients::Topic(topic) => (Some(topic.as_str()), None),
        Recipients::Where(audience) => (None, Some(audience.condition.as_str())),
        Recipients::User(_) | Recipients::All | Recipients::Users(_) => (None, None),
    };
    let inserted = sqlx::query("INSERT INTO notifications (id, idempotency_key, payload, ttl, urgency, topic, category, audience_topic, audience_where, recipients, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10) ON CONFLICT (idempotency_key) DO NOTHING")
        .bind(&n.id).bind(&n.idempotency_key).bind(&n.payload).bind(i64::from(n.ttl)).bind(n.urgency.map(Urgency::as_str)).bind(&n.topic).bind(&n.category).bind(audience_topic).bind(audience_where).bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if inserted == 1 {
        return Ok(None);
    }
    match existing(conn, n.idempotency_key.as_deref()).await? {
        Some(first) => Ok(Some(first)),
        None => Err(sqlx::Error::Protocol(format!(
            "notification {} was not written and no notification holds its key",
            n.id
        ))),
    }
}

/// One notification and its deliveries, inside the caller's transaction
/// (see [`Store::notification_create_scheduled`]).
async fn create_in(
    conn: &mut AnyConnection,
    backend: Backend,
    n: &NewNotification,
    schedule: &Schedule,
    default_zone: &TimeZone,
) -> Result<Created, sqlx::Error> {
    let now = now_ms();
    let not_before = schedule.at_ms.map_or(now, |at| at.max(now));
    if let Some(created) = existing(conn, n.idempotency_key.as_deref()).await? {
        return Ok(created);
    }
    if let Some(first) = insert_notification(conn, n, now).await? {
        return Ok(first);
    }
    let insert = "INSERT INTO deliveries (notification_id, subscription_id, next_attempt_ms, updated_ms, anon_id, prompt, variant) \
                  SELECT $1, s.id, $2, $3, s.anon_id, s.prompt, s.variant FROM subscriptions s";
    // PostgreSQL: lock the recipients first, in id order (as erasures
    // lock theirs), so one deleted meanwhile is skipped instead of
    // failing the foreign key, and two transactions never wait on each
    // other in a circle. The foreign-key checks take this lock anyway.
    let lock = if backend == Backend::Postgres {
        " ORDER BY s.id FOR KEY SHARE OF s"
    } else {
        ""
    };
    let result = match &n.to {
        Recipients::All => {
            sqlx::query(&format!("{insert}{lock}"))
                .bind(&n.id)
                .bind(not_before)
                .bind(now)
                .execute(&mut *conn)
                .await?
        }
        Recipients::User(user) => {
            sqlx::query(&format!("{insert} WHERE s.user_id = $4{lock}"))
                .bind(&n.id)
                .bind(not_before)
                .bind(now)
                .bind(user)
                .execute(&mut *conn)
                .await?
        }
        Recipients::Where(audience) => {
            let mut compiler = super::segment_sql::Compiler::new(backend, 4, now);
            let condition = compiler.condition(&audience.segment);
            let query = format!("{insert} LEFT JOIN users u ON u.id = s.user_id WHERE {condition}{lock}");
            let query = sqlx::query(&query).bind(&n.id).bind(not_before).bind(now);
            super::segment_sql::bind_all(query, &compiler.params)
                .execute(&mut *conn)
                .await?
        }
        Recipients::Users(users) => {
            let query = format!("{insert} WHERE s.user_id IN ({}){lock}", super::json_texts(backend, 4));
            sqlx::query(&query)
                .bind(&n.id)
                .bind(not_before)
                .bind(now)
                .bind(serde_json::Value::from(users.clone()).to_string())
                .execute(&mut *conn)
                .await?
        }
        Recipients::Topic(topic) => {
            let query =
                format!("{insert} JOIN subscription_topics t ON t.subscription_id = s.id WHERE t.topic = $4{lock}");
            sqlx::query(&query)
                .bind(&n.id)
                .bind(not_before)
                .bind(now)
                .bind(topic)
                .execute(&mut *conn)
                .await?
        }
    };
    let recipients = i64::try_from(result.rows_affected()).unwrap_or(i64::MAX);
    let (scheduled, defaulted_time_zone) = match schedule.local {
        Some(rule) => local_due_times(conn, &n.id, rule, not_before, now, default_zone).await?,
        None if not_before > now => (recipients, 0),
        None => (0, 0),
    };
    sqlx::query("UPDATE notifications SET recipients = $1, scheduled = $2, defaulted_time_zone = $3 WHERE id = $4")
        .bind(recipients)
        .bind(scheduled)
        .bind(defaulted_time_zone)
        .bind(&n.id)
        .execute(&mut *conn)
        .await?;
    Ok(Created {
        id: n.id.clone(),
        recipients,
        scheduled,
        defaulted_time_zone,
        too_large: 0,
        holdout: 0,
    })
}

/// Sets the due time of each delivery of notification `id` by `rule`
/// from `not_before`, in its recipient's zone: its user's, else its
/// subscription's, else `default_zone` (also for a stored name this build's
/// tz database does not know). Returns `(scheduled, defaulted)`: deliveries
/// due after `now`, and those timed in the default zone.
pub(super) async fn local_due_times(
    tx: &mut AnyConnection,
    id: &str,
    rule: Deliver,
    not_before: i64,
    now: i64,
    default_zone: &TimeZone,
) -> Result<(i64, i64), sqlx::Error> {
    // Only the waiting ones: a `too_large` delivery is never sent.
    let rows = sqlx::query(&format!(
        "SELECT d.id, u.time_zone AS user_zone, s.time_zone AS own_zone FROM deliveries d \
         JOIN subscriptions s ON s.id = d.subscription_id LEFT JOIN users u ON u.id = s.user_id \
         WHERE d.notification_id = $1 AND d.status = '{}'",
        DeliveryStatus::Queued.as_str()
    ))
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let from = u64::try_from(not_before).unwrap_or(0);
    let mut zones: HashMap<String, Option<TimeZone>> = HashMap::new();
    let mut due_at: HashMap<i64, Vec<i64>> = HashMap::new();
    let (mut scheduled, mut defaulted) = (0, 0);
    for row in rows {
        let names = [
            row.try_get::<Option<String>, _>("user_zone")?,
            row.try_get::<Option<String>, _>("own_zone")?,
        ];
        let found = names
            .into_iter()
            .flatten()
            .find_map(|name| zones.entry(name).or_insert_with_key(|name| zone(name)).clone());
        let zone = found.unwrap_or_else(|| {
            defaulted += 1;
            default_zone.clone()
        });
        let due = i64::try_from(rule.next(from, &zone)).unwrap_or(i64::MAX);
        if due > now {
            scheduled += 1;
        }
        if due != not_before {
            due_at.entry(due).or_default().push(row.try_get("id")?);
        }
    }
    for (due, ids) in due_at {
        for chunk in ids.chunks(IDS_PER_UPDATE) {
            let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            sqlx::query(&format!(
                "UPDATE deliveries SET next_attempt_ms = $1 WHERE id IN ({list})"
            ))
            .bind(due)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok((scheduled, defaulted))
}

/// PostgreSQL only (SQLite has one writer): locks every row the outcomes
/// will change — their deliveries, and all of a pruned subscription's — in
/// id order, before any statement changes one. The statements after take
/// them in another order (by status, then one by one), and another worker's
/// recorder or a lease renewal taking the same rows in its own order could
/// otherwise deadlock with this one, losing the whole group.
async fn lock_in_id_order(tx: &mut AnyConnection, outcomes: &[Recorded]) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(outcomes.len());
    let mut gone = Vec::new();
    for outcome in outcomes {
        match outcome {
            Recorded::Finish { id, .. } | Recorded::Retry { id, .. } => ids.push(*id),
            Recorded::Prune { delivery, .. } => {
                ids.push(delivery.id);
                gone.push(delivery.subscription_id);
            }
        }
    }
    lock_rows_in_id_order(tx, &ids, &gone).await
}

/// PostgreSQL only: locks the deliveries `ids`, and every delivery of the
/// subscriptions `gone`, in id order (see [`lock_in_id_order`]).
async fn lock_rows_in_id_order(tx: &mut AnyConnection, ids: &[i64], gone: &[i64]) -> Result<(), sqlx::Error> {
    let sql = format!(
        "SELECT id FROM deliveries WHERE id IN ({}) OR subscription_id IN ({}) ORDER BY id FOR UPDATE",
        super::json_ids(Backend::Postgres, 1),
        super::json_ids(Backend::Postgres, 2)
    );
    sqlx::query(&sql)
        .bind(serde_json::json!(ids).to_string())
        .bind(serde_json::json!(gone).to_string())
        .fetch_all(&mut *tx)
        .await?;
    Ok(())
}

/// Gives the waiting deliveries `ids` a final status.
async fn finish(
    tx: &mut AnyConnection,
    backend: Backend,
    ids: &[i64],
    status: DeliveryStatus,
    code: Option<u16>,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE deliveries SET status = $1, last_code = $2, lease_until_ms = 0, updated_ms = $3, \
         sent_ms = CASE WHEN $1 = '{delivered}' THEN COALESCE(sent_ms, $3) ELSE NULL END WHERE id IN ({ids}) AND {waiting}",
        delivered = DeliveryStatus::Delivered.as_str(),
        ids = super::json_ids(backend, 4),
        waiting = *WAITING
    ))
    .bind(status.as_str())
    .bind(code.map(i64::from))
    .bind(now_ms())
    .bind(serde_json::json!(ids).to_string())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Schedules another attempt of a waiting delivery (see [`Store::delivery_retry`]).
async fn retry(tx: &mut AnyConnection, id: i64, next_ms: i64, code: Option<u16>) -> Result<(), sqlx::Error> {
    let status = format!(
        "CASE WHEN EXISTS (SELECT 1 FROM notifications n WHERE n.id = deliveries.notification_id AND n.cancelled_ms IS NOT NULL) \
         THEN '{cancelled}' ELSE '{retrying}' END",
        cancelled = DeliveryStatus::Cancelled.as_str(),
        retrying = DeliveryStatus::Retrying.as_str()
    );
    // Not arrived: out of the caps' ledger until it is let through again.
    sqlx::query(&format!(
        "UPDATE deliveries SET status = {status}, next_attempt_ms = $1, last_code = $2, lease_until_ms = 0, updated_ms = $3, sent_ms = NULL WHERE id = $4 AND {}",
        *WAITING
    ))
    .bind(next_ms)
    .bind(code.map(i64::from))
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The sends since `since_ms` to the people of `batch` (every device of a
/// user; the device alone otherwise), by person, the batch left out.
async fn send_history(
    conn: &mut AnyConnection,
    backend: Backend,
    batch: &[Claimed],
    since_ms: i64,
) -> Result<SendHistory, sqlx::Error> {
    let users: Vec<&str> = batch.iter().filter_map(|d| d.person.strip_prefix("user:")).collect();
    let devices: Vec<i64> = batch
        .iter()
        .filter(|d| d.person.starts_with("device:"))
        .map(|d| d.subscription_id)
        .collect();
    let ids: Vec<i64> = batch.iter().map(|d| d.id).collect();
    let users_in = super::json_texts(backend, 2);
    // Devices of the users, and the user-less devices themselves (a UNION,
    // not an OR: each side is an index lookup).
    let sql = format!(
        "SELECT s.user_id, d.subscription_id, d.sent_ms, n.category, d.notification_id \
         FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id JOIN notifications n ON n.id = d.notification_id \
         WHERE d.sent_ms >= $1 AND d.subscription_id IN (SELECT id FROM subscriptions WHERE user_id IN ({users_in}) UNION ALL {devices}) \
         AND d.id NOT IN ({batch})",
        devices = super::json_ids(backend, 3),
        batch = super::json_ids(backend, 4)
    );
    let rows = sqlx::query(&sql)
        .bind(since_ms)
        .bind(serde_json::json!(users).to_string())
        .bind(serde_json::json!(devices).to_string())
        .bind(serde_json::json!(ids).to_string())
        .fetch_all(&mut *conn)
        .await?;
    let mut history = SendHistory::new();
    for row in rows {
        let person = match row.try_get::<Option<String>, _>("user_id")? {
            Some(user) => format!("user:{user}"),
            None => format!("device:{}", row.try_get::<i64, _>("subscription_id")?),
        };
        history.entry(person).or_default().push((
            row.try_get("sent_ms")?,
            row.try_get("category")?,
            row.try_get("notification_id")?,
        ));
    }
    Ok(history)
}

/// Records the policy's answers (see [`Store::deliveries_admit`]), a few
/// statements per batch. Rows are picked by `id IN (…)`, so each update
/// is a lookup by id: a join on the id let SQLite drive the update from the
/// waiting rows' status index instead, a scan of the whole outbox per batch.
async fn record_admissions(
    conn: &mut AnyConnection,
    backend: Backend,
    admissions: &[Admission],
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut sends = Vec::new();
    let mut holds: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut capped = Vec::new();
    let mut collapsed = Vec::new();
    let mut muted = Vec::new();
    let mut paused = Vec::new();
    for admission in admissions {
        match *admission {
            Admission::Send(id) => sends.push(id),
            Admission::Hold(id, until) => holds.entry(until).or_default().push(id),
            Admission::Cap(id) => capped.push(id),
            Admission::Collapse(id) => collapsed.push(id),
            Admission::Mute(id) => muted.push(id),
            Admission::Pause(id) => paused.push(id),
        }
    }
    let waiting = &*WAITING;
    if !sends.is_empty() {
        let sql = format!(
            "UPDATE deliveries SET sent_ms = $1 WHERE id IN ({}) AND {waiting}",
            super::json_ids(backend, 2)
        );
        sqlx::query(&sql)
            .bind(now)
            .bind(serde_json::json!(sends).to_string())
            .execute(&mut *conn)
            .await?;
    }
    // Held: due again at its release (one statement per release time: the
    // pushes of one quiet-hours end or cap share it), its claim given back,
    // and the attempt not counted (it was not tried).
    for (until, ids) in &holds {
        let sql = format!(
            "UPDATE deliveries SET status = '{held}', next_attempt_ms = $1, lease_until_ms = 0, \
             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_ms = $2, sent_ms = NULL \
             WHERE id IN ({}) AND {waiting}",
            super::json_ids(backend, 3),
            held = DeliveryStatus::Held.as_str()
        );
        sqlx::query(&sql)
            .bind(*until)
            .bind(now)
            .bind(serde_json::json!(ids).to_string())
            .execute(&mut *conn)
            .await?;
    }
    for (status, ids) in [
        (DeliveryStatus::Capped, capped),
        (DeliveryStatus::Collapsed, collapsed),
        (DeliveryStatus::Muted, muted),
        (DeliveryStatus::Paused, paused),
    ] {
        if ids.is_empty() {
            continue;
        }
        let sql = format!(
            "UPDATE deliveries SET status = $1, lease_until_ms = 0, updated_ms = $2, sent_ms = NULL WHERE id IN ({}) AND {waiting}",
            super::json_ids(backend, 3)
        );
        sqlx::query(&sql)
            .bind(status.as_str())
            .bind(now)
            .bind(serde_json::json!(ids).to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The stored urgency: one this version cannot read is logged and the push
/// goes without the header (a hint to the push service, not worth holding
/// the delivery back for).
fn stored_urgency(text: Option<String>) -> Option<Urgency> {
    let text = text?;
    let urgency = Urgency::parse(&text);
    if urgency.is_none() {
        tracing::warn!(urgency = %text, "unknown urgency in notifications.urgency; sending without the header");
    }
    urgency
}

#[cfg(test)]
mod tests {
    use super::super::{NewSubscription, StatsRange};
    use super::*;

    #[tokio::test]
    async fn an_unknown_delivery_status_is_an_error_not_a_pruned_delivery() {
        let store = Store::in_memory().await.expect("store");
        let subscription = NewSubscription {
            endpoint: "https://push.example.net/a".into(),
            p256dh: "key".into(),
            auth: "auth".into(),
            user: None,
            expiration_ms: None,
            topics: Vec::new(),
            time_zone: None,
        };
        store.subscription_upsert(&subscription).await.expect("subscribe");
        let notification = NewNotification {
            id: "n1".into(),
            idempotency_key: None,
            payload: "{}".into(),
            ttl: 60,
            urgency: None,
            topic: None,
            category: None,
            to: Recipients::All,
        };
        store.notification_create(&notification).await.expect("enqueue");
        // As a newer server, or a hand edit, might leave it.
        sqlx::query("UPDATE deliveries SET status = 'bounced'")
            .execute(&store.pool)
            .await
            .expect("update");
        let counts = store.notification_counts("n1").await;
        assert!(
            counts.as_ref().is_err_and(|e| e.to_string().contains("bounced")),
            "{counts:?}"
        );
        let range = StatsRange {
            from_ms: 0,
            to_ms: i64::MAX / 2,
            synthetic: false,
        };
        let days = store.stats_deliveries(range).await;
        assert!(
            days.as_ref().is_err_and(|e| e.to_string().contains("bounced")),
            "{days:?}"
        );
    }
}
