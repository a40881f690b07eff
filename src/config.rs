//! The configuration a host page passes to `Askwell.start(config)`.
//!
//! [`Config::read`] reads a JSON-like [`Value`] and reports *every* bad field
//! by path in one error (`rules[2].when.count: expected a positive integer`),
//! so a developer fixes a config in one round trip.
//!
//! ```json
//! { "server": "https://push.example.com",
//!   "prompts": [{ "id": "reply", "message": "Want to know when {entity.name} replies?",
//!                 "accept": "Yes", "decline": "Not now", "topic": "thread:{entity.id}" }],
//!   "rules": [{ "prompt": "reply", "when": { "action": "message_sent", "nth": 1 } }],
//!   "policy": { "coolOffDays": [3, 7, 30] },
//!   "user": { "traits": { "plan": "pro" } } }
//! ```

use crate::sorted::SortedMap;

use crate::error::{FieldProblems, Result};
use crate::model::EventKind;
use crate::policy::{Kind, Policy};
use crate::privacy::{Privacy, Telemetry};
use crate::rules::{days, minutes, Condition, Occurrence, Permission, Rule};
use crate::template::{is_confirm_shaming, Template, MAX_BUTTON_CHARS, MAX_MESSAGE_CHARS};
use crate::value::{ObjectReader, Value};

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Base URL of askwell-server; `Some("")` is the page's own origin.
    /// `None` (no `server` in the config): Askwell makes no requests at all —
    /// no funnel events, no subscription (push prompts then fail with
    /// `no-server`); for pages that only use action prompts.
    pub server: Option<String>,
    /// The prompts this page may show.
    pub prompts: Vec<Prompt>,
    /// When to offer which prompt, in priority order.
    pub rules: Vec<Rule>,
    /// Cool-offs, budgets and the accept-rate guard.
    pub policy: Policy,
    /// The signed-in user's id, sent with subscriptions (optional).
    pub user_id: Option<String>,
    /// The app backend's proof for `user_id` (hex HMAC-SHA256 of the id with
    /// the server's `ASKWELL_IDENTITY_SECRET`); the server binds the device
    /// to the user only with it.
    pub user_proof: Option<String>,
    /// User traits for the rules' `{ trait }` conditions, typed as the
    /// server's segments compare them.
    pub traits: SortedMap<crate::segment::Scalar>,
    /// `user.traits` as given (checked with the server's rules by
    /// [`crate::funnel::read_traits`]; `null` deletes one): sent to the
    /// server with the proof, once per change.
    pub user_traits: Vec<(String, Value)>,
    /// Copy problems accepted because `policy.copyChecks` is `"warn"`.
    pub warnings: FieldProblems,
    /// Consent and telemetry settings.
    pub privacy: Privacy,
    /// What the prompt says after "Yes" while subscribing and when that failed.
    pub messages: Messages,
    /// Logs why each prompt is held back (`console.info`) and emits
    /// `askwell:skipped`: for integrating, not for production.
    pub debug: bool,
    /// Action names (`track(name)`, `data-askwell-action`) forwarded to the
    /// server as the signed-in user's events (name, time and entity id only),
    /// when a user is identified with a proof: see [`crate::funnel`].
    pub forward: Vec<String>,
}

/// Most action names in `forward`.
pub const MAX_FORWARD: usize = 32;

/// The prompt's own status copy after "Yes" (`messages` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Messages {
    /// Shown while the browser subscribes.
    pub subscribing: String,
    /// Shown when subscribing failed (Askwell retries on later visits).
    pub failed: String,
    /// The label of the button that closes the failure message.
    pub close: String,
}

impl Default for Messages {
    fn default() -> Self {
        Self {
            subscribing: "Turning on notifications…".into(),
            failed: "Notifications could not be turned on. We will try again on your next visit.".into(),
            close: "Close".into(),
        }
    }
}

/// Where a prompt appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A slide-down banner at the top of the viewport (non-modal).
    Banner,
    /// A centred modal dialog that keeps focus inside.
    Modal,
    /// Next to an anchor element (CSS selector), like a tooltip.
    Inline(String),
}

/// One copy variant of a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Variant id, reported in every event.
    pub id: String,
    /// Relative weight in the experiment.
    pub weight: f64,
    /// Message template.
    pub message: String,
    /// Accept label.
    pub accept: String,
    /// Decline label.
    pub decline: String,
}

/// One soft prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// Stable id, used in state, events and experiments.
    pub id: String,
    /// What accepting does.
    pub kind: Kind,
    /// Where it appears.
    pub placement: Placement,
    /// Copy variants (one, `"default"`, when the prompt has plain copy).
    pub variants: Vec<Variant>,
    /// Share of users (0–1) who never see it, as the experiment's control.
    pub holdout: f64,
    /// Push topic template (`"thread:{entity.id}"`); the tracked topic wins.
    pub topic: Option<String>,
    /// What the preference centre calls that topic, a template over the
    /// entity (`"Replies from {entity.name}"`); without one, the topic's name.
    pub topic_label: Option<String>,
    /// For action prompts: URL opened on accept (else only the event fires).
    pub url: Option<String>,
    /// For push prompts: the help prompt offered instead when permission is denied.
    pub help: Option<String>,
    /// This prompt's own cool-off steps, if not the global ones.
    pub cool_off_days: Option<Vec<u64>>,
}

const CONFIG_FIELDS: &[&str] = &[
    "server",
    "prompts",
    "rules",
    "policy",
    "user",
    "consent",
    "telemetry",
    "messages",
    "debug",
    "forward",
];
const PROMPT_FIELDS: &[&str] = &[
    "id",
    "kind",
    "placement",
    "anchor",
    "message",
    "accept",
    "decline",
    "variants",
    "holdout",
    "topic",
    "topicLabel",
    "url",
    "help",
    "coolOffDays",
];
const VARIANT_FIELDS: &[&str] = &["id", "weight", "message", "accept", "decline"];
const POLICY_FIELDS: &[&str] = &[
    "coolOffDays",
    "minGapSeconds",
    "perSession",
    "perWeek",
    "acceptRateFloor",
    "acceptRateWindow",
    "copyChecks",
];

impl Config {
    /// Reads and validates a config.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] listing every bad field by path.
    pub fn read(value: &Value) -> Result<Config> {
        let mut problems = FieldProblems::default();
        let config = read_config(value, &mut problems);
        problems.into_result()?;
        config.ok_or_else(|| crate::Error::InvalidConfig(FieldProblems::default()))
    }

    /// The prompt with this id.
    pub fn prompt(&self, id: &str) -> Option<&Prompt> {
        self.prompts.iter().find(|p| p.id == id)
    }
}

fn read_config(value: &Value, problems: &mut FieldProblems) -> Option<Config> {
    let mut root = ObjectReader::new(value, "", CONFIG_FIELDS, problems)?;
    let server = read_server(&mut root);
    let privacy = read_privacy(&mut root);
    let messages = root
        .get("messages")
        .map(|value| read_messages(value, root.problems()))
        .unwrap_or_default();
    let debug = root.boolean("debug").unwrap_or(false);
    let (policy, copy_checks_warn) = match root.get("policy") {
        Some(policy) => read_policy(policy, root.problems()),
        None => (Policy::default(), false),
    };
    let (user_id, user_proof, traits, user_traits) = root
        .get("user")
        .map(|user| read_user(user, root.problems()))
        .unwrap_or_default();
    let prompts = match root.get("prompts") {
        Some(_) => root.array("prompts", read_prompt).unwrap_or_default(),
        None => {
            root.problems().push("prompts", "required: at least one prompt");
            Vec::new()
        }
    };
    let rules = root.array("rules", read_rule).unwrap_or_default();
    let forward = read_forward(&mut root);
    let mut warnings = FieldProblems::default();
    check_references(&prompts, &rules, problems);
    let copy_sink = if copy_checks_warn {
        &mut warnings
    } else {
        &mut *problems
    };
    for (i, prompt) in prompts.iter().enumerate() {
        check_copy(prompt, i, copy_sink);
    }
    Some(Config {
        server,
        prompts,
        rules,
        policy,
        user_id,
        user_proof,
        traits,
        user_traits,
        warnings,
        privacy,
        messages,
        debug,
        forward,
    })
}

/// `forward`: at most [`MAX_FORWARD`] action names, each an event name
/// ([`crate::model::is_event_name`]), so the server takes every one.
fn read_forward(root: &mut ObjectReader<'_, '_>) -> Vec<String> {
    let names = root
        .array("forward", |value, path, problems| {
            let name = value.as_str().filter(|n| crate::model::is_event_name(n));
            if name.is_none() {
                problems.push(path, "expected an action name: 1 to 64 of A-Z a-z 0-9 _ . : -");
            }
            name.map(str::to_owned)
        })
        .unwrap_or_default();
    if names.len() > MAX_FORWARD {
        root.problems().push("forward", "expected at most 32 action names");
    }
    names
}

/// `server`: absent is no server; `""` the page's own origin.
fn read_server(root: &mut ObjectReader<'_, '_>) -> Option<String> {
    match root.get("server")? {
        Value::String(url) => Some(url.trim().to_owned()),
        _ => {
            root.problems()
                .push("server", "expected a string (\"\" for this page's origin)");
            None
        }
    }
}

/// `consent` and `telemetry` (see [`crate::privacy`]).
fn read_privacy(root: &mut ObjectReader<'_, '_>) -> Privacy {
    let mut privacy = Privacy {
        consent_required: root.choice("consent", &["required", "not-required"]).as_deref() == Some("required"),
        ..Privacy::default()
    };
    match root.get("telemetry") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => privacy.telemetry = Telemetry::None,
        Some(value) => read_telemetry(value, root.problems(), &mut privacy),
    }
    privacy
}

fn read_telemetry(value: &Value, problems: &mut FieldProblems, privacy: &mut Privacy) {
    let fields = &["send", "necessary", "globalPrivacyControl"];
    let Some(mut r) = ObjectReader::new(value, "telemetry", fields, problems) else {
        return;
    };
    privacy.telemetry = match r.choice("send", &["all", "necessary", "none"]).as_deref() {
        Some("necessary") => Telemetry::Necessary,
        Some("none") => Telemetry::None,
        _ => Telemetry::All,
    };
    privacy.necessary = r
        .array("necessary", |value, path, problems| {
            let kind = value.as_str().and_then(EventKind::parse).filter(|k| k.sent_by_page());
            if kind.is_none() {
                let names: Vec<&str> = EventKind::ALL
                    .into_iter()
                    .filter(|k| k.sent_by_page())
                    .map(EventKind::as_str)
                    .collect();
                problems.push(path, format!("expected one of: {}", names.join(", ")));
            }
            kind
        })
        .unwrap_or_default();
    privacy.honour_gpc = r.choice("globalPrivacyControl", &["honour", "ignore"]).as_deref() != Some("ignore");
}

fn read_messages(value: &Value, problems: &mut FieldProblems) -> Messages {
    let mut messages = Messages::default();
    let fields = &["subscribing", "failed", "close"];
    let Some(mut r) = ObjectReader::new(value, "messages", fields, problems) else {
        return messages;
    };
    for (key, slot, limit) in [
        ("subscribing", &mut messages.subscribing, MAX_MESSAGE_CHARS),
        ("failed", &mut messages.failed, MAX_MESSAGE_CHARS),
        ("close", &mut messages.close, MAX_BUTTON_CHARS),
    ] {
        let Some(text) = r.optional_string(key) else { continue };
        let chars = text.chars().count();
        if chars > limit {
            let path = r.path_of(key);
            r.problems()
                .push(path, format!("expected at most {limit} characters, got {chars}"));
        } else {
            *slot = text;
        }
    }
    messages
}

fn read_policy(value: &Value, problems: &mut FieldProblems) -> (Policy, bool) {
    let mut policy = Policy::default();
    let Some(mut r) = ObjectReader::new(value, "policy", POLICY_FIELDS, problems) else {
        return (policy, false);
    };
    if let Some(steps) = r.array("coolOffDays", read_days) {
        policy.cool_off_days = steps;
    }
    if let Some(seconds) = r.number_in("minGapSeconds", 0.0, 1.0e9, "a number of seconds >= 0") {
        policy.min_gap_ms = (seconds * 1000.0) as u64;
    }
    if let Some(n) = r.positive_integer("perSession") {
        policy.per_session = n.min(u64::from(u32::MAX)) as u32;
    }
    if let Some(n) = r.positive_integer("perWeek") {
        policy.per_week = n.min(u64::from(u32::MAX)) as u32;
    }
    if let Some(floor) = r.number_in("acceptRateFloor", 0.0, 1.0, "a share between 0 and 1") {
        policy.accept_rate_floor = floor;
    }
    if let Some(n) = r.positive_integer("acceptRateWindow") {
        policy.accept_rate_window = n.min(1000) as usize;
    }
    let warn = r.choice("copyChecks", &["reject", "warn"]).is_some_and(|c| c == "warn");
    (policy, warn)
}

fn read_days(value: &Value, path: String, problems: &mut FieldProblems) -> Option<u64> {
    match value.as_f64() {
        Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= 36_500.0 => Some(n as u64),
        _ => {
            problems.push(path, "expected a positive whole number of days");
            None
        }
    }
}

/// The user's id, its proof, its traits as rules compare them and as they
/// are sent.
type User = (
    Option<String>,
    Option<String>,
    SortedMap<crate::segment::Scalar>,
    Vec<(String, Value)>,
);

fn read_user(value: &Value, problems: &mut FieldProblems) -> User {
    let Some(mut r) = ObjectReader::new(value, "user", &["id", "proof", "traits"], problems) else {
        return Default::default();
    };
    let id = r.optional_string("id");
    let proof = r.optional_string("proof");
    if proof.is_some() && id.is_none() {
        r.problems().push("user.proof", "a proof needs user.id");
    }
    let sent = match r.get("traits") {
        None => Vec::new(),
        Some(value) => {
            let value = value.clone();
            crate::funnel::read_traits(&value, "user.traits", r.problems())
        }
    };
    // `null` (a deletion on the server) is no value for a rule to compare.
    // Inserted one by one: `collect` into a map sorts (4 kB of wasm).
    let mut traits = SortedMap::new();
    for (name, value) in &sent {
        if let Some(scalar) = crate::segment::as_scalar(value) {
            traits.insert(name.clone(), scalar);
        }
    }
    (id, proof, traits, sent)
}

fn read_prompt(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Prompt> {
    let mut r = ObjectReader::new(value, path.clone(), PROMPT_FIELDS, problems)?;
    let id = r.string("id");
    let kind = match r.choice("kind", &["push", "action", "help"]).as_deref() {
        Some("action") => Kind::Action,
        Some("help") => Kind::Help,
        _ => Kind::Push,
    };
    let placement = read_placement(&mut r);
    let variants = read_variants(&mut r, &path);
    let holdout = r
        .number_in("holdout", 0.0, 0.99, "a share from 0 to 0.99")
        .unwrap_or(0.0);
    let topic = r.optional_string("topic");
    let topic_label = r.optional_string("topicLabel");
    let url = r.optional_string("url");
    let help = r.optional_string("help");
    let cool_off_days = r.array("coolOffDays", read_days);
    let push_only = [
        ("topic", topic.is_some()),
        ("topicLabel", topic_label.is_some()),
        ("help", help.is_some()),
    ];
    if let (true, Some((field, _))) = (kind != Kind::Push, push_only.iter().find(|(_, set)| *set)) {
        let at = r.path_of(field);
        r.problems().push(at, "only push prompts have this");
    }
    Some(Prompt {
        id: id?,
        kind,
        placement,
        variants,
        holdout,
        topic,
        topic_label,
        url,
        help,
        cool_off_days,
    })
}

fn read_placement(r: &mut ObjectReader<'_, '_>) -> Placement {
    let anchor = r.optional_string("anchor");
    match r.choice("placement", &["banner", "modal", "inline"]).as_deref() {
        Some("modal") => Placement::Modal,
        Some("inline") => match anchor {
            Some(selector) => Placement::Inline(selector),
            None => {
                let at = r.path_of("anchor");
                r.problems()
                    .push(at, "required for placement \"inline\": a CSS selector");
                Placement::Banner
            }
        },
        _ => Placement::Banner,
    }
}

fn read_variants(r: &mut ObjectReader<'_, '_>, path: &str) -> Vec<Variant> {
    // The prompt's buttons are every variant's defaults: variants usually
    // test the message, not the buttons.
    let accept = r.optional_string("accept").unwrap_or_else(|| "Yes".into());
    let decline = r.optional_string("decline").unwrap_or_else(|| "Not now".into());
    if r.get("variants").is_some() {
        if r.get("message").is_some() {
            let at = r.path_of("message");
            r.problems().push(at, "give either message or variants, not both");
        }
        let buttons = (accept.as_str(), decline.as_str());
        let variants = r
            .array("variants", |v, at, problems| read_variant(v, at, problems, buttons))
            .unwrap_or_default();
        if variants.is_empty() {
            let at = r.path_of("variants");
            r.problems().push(at, "expected at least one variant");
        }
        for (i, v) in variants.iter().enumerate() {
            if variants[..i].iter().any(|w| w.id == v.id) {
                r.problems()
                    .push(format!("{path}.variants[{i}].id"), "duplicate variant id");
            }
        }
        return variants;
    }
    let message = r.string("message").unwrap_or_default();
    vec![Variant {
        id: "default".into(),
        weight: 1.0,
        message,
        accept,
        decline,
    }]
}

fn read_variant(
    value: &Value,
    path: String,
    problems: &mut FieldProblems,
    (accept, decline): (&str, &str),
) -> Option<Variant> {
    let mut r = ObjectReader::new(value, path, VARIANT_FIELDS, problems)?;
    let id = r.string("id");
    let weight = r.number_in("weight", 0.0, 1.0e6, "a weight >= 0").unwrap_or(1.0);
    let message = r.string("message");
    let accept = r.optional_string("accept").unwrap_or_else(|| accept.into());
    let decline = r.optional_string("decline").unwrap_or_else(|| decline.into());
    Some(Variant {
        id: id?,
        weight,
        message: message?,
        accept,
        decline,
    })
}

fn read_rule(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Rule> {
    let mut r = ObjectReader::new(value, path.clone(), &["prompt", "on", "when"], problems)?;
    let prompt = r.string("prompt");
    let when = match (r.get("on"), r.get("when")) {
        (Some(_), None) => r.optional_string("on").map(|name| Condition::Action {
            name,
            occurrence: Occurrence::Each,
        }),
        (None, Some(when)) => read_condition(when, r.path_of("when"), r.problems()),
        _ => {
            r.problems().push(
                format!("{path}.when"),
                "give exactly one of on (an action name) or when (a condition)",
            );
            None
        }
    };
    if let Some(condition) = &when {
        if !condition.has_event() {
            let at = r.path_of("when");
            r.problems().push(
                at,
                "needs an action, pageViews, timeOnPageSeconds or returnAfterDays to fire on",
            );
        }
    }
    Some(Rule {
        prompt: prompt?,
        when: when?,
    })
}

/// Reads one condition: an object with exactly one defining key.
fn read_condition(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Condition> {
    const KINDS: &[&str] = &[
        "action",
        "pageViews",
        "timeOnPageSeconds",
        "returnAfterDays",
        "path",
        "trait",
        "topic",
        "permission",
        "all",
        "any",
        "not",
    ];
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
        ["action"] => read_action(value, path, problems),
        ["all" | "any"] => read_group(value, path, kinds[0], problems),
        ["not"] => {
            let mut r = ObjectReader::new(value, path, &["not"], problems)?;
            let inner = r.get("not")?;
            let at = r.path_of("not");
            read_condition(inner, at, r.problems()).map(|c| Condition::Not(Box::new(c)))
        }
        ["trait" | "topic"] => crate::segment::read_page_atom(value, path, problems).map(Condition::Segment),
        [kind] => read_simple(value, path, kind, problems),
        [] if server_only(members).is_some() => {
            let key = server_only(members).unwrap_or_default();
            problems.push(
                format!("{path}.{key}"),
                "a fact only the server holds: use it in a segment (POST /v1/notify to: { where })",
            );
            None
        }
        _ => {
            problems.push(path, format!("expected exactly one of: {}", KINDS.join(", ")));
            None
        }
    }
}

/// The first member of a condition that names a segment condition only the
/// server can judge (the user's events, the device's age, browser, bucket).
fn server_only(members: &[(String, Value)]) -> Option<&str> {
    const SERVER_ONLY: &[&str] = &[
        "active_within",
        "inactive_for",
        "event",
        "subscribed_for",
        "browser",
        "bucket",
    ];
    members
        .iter()
        .map(|(key, _)| key.as_str())
        .find(|key| SERVER_ONLY.contains(key))
}

fn read_action(value: &Value, path: String, problems: &mut FieldProblems) -> Option<Condition> {
    let fields = ["action", "nth", "every", "count", "withinMinutes", "milestone"];
    let mut r = ObjectReader::new(value, path.clone(), &fields, problems)?;
    let name = r.string("action");
    let nth = r.positive_integer("nth").map(Occurrence::Nth);
    let every = r.positive_integer("every").map(Occurrence::Every);
    let milestone = r.positive_integer("milestone").map(Occurrence::Milestone);
    let count = r.positive_integer("count");
    let within = r.positive_integer("withinMinutes");
    let windowed = match (count, within) {
        (Some(count), Some(m)) => Some(Occurrence::CountWithin {
            count,
            within_ms: minutes(m),
        }),
        (None, None) => None,
        _ => {
            r.problems()
                .push(format!("{path}.withinMinutes"), "count and withinMinutes go together");
            None
        }
    };
    let chosen: Vec<Occurrence> = [nth, every, milestone, windowed].into_iter().flatten().collect();
    if chosen.len() > 1 {
        r.problems()
            .push(path, "use at most one of nth, every, count/withinMinutes, milestone");
    }
    let occurrence = chosen.into_iter().next().unwrap_or(Occurrence::Each);
    Some(Condition::Action {
        name: name?,
        occurrence,
    })
}

fn read_group(value: &Value, path: String, kind: &str, problems: &mut FieldProblems) -> Option<Condition> {
    let mut r = ObjectReader::new(value, path, &[kind], problems)?;
    let items = r.array(kind, read_condition)?;
    if items.is_empty() {
        let at = r.path_of(kind);
        r.problems().push(at, "expected at least one condition");
    }
    Some(if kind == "all" {
        Condition::All(items)
    } else {
        Condition::Any(items)
    })
}

fn read_simple(value: &Value, path: String, kind: &str, problems: &mut FieldProblems) -> Option<Condition> {
    let mut r = ObjectReader::new(value, path, &[kind], problems)?;
    match kind {
        "pageViews" => r.positive_integer(kind).map(Condition::PageViews),
        "timeOnPageSeconds" => r
            .positive_integer(kind)
            .map(|s| Condition::TimeOnPage(s.saturating_mul(1000))),
        "returnAfterDays" => r.positive_integer(kind).map(|d| Condition::ReturnAfter(days(d))),
        "path" => r.optional_string(kind).map(Condition::Path),
        _ => r
            .choice(kind, &["default", "granted", "denied", "unsupported"])
            .and_then(|p| Permission::parse(&p))
            .map(Condition::Permission),
    }
}

fn check_references(prompts: &[Prompt], rules: &[Rule], problems: &mut FieldProblems) {
    if prompts.len() > crate::state::SET_LIMIT {
        problems.push(
            "prompts",
            format!("expected at most {} prompts", crate::state::SET_LIMIT),
        );
    }
    for (i, prompt) in prompts.iter().enumerate() {
        if !crate::state::fits(&prompt.id) {
            problems.push(
                format!("prompts[{i}].id"),
                format!("expected at most {} bytes", crate::funnel::MAX_TEXT),
            );
        }
        if prompts[..i].iter().any(|p| p.id == prompt.id) {
            problems.push(format!("prompts[{i}].id"), "duplicate prompt id");
        }
        if let Some(help) = &prompt.help {
            if !prompts.iter().any(|p| &p.id == help && p.kind == Kind::Help) {
                problems.push(
                    format!("prompts[{i}].help"),
                    "expected the id of a prompt with kind \"help\"",
                );
            }
        }
    }
    for (i, rule) in rules.iter().enumerate() {
        if !prompts.iter().any(|p| p.id == rule.prompt) {
            problems.push(format!("rules[{i}].prompt"), "no prompt has this id");
        }
    }
}

fn check_copy(prompt: &Prompt, index: usize, problems: &mut FieldProblems) {
    let single = prompt.variants.len() == 1 && prompt.variants[0].id == "default";
    for (v, variant) in prompt.variants.iter().enumerate() {
        let at = if single {
            format!("prompts[{index}]")
        } else {
            format!("prompts[{index}].variants[{v}]")
        };
        let chars = Template::parse(&variant.message).literal_chars();
        if chars > MAX_MESSAGE_CHARS {
            problems.push(
                format!("{at}.message"),
                format!("expected at most {MAX_MESSAGE_CHARS} characters, got {chars}"),
            );
        }
        for (field, label) in [("accept", &variant.accept), ("decline", &variant.decline)] {
            let chars = label.chars().count();
            if chars > MAX_BUTTON_CHARS {
                problems.push(
                    format!("{at}.{field}"),
                    format!("expected at most {MAX_BUTTON_CHARS} characters, got {chars}"),
                );
            }
        }
        if is_confirm_shaming(&variant.decline) {
            problems.push(
                format!("{at}.decline"),
                "a decline must be plain (\"Not now\"), never confirm-shaming",
            );
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
