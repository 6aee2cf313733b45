//! The pipeline's counters, as callers read them.

use serde::Serialize;

/// Counters of the pipeline's work.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PipelineStats {
    /// Transitions received from the evaluator.
    pub transitions: u64,
    /// Incidents open now.
    pub incidents_open: usize,
    /// Incidents opened since start.
    pub incidents_opened: u64,
    /// Notifications put in the outbox (one per channel).
    pub notifications: u64,
    /// Notifications delivered.
    pub delivered: u64,
    /// Notifications that failed on their channel for good.
    pub failed: u64,
    /// Delivery attempts retried.
    pub retries: u64,
    /// Notifications handed to a fallback channel.
    pub fallbacks: u64,
    /// Notifications held back by rate limits.
    pub held_back: u64,
    /// Alerts no route took.
    pub unrouted: u64,
    /// Changes not sent because they repeated what was notified.
    pub deduplicated: u64,
    /// Notifications held back by inhibition.
    pub inhibited: u64,
    /// Notifications held back by silences and maintenance windows.
    pub silenced: u64,
    /// Notifications deferred to a route's next window.
    pub deferred: u64,
    /// Notifications dropped outside a route's window.
    pub dropped: u64,
    /// Recovery runs started.
    pub actions_started: u64,
    /// Recovery runs that succeeded.
    pub actions_succeeded: u64,
    /// Recovery runs that failed, were denied or timed out.
    pub actions_failed: u64,
    /// Notifications in the outbox now (queued, in flight or waiting to retry).
    pub outbox: usize,
    /// Deliveries and action runs in progress.
    pub in_flight: usize,
    /// Events a subscriber was too slow to take.
    pub events_dropped: u64,
    /// Batches the store refused.
    pub store_errors: u64,
    /// The store's last error.
    pub last_store_error: Option<String>,
    /// The store cannot commit now: new notifications are held in memory, none is delivered
    /// before it is committed (the `vigilo_store_failing` meta-alert is the exception).
    pub store_failing: bool,
    /// Notifications held now because the store could not commit them.
    pub held_uncommitted: usize,
    /// Held notifications taken out past `[store] hold_limit` and summed up (per channel, sent
    /// when the store is back).
    pub held_summarised: u64,
    /// History events not kept while the store failed (beyond what memory holds).
    pub events_lost: u64,
    /// Groups waiting or notified.
    pub groups: usize,
    /// Timers set.
    pub timers: usize,
}
