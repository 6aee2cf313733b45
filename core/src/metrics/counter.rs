//! Counters: monotonic `u64`, one cache-padded cell per write slot that records.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::cells::{Cell, LazyCells};
use super::series::Series;
use super::slot;

/// The cells behind one counter series: allocated per chunk of 8 write slots on first use, at
/// most 2 chunks (see `cells.rs`), so a counter nobody records into costs a few pointers, one
/// recorded by a single thread 1 KiB, and one recorded by any number of threads at most 2.5 KiB.
pub(crate) struct CounterCells(LazyCells<CachePadded<AtomicU64>, 8, 8, 2>);

impl CounterCells {
    pub(crate) fn new() -> Self {
        CounterCells(LazyCells::new())
    }

    #[inline(always)]
    pub(crate) fn add(&self, n: u64) {
        // The fast path inline (a thread with a slot and its cell allocated), the rest out of
        // line: inlined whole, the lease and allocation paths made the compiler keep `add` a
        // call, with its register saves, around a one-instruction increment.
        match self.0.own(slot::cached()) {
            Some(cell) => slot::add_exclusive(cell, n),
            None => self.add_slow(n),
        }
    }

    #[cold]
    #[inline(never)]
    fn add_slow(&self, n: u64) {
        match self.0.cell(slot::current()) {
            Cell::Own(cell) => slot::add_exclusive(cell, n),
            Cell::Shared(cell) => slot::add_shared(cell, n),
        }
    }

    pub(crate) fn value(&self) -> u64 {
        // Relaxed: each cell only grows, and a read needs no ordering with other memory; the sum
        // lies between the totals at the start and the end of the read.
        self.0
            .each()
            .fold(0u64, |acc, c| acc.wrapping_add(c.load(Ordering::Relaxed)))
    }

    /// Bytes of cells allocated so far.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.0.allocated_bytes()
    }
}

/// A handle to one counter series: cheap to clone, `Send + Sync`, lock-free to increment.
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
    pub(crate) series: Arc<Series<CounterCells>>,
}

impl Counter {
    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.series.cells.add(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.series.cells.add(n);
    }

    /// The current total.
    pub fn value(&self) -> u64 {
        self.series.cells.value()
    }
}

impl std::fmt::Debug for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counter")
            .field(
                "series",
                &format_args!("{}{}", self.series.name, self.series.labels),
            )
            .field("value", &self.value())
            .finish()
    }
}
