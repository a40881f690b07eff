//! The page's funnel outbox: every prompt outcome becomes an event that waits
//! in storage until `POST /v1/events` accepts it. Pure (the glue supplies
//! time and does the I/O), so its promises are tested natively:
//!
//! - **nothing is lost while the server is down**: events stay until a 202
//!   names them sent; retries back off from 5 s to 10 min;
//! - **bounded**: at most [`MAX_EVENTS`] wait; beyond that the oldest go
//!   (counted in `dropped`), so a broken server never fills storage;
//! - **duplicates are harmless**: ids are unique per device, the server keeps
//!   the first copy (a beacon on page hide may repeat a later fetch);
//! - **planted values cannot wedge it**: an event with a field longer than the
//!   server takes ([`MAX_TEXT`]) is dropped, so a batch stays far below the
//!   64 KiB that `fetch` `keepalive` and `sendBeacon` carry (50 × 8 fields ×
//!   200 bytes at worst), and a retry time read back is at most the longest
//!   backoff away.
//!
//! **Forwarded actions** (config `forward`) travel in the same outbox as
//! [`EventKind::Action`] events, for a signed-in user: the action's name,
//! the time and the entity id as `key` — nothing else of the action, and
//! not the device's anonymous id as a field. The user's proof is never
//! stored: it is added when a batch is built ([`Outbox::request_body`]),
//! for the user signed in then ([`SignedIn`]); another user's actions wait
//! until that user signs in again (or newer events push them out).
//!
//! **Traits** (`identify(id, { proof, traits })`, config `user.traits`)
//! travel the same way as [`EventKind::Traits`] events: checked here with
//! the server's rules ([`read_traits`]), queued only when they differ from
//! the last ones queued for that user (a fingerprint per user, kept in the
//! outbox: a page load that identifies with the same traits queues
//! nothing), one waiting event per user (a change merges into it) and at
//! most one per batch (64 traits of 200 bytes are ~17 kB).

use crate::error::FieldProblems;
use crate::model::EventKind;
pub use crate::model::HOLDOUT;
use crate::value::Value;
/// Most events kept waiting.
pub const MAX_EVENTS: usize = 200;
/// Most events per request (the server takes up to 100).
pub const BATCH: usize = 50;
/// First retry delay.
const RETRY_BASE_MS: u64 = 5_000;
/// Longest retry delay.
const RETRY_MAX_MS: u64 = 600_000;
/// Longest text field the server takes (`POST /v1/events` refuses longer).
pub const MAX_TEXT: usize = 200;
/// Most traits a user holds on the server (after its merge).
pub const MAX_TRAITS: usize = 64;
/// Longest trait name the server takes.
pub const MAX_TRAIT_NAME: usize = 64;
/// Users whose last traits' fingerprint is kept (a shared device's few).
const MAX_TRAIT_USERS: usize = 8;

/// One funnel event as the server's `POST /v1/events` takes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunnelEvent {
    /// Unique per device: `<anon>-<at>-<seq>`.
    pub id: String,
    /// The device's anonymous id when it happened (kept with the event: a
    /// reset gives the device a new id while old events still wait).
    pub anon: String,
    /// What happened.
    pub kind: EventKind,
    /// Prompt id.
    pub prompt: String,
    /// Variant id (`holdout` for the holdout).
    pub variant: String,
    /// What triggered the prompt.
    pub trigger: String,
    /// The app's conversion name (`conversion`), or the action's (`action`).
    pub name: String,
    /// What a forwarded action was about: its entity id (`action` only).
    pub key: String,
    /// The signed-in user a forwarded action or traits belong to (`action`,
    /// `traits`).
    pub user: String,
    /// Epoch ms.
    pub at_ms: u64,
    /// The user's traits, checked by [`read_traits`] (`traits` only).
    pub traits: Vec<(String, Value)>,
}

impl FunnelEvent {
    /// A forwarded action `name` about `key` (the entity id) by `user`.
    pub fn action(name: &str, key: Option<&str>, user: &str, at_ms: u64) -> FunnelEvent {
        FunnelEvent {
            kind: EventKind::Action,
            name: name.to_owned(),
            key: key.unwrap_or_default().to_owned(),
            user: user.to_owned(),
            at_ms,
            ..FunnelEvent::default()
        }
    }

    /// Whether it may go in a batch now: every funnel event, and the
    /// forwarded actions of the user signed in now.
    fn sendable(&self, signed_in: Option<SignedIn<'_>>) -> bool {
        !self.kind.of_user() || signed_in.is_some_and(|s| s.user == self.user)
    }
}

/// The user signed in on the page now and the app backend's proof of it
/// (`config.user` or `identify(id, { proof })`): their forwarded actions
/// are sent with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedIn<'a> {
    /// The app's user id.
    pub user: &'a str,
    /// Hex HMAC-SHA256 of the id (checked by the server).
    pub proof: &'a str,
}

impl<'a> SignedIn<'a> {
    /// `None` unless both are 1 to [`MAX_TEXT`] bytes: a planted proof of
    /// megabytes would make every batch too large for `keepalive`.
    pub fn new(user: &'a str, proof: &'a str) -> Option<SignedIn<'a>> {
        let fits = |t: &str| !t.is_empty() && t.len() <= MAX_TEXT;
        (fits(user) && fits(proof)).then_some(SignedIn { user, proof })
    }
}

/// The prompt a device saw last: conversions are credited to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Prompt id.
    pub prompt: String,
    /// Variant id.
    pub variant: String,
    /// Trigger.
    pub trigger: String,
}

/// Waiting events plus retry state; persisted as one storage entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbox {
    /// Oldest first.
    pub events: Vec<FunnelEvent>,
    /// Events discarded because the outbox was full.
    pub dropped: u64,
    /// Failed sends in a row.
    pub failures: u32,
    /// No send before this time (epoch ms).
    pub next_try_ms: u64,
    /// Next id sequence number.
    pub seq: u64,
    /// Last prompt exposure, for conversions.
    pub exposure: Option<Exposure>,
    /// Prompts whose holdout exposure was already reported.
    pub held_out: Vec<String>,
    /// Per user, the fingerprint of the traits queued last ([`Outbox::traits`]),
    /// oldest first, at most 8 users.
    pub traits_sent: Vec<(String, u64)>,
}

impl Outbox {
    /// Adds an event (oldest dropped when full); a `prompt_shown` also
    /// becomes the exposure later conversions are credited to. An event the
    /// server would refuse for its size (an app's overlong action or
    /// conversion name) is dropped and counted in `dropped`.
    pub fn push(&mut self, anon: &str, mut event: FunnelEvent) {
        event.id = format!("{anon}-{}-{}", event.at_ms, self.seq + 1);
        // A forwarded action is the user's: the device's id is not one of
        // its fields (its id, unique per device, still starts with it).
        if !event.kind.of_user() {
            anon.clone_into(&mut event.anon);
        }
        if !fits(&event) {
            self.dropped += 1;
            return;
        }
        self.seq += 1;
        if event.kind == EventKind::PromptShown {
            self.exposure = Some(Exposure {
                prompt: event.prompt.clone(),
                variant: event.variant.clone(),
                trigger: event.trigger.clone(),
            });
        }
        if self.events.len() >= MAX_EVENTS {
            let excess = self.events.len() + 1 - MAX_EVENTS;
            self.events.drain(..excess);
            self.dropped += excess as u64;
        }
        self.events.push(event);
    }

    /// Queues `user`'s `traits` (checked by [`read_traits`]) unless they are
    /// the ones queued last for that user; returns whether it queued them.
    /// A change merges into the user's waiting event (under a new id: the
    /// old one may be in flight), unless the merge would exceed
    /// [`MAX_TRAITS`].
    pub fn traits(&mut self, anon: &str, user: &str, traits: &[(String, Value)], at_ms: u64) -> bool {
        let print = fingerprint(user, traits);
        if traits.is_empty()
            || user.is_empty()
            || user.len() > MAX_TEXT
            || self.traits_sent.iter().any(|(u, p)| u == user && *p == print)
        {
            return false;
        }
        let mut merged: Vec<(String, Value)> = Vec::new();
        let waiting = self
            .events
            .iter()
            .position(|e| e.kind == EventKind::Traits && e.user == user);
        if let Some(i) = waiting {
            merged.clone_from(&self.events[i].traits);
            for (name, value) in traits {
                match merged.iter_mut().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => merged.push((name.clone(), value.clone())),
                }
            }
            if merged.len() <= MAX_TRAITS {
                self.events.remove(i);
            } else {
                merged.clear();
            }
        }
        if merged.is_empty() {
            merged = traits.to_vec();
        }
        let dropped = self.dropped;
        self.push(
            anon,
            FunnelEvent {
                kind: EventKind::Traits,
                user: user.to_owned(),
                at_ms,
                traits: merged,
                ..FunnelEvent::default()
            },
        );
        if self.dropped != dropped {
            return false;
        }
        self.traits_sent.retain(|(u, _)| u != user);
        if self.traits_sent.len() >= MAX_TRAIT_USERS {
            self.traits_sent.remove(0);
        }
        self.traits_sent.push((user.to_owned(), print));
        true
    }

    /// A conversion credited to the last exposure (if any).
    pub fn conversion(&self, name: &str, at_ms: u64) -> FunnelEvent {
        let exposure = self.exposure.clone().unwrap_or_default();
        FunnelEvent {
            kind: EventKind::Conversion,
            prompt: exposure.prompt,
            variant: exposure.variant,
            trigger: exposure.trigger,
            name: name.into(),
            at_ms,
            ..FunnelEvent::default()
        }
    }

    /// Whether this is the first holdout exposure for `prompt` (then it is
    /// remembered): a held-out device counts once, however often it triggers.
    pub fn first_holdout(&mut self, prompt: &str) -> bool {
        if self.held_out.iter().any(|p| p == prompt) {
            return false;
        }
        self.held_out.push(prompt.to_owned());
        true
    }

    /// The next batch to send, if any is waiting and the backoff allows:
    /// the oldest [`BATCH`] events that may be sent now (forwarded actions
    /// and traits only for the user `signed_in`; one traits event per batch,
    /// which stays far below the 64 KiB of `keepalive`).
    pub fn due(&self, now_ms: u64, signed_in: Option<SignedIn<'_>>) -> Option<Vec<&FunnelEvent>> {
        if now_ms < self.next_try_ms {
            return None;
        }
        let mut traits = 0;
        let batch: Vec<&FunnelEvent> = self
            .events
            .iter()
            .filter(|e| {
                traits += usize::from(e.kind == EventKind::Traits);
                e.sendable(signed_in) && (e.kind != EventKind::Traits || traits == 1)
            })
            .take(BATCH)
            .collect();
        (!batch.is_empty()).then_some(batch)
    }

    /// The server answered for `ids` (accepted or rejected for good): they go.
    pub fn settled(&mut self, ids: &[String]) {
        self.events.retain(|e| !ids.contains(&e.id));
        self.failures = 0;
        self.next_try_ms = 0;
    }

    /// The send failed (network, 5xx, 429): try again later, with backoff.
    pub fn failed(&mut self, now_ms: u64) {
        self.failures = self.failures.saturating_add(1);
        let exponent = self.failures.saturating_sub(1).min(16);
        let delay = RETRY_BASE_MS.saturating_mul(1 << exponent).min(RETRY_MAX_MS);
        self.next_try_ms = now_ms.saturating_add(delay);
    }

    /// Forgets what credits conversions (the device's history was reset);
    /// waiting events stay.
    pub fn forget_history(&mut self) {
        self.exposure = None;
        self.held_out.clear();
    }

    /// The body of `POST /v1/events` for `events`; a forwarded action of
    /// the user `signed_in` carries their proof as `userProof`.
    pub fn request_body(events: &[&FunnelEvent], signed_in: Option<SignedIn<'_>>) -> Value {
        let list = events
            .iter()
            .map(|e| {
                let mut value = event_to_value(e);
                if let (Some(s), Value::Object(members)) = (signed_in, &mut value) {
                    if e.kind.of_user() && s.user == e.user {
                        members.push(("userProof".to_owned(), s.proof.into()));
                    }
                }
                value
            })
            .collect();
        Value::object([("events", Value::Array(list))])
    }

    /// The stored form.
    pub fn to_value(&self) -> Value {
        let exposure = self.exposure.as_ref().map_or(Value::Null, |x| {
            Value::object([
                ("prompt", x.prompt.as_str().into()),
                ("variant", x.variant.as_str().into()),
                ("trigger", x.trigger.as_str().into()),
            ])
        });
        Value::object([
            ("events", Value::Array(self.events.iter().map(event_to_value).collect())),
            ("dropped", number(self.dropped)),
            ("failures", number(u64::from(self.failures))),
            ("next", number(self.next_try_ms)),
            ("seq", number(self.seq)),
            ("exposure", exposure),
            (
                "heldOut",
                Value::Array(self.held_out.iter().map(|p| p.as_str().into()).collect()),
            ),
            (
                "traitsSent",
                Value::Array(
                    self.traits_sent
                        .iter()
                        .map(|(user, print)| Value::object([("user", user.as_str().into()), ("print", number(*print))]))
                        .collect(),
                ),
            ),
        ])
    }

    /// Reads the stored form; anything unreadable starts empty (corrupt
    /// storage must not break the page), the size bounds are enforced, and
    /// the next try is at most the longest backoff after `now_ms`.
    pub fn from_value(value: &Value, now_ms: u64) -> Outbox {
        // Counters stay far below u64::MAX (9e15, as in the state's reader):
        // storage is untrusted, and `push` adds to them.
        let int = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_f64)
                .filter(|n| *n >= 0.0)
                .unwrap_or(0.0)
                .min(9.0e15) as u64
        };
        let mut events: Vec<FunnelEvent> = items(value.get("events")).filter_map(event_from_value).collect();
        let excess = events.len().saturating_sub(MAX_EVENTS);
        events.drain(..excess);
        Outbox {
            events,
            dropped: int("dropped") + excess as u64,
            failures: u32::try_from(int("failures")).unwrap_or(u32::MAX),
            next_try_ms: int("next").min(now_ms.saturating_add(RETRY_MAX_MS)),
            seq: int("seq"),
            exposure: value.get("exposure").and_then(|x| {
                Some(Exposure {
                    prompt: x.get("prompt")?.as_str()?.to_owned(),
                    variant: text(x, "variant"),
                    trigger: text(x, "trigger"),
                })
            }),
            held_out: items(value.get("heldOut"))
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect(),
            traits_sent: items(value.get("traitsSent"))
                .filter_map(|x| {
                    let user = x.get("user")?.as_str().filter(|u| u.len() <= MAX_TEXT)?;
                    Some((user.to_owned(), x.get("print")?.as_f64()? as u64))
                })
                .take(MAX_TRAIT_USERS)
                .collect(),
        }
    }
}

fn number(n: u64) -> Value {
    Value::Number(n as f64)
}

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn items(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    match value {
        Some(Value::Array(items)) => items.iter(),
        _ => [].iter(),
    }
}

/// Empty fields are left out: the server treats absent and empty alike.
fn event_to_value(e: &FunnelEvent) -> Value {
    let mut members: Vec<(String, Value)> = Vec::with_capacity(10);
    if !e.id.is_empty() {
        members.push(("id".to_owned(), e.id.as_str().into()));
    }
    members.push(("type".to_owned(), e.kind.as_str().into()));
    for (key, value) in [
        ("prompt", &e.prompt),
        ("variant", &e.variant),
        ("trigger", &e.trigger),
        ("name", &e.name),
        ("key", &e.key),
        ("user", &e.user),
        ("anon", &e.anon),
    ] {
        if !value.is_empty() {
            members.push((key.to_owned(), value.as_str().into()));
        }
    }
    members.push(("at".to_owned(), number(e.at_ms)));
    if !e.traits.is_empty() {
        members.push(("traits".to_owned(), Value::Object(e.traits.clone())));
    }
    Value::Object(members)
}

/// Whether every text field is short enough for the server (the id, made of
/// the anonymous id, the time and a sequence number, included).
fn fits(e: &FunnelEvent) -> bool {
    let texts = [
        &e.id, &e.anon, &e.prompt, &e.variant, &e.trigger, &e.name, &e.key, &e.user,
    ];
    // An action without its user or name, or traits without their user or
    // any trait, could never be sent.
    let complete = match e.kind {
        EventKind::Action => !(e.user.is_empty() || e.name.is_empty()),
        EventKind::Traits => !(e.user.is_empty() || e.traits.is_empty()),
        _ => e.traits.is_empty(),
    };
    complete && texts.iter().all(|text| text.len() <= MAX_TEXT)
}

fn event_from_value(value: &Value) -> Option<FunnelEvent> {
    let event = FunnelEvent {
        id: value.get("id")?.as_str()?.to_owned(),
        // Only what the page sends: a planted server-recorded kind would be refused.
        kind: EventKind::parse(value.get("type")?.as_str()?).filter(|k| k.sent_by_page())?,
        prompt: text(value, "prompt"),
        variant: text(value, "variant"),
        trigger: text(value, "trigger"),
        name: text(value, "name"),
        key: text(value, "key"),
        user: text(value, "user"),
        anon: text(value, "anon"),
        at_ms: value.get("at")?.as_f64()? as u64,
        traits: match value.get("traits") {
            // Read back as checked when queued: a planted bad trait drops the event.
            Some(traits) => {
                let mut problems = FieldProblems::default();
                let traits = read_traits(traits, "traits", &mut problems);
                problems.0.is_empty().then_some(traits)?
            }
            None => Vec::new(),
        },
    };
    fits(&event).then_some(event)
}

/// Reads `value` as a user's traits with the server's rules (`PUT
/// /v1/users/{id}`, `traits` events): an object of at most [`MAX_TRAITS`]
/// names of 1 to [`MAX_TRAIT_NAME`] bytes without control characters, each
/// a string of at most [`MAX_TEXT`] bytes, a finite number (`JSON.stringify`
/// would send NaN as `null`, a deletion), a boolean, or
/// `null` (deletes it). Each bad one is pushed to `problems` as
/// `<path>.<name>` (`traits.plan`); the good ones are returned.
pub fn read_traits(value: &Value, path: &str, problems: &mut FieldProblems) -> Vec<(String, Value)> {
    let Value::Object(members) = value else {
        problems.push(
            path,
            "expected an object of names to strings, numbers, booleans or null",
        );
        return Vec::new();
    };
    if members.len() > MAX_TRAITS {
        problems.push(path, "at most 64 traits");
        return Vec::new();
    }
    let mut traits = Vec::with_capacity(members.len());
    for (name, value) in members {
        let printable = |t: &str| !t.chars().any(char::is_control);
        if name.is_empty() || name.len() > MAX_TRAIT_NAME || !printable(name) {
            problems.push(path, "trait names are 1 to 64 bytes without control characters");
            continue;
        }
        let problem = match value {
            Value::String(t) if t.len() > MAX_TEXT => Some("a string of at most 200 bytes"),
            Value::Number(n) if !n.is_finite() => Some("expected a finite number"),
            Value::Array(_) | Value::Object(_) => {
                Some("expected a string, number, boolean or null (no objects or arrays)")
            }
            _ => None,
        };
        match problem {
            Some(message) => {
                let mut at = String::with_capacity(path.len() + 1 + name.len());
                at.push_str(path);
                at.push('.');
                at.push_str(name);
                problems.push(at, message);
            }
            None => traits.push((name.clone(), value.clone())),
        }
    }
    traits
}

/// FNV-1a (64-bit, cut to 53 bits so it survives storage as a JS number) of
/// `user`, plus that of each trait, summed: the same traits in another order
/// are the same change (names are unique), with no sort in the page's wasm.
fn fingerprint(user: &str, traits: &[(String, Value)]) -> u64 {
    fn fnv(parts: &[&[u8]]) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for byte in *part {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
            hash = (hash ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }
    let mut sum = fnv(&[user.as_bytes()]);
    for (name, value) in traits {
        let number;
        let (tag, bytes): (&[u8], &[u8]) = match value {
            Value::String(t) => (b"s", t.as_bytes()),
            Value::Number(n) => {
                number = n.to_le_bytes();
                (b"n", &number)
            }
            Value::Bool(true) => (b"t", b""),
            Value::Bool(false) => (b"f", b""),
            _ => (b"z", b""),
        };
        sum = sum.wrapping_add(fnv(&[name.as_bytes(), tag, bytes]));
    }
    sum & ((1 << 53) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(at_ms: u64) -> FunnelEvent {
        FunnelEvent {
            kind: EventKind::PromptShown,
            prompt: "reply".into(),
            variant: "b".into(),
            trigger: "message_sent".into(),
            at_ms,
            ..FunnelEvent::default()
        }
    }

    #[test]
    fn keeps_events_until_the_server_settles_them() {
        let mut outbox = Outbox::default();
        outbox.push("dev", shown(1));
        outbox.push("dev", shown(2));
        let ids: Vec<String> = outbox.due(0, None).expect("due").iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, ["dev-1-1", "dev-2-2"]);
        outbox.failed(1_000);
        assert!(outbox.due(5_999, None).is_none(), "backs off 5 s");
        assert!(outbox.due(6_000, None).is_some());
        outbox.failed(6_000);
        assert_eq!(outbox.next_try_ms, 16_000, "then 10 s");
        outbox.settled(&ids[..1]);
        assert_eq!(outbox.events.len(), 1);
        assert_eq!((outbox.failures, outbox.next_try_ms), (0, 0));
    }

    #[test]
    fn backoff_is_capped_at_ten_minutes() {
        let mut outbox = Outbox::default();
        for _ in 0..40 {
            outbox.failed(0);
        }
        assert_eq!(outbox.next_try_ms, RETRY_MAX_MS);
    }

    #[test]
    fn a_broken_server_never_grows_the_outbox_past_its_bound() {
        let mut outbox = Outbox::default();
        for at in 0..(MAX_EVENTS as u64 + 25) {
            outbox.push("dev", shown(at));
            outbox.failed(at);
        }
        assert_eq!(outbox.events.len(), MAX_EVENTS);
        assert_eq!(outbox.dropped, 25);
        assert_eq!(outbox.events[0].at_ms, 25, "the oldest went first");
        assert_eq!(outbox.due(u64::MAX, None).map(|b| b.len()), Some(BATCH));
    }

    #[test]
    fn conversions_are_credited_to_the_last_prompt_shown() {
        let mut outbox = Outbox::default();
        assert_eq!(outbox.conversion("replied", 5).prompt, "");
        outbox.push("dev", shown(1));
        let conversion = outbox.conversion("replied", 5);
        assert_eq!(
            (conversion.prompt.as_str(), conversion.variant.as_str()),
            ("reply", "b")
        );
        assert_eq!(conversion.name, "replied");
    }

    #[test]
    fn a_held_out_device_is_reported_once_per_prompt() {
        let mut outbox = Outbox::default();
        assert!(outbox.first_holdout("reply"));
        assert!(!outbox.first_holdout("reply"));
        assert!(outbox.first_holdout("restock"));
    }

    #[test]
    fn survives_a_round_trip_and_corrupt_storage() {
        let mut outbox = Outbox::default();
        outbox.push("dev", shown(7));
        outbox.push("dev", outbox.conversion("replied", 9));
        outbox.failed(100);
        outbox.first_holdout("restock");
        assert_eq!(Outbox::from_value(&outbox.to_value(), 100), outbox);
        for corrupt in [
            "null",
            "[1,2]",
            r#"{"events":"x","seq":-4}"#,
            r#"{"events":[{"id":1}]}"#,
        ] {
            let value = crate::value::from_json(corrupt);
            assert_eq!(Outbox::from_value(&value, 100).events.len(), 0, "{corrupt}");
        }
    }

    #[test]
    fn a_far_future_retry_time_read_back_waits_at_most_the_longest_backoff() {
        let now = 1_700_000_000_000;
        for (stored, expected) in [
            ("9e15", now + RETRY_MAX_MS),
            ("1e300", now + RETRY_MAX_MS),
            ("1700000060000", 1_700_000_060_000),
            ("5", 5),
        ] {
            let value = crate::value::from_json(&format!(r#"{{"next":{stored},"failures":3}}"#));
            assert_eq!(Outbox::from_value(&value, now).next_try_ms, expected, "{stored}");
        }
    }

    #[test]
    fn events_with_fields_the_server_would_refuse_are_dropped() {
        let long = "x".repeat(MAX_TEXT + 1);
        let mut outbox = Outbox::default();
        outbox.push(&long, shown(1));
        let mut overlong = shown(2);
        overlong.trigger.clone_from(&long);
        outbox.push("dev", overlong);
        outbox.push("dev", outbox.conversion(&long, 3));
        assert_eq!((outbox.events.len(), outbox.dropped, outbox.seq), (0, 3, 0));
        outbox.push("dev", shown(4));
        assert_eq!(outbox.events[0].id, "dev-4-1");

        let mut planted = Outbox::default();
        planted.push("dev", shown(5));
        let mut huge = shown(6);
        huge.anon = "a".repeat(2 << 20);
        huge.id = huge.anon.clone();
        planted.events.push(huge);
        let read = Outbox::from_value(&planted.to_value(), 100);
        assert_eq!(read.events.len(), 1, "the planted event is gone, the good one stays");
        assert_eq!(read.events[0].id, "dev-5-1");
    }

    #[test]
    fn the_request_names_the_device_and_leaves_out_empty_fields() {
        let mut outbox = Outbox::default();
        outbox.push("dev", shown(7));
        let body = Outbox::request_body(&outbox.events.iter().collect::<Vec<_>>(), None);
        let event = &body.get("events").map(|e| match e {
            Value::Array(items) => items[0].clone(),
            _ => Value::Null,
        });
        let event = event.as_ref().expect("event");
        assert_eq!(event.get("anon").and_then(Value::as_str), Some("dev"));
        assert_eq!(event.get("type").and_then(Value::as_str), Some("prompt_shown"));
        assert!(event.get("name").is_none());
    }

    fn members(value: &Value) -> Vec<(String, Value)> {
        match value {
            Value::Object(members) => members.clone(),
            _ => Vec::new(),
        }
    }

    fn first_event(body: &Value) -> Value {
        match body.get("events") {
            Some(Value::Array(items)) => items[0].clone(),
            _ => Value::Null,
        }
    }

    #[test]
    fn a_forwarded_action_carries_only_its_name_time_key_and_the_users_proof() {
        let mut outbox = Outbox::default();
        outbox.push("dev", FunnelEvent::action("added_to_cart", Some("cart-9"), "u1", 7));
        let signed_in = SignedIn::new("u1", "ab12");
        let body = Outbox::request_body(&outbox.due(0, signed_in).expect("due"), signed_in);
        let sent = first_event(&body);
        let keys: Vec<String> = members(&sent).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["id", "type", "name", "key", "user", "at", "userProof"]);
        for (key, value) in [
            ("id", "dev-7-1"),
            ("type", "action"),
            ("name", "added_to_cart"),
            ("key", "cart-9"),
            ("user", "u1"),
            ("userProof", "ab12"),
        ] {
            assert_eq!(sent.get(key).and_then(Value::as_str), Some(value), "{key}");
        }
        assert_eq!(sent.get("at").and_then(Value::as_f64), Some(7.0));
        let stored = outbox.to_value();
        let kept = first_event(&stored);
        assert!(kept.get("userProof").is_none(), "the proof is never stored");
        assert_eq!(
            Outbox::from_value(&stored, 0),
            outbox,
            "an action reads back as written"
        );

        let mut keyless = Outbox::default();
        keyless.push("dev", FunnelEvent::action("checkout_started", None, "u1", 8));
        let sent = first_event(&Outbox::request_body(
            &keyless.due(0, signed_in).expect("due"),
            signed_in,
        ));
        assert!(sent.get("key").is_none() && sent.get("anon").is_none(), "{sent:?}");
    }

    #[test]
    fn another_users_actions_wait_without_holding_back_the_funnel() {
        let mut outbox = Outbox::default();
        outbox.push("dev", FunnelEvent::action("added_to_cart", Some("c1"), "u1", 1));
        let (u1, u2) = (SignedIn::new("u1", "p1"), SignedIn::new("u2", "p2"));
        assert!(outbox.due(0, None).is_none(), "no one signed in: the action waits");
        assert!(outbox.due(0, u2).is_none(), "nor for another user");
        outbox.push("dev", shown(2));
        let ids = |batch: Option<Vec<&FunnelEvent>>| -> Vec<String> {
            batch.unwrap_or_default().iter().map(|e| e.id.clone()).collect()
        };
        assert_eq!(ids(outbox.due(0, u2)), ["dev-2-2"], "the funnel still goes");
        let body = Outbox::request_body(&outbox.events.iter().collect::<Vec<_>>(), u2);
        assert!(
            first_event(&body).get("userProof").is_none(),
            "never another user's proof"
        );
        assert_eq!(ids(outbox.due(0, u1)), ["dev-1-1", "dev-2-2"]);
        outbox.settled(&ids(outbox.due(0, u2)));
        assert_eq!(outbox.events.len(), 1, "the action still waits for u1");
    }

    #[test]
    fn actions_the_server_would_refuse_or_could_not_send_are_dropped() {
        let long = "x".repeat(MAX_TEXT + 1);
        let mut outbox = Outbox::default();
        outbox.push("dev", FunnelEvent::action("added_to_cart", Some(&long), "u1", 1));
        outbox.push("dev", FunnelEvent::action("added_to_cart", None, &long, 2));
        outbox.push("dev", FunnelEvent::action("added_to_cart", None, "", 3));
        assert_eq!((outbox.events.len(), outbox.dropped), (0, 3));
        let planted = crate::value::from_json(
            r#"{"events":[{"id":"d-1-1","type":"action","name":"x","at":1},{"id":"d-2-2","type":"action","user":"u1","name":"x","at":2}]}"#,
        );
        let read = Outbox::from_value(&planted, 10);
        assert_eq!(read.events.len(), 1, "the action without a user is gone");
        assert_eq!(read.events[0].user, "u1");
        assert_eq!(SignedIn::new("u1", &long), None, "an overlong proof signs no one in");
        assert_eq!(SignedIn::new("", "p"), None);
    }

    /// Found while fuzzing the storage readers (fuzz/, target `value_json`):
    /// counters read back from storage were used unbounded, so a planted
    /// `"dropped": 1e30` with a full outbox, or `"seq": 1e300` and the next
    /// event, overflowed (a panic in debug builds, wrapped counts and
    /// repeated ids in release ones).
    #[test]
    fn huge_counters_read_back_from_storage_cannot_overflow() {
        let events: Vec<String> = (0..=MAX_EVENTS)
            .map(|i| format!(r#"{{"id":"dev-{i}","type":"prompt_shown","at":{i}}}"#))
            .collect();
        let stored = format!(r#"{{"events":[{}],"dropped":1e30,"seq":1e300}}"#, events.join(","));
        let mut outbox = Outbox::from_value(&crate::value::from_json(&stored), 100);
        assert_eq!(outbox.events.len(), MAX_EVENTS);
        outbox.push("dev", shown(7));
        outbox.push("dev", outbox.conversion(&"x".repeat(MAX_TEXT + 1), 8));
        assert_eq!(outbox.events.len(), MAX_EVENTS);
        assert!(outbox.dropped >= 9_000_000_000_000_000 && outbox.seq >= 9_000_000_000_000_000);
    }
    fn traits(json: &str) -> Vec<(String, Value)> {
        let mut problems = FieldProblems::default();
        let traits = read_traits(&crate::value::from_json(json), "traits", &mut problems);
        assert!(problems.0.is_empty(), "{json}: {problems}");
        traits
    }

    fn problems(value: &Value) -> String {
        let mut problems = FieldProblems::default();
        read_traits(value, "traits", &mut problems);
        problems.to_string()
    }

    #[test]
    fn traits_are_checked_with_the_servers_rules_naming_each_bad_one() {
        assert_eq!(
            traits(r#"{"plan":"pro","seats":3,"beta":true,"trial":null}"#).len(),
            4,
            "strings, numbers, booleans and null (a deletion)"
        );
        let long = "x".repeat(MAX_TEXT + 1);
        let bad = Value::Object(vec![
            ("plan".into(), long.as_str().into()),
            ("tags".into(), Value::Array(vec![])),
            ("nested".into(), Value::object([("a", Value::Null)])),
            ("nan".into(), Value::Number(f64::NAN)),
            ("".into(), Value::Bool(true)),
            ("n".repeat(MAX_TRAIT_NAME + 1), Value::Bool(true)),
            ("fine".into(), "x".repeat(MAX_TEXT).as_str().into()),
        ]);
        assert_eq!(
            problems(&bad),
            "traits.plan: a string of at most 200 bytes; \
             traits.tags: expected a string, number, boolean or null (no objects or arrays); \
             traits.nested: expected a string, number, boolean or null (no objects or arrays); \
             traits.nan: expected a finite number; \
             traits: trait names are 1 to 64 bytes without control characters; \
             traits: trait names are 1 to 64 bytes without control characters"
        );
        let many = Value::Object((0..=MAX_TRAITS).map(|i| (i.to_string(), Value::Bool(true))).collect());
        assert_eq!(problems(&many), "traits: at most 64 traits");
        let most = Value::Object((0..MAX_TRAITS).map(|i| (i.to_string(), Value::Bool(true))).collect());
        assert_eq!(problems(&most), "");
        assert_eq!(
            problems(&"pro".into()),
            "traits: expected an object of names to strings, numbers, booleans or null"
        );
    }

    #[test]
    fn traits_are_queued_once_and_again_only_when_they_change() {
        let mut outbox = Outbox::default();
        let pro = traits(r#"{"plan":"pro","seats":3}"#);
        assert!(outbox.traits("dev", "u1", &pro, 1));
        assert!(!outbox.traits("dev", "u1", &pro, 2), "the same traits: nothing");
        let reordered = traits(r#"{"seats":3,"plan":"pro"}"#);
        assert!(!outbox.traits("dev", "u1", &reordered, 3), "in another order: the same");
        assert_eq!(outbox.events.len(), 1);

        // Sent and settled, then a later page load with the same traits.
        let ids: Vec<String> = outbox.events.iter().map(|e| e.id.clone()).collect();
        outbox.settled(&ids);
        let mut reloaded = Outbox::from_value(&outbox.to_value(), 10);
        assert!(!reloaded.traits("dev", "u1", &pro, 11), "survives storage");
        assert!(reloaded.events.is_empty());

        assert!(reloaded.traits("dev", "u1", &traits(r#"{"plan":"team","seats":3}"#), 12));
        assert!(reloaded.traits("dev", "u2", &pro, 13), "another user's are their own");
        assert_eq!(reloaded.events.len(), 2);
        assert!(!reloaded.traits("dev", "u1", &[], 14), "no traits: nothing");
    }

    #[test]
    fn a_change_merges_into_the_users_waiting_traits_under_a_new_id() {
        let mut outbox = Outbox::default();
        outbox.traits("dev", "u1", &traits(r#"{"plan":"pro","seats":3}"#), 1);
        let first = outbox.events[0].id.clone();
        outbox.traits("dev", "u1", &traits(r#"{"plan":"team","trial":null}"#), 2);
        assert_eq!(outbox.events.len(), 1);
        let waiting = &outbox.events[0];
        assert_ne!(
            waiting.id, first,
            "the old one may be in flight: its 202 must not settle this"
        );
        assert_eq!(
            waiting.traits,
            traits(r#"{"plan":"team","seats":3,"trial":null}"#),
            "what the server would hold after both"
        );
        outbox.settled(&[first]);
        assert_eq!(outbox.events.len(), 1);

        // A merge past the server's limit keeps both.
        let mut full = Outbox::default();
        let many = |from: usize| {
            let members = (from..from + MAX_TRAITS).map(|i| (i.to_string(), Value::Bool(true)));
            Value::Object(members.collect())
        };
        let mut problems = FieldProblems::default();
        full.traits("dev", "u1", &read_traits(&many(0), "traits", &mut problems), 1);
        full.traits("dev", "u1", &read_traits(&many(1), "traits", &mut problems), 2);
        assert_eq!(full.events.len(), 2);
        let signed_in = SignedIn::new("u1", "p");
        assert_eq!(
            full.due(0, signed_in).map(|b| b.len()),
            Some(1),
            "one traits event per batch"
        );
    }

    #[test]
    fn traits_go_only_for_their_user_with_the_proof_which_is_never_stored() {
        let mut outbox = Outbox::default();
        outbox.traits("dev", "u1", &traits(r#"{"plan":"pro","trial":null}"#), 7);
        assert!(outbox.due(0, None).is_none() && outbox.due(0, SignedIn::new("u2", "p2")).is_none());
        let signed_in = SignedIn::new("u1", "ab12");
        let body = Outbox::request_body(&outbox.due(0, signed_in).expect("due"), signed_in);
        let sent = first_event(&body);
        let keys: Vec<String> = members(&sent).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["id", "type", "user", "at", "traits", "userProof"]);
        assert_eq!(sent.get("type").and_then(Value::as_str), Some("traits"));
        assert_eq!(sent.get("userProof").and_then(Value::as_str), Some("ab12"));
        assert_eq!(
            sent.get("traits"),
            Some(&crate::value::from_json(r#"{"plan":"pro","trial":null}"#))
        );
        let stored = outbox.to_value();
        assert!(!format!("{stored:?}").contains("ab12"), "the proof is never stored");
        assert_eq!(Outbox::from_value(&stored, 0), outbox, "reads back as written");

        let planted = crate::value::from_json(
            r#"{"events":[{"id":"d-1-1","type":"traits","user":"u1","at":1,"traits":{"a":[1]}},
                          {"id":"d-2-2","type":"traits","user":"u1","at":2,"traits":{}},
                          {"id":"d-3-3","type":"prompt_shown","at":3,"traits":{"a":1}},
                          {"id":"d-4-4","type":"traits","user":"u1","at":4,"traits":{"a":1}}]}"#,
        );
        let read = Outbox::from_value(&planted, 10);
        let ids: Vec<&str> = read.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["d-4-4"], "bad, empty or misplaced traits are dropped");
    }
}
