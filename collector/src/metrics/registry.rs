//! The registry: resolves name + labels to a series once, hands out handles, takes snapshots.
//!
//! Series live in one lock-free set, read without locking by every lookup, snapshot and sweep.
//! Creating and removing a series (cold paths: they allocate, or free) take one mutex, which
//! keeps the set, the per-metric kinds, the live count and the generation consistent with each
//! other: a remove cannot slip between the parts of a create.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use crossbeam_channel::Receiver;
use parking_lot::Mutex;
#[cfg(feature = "serde")]
use serde::Serialize;

use super::any_series::AnySeries;
use super::by_name;
use super::counter::CounterCells;
use super::describe::{Description, Descriptions};
use super::gauge::GaugeCell;
use super::histogram::HistogramCells;
use super::key::LookupKey;
use super::name::{validate_labels, validate_metric_name};
use super::series::{MetricKind, Series, SeriesId};
use super::snapshot::{SeriesSnapshot, Snapshot, Value};
use super::watch::{Hub, Watch, WatchBounds, WatchEvent};
use super::{Counter, Gauge, Histogram, Labels, MetricError};
use crate::sync;

/// The counter where infallible records count the NaN and infinite values they drop, one series
/// per metric (label `metric`).
pub const DROPPED_VALUES_TOTAL: &str = "vigilo_dropped_values_total";

/// Registry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RegistryConfig {
    /// The most series the registry holds; creating one more fails with
    /// [`MetricError::CardinalityLimit`]. Default 100 000.
    ///
    /// What a series costs (resident memory, measured by `benches/benches/memory.rs`, see
    /// `BENCHMARKS.md`), whatever the number of cores:
    ///
    /// | series | until recorded into | recorded by 1 thread | by any number of threads |
    /// |---|---|---|---|
    /// | counter | 250 B | 1.3 KiB | 1 KiB more per 8 write slots that record (9.6 KB measured with 64 threads), at most 33 KB |
    /// | gauge | 200 B | 200 B | 200 B |
    /// | histogram | 0.7 KiB | 1.5 KiB + 0.5 KiB per power-of-two range of values | the same again per write slot that records (198 KB measured with 64 threads over 4 ranges), at most 256 shards and one shared by threads without a slot |
    ///
    /// Every thread recording into a counter or histogram gets a cell (a shard) of its own, up to
    /// the 256 write slots, like its own stack: the series recorded by the most threads cost the
    /// most. For counters: at the default limit, 100 000 counters cost 25 MB
    /// until recorded into, 130 MB recorded by one thread, and 960 MB if every one of them were
    /// recorded by 64 threads.
    pub max_series: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_series: 100_000,
        }
    }
}

/// A read handle on one series, for the evaluator: reads without a lookup.
#[derive(Clone)]
#[doc(hidden)]
pub struct SeriesReader(pub(super) AnySeries);

impl SeriesReader {
    pub fn id(&self) -> SeriesId {
        self.0.id()
    }

    pub fn name(&self) -> &Arc<str> {
        self.0.name()
    }

    pub fn labels(&self) -> &Labels {
        self.0.labels()
    }

    pub fn kind(&self) -> MetricKind {
        self.0.kind()
    }

    pub fn value(&self) -> Value {
        self.0.value()
    }

    /// A counter's total or a gauge's value, cheaply; `None` for a histogram.
    #[inline]
    pub fn scalar(&self) -> Option<f64> {
        match &self.0 {
            AnySeries::Counter(s) => Some(s.cells.value() as f64),
            AnySeries::Gauge(s) => Some(s.cells.value()),
            AnySeries::Histogram(_) => None,
        }
    }

    /// A histogram's observation count (cheap: no buckets read); `None` for the other kinds.
    pub fn histogram_count(&self) -> Option<u64> {
        match &self.0 {
            AnySeries::Histogram(s) => Some(s.cells.count()),
            _ => None,
        }
    }

    /// Stores `bounds` in the series' watch; false for a counter (it has none). Before relying
    /// on it, the caller issues `sync::heavy_barrier` and asks [`missed`](Self::missed).
    pub fn arm(&self, bounds: WatchBounds) -> bool {
        self.0.watch().map(|w| w.arm(bounds)).is_some()
    }

    pub fn disarm(&self) {
        if let Some(w) = self.0.watch() {
            w.disarm();
        }
    }

    /// After [`arm`](Self::arm) and a heavy barrier: true if a record may have slipped past the
    /// new bounds (recorded before the recorder could see them): a gauge whose value is past them
    /// (or, for bounds that any record crosses, that was recorded since the last sample), a
    /// histogram whose count moved from `histogram_count_at_sample`. The barrier pair makes this
    /// exact in one direction: a record the watch did not see is visible here (see `watch.rs`).
    pub fn missed(&self, bounds: WatchBounds, histogram_count_at_sample: u64) -> bool {
        match &self.0 {
            AnySeries::Counter(_) => false,
            AnySeries::Gauge(s) if bounds.is_any_record() => s.cells.is_fresh(),
            AnySeries::Gauge(s) => bounds.crossed_by(s.cells.value()),
            AnySeries::Histogram(s) => s.cells.count() != histogram_count_at_sample,
        }
    }

    /// For a gauge, true if it was recorded since the last call (one consumer only: the
    /// evaluator).
    #[inline]
    pub fn take_fresh(&self) -> bool {
        match &self.0 {
            AnySeries::Gauge(s) => s.cells.take_fresh(),
            _ => false,
        }
    }
}

impl std::fmt::Debug for SeriesReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeriesReader({}{})", self.name(), self.labels())
    }
}

/// A series' identity, as listed by [`Registry::series_of`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize))]
pub struct SeriesInfo {
    /// The series' id.
    pub id: SeriesId,
    /// Its metric kind.
    pub kind: MetricKind,
    /// Its labels.
    pub labels: Labels,
}

/// A number that moves whenever a series is added or removed.
pub(crate) struct Generation(sync::AtomicU64);

impl Generation {
    pub(crate) fn new() -> Self {
        Generation(sync::AtomicU64::new(0))
    }

    /// After a series was added to or removed from the set.
    pub(crate) fn bump(&self) {
        // Release: whoever reads the new number (Acquire, in `get`) also sees the change to the
        // set that came before it, so a reader that caches the number never caches it without
        // the series it stands for.
        self.0.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn get(&self) -> u64 {
        // Acquire: pairs with `bump`.
        self.0.load(Ordering::Acquire)
    }
}

/// One metric name: its kind, its interned name, its live series.
struct Family {
    kind: MetricKind,
    name: Arc<str>,
    live: usize,
}

/// What create and remove change together, under one lock.
struct Writers {
    families: HashMap<Arc<str>, Family>,
    next_id: u64,
}

struct Inner {
    config: RegistryConfig,
    series: papaya::HashSet<AnySeries, foldhash::fast::RandomState>,
    writers: Mutex<Writers>,
    /// Live series (written under `writers`, read without it).
    count: AtomicUsize,
    generation: Generation,
    hub: Arc<Hub>,
    descriptions: Descriptions,
    /// Unique among the registries of the process, for caches keyed by registry.
    uid: u64,
}

/// The next registry's `uid`. Relaxed: only the uniqueness of each number matters, which the
/// atomic add gives.
static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Resolves a metric name and labels to a series and records into it.
///
/// Handles ([`Counter`], [`Gauge`], [`Histogram`]) are resolved once and then record without any
/// lookup; recording by name (`add_counter`, `set_gauge`, `record_histogram`) looks the series up
/// in a lock-free set each time, without allocating once the series exists. Cloning a `Registry`
/// gives another reference to the same series.
///
/// ```
/// # use vigilo_collector as vigilo;
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
        let inner = Arc::new_cyclic(|me: &Weak<Inner>| {
            let hub = Arc::new(Hub::default());
            let me = me.clone();
            hub.on_dropped_value(Box::new(move |metric| {
                if let Some(inner) = me.upgrade() {
                    // Best effort: at the series limit, the drop goes uncounted.
                    let _ = Registry { inner }.add_counter(
                        DROPPED_VALUES_TOTAL,
                        &[("metric", metric)],
                        1,
                    );
                }
            }));
            Inner {
                config,
                series: papaya::HashSet::with_hasher(foldhash::fast::RandomState::default()),
                writers: Mutex::new(Writers {
                    families: HashMap::new(),
                    next_id: 1,
                }),
                count: AtomicUsize::new(0),
                generation: Generation::new(),
                hub,
                descriptions: Descriptions::default(),
                uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            }
        });
        Registry { inner }
    }

    /// Says what metric `name` measures: `help` (one line) and its `unit` (`seconds`, `bytes`
    /// …), shown by exporters as HELP and UNIT. The name need not have series yet; describing
    /// it again replaces the description. An empty unit counts as none.
    ///
    /// ```
    /// # use vigilo_collector as vigilo;
    /// let registry = vigilo::Registry::new();
    /// registry.describe("request_duration_seconds", Some("seconds"), "Time to answer a request")?;
    /// let d = registry.description("request_duration_seconds").unwrap();
    /// assert_eq!(d.unit.as_deref(), Some("seconds"));
    /// # Ok::<(), vigilo::MetricError>(())
    /// ```
    pub fn describe(&self, name: &str, unit: Option<&str>, help: &str) -> Result<(), MetricError> {
        validate_metric_name(name)?;
        let unit = unit.filter(|u| !u.is_empty()).map(str::to_owned);
        self.inner.descriptions.set(
            name,
            Description {
                help: help.to_owned(),
                unit,
            },
        );
        Ok(())
    }

    /// The description of metric `name`, if it was [described](Self::describe).
    pub fn description(&self, name: &str) -> Option<Description> {
        self.inner.descriptions.get(name)
    }

    /// The kind of metric `name`, if a series of it lives. Takes the create lock: for a
    /// transition's or a status's unit, never on the record path.
    pub fn kind_of(&self, name: &str) -> Option<MetricKind> {
        self.inner.writers.lock().families.get(name).map(|f| f.kind)
    }

    /// Every description, by metric name.
    pub fn descriptions(&self) -> HashMap<Arc<str>, Description> {
        self.inner.descriptions.all()
    }

    /// The configuration this registry was made with.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// The counter series `name{labels}`, created if new.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Result<Counter, MetricError> {
        self.with_series(name, labels, MetricKind::Counter, |s| match s {
            AnySeries::Counter(s) => Some(Counter {
                series: Arc::clone(s),
            }),
            _ => None,
        })
    }

    /// The gauge series `name{labels}`, created if new (starting at 0).
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Result<Gauge, MetricError> {
        self.with_series(name, labels, MetricKind::Gauge, |s| match s {
            AnySeries::Gauge(s) => Some(Gauge {
                series: Arc::clone(s),
            }),
            _ => None,
        })
    }

    /// The histogram series `name{labels}`, created if new.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Result<Histogram, MetricError> {
        self.with_series(name, labels, MetricKind::Histogram, |s| match s {
            AnySeries::Histogram(s) => Some(Histogram {
                series: Arc::clone(s),
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
        self.with_series(name, labels, MetricKind::Counter, |s| match s {
            AnySeries::Counter(s) => {
                s.cells.add(n);
                Some(())
            }
            _ => None,
        })
    }

    /// Sets the gauge `name{labels}` without a handle. A NaN or infinite value is refused with
    /// [`MetricError::NonFinite`] (and creates nothing).
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
        self.with_series(name, labels, MetricKind::Gauge, |s| match s {
            AnySeries::Gauge(s) => {
                s.set_finite(value);
                Some(())
            }
            _ => None,
        })
    }

    /// Records `value` into the histogram `name{labels}` without a handle. A NaN or infinite
    /// value is refused with [`MetricError::NonFinite`] (and creates nothing).
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
        self.with_series(name, labels, MetricKind::Histogram, |s| match s {
            AnySeries::Histogram(s) => {
                s.record_checked(value);
                Some(())
            }
            _ => None,
        })
    }

    /// Finds or creates the series and applies `f` to it; `f` returns `None` on a kind
    /// mismatch.
    #[inline]
    fn with_series<R>(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        kind: MetricKind,
        f: impl FnOnce(&AnySeries) -> Option<R>,
    ) -> Result<R, MetricError> {
        let uid = self.inner.uid;
        // Read before the lookup: an entry remembered with it is found again only while no
        // series was created or removed since (see `by_name`).
        let generation = self.inner.generation.get();
        let mut f = Some(f);
        let found = match by_name::with_cached(uid, generation, name, labels, |s| {
            (f.take().and_then(|f| f(s)), s.kind())
        }) {
            Some(hit) => hit,
            None => {
                let series = self.lookup_or_create(name, labels, kind)?;
                by_name::remember(uid, generation, name, labels, &series);
                (f.take().and_then(|f| f(&series)), series.kind())
            }
        };
        let (result, existing) = found;
        result.ok_or_else(|| MetricError::KindMismatch {
            name: name.to_owned(),
            existing,
            requested: kind,
        })
    }

    /// The series `name{labels}` from the set, created (as `kind`) if new.
    fn lookup_or_create(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        kind: MetricKind,
    ) -> Result<AnySeries, MetricError> {
        let set = self.inner.series.pin();
        match set.get(&LookupKey { name, labels }) {
            Some(s) => Ok(s.clone()),
            None => {
                drop(set);
                self.create(name, labels, kind)
            }
        }
    }

    #[cold]
    fn create(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        kind: MetricKind,
    ) -> Result<AnySeries, MetricError> {
        validate_metric_name(name)?;
        validate_labels(name, labels)?;
        let inner = &*self.inner;
        let mut writers = inner.writers.lock();
        // Created by another thread meanwhile?
        if let Some(s) = inner.series.pin().get(&LookupKey { name, labels }) {
            return Ok(s.clone());
        }
        // The limit first: nothing, not even the metric's family, grows beyond it.
        let limit = inner.config.max_series;
        // Relaxed: `count` is only written under `writers`, which we hold.
        if inner.count.load(Ordering::Relaxed) >= limit {
            return Err(MetricError::CardinalityLimit {
                name: name.to_owned(),
                limit,
            });
        }
        if let Some(family) = writers.families.get(name)
            && family.kind != kind
        {
            return Err(MetricError::KindMismatch {
                name: name.to_owned(),
                existing: family.kind,
                requested: kind,
            });
        }
        let id = SeriesId(writers.next_id);
        writers.next_id += 1;
        let family = writers
            .families
            .entry(Arc::from(name))
            .or_insert_with_key(|name| Family {
                kind,
                name: Arc::clone(name),
                live: 0,
            });
        family.live += 1;
        let name = Arc::clone(&family.name);
        let labels = Labels::from_pairs(labels);
        let watch = || Watch::new(Arc::clone(&inner.hub));
        let series = match kind {
            MetricKind::Counter => AnySeries::Counter(Arc::new(Series {
                id,
                name,
                labels,
                cells: CounterCells::new(),
            })),
            MetricKind::Gauge => AnySeries::Gauge(Arc::new(Series {
                id,
                name,
                labels,
                cells: GaugeCell::new(watch()),
            })),
            MetricKind::Histogram => AnySeries::Histogram(Arc::new(Series {
                id,
                name,
                labels,
                cells: HistogramCells::new(watch()),
            })),
        };
        inner.series.pin().insert(series.clone());
        // Relaxed: written under `writers`; readers only use it as a statistic.
        inner.count.fetch_add(1, Ordering::Relaxed);
        inner.generation.bump();
        drop(writers);
        inner.hub.series_added();
        Ok(series)
    }

    /// Removes the series `name{labels}`; true if it existed. Handles to it keep working but
    /// record into a detached series that no snapshot shows.
    pub fn remove(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        let inner = &*self.inner;
        let mut writers = inner.writers.lock();
        let key = LookupKey { name, labels };
        let set = inner.series.pin();
        if !set.remove(&key) {
            return false;
        }
        drop(set);
        if let Some(family) = writers.families.get_mut(name) {
            family.live = family.live.saturating_sub(1);
            if family.live == 0 {
                // The name is free again, for any kind.
                writers.families.remove(name);
            }
        }
        // Relaxed: see `create`.
        inner.count.fetch_sub(1, Ordering::Relaxed);
        inner.generation.bump();
        true
    }

    /// This registry's number, unique in the process (clones share it).
    pub(crate) fn uid(&self) -> u64 {
        self.inner.uid
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
    /// series list and refresh it only when this moves. Whoever reads a number also sees every
    /// series added or removed before it moved to that number.
    pub fn generation(&self) -> u64 {
        self.inner.generation.get()
    }

    /// Every series, read without stopping any writer, sorted by name then labels.
    pub fn snapshot(&self) -> Snapshot {
        let series = self.read_all();
        // Each label set is parsed once, not at every comparison of the sort.
        let mut order: Vec<(usize, Vec<(&str, &str)>)> = series
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.labels.iter().collect()))
            .collect();
        order.sort_by(|(a, la), (b, lb)| {
            series[*a]
                .name
                .cmp(&series[*b].name)
                .then_with(|| la.cmp(lb))
        });
        let order: Vec<usize> = order.into_iter().map(|(i, _)| i).collect();
        let mut slots: Vec<Option<SeriesSnapshot>> = series.into_iter().map(Some).collect();
        let series = order.into_iter().filter_map(|i| slots[i].take()).collect();
        Snapshot { series }
    }

    /// Every series for an exposition: grouped by name (sorted), and within a name in a
    /// stable order that is cheaper to sort by than [`snapshot`](Self::snapshot)'s.
    pub(crate) fn snapshot_for_exposition(&self) -> Vec<SeriesSnapshot> {
        let mut series = self.read_all();
        series.sort_unstable_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.labels.encoded().cmp(b.labels.encoded()))
        });
        series
    }

    /// Every series, in no particular order.
    fn read_all(&self) -> Vec<SeriesSnapshot> {
        self.inner
            .series
            .pin()
            .iter()
            .map(|s| SeriesSnapshot {
                id: s.id(),
                name: Arc::clone(s.name()),
                labels: s.labels().clone(),
                value: s.value(),
            })
            .collect()
    }

    /// Read handles on every live series, in no particular order.
    #[doc(hidden)]
    pub fn readers(&self) -> Vec<SeriesReader> {
        self.inner
            .series
            .pin()
            .iter()
            .map(|s| SeriesReader(s.clone()))
            .collect()
    }

    /// The series of metric `name`, in no particular order.
    pub fn series_of(&self, name: &str) -> Vec<SeriesInfo> {
        self.inner
            .series
            .pin()
            .iter()
            .filter(|s| &**s.name() == name)
            .map(|s| SeriesInfo {
                id: s.id(),
                kind: s.kind(),
                labels: s.labels().clone(),
            })
            .collect()
    }

    /// The names of all metrics with at least one live series, sorted.
    pub fn metric_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self
            .inner
            .series
            .pin()
            .iter()
            .map(|s| Arc::clone(s.name()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Connects the watch channel (the evaluator's): fired watches are sent to the returned
    /// receiver (bounded at `capacity`; when it is full the event is counted and
    /// `take_watch_overflow` turns true). `None` if a receiver was already connected.
    #[doc(hidden)]
    pub fn watch_events(&self, capacity: usize) -> Option<Receiver<WatchEvent>> {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        self.inner.hub.connect(tx).then_some(rx)
    }

    /// True if watch events were dropped because the channel was full since the last call.
    #[doc(hidden)]
    pub fn take_watch_overflow(&self) -> bool {
        self.inner.hub.take_overflow()
    }

    /// How many watch events were dropped because the channel was full.
    #[doc(hidden)]
    pub fn watch_events_dropped(&self) -> u64 {
        self.inner.hub.events_dropped()
    }

    /// Metric names with a family entry (for tests of the cardinality limit).
    #[cfg(test)]
    fn families(&self) -> usize {
        self.inner.writers.lock().families.len()
    }
}

#[cfg(all(test, not(vigilo_loom)))]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_new_names_grow_nothing() {
        let r = Registry::with_config(RegistryConfig { max_series: 2 });
        r.counter("a_total", &[]).unwrap_or_else(|e| panic!("{e}"));
        r.counter("b_total", &[]).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..1000 {
            let err = r.counter(&format!("n{i}_total"), &[]).err();
            assert!(matches!(err, Some(MetricError::CardinalityLimit { .. })));
        }
        assert_eq!(r.families(), 2);
        // Removing a metric's last series frees its name.
        assert!(r.remove("a_total", &[]));
        assert_eq!(r.families(), 1);
        assert!(
            r.gauge("a_total", &[]).is_ok(),
            "the name may take another kind now"
        );
    }

    #[test]
    fn a_series_costs_its_cells_only_once_recorded_into() {
        let r = Registry::new();
        let c = r.counter("c_total", &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.series.cells.allocated_bytes(), 0);
        c.increment();
        // The test threads of this binary hold slots of their own: past the first 64, a
        // series also allocates its table of further chunks (24 pointers for a counter, 192
        // for a histogram's shards); without a slot (past 256) only the one shared cell.
        let slot = crate::metrics::slot::current();
        let past_64 = slot.is_some_and(|s| s >= crate::metrics::cells::LOW_SLOTS);
        let expected = match slot {
            None => 128,
            Some(_) if past_64 => 8 * 128 + 24 * size_of::<usize>(),
            Some(_) => 8 * 128,
        };
        assert_eq!(
            c.series.cells.allocated_bytes(),
            expected,
            "one chunk of 8 cells"
        );
        let h = r
            .histogram("h_seconds", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.series.cells.allocated_bytes(), 0);
        h.record(0.5);
        let one = h.series.cells.allocated_bytes();
        let table = if past_64 { 192 * size_of::<usize>() } else { 0 };
        assert!(one < 2048 + table, "one shard and one block: {one}");
    }

    /// A series allocates cells for the threads that record into it, no more, and the totals
    /// stay exact.
    #[test]
    fn many_recording_threads_pay_for_their_own_cells_only() {
        use std::sync::Barrier;
        let r = Registry::new();
        let c = r.counter("c_total", &[]).unwrap_or_else(|e| panic!("{e}"));
        let h = r
            .histogram("h_seconds", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let threads = 40;
        let start = Arc::new(Barrier::new(threads));
        let done = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (c, h) = (c.clone(), h.clone());
                let (start, done) = (Arc::clone(&start), Arc::clone(&done));
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..1000 {
                        c.increment();
                        h.record(0.25);
                    }
                    done.wait();
                })
            })
            .collect();
        for t in handles {
            t.join()
                .unwrap_or_else(|_| panic!("a recording thread panicked"));
        }
        assert_eq!(c.value(), 40_000);
        assert_eq!(h.snapshot().count(), 40_000);
        // Every recording thread has a counter cell of its own: no shared cell. Which slots the 40
        // threads hold depends on the other tests' threads, so the chunks are bounded by the
        // thread count and by the 32 chunks of 8 slots.
        let counter = c.series.cells.allocated_bytes();
        assert!(
            counter <= 32 * 8 * 128 + 24 * 8,
            "at most 32 chunks and the table past 64 slots: {counter}"
        );
        let histogram = h.series.cells.allocated_bytes();
        assert!(
            histogram <= 40 * (1024 + 512) + 192 * 8,
            "a shard per thread and the table past 64 slots: {histogram}"
        );
    }
}
