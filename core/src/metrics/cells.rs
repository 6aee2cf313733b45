//! Per-slot cells allocated on first use: a series pays for the write slots that record into it,
//! not for every slot the process has.
//!
//! The slots are grouped in chunks of `CHUNK`; a series keeps one pointer per chunk (null until
//! a thread of that chunk first records) and one for the shared cell of slotless threads.
//! Counters use chunks of 8 slots (8 pointers, 1 KiB per chunk recorded); histograms, whose
//! per-slot shard is large, one slot per chunk.

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::Ordering;

use super::slot::SLOTS;
// `sync`'s: under loom, publishing a cell is part of what the models check.
use crate::sync::AtomicPtr;

/// `CHUNKS` lazily allocated chunks of `CHUNK` values of `T` (one per write slot: `CHUNK` ×
/// `CHUNKS` is [`SLOTS`]), plus one lazily allocated `T` for threads without a slot.
pub(crate) struct LazyCells<T, const CHUNK: usize, const CHUNKS: usize> {
    chunks: [AtomicPtr<[T; CHUNK]>; CHUNKS],
    shared: AtomicPtr<T>,
    /// Owns the `T`s: `Send` and `Sync` follow `T`'s, as for a `Box<T>`.
    _owns: PhantomData<Box<T>>,
}

impl<T: Default, const CHUNK: usize, const CHUNKS: usize> LazyCells<T, CHUNK, CHUNKS> {
    /// Checked at compile time: the chunks cover every slot.
    const COVERS_EVERY_SLOT: () = assert!(CHUNK * CHUNKS == SLOTS);

    pub(crate) fn new() -> Self {
        let () = Self::COVERS_EVERY_SLOT;
        LazyCells {
            chunks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            shared: AtomicPtr::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// Slot `slot`'s cell, allocated with its chunk on the chunk's first use; `None` only for a
    /// slot number out of range (never, with `slot::current`).
    #[inline]
    pub(crate) fn slot(&self, slot: usize) -> Option<&T> {
        let chunk = get_or_install(self.chunks.get(slot / CHUNK)?, || {
            std::array::from_fn(|_| T::default())
        });
        chunk.get(slot % CHUNK)
    }

    /// The shared cell, allocated on first use.
    #[inline]
    pub(crate) fn shared(&self) -> &T {
        get_or_install(&self.shared, T::default)
    }

    /// Every allocated cell: the slots' then the shared one.
    pub(crate) fn each(&self) -> impl Iterator<Item = &T> {
        self.chunks
            .iter()
            .filter_map(|c| existing(c))
            .flat_map(|chunk| chunk.iter())
            .chain(existing(&self.shared))
    }

    /// Bytes allocated for cells so far (for the memory figures).
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        let chunks = self.chunks.iter().filter(|c| existing(c).is_some()).count();
        chunks * size_of::<[T; CHUNK]>() + existing(&self.shared).map_or(0, |_| size_of::<T>())
    }
}

/// The value behind `cell`, allocated and published on first use. Kept small so the record path
/// inlines the fast case; the allocation is out of line.
#[inline]
fn get_or_install<U>(cell: &AtomicPtr<U>, make: impl FnOnce() -> U) -> &U {
    // Acquire: pairs with the Release of the compare-exchange in `install`, so the value's
    // initialised contents are visible before we use them.
    let mut p = cell.load(Ordering::Acquire);
    if p.is_null() {
        p = install(cell, make);
    }
    // SAFETY: `p` is non-null, came from `Box::into_raw` in `install`, and is freed only in
    // `LazyCells::drop`, which needs `&mut self`, so it outlives this borrow of the cells.
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
fn existing<U>(cell: &AtomicPtr<U>) -> Option<&U> {
    // Acquire: as in `get_or_install`.
    let p = cell.load(Ordering::Acquire);
    // SAFETY: as in `get_or_install`; null maps to None.
    unsafe { p.as_ref() }
}

impl<T, const CHUNK: usize, const CHUNKS: usize> Drop for LazyCells<T, CHUNK, CHUNKS> {
    fn drop(&mut self) {
        for c in &self.chunks {
            free(c);
        }
        free(&self.shared);
    }
}

/// Frees what `cell` points to, if anything (in `drop`: no other reference exists).
fn free<U>(cell: &AtomicPtr<U>) {
    // Acquire: as in `get_or_install` (`&mut self` in `drop` already excludes other threads).
    let p = cell.swap(ptr::null_mut(), Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: a non-null pointer here came from `Box::into_raw` in `install`; `drop` has the
        // only reference to the cells, and the swap nulled it so it is freed once.
        drop(unsafe { Box::from_raw(p) });
    }
}
