//! Reading a journey definition from JSON, naming every bad field by path
//! (`steps[2].send.deliver.at: expected "HH:MM"`), as the page config does.

use super::{Condition, Deliver, Entry, ExitRule, Goto, Journey, LocalTime, Message, Repeat, Step, Trigger, MAX_STEPS};
use crate::error::{Error, FieldProblems, Result};
use crate::template::{fixed_origin, is_safe_url, Template};
use crate::value::{read_duration as duration, ObjectReader, Value};

const JOURNEY_FIELDS: &[&str] = &["id", "entry", "exitOn", "steps", "holdout", "goal"];
const ENTRY_FIELDS: &[&str] = &["event", "keyed", "nth", "inactive", "when", "once", "again"];
const STEP_KINDS: &[&str] = &["wait", "waitFor", "branch", "send", "exit"];
/// Longest title and body copy (fixed text and fallbacks), in characters:
/// what fits a notification on every platform.
pub const MAX_TITLE_CHARS: usize = 120;
/// See [`MAX_TITLE_CHARS`].
pub const MAX_BODY_CHARS: usize = 500;
/// Longest id or event name, in bytes.
pub const MAX_NAME: usize = crate::model::MAX_EVENT_NAME;

impl Journey {
    /// Reads and validates a definition; every problem is reported at once.
    pub fn read(value: &Value) -> Result<Journey> {
        let mut problems = FieldProblems::default();
        let journey = read_journey(value, &mut problems);
        match (journey, problems.0.is_empty()) {
            (Some(journey), true) => Ok(journey),
            _ => Err(Error::InvalidJourney(problems)),
        }
    }
}

/// Whether `name` is a valid journey id or event name: the wire's event
/// name rule ([`crate::model::is_event_name`]), so a journey can name every
/// event `track` and `forward` accept, and no other.
pub fn is_name(name: &str) -> bool {
    crate::model::is_event_name(name)
}

fn read_journey(value: &Value, problems: &mut FieldProblems) -> Option<Journey> {
    let mut r = ObjectReader::new(value, "", JOURNEY_FIELDS, problems)?;
    let id = name(&mut r, "id", true);
    let entry = r.get("entry").and_then(|v| {
        let path = r.path_of("entry");
        read_entry(v, path, r.problems())
    });
    if r.get("entry").is_none() {
        r.problems().push("entry", "required");
    }
    let exit_on = r.array("exitOn", read_exit).unwrap_or_default();
    let holdout = r
        .number_in("holdout", 0.0, 0.99, "a share from 0 to 0.99")
        .unwrap_or(0.0);
    let goal = name(&mut r, "goal", false);
    let steps = read_steps(&mut r);
    Some(Journey {
        id: id?,
        entry: entry?,
        exit_on,
        steps: steps?,
        holdout,
        goal,
    })
}

/// A name member (`id`, `event`, `goal`): required or optional.
fn name(r: &mut ObjectReader<'_, '_>, key: &str, required: bool) -> Option<String> {
    let text = if required {
        r.string(key)
    } else {
        r.optional_string(key)
    }?;
    if is_name(&text) {
        Some(text)
    } else {
        let path = r.path_of(key);
        r.problems().push(path, "expected 1 to 64 of A-Z a-z 0-9 _ . : -");
        None
    }
}

fn read_entry(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Entry> {
    let mut r = ObjectReader::new(value, path.clone(), ENTRY_FIELDS, problems)?;
    let event = name(&mut r, "event", false);
    let keyed = r.boolean("keyed").unwrap_or(false);
    let nth = r.positive_integer("nth");
    let inactive = r.get("inactive").and_then(|v| {
        let at = r.path_of("inactive");
        duration(v, at, r.problems())
    });
    let when = r.get("when").and_then(|v| {
        let at = r.path_of("when");
        read_condition(v, at, r.problems())
    });
    let trigger = match (event, inactive) {
        (Some(name), None) => Some(Trigger::Event { name, keyed, nth }),
        (None, Some(after_ms)) if !keyed && nth.is_none() => Some(Trigger::Inactive { after_ms }),
        (None, Some(_)) => {
            r.problems()
                .push(path.clone(), "an inactivity entry has no keyed or nth");
            None
        }
        _ => {
            r.problems()
                .push(path.clone(), "expected exactly one of: event, inactive");
            None
        }
    };
    let repeat = read_repeat(&mut r, keyed);
    Some(Entry {
        trigger: trigger?,
        when,
        repeat,
    })
}

fn read_repeat(r: &mut ObjectReader<'_, '_>, keyed: bool) -> Repeat {
    let once = r.choice("once", &["user", "key"]);
    let again = r.get("again").and_then(|v| {
        let at = r.path_of("again");
        duration(v, at, r.problems())
    });
    match (once.as_deref(), again) {
        (Some(_), Some(_)) => {
            let at = r.path_of("again");
            r.problems().push(at, "use once or again, not both");
            Repeat::OncePerUser
        }
        (Some("key"), None) if !keyed => {
            let at = r.path_of("once");
            r.problems().push(at, "\"key\" needs keyed: true");
            Repeat::OncePerUser
        }
        (Some("key"), None) => Repeat::OncePerKey,
        (Some(_), None) => Repeat::OncePerUser,
        (None, Some(gap)) => Repeat::After(gap),
        (None, None) if keyed => Repeat::OncePerKey,
        (None, None) => Repeat::OncePerUser,
    }
}

fn read_exit(value: &Value, path: String, problems: &mut FieldProblems) -> Option<ExitRule> {
    let mut r = ObjectReader::new(value, path, &["event", "sameKey"], problems)?;
    let event = name(&mut r, "event", true);
    let same_key = r.boolean("sameKey").unwrap_or(false);
    Some(ExitRule {
        event: event?,
        same_key,
    })
}

/// The steps, then their gotos resolved against step ids (forward only).
fn read_steps(r: &mut ObjectReader<'_, '_>) -> Option<Vec<Step>> {
    let Some(Value::Array(items)) = r.get("steps") else {
        let problem = if r.get("steps").is_some() {
            "expected an array of steps"
        } else {
            "required"
        };
        r.problems().push("steps", problem);
        return None;
    };
    if items.is_empty() || items.len() > MAX_STEPS {
        r.problems().push("steps", format!("expected 1 to {MAX_STEPS} steps"));
        return None;
    }
    let ids: Vec<Option<&str>> = items
        .iter()
        .map(|item| item.get("id").and_then(Value::as_str))
        .collect();
    let mut steps = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("steps[{i}]");
        if ids[..i].iter().any(|earlier| earlier.is_some() && *earlier == ids[i]) {
            r.problems().push(format!("{path}.id"), "duplicate step id");
        }
        let targets = Targets { ids: &ids, from: i };
        if let Some(step) = read_step(item, path, &targets, r.problems()) {
            steps.push(step);
        }
    }
    (steps.len() == items.len()).then_some(steps)
}

/// Step ids, for resolving `"then": "remind"` from step `from`.
struct Targets<'a> {
    ids: &'a [Option<&'a str>],
    from: usize,
}

impl Targets<'_> {
    fn resolve(&self, value: Option<&Value>, path: String, problems: &mut FieldProblems) -> Option<Goto> {
        let Some(value) = value else {
            return Some(Goto::Next);
        };
        match value.as_str() {
            Some("next") => Some(Goto::Next),
            Some("exit") => Some(Goto::Exit),
            Some(id) => match self.ids.iter().position(|s| *s == Some(id)) {
                Some(at) if at > self.from => Some(Goto::Step(at)),
                Some(_) => {
                    problems.push(path, "expected a later step: journeys only move forward");
                    None
                }
                None => {
                    problems.push(path, "no step has this id (or use \"next\" / \"exit\")");
                    None
                }
            },
            None => {
                problems.push(path, "expected \"next\", \"exit\" or a step id");
                None
            }
        }
    }
}

fn read_step(value: &Value, path: String, targets: &Targets<'_>, problems: &mut FieldProblems) -> Option<Step> {
    let Value::Object(members) = value else {
        problems.push(path, "expected a step object");
        return None;
    };
    let kinds: Vec<&str> = members
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| STEP_KINDS.contains(k))
        .collect();
    let [kind] = kinds.as_slice() else {
        problems.push(path, format!("expected exactly one of: {}", STEP_KINDS.join(", ")));
        return None;
    };
    let mut r = ObjectReader::new(value, path.clone(), &["id", *kind], problems)?;
    if r.get("id").is_some() {
        name(&mut r, "id", false);
    }
    let inner = r.get(kind)?;
    let at = r.path_of(kind);
    let problems = r.problems();
    match *kind {
        "wait" => duration(inner, at, problems).map(Step::Wait),
        "waitFor" => read_wait_for(inner, at, targets, problems),
        "branch" => read_branch(inner, at, targets, problems),
        "send" => read_message(inner, at, problems).map(Step::Send),
        _ => match inner {
            Value::Bool(true) => Some(Step::Exit),
            _ => {
                problems.push(at, "expected true");
                None
            }
        },
    }
}

fn read_wait_for(value: &Value, path: String, targets: &Targets<'_>, problems: &mut FieldProblems) -> Option<Step> {
    let fields = ["event", "sameKey", "timeout", "onEvent", "onTimeout"];
    let mut r = ObjectReader::new(value, path, &fields, problems)?;
    let event = name(&mut r, "event", true);
    let same_key = r.boolean("sameKey").unwrap_or(false);
    let timeout = match r.get("timeout") {
        Some(v) => {
            let at = r.path_of("timeout");
            duration(v, at, r.problems())
        }
        None => {
            let at = r.path_of("timeout");
            r.problems().push(at, "required");
            None
        }
    };
    let on_event = targets.resolve(r.get("onEvent"), r.path_of("onEvent"), r.problems());
    let on_timeout = targets.resolve(r.get("onTimeout"), r.path_of("onTimeout"), r.problems());
    Some(Step::WaitFor {
        event: event?,
        same_key,
        timeout_ms: timeout?,
        on_event: on_event?,
        on_timeout: on_timeout?,
    })
}

fn read_branch(value: &Value, path: String, targets: &Targets<'_>, problems: &mut FieldProblems) -> Option<Step> {
    let mut r = ObjectReader::new(value, path, &["if", "then", "else"], problems)?;
    let when = match r.get("if") {
        Some(v) => {
            let at = r.path_of("if");
            read_condition(v, at, r.problems())
        }
        None => {
            let at = r.path_of("if");
            r.problems().push(at, "required");
            None
        }
    };
    let then = targets.resolve(r.get("then"), r.path_of("then"), r.problems());
    let otherwise = targets.resolve(r.get("else"), r.path_of("else"), r.problems());
    Some(Step::Branch {
        when: when?,
        then: then?,
        otherwise: otherwise?,
    })
}

fn read_message(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Message> {
    let mut r = ObjectReader::new(
        value,
        path,
        &["title", "body", "url", "image", "deliver", "category"],
        problems,
    )?;
    let title = copy(&mut r, "title", MAX_TITLE_CHARS, true);
    let body = copy(&mut r, "body", MAX_BODY_CHARS, false).unwrap_or_else(|| Template::parse(""));
    let url = link(&mut r, "url");
    let image = link(&mut r, "image");
    let deliver = r.get("deliver").and_then(|v| {
        let at = r.path_of("deliver");
        read_deliver(v, at, r.problems())
    });
    let category = name(&mut r, "category", false);
    Some(Message {
        title: title?,
        body,
        url,
        image,
        deliver,
        category,
    })
}

/// A copy template: placeholders only over `user.*` and `event.*`, at most
/// `max` characters of fixed copy, and (for the title) never blank when
/// every field is missing: fixed text or a fallback (`{user.name|there}`).
fn copy(r: &mut ObjectReader<'_, '_>, key: &str, max: usize, required: bool) -> Option<Template> {
    let source = if required {
        r.string(key)
    } else {
        r.optional_string(key)
    }?;
    let template = Template::parse(&source);
    let path = r.path_of(key);
    let mut ok = placeholders_known(&template, &path, r.problems());
    if template.literal_chars() > max {
        r.problems()
            .push(path.clone(), format!("expected at most {max} characters of fixed copy"));
        ok = false;
    }
    if required && template.render(|_| None).is_empty() {
        r.problems().push(
            path,
            "would be blank when its fields are missing: add fixed text or a fallback ({user.name|there})",
        );
        ok = false;
    }
    ok.then_some(template)
}

/// A URL template that is http(s) or relative whatever its fields hold.
fn link(r: &mut ObjectReader<'_, '_>, key: &str) -> Option<Template> {
    let source = r.optional_string(key)?;
    let template = Template::parse(&source);
    let path = r.path_of(key);
    let mut ok = placeholders_known(&template, &path, r.problems());
    let probe = template.render(|_| Some("x"));
    if !is_safe_url(&probe) || !fixed_origin(&source) {
        r.problems().push(
            path,
            "expected an http(s) or relative URL, with placeholders only after the scheme and host",
        );
        ok = false;
    }
    ok.then_some(template)
}

fn placeholders_known(template: &Template, path: &str, problems: &mut FieldProblems) -> bool {
    let unknown: Vec<&str> = template
        .fields()
        .filter(|field| {
            let rest = field.strip_prefix("user.").or_else(|| field.strip_prefix("event."));
            rest.is_none_or(str::is_empty)
        })
        .collect();
    for field in &unknown {
        problems.push(
            path.to_owned(),
            format!("unknown placeholder {{{field}}}: expected {{user.<trait>}} or {{event.<property>}}"),
        );
    }
    unknown.is_empty()
}

fn read_deliver(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Deliver> {
    let mut r = ObjectReader::new(value, path.clone(), &["at", "window"], problems)?;
    let at = r.optional_string("at");
    let window = r.get("window");
    match (at, window) {
        (Some(text), None) => match LocalTime::parse(&text) {
            Some(time) => Some(Deliver::At(time)),
            None => {
                let at = r.path_of("at");
                r.problems().push(at, "expected \"HH:MM\" (24-hour clock)");
                None
            }
        },
        (None, Some(Value::Array(bounds))) => {
            let times: Vec<Option<LocalTime>> = bounds.iter().map(|b| b.as_str().and_then(LocalTime::parse)).collect();
            match times.as_slice() {
                [Some(start), Some(end)] if start != end => Some(Deliver::Within(*start, *end)),
                _ => {
                    let at = r.path_of("window");
                    r.problems()
                        .push(at, "expected [\"HH:MM\", \"HH:MM\"], two different times");
                    None
                }
            }
        }
        _ => {
            r.problems().push(path, "expected exactly one of: at, window");
            None
        }
    }
}

/// A condition in the page rules' language, over traits and properties.
fn read_condition(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Condition> {
    const KINDS: &[&str] = &["trait", "property", "all", "any", "not"];
    let Value::Object(members) = value else {
        problems.push(path, "expected a condition object");
        return None;
    };
    let kinds: Vec<&str> = members
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| KINDS.contains(k))
        .collect();
    match kinds.as_slice() {
        [kind @ ("all" | "any")] => {
            let mut r = ObjectReader::new(value, path, &[*kind], problems)?;
            let items = r.array(kind, read_condition)?;
            if items.is_empty() {
                let at = r.path_of(kind);
                r.problems().push(at, "expected at least one condition");
            }
            Some(if *kind == "all" {
                Condition::All(items)
            } else {
                Condition::Any(items)
            })
        }
        ["not"] => {
            let mut r = ObjectReader::new(value, path, &["not"], problems)?;
            let inner = r.get("not")?;
            let at = r.path_of("not");
            read_condition(inner, at, r.problems()).map(|c| Condition::Not(Box::new(c)))
        }
        [kind @ ("trait" | "property")] => {
            let mut r = ObjectReader::new(value, path.clone(), &[kind, "equals", "in"], problems)?;
            let name = r.string(kind);
            let values = match (r.get("equals"), r.get("in")) {
                (Some(v), None) => scalar_text(v).map(|v| vec![v]),
                (None, Some(Value::Array(items))) => items.iter().map(scalar_text).collect(),
                _ => None,
            };
            if values.is_none() {
                r.problems()
                    .push(path, "expected equals (a value) or in (an array of values)");
            }
            let (name, values) = (name?, values?);
            Some(if *kind == "trait" {
                Condition::Trait { name, values }
            } else {
                Condition::Property { name, values }
            })
        }
        _ => {
            problems.push(path, format!("expected exactly one of: {}", KINDS.join(", ")));
            None
        }
    }
}

/// A journey condition's value as text (journeys compare traits and
/// properties as text), so `{ "plan": "pro" }` and `{ "age": 30 }` both work.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.to_owned()),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Some((*n as i64).to_string()),
        _ => None,
    }
}
