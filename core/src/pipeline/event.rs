//! Events: every decision the pipeline makes, for callers to follow live and for the history.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::incident::IncidentId;
use crate::Severity;
use crate::clock::Timestamp;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A transition arrived from the evaluator.
    Transition,
    /// An incident opened (an item left Normal).
    Opened,
    /// An incident resolved (the evaluator put its item back to Normal).
    Resolved,
    /// An alert was taken by a route and goes out now.
    Routed,
    /// No route took an alert, and there is no default route.
    Unrouted,
    /// An alert was taken by a route that groups, and waits for the group's next notification.
    Grouped,
    /// A change repeated what the route had already notified: nothing sent.
    Deduplicated,
    /// A higher severity on the same item, or a declared dependency, held a notification back.
    Inhibited,
    /// A silence or maintenance window held a notification back.
    Silenced,
    /// Outside the route's schedule: held until the next window.
    Deferred,
    /// Outside the route's schedule: dropped.
    Dropped,
    /// A notification was queued for a channel.
    Queued,
    /// A channel delivered a notification.
    Delivered,
    /// A delivery attempt failed and will be retried.
    Retrying,
    /// A notification could not be delivered on a channel (attempts exhausted or permanent).
    Failed,
    /// A failed notification went to the channel's fallback.
    Fallback,
    /// The channel's rate limit held a notification back (summed up later).
    RateLimited,
    /// A notification was repeated (still firing, not acknowledged).
    Repeated,
    /// An escalation tier was notified.
    Escalated,
    /// An incident was acknowledged.
    Acked,
    /// An acknowledgement was removed (by request, by expiry, or by a rise in severity).
    Unacked,
    /// A silence was created.
    SilenceCreated,
    /// A silence ended (expired or expired by request).
    SilenceExpired,
    /// A recovery action started.
    ActionStarted,
    /// A recovery action ended (see the detail for how).
    ActionFinished,
    /// A recovery action that would have run did not (running, cooling down, capped,
    /// silenced).
    ActionSkipped,
    /// A channel keeps failing: the meta-alert was raised (or, with `Resolved`, cleared).
    ChannelFailing,
    /// The routes, policy or channels were replaced.
    Reloaded,
    /// The store cannot commit: notifications are held (see the detail; it also says when the
    /// store commits again).
    StoreFailing,
}

impl EventKind {
    /// The snake_case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Transition => "transition",
            EventKind::Opened => "opened",
            EventKind::Resolved => "resolved",
            EventKind::Routed => "routed",
            EventKind::Unrouted => "unrouted",
            EventKind::Grouped => "grouped",
            EventKind::Deduplicated => "deduplicated",
            EventKind::Inhibited => "inhibited",
            EventKind::Silenced => "silenced",
            EventKind::Deferred => "deferred",
            EventKind::Dropped => "dropped",
            EventKind::Queued => "queued",
            EventKind::Delivered => "delivered",
            EventKind::Retrying => "retrying",
            EventKind::Failed => "failed",
            EventKind::Fallback => "fallback",
            EventKind::RateLimited => "rate_limited",
            EventKind::Repeated => "repeated",
            EventKind::Escalated => "escalated",
            EventKind::Acked => "acked",
            EventKind::Unacked => "unacked",
            EventKind::SilenceCreated => "silence_created",
            EventKind::SilenceExpired => "silence_expired",
            EventKind::ActionStarted => "action_started",
            EventKind::ActionFinished => "action_finished",
            EventKind::ActionSkipped => "action_skipped",
            EventKind::ChannelFailing => "channel_failing",
            EventKind::Reloaded => "reloaded",
            EventKind::StoreFailing => "store_failing",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One decision, with what it concerned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing number within the pipeline's history.
    pub seq: u64,
    /// When (the pipeline's clock).
    pub at: Timestamp,
    /// What.
    pub kind: EventKind,
    /// The incident concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentId>,
    /// The item, `rule{labels}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// The rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The severity concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// The route.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The notification's idempotency key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Human-readable detail (an error, a reason, a summary).
    pub detail: String,
}

impl Event {
    pub(crate) fn new(kind: EventKind, at: Timestamp) -> Self {
        Event {
            seq: 0,
            at,
            kind,
            incident: None,
            item: None,
            rule: None,
            severity: None,
            route: None,
            channel: None,
            action: None,
            key: None,
            detail: String::new(),
        }
    }
}

impl fmt::Display for Event {
    /// `2026-11-27T10:00:00Z delivered #3 cpu route=ops channel=webhook: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.at, self.kind)?;
        if let Some(i) = self.incident {
            write!(f, " #{i}")?;
        }
        if let Some(item) = &self.item {
            write!(f, " {item}")?;
        }
        if let Some(s) = self.severity {
            write!(f, " [{s}]")?;
        }
        if let Some(r) = &self.route {
            write!(f, " route={r}")?;
        }
        if let Some(c) = &self.channel {
            write!(f, " channel={c}")?;
        }
        if let Some(a) = &self.action {
            write!(f, " action={a}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Which events to read from the history. Every filter given must hold; the newest `limit`
/// events that pass are returned, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// At most this many (default 100).
    pub limit: usize,
    /// Only this incident's.
    pub incident: Option<IncidentId>,
    /// Only this item's (`rule{labels}`, as [`ItemKey`](super::ItemKey) displays).
    pub item: Option<String>,
    /// Only this rule's.
    pub rule: Option<String>,
    /// Only from this time on (inclusive).
    pub since: Option<Timestamp>,
    /// Only before this time (exclusive).
    pub until: Option<Timestamp>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<EventKind>,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            limit: 100,
            incident: None,
            item: None,
            rule: None,
            since: None,
            until: None,
            kinds: Vec::new(),
        }
    }
}

impl HistoryQuery {
    /// The latest `n` events.
    pub fn latest(n: usize) -> Self {
        HistoryQuery {
            limit: n,
            ..HistoryQuery::default()
        }
    }
}
