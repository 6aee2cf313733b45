//! `stddev`: the population standard deviation (as Prometheus's `stddev_over_time`).
//!
//! Over a counter's or gauge's samples: of the samples inside the window; no value with none.
//! Over a histogram: of the window's observations, each taken at its bucket's midpoint (so
//! within the buckets' relative error); no value without observations.

use super::{Aggregation, Params, Scalars};
use crate::metrics::HistogramSnapshot;

pub(super) fn parse(name: &str, _: &Params) -> Option<Result<Aggregation, String>> {
    (name == "stddev").then_some(Ok(Aggregation::Stddev))
}

/// Welford's one-pass mean and variance: stable for values far from zero.
fn stddev_of(values: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut n, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for (v, weight) in values {
        if weight <= 0.0 {
            continue;
        }
        let total = n + weight;
        let d = v - mean;
        mean += d * weight / total;
        m2 += weight * d * (v - mean);
        n = total;
    }
    (n > 0.0).then(|| (m2 / n).max(0.0).sqrt())
}

pub(super) fn stddev(s: &Scalars<'_>) -> Option<f64> {
    stddev_of(s.in_window().map(|v| (v.1, 1.0)))
}

pub(super) fn of_histogram(h: &HistogramSnapshot) -> Option<f64> {
    stddev_of(h.buckets().map(|(lo, hi, n)| ((lo + hi) / 2.0, n as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_the_two_pass_formula() {
        let xs = [
            1e9 + 2.0,
            1e9 + 4.0,
            1e9 + 4.0,
            1e9 + 4.0,
            1e9 + 5.0,
            1e9 + 5.0,
            1e9 + 7.0,
            1e9 + 9.0,
        ];
        // The textbook example: mean 5 (+1e9), population standard deviation 2.
        let sd = stddev_of(xs.iter().map(|&x| (x, 1.0))).unwrap();
        assert!((sd - 2.0).abs() < 1e-6, "{sd}");
        assert_eq!(stddev_of(std::iter::empty()), None);
    }
}
