//! Which side of a threshold is bad: what a rule and its aggregation both read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which side of a threshold is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    /// Values strictly above the threshold fire (CPU, latency, disk usage).
    #[default]
    Above,
    /// Values strictly below the threshold fire (free space, throughput, liveness).
    Below,
}

impl Comparison {
    /// True if `value` is past `threshold` on the bad side.
    #[inline]
    pub fn fires(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::Below => value < threshold,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Comparison::Above => "above",
            Comparison::Below => "below",
        })
    }
}
