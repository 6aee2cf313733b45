//! Counters: monotonic `u64`, one cache-padded cell per write slot that records.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::cells::{Cell, LazyCells};
use super::series::Series;
use super::slot;

/// The cells behind one counter series: allocated per chunk of 8 write slots on first use (see
/// `cells.rs`), so a counter nobody records into costs a few pointers, one recorded by a single
/// thread 1 KiB, and each further chunk of 8 slots that records 1 KiB more: every recording
/// thread gets a cell of its own (issue 15: shared cells cost up to 22 times a private one with
/// every thread recording), at most 32 KiB with all 256 slots recording.
pub(crate) struct CounterCells(LazyCells<CachePadded<AtomicU64>, 8, 8, 24>);

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

    /// The cell the calling thread records into, and its slot when the cell is its own (the
    /// caller must then [`pin`](slot::pin) the slot for as long as it writes the cell).
    fn bind(&self) -> (&AtomicU64, Option<usize>) {
        let slot = slot::current();
        match self.0.cell(slot) {
            Cell::Own(cell) => (cell, slot),
            Cell::Shared(cell) => (cell, None),
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
/// # use vigilo_collector as vigilo;
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

    /// A handle bound to the calling thread, for hot loops: it holds the address of the thread's
    /// own cell, so an increment is a load and a store with no lookup of the thread's write slot
    /// (about 0.7 times the cost of [`increment`](Self::increment) in BENCHMARKS.md, goal 4 of issue
    /// 15). It cannot be sent to or shared with another thread.
    ///
    /// While a thread-bound handle is alive, the thread keeps its write slot even past its own
    /// exit, until the handle is dropped (a handle kept in a thread-local may outlive the thread's
    /// other thread-locals). A thread that finds every write slot taken gets a handle on the
    /// series' shared cell, and keeps it: exact, just slower.
    ///
    /// ```
    /// # use vigilo_collector as vigilo;
    /// let registry = vigilo::Registry::new();
    /// let rows = registry.counter("rows_parsed_total", &[])?;
    /// let local = rows.local();
    /// for _ in 0..1000 {
    ///     local.increment();
    /// }
    /// assert_eq!(rows.value(), 1000);
    /// # Ok::<(), vigilo::MetricError>(())
    /// ```
    pub fn local(&self) -> LocalCounter {
        let (cell, slot) = self.series.cells.bind();
        LocalCounter::pinned(NonNull::from(cell), slot, &self.series)
    }
}

/// A [`Counter`] handle bound to the thread that made it ([`Counter::local`]): the cheapest way
/// to count from one thread. Not `Send`, not `Sync`.
///
/// ```compile_fail
/// # use vigilo_collector as vigilo;
/// let registry = vigilo::Registry::new();
/// let local = registry.counter("c_total", &[])?.local();
/// std::thread::spawn(move || local.increment());
/// # Ok::<(), vigilo::MetricError>(())
/// ```
pub struct LocalCounter {
    /// The thread's own cell (`slot` is `Some`) or the series' shared cell.
    cell: NonNull<AtomicU64>,
    /// The write slot pinned while this handle lives; `None` on a shared cell.
    slot: Option<usize>,
    /// Keeps the cell allocated: cells are freed only with the series.
    series: Arc<Series<CounterCells>>,
    /// Not `Send` or `Sync`: only the slot's owner may write its cell with a plain store.
    _thread: PhantomData<*const ()>,
}

impl LocalCounter {
    /// A handle on `cell`, pinning `slot` (the calling thread's) when the cell is its own.
    fn pinned(
        cell: NonNull<AtomicU64>,
        slot: Option<usize>,
        series: &Arc<Series<CounterCells>>,
    ) -> Self {
        if let Some(slot) = slot {
            slot::pin(slot);
        }
        LocalCounter {
            cell,
            slot,
            series: Arc::clone(series),
            _thread: PhantomData,
        }
    }

    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.add(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        // SAFETY: `cell` points into the cells of `series`, which this handle keeps alive, and
        // cells are freed only when the series is dropped (`LazyCells::drop`).
        let cell = unsafe { self.cell.as_ref() };
        if self.slot.is_some() {
            // The slot is pinned to this thread (the handle is neither `Send` nor `Sync`), so
            // this thread is the cell's only writer.
            slot::add_exclusive(cell, n);
        } else {
            slot::add_shared(cell, n);
        }
    }

    /// The current total of the counter (all threads).
    pub fn value(&self) -> u64 {
        self.series.cells.value()
    }

    /// The address of the calling thread's own cell this handle writes, or `None` when it writes
    /// the series' shared cell: for a binding that inlines the increment in another language
    /// (the C header's `vigilo_local_counter_add`).
    ///
    /// Writing through it, as a relaxed atomic load and then a relaxed atomic store of the sum
    /// (what [`add`](Self::add) does), is sound while this handle lives and only from the thread
    /// that made it: that thread is the cell's only writer. Once that thread has ended (and the
    /// writer has synchronised with its end, by joining it for instance), one other thread at a
    /// time may write it: the write slot stays reserved until this handle is dropped.
    pub fn own_cell(&self) -> Option<NonNull<AtomicU64>> {
        self.slot.map(|_| self.cell)
    }
}

impl Clone for LocalCounter {
    fn clone(&self) -> Self {
        LocalCounter::pinned(self.cell, self.slot, &self.series)
    }
}

impl Drop for LocalCounter {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            slot::unpin(slot);
        }
    }
}

impl std::fmt::Debug for LocalCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCounter")
            .field(
                "series",
                &format_args!("{}{}", self.series.name, self.series.labels),
            )
            .field("own_cell", &self.slot.is_some())
            .field("value", &self.value())
            .finish()
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::mpsc;

    use super::*;
    use crate::Registry;

    /// Records through a thread-bound handle from a thread-local destroyed after the thread's
    /// lease, and reports what it saw.
    struct LateWriter {
        local: Option<LocalCounter>,
        report: mpsc::Sender<(Option<usize>, bool, bool)>,
    }

    impl Drop for LateWriter {
        fn drop(&mut self) {
            if let Some(local) = self.local.take() {
                let lease_gone = slot::cached() >= slot::SLOTS;
                let still_ours = local.slot.is_some_and(slot::is_leased);
                local.add(5);
                let slot = local.slot;
                drop(local);
                self.report
                    .send((slot, lease_gone, still_ours))
                    .unwrap_or(());
            }
        }
    }

    thread_local! {
        static LATE: RefCell<Option<LateWriter>> = const { RefCell::new(None) };
    }

    /// The forced interleaving of the pin protocol: the thread's lease is dropped while a
    /// thread-bound handle still lives; the slot stays leased until the handle is dropped, so no
    /// other thread can take it and write the same cell.
    #[test]
    fn a_thread_bound_handle_keeps_its_slot_past_the_threads_lease() {
        let registry = Registry::new();
        let counter = registry
            .counter("late_total", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        // Another test may hold every slot for a moment (the slot tests do): try again then.
        for attempt in 1..=200u64 {
            let (tx, rx) = mpsc::channel();
            let c = counter.clone();
            std::thread::spawn(move || {
                // Registered first, so destroyed after the lease (thread-locals are destroyed in
                // the reverse order of their first use).
                LATE.with(|_| ());
                let local = c.local();
                local.increment();
                LATE.with(|late| {
                    *late.borrow_mut() = Some(LateWriter {
                        local: Some(local),
                        report: tx,
                    })
                });
            })
            .join()
            .unwrap_or_else(|_| panic!("the thread panicked"));
            let (slot, lease_gone, still_ours) = rx.recv().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(counter.value(), 6 * attempt, "every record counted");
            if slot.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
            assert!(lease_gone, "the lease was dropped before the handle");
            assert!(
                still_ours,
                "the slot was given back while a handle could still write it"
            );
            return;
        }
        panic!("no slot was free in 200 attempts");
    }

    /// The cell `own_cell` gives is the one the handle adds to, counted in the series (what the
    /// C header's inline add relies on).
    #[test]
    fn own_cell_is_the_cell_the_handle_adds_to() {
        let registry = Registry::new();
        let counter = registry
            .counter("own_cell_total", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let local = counter.local();
        // `None` only if other tests held every slot at that moment.
        if let Some(cell) = local.own_cell() {
            // SAFETY: this thread made `local`, which lives; written as `add` writes it.
            let cell = unsafe { cell.as_ref() };
            cell.store(cell.load(Ordering::Relaxed) + 5, Ordering::Relaxed);
            local.add(1);
            counter.add(1);
            assert_eq!(cell.load(Ordering::Relaxed), 7);
            assert_eq!(counter.value(), 7);
        }
    }

    /// Thread-bound handles on more threads than there are slots stay exact: the late threads
    /// get the shared cell.
    #[test]
    fn thread_bound_handles_count_exactly_past_the_slots() {
        use std::sync::{Arc, Barrier};
        let registry = Registry::new();
        let counter = registry
            .counter("many_total", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        // Every thread makes its handle before the barrier, so all are alive at once and at
        // least 8 of them find no free slot: they record through the shared cell.
        let threads = slot::SLOTS + 8;
        let all = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (c, all) = (counter.clone(), Arc::clone(&all));
                std::thread::spawn(move || {
                    let local = c.local();
                    let again = local.clone();
                    all.wait();
                    for _ in 0..1000 {
                        local.increment();
                        again.add(2);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap_or_else(|_| panic!("a thread panicked"));
        }
        assert_eq!(counter.value(), threads as u64 * 3000);
    }
}
