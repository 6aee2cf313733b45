//! Per-slot cells allocated on first use, up to a budget: a series pays for the write slots that
//! record into it, not for every slot the process has, and never more than a fixed amount.
//!
//! The slots are grouped in chunks of `CHUNK`; a series keeps one pointer per chunk, null until a
//! thread of that chunk first records. The pointers of the first [`LOW_SLOTS`] slots sit in the
//! series; those of the rest, in a table allocated when one of those slots first records (most
//! processes never lease more than 64 slots, and a series pays nothing for the others). A
//! chunk's first record allocates its cells if the series' [`Budget`] allows another chunk;
//! past the budget, the chunk is marked *shared* and its threads record into
//! one of [`STRIPES`] shared cells with atomic read-modify-writes (still exact, contended only
//! among those threads). Threads without a slot use the shared stripes too. So a series' cells
//! never exceed the budget's chunks plus the stripes, however many threads record into it.
//!
//! Counters use chunks of 8 slots with every chunk in the budget (each recording thread gets a
//! cell of its own: 1 KiB per chunk of 8 slots that records); histograms, whose per-slot shard
//! is large, one slot per chunk and a budget of 16 shards.

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::slot::SLOTS;
// `sync`'s: under loom, publishing a cell is part of what the models check.
use crate::sync::AtomicPtr;

/// Shared cells per series, for slotless threads and chunks past the budget.
pub(crate) const STRIPES: usize = 4;

/// Slots whose chunk pointers every series holds inline; the chunks of the others are found
/// through a table allocated on first use.
pub(crate) const LOW_SLOTS: usize = 64;

/// How many chunks a series may allocate.
pub(crate) trait Budget: Default {
    /// Takes one chunk; `false` when the budget is spent (the chunk is then shared).
    fn take(&self) -> bool;
    /// Gives back a chunk taken but not allocated after all.
    fn give_back(&self);
}

/// Every chunk: no count kept, so the series pays nothing for it.
#[derive(Default)]
pub(crate) struct Unbounded;

impl Budget for Unbounded {
    fn take(&self) -> bool {
        true
    }
    fn give_back(&self) {}
}

/// At most `N` chunks, counted (chunks allocated or being claimed).
#[derive(Default)]
pub(crate) struct AtMost<const N: usize>(AtomicUsize);

impl<const N: usize> Budget for AtMost<N> {
    fn take(&self) -> bool {
        // Relaxed: the budget only bounds memory; the chunk is published by `claim`'s exchange.
        self.0.fetch_add(1, Ordering::Relaxed) < N
    }
    fn give_back(&self) {
        // Relaxed: as in `take`.
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where a record goes.
pub(crate) enum Cell<'a, T> {
    /// A cell only the calling thread writes: load and store.
    Own(&'a T),
    /// A cell other threads write too: atomic read-modify-write.
    Shared(&'a T),
}

/// `CHUNKS` + `MORE` lazily allocated chunks of `CHUNK` values of `T` (one per write slot:
/// `CHUNK` × `CHUNKS` is [`LOW_SLOTS`], `CHUNK` × (`CHUNKS` + `MORE`) is [`SLOTS`]), as many
/// of them as the budget `B` allows, plus [`STRIPES`] lazily allocated shared `T`s.
pub(crate) struct LazyCells<T, const CHUNK: usize, const CHUNKS: usize, const MORE: usize, B> {
    chunks: [AtomicPtr<[T; CHUNK]>; CHUNKS],
    /// The chunk pointers of the slots past [`LOW_SLOTS`], allocated on first use.
    more: AtomicPtr<[AtomicPtr<[T; CHUNK]>; MORE]>,
    shared: AtomicPtr<[T; STRIPES]>,
    /// How many chunks may be allocated (nothing at all for an unbounded one).
    budget: B,
    /// Owns the `T`s: `Send` and `Sync` follow `T`'s, as for a `Box<T>`.
    _owns: PhantomData<Box<T>>,
}

/// The mark of a chunk past the budget: never a real pointer (chunks are at least 8-aligned).
fn shared_mark<U>() -> *mut U {
    ptr::without_provenance_mut(1)
}

impl<T: Default, const CHUNK: usize, const CHUNKS: usize, const MORE: usize, B: Budget>
    LazyCells<T, CHUNK, CHUNKS, MORE, B>
{
    /// Checked at compile time: the chunks cover every slot, the inline ones the first
    /// [`LOW_SLOTS`], and the mark is never a chunk.
    const SHAPE: () = assert!(
        CHUNK * CHUNKS == LOW_SLOTS
            && CHUNK * (CHUNKS + MORE) == SLOTS
            && align_of::<[T; CHUNK]>() > 1
    );

    pub(crate) fn new() -> Self {
        let () = Self::SHAPE;
        LazyCells {
            chunks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            more: AtomicPtr::new(ptr::null_mut()),
            shared: AtomicPtr::new(ptr::null_mut()),
            budget: B::default(),
            _owns: PhantomData,
        }
    }

    /// The cell slot `slot` owns, if the slot is a real one and its chunk is allocated: the
    /// records' fast path, small enough to inline (everything else goes to [`cell`](Self::cell)).
    #[inline(always)]
    pub(crate) fn own(&self, slot: usize) -> Option<&T> {
        // A marker slot number (no slot, not yet leased) is past every chunk.
        let entry = match self.chunks.get(slot / CHUNK) {
            Some(entry) => entry,
            None => existing(&self.more)?.get(slot / CHUNK - CHUNKS)?,
        };
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
        let entry = match self.chunks.get(slot / CHUNK) {
            Some(entry) => Some(entry),
            None if slot < SLOTS => get_or_install(&self.more, || {
                std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut()))
            })
            .get(slot / CHUNK - CHUNKS),
            None => None,
        };
        let Some(entry) = entry else {
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
        let within = self.budget.take();
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
        self.budget.give_back();
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
            .chain(existing(&self.more).into_iter().flatten())
            .filter_map(|c| existing(c))
            .flat_map(|chunk| chunk.iter())
            .chain(existing(&self.shared).into_iter().flatten())
    }

    /// Bytes allocated for cells so far (for the memory figures).
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        let more = existing(&self.more);
        let chunks = self
            .chunks
            .iter()
            .chain(more.into_iter().flatten())
            .filter(|c| existing(c).is_some())
            .count();
        chunks * size_of::<[T; CHUNK]>()
            + more.map_or(0, size_of_val)
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

impl<T, const CHUNK: usize, const CHUNKS: usize, const MORE: usize, B> Drop
    for LazyCells<T, CHUNK, CHUNKS, MORE, B>
{
    fn drop(&mut self) {
        for c in self
            .chunks
            .iter()
            .chain(existing(&self.more).into_iter().flatten())
        {
            free(c);
        }
        free(&self.more);
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
