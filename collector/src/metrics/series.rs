//! One series: its identity and its cells, in a single allocation shared by the registry and
//! every handle to it.

use std::sync::Arc;

#[cfg(feature = "serde")]
use serde::Serialize;

use super::Labels;

/// The three kinds of metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum MetricKind {
    /// Monotonic `u64`.
    Counter,
    /// `f64` that goes up and down.
    Gauge,
    /// Distribution of `f64` observations.
    Histogram,
}

impl std::fmt::Display for MetricKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        })
    }
}

/// Identifies one series for as long as it exists; never reused within a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct SeriesId(pub(crate) u64);

impl SeriesId {
    /// The number behind the id.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for SeriesId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A series of cells `C`: a counter's, a gauge's or a histogram's.
pub(crate) struct Series<C> {
    pub(crate) id: SeriesId,
    /// The metric name, shared by every series of the metric.
    pub(crate) name: Arc<str>,
    pub(crate) labels: Labels,
    pub(crate) cells: C,
}
