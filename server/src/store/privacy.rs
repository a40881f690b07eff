//! Privacy controls: erase everything stored about a user or a device in one
//! transaction, and export what is stored about a user.
//!
//! What is a person's: the subscriptions bound to their user id; the
//! anonymous device ids (`anon_id`) those carry; and everything recorded
//! under those device ids — other subscriptions of the same browser, the
//! deliveries that copied the id, the funnel events. An anonymous id is one
//! browser profile's (the page keeps it in localStorage), so a browser shared
//! by two accounts cannot be split by the server: erasing either erases the
//! browser's records.
//!
//! Notifications hold the app's payloads and no recipient (the server does
//! not store whom a `notify` was addressed to, only its deliveries). One left
//! with no delivery after an erasure reached nobody else, so its payload was
//! written for the erased person (it may name them) and goes too; one that
//! reached others stays, linked to no one erased.
//!
//! The user's own records — their traits and time zone (`users`) and the
//! events their backend tracked (`user_events`) — go with a user's erasure;
//! a device's erasure leaves them (they are the account's, not the browser's).
//!
//! Every table holding a person's rows is listed in [`remove`]; the test
//! `server/tests/privacy.rs` scans every table of the schema for an erased
//! id, so a new table fails it until it is erased here too. A user's
//! journey instances (and the sends they recorded) go with the user.

mod export;

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Backend, Store};

pub use export::{
    ExportedAttribution, ExportedDelivery, ExportedEvent, ExportedJourney, ExportedNotification, ExportedSubscription,
    ExportedTrackedEvent, UserExport,
};

/// Most values in one `IN (…)` list: well under SQLite's 32766 bound
/// parameters and its 1 MB statement limit.
const CHUNK: usize = 500;

/// Rows an erasure removed, by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removed {
    /// Push subscriptions (endpoint, keys, user and device ids).
    pub subscriptions: u64,
    /// Their topic memberships.
    pub topics: u64,
    /// Outbox rows to them or copying their device ids (pending ones
    /// included: nothing is sent after the erasure).
    pub deliveries: u64,
    /// Funnel and notification events of their devices.
    pub events: u64,
    /// Notifications that reached no one else.
    pub notifications: u64,
    /// The user's row: traits and time zone (0 or 1; a device erasure: 0).
    pub users: u64,
    /// Events the app's backend tracked for the user (`POST /v1/track`).
    pub user_events: u64,
    /// The user's journey instances (a device erasure: 0).
    pub journeys: u64,
}

/// Whose rows to find.
#[derive(Debug, Clone, Copy)]
enum Whose<'a> {
    /// An app user id.
    User(&'a str),
    /// An anonymous device id.
    Device(&'a str),
}

/// A person's rows: subscription ids, device ids, and deliveries
/// `(id, notification id)`.
#[derive(Debug, Default)]
struct Footprint {
    /// The app user id, for a user's erasure.
    user: Option<String>,
    subscriptions: Vec<i64>,
    anons: Vec<String>,
    deliveries: Vec<(i64, String)>,
}

impl Store {
    /// Erases everything stored about app user `user` (see the module doc):
    /// their subscriptions and every record of the devices that held one.
    /// An unknown user removes nothing (erasure is idempotent).
    ///
    /// # Errors
    /// When the database fails; nothing is removed then.
    pub async fn user_erase(&self, user: &str) -> Result<Removed, sqlx::Error> {
        self.erase(Whose::User(user)).await
    }

    /// Erases everything stored under anonymous device id `anon`: its
    /// subscriptions, events and the deliveries that copied it.
    ///
    /// # Errors
    /// When the database fails; nothing is removed then.
    pub async fn device_erase(&self, anon: &str) -> Result<Removed, sqlx::Error> {
        self.erase(Whose::Device(anon)).await
    }

    /// One write transaction: a concurrent subscribe of the same user is
    /// either erased with the rest or stored after it, never half of each.
    async fn erase(&self, whose: Whose<'_>) -> Result<Removed, sqlx::Error> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.erase_once(whose).await {
                // PostgreSQL breaks a deadlock by failing one side (a fan-out
                // locking the same subscriptions in another order): try again.
                Err(sqlx::Error::Database(err)) if err.code().as_deref() == Some("40P01") && tries < 3 => {}
                result => return result,
            }
        }
    }

    async fn erase_once(&self, whose: Whose<'_>) -> Result<Removed, sqlx::Error> {
        let mut tx = self.write().await?;
        // SQLite holds its write lock already; PostgreSQL locks the rows
        // found, so their attribution or a fan-out to them waits for the end.
        let lock = self.backend == Backend::Postgres;
        if lock && matches!(whose, Whose::User(_)) {
            // First, as every event batch takes it first: a batch for this
            // user lands wholly before the erasure or wholly after it (with
            // a new user row), never beside a deleted one.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(super::users::EVENTS_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let footprint = footprint(&mut tx, whose, lock).await?;
        let removed = remove(&mut tx, &footprint).await?;
        tx.commit().await?;
        Ok(removed)
    }
}

/// Finds `whose` rows inside a transaction. One statement finds (and with
/// `lock`, locks in id order) every subscription, so two erasures lock in
/// the same order and never deadlock each other.
async fn footprint(conn: &mut AnyConnection, whose: Whose<'_>, lock: bool) -> Result<Footprint, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let (filter, id) = match whose {
        // The user's subscriptions and their devices' others (the same
        // browser, signed out or another account).
        Whose::User(user) => (
            "user_id = $1 OR anon_id IN (SELECT anon_id FROM subscriptions WHERE user_id = $1)",
            user,
        ),
        Whose::Device(anon) => ("anon_id = $1", anon),
    };
    let sql = format!("SELECT id, anon_id FROM subscriptions WHERE {filter} ORDER BY id{lock}");
    let mut found = Footprint::default();
    match whose {
        Whose::User(user) => found.user = Some(user.to_owned()),
        Whose::Device(anon) => found.anons.push(anon.to_owned()),
    }
    for row in sqlx::query(&sql).bind(id).fetch_all(&mut *conn).await? {
        found.subscriptions.push(row.try_get("id")?);
        if let Some(anon) = row.try_get::<Option<String>, _>("anon_id")? {
            found.anons.push(anon);
        }
    }
    found.anons.sort();
    found.anons.dedup();
    // No index on deliveries' subscription_id or anon_id: each statement is
    // a scan of the outbox (as every subscription delete's ON DELETE SET
    // NULL already is) — fine for a rare admin action.
    for chunk in found.subscriptions.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, notification_id FROM deliveries WHERE subscription_id IN ({})",
            ints(chunk)
        );
        found
            .deliveries
            .extend(delivery_refs(sqlx::query(&sql).fetch_all(&mut *conn).await?)?);
    }
    // Deliveries whose subscription is gone still carry the device id.
    for chunk in found.anons.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, notification_id FROM deliveries WHERE anon_id IN ({})",
            placeholders(chunk.len())
        );
        let rows = bind_texts(sqlx::query(&sql), chunk).fetch_all(&mut *conn).await?;
        found.deliveries.extend(delivery_refs(rows)?);
    }
    found.deliveries.sort_unstable();
    found.deliveries.dedup();
    Ok(found)
}

fn delivery_refs(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<(i64, String)>, sqlx::Error> {
    rows.iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("notification_id")?)))
        .collect()
}

/// Deletes the footprint's rows. Deliveries go before their subscriptions
/// (whose deletion would otherwise only null the link, `ON DELETE SET NULL`)
/// and before the events, so the delivery references are still known.
async fn remove(conn: &mut AnyConnection, found: &Footprint) -> Result<Removed, sqlx::Error> {
    let delivery_ids: Vec<i64> = found.deliveries.iter().map(|(id, _)| *id).collect();
    // Notification events name their delivery as `notification:delivery`;
    // a worker's carry no device id when the subscription had none.
    let refs: Vec<String> = found.deliveries.iter().map(|(id, n)| format!("{n}:{id}")).collect();
    let mut notifications: Vec<String> = found.deliveries.iter().map(|(_, n)| n.clone()).collect();
    notifications.sort_unstable();
    notifications.dedup();
    let mut removed = Removed {
        deliveries: delete_ints(conn, "DELETE FROM deliveries WHERE id IN", &delivery_ids).await?,
        ..Removed::default()
    };
    removed.events = delete_texts(conn, "DELETE FROM events WHERE anon_id IN", &found.anons).await?
        + delete_texts(conn, "DELETE FROM events WHERE anon_id IS NULL AND delivery IN", &refs).await?;
    let orphaned = "DELETE FROM notifications WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = notifications.id) AND id IN";
    removed.notifications = delete_texts(conn, orphaned, &notifications).await?;
    // Explicit rather than by cascade, to count them.
    let topics = "DELETE FROM subscription_topics WHERE subscription_id IN";
    removed.topics = delete_ints(conn, topics, &found.subscriptions).await?;
    let subscriptions = "DELETE FROM subscriptions WHERE id IN";
    removed.subscriptions = delete_ints(conn, subscriptions, &found.subscriptions).await?;
    // What the person turned off, on each device and as the user.
    let mut subjects: Vec<String> = found
        .subscriptions
        .iter()
        .map(|id| super::device_subject(*id))
        .collect();
    subjects.extend(found.user.as_deref().map(super::user_subject));
    delete_texts(conn, "DELETE FROM preferences WHERE subject IN", &subjects).await?;
    if let Some(user) = &found.user {
        let user = std::slice::from_ref(user);
        removed.user_events = delete_texts(conn, "DELETE FROM user_events WHERE user_id IN", user).await?;
        // Their journey instances, and the sends those made (the
        // notifications themselves went above with their deliveries).
        sqlx::query(
            "DELETE FROM journey_sends WHERE instance_id IN (SELECT id FROM journey_instances WHERE user_id = $1)",
        )
        .bind(&user[0])
        .execute(&mut *conn)
        .await?;
        removed.journeys = delete_texts(conn, "DELETE FROM journey_instances WHERE user_id IN", user).await?;
        // A rollout waiting for its decision keeps a batch's data per user.
        Store::rollout_forget(conn, &user[0]).await?;
        removed.users = delete_texts(conn, "DELETE FROM users WHERE id IN", user).await?;
    }
    Ok(removed)
}

/// Runs `{statement} (…)` over `ids` in chunks; returns the rows affected.
async fn delete_ints(conn: &mut AnyConnection, statement: &str, ids: &[i64]) -> Result<u64, sqlx::Error> {
    let mut affected = 0;
    for chunk in ids.chunks(CHUNK) {
        // Row ids from the database: integers, safe to inline.
        let sql = format!("{statement} ({})", ints(chunk));
        affected += sqlx::query(&sql).execute(&mut *conn).await?.rows_affected();
    }
    Ok(affected)
}

/// Runs `{statement} ($1, …)` over `values` in chunks, bound; returns the rows affected.
async fn delete_texts(conn: &mut AnyConnection, statement: &str, values: &[String]) -> Result<u64, sqlx::Error> {
    let mut affected = 0;
    for chunk in values.chunks(CHUNK) {
        let sql = format!("{statement} ({})", placeholders(chunk.len()));
        affected += bind_texts(sqlx::query(&sql), chunk)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(affected)
}

/// `1, 2, 3`.
fn ints(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds `values` in order.
fn bind_texts<'q>(mut query: AnyQuery<'q>, values: &'q [String]) -> AnyQuery<'q> {
    for value in values {
        query = query.bind(value);
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_number_their_placeholders_from_one() {
        assert_eq!(placeholders(3), "$1, $2, $3");
        assert_eq!(ints(&[4, 2]), "4, 2");
    }
}
