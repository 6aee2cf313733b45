//! Call-site caches for recording by name: what [`counter!`](crate::counter),
//! [`gauge!`](crate::gauge) and [`histogram!`](crate::histogram) expand to.
//!
//! Each macro call site owns a small cache per thread: the handles of the last few label values
//! it recorded, with the registry and the registry generation they were resolved at. A call
//! whose values are cached compares them (strings, no hashing), reads the generation (one
//! atomic load) and records through the handle; anything else resolves by name as
//! [`Registry::counter`] does and caches the handle.
//!
//! The generation moves whenever a series is created or removed, so a removed series is never
//! recorded into from a cache (the first call after the change resolves again, into the same
//! entry). A program that keeps creating series therefore pays the by-name lookup plus the
//! values' comparison on those calls; it allocates only for label values new to the site.

use std::cell::RefCell;
use std::thread::LocalKey;

use super::{Counter, Gauge, Histogram, MetricError, Registry};

/// How many label-value sets one call site remembers per thread.
const ENTRIES: usize = 8;

/// A handle kind the macros resolve: [`Counter`], [`Gauge`] or [`Histogram`].
pub trait Resolve: Sized + sealed::Sealed {
    /// Finds or creates the series `name{labels}` of this kind.
    fn resolve(
        registry: &Registry,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<Self, MetricError>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Counter {}
    impl Sealed for super::Gauge {}
    impl Sealed for super::Histogram {}
}

impl Resolve for Counter {
    fn resolve(r: &Registry, name: &str, labels: &[(&str, &str)]) -> Result<Self, MetricError> {
        r.counter(name, labels)
    }
}

impl Resolve for Gauge {
    fn resolve(r: &Registry, name: &str, labels: &[(&str, &str)]) -> Result<Self, MetricError> {
        r.gauge(name, labels)
    }
}

impl Resolve for Histogram {
    fn resolve(r: &Registry, name: &str, labels: &[(&str, &str)]) -> Result<Self, MetricError> {
        r.histogram(name, labels)
    }
}

/// What the macros accept as the registry: a [`Registry`] or a reference to one.
#[doc(hidden)]
pub trait AsRegistry {
    /// The registry.
    fn as_registry(&self) -> &Registry;
}

impl AsRegistry for Registry {
    fn as_registry(&self) -> &Registry {
        self
    }
}

impl<T: AsRegistry + ?Sized> AsRegistry for &T {
    fn as_registry(&self) -> &Registry {
        (**self).as_registry()
    }
}

/// One call site's cache on one thread (a `thread_local!` the macros declare).
#[doc(hidden)]
pub struct Site<H> {
    entries: RefCell<Entries<H>>,
}

struct Entries<H> {
    list: Vec<Entry<H>>,
    /// The next entry to replace once the list is full.
    next: usize,
}

struct Entry<H> {
    registry: u64,
    generation: u64,
    /// The label values, one after the other in `joined`, each `ends[i]` bytes from its start:
    /// one allocation to compare against, not one per value.
    joined: Box<str>,
    ends: Box<[u32]>,
    handle: H,
}

impl<H> Entry<H> {
    fn holds<const N: usize>(&self, registry: u64, labels: &[(&str, &str); N]) -> bool {
        if self.registry != registry || self.ends.len() != N {
            return false;
        }
        let mut start = 0;
        for ((_, v), &end) in labels.iter().zip(self.ends.iter()) {
            let end = end as usize;
            // Lengths first: most different values differ in length or first bytes.
            if end - start != v.len()
                || self.joined.as_bytes().get(start..end) != Some(v.as_bytes())
            {
                return false;
            }
            start = end;
        }
        true
    }
}

impl<H> Site<H> {
    /// An empty cache.
    pub const fn new() -> Self {
        Site {
            entries: RefCell::new(Entries {
                list: Vec::new(),
                next: 0,
            }),
        }
    }
}

impl<H> Default for Site<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: Resolve> Site<H> {
    /// Applies `f` to the handle of `name{labels}` in `registry`, cached or resolved.
    #[inline]
    fn with<const N: usize, R>(
        &self,
        registry: &Registry,
        name: &str,
        labels: &[(&str, &str); N],
        f: impl FnOnce(&H) -> R,
    ) -> Result<R, MetricError> {
        let uid = registry.uid();
        let generation = registry.generation();
        // A recording that re-enters this site (none does today) resolves without the cache.
        let Ok(mut entries) = self.entries.try_borrow_mut() else {
            return H::resolve(registry, name, labels).map(|h| f(&h));
        };
        let at = entries.list.iter().position(|e| e.holds(uid, labels));
        if let Some(e) = at.and_then(|i| entries.list.get_mut(i)) {
            if e.generation == generation {
                return Ok(f(&e.handle));
            }
            // The registry moved (a series was created or removed somewhere): resolve again,
            // into the same entry, without allocating.
            let handle = H::resolve(registry, name, labels)?;
            let out = f(&handle);
            e.handle = handle;
            e.generation = generation;
            return Ok(out);
        }
        let handle = H::resolve(registry, name, labels)?;
        let out = f(&handle);
        let mut joined = String::new();
        let mut ends = Vec::with_capacity(N);
        for (_, v) in labels {
            joined.push_str(v);
            // Label values are far below 4 GiB; a longer one is simply not cached.
            match u32::try_from(joined.len()) {
                Ok(end) => ends.push(end),
                Err(_) => return Ok(out),
            }
        }
        let entry = Entry {
            registry: uid,
            generation,
            joined: joined.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            handle,
        };
        if entries.list.len() < ENTRIES {
            entries.list.push(entry);
        } else {
            let i = entries.next % ENTRIES;
            entries.next = i + 1;
            if let Some(slot) = entries.list.get_mut(i) {
                *slot = entry;
            }
        }
        Ok(out)
    }
}

/// One macro call: the series it names, resolved when an operation is applied.
///
/// Made by [`counter!`](crate::counter), [`gauge!`](crate::gauge) and
/// [`histogram!`](crate::histogram); apply an operation to it at once.
#[must_use = "a call does nothing until an operation (increment, set, record …) is applied"]
pub struct Call<'a, H: 'static, const N: usize> {
    site: &'static LocalKey<Site<H>>,
    registry: &'a Registry,
    name: &'static str,
    labels: [(&'static str, &'a str); N],
}

impl<'a, H: Resolve + 'static, const N: usize> Call<'a, H, N> {
    #[doc(hidden)]
    pub fn new(
        site: &'static LocalKey<Site<H>>,
        registry: &'a Registry,
        name: &'static str,
        labels: [(&'static str, &'a str); N],
    ) -> Self {
        Call {
            site,
            registry,
            name,
            labels,
        }
    }

    /// Applies `op` to the series' handle, cached or resolved.
    #[inline]
    fn apply(self, op: impl FnOnce(&H) -> Result<(), MetricError>) -> Result<(), MetricError> {
        let Call {
            site,
            registry,
            name,
            labels,
        } = self;
        let mut op = Some(op);
        let cached = site.try_with(|s| op.take().map(|op| s.with(registry, name, &labels, op)));
        match (cached, op) {
            (Ok(Some(r)), _) => r.and_then(|r| r),
            // The thread's caches are being torn down (a thread-local destructor records):
            // resolve by name.
            (_, Some(op)) => H::resolve(registry, name, &labels).and_then(|h| op(&h)),
            // `op` is taken only inside the closure, which then returns `Some`.
            (_, None) => Ok(()),
        }
    }

    /// The handle itself (a clone of the cached one), to keep and record through.
    pub fn handle(self) -> Result<H, MetricError>
    where
        H: Clone,
    {
        let (registry, name, labels) = (self.registry, self.name, self.labels);
        let mut out = None;
        self.apply(|h| {
            out = Some(h.clone());
            Ok(())
        })?;
        match out {
            Some(h) => Ok(h),
            None => H::resolve(registry, name, &labels),
        }
    }

    fn non_finite(&self, value: f64) -> Result<(), MetricError> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(MetricError::NonFinite {
                metric: self.name.to_owned(),
                value,
            })
        }
    }
}

impl<const N: usize> Call<'_, Counter, N> {
    /// Adds one.
    pub fn increment(self) -> Result<(), MetricError> {
        self.add(1)
    }

    /// Adds `n`.
    #[allow(clippy::should_implement_trait)] // the handle's name for it: `Counter::add`
    pub fn add(self, n: u64) -> Result<(), MetricError> {
        self.apply(|c| {
            c.add(n);
            Ok(())
        })
    }
}

impl<const N: usize> Call<'_, Gauge, N> {
    /// Sets the value; NaN or infinite is refused with [`MetricError::NonFinite`] and creates
    /// nothing.
    pub fn set(self, value: f64) -> Result<(), MetricError> {
        self.non_finite(value)?;
        self.apply(|g| g.try_set(value))
    }

    /// Adds `delta` (negative to subtract); NaN or infinite is refused.
    #[allow(clippy::should_implement_trait)] // the handle's name for it: `Gauge::add`
    pub fn add(self, delta: f64) -> Result<(), MetricError> {
        self.non_finite(delta)?;
        self.apply(|g| g.try_add(delta))
    }
}

impl<const N: usize> Call<'_, Histogram, N> {
    /// Records one observation; NaN or infinite is refused with [`MetricError::NonFinite`]
    /// and creates nothing.
    pub fn record(self, value: f64) -> Result<(), MetricError> {
        self.non_finite(value)?;
        self.apply(|h| h.try_record(value))
    }
}

/// Records into the counter `name{labels}` of a registry, with the handle cached at the call
/// site: `counter!(registry, "name", "label" => value, …)` then `.increment()`, `.add(n)` or
/// `.handle()`.
///
/// The name and label names are literals; label values are anything that gives a `&str`.
/// Each call site keeps, per thread, the handles of the last 8 sets of label values it saw, so
/// a hot path with a few label values pays a string comparison instead of a lookup. The same
/// series as [`Registry::counter`] and [`Registry::add_counter`] with those labels.
///
/// ```
/// # use vigilo_collector as vigilo;
/// let registry = vigilo::Registry::new();
/// for status in ["200", "200", "503"] {
///     vigilo::counter!(registry, "http_requests_total", "method" => "GET", "status" => status)
///         .increment()?;
/// }
/// let ok = registry.counter("http_requests_total", &[("method", "GET"), ("status", "200")])?;
/// assert_eq!(ok.value(), 2);
/// # Ok::<(), vigilo::MetricError>(())
/// ```
#[macro_export]
macro_rules! counter {
    ($registry:expr, $name:literal $(, $key:literal => $value:expr)* $(,)?) => {
        $crate::__site_call!($crate::Counter, $registry, $name $(, $key => $value)*)
    };
}

/// Sets a gauge `name{labels}` of a registry, with the handle cached at the call site:
/// `gauge!(registry, "name", "label" => value, …)` then `.set(v)`, `.add(d)` or `.handle()`.
/// See [`counter!`](crate::counter) for the cache.
///
/// ```
/// # use vigilo_collector as vigilo;
/// let registry = vigilo::Registry::new();
/// vigilo::gauge!(registry, "queue_depth", "queue" => "mail").set(12.0)?;
/// assert!(vigilo::gauge!(registry, "queue_depth", "queue" => "mail").set(f64::NAN).is_err());
/// # Ok::<(), vigilo::MetricError>(())
/// ```
#[macro_export]
macro_rules! gauge {
    ($registry:expr, $name:literal $(, $key:literal => $value:expr)* $(,)?) => {
        $crate::__site_call!($crate::Gauge, $registry, $name $(, $key => $value)*)
    };
}

/// Records into a histogram `name{labels}` of a registry, with the handle cached at the call
/// site: `histogram!(registry, "name", "label" => value, …)` then `.record(v)` or `.handle()`.
/// See [`counter!`](crate::counter) for the cache.
///
/// ```
/// # use vigilo_collector as vigilo;
/// let registry = vigilo::Registry::new();
/// vigilo::histogram!(registry, "request_seconds", "route" => "/api").record(0.012)?;
/// # Ok::<(), vigilo::MetricError>(())
/// ```
#[macro_export]
macro_rules! histogram {
    ($registry:expr, $name:literal $(, $key:literal => $value:expr)* $(,)?) => {
        $crate::__site_call!($crate::Histogram, $registry, $name $(, $key => $value)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __site_call {
    ($kind:ty, $registry:expr, $name:literal $(, $key:literal => $value:expr)*) => {
        // One expression, not a block: the label values' temporaries must live until the
        // operation applied to the call has run.
        $crate::metrics::site::Call::<$kind, _>::new(
            {
                ::std::thread_local! {
                    static SITE: $crate::metrics::site::Site<$kind> =
                        const { $crate::metrics::site::Site::new() };
                }
                &SITE
            },
            $crate::metrics::site::AsRegistry::as_registry(&$registry),
            $name,
            [$(($key, ::core::convert::AsRef::<str>::as_ref(&$value))),*],
        )
    };
}
