//! A chart as the board draws it: the values (every slot, or at most [`SPARK_POINTS`] for the
//! small chart of a row), the y range with its ticks, thresholds and severity changes, every
//! number already written with the item's unit (so the page formats nothing itself).

use serde::Serialize;

use super::trends::{Trend, Trends, worse};
use crate::Severity;
use crate::metrics::Labels;
use crate::pipeline::Event;

/// Points of a row's small chart at most (groups of slots keep their worst value).
pub(super) const SPARK_POINTS: usize = 120;
/// Rows with a small chart at most (the first in the status's order).
pub(super) const MAX_SPARKLINES: usize = 200;

/// A y-axis mark.
#[derive(Debug, Serialize)]
struct Tick {
    value: f64,
    label: String,
}

/// A threshold line.
#[derive(Debug, Serialize)]
struct Threshold {
    severity: Severity,
    colour: &'static str,
    value: f64,
    label: String,
}

/// A severity change.
#[derive(Debug, Serialize)]
struct Change {
    /// Milliseconds since the epoch.
    at: i64,
    from: Option<Severity>,
    to: Severity,
    colour: &'static str,
    label: String,
}

/// One item's chart.
#[derive(Debug, Serialize)]
pub(super) struct Chart<'a> {
    id: &'a str,
    rule: &'a str,
    labels: &'a Labels,
    unit: String,
    severity: Severity,
    colour: &'static str,
    value_text: &'a str,
    /// Where the first value's slot starts (ms since the epoch), and the time each covers.
    start: i64,
    step: i64,
    /// The x axis ends here (the latest readings' time).
    end: i64,
    values: Vec<Option<f64>>,
    low: f64,
    high: f64,
    ticks: Vec<Tick>,
    thresholds: Vec<Threshold>,
    changes: Vec<Change>,
    /// The item's latest transitions and incident events (the large chart only).
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<Event>>,
}

/// Every charted item's small chart, in the status's order.
#[derive(Debug, Serialize)]
pub(super) struct Sparklines<'a> {
    /// The slot length in milliseconds.
    slot: i64,
    items: Vec<Chart<'a>>,
}

pub(super) fn sparklines(trends: &Trends) -> Sparklines<'_> {
    Sparklines {
        slot: trends.slot_start_ms(1),
        items: trends
            .in_order()
            .take(MAX_SPARKLINES)
            .map(|t| chart(trends, t, SPARK_POINTS, None))
            .collect(),
    }
}

/// `trend`'s chart with at most `points` values.
pub(super) fn chart<'a>(
    trends: &Trends,
    trend: &'a Trend,
    points: usize,
    events: Option<Vec<Event>>,
) -> Chart<'a> {
    let (first, values) = trend.ring.values();
    let group = values.len().div_ceil(points.max(1)).max(1);
    // Groups end at the newest slot, so the latest value is always one of its own.
    let skip = (group - values.len() % group) % group;
    let mut grouped = Vec::with_capacity(values.len() / group + 1);
    let mut acc = f32::NAN;
    for (i, v) in values.iter().enumerate() {
        acc = worse(acc, *v, trend.below);
        if (i + skip + 1) % group == 0 {
            grouped.push(acc);
            acc = f32::NAN;
        }
    }
    let start_slot = first - skip as i64;
    let values: Vec<Option<f64>> = grouped
        .iter()
        .map(|v| v.is_finite().then_some(f64::from(*v)))
        .collect();
    let (low, high, ticks) = axis(
        values
            .iter()
            .flatten()
            .copied()
            .chain(trend.levels.iter().map(|(_, t)| *t)),
    );
    let unit = &trend.unit;
    Chart {
        id: &trend.id,
        rule: &trend.rule,
        labels: &trend.labels,
        unit: unit.name(),
        severity: trend.severity,
        colour: trend.severity.colour(),
        value_text: &trend.value_text,
        start: trends.slot_start_ms(start_slot),
        step: trends.slot_start_ms(group as i64),
        end: trends.at().map_or(0, |t| t.as_millis()),
        values,
        low,
        high,
        ticks: ticks
            .into_iter()
            .map(|value| Tick {
                value,
                label: unit.format(value),
            })
            .collect(),
        thresholds: trend
            .levels
            .iter()
            .map(|(severity, value)| Threshold {
                severity: *severity,
                colour: severity.colour(),
                value: *value,
                label: unit.format(*value),
            })
            .collect(),
        changes: trend
            .markers
            .iter()
            .map(|m| Change {
                at: m.at.as_millis(),
                from: m.from,
                to: m.to,
                colour: m.to.colour(),
                label: match m.from {
                    Some(from) => format!("{} → {}", from.name(), m.to.name()),
                    None => format!("→ {}", m.to.name()),
                },
            })
            .collect(),
        events,
    }
}

/// The y range covering `values` (values and thresholds), widened to round ticks, and the ticks
/// (about five, at 1, 2 or 5 times a power of ten).
fn axis(values: impl Iterator<Item = f64>) -> (f64, f64, Vec<f64>) {
    let (mut low, mut high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !low.is_finite() {
        (low, high) = (0.0, 1.0);
    }
    if high - low <= f64::EPSILON * high.abs().max(1.0) {
        let pad = (high.abs() * 0.1).max(1e-9);
        (low, high) = (low - pad, high + pad);
    }
    let raw = (high - low) / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let low = (low / step).floor() * step;
    let high = (high / step).ceil() * step;
    let count = ((high - low) / step).round() as usize;
    let ticks = (0..=count.min(20))
        .map(|i| {
            let v = low + step * i as f64;
            // Round away the binary noise of the multiplication (0.30000000000000004).
            let digits = (-step.log10().floor()).max(0.0) as i32 + 1;
            let f = 10f64.powi(digits);
            (v * f).round() / f
        })
        .collect();
    (low, high, ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_covers_values_and_thresholds_with_round_ticks() {
        let (low, high, ticks) = axis([0.62, 0.75, 0.7, 0.95].into_iter());
        assert!(low <= 0.62 && high >= 0.95, "{low} {high}");
        assert_eq!(ticks, [0.6, 0.7, 0.8, 0.9, 1.0]);
        let (low, high, ticks) = axis(std::iter::empty());
        assert_eq!((low, high), (0.0, 1.0));
        assert!(ticks.len() >= 3);
        let (low, high, _) = axis([150.0].into_iter());
        assert!(low < 150.0 && high > 150.0);
        let (_, _, ticks) = axis([0.0, 25e9].into_iter());
        assert_eq!(ticks, [0.0, 1e10, 2e10, 3e10]);
    }
}
