//! Aggregations: how a window of samples becomes the one value a rule compares with its
//! thresholds.
//!
//! Each aggregation lives in a module of its own, which says what it computes over a counter's
//! or gauge's samples and over a histogram's observations, and documents it. This file only
//! names them and dispatches: every `match` below lists every variant, with no catch-all arm,
//! so an aggregation added to [`Aggregation`] that forgets one of its cases does not compile.
//! Adding one is: a variant, its module, one arm per `match` here, its line in `PARSERS`.
//!
//! | name | module | value |
//! |---|---|---|
//! | `last` | `basic` | the newest sample |
//! | `avg`, `min`, `max` | `basic` | over the window's samples |
//! | `rate` | `counting` | per-second increase of a counter (resets handled) |
//! | `increase` | `counting` | increase of a counter over the window (resets handled) |
//! | `delta` | `counting` | newest sample minus the one at the window's start (gauges) |
//! | `change` | `counting` | how many times the value changed within the window |
//! | `stddev` | `spread` | population standard deviation of the window's samples |
//! | `pNN` | `percentile` | a quantile of the window |
//! | `timeleft` | `timeleft` | seconds until a least-squares line reaches a target |
//! | `anomaly` | `anomaly` | how many deviations the window's mean is from the learned band |

mod anomaly;
mod basic;
mod counting;
mod percentile;
mod spread;
mod timeleft;

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub(crate) use anomaly::Learned;
pub use anomaly::LearnedSnapshot;
pub use anomaly::{Anomaly, Direction, Season};
pub use timeleft::TimeLeft;

use super::Comparison;
use crate::clock::Timestamp;
use crate::metrics::HistogramSnapshot;

/// How a window of samples becomes the one value compared against thresholds (see the module
/// docs of each for what it computes, and `rules/SEMANTICS.md` for timelines).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Aggregation {
    /// The latest sample.
    Last,
    /// Mean of the samples in the window (for a histogram: mean of the window's observations).
    Avg,
    /// Smallest sample in the window.
    Min,
    /// Largest sample in the window.
    Max,
    /// Per-second increase of a counter over the window (counter resets handled); for a
    /// histogram, observations per second.
    Rate,
    /// A quantile (`0.0..=1.0`) of a histogram's observations within the window.
    Percentile(f64),
    /// Population standard deviation of the window's samples (for a histogram: of its
    /// observations, from the buckets' midpoints).
    Stddev,
    /// The newest sample minus the window's baseline (the newest sample at or before the
    /// window's start): how much a gauge moved. For a histogram: observations in the window.
    Delta,
    /// How much a counter grew over the window, counter resets handled (`rate` × the time
    /// covered). For a histogram: observations in the window.
    Increase,
    /// How many times the value differed from the sample before it, within the window (for
    /// state-like gauges: `threshold = 0` fires while a change is in the window). No value
    /// for a histogram.
    Change,
    /// Seconds until the least-squares line through the window's samples reaches a target
    /// (Zabbix's `timeleft`, Prometheus's `predict_linear` fit); see [`TimeLeft`].
    TimeLeft(TimeLeft),
    /// How many deviations the window's mean is from the item's learned band; see [`Anomaly`].
    Anomaly(Anomaly),
}

/// How the evaluator's watches can follow an aggregation between sweeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// The value is the newest sample: a crossing either way is seen at once.
    Both,
    /// A new sample can only move the value toward the bad side at once (a `max` above): the
    /// entering bound is armed, leaving waits for a sweep.
    Entering,
    /// Only sweeps (and deadlines) evaluate it.
    Sweeps,
}

/// The samples of a counter or gauge an aggregation reads.
pub(crate) struct Scalars<'a> {
    /// Kept samples, oldest first, the newest included (empty when no rule needs a window).
    pub(crate) history: &'a VecDeque<Sample>,
    /// The newest sample.
    pub(crate) last: Sample,
    /// The rule's window.
    pub(crate) window: Duration,
    /// The moment of the evaluation.
    pub(crate) now: Timestamp,
}

/// One sample: when, and its value.
pub(crate) type Sample = (Timestamp, f64);

impl<'a> Scalars<'a> {
    /// The window's start.
    pub(crate) fn start(&self) -> Timestamp {
        self.now - self.window
    }

    /// The samples inside the window, newest first.
    pub(crate) fn in_window(&self) -> impl Iterator<Item = &'a Sample> + use<'a> {
        let start = self.start();
        self.history.iter().rev().take_while(move |s| s.0 >= start)
    }

    /// The samples from the window's baseline (the newest at or before its start, else the
    /// oldest) to the newest, oldest first.
    pub(crate) fn since_baseline(&self) -> std::collections::vec_deque::Iter<'a, Sample> {
        let start = self.start();
        let after = self.history.partition_point(|s| s.0 <= start);
        self.history.range(after.saturating_sub(1)..)
    }
}

/// A histogram's observations within the window.
pub(crate) struct Observations<'a> {
    /// What was observed in the window.
    pub(crate) delta: &'a HistogramSnapshot,
    /// Seconds from the window's baseline sample to the newest (0 with one sample).
    pub(crate) elapsed: f64,
}

impl Aggregation {
    /// The name as configured (`aggregation = "…"`), without parameters.
    pub fn name(&self) -> &'static str {
        match self {
            Aggregation::Last => "last",
            Aggregation::Avg => "avg",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Rate => "rate",
            Aggregation::Percentile(_) => "percentile",
            Aggregation::Stddev => "stddev",
            Aggregation::Delta => "delta",
            Aggregation::Increase => "increase",
            Aggregation::Change => "change",
            Aggregation::TimeLeft(_) => "timeleft",
            Aggregation::Anomaly(_) => "anomaly",
        }
    }

    /// True if the aggregation reads a window (every one but `last`).
    pub fn needs_window(&self) -> bool {
        match self {
            Aggregation::Last => false,
            Aggregation::Avg
            | Aggregation::Min
            | Aggregation::Max
            | Aggregation::Rate
            | Aggregation::Percentile(_)
            | Aggregation::Stddev
            | Aggregation::Delta
            | Aggregation::Increase
            | Aggregation::Change
            | Aggregation::TimeLeft(_)
            | Aggregation::Anomaly(_) => true,
        }
    }

    /// Checks the aggregation's own parameters against the rule's window.
    pub(crate) fn validate(&self, window: Duration) -> Result<(), String> {
        match self {
            Aggregation::Percentile(q) => percentile::validate(*q),
            Aggregation::TimeLeft(t) => t.validate(),
            Aggregation::Anomaly(a) => a.validate(window),
            Aggregation::Last
            | Aggregation::Avg
            | Aggregation::Min
            | Aggregation::Max
            | Aggregation::Rate
            | Aggregation::Stddev
            | Aggregation::Delta
            | Aggregation::Increase
            | Aggregation::Change => Ok(()),
        }
    }

    /// How watches can follow the value between sweeps, for a rule with comparison `c`.
    pub(crate) fn reaction(&self, c: Comparison) -> Reaction {
        match (self, c) {
            (Aggregation::Last, _) => Reaction::Both,
            (Aggregation::Max, Comparison::Above)
            | (Aggregation::Min, Comparison::Below)
            | (Aggregation::Percentile(_), Comparison::Above) => Reaction::Entering,
            (
                Aggregation::Avg
                | Aggregation::Min
                | Aggregation::Max
                | Aggregation::Rate
                | Aggregation::Percentile(_)
                | Aggregation::Stddev
                | Aggregation::Delta
                | Aggregation::Increase
                | Aggregation::Change
                | Aggregation::TimeLeft(_)
                | Aggregation::Anomaly(_),
                _,
            ) => Reaction::Sweeps,
        }
    }

    /// The value over a counter's or gauge's samples, or `None` if there is not enough data.
    /// For `anomaly`, the window's mean (the item's [`Learned`] band turns it into deviations).
    pub(crate) fn over_scalars(&self, s: &Scalars<'_>) -> Option<f64> {
        match self {
            Aggregation::Last => Some(s.last.1),
            Aggregation::Avg | Aggregation::Anomaly(_) => Some(basic::avg(s)),
            Aggregation::Min => Some(basic::min(s)),
            Aggregation::Max => Some(basic::max(s)),
            Aggregation::Rate => counting::rate(s),
            Aggregation::Percentile(q) => percentile::of_samples(s, *q),
            Aggregation::Stddev => spread::stddev(s),
            Aggregation::Delta => counting::delta(s),
            Aggregation::Increase => counting::increase(s),
            Aggregation::Change => Some(counting::changes(s)),
            Aggregation::TimeLeft(t) => t.over(s),
        }
    }

    /// The value over a histogram's observations within the window.
    pub(crate) fn over_histogram(&self, o: &Observations<'_>) -> Option<f64> {
        match self {
            Aggregation::Percentile(q) => o.delta.quantile(*q),
            Aggregation::Avg | Aggregation::Anomaly(_) => o.delta.mean(),
            Aggregation::Min => o.delta.quantile(0.0),
            Aggregation::Max | Aggregation::Last => o.delta.quantile(1.0),
            Aggregation::Rate => (o.elapsed > 0.0).then(|| o.delta.count() as f64 / o.elapsed),
            Aggregation::Delta | Aggregation::Increase => Some(o.delta.count() as f64),
            Aggregation::Stddev => spread::of_histogram(o.delta),
            // A histogram is not state-like, and a latency distribution has no level to reach.
            Aggregation::Change | Aggregation::TimeLeft(_) => None,
        }
    }

    /// The annotations the aggregation adds to an alert whose value is `value` at `now`
    /// (`learned`: the item's band, for `anomaly`). A rule's own annotation of the same name
    /// wins.
    pub(crate) fn annotations(
        &self,
        value: f64,
        now: Timestamp,
        learned: Option<&Learned>,
    ) -> Vec<(&'static str, String)> {
        match self {
            Aggregation::TimeLeft(t) => t.annotations(value, now),
            Aggregation::Anomaly(a) => learned.map_or_else(Vec::new, |l| l.annotations(a)),
            Aggregation::Last
            | Aggregation::Avg
            | Aggregation::Min
            | Aggregation::Max
            | Aggregation::Rate
            | Aggregation::Percentile(_)
            | Aggregation::Stddev
            | Aggregation::Delta
            | Aggregation::Increase
            | Aggregation::Change => Vec::new(),
        }
    }

    /// The anomaly settings, if this is an anomaly rule (its items learn a band).
    pub(crate) fn learns(&self) -> Option<Anomaly> {
        match self {
            Aggregation::Anomaly(a) => Some(*a),
            Aggregation::Last
            | Aggregation::Avg
            | Aggregation::Min
            | Aggregation::Max
            | Aggregation::Rate
            | Aggregation::Percentile(_)
            | Aggregation::Stddev
            | Aggregation::Delta
            | Aggregation::Increase
            | Aggregation::Change
            | Aggregation::TimeLeft(_) => None,
        }
    }
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregation::Percentile(q) => write!(f, "p{}", q * 100.0),
            Aggregation::TimeLeft(t) => write!(f, "timeleft({})", t.target),
            Aggregation::Anomaly(a) => write!(f, "anomaly({a})"),
            Aggregation::Last
            | Aggregation::Avg
            | Aggregation::Min
            | Aggregation::Max
            | Aggregation::Rate
            | Aggregation::Stddev
            | Aggregation::Delta
            | Aggregation::Increase
            | Aggregation::Change => f.write_str(self.name()),
        }
    }
}

/// The parameters of the aggregations that take some, from their config tables.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Params {
    /// `[rule.timeleft]`.
    pub(crate) timeleft: Option<TimeLeft>,
    /// `[rule.anomaly]`.
    pub(crate) anomaly: Option<Anomaly>,
}

/// Each aggregation's reading of a configured name: `None` if the name is not its own.
type Parser = fn(&str, &Params) -> Option<Result<Aggregation, String>>;

/// Every aggregation's parser, in the order names are tried.
const PARSERS: &[Parser] = &[
    basic::parse,
    counting::parse,
    spread::parse,
    percentile::parse,
    timeleft::parse,
    anomaly::parse,
];

/// The names [`FromStr`] knows, for error messages.
pub(crate) const NAMES: &str = "last, avg, min, max, rate, increase, delta, change, stddev, timeleft, anomaly or a percentile like p99";

impl Aggregation {
    /// Reads a configured name with the parameters of its table, if it takes some.
    pub(crate) fn parse_with(name: &str, params: &Params) -> Result<Aggregation, String> {
        let name = name.trim();
        PARSERS
            .iter()
            .find_map(|p| p(name, params))
            .unwrap_or_else(|| Err(format!("unknown aggregation {name:?}: use {NAMES}")))
    }
}

impl FromStr for Aggregation {
    type Err = String;

    /// `last`, `avg`, `min`, `max`, `rate`, `increase`, `delta`, `change`, `stddev`, `anomaly`
    /// (default settings), or `pNN` (e.g. `p99`, `p99.9`, `p50`). `timeleft` needs its target:
    /// build [`Aggregation::TimeLeft`] with [`TimeLeft::new`] (or `[rule.timeleft]` in TOML).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Aggregation::parse_with(s, &Params::default())
    }
}

/// The median of `values` (sorted in place), or `None` when empty.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let mid = values.get(n / 2).copied()?;
    if n % 2 == 1 {
        Some(mid)
    } else {
        Some((values.get(n / 2 - 1).copied()? + mid) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        assert_eq!("p99".parse(), Ok(Aggregation::Percentile(0.99)));
        assert_eq!(
            "p99.9".parse::<Aggregation>().map(|a| a.to_string()),
            Ok("p99.9".to_owned())
        );
        for name in [
            "last", "avg", "min", "max", "rate", "increase", "delta", "change", "stddev",
        ] {
            let a: Aggregation = name.parse().unwrap();
            assert_eq!(a.to_string(), name);
            assert_eq!(a.needs_window(), name != "last");
        }
        assert!(matches!("anomaly".parse(), Ok(Aggregation::Anomaly(_))));
        assert!(
            "median"
                .parse::<Aggregation>()
                .unwrap_err()
                .contains("unknown aggregation")
        );
        assert!(
            "p101"
                .parse::<Aggregation>()
                .unwrap_err()
                .contains("bad percentile")
        );
        assert!(
            "timeleft"
                .parse::<Aggregation>()
                .unwrap_err()
                .contains("needs a target")
        );
        let with = Params {
            timeleft: Some(TimeLeft::new(1.0)),
            anomaly: None,
        };
        assert_eq!(
            Aggregation::parse_with("timeleft", &with).map(|a| a.to_string()),
            Ok("timeleft(1)".to_owned())
        );
    }
}
