//! Per-thread write slots.
//!
//! Every recording thread leases one of [`slot_count`] slot numbers for its lifetime. Each counter and
//! histogram has one cache-padded cell per slot, and only the thread holding slot `i` ever writes
//! cell `i`. A single writer can update its cell with a plain relaxed load and store (no locked
//! read-modify-write), which is both exact and several times cheaper than `fetch_add`; two threads
//! never write the same cache line, so they scale instead of bouncing it. Readers sum the cells.
//!
//! Threads beyond the number of slots (or a thread that records while its thread-locals are being
//! torn down) get no lease and fall back to a shared cell updated with atomic read-modify-writes:
//! still exact, just contended.
//!
//! Soundness of the hand-over: a thread releases its slot when it exits, with a `Release` store
//! that follows every write it made to any cell of that slot. The next thread that takes the slot
//! does so with an `Acquire` compare-exchange, so all of the previous owner's writes happen-before
//! its own, and its first load of a cell sees the previous owner's last store. There is never more
//! than one writer per slot cell, so load-then-store loses no update.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The lease table, sized once per process.
struct Slots {
    leased: Box<[AtomicBool]>,
}

static SLOTS: OnceLock<Slots> = OnceLock::new();

fn slots() -> &'static Slots {
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        // Twice the cores covers a runtime pool plus a few helper threads; capped to bound memory
        // (each counter costs 128 bytes per slot).
        let n = (cores * 2).next_power_of_two().clamp(4, 32);
        Slots {
            leased: (0..n).map(|_| AtomicBool::new(false)).collect(),
        }
    })
}

/// How many slots (and so per-metric cells) this process uses.
pub(crate) fn slot_count() -> usize {
    slots().leased.len()
}

/// A thread's lease on one slot, released when the thread exits.
struct Lease(Option<usize>);

impl Lease {
    fn acquire() -> Self {
        let table = slots();
        for (i, flag) in table.leased.iter().enumerate() {
            // Acquire on success: synchronizes with the previous owner's Release in `drop`, so its
            // cell writes are visible before we write the same cells. Relaxed on failure: a taken
            // slot tells us nothing we act on.
            if flag
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Lease(Some(i));
            }
        }
        Lease(None)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // The cached number must not outlive the lease (later records use the shared cell).
        let _ = SLOT.try_with(|s| s.set(NO_SLOT));
        if let Some(flag) = self.0.and_then(|i| slots().leased.get(i)) {
            // Release: publishes every cell write this thread made to the next owner.
            flag.store(false, Ordering::Release);
        }
    }
}

/// `SLOT` before the thread's first record, or after its lease is gone.
const NO_SLOT: usize = usize::MAX;
/// `SLOT` when the thread holds no lease (all slots taken): use the shared cell.
const SHARED: usize = usize::MAX - 1;

thread_local! {
    static LEASE: Lease = Lease::acquire();
    /// The lease's slot number, cached in a const-initialised cell: reading it needs no
    /// lazy-initialisation check, which halves the cost of finding the slot on every record.
    static SLOT: Cell<usize> = const { Cell::new(NO_SLOT) };
}

/// The calling thread's slot, or `None` when it has to use the shared cell.
#[inline]
pub(crate) fn current() -> Option<usize> {
    match SLOT.try_with(Cell::get) {
        Ok(SHARED) | Err(_) => None,
        Ok(NO_SLOT) => first_use(),
        Ok(slot) => Some(slot),
    }
}

/// The thread's first record: takes the lease and caches its number.
#[cold]
fn first_use() -> Option<usize> {
    let slot = LEASE.try_with(|l| l.0).ok()?;
    // While the lease is being torn down, `LEASE` is gone and nothing is cached.
    let _ = SLOT.try_with(|s| s.set(slot.unwrap_or(SHARED)));
    slot
}

/// Adds `n` to a cell only the calling thread writes (see the module comment).
#[inline]
pub(crate) fn add_exclusive(cell: &AtomicU64, n: u64) {
    // Relaxed load and store: this thread is the cell's only writer, so no update can be lost;
    // readers only need each cell's own modification order, which any atomic access keeps.
    cell.store(
        cell.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Adds `n` to a cell any thread may write.
#[inline]
pub(crate) fn add_shared(cell: &AtomicU64, n: u64) {
    // Relaxed: a counter needs atomicity, not ordering with other memory.
    cell.fetch_add(n, Ordering::Relaxed);
}

/// Applies `f` to the `f64` stored as bits in `cell`, exclusive (plain store) or shared (CAS loop).
#[inline]
pub(crate) fn update_f64(cell: &AtomicU64, exclusive: bool, f: impl Fn(f64) -> Option<f64>) {
    if exclusive {
        // Relaxed: single writer (module comment).
        if let Some(new) = f(f64::from_bits(cell.load(Ordering::Relaxed))) {
            cell.store(new.to_bits(), Ordering::Relaxed);
        }
    } else {
        // Relaxed on both sides: only this cell's value matters, and the loop retries on conflict.
        let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            f(f64::from_bits(bits)).map(f64::to_bits)
        });
    }
}
