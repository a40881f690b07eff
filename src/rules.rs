//! Trigger rules: *when* to offer *which* prompt.
//!
//! A rule's condition mixes event conditions (an action, a page view, time on
//! page, a return visit), which fire in response to a [`Signal`], with state
//! conditions (path, user traits, topics, permission), which only filter. A
//! rule fires when its whole condition holds for the current signal.
//!
//! Traits and topics are the segments' own atoms ([`crate::segment`]): read,
//! and judged, by the code the server's segments use, so `{ "trait":
//! "seats", "gte": 5 }` means the same on the page as in `POST /v1/notify`.

use crate::sorted::SortedMap;

use crate::segment::{Scalar, Segment};

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 24 * 60 * MINUTE_MS;

/// The person or thing an action is about ("Bill"), used in prompt copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entity {
    /// App-defined id (`"user:17"`).
    pub id: String,
    /// Display name, inserted as text into `{entity.name}`.
    pub name: String,
    /// Optional avatar URL (http(s) or relative only).
    pub avatar: Option<String>,
}

impl Entity {
    /// Value of a template field such as `entity.name`.
    pub fn field(&self, path: &str) -> Option<&str> {
        let value = match path {
            "entity.id" => &self.id,
            "entity.name" => &self.name,
            _ => return None,
        };
        (!value.is_empty()).then_some(value.as_str())
    }
}

/// Notification permission as the browser reports it, plus "unsupported".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Permission {
    /// Not asked yet (`"default"`).
    #[default]
    Default,
    /// Allowed.
    Granted,
    /// Blocked: never trigger the native prompt again.
    Denied,
    /// No Notification/PushManager/serviceWorker here (or iOS outside a home-screen app).
    Unsupported,
}

impl Permission {
    /// Parses the browser's `Notification.permission` string.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "default" | "prompt" => Some(Self::Default),
            "granted" => Some(Self::Granted),
            "denied" => Some(Self::Denied),
            "unsupported" => Some(Self::Unsupported),
            _ => None,
        }
    }

    /// The string used in config and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Granted => "granted",
            Self::Denied => "denied",
            Self::Unsupported => "unsupported",
        }
    }
}

/// Something that happened, fed to the engine by the glue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// An app action: `track(name, props)` or a `data-askwell-action` element.
    Action {
        /// Action name.
        name: String,
        /// What it was about.
        entity: Option<Entity>,
        /// Push topic it relates to (`"thread:42"`).
        topic: Option<String>,
    },
    /// The page was (re)loaded or became visible again after a long time.
    PageView,
    /// Time passed on the page (for time-on-page rules).
    Tick,
}

impl Signal {
    /// Shorthand for an action without entity or topic.
    pub fn action(name: &str) -> Self {
        Signal::Action {
            name: name.to_owned(),
            entity: None,
            topic: None,
        }
    }

    /// The trigger name reported in events.
    pub fn trigger(&self) -> &str {
        match self {
            Signal::Action { name, .. } => name,
            Signal::PageView => "page_view",
            Signal::Tick => "time_on_page",
        }
    }
}

/// How often an action must have happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Occurrence {
    /// Every time.
    Each,
    /// Exactly the nth time in this session.
    Nth(u64),
    /// Every nth time in this session.
    Every(u64),
    /// At least `count` times within the last `within_ms`.
    CountWithin {
        /// Needed occurrences.
        count: u64,
        /// Window length.
        within_ms: u64,
    },
    /// The lifetime total reaches exactly this value (a milestone).
    Milestone(u64),
}

/// A condition of a rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The signal is this action, with its occurrence requirement.
    Action {
        /// Action name.
        name: String,
        /// How often.
        occurrence: Occurrence,
    },
    /// A page view, once at least this many pages were viewed (lifetime).
    PageViews(u64),
    /// At least this long on the current page.
    TimeOnPage(u64),
    /// A page view after at least this long without any activity.
    ReturnAfter(u64),
    /// The current path matches this pattern (`*` matches any run of characters).
    Path(String),
    /// A segment atom the page can judge: a trait test over `user.traits`
    /// (`equals`, `in`, `exists`, `gte`, `lte`) or a topic pattern over its
    /// subscription's topics.
    Segment(Segment),
    /// The notification permission is this.
    Permission(Permission),
    /// All hold.
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    /// Does not hold.
    Not(Box<Condition>),
}

/// When to offer a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Id of the prompt to offer.
    pub prompt: String,
    /// When.
    pub when: Condition,
}

/// What the engine remembers about past activity on this device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    /// Recent times of each action (bounded), for count-within-window rules.
    pub recent: SortedMap<Vec<u64>>,
    /// Lifetime count of each action, for milestones.
    pub totals: SortedMap<u64>,
    /// Lifetime page views.
    pub page_views: u64,
    /// Last time anything happened (before the current signal).
    pub last_seen_ms: Option<u64>,
}

impl Activity {
    /// Folds in activity another tab saved: each tab counts what happened in
    /// it, so adopting the other's copy alone would lose this tab's actions
    /// not yet written (writes are batched). Totals and page views take the
    /// larger count, recent times the union (bounded), `last_seen` the later.
    pub fn merge(&mut self, other: &Activity) {
        for (action, total) in &other.totals {
            if !self.counts(action) {
                continue;
            }
            let mine = self.totals.entry(action.clone()).or_insert(0);
            *mine = (*mine).max(*total);
        }
        for (action, times) in &other.recent {
            if !self.counts(action) {
                continue;
            }
            let mine = self.recent.entry(action.clone()).or_default();
            mine.extend(times);
            sort_short(mine);
            mine.dedup();
            if mine.len() > RECENT_LIMIT {
                mine.drain(..mine.len() - RECENT_LIMIT);
            }
        }
        self.page_views = self.page_views.max(other.page_views);
        self.last_seen_ms = self.last_seen_ms.max(other.last_seen_ms);
    }
}

/// Sorts a list of at most 2 × [`RECENT_LIMIT`] times: an insertion sort,
/// as `sort_unstable` would put 3.5 kB of quicksort into the page's wasm
/// for lists this short (and already almost in order).
fn sort_short(times: &mut [u64]) {
    for i in 1..times.len() {
        let mut j = i;
        while j > 0 && times[j - 1] > times[j] {
            times.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// What the engine remembers about this tab session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Occurrences of each action in this session.
    pub counts: SortedMap<u64>,
    /// When the current page was loaded.
    pub page_start_ms: u64,
    /// Prompts shown in this session (for the per-session budget).
    pub prompts_shown: u32,
}

/// Most recent timestamps kept per action; bounds storage whatever the app does.
pub const RECENT_LIMIT: usize = 64;

impl Activity {
    /// Whether actions named `name` are counted: names longer than the
    /// server takes, and new names once [`crate::state::ACTION_LIMIT`] are
    /// counted, are not (so the stored activity stays bounded and reads
    /// back as written). A rule on such an action never fires.
    fn counts(&self, name: &str) -> bool {
        crate::state::fits(name) && (self.totals.contains_key(name) || self.totals.len() < crate::state::ACTION_LIMIT)
    }

    /// Records `signal` at `now_ms`; returns how long the user had been away.
    pub fn record(&mut self, session: &mut Session, signal: &Signal, now_ms: u64) -> Option<u64> {
        let away = self.last_seen_ms.map(|seen| now_ms.saturating_sub(seen));
        match signal {
            Signal::Action { name, .. } if !self.counts(name) => {
                // Still activity (it ends an absence), just not counted.
            }
            Signal::Action { name, .. } => {
                let recent = self.recent.entry(name.clone()).or_default();
                recent.push(now_ms);
                if recent.len() > RECENT_LIMIT {
                    recent.drain(..recent.len() - RECENT_LIMIT);
                }
                *self.totals.entry(name.clone()).or_default() += 1;
                *session.counts.entry(name.clone()).or_default() += 1;
            }
            Signal::PageView => {
                self.page_views += 1;
                session.page_start_ms = now_ms;
            }
            Signal::Tick => return away,
        }
        self.last_seen_ms = Some(now_ms);
        away
    }
}

/// Everything a condition may look at.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The current signal.
    pub signal: &'a Signal,
    /// Device history, already including the current signal.
    pub activity: &'a Activity,
    /// Tab session, already including the current signal.
    pub session: &'a Session,
    /// Time since the previous activity, if any.
    pub away_ms: Option<u64>,
    /// Current `location.pathname`.
    pub path: &'a str,
    /// User traits from the config's `user.traits`.
    pub traits: &'a SortedMap<Scalar>,
    /// The topics of this device's subscription (none without one).
    pub topics: &'a [String],
    /// Notification permission.
    pub permission: Permission,
    /// Now.
    pub now_ms: u64,
}

impl Condition {
    /// Whether the condition holds in `ctx`.
    pub fn holds(&self, ctx: &Context<'_>) -> bool {
        match self {
            Condition::Action { name, occurrence } => action_holds(name, occurrence, ctx),
            Condition::PageViews(n) => *ctx.signal == Signal::PageView && ctx.activity.page_views >= *n,
            Condition::TimeOnPage(ms) => {
                *ctx.signal == Signal::Tick && ctx.now_ms.saturating_sub(ctx.session.page_start_ms) >= *ms
            }
            Condition::ReturnAfter(ms) => {
                *ctx.signal == Signal::PageView && ctx.away_ms.is_some_and(|away| away >= *ms)
            }
            Condition::Path(pattern) => glob_match(pattern, ctx.path),
            Condition::Segment(atom) => atom.matches_on_page(ctx.traits, ctx.topics),
            Condition::Permission(p) => ctx.permission == *p,
            Condition::All(all) => all.iter().all(|c| c.holds(ctx)),
            Condition::Any(any) => any.iter().any(|c| c.holds(ctx)),
            Condition::Not(c) => !c.holds(ctx),
        }
    }

    /// Whether the condition contains something that fires on a signal; a rule
    /// made only of filters (path, traits) would fire on everything.
    pub fn has_event(&self) -> bool {
        match self {
            Condition::Action { .. }
            | Condition::PageViews(_)
            | Condition::TimeOnPage(_)
            | Condition::ReturnAfter(_) => true,
            Condition::Path(_) | Condition::Segment(_) | Condition::Permission(_) | Condition::Not(_) => false,
            Condition::All(all) => all.iter().any(Condition::has_event),
            Condition::Any(any) => !any.is_empty() && any.iter().all(Condition::has_event),
        }
    }

    /// The shortest time-on-page threshold, so the glue knows when to tick.
    pub fn min_time_on_page(&self) -> Option<u64> {
        match self {
            Condition::TimeOnPage(ms) => Some(*ms),
            Condition::All(cs) | Condition::Any(cs) => cs.iter().filter_map(Condition::min_time_on_page).min(),
            _ => None,
        }
    }
}

fn action_holds(name: &str, occurrence: &Occurrence, ctx: &Context<'_>) -> bool {
    let Signal::Action { name: signal_name, .. } = ctx.signal else {
        return false;
    };
    if signal_name != name {
        return false;
    }
    let in_session = ctx.session.counts.get(name).copied().unwrap_or(0);
    match occurrence {
        Occurrence::Each => true,
        Occurrence::Nth(n) => in_session == *n,
        Occurrence::Every(n) => *n > 0 && in_session % n == 0,
        Occurrence::CountWithin { count, within_ms } => {
            let since = ctx.now_ms.saturating_sub(*within_ms);
            let recent = ctx
                .activity
                .recent
                .get(name)
                .map_or(0, |times| times.iter().filter(|t| **t >= since).count());
            recent as u64 >= *count
        }
        Occurrence::Milestone(n) => ctx.activity.totals.get(name).copied().unwrap_or(0) == *n,
    }
}

/// `*` matches any run of characters; everything else literally.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return text.is_empty();
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Days to milliseconds, for config readers; saturating, as a config may
/// give up to 9e15 days (`u64::MAX` ms is "never").
pub const fn days(n: u64) -> u64 {
    n.saturating_mul(DAY_MS)
}

/// Minutes to milliseconds, for config readers; saturating like [`days`].
pub const fn minutes(n: u64) -> u64 {
    n.saturating_mul(MINUTE_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_recent_times_are_sorted_unique_and_bounded() {
        let mut mine = Activity::default();
        mine.recent.insert("sent".into(), (0..50).map(|t| t * 3).collect());
        let mut theirs = Activity::default();
        // Another tab's copy, out of order (storage anyone can edit).
        theirs
            .recent
            .insert("sent".into(), (0..50).rev().map(|t| t * 2).collect());
        mine.merge(&theirs);
        let mut expected: Vec<u64> = (0..50).map(|t| t * 3).chain((0..50).map(|t| t * 2)).collect();
        expected.sort_unstable();
        expected.dedup();
        let expected = expected[expected.len() - RECENT_LIMIT..].to_vec();
        assert_eq!(mine.recent["sent"], expected);
    }

    struct World {
        activity: Activity,
        session: Session,
        traits: SortedMap<Scalar>,
        topics: Vec<String>,
        away: Option<u64>,
    }

    impl World {
        fn new() -> Self {
            Self {
                activity: Activity::default(),
                session: Session::default(),
                traits: SortedMap::new(),
                topics: Vec::new(),
                away: None,
            }
        }

        /// Records `signal` and says whether `condition` fires on it.
        fn fires(&mut self, condition: &Condition, signal: Signal, now_ms: u64, path: &str) -> bool {
            self.away = self.activity.record(&mut self.session, &signal, now_ms);
            let ctx = Context {
                signal: &signal,
                activity: &self.activity,
                session: &self.session,
                away_ms: self.away,
                path,
                traits: &self.traits,
                topics: &self.topics,
                permission: Permission::Default,
                now_ms,
            };
            condition.holds(&ctx)
        }
    }

    fn action(name: &str, occurrence: Occurrence) -> Condition {
        Condition::Action {
            name: name.into(),
            occurrence,
        }
    }

    /// Which of `n` consecutive `sent` actions (1-based, one minute apart) fire.
    fn firing_occurrences(condition: &Condition, n: u64) -> Vec<u64> {
        let mut world = World::new();
        (1..=n)
            .filter(|i| world.fires(condition, Signal::action("sent"), minutes(*i), "/"))
            .collect()
    }

    #[test]
    fn occurrence_table() {
        let table: [(Occurrence, Vec<u64>); 5] = [
            (Occurrence::Each, vec![1, 2, 3, 4, 5, 6]),
            (Occurrence::Nth(3), vec![3]),
            (Occurrence::Every(2), vec![2, 4, 6]),
            (
                Occurrence::CountWithin {
                    count: 3,
                    within_ms: minutes(2),
                },
                vec![3, 4, 5, 6],
            ),
            (Occurrence::Milestone(5), vec![5]),
        ];
        for (occurrence, expected) in table {
            assert_eq!(
                firing_occurrences(&action("sent", occurrence.clone()), 6),
                expected,
                "{occurrence:?}"
            );
        }
    }

    #[test]
    fn count_within_a_window_forgets_old_actions() {
        let condition = action(
            "sent",
            Occurrence::CountWithin {
                count: 2,
                within_ms: minutes(5),
            },
        );
        let mut world = World::new();
        assert!(!world.fires(&condition, Signal::action("sent"), 0, "/"));
        assert!(
            !world.fires(&condition, Signal::action("sent"), minutes(10), "/"),
            "first one is too old"
        );
        assert!(world.fires(&condition, Signal::action("sent"), minutes(12), "/"));
    }

    #[test]
    fn fires_on_return_after_days_of_inactivity() {
        let condition = Condition::ReturnAfter(days(7));
        let mut world = World::new();
        assert!(
            !world.fires(&condition, Signal::PageView, 0, "/"),
            "first visit is no return"
        );
        assert!(!world.fires(&condition, Signal::PageView, days(6), "/"));
        assert!(world.fires(&condition, Signal::PageView, days(14), "/"));
    }

    #[test]
    fn page_views_time_on_page_path_and_traits() {
        let mut world = World::new();
        let views = Condition::PageViews(3);
        assert!(!world.fires(&views, Signal::PageView, 0, "/"));
        assert!(!world.fires(&views, Signal::PageView, 1, "/"));
        assert!(world.fires(&views, Signal::PageView, 2, "/"));
        let dwell = Condition::TimeOnPage(30_000);
        assert!(!world.fires(&dwell, Signal::Tick, 20_000, "/"));
        assert!(world.fires(&dwell, Signal::Tick, 40_000, "/"));
        let on_product = Condition::All(vec![
            action("viewed", Occurrence::Each),
            Condition::Path("/products/*".into()),
        ]);
        assert!(world.fires(&on_product, Signal::action("viewed"), 3, "/products/42"));
        assert!(!world.fires(&on_product, Signal::action("viewed"), 4, "/cart"));
        world.traits.insert("plan".into(), Scalar::Text("pro".into()));
        let pro = Condition::Segment(Segment::Trait {
            name: "plan".into(),
            test: crate::segment::TraitTest::In(vec![Scalar::Text("pro".into()), Scalar::Text("team".into())]),
        });
        assert!(world.fires(
            &Condition::All(vec![action("viewed", Occurrence::Each), pro.clone()]),
            Signal::action("viewed"),
            5,
            "/"
        ));
        assert!(!world.fires(
            &Condition::All(vec![action("viewed", Occurrence::Each), Condition::Not(Box::new(pro))]),
            Signal::action("viewed"),
            6,
            "/"
        ));
    }

    #[test]
    fn traits_and_topics_are_judged_as_segments_judge_them() {
        use crate::segment::TraitTest::{AtLeast, AtMost, Equals, Exists};
        let mut world = World::new();
        world.traits.insert("seats".into(), Scalar::Number(7.0));
        world.topics.push("thread:bill".into());
        let viewed = |atom: Segment| Condition::All(vec![action("viewed", Occurrence::Each), Condition::Segment(atom)]);
        let seats = |test| Segment::Trait {
            name: "seats".into(),
            test,
        };
        for (atom, expected) in [
            (seats(AtLeast(5.0)), true),
            (seats(AtMost(5.0)), false),
            (seats(Exists), true),
            (seats(Equals(Scalar::Number(7.0))), true),
            // Typed, as on the server: the text "7" is not the number 7.
            (seats(Equals(Scalar::Text("7".into()))), false),
            (Segment::Topic("thread:*".into()), true),
            (Segment::Topic("news".into()), false),
        ] {
            let fired = world.fires(&viewed(atom.clone()), Signal::action("viewed"), 1, "/");
            assert_eq!(fired, expected, "{atom:?}");
        }
    }

    #[test]
    fn glob_patterns() {
        for (pattern, text, expected) in [
            ("/a", "/a", true),
            ("/a", "/ab", false),
            ("/a/*", "/a/b/c", true),
            ("*/edit", "/doc/1/edit", true),
            ("/p/*/x*", "/p/1/xyz", true),
            ("/p/*/x", "/p/1/y", false),
            ("*", "", true),
        ] {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn filters_alone_have_no_event() {
        assert!(!Condition::Path("/".into()).has_event());
        assert!(Condition::All(vec![Condition::Path("/".into()), Condition::PageViews(1)]).has_event());
        assert!(!Condition::Any(vec![Condition::Path("/".into()), Condition::PageViews(1)]).has_event());
    }

    #[test]
    fn bounds_recent_history() {
        let mut world = World::new();
        for i in 0..200 {
            world.fires(&Condition::PageViews(1), Signal::action("sent"), i, "/");
        }
        assert_eq!(world.activity.recent["sent"].len(), RECENT_LIMIT);
        assert_eq!(world.activity.totals["sent"], 200);
    }

    /// Found while fuzzing the config reader (fuzz/, target `config`):
    /// `returnAfterDays` and `withinMinutes` accept integers up to 9e15, and
    /// multiplying those into milliseconds overflowed (a panic in debug
    /// builds, a wrapped, much shorter wait in release ones).
    #[test]
    fn huge_day_and_minute_counts_saturate_instead_of_overflowing() {
        let config = crate::config::Config::read(&crate::value::from_json(
            r#"{"prompts": [{"id": "p", "message": "Hi"}],
                "rules": [{"prompt": "p", "when": {"returnAfterDays": 9e15}},
                          {"prompt": "p", "when": {"action": "a", "count": 2, "withinMinutes": 9e15}}]}"#,
        ))
        .expect("valid config");
        assert_eq!(config.rules[0].when, Condition::ReturnAfter(u64::MAX));
        assert_eq!(
            config.rules[1].when,
            Condition::Action {
                name: "a".into(),
                occurrence: Occurrence::CountWithin {
                    count: 2,
                    within_ms: u64::MAX
                }
            }
        );
        assert_eq!((days(1), minutes(2)), (DAY_MS, 2 * MINUTE_MS));
    }
}
