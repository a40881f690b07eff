//! A/B tests with a rollout (see `crate::rollout`): which are due to be
//! decided, the devices outside the test share waiting for the decision,
//! and the decision written with the rest's rendered deliveries in one
//! transaction.

use sqlx::Row;

use super::rendered::{recipient_of, DueRollout, RECIPIENT_COLUMNS};
use super::Store;
use crate::push::DeliveryStatus;
use crate::store::{Recipient, Rendered};

/// Rest deliveries per `UPDATE` (each up to ~3 kB of payload in one JSON
/// parameter).
const ROWS_PER_UPDATE: usize = 500;

impl Store {
    /// Up to `limit` rollouts whose decision is due at `now_ms`, the
    /// earliest first.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn rollouts_due(&self, now_ms: i64, limit: i64) -> Result<Vec<DueRollout>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, rollout, cancelled_ms FROM notifications \
             WHERE rollout_decide_ms IS NOT NULL AND rollout_decision IS NULL AND rollout_decide_ms <= $1 \
             ORDER BY rollout_decide_ms LIMIT $2",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DueRollout {
                    id: row.try_get("id")?,
                    plan: row.try_get::<Option<String>, _>("rollout")?.unwrap_or_default(),
                    cancelled: row.try_get::<Option<i64>, _>("cancelled_ms")?.is_some(),
                })
            })
            .collect()
    }

    /// The deliveries of notification `id` waiting for its rollout's
    /// decision (`awaiting_winner`): `(delivery id, its device)`, each with
    /// its user's traits as they are now.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn rollout_rest(&self, id: &str) -> Result<Vec<(i64, Recipient)>, sqlx::Error> {
        let sql = format!(
            "SELECT d.id AS delivery_id, {RECIPIENT_COLUMNS} FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id \
             LEFT JOIN users u ON u.id = s.user_id WHERE d.notification_id = $1 AND d.status = '{}' ORDER BY s.id",
            DeliveryStatus::AwaitingWinner.as_str()
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("delivery_id")?, recipient_of(row)?)))
            .collect()
    }

    /// Records the decision of notification `id`'s rollout, replaces its
    /// plan with `plan` (the caller drops the batch data it no longer
    /// needs: personal data is kept no longer than it is used), and queues
    /// its rest as `rows` say (`(delivery id, what it gets)`), in one
    /// transaction. Each keeps the due time it got at the send (passed by
    /// now, or `deliver.at` if that is later). A waiting delivery without a
    /// row ends `leftover` (`pruned`: its device was deleted meanwhile).
    /// Returns `false`, and writes nothing, when it was decided already (by
    /// another server).
    ///
    /// # Errors
    /// When the database fails; nothing is written then.
    pub async fn rollout_finish(
        &self,
        id: &str,
        decision: &str,
        plan: &str,
        rows: &[(i64, Rendered)],
        leftover: DeliveryStatus,
        now_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.write().await?;
        // First, so on PostgreSQL a second decider waits on the row and
        // then finds it decided.
        let claimed = sqlx::query(
            "UPDATE notifications SET rollout_decision = $1, rollout = $2 WHERE id = $3 AND rollout_decision IS NULL",
        )
        .bind(decision)
        .bind(plan)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(false);
        }
        let awaiting = DeliveryStatus::AwaitingWinner.as_str();
        let sql = format!(
            "UPDATE deliveries SET status = r.value ->> 2, payload = r.value ->> 1, updated_ms = $2 \
             FROM {rows} WHERE deliveries.id = CAST(r.value ->> 0 AS BIGINT) AND deliveries.notification_id = $1 \
             AND deliveries.status = '{awaiting}'",
            rows = super::json_rows(self.backend, 3),
        );
        for chunk in rows.chunks(ROWS_PER_UPDATE) {
            let json: Vec<serde_json::Value> = chunk
                .iter()
                .map(|(delivery, rendered)| {
                    let (payload, status) = match rendered {
                        Rendered::Payload(payload) => (Some(payload.as_str()), DeliveryStatus::Queued),
                        Rendered::TooLarge => (None, DeliveryStatus::TooLarge),
                        Rendered::Withheld => (None, DeliveryStatus::Withheld),
                        Rendered::AwaitingWinner => (None, DeliveryStatus::AwaitingWinner),
                    };
                    serde_json::json!([delivery, payload, status.as_str()])
                })
                .collect();
            sqlx::query(&sql)
                .bind(id)
                .bind(now_ms)
                .bind(serde_json::Value::Array(json).to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(&format!(
            "UPDATE deliveries SET status = '{leftover}', updated_ms = $1 WHERE notification_id = $2 AND status = '{awaiting}'",
            leftover = leftover.as_str(),
        ))
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE notifications SET too_large = (SELECT COUNT(*) FROM deliveries d WHERE d.notification_id = $1 AND d.status = '{}') \
             WHERE id = $1",
            DeliveryStatus::TooLarge.as_str()
        ))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes `user`'s batch data from the plans of rollouts not decided
    /// yet (an erasure: the plan is the one other place it is kept).
    ///
    /// # Errors
    /// When the database fails or a plan is not JSON.
    pub(super) async fn rollout_forget(conn: &mut sqlx::AnyConnection, user: &str) -> Result<(), sqlx::Error> {
        let plans =
            sqlx::query("SELECT id, rollout FROM notifications WHERE rollout IS NOT NULL AND rollout_decision IS NULL")
                .fetch_all(&mut *conn)
                .await?;
        for row in &plans {
            let text: String = row.try_get("rollout")?;
            let mut plan: serde_json::Value =
                serde_json::from_str(&text).map_err(|err| sqlx::Error::Decode(Box::new(err)))?;
            let held = plan["data"].as_object_mut().and_then(|data| data.remove(user));
            if held.is_none() {
                continue;
            }
            sqlx::query("UPDATE notifications SET rollout = $1 WHERE id = $2")
                .bind(plan.to_string())
                .bind(row.try_get::<String, _>("id")?)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}
