//! What the bench targets that compare with `metrics` share (included with `#[path]`, so the
//! benches' library keeps to `std` and `libc`).

#![allow(dead_code)] // each bench target uses part of it

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use metrics::{Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry as MetricsRegistry};
use metrics_util::storage::AtomicBucket;

/// A cell on its own cache lines, for the ideal-scaling reference.
#[repr(align(128))]
pub struct Padded(pub AtomicU64);

/// The `metrics` peer: a recorder over `metrics-util`'s sharded registry with atomic storage,
/// registering the way `metrics-exporter-prometheus` does (look up, clone the `Arc`).
pub struct AtomicRecorder {
    registry: MetricsRegistry<Key, AtomicStorage>,
}

impl AtomicRecorder {
    pub fn new() -> Self {
        AtomicRecorder {
            registry: MetricsRegistry::atomic(),
        }
    }

    /// The raw bucket behind a histogram, so a benchmark can drain it between samples the way an
    /// exporter's scrape or upkeep does (it otherwise grows by 8 bytes per record).
    pub fn histogram_bucket(&self, key: &Key) -> Arc<AtomicBucket<f64>> {
        self.registry.get_or_create_histogram(key, Arc::clone)
    }
}

impl Recorder for AtomicRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        self.registry
            .get_or_create_counter(key, |c| metrics::Counter::from_arc(Arc::clone(c)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        self.registry
            .get_or_create_gauge(key, |g| metrics::Gauge::from_arc(Arc::clone(g)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        self.registry
            .get_or_create_histogram(key, |h| metrics::Histogram::from_arc(Arc::clone(h)))
    }
}
