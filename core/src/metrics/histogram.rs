//! Histograms: `f64` observations in log-linear buckets (see [`buckets`](super::buckets)),
//! one cache-padded shard per write slot.

use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::buckets::{self, OCTAVES, SUB_BUCKETS, Slot};
use super::watch::Watch;
use super::{HistogramSnapshot, MetricError, slot};

/// The sub-bucket counts of one octave of one shard.
struct Block([AtomicU64; SUB_BUCKETS]);

/// One slot's share of a histogram.
struct Shard {
    zero: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    /// `OCTAVES` positive blocks then `OCTAVES` negative ones, allocated on first use.
    blocks: Box<[AtomicPtr<Block>]>,
}

impl Shard {
    fn new() -> Self {
        Shard {
            zero: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
            blocks: (0..2 * OCTAVES)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
        }
    }

    /// The block at `index`, allocated if this is its first use.
    #[inline]
    fn block(&self, index: usize) -> Option<&Block> {
        let slot = self.blocks.get(index)?;
        // Acquire: pairs with the Release of the compare-exchange in `install`, so the block's
        // zeroed counters are visible before we use them.
        let mut p = slot.load(Ordering::Acquire);
        if p.is_null() {
            p = Self::install(slot);
        }
        // SAFETY: `p` is non-null, points to a Block leaked by `Box::into_raw`, and is freed only
        // in `Drop`, which needs `&mut self`, so it outlives this borrow of `self`.
        Some(unsafe { &*p })
    }

    /// First use of a block: allocates it and publishes it (or takes the one another thread
    /// published first). Kept out of line so the record path stays small.
    #[cold]
    fn install(slot: &AtomicPtr<Block>) -> *mut Block {
        let fresh = Box::into_raw(Box::new(Block(std::array::from_fn(|_| AtomicU64::new(0)))));
        // Release on success publishes the zeroed block; Acquire on failure sees the winner's.
        match slot.compare_exchange(ptr::null_mut(), fresh, Ordering::Release, Ordering::Acquire) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: `fresh` came from `Box::into_raw` above and was never shared.
                drop(unsafe { Box::from_raw(fresh) });
                winner
            }
        }
    }

    /// The block at `index` if it was ever allocated.
    fn existing_block(&self, index: usize) -> Option<&Block> {
        // Acquire: as in `block`.
        let p = self.blocks.get(index)?.load(Ordering::Acquire);
        // SAFETY: as in `block`; null maps to None.
        unsafe { p.as_ref() }
    }

    #[inline]
    fn record(&self, value: f64, exclusive: bool) {
        let add = if exclusive {
            slot::add_exclusive
        } else {
            slot::add_shared
        };
        match buckets::locate(value) {
            Slot::Zero => add(&self.zero, 1),
            Slot::Bucket {
                negative,
                octave,
                sub,
            } => {
                let index = octave + if negative { OCTAVES } else { 0 };
                if let Some(cell) = self.block(index).and_then(|b| b.0.get(sub)) {
                    add(cell, 1);
                }
            }
        }
        slot::update_f64(&self.sum, exclusive, |s| Some(s + value));
        slot::update_f64(&self.min, exclusive, |m| (value < m).then_some(value));
        slot::update_f64(&self.max, exclusive, |m| (value > m).then_some(value));
    }

    fn merge_scalars_into(&self, out: &mut HistogramSnapshot) {
        // Relaxed loads throughout: counts only grow, and a snapshot needs no ordering with other
        // memory (the bucket totals define the count it reports).
        out.zero += self.zero.load(Ordering::Relaxed);
        out.sum += f64::from_bits(self.sum.load(Ordering::Relaxed));
        out.min = out
            .min
            .min(f64::from_bits(self.min.load(Ordering::Relaxed)));
        out.max = out
            .max
            .max(f64::from_bits(self.max.load(Ordering::Relaxed)));
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        for slot in self.blocks.iter_mut() {
            let p = *slot.get_mut();
            if !p.is_null() {
                // SAFETY: `p` came from `Box::into_raw` in `block`; `&mut self` means no borrow of
                // it is alive, and the slot is dropped with the shard so it is freed once.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

/// The cells behind one histogram series.
pub(crate) struct HistogramCells {
    /// One shard per slot, then the shared shard for threads without a slot.
    shards: Box<[CachePadded<Shard>]>,
    pub(crate) watch: Watch,
    name: Arc<str>,
}

impl HistogramCells {
    pub(crate) fn new(name: Arc<str>, watch: Watch) -> Self {
        HistogramCells {
            shards: (0..=slot::slot_count())
                .map(|_| CachePadded::new(Shard::new()))
                .collect(),
            watch,
            name,
        }
    }

    #[inline]
    pub(crate) fn record(&self, value: f64) -> Result<(), MetricError> {
        if !value.is_finite() {
            return Err(MetricError::NonFinite {
                metric: self.name.to_string(),
                value,
            });
        }
        self.record_finite(value);
        Ok(())
    }

    /// `record` for a value the caller has already checked to be finite.
    #[inline]
    pub(crate) fn record_finite(&self, value: f64) {
        let shared = self.shards.len() - 1;
        match slot::current()
            .filter(|&i| i < shared)
            .and_then(|i| self.shards.get(i))
        {
            Some(shard) => shard.record(value, true),
            None => {
                if let Some(shard) = self.shards.get(shared) {
                    shard.record(value, false);
                }
            }
        }
        self.watch.check(value);
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut out = HistogramSnapshot::empty();
        for shard in self.shards.iter() {
            shard.merge_scalars_into(&mut out);
        }
        for index in 0..2 * OCTAVES {
            let mut sums = [0u64; SUB_BUCKETS];
            let mut any = false;
            for shard in self.shards.iter() {
                if let Some(block) = shard.existing_block(index) {
                    any = true;
                    for (total, cell) in sums.iter_mut().zip(block.0.iter()) {
                        // Relaxed: as in `merge_scalars_into`.
                        *total += cell.load(Ordering::Relaxed);
                    }
                }
            }
            if !any {
                continue;
            }
            let negative = index >= OCTAVES;
            let octave = index % OCTAVES;
            for (sub, &n) in sums.iter().enumerate().filter(|(_, n)| **n > 0) {
                out.push_bucket(buckets::key(negative, octave, sub), n);
            }
        }
        out.finish();
        out
    }
}

/// A handle to one histogram series: cheap to clone, `Send + Sync`, lock-free to record.
///
/// Quantiles come from log-linear buckets with a relative error of at most
/// [`RELATIVE_ERROR`](super::buckets::RELATIVE_ERROR) (0.78 %) for magnitudes in
/// `[2^-30, 2^50)`; count, sum, min and max are exact. Recording allocates only the first time a
/// thread's shard sees a value in a new power-of-two range (one 512-byte block), never after.
///
/// ```
/// let registry = vigilo::Registry::new();
/// let latency = registry.histogram("request_duration_seconds", &[])?;
/// for ms in 1..=100 {
///     latency.record(f64::from(ms) / 1000.0)?;
/// }
/// let snap = latency.snapshot();
/// assert_eq!(snap.count(), 100);
/// let p99 = snap.quantile(0.99).unwrap();
/// assert!((p99 - 0.099).abs() <= 0.099 * vigilo::metrics::buckets::RELATIVE_ERROR);
/// # Ok::<(), vigilo::MetricError>(())
/// ```
#[derive(Clone)]
pub struct Histogram {
    pub(crate) cells: Arc<HistogramCells>,
}

impl Histogram {
    /// Records one observation. NaN and infinities are refused and change nothing.
    #[inline]
    pub fn record(&self, value: f64) -> Result<(), MetricError> {
        self.cells.record(value)
    }

    /// Count, sum, min, max and buckets as of now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.cells.snapshot()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.snapshot().count())
            .finish()
    }
}
