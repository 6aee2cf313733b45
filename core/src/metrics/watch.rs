//! Watches: bounds the evaluator arms on a gauge or histogram series so that a record crossing
//! one wakes it at once instead of at the next tick.
//!
//! Both bounds live in one `AtomicU64` as two `f32`s (upper in the high half, lower in the low
//! half), so the record path pays one relaxed load and a compare. An exact `f64` threshold is
//! rounded *outward* to `f32` (the upper bound down, the lower bound up), so a value that crosses
//! the exact threshold always crosses the stored one; a value between the two wakes the evaluator
//! needlessly, and the evaluator's exact comparison then finds nothing changed.
//!
//! A watch fires once: the record that crosses a bound swaps the watch back to unarmed and sends a
//! [`WatchEvent`]. The evaluator re-arms with the bounds of the state it finds.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{Sender, TrySendError};

use super::SeriesId;

/// The packed value of an unarmed watch: upper +inf, lower -inf.
const UNARMED: u64 = ((f32::INFINITY.to_bits() as u64) << 32) | f32::NEG_INFINITY.to_bits() as u64;

/// The bounds to arm on a series: a record at or above `upper`, or at or below `lower`, fires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchBounds {
    /// Fire when a value reaches this or more (`f64::INFINITY` for none).
    pub upper: f64,
    /// Fire when a value reaches this or less (`f64::NEG_INFINITY` for none).
    pub lower: f64,
}

impl WatchBounds {
    /// Fires on any record (upper -inf, lower +inf): for a series whose next sample, whatever
    /// its value, changes something (an item in no data).
    pub const ANY_RECORD: WatchBounds = WatchBounds {
        upper: f64::NEG_INFINITY,
        lower: f64::INFINITY,
    };

    /// True for [`ANY_RECORD`](Self::ANY_RECORD)-like bounds, which every value crosses.
    pub fn is_any_record(self) -> bool {
        self.upper == f64::NEG_INFINITY || self.lower == f64::INFINITY
    }

    fn pack(self) -> u64 {
        let upper = round_down(self.upper);
        let lower = round_up(self.lower);
        ((upper.to_bits() as u64) << 32) | lower.to_bits() as u64
    }
}

/// The largest `f32` not above `x` (NaN arms nothing).
fn round_down(x: f64) -> f32 {
    if x.is_nan() {
        return f32::INFINITY;
    }
    let f = x as f32;
    if f64::from(f) > x { f.next_down() } else { f }
}

/// The smallest `f32` not below `x` (NaN arms nothing).
fn round_up(x: f64) -> f32 {
    if x.is_nan() {
        return f32::NEG_INFINITY;
    }
    let f = x as f32;
    if f64::from(f) < x { f.next_up() } else { f }
}

/// A record crossed an armed bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchEvent {
    /// The series that crossed.
    pub series: SeriesId,
    /// The value recorded.
    pub value: f64,
}

/// Where fired watches go: one per registry, shared by all its series.
#[derive(Default)]
pub(crate) struct WatchHub {
    sender: OnceLock<Sender<WatchEvent>>,
    /// Set when an event could not be queued; the evaluator then re-evaluates every watched rule.
    overflowed: AtomicBool,
    /// How many events could not be queued.
    dropped: AtomicU64,
}

impl WatchHub {
    pub(crate) fn connect(&self, sender: Sender<WatchEvent>) -> bool {
        self.sender.set(sender).is_ok()
    }

    /// True if events were lost since the last call; clears the flag.
    pub(crate) fn take_overflow(&self) -> bool {
        // Relaxed: the flag only asks for a full sweep; the sweep reads the series themselves.
        self.overflowed.swap(false, Ordering::Relaxed)
    }

    pub(crate) fn dropped(&self) -> u64 {
        // Relaxed: a statistic.
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, event: WatchEvent) {
        if let Some(sender) = self.sender.get() {
            match sender.try_send(event) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    // Relaxed: statistics and a sweep request, see `take_overflow`.
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    self.overflowed.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The watch of one series.
pub(crate) struct Watch {
    bounds: AtomicU64,
    series: SeriesId,
    hub: Arc<WatchHub>,
}

impl Watch {
    pub(crate) fn new(series: SeriesId, hub: Arc<WatchHub>) -> Self {
        Watch {
            bounds: AtomicU64::new(UNARMED),
            series,
            hub,
        }
    }

    pub(crate) fn arm(&self, bounds: WatchBounds) {
        // Relaxed: a record that misses a just-armed bound was recorded before the arming, and the
        // evaluator reads the series' value after arming (see `Evaluator`), so nothing is lost.
        self.bounds.store(bounds.pack(), Ordering::Relaxed);
    }

    pub(crate) fn disarm(&self) {
        // Relaxed: as in `arm`.
        self.bounds.store(UNARMED, Ordering::Relaxed);
    }

    /// The record-path check: one relaxed load and a compare when unarmed; two more compares,
    /// inline, when armed. Only a crossing leaves the fast path.
    #[inline]
    pub(crate) fn check(&self, value: f64) {
        // Relaxed: see `arm`.
        let packed = self.bounds.load(Ordering::Relaxed);
        if packed == UNARMED {
            return;
        }
        let upper = f64::from(f32::from_bits((packed >> 32) as u32));
        let lower = f64::from(f32::from_bits(packed as u32));
        if value >= upper || value <= lower {
            self.fire(packed, value);
        }
    }

    #[cold]
    fn fire(&self, packed: u64, value: f64) {
        // Relaxed: the swap only decides which recorder reports this crossing; the channel
        // send carries the event itself.
        if self
            .bounds
            .compare_exchange(packed, UNARMED, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.hub.send(WatchEvent {
                series: self.series,
                value,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_outward() {
        for x in [0.1, 80.0, 1e-30, 123456789.123, -0.7, 1e300, -1e300] {
            assert!(f64::from(round_down(x)) <= x, "{x}");
            assert!(f64::from(round_up(x)) >= x, "{x}");
        }
    }

    #[test]
    fn fires_once_per_arming() {
        let hub = Arc::new(WatchHub::default());
        let (tx, rx) = crossbeam_channel::bounded(4);
        hub.connect(tx);
        let watch = Watch::new(SeriesId(7), hub);
        watch.check(100.0);
        assert!(rx.try_recv().is_err(), "unarmed watch fired");
        watch.arm(WatchBounds {
            upper: 0.8,
            lower: 0.2,
        });
        watch.check(0.5);
        watch.check(0.8);
        watch.check(0.9);
        assert_eq!(
            rx.try_recv(),
            Ok(WatchEvent {
                series: SeriesId(7),
                value: 0.8
            })
        );
        assert!(rx.try_recv().is_err(), "fired twice without re-arming");
        watch.arm(WatchBounds {
            upper: f64::INFINITY,
            lower: 0.2,
        });
        watch.check(0.2);
        assert_eq!(rx.try_recv().map(|e| e.value), Ok(0.2));
    }
}
