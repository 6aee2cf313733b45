//! `pNN`: a quantile of the window.
//!
//! Over a histogram, the quantile of the window's observations (within the buckets' relative
//! error of 1/128). Over a counter's or gauge's samples, the nearest-rank quantile of the
//! samples inside the window (the newest sample when none is inside).

use super::{Aggregation, Params, Scalars};

pub(super) fn parse(name: &str, _: &Params) -> Option<Result<Aggregation, String>> {
    let digits = name.strip_prefix('p').filter(|d| !d.is_empty())?;
    Some(
        digits
            .parse::<f64>()
            .ok()
            .filter(|q| (0.0..=100.0).contains(q))
            .map(|q| Aggregation::Percentile(q / 100.0))
            .ok_or_else(|| format!("bad percentile {name:?}: use p0 to p100, e.g. p99 or p99.9")),
    )
}

pub(super) fn validate(q: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&q) {
        Ok(())
    } else {
        Err(format!("percentile {q} not in 0..=1"))
    }
}

pub(super) fn of_samples(s: &Scalars<'_>, q: f64) -> Option<f64> {
    let mut values: Vec<f64> = s.in_window().map(|v| v.1).collect();
    if values.is_empty() {
        return Some(s.last.1);
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values.get(rank - 1).copied()
}
