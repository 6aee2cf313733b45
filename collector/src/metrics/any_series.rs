//! A series of any kind, as the registry's lock-free set holds it, hashed and compared by name
//! and labels the way a borrowed `LookupKey` is.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::Labels;
use super::counter::CounterCells;
use super::gauge::GaugeCell;
use super::histogram::HistogramCells;
use super::key::{LookupKey, label_digest_of};
use super::series::{MetricKind, Series, SeriesId};
use super::snapshot::Value;
use super::watch::Watch;

/// A series of any kind: what the registry's set holds.
#[derive(Clone)]
pub(crate) enum AnySeries {
    Counter(Arc<Series<CounterCells>>),
    Gauge(Arc<Series<GaugeCell>>),
    Histogram(Arc<Series<HistogramCells>>),
}

impl AnySeries {
    pub(crate) fn id(&self) -> SeriesId {
        match self {
            AnySeries::Counter(s) => s.id,
            AnySeries::Gauge(s) => s.id,
            AnySeries::Histogram(s) => s.id,
        }
    }

    pub(crate) fn name(&self) -> &Arc<str> {
        match self {
            AnySeries::Counter(s) => &s.name,
            AnySeries::Gauge(s) => &s.name,
            AnySeries::Histogram(s) => &s.name,
        }
    }

    pub(crate) fn labels(&self) -> &Labels {
        match self {
            AnySeries::Counter(s) => &s.labels,
            AnySeries::Gauge(s) => &s.labels,
            AnySeries::Histogram(s) => &s.labels,
        }
    }

    pub(crate) fn kind(&self) -> MetricKind {
        match self {
            AnySeries::Counter(_) => MetricKind::Counter,
            AnySeries::Gauge(_) => MetricKind::Gauge,
            AnySeries::Histogram(_) => MetricKind::Histogram,
        }
    }

    pub(crate) fn value(&self) -> Value {
        match self {
            AnySeries::Counter(s) => Value::Counter(s.cells.value()),
            AnySeries::Gauge(s) => Value::Gauge(s.cells.value()),
            AnySeries::Histogram(s) => Value::Histogram(s.cells.snapshot()),
        }
    }

    pub(crate) fn watch(&self) -> Option<&Watch> {
        match self {
            AnySeries::Counter(_) => None,
            AnySeries::Gauge(s) => Some(&s.cells.watch),
            AnySeries::Histogram(s) => Some(&s.cells.watch),
        }
    }
}

// Hash and equality by name and labels, the same way a `LookupKey` hashes, so a lookup with
// borrowed, unsorted labels finds the series.
impl Hash for AnySeries {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.name().as_bytes());
        state.write_u64(label_digest_of(self.labels()));
    }
}

impl PartialEq for AnySeries {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.labels() == other.labels()
    }
}

impl Eq for AnySeries {}

impl papaya::Equivalent<AnySeries> for LookupKey<'_> {
    fn equivalent(&self, series: &AnySeries) -> bool {
        **series.name() == *self.name && series.labels().matches_exactly(self.labels)
    }
}
