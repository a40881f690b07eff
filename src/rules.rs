//! Trigger rules: which user action offers which prompt.

use serde::Deserialize;

use crate::config::RuleConfig;

/// The person or thing an action is about ("Bill"), used in prompt copy.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Entity {
    /// App-defined id (`"user:17"`).
    pub id: String,
    /// Display name, inserted as text into `{entity.name}`.
    pub name: String,
    /// Optional avatar URL (http(s) or relative only; checked by the glue).
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

/// One observed user action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Action name, as passed to `track()` or `data-askwell-action`.
    pub action: String,
    /// What the action was about, if anything.
    pub entity: Option<Entity>,
}

/// The engine's answer: offer this prompt about this entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Id of the prompt to offer.
    pub prompt: String,
    /// The action that triggered it.
    pub trigger: String,
    /// What the prompt is about.
    pub entity: Option<Entity>,
}

/// The first rule matching `signal`, as a decision; policy is checked after.
pub fn evaluate(rules: &[RuleConfig], signal: &Signal) -> Option<Decision> {
    rules.iter().find(|rule| rule.on == signal.action).map(|rule| Decision {
        prompt: rule.prompt.clone(),
        trigger: signal.action.clone(),
        entity: signal.entity.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prompt: &str, on: &str) -> RuleConfig {
        RuleConfig {
            prompt: prompt.into(),
            on: on.into(),
        }
    }

    #[test]
    fn offers_the_prompt_of_the_first_matching_rule() {
        let rules = [rule("a", "liked"), rule("b", "sent"), rule("c", "sent")];
        let signal = Signal {
            action: "sent".into(),
            entity: None,
        };
        assert_eq!(evaluate(&rules, &signal).map(|d| d.prompt), Some("b".into()));
    }

    #[test]
    fn ignores_unknown_actions() {
        let signal = Signal {
            action: "other".into(),
            entity: None,
        };
        assert_eq!(evaluate(&[rule("a", "sent")], &signal), None);
    }
}
