//! Incidents: one per item from the moment it leaves Normal until it is back, with what was
//! notified on which route, who acknowledged it, and which recovery actions ran.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Severity;
use crate::alert::ActionOutcome;
use crate::clock::Timestamp;
use crate::metrics::Labels;

/// An incident's number: unique within one pipeline (and, with a durable store, across its
/// restarts), increasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub u64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One item: a rule and the labels of the series it watches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ItemKey {
    /// The rule's name.
    pub rule: Arc<str>,
    /// The series' labels.
    pub labels: Labels,
}

impl ItemKey {
    /// The item's fingerprint (see [`crate::alert::fingerprint`]): stable across restarts,
    /// versions and machines.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use vigilo::Labels;
    /// use vigilo::pipeline::ItemKey;
    ///
    /// let item = ItemKey { rule: Arc::from("disk"), labels: Labels::from_pairs(&[("mount", "/")]) };
    /// assert_eq!(item.fingerprint(), "c49b2f1106f9796f");
    /// ```
    pub fn fingerprint(&self) -> String {
        crate::alert::fingerprint(&self.rule, &self.labels)
    }
}

impl fmt::Display for ItemKey {
    /// `rule{label="value",…}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.rule, self.labels)
    }
}

/// An acknowledgement: someone is on it. Stops repeats and escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Who.
    pub by: String,
    /// Why, or what they are doing.
    pub comment: String,
    /// When.
    pub at: Timestamp,
    /// When it lapses by itself (repeats and escalation then resume); `None`: until resolved.
    pub expires_at: Option<Timestamp>,
    /// Sticky acks survive a rise in severity; others are cleared by it (the rise is news).
    pub sticky: bool,
}

/// How a request to acknowledge reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckRequest {
    /// Who.
    pub by: String,
    /// Why.
    pub comment: String,
    /// Lapses after this long; `None`: until the incident resolves.
    pub expires_after: Option<Duration>,
    /// Survive a rise in severity.
    pub sticky: bool,
}

/// The outcome of the last delivery of an incident on one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The channel.
    pub channel: String,
    /// When it ended.
    pub at: Timestamp,
    /// True if delivered.
    pub delivered: bool,
    /// The error, when not.
    pub error: Option<String>,
}

/// What one route has told about an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRecord {
    /// The route.
    pub route: String,
    /// The severity last notified on this route (`None`: nothing sent yet).
    pub notified: Option<Severity>,
    /// When the route first notified the incident (escalation counts from here).
    pub first_notified_at: Option<Timestamp>,
    /// When it last did.
    pub last_notified_at: Option<Timestamp>,
    /// Escalation tiers already notified.
    pub escalated: usize,
    /// The last delivery on any channel of the route.
    pub last_delivery: Option<DeliveryRecord>,
    /// Who the recipients' notification windows left out of the route's last notification
    /// of the incident, and why (`lee: outside lee's hours (09:00-18:00 Asia/Seoul); deferred
    /// to …`).
    #[serde(default)]
    pub skipped: Vec<String>,
}

impl RouteRecord {
    pub(crate) fn new(route: &str) -> Self {
        RouteRecord {
            route: route.to_owned(),
            notified: None,
            first_notified_at: None,
            last_notified_at: None,
            escalated: 0,
            last_delivery: None,
            skipped: Vec::new(),
        }
    }
}

/// How a recovery action run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunResult {
    /// Still running.
    Running,
    /// The action did what it meant to.
    Succeeded,
    /// It ran and failed (non-zero exit, its own error).
    Failed,
    /// It was refused a capability.
    Denied,
    /// It ran past the recovery's timeout.
    TimedOut,
}

/// One run of a recovery action for an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRun {
    /// The action.
    pub action: String,
    /// Attempt number within the incident, from 1.
    pub attempt: u32,
    /// When it started.
    pub started_at: Timestamp,
    /// When it ended (`None` while running).
    pub finished_at: Option<Timestamp>,
    /// How it ended.
    pub result: RunResult,
    /// What the action reported, if it reported.
    pub outcome: Option<ActionOutcome>,
    /// The error, if it failed without an outcome.
    pub error: Option<String>,
}

impl ActionRun {
    /// One line for notifications: `restart-nginx #1 succeeded (exit 0): restarted`, the
    /// output's tail after ` | output: ` with its line breaks shown as `\n`.
    pub fn summary(&self) -> String {
        let result = match self.result {
            RunResult::Running => "running",
            RunResult::Succeeded => "succeeded",
            RunResult::Failed => "failed",
            RunResult::Denied => "denied",
            RunResult::TimedOut => "timed out",
        };
        let mut s = format!("{} #{} {result}", self.action, self.attempt);
        if let Some(code) = self.outcome.as_ref().and_then(|o| o.exit_code) {
            s.push_str(&format!(" (exit {code})"));
        }
        let message = self
            .outcome
            .as_ref()
            .map(|o| o.message.as_str())
            .or(self.error.as_deref())
            .unwrap_or("");
        if !message.is_empty() {
            s.push_str(": ");
            s.push_str(&crate::pipeline::truncate(message, 300));
        }
        if let Some(tail) = self.outcome.as_ref().map(|o| o.output_tail.trim())
            && !tail.is_empty()
        {
            // One line: the output's own line breaks shown as `\n` (a plugin's output reaches
            // here already inert otherwise; its lines must not read as lines of their own).
            s.push_str(" | output: ");
            let tail = crate::pipeline::truncate_start(tail, 300)
                .replace('\r', "\\r")
                .replace('\n', "\\n");
            s.push_str(&tail);
        }
        s
    }
}

/// One item's problem, from leaving Normal to coming back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Its number.
    pub id: IncidentId,
    /// The item.
    pub item: ItemKey,
    /// [`ItemKey::fingerprint`].
    pub fingerprint: String,
    /// The metric watched.
    pub metric: Arc<str>,
    /// Item and rule labels, merged.
    pub labels: BTreeMap<String, String>,
    /// The latest annotations, filled in.
    pub annotations: BTreeMap<String, String>,
    /// The severity now (Normal once resolved).
    pub severity: Severity,
    /// The highest severity it reached.
    pub peak: Severity,
    /// The value that decided the latest change.
    pub value: Option<f64>,
    /// The threshold crossed by the latest change.
    pub threshold: Option<f64>,
    /// The item has no fresh data.
    pub no_data: bool,
    /// The item is flapping.
    pub flapping: bool,
    /// When it opened (the first change above Normal).
    pub opened_at: Timestamp,
    /// When its severity last changed.
    pub changed_at: Timestamp,
    /// When it resolved.
    pub resolved_at: Option<Timestamp>,
    /// Changes of severity seen, the first included.
    pub changes: u32,
    /// The acknowledgement, if any.
    pub ack: Option<Ack>,
    /// What each route told.
    pub routes: Vec<RouteRecord>,
    /// Recovery actions run, oldest first.
    pub actions: Vec<ActionRun>,
    /// For a "channel failing" meta-alert: the failing channel, never used to deliver it.
    pub meta_channel: Option<String>,
    /// What holds its notifications back now, if anything: a silence, a maintenance window or
    /// an inhibition (filled in when incidents are listed).
    pub held_back: Option<String>,
}

impl Incident {
    /// True while the item is above Normal.
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }

    /// True if acknowledged and the acknowledgement has not lapsed at `now`.
    pub fn is_acked(&self, now: Timestamp) -> bool {
        self.ack
            .as_ref()
            .is_some_and(|a| a.expires_at.is_none_or(|e| now < e))
    }

    pub(crate) fn route_mut(&mut self, route: &str) -> &mut RouteRecord {
        let i = match self.routes.iter().position(|r| r.route == route) {
            Some(i) => i,
            None => {
                self.routes.push(RouteRecord::new(route));
                self.routes.len() - 1
            }
        };
        &mut self.routes[i]
    }

    pub(crate) fn route(&self, route: &str) -> Option<&RouteRecord> {
        self.routes.iter().find(|r| r.route == route)
    }

    /// The latest finished recovery run's summary, for the notifications that follow it.
    pub fn recovery_summary(&self) -> Option<String> {
        self.actions
            .iter()
            .rev()
            .find(|r| r.result != RunResult::Running)
            .map(ActionRun::summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_summary_is_one_line_whatever_the_output() {
        let run = ActionRun {
            action: "restart".into(),
            attempt: 1,
            started_at: Timestamp::from_secs(1),
            finished_at: Some(Timestamp::from_secs(2)),
            result: RunResult::Succeeded,
            outcome: Some(ActionOutcome {
                success: true,
                message: "done".into(),
                exit_code: Some(0),
                output_tail: "ok\n[CRITICAL] forged line\r\n".into(),
                elapsed: std::time::Duration::from_secs(1),
            }),
            error: None,
        };
        let s = run.summary();
        assert!(!s.contains(['\n', '\r']), "{s:?}");
        assert!(s.ends_with(r"| output: ok\n[CRITICAL] forged line"), "{s}");
    }
}
