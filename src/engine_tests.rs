use proptest::prelude::*;

use super::*;
use crate::rules::days;
use crate::value::from_json;

const CHAT: &str = r#"{
    "prompts": [
        { "id": "reply", "message": "Want to know when {entity.name} replies?", "topic": "thread:{entity.id}", "help": "unblock" },
        { "id": "unblock", "kind": "help", "message": "Notifications are blocked for this site." }
    ],
    "rules": [{ "prompt": "reply", "on": "message_sent" }]
}"#;

fn engine(json: &str) -> Engine {
    let config = Config::read(&from_json(json)).expect("valid config");
    Engine::new(
        config,
        State {
            anon_id: "anon-1".into(),
            ..State::default()
        },
        Session::default(),
    )
}

fn message_to(name: &str) -> Signal {
    Signal::Action {
        name: "message_sent".into(),
        entity: Some(Entity {
            id: name.to_lowercase(),
            name: name.into(),
            avatar: None,
        }),
        topic: None,
    }
}

fn env(permission: Permission, now_ms: u64) -> Env<'static> {
    Env {
        path: "/chat",
        permission,
        now_ms,
    }
}

/// A new tab session (the per-session budget starts over).
fn new_session(engine: &mut Engine) {
    engine.session = Session::default();
}

#[test]
fn asks_in_context_about_the_entity() {
    let mut engine = engine(CHAT);
    let proposal = engine
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect("a prompt");
    assert_eq!(proposal.message, "Want to know when \u{2068}Bill\u{2069} replies?");
    assert_eq!(
        (proposal.topic.as_deref(), proposal.offer),
        (Some("thread:bill"), Offer::Permission)
    );
    assert_eq!(
        (proposal.trigger.as_str(), proposal.variant.as_str()),
        ("message_sent", "default")
    );
}

#[test]
fn not_now_cools_off_three_then_seven_days() {
    let mut engine = engine(CHAT);
    let proposal = engine
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect("first ask");
    engine.shown(0);
    engine.dismissed(&proposal, 0);
    new_session(&mut engine);
    let skip = engine
        .observe(&message_to("Bill"), &env(Permission::Default, days(1)))
        .expect_err("cooling off");
    assert_eq!(skip, Skip::Suppressed("reply".into(), Suppressed::CoolingOff(days(3))));
    let again = engine
        .observe(&message_to("Bill"), &env(Permission::Default, days(3)))
        .expect("after 3 days");
    engine.shown(days(3));
    engine.dismissed(&again, days(3));
    new_session(&mut engine);
    assert!(engine
        .observe(&message_to("Bill"), &env(Permission::Default, days(9)))
        .is_err());
    assert!(engine
        .observe(&message_to("Bill"), &env(Permission::Default, days(10)))
        .is_ok());
}

#[test]
fn one_prompt_at_a_time_and_one_per_session() {
    let mut engine = engine(CHAT);
    engine
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect("ask");
    engine.shown(0);
    assert_eq!(
        engine.observe(&message_to("Ann"), &env(Permission::Default, 1)),
        Err(Skip::PromptOpen)
    );
    engine.closed();
    let later = env(Permission::Default, 60_000);
    assert_eq!(
        engine.observe(&message_to("Ann"), &later),
        Err(Skip::Suppressed("reply".into(), Suppressed::SessionBudget))
    );
}

#[test]
fn blocked_notifications_offer_help_instead_of_a_native_prompt() {
    let mut engine = engine(CHAT);
    let proposal = engine
        .observe(&message_to("Bill"), &env(Permission::Denied, 0))
        .expect("help prompt");
    assert_eq!((proposal.prompt.as_str(), proposal.offer), ("unblock", Offer::Plain));
    let mut no_help = self::engine(
        r#"{ "prompts": [{ "id": "reply", "message": "Hi?" }], "rules": [{ "prompt": "reply", "on": "message_sent" }] }"#,
    );
    let skip = no_help
        .observe(&message_to("Bill"), &env(Permission::Denied, 0))
        .expect_err("never native");
    assert_eq!(skip, Skip::Suppressed("reply".into(), Suppressed::PermissionDenied));
}

#[test]
fn subscribed_users_are_only_asked_about_new_topics() {
    let mut engine = engine(CHAT);
    engine.subscription_changed(Some("thread:bill"), true);
    let skip = engine
        .observe(&message_to("Bill"), &env(Permission::Granted, 0))
        .expect_err("already subscribed");
    assert_eq!(skip, Skip::Suppressed("reply".into(), Suppressed::AlreadySubscribed));
    let ann = engine
        .observe(&message_to("Ann"), &env(Permission::Granted, 1))
        .expect("new topic");
    assert_eq!((ann.offer, ann.topic.as_deref()), (Offer::AddTopic, Some("thread:ann")));
}

#[test]
fn never_asks_again_for_an_accepted_topic() {
    let mut engine = engine(CHAT);
    let proposal = engine
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect("ask");
    engine.shown(0);
    engine.accepted(&proposal);
    new_session(&mut engine);
    let skip = engine
        .observe(&message_to("Bill"), &env(Permission::Default, days(100)))
        .expect_err("accepted");
    assert_eq!(skip, Skip::Suppressed("reply".into(), Suppressed::AlreadyAccepted));
}

#[test]
fn a_low_native_accept_rate_stops_push_prompts() {
    let mut engine = engine(CHAT);
    for _ in 0..10 {
        engine.native_answered(false);
    }
    let skip = engine
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect_err("guarded");
    assert_eq!(skip, Skip::Suppressed("reply".into(), Suppressed::AcceptRateGuard));
}

#[test]
fn holdout_users_never_see_the_prompt_and_variants_are_sticky() {
    let json = r#"{ "prompts": [{ "id": "reply", "holdout": 0.5, "variants": [
        { "id": "a", "message": "A {entity.name}?" }, { "id": "b", "message": "B {entity.name}?" } ] }],
        "rules": [{ "prompt": "reply", "on": "message_sent" }] }"#;
    let (mut holdouts, mut seen) = (0, crate::sorted::SortedSet::new());
    for i in 0..200 {
        let mut engine = engine(json);
        engine.state.anon_id = format!("anon-{i}");
        match engine.observe(&message_to("Bill"), &env(Permission::Default, 0)) {
            Err(Skip::Holdout(_)) => holdouts += 1,
            Ok(p) => {
                let again = engine
                    .clone()
                    .observe(&message_to("Bill"), &env(Permission::Default, 0))
                    .map(|q| q.variant);
                assert!(again.is_err() || again.as_deref() == Ok(p.variant.as_str()));
                seen.insert(p.variant);
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!((70..130).contains(&holdouts), "{holdouts} of 200 in the holdout");
    assert_eq!(seen.len(), 2);
}

/// One step of a random user's life with the page.
#[derive(Debug, Clone)]
enum Step {
    Wait(u64),
    NewSession,
    Message(u8),
    Answer(bool),
    NativeAnswer(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u64..days(10)).prop_map(Step::Wait),
        Just(Step::NewSession),
        (0u8..3).prop_map(Step::Message),
        any::<bool>().prop_map(Step::Answer),
        any::<bool>().prop_map(Step::NativeAnswer),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// No sequence of actions ever shows a prompt inside its cool-off, more
    /// often than the budgets allow, or a native prompt when blocked.
    #[test]
    fn no_sequence_breaks_the_policy(steps in prop::collection::vec(step(), 1..60), denied in any::<bool>()) {
        let mut engine = engine(CHAT);
        let permission = if denied { Permission::Denied } else { Permission::Default };
        let (mut now, mut open): (u64, Option<Proposal>) = (0, None);
        let mut shown_at: Vec<u64> = Vec::new();
        let mut dismissed_at: Vec<u64> = Vec::new();
        for step in steps {
            match step {
                Step::Wait(ms) => now += ms,
                Step::NewSession => new_session(&mut engine),
                Step::Message(who) => {
                    let name = ["Bill", "Ann", "Cy"][usize::from(who)];
                    if let Ok(p) = engine.observe(&message_to(name), &env(permission, now)) {
                        prop_assert!(open.is_none(), "two prompts on screen");
                        prop_assert!(!(denied && p.offer == Offer::Permission), "native prompt while denied");
                        if let Some(last) = dismissed_at.last() {
                            if p.prompt == "reply" {
                                prop_assert!(now >= last + days(3), "shown inside the cool-off");
                            }
                        }
                        prop_assert!(shown_at.last().is_none_or(|t| now >= t + 30_000), "two prompts within 30 s");
                        let week = shown_at.iter().filter(|t| **t + days(7) > now).count();
                        prop_assert!(week < 3, "weekly budget exceeded");
                        engine.shown(now);
                        shown_at.push(now);
                        open = Some(p);
                    }
                }
                Step::Answer(yes) => {
                    if let Some(p) = open.take() {
                        if yes { engine.accepted(&p) } else {
                            engine.dismissed(&p, now);
                            if p.prompt == "reply" { dismissed_at.push(now); }
                        }
                    }
                }
                Step::NativeAnswer(granted) => engine.native_answered(granted),
            }
        }
    }
}

#[test]
fn merging_another_tabs_activity_keeps_this_tabs_unsaved_actions() {
    use crate::rules::Activity;
    let mut mine = Activity::default();
    mine.totals.insert("episode_finished".into(), 1);
    mine.recent.insert("episode_finished".into(), vec![10]);
    mine.page_views = 2;
    let mut theirs = Activity::default();
    theirs.totals.insert("message_sent".into(), 4);
    theirs.recent.insert("episode_finished".into(), vec![5, 10]);
    theirs.page_views = 1;
    theirs.last_seen_ms = Some(7);
    // The adopted state is theirs with ours folded in.
    let mut adopted = theirs.clone();
    adopted.merge(&mine);
    assert_eq!(
        adopted.totals.get("episode_finished"),
        Some(&1),
        "our unsaved action survives"
    );
    assert_eq!(adopted.totals.get("message_sent"), Some(&4));
    assert_eq!(adopted.recent.get("episode_finished"), Some(&vec![5, 10]));
    assert_eq!((adopted.page_views, adopted.last_seen_ms), (2, Some(7)));
}

#[test]
fn isolates_every_inserted_name_so_right_to_left_text_cannot_flip_the_copy() {
    let mut engine = engine(CHAT);
    // An unterminated right-to-left override in a user-chosen name.
    let proposal = engine
        .observe(&message_to("\u{202e}llib"), &env(Permission::Default, 0))
        .expect("a prompt");
    assert_eq!(
        proposal.message, "Want to know when \u{2068}\u{202e}llib\u{2069} replies?",
        "the name is wrapped in FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE"
    );
    assert_eq!(
        proposal.topic.as_deref(),
        Some("thread:\u{202e}llib"),
        "ids are not decorated"
    );
}

#[test]
fn a_yes_whose_subscription_failed_is_finished_later_with_backoff() {
    let mut engine = engine(CHAT);
    let proposal = engine
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect("a prompt");
    engine.shown(0);
    engine.accepted(&proposal);
    assert!(
        !engine.retry_due(0, Permission::Default),
        "nothing to do without permission"
    );
    assert!(engine.retry_due(0, Permission::Granted), "the Yes waits to be finished");
    let pending = engine.pending_yes().expect("pending");
    assert_eq!(
        (pending.0.as_slice(), pending.1.prompt.as_str()),
        (&["thread:bill".to_owned()][..], "reply")
    );
    let minute = 60_000;
    engine.subscribe_failed(0);
    assert!(!engine.retry_due(minute - 1, Permission::Granted), "backs off");
    assert!(engine.retry_due(minute, Permission::Granted));
    engine.subscribe_failed(minute);
    assert!(
        !engine.retry_due(minute + 9 * minute, Permission::Granted),
        "longer the second time"
    );
    assert!(engine.retry_due(minute + 10 * minute, Permission::Granted));
    engine.subscription_changed(Some("thread:bill"), true);
    assert!(!engine.retry_due(u64::MAX, Permission::Granted), "finished");
    assert_eq!(engine.state.retry, crate::state::Retry::default(), "backoff reset");
}

#[test]
fn a_yes_refused_at_the_browser_prompt_is_not_retried() {
    let mut engine = engine(CHAT);
    let proposal = engine
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect("a prompt");
    engine.accepted(&proposal);
    engine.permission_refused();
    assert!(!engine.retry_due(0, Permission::Granted));
}

#[test]
fn unsubscribing_drops_a_pending_yes() {
    let mut engine = engine(CHAT);
    let proposal = engine
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect("a prompt");
    engine.accepted(&proposal);
    engine.subscription_changed(None, false);
    assert!(
        !engine.retry_due(0, Permission::Granted),
        "the person unsubscribed since"
    );
}

/// The state as the next visit reads it back from storage (the test's
/// anonymous id is not one the page generates, so it is carried over).
fn reread(engine: &Engine, now_ms: u64) -> State {
    State {
        anon_id: engine.state.anon_id.clone(),
        ..State::from_value(&engine.state.to_value(), now_ms)
    }
}

#[test]
fn a_topic_longer_than_the_server_takes_is_not_asked_about() {
    // Found by the config fuzz target: a long entity id rendered a topic the
    // state kept but could not read back.
    let mut engine = engine(CHAT);
    let long = message_to(&"b".repeat(crate::funnel::MAX_TEXT));
    let skip = engine
        .observe(&long, &env(Permission::Default, 0))
        .expect_err("unstorable");
    assert_eq!(skip, Skip::Suppressed("reply".into(), Suppressed::Unstorable));
    assert_eq!(reread(&engine, 1), engine.state);
}

#[test]
fn a_device_keeps_at_most_its_topic_limit_and_asks_no_further() {
    let mut engine = engine(CHAT);
    for i in 0..crate::state::SET_LIMIT {
        engine.subscription_changed(Some(&format!("thread:{i}")), true);
    }
    let skip = engine
        .observe(&message_to("Ann"), &env(Permission::Granted, 0))
        .expect_err("full");
    assert_eq!(skip, Skip::Suppressed("reply".into(), Suppressed::Unstorable));
    assert_eq!(reread(&engine, 1), engine.state);
}

#[test]
fn actions_beyond_the_counted_names_are_not_stored_and_the_state_reads_back() {
    let mut engine = engine(CHAT);
    let limit = crate::state::ACTION_LIMIT;
    for i in 0..limit + 10 {
        let signal = Signal::Action {
            name: format!("action-{i:04}"),
            entity: None,
            topic: None,
        };
        let _ = engine.observe(&signal, &env(Permission::Default, i as u64));
    }
    let long = Signal::Action {
        name: "x".repeat(10_000),
        entity: None,
        topic: None,
    };
    let _ = engine.observe(&long, &env(Permission::Default, 1_000));
    assert_eq!(engine.state.activity.totals.len(), limit);
    assert_eq!(engine.state.activity.recent.len(), limit);
    assert_eq!(engine.state.activity.last_seen_ms, Some(1_000), "still activity");
    assert_eq!(reread(&engine, 2_000), engine.state);
}

#[test]
fn a_topic_label_is_rendered_for_the_preference_centre_and_cut_to_the_servers_limit() {
    let chat = CHAT.replace(
        r#""topic": "thread:{entity.id}","#,
        r#""topic": "thread:{entity.id}", "topicLabel": "Replies from {entity.name}","#,
    );
    let mut labelled = engine(&chat);
    let proposal = labelled
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect("a prompt");
    assert_eq!(
        proposal.topic_label.as_deref(),
        Some("Replies from \u{2068}Bill\u{2069}")
    );

    let mut long = engine(&chat);
    let long_name = Signal::Action {
        name: "message_sent".into(),
        entity: Some(Entity {
            id: "bill".into(),
            name: "B".repeat(300),
            avatar: None,
        }),
        topic: None,
    };
    let proposal = long
        .observe(&long_name, &env(Permission::Default, 0))
        .expect("a prompt");
    let label = proposal.topic_label.expect("a label");
    assert_eq!(
        label.chars().count(),
        MAX_TOPIC_LABEL_CHARS,
        "cut, so the subscription is not refused"
    );
    assert!(label.starts_with("Replies from \u{2068}BBB"));

    let mut unlabelled = engine(CHAT);
    let proposal = unlabelled
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect("a prompt");
    assert_eq!(
        proposal.topic_label, None,
        "without topicLabel the centre shows the topic's name"
    );
}

#[test]
fn only_push_prompts_take_a_topic_label() {
    let config = r#"{ "prompts": [{ "id": "deals", "kind": "action", "message": "Deals?", "topicLabel": "Deals" }],
        "rules": [{ "prompt": "deals", "on": "viewed" }] }"#;
    let problems = Config::read(&from_json(config)).expect_err("refused");
    assert!(problems.to_string().contains("prompts[0].topicLabel"), "{problems}");
}

#[test]
fn rules_judge_typed_traits_and_the_subscriptions_topics_as_segments_do() {
    let config = r#"{
        "prompts": [{ "id": "digest", "message": "Get the weekly digest?" }],
        "rules": [{ "prompt": "digest", "when": { "all": [
            { "action": "message_sent" },
            { "trait": "seats", "gte": 5 },
            { "topic": "thread:*" },
            { "not": { "topic": "digest" } }
        ] } }],
        "user": { "id": "u1", "traits": { "seats": 7 } }
    }"#;
    let mut many = engine(config);
    let skip = many
        .observe(&message_to("Bill"), &env(Permission::Default, 0))
        .expect_err("no thread topic yet");
    assert_eq!(skip, Skip::NoRule);
    many.subscription_changed(Some("thread:bill"), true);
    let shown = many
        .observe(&message_to("Bill"), &env(Permission::Granted, 1))
        .expect("seats ≥ 5 and on a thread");
    assert_eq!(shown.prompt, "digest");

    let few = config.replace(r#""seats": 7"#, r#""seats": "7""#);
    let mut text = engine(&few);
    text.subscription_changed(Some("thread:bill"), true);
    assert_eq!(
        text.observe(&message_to("Bill"), &env(Permission::Granted, 1))
            .expect_err("text"),
        Skip::NoRule,
        "the text \"7\" is no number, as on the server"
    );
}
