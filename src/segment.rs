//! Segments: who a notification goes to, as a condition over the
//! recipient's user traits and the device's topics — `{ "trait": "plan",
//! "in": ["pro", "team"] }`, `{ "topic": "news-*" }`, combined with `all`,
//! `any` and `not`.
//!
//! One definition, two evaluations: [`Segment::matches`] here (pure, the
//! reference), and the server compiles the same tree to one SQL `WHERE`
//! over its users and subscriptions; a parity test holds the two to the
//! same answers on SQLite and PostgreSQL. Every atom is two-valued — a
//! device with no user, or a user without the trait, simply does not match
//! it (and so matches its `not`) — which the SQL spells out, since SQL's
//! `NULL` would otherwise make `not` drop those devices too.

use std::collections::BTreeMap;

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
    /// Whether a device with these facts is in the segment: `traits` its
    /// user's (empty for a device bound to no user), `topics` its own.
    pub fn matches(&self, traits: &BTreeMap<String, Scalar>, topics: &[String]) -> bool {
        match self {
            Segment::Trait { name, test } => traits.get(name).is_some_and(|value| test.passes(value)),
            Segment::Topic(pattern) => topics.iter().any(|topic| glob_match(pattern, topic)),
            Segment::All(all) => all.iter().all(|s| s.matches(traits, topics)),
            Segment::Any(any) => any.iter().any(|s| s.matches(traits, topics)),
            Segment::Not(inner) => !inner.matches(traits, topics),
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
    "trait", "equals", "in", "exists", "gte", "lte", "topic", "all", "any", "not",
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
            "expected an object: { trait, equals | in | exists | gte | lte }, { topic }, { all }, { any } or { not }",
        );
        return None;
    };
    let kind = ["trait", "topic", "all", "any", "not"]
        .into_iter()
        .filter(|key| members.iter().any(|(k, _)| k == key))
        .collect::<Vec<_>>();
    let [kind] = kind.as_slice() else {
        problems.push(path, "expected exactly one of trait, topic, all, any, not");
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
            let pattern = r.string("topic")?;
            if pattern.is_empty() || pattern.len() > 200 {
                problem(&mut r, "topic", "expected 1 to 200 characters (* matches any run)");
                return None;
            }
            Some(Segment::Topic(pattern))
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

fn as_scalar(value: &Value) -> Option<Scalar> {
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
