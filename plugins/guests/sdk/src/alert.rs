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
    ///  "status": "firing", "value": 93.5, "threshold": 80.0, "summary": "…",
    ///  "since_ms": 1700000000000, "at_ms": 1700000060000, "at": "2023-11-14T22:14:20.000Z",
    ///  "idempotency_key": "…", "recipients": ["ops@example.com"]}
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
            "status": self.status.name(),
            "value": self.value.and_then(finite),
            "threshold": self.threshold.and_then(finite),
            "summary": self.summary(),
            "since_ms": self.since_ms,
            "at_ms": self.at_ms,
            "at": crate::time::rfc3339(self.at_ms),
            "idempotency_key": self.idempotency_key,
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
