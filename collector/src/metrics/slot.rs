//! Per-thread write slots.
//!
//! Every recording thread leases one of [`SLOTS`] slot numbers. Each counter and histogram keeps
//! one cache-padded cell per slot that has recorded into it, and only the thread holding slot `i`
//! ever writes cell `i`. A single writer can update its cell with a plain relaxed load and store
//! (no locked read-modify-write), which is both exact and several times cheaper than
//! `fetch_add`; two threads never write the same cache line, so they scale instead of bouncing
//! it. Readers sum the cells.
//!
//! Threads beyond the number of slots (or a thread that records while its thread-locals are being
//! torn down) get no lease and fall back to a shared cell updated with atomic read-modify-writes:
//! still exact, just contended. Such a thread tries again for a slot as soon as another thread
//! gives one back (a release bumps [`FREED`]), so it does not stay on the shared cell for life.
//!
//! Soundness of the hand-over: a thread releases its slot when it exits, with a `Release` store
//! that follows every write it made to any cell of that slot. The next thread that takes the slot
//! does so with an `Acquire` compare-exchange, so all of the previous owner's writes happen-before
//! its own, and its first load of a cell sees the previous owner's last store. There is never more
//! than one writer per slot cell, so load-then-store loses no update.
//!
//! One case is not covered: a **signal handler** that records into a cell while the thread it
//! interrupted is between that cell's load and store. One of the two updates is lost. Do not
//! record from signal handlers; the first record of a series may allocate anyway, which is not
//! async-signal-safe. Thread-local destructors are safe. Once a thread's lease is dropped, its
//! cached slot number is cleared first, and anything it records afterwards goes to the shared
//! cell.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// How many slots (and so, at most, per-series cells) a process uses. Fixed: a series pays only
/// for the slots that actually record into it (see `counter.rs` and `histogram.rs`), so a high
/// number costs nothing where few threads record, and lets 256 threads record without
/// contention (services record from blocking pools and thread-per-connection servers).
pub(crate) const SLOTS: usize = 256;

/// The lease table.
static LEASED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];

/// Bumped each time a lease is given back, so threads on the shared cell know to try again.
static FREED: AtomicU64 = AtomicU64::new(0);

/// Thread-bound handles ([`LocalCounter`](super::LocalCounter)) alive on each slot's owner.
/// Only the thread holding a slot touches its entry, so Relaxed suffices for it; the lease's
/// Release / Acquire hand-over orders it for the next owner (it is 0 then).
static PINS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];

/// Set when a thread's lease was dropped while handles were still pinning its slot: the last
/// [`unpin`] gives the slot back. Owner-only, like [`PINS`].
static EXITED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];

/// Takes the lowest free slot.
fn lease() -> Option<usize> {
    LEASED.iter().position(|flag| {
        // Acquire on success: synchronizes with the previous owner's Release in `release`, so its
        // cell writes are visible before we write the same cells. Relaxed on failure: a taken
        // slot tells us nothing we act on.
        flag.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    })
}

fn release(slot: usize) {
    if let Some(flag) = LEASED.get(slot) {
        // Release: publishes every cell write this thread made to the next owner.
        flag.store(false, Ordering::Release);
        // Relaxed: a hint to retry; the lease itself is taken with the compare-exchange above.
        FREED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A thread's lease, given back when the thread exits.
struct Lease(Cell<Option<usize>>);

impl Drop for Lease {
    fn drop(&mut self) {
        // The cached number must not outlive the lease (later records use the shared cell).
        let _ = SLOT.try_with(|s| s.set(GONE));
        if let Some(slot) = self.0.take() {
            // A thread-bound handle still writes this slot's cells (it lives in a thread-local
            // destroyed after this one): the slot stays ours until the last handle is dropped.
            // Relaxed: owner-only entries (see `PINS`).
            match PINS.get(slot) {
                Some(pins) if pins.load(Ordering::Relaxed) > 0 => {
                    if let Some(exited) = EXITED.get(slot) {
                        exited.store(true, Ordering::Relaxed);
                    }
                }
                _ => release(slot),
            }
        }
    }
}

/// A thread-bound handle on the calling thread, which holds `slot`, starts writing its cells:
/// the slot is not given back before the matching [`unpin`].
pub(crate) fn pin(slot: usize) {
    if let Some(pins) = PINS.get(slot) {
        // Relaxed: owner-only (see `PINS`).
        pins.fetch_add(1, Ordering::Relaxed);
    }
}

/// The matching end of [`pin`], on the same thread; gives the slot back if the thread's lease
/// is already gone and this was the last handle.
pub(crate) fn unpin(slot: usize) {
    let (Some(pins), Some(exited)) = (PINS.get(slot), EXITED.get(slot)) else {
        return;
    };
    // Relaxed: owner-only; `release` publishes the cell writes with its Release store.
    if pins.fetch_sub(1, Ordering::Relaxed) == 1 && exited.swap(false, Ordering::Relaxed) {
        release(slot);
    }
}

/// Whether `slot` is leased (tests of the hand-over).
#[cfg(test)]
pub(crate) fn is_leased(slot: usize) -> bool {
    // Acquire: as in `lease`.
    LEASED.get(slot).is_some_and(|f| f.load(Ordering::Acquire))
}

/// `SLOT` before the thread's first record.
const UNSET: usize = usize::MAX;
/// `SLOT` once the thread's lease is gone (it is exiting): the shared cell, for good.
const GONE: usize = usize::MAX - 1;
/// `SLOT` when every slot was taken: the shared cell, until one is given back.
const SHARED: usize = usize::MAX - 2;

thread_local! {
    static LEASE: Lease = const { Lease(Cell::new(None)) };
    /// The lease's slot number, cached in a const-initialised cell without a destructor:
    /// reading it needs no lazy-initialisation check, which halves the cost of finding the slot
    /// on every record.
    static SLOT: Cell<usize> = const { Cell::new(UNSET) };
    /// `FREED` when this thread last failed to get a slot.
    static MISSED_AT: Cell<u64> = const { Cell::new(0) };
}

/// The calling thread's cached slot number as it stands: below [`SLOTS`] when the thread holds
/// a slot, else one of the markers [`current`] resolves. The records' fast path: one
/// thread-local load.
#[inline(always)]
pub(crate) fn cached() -> usize {
    SLOT.try_with(Cell::get).unwrap_or(GONE)
}

/// The calling thread's slot, or `None` when it has to use the shared cell.
#[inline]
pub(crate) fn current() -> Option<usize> {
    match SLOT.try_with(Cell::get) {
        Ok(slot) if slot < SLOTS => Some(slot),
        Ok(UNSET) => take_slot(),
        Ok(SHARED) => retry_if_freed(),
        _ => None,
    }
}

/// The thread's first record, or a retry after a slot was given back: takes a lease and caches
/// its number.
#[cold]
fn take_slot() -> Option<usize> {
    // Read before trying, so a slot given back meanwhile triggers another try next time.
    // Relaxed: see `release`.
    let seen = FREED.load(Ordering::Relaxed);
    let got = LEASE.try_with(|l| {
        let slot = lease();
        l.0.set(slot);
        slot
    });
    match got {
        Ok(Some(slot)) => {
            let _ = SLOT.try_with(|s| s.set(slot));
            Some(slot)
        }
        Ok(None) => {
            let _ = MISSED_AT.try_with(|m| m.set(seen));
            let _ = SLOT.try_with(|s| s.set(SHARED));
            None
        }
        // The lease is being torn down: the shared cell from now on.
        Err(_) => {
            let _ = SLOT.try_with(|s| s.set(GONE));
            None
        }
    }
}

/// On the shared cell: tries for a slot again if one was given back since the last try.
#[inline]
fn retry_if_freed() -> Option<usize> {
    // Relaxed: see `release`.
    let freed = FREED.load(Ordering::Relaxed);
    if MISSED_AT.try_with(Cell::get).is_ok_and(|m| m != freed) {
        return take_slot();
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread that found every slot taken gets one as soon as another thread gives one back.
    /// (Other tests in this process take and give back slots too; an attempt they disturb is
    /// made again.)
    #[test]
    fn a_thread_on_the_shared_cell_takes_a_slot_once_one_frees() {
        for _attempt in 0..5 {
            if let Some(outcome) = shared_then_freed() {
                assert!(outcome, "the late thread stayed on the shared cell");
                return;
            }
        }
        panic!("could not hold every slot: other threads kept taking them");
    }

    /// `None` if the late thread got a slot at once (another test freed one meanwhile).
    fn shared_then_freed() -> Option<bool> {
        use std::sync::mpsc;
        let mut holders = Vec::new();
        for _ in 0..SLOTS {
            let (held_tx, held_rx) = mpsc::channel();
            let (exit_tx, exit_rx) = mpsc::channel::<()>();
            let h = std::thread::spawn(move || {
                held_tx.send(current().is_some()).unwrap_or(());
                exit_rx.recv().unwrap_or(());
            });
            let held = held_rx.recv().unwrap_or(false);
            holders.push((h, exit_tx, held));
        }
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let late = std::thread::spawn(move || {
            tx.send(current()).unwrap_or(());
            go_rx.recv().unwrap_or(());
            // Another test's thread may take the freed slot first; it gives it back when it
            // exits, which is another chance.
            let mut got = current();
            for _ in 0..200 {
                if got.is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                got = current();
            }
            tx.send(got).unwrap_or(());
        });
        let first = rx.recv().ok().flatten();
        let mut outcome = None;
        if first.is_none() {
            // One holder with a slot exits and gives it back.
            if let Some(i) = holders.iter().position(|(_, _, held)| *held) {
                let (h, exit, _) = holders.remove(i);
                exit.send(()).unwrap_or(());
                h.join().unwrap_or(());
                go_tx.send(()).unwrap_or(());
                outcome = Some(matches!(rx.recv(), Ok(Some(_))));
            }
        }
        drop(go_tx);
        late.join().unwrap_or(());
        for (h, exit, _) in holders {
            exit.send(()).unwrap_or(());
            h.join().unwrap_or(());
        }
        outcome
    }
}
