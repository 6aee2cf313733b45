//! Alerts and the two things that act on them: channels (notify people) and actions (try to
//! fix the problem). `core` only defines the traits; `vigilo-plugin-host` implements them for
//! sandboxed WebAssembly components, and a service may implement them in Rust directly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Severity;
use crate::clock::Timestamp;

/// Whether an alert reports a problem or its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The item is at a severity above Normal.
    Firing,
    /// The item is back to Normal ("normal recovery").
    Resolved,
}

/// One notification about one item, as channels and actions receive it. Made by the
/// pipeline; to make one yourself (a channel's test), use [`Alert::builder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Alert {
    /// The rule's name.
    pub rule: String,
    /// The metric watched.
    pub metric: String,
    /// Item labels and the rule's labels, merged (the item's win on a clash).
    pub labels: BTreeMap<String, String>,
    /// Summary, description, runbook … with values filled in.
    pub annotations: BTreeMap<String, String>,
    /// The severity now (Normal when resolved).
    pub severity: Severity,
    /// The severity before this change. For a resolve (severity Normal), the severity it
    /// resolved from: what a receiver reports as "resolved from …".
    pub previous: Severity,
    /// The highest severity this item's problem reached so far (its incident's peak; for a
    /// digest, the highest of its items'). Equal to `severity` for a first firing.
    #[serde(default)]
    pub peak: Severity,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// The value that decided it, if any.
    pub value: Option<f64>,
    /// The threshold crossed, if any.
    pub threshold: Option<f64>,
    /// When the item entered its previous state.
    pub since: Timestamp,
    /// When this change happened.
    pub at: Timestamp,
    /// Stable per (item, change): a channel that honours it delivers each alert once even if the
    /// host retries after a crash.
    pub idempotency_key: String,
    /// Who should be told (addresses, phone numbers, user ids: the channel knows the kind).
    pub recipients: Vec<String>,
    /// The pipeline's incident this alert belongs to (`None` outside the pipeline, and for a
    /// digest of several items).
    pub incident: Option<u64>,
    /// The item's [`fingerprint`]: stable for one item (rule and series labels) across its
    /// firing, escalation and resolve, and across restarts (empty for a digest).
    pub fingerprint: String,
}

/// An item's fingerprint: 16 hex digits of the 64-bit FNV-1a hash of the rule name and the
/// series' labels sorted by name, each part followed by a 0 byte and each label name separated
/// from its value by a 1 byte. It depends on nothing else, so it is the same across restarts,
/// versions and machines: a key a receiver may use to open and close one incident per item.
///
/// ```
/// use vigilo::Labels;
/// use vigilo::alert::fingerprint;
///
/// assert_eq!(fingerprint("disk", &Labels::from_pairs(&[("mount", "/")])), "c49b2f1106f9796f");
/// ```
pub fn fingerprint(rule: &str, labels: &crate::Labels) -> String {
    let mut h = Fnv::new();
    h.eat(rule.as_bytes());
    h.eat(&[0]);
    for (k, v) in labels.iter() {
        h.eat(k.as_bytes());
        h.eat(&[1]);
        h.eat(v.as_bytes());
        h.eat(&[0]);
    }
    format!("{:016x}", h.finish())
}

/// 64-bit FNV-1a: a hash that is the same on every machine, version and run (fingerprints and
/// the content part of idempotency keys are compared across them).
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn eat(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

impl Alert {
    /// An alert for `rule` at `severity`, to test a channel or an action with, or for a service
    /// that raises its own: firing (resolved if `severity` is Normal), at the Unix epoch, with
    /// nothing else set; the builder's methods set the rest and `build` gives the alert (its
    /// fields stay public to read and change). The same names as the plugin SDK's builder.
    ///
    /// ```
    /// use vigilo::{Alert, Severity};
    /// use vigilo::clock::Timestamp;
    ///
    /// let a = Alert::builder("disk-full", Severity::Critical)
    ///     .label("mount", "/data")
    ///     .annotation("summary", "/data is 97% full")
    ///     .value(0.97)
    ///     .at(Timestamp::from_secs(1_700_000_060))
    ///     .build();
    /// assert_eq!(a.labels["mount"], "/data");
    /// assert_eq!(a.fingerprint, vigilo::alert::fingerprint(
    ///     "disk-full",
    ///     &vigilo::Labels::from_pairs(&[("mount", "/data")]),
    /// ));
    /// ```
    pub fn builder(rule: &str, severity: Severity) -> AlertBuilder {
        let status = if severity == Severity::Normal {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        };
        AlertBuilder {
            alert: Alert {
                rule: rule.to_owned(),
                metric: rule.to_owned(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                severity,
                previous: Severity::Normal,
                peak: severity,
                status,
                value: None,
                threshold: None,
                since: Timestamp::from_secs(0),
                at: Timestamp::from_secs(0),
                idempotency_key: String::new(),
                recipients: Vec::new(),
                incident: None,
                fingerprint: String::new(),
            },
            key: None,
            since: None,
        }
    }
}

/// Builds an [`Alert`] (from [`Alert::builder`]).
#[derive(Debug, Clone)]
#[must_use]
pub struct AlertBuilder {
    alert: Alert,
    key: Option<String>,
    since: Option<Timestamp>,
}

impl AlertBuilder {
    /// The metric watched (default: the rule's name).
    pub fn metric(mut self, metric: &str) -> Self {
        self.alert.metric = metric.to_owned();
        self
    }

    /// Adds (or replaces) label `name`.
    pub fn label(mut self, name: &str, value: &str) -> Self {
        self.alert.labels.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Adds (or replaces) annotation `name` (`summary`, `description`, `runbook` …).
    pub fn annotation(mut self, name: &str, value: &str) -> Self {
        self.alert
            .annotations
            .insert(name.to_owned(), value.to_owned());
        self
    }

    /// The value that decided it.
    pub fn value(mut self, value: f64) -> Self {
        self.alert.value = Some(value);
        self
    }

    /// The threshold crossed.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.alert.threshold = Some(threshold);
        self
    }

    /// The severity before this change (default Normal); the peak becomes the higher of the two.
    pub fn previous(mut self, previous: Severity) -> Self {
        self.alert.previous = previous;
        self.alert.peak = self.alert.severity.max(previous);
        self
    }

    /// Makes it the resolve of the alert built so far: severity Normal, resolved from the
    /// severity it had.
    pub fn resolved(mut self) -> Self {
        if self.alert.status == AlertStatus::Firing {
            self.alert.previous = self.alert.severity;
        }
        self.alert.severity = Severity::Normal;
        self.alert.status = AlertStatus::Resolved;
        self
    }

    /// When the item entered its previous state (default: when this change happened).
    pub fn since(mut self, since: Timestamp) -> Self {
        self.since = Some(since);
        self
    }

    /// When this change happened (default the Unix epoch); `since` follows unless set.
    pub fn at(mut self, at: Timestamp) -> Self {
        self.alert.at = at;
        self
    }

    /// Adds a recipient.
    pub fn recipient(mut self, recipient: &str) -> Self {
        self.alert.recipients.push(recipient.to_owned());
        self
    }

    /// The pipeline incident it belongs to.
    pub fn incident(mut self, incident: u64) -> Self {
        self.alert.incident = Some(incident);
        self
    }

    /// The idempotency key (default: the fingerprint, the change's time and severity, so two
    /// alerts built alike have the same key and two different changes do not).
    pub fn idempotency_key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    /// The alert, its fingerprint computed from the rule and the labels.
    pub fn build(self) -> Alert {
        let mut a = self.alert;
        a.since = self.since.unwrap_or(a.at);
        let labels: Vec<(&str, &str)> = a
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        a.fingerprint = fingerprint(&a.rule, &crate::Labels::from_pairs(&labels));
        a.idempotency_key = self.key.unwrap_or_else(|| {
            format!(
                "{}@{}:{}",
                a.fingerprint,
                a.at.as_nanos(),
                a.severity.number()
            )
        });
        a
    }
}

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// A passing failure (timeout, 5xx, connection refused): retry with backoff.
    #[error("delivery failed, retry may help: {0}")]
    Retryable(String),
    /// The alert will never be accepted as sent (bad config, 4xx): do not retry.
    #[error("delivery failed permanently: {0}")]
    Permanent(String),
}

impl DeliveryError {
    /// True if a retry can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DeliveryError::Retryable(_))
    }

    /// The message alone, without the verdict the `Display` form adds.
    pub fn message(&self) -> &str {
        match self {
            DeliveryError::Retryable(m) | DeliveryError::Permanent(m) => m,
        }
    }
}

/// Somewhere alerts are delivered: a webhook, Slack, email, an SMS gateway …
pub trait Channel: Send + Sync {
    /// The channel's name in configuration.
    fn name(&self) -> &str;
    /// Delivers one alert. Must not block longer than the channel's own timeout.
    fn deliver(&self, alert: &Alert) -> Result<(), DeliveryError>;
}

/// What a recovery action reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOutcome {
    /// True if the action did what it meant to.
    pub success: bool,
    /// A short human-readable result.
    pub message: String,
    /// The exit code of the command it ran, if any.
    pub exit_code: Option<i32>,
    /// The end of the command's output (capped).
    pub output_tail: String,
    /// How long it took.
    #[serde(with = "crate::duration::serde_duration")]
    pub elapsed: Duration,
}

/// Why an action could not run or report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The action was refused something it asked for (a command not granted …).
    #[error("action denied: {0}")]
    Denied(String),
    /// It ran past its deadline and was stopped.
    #[error("action timed out after {0:?}")]
    Timeout(Duration),
    /// It failed in some other way (trap, crash, bad output).
    #[error("action failed: {0}")]
    Failed(String),
}

/// A recovery action: runs when a problem is detected ("clear the cache and restart").
pub trait Action: Send + Sync {
    /// The action's name in configuration.
    fn name(&self) -> &str;
    /// Runs once for `alert`. The caller guarantees one run per item at a time.
    fn run(&self, alert: &Alert) -> Result<ActionOutcome, ActionError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_makes_a_resolve_and_its_times_and_key() {
        let firing = Alert::builder("cpu", Severity::Major)
            .previous(Severity::Warning)
            .at(Timestamp::from_secs(60));
        let a = firing.clone().build();
        assert_eq!(
            (a.status, a.peak, a.previous),
            (AlertStatus::Firing, Severity::Major, Severity::Warning)
        );
        assert_eq!(
            a.since,
            Timestamp::from_secs(60),
            "since follows at unless set"
        );
        assert_eq!(
            a.idempotency_key,
            firing.clone().build().idempotency_key,
            "built alike, same key"
        );
        let r = firing.since(Timestamp::from_secs(0)).resolved().build();
        assert_eq!(
            (r.status, r.severity, r.previous),
            (AlertStatus::Resolved, Severity::Normal, Severity::Major)
        );
        assert_eq!(
            r.since,
            Timestamp::from_secs(0),
            "since set to the epoch stays"
        );
        assert_ne!(
            r.idempotency_key, a.idempotency_key,
            "a resolve is other news"
        );
        assert_eq!(r.fingerprint, a.fingerprint, "one item");
    }
}
