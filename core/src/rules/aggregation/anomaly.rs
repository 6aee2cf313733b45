//! `anomaly`: how many deviations the window's mean is from the band the item learned.
//!
//! Each item learns from its own past: at the end of every window-long step (steps aligned on
//! the epoch) it keeps the window's mean as one *point*, for `history` (default 7 days). At
//! each evaluation the points to compare with are chosen, their median `m` and median absolute
//! deviation `MAD` computed, and the value is
//!
//! ```text
//! deviations = (mean of the window − m) / max(1.4826 × MAD, min_spread)
//! ```
//!
//! (1.4826 × MAD estimates the standard deviation of normal data and ignores outliers, so a
//! past incident in the history does not widen the band). With `direction = "both"` (the
//! default) the value is the absolute deviation, with `"up"` only rises count (falls are
//! negative), with `"down"` only falls (as positive numbers). Levels are thresholds on it:
//! `threshold = 3` is "more than three deviations away".
//!
//! **Seasons.** With `season = "none"` every point of the history is compared. With
//! `"daily"` or `"weekly"`, only the points of earlier days (weeks) within half an hour (or
//! one window, if longer) of the same time of day (of week), so a series with a daily rhythm
//! is compared with itself at that hour. Points of the current day (week) never are, so an
//! anomaly does not teach itself at once.
//!
//! **Cold start.** No value (the item stays Normal, as for an empty window) until the item
//! has learned for `min_history` (default: one season, 1 d or 7 d; without a season, 24
//! windows) and at least 6 points are there to compare with.
//!
//! **Memory.** At most `history / window` points per item, 16 bytes each, and at most 4096
//! (so 64 KiB at most; 7 d of 5 min steps: 2016 points, 32 KiB). The rule is refused if its
//! history holds more steps. The points survive restarts: they are written to the store
//! (`learned_states`) when they change, at each checkpoint, and given back at start.
//!
//! A series that was constant over its history has a spread of zero: any change is then an
//! anomaly (the value is capped at ±1e9 deviations), unless `min_spread` says how far from
//! the median is not one. A histogram's value is the mean of its observations in the window.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Aggregation, Params, median};
use crate::clock::Timestamp;
use crate::metrics::Labels;

/// Points compared with at least, before the rule has a value.
pub(crate) const MIN_POINTS: usize = 6;
/// Points kept per item at most.
pub(crate) const MAX_POINTS: usize = 4096;
/// How far from the same time of day (week) a point may be to be compared, at least.
const SEASON_WIDTH: Duration = Duration::from_secs(30 * 60);
/// 1.4826 × MAD estimates the standard deviation of normally distributed data.
const MAD_TO_SIGMA: f64 = 1.4826;
/// The largest deviation reported.
const CAP: f64 = 1e9;

/// Which past points a value is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Season {
    /// Every point of the history.
    #[default]
    None,
    /// Earlier days, near the same time of day.
    Daily,
    /// Earlier weeks, near the same time of week.
    Weekly,
}

impl Season {
    /// The season's length, if it has one.
    pub fn period(self) -> Option<Duration> {
        match self {
            Season::None => None,
            Season::Daily => Some(Duration::from_secs(86_400)),
            Season::Weekly => Some(Duration::from_secs(7 * 86_400)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Season::None => "none",
            Season::Daily => "daily",
            Season::Weekly => "weekly",
        }
    }
}

/// Which side of the band is anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Direction {
    /// Either side: the value is the absolute deviation.
    #[default]
    Both,
    /// Only above the band (below gives negative deviations).
    Up,
    /// Only below the band, as positive deviations.
    Down,
}

/// The settings of an `anomaly` aggregation (`[rule.anomaly]`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Anomaly {
    /// How long points are learned from (default 7 days).
    pub history: Duration,
    /// Which points a value is compared with (default none: all of them).
    pub season: Season,
    /// How long an item learns before it has a value (default: one season; without a
    /// season, 24 windows).
    pub min_history: Option<Duration>,
    /// Which side is anomalous (default both).
    pub direction: Direction,
    /// The smallest spread (in the metric's unit) a deviation is measured in (default 0).
    pub min_spread: f64,
}

impl Default for Anomaly {
    fn default() -> Self {
        Anomaly {
            history: Duration::from_secs(7 * 86_400),
            season: Season::None,
            min_history: None,
            direction: Direction::Both,
            min_spread: 0.0,
        }
    }
}

impl fmt::Display for Anomaly {
    /// What the learning depends on (a rule's identity: changing it starts learning afresh).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{}",
            crate::duration::format_duration(self.history),
            self.season.name()
        )
    }
}

impl Anomaly {
    /// Learning over `history`, compared by `season`.
    pub fn new(history: Duration, season: Season) -> Self {
        Anomaly {
            history,
            season,
            ..Anomaly::default()
        }
    }

    /// How long an item learns before it has a value, for a rule of `window`.
    pub fn warm_up(&self, window: Duration) -> Duration {
        self.min_history.unwrap_or_else(|| {
            self.season
                .period()
                .unwrap_or_else(|| window.saturating_mul(24))
        })
    }

    pub(super) fn validate(&self, window: Duration) -> Result<(), String> {
        if window < Duration::from_secs(1) {
            return Err(
                "anomaly needs a window of at least 1s (one learned point per window)".into(),
            );
        }
        let steps = self.history.as_nanos() / window.as_nanos().max(1);
        if steps > MAX_POINTS as u128 {
            return Err(format!(
                "anomaly history {} holds {steps} windows of {}; at most {MAX_POINTS} are kept \
                 per item: lengthen the window or shorten the history",
                crate::duration::format_duration(self.history),
                crate::duration::format_duration(window)
            ));
        }
        if steps < MIN_POINTS as u128 {
            return Err(format!(
                "anomaly history {} holds fewer than {MIN_POINTS} windows",
                crate::duration::format_duration(self.history)
            ));
        }
        if let Some(p) = self.season.period()
            && self.history < p
        {
            return Err(format!(
                "a {} season needs a history of at least {}",
                self.season.name(),
                crate::duration::format_duration(p)
            ));
        }
        if self.warm_up(window) > self.history {
            return Err("anomaly min_history is longer than its history".into());
        }
        if !(self.min_spread.is_finite() && self.min_spread >= 0.0) {
            return Err(format!(
                "anomaly min_spread {} must be a number ≥ 0",
                self.min_spread
            ));
        }
        Ok(())
    }
}

pub(super) fn parse(name: &str, params: &Params) -> Option<Result<Aggregation, String>> {
    (name == "anomaly").then(|| Ok(Aggregation::Anomaly(params.anomaly.unwrap_or_default())))
}

/// The band a value was last compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Band {
    pub(crate) median: f64,
    pub(crate) spread: f64,
    pub(crate) points: usize,
}

/// What one item learned: its points, and the band of its last evaluation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Learned {
    /// `(the step's end in nanoseconds since the epoch, the window's mean then)`, oldest first.
    points: VecDeque<(i64, f64)>,
    /// When learning started.
    since: Option<Timestamp>,
    /// The band of the last evaluation and the step it was computed for.
    band: Option<(i64, Option<Band>)>,
    /// The last value judged: the window's mean and its deviations.
    last: Option<(f64, f64)>,
    /// A point was added since the last save.
    pub(crate) dirty: bool,
}

/// What one item of an `anomaly` rule learned, as saved in the store (see
/// [`Evaluator::learned_states`](crate::eval::Evaluator::learned_states)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedSnapshot {
    /// The rule's identity.
    pub(crate) rule: String,
    /// The series' labels.
    pub(crate) labels: Labels,
    /// When learning started (nanoseconds since the epoch).
    pub(crate) since: i64,
    /// `(step end, value)` pairs, oldest first.
    pub(crate) points: Vec<(i64, f64)>,
    /// When the points are all older than the history and the row can go (nanoseconds).
    pub(crate) expires: i64,
}

impl Learned {
    /// Memory held (for the documented bound): the points' buffer.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.points.capacity() * std::mem::size_of::<(i64, f64)>()
    }

    /// Learns from `mean`, the window's mean at `now`, then judges it: its deviations from the
    /// band, or `None` while the item is cold.
    pub(crate) fn observe(
        &mut self,
        a: &Anomaly,
        window: Duration,
        now: Timestamp,
        mean: Option<f64>,
    ) -> Option<f64> {
        let step = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX).max(1);
        let k = now.as_nanos().div_euclid(step);
        let since = *self.since.get_or_insert(now);
        let value = mean.filter(|v| v.is_finite());
        let band = self.band_for(a, window, now, k, since);
        if let Some(v) = value {
            let end = k.saturating_mul(step);
            if end > since.as_nanos() && self.points.back().is_none_or(|p| p.0 < end) {
                self.points.push_back((end, v));
                self.dirty = true;
                let oldest =
                    now.as_nanos() - i64::try_from(a.history.as_nanos()).unwrap_or(i64::MAX);
                while self.points.front().is_some_and(|p| p.0 < oldest)
                    || self.points.len() > MAX_POINTS
                {
                    self.points.pop_front();
                }
            }
        }
        let (v, band) = (value?, band?);
        let d = (v - band.median) / band.spread;
        let d = match a.direction {
            Direction::Both => d.abs(),
            Direction::Up => d,
            Direction::Down => -d,
        }
        .clamp(-CAP, CAP);
        self.last = Some((v, d));
        Some(d)
    }

    /// The band for an evaluation at `now` (in step `k`): computed once per step.
    fn band_for(
        &mut self,
        a: &Anomaly,
        window: Duration,
        now: Timestamp,
        k: i64,
        since: Timestamp,
    ) -> Option<Band> {
        if let Some((at, band)) = self.band
            && at == k
        {
            return band;
        }
        let band = if now.since(since) < a.warm_up(window) {
            None
        } else {
            self.compute(a, window, now)
        };
        self.band = Some((k, band));
        band
    }

    fn compute(&self, a: &Anomaly, window: Duration, now: Timestamp) -> Option<Band> {
        let now_ns = now.as_nanos();
        let mut values: Vec<f64> = match a.season.period() {
            None => self.points.iter().map(|p| p.1).collect(),
            Some(period) => {
                let p = period.as_nanos() as f64;
                let width = SEASON_WIDTH.max(window).as_nanos() as f64;
                self.points
                    .iter()
                    .filter(|(t, _)| {
                        let age = (now_ns - t) as f64;
                        let seasons = (age / p).round();
                        seasons >= 1.0 && (age - seasons * p).abs() <= width
                    })
                    .map(|p| p.1)
                    .collect()
            }
        };
        if values.len() < MIN_POINTS {
            return None;
        }
        let m = median(&mut values)?;
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
        let mad = median(&mut deviations)?;
        let spread = (MAD_TO_SIGMA * mad)
            .max(a.min_spread)
            .max(f64::MIN_POSITIVE);
        Some(Band {
            median: m,
            spread,
            points: values.len(),
        })
    }

    /// The alert's annotations: the deviations, the expected value and the spread.
    pub(crate) fn annotations(&self, _a: &Anomaly) -> Vec<(&'static str, String)> {
        let fmt = crate::units::number;
        let mut out = Vec::new();
        if let Some((mean, d)) = self.last {
            out.push(("deviations", fmt(d)));
            out.push(("observed", fmt(mean)));
        }
        if let Some((_, Some(b))) = self.band {
            out.push(("expected", fmt(b.median)));
            out.push(("spread", fmt(b.spread)));
        }
        out
    }

    /// As saved in the store, for `rule` on the series `labels`.
    pub(crate) fn snapshot(&self, rule: String, labels: Labels, a: &Anomaly) -> LearnedSnapshot {
        let newest = self.points.back().map_or(0, |p| p.0);
        LearnedSnapshot {
            rule,
            labels,
            since: self.since.map_or(0, Timestamp::as_nanos),
            points: self.points.iter().copied().collect(),
            expires: newest.saturating_add(i64::try_from(a.history.as_nanos()).unwrap_or(i64::MAX)),
        }
    }

    /// Given back from the store.
    pub(crate) fn restore(snapshot: LearnedSnapshot) -> Learned {
        let mut points: VecDeque<(i64, f64)> = snapshot
            .points
            .into_iter()
            .filter(|p| p.1.is_finite())
            .collect();
        while points.len() > MAX_POINTS {
            points.pop_front();
        }
        Learned {
            points,
            since: Some(Timestamp::from_nanos(snapshot.since)),
            ..Learned::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad_by_hand() {
        // Points 10, 12, 11, 13, 9, 50 (an outlier): median 11.5; |x − 11.5| = 1.5, 0.5, 0.5,
        // 1.5, 2.5, 38.5 → MAD 1.5; spread 1.4826 × 1.5 = 2.2239. A mean of 20 is
        // (20 − 11.5) / 2.2239 = 3.822 deviations away.
        let a = Anomaly {
            min_history: Some(Duration::from_secs(60)),
            ..Anomaly::new(Duration::from_secs(3600), Season::None)
        };
        let window = Duration::from_secs(60);
        let mut l = Learned::default();
        let t0 = Timestamp::from_secs(600);
        for (i, v) in [10.0, 12.0, 11.0, 13.0, 9.0, 50.0].into_iter().enumerate() {
            l.observe(&a, window, t0 + Duration::from_secs(60 * i as u64), Some(v));
        }
        // Points are kept at step ends after the start: the first value (at the start) is not.
        assert_eq!(l.points.len(), 5);
        l.points.push_front((0, 10.0));
        l.band = None;
        let d = l
            .observe(&a, window, t0 + Duration::from_secs(330), Some(20.0))
            .unwrap();
        let want = (20.0 - 11.5) / (1.4826 * 1.5);
        assert!((d - want).abs() < 1e-9, "{d} vs {want}");
        assert!(l.bytes() <= MAX_POINTS * 16);
    }

    #[test]
    fn refuses_a_history_it_cannot_hold() {
        let a = Anomaly::new(Duration::from_secs(7 * 86_400), Season::Daily);
        assert!(a.validate(Duration::from_secs(60)).is_err(), "10080 points");
        assert!(a.validate(Duration::from_secs(300)).is_ok());
        let short = Anomaly::new(Duration::from_secs(3600), Season::Daily);
        assert!(short.validate(Duration::from_secs(60)).is_err());
    }
}
