//! The lock-free metrics collector: counters, gauges and histograms with labels.
//!
//! A [`Registry`] resolves a name and labels to a series once and hands back a cheap handle.
//! Recording through a handle never locks and never blocks: each thread writes its own
//! cache-padded cell (see `slot`), readers sum the cells. A [`Snapshot`] reads every series
//! without stopping writers.

mod any_series;
pub mod buckets;
mod by_name;
mod cells;
mod counter;
mod describe;
mod error;
mod gauge;
mod histogram;
mod key;
#[cfg(all(test, vigilo_loom))]
mod loom;
mod name;
mod registry;
mod series;
#[doc(hidden)]
pub mod site;
mod slot;
mod snapshot;
mod watch;

pub use counter::{Counter, LocalCounter};
pub use describe::Description;
pub use error::MetricError;
pub use gauge::Gauge;
pub use histogram::Histogram;
pub use key::Labels;
#[doc(hidden)]
pub use name::{validate_labels, validate_metric_name};
#[doc(hidden)]
pub use registry::SeriesReader;
pub use registry::{DROPPED_VALUES_TOTAL, Registry, RegistryConfig, SeriesInfo};
pub use series::{MetricKind, SeriesId};
pub use snapshot::{HistogramSnapshot, SeriesSnapshot, Snapshot, Value};
#[doc(hidden)]
pub use watch::{WatchBounds, WatchEvent};
