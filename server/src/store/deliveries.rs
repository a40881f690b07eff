//! The outbox: notifications, their per-subscription deliveries, and claims.

use std::sync::LazyLock;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// Subscribers of a topic.
    Topic(String),
    /// All subscriptions of an app user.
    User(String),
    /// Every subscription.
    All,
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
    /// Who receives it.
    pub to: Recipients,
}

/// A delivery claimed by a worker, with everything needed to send it.
#[derive(Debug, Clone)]
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
}

/// Per-status counts of one notification's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatusCounts {
    /// Waiting for the first attempt.
    pub queued: i64,
    /// Accepted by the push service.
    pub delivered: i64,
    /// Waiting for another attempt.
    pub retrying: i64,
    /// Given up.
    pub failed: i64,
    /// The subscription was gone (404/410) and has been deleted.
    pub pruned: i64,
    /// Clicked by the user.
    pub clicked: i64,
    /// Dismissed by the user.
    pub dismissed: i64,
}

impl Store {
    /// Writes the notification and one delivery per recipient in one
    /// transaction; returns `(id, recipients)`. A repeated idempotency key
    /// returns the first notification's id and count and enqueues nothing.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn notification_create(&self, n: &NewNotification) -> Result<(String, i64), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.write().await?;
        if let Some(key) = &n.idempotency_key {
            let existing = sqlx::query("SELECT id, recipients FROM notifications WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                return Ok((row.try_get("id")?, row.try_get("recipients")?));
            }
        }
        sqlx::query("INSERT INTO notifications (id, idempotency_key, payload, ttl, urgency, topic, recipients, created_ms) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)")
            .bind(&n.id).bind(&n.idempotency_key).bind(&n.payload).bind(i64::from(n.ttl)).bind(n.urgency.map(Urgency::as_str)).bind(&n.topic).bind(now)
            .execute(&mut *tx)
            .await?;
        let insert = "INSERT INTO deliveries (notification_id, subscription_id, next_attempt_ms, updated_ms, anon_id, prompt, variant) \
                      SELECT $1, s.id, $2, $2, s.anon_id, s.prompt, s.variant FROM subscriptions s";
        // PostgreSQL: lock the recipients first, in id order (as erasures
        // lock theirs), so one deleted meanwhile is skipped instead of
        // failing the foreign key, and two transactions never wait on each
        // other in a circle. The foreign-key checks take this lock anyway.
        let lock = if self.backend == Backend::Postgres {
            " ORDER BY s.id FOR KEY SHARE OF s"
        } else {
            ""
        };
        let result = match &n.to {
            Recipients::All => {
                sqlx::query(&format!("{insert}{lock}"))
                    .bind(&n.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
            }
            Recipients::User(user) => {
                sqlx::query(&format!("{insert} WHERE s.user_id = $3{lock}"))
                    .bind(&n.id)
                    .bind(now)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?
            }
            Recipients::Topic(topic) => {
                let query =
                    format!("{insert} JOIN subscription_topics t ON t.subscription_id = s.id WHERE t.topic = $3{lock}");
                sqlx::query(&query)
                    .bind(&n.id)
                    .bind(now)
                    .bind(topic)
                    .execute(&mut *tx)
                    .await?
            }
        };
        let recipients = i64::try_from(result.rows_affected()).unwrap_or(i64::MAX);
        sqlx::query("UPDATE notifications SET recipients = $1 WHERE id = $2")
            .bind(recipients)
            .bind(&n.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((n.id.clone(), recipients))
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
            "SELECT d.id, d.notification_id, d.subscription_id, d.attempts, s.endpoint, s.p256dh, s.auth, n.payload, n.ttl, n.urgency, n.topic \
             FROM deliveries d JOIN notifications n ON n.id = d.notification_id LEFT JOIN subscriptions s ON s.id = d.subscription_id \
             WHERE d.id IN ({list})"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(endpoint) = row.try_get::<Option<String>, _>("endpoint")? else {
                // The subscription was deleted after enqueueing.
                self.delivery_finish(row.try_get("id")?, DeliveryStatus::Pruned, None)
                    .await?;
                continue;
            };
            claimed.push(Claimed {
                id: row.try_get("id")?,
                notification_id: row.try_get("notification_id")?,
                subscription_id: row.try_get("subscription_id")?,
                attempt: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                endpoint,
                p256dh: row.try_get("p256dh")?,
                auth: row.try_get("auth")?,
                payload: row.try_get("payload")?,
                ttl: u32::try_from(row.try_get::<i64, _>("ttl")?).unwrap_or(0),
                urgency: stored_urgency(row.try_get("urgency")?),
                topic: row.try_get("topic")?,
            });
        }
        Ok(claimed)
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
        let mut tx = self.write().await?;
        sqlx::query(&format!(
            "UPDATE deliveries SET lease_until_ms = $1 WHERE lease_until_ms > 0 AND {} AND id IN ({list})",
            *WAITING
        ))
        .bind(now_ms() + lease_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Records a final status (`Delivered`, `Failed`, `Pruned`).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn delivery_finish(&self, id: i64, status: DeliveryStatus, code: Option<u16>) -> Result<(), sqlx::Error> {
        let mut tx = self.write().await?;
        finish(&mut tx, id, status, code).await?;
        tx.commit().await
    }

    /// Schedules another attempt at `next_ms`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn delivery_retry(&self, id: i64, next_ms: i64, code: Option<u16>) -> Result<(), sqlx::Error> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE deliveries SET status = $1, next_attempt_ms = $2, last_code = $3, lease_until_ms = 0, updated_ms = $4 WHERE id = $5")
            .bind(DeliveryStatus::Retrying.as_str()).bind(next_ms).bind(code.map(i64::from)).bind(now_ms()).bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Deletes a subscription the push service says is gone, pruning the
    /// delivery; the funnel records it as `unsubscribed` (action `pruned`).
    /// One transaction: a crash leaves all three or none.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn delivery_prune(&self, delivery: &Claimed, code: u16) -> Result<(), sqlx::Error> {
        let mut tx = self.write().await?;
        super::events::record_pruned(&mut tx, delivery).await?;
        finish(&mut tx, delivery.id, DeliveryStatus::Pruned, Some(code)).await?;
        super::subscriptions::delete(&mut tx, delivery.subscription_id).await?;
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
        let rows = sqlx::query("SELECT status, COUNT(*) AS n, COUNT(clicked_ms) AS clicked, COUNT(dismissed_ms) AS dismissed FROM deliveries WHERE notification_id = $1 GROUP BY status")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        let mut counts = StatusCounts::default();
        for row in rows {
            let n: i64 = row.try_get("n")?;
            counts.clicked += row.try_get::<i64, _>("clicked")?;
            counts.dismissed += row.try_get::<i64, _>("dismissed")?;
            let count = match decode_status(&row.try_get::<String, _>("status")?)? {
                DeliveryStatus::Queued => &mut counts.queued,
                DeliveryStatus::Retrying => &mut counts.retrying,
                DeliveryStatus::Delivered => &mut counts.delivered,
                DeliveryStatus::Failed => &mut counts.failed,
                DeliveryStatus::Pruned => &mut counts.pruned,
            };
            *count += n;
        }
        Ok(Some(counts))
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
}

/// Records a delivery's final status inside `tx`.
async fn finish(tx: &mut AnyConnection, id: i64, status: DeliveryStatus, code: Option<u16>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE deliveries SET status = $1, last_code = $2, lease_until_ms = 0, updated_ms = $3 WHERE id = $4")
        .bind(status.as_str())
        .bind(code.map(i64::from))
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
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
