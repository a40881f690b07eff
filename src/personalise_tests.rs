use super::*;

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn copy(title: &str) -> CopySource<'_> {
    CopySource {
        title,
        ..CopySource::default()
    }
}

fn problems(source: &CopySource<'_>, data_allowed: bool) -> String {
    Copy::parse(source, data_allowed).expect_err("refused").to_string()
}

#[test]
fn renders_each_recipients_own_traits_and_data() {
    let source = CopySource {
        prefix: "",
        title: "Hi {user.first_name|there}",
        body: Some("{data.item} is back in stock"),
        url: Some("/shop/{data.sku}?from=push"),
        image: Some("https://cdn.example/{data.sku}.jpg"),
        action_titles: vec!["Buy {data.item}"],
    };
    let copy = Copy::parse(&source, true).expect("valid");
    assert!(copy.is_personal());
    let mut missed = Vec::new();
    let ada = copy.render(
        &fields(&[("first_name", "Ada")]),
        &fields(&[("item", "Red shoes"), ("sku", "r 1/2")]),
        &mut missed,
    );
    assert_eq!(ada.title, "Hi Ada");
    assert_eq!(ada.body.as_deref(), Some("Red shoes is back in stock"));
    assert_eq!(
        ada.url.as_deref(),
        Some("/shop/r%201%2F2?from=push"),
        "a value fills the path, never adds one"
    );
    assert_eq!(ada.image.as_deref(), Some("https://cdn.example/r%201%2F2.jpg"));
    assert_eq!(ada.action_titles, ["Buy Red shoes"]);
    assert!(missed.is_empty());
}

#[test]
fn a_missing_field_shows_its_fallback_or_nothing_and_is_noted_once() {
    let source = CopySource {
        body: Some("{user.first_name}, your {user.plan} plan renews soon"),
        ..copy("Hi {user.first_name|there}!")
    };
    let copy = Copy::parse(&source, false).expect("valid");
    let mut missed = Vec::new();
    let none = copy.render(&Fields::new(), &Fields::new(), &mut missed);
    assert_eq!(none.title, "Hi there!");
    assert_eq!(none.body.as_deref(), Some(", your plan renews soon"));
    assert!(!none.title.contains('{') && !none.body.iter().any(|b| b.contains('{')));
    assert_eq!(missed, ["user.first_name", "user.plan"]);
    let mut missed = Vec::new();
    let blank = copy.render(&fields(&[("first_name", "  ")]), &Fields::new(), &mut missed);
    assert_eq!(blank.title, "Hi there!", "a blank value is a missing one");
}

#[test]
fn plain_copy_is_not_personal() {
    let copy = Copy::parse(&copy("Sale starts now"), false).expect("valid");
    assert!(!copy.is_personal());
    assert!(copy.fields().is_empty());
}

#[test]
fn every_bad_template_is_named_by_its_path() {
    let source = CopySource {
        prefix: "",
        title: "{user.first_name}",
        body: Some("{event.item} and {data.sku}"),
        url: Some("{data.link}"),
        image: Some("javascript:{user.x}"),
        action_titles: vec!["{brand}"],
    };
    let message = problems(&source, false);
    for expected in [
        "notification.title: would be blank for a recipient without its fields",
        "notification.body: unknown placeholder {event.item}",
        "notification.body: {data.sku} reads per-recipient data: send it as batch[].data",
        "notification.actions[0].title: unknown placeholder {brand}",
        "notification.url: {data.link} reads per-recipient data",
        "notification.url: expected an http(s) or relative URL, with placeholders only after the scheme and host",
        "notification.image: expected an http(s) or relative URL",
    ] {
        assert!(message.contains(expected), "{expected:?} missing from {message}");
    }
    let with_data = problems(
        &CopySource {
            body: Some("{data.}"),
            ..copy("Hi")
        },
        true,
    );
    assert!(
        with_data.contains("notification.body: unknown placeholder {data.}: expected {user.<trait>} or {data.<name>}"),
        "{with_data}"
    );
}

#[test]
fn a_link_keeps_its_origin_whatever_the_value() {
    for url in [
        "/{data.path}",
        "https://shop.example/{data.path}",
        "https://shop.example/p?next={data.path}",
    ] {
        let copy = Copy::parse(
            &CopySource {
                url: Some(url),
                ..copy("Hi")
            },
            true,
        )
        .expect(url);
        for hostile in [
            "/evil.example/x",
            "//evil.example",
            "javascript:alert(1)",
            "https://evil.example",
            "\\\\evil",
        ] {
            let rendered = copy.render(&Fields::new(), &fields(&[("path", hostile)]), &mut Vec::new());
            let link = rendered.url.expect("a url");
            let (head, _) = url.split_once('{').expect("a placeholder");
            assert!(
                link.starts_with(head) && !link[head.len()..].contains(['/', ':', '\\']),
                "{url} with {hostile}: {link}"
            );
        }
    }
    for url in [
        "{data.host}/x",
        "https://{data.host}/x",
        "//{data.host}/x",
        "https://shop.example{data.path}",
    ] {
        let message = problems(
            &CopySource {
                url: Some(url),
                ..copy("Hi")
            },
            true,
        );
        assert!(
            message.contains("notification.url: expected an http(s) or relative URL"),
            "{url}: {message}"
        );
    }
}

#[test]
fn a_field_no_recipient_has_is_unknown_and_others_count_their_fallbacks() {
    let source = CopySource {
        body: Some("{user.frist_name}, {data.item|something} is waiting"),
        ..copy("Hi {user.first_name|there}")
    };
    let copy = Copy::parse(&source, true).expect("valid");
    let recipients = [
        (fields(&[("first_name", "Ada")]), fields(&[("item", "Shoes")])),
        (Fields::new(), fields(&[("item", "Hat")])),
        (Fields::new(), Fields::new()),
    ];
    let mut census = Census::default();
    for (user, data) in &recipients {
        let mut missed = Vec::new();
        copy.render(user, data, &mut missed);
        census.record(&missed);
    }
    assert_eq!(census.recipients, 3);
    assert_eq!(
        census.missing,
        BTreeMap::from([
            ("data.item".to_owned(), 1),
            ("user.first_name".to_owned(), 2),
            ("user.frist_name".to_owned(), 3)
        ])
    );
    assert_eq!(
        census.unknown(&copy),
        [("notification.body".to_owned(), "user.frist_name")]
    );
    assert!(
        Census::default().unknown(&copy).is_empty(),
        "no recipients: nothing to judge by"
    );
}

#[test]
fn a_variants_templates_are_named_under_its_own_path() {
    let source = CopySource {
        prefix: "notification.variants[1]",
        body: Some("{user.}"),
        ..copy("{user.first_name}")
    };
    let message = problems(&source, false);
    assert!(
        message.contains("notification.variants[1].title: would be blank"),
        "{message}"
    );
    assert!(
        message.contains("notification.variants[1].body: unknown placeholder {user.}"),
        "{message}"
    );
    let copy = Copy::parse(
        &CopySource {
            prefix: "notification.variants[1]",
            ..copy("Hi {user.nme|there}")
        },
        false,
    )
    .expect("valid");
    let mut census = Census::default();
    census.record(&["user.nme"]);
    assert_eq!(
        census.unknown(&copy),
        [("notification.variants[1].title".to_owned(), "user.nme")]
    );
}
