//! What a canary run produces: [`CanaryReport`], serialized as JSON.

use serde::Serialize;

use super::spec::Direction;
use crate::clock::Timestamp;

/// The verdict of a run (or of one interval).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Score at or above the pass threshold, and no critical metric failed.
    Pass,
    /// Score at or above the marginal threshold but below pass, no critical metric failed.
    Marginal,
    /// Score below the marginal threshold, or a critical metric failed.
    Fail,
}

impl Verdict {
    /// The value of the `vigilo_canary_verdict` gauge: 0 pass, 1 marginal, 2 fail.
    pub fn as_gauge(self) -> f64 {
        match self {
            Verdict::Pass => 0.0,
            Verdict::Marginal => 1.0,
            Verdict::Fail => 2.0,
        }
    }

    /// The verdict a `vigilo_canary_verdict` value stands for, if any.
    pub(crate) fn from_gauge(value: f64) -> Option<Verdict> {
        [Verdict::Pass, Verdict::Marginal, Verdict::Fail]
            .into_iter()
            .find(|v| v.as_gauge() == value)
    }
}

/// What one metric's comparison concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MetricVerdict {
    /// No significant difference in the bad direction, or one within the tolerance.
    Pass,
    /// A significant difference in the bad direction, beyond the tolerance.
    Fail,
    /// The baseline has the metric (series with observations) and the canary has not.
    MissingInCanary,
    /// The canary has the metric and the baseline has not.
    MissingInBaseline,
    /// Neither group has a series of the metric.
    MissingInBoth,
    /// Both groups have series but neither has an observation in the window: nothing to
    /// compare, left out of the score.
    NoData,
}

impl MetricVerdict {
    /// True for the three `Missing…` verdicts.
    pub fn is_missing(self) -> bool {
        matches!(
            self,
            MetricVerdict::MissingInCanary
                | MetricVerdict::MissingInBaseline
                | MetricVerdict::MissingInBoth
        )
    }
}

/// What one group's data summed up to in a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SideSummary {
    /// Series of the metric in the group.
    pub series: usize,
    /// Observations (histograms) or samples (counters as rates, gauges) in the window.
    pub count: u64,
    /// Their median (a histogram's within its buckets' 0.78 %).
    pub median: Option<f64>,
    /// Their mean.
    pub mean: Option<f64>,
}

/// One metric's comparison in one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricResult {
    /// The metric.
    pub metric: String,
    /// Its group.
    pub group: String,
    /// Its weight in the group.
    pub weight: f64,
    /// Which way is bad.
    pub direction: Direction,
    /// Whether its failure fails the run.
    pub critical: bool,
    /// The tolerance that applied.
    pub tolerance: f64,
    /// The conclusion.
    pub verdict: MetricVerdict,
    /// Why, in a sentence.
    pub reason: String,
    /// The Mann-Whitney p-value (one-sided in the bad direction, two-sided for `either`), when
    /// both groups had data.
    pub p_value: Option<f64>,
    /// The canary's U statistic: pairs (canary, baseline) where the canary is greater, ties
    /// counting half.
    pub u: Option<f64>,
    /// The relative change `canary / baseline - 1` of the medians (of the means when the
    /// baseline's median is 0; see `effect_basis`); `None` when not computed, or when the
    /// baseline is 0 and the canary is not (the reason says so).
    pub effect: Option<f64>,
    /// `"median"` or `"mean"`: what `effect` compares.
    pub effect_basis: Option<&'static str>,
    /// The canary's side.
    pub canary: SideSummary,
    /// The baseline's side.
    pub baseline: SideSummary,
}

/// One group's share in a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupScore {
    /// The group.
    pub group: String,
    /// Its weight in the overall score.
    pub weight: f64,
    /// Weight of its metrics that passed.
    pub passed_weight: f64,
    /// Weight of its metrics that were scored (passed, failed, or missing under
    /// `on_missing = "fail"`).
    pub scored_weight: f64,
    /// `100 × passed_weight / scored_weight`; `None` if nothing in the group was scored (the
    /// group then takes no part in the overall score).
    pub score: Option<f64>,
}

/// The score and verdict of one window, with the per-metric results they come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// 0–100.
    pub score: f64,
    /// Against the run's thresholds (and its critical metrics).
    pub verdict: Verdict,
    /// Why the verdict, when it is not just the score against the thresholds (a critical
    /// metric failed, nothing could be scored).
    pub note: Option<String>,
    /// Per group.
    pub groups: Vec<GroupScore>,
    /// Per metric, in the order of the definition.
    pub metrics: Vec<MetricResult>,
}

/// One interval's own comparison (its data only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalResult {
    /// From 0.
    pub index: u32,
    /// When it began.
    pub start: Timestamp,
    /// When it ended.
    pub end: Timestamp,
    /// Its score, verdict and metrics.
    #[serde(flatten)]
    pub result: Scored,
}

/// A canary run's report: the comparison over everything since the run started (final once
/// `complete`), and each interval's own comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryReport {
    /// The run's name.
    pub canary: String,
    /// When it started.
    pub start: Timestamp,
    /// The end of the last interval compared.
    pub end: Timestamp,
    /// True once every interval has run.
    pub complete: bool,
    /// The pass threshold.
    pub pass: f64,
    /// The marginal threshold.
    pub marginal: f64,
    /// Score, verdict, groups and metrics over the whole run so far.
    #[serde(flatten)]
    pub result: Scored,
    /// Each interval's own comparison, in order.
    pub intervals: Vec<IntervalResult>,
}

impl CanaryReport {
    /// The score, 0–100.
    pub fn score(&self) -> f64 {
        self.result.score
    }

    /// The verdict.
    pub fn verdict(&self) -> Verdict {
        self.result.verdict
    }

    /// The whole-run result of `metric`.
    pub fn metric(&self, metric: &str) -> Option<&MetricResult> {
        self.result.metrics.iter().find(|m| m.metric == metric)
    }

    /// As JSON.
    pub fn to_json(&self) -> String {
        // The report holds only strings, numbers (non-finite ones become null), booleans and
        // sequences of them, which serde_json always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
