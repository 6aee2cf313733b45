//! What a canary run compares: [`CanarySpec`] and its [`CanaryMetric`]s, with their defaults
//! and their checks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which way a metric must not move for the canary to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The canary fails on this metric if it is significantly higher than the baseline
    /// (latency, errors). Also written `increase`.
    #[serde(alias = "increase")]
    HigherIsBad,
    /// The canary fails if it is significantly lower (throughput, success ratio). Also
    /// written `decrease`.
    #[serde(alias = "decrease")]
    LowerIsBad,
    /// The canary fails if it differs significantly either way.
    Either,
}

/// What a metric that has no series in one of the two groups counts as in the score. It is
/// reported as missing either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnMissing {
    /// As a metric that failed (the default: a canary that stopped emitting a metric does
    /// not pass on it).
    #[default]
    Fail,
    /// Left out of the score (its weight counts neither way).
    Ignore,
}

/// One metric of a canary run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryMetric {
    /// The metric name; every series of it whose selector label has the canary's (or the
    /// baseline's) value belongs to that group, and a group's series are merged.
    pub metric: String,
    /// Which way is bad.
    pub direction: Direction,
    /// Its weight in its group (> 0).
    pub weight: f64,
    /// Its group (Kayenta's "metric group": latency, errors, saturation…).
    pub group: String,
    /// The relative change of the canary's median (see [`crate::canary`]) within which a
    /// significant difference still passes, e.g. 0.1 for 10 %; `None` takes the run's.
    pub tolerance: Option<f64>,
    /// If true, the run fails whenever this metric fails, whatever the score.
    pub critical: bool,
}

impl CanaryMetric {
    /// A metric with weight 1 in group `default`, the run's tolerance, not critical.
    pub fn new(metric: impl Into<String>, direction: Direction) -> Self {
        CanaryMetric {
            metric: metric.into(),
            direction,
            weight: 1.0,
            group: "default".to_owned(),
            tolerance: None,
            critical: false,
        }
    }

    /// Sets the weight.
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Sets this metric's tolerance (a ratio: 0.1 is 10 %).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = Some(tolerance);
        self
    }

    /// Makes the metric critical.
    pub fn critical(mut self) -> Self {
        self.critical = true;
        self
    }
}

/// A canary run's definition: which series are the canary and the baseline, what is compared,
/// for how long, and the thresholds of the verdict. Build one with [`CanarySpec::new`] and the
/// setters, or from a `[[canary]]` section of the configuration; [`validate`](Self::validate)
/// checks it (the runner and the configuration call it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanarySpec {
    /// The run's name: the `canary` label of the published series.
    pub name: String,
    /// The label that tells the groups apart (default `deployment`).
    pub label: String,
    /// The label's value on the canary's series (default `canary`).
    pub canary: String,
    /// The label's value on the baseline's series (default `baseline`).
    pub baseline: String,
    /// How long one interval lasts (default 5 minutes).
    pub interval: Duration,
    /// How long the whole run lasts (default 30 minutes; a whole number of intervals is run,
    /// the last one possibly shorter).
    pub duration: Duration,
    /// How often counters (as rates) and gauges are sampled (default 10 s). Histograms are read
    /// once per interval.
    pub step: Duration,
    /// The score at or above which the run passes (default 90).
    pub pass: f64,
    /// The score at or above which a run that does not pass is marginal (default 75); below it
    /// fails.
    pub marginal: f64,
    /// The significance level of the Mann-Whitney test (default 0.05).
    pub alpha: f64,
    /// The tolerance of metrics that do not set one (default 0.1, i.e. 10 %).
    pub tolerance: f64,
    /// How a metric missing in one group is scored.
    pub on_missing: OnMissing,
    /// Group weights; a group not named here weighs the sum of its metrics' weights.
    pub group_weights: BTreeMap<String, f64>,
    /// The metrics compared, names unique.
    pub metrics: Vec<CanaryMetric>,
}

impl CanarySpec {
    /// A run named `name` with every default and no metric yet.
    pub fn new(name: impl Into<String>) -> Self {
        CanarySpec {
            name: name.into(),
            label: "deployment".to_owned(),
            canary: "canary".to_owned(),
            baseline: "baseline".to_owned(),
            interval: Duration::from_secs(300),
            duration: Duration::from_secs(1800),
            step: Duration::from_secs(10),
            pass: 90.0,
            marginal: 75.0,
            alpha: 0.05,
            tolerance: 0.1,
            on_missing: OnMissing::Fail,
            group_weights: BTreeMap::new(),
            metrics: Vec::new(),
        }
    }

    /// Adds a metric.
    pub fn metric(mut self, metric: CanaryMetric) -> Self {
        self.metrics.push(metric);
        self
    }

    /// Sets the interval and the duration.
    pub fn timing(mut self, interval: Duration, duration: Duration) -> Self {
        self.interval = interval;
        self.duration = duration;
        self
    }

    /// The number of intervals: the duration divided by the interval, rounded up.
    pub fn intervals(&self) -> u32 {
        if self.interval.is_zero() {
            return 0;
        }
        let n = self.duration.as_nanos().div_ceil(self.interval.as_nanos());
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The tolerance that applies to `metric`.
    pub fn tolerance_of(&self, metric: &CanaryMetric) -> f64 {
        metric.tolerance.unwrap_or(self.tolerance)
    }

    /// Checks the definition; the first problem found is returned.
    pub fn validate(&self) -> Result<(), SpecError> {
        let bad = |field: &str, reason: String| {
            Err(SpecError::Invalid {
                field: field.to_owned(),
                reason,
            })
        };
        if self.name.is_empty() {
            return bad("name", "a canary needs a name".to_owned());
        }
        if self.label.is_empty() {
            return bad("label", "the selector label cannot be empty".to_owned());
        }
        if self.canary == self.baseline {
            return bad(
                "baseline",
                format!(
                    "the canary and the baseline are both {:?}: they must differ",
                    self.canary
                ),
            );
        }
        if self.interval.is_zero() {
            return bad(
                "interval",
                "the interval must be longer than zero".to_owned(),
            );
        }
        if self.step.is_zero() || self.step > self.interval {
            return bad(
                "step",
                "the step must be longer than zero and at most the interval".to_owned(),
            );
        }
        if self.duration < self.interval {
            return bad(
                "duration",
                "the duration must be at least one interval".to_owned(),
            );
        }
        if self.intervals() > 10_000 {
            return bad(
                "duration",
                "more than 10000 intervals: lengthen the interval".to_owned(),
            );
        }
        for (field, v) in [("pass", self.pass), ("marginal", self.marginal)] {
            if !(0.0..=100.0).contains(&v) {
                return bad(field, format!("{v} is not a score in 0..=100"));
            }
        }
        if self.marginal > self.pass {
            return Err(SpecError::ThresholdOrder {
                pass: self.pass,
                marginal: self.marginal,
            });
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return bad("alpha", format!("{} is not in (0, 1)", self.alpha));
        }
        check_tolerance("tolerance", self.tolerance)?;
        for (group, w) in &self.group_weights {
            if !(w.is_finite() && *w > 0.0) {
                return bad(
                    &format!("group_weights.{group}"),
                    format!("{w} is not a weight greater than 0"),
                );
            }
            if !self.metrics.iter().any(|m| &m.group == group) {
                return bad(
                    &format!("group_weights.{group}"),
                    format!("no metric is in group {group:?}"),
                );
            }
        }
        if self.metrics.is_empty() {
            return Err(SpecError::NoMetrics);
        }
        for (i, m) in self.metrics.iter().enumerate() {
            if crate::metrics::validate_metric_name(&m.metric).is_err() {
                return Err(SpecError::Metric {
                    metric: m.metric.clone(),
                    reason: "not a valid metric name".to_owned(),
                });
            }
            if self.metrics[..i].iter().any(|o| o.metric == m.metric) {
                return Err(SpecError::Metric {
                    metric: m.metric.clone(),
                    reason: "listed twice".to_owned(),
                });
            }
            if !(m.weight.is_finite() && m.weight > 0.0) {
                return Err(SpecError::Metric {
                    metric: m.metric.clone(),
                    reason: format!("weight {} is not greater than 0", m.weight),
                });
            }
            if m.group.is_empty() {
                return Err(SpecError::Metric {
                    metric: m.metric.clone(),
                    reason: "the group cannot be empty".to_owned(),
                });
            }
            if let Some(t) = m.tolerance {
                check_tolerance("tolerance", t).map_err(|e| SpecError::Metric {
                    metric: m.metric.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(())
    }
}

fn check_tolerance(field: &str, t: f64) -> Result<(), SpecError> {
    if t.is_finite() && t >= 0.0 {
        Ok(())
    } else {
        Err(SpecError::Invalid {
            field: field.to_owned(),
            reason: format!("tolerance {t} is not a ratio ≥ 0 (0.1 is 10 %)"),
        })
    }
}

/// Why a [`CanarySpec`] is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// No `[[canary.metric]]`.
    #[error("a canary compares at least one metric: add a [[canary.metric]]")]
    NoMetrics,
    /// The marginal threshold is above the pass threshold.
    #[error("thresholds out of order: marginal ({marginal}) must not exceed pass ({pass})")]
    ThresholdOrder {
        /// The pass threshold.
        pass: f64,
        /// The marginal threshold.
        marginal: f64,
    },
    /// A field of the run has a value it cannot take.
    #[error("`{field}`: {reason}")]
    Invalid {
        /// The field (as in the configuration).
        field: String,
        /// Why.
        reason: String,
    },
    /// A metric's entry is wrong.
    #[error("metric {metric:?}: {reason}")]
    Metric {
        /// The metric.
        metric: String,
        /// Why.
        reason: String,
    },
}
