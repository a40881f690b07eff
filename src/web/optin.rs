//! The two-step opt-in after "Yes": the native permission prompt (started
//! inside the click), then the push subscription and its registration with
//! askwell-server; adding a topic to an existing subscription; and repairing
//! drift between the browser's subscription and the server's on start.
//!
//! Each step reads or changes the controller inside one `Shared::read` /
//! `Shared::update` (no awaiting, no page code there) and awaits, renders
//! or publishes after it returns.

use js_sys::Reflect;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use super::api;
use super::controller::{Controller, Shared};
use super::events::{self, Outcome};
use super::push::{self, Failure, Identity};
use super::store;
use crate::engine::Proposal;
use crate::model::NativeAnswer;
use crate::repair;
use crate::rules::Permission;
use crate::state::Attribution;
use crate::value::Value;

/// localStorage key of the VAPID key the current subscription was made with.
const VAPID_KEY: &str = "askwell:v1:vapid";

/// Runs inside the click: starts `Notification.requestPermission()` now, then
/// (once granted) subscribes and registers the topic.
pub(crate) fn request_permission(inner: &Shared, proposal: &Proposal) {
    let before = push::permission();
    let started = match push::unsupported() {
        Some(failure) => Err(failure),
        None => push::request_permission().map_err(|_| Failure::Unsupported),
    };
    let promise = match started {
        Ok(promise) => promise,
        Err(failure) => {
            end_status(inner, false);
            return fail(inner, proposal, failure);
        }
    };
    let (inner, proposal) = (inner.clone(), proposal.clone());
    wasm_bindgen_futures::spawn_local(async move {
        let answer = JsFuture::from(promise)
            .await
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default();
        let answer = NativeAnswer::from_browser(&answer);
        let granted = answer == NativeAnswer::Granted;
        let permission = push::permission();
        inner.update(|c| {
            c.permission_changed(permission);
            let engine = c.engine_mut();
            if before == Permission::Default {
                engine.native_answered(granted);
            }
            if !granted {
                engine.permission_refused();
            }
            store::save_state(engine.state());
        });
        events::publish(&inner, Outcome::Permission(answer), &proposal);
        if granted {
            subscribe_topic(&inner, &proposal).await;
        } else {
            end_status(&inner, false);
        }
    });
}

/// Adds the proposal's topic to the existing subscription: no native prompt.
pub(crate) fn add_topic(inner: &Shared, proposal: &Proposal) {
    let (inner, proposal) = (inner.clone(), proposal.clone());
    wasm_bindgen_futures::spawn_local(async move { subscribe_topic(&inner, &proposal).await });
}

/// Makes sure a subscription exists and the server has it with this topic.
async fn subscribe_topic(inner: &Shared, proposal: &Proposal) {
    after_repair(inner).await;
    let topic = proposal.topic.clone();
    let mut topics = inner.read(|c| c.engine().state().topics.clone());
    topics.extend(topic.clone());
    let topics: Vec<String> = topics.into_iter().collect();
    let credit = Attribution {
        prompt: proposal.prompt.clone(),
        variant: proposal.variant.clone(),
    };
    let label = topic.as_deref().zip(proposal.topic_label.as_deref());
    let result = ensure_registered(inner, &topics, Some(credit), label).await;
    let now = inner.now_ms();
    inner.update(|c| {
        let engine = c.engine_mut();
        match result {
            Ok(()) => engine.subscription_changed(Some(topic.as_deref().unwrap_or_default()), true),
            // Still pending: the next start retries (with backoff).
            Err(_) => engine.subscribe_failed(now),
        }
        store::save_state(engine.state());
    });
    end_status(inner, result.is_err());
    match result {
        Ok(()) => {
            events::publish(inner, Outcome::Subscribed, proposal);
            super::preferences::reload_all(inner);
        }
        Err(failure) => fail(inner, proposal, failure),
    }
}

/// The subscription after "Yes" is over: the status line closes (subscribed,
/// or the browser's prompt refused) or, when it `failed`, says so with a
/// close button instead of vanishing. The view is changed (focus moves
/// inside it) and dropped outside the borrow.
fn end_status(inner: &Shared, failed: bool) {
    let Some(mut status) = inner.update(Controller::take_status) else {
        return;
    };
    if failed {
        let messages = inner.read(|c| c.engine().config().messages.clone());
        status.status(&messages.failed, Some(&messages.close));
        drop(inner.update(|c| c.show_status(status)));
    }
}

fn fail(inner: &Shared, proposal: &Proposal, failure: Failure) {
    match failure {
        Failure::Unsupported | Failure::NeedsHomeScreen => {
            events::publish(inner, Outcome::Unavailable(failure), proposal)
        }
        _ => events::error(inner, failure.code(), "could not finish the push subscription"),
    }
}

/// Subscribes (or reuses the browser's subscription) and stores it with
/// `topics` on the server. A subscription made with an old VAPID key is replaced.
/// `credit` (the prompt and variant that won the subscription) is sent along
/// with the device id, so the server credits deliveries and clicks to it;
/// `label` (topic, label), what the preference centre calls the new topic.
async fn ensure_registered(
    inner: &Shared,
    topics: &[String],
    credit: Option<Attribution>,
    label: Option<(&str, &str)>,
) -> Result<(), Failure> {
    let (server, user, anon) = inner.read(|c| {
        let engine = c.engine();
        (
            engine.config().server.clone(),
            c.identity(),
            engine.anon_id().to_owned(),
        )
    });
    let server = server.ok_or(Failure::NoServer)?;
    let key = server_key(&server).await?;
    let existing = push::current().await;
    let subscription = match existing {
        Some(sub) if !repair::needs_new_subscription(true, stored_key().as_deref(), &key) => sub,
        other => {
            if let Some(old) = other {
                push::unsubscribe(&old).await;
            }
            let fresh = push::subscribe(&key).await?;
            remember_key(&key);
            fresh
        }
    };
    let mut attribution = vec![("anon", anon.as_str())];
    if let Some(credit) = &credit {
        attribution.extend([("prompt", credit.prompt.as_str()), ("variant", credit.variant.as_str())]);
    }
    let body = |user: Option<&Identity>| {
        let body = push::registration_body(&subscription, topics, user);
        for (key, value) in &attribution {
            let _ = Reflect::set(&body, &(*key).into(), &JsValue::from_str(value));
        }
        if let Some((topic, label)) = label {
            let labels = js_sys::Object::new();
            let _ = Reflect::set(&labels, &JsValue::from_str(topic), &JsValue::from_str(label));
            let _ = Reflect::set(&body, &"labels".into(), &labels);
        }
        body
    };
    match register(&server, &body(user.as_ref())).await {
        // The Yes must not be lost over the app's identity setup: keep the
        // subscription without the user, and tell the app.
        Err(Failure::IdentityUnproven) => {
            register(&server, &body(None)).await?;
            events::error(
                inner,
                Failure::IdentityUnproven.code(),
                "the server refused the user's proof; subscribed without the user",
            );
            Ok(())
        }
        other => other,
    }
}

async fn register(server: &str, body: &JsValue) -> Result<(), Failure> {
    match push::call(server, "POST", api::SUBSCRIPTIONS, Some(body)).await? {
        (201 | 200, _) => Ok(()),
        (403, _) => Err(Failure::IdentityUnproven),
        _ => Err(Failure::ServerUnreachable),
    }
}

/// `identify()`, at once (before its promise first awaits): later
/// subscriptions carry `identity`, and the actions forwarded from now on are
/// this user's (with a proof).
pub(crate) fn sign_in(inner: &Shared, identity: &Identity) {
    inner.update(|c| c.identified(identity.clone()));
    super::report::signed_in(inner.reporter(), identity.signed_in());
}

/// Binds this device's subscription (if there is one) to `identity` on the
/// server (after [`sign_in`]). Resolves to whether a subscription was bound now.
pub(crate) async fn identify(inner: &Shared, identity: Identity) -> Result<bool, Failure> {
    after_repair(inner).await;
    let server = server_of(inner)?;
    let subscribed = inner.read(|c| c.engine().state().subscribed);
    let Some(subscription) = push::current().await.filter(|_| subscribed) else {
        return Ok(false);
    };
    let topics: Vec<String> = inner.read(|c| c.engine().state().topics.iter().cloned().collect());
    let body = push::registration_body(&subscription, &topics, Some(&identity));
    register(&server, &body).await.map(|()| true)
}

/// The server's VAPID public key.
async fn server_key(server: &str) -> Result<String, Failure> {
    let (status, body) = push::call(server, "GET", api::VAPID_KEY, None).await?;
    match (status, body.get("publicKey").and_then(Value::as_str)) {
        (200, Some(key)) => Ok(key.to_owned()),
        _ => Err(Failure::ServerUnreachable),
    }
}

fn stored_key() -> Option<String> {
    store::local()?.get_item(VAPID_KEY).ok().flatten()
}

fn remember_key(key: &str) {
    if let Some(storage) = store::local() {
        let _ = storage.set_item(VAPID_KEY, key);
    }
}

/// The configured server, or `NoServer`.
pub(crate) fn server_of(inner: &Shared) -> Result<String, Failure> {
    inner
        .read(|c| c.engine().config().server.clone())
        .ok_or(Failure::NoServer)
}

/// On start, when notifications are allowed: make the browser's subscription
/// and the server's record agree (lost subscription, changed endpoint, rotated
/// VAPID key, server that forgot it), and finish a "Yes" whose subscription
/// failed earlier (with backoff across visits: see [`crate::state::Retry`]).
/// Quiet: failures wait for a later start.
pub(crate) fn repair(inner: &Shared) {
    if inner.read(|c| c.engine().config().server.is_none()) {
        return;
    }
    // Read now, not at the task's first poll: a "Yes" pressed before that is
    // its own subscription's business, not the repair's.
    let now = inner.now_ms();
    let (facts, pending) = inner.read(|c| {
        let (engine, permission) = (c.engine(), c.permission());
        let due = engine.retry_due(now, permission);
        let facts = repair::Facts {
            permission,
            confirmed: engine.state().subscribed,
            in_browser: false,
            pending_due: due,
        };
        (facts, engine.pending_yes().filter(|_| due))
    });
    if facts.permission != Permission::Granted {
        if repair::plan(facts) == repair::Plan::Forget {
            forget(inner);
        }
        return;
    }
    let task = inner.clone();
    let done = wasm_bindgen_futures::future_to_promise(async move {
        repair_now(&task, facts, pending).await;
        task.update(Controller::repair_finished);
        Ok(JsValue::UNDEFINED)
    });
    inner.update(|c| c.begin_repair(done));
}

/// Carries out [`repair::plan`] once the browser's subscription is known;
/// `pending`: the topics of a "Yes" to finish now and the prompt to credit.
async fn repair_now(inner: &Shared, facts: repair::Facts, pending: Option<(Vec<String>, Attribution)>) {
    let Ok(server) = server_of(inner) else { return };
    let current = push::current().await;
    let facts = repair::Facts {
        in_browser: current.is_some(),
        ..facts
    };
    let repair::Plan::Register { finish_pending } = repair::plan(facts) else {
        return;
    };
    let on_server = match current.as_ref().and_then(push::possession) {
        Some((endpoint, auth)) => lookup(&server, &endpoint, &auth).await,
        None => None,
    };
    let (pending_topics, credit) = pending.unzip();
    let remembered = inner.read(|c| c.engine().state().topics.clone());
    let topics = repair::topics(&remembered, on_server, pending_topics);
    let list: Vec<String> = topics.iter().cloned().collect();
    // Labels went with the first registration; the server keeps them.
    let result = ensure_registered(inner, &list, credit, None).await;
    let now = inner.now_ms();
    inner.update(|c| {
        let engine = c.engine_mut();
        match result {
            Ok(()) => {
                if finish_pending {
                    engine.pending_finished();
                }
                engine.subscription_repaired(topics);
            }
            Err(_) if finish_pending => engine.subscribe_failed(now),
            Err(_) => return,
        }
        store::save_state(engine.state());
    });
}

/// Waits for the start-up repair, if one is still running.
pub(crate) async fn after_repair(inner: &Shared) {
    let pending = inner.read(Controller::repair_running);
    if let Some(promise) = pending {
        let _ = JsFuture::from(promise).await;
    }
}

/// The topics the server holds for this subscription, or `None` if it does not know it.
async fn lookup(server: &str, endpoint: &str, auth: &str) -> Option<Vec<String>> {
    let body = possession_body(endpoint, auth);
    match push::call(server, "POST", api::LOOKUP, Some(&body)).await {
        Ok((200, json)) => Some(match json.get("topics") {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }),
        _ => None,
    }
}

/// Unsubscribes in the browser and on the server; resolves to whether a
/// subscription existed.
pub(crate) async fn unsubscribe(inner: &Shared) -> Result<bool, Failure> {
    after_repair(inner).await;
    // Always allowed: without a server, only the browser's subscription ends.
    let server = server_of(inner).ok();
    let Some(subscription) = push::current().await else {
        forget(inner);
        return Ok(false);
    };
    if let (Some(server), Some((endpoint, auth))) = (server, push::possession(&subscription)) {
        let body = possession_body(&endpoint, &auth);
        match push::call(&server, "DELETE", api::SUBSCRIPTIONS, Some(&body)).await? {
            (204 | 404, _) => {}
            _ => return Err(Failure::ServerUnreachable),
        }
    }
    push::unsubscribe(&subscription).await;
    forget(inner);
    super::preferences::reload_all(inner);
    Ok(true)
}

fn forget(inner: &Shared) {
    inner.update(|c| {
        let engine = c.engine_mut();
        engine.subscription_changed(None, false);
        store::save_state(engine.state());
    });
}

/// Removes a topic from the current subscription (no native prompt).
pub(crate) async fn remove_topic(inner: &Shared, topic: &str) -> Result<(), Failure> {
    after_repair(inner).await;
    let server = server_of(inner)?;
    let subscription = push::current().await.ok_or(Failure::SubscribeFailed)?;
    let (endpoint, auth) = push::possession(&subscription).ok_or(Failure::SubscribeFailed)?;
    let body = possession_body(&endpoint, &auth);
    let remove: js_sys::Array = std::iter::once(JsValue::from_str(topic)).collect();
    let _ = Reflect::set(&body, &"remove".into(), &remove);
    match push::call(&server, "POST", api::TOPICS, Some(&body)).await? {
        (200, _) => {
            inner.update(|c| {
                let engine = c.engine_mut();
                engine.topic_removed(topic);
                store::save_state(engine.state());
            });
            super::preferences::reload_all(inner);
            Ok(())
        }
        _ => Err(Failure::ServerUnreachable),
    }
}

fn possession_body(endpoint: &str, auth: &str) -> JsValue {
    api::possession_body(endpoint, auth).into()
}
