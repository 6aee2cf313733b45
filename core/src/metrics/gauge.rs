//! Gauges: an `f64` that is set or added to, with an optional watch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::MetricError;
use super::watch::Watch;

/// The cell behind one gauge series.
pub(crate) struct GaugeCell {
    bits: AtomicU64,
    /// Set by every record, cleared by the evaluator's sample: "was it updated since?".
    fresh: AtomicBool,
    pub(crate) watch: Watch,
    name: Arc<str>,
}

impl GaugeCell {
    pub(crate) fn new(name: Arc<str>, watch: Watch) -> Self {
        GaugeCell {
            bits: AtomicU64::new(0f64.to_bits()),
            fresh: AtomicBool::new(false),
            watch,
            name,
        }
    }

    #[inline]
    pub(crate) fn set(&self, value: f64) -> Result<(), MetricError> {
        self.check(value)?;
        self.set_finite(value);
        Ok(())
    }

    /// `set` for a value the caller has already checked to be finite.
    #[inline]
    pub(crate) fn set_finite(&self, value: f64) {
        // Relaxed: a gauge is a last-value cell; readers need no ordering with other memory.
        self.bits.store(value.to_bits(), Ordering::Relaxed);
        self.mark_fresh();
        self.watch.check(value);
    }

    #[inline]
    pub(crate) fn add(&self, delta: f64) -> Result<(), MetricError> {
        self.check(delta)?;
        let mut sum = f64::NAN;
        // Relaxed: only this cell's value matters; the loop retries on conflict.
        let result = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                sum = f64::from_bits(bits) + delta;
                sum.is_finite().then_some(sum.to_bits())
            });
        match result {
            Ok(_) => {
                self.mark_fresh();
                self.watch.check(sum);
                Ok(())
            }
            Err(_) => Err(MetricError::NonFinite {
                metric: self.name.to_string(),
                value: sum,
            }),
        }
    }

    #[inline]
    fn mark_fresh(&self) {
        // Relaxed: a hint for no-data detection, ordered with nothing else. The load first keeps
        // the line shared while the flag is already set.
        if !self.fresh.load(Ordering::Relaxed) {
            self.fresh.store(true, Ordering::Relaxed);
        }
    }

    /// True if the gauge was recorded since the last `take_fresh`, without clearing it.
    pub(crate) fn is_fresh(&self) -> bool {
        // Relaxed: see `mark_fresh`.
        self.fresh.load(Ordering::Relaxed)
    }

    /// True if the gauge was recorded since the last call.
    pub(crate) fn take_fresh(&self) -> bool {
        // Relaxed: see `mark_fresh`. Load first: no write (and no line ownership) when unset.
        self.fresh.load(Ordering::Relaxed) && self.fresh.swap(false, Ordering::Relaxed)
    }

    #[inline]
    fn check(&self, value: f64) -> Result<(), MetricError> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(MetricError::NonFinite {
                metric: self.name.to_string(),
                value,
            })
        }
    }

    pub(crate) fn value(&self) -> f64 {
        // Relaxed: see `set`.
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }
}

/// A handle to one gauge series: cheap to clone, `Send + Sync`, lock-free to set.
///
/// NaN and infinite values are refused with [`MetricError::NonFinite`] and leave the gauge as it
/// was.
///
/// ```
/// let registry = vigilo::Registry::new();
/// let queue = registry.gauge("queue_depth", &[])?;
/// queue.set(4.0)?;
/// queue.add(-1.5)?;
/// assert_eq!(queue.value(), 2.5);
/// assert!(queue.set(f64::NAN).is_err());
/// assert_eq!(queue.value(), 2.5);
/// # Ok::<(), vigilo::MetricError>(())
/// ```
#[derive(Clone)]
pub struct Gauge {
    pub(crate) cell: Arc<GaugeCell>,
}

impl Gauge {
    /// Sets the value.
    #[inline]
    pub fn set(&self, value: f64) -> Result<(), MetricError> {
        self.cell.set(value)
    }

    /// Adds `delta` (negative to subtract). Refused if the result would not be finite.
    #[inline]
    pub fn add(&self, delta: f64) -> Result<(), MetricError> {
        self.cell.add(delta)
    }

    /// The current value.
    pub fn value(&self) -> f64 {
        self.cell.value()
    }
}

impl std::fmt::Debug for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gauge")
            .field("value", &self.value())
            .finish()
    }
}
