//! Wire types shared by the page, the service worker and askwell-server:
//! the event kinds of the funnel, the push payload, the holdout variant.
//! The server depends on this crate (with the `serde` feature), so each of
//! these is spelt once.

use crate::error::{Error, Result};
use crate::template::is_safe_url;
use crate::value::Value;

/// The variant id a holdout device is counted under.
pub const HOLDOUT: &str = "holdout";

/// How the browser's own permission prompt was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeAnswer {
    /// Allowed.
    Granted,
    /// Blocked.
    Denied,
    /// Closed without an answer (the promise resolved `"default"`).
    Dismissed,
}

impl NativeAnswer {
    /// What `Notification.requestPermission()` resolved to; anything but
    /// `granted` and `denied` (`default`, an error) is a dismissal.
    pub fn from_browser(answer: &str) -> NativeAnswer {
        match answer {
            "granted" => NativeAnswer::Granted,
            "denied" => NativeAnswer::Denied,
            _ => NativeAnswer::Dismissed,
        }
    }

    /// The `state` of the page's `askwell:permission` event.
    pub fn as_str(self) -> &'static str {
        match self {
            NativeAnswer::Granted => "granted",
            NativeAnswer::Denied => "denied",
            NativeAnswer::Dismissed => "dismissed-native",
        }
    }

    /// Its funnel event.
    pub fn event(self) -> EventKind {
        match self {
            NativeAnswer::Granted => EventKind::NativeGranted,
            NativeAnswer::Denied => EventKind::NativeDenied,
            NativeAnswer::Dismissed => EventKind::NativeDismissed,
        }
    }
}

/// Every kind of funnel event (`POST /v1/events` `type`, the `events.type`
/// column). One definition: the page, the worker and the server iterate or
/// match this enum, and its text appears only here (and in SQL migrations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum EventKind {
    /// A prompt was shown (or, for a holdout device, would have been); the
    /// default only so event structs can use `..Default::default()`.
    #[default]
    PromptShown,
    /// "Yes".
    PromptAccepted,
    /// "Not now".
    PromptDismissed,
    /// The browser's own prompt: allowed.
    NativeGranted,
    /// The browser's own prompt: blocked.
    NativeDenied,
    /// The browser's own prompt: closed without an answer.
    NativeDismissed,
    /// A subscription was stored (recorded by the server).
    Subscribed,
    /// A subscription was deleted (recorded by the server).
    Unsubscribed,
    /// A push service accepted a push (recorded by the server).
    NotificationDelivered,
    /// The worker showed a notification.
    NotificationShown,
    /// A notification (or one of its buttons) was clicked.
    NotificationClicked,
    /// A notification was closed.
    NotificationDismissed,
    /// An app-defined conversion (`askwell.convert(name)`).
    Conversion,
    /// A page action the app forwards for a signed-in user (config
    /// `forward`): the action's name, time and key, with the user's proof.
    /// Not a funnel event: the server stores it as the user's event (what
    /// journeys follow), never in the funnel's table.
    Action,
    /// A signed-in user's traits (`identify(id, { proof, traits })`, config
    /// `user.traits`), with the user's proof: sent once per change, merged
    /// into the user on the server (`null` deletes one). Not a funnel event.
    Traits,
}

impl EventKind {
    /// Every kind, in funnel order.
    pub const ALL: [EventKind; 15] = [
        EventKind::PromptShown,
        EventKind::PromptAccepted,
        EventKind::PromptDismissed,
        EventKind::NativeGranted,
        EventKind::NativeDenied,
        EventKind::NativeDismissed,
        EventKind::Subscribed,
        EventKind::Unsubscribed,
        EventKind::NotificationDelivered,
        EventKind::NotificationShown,
        EventKind::NotificationClicked,
        EventKind::NotificationDismissed,
        EventKind::Conversion,
        EventKind::Action,
        EventKind::Traits,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PromptShown => "prompt_shown",
            EventKind::PromptAccepted => "prompt_accepted",
            EventKind::PromptDismissed => "prompt_dismissed",
            EventKind::NativeGranted => "native_granted",
            EventKind::NativeDenied => "native_denied",
            EventKind::NativeDismissed => "native_dismissed",
            EventKind::Subscribed => "subscribed",
            EventKind::Unsubscribed => "unsubscribed",
            EventKind::NotificationDelivered => "notification_delivered",
            EventKind::NotificationShown => "notification_shown",
            EventKind::NotificationClicked => "notification_clicked",
            EventKind::NotificationDismissed => "notification_dismissed",
            EventKind::Conversion => "conversion",
            EventKind::Action => "action",
            EventKind::Traits => "traits",
        }
    }

    /// The kind with this wire name.
    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Kinds the server records itself from what it stores (a subscription,
    /// a deletion, a push service's 201), so no client can claim them.
    pub fn recorded_by_server(self) -> bool {
        matches!(
            self,
            EventKind::Subscribed | EventKind::Unsubscribed | EventKind::NotificationDelivered
        )
    }

    /// Kinds the page sends (and `telemetry.necessary` may list).
    pub fn sent_by_page(self) -> bool {
        matches!(
            self,
            EventKind::PromptShown
                | EventKind::PromptAccepted
                | EventKind::PromptDismissed
                | EventKind::NativeGranted
                | EventKind::NativeDenied
                | EventKind::NativeDismissed
                | EventKind::Conversion
                | EventKind::Action
                | EventKind::Traits
        )
    }

    /// Kinds counted in the funnel (the `events` table, the stats and their
    /// CSV): all but [`EventKind::Action`] and [`EventKind::Traits`], which
    /// are a user's.
    pub fn in_funnel(self) -> bool {
        !self.of_user()
    }

    /// Kinds that belong to a signed-in user and go with their proof:
    /// [`EventKind::Action`] and [`EventKind::Traits`].
    pub fn of_user(self) -> bool {
        matches!(self, EventKind::Action | EventKind::Traits)
    }
}

/// Longest event or action name ([`is_event_name`]).
pub const MAX_EVENT_NAME: usize = 64;

/// An event name as user events and forwarded actions take it: 1 to
/// [`MAX_EVENT_NAME`] of `A-Z a-z 0-9 _ . : -` (what `track(name)` and
/// `data-askwell-action` use, and what journeys match on).
pub fn is_event_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_EVENT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

#[cfg(feature = "serde")]
impl serde::Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        EventKind::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown event type {text:?}")))
    }
}

/// A button on a notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushAction {
    /// Action id, passed back in `notificationclick`.
    pub action: String,
    /// Button label.
    pub title: String,
    /// Button icon URL.
    pub icon: Option<String>,
    /// Page opened when this button is clicked.
    pub url: Option<String>,
    /// [`crate::one_tap::SNOOZE`]: how many hours everything pauses.
    pub hours: Option<u32>,
    /// [`crate::one_tap`]'s buttons: the confirmation's text in the site's
    /// language (else an English one).
    pub confirm: Option<String>,
}

/// The JSON body askwell-server pushes; the worker turns it into a notification.
///
/// The `askwell: 1` marker lets the worker ignore pushes that belong to the
/// app's own code when both live in one service worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushPayload {
    /// Notification title (required).
    pub title: String,
    /// Notification body.
    pub body: String,
    /// Icon URL.
    pub icon: Option<String>,
    /// Large image URL.
    pub image: Option<String>,
    /// Monochrome badge URL (Android status bar).
    pub badge: Option<String>,
    /// Page to open or focus on click.
    pub url: Option<String>,
    /// Replaces an earlier notification with the same tag.
    pub tag: Option<String>,
    /// Alert again when replacing a tagged notification.
    pub renotify: bool,
    /// Stay until the user acts (desktop).
    pub require_interaction: bool,
    /// No sound or vibration.
    pub silent: bool,
    /// Buttons (browsers show up to two).
    pub actions: Vec<PushAction>,
    /// Delivery id (`notification:delivery`), reported with clicks and dismissals.
    pub delivery: Option<String>,
    /// The topic it was sent to and its category: what
    /// [`crate::one_tap::MUTE`] turns off (the server writes them only for
    /// a push with that button).
    pub topic: Option<String>,
    /// See `topic`.
    pub category: Option<String>,
}

/// Most buttons kept (Chrome shows two; more are noise).
const MAX_ACTIONS: usize = 2;

/// The member that marks a push as Askwell's (`"askwell": 1`).
const MARKER: &str = "askwell";

/// The server writes what [`PushPayload::read`] reads: Askwell's marker
/// first, then the camelCase fields; absent options, `false` flags, an empty
/// body and no buttons are left out (they read back as the same defaults,
/// and every byte counts against the 3052-byte limit of a push).
#[cfg(feature = "serde")]
impl serde::Serialize for PushPayload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("PushPayload", 13)?;
        out.serialize_field(MARKER, &1u8)?;
        out.serialize_field("title", &self.title)?;
        if !self.body.is_empty() {
            out.serialize_field("body", &self.body)?;
        }
        for (key, value) in [
            ("icon", &self.icon),
            ("image", &self.image),
            ("badge", &self.badge),
            ("url", &self.url),
            ("tag", &self.tag),
        ] {
            if let Some(value) = value {
                out.serialize_field(key, value)?;
            }
        }
        for (key, on) in [
            ("renotify", self.renotify),
            ("requireInteraction", self.require_interaction),
            ("silent", self.silent),
        ] {
            if on {
                out.serialize_field(key, &true)?;
            }
        }
        if !self.actions.is_empty() {
            out.serialize_field("actions", &self.actions)?;
        }
        if let Some(delivery) = &self.delivery {
            out.serialize_field("delivery", delivery)?;
        }
        for (key, value) in [("topic", &self.topic), ("category", &self.category)] {
            if let Some(value) = value {
                out.serialize_field(key, value)?;
            }
        }
        out.end()
    }
}

/// A button as [`PushPayload::read`] reads it; absent options left out.
#[cfg(feature = "serde")]
impl serde::Serialize for PushAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("PushAction", 6)?;
        out.serialize_field("action", &self.action)?;
        out.serialize_field("title", &self.title)?;
        for (key, value) in [("icon", &self.icon), ("url", &self.url), ("confirm", &self.confirm)] {
            if let Some(value) = value {
                out.serialize_field(key, value)?;
            }
        }
        if let Some(hours) = self.hours {
            out.serialize_field("hours", &hours)?;
        }
        out.end()
    }
}

impl PushPayload {
    /// Whether a parsed JSON value carries Askwell's marker.
    pub fn is_askwell(value: &Value) -> bool {
        value.get(MARKER).and_then(Value::as_f64) == Some(1.0)
    }

    /// Reads a payload from parsed JSON (no serde: keeps the worker small).
    /// Optional fields of the wrong type are dropped, not fatal.
    ///
    /// # Errors
    /// [`Error::InvalidPayload`] when it is not Askwell's or has no title.
    pub fn read(value: &Value) -> Result<PushPayload> {
        if !Self::is_askwell(value) {
            return Err(Error::InvalidPayload("not an Askwell push".into()));
        }
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let link = |key: &str| safe_url(value.get(key));
        let flag = |key: &str| matches!(value.get(key), Some(Value::Bool(true)));
        let title = text("title")
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| Error::InvalidPayload("title is empty".into()))?;
        Ok(PushPayload {
            title,
            body: text("body").unwrap_or_default(),
            icon: link("icon"),
            image: link("image"),
            badge: link("badge"),
            url: link("url"),
            tag: text("tag"),
            renotify: flag("renotify"),
            require_interaction: flag("requireInteraction"),
            silent: flag("silent"),
            actions: read_actions(value.get("actions")),
            delivery: text("delivery"),
            topic: text("topic"),
            category: text("category"),
        })
    }

    /// The generic notification shown when an Askwell push cannot be read:
    /// with `userVisibleOnly` every push must show something.
    pub fn fallback(title: &str) -> PushPayload {
        PushPayload {
            title: title.to_owned(),
            ..PushPayload::default()
        }
    }

    /// The page to open for a click on `action` (`""` = the notification itself).
    pub fn click_url(&self, action: &str) -> Option<&str> {
        let from_action = self
            .actions
            .iter()
            .find(|a| !action.is_empty() && a.action == action)
            .and_then(|a| a.url.as_deref());
        from_action.or(self.url.as_deref())
    }
}

/// What the worker does with one push.
// One value per push, moved once: boxing the payload would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Show this notification; the value is the raw payload (kept as the
    /// notification's `data`, so clicks can report its delivery id).
    Show(PushPayload, Value),
    /// Not an Askwell push (no data, not JSON, no marker): the app's own
    /// `push` handler shows it.
    Ignore,
}

/// Decides what to do with a push whose data parsed as `data` (`None`: no
/// data or not JSON). Askwell's payloads are shown; a malformed one of ours
/// falls back to a generic notification titled `fallback_title` (with
/// `userVisibleOnly` every push must show something, and browsers penalise
/// silent pushes), keeping its delivery id; anything else is ignored.
pub fn classify_push(data: Option<Value>, fallback_title: &str) -> Incoming {
    let Some(value) = data.filter(PushPayload::is_askwell) else {
        return Incoming::Ignore;
    };
    match PushPayload::read(&value) {
        Ok(payload) => Incoming::Show(payload, value),
        Err(_) => {
            let delivery = value.get("delivery").cloned().unwrap_or(Value::Null);
            Incoming::Show(
                PushPayload::fallback(fallback_title),
                Value::object([(MARKER, 1u64.into()), ("delivery", delivery)]),
            )
        }
    }
}

/// Where a notification click goes, given the windows already open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClickRoute {
    /// A window already shows the target: focus it.
    Focus(usize),
    /// A window of the same origin is open: navigate it to the target, then focus.
    Navigate(usize),
    /// Nothing suitable is open: open a new window.
    Open,
}

/// Chooses how to show `target` (an absolute URL): an exact match (ignoring
/// the fragment) wins, then any window of the same origin, else a new window.
/// Users complain most about clicks that open a second tab of an open app.
pub fn route_click(target: &str, open_windows: &[&str]) -> ClickRoute {
    let without_fragment = |url: &str| url.split('#').next().unwrap_or(url).to_owned();
    let wanted = without_fragment(target);
    if let Some(i) = open_windows.iter().position(|url| without_fragment(url) == wanted) {
        return ClickRoute::Focus(i);
    }
    let origin = origin_of(target);
    match open_windows
        .iter()
        .position(|url| origin.is_some() && origin_of(url) == origin)
    {
        Some(i) => ClickRoute::Navigate(i),
        None => ClickRoute::Open,
    }
}

/// `scheme://host[:port]` of an absolute URL.
/// `https://host:port` of an absolute URL. Byte scans and `get` instead of
/// `find` and slicing: no substring searcher or panic paths in the worker.
fn origin_of(url: &str) -> Option<&str> {
    let bytes = url.as_bytes();
    let host = bytes.windows(3).position(|w| w == b"://")? + 3;
    let end = bytes
        .iter()
        .skip(host)
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(bytes.len(), |n| host + n);
    url.get(..end)
}

/// A URL field of a push, dropped unless [`is_safe_url`]: the server refuses
/// other schemes at `/v1/notify`, but a push queued before it did, or sent
/// by anyone holding the VAPID key, must not reach `openWindow`, `navigate`
/// or an icon's fetch with `javascript:` or `data:`.
fn safe_url(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|url| is_safe_url(url))
        .map(str::to_owned)
}

fn read_actions(value: Option<&Value>) -> Vec<PushAction> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
            Some(PushAction {
                action: text("action")?,
                title: text("title")?,
                icon: safe_url(item.get("icon")),
                url: safe_url(item.get("url")),
                hours: item
                    .get("hours")
                    .and_then(Value::as_f64)
                    .filter(|h| h.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(h))
                    .map(|h| h as u32),
                confirm: text("confirm"),
            })
        })
        .take(MAX_ACTIONS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::from_json;

    #[test]
    fn every_event_kind_round_trips_through_its_wire_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("prompt_seen"), None);
        let page: Vec<_> = EventKind::ALL.into_iter().filter(|k| k.sent_by_page()).collect();
        assert!(page.iter().all(|k| !k.recorded_by_server()));
        let outside: Vec<_> = EventKind::ALL.into_iter().filter(|k| !k.in_funnel()).collect();
        assert_eq!(
            outside,
            [EventKind::Action, EventKind::Traits],
            "only a user's actions and traits stay out of the funnel"
        );
        assert!(EventKind::Action.sent_by_page() && EventKind::Traits.sent_by_page());
    }

    #[test]
    fn event_names_are_short_words_of_a_small_alphabet() {
        for name in [
            "added_to_cart",
            "checkout.started",
            "a:b-c",
            &"x".repeat(MAX_EVENT_NAME),
        ] {
            assert!(is_event_name(name), "{name}");
        }
        for name in ["", "two words", "caf\u{e9}", "a/b", &"x".repeat(MAX_EVENT_NAME + 1)] {
            assert!(!is_event_name(name), "{name}");
        }
    }

    #[test]
    fn reads_every_field_and_drops_mistyped_optionals() {
        let value = from_json(
            r#"{"askwell":1,"title":"Bill replied","body":"6?","url":"/chat","tag":7,"renotify":true,"requireInteraction":"yes",
                "actions":[{"action":"reply","title":"Reply","url":"/chat#reply"},{"title":"no id"},{"action":"a","title":"A"},{"action":"b","title":"B"}],
                "delivery":"n1:42"}"#,
        );
        let payload = PushPayload::read(&value).expect("valid");
        assert_eq!(
            (payload.title.as_str(), payload.url.as_deref(), payload.tag),
            ("Bill replied", Some("/chat"), None)
        );
        assert!(payload.renotify && !payload.require_interaction);
        assert_eq!(
            payload.actions.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(),
            vec!["reply", "a"]
        );
        assert_eq!(payload.delivery.as_deref(), Some("n1:42"));
    }

    #[test]
    fn a_push_is_shown_replaced_by_the_fallback_or_left_to_the_app() {
        let ours = from_json(r#"{"askwell":1,"title":"Hi","delivery":"n:1"}"#);
        assert!(matches!(classify_push(Some(ours), "New"), Incoming::Show(p, _) if p.title == "Hi"));
        let malformed = from_json(r#"{"askwell":1,"title":"  ","delivery":"n:2"}"#);
        match classify_push(Some(malformed), "New") {
            Incoming::Show(payload, raw) => {
                assert_eq!(payload.title, "New");
                assert_eq!(
                    raw.get("delivery").and_then(Value::as_str),
                    Some("n:2"),
                    "the click is still reported"
                );
            }
            Incoming::Ignore => panic!("a malformed Askwell push must still show"),
        }
        assert_eq!(
            classify_push(Some(from_json(r#"{"title":"app's own"}"#)), "New"),
            Incoming::Ignore
        );
        assert_eq!(classify_push(None, "New"), Incoming::Ignore);
    }

    /// What the server writes is what the worker reads, every field.
    #[cfg(feature = "serde")]
    #[test]
    fn a_serialised_payload_reads_back_as_itself() {
        let full = PushPayload {
            title: "Bill replied".into(),
            body: "Friday?".into(),
            icon: Some("/i.png".into()),
            image: Some("/big.png".into()),
            badge: Some("/b.png".into()),
            url: Some("/chat".into()),
            tag: Some("bill".into()),
            renotify: true,
            require_interaction: true,
            silent: true,
            actions: vec![
                PushAction {
                    action: "reply".into(),
                    title: "Reply".into(),
                    icon: Some("/r.png".into()),
                    url: Some("/chat#reply".into()),
                    hours: None,
                    confirm: None,
                },
                PushAction {
                    action: "askwell:snooze".into(),
                    title: "Pause for a day".into(),
                    hours: Some(24),
                    confirm: Some("En pause".into()),
                    ..PushAction::default()
                },
            ],
            delivery: Some("n1:42".into()),
            topic: Some("thread:42".into()),
            category: Some("replies".into()),
        };
        let minimal = PushPayload::fallback("Hi");
        for payload in [full, minimal] {
            let text = serde_json::to_string(&payload).expect("serialises");
            assert_eq!(PushPayload::read(&from_json(&text)).as_ref(), Ok(&payload), "{text}");
        }
        let text = serde_json::to_string(&PushPayload::fallback("Hi")).expect("serialises");
        assert_eq!(text, r#"{"askwell":1,"title":"Hi"}"#, "defaults are left out");
    }

    #[test]
    fn rejects_foreign_and_untitled_payloads() {
        assert!(PushPayload::read(&from_json(r#"{"title":"x"}"#)).is_err());
        assert!(PushPayload::read(&from_json(r#"{"askwell":1,"title":42}"#)).is_err());
        assert!(PushPayload::read(&from_json(r#"{"askwell":1,"title":"  "}"#)).is_err());
    }

    #[test]
    fn click_routing_table() {
        let open = [
            "https://app.test/inbox",
            "https://app.test/thread/1#last",
            "https://other.test/",
        ];
        assert_eq!(route_click("https://app.test/thread/1", &open), ClickRoute::Focus(1));
        assert_eq!(route_click("https://app.test/thread/2", &open), ClickRoute::Navigate(0));
        assert_eq!(route_click("https://new.test/", &open), ClickRoute::Open);
        assert_eq!(
            route_click("https://app.test:8443/x", &open),
            ClickRoute::Open,
            "a port is part of the origin"
        );
        assert_eq!(route_click("https://app.test/x", &[]), ClickRoute::Open);
    }

    #[test]
    fn routes_clicks_to_the_action_url_then_the_notification_url() {
        let payload = PushPayload::read(&from_json(r#"{"askwell":1,"title":"t","url":"/thread","actions":[{"action":"mute","title":"Mute","url":"/settings"},{"action":"later","title":"Later"}]}"#)).expect("valid");
        assert_eq!(payload.click_url(""), Some("/thread"));
        assert_eq!(payload.click_url("mute"), Some("/settings"));
        assert_eq!(payload.click_url("later"), Some("/thread"));
    }

    #[test]
    fn a_push_never_hands_the_browser_an_unsafe_url() {
        // A push queued before the server refused such URLs (or sent by
        // anything holding the VAPID key) may still carry one: the worker
        // drops it, so a click opens the scope ("/") and nothing loads it.
        let payload = PushPayload::read(&from_json(
            r#"{"askwell":1,"title":"t","url":" JavaScript:alert(1)","icon":"data:image/svg+xml,<svg/>","image":"java\nscript:x","badge":"vbscript:x","actions":[{"action":"open","title":"Open","url":"javascript:alert(2)","icon":"data:x"},{"action":"ok","title":"OK","url":"https://app.test/ok","icon":"/i.png"}]}"#,
        ))
        .expect("the push still shows");
        assert_eq!(payload.url, None);
        assert_eq!((&payload.icon, &payload.image, &payload.badge), (&None, &None, &None));
        assert_eq!(payload.click_url(""), None);
        assert_eq!(payload.click_url("open"), None);
        assert_eq!(payload.actions[0].icon, None);
        assert_eq!(payload.click_url("ok"), Some("https://app.test/ok"));
        assert_eq!(payload.actions[1].icon.as_deref(), Some("/i.png"));
    }
}
