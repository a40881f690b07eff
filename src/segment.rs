//! Segments: who a notification goes to, as a condition over the
//! recipient's user traits and the device's topics — `{ "trait": "plan",
//! "in": ["pro", "team"] }`, `{ "topic": "news-*" }` — over activity (the
//! user's events: `{ "active_within": { "days": 7 } }`, `{ "inactive_for":
//! { "days": 14 } }`, `{ "event": "purchased", "within": { "days": 30 },
//! "at_least": 2 }`), the device itself (`{ "subscribed_for": { "days": 3
//! } }`, `{ "browser": "firefox" }`, `{ "bucket": [0, 10] }`), combined
//! with `all`, `any` and `not`. The clock is a fact like the others
//! ([`Facts::now_ms`]), so evaluation stays pure.
//!
//! One definition, two evaluations: [`Segment::matches`] here (pure, the
//! reference), and the server compiles the same tree to one SQL `WHERE`
//! over its users and subscriptions; a parity test holds the two to the
//! same answers on SQLite and PostgreSQL. Every atom is two-valued — a
//! device with no user, or a user without the trait, simply does not match
//! it (and so matches its `not`) — which the SQL spells out, since SQL's
//! `NULL` would otherwise make `not` drop those devices too.

use crate::sorted::SortedMap;

use crate::error::FieldProblems;
use crate::rules::glob_match;
use crate::value::{ObjectReader, Value};

/// A trait value as the server stores it: a flat JSON scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A string.
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
}

/// What a trait must be.
#[derive(Debug, Clone, PartialEq)]
pub enum TraitTest {
    /// This value, of this type (`"10"` is not `10`).
    Equals(Scalar),
    /// One of these.
    In(Vec<Scalar>),
    /// Present, whatever its value.
    Exists,
    /// A number at least this.
    AtLeast(f64),
    /// A number at most this.
    AtMost(f64),
}

/// A browser, as its push service tells it (the endpoint's host): what
/// the server knows of every device without asking the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    /// Firebase Cloud Messaging: Chrome, and Chromium browsers but Edge
    /// (Opera, Samsung Internet, Brave).
    Chrome,
    /// Mozilla's push service: Firefox.
    Firefox,
    /// Apple's: Safari.
    Safari,
    /// Windows Push Notification Services: Edge.
    Edge,
}

impl Browser {
    /// Every browser, with its name in conditions.
    pub const ALL: [(Browser, &'static str); 4] = [
        (Browser::Chrome, "chrome"),
        (Browser::Firefox, "firefox"),
        (Browser::Safari, "safari"),
        (Browser::Edge, "edge"),
    ];

    /// Its name in conditions.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(browser, _)| *browser == self)
            .map_or("", |(_, name)| name)
    }

    /// The exact push-service hosts of this browser (lowercase).
    pub fn hosts(self) -> &'static [&'static str] {
        match self {
            Browser::Chrome => &["fcm.googleapis.com", "android.googleapis.com"],
            Browser::Firefox => &["updates.push.services.mozilla.com"],
            Browser::Safari => &["web.push.apple.com"],
            Browser::Edge => &[],
        }
    }

    /// The host suffix of this browser's push service, if it has many
    /// hosts (`.notify.windows.com`).
    pub fn host_suffix(self) -> Option<&'static str> {
        (self == Browser::Edge).then_some(".notify.windows.com")
    }

    /// The browser of a push endpoint: by its host (lowercased; an
    /// endpoint that is not `https://` has none).
    pub fn of_endpoint(endpoint: &str) -> Option<Browser> {
        let host = endpoint_host(endpoint)?;
        Self::ALL.iter().map(|(browser, _)| *browser).find(|browser| {
            browser.hosts().contains(&host.as_str())
                || browser.host_suffix().is_some_and(|suffix| host.ends_with(suffix))
        })
    }
}

/// The host of an `https://` endpoint, lowercased: what comes before the
/// first `/` after the scheme (the server's SQL takes the same part).
pub fn endpoint_host(endpoint: &str) -> Option<String> {
    let rest = endpoint.strip_prefix("https://")?;
    let host = rest.split('/').next().unwrap_or(rest);
    Some(host.to_ascii_lowercase())
}

/// How many of a user's events of one name a segment wants within a
/// window: at least `at_least`, and at most `at_most` when given.
#[derive(Debug, Clone, PartialEq)]
pub struct EventCount {
    /// The event's name.
    pub name: String,
    /// The window, back from now (ms).
    pub within_ms: u64,
    /// Fewest (default 1).
    pub at_least: u64,
    /// Most, if bounded.
    pub at_most: Option<u64>,
}

/// Buckets of [`Segment::Bucket`]: a device's row id modulo this.
pub const BUCKETS: i64 = 100;

/// What a segment is evaluated against: one device and its user.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The user's traits (empty for a device bound to no user).
    pub traits: &'a SortedMap<Scalar>,
    /// The device's topics.
    pub topics: &'a [String],
    /// The user's events, `(name, at ms)` (none without a user).
    pub events: &'a [(String, i64)],
    /// The device's row id (its bucket is this modulo [`BUCKETS`]).
    pub device: i64,
    /// Its push endpoint.
    pub endpoint: &'a str,
    /// When it subscribed (ms).
    pub subscribed_ms: i64,
    /// Now (ms): the clock activity and age are judged by.
    pub now_ms: i64,
}

impl<'a> Facts<'a> {
    /// A device with these traits and topics, and nothing else known.
    pub fn new(traits: &'a SortedMap<Scalar>, topics: &'a [String]) -> Self {
        Self {
            traits,
            topics,
            events: &[],
            device: 0,
            endpoint: "",
            subscribed_ms: 0,
            now_ms: 0,
        }
    }

    fn since(&self, window_ms: u64) -> i64 {
        self.now_ms.saturating_sub(i64::try_from(window_ms).unwrap_or(i64::MAX))
    }
}

/// A segment condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// The user's trait `name` passes `test`.
    Trait {
        /// Trait name (`A-Z a-z 0-9 _ . : -`).
        name: String,
        /// The test.
        test: TraitTest,
    },
    /// The device is subscribed to a topic matching this pattern (`*`:
    /// any run of characters).
    Topic(String),
    /// The user had an event within this window (ms) back from now.
    ActiveWithin(u64),
    /// The user had events, but none within this window (ms): lapsed. A
    /// device without a user, or a user without events, is not (use `not
    /// active_within` for "no activity at all").
    InactiveFor(u64),
    /// The user's events of one name within a window are this many.
    Event(EventCount),
    /// The device subscribed at least this long (ms) ago.
    SubscribedFor(u64),
    /// The device's browser, by its push service.
    Browser(Browser),
    /// The device's bucket (row id modulo [`BUCKETS`]) is in `[from, to)`:
    /// a stable random share, such as `[0, 10]` for a tenth.
    Bucket {
        /// First bucket in.
        from: i64,
        /// First bucket out.
        to: i64,
    },
    /// All hold (none: everyone).
    All(Vec<Segment>),
    /// At least one holds (none: no one).
    Any(Vec<Segment>),
    /// Does not hold.
    Not(Box<Segment>),
}

/// Deepest nesting of `all` / `any` / `not`.
pub const MAX_DEPTH: usize = 8;
/// Most atoms in one segment (each is a few SQL parameters).
pub const MAX_ATOMS: usize = 64;
/// Most values of one `in`.
pub const MAX_IN: usize = 100;

impl Segment {
    /// Whether a device with these facts is in the segment.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        match self {
            Segment::Trait { .. } | Segment::Topic(_) => self.matches_on_page(facts.traits, facts.topics),
            Segment::ActiveWithin(window) => {
                let since = facts.since(*window);
                facts.events.iter().any(|(_, at)| *at >= since)
            }
            Segment::InactiveFor(window) => {
                let since = facts.since(*window);
                !facts.events.is_empty() && facts.events.iter().all(|(_, at)| *at < since)
            }
            Segment::Event(count) => {
                let since = facts.since(count.within_ms);
                let n = facts
                    .events
                    .iter()
                    .filter(|(name, at)| *name == count.name && *at >= since)
                    .count() as u64;
                n >= count.at_least && count.at_most.is_none_or(|most| n <= most)
            }
            Segment::SubscribedFor(age) => facts.subscribed_ms <= facts.since(*age),
            Segment::Browser(browser) => Browser::of_endpoint(facts.endpoint) == Some(*browser),
            Segment::Bucket { from, to } => {
                let bucket = facts.device.rem_euclid(BUCKETS);
                (*from..*to).contains(&bucket)
            }
            Segment::All(all) => all.iter().all(|s| s.matches(facts)),
            Segment::Any(any) => any.iter().any(|s| s.matches(facts)),
            Segment::Not(inner) => !inner.matches(facts),
        }
    }

    /// Whether a page with these traits and topics is in this atom: the
    /// judging of the atoms [`read_page_atom`] reads (the others, facts a
    /// page does not have, never hold there). Its own entry, so the page's
    /// wasm links only these.
    pub fn matches_on_page(&self, traits: &SortedMap<Scalar>, topics: &[String]) -> bool {
        match self {
            Segment::Trait { name, test } => traits.get(name).is_some_and(|value| test.passes(value)),
            Segment::Topic(pattern) => topics.iter().any(|topic| glob_match(pattern, topic)),
            _ => false,
        }
    }

    /// Reads a segment from JSON, naming every bad field by its path under
    /// `path` (`to.where.all[1].in`).
    ///
    /// # Errors
    /// The problems found.
    pub fn read(value: &Value, path: &str) -> Result<Self, FieldProblems> {
        let mut problems = FieldProblems::default();
        let mut atoms = 0;
        let segment = read_at(value, path.to_owned(), 0, &mut atoms, &mut problems);
        if atoms > MAX_ATOMS {
            problems.push(path, format!("at most {MAX_ATOMS} conditions"));
        }
        match segment {
            Some(segment) if problems.0.is_empty() => Ok(segment),
            _ => Err(problems),
        }
    }
}

impl TraitTest {
    fn passes(&self, value: &Scalar) -> bool {
        match self {
            TraitTest::Equals(expected) => value == expected,
            TraitTest::In(values) => values.contains(value),
            TraitTest::Exists => true,
            TraitTest::AtLeast(min) => matches!(value, Scalar::Number(n) if n >= min),
            TraitTest::AtMost(max) => matches!(value, Scalar::Number(n) if n <= max),
        }
    }
}

const KEYS: &[&str] = &[
    "trait",
    "equals",
    "in",
    "exists",
    "gte",
    "lte",
    "topic",
    "active_within",
    "inactive_for",
    "event",
    "within",
    "at_least",
    "at_most",
    "subscribed_for",
    "browser",
    "bucket",
    "all",
    "any",
    "not",
];

/// The members that say what kind a condition is.
const KINDS: &[&str] = &[
    "trait",
    "topic",
    "active_within",
    "inactive_for",
    "event",
    "subscribed_for",
    "browser",
    "bucket",
    "all",
    "any",
    "not",
];

fn read_at(
    value: &Value,
    path: String,
    depth: usize,
    atoms: &mut usize,
    problems: &mut FieldProblems,
) -> Option<Segment> {
    if depth > MAX_DEPTH {
        problems.push(path, format!("nested deeper than {MAX_DEPTH} levels"));
        return None;
    }
    let Value::Object(members) = value else {
        problems.push(
            path,
            "expected an object: { trait, equals | in | exists | gte | lte }, { topic }, { active_within }, { inactive_for }, { event, within }, { subscribed_for }, { browser }, { bucket }, { all }, { any } or { not }",
        );
        return None;
    };
    let kind = KINDS
        .iter()
        .copied()
        .filter(|key| members.iter().any(|(k, _)| k == key))
        .collect::<Vec<_>>();
    let [kind] = kind.as_slice() else {
        problems.push(path, format!("expected exactly one of {}", KINDS.join(", ")));
        return None;
    };
    let mut r = ObjectReader::new(value, path.clone(), KEYS, problems)?;
    match *kind {
        "trait" => {
            *atoms += 1;
            read_trait(&mut r)
        }
        "topic" => {
            *atoms += 1;
            read_topic(&mut r)
        }
        "active_within" | "inactive_for" | "subscribed_for" => {
            *atoms += 1;
            let window = window(&mut r, kind)?;
            Some(match *kind {
                "active_within" => Segment::ActiveWithin(window),
                "inactive_for" => Segment::InactiveFor(window),
                _ => Segment::SubscribedFor(window),
            })
        }
        "event" => {
            *atoms += 1;
            read_event(&mut r)
        }
        "browser" => {
            *atoms += 1;
            let name = r.string("browser")?;
            match Browser::ALL.iter().find(|(_, n)| *n == name) {
                Some((browser, _)) => Some(Segment::Browser(*browser)),
                None => {
                    problem(&mut r, "browser", "expected chrome, firefox, safari or edge");
                    None
                }
            }
        }
        "bucket" => {
            *atoms += 1;
            read_bucket(&mut r)
        }
        "not" => {
            let inner = r.get("not")?;
            let at = r.path_of("not");
            read_at(inner, at, depth + 1, atoms, r.problems()).map(|s| Segment::Not(Box::new(s)))
        }
        list => {
            let Some(Value::Array(items)) = r.get(list) else {
                problem(&mut r, list, "expected an array of conditions");
                return None;
            };
            let at = r.path_of(list);
            let read: Vec<Option<Segment>> = (items.iter().enumerate())
                .map(|(i, item)| read_at(item, format!("{at}[{i}]"), depth + 1, atoms, r.problems()))
                .collect();
            let read: Option<Vec<Segment>> = read.into_iter().collect();
            read.map(|items| {
                if list == "all" {
                    Segment::All(items)
                } else {
                    Segment::Any(items)
                }
            })
        }
    }
}

/// The members of a trait test.
const TRAIT_KEYS: &[&str] = &["trait", "equals", "in", "exists", "gte", "lte"];

/// Reads one of the atoms a page can judge itself — a trait test over
/// `user.traits` or a topic pattern over its subscription's topics —
/// for the page rules, which share the segments' reading and meaning.
/// Only these are linked into the page (activity, age, browser and bucket
/// are facts the server holds).
pub(crate) fn read_page_atom(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Segment> {
    let is_trait = matches!(value, Value::Object(members) if members.iter().any(|(k, _)| k == "trait"));
    let keys = if is_trait { TRAIT_KEYS } else { &["topic"] };
    let mut r = ObjectReader::new(value, path, keys, problems)?;
    if is_trait {
        read_trait(&mut r)
    } else {
        read_topic(&mut r)
    }
}

fn read_topic(r: &mut ObjectReader<'_, '_>) -> Option<Segment> {
    let pattern = r.string("topic")?;
    if pattern.is_empty() || pattern.len() > 200 {
        problem(r, "topic", "expected 1 to 200 characters (* matches any run)");
        return None;
    }
    Some(Segment::Topic(pattern))
}

fn read_trait(r: &mut ObjectReader<'_, '_>) -> Option<Segment> {
    let name = r.string("trait")?;
    if !is_trait_name(&name) {
        problem(r, "trait", "expected 1 to 64 of A-Z a-z 0-9 _ . : -");
        return None;
    }
    let tests: Vec<&str> = ["equals", "in", "exists", "gte", "lte"]
        .into_iter()
        .filter(|key| r.get(key).is_some())
        .collect();
    let [test] = tests.as_slice() else {
        let path = r.path_of("trait");
        r.problems()
            .push(path, "expected exactly one of equals, in, exists, gte, lte beside it");
        return None;
    };
    let test = match *test {
        "equals" => TraitTest::Equals(scalar(r, "equals")?),
        "in" => TraitTest::In(scalars(r)?),
        "exists" => match r.get("exists") {
            Some(Value::Bool(true)) => TraitTest::Exists,
            _ => {
                problem(r, "exists", "expected true (use not for a missing trait)");
                return None;
            }
        },
        bound => {
            let n = r.number_in(bound, -1e15, 1e15, "a number")?;
            if bound == "gte" {
                TraitTest::AtLeast(n)
            } else {
                TraitTest::AtMost(n)
            }
        }
    };
    Some(Segment::Trait { name, test })
}

/// A window (a duration as journeys write it) at member `key`.
fn window(r: &mut ObjectReader<'_, '_>, key: &str) -> Option<u64> {
    let value = r.get(key)?;
    let path = r.path_of(key);
    crate::value::read_duration(value, path, r.problems())
}

fn read_event(r: &mut ObjectReader<'_, '_>) -> Option<Segment> {
    let name = r.string("event")?;
    if !crate::model::is_event_name(&name) {
        problem(r, "event", "expected an event name (1 to 64 of A-Z a-z 0-9 _ . : -)");
        return None;
    }
    if r.get("within").is_none() {
        problem(r, "event", "expected within beside it (how far back to count)");
        return None;
    }
    let within_ms = window(r, "within")?;
    let count = |r: &mut ObjectReader<'_, '_>, key: &str| -> Option<Option<u64>> {
        if r.get(key).is_none() {
            return Some(None);
        }
        r.number_in(key, 0.0, 1e9, "a whole number from 0").and_then(|n| {
            if n.fract() == 0.0 {
                Some(Some(n as u64))
            } else {
                problem(r, key, "expected a whole number from 0");
                None
            }
        })
    };
    let at_least = count(r, "at_least")?.unwrap_or(1);
    let at_most = count(r, "at_most")?;
    if at_most.is_some_and(|most| most < at_least) {
        problem(r, "at_most", "expected at least at_least");
        return None;
    }
    Some(Segment::Event(EventCount {
        name,
        within_ms,
        at_least,
        at_most,
    }))
}

fn read_bucket(r: &mut ObjectReader<'_, '_>) -> Option<Segment> {
    let bounds = match r.get("bucket") {
        Some(Value::Array(items)) if items.len() == 2 => {
            let as_bucket = |v: &Value| match v {
                Value::Number(n) if n.fract() == 0.0 && (0.0..=BUCKETS as f64).contains(n) => Some(*n as i64),
                _ => None,
            };
            as_bucket(&items[0]).zip(as_bucket(&items[1]))
        }
        _ => None,
    };
    match bounds {
        Some((from, to)) if from < to => Some(Segment::Bucket { from, to }),
        _ => {
            problem(
                r,
                "bucket",
                "expected [from, to]: whole numbers 0 to 100, from below to (the device's bucket is its id modulo 100)",
            );
            None
        }
    }
}

/// Records a problem at member `key` of `r`.
fn problem(r: &mut ObjectReader<'_, '_>, key: &str, message: &str) {
    let path = r.path_of(key);
    r.problems().push(path, message);
}

fn scalar(r: &mut ObjectReader<'_, '_>, key: &str) -> Option<Scalar> {
    let value = r.get(key)?;
    let scalar = as_scalar(value);
    if scalar.is_none() {
        problem(r, key, "expected a string, number or boolean");
    }
    scalar
}

fn scalars(r: &mut ObjectReader<'_, '_>) -> Option<Vec<Scalar>> {
    let path = r.path_of("in");
    let Some(Value::Array(items)) = r.get("in") else {
        r.problems()
            .push(path, "expected an array of strings, numbers or booleans");
        return None;
    };
    if items.is_empty() || items.len() > MAX_IN {
        r.problems().push(path, format!("expected 1 to {MAX_IN} values"));
        return None;
    }
    let values: Option<Vec<Scalar>> = items.iter().map(as_scalar).collect();
    if values.is_none() {
        r.problems()
            .push(path, "expected an array of strings, numbers or booleans");
    }
    values
}

/// A trait value as segments compare it (a string of at most 200 bytes, a
/// finite number, a boolean); `None` for anything else (a `null`).
pub(crate) fn as_scalar(value: &Value) -> Option<Scalar> {
    match value {
        Value::String(text) if text.len() <= 200 => Some(Scalar::Text(text.clone())),
        Value::Number(n) if n.is_finite() => Some(Scalar::Number(*n)),
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        _ => None,
    }
}

/// A trait name a segment may test: 1 to 64 of `A-Z a-z 0-9 _ . : -` (so
/// that it can be quoted into a JSON path on every database).
pub fn is_trait_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

#[cfg(test)]
#[path = "segment_tests.rs"]
mod tests;
