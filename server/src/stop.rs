//! The shutdown signal of the server's background loops (delivery workers,
//! journey ticks, rollout decisions, the event sweep).
//!
//! A `tokio::sync::Notify` was used before, and `notify_waiters()` wakes only
//! the loops waiting at that instant: one busy in a delivery round or a tick
//! when SIGTERM arrived missed it, went back to sleep, and shutdown waited
//! for it until the orchestrator killed the process. A raised `Stop` stays
//! raised.

use tokio::sync::watch;

/// Raised once, seen by every clone whenever it looks.
#[derive(Debug, Clone)]
pub struct Stop {
    raised: watch::Sender<bool>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop::new()
    }
}

impl Stop {
    /// A stop not raised yet.
    #[must_use]
    pub fn new() -> Self {
        Stop {
            raised: watch::Sender::new(false),
        }
    }

    /// Raises it, for every clone: loops waiting return at once, a busy one
    /// when it next looks.
    pub fn raise(&self) {
        self.raised.send_replace(true);
    }

    /// Whether it was raised.
    #[must_use]
    pub fn is_raised(&self) -> bool {
        *self.raised.borrow()
    }

    /// Resolves once it is raised (at once if it already was).
    pub async fn raised(&self) {
        let mut seen = self.raised.subscribe();
        // An error means every sender is gone, and `self` is one: unreachable.
        let _ = seen.wait_for(|raised| *raised).await;
    }
}
