//! Funnel and notification events.

use super::{now_ms, Store};

/// One validated event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Client-generated id (deduplication), or a server-generated one.
    pub id: String,
    /// Event type (`prompt_shown`, `notification_clicked`, …).
    pub kind: String,
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
    /// When it happened (client clock).
    pub at_ms: i64,
}

impl Store {
    /// Stores events, skipping ids already stored; returns how many were new.
    /// Notification clicks and dismissals also mark their delivery.
    ///
    /// # Errors
    /// When the database fails; nothing is stored then.
    pub async fn events_insert(&self, events: &[Event]) -> Result<u64, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for e in events {
            let result = sqlx::query(
                "INSERT INTO events (id, type, prompt, variant, trigger_name, anon_id, delivery, action, at_ms, received_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&e.id).bind(&e.kind).bind(&e.prompt).bind(&e.variant).bind(&e.trigger).bind(&e.anon_id).bind(&e.delivery).bind(&e.action).bind(e.at_ms).bind(now)
            .execute(&mut *tx)
            .await?;
            inserted += result.rows_affected();
            let column = match e.kind.as_str() {
                "notification_clicked" => "clicked_ms",
                "notification_dismissed" => "dismissed_ms",
                _ => continue,
            };
            if let Some((notification, delivery)) = e.delivery.as_deref().and_then(|d| d.split_once(':')) {
                let Ok(delivery) = delivery.parse::<i64>() else {
                    continue;
                };
                sqlx::query(&format!(
                    "UPDATE deliveries SET {column} = COALESCE({column}, $1) WHERE id = $2 AND notification_id = $3"
                ))
                .bind(e.at_ms)
                .bind(delivery)
                .bind(notification)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }
}
