use super::*;

fn read(json: &str) -> Result<Segment, String> {
    let value = crate::value::from_json(json);
    Segment::read(&value, "to.where").map_err(|p| p.to_string())
}

fn traits(pairs: &[(&str, Scalar)]) -> SortedMap<Scalar> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

#[test]
fn reads_and_evaluates_traits_topics_and_combinations() {
    let segment = read(
        r#"{ "all": [ { "trait": "plan", "in": ["pro", "team"] }, { "trait": "orders", "gte": 10 },
                      { "not": { "topic": "muted-*" } }, { "any": [ { "trait": "beta", "equals": true }, { "trait": "email", "exists": true } ] } ] }"#,
    )
    .expect("valid");
    let pro = traits(&[
        ("plan", Scalar::Text("pro".into())),
        ("orders", Scalar::Number(12.0)),
        ("email", Scalar::Text("a@example.com".into())),
    ]);
    assert!(segment.matches(&Facts::new(&pro, &["news".into()])));
    assert!(
        !segment.matches(&Facts::new(&pro, &["muted-deals".into()])),
        "not topic"
    );
    let text_orders = traits(&[
        ("plan", Scalar::Text("pro".into())),
        ("orders", Scalar::Text("12".into())),
        ("beta", Scalar::Bool(true)),
    ]);
    assert!(
        !segment.matches(&Facts::new(&text_orders, &[])),
        "a number test needs a number"
    );
    assert!(
        !segment.matches(&Facts::new(&SortedMap::new(), &[])),
        "no user: no trait matches"
    );
    assert!(
        read(r#"{ "not": { "trait": "plan", "equals": "pro" } }"#)
            .expect("valid")
            .matches(&Facts::new(&SortedMap::new(), &[])),
        "and so its not does"
    );
    assert!(read(r#"{ "all": [] }"#)
        .expect("valid")
        .matches(&Facts::new(&SortedMap::new(), &[])));
    assert!(!read(r#"{ "any": [] }"#)
        .expect("valid")
        .matches(&Facts::new(&SortedMap::new(), &[])));
    let ten = traits(&[("n", Scalar::Number(10.0))]);
    assert!(read(r#"{ "trait": "n", "lte": 10 }"#)
        .expect("valid")
        .matches(&Facts::new(&ten, &[])));
    assert!(
        !read(r#"{ "trait": "n", "equals": "10" }"#)
            .expect("valid")
            .matches(&Facts::new(&ten, &[])),
        "types differ"
    );
}

#[test]
fn every_bad_condition_is_named_by_its_path() {
    let cases = [
        (r#"[]"#, "to.where: expected an object"),
        (r#"{}"#, "to.where: expected exactly one of trait, topic, active_within"),
        (
            r#"{ "trait": "plan", "topic": "x" }"#,
            "to.where: expected exactly one of",
        ),
        (
            r#"{ "trait": "plan" }"#,
            "to.where.trait: expected exactly one of equals, in, exists, gte, lte",
        ),
        (
            r#"{ "trait": "pl an", "equals": 1 }"#,
            "to.where.trait: expected 1 to 64 of",
        ),
        (
            r#"{ "trait": "plan", "equals": [1] }"#,
            "to.where.equals: expected a string, number or boolean",
        ),
        (
            r#"{ "trait": "plan", "in": [] }"#,
            "to.where.in: expected 1 to 100 values",
        ),
        (
            r#"{ "trait": "plan", "in": [{}] }"#,
            "to.where.in: expected an array of strings",
        ),
        (
            r#"{ "trait": "plan", "exists": false }"#,
            "to.where.exists: expected true",
        ),
        (r#"{ "trait": "n", "gte": "10" }"#, "to.where.gte: expected a number"),
        (
            r#"{ "all": [{ "topic": "" }, { "any": {} }] }"#,
            "to.where.all[0].topic: expected a non-empty string",
        ),
        (
            r#"{ "all": [{ "topic": "a" }, { "any": {} }] }"#,
            "to.where.all[1].any: expected an array",
        ),
        (
            r#"{ "trait": "plan", "equals": 1, "eq": 2 }"#,
            "to.where.eq: unknown field",
        ),
    ];
    for (json, expected) in cases {
        let message = read(json).expect_err(json);
        assert!(message.contains(expected), "{json}: {message}");
    }
    let deep = (0..=MAX_DEPTH).fold(r#"{ "topic": "x" }"#.to_owned(), |inner, _| {
        format!(r#"{{ "not": {inner} }}"#)
    });
    assert!(read(&deep).expect_err("deep").contains("nested deeper than 8 levels"));
    let wide = format!(
        r#"{{ "any": [{}] }}"#,
        vec![r#"{ "topic": "x" }"#; MAX_ATOMS + 1].join(",")
    );
    assert!(read(&wide)
        .expect_err("wide")
        .contains("to.where: at most 64 conditions"));
}

#[test]
fn activity_age_browser_and_bucket_are_judged_on_the_facts_clock() {
    const DAY: i64 = 24 * 3600 * 1000;
    let now = 100 * DAY;
    let none = SortedMap::new();
    let events = [
        ("purchased".to_owned(), now - 2 * DAY),
        ("purchased".to_owned(), now - 20 * DAY),
        ("opened".to_owned(), now - 40 * DAY),
    ];
    let facts = Facts {
        traits: &none,
        topics: &[],
        events: &events,
        device: 1234,
        endpoint: "https://updates.push.services.mozilla.com/wpush/v2/abc",
        subscribed_ms: now - 10 * DAY,
        now_ms: now,
    };
    let cases = [
        (r#"{ "active_within": { "days": 7 } }"#, true),
        (r#"{ "active_within": { "days": 1 } }"#, false),
        (r#"{ "inactive_for": { "days": 1 } }"#, true),
        (r#"{ "inactive_for": { "days": 7 } }"#, false),
        (
            r#"{ "event": "purchased", "within": { "days": 30 }, "at_least": 2 }"#,
            true,
        ),
        (
            r#"{ "event": "purchased", "within": { "days": 7 }, "at_least": 2 }"#,
            false,
        ),
        (
            r#"{ "event": "purchased", "within": { "days": 30 }, "at_most": 1 }"#,
            false,
        ),
        (
            r#"{ "event": "purchased", "within": { "days": 7 }, "at_least": 0, "at_most": 0 }"#,
            false,
        ),
        (
            r#"{ "event": "opened", "within": { "days": 7 }, "at_least": 0, "at_most": 0 }"#,
            true,
        ),
        (r#"{ "event": "opened", "within": { "days": 60 } }"#, true),
        (r#"{ "subscribed_for": { "days": 7 } }"#, true),
        (r#"{ "subscribed_for": { "days": 14 } }"#, false),
        (r#"{ "browser": "firefox" }"#, true),
        (r#"{ "browser": "chrome" }"#, false),
        (r#"{ "bucket": [30, 40] }"#, true),
        (r#"{ "bucket": [0, 34] }"#, false),
        (r#"{ "bucket": [0, 100] }"#, true),
    ];
    for (json, expected) in cases {
        assert_eq!(read(json).expect(json).matches(&facts), expected, "{json}");
    }
    // Without a user there are no events: not active, and not lapsed.
    let anonymous = Facts { events: &[], ..facts };
    assert!(!read(r#"{ "active_within": { "days": 7 } }"#)
        .expect("valid")
        .matches(&anonymous));
    assert!(!read(r#"{ "inactive_for": { "days": 7 } }"#)
        .expect("valid")
        .matches(&anonymous));
}

#[test]
fn browsers_are_told_by_their_push_service_host() {
    for (endpoint, browser) in [
        ("https://fcm.googleapis.com/fcm/send/x", Some(Browser::Chrome)),
        ("https://FCM.googleapis.com/fcm/send/x", Some(Browser::Chrome)),
        (
            "https://updates.push.services.mozilla.com/wpush/v2/x",
            Some(Browser::Firefox),
        ),
        ("https://web.push.apple.com/Q1", Some(Browser::Safari)),
        ("https://wns2-par02p.notify.windows.com/w/?token=x", Some(Browser::Edge)),
        ("https://evil.example/x.notify.windows.com/", None),
        ("http://fcm.googleapis.com/fcm/send/x", None),
        ("https://push.example/fcm.googleapis.com", None),
    ] {
        assert_eq!(Browser::of_endpoint(endpoint), browser, "{endpoint}");
    }
}

#[test]
fn bad_activity_device_and_bucket_conditions_are_named() {
    for (json, expected) in [
        (
            r#"{ "active_within": 7 }"#,
            "to.where.active_within: expected an object",
        ),
        (r#"{ "event": "bought" }"#, "to.where.event: expected within beside it"),
        (
            r#"{ "event": "b ad", "within": { "days": 1 } }"#,
            "to.where.event: expected an event name",
        ),
        (
            r#"{ "event": "b", "within": { "days": 1 }, "at_least": 1.5 }"#,
            "to.where.at_least: expected a whole number",
        ),
        (
            r#"{ "event": "b", "within": { "days": 1 }, "at_least": 3, "at_most": 2 }"#,
            "to.where.at_most: expected at least at_least",
        ),
        (
            r#"{ "browser": "opera" }"#,
            "to.where.browser: expected chrome, firefox, safari or edge",
        ),
        (r#"{ "bucket": [10, 10] }"#, "to.where.bucket: expected [from, to]"),
        (r#"{ "bucket": [0, 101] }"#, "to.where.bucket: expected [from, to]"),
        (r#"{ "within": { "days": 1 } }"#, "to.where: expected exactly one of"),
    ] {
        let message = read(json).expect_err(json);
        assert!(message.contains(expected), "{json}: {message}");
    }
}
