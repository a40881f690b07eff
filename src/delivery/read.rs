//! Reading a delivery policy from JSON, naming every bad field by path
//! (`categories.marketing.caps.day: expected a positive integer`).
//!
//! ```json
//! {
//!   "caps": { "day": 3, "week": 10 },
//!   "quietHours": ["21:00", "08:00"],
//!   "overCap": "hold",
//!   "inQuietHours": "hold",
//!   "categories": {
//!     "security": { "label": "Sign-ins and security", "exempt": true },
//!     "replies": { "label": "Replies to your messages" },
//!     "marketing": { "label": "News and offers", "caps": { "day": 1 }, "overCap": "drop" }
//!   },
//!   "fatigue": { "dismissed": 0.8, "minimum": 50, "window": { "days": 7 }, "pause": ["marketing"] }
//! }
//! ```

use std::collections::BTreeMap;

use super::{Caps, Category, DeliveryPolicy, FatigueGuard, Overflow, Quiet, Rules};
use crate::error::{Error, FieldProblems, Result};
use crate::journey::LocalTime;
use crate::value::{ObjectReader, Value};

const POLICY_FIELDS: &[&str] = &["caps", "quietHours", "overCap", "inQuietHours", "categories", "fatigue"];
const CATEGORY_FIELDS: &[&str] = &["label", "exempt", "caps", "quietHours", "overCap", "inQuietHours"];
/// Most categories a site defines.
pub const MAX_CATEGORIES: usize = 64;
/// Longest category label, in characters.
pub const MAX_LABEL_CHARS: usize = 80;

impl DeliveryPolicy {
    /// Reads and validates a policy; every problem is reported at once.
    pub fn read(value: &Value) -> Result<DeliveryPolicy> {
        let mut problems = FieldProblems::default();
        let policy = read_policy(value, &mut problems);
        match (policy, problems.0.is_empty()) {
            (Some(policy), true) => Ok(policy),
            _ => Err(Error::InvalidDeliveryPolicy(problems)),
        }
    }
}

/// Whether `name` can name a category: the event name rule (1 to 64 of
/// `A-Z a-z 0-9 _ . : -`).
pub fn is_category(name: &str) -> bool {
    crate::model::is_event_name(name)
}

fn read_policy(value: &Value, problems: &mut FieldProblems) -> Option<DeliveryPolicy> {
    let mut r = ObjectReader::new(value, "", POLICY_FIELDS, problems)?;
    let site = read_rules(&mut r, &Rules::default());
    let categories = read_categories(&mut r, &site);
    let fatigue = r
        .get("fatigue")
        .and_then(|v| {
            let path = r.path_of("fatigue");
            read_fatigue(v, path, &categories, r.problems())
        })
        .unwrap_or_default();
    Some(DeliveryPolicy {
        site,
        categories,
        fatigue,
    })
}

/// `fatigue: { dismissed?, unsubscribed?, minimum?, window?, recheck?, pause? }`
/// (shares from 0 to 1; `window` and `recheck` durations like a journey's
/// wait, `{ "days": 7 }`; `pause` names categories of this policy, none
/// exempt).
fn read_fatigue(
    value: &Value,
    path: String,
    categories: &BTreeMap<String, Category>,
    problems: &mut FieldProblems,
) -> Option<FatigueGuard> {
    let fields = ["dismissed", "unsubscribed", "minimum", "window", "recheck", "pause"];
    let mut r = ObjectReader::new(value, path, &fields, problems)?;
    let default = FatigueGuard::default();
    let window_ms = r.get("window").and_then(|v| {
        let at = r.path_of("window");
        crate::journey::read_duration(v, at, r.problems())
    });
    let recheck_ms = r.get("recheck").and_then(|v| {
        let at = r.path_of("recheck");
        crate::journey::read_duration(v, at, r.problems())
    });
    let pause = r
        .array("pause", |v, at, problems| pausable(v, at, categories, problems))
        .unwrap_or_default();
    Some(FatigueGuard {
        dismissed: r
            .number_in("dismissed", 0.0, 1.0, "a share from 0 to 1")
            .unwrap_or(default.dismissed),
        unsubscribed: r
            .number_in("unsubscribed", 0.0, 1.0, "a share from 0 to 1")
            .unwrap_or(default.unsubscribed),
        minimum: r.positive_integer("minimum").unwrap_or(default.minimum),
        window_ms: window_ms.unwrap_or(default.window_ms),
        recheck_ms: recheck_ms.unwrap_or(default.recheck_ms),
        pause: pause.into_iter().collect(),
    })
}

/// One name of `fatigue.pause`: a category of this policy, and not an
/// exempt one (a sign-in code must never wait on how marketing is received).
fn pausable(
    value: &Value,
    path: String,
    categories: &BTreeMap<String, Category>,
    problems: &mut FieldProblems,
) -> Option<String> {
    let Some(name) = value.as_str() else {
        problems.push(path, "expected a category name");
        return None;
    };
    match categories.get(name) {
        Some(category) if category.rules.exempt => {
            problems.push(path, format!("{name:?} is exempt, and exempt pushes are never paused"));
            None
        }
        Some(_) => Some(name.to_owned()),
        None => {
            let known: Vec<&str> = categories.keys().map(String::as_str).collect();
            let expected = if known.is_empty() {
                "the policy defines no categories".to_owned()
            } else {
                format!("expected one of: {}", known.join(", "))
            };
            problems.push(path, format!("{name:?} is not a category of this policy ({expected})"));
            None
        }
    }
}

/// The rules an object names, the rest taken from `base`.
fn read_rules(r: &mut ObjectReader<'_, '_>, base: &Rules) -> Rules {
    let caps = r.get("caps").and_then(|v| {
        let path = r.path_of("caps");
        read_caps(v, path, r.problems())
    });
    let quiet = r.get("quietHours").and_then(|v| {
        let path = r.path_of("quietHours");
        read_quiet(v, path, r.problems())
    });
    let overflow = |r: &mut ObjectReader<'_, '_>, key: &str| {
        r.choice(key, &["hold", "drop"]).map(|c| match c.as_str() {
            "drop" => Overflow::Drop,
            _ => Overflow::Hold,
        })
    };
    Rules {
        own_caps: caps.is_some() || base.own_caps,
        caps: caps.unwrap_or(base.caps),
        quiet: quiet.or(base.quiet),
        over_cap: overflow(r, "overCap").unwrap_or(base.over_cap),
        in_quiet: overflow(r, "inQuietHours").unwrap_or(base.in_quiet),
        exempt: r.boolean("exempt").unwrap_or(base.exempt),
    }
}

fn read_caps(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Caps> {
    let mut r = ObjectReader::new(value, path.clone(), &["day", "week"], problems)?;
    let mut cap = |key: &str| {
        let n = r.positive_integer(key)?;
        match u32::try_from(n) {
            Ok(n) if n <= 10_000 => Some(n),
            _ => {
                let at = r.path_of(key);
                r.problems().push(at, "expected at most 10000");
                None
            }
        }
    };
    let caps = Caps {
        day: cap("day"),
        week: cap("week"),
    };
    if let (Some(day), Some(week)) = (caps.day, caps.week) {
        if week < day {
            problems.push(format!("{path}.week"), "expected at least the daily cap");
        }
    }
    Some(caps)
}

fn read_quiet(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Quiet> {
    let expected = "expected [\"HH:MM\", \"HH:MM\"] (from, to; may span midnight)";
    let Value::Array(items) = value else {
        problems.push(path, expected);
        return None;
    };
    let times: Vec<Option<LocalTime>> = items.iter().map(|v| v.as_str().and_then(LocalTime::parse)).collect();
    match times.as_slice() {
        [Some(from), Some(to)] if from != to => Some(Quiet { from: *from, to: *to }),
        [Some(_), Some(_)] => {
            problems.push(path, "from and to are the same time");
            None
        }
        _ => {
            problems.push(path, expected);
            None
        }
    }
}

fn read_categories(r: &mut ObjectReader<'_, '_>, site: &Rules) -> BTreeMap<String, Category> {
    let mut out = BTreeMap::new();
    let Some(value) = r.get("categories") else {
        return out;
    };
    let path = r.path_of("categories");
    let Value::Object(members) = value else {
        r.problems().push(path, "expected an object of categories by name");
        return out;
    };
    if members.len() > MAX_CATEGORIES {
        r.problems()
            .push(path.clone(), format!("expected at most {MAX_CATEGORIES} categories"));
    }
    for (name, value) in members {
        let at = format!("{path}.{name}");
        if !is_category(name) {
            r.problems()
                .push(at.clone(), "a category name is 1 to 64 of A-Z a-z 0-9 _ . : -");
            continue;
        }
        if let Some(category) = read_category(value, at, site, r.problems()) {
            out.insert(name.clone(), category);
        }
    }
    out
}

fn read_category(value: &Value, path: String, site: &Rules, problems: &mut FieldProblems) -> Option<Category> {
    let mut r = ObjectReader::new(value, path, CATEGORY_FIELDS, problems)?;
    let label = r.string("label");
    if let Some(text) = &label {
        if text.chars().count() > MAX_LABEL_CHARS {
            let at = r.path_of("label");
            r.problems()
                .push(at, format!("expected at most {MAX_LABEL_CHARS} characters"));
        }
    }
    let base = Rules {
        own_caps: false,
        ..*site
    };
    let rules = read_rules(&mut r, &base);
    Some(Category { label: label?, rules })
}
