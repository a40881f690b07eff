//! Wire types shared by the page, the service worker and askwell-server.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::value::Value;

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
    /// Reads a payload from parsed JSON without serde (keeps the worker small).
    ///
    /// # Errors
    /// [`Error::InvalidPayload`] when it is not Askwell's or not usable.
    pub fn read(value: &Value) -> Result<PushPayload> {
        if value.get("askwell").and_then(Value::as_f64) != Some(1.0) {
            return Err(Error::InvalidPayload("not an Askwell push".into()));
        }
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let payload = PushPayload {
            askwell: 1,
            title: text("title").unwrap_or_default(),
            body: text("body").unwrap_or_default(),
            icon: text("icon"),
            url: text("url"),
            tag: text("tag"),
            delivery: text("delivery"),
        };
        payload.validate()?;
        Ok(payload)
    }

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
    fn reads_parsed_json_without_serde() {
        let value =
            crate::value::from_json(r#"{"askwell":1,"title":"Bill replied","body":"6?","url":"/chat","tag":7}"#);
        let payload = PushPayload::read(&value).expect("valid");
        assert_eq!(
            (payload.title.as_str(), payload.url.as_deref(), payload.tag),
            ("Bill replied", Some("/chat"), None)
        );
        assert!(PushPayload::read(&crate::value::from_json(r#"{"title":"x"}"#)).is_err());
        assert!(PushPayload::read(&crate::value::from_json(r#"{"askwell":1,"title":42}"#)).is_err());
    }

    #[test]
    fn rejects_foreign_and_untitled_payloads() {
        let foreign: PushPayload = serde_json::from_str(r#"{"title":"x"}"#).expect("parses");
        assert!(foreign.validate().is_err());
        let untitled: PushPayload = serde_json::from_str(r#"{"askwell":1}"#).expect("parses");
        assert!(untitled.validate().is_err());
    }
}
