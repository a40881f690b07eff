//! The start-up repair's decisions, pure: the page glue gathers the facts
//! (the permission, what the device remembers, whether the browser still
//! has a subscription, what the server holds for it, which VAPID key it was
//! made with) and does the I/O these functions choose.
//!
//! Subscriptions drift: the browser loses one (cleared site data, a push
//! service reset), the server forgets one (pruned after a 410, a restored
//! database), the VAPID key is rotated, or a "Yes" could not be finished.
//! Each start makes the browser's subscription and the server's record agree.

use crate::sorted::SortedSet;

use crate::rules::Permission;

/// What the page knows at start, before talking to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// `Notification.permission`.
    pub permission: Permission,
    /// The device last confirmed a subscription (`state.subscribed`).
    pub confirmed: bool,
    /// The browser has a push subscription now.
    pub in_browser: bool,
    /// A "Yes" is pending and its backoff has passed.
    pub pending_due: bool,
}

/// What the repair does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to repair: never subscribed, nothing pending.
    Nothing,
    /// Permission is gone: the subscription is dead (browsers drop it with
    /// the permission); stop counting the device as subscribed.
    Forget,
    /// Make sure a subscription exists and the server holds it with its
    /// topics (finishing the pending "Yes" when `finish_pending`).
    Register {
        /// The pending "Yes" is finished by this registration.
        finish_pending: bool,
    },
}

/// Chooses the repair for `facts`.
pub fn plan(facts: Facts) -> Plan {
    match facts.permission {
        Permission::Granted => {}
        // Revoked or reset: the subscription went with the permission.
        Permission::Denied | Permission::Default if facts.confirmed => return Plan::Forget,
        // Unsupported may only mean the APIs throw here (a sandboxed
        // frame): nothing can be told, so nothing is changed.
        _ => return Plan::Nothing,
    }
    if facts.in_browser || facts.confirmed || facts.pending_due {
        Plan::Register {
            finish_pending: facts.pending_due,
        }
    } else {
        Plan::Nothing
    }
}

/// The topics to register: what the device remembers, what the server
/// holds (`None`: it does not know the subscription), and the pending "Yes".
/// A union: a topic is dropped only by the person (`removeTopic`), never by
/// drift on either side.
pub fn topics(remembered: &SortedSet, on_server: Option<Vec<String>>, pending: Option<Vec<String>>) -> SortedSet {
    let mut all = remembered.clone();
    all.extend(on_server.into_iter().flatten());
    all.extend(pending.into_iter().flatten());
    all
}

/// Whether the browser's subscription must be replaced by a new one: there
/// is none, or it was made with another VAPID key than the server's now
/// (`made_with`: the key remembered when it was made, `None` if unknown) —
/// pushes signed with the new key would be refused by the push service.
pub fn needs_new_subscription(existing: bool, made_with: Option<&str>, server_key: &str) -> bool {
    !existing || made_with != Some(server_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(permission: Permission, confirmed: bool, in_browser: bool, pending_due: bool) -> Facts {
        Facts {
            permission,
            confirmed,
            in_browser,
            pending_due,
        }
    }

    #[test]
    fn plans_each_kind_of_drift() {
        use Permission::{Default, Denied, Granted};
        let register = |finish_pending| Plan::Register { finish_pending };
        for (case, expected, why) in [
            (facts(Granted, false, false, false), Plan::Nothing, "never subscribed"),
            (
                facts(Granted, true, true, false),
                register(false),
                "confirm the server still has it",
            ),
            (
                facts(Granted, true, false, false),
                register(false),
                "the browser lost it",
            ),
            (
                facts(Granted, false, true, false),
                register(false),
                "the device forgot it",
            ),
            (facts(Granted, false, false, true), register(true), "a Yes to finish"),
            (facts(Denied, true, true, false), Plan::Forget, "permission revoked"),
            (facts(Default, true, false, true), Plan::Forget, "permission reset"),
            (
                facts(Default, false, false, true),
                Plan::Nothing,
                "no permission, nothing confirmed",
            ),
            (
                facts(Permission::Unsupported, true, false, false),
                Plan::Nothing,
                "the APIs throw: cannot tell",
            ),
        ] {
            assert_eq!(plan(case), expected, "{why}");
        }
    }

    #[test]
    fn topics_are_the_union_of_both_sides_and_the_pending_yes() {
        let remembered: SortedSet = ["a".to_owned(), "b".to_owned()].into();
        let all = topics(&remembered, Some(vec!["b".into(), "c".into()]), Some(vec!["d".into()]));
        assert_eq!(all.into_iter().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(
            topics(&remembered, None, None),
            remembered,
            "a server that forgot it loses nothing"
        );
    }

    #[test]
    fn a_rotated_or_unknown_key_needs_a_new_subscription() {
        assert!(!needs_new_subscription(true, Some("k1"), "k1"));
        assert!(needs_new_subscription(true, Some("k0"), "k1"), "rotated");
        assert!(
            needs_new_subscription(true, None, "k1"),
            "made before the key was remembered"
        );
        assert!(needs_new_subscription(false, Some("k1"), "k1"), "none in the browser");
    }
}
