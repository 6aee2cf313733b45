//! `last`, `avg`, `min` and `max`.
//!
//! - `last`: the newest sample (no window).
//! - `avg`: the mean of the samples inside the window (each sample counts once, whatever the
//!   time between samples); the newest sample when none is inside.
//! - `min`, `max`: the smallest or largest sample inside the window, the newest included.
//!
//! Over a histogram: `avg` is the mean of the window's observations, `min` and `max` its
//! smallest and largest (to the bucket's precision), and `last` is `max`.

use super::{Aggregation, Params, Scalars};

pub(super) fn parse(name: &str, _: &Params) -> Option<Result<Aggregation, String>> {
    Some(Ok(match name {
        "last" => Aggregation::Last,
        "avg" | "mean" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        _ => return None,
    }))
}

pub(super) fn avg(s: &Scalars<'_>) -> f64 {
    let (sum, n) = s
        .in_window()
        .fold((0.0, 0usize), |(sum, n), v| (sum + v.1, n + 1));
    if n == 0 { s.last.1 } else { sum / n as f64 }
}

pub(super) fn min(s: &Scalars<'_>) -> f64 {
    s.in_window().map(|v| v.1).fold(s.last.1, f64::min)
}

pub(super) fn max(s: &Scalars<'_>) -> f64 {
    s.in_window().map(|v| v.1).fold(s.last.1, f64::max)
}
