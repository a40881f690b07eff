//! The rates variants are compared on.

use askwell::model::EventKind;
use serde::Serialize;

use super::{count, positive, VariantReport};
use crate::stats::Proportion;

/// A rate two variants are compared on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Subscribed / shown.
    OptIn,
    /// Clicked / delivered notifications.
    ClickThrough,
    /// Converted devices / exposed devices.
    Conversion,
}

impl Metric {
    /// Every compared metric, in report order.
    pub const ALL: [Metric; 3] = [Metric::OptIn, Metric::ClickThrough, Metric::Conversion];

    /// The report's name (`comparisons[].metric`).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::OptIn => "opt_in",
            Metric::ClickThrough => "click_through",
            Metric::Conversion => "conversion",
        }
    }

    /// Its name in a verdict, and what its trials are.
    pub(super) fn words(self) -> (&'static str, &'static str) {
        match self {
            Metric::OptIn => ("opt-in", "impressions"),
            Metric::ClickThrough => ("click-through", "deliveries"),
            Metric::Conversion => ("conversion", "devices"),
        }
    }

    /// Its successes and trials in `variant`.
    pub(super) fn of(self, variant: &VariantReport) -> Proportion {
        match self {
            Metric::OptIn => Proportion::new(
                count(variant, EventKind::Subscribed),
                count(variant, EventKind::PromptShown),
            ),
            Metric::ClickThrough => Proportion::new(
                count(variant, EventKind::NotificationClicked),
                count(variant, EventKind::NotificationDelivered),
            ),
            Metric::Conversion => Proportion::new(positive(variant.converted_devices), positive(variant.devices)),
        }
    }
}

impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
