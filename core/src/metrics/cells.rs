//! Per-slot cells allocated on first use, up to a budget: a series pays for the write slots that
//! record into it, not for every slot the process has, and never more than a fixed amount.
//!
//! The slots are grouped in chunks of `CHUNK`; a series keeps one pointer per chunk, null until a
//! thread of that chunk first records. That first record allocates the chunk's cells if fewer
//! than `OWN` chunks of the series have been allocated so far; past the budget, the chunk is
//! marked *shared* and its threads record into one of [`STRIPES`] shared cells with atomic
//! read-modify-writes (still exact, contended only among those threads). Threads without a slot
//! use the shared stripes too. So a series' cells never exceed `OWN` chunks plus the stripes,
//! however many threads record into it.
//!
//! Counters use chunks of 8 slots and a budget of 2 chunks (16 threads on the exclusive path,
//! 1 KiB per chunk); histograms, whose per-slot shard is large, one slot per chunk and a budget
//! of 8 shards.

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::slot::SLOTS;
// `sync`'s: under loom, publishing a cell is part of what the models check.
use crate::sync::AtomicPtr;

/// Shared cells per series, for slotless threads and chunks past the budget.
pub(crate) const STRIPES: usize = 4;

/// Where a record goes.
pub(crate) enum Cell<'a, T> {
    /// A cell only the calling thread writes: load and store.
    Own(&'a T),
    /// A cell other threads write too: atomic read-modify-write.
    Shared(&'a T),
}

/// `CHUNKS` lazily allocated chunks of `CHUNK` values of `T` (one per write slot: `CHUNK` ×
/// `CHUNKS` is [`SLOTS`]), at most `OWN` of them, plus [`STRIPES`] lazily allocated shared `T`s.
pub(crate) struct LazyCells<T, const CHUNK: usize, const CHUNKS: usize, const OWN: usize> {
    chunks: [AtomicPtr<[T; CHUNK]>; CHUNKS],
    shared: AtomicPtr<[T; STRIPES]>,
    /// Chunks allocated (or being claimed): the budget's count.
    owned: AtomicUsize,
    /// Owns the `T`s: `Send` and `Sync` follow `T`'s, as for a `Box<T>`.
    _owns: PhantomData<Box<T>>,
}

/// The mark of a chunk past the budget: never a real pointer (chunks are at least 8-aligned).
fn shared_mark<U>() -> *mut U {
    ptr::without_provenance_mut(1)
}

impl<T: Default, const CHUNK: usize, const CHUNKS: usize, const OWN: usize>
    LazyCells<T, CHUNK, CHUNKS, OWN>
{
    /// Checked at compile time: the chunks cover every slot, and the mark is never a chunk.
    const SHAPE: () = assert!(CHUNK * CHUNKS == SLOTS && align_of::<[T; CHUNK]>() > 1);

    pub(crate) fn new() -> Self {
        let () = Self::SHAPE;
        LazyCells {
            chunks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            shared: AtomicPtr::new(ptr::null_mut()),
            owned: AtomicUsize::new(0),
            _owns: PhantomData,
        }
    }

    /// The cell slot `slot` owns, if the slot is a real one and its chunk is allocated: the
    /// records' fast path, small enough to inline (everything else goes to [`cell`](Self::cell)).
    #[inline(always)]
    pub(crate) fn own(&self, slot: usize) -> Option<&T> {
        // A marker slot number (no slot, not yet leased) is past every chunk.
        let entry = self.chunks.get(slot / CHUNK)?;
        // Acquire: as in `cell`.
        let p = entry.load(Ordering::Acquire);
        if p.is_null() || p == shared_mark() {
            return None;
        }
        // SAFETY: as in `cell`: `p` came from `Box::into_raw` in `claim` and lives until `drop`.
        let chunk = unsafe { &*p };
        chunk.get(slot % CHUNK)
    }

    /// Where slot `slot` records (`None`: a thread without a slot): its own cell, allocated
    /// with its chunk on the chunk's first use while the budget lasts, else a shared stripe.
    #[inline]
    pub(crate) fn cell(&self, slot: Option<usize>) -> Cell<'_, T> {
        let Some(slot) = slot else {
            return Cell::Shared(self.stripe(STRIPES - 1));
        };
        let Some(entry) = self.chunks.get(slot / CHUNK) else {
            return Cell::Shared(self.stripe(slot));
        };
        // Acquire: pairs with the Release of the compare-exchange in `claim`, so the chunk's
        // initialised cells are visible before we use them.
        let mut p = entry.load(Ordering::Acquire);
        if p.is_null() {
            p = self.claim(entry);
        }
        if p == shared_mark() {
            return Cell::Shared(self.stripe(slot));
        }
        // SAFETY: `p` is neither null nor the mark, so it came from `Box::into_raw` in `claim`;
        // it is freed only in `drop`, which needs `&mut self`, so it outlives this borrow.
        let chunk = unsafe { &*p };
        match chunk.get(slot % CHUNK) {
            Some(c) => Cell::Own(c),
            None => Cell::Shared(self.stripe(slot)),
        }
    }

    /// A chunk's first use: allocates it if the budget allows, else marks it shared; takes
    /// whatever another thread published first.
    #[cold]
    #[inline(never)]
    fn claim(&self, entry: &AtomicPtr<[T; CHUNK]>) -> *mut [T; CHUNK] {
        // Relaxed: the budget only bounds memory; the chunk is published by the exchange below.
        let within = self.owned.fetch_add(1, Ordering::Relaxed) < OWN;
        let want = if within {
            Box::into_raw(Box::new(std::array::from_fn(|_| T::default())))
        } else {
            shared_mark()
        };
        // Release on success publishes the initialised chunk; Acquire on failure sees the
        // winner's.
        let got = match entry.compare_exchange(
            ptr::null_mut(),
            want,
            Ordering::Release,
            Ordering::Acquire,
        ) {
            Ok(_) if within => return want,
            Ok(_) => want,
            Err(winner) => {
                if within {
                    // SAFETY: `want` came from `Box::into_raw` above and was never shared.
                    drop(unsafe { Box::from_raw(want) });
                }
                winner
            }
        };
        // Nothing of ours was allocated after all: give the budget back.
        self.owned.fetch_sub(1, Ordering::Relaxed);
        got
    }

    /// Shared stripe `n % STRIPES`, allocated with the others on first use.
    #[inline]
    fn stripe(&self, n: usize) -> &T {
        let stripes = get_or_install(&self.shared, || std::array::from_fn(|_| T::default()));
        &stripes[n % STRIPES]
    }

    /// Every allocated cell: the slots' then the stripes.
    pub(crate) fn each(&self) -> impl Iterator<Item = &T> {
        self.chunks
            .iter()
            .filter_map(|c| existing(c))
            .flat_map(|chunk| chunk.iter())
            .chain(existing(&self.shared).into_iter().flatten())
    }

    /// Bytes allocated for cells so far (for the memory figures).
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        let chunks = self.chunks.iter().filter(|c| existing(c).is_some()).count();
        chunks * size_of::<[T; CHUNK]>()
            + existing(&self.shared).map_or(0, |_| size_of::<[T; STRIPES]>())
    }
}

/// The value behind `cell`, allocated and published on first use. Kept small so the record path
/// inlines the fast case; the allocation is out of line.
#[inline]
pub(crate) fn get_or_install<U>(cell: &AtomicPtr<U>, make: impl FnOnce() -> U) -> &U {
    // Acquire: pairs with the Release of the compare-exchange in `install`, so the value's
    // initialised contents are visible before we use them.
    let mut p = cell.load(Ordering::Acquire);
    if p.is_null() {
        p = install(cell, make);
    }
    // SAFETY: `p` is non-null, came from `Box::into_raw` in `install`, and is freed only with
    // its owner (`free`, from a `drop` that has `&mut` of it), which outlives this borrow.
    unsafe { &*p }
}

#[cold]
#[inline(never)]
fn install<U>(cell: &AtomicPtr<U>, make: impl FnOnce() -> U) -> *mut U {
    let fresh = Box::into_raw(Box::new(make()));
    // Release on success publishes the initialised value; Acquire on failure sees the winner's.
    match cell.compare_exchange(ptr::null_mut(), fresh, Ordering::Release, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: `fresh` came from `Box::into_raw` above and was never shared.
            drop(unsafe { Box::from_raw(fresh) });
            winner
        }
    }
}

/// The value behind `cell` if it was ever allocated (the shared mark is not a value).
pub(crate) fn existing<U>(cell: &AtomicPtr<U>) -> Option<&U> {
    // Acquire: as in `get_or_install`.
    let p = cell.load(Ordering::Acquire);
    if p == shared_mark() {
        return None;
    }
    // SAFETY: as in `get_or_install`; null maps to None.
    unsafe { p.as_ref() }
}

impl<T, const CHUNK: usize, const CHUNKS: usize, const OWN: usize> Drop
    for LazyCells<T, CHUNK, CHUNKS, OWN>
{
    fn drop(&mut self) {
        for c in &self.chunks {
            free(c);
        }
        free(&self.shared);
    }
}

/// Frees what `cell` points to, if anything (in a `drop`: no other reference exists).
pub(crate) fn free<U>(cell: &AtomicPtr<U>) {
    // Acquire: as in `get_or_install` (the caller's `&mut` already excludes other threads).
    let p = cell.swap(ptr::null_mut(), Ordering::Acquire);
    if !p.is_null() && p != shared_mark() {
        // SAFETY: a pointer here that is neither null nor the mark came from `Box::into_raw` in
        // `install` or `claim`; the caller has the only reference, and the swap nulled it so it
        // is freed once.
        drop(unsafe { Box::from_raw(p) });
    }
}
