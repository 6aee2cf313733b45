//! Coverage: what should be monitored against what is (the seed's "unregistered items").
//!
//! The embedder declares what it expects ([`Expectation`]: "every mount has a disk usage rule",
//! "these 5 items on this host"); the report lists expected items without a rule, series that
//! exist but no rule watches, and rules whose item has never reported, with counts.

use serde::Serialize;

use crate::config::Expectation;
use crate::eval::{EvalError, Evaluator, EvaluatorHandle};
use crate::metrics::{Labels, Registry, SeriesReader};
use crate::rules::Rule;

/// A series, by name and labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesRef {
    /// Metric name.
    pub metric: String,
    /// Labels.
    pub labels: Labels,
}

impl std::fmt::Display for SeriesRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.metric, self.labels)
    }
}

/// An expected item that no rule covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingItem {
    /// The expected metric.
    pub metric: String,
    /// The series, when it exists; `None` when no series of the metric exists at all.
    pub labels: Option<Labels>,
    /// Why it counts as missing.
    pub reason: String,
}

/// What is covered and what is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverageReport {
    /// How many items the expectations ask for.
    pub expected: usize,
    /// How many of them a rule watches.
    pub registered: usize,
    /// Expected items with no rule (or no series at all).
    pub missing: Vec<MissingItem>,
    /// Series that exist but that no rule watches.
    pub unwatched: Vec<SeriesRef>,
    /// Rules whose item has never reported.
    pub silent_rules: Vec<String>,
    /// Rules whose alerts no route of the pipeline can take (filled in by
    /// [`Monitor`](crate::monitor::Monitor); empty where there is no pipeline).
    pub unrouted_rules: Vec<String>,
}

impl CoverageReport {
    /// Compares `expect` and `rules` with the series in `registry`. `has_reported(rule)` tells
    /// whether a rule's item ever reported (the evaluator knows); without one, use
    /// [`CoverageReport::from_registry`].
    pub fn compute(
        registry: &Registry,
        rules: &[&Rule],
        expect: &[Expectation],
        has_reported: impl Fn(&Rule) -> bool,
    ) -> Self {
        Self::build(registry, rules, expect, Some(&has_reported))
    }

    /// As [`compute`](Self::compute), counting a rule as reported if some series it selects
    /// exists in the registry now.
    pub fn from_registry(registry: &Registry, rules: &[&Rule], expect: &[Expectation]) -> Self {
        Self::build(registry, rules, expect, None)
    }

    fn build(
        registry: &Registry,
        rules: &[&Rule],
        expect: &[Expectation],
        has_reported: Option<&dyn Fn(&Rule) -> bool>,
    ) -> Self {
        let mut series = registry.readers();
        series.sort_by(|a, b| {
            a.name()
                .cmp(b.name())
                .then_with(|| a.labels().iter().cmp(b.labels().iter()))
        });
        let watched = |s: &SeriesReader| {
            rules
                .iter()
                .any(|r| r.metric() == &**s.name() && r.selects(s.labels()))
        };
        let mut expected = 0;
        let mut registered = 0;
        let mut missing = Vec::new();
        for e in expect {
            let chosen: Vec<&SeriesReader> = series
                .iter()
                .filter(|s| {
                    **s.name() == e.metric && e.select.iter().all(|m| m.matches(s.labels()))
                })
                .collect();
            if chosen.is_empty() {
                expected += 1;
                let has_rule = rules.iter().any(|r| r.metric() == e.metric);
                missing.push(MissingItem {
                    metric: e.metric.clone(),
                    labels: None,
                    reason: if has_rule {
                        "no series reports this metric".into()
                    } else {
                        "no series reports this metric and no rule watches it".into()
                    },
                });
            } else if e.every_series {
                for s in chosen {
                    expected += 1;
                    if watched(s) {
                        registered += 1;
                    } else {
                        missing.push(MissingItem {
                            metric: e.metric.clone(),
                            labels: Some(s.labels().clone()),
                            reason: "no rule watches this series".into(),
                        });
                    }
                }
            } else {
                expected += 1;
                if chosen.iter().any(|s| watched(s)) {
                    registered += 1;
                } else {
                    missing.push(MissingItem {
                        metric: e.metric.clone(),
                        labels: None,
                        reason: "no rule watches this metric".into(),
                    });
                }
            }
        }
        let unwatched = series
            .iter()
            .filter(|s| !watched(s))
            .map(|s| SeriesRef {
                metric: s.name().to_string(),
                labels: s.labels().clone(),
            })
            .collect();
        let silent_rules = rules
            .iter()
            .filter(|r| match has_reported {
                Some(reported) => !reported(r),
                // Without an evaluator: a rule has reported if a series it selects exists.
                None => !series
                    .iter()
                    .any(|s| r.metric() == &**s.name() && r.selects(s.labels())),
            })
            .map(|r| r.name().to_owned())
            .collect();
        CoverageReport {
            expected,
            registered,
            missing,
            unwatched,
            silent_rules,
            unrouted_rules: Vec::new(),
        }
    }
}

impl Evaluator {
    /// The coverage of this evaluator's rules against `expect`; a rule counts as reported once
    /// one of its series has had a fresh sample.
    pub fn coverage(&self, expect: &[Expectation]) -> CoverageReport {
        let rules: Vec<&Rule> = self.rules_reported().map(|(r, _)| r).collect();
        let reported: std::collections::HashSet<&str> = self
            .rules_reported()
            .filter(|(_, reported)| *reported)
            .map(|(r, _)| r.name())
            .collect();
        CoverageReport::compute(self.registry(), &rules, expect, |r| {
            reported.contains(r.name())
        })
    }
}

impl EvaluatorHandle {
    /// The coverage of the running rules against `expect` (see [`Evaluator::coverage`]).
    pub fn coverage(&self, expect: Vec<Expectation>) -> Result<CoverageReport, EvalError> {
        self.with(move |ev| ev.coverage(&expect))
    }
}
