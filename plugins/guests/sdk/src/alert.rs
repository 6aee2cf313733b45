//! Helpers on the generated [`Alert`], [`Severity`] and [`AlertStatus`] types.

use serde_json::{Map, Value, json};

use crate::{Alert, AlertStatus, Severity};

impl Severity {
    /// Every level, from normal to critical.
    pub const ALL: [Severity; 6] = [
        Severity::Normal,
        Severity::Info,
        Severity::Warning,
        Severity::Minor,
        Severity::Major,
        Severity::Critical,
    ];

    /// Lower-case English name: `normal`, `info`, `warning`, `minor`, `major`, `critical`.
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Normal => "normal",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    /// Capitalised English name for people: `Normal` … `Critical`.
    pub const fn label(self) -> &'static str {
        match self {
            Severity::Normal => "Normal",
            Severity::Info => "Info",
            Severity::Warning => "Warning",
            Severity::Minor => "Minor",
            Severity::Major => "Major",
            Severity::Critical => "Critical",
        }
    }

    /// The Korean name used by Zenius-style consoles: 정상, 무해, 주의, 위험, 긴급, 치명.
    pub const fn korean_name(self) -> &'static str {
        match self {
            Severity::Normal => "정상",
            Severity::Info => "무해",
            Severity::Warning => "주의",
            Severity::Minor => "위험",
            Severity::Major => "긴급",
            Severity::Critical => "치명",
        }
    }

    /// 0 (normal) to 5 (critical).
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The status colour as `#rrggbb` (the same as the host's): normal `#2e7d32`, info
    /// `#1e88e5`, warning `#fdd835`, minor `#fb8c00`, major `#e64a19`, critical `#c62828`.
    pub const fn colour(self) -> &'static str {
        match self {
            Severity::Normal => "#2e7d32",
            Severity::Info => "#1e88e5",
            Severity::Warning => "#fdd835",
            Severity::Minor => "#fb8c00",
            Severity::Major => "#e64a19",
            Severity::Critical => "#c62828",
        }
    }

    /// The level with this lower-case name.
    pub fn from_name(name: &str) -> Option<Severity> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl AlertStatus {
    /// `firing` or `resolved`.
    pub const fn name(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl Alert {
    /// The value of label `name`, if the alert has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        lookup(&self.labels, name)
    }

    /// The value of annotation `name` (`summary`, `description`, `runbook` …), if any.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        lookup(&self.annotations, name)
    }

    /// Whether the item is back to normal ("normal recovery").
    pub fn is_resolved(&self) -> bool {
        self.status == AlertStatus::Resolved
    }

    /// The severity to report: the current one while firing, and for a resolve (whose
    /// `severity` is normal) the one it resolved from (`previous`). "resolved (was critical)".
    pub fn reported_severity(&self) -> Severity {
        if self.is_resolved() {
            self.previous
        } else {
            self.severity
        }
    }

    /// For a resolve, the severity it resolved from; `None` while firing.
    pub fn resolved_from(&self) -> Option<Severity> {
        self.is_resolved().then_some(self.previous)
    }

    /// The item's key for a receiver that opens and closes incidents (a dedup key, an alias, an
    /// external id): the [fingerprint](Alert#structfield.fingerprint), the same for the item's
    /// firing, escalations and resolve. For a digest (no fingerprint), the rule and labels.
    pub fn item_key(&self) -> String {
        if !self.fingerprint.is_empty() {
            return self.fingerprint.clone();
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}{{{}}}", self.rule, labels.join(","))
    }

    /// An alert to test a plugin with natively (`cargo test`, no host): rule `rule`, firing at
    /// `severity`; set the rest with the builder's methods.
    ///
    /// ```
    /// use vigilo_plugin_sdk::{Alert, Severity};
    /// let a = Alert::builder("disk-full", Severity::Critical)
    ///     .label("mount", "/data")
    ///     .annotation("summary", "/data is 97% full")
    ///     .value(0.97)
    ///     .resolved()
    ///     .build();
    /// assert!(a.is_resolved());
    /// assert_eq!(a.reported_severity(), Severity::Critical);
    /// assert_eq!(a.label("mount"), Some("/data"));
    /// ```
    pub fn builder(rule: &str, severity: Severity) -> AlertBuilder {
        AlertBuilder {
            alert: Alert {
                rule: rule.to_owned(),
                metric: rule.to_owned(),
                labels: Vec::new(),
                annotations: Vec::new(),
                severity,
                previous: Severity::Normal,
                peak: severity,
                status: AlertStatus::Firing,
                value: None,
                threshold: None,
                since_ms: 1_700_000_000_000,
                at_ms: 1_700_000_060_000,
                idempotency_key: format!("{rule}@1700000060000:{}", severity.number()),
                fingerprint: String::new(),
                incident: Some(1),
                recipients: Vec::new(),
            },
        }
    }

    /// One line for people: the `summary` annotation if the rule has one, else
    /// `"<rule>: <metric> is <severity> (value <v>, threshold <t>)"`, or
    /// `"<rule>: <metric> is back to normal (value <v>)"` when resolved.
    pub fn summary(&self) -> String {
        if let Some(s) = self.annotation("summary").filter(|s| !s.is_empty()) {
            return s.to_owned();
        }
        let mut out = if self.is_resolved() {
            format!("{}: {} is back to normal", self.rule, self.metric)
        } else {
            format!("{}: {} is {}", self.rule, self.metric, self.severity.name())
        };
        match (self.value, self.threshold, self.is_resolved()) {
            (Some(v), Some(t), false) => out.push_str(&format!(" (value {v}, threshold {t})")),
            (Some(v), _, _) => out.push_str(&format!(" (value {v})")),
            _ => {}
        }
        out
    }

    /// The alert as a JSON object, the body most receivers want:
    ///
    /// ```json
    /// {"rule": "cpu-high", "metric": "host.cpu.usage", "labels": {"host": "web-1"},
    ///  "annotations": {"summary": "…"}, "severity": "major", "previous": "warning",
    ///  "peak": "major", "status": "firing", "value": 93.5, "threshold": 80.0, "summary": "…",
    ///  "since_ms": 1700000000000, "at_ms": 1700000060000, "at": "2023-11-14T22:14:20.000Z",
    ///  "idempotency_key": "…", "fingerprint": "c49b2f1106f9796f", "incident": 7,
    ///  "recipients": ["ops@example.com"]}
    /// ```
    ///
    /// `value` and `threshold` are `null` when absent; labels and annotations are objects.
    pub fn to_json(&self) -> Value {
        json!({
            "rule": self.rule,
            "metric": self.metric,
            "labels": pairs_to_object(&self.labels),
            "annotations": pairs_to_object(&self.annotations),
            "severity": self.severity.name(),
            "previous": self.previous.name(),
            "peak": self.peak.name(),
            "status": self.status.name(),
            "value": self.value.and_then(finite),
            "threshold": self.threshold.and_then(finite),
            "summary": self.summary(),
            "since_ms": self.since_ms,
            "at_ms": self.at_ms,
            "at": crate::time::rfc3339(self.at_ms),
            "idempotency_key": self.idempotency_key,
            "fingerprint": self.fingerprint,
            "incident": self.incident,
            "recipients": self.recipients,
        })
    }

    /// Renders a `{{field}}` template with this alert's fields (see [`crate::template`]).
    pub fn render(&self, template: &str) -> Result<String, crate::template::TemplateError> {
        crate::template::render(template, &crate::template::Vars::new(self))
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Name/value pairs as a JSON object (the later of two equal names wins).
pub(crate) fn pairs_to_object(pairs: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.clone(), Value::String(v.clone()));
    }
    Value::Object(map)
}

/// Builds an [`Alert`] for a native unit test of a plugin (see [`Alert::builder`]).
#[derive(Debug, Clone)]
pub struct AlertBuilder {
    alert: Alert,
}

impl AlertBuilder {
    /// The metric (default: the rule's name).
    pub fn metric(mut self, metric: &str) -> Self {
        self.alert.metric = metric.to_owned();
        self
    }

    /// Adds a label (kept sorted by name, as the host sends them).
    pub fn label(mut self, name: &str, value: &str) -> Self {
        insert_sorted(&mut self.alert.labels, name, value);
        self
    }

    /// Adds an annotation (`summary`, `description`, `runbook` …).
    pub fn annotation(mut self, name: &str, value: &str) -> Self {
        insert_sorted(&mut self.alert.annotations, name, value);
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

    /// The severity before this change (default normal).
    pub fn previous(mut self, previous: Severity) -> Self {
        self.alert.previous = previous;
        self.alert.peak = self.alert.peak.max(previous);
        self
    }

    /// Makes it the resolve of the alert built so far: status resolved, severity normal,
    /// `previous` the severity it had.
    pub fn resolved(mut self) -> Self {
        if !self.alert.is_resolved() {
            self.alert.previous = self.alert.severity;
            self.alert.severity = Severity::Normal;
            self.alert.status = AlertStatus::Resolved;
            self.alert.idempotency_key.push_str(":resolved");
        }
        self
    }

    /// The item's fingerprint (default: computed from the rule and labels as the host does).
    pub fn fingerprint(mut self, fingerprint: &str) -> Self {
        self.alert.fingerprint = fingerprint.to_owned();
        self
    }

    /// The incident number (default 1), or `None`.
    pub fn incident(mut self, incident: Option<u64>) -> Self {
        self.alert.incident = incident;
        self
    }

    /// Adds a recipient.
    pub fn recipient(mut self, recipient: &str) -> Self {
        self.alert.recipients.push(recipient.to_owned());
        self
    }

    /// When it changed, ms since the Unix epoch.
    pub fn at_ms(mut self, at_ms: i64) -> Self {
        self.alert.at_ms = at_ms;
        self
    }

    /// The alert.
    pub fn build(mut self) -> Alert {
        if self.alert.fingerprint.is_empty() {
            self.alert.fingerprint = fingerprint(&self.alert.rule, &self.alert.labels);
        }
        self.alert
    }
}

fn insert_sorted(pairs: &mut Vec<(String, String)>, name: &str, value: &str) {
    pairs.retain(|(k, _)| k != name);
    let at = pairs.partition_point(|(k, _)| k.as_str() < name);
    pairs.insert(at, (name.to_owned(), value.to_owned()));
}

/// The item fingerprint as the host computes it (see the WIT's `fingerprint`): 16 hex digits of
/// the 64-bit FNV-1a hash of the rule name, a 0 byte, then each label sorted by name as name, a
/// 1 byte, value, a 0 byte. `labels` must be the series' labels (the rule's own labels are not
/// part of it).
pub fn fingerprint(rule: &str, labels: &[(String, String)]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    eat(rule.as_bytes());
    eat(&[0]);
    let mut sorted: Vec<&(String, String)> = labels.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in sorted {
        eat(k.as_bytes());
        eat(&[1]);
        eat(v.as_bytes());
        eat(&[0]);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_hosts() {
        // The same value as vigilo's `alert::fingerprint` doctest.
        let labels = vec![("mount".to_owned(), "/".to_owned())];
        assert_eq!(fingerprint("disk", &labels), "c49b2f1106f9796f");
    }

    #[test]
    fn a_resolve_reports_what_it_resolved_from() {
        let firing = Alert::builder("cpu", Severity::Major)
            .label("host", "a")
            .build();
        assert_eq!(firing.reported_severity(), Severity::Major);
        assert_eq!(firing.resolved_from(), None);
        let resolved = Alert::builder("cpu", Severity::Major)
            .label("host", "a")
            .resolved()
            .build();
        assert_eq!(resolved.severity, Severity::Normal);
        assert_eq!(resolved.reported_severity(), Severity::Major);
        assert_eq!(resolved.resolved_from(), Some(Severity::Major));
        assert_eq!(firing.item_key(), resolved.item_key());
        assert_ne!(firing.idempotency_key, resolved.idempotency_key);
    }
}
