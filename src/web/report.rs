//! Sends the funnel to askwell-server: every prompt outcome is appended to
//! the outbox in localStorage (`askwell:v1:outbox`, shared by the tabs) and
//! posted to `POST /v1/events` in batches — `fetch` with `keepalive` a moment
//! after the event, `navigator.sendBeacon` when the page hides. Events leave
//! the outbox only when the server has answered for them, so a server that is
//! down loses nothing; the outbox is bounded (see [`crate::funnel`]).

use std::cell::{RefCell, RefMut};
use std::rc::{Rc, Weak};

use super::clock::Clock;
use super::convert::{parse_json, stringify, to_js};
use super::listener::Timer;
use super::{api, push, store};
use crate::engine::Proposal;
use crate::funnel::{FunnelEvent, Outbox, SignedIn};
use crate::model::EventKind;

/// localStorage key of the outbox.
pub(crate) const OUTBOX_KEY: &str = "askwell:v1:outbox";
/// Events wait this long, so one click's outcomes travel together.
const SEND_DELAY_MS: u64 = 2_000;

/// The funnel sender, as the page's `Shared`, the send timer and a batch
/// in flight hold it. Its state is private to this module and borrowed only
/// inside it, never across a call that runs page code (the clock is read
/// before the borrow, the request is awaited after it). It knows nothing of
/// the controller: consent and telemetry decisions come in as values
/// ([`Queue`], [`resume`], [`discard`]).
#[derive(Clone)]
pub(crate) struct Reporter(Rc<Sender>);

struct Sender {
    clock: Clock,
    /// `config.server`: nothing is sent without one.
    server: Option<String>,
    state: RefCell<SenderState>,
}

struct SenderState {
    /// Whether events may leave the page: consent given or not required.
    /// The controller says so when it changes ([`resume`], [`discard`]).
    allowed: bool,
    timer: Option<Timer>,
    sending: bool,
    stopped: bool,
    /// Prompts whose holdout exposure this page already handled: a held-out
    /// device triggers often, and storage need not be read every time.
    held_out_here: Vec<String>,
    /// The outbox once localStorage failed to keep it (unavailable, full, or
    /// not readable back): from then on events live as long as the page.
    memory: Option<Outbox>,
    /// The user signed in now and their proof (`config.user`, `identify()`):
    /// forwarded actions of this user are sent with it. Only in memory.
    signed_in: Option<(String, String)>,
}

/// The signed-in user as the outbox takes it.
fn signer(pair: Option<&(String, String)>) -> Option<SignedIn<'_>> {
    pair.and_then(|(user, proof)| SignedIn::new(user, proof))
}

impl Reporter {
    /// A sender to `server` (none: nothing is sent), `allowed` to send
    /// (telemetry is allowed now).
    pub(crate) fn new(clock: Clock, server: Option<String>, allowed: bool) -> Self {
        Self(Rc::new(Sender {
            clock,
            server,
            state: RefCell::new(SenderState {
                allowed,
                timer: None,
                sending: false,
                stopped: false,
                held_out_here: Vec::new(),
                memory: None,
                signed_in: None,
            }),
        }))
    }

    /// Epoch ms from the page's clock (which the sender keeps for its timer).
    pub(crate) fn now_ms(&self) -> u64 {
        self.0.clock.now_ms()
    }

    /// Cancels the pending send for good (`destroy()`).
    pub(crate) fn stop(&self) {
        let timer = {
            let mut state = self.0.state();
            state.stopped = true;
            state.timer.take()
        };
        drop(timer);
    }
}

impl Sender {
    /// The sender's state, borrowed (never across page code: see [`Reporter`]).
    #[inline(always)]
    fn state(&self) -> RefMut<'_, SenderState> {
        match self.state.try_borrow_mut() {
            Ok(state) => state,
            Err(_) => super::reentered(),
        }
    }

    /// Whether events may leave the page now: a server is configured and
    /// telemetry is allowed at all (consent given or not required).
    fn may_send(&self, state: &SenderState) -> bool {
        self.server.is_some() && state.allowed
    }
}

/// What the page's state says about one event: the sender it goes to,
/// whether consent, telemetry settings and a configured server let it be
/// queued at all (`Controller::sends`), and the device's anonymous id.
pub(crate) struct Queue<'a> {
    pub(crate) reporter: &'a Reporter,
    pub(crate) allowed: bool,
    pub(crate) anon: String,
}

/// The stored outbox, bounded on reading (planted events dropped, the retry
/// time at most the longest backoff away: see [`Outbox::from_value`]).
fn load(state: &SenderState, now_ms: u64) -> Outbox {
    if let Some(outbox) = &state.memory {
        return outbox.clone();
    }
    store::local()
        .and_then(|storage| storage.get_item(OUTBOX_KEY).ok().flatten())
        .and_then(|text| parse_json(&text))
        .map(|value| Outbox::from_value(&value, now_ms))
        .unwrap_or_default()
}

fn save(state: &mut SenderState, outbox: Outbox) {
    let stored =
        state.memory.is_none() && stringify(&outbox.to_value()).is_some_and(|text| store::write(OUTBOX_KEY, &text));
    if !stored {
        state.memory = Some(outbox);
    }
}

/// One event to record.
enum Entry<'a> {
    /// A prompt outcome of this kind.
    Outcome(EventKind, &'a Proposal),
    /// A held-out device would have seen `prompt` (once per device).
    Holdout { prompt: &'a str, trigger: &'a str },
    /// An app conversion, credited to the prompt this device saw last.
    Conversion(&'a str),
    /// A forwarded action (config `forward`) by `user`, about `key`.
    Action {
        name: &'a str,
        key: Option<&'a str>,
        user: &'a str,
    },
    /// `user`'s traits (queued only when they changed).
    Traits {
        user: &'a str,
        traits: &'a [(String, crate::value::Value)],
    },
}

/// Records a prompt outcome of `kind` (if `queue` allows it).
pub(crate) fn outcome(queue: &Queue, kind: EventKind, proposal: &Proposal) {
    if queue.allowed {
        record(queue, Entry::Outcome(kind, proposal));
    }
}

/// Records that a held-out device would have seen `prompt` (once per prompt,
/// if `queue` allows it).
pub(crate) fn holdout(queue: &Queue, prompt: &str, trigger: &str) {
    {
        let mut state = queue.reporter.0.state();
        if state.held_out_here.iter().any(|p| p == prompt) {
            return;
        }
        state.held_out_here.push(prompt.to_owned());
    }
    if queue.allowed {
        record(queue, Entry::Holdout { prompt, trigger });
    }
}

/// Records an app conversion (`askwell.convert("replied")`), credited to the
/// prompt this device saw last (if `queue` allows it).
pub(crate) fn conversion(queue: &Queue, name: &str) {
    if queue.allowed {
        record(queue, Entry::Conversion(name));
    }
}

/// Records a forwarded action `name` about `key` (the entity id) by the
/// signed-in `user` (if `queue` allows actions: see [`crate::privacy`]).
pub(crate) fn action(queue: &Queue, name: &str, key: Option<&str>, user: &str) {
    if queue.allowed {
        record(queue, Entry::Action { name, key, user });
    }
}

/// Records the signed-in `user`'s `traits` unless they are the ones queued
/// last for that user (if `queue` allows traits: see [`crate::privacy`]).
pub(crate) fn traits(queue: &Queue, user: &str, traits: &[(String, crate::value::Value)]) {
    if queue.allowed {
        record(queue, Entry::Traits { user, traits });
    }
}

/// `(user, proof)` is signed in now (`None`: no one with a proof): their
/// forwarded actions, also those an earlier page queued, are sent soon.
pub(crate) fn signed_in(reporter: &Reporter, user: Option<(&str, &str)>) {
    reporter.0.state().signed_in = user.map(|(user, proof)| (user.to_owned(), proof.to_owned()));
    schedule(reporter, SEND_DELAY_MS);
}

/// The device's prompt history was reset: conversions no longer credit the
/// old exposure; events still waiting are kept (they happened).
pub(crate) fn forget_history(reporter: &Reporter) {
    let now_ms = reporter.0.clock.now_ms();
    let mut state = reporter.0.state();
    state.held_out_here.clear();
    let mut outbox = load(&state, now_ms);
    outbox.forget_history();
    save(&mut state, outbox);
}

/// Appends `entry` to the stored outbox and schedules a send. Callers have
/// checked that `queue` allows events of its kind: nothing is kept that may
/// not be sent.
fn record(queue: &Queue, entry: Entry<'_>) {
    let Queue { reporter, anon, .. } = queue;
    let at_ms = reporter.0.clock.now_ms();
    let recorded = {
        let mut state = reporter.0.state();
        let mut outbox = load(&state, at_ms);
        // Traits are queued by the outbox itself: only when they changed.
        let mut recorded = false;
        let event = match entry {
            Entry::Outcome(kind, p) => Some(exposure(kind, &p.prompt, &p.variant, &p.trigger, at_ms)),
            // One storage round trip: whether another page reported it already, and the event.
            Entry::Holdout { prompt, trigger } => outbox
                .first_holdout(prompt)
                .then(|| exposure(EventKind::PromptShown, prompt, crate::funnel::HOLDOUT, trigger, at_ms)),
            Entry::Conversion(name) => Some(outbox.conversion(name, at_ms)),
            Entry::Action { name, key, user } => Some(FunnelEvent::action(name, key, user, at_ms)),
            Entry::Traits { user, traits } => {
                recorded = outbox.traits(anon, user, traits, at_ms);
                None
            }
        };
        if let Some(event) = event {
            outbox.push(anon, event);
            recorded = true;
        }
        if recorded {
            save(&mut state, outbox);
        }
        recorded
    };
    if recorded {
        schedule(reporter, SEND_DELAY_MS);
    }
}

/// An event about a prompt seen (or held out), of `kind`.
fn exposure(kind: EventKind, prompt: &str, variant: &str, trigger: &str, at_ms: u64) -> FunnelEvent {
    FunnelEvent {
        kind,
        prompt: prompt.to_owned(),
        variant: variant.to_owned(),
        trigger: trigger.to_owned(),
        at_ms,
        ..FunnelEvent::default()
    }
}

/// Consent was withdrawn: nothing leaves the page until [`resume`], and
/// every queued event is deleted (stored or in memory).
pub(crate) fn discard(reporter: &Reporter) {
    let (timer, memory) = {
        let mut state = reporter.0.state();
        state.allowed = false;
        (state.timer.take(), state.memory.take())
    };
    drop((timer, memory));
    if let Some(storage) = store::local() {
        let _ = storage.remove_item(OUTBOX_KEY);
    }
}

/// Telemetry is allowed (on start, or consent given): sends waiting events
/// soon, also those an earlier page could not deliver.
pub(crate) fn resume(reporter: &Reporter, delay_ms: u64) {
    reporter.0.state().allowed = true;
    schedule(reporter, delay_ms);
}

/// Sends waiting events after `delay_ms`, unless a send is pending or out.
fn schedule(reporter: &Reporter, delay_ms: u64) {
    let sender = &reporter.0;
    let mut state = sender.state();
    if state.timer.is_some() || state.sending || state.stopped || !sender.may_send(&state) {
        return;
    }
    let weak: Weak<Sender> = Rc::downgrade(sender);
    state.timer = Timer::once(delay_ms, move || {
        if let Some(sender) = weak.upgrade() {
            let timer = sender.state().timer.take();
            drop(timer);
            wasm_bindgen_futures::spawn_local(send(Reporter(sender)));
        }
    });
}

/// Posts one batch; on success the next, on failure a later retry.
async fn send(reporter: Reporter) {
    let now = reporter.0.clock.now_ms();
    let (server, body, ids) = {
        let sender = &reporter.0;
        let mut state = sender.state();
        let Some(server) = sender.server.as_deref().filter(|_| state.allowed) else {
            return;
        };
        let outbox = load(&state, now);
        let pair = state.signed_in.clone();
        let signed_in = signer(pair.as_ref());
        let Some(batch) = outbox.due(now, signed_in) else {
            let wait = outbox.next_try_ms.saturating_sub(now);
            // Another user's actions wait for that user, not for a timer.
            let waiting = outbox.due(u64::MAX, signed_in).is_some();
            if waiting {
                // Keeps the retry time as clamped on reading: clamped again
                // each time, relative to a later now, it would never come.
                save(&mut state, outbox);
            }
            drop(state);
            if waiting {
                schedule(&reporter, wait.max(SEND_DELAY_MS));
            }
            return;
        };
        let ids: Vec<String> = batch.iter().map(|e| e.id.clone()).collect();
        let body = to_js(&Outbox::request_body(&batch, signed_in));
        state.sending = true;
        (server.to_owned(), body, ids)
    };
    let status = push::call(&server, "POST", api::EVENTS, Some(&body))
        .await
        .ok()
        .map(|(status, _)| status);
    let later = reporter.0.clock.now_ms();
    let more = {
        let sender = &reporter.0;
        let mut state = sender.state();
        state.sending = false;
        // Consent withdrawn while the batch was out: its answer must not
        // write the outbox back.
        if !sender.may_send(&state) {
            return;
        }
        let mut outbox = load(&state, later);
        match status {
            // Accepted, or refused for good (a 4xx other than 429 will never pass).
            Some(202 | 400..=428 | 430..=499) => outbox.settled(&ids),
            _ => outbox.failed(now),
        }
        let more = outbox.due(u64::MAX, signer(state.signed_in.as_ref())).is_some();
        save(&mut state, outbox);
        more
    };
    if more {
        schedule(&reporter, SEND_DELAY_MS);
    }
}

/// The page is hiding: hand waiting events to `sendBeacon`, which the browser
/// delivers after the page is gone. They stay in the outbox (the beacon's
/// fate is unknown); the next page's send settles them, and the server keeps
/// one copy of each id.
pub(crate) fn beacon(reporter: &Reporter) {
    let now = reporter.0.clock.now_ms();
    let sender = &reporter.0;
    let state = sender.state();
    let Some(server) = sender.server.as_deref().filter(|_| state.allowed) else {
        return;
    };
    let outbox = load(&state, now);
    let pair = state.signed_in.clone();
    drop(state);
    let signed_in = signer(pair.as_ref());
    let Some(batch) = outbox.due(u64::MAX, signed_in) else {
        return;
    };
    let body = stringify(&Outbox::request_body(&batch, signed_in));
    if let (Some(window), Some(body)) = (web_sys::window(), body) {
        // A string body is sent as text/plain: no CORS preflight, which a
        // beacon cannot do; the server reads it as JSON.
        let _ = window
            .navigator()
            .send_beacon_with_opt_str(&api::url(server, api::EVENTS), Some(&body));
    }
}
