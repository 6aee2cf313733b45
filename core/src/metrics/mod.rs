//! The lock-free metrics collector: counters, gauges and histograms with labels.
//!
//! A [`Registry`] resolves a name and labels to a series once and hands back a cheap handle.
//! Recording through a handle never locks and never blocks: each thread writes its own
//! cache-padded cell (see `slot`), readers sum the cells. A [`Snapshot`] reads every series
//! without stopping writers.

// Without `monitor` nothing reads what the evaluator and the pipeline read (watches, the
// per-series readers, events) nor the crate-wide names for them: kept, not warned about.
#![cfg_attr(not(feature = "monitor"), allow(dead_code, unused_imports))]

pub mod buckets;
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
pub(crate) use name::{validate_labels, validate_metric_name};
pub(crate) use registry::SeriesReader;
pub use registry::{DROPPED_VALUES_TOTAL, Registry, RegistryConfig, SeriesInfo};
pub use series::{MetricKind, SeriesId};
pub use snapshot::{HistogramSnapshot, SeriesSnapshot, Snapshot, Value};
pub(crate) use watch::{WatchBounds, WatchEvent};
