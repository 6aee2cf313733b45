//! The aggregation of a `[[rule]]`: its name, and the tables of those that take settings
//! (`[rule.timeleft]`, `[rule.anomaly]`).

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::fields::{Dur, Failure, fail};
use super::threshold::Threshold;
use crate::rules::aggregation::Params;
use crate::rules::{Aggregation, Anomaly, Direction, Season, TimeLeft};

/// `[rule.timeleft]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeLeft {
    /// The value whose reaching is predicted: a number or a percentage.
    target: Spanned<Threshold>,
}

/// `[rule.anomaly]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnomaly {
    history: Option<Dur>,
    season: Option<Season>,
    min_history: Option<Dur>,
    direction: Option<Direction>,
    min_spread: Option<f64>,
}

/// The rule's aggregation: `last` without a name; a table given for another aggregation than
/// its own is refused where it stands.
pub(super) fn aggregation(
    name: Option<&Spanned<String>>,
    timeleft: Option<&Spanned<RawTimeLeft>>,
    anomaly: Option<&Spanned<RawAnomaly>>,
) -> Result<Aggregation, Failure> {
    let params = Params {
        timeleft: timeleft.map(|t| TimeLeft::new(t.get_ref().target.get_ref().0)),
        anomaly: anomaly.map(|a| {
            let a = a.get_ref();
            let mut out = Anomaly::default();
            if let Some(h) = a.history {
                out.history = h.0;
            }
            out.season = a.season.unwrap_or_default();
            out.min_history = a.min_history.map(|d| d.0);
            out.direction = a.direction.unwrap_or_default();
            out.min_spread = a.min_spread.unwrap_or(0.0);
            out
        }),
    };
    let aggregation = match name {
        None => Aggregation::Last,
        Some(n) => Aggregation::parse_with(n.get_ref(), &params)
            .map_err(|e| fail(n.span(), "aggregation", e))?,
    };
    let stray = |table: &'static str, span: Range<usize>| {
        fail(
            span,
            table,
            format!("[rule.{table}] applies only to aggregation = \"{table}\""),
        )
    };
    if let (Some(t), false) = (timeleft, matches!(aggregation, Aggregation::TimeLeft(_))) {
        return Err(stray("timeleft", t.span()));
    }
    if let (Some(a), false) = (anomaly, matches!(aggregation, Aggregation::Anomaly(_))) {
        return Err(stray("anomaly", a.span()));
    }
    Ok(aggregation)
}
