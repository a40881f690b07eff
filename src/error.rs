//! The one error type of the pure core.

use std::fmt;

/// Everything the core can reject. The browser glue turns these into a
/// `JsError` at the boundary, so a host page gets one readable message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The configuration has one or more bad fields; every one is listed.
    #[error("invalid Askwell config: {0}")]
    InvalidConfig(FieldProblems),
    /// A journey definition has one or more bad fields; every one is listed.
    #[error("invalid journey: {0}")]
    InvalidJourney(FieldProblems),
    /// A delivery policy has one or more bad fields; every one is listed.
    #[error("invalid delivery policy: {0}")]
    InvalidDeliveryPolicy(FieldProblems),
    /// A push payload could not be used as a notification.
    #[error("invalid push payload: {0}")]
    InvalidPayload(String),
}

/// Shorthand for results of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One bad field, named by its path in the config (`rules[2].on`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Path of the field, as a JS developer would write it.
    pub path: String,
    /// What is wrong and what is expected.
    pub message: String,
}

/// All problems found in one validation pass, so a developer fixes them at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldProblems(pub Vec<FieldProblem>);

impl FieldProblems {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// `Ok(())` when nothing was found, else the whole list as one error.
    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig(self))
        }
    }
}

impl fmt::Display for FieldProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", problem.path, problem.message)?;
        }
        Ok(())
    }
}
