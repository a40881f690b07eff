//! What the app's backend may tell the server about its users, checked
//! before anything is stored: `PUT /v1/users/{id}` (traits and a time zone)
//! and `POST /v1/track` (events). Each rejection is an [`AppError`] whose
//! message names the field (`traits.plan`, `events[3].name`); the routes
//! (`routes/users.rs`) only parse the body and call the store.
//!
//! Time zones and times come from `jiff` with its bundled copy of the IANA
//! tz database: the same answer on every machine, whatever its
//! `/usr/share/zoneinfo` holds (or lacks, in a container).

use std::sync::LazyLock;

use jiff::tz::TimeZoneDatabase;
use serde_json::Value;

use crate::error::ErrorCode;
use crate::store::{NewUserEvent, Traits, UserChanges, ZoneChange};
use crate::AppError;

/// Longest user id (as `POST /v1/subscriptions` accepts them).
pub const MAX_USER_ID: usize = 200;
/// Most traits a user holds after a merge.
pub const MAX_TRAITS: usize = 64;
/// Most properties on one event.
pub const MAX_PROPERTIES: usize = 32;
/// Longest trait, property or event name.
pub const MAX_NAME: usize = 64;
/// Longest string value, event key or dedup id.
pub const MAX_TEXT: usize = 200;
/// Most events in one `POST /v1/track`.
pub const MAX_TRACK_EVENTS: usize = 1000;
/// Largest `POST /v1/track` body: 1,000 events with a few properties each
/// are ~150 kB, well over the API's 64 KiB; the route is admin-only and the
/// token is checked before the body is read.
pub const MAX_TRACK_BODY_BYTES: usize = 1024 * 1024;
/// How far ahead of the server's clock an event's `at` may be (clock skew).
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
/// Longest time zone name looked up (the longest IANA name,
/// `America/Argentina/ComodRivadavia`, has 32 bytes).
const MAX_ZONE: usize = 64;

/// The bundled tz database, built once.
static ZONES: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// The canonical spelling of IANA time zone `name` (looked up without regard
/// to ASCII case: `europe/berlin` is `Europe/Berlin`), or `None` when the
/// bundled database does not know it.
pub fn time_zone(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_ZONE {
        return None;
    }
    let zone = ZONES.get(name).ok()?;
    // jiff answers `Etc/Unknown` for that name: not a zone to time messages in.
    if zone.is_unknown() {
        return None;
    }
    zone.iana_name().map(str::to_owned)
}

/// A user id from a path or an event: 1 to 200 bytes of UTF-8 and no control
/// character (PostgreSQL text cannot hold NUL).
pub fn valid_user_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_USER_ID && !id.chars().any(char::is_control)
}

/// The body of `PUT /v1/users/{id}`: `{ traits: { name: scalar | null },
/// time_zone?: string | null }`.
///
/// # Errors
/// `invalid_request` for another shape, `invalid_trait` for a bad trait
/// name or value, `invalid_time_zone` for a zone the database does not know.
pub fn user_changes(body: Value) -> Result<UserChanges, AppError> {
    let Value::Object(body) = body else {
        return Err(request("body: expected an object { traits, time_zone? }"));
    };
    let mut changes = UserChanges::default();
    let mut traits = None;
    for (field, value) in body {
        match field.as_str() {
            "traits" => traits = Some(scalars("traits", value, MAX_TRAITS, ErrorCode::InvalidTrait)?),
            "time_zone" => {
                changes.time_zone = match value {
                    Value::Null => ZoneChange::Clear,
                    Value::String(name) => ZoneChange::Set(time_zone(&name).ok_or_else(zone_error)?),
                    _ => return Err(zone_error()),
                }
            }
            other => {
                return Err(request(format!(
                    "{}: unknown field (expected traits, time_zone)",
                    shown(other)
                )))
            }
        }
    }
    changes.traits = traits.ok_or_else(|| request("traits: required (an object; {} changes nothing)"))?;
    Ok(changes)
}

fn zone_error() -> AppError {
    AppError::invalid(
        ErrorCode::InvalidTimeZone,
        "time_zone: expected an IANA time zone name such as Europe/Berlin, or null to remove it",
    )
}

/// The body of `POST /v1/track`: `{ events: [...] }`, 1 to 1,000 events;
/// `now_ms` is the default `at` and bounds it.
///
/// # Errors
/// `invalid_request` for another shape, `invalid_batch` for no or too many
/// events, `invalid_event` naming the first bad field (`events[3].name`):
/// one bad event rejects the batch, so the backend fixes and resends it whole.
pub fn track_batch(body: Value, now_ms: i64) -> Result<Vec<NewUserEvent>, AppError> {
    let Value::Object(mut body) = body else {
        return Err(request("body: expected an object { events: [...] }"));
    };
    if let Some(other) = body.keys().find(|k| *k != "events") {
        return Err(request(format!("{}: unknown field (expected events)", shown(other))));
    }
    let Some(Value::Array(events)) = body.remove("events") else {
        return Err(request("events: required, an array of events"));
    };
    if events.is_empty() || events.len() > MAX_TRACK_EVENTS {
        return Err(AppError::invalid(
            ErrorCode::InvalidBatch,
            format!("events: expected 1 to {MAX_TRACK_EVENTS} events"),
        ));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, event)| track_event(&format!("events[{i}]"), event, now_ms))
        .collect()
}

fn track_event(at: &str, event: Value, now_ms: i64) -> Result<NewUserEvent, AppError> {
    let invalid = |field: &str, why: &str| AppError::invalid(ErrorCode::InvalidEvent, format!("{at}{field}: {why}"));
    let Value::Object(event) = event else {
        return Err(invalid(
            "",
            "expected an object { user, name, key?, at?, properties?, id? }",
        ));
    };
    let mut new = NewUserEvent {
        at_ms: now_ms,
        ..NewUserEvent::default()
    };
    let (mut user, mut name) = (None, None);
    for (field, value) in event {
        // `null` is the same as absent, as everywhere in this API.
        match (field.as_str(), value) {
            ("user", Value::String(id)) if valid_user_id(&id) => user = Some(id),
            ("user", _) => {
                return Err(invalid(
                    ".user",
                    "expected 1 to 200 bytes of UTF-8 without control characters",
                ))
            }
            ("name", Value::String(n)) if valid_event_name(&n) => name = Some(n),
            ("name", _) => return Err(invalid(".name", "expected 1 to 64 of A-Z a-z 0-9 _ . : -")),
            (_, Value::Null) if ["key", "at", "properties", "id"].contains(&field.as_str()) => {}
            ("key", Value::String(key)) if printable(&key, MAX_TEXT) => new.key = Some(key),
            ("key", _) => return Err(invalid(".key", "expected 1 to 200 bytes without control characters")),
            ("id", Value::String(id)) if printable(&id, MAX_TEXT) => new.dedup_id = Some(id),
            ("id", _) => return Err(invalid(".id", "expected 1 to 200 bytes without control characters")),
            ("at", Value::String(time)) => {
                let Ok(time) = time.parse::<jiff::Timestamp>() else {
                    return Err(invalid(".at", "expected an RFC 3339 time such as 2025-01-31T09:30:00Z"));
                };
                new.at_ms = time.as_millisecond();
                if new.at_ms > now_ms.saturating_add(MAX_FUTURE_MS) {
                    return Err(invalid(".at", "more than 5 minutes in the future"));
                }
            }
            ("at", _) => return Err(invalid(".at", "expected an RFC 3339 time such as 2025-01-31T09:30:00Z")),
            ("properties", value) => {
                new.properties = scalars(
                    &format!("{at}.properties"),
                    value,
                    MAX_PROPERTIES,
                    ErrorCode::InvalidEvent,
                )?;
            }
            (other, _) => {
                return Err(invalid(
                    &format!(".{}", shown(other)),
                    "unknown field (expected user, name, key, at, properties, id)",
                ))
            }
        }
    }
    new.user = user.ok_or_else(|| invalid(".user", "required"))?;
    new.name = name.ok_or_else(|| invalid(".name", "required"))?;
    Ok(new)
}

/// An event name: 1 to 64 of `[A-Za-z0-9_.:-]` (the core's rule, which
/// pages check their `forward` list with).
pub(crate) fn valid_event_name(name: &str) -> bool {
    askwell::model::is_event_name(name)
}

/// 1 to `max` bytes and no control character.
fn printable(text: &str, max: usize) -> bool {
    !text.is_empty() && text.len() <= max && !text.chars().any(char::is_control)
}

/// A flat object of at most `max` names (1 to 64 bytes, no control
/// character) to strings of at most 200 bytes, numbers, booleans or null.
pub(crate) fn scalars(field: &str, value: Value, max: usize, code: ErrorCode) -> Result<Traits, AppError> {
    let invalid = |message: String| AppError::invalid(code, message);
    let Value::Object(map) = value else {
        return Err(invalid(format!(
            "{field}: expected an object of names to strings, numbers, booleans or null"
        )));
    };
    if map.len() > max {
        return Err(invalid(format!("{field}: at most {max} names")));
    }
    for (name, value) in &map {
        if !printable(name, MAX_NAME) {
            return Err(invalid(format!(
                "{field}: names are 1 to {MAX_NAME} bytes without control characters ({} is not)",
                shown(name)
            )));
        }
        match value {
            Value::String(text) if text.len() > MAX_TEXT => {
                return Err(invalid(format!("{field}.{name}: a string of at most {MAX_TEXT} bytes")));
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(invalid(format!(
                    "{field}.{name}: expected a string, number, boolean or null (no objects or arrays)"
                )));
            }
            _ => {}
        }
    }
    Ok(map)
}

/// The `traits` of a page's `traits` event (`POST /v1/events`): the rules
/// of `PUT /v1/users/{id}`, or the message naming what breaks them
/// (`traits.plan: …`).
///
/// # Errors
/// The message, for the event's rejection.
pub fn page_traits(value: Value) -> Result<Traits, String> {
    let traits = scalars("traits", value, MAX_TRAITS, ErrorCode::InvalidTrait).map_err(|err| match err {
        AppError::Invalid { message, .. } => message.into_owned(),
        other => other.to_string(),
    })?;
    if traits.is_empty() {
        return Err("traits: expected at least one trait".into());
    }
    Ok(traits)
}

fn request(message: impl Into<std::borrow::Cow<'static, str>>) -> AppError {
    AppError::invalid(ErrorCode::InvalidRequest, message)
}

/// A client's name for an error message: at most 64 bytes, quoted, control
/// characters escaped (it may be anything).
pub(crate) fn shown(name: &str) -> String {
    let mut cut = name.len().min(MAX_NAME);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let quoted = format!("{:?}", &name[..cut]);
    if cut < name.len() {
        format!("{quoted}…")
    } else {
        quoted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    const NOW: i64 = 1_750_000_000_000;

    fn message(result: Result<impl std::fmt::Debug, AppError>) -> (String, String) {
        match result {
            Ok(value) => panic!("accepted: {value:?}"),
            Err(err) => (err.code().as_str().to_owned(), err.to_string()),
        }
    }

    #[test]
    fn zones_are_canonical_iana_names_from_the_bundled_database() {
        assert_eq!(time_zone("Europe/Berlin").as_deref(), Some("Europe/Berlin"));
        assert_eq!(time_zone("america/new_york").as_deref(), Some("America/New_York"));
        assert_eq!(time_zone("UTC").as_deref(), Some("UTC"));
        for bad in [
            "",
            "Mars/Olympus",
            "Etc/Unknown",
            "+01:00",
            "EST5EDT,M3.2.0,M11.1.0",
            "../etc/passwd",
        ] {
            assert_eq!(time_zone(bad), None, "{bad}");
        }
        assert_eq!(time_zone(&"A".repeat(10_000)), None);
    }

    #[test]
    fn user_changes_name_each_bad_field() {
        let cases = [
            (json!([]), "invalid_request", "body: expected an object"),
            (json!({}), "invalid_request", "traits: required"),
            (
                json!({ "traits": {}, "plan": "pro" }),
                "invalid_request",
                "\"plan\": unknown field",
            ),
            (json!({ "traits": [] }), "invalid_trait", "traits: expected an object"),
            (
                json!({ "traits": { "": 1 } }),
                "invalid_trait",
                "traits: names are 1 to 64 bytes",
            ),
            (
                json!({ "traits": { "x".repeat(65): 1 } }),
                "invalid_trait",
                "traits: names are 1 to 64 bytes",
            ),
            (
                json!({ "traits": { "a\nb": 1 } }),
                "invalid_trait",
                "traits: names are 1 to 64 bytes",
            ),
            (
                json!({ "traits": { "plan": { "tier": 1 } } }),
                "invalid_trait",
                "traits.plan: expected a string",
            ),
            (
                json!({ "traits": { "tags": ["a"] } }),
                "invalid_trait",
                "traits.tags: expected a string",
            ),
            (
                json!({ "traits": { "bio": "x".repeat(201) } }),
                "invalid_trait",
                "traits.bio: a string of at most 200 bytes",
            ),
            (
                json!({ "traits": {}, "time_zone": "Mars/Olympus" }),
                "invalid_time_zone",
                "time_zone: expected an IANA",
            ),
            (
                json!({ "traits": {}, "time_zone": 1 }),
                "invalid_time_zone",
                "time_zone: expected an IANA",
            ),
        ];
        for (body, code, start) in cases {
            let (got_code, got) = message(user_changes(body.clone()));
            assert_eq!(got_code, code, "{body}: {got}");
            assert!(got.starts_with(start), "{body}: {got}");
        }
        let many: Map<String, Value> = (0..65).map(|i| (format!("t{i}"), json!(i))).collect();
        let (code, text) = message(user_changes(json!({ "traits": many })));
        assert_eq!(
            (code.as_str(), text.as_str()),
            ("invalid_trait", "traits: at most 64 names")
        );
    }

    #[test]
    fn user_changes_keep_nulls_as_deletions_and_canonicalise_the_zone() {
        let changes = user_changes(json!({ "traits": { "plan": "pro", "beta": null, "seats": 3, "vip": false }, "time_zone": "europe/berlin" }))
            .expect("valid");
        assert_eq!(
            Value::Object(changes.traits),
            json!({ "plan": "pro", "beta": null, "seats": 3, "vip": false })
        );
        assert_eq!(changes.time_zone, ZoneChange::Set("Europe/Berlin".into()));
        let cleared = user_changes(json!({ "traits": {}, "time_zone": null })).expect("valid");
        assert_eq!(cleared.time_zone, ZoneChange::Clear);
        assert_eq!(
            user_changes(json!({ "traits": {} })).expect("valid").time_zone,
            ZoneChange::Keep
        );
    }

    #[test]
    fn a_track_batch_is_read_with_defaults() {
        let batch = track_batch(
            json!({ "events": [
                { "user": "u1", "name": "added_to_cart", "key": "cart-9", "at": "2025-06-15T15:06:40Z", "properties": { "total": 42.5, "currency": "EUR" }, "id": "evt-1" },
                { "user": "u1", "name": "checkout:started", "key": null, "at": null, "id": null, "properties": null },
            ] }),
            NOW,
        )
        .expect("valid");
        assert_eq!(batch.len(), 2);
        assert_eq!(
            (batch[0].at_ms, batch[0].key.as_deref(), batch[0].dedup_id.as_deref()),
            (1_750_000_000_000, Some("cart-9"), Some("evt-1"))
        );
        assert_eq!(
            Value::Object(batch[0].properties.clone()),
            json!({ "total": 42.5, "currency": "EUR" })
        );
        assert_eq!(
            (batch[1].at_ms, batch[1].key.as_deref(), batch[1].properties.len()),
            (NOW, None, 0)
        );
        // Offsets are honoured; 4 minutes ahead is clock skew, not the future.
        let ahead = track_batch(
            json!({ "events": [{ "user": "u", "name": "n", "at": "2025-06-15T17:10:40+02:00" }] }),
            NOW,
        )
        .expect("4 minutes ahead");
        assert_eq!(ahead[0].at_ms, NOW + 240_000);
    }

    #[test]
    fn a_bad_event_rejects_the_batch_naming_its_index_and_field() {
        let good = json!({ "user": "u", "name": "n" });
        let with = |field: &str, value: Value| {
            let mut bad = good.clone();
            bad[field] = value;
            json!({ "events": [good.clone(), good.clone(), good.clone(), bad] })
        };
        let cases = [
            (
                json!({ "events": [] }),
                "invalid_batch",
                "events: expected 1 to 1000 events",
            ),
            (
                json!({ "events": vec![good.clone(); 1001] }),
                "invalid_batch",
                "events: expected 1 to 1000 events",
            ),
            (json!({ "events": {} }), "invalid_request", "events: required, an array"),
            (
                json!({ "events": [good.clone()], "extra": 1 }),
                "invalid_request",
                "\"extra\": unknown field",
            ),
            (
                json!({ "events": [1] }),
                "invalid_event",
                "events[0]: expected an object",
            ),
            (
                json!({ "events": [{ "name": "n" }] }),
                "invalid_event",
                "events[0].user: required",
            ),
            (
                json!({ "events": [{ "user": "u" }] }),
                "invalid_event",
                "events[0].name: required",
            ),
            (
                with("name", json!("has space")),
                "invalid_event",
                "events[3].name: expected 1 to 64",
            ),
            (
                with("name", json!("x".repeat(65))),
                "invalid_event",
                "events[3].name: expected 1 to 64",
            ),
            (
                with("name", json!(7)),
                "invalid_event",
                "events[3].name: expected 1 to 64",
            ),
            (
                with("user", json!("")),
                "invalid_event",
                "events[3].user: expected 1 to 200 bytes",
            ),
            (
                with("user", json!("a\u{0}b")),
                "invalid_event",
                "events[3].user: expected 1 to 200 bytes",
            ),
            (
                with("user", json!("x".repeat(201))),
                "invalid_event",
                "events[3].user: expected 1 to 200 bytes",
            ),
            (
                with("key", json!("k".repeat(201))),
                "invalid_event",
                "events[3].key: expected 1 to 200 bytes",
            ),
            (
                with("id", json!(12)),
                "invalid_event",
                "events[3].id: expected 1 to 200 bytes",
            ),
            (
                with("at", json!(1_750_000_000_000_i64)),
                "invalid_event",
                "events[3].at: expected an RFC 3339 time",
            ),
            (
                with("at", json!("yesterday")),
                "invalid_event",
                "events[3].at: expected an RFC 3339 time",
            ),
            (
                with("at", json!("2025-06-15T15:06:40")),
                "invalid_event",
                "events[3].at: expected an RFC 3339 time",
            ),
            (
                with("at", json!("2025-06-15T15:12:41Z")),
                "invalid_event",
                "events[3].at: more than 5 minutes in the future",
            ),
            (
                with("properties", json!({ "a": { "b": 1 } })),
                "invalid_event",
                "events[3].properties.a: expected a string",
            ),
            (
                with("properties", json!("x")),
                "invalid_event",
                "events[3].properties: expected an object",
            ),
            (
                with("ip", json!("1.2.3.4")),
                "invalid_event",
                "events[3].\"ip\": unknown field",
            ),
        ];
        for (body, code, start) in cases {
            let (got_code, got) = message(track_batch(body.clone(), NOW));
            assert_eq!(got_code, code, "{got}");
            assert!(got.starts_with(start), "expected {start:?}, got {got:?}");
        }
        let many: Map<String, Value> = (0..33).map(|i| (format!("p{i}"), json!(i))).collect();
        let (_, text) = message(track_batch(with("properties", Value::Object(many)), NOW));
        assert_eq!(text, "events[3].properties: at most 32 names");
    }

    #[test]
    fn names_in_messages_are_cut_and_escaped() {
        assert_eq!(shown("plan"), "\"plan\"");
        assert_eq!(shown("a\u{0}"), "\"a\\0\"");
        assert_eq!(shown(&"é".repeat(40)), format!("\"{}\"…", "é".repeat(32)));
    }
}
