//! Counters: monotonic `u64`, one cache-padded cell per write slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::slot;

/// The cells behind one counter series.
pub(crate) struct CounterCells {
    /// One cell per slot, written only by that slot's thread.
    cells: Box<[CachePadded<AtomicU64>]>,
    /// For threads without a slot.
    shared: CachePadded<AtomicU64>,
}

impl CounterCells {
    pub(crate) fn new() -> Self {
        CounterCells {
            cells: (0..slot::slot_count())
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            shared: CachePadded::new(AtomicU64::new(0)),
        }
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        match slot::current().and_then(|i| self.cells.get(i)) {
            Some(cell) => slot::add_exclusive(cell, n),
            None => slot::add_shared(&self.shared, n),
        }
    }

    pub(crate) fn value(&self) -> u64 {
        // Relaxed: each cell only grows, and a read needs no ordering with other memory; the sum
        // lies between the totals at the start and the end of the read.
        self.cells
            .iter()
            .chain(std::iter::once(&self.shared))
            .fold(0u64, |acc, c| acc.wrapping_add(c.load(Ordering::Relaxed)))
    }
}

/// A handle to one counter series: cheap to clone, `Send + Sync`, lock-free and allocation-free
/// to increment.
///
/// ```
/// let registry = vigilo::Registry::new();
/// let requests = registry.counter("http_requests_total", &[("route", "/")])?;
/// requests.increment();
/// requests.add(2);
/// assert_eq!(requests.value(), 3);
/// # Ok::<(), vigilo::MetricError>(())
/// ```
#[derive(Clone)]
pub struct Counter {
    pub(crate) cells: Arc<CounterCells>,
}

impl Counter {
    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.cells.add(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.cells.add(n);
    }

    /// The current total.
    pub fn value(&self) -> u64 {
        self.cells.value()
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field("value", &self.value())
            .finish()
    }
}
