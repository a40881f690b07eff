//! The whole decision path, pure: a signal comes in, the rules and the policy
//! decide, and outcomes update the state. The page glue only does I/O around
//! it, so every decision the page makes is tested natively here.

use crate::config::{Config, Prompt, Variant};
use crate::experiment::{assign, Arm, Assignment};
use crate::policy::{self, Ask, Kind, Offer, PushStatus, Suppressed};
use crate::rules::{Context, Entity, Permission, Session, Signal};
use crate::state::State;
use crate::template::Template;

/// The page's surroundings at the moment of a signal.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// `location.pathname`.
    pub path: &'a str,
    /// Notification permission.
    pub permission: Permission,
    /// Now, in epoch milliseconds.
    pub now_ms: u64,
}

/// A prompt the engine wants shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// Prompt id.
    pub prompt: String,
    /// Variant id.
    pub variant: String,
    /// What triggered it (action name, `page_view`, `time_on_page`).
    pub trigger: String,
    /// What it is about.
    pub entity: Option<Entity>,
    /// The push topic accepting subscribes to.
    pub topic: Option<String>,
    /// That topic's label for the preference centre (the prompt's
    /// `topicLabel` rendered, at most [`MAX_TOPIC_LABEL_CHARS`] characters).
    pub topic_label: Option<String>,
    /// Prompt kind.
    pub kind: Kind,
    /// What accepting leads to.
    pub offer: Offer,
    /// Rendered message (plain text).
    pub message: String,
    /// Accept label.
    pub accept: String,
    /// Decline label.
    pub decline: String,
}

impl Proposal {
    /// The key acceptance is remembered under: topic, else entity id, else `""`.
    pub fn key(&self) -> &str {
        self.topic
            .as_deref()
            .or(self.entity.as_ref().map(|e| e.id.as_str()))
            .unwrap_or("")
    }
}

/// Why nothing is shown for a signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// No rule fired.
    NoRule,
    /// A prompt is already on screen.
    PromptOpen,
    /// The user is in this prompt's holdout group.
    Holdout(String),
    /// A rule fired but the policy said no.
    Suppressed(String, Suppressed),
}

/// The prompt engine of one page. Its state changes only through methods
/// named for what happened (`shown`, `accepted`, `subscription_repaired`, …);
/// the glue reads [`Engine::state`] to save it.
#[derive(Debug, Clone)]
pub struct Engine {
    config: Config,
    /// Persisted state (the glue saves it after every change).
    state: State,
    /// This tab's session.
    session: Session,
    /// Whether a prompt is on screen (at most one).
    open: bool,
}

impl Engine {
    /// A new engine over stored `state` and this tab's `session`.
    pub fn new(config: Config, state: State, session: Session) -> Self {
        Self {
            config,
            state,
            session,
            open: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What is persisted for this device (to save, and to read back).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// This tab's session (to save).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Whether a prompt is on screen.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// The device's anonymous id.
    pub fn anon_id(&self) -> &str {
        &self.state.anon_id
    }

    /// The state as it will be once a prompt is shown at `now_ms`: the glue
    /// saves this first and shows the prompt only if it was kept.
    pub fn state_if_shown(&self, now_ms: u64) -> State {
        let mut after = self.state.clone();
        policy::record_shown(&mut after.ledger, now_ms);
        after
    }

    /// Forgets all history (`reset()`, consent withdrawn): a fresh state
    /// under a new anonymous id, a fresh session, nothing on screen.
    pub fn forget(&mut self, anon_id: String) {
        self.state = State {
            anon_id,
            ..State::default()
        };
        self.session = Session::default();
        self.open = false;
    }

    /// Another tab saved `theirs`: adopt it, keeping this device's id and
    /// this tab's activity not written yet. Returns whether the prompt on
    /// screen here (`open_prompt`) was answered there.
    pub fn adopt(&mut self, mut theirs: State, open_prompt: Option<&str>) -> bool {
        theirs.anon_id.clone_from(&self.state.anon_id);
        theirs.activity.merge(&self.state.activity);
        let answered = open_prompt.is_some_and(|p| theirs.prompts.get(p) != self.state.prompts.get(p));
        self.state = theirs;
        if answered {
            self.open = false;
        }
        answered
    }

    /// The start-up repair confirmed the subscription with these topics.
    pub fn subscription_repaired(&mut self, topics: crate::sorted::SortedSet) {
        self.state.subscribed = true;
        self.state.topics = topics;
    }

    /// A topic was removed from the subscription.
    pub fn topic_removed(&mut self, topic: &str) {
        self.state.topics.remove(topic);
    }

    /// Records `signal` and decides whether to show a prompt for it.
    ///
    /// # Errors
    /// A [`Skip`] saying why nothing is shown.
    pub fn observe(&mut self, signal: &Signal, env: &Env<'_>) -> Result<Proposal, Skip> {
        let away = self.state.activity.record(&mut self.session, signal, env.now_ms);
        if self.open {
            return Err(Skip::PromptOpen);
        }
        let topics: Vec<String> = self.state.topics.iter().cloned().collect();
        let ctx = Context {
            signal,
            activity: &self.state.activity,
            session: &self.session,
            away_ms: away,
            path: env.path,
            traits: &self.config.traits,
            topics: &topics,
            permission: env.permission,
            now_ms: env.now_ms,
        };
        let mut first_skip = Skip::NoRule;
        for rule in self.config.rules.iter().filter(|rule| rule.when.holds(&ctx)) {
            match self.consider(&rule.prompt, signal, env) {
                Ok(proposal) => return Ok(proposal),
                Err(skip) if first_skip == Skip::NoRule => first_skip = skip,
                Err(_) => {}
            }
        }
        Err(first_skip)
    }

    /// Checks one prompt (or its help prompt when notifications are blocked).
    fn consider(&self, prompt_id: &str, signal: &Signal, env: &Env<'_>) -> Result<Proposal, Skip> {
        let prompt = self.config.prompt(prompt_id).ok_or(Skip::NoRule)?;
        match self.propose(prompt, signal, env) {
            Err(Skip::Suppressed(_, Suppressed::PermissionDenied)) if prompt.help.is_some() => {
                let help = prompt
                    .help
                    .as_deref()
                    .and_then(|id| self.config.prompt(id))
                    .ok_or(Skip::NoRule)?;
                self.propose(help, signal, env)
            }
            other => other,
        }
    }

    fn propose(&self, prompt: &Prompt, signal: &Signal, env: &Env<'_>) -> Result<Proposal, Skip> {
        let arms: Vec<Arm<'_>> = prompt
            .variants
            .iter()
            .map(|v| Arm {
                id: &v.id,
                weight: v.weight,
            })
            .collect();
        let variant = match assign(&self.state.anon_id, &prompt.id, prompt.holdout, &arms) {
            Assignment::Holdout => return Err(Skip::Holdout(prompt.id.clone())),
            Assignment::Variant(id) => prompt.variants.iter().find(|v| v.id == id).ok_or(Skip::NoRule)?,
        };
        let (entity, topic) = about(prompt, signal);
        let mut proposal = proposal(prompt, variant, signal, entity, topic);
        if !self
            .state
            .can_keep(&prompt.id, proposal.key(), proposal.topic.as_deref())
        {
            return Err(Skip::Suppressed(prompt.id.clone(), Suppressed::Unstorable));
        }
        let fresh = policy::PromptState::default();
        let prompt_state = self.state.prompts.get(&prompt.id).unwrap_or(&fresh);
        let push = PushStatus {
            permission: env.permission,
            subscribed: self.state.subscribed,
            topics: &self.state.topics,
        };
        let ask = Ask {
            kind: prompt.kind,
            key: proposal.key(),
            cool_off_days: prompt
                .cool_off_days
                .as_deref()
                .unwrap_or(&self.config.policy.cool_off_days),
            session_shown: self.session.prompts_shown,
        };
        proposal.offer = policy::may_show(
            &self.config.policy,
            prompt_state,
            &self.state.ledger,
            push,
            ask,
            env.now_ms,
        )
        .map_err(|reason| Skip::Suppressed(prompt.id.clone(), reason))?;
        Ok(proposal)
    }

    /// The prompt was rendered.
    pub fn shown(&mut self, now_ms: u64) {
        self.open = true;
        self.session.prompts_shown = self.session.prompts_shown.saturating_add(1);
        policy::record_shown(&mut self.state.ledger, now_ms);
    }

    /// The user said "Yes". For push, the topic stays pending until the
    /// subscription is confirmed ([`Engine::subscription_changed`]), so a Yes
    /// whose subscription fails is finished later, never lost.
    pub fn accepted(&mut self, proposal: &Proposal) {
        self.open = false;
        policy::record_accepted(
            self.state.prompts.entry(proposal.prompt.clone()).or_default(),
            proposal.key(),
        );
        if proposal.kind == Kind::Push && self.state.pending.len() < crate::state::PENDING_LIMIT {
            self.state.pending.insert(proposal.topic.clone().unwrap_or_default());
            self.state.credit = Some(crate::state::Attribution {
                prompt: proposal.prompt.clone(),
                variant: proposal.variant.clone(),
            });
        }
    }

    /// The pending "Yes" topics (without `""`) and the prompt to credit, if
    /// any "Yes" is pending.
    pub fn pending_yes(&self) -> Option<(Vec<String>, crate::state::Attribution)> {
        if self.state.pending.is_empty() {
            return None;
        }
        let topics = self.state.pending.iter().filter(|t| !t.is_empty()).cloned().collect();
        Some((topics, self.state.credit.clone().unwrap_or_default()))
    }

    /// Whether a pending "Yes" should be finished now: permission is
    /// granted and the backoff after the last failure has passed.
    pub fn retry_due(&self, now_ms: u64, permission: Permission) -> bool {
        permission == Permission::Granted && !self.state.pending.is_empty() && now_ms >= self.state.retry.next_ms
    }

    /// Finishing the pending "Yes" failed at `now_ms`: try again later.
    pub fn subscribe_failed(&mut self, now_ms: u64) {
        if !self.state.pending.is_empty() {
            self.state.retry.failed(now_ms);
        }
    }

    /// The browser's prompt was denied or dismissed: nothing left to finish.
    pub fn permission_refused(&mut self) {
        self.state.pending.clear();
        self.state.retry = crate::state::Retry::default();
        self.state.credit = None;
    }

    /// The user said "Not now" (or Escape).
    pub fn dismissed(&mut self, proposal: &Proposal, now_ms: u64) {
        self.open = false;
        policy::record_dismissed(self.state.prompts.entry(proposal.prompt.clone()).or_default(), now_ms);
    }

    /// The prompt went away without an answer (destroy, another tab answered).
    pub fn closed(&mut self) {
        self.open = false;
    }

    /// The browser's native permission prompt was answered.
    pub fn native_answered(&mut self, granted: bool) {
        policy::record_native(&mut self.state.ledger, granted);
    }

    /// The push subscription now exists with `topic` added (or was lost: `None`).
    pub fn subscription_changed(&mut self, topic: Option<&str>, subscribed: bool) {
        self.state.subscribed = subscribed;
        if !subscribed {
            // Unsubscribed: a pending Yes must not bring the subscription back.
            self.state.topics.clear();
            self.state.pending.clear();
        }
        let topic = topic.unwrap_or("");
        if subscribed {
            self.state.pending.remove(topic);
        }
        if !topic.is_empty() {
            self.state.topics.insert(topic.to_owned());
        }
        if self.state.pending.is_empty() {
            self.state.retry = crate::state::Retry::default();
            self.state.credit = None;
        }
    }

    /// The subscription now holds every pending topic.
    pub fn pending_finished(&mut self) {
        let topics = std::mem::take(&mut self.state.pending);
        self.state.topics.extend(topics.into_iter().filter(|t| !t.is_empty()));
        self.state.credit = None;
        self.state.subscribed = true;
        self.state.retry = crate::state::Retry::default();
    }

    /// The shortest time-on-page threshold of any rule, so the glue can tick then.
    pub fn next_tick_ms(&self) -> Option<u64> {
        self.config
            .rules
            .iter()
            .filter_map(|rule| rule.when.min_time_on_page())
            .min()
    }
}

/// The entity and topic a prompt is about: the signal's, or the topic
/// template rendered with the entity.
fn about(prompt: &Prompt, signal: &Signal) -> (Option<Entity>, Option<String>) {
    let Signal::Action { entity, topic, .. } = signal else {
        return (None, None);
    };
    let topic = topic.clone().or_else(|| {
        let template = prompt.topic.as_deref()?;
        let entity = entity.as_ref()?;
        let rendered = Template::parse(template).render(|field| entity.field(field));
        (!rendered.is_empty()).then_some(rendered)
    });
    (entity.clone(), if prompt.kind == Kind::Push { topic } else { None })
}

fn proposal(
    prompt: &Prompt,
    variant: &Variant,
    signal: &Signal,
    entity: Option<Entity>,
    topic: Option<String>,
) -> Proposal {
    let fields = entity.clone().unwrap_or_default();
    let topic_label = prompt
        .topic_label
        .as_deref()
        .filter(|_| topic.is_some())
        .map(|template| Template::parse(template).render_copy(|field| fields.field(field)))
        .map(|label| label.chars().take(MAX_TOPIC_LABEL_CHARS).collect::<String>())
        .filter(|label| !label.trim().is_empty());
    Proposal {
        prompt: prompt.id.clone(),
        variant: variant.id.clone(),
        trigger: signal.trigger().to_owned(),
        message: Template::parse(&variant.message).render_copy(|field| fields.field(field)),
        accept: variant.accept.clone(),
        decline: variant.decline.clone(),
        entity,
        topic,
        topic_label,
        kind: prompt.kind,
        offer: Offer::Plain,
    }
}

/// The longest topic label the server takes, in characters (a longer
/// rendering is cut: a long name must not cost the subscription).
pub const MAX_TOPIC_LABEL_CHARS: usize = 120;

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
