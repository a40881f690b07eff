//! Consent and telemetry, decided in one place: whether Askwell may store,
//! prompt and send its funnel events on this device.
//!
//! - `consent: "required"`: until the app calls `askwell.consent(true)`,
//!   nothing is stored but the answer itself, no prompt is shown and no event
//!   is sent; `consent(false)` turns all three off again (the glue also clears
//!   what was queued). Unsubscribing and forgetting are always allowed.
//! - `telemetry`: `"all"` (default), `"necessary"` (only the event types the
//!   app lists in `telemetry.necessary`) or `"none"` (`false` for short).
//! - Global Privacy Control (`navigator.globalPrivacyControl`, a person's
//!   standing "do not sell or share"): honoured by default by sending only
//!   the necessary events, like `"necessary"`; `globalPrivacyControl: "ignore"`
//!   opts out of that (for apps whose own notice covers it).
//!
//! Which events the page sends at all: [`EventKind::sent_by_page`]. The
//! actions a page forwards for a signed-in user ([`EventKind::Action`]) are
//! telemetry like the funnel: they wait for required consent, stop with
//! `telemetry: "none"` or a refusal, and under `"necessary"` or Global
//! Privacy Control go only when the app lists `"action"` as necessary. A
//! signed-in user's traits ([`EventKind::Traits`]) follow the same rules
//! under their own name: `"traits"` in `telemetry.necessary`.
//!
//! Without a server (no `server` in the config) nothing is sent either: see
//! [`crate::config::Config::server`].

use crate::model::EventKind;

/// What the app's config says about consent and telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privacy {
    /// Whether Askwell waits for `consent(true)` before doing anything.
    pub consent_required: bool,
    /// Which funnel events are sent.
    pub telemetry: Telemetry,
    /// Event types the app declares strictly necessary (sent under GPC and
    /// with `telemetry: "necessary"`).
    pub necessary: Vec<EventKind>,
    /// Whether Global Privacy Control limits telemetry to the necessary events.
    pub honour_gpc: bool,
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            consent_required: false,
            telemetry: Telemetry::All,
            necessary: Vec::new(),
            honour_gpc: true,
        }
    }
}

/// How much of the funnel is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Telemetry {
    /// Every funnel event.
    All,
    /// Only the events listed as necessary.
    Necessary,
    /// Nothing.
    None,
}

/// What the person answered to the app's consent question, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consent {
    /// Not asked yet (or nothing stored).
    #[default]
    Unknown,
    /// `consent(true)`.
    Given,
    /// `consent(false)`.
    Refused,
}

impl Consent {
    /// The stored flag's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Unknown => "",
            Consent::Given => "given",
            Consent::Refused => "refused",
        }
    }

    /// Reads the stored flag; anything else is `Unknown`.
    pub fn parse(text: &str) -> Consent {
        match text {
            "given" => Consent::Given,
            "refused" => Consent::Refused,
            _ => Consent::Unknown,
        }
    }
}

impl Privacy {
    /// Whether Askwell may store state and show prompts: with consent given,
    /// or when none is required and it was not refused.
    pub fn active(&self, consent: Consent) -> bool {
        match consent {
            Consent::Given => true,
            Consent::Refused => false,
            Consent::Unknown => !self.consent_required,
        }
    }

    /// Whether a funnel event of type `kind` may be sent (and so queued).
    /// `gpc`: the browser's Global Privacy Control signal.
    pub fn sends(&self, kind: EventKind, consent: Consent, gpc: bool) -> bool {
        if !self.active(consent) {
            return false;
        }
        let limited = self.telemetry == Telemetry::Necessary || (gpc && self.honour_gpc);
        match self.telemetry {
            Telemetry::None => false,
            _ if limited => self.necessary.contains(&kind),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind::{Conversion, PromptAccepted, PromptShown};

    fn privacy(required: bool, telemetry: Telemetry, necessary: &[EventKind]) -> Privacy {
        Privacy {
            consent_required: required,
            telemetry,
            necessary: necessary.to_vec(),
            honour_gpc: true,
        }
    }

    #[test]
    fn nothing_happens_before_required_consent_and_everything_after() {
        let p = privacy(true, Telemetry::All, &[]);
        assert!(!p.active(Consent::Unknown));
        assert!(!p.sends(PromptShown, Consent::Unknown, false));
        assert!(p.active(Consent::Given));
        assert!(p.sends(PromptShown, Consent::Given, false));
    }

    #[test]
    fn a_refusal_stops_everything_even_when_consent_is_not_required() {
        let p = privacy(false, Telemetry::All, &[PromptAccepted]);
        assert!(p.active(Consent::Unknown));
        assert!(!p.active(Consent::Refused));
        assert!(!p.sends(PromptAccepted, Consent::Refused, false));
    }

    #[test]
    fn global_privacy_control_limits_telemetry_to_the_necessary_events() {
        let p = privacy(false, Telemetry::All, &[PromptAccepted]);
        assert!(p.sends(PromptShown, Consent::Unknown, false));
        assert!(!p.sends(PromptShown, Consent::Unknown, true));
        assert!(p.sends(PromptAccepted, Consent::Unknown, true));
        let ignoring = Privacy { honour_gpc: false, ..p };
        assert!(ignoring.sends(PromptShown, Consent::Unknown, true));
    }

    #[test]
    fn telemetry_settings_choose_what_is_sent() {
        let necessary = privacy(false, Telemetry::Necessary, &[Conversion]);
        assert!(!necessary.sends(PromptShown, Consent::Given, false));
        assert!(necessary.sends(Conversion, Consent::Given, false));
        let none = privacy(false, Telemetry::None, &[Conversion]);
        assert!(!none.sends(Conversion, Consent::Given, false));
    }

    #[test]
    fn forwarded_actions_are_telemetry_under_the_same_rules() {
        use EventKind::Action;
        let required = privacy(true, Telemetry::All, &[]);
        assert!(!required.sends(Action, Consent::Unknown, false), "waits for consent");
        assert!(required.sends(Action, Consent::Given, false));
        assert!(!privacy(false, Telemetry::All, &[]).sends(Action, Consent::Refused, false));
        assert!(!privacy(false, Telemetry::None, &[Action]).sends(Action, Consent::Given, false));
        assert!(
            !privacy(false, Telemetry::All, &[]).sends(Action, Consent::Unknown, true),
            "GPC"
        );
        assert!(privacy(false, Telemetry::Necessary, &[Action]).sends(Action, Consent::Unknown, true));
    }

    #[test]
    fn a_users_traits_are_telemetry_under_the_same_rules() {
        use EventKind::Traits;
        let required = privacy(true, Telemetry::All, &[]);
        assert!(!required.sends(Traits, Consent::Unknown, false), "waits for consent");
        assert!(required.sends(Traits, Consent::Given, false));
        assert!(!privacy(false, Telemetry::All, &[]).sends(Traits, Consent::Refused, false));
        assert!(!privacy(false, Telemetry::None, &[Traits]).sends(Traits, Consent::Given, false));
        assert!(
            !privacy(false, Telemetry::All, &[EventKind::Action]).sends(Traits, Consent::Unknown, true),
            "GPC: listed on their own, not with actions"
        );
        assert!(privacy(false, Telemetry::Necessary, &[Traits]).sends(Traits, Consent::Unknown, true));
    }

    #[test]
    fn the_stored_flag_round_trips_and_anything_else_is_unknown() {
        for consent in [Consent::Given, Consent::Refused] {
            assert_eq!(Consent::parse(consent.as_str()), consent);
        }
        assert_eq!(Consent::parse("yes"), Consent::Unknown);
    }
}
