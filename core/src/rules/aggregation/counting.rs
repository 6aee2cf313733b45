//! `rate`, `increase`, `delta` and `change`: how much the series moved over the window.
//!
//! Each reads the samples from the window's *baseline* (the newest sample at or before the
//! window's start, else the oldest) to the newest, and needs two of them.
//!
//! - `rate`: a counter's increase divided by the seconds from the baseline to the newest
//!   sample. A drop means the counter restarted from zero: the sample after it counts whole.
//! - `increase`: the same increase, not divided (what `rate` × the time covered gives; unlike
//!   Prometheus's `increase`, not extrapolated to the window's edges).
//! - `delta`: the newest sample minus the baseline, signed: how much a gauge moved.
//! - `change`: how many samples differ from the sample before them (Prometheus's `changes`):
//!   for state-like gauges, `threshold = 0` fires while a change is within the window.
//!
//! Over a histogram, `rate` is observations per second, `increase` and `delta` the number of
//! observations in the window, and `change` has no value.

use super::{Aggregation, Params, Sample, Scalars};

pub(super) fn parse(name: &str, _: &Params) -> Option<Result<Aggregation, String>> {
    Some(Ok(match name {
        "rate" => Aggregation::Rate,
        "increase" => Aggregation::Increase,
        "delta" => Aggregation::Delta,
        "change" | "changes" => Aggregation::Change,
        _ => return None,
    }))
}

/// Consecutive pairs of samples from the baseline on.
fn pairs<'a>(s: &Scalars<'a>) -> impl Iterator<Item = (&'a Sample, &'a Sample)> + use<'a> {
    s.since_baseline().zip(s.since_baseline().skip(1))
}

/// The increase from the baseline to the newest sample, counter resets handled, and the
/// seconds it covers.
fn counter_increase(s: &Scalars<'_>) -> Option<(f64, f64)> {
    let mut first = None;
    let mut last = None;
    let mut sum = 0.0;
    for (a, b) in pairs(s) {
        first.get_or_insert(a.0);
        last = Some(b.0);
        // A drop means the counter restarted from zero.
        sum += if b.1 >= a.1 { b.1 - a.1 } else { b.1 };
    }
    let elapsed = last?.since(first?).as_secs_f64();
    Some((sum, elapsed))
}

pub(super) fn rate(s: &Scalars<'_>) -> Option<f64> {
    let (increase, elapsed) = counter_increase(s)?;
    (elapsed > 0.0).then(|| increase / elapsed)
}

pub(super) fn increase(s: &Scalars<'_>) -> Option<f64> {
    counter_increase(s).map(|(increase, _)| increase)
}

pub(super) fn delta(s: &Scalars<'_>) -> Option<f64> {
    let mut samples = s.since_baseline();
    let base = samples.next()?;
    let newest = samples.last()?;
    Some(newest.1 - base.1)
}

pub(super) fn changes(s: &Scalars<'_>) -> f64 {
    pairs(s).filter(|(a, b)| a.1 != b.1).count() as f64
}
