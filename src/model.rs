//! Wire types shared by the page, the service worker and askwell-server.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The JSON body askwell-server pushes; the worker turns it into a notification.
///
/// The `askwell` marker lets the worker ignore pushes that belong to the app's
/// own code when both live in one service worker.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct PushPayload {
    /// Marker: `1` on every payload askwell-server sends.
    pub askwell: u8,
    /// Notification title (required).
    pub title: String,
    /// Notification body.
    pub body: String,
    /// Icon URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Page to open or focus on click.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Replaces an earlier notification with the same tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Delivery id, reported back with clicks and dismissals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

impl PushPayload {
    /// Checks that the payload can be shown as is.
    ///
    /// # Errors
    /// [`Error::InvalidPayload`] when it is not Askwell's or has no title.
    pub fn validate(&self) -> Result<()> {
        if self.askwell != 1 {
            return Err(Error::InvalidPayload("not an Askwell push".into()));
        }
        if self.title.trim().is_empty() {
            return Err(Error::InvalidPayload("title is empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_titled_askwell_payload() {
        let payload: PushPayload = serde_json::from_str(r#"{"askwell":1,"title":"Bill replied"}"#).expect("parses");
        assert_eq!(payload.validate(), Ok(()));
    }

    #[test]
    fn rejects_foreign_and_untitled_payloads() {
        let foreign: PushPayload = serde_json::from_str(r#"{"title":"x"}"#).expect("parses");
        assert!(foreign.validate().is_err());
        let untitled: PushPayload = serde_json::from_str(r#"{"askwell":1}"#).expect("parses");
        assert!(untitled.validate().is_err());
    }
}
