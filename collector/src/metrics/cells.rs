//! Per-slot cells allocated on first use: a series pays for the write slots that record into it,
//! not for every slot the process has.
//!
//! The slots are grouped in chunks of `CHUNK`; a series keeps one pointer per chunk, null until a
//! thread of that chunk first records, which allocates the chunk. The pointers of the first
//! [`LOW_SLOTS`] slots sit in the series; those of the rest, in a table allocated when one of
//! those slots first records (most processes never lease more than 64 slots, and a series pays
//! nothing for the others). Every thread holding a slot so records into a cell of its own, with
//! a plain load and store; only threads without a slot (more than [`SLOTS`] at once, or one
//! whose thread-locals are being torn down) record into the series' one shared cell with atomic
//! read-modify-writes (exact, contended among those threads only).
//!
//! There is no budget per series: a series costs its chunks for the slots that recorded into it,
//! at most every slot's. Issue 15 measured the alternative, a budget past which threads share 4
//! striped cells (issue 11's 16 counter cells and 8 histogram shards): with every thread
//! recording, records on the stripes cost up to 22 times a private cell's (BENCHMARKS.md). Counters use
//! chunks of 8 slots (1 KiB), histograms one slot per chunk (a shard, about 0.8 KiB plus 0.5 KiB
//! per power-of-two range of values it sees).

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::Ordering;

use super::slot::SLOTS;
// `sync`'s: under loom, publishing a cell is part of what the models check.
use crate::sync::AtomicPtr;

/// Slots whose chunk pointers every series holds inline; the chunks of the others are found
/// through a table allocated on first use.
pub(crate) const LOW_SLOTS: usize = 64;

/// Where a record goes.
pub(crate) enum Cell<'a, T> {
    /// A cell only the calling thread writes: load and store.
    Own(&'a T),
    /// A cell other threads write too: atomic read-modify-write.
    Shared(&'a T),
}

/// `CHUNKS` + `MORE` lazily allocated chunks of `CHUNK` values of `T` (one per write slot:
/// `CHUNK` × `CHUNKS` is [`LOW_SLOTS`], `CHUNK` × (`CHUNKS` + `MORE`) is [`SLOTS`]), plus one
/// lazily allocated shared `T` for threads without a slot.
pub(crate) struct LazyCells<T, const CHUNK: usize, const CHUNKS: usize, const MORE: usize> {
    chunks: [AtomicPtr<[T; CHUNK]>; CHUNKS],
    /// The chunk pointers of the slots past [`LOW_SLOTS`], allocated on first use.
    more: AtomicPtr<[AtomicPtr<[T; CHUNK]>; MORE]>,
    shared: AtomicPtr<T>,
    /// Owns the `T`s: `Send` and `Sync` follow `T`'s, as for a `Box<T>`.
    _owns: PhantomData<Box<T>>,
}

impl<T: Default, const CHUNK: usize, const CHUNKS: usize, const MORE: usize>
    LazyCells<T, CHUNK, CHUNKS, MORE>
{
    /// Checked at compile time: the chunks cover every slot, the inline ones the first
    /// [`LOW_SLOTS`].
    const SHAPE: () = assert!(CHUNK * CHUNKS == LOW_SLOTS && CHUNK * (CHUNKS + MORE) == SLOTS);

    pub(crate) fn new() -> Self {
        let () = Self::SHAPE;
        LazyCells {
            chunks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            more: AtomicPtr::new(ptr::null_mut()),
            shared: AtomicPtr::new(ptr::null_mut()),
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
        // SAFETY: as in `cell`: a non-null `p` came from `Box::into_raw` in `install` and lives
        // until `drop`.
        let chunk = unsafe { p.as_ref() }?;
        chunk.get(slot % CHUNK)
    }

    /// Where slot `slot` records (`None`: a thread without a slot): its own cell, allocated
    /// with its chunk on the chunk's first use, or the shared cell for a thread without a slot.
    #[inline]
    pub(crate) fn cell(&self, slot: Option<usize>) -> Cell<'_, T> {
        let Some(slot) = slot else {
            return Cell::Shared(self.shared());
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
            return Cell::Shared(self.shared());
        };
        let chunk = get_or_install(entry, || std::array::from_fn(|_| T::default()));
        match chunk.get(slot % CHUNK) {
            Some(c) => Cell::Own(c),
            None => Cell::Shared(self.shared()),
        }
    }

    /// The shared cell, allocated on first use.
    #[inline]
    fn shared(&self) -> &T {
        get_or_install(&self.shared, T::default)
    }

    /// Every allocated cell: the slots', then the shared one.
    pub(crate) fn each(&self) -> impl Iterator<Item = &T> {
        self.chunks
            .iter()
            .chain(existing(&self.more).into_iter().flatten())
            .filter_map(|c| existing(c))
            .flat_map(|chunk| chunk.iter())
            .chain(existing(&self.shared))
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
            + existing(&self.shared).map_or(0, |_| size_of::<T>())
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

/// The value behind `cell` if it was ever allocated.
pub(crate) fn existing<U>(cell: &AtomicPtr<U>) -> Option<&U> {
    // Acquire: as in `get_or_install`.
    let p = cell.load(Ordering::Acquire);
    // SAFETY: as in `get_or_install`; null maps to None.
    unsafe { p.as_ref() }
}

impl<T, const CHUNK: usize, const CHUNKS: usize, const MORE: usize> Drop
    for LazyCells<T, CHUNK, CHUNKS, MORE>
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
    if !p.is_null() {
        // SAFETY: a non-null pointer here came from `Box::into_raw` in `install`; the caller has
        // the only reference, and the swap nulled it so it is freed once.
        drop(unsafe { Box::from_raw(p) });
    }
}
