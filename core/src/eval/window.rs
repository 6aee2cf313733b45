//! Per-series windows of samples and the aggregations computed over them.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::Timestamp;
use crate::metrics::HistogramSnapshot;
use crate::rules::Aggregation;
use crate::rules::aggregation::{Observations, Scalars};

/// Samples kept per series at most, whatever the window: bounds memory when a watched series
/// crosses its bounds thousands of times a second.
const MAX_SAMPLES: usize = 4096;

/// A series' samples older than the newest.
#[derive(Debug, Default)]
struct History {
    scalars: VecDeque<(Timestamp, f64)>,
    histograms: VecDeque<(Timestamp, HistogramSnapshot)>,
}

/// The history of a window that has none.
static NO_HISTORY: History = History {
    scalars: VecDeque::new(),
    histograms: VecDeque::new(),
};

/// The recent samples of one series.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// The newest counter or gauge sample, kept inline: a `last` rule reads nothing else.
    last: Option<(Timestamp, f64)>,
    /// Older samples (scalars only when some rule has a window, `keep > 0`), out of line: most
    /// series are read by `last` rules and need none.
    history: Option<Box<History>>,
    /// Longest window of any rule reading this series.
    pub(crate) keep: Duration,
    /// When a fresh sample last arrived (a record since the previous sample).
    pub(crate) last_fresh: Option<Timestamp>,
}

impl Window {
    pub(crate) fn new(keep: Duration) -> Self {
        Window {
            keep,
            ..Window::default()
        }
    }

    fn history(&self) -> &History {
        self.history.as_deref().unwrap_or(&NO_HISTORY)
    }

    fn history_mut(&mut self) -> &mut History {
        self.history.get_or_insert_with(Box::default)
    }

    /// The newest counter or gauge value.
    pub(crate) fn last_value(&self) -> Option<f64> {
        self.last.map(|s| s.1)
    }

    fn latest_time(&self) -> Option<Timestamp> {
        let a = self.last.map(|s| s.0);
        let b = self.history().histograms.back().map(|s| s.0);
        a.max(b)
    }

    /// Adds a counter or gauge sample; samples older than the newest are ignored.
    pub(crate) fn push_scalar(&mut self, t: Timestamp, value: f64, fresh: bool) {
        if self.latest_time().is_some_and(|last| t < last) {
            return;
        }
        if fresh {
            self.last_fresh = Some(t);
        }
        self.last = Some((t, value));
        if self.keep.is_zero() {
            if let Some(h) = &mut self.history {
                h.scalars.clear();
            }
            return;
        }
        let keep = self.keep;
        let scalars = &mut self.history_mut().scalars;
        // A sample at the same instant replaces the previous one.
        if scalars.back().is_some_and(|s| s.0 == t) {
            scalars.pop_back();
        }
        scalars.push_back((t, value));
        prune(scalars, t, keep);
    }

    /// Adds a histogram sample; it is fresh if the count moved.
    pub(crate) fn push_histogram(&mut self, t: Timestamp, snapshot: HistogramSnapshot) {
        if self.latest_time().is_some_and(|last| t < last) {
            return;
        }
        let moved = self
            .history()
            .histograms
            .back()
            .is_none_or(|(_, h)| h.count() != snapshot.count());
        if moved && snapshot.count() > 0 {
            self.last_fresh = Some(t);
        }
        let keep = self.keep;
        let histograms = &mut self.history_mut().histograms;
        if histograms.back().is_some_and(|s| s.0 == t) {
            histograms.pop_back();
        }
        histograms.push_back((t, snapshot));
        prune(histograms, t, keep);
    }

    /// The aggregated value at `t`, or `None` if there is not enough data for one.
    pub(crate) fn aggregate(
        &self,
        aggregation: Aggregation,
        window: Duration,
        t: Timestamp,
    ) -> Option<f64> {
        let History {
            scalars,
            histograms,
        } = self.history();
        if !histograms.is_empty() {
            return aggregate_histogram(histograms, aggregation, window, t);
        }
        let last = self.last?;
        aggregation.over_scalars(&Scalars {
            history: scalars,
            last,
            window,
            now: t,
        })
    }
}

/// A histogram series' aggregated value at `t` over `window`.
fn aggregate_histogram(
    histograms: &VecDeque<(Timestamp, HistogramSnapshot)>,
    aggregation: Aggregation,
    window: Duration,
    t: Timestamp,
) -> Option<f64> {
    let (t_last, latest) = histograms.back()?;
    // A zero window reads the observations since the previous sample.
    let base = if window.is_zero() {
        histograms.len().checked_sub(2)?
    } else {
        baseline(histograms, t - window)?
    };
    let (t_base, earlier) = histograms.get(base)?;
    let from_start = !window.is_zero() && *t_base > t - window;
    let delta = if base + 1 == histograms.len() || from_start {
        // One sample, or none as old as the window: the series is younger than the window
        // (or was just bound), and everything it observed is in it.
        latest.clone()
    } else {
        latest.delta(earlier)
    };
    aggregation.over_histogram(&Observations {
        delta: &delta,
        elapsed: t_last.since(*t_base).as_secs_f64(),
    })
}

/// Index of the newest sample at or before `start` (the window's baseline), else the oldest.
fn baseline<T>(samples: &VecDeque<(Timestamp, T)>, start: Timestamp) -> Option<usize> {
    if samples.is_empty() {
        return None;
    }
    let after = samples.partition_point(|s| s.0 <= start);
    Some(after.saturating_sub(1))
}

/// Drops samples no window needs: keeps one at or before `now - keep` as the baseline.
fn prune<T>(samples: &mut VecDeque<(Timestamp, T)>, now: Timestamp, keep: Duration) {
    let start = now - keep;
    while samples.len() > 1 && samples.get(1).is_some_and(|s| s.0 <= start) {
        samples.pop_front();
    }
    while samples.len() > MAX_SAMPLES {
        samples.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn scalar_aggregations() {
        let mut w = Window::new(Duration::from_secs(60));
        for (s, v) in [(0, 10.0), (10, 20.0), (20, 30.0), (30, 0.0)] {
            w.push_scalar(t(s), v, true);
        }
        let win = Duration::from_secs(20);
        assert_eq!(w.aggregate(Aggregation::Last, win, t(30)), Some(0.0));
        assert_eq!(w.aggregate(Aggregation::Avg, win, t(30)), Some(50.0 / 3.0));
        assert_eq!(w.aggregate(Aggregation::Max, win, t(30)), Some(30.0));
        assert_eq!(w.aggregate(Aggregation::Min, win, t(30)), Some(0.0));
    }

    #[test]
    fn rate_handles_counter_reset() {
        let mut w = Window::new(Duration::from_secs(60));
        for (s, v) in [(0, 100.0), (10, 150.0), (20, 20.0), (30, 50.0)] {
            w.push_scalar(t(s), v, true);
        }
        // Increases: 50, then reset to 20 (counts 20), then 30: 100 over 30 s.
        let rate = w
            .aggregate(Aggregation::Rate, Duration::from_secs(30), t(30))
            .unwrap();
        assert!((rate - 100.0 / 30.0).abs() < 1e-9, "{rate}");
        // The baseline is the newest sample at or before the window start.
        let rate = w
            .aggregate(Aggregation::Rate, Duration::from_secs(15), t(30))
            .unwrap();
        assert!((rate - 50.0 / 20.0).abs() < 1e-9, "{rate}");
    }

    #[test]
    fn keeps_only_what_windows_need() {
        let mut w = Window::new(Duration::from_secs(10));
        for s in 0..100 {
            w.push_scalar(t(s), s as f64, true);
        }
        let kept = w.history().scalars.len();
        assert!(kept <= 12, "{kept}");
        // Older samples are ignored.
        w.push_scalar(t(5), -1.0, true);
        assert_eq!(
            w.aggregate(Aggregation::Last, Duration::ZERO, t(99)),
            Some(99.0)
        );
    }
}
