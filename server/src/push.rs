//! The vocabulary of a push in the outbox: the urgency a notification is
//! sent with (RFC 8030 §5.3) and where each delivery stands. Both are stored
//! as text and parsed where they are read, so the rest of the server
//! matches on types.

/// RFC 8030 §5.3 `Urgency` of a push: checked when a notification is
/// enqueued, stored as its text, sent as the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// `very-low`: only on power and Wi-Fi.
    VeryLow,
    /// `low`: on power or Wi-Fi.
    Low,
    /// `normal`: unless the device is low on battery.
    Normal,
    /// `high`: even when low on battery.
    High,
}

impl Urgency {
    /// Every urgency, lowest first.
    pub const ALL: [Urgency; 4] = [Urgency::VeryLow, Urgency::Low, Urgency::Normal, Urgency::High];

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }

    /// The urgency with this header value.
    pub fn parse(text: &str) -> Option<Urgency> {
        Urgency::ALL.into_iter().find(|u| u.as_str() == text)
    }
}

/// Where a delivery stands (the `deliveries.status` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryStatus {
    /// Waiting for its first attempt.
    Queued,
    /// Waiting for another attempt.
    Retrying,
    /// Held by the delivery policy (over a cap, in quiet hours) until its
    /// `next_attempt_ms`, when it is asked again.
    Held,
    /// Accepted by the push service (final).
    Delivered,
    /// Given up (final).
    Failed,
    /// The subscription was gone and has been deleted (final).
    Pruned,
    /// Its notification was cancelled before it was sent (final; never sent).
    Cancelled,
    /// Dropped by the delivery policy: over a cap or in quiet hours where
    /// the policy drops (final; never sent).
    Capped,
    /// Merged into a later push of the same topic released with it, which
    /// carries the count (final; never sent on its own).
    Collapsed,
    /// Turned off by the person: its category or topic muted, or all
    /// paused, on the device or for the user, or the device left the topic
    /// it was sent to (final; never sent).
    Muted,
    /// Its category is paused by the delivery policy's fatigue guard: its
    /// pushes of the trailing window were mostly dismissed or followed by
    /// unsubscribes (final; never sent).
    Paused,
    /// Its personalised payload, rendered for this recipient, was larger
    /// than every browser accepts (final; never sent, never truncated).
    TooLarge,
    /// In a notification's holdout (`notification.holdout`): the control
    /// group of its A/B test (final; never sent).
    Withheld,
    /// In an A/B test's rollout, outside its test share: waits, without a
    /// payload, for the decision, which renders the winner (or the
    /// baseline) for it and queues it (never claimed before then).
    AwaitingWinner,
}

impl DeliveryStatus {
    /// Every status, in the order a delivery moves through them.
    pub const ALL: [DeliveryStatus; 14] = [
        DeliveryStatus::Queued,
        DeliveryStatus::Retrying,
        DeliveryStatus::Held,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Pruned,
        DeliveryStatus::Cancelled,
        DeliveryStatus::Capped,
        DeliveryStatus::Collapsed,
        DeliveryStatus::Muted,
        DeliveryStatus::Paused,
        DeliveryStatus::TooLarge,
        DeliveryStatus::Withheld,
        DeliveryStatus::AwaitingWinner,
    ];

    /// The column's text.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Pruned => "pruned",
            DeliveryStatus::Cancelled => "cancelled",
            DeliveryStatus::Held => "held",
            DeliveryStatus::Capped => "capped",
            DeliveryStatus::Collapsed => "collapsed",
            DeliveryStatus::Muted => "muted",
            DeliveryStatus::Paused => "paused",
            DeliveryStatus::TooLarge => "too_large",
            DeliveryStatus::Withheld => "withheld",
            DeliveryStatus::AwaitingWinner => "awaiting_winner",
        }
    }

    /// The status with this text.
    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether a worker may still claim it.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Queued | DeliveryStatus::Retrying | DeliveryStatus::Held
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_urgency_and_status_round_trips_through_its_text() {
        for urgency in Urgency::ALL {
            assert_eq!(Urgency::parse(urgency.as_str()), Some(urgency));
        }
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(Urgency::parse("asap"), None);
        assert_eq!(DeliveryStatus::parse("bounced"), None);
    }
}
