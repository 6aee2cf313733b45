//! The atomics and barriers of the lock-free protocols between recording threads and the
//! evaluator, swapped for loom's under `cfg(vigilo_loom)` (`VIGILO_LOOM=1`, see `build.rs`) so
//! that the loom models (`metrics/loom.rs`) run the real code.
//!
//! The barriers pair asymmetrically: the record path pays `light_barrier` (a compiler fence
//! where the operating system offers a process-wide barrier: Linux `membarrier`, Windows
//! `FlushProcessWriteBuffers`, Apple and FreeBSD equivalents; a full fence elsewhere), the
//! evaluator pays [`heavy_barrier`] (the process-wide barrier, a few microseconds, once per
//! arming batch). Between a light and a heavy barrier there is a total order, as between two
//! `SeqCst` fences: whichever comes first, what its thread wrote before it is visible to the
//! other thread after its own. See `membarrier2`'s documentation for the formal statement.

#[cfg(vigilo_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64};
#[cfg(not(vigilo_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64};

/// The record side's half of the store → load handshake (see the module comment).
#[cfg(not(vigilo_loom))]
#[inline(always)]
pub(crate) fn light_barrier() {
    membarrier2::light();
}

/// The evaluator side's half: a process-wide barrier.
#[cfg(not(vigilo_loom))]
#[inline]
pub fn heavy_barrier() {
    membarrier2::heavy();
}

// Under loom both halves are `SeqCst` fences, the guarantee the pair gives (what `membarrier2`
// itself does under its own `cfg(loom)`, which this build does not set, so that tokio and the
// other dependencies compile normally). Without them the models fail: they see the lost
// crossing.
#[cfg(vigilo_loom)]
pub(crate) fn light_barrier() {
    loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

#[cfg(vigilo_loom)]
pub fn heavy_barrier() {
    loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}
