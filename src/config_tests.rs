use super::*;
use crate::value::from_json;

fn read(json: &str) -> Result<Config> {
    Config::read(&from_json(json))
}

fn errors(json: &str) -> String {
    read(json).expect_err("config should be invalid").to_string()
}

const CHAT: &str = r#"{
    "prompts": [{ "id": "reply", "message": "Want to know when {entity.name} replies?", "topic": "thread:{entity.id}" }],
    "rules": [{ "prompt": "reply", "on": "message_sent" }]
}"#;

#[test]
fn reads_a_minimal_config_with_defaults() {
    let config = read(CHAT).expect("valid");
    let prompt = &config.prompts[0];
    assert_eq!((prompt.kind, &prompt.placement), (Kind::Push, &Placement::Banner));
    assert_eq!(
        (prompt.variants[0].accept.as_str(), prompt.variants[0].decline.as_str()),
        ("Yes", "Not now")
    );
    assert_eq!(config.policy, Policy::default());
    assert_eq!(
        config.rules[0].when,
        Condition::Action {
            name: "message_sent".into(),
            occurrence: Occurrence::Each
        }
    );
}

#[test]
fn names_every_bad_field_by_path_in_one_error() {
    let text = errors(
        r#"{ "prompts": [{ "id": "a", "message": "Hi", "colour": "red" }, { "message": 5 }],
             "rules": [{ "prompt": "a", "on": "x" }, { "prompt": "a", "on": "y" },
                       { "prompt": "zzz", "when": { "action": "sent", "count": 0, "withinMinutes": 5 } }],
             "policy": { "perWeek": -1, "coolOffDays": [3, "x"] } }"#,
    );
    for expected in [
        "prompts[0].colour: unknown field",
        "prompts[1].id: required",
        "prompts[1].message: expected a non-empty string",
        "rules[2].prompt: no prompt has this id",
        "rules[2].when.count: expected a positive integer",
        "policy.perWeek: expected a positive integer",
        "policy.coolOffDays[1]: expected a positive whole number of days",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in: {text}");
    }
}

#[test]
fn reads_every_condition_form() {
    let config = read(
        r#"{ "prompts": [{ "id": "p", "message": "Hi?" }],
             "rules": [{ "prompt": "p", "when": { "all": [
                 { "any": [ { "action": "a", "nth": 2 }, { "action": "b", "every": 3 },
                            { "action": "c", "count": 3, "withinMinutes": 10 }, { "action": "d", "milestone": 5 },
                            { "pageViews": 4 }, { "timeOnPageSeconds": 30 }, { "returnAfterDays": 7 } ] },
                 { "path": "/chat/*" }, { "trait": "plan", "in": ["pro", "team"] },
                 { "not": { "permission": "denied" } } ] } }] }"#,
    )
    .expect("valid");
    let Condition::All(parts) = &config.rules[0].when else {
        panic!("expected all")
    };
    let Condition::Any(events) = &parts[0] else {
        panic!("expected any")
    };
    assert_eq!(events.len(), 7);
    assert_eq!(
        events[2],
        Condition::Action {
            name: "c".into(),
            occurrence: Occurrence::CountWithin {
                count: 3,
                within_ms: minutes(10)
            }
        }
    );
    assert_eq!(
        parts[3],
        Condition::Not(Box::new(Condition::Permission(Permission::Denied)))
    );
}

#[test]
fn a_rule_needs_something_to_fire_on() {
    let text = errors(
        r#"{ "prompts": [{ "id": "p", "message": "Hi?" }], "rules": [{ "prompt": "p", "when": { "path": "/" } }] }"#,
    );
    assert!(text.contains("rules[0].when: needs an action"), "{text}");
}

#[test]
fn copy_rules_reject_by_default_and_warn_on_request() {
    let prompt = format!(
        r#"{{ "id": "p", "message": "{}", "accept": "Yes please, absolutely", "decline": "No, I hate news" }}"#,
        "x".repeat(91)
    );
    let text = errors(&format!(r#"{{ "prompts": [{prompt}] }}"#));
    assert!(
        text.contains("prompts[0].message: expected at most 90 characters, got 91"),
        "{text}"
    );
    assert!(text.contains("prompts[0].accept: expected at most 15"), "{text}");
    assert!(text.contains("prompts[0].decline: a decline must be plain"), "{text}");
    let warned = read(&format!(
        r#"{{ "prompts": [{prompt}], "policy": {{ "copyChecks": "warn" }} }}"#
    ))
    .expect("warn only");
    assert_eq!(warned.warnings.0.len(), 3);
}

#[test]
fn variants_inline_placement_and_help() {
    let config = read(
        r##"{ "prompts": [
              { "id": "reply", "placement": "inline", "anchor": "#send", "holdout": 0.1, "help": "unblock",
                "variants": [ { "id": "a", "message": "Know when {entity.name} replies?" },
                              { "id": "b", "weight": 2, "message": "Get {entity.name}'s reply", "accept": "Notify me" } ] },
              { "id": "unblock", "kind": "help", "message": "Notifications are blocked. Here is how to allow them." } ] }"##,
    )
    .expect("valid");
    let reply = config.prompt("reply").expect("reply");
    assert_eq!(reply.placement, Placement::Inline("#send".into()));
    assert_eq!(
        reply.variants.iter().map(|v| v.weight).collect::<Vec<_>>(),
        vec![1.0, 2.0]
    );
    assert_eq!(reply.help.as_deref(), Some("unblock"));
    let text = errors(r#"{ "prompts": [{ "id": "p", "placement": "inline", "help": "nope", "message": "Hi?" }] }"#);
    assert!(text.contains("prompts[0].anchor: required"), "{text}");
    assert!(
        text.contains("prompts[0].help: expected the id of a prompt with kind \"help\""),
        "{text}"
    );
}

#[test]
fn traits_keep_their_type_as_segments_compare_them() {
    use crate::segment::Scalar;
    let config = read(r#"{ "prompts": [{ "id": "p", "message": "Hi?" }], "user": { "id": "u1", "traits": { "plan": "pro", "seats": 3, "beta": true } } }"#)
        .expect("valid");
    assert_eq!(config.traits["plan"], Scalar::Text("pro".into()));
    assert_eq!(config.traits["seats"], Scalar::Number(3.0));
    assert_eq!(config.traits["beta"], Scalar::Bool(true));
    assert_eq!(config.user_id.as_deref(), Some("u1"));
}

#[test]
fn trait_and_topic_conditions_are_read_by_the_segments_reader() {
    let rules = |when: &str| {
        format!(
            r#"{{ "prompts": [{{ "id": "p", "message": "Hi?" }}], "rules": [{{ "prompt": "p", "when": {{ "all": [{{ "action": "a" }}, {when}] }} }}] }}"#
        )
    };
    for when in [
        r#"{ "trait": "seats", "gte": 5 }"#,
        r#"{ "trait": "plan", "exists": true }"#,
        r#"{ "not": { "topic": "thread:*" } }"#,
    ] {
        assert!(read(&rules(when)).is_ok(), "{when}");
    }
    let long_topic = format!(r#"{{ "topic": "{}" }}"#, "t".repeat(201));
    for (when, message) in [
        (
            r#"{ "trait": "seats", "gte": "five" }"#,
            "rules[0].when.all[1].gte: expected a number",
        ),
        (
            r#"{ "trait": "plan" }"#,
            "rules[0].when.all[1].trait: expected exactly one of equals, in, exists, gte, lte beside it",
        ),
        (
            r#"{ "trait": "plan", "equals": "pro", "browser": "firefox" }"#,
            "rules[0].when.all[1].browser: unknown field",
        ),
        (
            long_topic.as_str(),
            "rules[0].when.all[1].topic: expected 1 to 200 characters",
        ),
        (
            r#"{ "browser": "firefox" }"#,
            "rules[0].when.all[1].browser: a fact only the server holds",
        ),
        (
            r#"{ "active_within": { "days": 7 } }"#,
            "rules[0].when.all[1].active_within: a fact only the server holds",
        ),
    ] {
        let text = errors(&rules(when));
        assert!(text.contains(message), "{when}: {text}");
    }
}

#[test]
fn user_traits_are_kept_as_sent_and_checked_with_the_servers_rules() {
    let config = read(r#"{ "prompts": [{ "id": "p", "message": "Hi?" }], "user": { "id": "u1", "traits": { "plan": "pro", "seats": 3, "trial": null } } }"#)
        .expect("valid");
    assert_eq!(
        config.user_traits,
        [
            ("plan".to_owned(), "pro".into()),
            ("seats".to_owned(), Value::Number(3.0)),
            ("trial".to_owned(), Value::Null),
        ]
    );
    assert!(
        !config.traits.contains_key("trial"),
        "a deletion is no value to compare"
    );
    let long = "x".repeat(201);
    let text = errors(&format!(
        r#"{{ "prompts": [{{ "id": "p", "message": "Hi?" }}], "user": {{ "id": "u1", "traits": {{ "plan": "{long}", "tags": ["a"] }} }} }}"#
    ));
    assert!(
        text.contains("user.traits.plan: a string of at most 200 bytes"),
        "{text}"
    );
    assert!(
        text.contains("user.traits.tags: expected a string, number, boolean or null"),
        "{text}"
    );
}

#[test]
fn a_user_proof_travels_with_its_user_id() {
    let config = read(r#"{ "prompts": [{ "id": "p", "message": "Hi?" }], "user": { "id": "u1", "proof": "ab12" } }"#)
        .expect("valid");
    assert_eq!(config.user_proof.as_deref(), Some("ab12"));
    let orphan = errors(r#"{ "prompts": [{ "id": "p", "message": "Hi?" }], "user": { "proof": "ab12" } }"#);
    assert!(orphan.contains("user.proof: a proof needs user.id"), "{orphan}");
}

#[test]
fn a_non_object_config_is_one_clear_error() {
    assert!(errors("[]").contains("expected an object"));
    assert!(errors("{}").contains("prompts: required"));
}

#[test]
fn variants_inherit_the_prompts_buttons() {
    let config = Config::read(&from_json(
        r#"{"prompts":[{"id":"p","accept":"Yes, notify me","variants":[{"id":"a","message":"One?"},{"id":"b","message":"Two?","decline":"Later"}]}],
            "rules":[{"prompt":"p","on":"x"}]}"#,
    ))
    .expect("valid");
    let variants = &config.prompts[0].variants;
    assert_eq!(
        (variants[0].accept.as_str(), variants[0].decline.as_str()),
        ("Yes, notify me", "Not now")
    );
    assert_eq!(
        (variants[1].accept.as_str(), variants[1].decline.as_str()),
        ("Yes, notify me", "Later")
    );
}

#[test]
fn no_server_means_none_and_an_empty_server_means_this_origin() {
    assert_eq!(read(CHAT).expect("valid").server, None, "no server: no requests");
    let same_origin = CHAT.replacen('{', r#"{ "server": "", "#, 1);
    assert_eq!(read(&same_origin).expect("valid").server.as_deref(), Some(""));
    let remote = CHAT.replacen('{', r#"{ "server": "https://push.example.com/", "#, 1);
    assert_eq!(
        read(&remote).expect("valid").server.as_deref(),
        Some("https://push.example.com/")
    );
    let wrong = CHAT.replacen('{', r#"{ "server": 5, "#, 1);
    assert!(
        errors(&wrong).contains("server: expected a string"),
        "{}",
        errors(&wrong)
    );
}

#[test]
fn reads_consent_telemetry_and_debug() {
    let config = read(&CHAT.replacen(
        '{',
        r#"{ "consent": "required", "debug": true,
             "telemetry": { "send": "necessary", "necessary": ["prompt_accepted"], "globalPrivacyControl": "ignore" }, "#,
        1,
    ))
    .expect("valid");
    assert!(config.debug);
    assert_eq!(
        config.privacy,
        crate::privacy::Privacy {
            consent_required: true,
            telemetry: crate::privacy::Telemetry::Necessary,
            necessary: vec![crate::model::EventKind::PromptAccepted],
            honour_gpc: false,
        }
    );
    let off = read(&CHAT.replacen('{', r#"{ "telemetry": false, "#, 1)).expect("valid");
    assert_eq!(off.privacy.telemetry, crate::privacy::Telemetry::None);
    let text = errors(&CHAT.replacen(
        '{',
        r#"{ "consent": "maybe", "telemetry": { "send": "some", "necessary": ["prompt_seen"] }, "#,
        1,
    ));
    assert!(
        text.contains("consent: expected one of: required, not-required"),
        "{text}"
    );
    assert!(
        text.contains("telemetry.send: expected one of: all, necessary, none"),
        "{text}"
    );
    assert!(
        text.contains("telemetry.necessary[0]: expected one of: prompt_shown"),
        "{text}"
    );
}

#[test]
fn the_status_copy_after_yes_has_defaults_and_can_be_replaced() {
    let defaults = read(CHAT).expect("valid").messages;
    assert_eq!(defaults.close, "Close");
    let config = read(&CHAT.replacen(
        '{',
        r#"{ "messages": { "subscribing": "Einen Moment…", "failed": "Das hat nicht geklappt.", "close": "Schließen" }, "#,
        1,
    ))
    .expect("valid");
    assert_eq!(
        (
            config.messages.subscribing.as_str(),
            config.messages.failed.as_str(),
            config.messages.close.as_str()
        ),
        ("Einen Moment…", "Das hat nicht geklappt.", "Schließen")
    );
    let long = errors(&CHAT.replacen('{', r#"{ "messages": { "close": "Close this message now" }, "#, 1));
    assert!(
        long.contains("messages.close: expected at most 15 characters"),
        "{long}"
    );
}

#[test]
fn forward_lists_action_names_and_names_each_bad_one() {
    assert!(
        read(CHAT).expect("valid").forward.is_empty(),
        "nothing is forwarded by default"
    );
    let config = read(&CHAT.replacen(
        '{',
        r#"{ "forward": ["added_to_cart", "checkout.started", "plan:upgraded-1"], "#,
        1,
    ))
    .expect("valid");
    assert_eq!(config.forward, ["added_to_cart", "checkout.started", "plan:upgraded-1"]);
    let text = errors(&CHAT.replacen('{', r#"{ "forward": ["ok", "", 7, "two words", "ok_too"], "#, 1));
    for bad in ["forward[1]", "forward[2]", "forward[3]"] {
        assert!(
            text.contains(&format!(
                "{bad}: expected an action name: 1 to 64 of A-Z a-z 0-9 _ . : -"
            )),
            "{text}"
        );
    }
    assert!(!text.contains("forward[0]") && !text.contains("forward[4]"), "{text}");
    let long = format!(r#"{{ "forward": ["{}"], "#, "x".repeat(65));
    assert!(errors(&CHAT.replacen('{', &long, 1)).contains("forward[0]: expected an action name"));
    let names: Vec<String> = (0..=MAX_FORWARD).map(|i| format!("\"a{i}\"")).collect();
    let many = format!(r#"{{ "forward": [{}], "#, names.join(","));
    assert!(
        errors(&CHAT.replacen('{', &many, 1)).contains("forward: expected at most 32 action names"),
        "33 names"
    );
    assert!(errors(&CHAT.replacen('{', r#"{ "forward": "added_to_cart", "#, 1)).contains("forward: expected an array"));
}
