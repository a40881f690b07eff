use super::*;
use crate::value::from_json;

/// The shape `view()` in server/src/routes/preferences.rs answers.
const ANSWER: &str = r#"{
  "categories": [
    { "name": "replies", "label": "Replies", "exempt": false, "on": true },
    { "name": "security", "label": "Security alerts", "exempt": true, "on": true },
    { "name": "marketing", "label": "Deals", "exempt": false, "on": false }
  ],
  "topics": [
    { "name": "thread:bill", "label": "Replies from Bill", "on": true },
    { "name": "thread:ann", "on": false }
  ],
  "pause": null
}"#;

#[test]
fn reads_categories_topics_and_labels_from_the_server_answer() {
    let centre = Centre::read(&from_json(ANSWER)).expect("a valid answer");
    fn row(s: &Switch) -> (&str, &str, bool, bool) {
        (&s.name, &s.label, s.on, s.fixed)
    }
    assert_eq!(
        centre.categories.iter().map(row).collect::<Vec<_>>(),
        [
            ("replies", "Replies", true, false),
            ("security", "Security alerts", true, true),
            ("marketing", "Deals", false, false),
        ]
    );
    assert_eq!(
        centre.topics.iter().map(row).collect::<Vec<_>>(),
        [
            ("thread:bill", "Replies from Bill", true, false),
            ("thread:ann", "thread:ann", false, false)
        ],
        "a topic without a label shows its name"
    );
    assert_eq!(centre.pause, Pause::Off);
}

#[test]
fn reads_each_kind_of_pause_and_picks_the_matching_menu_choice() {
    let now = 1_000_000_000_000;
    let hour = 3_600_000;
    let table = [
        (r#"null"#, Pause::Off, PauseChoice::Resume),
        (r#"{"indefinite":true}"#, Pause::Indefinite, PauseChoice::Indefinite),
        (
            &format!(r#"{{"until_ms":{}}}"#, now + 20 * hour),
            Pause::Until(now + 20 * hour),
            PauseChoice::Day,
        ),
        (
            &format!(r#"{{"until_ms":{}}}"#, now + 100 * hour),
            Pause::Until(now + 100 * hour),
            PauseChoice::Week,
        ),
        (
            &format!(r#"{{"until_ms":{}}}"#, now - hour),
            Pause::Until(now - hour),
            PauseChoice::Resume,
        ),
    ];
    for (pause, expected, choice) in table {
        let json = ANSWER.replace(r#""pause": null"#, &format!(r#""pause": {pause}"#));
        let centre = Centre::read(&from_json(&json)).expect(pause);
        assert_eq!((centre.pause, centre.pause_choice(now)), (expected, choice), "{pause}");
    }
}

#[test]
fn refuses_a_malformed_answer_whole() {
    let broken = [
        r#"{}"#,
        r#"{"categories": {}, "topics": [], "pause": null}"#,
        r#"{"categories": [], "topics": [{"name": "t"}], "pause": null}"#,
        r#"{"categories": [], "topics": [{"name": 5, "on": true}], "pause": null}"#,
        r#"{"categories": [{"name": "c", "on": "yes"}], "topics": [], "pause": null}"#,
        r#"{"categories": [{"name": "c", "on": true, "exempt": 1}], "topics": [], "pause": null}"#,
        r#"{"categories": [{"name": "c", "on": true, "label": 7}], "topics": [], "pause": null}"#,
        r#"{"categories": [], "topics": [], "pause": {"until_ms": "soon"}}"#,
        r#"{"categories": [], "topics": [], "pause": {"until_ms": 1.5}}"#,
        r#"[]"#,
    ];
    for json in broken {
        assert_eq!(Centre::read(&from_json(json)), None, "{json}");
    }
}

#[test]
fn each_control_asks_for_exactly_its_own_change() {
    assert_eq!(
        category_change("marketing", false),
        from_json(r#"{"categories":{"marketing":false}}"#)
    );
    assert_eq!(
        topic_change("thread:bill", true),
        from_json(r#"{"topics":{"thread:bill":true}}"#)
    );
    let pauses: Vec<Value> = PauseChoice::ALL.into_iter().map(pause_change).collect();
    assert_eq!(
        pauses,
        [
            from_json(r#"{"pause":null}"#),
            from_json(r#"{"pause":{"days":1}}"#),
            from_json(r#"{"pause":{"days":7}}"#),
            from_json(r#"{"pause":{"indefinite":true}}"#),
        ]
    );
}

#[test]
fn pause_choices_round_trip_through_their_option_values() {
    for choice in PauseChoice::ALL {
        assert_eq!(PauseChoice::parse(choice.as_str()), Some(choice));
        assert!(!choice.label().is_empty());
    }
    assert_eq!(PauseChoice::parse("forever"), None);
}
