//! Gauges: an `f64` that is set or added to, with an optional watch.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::MetricError;
use super::series::Series;
use super::watch::Watch;
use crate::sync::{self, AtomicBool, AtomicU64};

/// The cell behind one gauge series.
pub(crate) struct GaugeCell {
    bits: AtomicU64,
    /// Set by every record, cleared by the evaluator's sample: "was it recorded since?".
    fresh: AtomicBool,
    pub(crate) watch: Watch,
}

impl GaugeCell {
    pub(crate) fn new(watch: Watch) -> Self {
        GaugeCell {
            bits: AtomicU64::new(0f64.to_bits()),
            fresh: AtomicBool::new(false),
            watch,
        }
    }

    pub(crate) fn value(&self) -> f64 {
        // Relaxed: a gauge is a last-value cell; readers need no ordering with other memory.
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// True if the gauge was recorded since the last `take_fresh`, without clearing it.
    pub(crate) fn is_fresh(&self) -> bool {
        // Relaxed: ordered with the recorder by the watch protocol's barriers where it matters
        // (see `watch.rs`); otherwise a hint for no-data detection.
        self.fresh.load(Ordering::Relaxed)
    }

    /// True if the gauge was recorded since the last call.
    pub(crate) fn take_fresh(&self) -> bool {
        // Relaxed: see `is_fresh`. Load first: no write (and no line ownership) when unset.
        self.fresh.load(Ordering::Relaxed) && self.fresh.swap(false, Ordering::Relaxed)
    }
}

impl Series<GaugeCell> {
    /// Sets a finite `value`.
    #[inline]
    pub(crate) fn set_finite(&self, value: f64) {
        let cell = &self.cells;
        // Relaxed: see `GaugeCell::value`; the barrier below orders both stores before the
        // watch's load for the evaluator (see `watch.rs`). The flag is stored unconditionally:
        // the line is already this thread's after the value store, and a conditional store
        // could be skipped on a stale read.
        cell.bits.store(value.to_bits(), Ordering::Relaxed);
        cell.fresh.store(true, Ordering::Relaxed);
        sync::light_barrier();
        cell.watch.check(value, self.id);
    }

    /// Adds a finite `delta`; the new value, or `None` (and nothing changed) if the sum would not
    /// be finite.
    #[inline]
    fn add_finite(&self, delta: f64) -> Option<f64> {
        let cell = &self.cells;
        let mut sum = f64::NAN;
        // Relaxed: only this cell's value matters; the loop retries on conflict.
        let result = cell
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                sum = f64::from_bits(bits) + delta;
                sum.is_finite().then_some(sum.to_bits())
            });
        result.ok()?;
        // Relaxed and barrier: as in `set_finite`.
        cell.fresh.store(true, Ordering::Relaxed);
        sync::light_barrier();
        cell.watch.check(sum, self.id);
        Some(sum)
    }

    fn non_finite(&self, value: f64) -> MetricError {
        MetricError::NonFinite {
            metric: self.name.to_string(),
            value,
        }
    }
}

/// A handle to one gauge series: cheap to clone, `Send + Sync`, lock-free to set.
///
/// [`set`](Self::set) and [`add`](Self::add) never fail: a NaN or infinite value (or an `add`
/// whose result would be one) is dropped, leaves the gauge as it was, and is counted in the
/// registry's `vigilo_dropped_values_total{metric}` counter. [`try_set`](Self::try_set) and
/// [`try_add`](Self::try_add) return an error for it instead.
///
/// ```
/// # use vigilo_collector as vigilo;
/// let registry = vigilo::Registry::new();
/// let queue = registry.gauge("queue_depth", &[])?;
/// queue.set(4.0);
/// queue.add(-1.5);
/// assert_eq!(queue.value(), 2.5);
/// queue.set(f64::NAN); // dropped and counted
/// assert_eq!(queue.value(), 2.5);
/// assert!(queue.try_set(f64::INFINITY).is_err());
/// let dropped = registry.snapshot();
/// let dropped = dropped.get("vigilo_dropped_values_total", &[("metric", "queue_depth")]);
/// assert_eq!(dropped.map(|s| s.value.clone()), Some(vigilo::metrics::Value::Counter(1)));
/// # Ok::<(), vigilo::MetricError>(())
/// ```
#[derive(Clone)]
pub struct Gauge {
    pub(crate) series: Arc<Series<GaugeCell>>,
}

impl Gauge {
    /// Sets the value; a NaN or infinity is dropped and counted.
    #[inline]
    pub fn set(&self, value: f64) {
        if value.is_finite() {
            self.series.set_finite(value);
        } else {
            self.series.cells.watch.dropped(&self.series.name);
        }
    }

    /// Sets the value, or refuses a NaN or infinity with [`MetricError::NonFinite`].
    #[inline]
    pub fn try_set(&self, value: f64) -> Result<(), MetricError> {
        if !value.is_finite() {
            return Err(self.series.non_finite(value));
        }
        self.series.set_finite(value);
        Ok(())
    }

    /// Adds `delta` (negative to subtract); dropped and counted if `delta` or the result would
    /// not be finite.
    #[inline]
    pub fn add(&self, delta: f64) {
        if !delta.is_finite() || self.series.add_finite(delta).is_none() {
            self.series.cells.watch.dropped(&self.series.name);
        }
    }

    /// Adds `delta`, or refuses it with [`MetricError::NonFinite`] if it or the result would not
    /// be finite (the gauge is then unchanged).
    #[inline]
    pub fn try_add(&self, delta: f64) -> Result<(), MetricError> {
        if !delta.is_finite() {
            return Err(self.series.non_finite(delta));
        }
        match self.series.add_finite(delta) {
            Some(_) => Ok(()),
            None => Err(self.series.non_finite(self.value() + delta)),
        }
    }

    /// The current value.
    pub fn value(&self) -> f64 {
        self.series.cells.value()
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge")
            .field(
                "series",
                &format_args!("{}{}", self.series.name, self.series.labels),
            )
            .field("value", &self.value())
            .finish()
    }
}
