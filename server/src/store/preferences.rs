//! What people turned off: muted categories and topics and a pause, per user (all
//! their devices) or per device. Written by the preference centre (proof
//! of possession) and the admin API; read when a worker claims.

use std::collections::HashMap;

use sqlx::Row;

use super::{now_ms, Backend, Store};

/// A pause with no end: until the person turns it back on.
pub const PAUSED_INDEFINITELY: i64 = i64::MAX;

/// One subject's preferences (the default: nothing turned off).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// Categories turned off, sorted.
    pub muted: Vec<String>,
    /// Topics turned off (`thread:42`), sorted.
    pub muted_topics: Vec<String>,
    /// Nothing but exempt categories until then ([`PAUSED_INDEFINITELY`]:
    /// until turned back on).
    pub paused_until_ms: Option<i64>,
}

impl Preferences {
    /// Whether a push of `category`, sent to `topic`, is turned off at `now_ms`.
    pub fn silences(&self, category: Option<&str>, topic: Option<&str>, now_ms: i64) -> bool {
        self.paused_until_ms.is_some_and(|until| until > now_ms)
            || category.is_some_and(|c| self.muted.iter().any(|m| m == c))
            || topic.is_some_and(|t| self.muted_topics.iter().any(|m| m == t))
    }
}

/// The subject of a device's preferences.
pub fn device_subject(subscription_id: i64) -> String {
    format!("device:{subscription_id}")
}

/// The subject of a user's preferences.
pub fn user_subject(user: &str) -> String {
    format!("user:{user}")
}

impl Store {
    /// `subject`'s preferences (nothing turned off if none are stored).
    ///
    /// # Errors
    /// When the database fails, or a stored row does not read.
    pub async fn preferences_get(&self, subject: &str) -> Result<Preferences, sqlx::Error> {
        Ok(self
            .preferences_of(&[subject.to_owned()])
            .await?
            .remove(subject)
            .unwrap_or_default())
    }

    /// The stored preferences of each of `subjects` that has some.
    ///
    /// # Errors
    /// When the database fails, or a stored row does not read.
    pub async fn preferences_of(&self, subjects: &[String]) -> Result<HashMap<String, Preferences>, sqlx::Error> {
        let list = super::json_texts(self.backend, 1);
        let sql =
            format!("SELECT subject, muted, muted_topics, paused_until_ms FROM preferences WHERE subject IN ({list})");
        let rows = sqlx::query(&sql)
            .bind(serde_json::json!(subjects).to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            out.insert(row.try_get("subject")?, preferences_of_row(&row)?);
        }
        Ok(out)
    }

    /// Stores `subject`'s preferences (nothing turned off removes the row).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn preferences_set(&self, subject: &str, preferences: &Preferences) -> Result<(), sqlx::Error> {
        let mut tx = self.write().await?;
        write(&mut tx, subject, preferences).await?;
        tx.commit().await
    }

    /// Changes `subject`'s preferences with `change` (given what is stored,
    /// it answers what to store, or refuses) in one transaction, so two
    /// changes at once both count: read and written apart, 24 concurrent
    /// toggles of one device kept one. Returns what is stored now, or the
    /// refusal (nothing changed).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn preferences_update<E>(
        &self,
        subject: &str,
        change: impl FnOnce(Preferences) -> Result<Preferences, E> + Send,
    ) -> Result<Result<Preferences, E>, sqlx::Error> {
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres {
            // SQLite's write transaction already takes turns.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query("SELECT muted, muted_topics, paused_until_ms FROM preferences WHERE subject = $1")
            .bind(subject)
            .fetch_optional(&mut *tx)
            .await?;
        let stored = row.as_ref().map(preferences_of_row).transpose()?.unwrap_or_default();
        let changed = match change(stored) {
            Ok(changed) => changed,
            Err(refused) => return Ok(Err(refused)),
        };
        write(&mut tx, subject, &changed).await?;
        tx.commit().await?;
        Ok(Ok(changed))
    }
}

pub(crate) fn preferences_of_row(row: &sqlx::any::AnyRow) -> Result<Preferences, sqlx::Error> {
    Ok(Preferences {
        muted: names(row, "muted")?,
        muted_topics: names(row, "muted_topics")?,
        paused_until_ms: row.try_get("paused_until_ms")?,
    })
}

fn names(row: &sqlx::any::AnyRow, column: &str) -> Result<Vec<String>, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text)
        .map_err(|err| sqlx::Error::Decode(format!("preferences.{column} is not a JSON array of names: {err}").into()))
}

/// `names` sorted, each once: what is stored.
fn sorted(names: &[String]) -> String {
    let mut names = names.to_vec();
    names.sort_unstable();
    names.dedup();
    serde_json::json!(names).to_string()
}

/// Writes (or, when nothing is turned off, removes) `subject`'s row.
async fn write(conn: &mut sqlx::AnyConnection, subject: &str, preferences: &Preferences) -> Result<(), sqlx::Error> {
    if *preferences == Preferences::default() {
        sqlx::query("DELETE FROM preferences WHERE subject = $1")
            .bind(subject)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO preferences (subject, muted, muted_topics, paused_until_ms, updated_ms) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (subject) DO UPDATE SET muted = excluded.muted, muted_topics = excluded.muted_topics, \
         paused_until_ms = excluded.paused_until_ms, updated_ms = excluded.updated_ms",
    )
    .bind(subject)
    .bind(sorted(&preferences.muted))
    .bind(sorted(&preferences.muted_topics))
    .bind(preferences.paused_until_ms)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
