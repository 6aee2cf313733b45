//! The atomics and barriers of the lock-free protocols between recording threads and the
//! evaluator, swapped for loom's under `--cfg loom` so that the loom models (`metrics/loom.rs`)
//! run the real code.
//!
//! The barriers pair asymmetrically: the record path pays [`light_barrier`] (a compiler fence
//! where the operating system offers a process-wide barrier: Linux `membarrier`, Windows
//! `FlushProcessWriteBuffers`, Apple and FreeBSD equivalents; a full fence elsewhere), the
//! evaluator pays [`heavy_barrier`] (the process-wide barrier, a few microseconds, once per
//! arming batch). Between a light and a heavy barrier there is a total order, as between two
//! `SeqCst` fences: whichever comes first, what its thread wrote before it is visible to the
//! other thread after its own. See `membarrier2`'s documentation for the formal statement.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64};

/// The record side's half of the store → load handshake (see the module comment).
#[inline(always)]
pub(crate) fn light_barrier() {
    membarrier2::light();
}

/// The evaluator side's half: a process-wide barrier.
#[inline]
pub(crate) fn heavy_barrier() {
    membarrier2::heavy();
}
