//! Status: every watched item's severity at a glance, worst first, as data or JSON.

use std::sync::Arc;

use serde::Serialize;

use crate::Severity;
use crate::clock::Timestamp;
use crate::eval::{EvalError, Evaluator, EvaluatorHandle, EvaluatorStats};
use crate::metrics::Labels;
use crate::units::Unit;

/// One item on the status board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusItem {
    /// The rule.
    pub rule: Arc<str>,
    /// The metric it watches.
    pub metric: Arc<str>,
    /// The series' labels.
    pub labels: Labels,
    /// The current severity.
    pub severity: Severity,
    /// Its colour, `#rrggbb`.
    pub colour: &'static str,
    /// The last aggregated value.
    pub value: Option<f64>,
    /// The threshold of the current level, or of the lowest level when Normal.
    pub threshold: Option<f64>,
    /// The unit of `value` and `threshold` (serialized as its name: `bytes`, `ratio`, `/s`, or
    /// empty for a plain number).
    pub unit: Unit,
    /// `value` with its unit, as people read it (`92.3 %`, `23.5 GiB`), or `no data`.
    pub value_text: String,
    /// `threshold` with its unit, if there is a threshold.
    pub threshold_text: Option<String>,
    /// Since when the item has had this severity.
    pub since: Timestamp,
    /// Held notifications: the item changes too often.
    pub flapping: bool,
    /// No fresh sample for the rule's no-data time.
    pub no_data: bool,
    /// False outside the rule's schedule.
    pub in_schedule: bool,
    /// The rule's `summary` annotation, filled in.
    pub summary: Option<String>,
}

/// How many items are at each severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeverityCounts {
    /// Normal items.
    pub normal: usize,
    /// Info items.
    pub info: usize,
    /// Warning items.
    pub warning: usize,
    /// Minor items.
    pub minor: usize,
    /// Major items.
    pub major: usize,
    /// Critical items.
    pub critical: usize,
}

impl SeverityCounts {
    fn add(&mut self, s: Severity) {
        let count = match s {
            Severity::Normal => &mut self.normal,
            Severity::Info => &mut self.info,
            Severity::Warning => &mut self.warning,
            Severity::Minor => &mut self.minor,
            Severity::Major => &mut self.major,
            Severity::Critical => &mut self.critical,
        };
        *count += 1;
    }
}

/// A snapshot of every watched item, worst first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    /// When it was taken.
    pub at: Timestamp,
    /// The worst severity of any item.
    pub worst: Severity,
    /// Items per severity.
    pub counts: SeverityCounts,
    /// Every item, worst first, then longest in that state first.
    pub items: Vec<StatusItem>,
    /// The evaluator's work counters.
    pub evaluator: EvaluatorStats,
}

impl StatusReport {
    /// The status of every item of `ev` at `now`, worst first.
    pub fn of(ev: &Evaluator, now: Timestamp) -> Self {
        let mut items = Vec::new();
        let mut counts = SeverityCounts::default();
        for item in ev.items() {
            let rule = item.rule;
            let in_schedule = rule.schedule().is_none_or(|s| s.is_active(now));
            let unit = ev.unit_of(rule);
            let threshold = rule
                .level(item.severity)
                .or_else(|| rule.levels().first())
                .map(|l| l.threshold);
            let value = if item.no_data { None } else { item.value };
            let summary = rule.render_annotation(
                "summary",
                item.labels,
                item.severity,
                value,
                threshold,
                &unit,
            );
            counts.add(item.severity);
            items.push(StatusItem {
                rule: Arc::clone(rule.shared_name()),
                metric: Arc::clone(rule.shared_metric()),
                labels: item.labels.clone(),
                severity: item.severity,
                colour: item.severity.colour(),
                value,
                threshold,
                value_text: unit.format_or_no_data(value),
                threshold_text: threshold.map(|t| unit.format(t)),
                unit: unit.clone(),
                since: item.since,
                flapping: item.flapping,
                no_data: item.no_data,
                in_schedule,
                summary,
            });
        }
        items.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.since.cmp(&b.since))
                .then_with(|| a.rule.cmp(&b.rule))
                .then_with(|| a.labels.iter().cmp(b.labels.iter()))
        });
        let worst = items.first().map_or(Severity::Normal, |i| i.severity);
        StatusReport {
            at: now,
            worst,
            counts,
            items,
            evaluator: ev.stats(),
        }
    }

    /// The report as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as indented JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl Evaluator {
    /// The status of every item, worst first.
    pub fn status(&self, now: Timestamp) -> StatusReport {
        StatusReport::of(self, now)
    }
}

impl EvaluatorHandle {
    /// The status of every item, from the running evaluator.
    pub fn status(&self) -> Result<StatusReport, EvalError> {
        self.with(|ev| StatusReport::of(ev, ev.clock().now()))
    }
}
