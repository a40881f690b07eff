//! The page config reader: bytes → the `Value` a page's config object becomes
//! → `Config::read`, which must answer `Ok` or `InvalidConfig` naming at least
//! one field, never panic. An accepted config then drives the engine through
//! a day of signals (its rules' actions, page views, ticks, every permission,
//! answers and cool-offs), so rule, template, experiment and policy code sees
//! every shape a valid config can take.
#![no_main]

use askwell::config::Config;
use askwell::engine::{Engine, Env};
use askwell::rules::{Condition, Entity, Permission, Session, Signal};
use askwell::state::State;
use askwell::Error;
use askwell_fuzz::{parse, Dialect};
use libfuzzer_sys::fuzz_target;

const START_MS: u64 = 1_700_000_000_000;
const DAY_MS: u64 = 86_400_000;

fuzz_target!(|data: &[u8]| {
    let Some(value) = parse(data, Dialect::JsObject) else {
        return;
    };
    match Config::read(&value) {
        Ok(config) => drive(config),
        Err(Error::InvalidConfig(problems)) => {
            assert!(!problems.0.is_empty(), "rejected without naming a field");
            let _ = problems.to_string();
        }
        Err(other) => panic!("the config reader answered {other:?}"),
    }
});

fn drive(config: Config) {
    let mut actions = Vec::new();
    let mut paths = vec!["/".to_owned()];
    for rule in &config.rules {
        walk(&rule.when, &mut actions, &mut paths);
    }
    actions.truncate(8);
    paths.truncate(4);
    let tick = config.rules.iter().filter_map(|r| r.when.min_time_on_page()).min();
    assert_eq!(
        tick,
        Engine::new(config.clone(), State::default(), Session::default()).next_tick_ms()
    );
    let state = State {
        anon_id: "0123456789abcdef0123456789abcdef".into(),
        ..State::default()
    };
    let mut engine = Engine::new(config, state, Session::default());
    let permissions = [
        Permission::Default,
        Permission::Granted,
        Permission::Denied,
        Permission::Unsupported,
    ];
    let mut now = START_MS;
    for (round, permission) in permissions.into_iter().cycle().take(8).enumerate() {
        let path = &paths[round % paths.len()];
        let mut signals = vec![Signal::PageView];
        signals.extend(actions.iter().map(|name| Signal::Action {
            name: name.clone(),
            entity: Some(Entity {
                id: "bill".into(),
                name: "Bill".into(),
                avatar: None,
            }),
            topic: (round % 3 == 0).then(|| format!("topic:{round}")),
        }));
        signals.push(Signal::Tick);
        for signal in &signals {
            let env = Env {
                path,
                permission,
                now_ms: now,
            };
            if let Ok(proposal) = engine.observe(signal, &env) {
                assert!(engine.config().prompt(&proposal.prompt).is_some(), "{proposal:?}");
                engine.shown(now);
                match round % 3 {
                    0 => engine.accepted(&proposal),
                    1 => engine.dismissed(&proposal, now),
                    _ => engine.closed(),
                }
                engine.native_answered(round % 2 == 0);
                engine.subscription_changed(proposal.topic.as_deref(), round % 4 != 3);
            }
            now += tick.unwrap_or(1_000).min(DAY_MS);
        }
        // The next page: a new engine over the state the last one left.
        let session = Session {
            page_start_ms: now,
            ..Session::default()
        };
        engine = Engine::new(engine.config().clone(), engine.state().clone(), session);
        now += DAY_MS * (1 + round as u64 * 3);
    }
    let stored = engine.state().to_value();
    assert_eq!(
        &State::from_value(&stored, now),
        engine.state(),
        "the state survives storage"
    );
}

/// Collects the action names and path patterns a condition mentions.
fn walk(condition: &Condition, actions: &mut Vec<String>, paths: &mut Vec<String>) {
    match condition {
        Condition::Action { name, .. } => actions.push(name.clone()),
        Condition::Path(pattern) => paths.push(pattern.replace('*', "x/y")),
        Condition::All(all) | Condition::Any(all) => {
            for c in all {
                walk(c, actions, paths);
            }
        }
        Condition::Not(c) => walk(c, actions, paths),
        _ => {}
    }
}
