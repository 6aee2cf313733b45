//! The alert pipeline: from a [`Transition`](crate::eval::Transition) to delivered
//! notifications and guarded recovery actions.
//!
//! ```text
//! evaluator ──Transition──▶ incidents ──▶ routing ──▶ grouping ──▶ recipients ──▶ delivery ──▶ channel threads
//!                              │             (suppression: silences,   (windows)    (outbox, retry,
//!                              │              maintenance, inhibition)               fallback, rate
//!                              │            (wait, interval, repeat,                 limit, meta-alert)
//!                              │             escalation, resolved)
//!                              └──▶ recovery ──▶ action threads (one run per item, cooldown,
//!                                                 attempt cap, timeout)
//! ```
//!
//! Each stage (`stages/`) owns its state and decides; what its decisions mean for the others
//! comes back as effects (events, store changes, timers, notifications, records, synthetic
//! transitions) that one loop (`dispatcher.rs`) applies in order. The journal (`journal.rs`) is
//! the store's one owner: every step is one transaction.
//!
//! * **Incidents.** An item (rule + series labels) that leaves Normal opens an [`Incident`];
//!   changes update it; the evaluator putting the item back to Normal resolves it. Nothing else
//!   resolves an incident: a recovery action's success is recorded, and "recovered" is only
//!   sent once the evaluator agrees.
//! * **Routing** ([`Route`]): routes are tried in order; the first whose selector (rule names,
//!   label matchers, severities) takes the alert wins, and later ones too while `continue` is
//!   set. An alert no route takes goes to the `default` route; without one it is recorded as
//!   [`EventKind::Unrouted`] (and counted), never silently lost.
//! * **Policy**, per route, with Alertmanager's semantics where it has them: alerts grouped by
//!   `group_by` labels wait `group_wait` for company, then the group notifies at most once per
//!   `group_interval` about new changes, and again every `repeat_interval` while something in
//!   it fires unacknowledged. A change that repeats what the route already told is dropped
//!   (deduplication). Escalation tiers tell more people when an incident stays unacknowledged.
//!   A higher severity on the same series inhibits the lower ones automatically, and declared
//!   [`InhibitRule`]s suppress dependants ("host down" silences that host's alerts). Silences
//!   (API) and maintenance windows (configuration) hold notifications back; what they held
//!   and still fires is notified when they end. Outside a route's schedule a notification is
//!   deferred to the next window or dropped. Resolved notifications go to the routes that told
//!   the item fired, if `send_resolved`.
//! * **Recipients.** People and groups, with the address each channel needs; a person may
//!   have notification windows (hours, days, time zone; per channel if they wish), outside
//!   which they are skipped for the others, deferred to their window, or dropped
//!   ([`OutsideHours`]); who was left out, and why, is on the incident's route record.
//! * **Delivery.** Each notification is one outbox entry per channel with an idempotency key
//!   per (incident, route, change), the same for every attempt and channel. Each channel has
//!   its own threads and queue. Retryable errors are retried with exponential backoff and
//!   jitter; permanent ones are not; when a channel gives up, its `fallback` channel gets the
//!   notification. Consecutive failures raise a meta-alert (rule
//!   [`CHANNEL_FAILING_RULE`]) that never goes to the failing channel. A rate limit holds
//!   notifications back and sums them up in one notification when it allows again.
//! * **Recovery.** A [`Recovery`] names the action for alerts of a rule at some severities.
//!   One run per item at a time; a cooldown between runs; at most `max_attempts` per incident;
//!   a timeout. The outcome goes into the incident and, as the `recovery` annotation, into the
//!   notifications that follow.
//! * **Events.** Every decision is an [`Event`]: [`Pipeline::subscribe`] follows them live,
//!   [`Pipeline::history`] queries them from the [`Store`].
//!
//! Time comes only from the pipeline's [`Clock`](crate::clock::Clock): on a
//! [`ManualClock`](crate::clock::ManualClock), move the clock and call [`Pipeline::settle`].

mod dispatcher;
mod effects;
mod event;
mod incident;
mod journal;
mod notification;
mod request;
mod requests;
mod runner;
mod settings;
mod silence;
mod sqlite;
mod stages;
mod stats;
mod store;
mod timers;
mod workers;

pub use event::{Event, EventKind, HistoryQuery};
pub use incident::{
    Ack, AckRequest, ActionRun, DeliveryRecord, Incident, IncidentId, ItemKey, RouteRecord,
    RunResult,
};
pub use notification::{Notification, NotificationId, NotificationKind};
pub use request::StoreRequest;
pub(crate) use runner::Implementations;
pub use runner::{Pipeline, PipelineBuilder, StopReport};
pub use settings::{
    ActionConfig, AddressKind, ChannelConfig, Escalation, InhibitRule, Maintenance, NotifyConfig,
    OnCorrupt, OutsideHours, OutsideSchedule, Person, PipelineConfig, PluginSource, RateLimit,
    Recovery, RetryPolicy, Route, Selector, StoreConfig, Window,
};
pub use silence::{Silence, SilenceId, SilenceRequest};
pub use sqlite::{SCHEMA_VERSION, SqliteStore};
pub use stats::PipelineStats;
pub use store::{Store, StoreChange, StoreError, StoredState};

/// The rule name of the meta-alert raised when a channel keeps failing.
pub const CHANNEL_FAILING_RULE: &str = crate::rules::RESERVED_NAMES[0];
/// The rule name of a rate limit's summary.
pub const RATE_LIMITED_RULE: &str = crate::rules::RESERVED_NAMES[1];
/// The rule name of the meta-alert raised while the store cannot commit.
pub const STORE_FAILING_RULE: &str = crate::rules::RESERVED_NAMES[2];

use std::time::Duration;

/// Why the pipeline refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The configuration names a channel no implementation was given for.
    #[error("channel {0:?} is configured but has no implementation")]
    MissingChannel(String),
    /// The configuration names an action no implementation was given for.
    #[error("action {0:?} is configured but has no implementation")]
    MissingAction(String),
    /// An implementation was given for a channel the configuration does not have.
    #[error(
        "a channel implementation is named {0:?}, but no [[channel]] of that name is configured"
    )]
    UnconfiguredChannel(String),
    /// An implementation was given for an action the configuration does not have.
    #[error(
        "an action implementation is named {0:?}, but no [[action]] of that name is configured"
    )]
    UnconfiguredAction(String),
    /// No open incident has this number.
    #[error("no open incident #{0}")]
    UnknownIncident(IncidentId),
    /// No silence has this number.
    #[error("no silence {0}")]
    UnknownSilence(SilenceId),
    /// A request is malformed (a silence without duration, an ack without a name …).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A thread could not be started.
    #[error("cannot start a pipeline thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// [`Pipeline::settle`] gave up.
    #[error("the pipeline did not settle within {0:?} (a channel or action still running?)")]
    Timeout(Duration),
    /// The pipeline's thread has stopped.
    #[error("the pipeline has stopped")]
    Stopped,
}

/// True for the pipeline's own incidents (a channel failing, the store failing), which no rule
/// of the evaluator stands behind.
pub(crate) fn is_meta(inc: &Incident) -> bool {
    inc.meta_channel.is_some()
        || &*inc.item.rule == CHANNEL_FAILING_RULE
        || &*inc.item.rule == STORE_FAILING_RULE
}

/// `s` cut to at most `max` bytes (at a character boundary), with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The last `max` bytes of `s` (at a character boundary), with `…` in front when cut.
pub(crate) fn truncate_start(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}
