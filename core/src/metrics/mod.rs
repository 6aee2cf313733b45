//! The lock-free metrics collector: counters, gauges and histograms with labels.
//!
//! A [`Registry`] resolves a name and labels to a series once and hands back a cheap handle.
//! Recording through a handle never locks and never blocks: each thread writes its own
//! cache-padded cell (see `slot`), readers sum the cells. A [`Snapshot`] reads every series
//! without stopping writers.

pub mod buckets;
mod counter;
mod error;
mod gauge;
mod histogram;
mod key;
mod name;
mod registry;
mod slot;
mod snapshot;
mod watch;

pub use counter::Counter;
pub use error::MetricError;
pub use gauge::Gauge;
pub use histogram::Histogram;
pub use key::Labels;
pub(crate) use name::validate_metric_name;
pub use registry::{MetricKind, Registry, RegistryConfig, SeriesId, SeriesInfo, SeriesReader};
pub use snapshot::{HistogramSnapshot, SeriesSnapshot, Snapshot, Value};
pub use watch::{WatchBounds, WatchEvent};
