use proptest::prelude::*;

use super::*;
use crate::journey::zone;
use crate::value::from_json;

fn policy(json: &str) -> DeliveryPolicy {
    DeliveryPolicy::read(&from_json(json)).expect("valid policy")
}

fn tz(name: &str) -> TimeZone {
    zone(name).expect("bundled zone")
}

fn ms(text: &str) -> u64 {
    let ts: jiff::Timestamp = text.parse().expect("RFC 3339");
    ts.as_millisecond() as u64
}

fn sent(at_ms: u64) -> Sent<'static> {
    Sent { at_ms, category: None }
}

const SITE: &str = r#"{
    "caps": { "day": 2, "week": 5 },
    "quietHours": ["21:00", "08:00"],
    "categories": {
        "security": { "label": "Sign-ins and security", "exempt": true },
        "replies": { "label": "Replies to your messages" },
        "marketing": { "label": "News and offers", "caps": { "day": 1 }, "overCap": "drop", "inQuietHours": "drop" }
    }
}"#;

#[test]
fn under_the_caps_outside_quiet_hours_a_push_goes_now() {
    let p = policy(SITE);
    let noon = ms("2026-03-10T12:00:00+01:00");
    assert_eq!(
        p.decide(Some("replies"), &[sent(noon - 3_600_000)], &tz("Europe/Berlin"), noon),
        Verdict::Send
    );
    assert_eq!(p.decide(None, &[], &tz("Europe/Berlin"), noon), Verdict::Send);
}

#[test]
fn at_the_daily_cap_a_push_is_held_until_the_oldest_send_is_a_day_old() {
    let p = policy(SITE);
    let berlin = tz("Europe/Berlin");
    let noon = ms("2026-03-10T12:00:00+01:00");
    let history = [sent(noon - 2 * 3_600_000), sent(noon - 3_600_000)];
    assert_eq!(
        p.decide(Some("replies"), &history, &berlin, noon),
        Verdict::Hold {
            until_ms: noon - 2 * 3_600_000 + DAY_MS,
            why: Why::Cap
        }
    );
    // Sends older than a day no longer count for the day (but do for the week).
    let old = [sent(noon - DAY_MS - 1), sent(noon - DAY_MS - 2)];
    assert_eq!(p.decide(Some("replies"), &old, &berlin, noon), Verdict::Send);
}

#[test]
fn a_send_recorded_just_after_the_decision_time_still_counts() {
    // Two workers: one records a send a moment after the other read its
    // clock. The send must count (else both let a push through at the cap).
    let p = policy(r#"{ "caps": { "day": 1 } }"#);
    let now = ms("2026-03-10T12:00:00Z");
    assert!(matches!(
        p.decide(None, &[sent(now + 5)], &TimeZone::UTC, now),
        Verdict::Hold { .. }
    ));
}

#[test]
fn the_weekly_cap_holds_until_enough_sends_are_a_week_old() {
    let p = policy(SITE);
    let utc = TimeZone::UTC;
    let now = ms("2026-03-10T12:00:00Z");
    let history: Vec<Sent<'_>> = (1..=5).map(|d| sent(now - d * DAY_MS - 60_000)).collect();
    // The oldest (5 days + 1 min ago) leaves the week in 2 days − 1 min.
    let expected = now - 5 * DAY_MS - 60_000 + WEEK_MS;
    assert_eq!(
        p.decide(None, &history, &utc, now),
        Verdict::Hold {
            until_ms: expected,
            why: Why::Cap
        }
    );
}

#[test]
fn quiet_hours_across_midnight_hold_until_their_end_in_the_recipients_zone() {
    let p = policy(SITE);
    let late = ms("2026-03-10T23:30:00+01:00");
    assert_eq!(
        p.decide(None, &[], &tz("Europe/Berlin"), late),
        Verdict::Hold {
            until_ms: ms("2026-03-11T08:00:00+01:00"),
            why: Why::Quiet
        }
    );
    // The same instant is 18:30 in New York: not quiet there.
    assert_eq!(p.decide(None, &[], &tz("America/New_York"), late), Verdict::Send);
    // 07:59 is quiet, 08:00 is not.
    let morning = ms("2026-03-11T08:00:00+01:00");
    assert!(matches!(
        p.decide(None, &[], &tz("Europe/Berlin"), morning - 60_000),
        Verdict::Hold { .. }
    ));
    assert_eq!(p.decide(None, &[], &tz("Europe/Berlin"), morning), Verdict::Send);
}

#[test]
fn quiet_hours_hold_across_dst_changes() {
    let p = policy(r#"{ "quietHours": ["01:30", "02:30"] }"#);
    let ny = tz("America/New_York");
    // 2026-03-08: New York springs forward at 02:00 to 03:00; 02:30 does not
    // exist, so the quiet hours end at 03:30 EDT (the gap rule) — never
    // earlier than their wall-clock end.
    let in_quiet = ms("2026-03-08T01:45:00-05:00");
    let Verdict::Hold { until_ms, .. } = p.decide(None, &[], &ny, in_quiet) else {
        panic!("held");
    };
    assert_eq!(until_ms, ms("2026-03-08T03:30:00-04:00"));
    // Berlin falls back on 2026-10-25 at 03:00 to 02:00: 02:30 happens twice;
    // quiet hours end at the first.
    let berlin = tz("Europe/Berlin");
    let p = policy(r#"{ "quietHours": ["01:00", "02:30"] }"#);
    let Verdict::Hold { until_ms, .. } = p.decide(None, &[], &berlin, ms("2026-10-25T01:15:00+02:00")) else {
        panic!("held");
    };
    assert_eq!(until_ms, ms("2026-10-25T02:30:00+02:00"));
}

#[test]
fn a_push_held_by_a_cap_into_quiet_hours_waits_for_their_end() {
    let p = policy(SITE);
    let berlin = tz("Europe/Berlin");
    // Yesterday's two sends (at 22:00 and 22:10, by an app that sent them
    // before the policy existed) fill the daily cap until 22:00 today,
    // which is inside quiet hours: the push waits for 08:00 tomorrow.
    let now = ms("2026-03-10T20:00:00+01:00");
    let history = [
        sent(ms("2026-03-09T22:00:00+01:00")),
        sent(ms("2026-03-09T22:10:00+01:00")),
    ];
    assert_eq!(
        p.decide(None, &history, &berlin, now),
        Verdict::Hold {
            until_ms: ms("2026-03-11T08:00:00+01:00"),
            why: Why::Cap
        }
    );
}

#[test]
fn exempt_categories_bypass_caps_and_quiet_hours_and_are_not_counted() {
    let p = policy(SITE);
    let berlin = tz("Europe/Berlin");
    let night = ms("2026-03-10T03:00:00+01:00");
    let many: Vec<Sent<'_>> = (1..=10).map(|i| sent(night - i * 60_000)).collect();
    assert_eq!(p.decide(Some("security"), &many, &berlin, night), Verdict::Send);
    let noon = ms("2026-03-10T12:00:00+01:00");
    let security: Vec<Sent<'_>> = (1..=10)
        .map(|i| Sent {
            at_ms: noon - i * 60_000,
            category: Some("security"),
        })
        .collect();
    assert_eq!(p.decide(Some("replies"), &security, &berlin, noon), Verdict::Send);
}

#[test]
fn a_category_with_its_own_caps_counts_its_own_sends_and_may_drop() {
    let p = policy(SITE);
    let berlin = tz("Europe/Berlin");
    let noon = ms("2026-03-10T12:00:00+01:00");
    let one_reply = [sent(noon - 60_000)];
    assert_eq!(p.decide(Some("marketing"), &one_reply, &berlin, noon), Verdict::Send);
    let one_offer = [Sent {
        at_ms: noon - 60_000,
        category: Some("marketing"),
    }];
    assert_eq!(
        p.decide(Some("marketing"), &one_offer, &berlin, noon),
        Verdict::Drop(Why::Cap)
    );
    // The offer counts for the site's caps too.
    let two = [one_offer[0], sent(noon - 120_000)];
    assert!(matches!(
        p.decide(Some("replies"), &two, &berlin, noon),
        Verdict::Hold { .. }
    ));
    // Marketing is dropped in quiet hours, not held.
    let night = ms("2026-03-10T23:00:00+01:00");
    assert_eq!(
        p.decide(Some("marketing"), &[], &berlin, night),
        Verdict::Drop(Why::Quiet)
    );
}

#[test]
fn no_policy_lets_everything_through() {
    let p = policy("{}");
    assert!(p.is_open());
    assert!(!policy(SITE).is_open());
    let many: Vec<Sent<'_>> = (1..=100).map(sent).collect();
    assert_eq!(p.decide(None, &many, &tz("Pacific/Kiritimati"), 1_000), Verdict::Send);
}

#[test]
fn every_bad_field_is_named_by_path_in_one_error() {
    let err = DeliveryPolicy::read(&from_json(
        r#"{
            "caps": { "day": 0, "week": 2, "month": 3 },
            "quietHours": ["22:00"],
            "overCap": "queue",
            "categories": {
                "bad name!": { "label": "x" },
                "replies": { "exempt": "yes" },
                "offers": { "label": "Offers", "caps": { "day": 5, "week": 2 }, "quietHours": ["08:00", "08:00"] }
            },
            "colour": "red"
        }"#,
    ))
    .expect_err("invalid");
    let text = err.to_string();
    for expected in [
        "caps.day: expected a positive integer",
        "caps.month: unknown field",
        "quietHours: expected [\"HH:MM\", \"HH:MM\"]",
        "overCap: expected one of: hold, drop",
        "categories.bad name!: a category name",
        "categories.replies.label: required",
        "categories.replies.exempt: expected true or false",
        "categories.offers.caps.week: expected at least the daily cap",
        "categories.offers.quietHours: from and to are the same time",
        "colour: unknown field",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text}");
    }
}

#[test]
fn the_fatigue_guard_flags_mostly_dismissed_or_unsubscribed_pushes_from_enough_deliveries() {
    let guard = policy(r#"{ "fatigue": { "dismissed": 0.7, "minimum": 20 } }"#).fatigue;
    assert_eq!((guard.dismissed, guard.unsubscribed, guard.minimum), (0.7, 0.05, 20));
    let reception = |delivered, dismissed, unsubscribed| Reception {
        delivered,
        clicked: 0,
        dismissed,
        unsubscribed,
    };
    assert_eq!(guard.judge(reception(19, 19, 19)), None, "too few to judge");
    assert_eq!(guard.judge(reception(100, 70, 0)), Some(Tired::Dismissed));
    assert_eq!(guard.judge(reception(100, 69, 4)), None);
    assert_eq!(
        guard.judge(reception(100, 90, 5)),
        Some(Tired::Unsubscribed),
        "named first"
    );
    assert_eq!(policy("{}").fatigue, FatigueGuard::default());
    let err = DeliveryPolicy::read(&from_json(
        r#"{ "fatigue": { "dismissed": 2, "minimum": 0, "windows": 1 } }"#,
    ))
    .expect_err("invalid")
    .to_string();
    for expected in [
        "fatigue.dismissed: expected a share from 0 to 1",
        "fatigue.minimum: expected a positive integer",
        "fatigue.windows: unknown field",
    ] {
        assert!(err.contains(expected), "{expected:?} not in {err}");
    }
}

#[test]
fn the_guard_pauses_only_the_flagged_categories_it_names() {
    let p = policy(
        r#"{
        "categories": {
            "security": { "label": "Sign-ins", "exempt": true },
            "replies": { "label": "Replies" },
            "marketing": { "label": "News" },
            "digest": { "label": "Weekly digest" }
        },
        "fatigue": { "minimum": 10, "window": { "days": 3 }, "recheck": { "seconds": 5 }, "pause": ["marketing", "digest"] }
    }"#,
    );
    let guard = &p.fatigue;
    assert_eq!((guard.window_ms, guard.recheck_ms), (3 * DAY_MS, 5_000));
    let tired = Reception {
        delivered: 20,
        clicked: 1,
        dismissed: 19,
        unsubscribed: 0,
    };
    let liked = Reception {
        delivered: 20,
        clicked: 15,
        dismissed: 5,
        unsubscribed: 0,
    };
    let few = Reception {
        delivered: 9,
        clicked: 0,
        dismissed: 9,
        unsubscribed: 0,
    };
    assert_eq!(
        guard.paused([("replies", tired), ("marketing", tired), ("digest", liked)]),
        vec!["marketing".to_owned()],
        "replies are flagged too, but people asked for them: only named categories pause"
    );
    assert_eq!(
        guard.paused([("marketing", few)]),
        Vec::<String>::new(),
        "too few to judge"
    );
    assert_eq!(policy("{}").fatigue.window_ms, WEEK_MS);
    assert!(
        policy("{}").fatigue.pause.is_empty(),
        "nothing pauses unless configured"
    );
}

#[test]
fn a_pause_must_name_a_category_that_is_not_exempt() {
    let err = DeliveryPolicy::read(&from_json(
        r#"{
        "categories": { "security": { "label": "Sign-ins", "exempt": true }, "marketing": { "label": "News" } },
        "fatigue": { "pause": ["marketing", "security", "news", 3], "window": { "weeks": 1 } }
    }"#,
    ))
    .expect_err("invalid")
    .to_string();
    for expected in [
        r#"fatigue.pause[1]: "security" is exempt, and exempt pushes are never paused"#,
        r#"fatigue.pause[2]: "news" is not a category of this policy (expected one of: marketing, security)"#,
        "fatigue.pause[3]: expected a category name",
        "fatigue.window.weeks: unknown field",
    ] {
        assert!(err.contains(expected), "{expected:?} not in {err}");
    }
    let none = DeliveryPolicy::read(&from_json(r#"{ "fatigue": { "pause": ["marketing"] } }"#))
        .expect_err("no categories")
        .to_string();
    assert!(none.contains("the policy defines no categories"), "{none}");
}

#[test]
fn pushes_released_together_collapse_by_topic_into_the_newest() {
    let held = [
        Held {
            id: 1,
            topic: Some("thread-bill"),
        },
        Held { id: 2, topic: None },
        Held {
            id: 3,
            topic: Some("thread-bill"),
        },
        Held {
            id: 4,
            topic: Some("thread-ann"),
        },
        Held {
            id: 5,
            topic: Some("thread-bill"),
        },
    ];
    let digests = collapse(&held);
    assert_eq!(
        digests,
        [
            Digest {
                send: 2,
                merged: vec![]
            },
            Digest {
                send: 4,
                merged: vec![]
            },
            Digest {
                send: 5,
                merged: vec![1, 3]
            },
        ]
    );
    assert_eq!(digests[2].count(), 3, "\"3 new replies from Bill\"");
    assert!(collapse(&[]).is_empty());
}

use crate::journey::tests::ZONES;

fn local_time() -> impl Strategy<Value = String> {
    (0u8..24, prop::sample::select(vec![0u8, 15, 30, 45])).prop_map(|(h, m)| format!("{h:02}:{m:02}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// A person's pushes arrive at random times across DST changes; each is
    /// sent when the policy says (held ones at their release). No push that
    /// is not exempt is ever sent inside quiet hours or over a cap, and
    /// every held push is sent at its first allowed instant or later.
    #[test]
    fn nothing_is_sent_in_quiet_hours_or_over_a_cap(
        day in 1u32..4,
        week_extra in 0u32..6,
        from in local_time(),
        to in local_time(),
        zone_at in 0usize..ZONES.len(),
        start_day in 0u64..365,
        gaps in prop::collection::vec(1u64..(6 * 3_600_000), 1..60),
        exempt_every in 2usize..7,
    ) {
        prop_assume!(from != to);
        let json = format!(
            r#"{{ "caps": {{ "day": {day}, "week": {} }}, "quietHours": ["{from}", "{to}"],
                 "categories": {{ "security": {{ "label": "Security", "exempt": true }} }} }}"#,
            day + week_extra
        );
        let p = policy(&json);
        let zone = tz(ZONES[zone_at]);
        let rules = p.site;
        let quiet = rules.quiet.expect("quiet hours");
        let mut now = ms("2026-01-01T00:00:00Z") + start_day * DAY_MS;
        let mut ledger: Vec<Sent<'static>> = Vec::new();
        let mut held: Vec<u64> = Vec::new();
        for (i, gap) in gaps.iter().enumerate() {
            now += gap;
            // Release held pushes whose time has come, in order, each decided
            // when a worker would claim it: at its time, or later if the
            // worker's clock is past it (decisions never go back in time).
            let mut clock = ledger.last().map_or(0, |s| s.at_ms);
            held.sort_unstable();
            while let Some(at) = held.iter().position(|&until| until <= now) {
                let until = held.swap_remove(at).max(clock);
                clock = until;
                match p.decide(None, &ledger, &zone, until) {
                    Verdict::Send => ledger.push(sent(until)),
                    Verdict::Hold { until_ms, .. } => {
                        prop_assert!(until_ms > until, "a hold moves forward");
                        held.push(until_ms);
                    }
                    Verdict::Drop(_) => prop_assert!(false, "hold was configured"),
                }
                held.sort_unstable();
            }
            let category = (i % exempt_every == 0).then_some("security");
            match p.decide(category, &ledger, &zone, now) {
                Verdict::Send => ledger.push(Sent { at_ms: now, category }),
                Verdict::Hold { until_ms, .. } => {
                    prop_assert!(category.is_none());
                    prop_assert!(until_ms > now);
                    held.push(until_ms);
                }
                Verdict::Drop(_) => prop_assert!(false, "hold was configured"),
            }
            ledger.sort_by_key(|s| s.at_ms);
        }
        for (i, s) in ledger.iter().enumerate() {
            if s.category.is_some() {
                continue;
            }
            prop_assert!(!quiet.contains(s.at_ms, &zone), "sent in quiet hours at {}", s.at_ms);
            let before = ledger[..i].iter().filter(|e| e.category.is_none());
            let in_day = before.clone().filter(|e| s.at_ms - e.at_ms < DAY_MS).count();
            let in_week = before.filter(|e| s.at_ms - e.at_ms < WEEK_MS).count();
            prop_assert!(in_day < day as usize, "over the daily cap");
            prop_assert!(in_week < (day + week_extra) as usize, "over the weekly cap");
        }
    }
}
