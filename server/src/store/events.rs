//! Funnel and notification events.

use askwell::model::EventKind;
use sqlx::Row;

use super::{now_ms, Claimed, Store};

/// One validated event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// Client-generated id (deduplication), or a server-generated one.
    pub id: String,
    /// Event type.
    pub kind: EventKind,
    /// Prompt id.
    pub prompt: Option<String>,
    /// Variant id or `holdout`.
    pub variant: Option<String>,
    /// What triggered the prompt.
    pub trigger: Option<String>,
    /// Anonymous device id.
    pub anon_id: Option<String>,
    /// Delivery id (`notification:delivery`) for notification events.
    pub delivery: Option<String>,
    /// Notification action button.
    pub action: Option<String>,
    /// The app's name of a `conversion` (`"replied"`).
    pub name: Option<String>,
    /// Simulated data (never counted with real data).
    pub synthetic: bool,
    /// When it happened (client clock).
    pub at_ms: i64,
}

/// Columns of one insert, in order.
const COLUMNS: usize = 12;

impl Store {
    /// Stores events, skipping ids already stored; returns how many were new.
    /// Notification events without a prompt are attributed to the prompt that
    /// won their subscription; clicks and dismissals also mark their delivery.
    ///
    /// # Errors
    /// When the database fails; nothing is stored then.
    pub async fn events_insert(&self, events: &[Event]) -> Result<u64, sqlx::Error> {
        if events.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        let mut attributed = Vec::with_capacity(events.len());
        for event in events {
            attributed.push(attribute(&mut tx, event).await?);
        }
        // One statement per batch: ~10× faster than a statement per event.
        let sql = insert_sql(attributed.len());
        let mut query = sqlx::query(&sql);
        for e in &attributed {
            query = query
                .bind(&e.id)
                .bind(e.kind.as_str())
                .bind(&e.prompt)
                .bind(&e.variant)
                .bind(&e.trigger)
                .bind(&e.anon_id)
                .bind(&e.delivery)
                .bind(&e.action)
                .bind(&e.name)
                .bind(i64::from(e.synthetic))
                .bind(e.at_ms)
                .bind(now);
        }
        let inserted = query.execute(&mut *tx).await?.rows_affected();
        for e in &attributed {
            mark_delivery(&mut tx, e).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (id, type, prompt, variant, trigger_name, anon_id, delivery, action, name, synthetic, at_ms, received_ms) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..COLUMNS {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * COLUMNS + column + 1).to_string());
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    sql
}

/// `notification:delivery` → the two ids, if well formed.
fn delivery_ids(delivery: Option<&str>) -> Option<(&str, i64)> {
    let (notification, delivery) = delivery?.split_once(':')?;
    Some((notification, delivery.parse().ok()?))
}

/// Fills in prompt, variant and device of a notification event from its
/// delivery (copied from the subscription when enqueued; the worker knows
/// none of them).
async fn attribute(tx: &mut sqlx::AnyConnection, event: &Event) -> Result<Event, sqlx::Error> {
    let mut event = event.clone();
    let Some((notification, delivery)) = delivery_ids(event.delivery.as_deref()) else {
        return Ok(event);
    };
    if event.prompt.is_some() && event.anon_id.is_some() {
        return Ok(event);
    }
    let row = sqlx::query("SELECT anon_id, prompt, variant FROM deliveries WHERE id = $1 AND notification_id = $2")
        .bind(delivery)
        .bind(notification)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = row {
        if event.prompt.is_none() {
            event.prompt = row.try_get("prompt")?;
            event.variant = row.try_get("variant")?;
        }
        if event.anon_id.is_none() {
            event.anon_id = row.try_get("anon_id")?;
        }
    }
    Ok(event)
}

/// A show, click or dismissal also marks its delivery (for `/v1/notifications/{id}`).
async fn mark_delivery(tx: &mut sqlx::AnyConnection, event: &Event) -> Result<(), sqlx::Error> {
    let column = match event.kind {
        EventKind::NotificationClicked => "clicked_ms",
        EventKind::NotificationDismissed => "dismissed_ms",
        EventKind::NotificationShown => "shown_ms",
        _ => return Ok(()),
    };
    let Some((notification, delivery)) = delivery_ids(event.delivery.as_deref()) else {
        return Ok(());
    };
    sqlx::query(&format!(
        "UPDATE deliveries SET {column} = COALESCE({column}, $1) WHERE id = $2 AND notification_id = $3"
    ))
    .bind(event.at_ms)
    .bind(delivery)
    .bind(notification)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Rows one sweep step deletes: short write transactions, so a sweep of
/// millions of old events never holds the write lock for long.
const SWEEP_BATCH: i64 = 5_000;

impl Store {
    /// Deletes events that happened before `before_ms` (the retention
    /// period, `ASKWELL_EVENT_RETENTION_DAYS`), in short batches; returns how
    /// many.
    ///
    /// # Errors
    /// When the database fails; what was deleted until then stays deleted.
    pub async fn events_sweep(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            let mut tx = self.write().await?;
            let deleted =
                sqlx::query("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at_ms < $1 LIMIT $2)")
                    .bind(before_ms)
                    .bind(SWEEP_BATCH)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            tx.commit().await?;
            total += deleted;
            if deleted < SWEEP_BATCH as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Records a funnel event the server knows itself about subscription `id`
/// (`subscribed` when it is attributed to a prompt, `unsubscribed` when it is
/// deleted), attributed like the subscription. Nothing for a subscription no
/// prompt won. The id is derived from the row (id and creation time, as
/// SQLite may reuse a deleted row's id), so repeats record it once.
pub(super) async fn record_subscription_event(
    tx: &mut sqlx::AnyConnection,
    id: i64,
    kind: EventKind,
    action: Option<&str>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO events (id, type, prompt, variant, anon_id, action, at_ms, received_ms) \
         SELECT $1 || ':' || CAST(id AS TEXT) || ':' || CAST(created_ms AS TEXT), $1, prompt, variant, anon_id, $2, $3, $3 \
         FROM subscriptions WHERE id = $4 AND prompt IS NOT NULL \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(kind.as_str())
    .bind(action)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records that the push service said `delivery`'s subscription is gone:
/// an `unsubscribed` event (action `pruned`) attributed like the
/// subscription, so retention sees it. The id is derived from the delivery,
/// so a retry after a crash records it once. Call it before the subscription
/// row is deleted.
pub(super) async fn record_pruned(tx: &mut sqlx::AnyConnection, delivery: &Claimed) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let kind = EventKind::Unsubscribed.as_str();
    let delivery_ref = format!("{}:{}", delivery.notification_id, delivery.id);
    sqlx::query(
        "INSERT INTO events (id, type, prompt, variant, anon_id, delivery, action, at_ms, received_ms) \
         SELECT $1, $2, prompt, variant, anon_id, $3, 'pruned', $4, $4 FROM subscriptions WHERE id = $5 \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(format!("{kind}:{delivery_ref}"))
    .bind(kind)
    .bind(delivery_ref)
    .bind(now)
    .bind(delivery.subscription_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sweep_deletes_events_older_than_the_retention_period_only() {
        let store = Store::in_memory().await.expect("store");
        let now = now_ms();
        let day = super::super::DAY_MS;
        let events: Vec<Event> = (0..12_000)
            .map(|i| Event {
                id: format!("e{i}"),
                kind: EventKind::PromptShown,
                at_ms: if i % 3 == 0 { now } else { now - 200 * day },
                ..Event::default()
            })
            .collect();
        for chunk in events.chunks(1000) {
            store.events_insert(chunk).await.expect("insert");
        }
        assert_eq!(store.events_sweep(now - 180 * day).await.expect("sweep"), 8_000);
        assert_eq!(store.events_sweep(now - 180 * day).await.expect("sweep"), 0);
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&store.pool)
            .await
            .expect("count");
        assert_eq!(left, 4_000);
    }

    #[test]
    fn one_insert_statement_numbers_every_placeholder() {
        let sql = insert_sql(2);
        assert!(sql.contains("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12), ($13,"));
        assert!(sql.ends_with("$24) ON CONFLICT (id) DO NOTHING"));
    }

    #[test]
    fn delivery_references_must_name_both_ids() {
        assert_eq!(delivery_ids(Some("n1:42")), Some(("n1", 42)));
        assert_eq!(delivery_ids(Some("n1")), None);
        assert_eq!(delivery_ids(Some("n1:x")), None);
        assert_eq!(delivery_ids(None), None);
    }
}
