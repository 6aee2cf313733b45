//! What the evaluator reports: a severity change of one item.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::Severity;
use crate::clock::Timestamp;
use crate::metrics::Labels;

/// One item moved from one severity to another (or into or out of no-data or flapping).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// The rule's name.
    pub rule: Arc<str>,
    /// The metric the rule watches.
    pub metric: Arc<str>,
    /// The series' labels: which item of the rule this is (e.g. which mount).
    pub labels: Labels,
    /// The rule's own labels (team, service …).
    pub rule_labels: BTreeMap<String, String>,
    /// The severity before.
    pub from: Severity,
    /// The severity now.
    pub to: Severity,
    /// The aggregated value that decided it (`None` with no data).
    pub value: Option<f64>,
    /// The threshold crossed: the new level's threshold, or the clear threshold of the level
    /// left when recovering.
    pub threshold: Option<f64>,
    /// When the item entered `from`.
    pub since: Timestamp,
    /// When the change happened: the crossing itself, or the moment a duration completed.
    pub at: Timestamp,
    /// The item has had no fresh sample for the rule's no-data time.
    pub no_data: bool,
    /// The item is flapping: further changes are held until it settles.
    pub flapping: bool,
    /// The rule's annotations with value, threshold and labels filled in.
    pub annotations: BTreeMap<String, String>,
}

impl Transition {
    /// True if this reports a recovery to Normal.
    pub fn is_resolved(&self) -> bool {
        self.to == Severity::Normal && self.from != Severity::Normal
    }

    /// `rule{labels}` — the item's name.
    pub fn item(&self) -> String {
        format!("{}{}", self.rule, self.labels)
    }
}

/// What was last told about an item that has an open incident: given to
/// [`Evaluator::restore_reconciled`](super::Evaluator::restore_reconciled) at start.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Told {
    /// The rule's name.
    pub rule: Arc<str>,
    /// The metric the rule watched (for the resolve of a rule that no longer exists).
    pub metric: Arc<str>,
    /// The series' labels.
    pub labels: Labels,
    /// The severity the incident is at.
    pub severity: Severity,
    /// The incident is about no data.
    pub no_data: bool,
    /// When the incident last changed.
    pub at: Timestamp,
}

impl Told {
    /// An item told to be at `severity` (with `no_data`) since `at`.
    pub fn new(
        rule: Arc<str>,
        metric: Arc<str>,
        labels: Labels,
        severity: Severity,
        no_data: bool,
        at: Timestamp,
    ) -> Self {
        Told {
            rule,
            metric,
            labels,
            severity,
            no_data,
            at,
        }
    }
}
