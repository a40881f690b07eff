//! A small JSON-like value tree, and a reader that reports problems by path.
//!
//! The page glue converts a JS object into a [`Value`] with a few js-sys
//! calls, and the core reads it here. Compared with serde-wasm-bindgen this
//! names every bad field by its path (`rules[2].when.count`), reports all of
//! them at once, and keeps serde and float formatting out of the wasm bundle.

use crate::error::FieldProblems;

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` or `undefined`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Any number.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, in key order.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Builds an object from `(key, value)` pairs.
    pub fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
        // One body for every N (each instantiation of the loop cost the
        // wasm ~230 bytes); only the move into a Vec is per N.
        Self::object_of(Vec::from(members))
    }

    #[inline(never)]
    fn object_of(members: Vec<(&str, Value)>) -> Value {
        Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        // Counts and epoch milliseconds stay far below 2^53.
        Value::Number(n as f64)
    }
}

/// Reads one object, recording problems under `path` and flagging unknown keys
/// (a misspelt option should not be silently ignored).
pub(crate) struct ObjectReader<'a, 'p> {
    value: &'a Value,
    path: String,
    problems: &'p mut FieldProblems,
}

impl<'a, 'p> ObjectReader<'a, 'p> {
    /// Starts reading `value` as an object; a non-object is one problem.
    pub fn new(
        value: &'a Value,
        path: impl Into<String>,
        allowed: &[&str],
        problems: &'p mut FieldProblems,
    ) -> Option<Self> {
        let path = path.into();
        let Value::Object(members) = value else {
            problems.push(path, "expected an object");
            return None;
        };
        for (key, _) in members {
            if !allowed.contains(&key.as_str()) {
                problems.push(
                    join(&path, key),
                    format!("unknown field (expected one of: {})", allowed.join(", ")),
                );
            }
        }
        Some(Self { value, path, problems })
    }

    /// The path of member `key`.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Where problems go, for nested readers.
    pub fn problems(&mut self) -> &mut FieldProblems {
        self.problems
    }

    /// Member `key` if present and not null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.get(key).filter(|v| **v != Value::Null)
    }

    /// A required non-empty string.
    pub fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key) {
            None => {
                let path = self.path_of(key);
                self.problems.push(path, "required");
                None
            }
            Some(_) => self.optional_string(key),
        }
    }

    /// An optional string; present but not a non-empty string is a problem.
    pub fn optional_string(&mut self, key: &str) -> Option<String> {
        let value = self.get(key)?;
        match value.as_str().map(str::trim) {
            Some(s) if !s.is_empty() => Some(s.to_owned()),
            _ => {
                let path = self.path_of(key);
                self.problems.push(path, "expected a non-empty string");
                None
            }
        }
    }

    /// An optional positive integer.
    pub fn positive_integer(&mut self, key: &str) -> Option<u64> {
        let value = self.get(key)?;
        match value.as_f64() {
            Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= 9.0e15 => Some(n as u64),
            _ => {
                let path = self.path_of(key);
                self.problems.push(path, "expected a positive integer");
                None
            }
        }
    }

    /// An optional number within `min..=max`.
    pub fn number_in(&mut self, key: &str, min: f64, max: f64, expected: &str) -> Option<f64> {
        let value = self.get(key)?;
        match value.as_f64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let path = self.path_of(key);
                self.problems.push(path, format!("expected {expected}"));
                None
            }
        }
    }

    /// An optional boolean.
    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => {
                let path = self.path_of(key);
                self.problems.push(path, "expected true or false");
                None
            }
        }
    }

    /// An optional string that must be one of `choices`.
    pub fn choice(&mut self, key: &str, choices: &[&str]) -> Option<String> {
        let value = self.optional_string(key)?;
        if choices.contains(&value.as_str()) {
            Some(value)
        } else {
            let path = self.path_of(key);
            self.problems
                .push(path, format!("expected one of: {}", choices.join(", ")));
            None
        }
    }

    /// An optional array, each element read by `item(value, path, problems)`.
    pub fn array<T>(
        &mut self,
        key: &str,
        mut item: impl FnMut(&'a Value, String, &mut FieldProblems) -> Option<T>,
    ) -> Option<Vec<T>> {
        let value = self.get(key)?;
        let path = self.path_of(key);
        let Value::Array(items) = value else {
            self.problems.push(path, "expected an array");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            if let Some(t) = item(v, format!("{path}[{i}]"), self.problems) {
                out.push(t);
            }
        }
        Some(out)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

const DURATION_UNITS: &[(&str, u64)] = &[
    ("seconds", 1_000),
    ("minutes", 60_000),
    ("hours", 3_600_000),
    ("days", 86_400_000),
];

/// The longest duration [`read_duration`] takes: 366 days.
pub const MAX_DURATION_MS: u64 = 366 * 24 * 3_600_000;

/// A duration object with exactly one unit: `{ "hours": 1 }` (also the
/// delivery policy's `fatigue.window`).
pub(crate) fn read_duration(value: &Value, path: String, problems: &mut FieldProblems) -> Option<u64> {
    let units: Vec<&str> = DURATION_UNITS.iter().map(|(unit, _)| *unit).collect();
    let mut r = ObjectReader::new(value, path.clone(), &units, problems)?;
    let mut total = None;
    let mut count = 0;
    for (unit, ms) in DURATION_UNITS {
        if let Some(n) = r.positive_integer(unit) {
            total = Some(n.saturating_mul(*ms));
        }
        count += usize::from(r.get(unit).is_some());
    }
    if count != 1 {
        r.problems()
            .push(path, "expected exactly one of: seconds, minutes, hours, days");
        return None;
    }
    match total {
        Some(ms) if ms <= MAX_DURATION_MS => Some(ms),
        Some(_) => {
            r.problems().push(path, "expected at most 366 days");
            None
        }
        None => None,
    }
}

/// Converts a serde_json value, for native tests that write configs as JSON.
#[cfg(test)]
pub(crate) fn from_json(text: &str) -> Value {
    fn convert(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(a.into_iter().map(convert).collect()),
            serde_json::Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, convert(v))).collect()),
        }
    }
    convert(serde_json::from_str(text).expect("test JSON parses"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_unknown_and_mistyped_fields_by_path() {
        let value = from_json(r#"{"count": 0, "colour": "red", "name": 5}"#);
        let mut problems = FieldProblems::default();
        let mut reader = ObjectReader::new(&value, "rules[2].when", &["count", "name"], &mut problems).expect("object");
        assert_eq!(reader.positive_integer("count"), None);
        assert_eq!(reader.optional_string("name"), None);
        let text = problems.to_string();
        assert!(
            text.contains("rules[2].when.count: expected a positive integer"),
            "{text}"
        );
        assert!(text.contains("rules[2].when.colour: unknown field"), "{text}");
        assert!(
            text.contains("rules[2].when.name: expected a non-empty string"),
            "{text}"
        );
    }
}
