//! The JSON configuration a host page passes to `Askwell.start(config)`.
//!
//! Deserialisation only checks shapes; [`Config::validate`] checks meaning and
//! reports every bad field by path in one error, so a developer fixes a config
//! in one round trip instead of one field at a time.

use serde::Deserialize;

use crate::error::{FieldProblems, Result};
use crate::policy::Policy;
use crate::template::Template;

/// Longest message copy we accept, in characters (DESIGN §4: short, specific asks convert).
pub const MAX_MESSAGE_CHARS: usize = 90;
/// Longest button label we accept, in characters.
pub const MAX_BUTTON_CHARS: usize = 15;

/// The whole configuration of one Askwell instance.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Base URL of askwell-server (`""` = same origin).
    #[serde(default)]
    pub server: String,
    /// The soft prompts this page may show.
    pub prompts: Vec<PromptConfig>,
    /// When to offer which prompt.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Cool-offs and budgets; defaults follow DESIGN §4.
    #[serde(default)]
    pub policy: Policy,
}

/// One soft prompt: its id and copy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromptConfig {
    /// Stable id, used in state, events and experiments.
    pub id: String,
    /// Message template, e.g. `"Want to know when {entity.name} replies?"`.
    pub message: String,
    /// Label of the accepting button.
    #[serde(default = "default_accept")]
    pub accept: String,
    /// Label of the declining button; plain, never confirm-shaming.
    #[serde(default = "default_decline")]
    pub decline: String,
}

/// When to offer a prompt.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleConfig {
    /// Id of the prompt to offer.
    pub prompt: String,
    /// Name of the action that triggers it (`"message_sent"`).
    pub on: String,
}

fn default_accept() -> String {
    "Yes".into()
}

fn default_decline() -> String {
    "Not now".into()
}

impl Config {
    /// Checks everything serde cannot: references, lengths, copy rules.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] listing every bad field by path.
    pub fn validate(&self) -> Result<()> {
        let mut problems = FieldProblems::default();
        for (i, prompt) in self.prompts.iter().enumerate() {
            validate_prompt(prompt, &format!("prompts[{i}]"), &mut problems);
            if self.prompts[..i].iter().any(|p| p.id == prompt.id) {
                problems.push(format!("prompts[{i}].id"), "duplicate prompt id");
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if !self.prompts.iter().any(|p| p.id == rule.prompt) {
                problems.push(format!("rules[{i}].prompt"), "no prompt has this id");
            }
            if rule.on.trim().is_empty() {
                problems.push(format!("rules[{i}].on"), "expected an action name");
            }
        }
        self.policy.validate("policy", &mut problems);
        problems.into_result()
    }

    /// The prompt with this id.
    pub fn prompt(&self, id: &str) -> Option<&PromptConfig> {
        self.prompts.iter().find(|p| p.id == id)
    }
}

fn validate_prompt(prompt: &PromptConfig, path: &str, problems: &mut FieldProblems) {
    if prompt.id.trim().is_empty() {
        problems.push(format!("{path}.id"), "expected a non-empty id");
    }
    let message_chars = Template::parse(&prompt.message).literal_chars();
    if message_chars == 0 {
        problems.push(format!("{path}.message"), "expected message copy");
    } else if message_chars > MAX_MESSAGE_CHARS {
        problems.push(
            format!("{path}.message"),
            format!("expected at most {MAX_MESSAGE_CHARS} characters, got {message_chars}"),
        );
    }
    for (field, label) in [("accept", &prompt.accept), ("decline", &prompt.decline)] {
        let chars = label.chars().count();
        if chars == 0 || chars > MAX_BUTTON_CHARS {
            problems.push(
                format!("{path}.{field}"),
                format!("expected 1 to {MAX_BUTTON_CHARS} characters, got {chars}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        serde_json::from_str(json).expect("test config parses")
    }

    #[test]
    fn accepts_a_minimal_config_with_defaults() {
        let c = config(r#"{"prompts":[{"id":"reply","message":"Hi?"}],"rules":[{"prompt":"reply","on":"sent"}]}"#);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.prompts[0].decline, "Not now");
    }

    #[test]
    fn names_every_bad_field_by_path() {
        let c = config(
            r#"{"prompts":[{"id":"","message":"","accept":"Yes please, absolutely"}],
                "rules":[{"prompt":"nope","on":" "}]}"#,
        );
        let err = c.validate().expect_err("config is invalid").to_string();
        for path in [
            "prompts[0].id",
            "prompts[0].message",
            "prompts[0].accept",
            "rules[0].prompt",
            "rules[0].on",
        ] {
            assert!(err.contains(path), "{path} missing from: {err}");
        }
    }

    #[test]
    fn rejects_duplicate_prompt_ids() {
        let c = config(r#"{"prompts":[{"id":"a","message":"x"},{"id":"a","message":"y"}]}"#);
        assert!(c
            .validate()
            .expect_err("duplicate")
            .to_string()
            .contains("prompts[1].id"));
    }
}
