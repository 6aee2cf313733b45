//! Histograms: `f64` observations in log-linear buckets (see [`buckets`](super::buckets)),
//! one cache-padded shard per write slot that records.

use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::buckets::{self, Bucket, OCTAVES, SUB_BUCKETS};
use super::cells::{self, Cell, LazyCells};
use super::series::Series;
use super::watch::Watch;
use super::{HistogramSnapshot, MetricError, slot};
use crate::sync;

/// The sub-bucket counts of one octave of one shard.
struct Block([AtomicU64; SUB_BUCKETS]);

/// One slot's share of a histogram.
pub(crate) struct Shard {
    /// Observations recorded: what the evaluator compares to see whether anything was recorded
    /// since it last looked (part of the watch protocol, hence `sync`'s atomic).
    count: sync::AtomicU64,
    zero: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    /// The blocks of positive values, by octave, allocated on first use.
    blocks: [AtomicPtr<Block>; OCTAVES],
    /// The same for negative values, itself allocated on the first negative value (most
    /// histograms never see one).
    negative: sync::AtomicPtr<[AtomicPtr<Block>; OCTAVES]>,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            count: sync::AtomicU64::new(0),
            zero: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
            blocks: [const { AtomicPtr::new(ptr::null_mut()) }; OCTAVES],
            negative: sync::AtomicPtr::new(ptr::null_mut()),
        }
    }
}

impl Shard {
    /// The block at `index` (negative values from `OCTAVES` on), allocated if this is its first
    /// use.
    #[inline]
    fn block(&self, index: usize) -> Option<&Block> {
        let slot = match index.checked_sub(OCTAVES) {
            None => self.blocks.get(index)?,
            Some(i) => cells::get_or_install(&self.negative, || {
                [const { AtomicPtr::new(ptr::null_mut()) }; OCTAVES]
            })
            .get(i)?,
        };
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
        let slot = match index.checked_sub(OCTAVES) {
            None => self.blocks.get(index)?,
            Some(i) => cells::existing(&self.negative)?.get(i)?,
        };
        // Acquire: as in `block`.
        let p = slot.load(Ordering::Acquire);
        // SAFETY: as in `block`; null maps to None.
        unsafe { p.as_ref() }
    }

    #[inline(always)]
    fn record(&self, value: f64, exclusive: bool) {
        let add = if exclusive {
            slot::add_exclusive
        } else {
            slot::add_shared
        };
        match buckets::locate(value) {
            Bucket::Zero => add(&self.zero, 1),
            Bucket::Sub {
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
        // Relaxed, as for the other cells (single writer when exclusive); the recorder's light
        // barrier orders it before the watch check.
        if exclusive {
            let n = self.count.load(Ordering::Relaxed);
            self.count.store(n.wrapping_add(1), Ordering::Relaxed);
        } else {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
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

    #[cfg(test)]
    fn allocated_bytes(&self) -> usize {
        (0..2 * OCTAVES)
            .filter(|&i| self.existing_block(i).is_some())
            .count()
            * size_of::<Block>()
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        let negative = cells::existing(&self.negative).into_iter().flatten();
        for slot in self.blocks.iter().chain(negative) {
            let p = slot.swap(ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: `p` came from `Box::into_raw` in `install`; `&mut self` means no borrow
                // of it is alive, and the swap nulled it so it is freed once.
                drop(unsafe { Box::from_raw(p) });
            }
        }
        cells::free(&self.negative);
    }
}

/// The cells behind one histogram series: one shard per write slot that records into it,
/// allocated on its first record (0.8 KiB, plus 0.5 KiB for each power-of-two range of values it
/// sees); only threads without a write slot share one shard (see `cells.rs`).
pub(crate) struct HistogramCells {
    shards:
        LazyCells<CachePadded<Shard>, 1, { cells::LOW_SLOTS }, { slot::SLOTS - cells::LOW_SLOTS }>,
    pub(crate) watch: Watch,
}

impl HistogramCells {
    pub(crate) fn new(watch: Watch) -> Self {
        HistogramCells {
            shards: LazyCells::new(),
            watch,
        }
    }

    /// Observations recorded so far (a cheap sum of per-shard counts).
    pub(crate) fn count(&self) -> u64 {
        // Relaxed: see `Shard::merge_scalars_into`; the watch protocol orders this read with a
        // heavy barrier (see `SeriesReader::missed`).
        self.shards
            .each()
            .fold(0, |n, s| n + s.count.load(Ordering::Relaxed))
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut out = HistogramSnapshot::empty();
        for shard in self.shards.each() {
            shard.merge_scalars_into(&mut out);
        }
        for index in 0..2 * OCTAVES {
            let mut sums = [0u64; SUB_BUCKETS];
            let mut any = false;
            for shard in self.shards.each() {
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

    /// Bytes of shards and blocks allocated so far.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.shards.allocated_bytes()
            + self
                .shards
                .each()
                .map(|s| s.allocated_bytes())
                .sum::<usize>()
    }
}

impl Series<HistogramCells> {
    /// Records a finite `value`.
    #[inline(always)]
    fn record_finite(&self, value: f64) {
        let cells = &self.cells;
        // The fast path first (see `CounterCells::add`).
        match cells.shards.own(slot::cached()) {
            Some(shard) => shard.record(value, true),
            None => self.record_slow(value),
        }
        // The store → load handshake with the evaluator's arming (see `SeriesReader::missed`):
        // the counts above are visible to it, or it is visible to the watch check below.
        sync::light_barrier();
        cells.watch.check(value, self.id);
    }

    /// A record off the fast path: the first of the thread or of its shard, or a shared shard.
    #[cold]
    #[inline(never)]
    fn record_slow(&self, value: f64) {
        match self.cells.shards.cell(slot::current()) {
            Cell::Own(shard) => shard.record(value, true),
            Cell::Shared(shard) => shard.record(value, false),
        }
    }
}

/// A handle to one histogram series: cheap to clone, `Send + Sync`, lock-free to record.
///
/// Quantiles come from log-linear buckets with a relative error of at most
/// [`RELATIVE_ERROR`](super::buckets::RELATIVE_ERROR) (0.78 %) for magnitudes in
/// `[2^-30, 2^50)`; count, sum, min and max are exact. Recording allocates only the first time a
/// thread records into the series (its shard) and the first time its shard sees a value in a new
/// power-of-two range (one 512-byte block), never after.
///
/// [`record`](Self::record) never fails: NaN and infinities are dropped and counted in the
/// registry's `vigilo_dropped_values_total{metric}` counter. [`try_record`](Self::try_record)
/// returns an error for them instead.
///
/// ```
/// # use vigilo_collector as vigilo;
/// let registry = vigilo::Registry::new();
/// let latency = registry.histogram("request_duration_seconds", &[])?;
/// for ms in 1..=100 {
///     latency.record(f64::from(ms) / 1000.0);
/// }
/// let snap = latency.snapshot();
/// assert_eq!(snap.count(), 100);
/// let p99 = snap.quantile(0.99).unwrap();
/// assert!((p99 - 0.099).abs() <= 0.099 * vigilo::metrics::buckets::RELATIVE_ERROR);
/// # Ok::<(), vigilo::MetricError>(())
/// ```
#[derive(Clone)]
pub struct Histogram {
    pub(crate) series: Arc<Series<HistogramCells>>,
}

impl Histogram {
    /// Records one observation; a NaN or infinite value is dropped and counted (see above).
    #[inline(always)]
    pub fn record(&self, value: f64) {
        if value.is_finite() {
            self.series.record_finite(value);
        } else {
            self.series.cells.watch.dropped(&self.series.name);
        }
    }

    /// Records one observation, or refuses a NaN or infinite value with
    /// [`MetricError::NonFinite`] (nothing is recorded or counted).
    #[inline]
    pub fn try_record(&self, value: f64) -> Result<(), MetricError> {
        if !value.is_finite() {
            return Err(MetricError::NonFinite {
                metric: self.series.name.to_string(),
                value,
            });
        }
        self.series.record_finite(value);
        Ok(())
    }

    /// Count, sum, min, max and buckets as of now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        self.series.cells.snapshot()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field(
                "series",
                &format_args!("{}{}", self.series.name, self.series.labels),
            )
            .field("count", &self.series.cells.count())
            .finish()
    }
}

impl Series<HistogramCells> {
    /// For `Registry::record_histogram`: a value already checked to be finite.
    pub(crate) fn record_checked(&self, value: f64) {
        self.record_finite(value);
    }
}
