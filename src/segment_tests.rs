use super::*;

fn read(json: &str) -> Result<Segment, String> {
    let value = crate::value::from_json(json);
    Segment::read(&value, "to.where").map_err(|p| p.to_string())
}

fn traits(pairs: &[(&str, Scalar)]) -> BTreeMap<String, Scalar> {
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
    assert!(segment.matches(&pro, &["news".into()]));
    assert!(!segment.matches(&pro, &["muted-deals".into()]), "not topic");
    let text_orders = traits(&[
        ("plan", Scalar::Text("pro".into())),
        ("orders", Scalar::Text("12".into())),
        ("beta", Scalar::Bool(true)),
    ]);
    assert!(!segment.matches(&text_orders, &[]), "a number test needs a number");
    assert!(!segment.matches(&BTreeMap::new(), &[]), "no user: no trait matches");
    assert!(
        read(r#"{ "not": { "trait": "plan", "equals": "pro" } }"#)
            .expect("valid")
            .matches(&BTreeMap::new(), &[]),
        "and so its not does"
    );
    assert!(read(r#"{ "all": [] }"#).expect("valid").matches(&BTreeMap::new(), &[]));
    assert!(!read(r#"{ "any": [] }"#).expect("valid").matches(&BTreeMap::new(), &[]));
    let ten = traits(&[("n", Scalar::Number(10.0))]);
    assert!(read(r#"{ "trait": "n", "lte": 10 }"#)
        .expect("valid")
        .matches(&ten, &[]));
    assert!(
        !read(r#"{ "trait": "n", "equals": "10" }"#)
            .expect("valid")
            .matches(&ten, &[]),
        "types differ"
    );
}

#[test]
fn every_bad_condition_is_named_by_its_path() {
    let cases = [
        (r#"[]"#, "to.where: expected an object"),
        (r#"{}"#, "to.where: expected exactly one of trait, topic, all, any, not"),
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
