//! Canary analysis: is a new deployment (the *canary*) worse than the one it replaces (the
//! *baseline*), judged on their own metrics, as Kayenta does it for Spinnaker.
//!
//! A [`CanarySpec`] names a selector label (default `deployment`) and its canary and baseline
//! values (default `canary`, `baseline`), and lists metrics, each with a [`Direction`], a
//! weight and a group. A [`CanaryRun`] follows the two groups' series in a
//! [`Registry`](crate::Registry) for the spec's duration, cut into intervals, and produces a
//! [`CanaryReport`].
//!
//! # One metric in one window
//!
//! A group's data for a metric are its series pooled: for a histogram, the observations made
//! during the window (the deltas of its series, merged); for a counter, its per-second rate over
//! each step; for a gauge, its value at each step. The two groups' data are compared with the
//! **Mann-Whitney U test** (one-sided in the bad direction, two-sided for
//! [`Direction::Either`]; tie-corrected normal approximation with continuity correction, as
//! scipy's `method="asymptotic"`). Histograms are compared bucket against bucket, in
//! O(buckets): a bucket's observations count as tied, so the test sees the values to within the
//! buckets' 0.78 % — which is what keeps an interval of a thousand metrics of ten thousand
//! observations a group to tens of milliseconds (BENCHMARKS.md) rather than a sort of every
//! observation.
//!
//! A significant p-value alone does not fail a metric: with large samples, differences too
//! small to matter are significant. The **effect** is the relative change of the canary's
//! median from the baseline's, `median_c / median_b − 1` (of the means when the baseline's
//! median is 0, as for a mostly-zero error rate). A metric **fails** when both
//! - `p < alpha` (default 0.05), and
//! - the effect is beyond the tolerance (default 10 %) in the bad direction: `effect >
//!   tolerance` for [`HigherIsBad`](Direction::HigherIsBad), `effect < −tolerance` for
//!   [`LowerIsBad`](Direction::LowerIsBad), `|effect| > tolerance` for `Either`;
//!
//! it passes otherwise. A metric without a series in a group, or whose group has no observation
//! in the window while the other has, is reported as `missing_in_canary` /
//! `missing_in_baseline` (`missing_in_both` without any series), never compared: it counts as
//! failed in the score ([`OnMissing::Fail`], the default) or is left out of it
//! ([`OnMissing::Ignore`]). Series in both groups but no observation in either is `no_data`,
//! left out.
//!
//! # The score
//!
//! For each group `g` of metrics, over its scored metrics `S_g` (passed, failed, and missing
//! under `OnMissing::Fail`) and the passed ones `P_g ⊆ S_g`, with metric weights `w_m`:
//!
//! ```text
//! score_g = 100 × Σ_{m ∈ P_g} w_m / Σ_{m ∈ S_g} w_m
//! score   = Σ_g W_g × score_g / Σ_g W_g        over the groups with S_g non-empty
//! ```
//!
//! where the group weight `W_g` is [`CanarySpec::group_weights`]`[g]` if given, else the sum
//! of the weights of all the group's metrics (so without group weights the score is simply
//! the weighted share of the metrics that passed). The verdict is **fail** if a
//! [`critical`](CanaryMetric::critical) metric failed (or is missing under `OnMissing::Fail`)
//! or nothing could be scored, else **pass** at `score ≥ pass` (default 90), **marginal** at
//! `score ≥ marginal` (default 75), **fail** below.
//!
//! Each interval is scored on its own data (the report's `intervals`), and the run on all its
//! data since the start (the report's top level): the run's score is the comparison over
//! everything, not an average of intervals.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use vigilo::canary::{CanaryMetric, CanaryRun, CanarySpec, Direction, Verdict};
//! use vigilo::clock::{ManualClock, Timestamp};
//!
//! let registry = vigilo::Registry::new();
//! let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_700_000_000)));
//! let spec = CanarySpec::new("checkout-v2")
//!     .timing(Duration::from_secs(60), Duration::from_secs(120))
//!     .metric(CanaryMetric::new("latency_seconds", Direction::HigherIsBad).weight(5.0));
//! let canary = registry.histogram("latency_seconds", &[("deployment", "canary")])?;
//! let baseline = registry.histogram("latency_seconds", &[("deployment", "baseline")])?;
//!
//! let mut run = CanaryRun::start(spec, &registry, clock.clone())?;
//! while !run.is_complete() {
//!     for i in 0..500 {
//!         let ms = 20.0 + f64::from(i % 50);
//!         baseline.record(ms / 1000.0);
//!         canary.record(ms * 1.3 / 1000.0); // 30 % slower
//!     }
//!     clock.advance(Duration::from_secs(10));
//!     run.tick()?;
//! }
//! let report = run.report();
//! assert_eq!(report.verdict(), Verdict::Fail);
//! let latency = report.metric("latency_seconds").unwrap();
//! assert_eq!(latency.verdict, vigilo::canary::MetricVerdict::Fail);
//! println!("{}", latency.reason); // canary +30.x % (median … vs …): beyond the 10.0 % tolerance…
//! // The gauges a rule can watch:
//! let verdict = registry.snapshot();
//! let verdict = verdict.get("vigilo_canary_verdict", &[("canary", "checkout-v2")]).unwrap();
//! assert_eq!(verdict.value.as_f64(), 2.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod report;
mod run;
mod score;
mod spec;
mod stats;
mod status;

pub use report::{
    CanaryReport, GroupScore, IntervalResult, MetricResult, MetricVerdict, Scored, SideSummary,
    Verdict,
};
pub use run::CanaryRun;
pub use spec::{CanaryMetric, CanarySpec, Direction, OnMissing, SpecError};
pub use status::CanaryStatus;
pub(crate) use status::statuses;

/// The gauge of a run's score (0–100), labelled `canary="<name>"`, updated at every interval.
pub const SCORE_SERIES: &str = "vigilo_canary_score";
/// The gauge of a completed run's verdict (0 pass, 1 marginal, 2 fail), labelled
/// `canary="<name>"`.
pub const VERDICT_SERIES: &str = "vigilo_canary_verdict";

/// Why a canary run could not start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CanaryError {
    /// The definition is invalid.
    #[error("canary definition: {0}")]
    Spec(#[from] SpecError),
    /// The score or verdict series could not be written.
    #[error("canary series: {0}")]
    Metric(#[from] crate::MetricError),
    /// No `[[canary]]` of that name in the configuration.
    #[error("no canary named {0:?} in the configuration")]
    Unknown(String),
}
