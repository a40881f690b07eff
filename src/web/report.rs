//! Sends the funnel to askwell-server: every prompt outcome is appended to
//! the outbox in localStorage (`askwell:v1:outbox`, shared by the tabs) and
//! posted to `POST /v1/events` in batches — `fetch` with `keepalive` a moment
//! after the event, `navigator.sendBeacon` when the page hides. Events leave
//! the outbox only when the server has answered for them, so a server that is
//! down loses nothing; the outbox is bounded (see [`crate::funnel`]).

use std::rc::Rc;

use super::controller::{Controller, Shared};
use super::convert::{parse_json, stringify, to_js};
use super::listener::Timer;
use super::{api, push, store};
use crate::engine::Proposal;
use crate::funnel::{FunnelEvent, Outbox};
use crate::model::EventKind;

/// localStorage key of the outbox.
pub(crate) const OUTBOX_KEY: &str = "askwell:v1:outbox";
/// Events wait this long, so one click's outcomes travel together.
const SEND_DELAY_MS: u64 = 2_000;

/// The sender's state in the page.
#[derive(Default)]
pub(crate) struct Reporter {
    timer: Option<Timer>,
    sending: bool,
    stopped: bool,
    /// Prompts whose holdout exposure this page already handled: a held-out
    /// device triggers often, and storage need not be read every time.
    held_out_here: Vec<String>,
    /// The outbox once localStorage failed to keep it (unavailable, full, or
    /// not readable back): from then on events live as long as the page.
    memory: Option<Outbox>,
}

impl Reporter {
    /// Cancels the pending send (`destroy()`).
    pub(crate) fn stop(&mut self) {
        self.timer = None;
        self.stopped = true;
    }
}

/// The stored outbox, bounded on reading (planted events dropped, the retry
/// time at most the longest backoff away: see [`Outbox::from_value`]).
fn load(this: &Controller) -> Outbox {
    if let Some(outbox) = &this.reporter.memory {
        return outbox.clone();
    }
    store::local()
        .and_then(|storage| storage.get_item(OUTBOX_KEY).ok().flatten())
        .and_then(|text| parse_json(&text))
        .map(|value| Outbox::from_value(&value, this.now_ms()))
        .unwrap_or_default()
}

fn save(reporter: &mut Reporter, outbox: Outbox) {
    let stored =
        reporter.memory.is_none() && stringify(&outbox.to_value()).is_some_and(|text| store::write(OUTBOX_KEY, &text));
    if !stored {
        reporter.memory = Some(outbox);
    }
}

/// Records a prompt outcome.
pub(crate) fn outcome(inner: &Shared, kind: EventKind, proposal: &Proposal) {
    record(inner, |_, at_ms| {
        Some(FunnelEvent {
            kind,
            prompt: proposal.prompt.clone(),
            variant: proposal.variant.clone(),
            trigger: proposal.trigger.clone(),
            at_ms,
            ..FunnelEvent::default()
        })
    });
}

/// Records that a held-out device would have seen `prompt` (once per prompt).
pub(crate) fn holdout(inner: &Shared, prompt: &str, trigger: &str) {
    {
        let mut this = inner.borrow_mut();
        if this.reporter.held_out_here.iter().any(|p| p == prompt) {
            return;
        }
        this.reporter.held_out_here.push(prompt.to_owned());
    }
    // One storage round trip: whether another page reported it already, and the event.
    record(inner, |outbox, at_ms| {
        outbox.first_holdout(prompt).then(|| FunnelEvent {
            kind: EventKind::PromptShown,
            prompt: prompt.to_owned(),
            variant: crate::funnel::HOLDOUT.into(),
            trigger: trigger.to_owned(),
            at_ms,
            ..FunnelEvent::default()
        })
    });
}

/// Records an app conversion (`askwell.convert("replied")`), credited to the
/// prompt this device saw last.
pub(crate) fn conversion(inner: &Shared, name: &str) {
    record(inner, |outbox, at_ms| Some(outbox.conversion(name, at_ms)));
}

/// The device's prompt history was reset: conversions no longer credit the
/// old exposure; events still waiting are kept (they happened).
pub(crate) fn forget_history(inner: &Shared) {
    let mut this = inner.borrow_mut();
    this.reporter.held_out_here.clear();
    let mut outbox = load(&this);
    outbox.forget_history();
    save(&mut this.reporter, outbox);
}

/// Appends the event `make` builds (if any) to the stored outbox and
/// schedules a send.
fn record(inner: &Shared, make: impl FnOnce(&mut Outbox, u64) -> Option<FunnelEvent>) {
    let recorded = {
        let mut this = inner.borrow_mut();
        let at_ms = this.now_ms();
        let anon = this.engine.anon_id().to_owned();
        let mut outbox = load(&this);
        // Consent, telemetry settings, GPC and a configured server decide
        // what is queued at all: nothing is kept that may not be sent.
        let event = make(&mut outbox, at_ms).filter(|event| this.sends(event.kind));
        let recorded = event.is_some();
        if let Some(event) = event {
            outbox.push(&anon, event);
            save(&mut this.reporter, outbox);
        }
        recorded
    };
    if recorded {
        schedule(inner, SEND_DELAY_MS);
    }
}

/// Consent was withdrawn: deletes every queued event (stored or in memory).
pub(crate) fn discard(inner: &Shared) {
    let mut this = inner.borrow_mut();
    this.reporter.timer = None;
    this.reporter.memory = None;
    if let Some(storage) = store::local() {
        let _ = storage.remove_item(OUTBOX_KEY);
    }
}

/// Whether events may leave the page now: a server is configured and
/// telemetry is allowed at all (consent given or not required).
fn may_send(this: &Controller) -> bool {
    this.engine.config().server.is_some() && this.active()
}

/// Sends waiting events soon (also on start: events left by an earlier page).
pub(crate) fn schedule(inner: &Shared, delay_ms: u64) {
    let mut this = inner.borrow_mut();
    if this.reporter.timer.is_some() || this.reporter.sending || this.reporter.stopped || !may_send(&this) {
        return;
    }
    let weak = Rc::downgrade(inner);
    this.reporter.timer = Timer::once(delay_ms, move || {
        if let Some(inner) = weak.upgrade() {
            inner.borrow_mut().reporter.timer = None;
            wasm_bindgen_futures::spawn_local(send(inner));
        }
    });
}

/// Posts one batch; on success the next, on failure a later retry.
async fn send(inner: Shared) {
    let (server, body, ids, now) = {
        let mut this = inner.borrow_mut();
        if !may_send(&this) {
            return;
        }
        let now = this.now_ms();
        let outbox = load(&this);
        let Some(batch) = outbox.due(now) else {
            let wait = outbox.next_try_ms.saturating_sub(now);
            let waiting = !outbox.events.is_empty();
            if waiting {
                // Keeps the retry time as clamped on reading: clamped again
                // each time, relative to a later now, it would never come.
                save(&mut this.reporter, outbox);
            }
            drop(this);
            if waiting {
                schedule(&inner, wait.max(SEND_DELAY_MS));
            }
            return;
        };
        let ids: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
        let body = to_js(&Outbox::request_body(batch));
        this.reporter.sending = true;
        (this.engine.config().server.clone().unwrap_or_default(), body, ids, now)
    };
    let status = push::call(&server, "POST", api::EVENTS, Some(&body))
        .await
        .ok()
        .map(|(status, _)| status);
    let more = {
        let mut this = inner.borrow_mut();
        this.reporter.sending = false;
        // Consent withdrawn while the batch was out: its answer must not
        // write the outbox back.
        if !may_send(&this) {
            return;
        }
        let mut outbox = load(&this);
        match status {
            // Accepted, or refused for good (a 4xx other than 429 will never pass).
            Some(202 | 400..=428 | 430..=499) => outbox.settled(&ids),
            _ => outbox.failed(now),
        }
        let more = outbox.due(u64::MAX).is_some();
        save(&mut this.reporter, outbox);
        more
    };
    if more {
        schedule(&inner, SEND_DELAY_MS);
    }
}

fn events_url(this: &Controller) -> String {
    let server = this.engine.config().server.as_deref().unwrap_or_default();
    api::url(server, api::EVENTS)
}

/// The page is hiding: hand waiting events to `sendBeacon`, which the browser
/// delivers after the page is gone. They stay in the outbox (the beacon's
/// fate is unknown); the next page's send settles them, and the server keeps
/// one copy of each id.
pub(crate) fn beacon(inner: &Shared) {
    let this = inner.borrow();
    if !may_send(&this) {
        return;
    }
    let outbox = load(&this);
    let Some(batch) = outbox.due(u64::MAX) else { return };
    let body = stringify(&Outbox::request_body(batch));
    if let (Some(window), Some(body)) = (web_sys::window(), body) {
        // A string body is sent as text/plain: no CORS preflight, which a
        // beacon cannot do; the server reads it as JSON.
        let _ = window
            .navigator()
            .send_beacon_with_opt_str(&events_url(&this), Some(&body));
    }
}
