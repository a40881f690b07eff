//! A segment ([`askwell::segment::Segment`]) as one SQL condition over
//! `subscriptions s LEFT JOIN users u ON u.id = s.user_id`, in each
//! dialect, with every value a bound parameter.
//!
//! Two-valued on purpose: each atom is `(CASE WHEN … THEN 1 ELSE 0 END) = 1`,
//! so a device with no user (`u.traits` NULL) or a user without the trait
//! gives a definite false, never SQL's NULL, and `NOT` then means what the
//! core's [`Segment::matches`] means. A type guard comes first inside each
//! `CASE` (which evaluates in order), so PostgreSQL never casts a string
//! trait to a number. `tests/segments.rs` holds both dialects to the core.

use askwell::segment::{Browser, EventCount, Scalar, Segment, TraitTest, BUCKETS};

use super::Backend;

/// A bound parameter of a compiled segment.
#[derive(Debug, Clone)]
pub(super) enum Param {
    /// Text (a JSON path or key, a string value, a topic pattern).
    Text(String),
    /// A number.
    Real(f64),
    /// An integer (epoch ms, counts, buckets: compared with integer
    /// columns as integers, so PostgreSQL keeps using their indexes).
    Int(i64),
}

/// Compiles `segment` with its parameters numbered from `first`.
pub(super) struct Compiler {
    backend: Backend,
    first: usize,
    /// The clock activity and age are judged by (epoch ms).
    now_ms: i64,
    /// The parameters, in order.
    pub params: Vec<Param>,
}

impl Compiler {
    pub(super) fn new(backend: Backend, first: usize, now_ms: i64) -> Self {
        Self {
            backend,
            first,
            now_ms,
            params: Vec::new(),
        }
    }

    /// The parameter for "`window_ms` back from now".
    fn since(&mut self, window_ms: u64) -> String {
        let since = self.now_ms.saturating_sub(i64::try_from(window_ms).unwrap_or(i64::MAX));
        self.bind(Param::Int(since))
    }

    /// The SQL condition.
    pub(super) fn condition(&mut self, segment: &Segment) -> String {
        match segment {
            Segment::Trait { name, test } => self.trait_test(name, test),
            Segment::Topic(pattern) => self.topic(pattern),
            Segment::ActiveWithin(window) => {
                let since = self.since(*window);
                format!("EXISTS (SELECT 1 FROM user_events e WHERE e.user_id = s.user_id AND e.at_ms >= {since})")
            }
            Segment::InactiveFor(window) => {
                let since = self.since(*window);
                format!(
                    "EXISTS (SELECT 1 FROM user_events e WHERE e.user_id = s.user_id) \
                     AND NOT EXISTS (SELECT 1 FROM user_events e WHERE e.user_id = s.user_id AND e.at_ms >= {since})"
                )
            }
            Segment::Event(count) => self.event_count(count),
            Segment::SubscribedFor(age) => {
                let since = self.since(*age);
                format!("s.created_ms <= {since}")
            }
            Segment::Browser(browser) => self.browser(*browser),
            Segment::Bucket { from, to } => {
                let (from, to) = (self.bind(Param::Int(*from)), self.bind(Param::Int(*to)));
                format!("(s.id % {BUCKETS}) >= {from} AND (s.id % {BUCKETS}) < {to}")
            }
            Segment::All(all) if all.is_empty() => "1 = 1".into(),
            Segment::Any(any) if any.is_empty() => "1 = 0".into(),
            Segment::All(all) => self.joined(all, " AND "),
            Segment::Any(any) => self.joined(any, " OR "),
            Segment::Not(inner) => format!("NOT ({})", self.condition(inner)),
        }
    }

    fn joined(&mut self, items: &[Segment], with: &str) -> String {
        let parts: Vec<String> = items.iter().map(|s| format!("({})", self.condition(s))).collect();
        parts.join(with)
    }

    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.first + self.params.len() - 1)
    }

    /// `(type, text value, number value)` expressions of trait `name`.
    fn trait_parts(&mut self, name: &str) -> (String, String, String) {
        match self.backend {
            Backend::Sqlite => {
                // Names are `A-Z a-z 0-9 _ . : -` (is_trait_name): safe
                // inside a quoted JSON path.
                let path = self.bind(Param::Text(format!("$.\"{name}\"")));
                let value = format!("json_extract(u.traits, {path})");
                (format!("json_type(u.traits, {path})"), value.clone(), value)
            }
            Backend::Postgres => {
                let key = self.bind(Param::Text(name.to_owned()));
                let json = "CAST(u.traits AS jsonb)";
                (
                    format!("jsonb_typeof({json} -> CAST({key} AS TEXT))"),
                    format!("({json} ->> CAST({key} AS TEXT))"),
                    format!("CAST({json} ->> CAST({key} AS TEXT) AS DOUBLE PRECISION)"),
                )
            }
        }
    }

    fn trait_test(&mut self, name: &str, test: &TraitTest) -> String {
        let (kind, text, number) = self.trait_parts(name);
        let numeric = match self.backend {
            Backend::Sqlite => format!("{kind} IN ('integer', 'real')"),
            Backend::Postgres => format!("{kind} = 'number'"),
        };
        let guarded = |guard: &str, test: String| {
            format!("(CASE WHEN {guard} THEN (CASE WHEN {test} THEN 1 ELSE 0 END) ELSE 0 END) = 1")
        };
        match test {
            TraitTest::Exists => guarded(&format!("{kind} IS NOT NULL"), "1 = 1".into()),
            TraitTest::AtLeast(min) => {
                let min = self.bind(Param::Real(*min));
                guarded(&numeric, format!("{number} >= {min}"))
            }
            TraitTest::AtMost(max) => {
                let max = self.bind(Param::Real(*max));
                guarded(&numeric, format!("{number} <= {max}"))
            }
            TraitTest::Equals(value) => self.equals(&kind, &text, &number, &numeric, value),
            TraitTest::In(values) => {
                let parts: Vec<String> = values
                    .iter()
                    .map(|v| format!("({})", self.equals(&kind, &text, &number, &numeric, v)))
                    .collect();
                parts.join(" OR ")
            }
        }
    }

    fn equals(&mut self, kind: &str, text: &str, number: &str, numeric: &str, value: &Scalar) -> String {
        let guarded = |guard: &str, test: String| {
            format!("(CASE WHEN {guard} THEN (CASE WHEN {test} THEN 1 ELSE 0 END) ELSE 0 END) = 1")
        };
        match (value, self.backend) {
            (Scalar::Text(expected), backend) => {
                let expected = self.bind(Param::Text(expected.clone()));
                let string = if backend == Backend::Sqlite {
                    "'text'"
                } else {
                    "'string'"
                };
                guarded(&format!("{kind} = {string}"), format!("{text} = {expected}"))
            }
            (Scalar::Number(expected), _) => {
                let expected = self.bind(Param::Real(*expected));
                guarded(numeric, format!("{number} = {expected}"))
            }
            (Scalar::Bool(b), Backend::Sqlite) => format!("(CASE WHEN {kind} = '{b}' THEN 1 ELSE 0 END) = 1"),
            (Scalar::Bool(b), Backend::Postgres) => guarded(&format!("{kind} = 'boolean'"), format!("{text} = '{b}'")),
        }
    }

    /// The user's events of one name within the window, counted (0 for a
    /// device without a user: `COUNT` is never NULL).
    fn event_count(&mut self, count: &EventCount) -> String {
        let name = self.bind(Param::Text(count.name.clone()));
        let since = self.since(count.within_ms);
        let counted = format!(
            "(SELECT COUNT(*) FROM user_events e WHERE e.user_id = s.user_id AND e.name = {name} AND e.at_ms >= {since})"
        );
        let least = self.bind(Param::Int(i64::try_from(count.at_least).unwrap_or(i64::MAX)));
        match count.at_most {
            Some(most) => {
                let most = self.bind(Param::Int(i64::try_from(most).unwrap_or(i64::MAX)));
                format!("{counted} >= {least} AND {counted} <= {most}")
            }
            None => format!("{counted} >= {least}"),
        }
    }

    /// The endpoint's host is one of the browser's push service: the part
    /// [`askwell::segment::endpoint_host`] takes (after `https://`, before
    /// the first `/`, lowercased; none for another scheme).
    fn browser(&mut self, browser: Browser) -> String {
        let host = match self.backend {
            Backend::Sqlite => "lower(CASE WHEN substr(s.endpoint, 1, 8) = 'https://' THEN \
                 (CASE WHEN instr(substr(s.endpoint, 9), '/') > 0 THEN substr(s.endpoint, 9, instr(substr(s.endpoint, 9), '/') - 1) \
                 ELSE substr(s.endpoint, 9) END) END)",
            Backend::Postgres => {
                "lower(CASE WHEN substr(s.endpoint, 1, 8) = 'https://' THEN split_part(substr(s.endpoint, 9), '/', 1) END)"
            }
        };
        let mut tests: Vec<String> = browser
            .hosts()
            .iter()
            .map(|exact| format!("{host} = {}", self.bind(Param::Text((*exact).to_owned()))))
            .collect();
        if let Some(suffix) = browser.host_suffix() {
            // The suffix is dots and letters: nothing LIKE would read as a wildcard.
            tests.push(format!("{host} LIKE {}", self.bind(Param::Text(format!("%{suffix}")))));
        }
        let any = tests.join(" OR ");
        format!("(CASE WHEN {any} THEN 1 ELSE 0 END) = 1")
    }

    /// The device has a topic matching `pattern` (`*` any run, everything
    /// else literal): SQLite's case-sensitive `GLOB`, PostgreSQL's `LIKE`
    /// (case-sensitive there), each with the other wildcards escaped.
    fn topic(&mut self, pattern: &str) -> String {
        let (operator, escaped) = match self.backend {
            Backend::Sqlite => ("GLOB", glob_pattern(pattern)),
            Backend::Postgres => ("LIKE", like_pattern(pattern)),
        };
        let bound = self.bind(Param::Text(escaped));
        let escape = if self.backend == Backend::Postgres {
            " ESCAPE '\\'"
        } else {
            ""
        };
        format!(
            "EXISTS (SELECT 1 FROM subscription_topics wt WHERE wt.subscription_id = s.id AND wt.topic {operator} {bound}{escape})"
        )
    }
}

fn glob_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

fn like_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Binds `params` to `query`, in order.
pub(super) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    params: &[Param],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for param in params {
        query = match param {
            Param::Text(text) => query.bind(text.clone()),
            Param::Real(n) => query.bind(*n),
            Param::Int(n) => query.bind(*n),
        };
    }
    query
}
