//! What the app's backend tells the server about its users: traits (merged
//! by `PUT /v1/users/{id}`), a time zone, and the events it tracks
//! (`POST /v1/track`) — what journeys are triggered by and timed with.
//!
//! Values arrive validated (`crate::users`): trait and property maps hold
//! flat scalars only, and are stored as JSON text (sorted by name:
//! `serde_json::Map` is a `BTreeMap`), read the same way on both backends.
//!
//! Ordering for a reader that follows `seq` ([`Store::user_events_after`]):
//! a seq is never reused (SQLite `AUTOINCREMENT`, a PostgreSQL identity), and
//! event inserts are serialised (SQLite's one writer; on PostgreSQL an
//! advisory lock, [`EVENTS_LOCK`]), so a transaction that commits later never
//! holds a smaller seq than one already visible.

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{now_ms, Backend, Store};
use crate::users::MAX_TRAITS;

/// A user's traits, or an event's properties: names to flat scalars
/// (string, number, bool; in a change, `null` deletes).
pub type Traits = Map<String, Value>;

/// PostgreSQL advisory lock held by every transaction that inserts user
/// events or erases a user (`pg_advisory_xact_lock`, released at commit):
/// seq order is commit order, two batches with the same dedup ids in another
/// order cannot deadlock, and an erasure never interleaves with a batch for
/// the same user (every stored event has its user row). The migration lock
/// is 7411029.
pub(super) const EVENTS_LOCK: i64 = 7_411_030;

/// What `PUT /v1/users/{id}` does to the time zone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ZoneChange {
    /// Absent from the body: unchanged.
    #[default]
    Keep,
    /// `null`: removed (journeys fall back to the devices' zones).
    Clear,
    /// A canonical IANA name (checked against the bundled tz database).
    Set(String),
}

/// A validated `PUT /v1/users/{id}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserChanges {
    /// Traits to set; a `null` value deletes that trait.
    pub traits: Traits,
    /// The time zone.
    pub time_zone: ZoneChange,
}

/// A user as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoredUser {
    /// The app's user id.
    pub id: String,
    /// Their traits, sorted by name.
    pub traits: Traits,
    /// The zone the backend set (not the devices').
    pub time_zone: Option<String>,
    /// Subscriptions bound to this user id.
    pub devices: i64,
}

/// What [`Store::put_user`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum PutUser {
    /// Merged and stored.
    Stored(StoredUser),
    /// The merge would leave more than the limit; nothing changed.
    TooManyTraits {
        /// How many traits the merge would have left.
        count: usize,
    },
}

/// A validated event from `POST /v1/track`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewUserEvent {
    /// The app's user id.
    pub user: String,
    /// Event name (`added_to_cart`).
    pub name: String,
    /// What it is about (`cart-9`), to match a later event against.
    pub key: Option<String>,
    /// When it happened (epoch ms).
    pub at_ms: i64,
    /// Flat scalars.
    pub properties: Traits,
    /// The backend's id: an event with an id already stored is a duplicate.
    pub dedup_id: Option<String>,
}

/// A stored user event.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Position in the store-wide order (increasing, never reused).
    pub seq: i64,
    /// The app's user id.
    pub user: String,
    /// Event name.
    pub name: String,
    /// What it is about.
    pub key: Option<String>,
    /// When it happened (epoch ms).
    pub at_ms: i64,
    /// Flat scalars.
    pub properties: Traits,
    /// The backend's dedup id.
    pub dedup_id: Option<String>,
    /// When the server stored it (epoch ms).
    pub received_ms: i64,
}

const EVENT_COLUMNS: &str = "seq, user_id, name, event_key, at_ms, properties, dedup_id, received_ms";

impl Store {
    /// Merges `changes` into user `id`'s traits (a `null` deletes one),
    /// applies the zone change, and returns the user; creates the user when
    /// new. More than [`MAX_TRAITS`] after the merge changes nothing (only
    /// here is the merged count known). One write transaction: two
    /// concurrent merges both land.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn put_user(&self, id: &str, changes: &UserChanges) -> Result<PutUser, sqlx::Error> {
        let now = now_ms();
        let mut tx = self.write().await?;
        // PostgreSQL: lock the row, so a concurrent merge waits for this one
        // (SQLite holds its write lock already). An erasure that deleted the
        // row between the insert and the lock makes the insert worth another try.
        let lock = if self.backend == Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let mut tries = 0;
        let (stored, zone) = loop {
            tries += 1;
            sqlx::query("INSERT INTO users (id, traits, time_zone, updated_ms) VALUES ($1, '{}', NULL, $2) ON CONFLICT (id) DO NOTHING")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(&format!("SELECT traits, time_zone FROM users WHERE id = $1{lock}"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            match row {
                Some(row) => {
                    break (
                        traits_of(&row, "traits")?,
                        row.try_get::<Option<String>, _>("time_zone")?,
                    )
                }
                None if tries < 3 => {}
                None => return Err(sqlx::Error::RowNotFound),
            }
        };
        let traits = merge_traits(stored, &changes.traits);
        if traits.len() > MAX_TRAITS {
            return Ok(PutUser::TooManyTraits { count: traits.len() });
        }
        let time_zone = match &changes.time_zone {
            ZoneChange::Keep => zone,
            ZoneChange::Clear => None,
            ZoneChange::Set(zone) => Some(zone.clone()),
        };
        sqlx::query("UPDATE users SET traits = $1, time_zone = $2, updated_ms = $3 WHERE id = $4")
            .bind(json_text(&traits)?)
            .bind(&time_zone)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let devices = devices(&mut tx, id).await?;
        tx.commit().await?;
        Ok(PutUser::Stored(StoredUser {
            id: id.to_owned(),
            traits,
            time_zone,
            devices,
        }))
    }

    /// User `id`: their traits and zone, and how many subscriptions are
    /// bound to them. `None` when the server knows nothing of them (no
    /// traits or events told, no device bound).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn user(&self, id: &str) -> Result<Option<StoredUser>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT u.traits, u.time_zone, (SELECT COUNT(*) FROM subscriptions s WHERE s.user_id = $1) AS devices \
             FROM users u WHERE u.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(Some(StoredUser {
                id: id.to_owned(),
                traits: traits_of(&row, "traits")?,
                time_zone: row.try_get("time_zone")?,
                devices: row.try_get("devices")?,
            }));
        }
        let devices: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE user_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok((devices > 0).then(|| StoredUser {
            id: id.to_owned(),
            devices,
            ..StoredUser::default()
        }))
    }

    /// Stores a batch of events received at `received_ms`, creating the
    /// users they name (with no traits) when new. An event whose dedup id is
    /// already stored — or came earlier in the same batch — is a duplicate
    /// and skipped. Returns exactly the events stored, in batch order, with
    /// their seq.
    ///
    /// # Errors
    /// When the database fails; nothing is stored then.
    pub async fn record_user_events(
        &self,
        batch: &[NewUserEvent],
        received_ms: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(EVENTS_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let mut users: Vec<&str> = batch.iter().map(|e| e.user.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        for user in users {
            sqlx::query("INSERT INTO users (id, traits, time_zone, updated_ms) VALUES ($1, '{}', NULL, $2) ON CONFLICT (id) DO NOTHING")
                .bind(user)
                .bind(received_ms)
                .execute(&mut *tx)
                .await?;
        }
        let mut stored = Vec::new();
        for event in batch {
            let seq: Option<i64> = sqlx::query_scalar(
                "INSERT INTO user_events (user_id, name, event_key, at_ms, properties, dedup_id, received_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedup_id) DO NOTHING RETURNING seq",
            )
            .bind(&event.user)
            .bind(&event.name)
            .bind(&event.key)
            .bind(event.at_ms)
            .bind(json_text(&event.properties)?)
            .bind(&event.dedup_id)
            .bind(received_ms)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(seq) = seq {
                stored.push(StoredEvent {
                    seq,
                    user: event.user.clone(),
                    name: event.name.clone(),
                    key: event.key.clone(),
                    at_ms: event.at_ms,
                    properties: event.properties.clone(),
                    dedup_id: event.dedup_id.clone(),
                    received_ms,
                });
            }
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// The zone to time user `id`'s messages in: their own (set by the
    /// backend), else the zone of the bound subscription posted most
    /// recently that has one; `None` when neither is known.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn user_time_zone(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        let own: Option<Option<String>> = sqlx::query_scalar("SELECT time_zone FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(Some(zone)) = own {
            return Ok(Some(zone));
        }
        sqlx::query_scalar(
            "SELECT time_zone FROM subscriptions WHERE user_id = $1 AND time_zone IS NOT NULL \
             ORDER BY updated_ms DESC, id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// User `user`'s events named `name` that happened at or after
    /// `since_ms`, oldest first (then by seq).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn user_events_since(
        &self,
        user: &str,
        name: &str,
        since_ms: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM user_events WHERE user_id = $1 AND name = $2 AND at_ms >= $3 ORDER BY at_ms, seq"
        );
        let rows = sqlx::query(&sql)
            .bind(user)
            .bind(name)
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_event).collect()
    }

    /// Up to `limit` events with a seq greater than `seq`, in seq order: a
    /// reader that remembers the last seq it handled resumes there (see the
    /// module doc for why it never skips one).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn user_events_after(&self, seq: i64, limit: i64) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM user_events WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(seq)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_event).collect()
    }
}

/// `stored` with `changes` applied: a `null` removes the trait, any other
/// value sets it.
fn merge_traits(mut stored: Traits, changes: &Traits) -> Traits {
    for (name, value) in changes {
        if value.is_null() {
            stored.remove(name);
        } else {
            stored.insert(name.clone(), value.clone());
        }
    }
    stored
}

async fn devices(conn: &mut AnyConnection, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE user_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
}

fn json_text(map: &Traits) -> Result<String, sqlx::Error> {
    serde_json::to_string(map).map_err(|err| sqlx::Error::Encode(Box::new(err)))
}

/// A JSON object column (written by [`json_text`]).
pub(super) fn traits_of(row: &AnyRow, column: &str) -> Result<Traits, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

pub(super) fn stored_event(row: &AnyRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(StoredEvent {
        seq: row.try_get("seq")?,
        user: row.try_get("user_id")?,
        name: row.try_get("name")?,
        key: row.try_get("event_key")?,
        at_ms: row.try_get("at_ms")?,
        properties: traits_of(row, "properties")?,
        dedup_id: row.try_get("dedup_id")?,
        received_ms: row.try_get("received_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Traits {
        match value {
            Value::Object(map) => map,
            _ => Traits::new(),
        }
    }

    #[test]
    fn a_merge_sets_replaces_and_deletes_with_null() {
        let stored = map(json!({ "plan": "free", "seats": 1, "beta": true }));
        let changes = map(json!({ "plan": "pro", "beta": null, "country": "DE", "gone": null }));
        assert_eq!(
            Value::Object(merge_traits(stored, &changes)),
            json!({ "plan": "pro", "seats": 1, "country": "DE" })
        );
    }
}
