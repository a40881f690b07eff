use super::*;

const NO_TOPICS: &SortedSet = &SortedSet::new();

fn push(permission: Permission, subscribed: bool, topics: &SortedSet) -> PushStatus<'_> {
    PushStatus {
        permission,
        subscribed,
        topics,
    }
}

fn ask(kind: Kind, key: &str) -> Ask<'_> {
    Ask {
        kind,
        key,
        cool_off_days: &[3, 7, 30],
        session_shown: 0,
    }
}

fn after_dismissals(count: u32, at: u64) -> PromptState {
    let mut state = PromptState::default();
    for _ in 0..count {
        record_dismissed(&mut state, at);
    }
    state
}

fn check(prompt: &PromptState, ledger: &Ledger, now: u64) -> Result<Offer, Suppressed> {
    may_show(
        &Policy::default(),
        prompt,
        ledger,
        push(Permission::Default, false, NO_TOPICS),
        ask(Kind::Push, ""),
        now,
    )
}

#[test]
fn cools_off_three_then_seven_then_thirty_days_then_stops() {
    for (dismissals, wait) in [(1, 3), (2, 7), (3, 30)] {
        let state = after_dismissals(dismissals, 0);
        assert_eq!(
            check(&state, &Ledger::default(), days(wait) - 1),
            Err(Suppressed::CoolingOff(days(wait)))
        );
        assert_eq!(check(&state, &Ledger::default(), days(wait)), Ok(Offer::Permission));
    }
    assert_eq!(
        check(&after_dismissals(4, 0), &Ledger::default(), days(10_000)),
        Err(Suppressed::Exhausted)
    );
}

#[test]
fn permission_table() {
    let topics: SortedSet = ["thread:1".to_owned()].into();
    let table = [
        (
            Kind::Push,
            Permission::Default,
            false,
            "thread:1",
            Ok(Offer::Permission),
        ),
        (
            Kind::Push,
            Permission::Granted,
            false,
            "thread:1",
            Ok(Offer::Permission),
        ),
        (
            Kind::Push,
            Permission::Granted,
            true,
            "thread:1",
            Err(Suppressed::AlreadySubscribed),
        ),
        (Kind::Push, Permission::Granted, true, "thread:2", Ok(Offer::AddTopic)),
        (
            Kind::Push,
            Permission::Granted,
            true,
            "",
            Err(Suppressed::AlreadySubscribed),
        ),
        (
            Kind::Push,
            Permission::Denied,
            false,
            "thread:2",
            Err(Suppressed::PermissionDenied),
        ),
        (
            Kind::Push,
            Permission::Unsupported,
            false,
            "thread:2",
            Err(Suppressed::Unsupported),
        ),
        (Kind::Help, Permission::Denied, false, "", Ok(Offer::Plain)),
        (
            Kind::Help,
            Permission::Default,
            false,
            "",
            Err(Suppressed::AlreadySubscribed),
        ),
        (Kind::Action, Permission::Denied, false, "", Ok(Offer::Plain)),
    ];
    for (kind, permission, subscribed, key, expected) in table {
        let got = may_show(
            &Policy::default(),
            &PromptState::default(),
            &Ledger::default(),
            push(permission, subscribed, &topics),
            ask(kind, key),
            0,
        );
        assert_eq!(
            got, expected,
            "{kind:?} {permission:?} subscribed={subscribed} key={key}"
        );
    }
}

#[test]
fn budgets_gap_session_and_week() {
    let fresh = PromptState::default();
    let mut ledger = Ledger::default();
    record_shown(&mut ledger, 0);
    assert_eq!(check(&fresh, &ledger, 29_999), Err(Suppressed::TooSoon));
    assert_eq!(check(&fresh, &ledger, 30_000), Ok(Offer::Permission));
    let in_session = Ask {
        session_shown: 1,
        ..ask(Kind::Push, "")
    };
    let got = may_show(
        &Policy::default(),
        &fresh,
        &ledger,
        push(Permission::Default, false, NO_TOPICS),
        in_session,
        days(1),
    );
    assert_eq!(got, Err(Suppressed::SessionBudget));
    record_shown(&mut ledger, days(1));
    record_shown(&mut ledger, days(2));
    assert_eq!(check(&fresh, &ledger, days(3)), Err(Suppressed::WeeklyBudget));
    assert_eq!(
        check(&fresh, &ledger, days(7) + 1),
        Ok(Offer::Permission),
        "the first show left the rolling week"
    );
}

#[test]
fn accept_rate_guard_needs_a_full_window() {
    let mut ledger = Ledger::default();
    for _ in 0..9 {
        record_native(&mut ledger, false);
    }
    assert_eq!(accept_rate(&Policy::default(), &ledger), None);
    assert_eq!(check(&PromptState::default(), &ledger, 0), Ok(Offer::Permission));
    record_native(&mut ledger, true);
    assert_eq!(accept_rate(&Policy::default(), &ledger), Some(0.1));
    assert_eq!(
        check(&PromptState::default(), &ledger, 0),
        Err(Suppressed::AcceptRateGuard)
    );
    record_native(&mut ledger, true);
    assert_eq!(
        check(&PromptState::default(), &ledger, 0),
        Ok(Offer::Permission),
        "2 of the last 10 = floor"
    );
}

#[test]
fn never_shows_again_for_an_accepted_key() {
    let mut state = PromptState::default();
    record_accepted(&mut state, "");
    assert_eq!(
        check(&state, &Ledger::default(), u64::MAX),
        Err(Suppressed::AlreadyAccepted)
    );
}

#[test]
fn keeps_bounded_history() {
    let mut ledger = Ledger::default();
    for i in 0..100 {
        record_native(&mut ledger, i % 2 == 0);
        record_shown(&mut ledger, days(i));
    }
    assert_eq!(ledger.native.len(), NATIVE_LIMIT);
    assert!(ledger.shown_ms.len() <= 8);
}
