//! Point-in-time readings of series, for the evaluator and exporters.

use std::sync::Arc;

#[cfg(feature = "serde")]
use serde::Serialize;

use super::buckets;
use super::{Labels, MetricKind, SeriesId};

/// A histogram's state at one moment: exact count, sum, min and max, and its non-empty buckets.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct HistogramSnapshot {
    pub(crate) zero: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// `(bucket key, count)`, sorted by key (the zero bucket has key 0).
    pub(crate) buckets: Vec<(i32, u64)>,
    pub(crate) count: u64,
}

impl HistogramSnapshot {
    /// A histogram with no observations (the start of a [`merge`](Self::merge)).
    pub fn empty() -> Self {
        HistogramSnapshot {
            zero: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            buckets: Vec::new(),
            count: 0,
        }
    }

    pub(crate) fn push_bucket(&mut self, key: i32, n: u64) {
        self.buckets.push((key, n));
    }

    /// Adds the zero bucket, sorts, and totals the count.
    pub(crate) fn finish(&mut self) {
        if self.zero > 0 {
            self.buckets.push((0, self.zero));
        }
        self.buckets.sort_unstable_by_key(|&(k, _)| k);
        self.count = self.buckets.iter().map(|&(_, n)| n).sum();
    }

    /// The non-empty buckets as `(bucket key, count)`, sorted by key: the collector's own
    /// bucket numbering (see `buckets::midpoint`), for vigilo's evaluator and canary analysis.
    #[doc(hidden)]
    pub fn keyed_buckets(&self) -> &[(i32, u64)] {
        &self.buckets
    }

    /// Adds the observations of `other` (a histogram of the same kind of values, or a
    /// [`delta`](Self::delta)) to these: counts per bucket, count and sum add up; min and max
    /// are the smaller and larger of both (unknown if either side's is).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        // An empty side bounds nothing (min +inf, max -inf); a side with observations but no
        // finite min (a delta) makes the merged min and max unknown.
        let knows = |h: &HistogramSnapshot| h.count == 0 || h.min.is_finite();
        let known = knows(self) && knows(other);
        if !other.buckets.is_empty() {
            if self.buckets.is_empty() {
                self.buckets.clone_from(&other.buckets);
            } else {
                self.buckets = merge_sorted(&self.buckets, &other.buckets);
            }
        }
        self.sum += other.sum;
        self.count += other.count;
        if known {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        } else {
            self.min = f64::INFINITY;
            self.max = f64::NEG_INFINITY;
        }
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of all observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Smallest observation, `None` if empty or if this is a [`delta`](Self::delta).
    pub fn min(&self) -> Option<f64> {
        self.min.is_finite().then_some(self.min)
    }

    /// Largest observation, `None` if empty or if this is a [`delta`](Self::delta).
    pub fn max(&self) -> Option<f64> {
        self.max.is_finite().then_some(self.max)
    }

    /// Mean of the observations, `None` if empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The `q`-quantile (`0.0..=1.0`) by nearest rank, within
    /// [`RELATIVE_ERROR`](buckets::RELATIVE_ERROR) of the exact value for magnitudes in range.
    /// `None` if there are no observations or `q` is not in `0..=1`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for &(key, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let mut v = buckets::midpoint(key);
                if let Some(min) = self.min() {
                    v = v.max(min);
                }
                if let Some(max) = self.max() {
                    v = v.min(max);
                }
                return Some(v);
            }
        }
        None
    }

    /// The observations made between `earlier` and `self` (two snapshots of the same series),
    /// for windowed percentiles. Min and max are unknown in a delta.
    pub fn delta(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let mut out = HistogramSnapshot::empty();
        out.sum = self.sum - earlier.sum;
        let mut old = earlier.buckets.iter().peekable();
        for &(key, n) in &self.buckets {
            while old.next_if(|(k, _)| *k < key).is_some() {}
            let before = old.next_if(|(k, _)| *k == key).map_or(0, |&(_, n)| n);
            if n > before {
                out.buckets.push((key, n - before));
            }
        }
        out.count = out.buckets.iter().map(|&(_, n)| n).sum();
        out
    }

    /// The observations counted at explicit bucket `bounds` (increasing): element `i` counts
    /// those under `bounds[i]` and above `bounds[i - 1]`, the last element those above every
    /// bound (so `bounds.len() + 1` elements, not cumulative). Each fine bucket is counted under
    /// the first bound at or above its lower edge, so an observation on a bound is counted
    /// under it (as Prometheus's `le` means), and a count is exact for every observation more
    /// than 0.78 % away from a bound. The exposition and every export use this.
    pub fn counts_at(&self, bounds: &[f64]) -> Vec<u64> {
        let mut counts = vec![0u64; bounds.len() + 1];
        for (lo, _, n) in self.buckets() {
            let i = bounds
                .iter()
                .position(|&le| lo <= le)
                .unwrap_or(bounds.len());
            counts[i] += n;
        }
        counts
    }

    /// The non-empty buckets as `(lower bound, upper bound, count)`, in increasing order.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, f64, u64)> + '_ {
        self.buckets.iter().map(|&(key, n)| {
            let mid = buckets::midpoint(key);
            let half = mid.abs() * buckets::RELATIVE_ERROR / (1.0 + buckets::RELATIVE_ERROR);
            (mid - half, mid + half, n)
        })
    }
}

/// The value of one series at one moment.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", content = "value", rename_all = "lowercase")
)]
pub enum Value {
    /// A counter's total.
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// A histogram's state.
    Histogram(HistogramSnapshot),
}

impl Value {
    /// The kind of metric this value came from.
    pub fn kind(&self) -> MetricKind {
        match self {
            Value::Counter(_) => MetricKind::Counter,
            Value::Gauge(_) => MetricKind::Gauge,
            Value::Histogram(_) => MetricKind::Histogram,
        }
    }

    /// A single number for this value: a counter's total, a gauge's value, a histogram's count.
    pub fn as_f64(&self) -> f64 {
        match self {
            Value::Counter(n) => *n as f64,
            Value::Gauge(v) => *v,
            Value::Histogram(h) => h.count() as f64,
        }
    }
}

/// One series in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct SeriesSnapshot {
    /// The series' id, stable for its lifetime.
    pub id: SeriesId,
    /// The metric name.
    pub name: Arc<str>,
    /// The series' labels, sorted by name.
    pub labels: Labels,
    /// Its value when the snapshot was taken.
    pub value: Value,
}

/// Every series of a registry, sorted by name then labels. Taking one never stops a writer.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct Snapshot {
    /// The series.
    pub series: Vec<SeriesSnapshot>,
}

impl Snapshot {
    /// The series of one metric name.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a SeriesSnapshot> + 'a {
        self.series.iter().filter(move |s| &*s.name == name)
    }

    /// The series with exactly this name and these labels (in any order).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<&SeriesSnapshot> {
        self.series
            .iter()
            .find(|s| &*s.name == name && s.labels.matches_exactly(labels))
    }
}

/// Two bucket lists sorted by key, merged into one, counts of the same key added.
fn merge_sorted(a: &[(i32, u64)], b: &[(i32, u64)]) -> Vec<(i32, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(&&(ka, na)), Some(&&(kb, nb))) => {
                if ka < kb {
                    a.next();
                    (ka, na)
                } else if kb < ka {
                    b.next();
                    (kb, nb)
                } else {
                    a.next();
                    b.next();
                    (ka, na + nb)
                }
            }
            (Some(&&x), None) => {
                a.next();
                x
            }
            (None, Some(&&x)) => {
                b.next();
                x
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::HistogramSnapshot;
    use crate::Registry;

    #[test]
    fn merge_adds_bucket_by_bucket_and_keeps_min_and_max() {
        let registry = Registry::new();
        let a = registry.histogram("a_seconds", &[]).unwrap();
        let b = registry.histogram("b_seconds", &[]).unwrap();
        let both = registry.histogram("c_seconds", &[]).unwrap();
        for v in [0.001, 0.5, 0.5, 3.0] {
            a.record(v);
            both.record(v);
        }
        for v in [0.5, 7.0, -1.0] {
            b.record(v);
            both.record(v);
        }
        let mut merged = HistogramSnapshot::empty();
        merged.merge(&a.snapshot());
        merged.merge(&b.snapshot());
        let expected = both.snapshot();
        assert_eq!(merged.buckets, expected.buckets);
        assert_eq!(merged.count(), 7);
        assert!((merged.sum() - expected.sum()).abs() < 1e-12);
        assert_eq!((merged.min(), merged.max()), (Some(-1.0), Some(7.0)));
        assert_eq!(merged.quantile(0.5), expected.quantile(0.5));
    }

    #[test]
    fn merging_a_delta_makes_min_and_max_unknown() {
        let registry = Registry::new();
        let h = registry.histogram("d_seconds", &[]).unwrap();
        h.record(1.0);
        let before = h.snapshot();
        h.record(2.0);
        let mut merged = before.clone();
        merged.merge(&h.snapshot().delta(&before));
        assert_eq!(merged.count(), 2);
        assert_eq!((merged.min(), merged.max()), (None, None));
        // An empty delta changes nothing.
        let mut same = before.clone();
        same.merge(&before.delta(&before));
        assert_eq!(same, before);
    }
}
