//! The registry: resolves name + labels to a series once, hands out handles, takes snapshots.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_channel::Receiver;
use serde::Serialize;

use super::counter::CounterCells;
use super::gauge::GaugeCell;
use super::histogram::HistogramCells;
use super::key::{LookupKey, SeriesKey};
use super::name::{validate_labels, validate_metric_name};
use super::snapshot::{SeriesSnapshot, Snapshot, Value};
use super::watch::{Watch, WatchBounds, WatchEvent, WatchHub};
use super::{Counter, Gauge, Histogram, Labels, MetricError};

/// The three kinds of metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SeriesId(pub u64);

impl std::fmt::Display for SeriesId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Registry settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// The most series the registry holds; creating one more fails with
    /// [`MetricError::CardinalityLimit`]. Default 100 000.
    pub max_series: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_series: 100_000,
        }
    }
}

/// The cells of a series, by kind.
#[derive(Clone)]
pub(crate) enum Cells {
    Counter(Arc<CounterCells>),
    Gauge(Arc<GaugeCell>),
    Histogram(Arc<HistogramCells>),
}

impl Cells {
    fn kind(&self) -> MetricKind {
        match self {
            Cells::Counter(_) => MetricKind::Counter,
            Cells::Gauge(_) => MetricKind::Gauge,
            Cells::Histogram(_) => MetricKind::Histogram,
        }
    }

    fn value(&self) -> Value {
        match self {
            Cells::Counter(c) => Value::Counter(c.value()),
            Cells::Gauge(g) => Value::Gauge(g.value()),
            Cells::Histogram(h) => Value::Histogram(h.snapshot()),
        }
    }

    fn watch(&self) -> Option<&Watch> {
        match self {
            Cells::Counter(_) => None,
            Cells::Gauge(g) => Some(&g.watch),
            Cells::Histogram(h) => Some(&h.watch),
        }
    }
}

/// One series.
pub(crate) struct Series {
    id: SeriesId,
    key: SeriesKey,
    cells: Cells,
}

/// A read handle on one series, for samplers such as the evaluator: reads without a map lookup.
#[derive(Clone)]
pub struct SeriesReader {
    series: Arc<Series>,
    /// The cells, one pointer hop closer than through `series`.
    cells: Cells,
}

impl SeriesReader {
    fn new(series: &Arc<Series>) -> Self {
        SeriesReader {
            series: Arc::clone(series),
            cells: series.cells.clone(),
        }
    }
}

impl SeriesReader {
    /// The series' id.
    pub fn id(&self) -> SeriesId {
        self.series.id
    }

    /// Its metric name.
    pub fn name(&self) -> &Arc<str> {
        &self.series.key.name
    }

    /// Its labels.
    pub fn labels(&self) -> &Labels {
        &self.series.key.labels
    }

    /// Its kind.
    pub fn kind(&self) -> MetricKind {
        self.cells.kind()
    }

    /// Its current value.
    pub fn value(&self) -> Value {
        self.cells.value()
    }

    /// A counter's total or a gauge's value, cheaply; `None` for a histogram.
    #[inline]
    pub fn scalar(&self) -> Option<f64> {
        match &self.cells {
            Cells::Counter(c) => Some(c.value() as f64),
            Cells::Gauge(g) => Some(g.value()),
            Cells::Histogram(_) => None,
        }
    }

    /// Arms the series' watch (see [`Registry::arm`]); false for a counter.
    pub fn arm(&self, bounds: WatchBounds) -> bool {
        self.cells.watch().map(|w| w.arm(bounds)).is_some()
    }

    /// Disarms the series' watch.
    pub fn disarm(&self) {
        if let Some(w) = self.cells.watch() {
            w.disarm();
        }
    }

    /// For a gauge, true if it was recorded since the last [`take_fresh`](Self::take_fresh),
    /// without consuming it; false for counters and histograms (their samplers compare values).
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        match &self.cells {
            Cells::Gauge(g) => g.is_fresh(),
            _ => false,
        }
    }

    /// For a gauge, true if it was recorded since the last call (one consumer only: the
    /// evaluator). Counters and histograms always answer true; their samplers compare values.
    #[inline]
    pub fn take_fresh(&self) -> bool {
        match &self.cells {
            Cells::Gauge(g) => g.take_fresh(),
            _ => true,
        }
    }
}

impl std::fmt::Debug for SeriesReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SeriesReader({}{})",
            self.series.key.name, self.series.key.labels
        )
    }
}

/// A series' identity, as listed by [`Registry::series_of`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesInfo {
    /// The series' id.
    pub id: SeriesId,
    /// Its metric kind.
    pub kind: MetricKind,
    /// Its labels.
    pub labels: Labels,
}

type Map<K, V> = papaya::HashMap<K, V, foldhash::fast::RandomState>;

struct Inner {
    config: RegistryConfig,
    series: Map<SeriesKey, Arc<Series>>,
    by_id: Map<SeriesId, Arc<Series>>,
    /// The kind each metric name was first registered as.
    families: Map<Arc<str>, MetricKind>,
    /// Live series, for the cardinality limit.
    count: AtomicUsize,
    next_id: AtomicU64,
    /// Bumped whenever a series is added or removed.
    generation: AtomicU64,
    hub: Arc<WatchHub>,
}

/// Resolves a metric name and labels to a series and records into it.
///
/// Handles ([`Counter`], [`Gauge`], [`Histogram`]) are resolved once and then record without any
/// lookup; recording by name (`add_counter`, `set_gauge`, `record_histogram`) looks the series up
/// in a lock-free map each time, without allocating once the series exists. Cloning a `Registry`
/// gives another reference to the same series.
///
/// ```
/// use vigilo::{Registry, metrics::Value};
///
/// let registry = Registry::new();
/// let hits = registry.counter("cache_hits_total", &[("cache", "users")])?;
/// hits.increment();
/// registry.add_counter("cache_hits_total", &[("cache", "users")], 2)?;
/// registry.set_gauge("temperature_celsius", &[("room", "a")], 21.5)?;
///
/// let snapshot = registry.snapshot();
/// let series = snapshot.get("cache_hits_total", &[("cache", "users")]).unwrap();
/// assert_eq!(series.value, Value::Counter(3));
/// # Ok::<(), vigilo::MetricError>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("series", &self.len())
            .finish()
    }
}

impl Registry {
    /// A registry with the default configuration.
    pub fn new() -> Self {
        Self::with_config(RegistryConfig::default())
    }

    /// A registry with the given configuration.
    pub fn with_config(config: RegistryConfig) -> Self {
        Registry {
            inner: Arc::new(Inner {
                config,
                series: Map::default(),
                by_id: Map::default(),
                families: Map::default(),
                count: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                generation: AtomicU64::new(0),
                hub: Arc::new(WatchHub::default()),
            }),
        }
    }

    /// The configuration this registry was made with.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// The counter series `name{labels}`, created if new.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Result<Counter, MetricError> {
        self.with_series(name, labels, MetricKind::Counter, |s| match &s.cells {
            Cells::Counter(c) => Some(Counter {
                cells: Arc::clone(c),
            }),
            _ => None,
        })
    }

    /// The gauge series `name{labels}`, created if new (starting at 0).
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Result<Gauge, MetricError> {
        self.with_series(name, labels, MetricKind::Gauge, |s| match &s.cells {
            Cells::Gauge(g) => Some(Gauge {
                cell: Arc::clone(g),
            }),
            _ => None,
        })
    }

    /// The histogram series `name{labels}`, created if new.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Result<Histogram, MetricError> {
        self.with_series(name, labels, MetricKind::Histogram, |s| match &s.cells {
            Cells::Histogram(h) => Some(Histogram {
                cells: Arc::clone(h),
            }),
            _ => None,
        })
    }

    /// Adds `n` to the counter `name{labels}` without a handle.
    pub fn add_counter(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        n: u64,
    ) -> Result<(), MetricError> {
        self.with_series(name, labels, MetricKind::Counter, |s| match &s.cells {
            Cells::Counter(c) => {
                c.add(n);
                Some(())
            }
            _ => None,
        })
    }

    /// Sets the gauge `name{labels}` without a handle.
    pub fn set_gauge(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) -> Result<(), MetricError> {
        // Checked before the lookup so a bad value never creates a series.
        if !value.is_finite() {
            return Err(MetricError::NonFinite {
                metric: name.to_owned(),
                value,
            });
        }
        self.with_series(name, labels, MetricKind::Gauge, |s| match &s.cells {
            Cells::Gauge(g) => {
                g.set_finite(value);
                Some(())
            }
            _ => None,
        })
    }

    /// Records `value` into the histogram `name{labels}` without a handle.
    pub fn record_histogram(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) -> Result<(), MetricError> {
        if !value.is_finite() {
            return Err(MetricError::NonFinite {
                metric: name.to_owned(),
                value,
            });
        }
        self.with_series(name, labels, MetricKind::Histogram, |s| match &s.cells {
            Cells::Histogram(h) => {
                h.record_finite(value);
                Some(())
            }
            _ => None,
        })
    }

    /// Finds or creates the series and applies `f` to it; `f` returns `None` only on a kind
    /// mismatch, which the lookup has already ruled out.
    #[inline]
    fn with_series<R>(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        kind: MetricKind,
        f: impl FnOnce(&Series) -> Option<R>,
    ) -> Result<R, MetricError> {
        let series = self.inner.series.pin();
        let found = series.get(&LookupKey { name, labels });
        let result = match found {
            Some(s) => f(s),
            None => {
                drop(series);
                let created = self.create(name, labels, kind)?;
                f(&created)
            }
        };
        result.ok_or_else(|| self.kind_mismatch(name, kind))
    }

    fn kind_mismatch(&self, name: &str, requested: MetricKind) -> MetricError {
        let existing = self
            .inner
            .families
            .pin()
            .get(name)
            .copied()
            .unwrap_or(requested);
        MetricError::KindMismatch {
            name: name.to_owned(),
            existing,
            requested,
        }
    }

    #[cold]
    fn create(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        kind: MetricKind,
    ) -> Result<Arc<Series>, MetricError> {
        validate_metric_name(name)?;
        validate_labels(name, labels)?;
        let inner = &*self.inner;
        let families = inner.families.pin();
        let existing = *families.get_or_insert(Arc::from(name), kind);
        if existing != kind {
            return Err(MetricError::KindMismatch {
                name: name.to_owned(),
                existing,
                requested: kind,
            });
        }
        // Relaxed: the count only enforces a limit; no other memory depends on it.
        let limit = inner.config.max_series;
        if inner.count.fetch_add(1, Ordering::Relaxed) >= limit {
            inner.count.fetch_sub(1, Ordering::Relaxed);
            return Err(MetricError::CardinalityLimit {
                name: name.to_owned(),
                limit,
            });
        }
        // Relaxed: ids need uniqueness only.
        let id = SeriesId(inner.next_id.fetch_add(1, Ordering::Relaxed));
        let key = SeriesKey {
            name: Arc::from(name),
            labels: Labels::from_pairs(labels),
        };
        let watch = || Watch::new(id, Arc::clone(&inner.hub));
        let cells = match kind {
            MetricKind::Counter => Cells::Counter(Arc::new(CounterCells::new())),
            MetricKind::Gauge => {
                Cells::Gauge(Arc::new(GaugeCell::new(Arc::clone(&key.name), watch())))
            }
            MetricKind::Histogram => Cells::Histogram(Arc::new(HistogramCells::new(
                Arc::clone(&key.name),
                watch(),
            ))),
        };
        let series = Arc::new(Series {
            id,
            key: key.clone(),
            cells,
        });
        match inner.series.pin().try_insert(key, Arc::clone(&series)) {
            Ok(_) => {
                inner.by_id.pin().insert(id, Arc::clone(&series));
                // Relaxed: a change counter read by pollers that then read the maps themselves.
                inner.generation.fetch_add(1, Ordering::Relaxed);
                Ok(series)
            }
            Err(occupied) => {
                // Another thread created it first: use theirs.
                inner.count.fetch_sub(1, Ordering::Relaxed);
                Ok(Arc::clone(occupied.current))
            }
        }
    }

    /// Removes the series `name{labels}`; true if it existed. Handles to it keep working but
    /// record into a detached series that no snapshot shows.
    pub fn remove(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        let inner = &*self.inner;
        let removed = inner
            .series
            .pin()
            .remove(&LookupKey { name, labels })
            .cloned();
        match removed {
            Some(series) => {
                inner.by_id.pin().remove(&series.id);
                // Relaxed: see `create`.
                inner.count.fetch_sub(1, Ordering::Relaxed);
                inner.generation.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Number of live series.
    pub fn len(&self) -> usize {
        // Relaxed: a statistic.
        self.inner.count.load(Ordering::Relaxed)
    }

    /// True if there are no series.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A number that changes whenever a series is added or removed, so a reader can cache the
    /// series list and refresh it only when this moves.
    pub fn generation(&self) -> u64 {
        // Relaxed: see `create`.
        self.inner.generation.load(Ordering::Relaxed)
    }

    /// Every series, read without stopping any writer, sorted by name then labels.
    pub fn snapshot(&self) -> Snapshot {
        let by_id = self.inner.by_id.pin();
        let mut series: Vec<SeriesSnapshot> = by_id
            .values()
            .map(|s| SeriesSnapshot {
                id: s.id,
                name: Arc::clone(&s.key.name),
                labels: s.key.labels.clone(),
                value: s.cells.value(),
            })
            .collect();
        series.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.labels.iter().cmp(b.labels.iter()))
        });
        Snapshot { series }
    }

    /// The current value of one series.
    pub fn read(&self, id: SeriesId) -> Option<Value> {
        self.inner.by_id.pin().get(&id).map(|s| s.cells.value())
    }

    /// A read handle on series `id`, if it exists.
    pub fn reader(&self, id: SeriesId) -> Option<SeriesReader> {
        self.inner.by_id.pin().get(&id).map(SeriesReader::new)
    }

    /// Read handles on every live series, in no particular order.
    pub fn readers(&self) -> Vec<SeriesReader> {
        self.inner
            .by_id
            .pin()
            .values()
            .map(SeriesReader::new)
            .collect()
    }

    /// The series of metric `name`, in no particular order.
    pub fn series_of(&self, name: &str) -> Vec<SeriesInfo> {
        self.inner
            .by_id
            .pin()
            .values()
            .filter(|s| &*s.key.name == name)
            .map(|s| SeriesInfo {
                id: s.id,
                kind: s.cells.kind(),
                labels: s.key.labels.clone(),
            })
            .collect()
    }

    /// The names of all metrics with at least one live series, sorted.
    pub fn metric_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self
            .inner
            .by_id
            .pin()
            .values()
            .map(|s| Arc::clone(&s.key.name))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Connects the watch channel: fired watches are sent to the returned receiver (bounded at
    /// `capacity`; when it is full the event is counted in [`watch_events_dropped`] and
    /// [`take_watch_overflow`] turns true). `None` if a receiver was already connected.
    ///
    /// [`watch_events_dropped`]: Self::watch_events_dropped
    /// [`take_watch_overflow`]: Self::take_watch_overflow
    pub fn watch_events(&self, capacity: usize) -> Option<Receiver<WatchEvent>> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        self.inner.hub.connect(tx).then_some(rx)
    }

    /// Arms a watch on a gauge or histogram series: the next record at or beyond a bound sends
    /// one [`WatchEvent`] and disarms it.
    pub fn arm(&self, id: SeriesId, bounds: WatchBounds) -> Result<(), MetricError> {
        let by_id = self.inner.by_id.pin();
        let series = by_id.get(&id).ok_or(MetricError::UnknownSeries(id.0))?;
        let watch = series
            .cells
            .watch()
            .ok_or(MetricError::NotWatchable(id.0))?;
        watch.arm(bounds);
        Ok(())
    }

    /// Disarms a series' watch (no-op for counters and unknown ids).
    pub fn disarm(&self, id: SeriesId) {
        if let Some(watch) = self
            .inner
            .by_id
            .pin()
            .get(&id)
            .and_then(|s| s.cells.watch())
        {
            watch.disarm();
        }
    }

    /// True if watch events were dropped because the channel was full since the last call.
    pub fn take_watch_overflow(&self) -> bool {
        self.inner.hub.take_overflow()
    }

    /// How many watch events were dropped because the channel was full.
    pub fn watch_events_dropped(&self) -> u64 {
        self.inner.hub.dropped()
    }
}
