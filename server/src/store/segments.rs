//! Named segments: `PUT /v1/segments/{id}` stores a checked condition,
//! `POST /v1/notify` `to: { segment }` reads it back.

use serde_json::Value;
use sqlx::Row;

use super::Store;
use crate::store::Recipients;

/// A stored segment.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSegment {
    /// Its id.
    pub id: String,
    /// The condition, as the API took it (`{ "trait": …, "in": […] }`).
    pub condition: Value,
    /// Last written (epoch ms).
    pub updated_ms: i64,
}

impl Store {
    /// Creates or replaces segment `id` with `condition` (checked by the
    /// caller); whether it was new.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn segment_put(&self, id: &str, condition: &Value, now_ms: i64) -> Result<bool, sqlx::Error> {
        let mut tx = self.write().await?;
        // Insert-or-nothing first, so of two concurrent puts of a new id
        // exactly one creates it (a SELECT first let both think so).
        let created = sqlx::query(
            "INSERT INTO segments (id, definition, updated_ms) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(condition.to_string())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let replaced = !created
            && sqlx::query("UPDATE segments SET definition = $1, updated_ms = $2 WHERE id = $3")
                .bind(condition.to_string())
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !created && !replaced {
            // Deleted between the two statements: stored anew (an upsert, in
            // case another put stored it meanwhile).
            sqlx::query(
                "INSERT INTO segments (id, definition, updated_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET definition = excluded.definition, updated_ms = excluded.updated_ms",
            )
            .bind(id)
            .bind(condition.to_string())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(created || !replaced)
    }

    /// Segment `id`, if stored.
    ///
    /// # Errors
    /// When the database fails or a stored condition is not JSON.
    pub async fn segment_get(&self, id: &str) -> Result<Option<StoredSegment>, sqlx::Error> {
        let row = sqlx::query("SELECT id, definition, updated_ms FROM segments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| stored(&row)).transpose()
    }

    /// Every segment, by id.
    ///
    /// # Errors
    /// When the database fails or a stored condition is not JSON.
    pub async fn segments_list(&self) -> Result<Vec<StoredSegment>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, definition, updated_ms FROM segments ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored).collect()
    }

    /// Deletes segment `id`; whether there was one.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn segment_delete(&self, id: &str) -> Result<bool, sqlx::Error> {
        let mut tx = self.write().await?;
        let deleted = sqlx::query("DELETE FROM segments WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// How many devices `to` reaches now.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn recipient_count(&self, to: &Recipients) -> Result<i64, sqlx::Error> {
        let (filter, params) = self.recipients_filter(to);
        let sql = format!("SELECT COUNT(*) AS n FROM subscriptions s LEFT JOIN users u ON u.id = s.user_id{filter}");
        let row = super::segment_sql::bind_all(sqlx::query(&sql), &params)
            .fetch_one(&self.pool)
            .await?;
        row.try_get("n")
    }
}

fn stored(row: &sqlx::any::AnyRow) -> Result<StoredSegment, sqlx::Error> {
    let text: String = row.try_get("definition")?;
    Ok(StoredSegment {
        id: row.try_get("id")?,
        condition: serde_json::from_str(&text).map_err(|err| sqlx::Error::Decode(Box::new(err)))?,
        updated_ms: row.try_get("updated_ms")?,
    })
}
