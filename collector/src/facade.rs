//! The [`metrics`] facade: a recorder that feeds a vigilo [`Registry`], so crates instrumented
//! with `metrics::counter!`, `gauge!`, `histogram!` and `describe_*!` (metrics 0.24) are watched by
//! vigilo rules without changing a line of them.
//!
//! What the recorder does with what the facade gives it:
//!
//! - **Names.** A `metrics` name may hold any character (`http.requests`, `cache-hits`); a vigilo
//!   name must match `[a-zA-Z_:][a-zA-Z0-9_:]*`. Every other character becomes `_`, and a name
//!   starting with a digit gets a `_` in front: a rule on `http.requests` refers to
//!   `http_requests` ([`metric_name`]). Label names likewise, without `:` ([`label_name`]); label
//!   values are kept as they are. Two names that map to the same one (`a.b`, `a_b`) are one
//!   series.
//! - **Kinds.** `counter!` records into a vigilo [`Counter`], `gauge!` into a
//!   [`Gauge`], `histogram!` into a [`Histogram`], resolved once
//!   per key (then cached, see below). A counter's `absolute(n)` raises the total to `n` if it is
//!   below and otherwise does nothing: a vigilo counter never goes down (as the `metrics` crate's
//!   own atomic counter, a `fetch_max`). Concurrent `absolute` calls are serialized, so two of
//!   them never both add the same difference; an `increment` between its read and its add counts
//!   on top.
//! - **Refusals.** What the registry refuses (a name invalid even after mapping, such as an empty
//!   one; a reserved `__` label; a label given twice; a name already registered as another kind;
//!   the cardinality limit) never panics: the macro gets a no-op handle, the refusal is counted in
//!   [`REJECTED_TOTAL`]`{reason}` and logged once per metric name and reason (`log::warn!`,
//!   target `vigilo::facade`). The series `{reason="cardinality_limit"}` is created with the
//!   recorder, so it exists when the registry is full.
//! - **Descriptions.** `describe_*!(name, unit, help)` becomes [`Registry::describe`]; the unit is
//!   [`Unit::as_str`]'s Prometheus-style word (`seconds`, `milliseconds`, `bytes`, `percent`,
//!   `bits_per_second` …), except [`Unit::Count`], which is no unit (a count is what a counter is).
//!   Values are not converted: a histogram described in milliseconds holds milliseconds.
//! - **Cost.** `metrics::counter!(…)` asks the recorder for a handle at every call, so the
//!   recorder caches handles per `metrics` key, hashed with the key's precomputed hash: first in
//!   the calling thread's own cache (at most 256 keys; a hit takes no lock, no guard and no shared
//!   write, and the handle's reference count is the thread's own), then in a lock-free map shared
//!   by the threads; only a key new to both is mapped and resolved in the registry. A cached
//!   handle is used only while the registry's generation has not moved since it was resolved,
//!   so a series [removed](Registry::remove) from the registry is created again by the next call
//!   (a handle kept by the caller, as any vigilo handle, goes on recording into the removed
//!   series). Entries resolved before the last change are dropped from the shared map when it
//!   grows past twice its size after the previous clean-up (and 1024 keys), so it stays within a
//!   small factor of the live series.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{Key, KeyName, Metadata, SharedString, Unit};

use crate::metrics::{MetricError, MetricKind, Registry};
use crate::{Counter, Gauge, Histogram};

/// The counter where refused registrations are counted, by `reason`: `invalid_name`,
/// `invalid_label`, `kind_mismatch`, `cardinality_limit` or `other`.
pub const REJECTED_TOTAL: &str = "vigilo_facade_rejected_total";

/// Metric names and reasons warned about at most (beyond, refusals are only counted).
const MAX_WARNED: usize = 1024;

/// The cache is cleaned up once it holds more keys than this, at the least.
const MIN_SWEEP: usize = 1024;

/// A [`metrics::Recorder`] that records into a vigilo [`Registry`]: what the `metrics` macros
/// record becomes series that rules watch (see the [module](self) for the mapping).
///
/// Install it for the whole process with [`install`](Self::install), or for one thread and one
/// closure with [`metrics::with_local_recorder`] (tests, or a library that must not touch the
/// global recorder). Clones share one cache and one registry.
///
/// ```
/// # use vigilo_collector as vigilo;
/// use vigilo::Registry;
/// use vigilo::facade::RegistryRecorder;
///
/// // A library instrumented with the `metrics` crate only.
/// fn handle_request(ms: f64) {
///     metrics::counter!("http.requests", "method" => "GET").increment(1);
///     metrics::histogram!("http.duration_seconds").record(ms / 1000.0);
/// }
///
/// let registry = Registry::new();
/// let recorder = RegistryRecorder::new(registry.clone());
/// metrics::with_local_recorder(&recorder, || {
///     metrics::describe_histogram!("http.duration_seconds", metrics::Unit::Seconds, "Time to answer");
///     handle_request(12.0);
///     handle_request(30.0);
/// });
///
/// // Dots became underscores: a rule on this counter names `http_requests`.
/// assert_eq!(registry.counter("http_requests", &[("method", "GET")])?.value(), 2);
/// let latency = registry.histogram("http_duration_seconds", &[])?.snapshot();
/// assert_eq!(latency.count(), 2);
/// let described = registry.description("http_duration_seconds").unwrap();
/// assert_eq!(described.unit.as_deref(), Some("seconds"));
/// # Ok::<(), vigilo::MetricError>(())
/// ```
///
/// For the whole process, once, at start:
///
/// ```no_run
/// # use vigilo_collector as vigilo;
/// let registry = vigilo::Registry::new();
/// vigilo::facade::RegistryRecorder::new(registry.clone()).install()?;
/// metrics::counter!("jobs.done").increment(1); // from any thread, into `registry`
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RegistryRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    /// Tells this recorder's entries in the per-thread caches from other recorders' (never
    /// reused, unlike an address).
    id: u64,
    registry: Registry,
    /// Resolved handles by `metrics` key.
    cache: papaya::HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>,
    /// Clean the cache up when it holds more keys than this.
    sweep_at: AtomicUsize,
    /// Metric names and reasons already warned about.
    warned: Mutex<HashSet<(String, Reason)>>,
}

/// A resolved series and the registry generation it was resolved at: while the registry's
/// generation has not moved, no series was removed, so the handle still records into a live
/// series.
struct Entry {
    series: Resolved,
    generation: u64,
}

/// A vigilo handle, as resolved.
#[derive(Clone)]
enum Resolved {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

/// A vigilo handle wrapped for the `metrics` handles, one per thread.
#[derive(Clone)]
enum Handle {
    Counter(Arc<FacadeCounter>),
    Gauge(Arc<FacadeGauge>),
    Histogram(Arc<FacadeHistogram>),
}

impl RegistryRecorder {
    /// A recorder into `registry` (pass a clone: the registry is shared). Creates the series
    /// [`REJECTED_TOTAL`]`{reason="cardinality_limit"}`.
    pub fn new(registry: Registry) -> Self {
        // Made now, so a refusal at the cardinality limit can still be counted. If the registry
        // is already full it cannot be, and such refusals are only logged.
        let _ = registry.counter(
            REJECTED_TOTAL,
            &[("reason", Reason::CardinalityLimit.as_str())],
        );
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        RegistryRecorder {
            inner: Arc::new(Inner {
                // Relaxed: only uniqueness matters.
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                registry,
                cache: papaya::HashMap::with_hasher(BuildHasherDefault::default()),
                sweep_at: AtomicUsize::new(MIN_SWEEP),
                warned: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// The registry this recorder records into.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Installs this recorder as the process-wide `metrics` recorder
    /// ([`metrics::set_global_recorder`]). Fails, giving the recorder back in the error, if a
    /// global recorder was already installed. Metrics registered before, and handles obtained
    /// before, stay with the recorder they were registered with.
    pub fn install(self) -> Result<(), metrics::SetRecorderError<Self>> {
        metrics::set_global_recorder(self)
    }
}

impl std::fmt::Debug for RegistryRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryRecorder")
            .field("registry", &self.inner.registry)
            .field("cached_keys", &self.inner.cache.len())
            .finish()
    }
}

impl metrics::Recorder for RegistryRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe(key.as_str(), unit, &description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe(key.as_str(), unit, &description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe(key.as_str(), unit, &description);
    }

    #[inline]
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        match self.inner.handle(key, MetricKind::Counter) {
            Some(Handle::Counter(c)) => metrics::Counter::from_arc(c),
            _ => metrics::Counter::noop(),
        }
    }

    #[inline]
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        match self.inner.handle(key, MetricKind::Gauge) {
            Some(Handle::Gauge(g)) => metrics::Gauge::from_arc(g),
            _ => metrics::Gauge::noop(),
        }
    }

    #[inline]
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        match self.inner.handle(key, MetricKind::Histogram) {
            Some(Handle::Histogram(h)) => metrics::Histogram::from_arc(h),
            _ => metrics::Histogram::noop(),
        }
    }
}

impl Inner {
    /// The handle of `kind` for `key`: from the cache while it is current, else resolved. `None`
    /// if the registry refused it.
    #[inline]
    fn handle(&self, key: &Key, kind: MetricKind) -> Option<Handle> {
        let generation = self.registry.generation();
        // The thread's own cache first: no lock, no guard, no shared write.
        let near = NEAR.try_with(|near| {
            let near = near.try_borrow().ok()?;
            let entry = near.get(&near_hash(key, self.id))?;
            (entry.recorder == self.id
                && entry.generation == generation
                && entry.handle.kind() == kind
                && same_key(&entry.key, key))
            .then(|| entry.handle.clone())
        });
        if let Ok(Some(handle)) = near {
            return Some(handle);
        }
        self.handle_shared(key, kind, generation)
    }

    /// The handle from the shared cache, or resolved; then kept in the thread's cache.
    #[inline(never)]
    fn handle_shared(&self, key: &Key, kind: MetricKind, generation: u64) -> Option<Handle> {
        let cached = {
            let cache = self.cache.pin();
            cache
                .get(key)
                .filter(|entry| entry.series.kind() == kind && entry.generation == generation)
                .map(|entry| entry.series.clone())
        };
        let (series, generation) = match cached {
            Some(series) => (series, generation),
            None => self.resolve(key, kind)?,
        };
        // The thread's own wrapper: the reference count every call takes and drops stays in
        // this thread's cache lines.
        let handle = series.wrap();
        // If the thread's cache is being torn down (thread exit) or borrowed, do without it.
        let _ = NEAR.try_with(|near| {
            if let Ok(mut near) = near.try_borrow_mut() {
                let at = near_hash(key, self.id);
                if near.len() >= NEAR_MAX && !near.contains_key(&at) {
                    near.clear();
                }
                near.insert(
                    at,
                    NearEntry {
                        recorder: self.id,
                        generation,
                        key: key.clone(),
                        handle: handle.clone(),
                    },
                );
            }
        });
        Some(handle)
    }

    /// Resolves `key` in the registry and caches the series; with the generation it is current
    /// at.
    #[cold]
    fn resolve(&self, key: &Key, kind: MetricKind) -> Option<(Resolved, u64)> {
        // Read before resolving: if a series is removed meanwhile, the generation has moved past
        // this one and the entry is resolved again at its next use.
        let generation = self.registry.generation();
        let name = metric_name(key.name());
        let label_names: Vec<Cow<'_, str>> = key.labels().map(|l| label_name(l.key())).collect();
        let labels: Vec<(&str, &str)> = label_names
            .iter()
            .zip(key.labels())
            .map(|(name, label)| (&**name, label.value()))
            .collect();
        let registry = &self.registry;
        let resolved = match kind {
            MetricKind::Counter => registry.counter(&name, &labels).map(Resolved::Counter),
            MetricKind::Gauge => registry.gauge(&name, &labels).map(Resolved::Gauge),
            MetricKind::Histogram => registry.histogram(&name, &labels).map(Resolved::Histogram),
        };
        match resolved {
            Ok(series) => {
                self.cache_entry(key, series.clone(), generation);
                Some((series, generation))
            }
            Err(error) => {
                self.reject(&name, &error);
                None
            }
        }
    }

    fn cache_entry(&self, key: &Key, series: Resolved, generation: u64) {
        let cache = self.cache.pin();
        cache.insert(key.clone(), Entry { series, generation });
        if cache.len() > self.sweep_at.load(Ordering::Relaxed) {
            // Entries resolved before the registry last changed may hold removed series; the
            // live ones among them are resolved again at their next use.
            let now = self.registry.generation();
            cache.retain(|_, entry| entry.generation == now);
            self.sweep_at
                .store(MIN_SWEEP.max(2 * cache.len()), Ordering::Relaxed);
        }
    }

    fn describe(&self, name: &str, unit: Option<Unit>, help: &str) {
        let name = metric_name(name);
        if let Err(error) = self
            .registry
            .describe(&name, unit.and_then(unit_word), help)
        {
            self.reject(&name, &error);
        }
    }

    /// Counts and (once per name and reason) logs a refusal.
    #[cold]
    fn reject(&self, name: &str, error: &MetricError) {
        let reason = Reason::of(error);
        // By name: no allocation once the series exists; if it cannot be made, nothing to do.
        let _ = self
            .registry
            .add_counter(REJECTED_TOTAL, &[("reason", reason.as_str())], 1);
        let first = {
            let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
            warned.len() < MAX_WARNED && warned.insert((name.to_owned(), reason))
        };
        if first {
            log::warn!(
                "metrics facade: {error}; recording into `{name}` through the `metrics` macros does nothing (counted in {REJECTED_TOTAL}{{reason=\"{}\"}})",
                reason.as_str()
            );
        }
    }
}

impl Resolved {
    /// A new wrapper for the `metrics` handles.
    fn wrap(&self) -> Handle {
        match self {
            Resolved::Counter(c) => Handle::Counter(Arc::new(FacadeCounter(c.clone()))),
            Resolved::Gauge(g) => Handle::Gauge(Arc::new(FacadeGauge(g.clone()))),
            Resolved::Histogram(h) => Handle::Histogram(Arc::new(FacadeHistogram(h.clone()))),
        }
    }

    fn kind(&self) -> MetricKind {
        match self {
            Resolved::Counter(_) => MetricKind::Counter,
            Resolved::Gauge(_) => MetricKind::Gauge,
            Resolved::Histogram(_) => MetricKind::Histogram,
        }
    }
}

impl Handle {
    fn kind(&self) -> MetricKind {
        match self {
            Handle::Counter(_) => MetricKind::Counter,
            Handle::Gauge(_) => MetricKind::Gauge,
            Handle::Histogram(_) => MetricKind::Histogram,
        }
    }
}

/// The most entries in one thread's cache; a thread that records into more keys starts it over.
const NEAR_MAX: usize = 256;

thread_local! {
    /// Each thread's cache in front of the recorders' shared ones, by key hash mixed with the
    /// recorder's id: a hit costs no guard and no shared write, and the handle's reference count
    /// is the thread's own. Holds at most [`NEAR_MAX`] entries; an entry whose series was removed
    /// keeps that series' memory until it is replaced, the cache starts over, or the thread ends.
    static NEAR: RefCell<HashMap<u64, NearEntry, BuildHasherDefault<KeyHasher>>> =
        const { RefCell::new(HashMap::with_hasher(BuildHasherDefault::new())) };
}

/// One entry of a thread's cache (two keys with the same hash take turns).
struct NearEntry {
    recorder: u64,
    generation: u64,
    key: Key,
    handle: Handle,
}

/// `a == b`, without comparing the strings when both are the same static strings (the key a
/// macro call site keeps in a `static`, and its clone).
#[inline]
fn same_key(a: &Key, b: &Key) -> bool {
    if a.get_hash() != b.get_hash() {
        return false;
    }
    let (a_labels, b_labels) = (a.labels().as_slice(), b.labels().as_slice());
    let identical = std::ptr::eq(a.name(), b.name())
        && (std::ptr::eq(a_labels, b_labels)
            || (a_labels.len() == b_labels.len()
                && a_labels.iter().zip(b_labels).all(|(x, y)| {
                    std::ptr::eq(x.key(), y.key()) && std::ptr::eq(x.value(), y.value())
                })));
    identical || a == b
}

/// Where `key` of `recorder` goes in a thread's cache (the hasher passes it through).
#[inline]
fn near_hash(key: &Key, recorder: u64) -> u64 {
    key.get_hash() ^ recorder.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Why the registry refused a metric, as the `reason` label of [`REJECTED_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Reason {
    InvalidName,
    InvalidLabel,
    KindMismatch,
    CardinalityLimit,
    Other,
}

impl Reason {
    fn of(error: &MetricError) -> Self {
        match error {
            MetricError::InvalidName { .. } => Reason::InvalidName,
            MetricError::InvalidLabelName { .. } | MetricError::DuplicateLabel { .. } => {
                Reason::InvalidLabel
            }
            MetricError::KindMismatch { .. } => Reason::KindMismatch,
            MetricError::CardinalityLimit { .. } => Reason::CardinalityLimit,
            _ => Reason::Other,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidName => "invalid_name",
            Reason::InvalidLabel => "invalid_label",
            Reason::KindMismatch => "kind_mismatch",
            Reason::CardinalityLimit => "cardinality_limit",
            Reason::Other => "other",
        }
    }
}

/// Serializes `absolute` calls, so two of them never both add the same difference.
static ABSOLUTE: Mutex<()> = Mutex::new(());

/// A vigilo counter behind a `metrics::Counter`.
struct FacadeCounter(Counter);

impl metrics::CounterFn for FacadeCounter {
    #[inline]
    fn increment(&self, value: u64) {
        self.0.add(value);
    }

    /// Raises the total to `value` if it is below; a counter never goes down.
    fn absolute(&self, value: u64) {
        let _serial = ABSOLUTE.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.0.value();
        if value > current {
            self.0.add(value - current);
        }
    }
}

/// A vigilo gauge behind a `metrics::Gauge`.
struct FacadeGauge(Gauge);

impl metrics::GaugeFn for FacadeGauge {
    #[inline]
    fn increment(&self, value: f64) {
        self.0.add(value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.0.add(-value);
    }

    #[inline]
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

/// A vigilo histogram behind a `metrics::Histogram`.
struct FacadeHistogram(Histogram);

impl metrics::HistogramFn for FacadeHistogram {
    #[inline]
    fn record(&self, value: f64) {
        self.0.record(value);
    }
}

/// Passes a [`Key`]'s precomputed hash through (`Key`'s `Hash` writes only that `u64`).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Key`; FNV-1a for anything else.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The vigilo metric name for a `metrics` name: every character outside `[a-zA-Z0-9_:]` becomes
/// `_`, and a leading digit gets a `_` in front. Valid names are returned as they are; an empty
/// name stays empty (and is refused).
///
/// ```
/// # use vigilo_collector as vigilo;
/// use vigilo::facade::metric_name;
/// assert_eq!(metric_name("http.requests"), "http_requests");
/// assert_eq!(metric_name("cache-hits.total"), "cache_hits_total");
/// assert_eq!(metric_name("5xx.errors"), "_5xx_errors");
/// assert_eq!(metric_name("node:cpu_seconds"), "node:cpu_seconds");
/// ```
pub fn metric_name(name: &str) -> Cow<'_, str> {
    sanitize(name, true)
}

/// The vigilo label name for a `metrics` label name: as [`metric_name`], with `:` mapped too. A
/// name starting with `__` is reserved and stays as it is (and is refused).
///
/// ```
/// # use vigilo_collector as vigilo;
/// use vigilo::facade::label_name;
/// assert_eq!(label_name("status-code"), "status_code");
/// assert_eq!(label_name("a:b"), "a_b");
/// ```
pub fn label_name(name: &str) -> Cow<'_, str> {
    sanitize(name, false)
}

fn sanitize(name: &str, colon: bool) -> Cow<'_, str> {
    let inner = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
    let valid = match name.chars().next() {
        None => true,
        Some(first) => !first.is_ascii_digit() && name.chars().all(inner),
    };
    if valid {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    out.extend(name.chars().map(|c| if inner(c) { c } else { '_' }));
    Cow::Owned(out)
}

/// The Prometheus-style unit word for a `metrics` unit; `Count` is no unit.
fn unit_word(unit: Unit) -> Option<&'static str> {
    match unit {
        Unit::Count => None,
        other => Some(other.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitized_names_pass_the_registry() {
        let registry = Registry::new();
        for raw in ["a.b", "9lives", "x-y.z", "é", "ok_name", "a:b.c"] {
            let name = metric_name(raw);
            assert!(registry.counter(&name, &[]).is_ok(), "{raw} -> {name}");
        }
        for raw in ["a.b", "9", "x-y", "a:b"] {
            let label = label_name(raw);
            assert!(
                registry
                    .counter("labelled", &[(label.as_ref(), "v")])
                    .is_ok(),
                "{raw} -> {label}"
            );
        }
    }

    #[test]
    fn keys_of_removed_series_leave_the_cache() {
        let registry = Registry::new();
        let recorder = RegistryRecorder::new(registry.clone());
        let users: Vec<String> = (0..=MIN_SWEEP).map(|i| i.to_string()).collect();
        metrics::with_local_recorder(&recorder, || {
            for user in &users {
                metrics::counter!("sessions", "user" => user.clone()).increment(1);
                registry.remove("sessions", &[("user", user)]);
            }
        });
        // Past the threshold, the stale entries went; the cache is not the registry's history.
        assert!(recorder.inner.cache.len() < 10, "{recorder:?}");
        assert_eq!(registry.series_of("sessions").len(), 0);
    }

    #[test]
    fn units() {
        assert_eq!(unit_word(Unit::Seconds), Some("seconds"));
        assert_eq!(unit_word(Unit::Bytes), Some("bytes"));
        assert_eq!(unit_word(Unit::Count), None);
    }
}
